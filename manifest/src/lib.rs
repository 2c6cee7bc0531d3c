//! System-image manifests: what goes into an image, parsed strictly and validated once.
//!
//! A manifest is the unit of building and of testing on seL4: it names the apps (a workspace crate or
//! a prebuilt static ELF), how many instances of each, their heap, stack, shared regions and frame
//! budgets, what happens when a budget is reached (stop, or evict into the image's compressed store),
//! the pager policy, and what a test run must show. Parsing is two steps, after Hubris's
//! xtask: a raw serde structure that rejects unknown fields, then [`Manifest::validate`] into a checked
//! model whose every error names the file and the field.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 4096;
/// Areas must end at or below this: seL4 5.0 reports x86_64 fault addresses in 32 bits.
pub const USER_ADDRESS_LIMIT: u64 = 1 << 32;
/// Bytes of a name: names travel in fixed fields of the boot image.
pub const NAME_LIMIT: usize = 32;
/// Instances of one app: as many clients as the root task runs at once (`MAX_CLIENTS` in
/// root-task/src/pager_mode.rs; one ASID pool holds 512 VSpaces).
pub const MAX_INSTANCES: u16 = 256;
/// Default stack: 64 KiB ending at 2.75 GiB, a guard page below it.
pub const DEFAULT_STACK_TOP: u64 = 0xB000_0000;
pub const DEFAULT_STACK_SIZE: u64 = 64 * 1024;
/// Default heap base, when a heap size is given without an address.
pub const DEFAULT_HEAP_BASE: u64 = 0x8000_0000;
/// Guest memory QEMU gets when the manifest names none.
pub const DEFAULT_MEMORY: u64 = 512 << 20;
/// Least guest memory: seL4, the root task (its 4 MiB heap included) and a few clients need it.
pub const MIN_MEMORY: u64 = 32 << 20;
/// Most guest memory an image may ask QEMU for (the machines running the tests are shared).
pub const MAX_MEMORY: u64 = 2 << 30;
/// Runs of one instance: the boot image carries the count in 16 bits.
pub const MAX_RUNS: u32 = u16::MAX as u32;
/// Most cap-copy slots an image may ask for: the root CNode has 2^18 slots in all.
pub const MAX_COPY_SLOTS: u32 = 1 << 18;
/// A client's time limit when its app names none, in milliseconds of guest time: ten times the
/// longest client run of the test images (a `stress.toml` client takes up to 2.8 s from setup to
/// exit when eight share this project's 2-core machine under TCG), and short enough that without
/// `-icount`, where guest time follows the host clock, a runaway client is stopped and the report
/// printed well before the runner's default timeout (120 s of wall time). Under `-icount` guest
/// time is instructions and runs several times slower than wall time, so an image meant to stop a
/// runaway client there sets a short `time_limit` of its own.
pub const DEFAULT_TIME_LIMIT_MS: u32 = 30_000;
/// The longest time limit: an hour.
pub const MAX_TIME_LIMIT_MS: u32 = 3_600_000;
/// The compressed store's byte budget when some app evicts and the manifest names none.
pub const DEFAULT_STORE: u64 = 4 << 20;
/// The largest store. The root task maps twice the store's budget for it at boot, one root-CNode
/// slot per 4 KiB page (2^16 slots in all): 32 MiB takes 16,384 of them.
pub const MAX_STORE: u64 = 32 << 20;
/// The smallest frame budget of an evicting app (or pool, for one without a budget): one x86
/// instruction may touch several pages at once (a string move whose source and destination each straddle a page boundary, the stack),
/// and a budget below what one instruction needs would evict a page the instruction still needs
/// on every fault and never finish it.
pub const MIN_EVICTING_BUDGET: u32 = 8;

/// A manifest error: the file, the field (a dotted path such as `app[1].stack`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub file: PathBuf,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.field, self.message)
        }
    }
}

impl std::error::Error for ManifestError {}

/// The manifest as written.
pub mod raw {
    use serde::Deserialize;

