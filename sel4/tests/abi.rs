//! The ABI check: every number the binding hard-codes, recomputed from the seL4 kernel source
//! the way the kernel's own generators compute it.
//!
//! Needs the kernel source tree in `SEL4_KERNEL_SOURCE` (`cargo xtask test` sets it to the
//! project's patched copy, whose `include/plat/pc99/autoconf.h` is the project config). The
//! config used to evaluate `condition`s and `#ifdef`s is read from that `autoconf.h`, or from
//! the file named by `SEL4_AUTOCONF` if set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sel4::abi::{self, InvocationLabel, ObjectType, Syscall};
use sel4::{
    AsidPool, CNode, CPtr, CapRights, ErrorCode, Frame, IoPort, IrqControl, IrqHandler, MessageInfo,
    Notification, PageDirectory, PageTable, Pdpt, Pml4, Request, Tcb, TcbConfiguration, Untyped, UserContext,
    VmAttributes,
};

// ---------------------------------------------------------------------------------------------
// The kernel source and its configuration.

struct Kernel {
    root: PathBuf,
    config: Config,
}

impl Kernel {
    fn load() -> Kernel {
        let root = std::env::var_os("SEL4_KERNEL_SOURCE").map(PathBuf::from).unwrap_or_else(|| {
            panic!(
                "SEL4_KERNEL_SOURCE is not set: point it at the seL4 5.0.0 kernel source tree \
                 (`cargo xtask kernel` puts the project's copy in target/sel4/kernel-src), or run \
                 `cargo xtask test`"
            )
        });
        assert!(
            root.join("libsel4").is_dir(),
            "SEL4_KERNEL_SOURCE={} has no libsel4 folder: not a seL4 kernel source tree",
            root.display()
        );
        let autoconf = std::env::var_os("SEL4_AUTOCONF")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("include/plat/pc99/autoconf.h"));
        let config = Config::parse(&read(&autoconf));
        assert!(
            config.defined("CONFIG_ARCH_X86_64"),
            "{} does not define CONFIG_ARCH_X86_64: not the project's x86_64 config \
             (set SEL4_AUTOCONF to the project's kernel/autoconf.h)",
            autoconf.display()
        );
        Kernel { root, config }
    }

    fn file(&self, relative: &str) -> String {
        read(&self.root.join(relative))
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

/// `#define`s of an `autoconf.h`: name to value (1 when the define has no value).
#[derive(Clone)]
struct Config(HashMap<String, i64>);

impl Config {
    fn parse(text: &str) -> Config {
        let mut values = HashMap::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("#define") {
                continue;
            }
            let Some(name) = words.next() else { continue };
            let value = words.next().map_or(Some(1), parse_number);
            if let Some(value) = value {
                values.insert(name.to_string(), value);
            }
        }
        Config(values)
    }

    fn defined(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Evaluates a C preprocessor condition (`defined(X)`, `X > 1`, `!`, `&&`, `||`, ...).
    /// Unknown names are 0, as in the preprocessor.
    fn holds(&self, condition: &str) -> bool {
        let tokens = tokenize(condition);
        let mut parser = ConditionParser { tokens: &tokens, position: 0, config: self };
        let value = parser.or();
        assert_eq!(parser.position, tokens.len(), "cannot evaluate condition `{condition}`");
        value != 0
    }
}

fn parse_number(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches(['u', 'U', 'l', 'L']);
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()
    } else {
        text.parse().ok()
    }
}

fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let characters: Vec<char> = text.chars().collect();
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        if character.is_whitespace() {
            index += 1;
        } else if character.is_alphanumeric() || character == '_' {
            let start = index;
            while index < characters.len()
                && (characters[index].is_alphanumeric() || characters[index] == '_')
            {
                index += 1;
            }
            tokens.push(characters[start..index].iter().collect());
        } else {
            let pair: String = characters[index..(index + 2).min(characters.len())].iter().collect();
            if ["&&", "||", ">=", "<=", "==", "!="].contains(&pair.as_str()) {
                tokens.push(pair);
                index += 2;
            } else {
                tokens.push(character.to_string());
                index += 1;
            }
        }
    }
    tokens
}

struct ConditionParser<'a> {
    tokens: &'a [String],
    position: usize,
    config: &'a Config,
}

