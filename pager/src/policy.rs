//! Pager policies: the choices around the seed's fault cases, not the cases themselves.
//!
//! The fault cases (image frame, copy, zero, mixed, pagemap hit) are fixed by the ELF semantics and live
//! in the pager; a policy only chooses *when* a page goes through them, *how many* go at once, and
//! whether a page is first served read-only from a frame others share (the shared zero frame, or the
//! image's own frame) until its first write. That keeps a policy from changing what a client reads.
//!
//! Every area carries an [`AreaPolicy`]: one [`PageRule`] for its pages that hold file bytes and one
//! for its pages of zeroes, so a writable segment's `.data` part and its `.bss` part can differ. The
//! pager's [`Policy`] gives a new area its rules; [`AppPolicy`] (a manifest's per-app table) overrides
//! them per area kind (text, rodata, data, bss, heap, stack, each attached region).

use crate::area::{AreaKind, Backend};
use crate::Rights;

/// A named policy, as manifests and the boot image name it: the ABI's one list of them.
pub use abi::PolicyMode as Mode;

/// What happens to one kind of page of an area.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PageRule {
    pub mode: Mode,
    /// Following pages resolved with a fault on one of these (0..=64).
    pub around: u8,
}

impl PageRule {
    pub const SEED: Self = Self { mode: Mode::Seed, around: 0 };

    /// The rule of `mode`, with `around` pages of fault-around when the mode is fault-around.
    pub const fn new(mode: Mode, around: u8) -> Self {
        Self { mode, around: if matches!(mode, Mode::FaultAround) { around } else { 0 } }
    }
}

/// An area's rules: for its pages holding file bytes (a segment's pages below its file end) and for
/// its pages of zeroes (a segment's `.bss` pages, every anonymous page).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AreaPolicy {
    pub file: PageRule,
    pub zero: PageRule,
}

impl AreaPolicy {
    pub const SEED: Self = Self { file: PageRule::SEED, zero: PageRule::SEED };

    /// The same rule for every page.
    pub const fn uniform(rule: PageRule) -> Self {
        Self { file: rule, zero: rule }
    }

    /// The name reports give the area's policy: the mode, or `data+bss` modes joined when they differ.
    pub fn describe(&self) -> PolicyName {
        PolicyName(*self)
    }
}

/// An [`AreaPolicy`] as a report writes it: `seed`, or `cow/zero-page` (file pages / zero pages).
pub struct PolicyName(AreaPolicy);

impl core::fmt::Display for PolicyName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let AreaPolicy { file, zero } = self.0;
        if file.mode == zero.mode {
            f.write_str(file.mode.name())
        } else {
            write!(f, "{}/{}", file.mode.name(), zero.mode.name())
        }
    }
}

/// The area kinds a manifest names in a per-app policy table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// An executable segment (`R-X`).
    Text,
    /// A read-only, non-executable segment (`R--`).
    Rodata,
    /// A writable segment's pages that hold file bytes.
    Data,
    /// A writable segment's pages past its file end (and a read-only segment's, which is rare).
    Bss,
    Heap,
    Stack,
}

impl PolicyKind {
    /// The kinds, in the order [`AppPolicy::kinds`] keeps them (and the boot image writes them).
    pub const ALL: [PolicyKind; 6] =
        [Self::Text, Self::Rodata, Self::Data, Self::Bss, Self::Heap, Self::Stack];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Rodata => "rodata",
            Self::Data => "data",
            Self::Bss => "bss",
            Self::Heap => "heap",
            Self::Stack => "stack",
        }
    }

    /// The kind of a segment's file pages, by its rights: writable is data, else executable is
    /// text, else rodata.
    pub const fn of_segment(rights: Rights) -> Self {
        if rights.write {
            Self::Data
        } else if rights.execute {
            Self::Text
        } else {
            Self::Rodata
        }
    }
}

/// One app's policy table, fully resolved: a rule per [`PolicyKind`] and per attached region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppPolicy {
    /// Rules in [`PolicyKind::ALL`] order.
    pub kinds: [PageRule; 6],
    /// `(region number, rule)` of each attached region.
    pub regions: heapless::Vec<(u16, PageRule), 16>,
}

impl AppPolicy {
    /// A table from the boot image's numbers ([`abi::policy`]): one per kind in [`PolicyKind::ALL`]
    /// order, the windows `[file, zero]` (file pages of text, rodata and data take the first, every
    /// page of zeroes the second), and `(region, number)` per attached region. `Err` names a number
    /// that is no policy's.
    pub fn from_codes(
        kinds: [u8; 6],
        windows: [u8; 2],
        regions: impl IntoIterator<Item = (u16, u8)>,
    ) -> Result<Self, u8> {
        let rule = |code: u8, window: u8| {
            let mode = Mode::from_code(u32::from(code)).ok_or(code)?;
            Ok::<_, u8>(PageRule::new(mode, window.min(64)))
        };
        let mut table = Self::default();
        for (n, kind) in PolicyKind::ALL.into_iter().enumerate() {
            let window = match kind {
                PolicyKind::Text | PolicyKind::Rodata | PolicyKind::Data => windows[0],
                PolicyKind::Bss | PolicyKind::Heap | PolicyKind::Stack => windows[1],
            };
            table.kinds[n] = rule(kinds[n], window)?;
        }
        for (region, code) in regions {
            // More attachments than the table holds keep the seed (an image has at most a few).
            let _ = table.regions.push((region, rule(code, windows[1])?));
        }
        Ok(table)
    }

    /// The rule of a kind.
    pub fn rule(&self, kind: PolicyKind) -> PageRule {
        self.kinds[kind as usize]
    }