    /// A byte size: a number, or a string with a K, M or G suffix (powers of 1024).
    #[derive(Deserialize, Clone, Debug)]
    #[serde(untagged)]
    pub enum Size {
        Bytes(u64),
        Text(String),
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct Manifest {
        pub name: String,
        #[serde(default)]
        pub description: String,
        pub policy: Option<String>,
        pub fault_around_pages: Option<u32>,
        pub frames: Option<u32>,
        pub copy_slots: Option<u32>,
        pub memory: Option<Size>,
        pub timeout_seconds: Option<u64>,
        pub kernel: Option<String>,
        /// The compressed store's byte budget (dirty pages evicted by `evict` apps go there).
        pub store: Option<Size>,
        #[serde(default, rename = "region")]
        pub regions: Vec<Region>,
        #[serde(default, rename = "app")]
        pub apps: Vec<App>,
        #[serde(default)]
        pub expect: ImageExpectation,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct Region {
        pub name: String,
        pub size: Size,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct App {
        pub name: String,
        #[serde(rename = "crate")]
        pub crate_name: Option<String>,
        pub elf: Option<String>,
        pub instances: Option<u16>,
        pub runs: Option<u32>,
        pub heap: Option<Size>,
        pub heap_base: Option<u64>,
        pub stack: Option<Size>,
        pub stack_top: Option<u64>,
        pub frame_budget: Option<u32>,
        /// `"fifo"`, `"clock"` or `"none"`: what happens at the frame budget.
        pub evict: Option<String>,
        pub time_limit: Option<String>,
        pub argument: Option<String>,
        pub share_to: Option<Vec<String>>,
        /// The bench's floor client: its undefined-instruction faults are stepped over.
        pub bench_floor: Option<bool>,
        /// `"seed"`, or a table: `default` and overrides per area kind and attached region.
        pub policy: Option<AppPolicy>,
        /// Fault-around windows of this app's fault-around areas: one number for both, or
        /// `{ file = N, zero = M }`.
        pub fault_around: Option<FaultAround>,
        #[serde(default, rename = "attach")]
        pub attachments: Vec<Attachment>,
        #[serde(default)]
        pub expect: AppExpectation,
    }

    /// An app's policy: one name, or a table of names.
    #[derive(Deserialize, Debug)]
    #[serde(untagged)]
    pub enum AppPolicy {
        Name(String),
        Table(std::collections::BTreeMap<String, String>),
    }

    /// Fault-around windows: one for both kinds of page, or one each.
    #[derive(Deserialize, Debug)]
    #[serde(untagged)]
    pub enum FaultAround {
        Both(u32),
        Each {
            #[serde(default)]
            file: u32,
            #[serde(default)]
            zero: u32,
        },
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct Attachment {
        pub region: String,
        pub address: u64,
        #[serde(default)]
        pub writable: bool,
    }

    #[derive(Deserialize, Debug, Default)]
    #[serde(deny_unknown_fields)]
    pub struct AppExpectation {
        pub exit_code: Option<i32>,
        #[serde(default)]
        pub output: Vec<String>,
        pub stopped: Option<String>,
    }

    #[derive(Deserialize, Debug, Default)]
    #[serde(deny_unknown_fields)]
    pub struct ImageExpectation {
        #[serde(default)]
        pub output: Vec<String>,
        pub frames_returned: Option<bool>,
        /// Each table: key = value pairs that one `[stats]` line must all carry.
        #[serde(default)]
        pub stats: Vec<std::collections::BTreeMap<String, toml::Value>>,
    }
}

/// The pager policy an image runs (its default for every app and area).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Seed,
    Eager,
    FaultAround {
        pages: u32,
    },
    /// Any other named policy (zero-page, cow, large-pages).
    Named(PolicyName),
}

impl Policy {
    /// The named policy.
    pub fn name(self) -> PolicyName {
        match self {
            Policy::Seed => PolicyName::Seed,
            Policy::Eager => PolicyName::Eager,
            Policy::FaultAround { .. } => PolicyName::FaultAround,
            Policy::Named(name) => name,
        }
    }
}

/// A policy's name, as manifests write it: the ABI's one list of policies.
pub use abi::PolicyMode as PolicyName;

/// The policy `text` names, or an error at `field` listing every name.
fn parse_policy_name(check: &Checker<'_>, field: &str, text: &str) -> Result<PolicyName, ManifestError> {
    PolicyName::from_name(text).ok_or_else(|| {
        let known: Vec<String> = PolicyName::ALL.iter().map(|p| format!("{:?}", p.name())).collect();
        check.error(field, format!("{text:?} is not one of {}", known.join(", ")))
    })
}

/// The area kinds an app's policy table names, in the boot image's order.
pub const AREA_KINDS: [&str; 6] = ["text", "rodata", "data", "bss", "heap", "stack"];

/// An app's policy, resolved: a name per area kind ([`AREA_KINDS`] order) and per attachment
/// (in [`App::attachments`] order), and the fault-around windows of its fault-around areas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPolicy {
    pub kinds: [PolicyName; 6],
    pub attachments: Vec<PolicyName>,
    /// Pages after a faulting page holding file bytes, and after a faulting page of zeroes.
    pub fault_around: (u32, u32),
    /// The app names no policy and no windows of its own: all of it follows the image's policy
    /// ([`Manifest::set_policy`] changes it too).
    pub from_image: bool,
}

impl AppPolicy {
    /// The table of an app that names nothing of its own, under the image's `policy`: eager maps
    /// segments and the stack only, the heap and regions stay lazy (as the image-wide eager always
    /// did); every other policy applies everywhere.
    pub fn from_image(policy: Policy, attachments: usize) -> Self {
        let name = policy.name();
        let lazy = |lazy: bool| if name == PolicyName::Eager && lazy { PolicyName::Seed } else { name };
        let kinds = AREA_KINDS.map(|kind| lazy(kind == "heap"));
        let window = match policy {
            Policy::FaultAround { pages } => pages,
            _ => 4,
        };
        Self {
            kinds,
            attachments: vec![lazy(true); attachments],
            fault_around: (window, window),
            from_image: true,
        }
    }
}

/// The seL4 kernel build an image boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kernel {
    /// No `CONFIG_DEBUG_BUILD`, no `CONFIG_PRINTING`: no debug syscall exists for any client.
    #[default]
    Release,
    /// The debug build: kernel messages, and debug syscalls open to every client (one can halt
    /// the machine or write raw serial).
    Debug,
}

impl Kernel {
    /// The manifest's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Release => "release",
            Kernel::Debug => "debug",
        }
    }
}

