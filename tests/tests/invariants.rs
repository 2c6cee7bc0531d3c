//! The architecture invariants of ARCHITECTURE.md, checked on every `cargo test`.

use std::fs;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

fn rust_files(directory: &Path, found: &mut Vec<PathBuf>) {
    source_files(directory, &["rs"], found);
}

/// Lines with the `unsafe` keyword as code (not in a comment or a string such as this file's).
fn unsafe_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            let code = code.split('"').step_by(2).collect::<String>();
            code.split(|c: char| !c.is_alphanumeric() && c != '_').any(|word| word == "unsafe")
        })
        .map(|(n, line)| (n + 1, line))
        .collect()
}

#[test]
fn unsafe_code_lives_only_in_the_binding_and_the_root_task() {
    let root = workspace();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 20, "expected the workspace's sources, found {}", files.len());
    // This file spells the keyword in its own test strings.
    let allowed = [root.join("sel4"), root.join("root-task"), root.join(file!())];
    let mut offenders = Vec::new();
    for file in &files {
        if allowed.iter().any(|a| file.starts_with(a)) {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        for (line, code) in unsafe_lines(&text) {
            if code.contains("forbid(unsafe_code)") || code.contains("unsafe_op_in_unsafe_fn") {
                continue;
            }
            offenders.push(format!(
                "{}:{line}: {}",
                file.strip_prefix(&root).unwrap().display(),
                code.trim()
            ));
        }
    }
    assert!(offenders.is_empty(), "unsafe outside sel4/ and root-task/:\n{}", offenders.join("\n"));
}

#[test]
fn every_unsafe_block_in_the_binding_and_root_task_says_why() {
    let root = workspace();
    let mut files = Vec::new();
    rust_files(&root.join("sel4"), &mut files);
    rust_files(&root.join("root-task"), &mut files);
    let mut missing = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (number, code) in unsafe_lines(&text) {
            let code = code.trim();
            // Blocks and impls need a SAFETY comment; `unsafe fn` declarations document `# Safety`.
            if !(code.contains("unsafe {") || code.starts_with("unsafe impl")) {
                continue;
            }
            let above = lines[..number - 1].iter().rev().take_while(|l| {
                let l = l.trim();
                l.starts_with("//") || l.starts_with("#[") || l.is_empty()
            });
            let has_reason = above.clone().any(|l| l.contains("SAFETY:")) || code.contains("SAFETY:");
            if !has_reason {
                missing.push(format!("{}:{number}", file.strip_prefix(&root).unwrap().display()));
            }
        }
    }
    assert!(missing.is_empty(), "unsafe without a `// SAFETY:` comment:\n{}", missing.join("\n"));
}

#[test]
fn the_pager_core_is_no_std_forbids_unsafe_and_names_no_sel4_crate() {
    let root = workspace();
    let lib = fs::read_to_string(root.join("pager/src/lib.rs")).unwrap();
    assert!(lib.contains("#![no_std]"), "pager must be no_std");
    assert!(lib.contains("#![forbid(unsafe_code)]"), "pager must forbid unsafe code");
    let manifest = fs::read_to_string(root.join("pager/Cargo.toml")).unwrap();
    let dependencies = manifest.split("[dependencies]").nth(1).unwrap_or("");
    assert!(!dependencies.to_lowercase().contains("sel4"), "pager depends on a seL4 crate:\n{dependencies}");
    let mut files = Vec::new();
    rust_files(&root.join("pager/src"), &mut files);
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            assert!(
                !code.contains("sel4::") && !code.contains("extern crate sel4"),
                "{}:{} names the seL4 binding",
                file.display(),
                number + 1
            );
        }
    }
}

#[test]
fn the_unsafe_scanner_sees_code_and_ignores_comments_and_strings() {
    assert_eq!(unsafe_lines("let x = unsafe { f() };").len(), 1);
    assert_eq!(unsafe_lines("unsafe impl Send for X {}").len(), 1);
    assert!(unsafe_lines("// unsafe here is prose").is_empty());
    assert!(unsafe_lines("let s = \"unsafe\";").is_empty());
    assert!(unsafe_lines("let unsafe_count = 1;").is_empty());
}