    /// The rules of an area of `kind` backed by `backend`; `None` for areas no policy applies to
    /// (the stack guard, the IPC buffer page, an area shared in, which keeps its source's).
    pub fn area_policy(&self, kind: AreaKind, backend: Backend) -> Option<AreaPolicy> {
        match (kind, backend) {
            (AreaKind::Segment(_), Backend::Segment { segment, .. }) => {
                let file = self.rule(PolicyKind::of_segment(segment.rights));
                let zero = if segment.rights.write { self.rule(PolicyKind::Bss) } else { file };
                Some(AreaPolicy { file, zero })
            }
            (AreaKind::Heap, _) => Some(AreaPolicy::uniform(self.rule(PolicyKind::Heap))),
            (AreaKind::Stack, _) => Some(AreaPolicy::uniform(self.rule(PolicyKind::Stack))),
            (AreaKind::Region(n), _) => {
                let rule = self.regions.iter().find(|(r, _)| *r == n).map(|(_, rule)| *rule);
                Some(AreaPolicy::uniform(rule.unwrap_or(PageRule::SEED)))
            }
            _ => None,
        }
    }
}

/// What a policy sees of an area.
#[derive(Clone, Copy, Debug)]
pub struct AreaView {
    pub kind: AreaKind,
    pub backend: Backend,
    pub pages: u32,
    /// The area's rules in force.
    pub policy: AreaPolicy,
}

/// A pager policy: the rules a new area starts with, and what the rules mean at start-up.
pub trait Policy {
    /// A short name for reports.
    fn name(&self) -> &'static str;

    /// The rules of a new area (`view.policy` is the seed's; a per-app table may override the result
    /// with [`crate::Pager::apply_app_policy`]).
    fn area_policy(&self, _area: &AreaView) -> AreaPolicy {
        AreaPolicy::SEED
    }

    /// How many pages after the faulting one to resolve as well, within the area, for a fault on a
    /// page the rule `rule` governs. Asked only for a rule with a window (`rule.around > 0`).
    fn fault_around(&self, _area: &AreaView, rule: PageRule) -> u32 {
        u32::from(rule.around)
    }

    /// Whether to resolve every page of the area governed by an eager rule before the client starts.
    fn populate_at_start(&self, area: &AreaView) -> bool {
        area.backend != Backend::Guard
            && (area.policy.file.mode == Mode::Eager || area.policy.zero.mode == Mode::Eager)
    }

    /// Whether a fault in the area maps a whole 2 MiB large page where it can: the pager takes one
    /// for a span that lies wholly in the area, is private and zero-filled, and is still untouched,
    /// and falls back to 4 KiB pages otherwise (no large frame left, the client's budget). By the
    /// area's rules: its pages of zeroes under large-pages, in the heap, the stack or a segment
    /// (whose zero-filled part is the .bss; the pager checks each span is all zero).
    fn large_pages(&self, area: &AreaView) -> bool {
        area.policy.zero.mode == Mode::LargePages
            && matches!(area.kind, AreaKind::Heap | AreaKind::Stack | AreaKind::Segment(_))
    }
}

/// The policies an image can name for all its areas at once. Configuration is data: a manifest picks
/// one of these (and may override it per app and area kind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BuiltinPolicy {
    /// HelenOS's behaviour: one page per fault, nothing ahead of time.
    #[default]
    Seed,
    /// Every segment and the stack mapped before the client starts, as seL4_libs' sel4utils loads.
    Eager,
    /// The faulting page and up to `pages` following ones in the same area.
    FaultAround { pages: u32 },
    /// One 2 MiB frame per aligned span of anonymous memory (bss, heap, stack), one fault for 512
    /// pages; 4 KiB pages elsewhere and where a span is not whole.
    LargePages,
    /// Another named policy for every area it applies to ([`BuiltinPolicy::rule_for`]).
    Named(Mode),
}

impl BuiltinPolicy {
    /// The image-wide policy of a mode, with `pages` of fault-around.
    pub fn of_mode(mode: Mode, pages: u32) -> Self {
        match mode {
            Mode::Seed => Self::Seed,
            Mode::Eager => Self::Eager,
            Mode::FaultAround => Self::FaultAround { pages },
            Mode::LargePages => Self::LargePages,
            other => Self::Named(other),
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        match self {
            Self::Seed => Mode::Seed,
            Self::Eager => Mode::Eager,
            Self::FaultAround { .. } => Mode::FaultAround,
            Self::LargePages => Mode::LargePages,
            Self::Named(mode) => *mode,
        }
    }

    /// The rule an image-wide policy gives an area of `kind`: eager maps segments and the stack only
    /// (the heap and regions stay lazy, as sel4utils loads), the others apply everywhere.
    pub fn rule_for(&self, kind: AreaKind) -> PageRule {
        match self {
            Self::Seed => PageRule::SEED,
            Self::Eager => match kind {
                AreaKind::Segment(_) | AreaKind::Stack => PageRule::new(Mode::Eager, 0),
                _ => PageRule::SEED,
            },
            Self::FaultAround { pages } => PageRule::new(Mode::FaultAround, (*pages).min(64) as u8),
            Self::LargePages => PageRule::new(Mode::LargePages, 0),
            Self::Named(mode) => PageRule::new(*mode, 0),
        }
    }
}

impl Policy for BuiltinPolicy {
    fn name(&self) -> &'static str {
        self.mode().name()
    }

    fn area_policy(&self, area: &AreaView) -> AreaPolicy {
        match area.backend {
            Backend::Guard | Backend::Reserved => AreaPolicy::SEED,
            _ => AreaPolicy::uniform(self.rule_for(area.kind)),
        }
    }
}