/// What happens when a client reaches its frame budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Eviction {
    /// The client is stopped (`over its budget`).
    #[default]
    None,
    /// The page resident longest is evicted.
    Fifo,
    /// Clock by unmap sampling: the hand unmaps a page and keeps its frame; a page not touched
    /// again by the time the hand comes round is evicted.
    Clock,
}

impl Eviction {
    pub const ALL: [Eviction; 3] = [Self::None, Self::Fifo, Self::Clock];

    /// The manifest's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Fifo => "fifo",
            Self::Clock => "clock",
        }
    }

    /// Whether the client evicts at its budget instead of being stopped.
    pub fn evicts(self) -> bool {
        self != Self::None
    }
}

/// Where an app's ELF comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppSource {
    /// A crate under `apps/` built for the pager's target.
    Crate(String),
    /// A prebuilt static ELF64 executable (resolved against the manifest's folder).
    Elf(PathBuf),
}

/// A page-aligned address range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub base: u64,
    pub size: u64,
}

impl Range {
    pub fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// A named region shared by the apps that attach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    pub size: u64,
}

/// A region attached to an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Index into [`Manifest::regions`].
    pub region: usize,
    pub address: u64,
    pub writable: bool,
}

/// What a test run expects of one app.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppExpectation {
    /// The exit code of every instance (default 0), unless it is expected to be stopped.
    pub exit_code: i32,
    /// Lines every instance must print.
    pub output: Vec<String>,
    /// Text the pager's one-line report on stopping this app must contain.
    pub stopped: Option<String>,
}

/// What a test run expects of the whole image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageExpectation {
    pub output: Vec<String>,
    /// Each entry: `key=value` pairs (with a `scope`) that one `[stats]` line of the pager must all
    /// carry, e.g. `{ scope = "area", client = "sparse-bss#0", area = "segment-2", zero = 64 }`; a
    /// value `">N"` asks for a number above N instead of the exact text (`evictions = ">0"`).
    pub stats: Vec<Vec<(String, String)>>,
    /// The pager's frame accounting after every client exits equals its boot value.
    pub frames_returned: bool,
}

/// One app of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub source: AppSource,
    pub instances: u16,
    /// Times each instance runs: a run that exits with the expected code is followed by a fresh
    /// client for the same instance until this many have run.
    pub runs: u16,
    pub heap: Option<Range>,
    pub stack: Range,
    pub frame_budget: Option<u32>,
    /// What happens when a client reaches `frame_budget`: stop it, or evict one of its pages.
    pub evict: Eviction,
    /// Milliseconds of guest time a client of this app may run before it is stopped.
    pub time_limit_ms: u32,
    /// A string the app reads with the argument call (docs/app-abi.md); empty without one.
    pub argument: String,
    /// Indices into [`Manifest::apps`] of the apps this one may share areas into (`share_to`).
    pub share_to: Vec<usize>,
    pub attachments: Vec<Attachment>,
    pub policy: AppPolicy,
    /// `bench_floor = true`: the bench's floor client (`cargo xtask bench`), whose invalid-opcode
    /// faults (`ud2`) the pager answers by stepping over the instruction, as seL4's own fault
    /// benchmark does; every other app's are stopped.
    pub bench_floor: bool,
    pub expect: AppExpectation,
}

