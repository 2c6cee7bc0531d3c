//! The C apps' header, `apps/include/pager_app.h`, against this crate: every number it defines is
//! one of the ABI's constants with the same value, or a seL4 number listed here as not the ABI's.

use std::collections::BTreeMap;
use std::path::Path;

/// Each `#define` of the header that is part of the app ABI, with the constant it must equal.
fn expected() -> Vec<(&'static str, u64)> {
    vec![
        ("PAGER_ENDPOINT", abi::PAGER_ENDPOINT_SLOT),
        ("PAGER_LABEL_EXIT", abi::label::EXIT),
        ("PAGER_LABEL_PRINT", abi::label::PRINT),
        ("PAGER_LABEL_SHARE", abi::label::SHARE),
        ("PAGER_LABEL_ADVISE", abi::label::ADVISE),
        ("PAGER_ADVISE_WILL_NEED", abi::advice::WILL_NEED),
        ("PAGER_ADVISE_DONT_NEED", abi::advice::DONT_NEED),
        ("PAGER_ADVISE_SEQUENTIAL", abi::advice::SEQUENTIAL),
        ("PAGER_ADVISE_RANDOM", abi::advice::RANDOM),
        ("PAGER_ADVISE_SEQUENTIAL_PAGES", abi::advice::SEQUENTIAL_PAGES),
        ("PAGER_ADVISE_OK", abi::advise_status::OK),
        ("PAGER_ADVISE_OUTSIDE_AREAS", abi::advise_status::OUTSIDE_AREAS),
        ("PAGER_ADVISE_INVALID", abi::advise_status::INVALID),
        ("PAGER_ADVISE_NO_MEMORY", abi::advise_status::NO_MEMORY),
        ("PAGER_LABEL_ARGUMENT", abi::label::ARGUMENT),
        ("PAGER_ARGUMENT_LIMIT", abi::ARGUMENT_LIMIT as u64),
        ("PAGER_PRINT_LIMIT", abi::PRINT_LIMIT as u64),
        ("PAGER_NAME_LIMIT", abi::NAME_LIMIT as u64),
        ("PAGER_PAGE_SIZE", abi::PAGE_SIZE),
        ("PAGER_UNKNOWN_CALL", abi::UNKNOWN_CALL),
        ("PAGER_IPC_BUFFER_ADDRESS", abi::IPC_BUFFER_ADDRESS),
        ("PAGER_SHARE_OK", abi::share_status::OK),
        ("PAGER_SHARE_NO_SUCH_DESTINATION", abi::share_status::NO_DESTINATION),
        ("PAGER_SHARE_NO_AREA", abi::share_status::NO_AREA),
        ("PAGER_SHARE_DOES_NOT_FIT", abi::share_status::DOES_NOT_FIT),
        ("PAGER_SHARE_TOO_MANY_SHARED", abi::share_status::TOO_MANY_SHARED),
        ("PAGER_SHARE_NOT_PERMITTED", abi::share_status::NOT_PERMITTED),
        ("PAGER_LABEL_LIMIT", abi::label::LIMIT),
        ("PAGER_LABEL_REFUSED", abi::label::REFUSED),
    ]
}

/// Defines that are not the pager's ABI: seL4's own numbers, and the include guard.
const NOT_THE_ABI: &[&str] = &["PAGER_APP_H", "PAGER_SYSCALL_CALL"];

/// `#define NAME VALUE` lines: name to value text (empty for a define without a value).
fn defines(header: &str) -> BTreeMap<String, String> {
    header
        .lines()
        .filter_map(|line| line.trim().strip_prefix("#define"))
        .filter_map(|rest| {
            let mut parts = rest.split_whitespace();
            let name = parts.next()?.to_string();
            Some((name, parts.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

/// A C integer constant as the header writes them: decimal or hex, with `U`/`L` suffixes, maybe in
/// parentheses, maybe negative (as two's complement), complemented (`~0UL`) or shifted (`1UL << 20`).
fn c_integer(text: &str) -> Option<u64> {
    let text = text.trim().trim_start_matches('(').trim_end_matches(')').trim();
    if let Some((value, shift)) = text.split_once("<<") {
        return c_integer(value)?.checked_shl(u32::try_from(c_integer(shift)?).ok()?);
    }
    if let Some(rest) = text.strip_prefix('~') {
        return c_integer(rest).map(|value| !value);
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let digits = digits.trim_end_matches(['u', 'U', 'l', 'L']);
    let value = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<u64>().ok()?,
    };
    Some(if negative { value.wrapping_neg() } else { value })
}

/// Every way `header` differs from the ABI; empty when it agrees.
fn differences(header: &str) -> Vec<String> {
    let found = defines(header);
    let expected = expected();
    let mut problems = Vec::new();
    for &(name, value) in &expected {
        match found.get(name).map(|text| (text, c_integer(text))) {
            None => problems.push(format!("{name} is missing (the ABI's value is {value:#x})")),
            Some((text, None)) => problems.push(format!("{name} is {text:?}, not an integer")),
            Some((_, Some(got))) if got != value => {
                problems.push(format!("{name} is {got:#x}, the ABI crate says {value:#x}"))
            }
            Some(_) => {}
        }
    }
    for name in found.keys() {
        if !expected.iter().any(|(n, _)| n == name) && !NOT_THE_ABI.contains(&name.as_str()) {
            problems.push(format!("{name} is not checked against the ABI crate: add it to this test"));
        }
    }
    problems
}

fn header() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps/include/pager_app.h");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_c_header_agrees_with_the_abi_crate() {
    let problems = differences(&header());
    assert!(problems.is_empty(), "apps/include/pager_app.h:\n{}", problems.join("\n"));
}

#[test]
fn a_drifted_or_missing_define_is_caught() {
    let header = header();
    let drifted = header.replace("#define PAGER_LABEL_PRINT 0x101UL", "#define PAGER_LABEL_PRINT 0x103UL");
    assert_ne!(drifted, header, "the test edits a line the header has");
    assert_eq!(differences(&drifted), ["PAGER_LABEL_PRINT is 0x103, the ABI crate says 0x101"]);
    let missing = header.replace("#define PAGER_IPC_BUFFER_ADDRESS", "#define PAGER_IPC_BUFFER");
    let problems = differences(&missing);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("PAGER_IPC_BUFFER_ADDRESS is missing"), "{problems:?}");
    assert!(problems[1].starts_with("PAGER_IPC_BUFFER is not checked"), "{problems:?}");
}

#[test]
fn c_integers_parse_as_the_compiler_reads_them() {
    assert_eq!(c_integer("0x100UL"), Some(0x100));
    assert_eq!(c_integer("928UL"), Some(928));
    assert_eq!(c_integer("(-1L)"), Some(u64::MAX));
    assert_eq!(c_integer("0xFFFFFFFFFFFFFFFFUL"), Some(u64::MAX));
    assert_eq!(c_integer("4"), Some(4));
    assert_eq!(c_integer("(1UL << 20)"), Some(1 << 20));
    assert_eq!(c_integer("(~0UL)"), Some(u64::MAX));
    assert_eq!(c_integer("pager"), None);
}