impl ConditionParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.position).map(String::as_str)
    }

    fn next(&mut self) -> String {
        let token = self.tokens[self.position].clone();
        self.position += 1;
        token
    }

    fn or(&mut self) -> i64 {
        let mut value = self.and();
        while self.peek() == Some("||") {
            self.next();
            let right = self.and();
            value = i64::from(value != 0 || right != 0);
        }
        value
    }

    fn and(&mut self) -> i64 {
        let mut value = self.comparison();
        while self.peek() == Some("&&") {
            self.next();
            let right = self.comparison();
            value = i64::from(value != 0 && right != 0);
        }
        value
    }

    fn comparison(&mut self) -> i64 {
        let left = self.unary();
        let operator = match self.peek() {
            Some(operator @ (">" | "<" | ">=" | "<=" | "==" | "!=")) => operator.to_string(),
            _ => return left,
        };
        self.next();
        let right = self.unary();
        i64::from(match operator.as_str() {
            ">" => left > right,
            "<" => left < right,
            ">=" => left >= right,
            "<=" => left <= right,
            "==" => left == right,
            _ => left != right,
        })
    }

    fn unary(&mut self) -> i64 {
        match self.next().as_str() {
            "!" => i64::from(self.unary() == 0),
            "(" => {
                let value = self.or();
                assert_eq!(self.next(), ")", "unbalanced parentheses");
                value
            }
            "defined" => {
                let parenthesised = self.peek() == Some("(");
                if parenthesised {
                    self.next();
                }
                let name = self.next();
                if parenthesised {
                    assert_eq!(self.next(), ")", "unbalanced defined()");
                }
                i64::from(self.config.defined(&name))
            }
            token => parse_number(token).unwrap_or_else(|| self.config.0.get(token).copied().unwrap_or(0)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A small C reader: preprocessor conditionals, enums, struct fields, `#define NAME number`.

/// Lines of `text` that survive the preprocessor conditionals under `config`, without comments.
fn active_lines(text: &str, config: &Config) -> Vec<String> {
    let text = strip_comments(text);
    let mut active = Vec::new();
    // Each level: (this branch is taken, some branch of this #if was taken).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let live = |stack: &[(bool, bool)]| stack.iter().all(|(taken, _)| *taken);
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(directive) = trimmed.strip_prefix('#') {
            let directive = directive.trim();
            let (word, rest) = directive.split_once(char::is_whitespace).unwrap_or((directive, ""));
            match word {
                "ifdef" => {
                    let taken = config.defined(rest.trim());
                    stack.push((taken, taken));
                }
                "ifndef" => {
                    let taken = !config.defined(rest.trim());
                    stack.push((taken, taken));
                }
                "if" => {
                    let taken = config.holds(rest);
                    stack.push((taken, taken));
                }
                "elif" => {
                    let (_, any) = stack.pop().expect("#elif without #if");
                    let taken = !any && config.holds(rest);
                    stack.push((taken, any || taken));
                }
                "else" => {
                    let (_, any) = stack.pop().expect("#else without #if");
                    stack.push((!any, true));
                }
                "endif" => {
                    stack.pop().expect("#endif without #if");
                }
                _ => {
                    if live(&stack) {
                        active.push(trimmed.to_string());
                    }
                }
            }
        } else if live(&stack) {
            active.push(trimmed.to_string());
        }
    }
    active
}

fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("unterminated comment");
        // Keep line structure.
        out.extend(rest[start..start + end].chars().filter(|c| *c == '\n'));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Every enumerator of every active enum in `files` (in order, so later files may refer to
/// earlier enumerators), plus `#define NAME <number>`s.
fn enumerators(files: &[String], config: &Config) -> HashMap<String, i64> {
    // Config values first: initializers such as `CONFIG_NUM_PRIORITIES - 1` refer to them.
    let mut values: HashMap<String, i64> = config.0.clone();
    for text in files {
        let lines = active_lines(text, config);
        let mut in_enum = false;
        let mut next = 0i64;
        for line in &lines {
            if let Some(define) = line.strip_prefix("#define") {
                let mut words = define.split_whitespace();
                if let (Some(name), Some(value)) = (words.next(), words.next()) {
                    if let Some(number) = parse_number(value) {
                        values.insert(name.to_string(), number);
                    }
                }
                continue;
            }
            if !in_enum {
                if line.contains("enum") && line.contains('{') {
                    in_enum = true;
                    next = 0;
                }
                continue;
            }
            if line.starts_with('}') {
                in_enum = false;
                continue;
            }
            for entry in line.split(',') {
                let entry = entry.trim();
                if entry.is_empty() || entry.starts_with("SEL4_FORCE_LONG_ENUM") {
                    continue;
                }
                let (name, value) = match entry.split_once('=') {
                    Some((name, expression)) => (name.trim(), evaluate(expression, &values)),
                    None => (entry, next),
                };
                values.insert(name.to_string(), value);
                next = value + 1;
            }
        }
    }
    values
}

/// A number, a known name, or `name - 1`.
fn evaluate(expression: &str, values: &HashMap<String, i64>) -> i64 {
    let expression = expression.trim();
    if let Some(number) = parse_number(expression) {
        return number;
    }
    if let Some((left, right)) = expression.split_once('-') {
        return evaluate(left, values) - evaluate(right, values);
    }
    *values.get(expression).unwrap_or_else(|| panic!("unknown name `{expression}` in an enum initializer"))
}

/// Field declarations (`type name;` or `type name[N];`) of the struct whose closing line
/// (`} ... name;`) names it.
fn struct_fields(text: &str, config: &Config, name: &str) -> Vec<(String, String, Option<String>)> {
    let lines = active_lines(text, config);
    let mut fields = Vec::new();
    let mut body = Vec::new();
    let mut pending = String::new();
    let mut depth = 0;
    for line in &lines {
        if line.starts_with("typedef struct") || line.starts_with("struct") {
            body.clear();
            pending.clear();
            depth = 1;
            continue;
        }
        if depth == 0 {
            continue;
        }
        if line.starts_with('}') {
            depth = 0;
            if line.contains(name) {
                fields = body.clone();
                break;
            }
            continue;
        }
        // A declaration may span lines (`seL4_Word rip, rsp,` ... `r15;`).
        pending.push_str(line);
        pending.push(' ');
        if let Some(declaration) = pending.trim().strip_suffix(';') {
            let declaration = declaration.trim().to_string();
            pending.clear();
            let declaration = declaration.as_str();
            let (declaration, length) = match declaration.split_once('[') {
                Some((before, after)) => (before.trim(), Some(after.trim_end_matches(']').to_string())),
                None => (declaration, None),
            };
            let split =
                declaration.rfind(|c: char| c.is_whitespace() || c == '*').expect("field declaration");
            let field_type = declaration[..=split].trim().to_string();
            let field_name = declaration[split + 1..].trim().to_string();
            body.push((field_type, field_name, length));
        }
    }
    assert!(!fields.is_empty(), "struct {name} not found");
    fields
}

// ---------------------------------------------------------------------------------------------
// The interface XML.

struct Method {
    interface: String,
    name: String,
    id: String,
    condition: String,
    /// (type, name) of the input parameters, in order.
    inputs: Vec<(String, String)>,
}

const INTERFACE_FILES: [&str; 3] = [
    "libsel4/include/interfaces/sel4.xml",
    "libsel4/sel4_arch_include/x86_64/interfaces/sel4arch.xml",
    "libsel4/arch_include/x86/interfaces/sel4arch.xml",
];

fn methods(kernel: &Kernel) -> Vec<Method> {
    let mut all = Vec::new();
    for file in INTERFACE_FILES {
        let text = kernel.file(file);
        let document =
            roxmltree::Document::parse(&text).unwrap_or_else(|error| panic!("parse {file}: {error}"));
        for method in document.descendants().filter(|node| node.has_tag_name("method")) {
            let interface = method
                .ancestors()
                .find(|node| node.has_tag_name("interface"))
                .and_then(|node| node.attribute("name"))
                .unwrap_or_default();
            let inputs = method
                .children()
                .filter(|node| node.has_tag_name("param"))
                .filter(|node| node.attribute("dir").unwrap_or("in") == "in")
                .map(|node| {
                    (
                        node.attribute("type").unwrap_or_default().to_string(),
                        node.attribute("name").unwrap_or_default().to_string(),
                    )
                })
                .collect();
            all.push(Method {
                interface: interface.to_string(),
                name: method.attribute("name").unwrap_or_default().to_string(),
                id: method.attribute("id").unwrap_or_default().to_string(),
                condition: method.attribute("condition").unwrap_or_default().to_string(),
                inputs,
            });
        }
    }
    all
}

/// Invocation labels as `tools/invocation_header_gen.py` assigns them: `InvalidInvocation` is
/// 0, then every method of sel4.xml, the x86_64 file and the x86 file in document order,
/// skipping those whose condition does not hold.
fn invocation_labels(kernel: &Kernel) -> HashMap<String, u64> {
    let mut labels = HashMap::new();
    let mut next = 1;
    for method in methods(kernel) {
        if method.condition.is_empty() || kernel.config.holds(&method.condition) {
            labels.insert(method.id.clone(), next);
            next += 1;
        }
    }
    labels
}

// ---------------------------------------------------------------------------------------------
// The checks.

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn syscall_numbers_match_syscall_xml() {
    let kernel = Kernel::load();
    let text = kernel.file("include/api/syscall.xml");
    let document = roxmltree::Document::parse(&text).expect("parse syscall.xml");
    // tools/syscall_header_gen.py: -1 downwards, api then debug, the counter moving past
    // every syscall whatever its condition.
    let mut numbers = HashMap::new();
    let mut next = -1i64;
    for section in ["api", "debug"] {
        let element = document
            .descendants()
            .find(|node| node.has_tag_name(section))
            .unwrap_or_else(|| panic!("syscall.xml has no <{section}>"));
        for syscall in element.descendants().filter(|node| node.has_tag_name("syscall")) {
            numbers.insert(syscall.attribute("name").unwrap().to_string(), next);
            next -= 1;
        }
    }
    for (name, syscall) in Syscall::ALL {
        assert_eq!(numbers.get(*name).copied(), Some(syscall.number()), "syscall {name}");
    }
    // The debug syscalls the binding names exist in the debug kernel (the Makefile's DEBUG=1
    // defines CONFIG_DEBUG_BUILD on the command line) and not in the release kernel.
    let debug = document
        .descendants()
        .filter(|node| node.has_tag_name("config"))
        .find(|node| node.descendants().any(|syscall| syscall.attribute("name") == Some("DebugPutChar")))
        .expect("DebugPutChar in syscall.xml");
    let condition = debug.attribute("condition").unwrap_or_default();
    let mut debug_config = kernel.config.clone();
    debug_config.0.insert("CONFIG_DEBUG_BUILD".to_string(), 1);
    assert!(debug_config.holds(condition), "DebugPutChar needs `{condition}`, which the debug config lacks");
    assert!(
        !kernel.config.holds(condition),
        "DebugPutChar exists in the release config (`{condition}` holds): clients could halt the machine"
    );
}

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn invocation_labels_match_the_interface_files() {
    let kernel = Kernel::load();
    let labels = invocation_labels(&kernel);
    for (id, label) in InvocationLabel::ALL {
        assert_eq!(labels.get(*id).copied(), Some(label.value()), "label of {id}");
    }
    assert_eq!(
        labels.len(),
        InvocationLabel::ALL.len(),
        "the binding's label list must cover every method in this config"
    );
}

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn object_types_match_the_headers() {
    let kernel = Kernel::load();
    let values = enumerators(
        &[
            kernel.file("libsel4/include/sel4/objecttype.h"),
            kernel.file("libsel4/sel4_arch_include/x86_64/sel4/sel4_arch/objecttype.h"),
            kernel.file("libsel4/arch_include/x86/sel4/arch/objecttype.h"),
        ],
        &kernel.config,
    );
    for (name, object_type) in ObjectType::ALL {
        assert_eq!(values.get(*name).copied(), Some(object_type.value() as i64), "object type {name}");
    }
}

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn object_sizes_and_paging_constants_match_the_headers() {
    let kernel = Kernel::load();
    let values = enumerators(
        &[kernel.file("libsel4/sel4_arch_include/x86_64/sel4/sel4_arch/constants.h")],
        &kernel.config,
    );
    let expect = [
        ("seL4_WordBits", i64::from(abi::WORD_BITS)),
        ("seL4_PageBits", i64::from(abi::PAGE_BITS)),
        ("seL4_SlotBits", i64::from(abi::SLOT_BITS)),
        ("seL4_TCBBits", i64::from(abi::TCB_BITS)),
        ("seL4_EndpointBits", i64::from(abi::ENDPOINT_BITS)),
        ("seL4_NotificationBits", i64::from(abi::NOTIFICATION_BITS)),
        ("seL4_PageTableBits", i64::from(abi::PAGE_TABLE_BITS)),
        ("seL4_PageDirBits", i64::from(abi::PAGE_DIRECTORY_BITS)),
        ("seL4_PDPTBits", i64::from(abi::PDPT_BITS)),
        ("seL4_PML4Bits", i64::from(abi::PML4_BITS)),
        ("seL4_LargePageBits", i64::from(abi::LARGE_PAGE_BITS)),
        ("seL4_MinUntypedBits", i64::from(abi::MIN_UNTYPED_BITS)),
        ("seL4_MaxUntypedBits", i64::from(abi::MAX_UNTYPED_BITS)),
    ];
    for (name, value) in expect {
        assert_eq!(values.get(name).copied(), Some(value), "{name}");
    }
    // The bits left after a missing level: one 9-bit index per level above the page offset.
    let page = i64::from(abi::PAGE_BITS);
    let index = i64::from(abi::PAGE_TABLE_BITS) - 3;
    assert_eq!(abi::bits_left::MISSING_PAGE_TABLE as i64, page + index);
    assert_eq!(abi::bits_left::MISSING_PAGE_DIRECTORY as i64, page + 2 * index);
    assert_eq!(abi::bits_left::MISSING_PDPT as i64, page + 3 * index);
}

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn fault_labels_match_shared_types_bf() {
    let kernel = Kernel::load();
    let lines = active_lines(
        &kernel.file("libsel4/arch_include/x86/sel4/arch/shared_types.bf").replace("--", "//"),
        &kernel.config,
    );
    let start = lines
        .iter()
        .position(|line| line.starts_with("tagged_union seL4_Fault seL4_FaultType"))
        .expect("seL4_Fault tagged union");
    let mut tags = HashMap::new();
    for line in &lines[start + 1..] {
        if line.starts_with('}') {
            break;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["tag", name, value] = words.as_slice() {
            tags.insert(name.to_string(), parse_number(value).unwrap() as u64);
        }
    }
    let expect = [
        ("NullFault", abi::fault_label::NULL_FAULT),
        ("CapFault", abi::fault_label::CAP_FAULT),
        ("UnknownSyscall", abi::fault_label::UNKNOWN_SYSCALL),
        ("UserException", abi::fault_label::USER_EXCEPTION),
        ("VMFault", abi::fault_label::VM_FAULT),
    ];
    for (name, label) in expect {
        assert_eq!(tags.get(name).copied(), Some(label), "fault label {name}");
    }
    assert_eq!(
        tags.len(),
        expect.len(),
        "a fault type the binding does not decode exists in this config: {tags:?}"
    );
}

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn fault_message_layouts_match_the_headers() {
    let kernel = Kernel::load();
    let values = enumerators(
        &[
            kernel.file("libsel4/include/sel4/shared_types.h"),
            kernel.file("libsel4/sel4_arch_include/x86_64/sel4/sel4_arch/constants.h"),
        ],
        &kernel.config,
    );
    let expect = [
        ("seL4_VMFault_IP", 0),
        ("seL4_VMFault_Addr", 1),
        ("seL4_VMFault_PrefetchFault", 2),
        ("seL4_VMFault_FSR", 3),
        ("seL4_VMFault_Length", abi::fault_message::VM_FAULT_LENGTH),
        ("seL4_UnknownSyscall_FaultIP", sel4::UnknownSyscall::FAULT_IP),
        ("seL4_UnknownSyscall_SP", sel4::UnknownSyscall::STACK_POINTER),
        ("seL4_UnknownSyscall_Syscall", 18),
        ("seL4_UnknownSyscall_Length", abi::fault_message::UNKNOWN_SYSCALL_LENGTH),
        ("seL4_UserException_FaultIP", 0),
        ("seL4_UserException_SP", 1),
        ("seL4_UserException_FLAGS", 2),
        ("seL4_UserException_Number", 3),
        ("seL4_UserException_Code", 4),
        ("seL4_UserException_Length", abi::fault_message::USER_EXCEPTION_LENGTH),
        ("seL4_CapFault_IP", abi::fault_message::CAP_FAULT_IP),
        ("seL4_CapFault_Addr", abi::fault_message::CAP_FAULT_ADDRESS),
        ("seL4_CapFault_InRecvPhase", abi::fault_message::CAP_FAULT_IN_RECEIVE_PHASE),
        ("seL4_CapFault_LookupFailureType", abi::fault_message::CAP_FAULT_LOOKUP_FAILURE_TYPE),
        ("seL4_CapFault_BitsLeft", 4),
        ("seL4_CapFault_GuardMismatch_GuardFound", 5),
        ("seL4_CapFault_GuardMismatch_BitsFound", 6),
    ];
    for (name, value) in expect {
        assert_eq!(values.get(name).copied(), Some(value as i64), "{name}");
    }
}

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn error_codes_and_lookup_failures_match_the_headers() {
    let kernel = Kernel::load();
    let values = enumerators(
        &[kernel.file("libsel4/include/sel4/errors.h"), kernel.file("libsel4/include/sel4/constants.h")],
        &kernel.config,
    );
    for (name, code) in ErrorCode::ALL {
        assert_eq!(values.get(*name).copied(), Some(*code as i64), "{name}");
    }
    assert_eq!(values["seL4_NumErrors"] as usize, ErrorCode::ALL.len() + 1);
    let lookup = [
        ("seL4_NoFailure", abi::lookup_failure::NO_FAILURE),
        ("seL4_InvalidRoot", abi::lookup_failure::INVALID_ROOT),
        ("seL4_MissingCapability", abi::lookup_failure::MISSING_CAPABILITY),
        ("seL4_DepthMismatch", abi::lookup_failure::DEPTH_MISMATCH),
        ("seL4_GuardMismatch", abi::lookup_failure::GUARD_MISMATCH),
    ];
    for (name, value) in lookup {
        assert_eq!(values.get(name).copied(), Some(value as i64), "{name}");
    }
}

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn message_info_layout_matches_shared_types_bf() {
    let kernel = Kernel::load();
    let text = kernel.file("libsel4/include/sel4/shared_types_64.bf");
    let start = text.find("block seL4_MessageInfo").expect("seL4_MessageInfo block");
    let body = &text[start..text[start..].find('}').unwrap() + start];
    // Fields are listed from the most significant bit down; the last ends at bit 0.
    let mut fields: Vec<(String, u32)> = Vec::new();
    for line in body.lines().skip(1) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["field", name, width] => fields.push((name.to_string(), width.parse().unwrap())),
            ["padding", width] => fields.push((String::new(), width.parse().unwrap())),
            _ => {}
        }
    }
    let total: u32 = fields.iter().map(|(_, width)| width).sum();
    assert_eq!(total, 64, "seL4_MessageInfo is one 64-bit word");
    let mut shift = 0;
    let mut layout = HashMap::new();
    for (name, width) in fields.iter().rev() {
        layout.insert(name.clone(), (shift, *width));
        shift += width;
    }
    let expect = [
        ("length", abi::message_info::LENGTH_BITS, MessageInfo::new(0, 0, 0, 1)),
        ("extraCaps", abi::message_info::EXTRA_CAPS_BITS, MessageInfo::new(0, 0, 1, 0)),
        ("capsUnwrapped", abi::message_info::CAPS_UNWRAPPED_BITS, MessageInfo::new(0, 1, 0, 0)),
        ("label", abi::message_info::LABEL_BITS, MessageInfo::new(1, 0, 0, 0)),
    ];
    for (name, width, one) in expect {
        let (shift, found_width) = layout[name];
        assert_eq!(found_width, width, "width of {name}");
        assert_eq!(one.to_word(), 1 << shift, "shift of {name}");
    }
}

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn ipc_buffer_layout_matches_shared_types_h() {
    let kernel = Kernel::load();
    let constants = enumerators(&[kernel.file("libsel4/include/sel4/constants.h")], &kernel.config);
    let max_length = constants["seL4_MsgMaxLength"];
    let extra_cap_bits = constants["seL4_MsgExtraCapBits"];
    assert_eq!(max_length as usize, abi::ipc_buffer::MSG_MAX_LENGTH);
    assert_eq!(((1i64 << extra_cap_bits) - 1) as usize, abi::ipc_buffer::MSG_MAX_EXTRA_CAPS);
    assert_eq!(constants["seL4_MsgLengthBits"] as u32, abi::message_info::LENGTH_BITS);
    assert_eq!(extra_cap_bits as u32, abi::message_info::EXTRA_CAPS_BITS);

    let fields =
        struct_fields(&kernel.file("libsel4/include/sel4/shared_types.h"), &kernel.config, "seL4_IPCBuffer");
    let mut offsets = HashMap::new();
    let mut offset = 0usize;
    for (_, name, length) in &fields {
        offsets.insert(name.clone(), offset);
        offset += match length.as_deref() {
            None => 1,
            Some("seL4_MsgMaxLength") => max_length as usize,
            Some("seL4_MsgMaxExtraCaps") => ((1i64 << extra_cap_bits) - 1) as usize,
            Some(other) => panic!("unknown array length {other} in seL4_IPCBuffer"),
        };
    }
    let expect = [
        ("tag", abi::ipc_buffer::TAG),
        ("msg", abi::ipc_buffer::MSG),
        ("userData", abi::ipc_buffer::USER_DATA),
        ("caps_or_badges", abi::ipc_buffer::CAPS_OR_BADGES),
        ("receiveCNode", abi::ipc_buffer::RECEIVE_CNODE),
        ("receiveIndex", abi::ipc_buffer::RECEIVE_INDEX),
        ("receiveDepth", abi::ipc_buffer::RECEIVE_DEPTH),
    ];
    for (name, word) in expect {
        assert_eq!(offsets.get(name).copied(), Some(word), "word of {name}");
    }
    assert_eq!(offset, abi::ipc_buffer::WORDS);
}

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn boot_info_layout_and_initial_caps_match_bootinfo_types_h() {
    let kernel = Kernel::load();
    let text = kernel.file("libsel4/include/sel4/bootinfo_types.h");
    let values = enumerators(std::slice::from_ref(&text), &kernel.config);
    for (name, slot) in abi::initial_slot::ALL {
        assert_eq!(values.get(*name).copied(), Some(*slot as i64), "{name}");
    }

    // Packed structs: sizes are the plain sums of the field sizes.
    let size_of = |field_type: &str| -> usize {
        match field_type {
            "seL4_Word" | "seL4_NodeId" | "seL4_Domain" | "seL4_SlotPos" | "seL4_IPCBuffer*" => 8,
            "seL4_Uint8" => 1,
            "seL4_SlotRegion" => 16,
            other => panic!("unknown boot info field type {other}"),
        }
    };
    let descriptor = struct_fields(&text, &kernel.config, "seL4_UntypedDesc");
    let descriptor_size: usize = descriptor.iter().map(|(t, _, _)| size_of(t)).sum();
    assert_eq!(descriptor_size, sel4::UNTYPED_DESCRIPTOR_SIZE);
    assert_eq!(
        descriptor.iter().map(|(_, n, _)| n.as_str()).collect::<Vec<_>>(),
        ["paddr", "padding1", "padding2", "sizeBits", "isDevice"]
    );

    let fields = struct_fields(&text, &kernel.config, "seL4_BootInfo");
    let names: Vec<&str> = fields.iter().map(|(_, name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "extraLen",
            "nodeID",
            "numNodes",
            "numIOPTLevels",
            "ipcBuffer",
            "empty",
            "sharedFrames",
            "userImageFrames",
            "userImagePaging",
            "ioSpaceCaps",
            "extraBIPages",
            "initThreadCNodeSizeBits",
            "initThreadDomain",
            "archInfo",
            "untyped",
            "untypedList",
        ],
        "seL4_BootInfo fields"
    );
    let header: usize = fields
        .iter()
        .filter(|(_, name, _)| name != "untypedList")
        .map(|(field_type, _, _)| size_of(&field_type.replace(' ', "")))
        .sum();
    assert_eq!(header, sel4::BOOT_INFO_HEADER_SIZE);
    let untyped_slots = kernel.config.0["CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS"] as usize;
    assert!(
        header + untyped_slots * descriptor_size <= abi::PAGE_SIZE,
        "the boot info no longer fits the page the binding reads"
    );
}

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn user_context_matches_types_h() {
    let kernel = Kernel::load();
    let fields = struct_fields(
        &kernel.file("libsel4/sel4_arch_include/x86_64/sel4/sel4_arch/types.h"),
        &kernel.config,
        "seL4_UserContext",
    );
    // One declaration lists many registers: `seL4_Word rip, rsp, ...;`.
    let names: Vec<String> = fields
        .iter()
        .flat_map(|(field_type, name, _)| {
            let all = format!("{field_type} {name}");
            all.trim_start_matches("seL4_Word")
                .split(',')
                .map(|register| register.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(names.len(), abi::USER_CONTEXT_WORDS);
    let context = UserContext::from_words(|index| index as u64);
    let ours = [
        ("rip", context.rip),
        ("rsp", context.rsp),
        ("rflags", context.rflags),
        ("rax", context.rax),
        ("rbx", context.rbx),
        ("rcx", context.rcx),
        ("rdx", context.rdx),
        ("rsi", context.rsi),
        ("rdi", context.rdi),
        ("rbp", context.rbp),
        ("r8", context.r8),
        ("r9", context.r9),
        ("r10", context.r10),
        ("r11", context.r11),
        ("r12", context.r12),
        ("r13", context.r13),
        ("r14", context.r14),
        ("r15", context.r15),
        ("tls_base", context.tls_base),
    ];
    for (index, name) in names.iter().enumerate() {
        let (our_name, our_index) = ours[index];
        assert_eq!((name.as_str(), index as u64), (our_name, our_index), "register {index}");
    }
}

// ---------------------------------------------------------------------------------------------
// Argument marshalling: for each invocation the binding implements, lay out the XML parameters
// as libsel4's `syscall_stub_gen.py` does (caps to extra caps in order; other parameters packed
// into words, each aligned to min(its size, a word)) and compare with the binding's request.

/// An argument value for a parameter, by name.
enum Argument {
    Word(u64),
    Cap(u64),
    Registers(UserContext),
}

fn cap_types(kernel: &Kernel) -> Vec<String> {
    let generator = kernel.file("libsel4/tools/syscall_stub_gen.py");
    generator
        .split("CapType(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_string))
        .collect()
}

fn bits_of(parameter_type: &str) -> u64 {
    match parameter_type {
        "seL4_Bool" => 1,
        "seL4_Uint8" => 8,
        "seL4_Uint16" => 16,
        "int" | "seL4_Uint32" => 32,
        "seL4_Word"
        | "long"
        | "seL4_Uint64"
        | "seL4_CapData_t"
        | "seL4_PrioProps_t"
        | "seL4_CapRights_t"
        | "seL4_X86_VMAttributes" => 64,
        other => panic!("parameter type {other} has no known size"),
    }
}

fn expected_request(
    caps: &[String],
    method: &Method,
    arguments: &HashMap<&str, Argument>,
) -> (Vec<u64>, Vec<u64>) {
    let mut words: Vec<u64> = Vec::new();
    let mut extra_caps = Vec::new();
    let mut bits_used = 0u64;
    for (parameter_type, name) in &method.inputs {
        let argument = arguments
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{}::{}: no argument for {name}", method.interface, method.name));
        if caps.contains(parameter_type) {
            let Argument::Cap(cap) = argument else { panic!("{name} is a cap parameter") };
            extra_caps.push(*cap);
            continue;
        }
        if parameter_type == "seL4_UserContext" {
            let Argument::Registers(context) = argument else { panic!("{name} is a register parameter") };
            bits_used = bits_used.next_multiple_of(64);
            for word in context.to_words() {
                words.push(word);
                bits_used += 64;
            }
            continue;
        }
        let Argument::Word(value) = argument else { panic!("{name} is a word parameter") };
        let size = bits_of(parameter_type);
        bits_used = bits_used.next_multiple_of(size.min(64));
        let word = (bits_used / 64) as usize;
        if words.len() <= word {
            words.resize(word + 1, 0);
        }
        words[word] |= value << (bits_used % 64);
        bits_used += size;
    }
    (words, extra_caps)
}

#[test]
#[ignore = "needs the seL4 kernel source; cargo xtask test runs it"]
fn invocation_arguments_match_the_interface_files() {
    use Argument::{Cap, Registers, Word};

    let kernel = Kernel::load();
    let caps = cap_types(&kernel);
    assert!(caps.iter().any(|cap| cap == "seL4_X64_PML4"), "cap types from syscall_stub_gen.py");
    let labels = invocation_labels(&kernel);
    let methods = methods(&kernel);
    let context = UserContext::from_words(|index| 0x100 + index as u64);

    let cases: Vec<(&str, &str, Request, HashMap<&str, Argument>)> = vec![
        (
            "seL4_Untyped",
            "Retype",
            Untyped::retype_request(ObjectType::Pdpt, 12, CNode::new(0x901), 0x11, 0x22, 0x33, 0x44),
            HashMap::from([
                ("type", Word(ObjectType::Pdpt.value())),
                ("size_bits", Word(12)),
                ("root", Cap(0x901)),
                ("node_index", Word(0x11)),
                ("node_depth", Word(0x22)),
                ("node_offset", Word(0x33)),
                ("num_objects", Word(0x44)),
            ]),
        ),
        (
            "seL4_TCB",
            "WriteRegisters",
            Tcb::write_registers_request(true, 0x5, abi::USER_CONTEXT_WORDS, &context),
            HashMap::from([
                ("resume_target", Word(1)),
                ("arch_flags", Word(0x5)),
                ("count", Word(abi::USER_CONTEXT_WORDS as u64)),
                ("regs", Registers(context)),
            ]),
        ),
        (
            "seL4_TCB",
            "ReadRegisters",
            Tcb::read_registers_request(true, abi::USER_CONTEXT_WORDS),
            HashMap::from([
                ("suspend_source", Word(1)),
                ("arch_flags", Word(0)),
                ("count", Word(abi::USER_CONTEXT_WORDS as u64)),
            ]),
        ),
        (
            "seL4_TCB",
            "Configure",
            Tcb::configure_request(&TcbConfiguration {
                fault_endpoint: CPtr::new(0x601),
                priority: 0x12,
                max_controlled_priority: 0x34,
                cspace_root: CNode::new(0x902),
                cspace_root_data: 0x77,
                vspace_root: Pml4::new(0x903),
                vspace_root_data: 0x88,
                ipc_buffer_address: 0x4000,
                ipc_buffer_frame: CPtr::new(0x904),
            }),
            HashMap::from([
                ("fault_ep", Word(0x601)),
                ("priority", Word(0x3412)),
                ("cspace_root", Cap(0x902)),
                ("cspace_root_data", Word(0x77)),
                ("vspace_root", Cap(0x903)),
                ("vspace_root_data", Word(0x88)),
                ("buffer", Word(0x4000)),
                ("bufferFrame", Cap(0x904)),
            ]),
        ),
        (
            "seL4_TCB",
            "SetPriority",
            Tcb::set_priority_request(0x42),
            HashMap::from([("priority", Word(0x42))]),
        ),
        ("seL4_TCB", "Suspend", Tcb::suspend_request(), HashMap::new()),
        ("seL4_TCB", "Resume", Tcb::resume_request(), HashMap::new()),
        (
            "seL4_CNode",
            "Revoke",
            CNode::revoke_request(0x55, 64),
            HashMap::from([("index", Word(0x55)), ("depth", Word(64))]),
        ),
        (
            "seL4_CNode",
            "Delete",
            CNode::delete_request(0x55, 64),
            HashMap::from([("index", Word(0x55)), ("depth", Word(64))]),
        ),
        (
            "seL4_CNode",
            "Copy",
            CNode::copy_request(0x10, 64, CNode::new(0x905), 0x20, 63, CapRights::ALL),
            HashMap::from([
                ("dest_index", Word(0x10)),
                ("dest_depth", Word(64)),
                ("src_root", Cap(0x905)),
                ("src_index", Word(0x20)),
                ("src_depth", Word(63)),
                ("rights", Word(7)),
            ]),
        ),
        (
            "seL4_CNode",
            "Mint",
            CNode::mint_request(0x10, 64, CNode::new(0x905), 0x20, 63, CapRights::READ, 0xbad),
            HashMap::from([
                ("dest_index", Word(0x10)),
                ("dest_depth", Word(64)),
                ("src_root", Cap(0x905)),
                ("src_index", Word(0x20)),
                ("src_depth", Word(63)),
                ("rights", Word(2)),
                ("badge", Word(0xbad)),
            ]),
        ),
        (
            "seL4_X86_PDPT",
            "Map",
            Pdpt::map_request(Pml4::new(0x906), 0x80_0000_0000, VmAttributes::WriteThrough),
            HashMap::from([("pml4", Cap(0x906)), ("vaddr", Word(0x80_0000_0000)), ("attr", Word(1))]),
        ),
        ("seL4_X86_PDPT", "Unmap", Pdpt::unmap_request(), HashMap::new()),
        (
            "seL4_X86_PageDirectory",
            "Map",
            PageDirectory::map_request(Pml4::new(0x906), 0x4000_0000, VmAttributes::CacheDisabled),
            HashMap::from([("vroot", Cap(0x906)), ("vaddr", Word(0x4000_0000)), ("attr", Word(2))]),
        ),
        ("seL4_X86_PageDirectory", "Unmap", PageDirectory::unmap_request(), HashMap::new()),
        (
            "seL4_X86_PageTable",
            "Map",
            PageTable::map_request(Pml4::new(0x906), 0x4020_0000, VmAttributes::WriteBack),
            HashMap::from([("vroot", Cap(0x906)), ("vaddr", Word(0x4020_0000)), ("attr", Word(0))]),
        ),
        ("seL4_X86_PageTable", "Unmap", PageTable::unmap_request(), HashMap::new()),
        (
            "seL4_X86_Page",
            "Map",
            Frame::map_request(
                Pml4::new(0x906),
                0x4000_1000,
                CapRights::READ_WRITE,
                VmAttributes::WriteCombining,
            ),
            HashMap::from([
                ("vroot", Cap(0x906)),
                ("vaddr", Word(0x4000_1000)),
                ("rights", Word(3)),
                ("attr", Word(4)),
            ]),
        ),
        ("seL4_X86_Page", "Unmap", Frame::unmap_request(), HashMap::new()),
        ("seL4_X86_Page", "GetAddress", Frame::address_request(), HashMap::new()),
        (
            "seL4_X86_ASIDPool",
            "Assign",
            AsidPool::assign_request(Pml4::new(0x907)),
            HashMap::from([("vroot", Cap(0x907))]),
        ),
        (
            "seL4_X86_IOPort",
            "Out8",
            IoPort::out8_request(0xf4, 0x10),
            HashMap::from([("port", Word(0xf4)), ("data", Word(0x10))]),
        ),
        ("seL4_X86_IOPort", "In8", IoPort::in8_request(0x60), HashMap::from([("port", Word(0x60))])),
        (
            "seL4_IRQControl",
            "GetIOAPIC",
            IrqControl::get_ioapic_request(CNode::new(0x908), 0x66, 64, 0x1, 0x2, true, false, 0x7),
            HashMap::from([
                ("root", Cap(0x908)),
                ("index", Word(0x66)),
                ("depth", Word(64)),
                ("ioapic", Word(0x1)),
                ("pin", Word(0x2)),
                ("level", Word(1)),
                ("polarity", Word(0)),
                ("vector", Word(0x7)),
            ]),
        ),
        ("seL4_IRQHandler", "Ack", IrqHandler::ack_request(), HashMap::new()),
        (
            "seL4_IRQHandler",
            "SetNotification",
            IrqHandler::set_notification_request(Notification::new(0x909)),
            HashMap::from([("notification", Cap(0x909))]),
        ),
        (
            "seL4_TCB",
            "BindNotification",
            Tcb::bind_notification_request(Notification::new(0x90a)),
            HashMap::from([("notification", Cap(0x90a))]),
        ),
    ];

    for (interface, name, request, arguments) in &cases {
        let method = methods
            .iter()
            .find(|method| method.interface == *interface && method.name == *name)
            .unwrap_or_else(|| panic!("{interface}::{name} is not in the interface files"));
        assert_eq!(
            labels.get(&method.id).copied(),
            Some(request.label().value()),
            "{interface}::{name}: label"
        );
        let (words, extra_caps) = expected_request(&caps, method, arguments);
        assert_eq!(request.words(), words.as_slice(), "{interface}::{name}: message words");
        let request_caps: Vec<u64> = request.caps().iter().map(|cap| cap.bits()).collect();
        assert_eq!(request_caps, extra_caps, "{interface}::{name}: extra caps");
        let info = request.message_info();
        assert_eq!(info.length() as usize, words.len(), "{interface}::{name}: length");
        assert_eq!(info.extra_caps() as usize, extra_caps.len(), "{interface}::{name}: caps");
    }
}