/// A validated manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub file: PathBuf,
    pub name: String,
    pub description: String,
    pub policy: Policy,
    /// Frames the pager may retype for clients, in all.
    pub frames: u32,
    /// At most this many cap-copy slots (one per page mapped into a client); `None`: as many as
    /// the root CNode has room for, up to four per pool frame.
    pub copy_slots: Option<u32>,
    /// Bytes of guest memory QEMU gets (`-m`), a multiple of 1 MiB.
    pub memory: u64,
    pub timeout_seconds: u64,
    /// The kernel build to boot.
    pub kernel: Kernel,
    /// Bytes the compressed store may hold, in all (the dirty pages evicting apps evicted); `None`
    /// when no app evicts.
    pub store: Option<u64>,
    pub regions: Vec<Region>,
    pub apps: Vec<App>,
    pub expect: ImageExpectation,
}

struct Checker<'a> {
    file: &'a Path,
}

impl Checker<'_> {
    /// Resolves an app's policy: a kind's own entry, else the app's `default` (or its one name),
    /// else the image's policy. A default of `eager` maps segments and the stack only: the heap and
    /// regions stay lazy unless named `eager` themselves (as the image-wide `eager` always did).
    #[allow(clippy::too_many_arguments)]
    fn app_policy(
        &self,
        field: &str,
        raw: Option<&raw::AppPolicy>,
        fault_around: Option<&raw::FaultAround>,
        image: Policy,
        image_window: u32,
        has_heap: bool,
        regions: &[&str],
    ) -> Result<AppPolicy, ManifestError> {
        let field = format!("{field}.policy");
        let mut default = image.name();
        let mut named: Vec<(String, PolicyName)> = Vec::new();
        match raw {
            None => {}
            Some(raw::AppPolicy::Name(name)) => default = parse_policy_name(self, &field, name)?,
            Some(raw::AppPolicy::Table(table)) => {
                for (key, name) in table {
                    let at = format!("{field}.{key}");
                    let policy = parse_policy_name(self, &at, name)?;
                    if key == "default" {
                        default = policy;
                    } else if AREA_KINDS.contains(&key.as_str()) || regions.contains(&key.as_str()) {
                        if key == "heap" && !has_heap {
                            return Err(self.error(at, "this app has no heap"));
                        }
                        named.push((key.clone(), policy));
                    } else {
                        return Err(self.error(
                            at,
                            format!(
                                "{key:?} is not an area kind (default, text, rodata, data, bss, heap, stack) \
                                 or a region this app attaches"
                            ),
                        ));
                    }
                }
            }
        }
        let lazy_unless_named = |kind: &str| matches!(kind, "heap") || !AREA_KINDS.contains(&kind);
        let resolve = |kind: &str| {
            named.iter().find(|(k, _)| k == kind).map(|(_, p)| *p).unwrap_or(
                if default == PolicyName::Eager && lazy_unless_named(kind) {
                    PolicyName::Seed
                } else {
                    default
                },
            )
        };
        let kinds = AREA_KINDS.map(resolve);
        let attachments = regions.iter().map(|name| resolve(name)).collect();
        let window = |pages: u32, at: &str| {
            if pages <= 64 {
                Ok(pages)
            } else {
                Err(self.error(
                    format!("{}.{at}", field.trim_end_matches(".policy")),
                    format!("{pages} is not in 0..=64"),
                ))
            }
        };
        let windows_given = fault_around.is_some();
        let fault_around = match fault_around {
            None => (image_window, image_window),
            Some(raw::FaultAround::Both(pages)) => {
                (window(*pages, "fault_around")?, window(*pages, "fault_around")?)
            }
            Some(raw::FaultAround::Each { file, zero }) => {
                (window(*file, "fault_around.file")?, window(*zero, "fault_around.zero")?)
            }
        };
        let windowed = kinds.iter().chain(&attachments).any(|p| *p == PolicyName::FaultAround);
        if windows_given && !windowed {
            return Err(self.error(
                format!("{}.fault_around", field.trim_end_matches(".policy")),
                "only applies where the app's policy is \"fault-around\"",
            ));
        }
        let from_image = raw.is_none() && !windows_given;
        Ok(AppPolicy { kinds, attachments, fault_around, from_image })
    }

    /// An app's `evict`: a known mode, and for fifo and clock room to evict in: a frame budget
    /// (or, without one, the image's pool of `frames`, where it evicts when the pool is used up)
    /// large enough that one instruction's pages fit in it.
    fn eviction(
        &self,
        field: &str,
        text: Option<&str>,
        budget: Option<u32>,
        frames: u32,
    ) -> Result<Eviction, ManifestError> {
        let evict = match text {
            None => Eviction::None,
            Some(text) => Eviction::ALL.into_iter().find(|e| e.name() == text).ok_or_else(|| {
                self.error(
                    format!("{field}.evict"),
                    format!("{text:?} is not one of \"fifo\", \"clock\", \"none\""),
                )
            })?,
        };
        let (room, at) = match budget {
            Some(budget) => (budget, format!("{field}.frame_budget")),
            None => (frames, String::from("frames")),
        };
        if evict.evicts() && room < MIN_EVICTING_BUDGET {
            return Err(self.error(
                at,
                format!(
                    "{room} is below {MIN_EVICTING_BUDGET}, the fewest frames an app that evicts may have: \
                     one instruction may need several pages at once"
                ),
            ));
        }
        Ok(evict)
    }

    /// The image's `store`: only where some app evicts (then [`DEFAULT_STORE`] unless named), a
    /// size of at most [`MAX_STORE`] and a quarter of the guest memory (the root task maps twice it).
    fn store(
        &self,
        raw: Option<&raw::Size>,
        apps: &[App],
        memory: u64,
    ) -> Result<Option<u64>, ManifestError> {
        let evicting = apps.iter().any(|app| app.evict.evicts());
        let bytes = match (raw, evicting) {
            (None, false) => return Ok(None),
            (Some(_), false) => {
                return Err(self.error(
                    "store",
                    "no app evicts (`evict = \"fifo\"` or `\"clock\"`), so nothing would ever be stored",
                ))
            }
            (None, true) => DEFAULT_STORE,
            (Some(size), true) => self.size("store", size)?,
        };
        if bytes > MAX_STORE || bytes > memory / 4 {
            return Err(self.error(
                "store",
                format!(
                    "{bytes} bytes is more than {}M or a quarter of the guest memory ({}M): the pager keeps \
                     the store in memory of its own, twice the store's size",
                    MAX_STORE >> 20,
                    memory >> 20
                ),
            ));
        }
        Ok(Some(bytes))
    }

    fn error(&self, field: impl Into<String>, message: impl Into<String>) -> ManifestError {
        ManifestError { file: self.file.to_path_buf(), field: field.into(), message: message.into() }
    }

    fn name(&self, field: &str, name: &str) -> Result<String, ManifestError> {
        let valid = !name.is_empty()
            && name.len() <= NAME_LIMIT
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(self.error(
                field,
                format!("{name:?} must be 1 to {NAME_LIMIT} characters of letters, digits, '-' or '_'"),
            ));
        }
        Ok(name.to_owned())
    }

    fn size(&self, field: &str, size: &raw::Size) -> Result<u64, ManifestError> {
        let bytes = match size {
            raw::Size::Bytes(n) => Some(*n),
            raw::Size::Text(text) => parse_size(text),
        };
        let bytes = bytes.ok_or_else(|| {
            self.error(field, format!("{size:?} is not a size like 4096, \"16K\" or \"2M\""))
        })?;
        if bytes == 0 || !bytes.is_multiple_of(PAGE_SIZE) {
            return Err(self.error(
                field,
                format!("{bytes} bytes is not a positive multiple of the page size ({PAGE_SIZE})"),
            ));
        }
        Ok(bytes)
    }

    /// Guest memory: a size in whole MiB within [`MIN_MEMORY`]..=[`MAX_MEMORY`].
    fn memory(&self, field: &str, size: &raw::Size) -> Result<u64, ManifestError> {
        let bytes = match size {
            raw::Size::Bytes(n) => Some(*n),
            raw::Size::Text(text) => parse_size(text),
        };
        let bytes = bytes
            .ok_or_else(|| self.error(field, format!("{size:?} is not a size like \"128M\" or \"1G\"")))?;
        if !bytes.is_multiple_of(1 << 20) || !(MIN_MEMORY..=MAX_MEMORY).contains(&bytes) {
            return Err(self.error(
                field,
                format!(
                    "{bytes} bytes is not a whole number of MiB from {}M to {}M (QEMU's -m)",
                    MIN_MEMORY >> 20,
                    MAX_MEMORY >> 20
                ),
            ));
        }
        Ok(bytes)
    }

    fn address(&self, field: &str, address: u64) -> Result<u64, ManifestError> {
        if !address.is_multiple_of(PAGE_SIZE) {
            return Err(self.error(field, format!("{address:#x} is not page aligned")));
        }
        Ok(address)
    }

    fn range(&self, field: &str, base: u64, size: u64) -> Result<Range, ManifestError> {
        match base.checked_add(size) {
            Some(end) if base >= PAGE_SIZE && end <= USER_ADDRESS_LIMIT => Ok(Range { base, size }),
            _ => Err(self.error(
                field,
                format!(
                    "{base:#x}..{:#x} lies outside {PAGE_SIZE:#x}..{USER_ADDRESS_LIMIT:#x} (seL4 5.0 reports fault addresses in 32 bits)",
                    base.saturating_add(size)
                ),
            )),
        }
    }
}