/// Source files of the workspace with one of `extensions` (builds and hidden folders left out).
fn source_files(directory: &Path, extensions: &[&str], found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(directory) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            source_files(&path, extensions, found);
        } else if path.extension().is_some_and(|e| extensions.iter().any(|x| e == *x)) {
            found.push(path);
        }
    }
}

/// The values of the hex literals on a line (`0xBFFF_F000`, `0x101UL`, ...).
fn hex_literals(line: &str) -> Vec<u64> {
    let line = line.to_ascii_lowercase();
    let bytes = line.as_bytes();
    let mut values = Vec::new();
    let mut at = 0;
    while let Some(found) = line[at..].find("0x") {
        let start = at + found;
        let preceded_by_word =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let digits: String = line[start + 2..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || *c == '_')
            .filter(|c| *c != '_')
            .collect();
        if !preceded_by_word && !digits.is_empty() {
            if let Ok(value) = u64::from_str_radix(&digits, 16) {
                values.push(value);
            }
        }
        at = start + 2;
    }
    values
}

/// Why a line defines (or copies) a number only the ABI crate may define, if it does: the IPC
/// buffer address anywhere, comments included; a call label as the value of a constant, a
/// `#define` or a match arm, or next to a word that says it is a call.
fn abi_copy(line: &str) -> Option<String> {
    let values = hex_literals(line);
    if values.contains(&abi::IPC_BUFFER_ADDRESS) {
        return Some(format!("the IPC buffer address {:#x}", abi::IPC_BUFFER_ADDRESS));
    }
    let labels = [("EXIT", abi::label::EXIT), ("PRINT", abi::label::PRINT), ("SHARE", abi::label::SHARE)];
    let code = line.split("//").next().unwrap_or("").to_lowercase();
    let definition =
        ["const ", "static ", "#define", "=>", "label", "messageinfo", "call", "exit", "print", "share"];
    for (name, label) in labels {
        if hex_literals(&code).contains(&label) && definition.iter().any(|word| code.contains(word)) {
            return Some(format!("the {name} call label {label:#x}"));
        }
    }
    None
}

#[test]
fn call_labels_and_the_ipc_buffer_address_are_defined_only_in_the_abi_crate() {
    let root = workspace();
    let mut files = Vec::new();
    source_files(&root, &["rs", "c", "h"], &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("apps/c/probe.h")),
        "expected the C apps among {} files",
        files.len()
    );
    // The ABI crate defines them; the C header repeats them under abi/tests/c_header.rs's check;
    // this file spells them in its scanner's own test.
    let allowed = [root.join("abi"), root.join("apps/include/pager_app.h"), root.join(file!())];
    let mut copies = Vec::new();
    for file in &files {
        if allowed.iter().any(|a| file.starts_with(a)) {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            if let Some(what) = abi_copy(line) {
                let path = file.strip_prefix(&root).unwrap().display();
                copies.push(format!("{path}:{}: {what}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(
        copies.is_empty(),
        "app ABI numbers outside the abi crate (use abi::...):\n{}",
        copies.join("\n")
    );
}

#[test]
fn the_abi_scanner_finds_copies_and_leaves_other_numbers() {
    for copy in [
        "pub const EXIT: u64 = 0x100;",
        "#define PAGER_LABEL_PRINT 0x101UL",
        "    0x102 => self.share(client, message),",
        "let info = MessageInfo::new(0x101, 0, 0, 2);",
        "pub const IPC_BUFFER_ADDRESS: u64 = 0xBFFF_F000;",
        "#define PROBE_IPC_BUFFER 0xBFFFF000UL",
        " * at its IPC buffer page (0xbffff000)",
    ] {
        assert!(abi_copy(copy).is_some(), "missed: {copy}");
    }
    for other in [
        "e.text().memory_size = 0x100;",
        "let context = UserContext::from_words(|index| 0x100 + index as u64);",
        "const TEXT: u64 = 0x0040_1000;",
        "region at 0xBFFF_E000",
        "let call = 0x1000;",
        "// the print call is 0x101",
    ] {
        assert_eq!(abi_copy(other), None, "{other}");
    }
    assert_eq!(hex_literals("0x1_0000UL, 0Xff, x0x5, a0x1"), [0x1_0000, 0xff]);
}