/// A duration like "2s", "500ms" or "1m", in milliseconds.
fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = if let Some(digits) = text.strip_suffix("ms") {
        (digits, 1)
    } else if let Some(digits) = text.strip_suffix('s') {
        (digits, 1000)
    } else if let Some(digits) = text.strip_suffix('m') {
        (digits, 60_000)
    } else {
        return None;
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(unit)
}

fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, 'K' | 'k') => (&text[..i], 1 << 10),
        (i, 'M' | 'm') => (&text[..i], 1 << 20),
        (i, 'G' | 'g') => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(unit)
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn load(file: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(file).map_err(|e| ManifestError {
            file: file.to_path_buf(),
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(file, &text)
    }

    /// Parses and validates manifest text; `file` names it in errors and anchors relative ELF paths.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ManifestError> {
        let raw: raw::Manifest = toml::from_str(text).map_err(|e| ManifestError {
            file: file.to_path_buf(),
            field: String::new(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        Self::validate(file, raw)
    }

    /// Checks a raw manifest.
    pub fn validate(file: &Path, raw: raw::Manifest) -> Result<Self, ManifestError> {
        let check = Checker { file };
        let name = check.name("name", &raw.name)?;
        let policy_name = parse_policy_name(&check, "policy", raw.policy.as_deref().unwrap_or("seed"))?;
        let policy = match (policy_name.name(), raw.fault_around_pages) {
            ("fault-around", pages) => {
                let pages = pages.unwrap_or(4);
                if !(1..=64).contains(&pages) {
                    return Err(check.error("fault_around_pages", format!("{pages} is not in 1..=64")));
                }
                Policy::FaultAround { pages }
            }
            (_, Some(_)) => {
                return Err(check.error("fault_around_pages", "only applies with policy = \"fault-around\""))
            }
            _ => match policy_name {
                PolicyName::Seed => Policy::Seed,
                PolicyName::Eager => Policy::Eager,
                other => Policy::Named(other),
            },
        };
        let image_window = match policy {
            Policy::FaultAround { pages } => pages,
            _ => 4,
        };
        let frames = raw.frames.unwrap_or(4096);
        if frames == 0 {
            return Err(check.error("frames", "must be at least 1"));
        }
        let copy_slots = match raw.copy_slots {
            Some(slots) if !(1..=MAX_COPY_SLOTS).contains(&slots) => {
                return Err(check.error(
                    "copy_slots",
                    format!("{slots} is not in 1..={MAX_COPY_SLOTS} (the root CNode has 2^18 slots)"),
                ))
            }
            slots => slots,
        };
        let memory = match &raw.memory {
            Some(size) => check.memory("memory", size)?,
            None => DEFAULT_MEMORY,
        };
        let timeout_seconds = raw.timeout_seconds.unwrap_or(120);
        let kernel = match raw.kernel.as_deref() {
            None | Some("release") => Kernel::Release,
            Some("debug") => Kernel::Debug,
            Some(other) => {
                return Err(check.error("kernel", format!("{other:?} is not one of \"release\", \"debug\"")))
            }
        };
        // Checked once every app's name is known.
        let app_names: Vec<&str> = raw.apps.iter().map(|app| app.name.as_str()).collect();
        let mut share_targets = Vec::new();
        for (i, app) in raw.apps.iter().enumerate() {
            let mut targets = Vec::new();
            for (j, target) in app.share_to.iter().flatten().enumerate() {
                let field = format!("app[{i}].share_to[{j}]");
                let index = app_names
                    .iter()
                    .position(|name| name == target)
                    .ok_or_else(|| check.error(&field, format!("{target:?} is not an app of this image")))?;
                if targets.contains(&index) {
                    return Err(check.error(&field, format!("{target:?} is named twice")));
                }
                targets.push(index);
            }
            share_targets.push(targets);
        }

        let mut regions = Vec::new();
        for (i, region) in raw.regions.iter().enumerate() {
            let field = format!("region[{i}]");
            let name = check.name(&format!("{field}.name"), &region.name)?;
            if regions.iter().any(|r: &Region| r.name == name) {
                return Err(
                    check.error(format!("{field}.name"), format!("region {name:?} is declared twice"))
                );
            }
            let size = check.size(&format!("{field}.size"), &region.size)?;
            check.range(&format!("{field}.size"), PAGE_SIZE, size)?;
            regions.push(Region { name, size });
        }

        if raw.apps.is_empty() {
            return Err(check.error("app", "an image needs at least one [[app]]"));
        }
        let mut apps = Vec::new();
        let mut names = BTreeSet::new();
        for ((i, app), share_to) in raw.apps.into_iter().enumerate().zip(share_targets) {
            let field = format!("app[{i}]");
            let name = check.name(&format!("{field}.name"), &app.name)?;
            if !names.insert(name.clone()) {
                return Err(check.error(format!("{field}.name"), format!("app {name:?} is declared twice")));
            }
            let source = match (app.crate_name, app.elf) {
                (Some(krate), None) => AppSource::Crate(check.name(&format!("{field}.crate"), &krate)?),
                (None, Some(elf)) => {
                    let folder = file.parent().unwrap_or(Path::new("."));
                    AppSource::Elf(folder.join(elf))
                }
                _ => {
                    return Err(
                        check.error(field, "give exactly one of `crate` (an app in apps/) or `elf` (a path)")
                    )
                }
            };
            let instances = app.instances.unwrap_or(1);
            if !(1..=MAX_INSTANCES).contains(&instances) {
                return Err(check.error(
                    format!("{field}.instances"),
                    format!("{instances} is not in 1..={MAX_INSTANCES}"),
                ));
            }
            let runs = app.runs.unwrap_or(1);
            if !(1..=MAX_RUNS).contains(&runs) {
                return Err(check.error(format!("{field}.runs"), format!("{runs} is not in 1..={MAX_RUNS}")));
            }
            if runs > 1 && !app.attachments.is_empty() {
                return Err(check.error(
                    format!("{field}.runs"),
                    "an app that attaches a region runs once: a region lives only while some client has \
                     it attached, so a later run could find it gone",
                ));
            }
            let runs = runs as u16;
            let stack_size = match &app.stack {
                Some(size) => check.size(&format!("{field}.stack"), size)?,
                None => DEFAULT_STACK_SIZE,
            };
            let stack_top =
                check.address(&format!("{field}.stack_top"), app.stack_top.unwrap_or(DEFAULT_STACK_TOP))?;
            // Saturating: a size near 2^64 ("18446744073709547520") must fail the range check below,
            // not overflow (a panic in debug builds, a wrapped, accepted stack in release ones).
            let stack_base = stack_top.saturating_sub(stack_size.saturating_add(PAGE_SIZE));
            check.range(&format!("{field}.stack_top"), stack_base, stack_top - stack_base)?;
            let stack = Range { base: stack_top - stack_size, size: stack_size };
            let heap = match app.heap {
                Some(size) => {
                    let size = check.size(&format!("{field}.heap"), &size)?;
                    let base = check
                        .address(&format!("{field}.heap_base"), app.heap_base.unwrap_or(DEFAULT_HEAP_BASE))?;
                    let heap = check.range(&format!("{field}.heap"), base, size)?;
                    if heap.base < stack.end() && stack_base < heap.end() {
                        return Err(
                            check.error(format!("{field}.heap"), "overlaps the stack or its guard page")
                        );
                    }
                    Some(heap)
                }
                None if app.heap_base.is_some() => {
                    return Err(check.error(format!("{field}.heap_base"), "given without a heap size"))
                }
                None => None,
            };
            let time_limit_ms = match &app.time_limit {
                None => DEFAULT_TIME_LIMIT_MS,
                Some(text) => match parse_duration_ms(text) {
                    Some(ms) if (1..=u64::from(MAX_TIME_LIMIT_MS)).contains(&ms) => ms as u32,
                    _ => {
                        return Err(check.error(
                            format!("{field}.time_limit"),
                            format!(
                            "{text:?} is not a duration like \"2s\", \"500ms\" or \"1m\" from 1 ms to {} m",
                            MAX_TIME_LIMIT_MS / 60_000
                        ),
                        ))
                    }
                },
            };
            let argument = app.argument.clone().unwrap_or_default();
            if argument.len() > abi::ARGUMENT_LIMIT || argument.contains('\0') {
                return Err(check.error(
                    format!("{field}.argument"),
                    format!("is longer than {} bytes or holds a NUL", abi::ARGUMENT_LIMIT),
                ));
            }
            if app.frame_budget == Some(0) {
                return Err(check.error(format!("{field}.frame_budget"), "must be at least 1"));
            }
            let evict = check.eviction(&field, app.evict.as_deref(), app.frame_budget, frames)?;
            let mut attachments: Vec<Attachment> = Vec::new();
            for (j, attach) in app.attachments.iter().enumerate() {
                let at = format!("{field}.attach[{j}]");
                let region = regions.iter().position(|r| r.name == attach.region).ok_or_else(|| {
                    check.error(format!("{at}.region"), format!("no [[region]] named {:?}", attach.region))
                })?;
                let address = check.address(&format!("{at}.address"), attach.address)?;
                let range = check.range(&format!("{at}.address"), address, regions[region].size)?;
                let clashes = |other: Range| range.base < other.end() && other.base < range.end();
                let stack_and_guard = Range { base: stack_base, size: stack_top - stack_base };
                if clashes(stack_and_guard) || heap.is_some_and(clashes) {
                    return Err(check.error(format!("{at}.address"), "overlaps the heap or stack"));
                }
                for other in &attachments {
                    if clashes(Range { base: other.address, size: regions[other.region].size }) {
                        return Err(check.error(format!("{at}.address"), "overlaps another attachment"));
                    }
                }
                attachments.push(Attachment { region, address, writable: attach.writable });
            }
            let names: Vec<&str> = attachments.iter().map(|a| regions[a.region].name.as_str()).collect();
            let app_policy = check.app_policy(
                &field,
                app.policy.as_ref(),
                app.fault_around.as_ref(),
                policy,
                image_window,
                heap.is_some(),
                &names,
            )?;
            let expect = AppExpectation {
                exit_code: app.expect.exit_code.unwrap_or(0),
                output: app.expect.output,
                stopped: app.expect.stopped,
            };
            if expect.stopped.is_some() && app.expect.exit_code.is_some() {
                return Err(
                    check.error(format!("{field}.expect"), "an app is either stopped or exits, not both")
                );
            }
            if expect.stopped.is_some() && runs > 1 {
                return Err(check.error(
                    format!("{field}.runs"),
                    "an app expected to be stopped runs once: a stopped run is not restarted",
                ));
            }
            apps.push(App {
                name,
                source,
                instances,
                runs,
                heap,
                stack,
                frame_budget: app.frame_budget,
                evict,
                time_limit_ms,
                argument,
                share_to,
                attachments,
                policy: app_policy,
                bench_floor: app.bench_floor.unwrap_or(false),
                expect,
            });
        }
        let store = check.store(raw.store.as_ref(), &apps, memory)?;
        let mut stats = Vec::new();
        for (i, table) in raw.expect.stats.into_iter().enumerate() {
            let field = format!("expect.stats[{i}]");
            if !table.contains_key("scope") {
                return Err(check.error(field, "needs a `scope` (total, client or area)"));
            }
            let mut pairs = Vec::new();
            for (key, value) in table {
                let text = match value {
                    toml::Value::String(text) => {
                        let bound = text.strip_prefix('>').map(|bound| bound.trim().parse::<f64>());
                        if bound.is_some_and(|bound| !bound.is_ok_and(f64::is_finite)) {
                            return Err(check.error(
                                format!("{field}.{key}"),
                                format!("{text:?} is not \">N\" (more than a number N, e.g. \">0\")"),
                            ));
                        }
                        text
                    }
                    toml::Value::Integer(n) => n.to_string(),
                    toml::Value::Float(x) => format!("{x:.2}"),
                    other => {
                        return Err(check
                            .error(format!("{field}.{key}"), format!("{other} is not a string or number")))
                    }
                };
                pairs.push((key, text));
            }
            stats.push(pairs);
        }
        let expect = ImageExpectation {
            stats,
            output: raw.expect.output,
            frames_returned: raw.expect.frames_returned.unwrap_or(true),
        };
        Ok(Self {
            file: file.to_path_buf(),
            name,
            description: raw.description,
            policy,
            frames,
            copy_slots,
            memory,
            timeout_seconds,
            kernel,
            store,
            regions,
            apps,
            expect,
        })
    }

    /// Runs the image under another policy: the image's, and every app's that names none of its own.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
        for app in self.apps.iter_mut().filter(|app| app.policy.from_image) {
            app.policy = AppPolicy::from_image(policy, app.attachments.len());
        }
    }

    /// Client instances in all (the most clients alive at once).
    pub fn instance_count(&self) -> usize {
        self.apps.iter().map(|a| usize::from(a.instances)).sum()
    }

    /// Client runs in all: every instance of every app, as many times as its `runs`.
    pub fn run_count(&self) -> u64 {
        self.apps.iter().map(|a| u64::from(a.instances) * u64::from(a.runs)).sum()
    }
}
