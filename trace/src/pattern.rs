//! Synthetic reference patterns from one short description, for the simulator (and, through the
//! same generator, for an on-target client).
//!
//! A description is a kind and `key=value` settings, space separated:
//!
//! | description | references |
//! |---|---|
//! | `sequential pages=N passes=P` | pages 0..N in order, P times (reads) |
//! | `strided pages=N stride=S count=C` | C references, each S pages after the last, wrapping at N |
//! | `random pages=N count=C seed=X` | C references to pages drawn uniformly (xorshift64*, seeded) |
//! | `phased pages=N set=W phases=F count=C seed=X` | F phases; each picks a window of W pages and makes C random references inside it |
//! | `read-then-write pages=N` | reads of pages 0..N, then writes of pages 0..N |
//!
//! Every reference is a read unless the kind says otherwise; `write=K` (any kind but
//! read-then-write) makes every K-th reference a write. Generation is exact and portable: the same
//! description gives the same references on every machine, in `no_std`, without allocation.

use core::fmt;

/// One reference: a page index within the pattern's pages, and whether it writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reference {
    pub page: u32,
    pub write: bool,
}

/// The kinds of pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sequential { passes: u32 },
    Strided { stride: u32, count: u32 },
    Random { count: u32, seed: u64 },
    Phased { set: u32, phases: u32, count: u32, seed: u64 },
    ReadThenWrite,
}

/// A parsed description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    pub pages: u32,
    pub kind: Kind,
    /// Every `write_every`-th reference writes (0: none).
    pub write_every: u32,
}

/// Why a description is not a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternError<'a> {
    UnknownKind(&'a str),
    /// A setting this kind does not take, or one without `=`.
    UnknownSetting(&'a str),
    BadNumber(&'a str),
    Missing(&'static str),
    /// `pages` (or `set`, `stride`) is zero, or `set` exceeds `pages`.
    OutOfRange(&'static str),
}

impl fmt::Display for PatternError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKind(k) => write!(
                f,
                "unknown pattern {k:?} (one of sequential, strided, random, phased, read-then-write)"
            ),
            Self::UnknownSetting(s) => write!(f, "setting {s:?} is not one this pattern takes"),
            Self::BadNumber(s) => write!(f, "{s:?} is not a number"),
            Self::Missing(key) => write!(f, "the pattern needs {key}="),
            Self::OutOfRange(key) => write!(f, "{key} is out of range"),
        }
    }
}

impl Pattern {
    /// Reads a description (see the module's table).
    pub fn parse(description: &str) -> Result<Pattern, PatternError<'_>> {
        let mut words = description.split_whitespace();
        let kind = words.next().ok_or(PatternError::Missing("a kind, then pages"))?;
        let allowed: &[&str] = match kind {
            "sequential" => &["pages", "passes", "write"],
            "strided" => &["pages", "stride", "count", "write"],
            "random" => &["pages", "count", "seed", "write"],
            "phased" => &["pages", "set", "phases", "count", "seed", "write"],
            "read-then-write" => &["pages"],
            other => return Err(PatternError::UnknownKind(other)),
        };
        let mut values: [Option<u64>; 6] = [None; 6];
        for word in words {
            let (key, value) = word.split_once('=').ok_or(PatternError::UnknownSetting(word))?;
            let index = allowed.iter().position(|k| *k == key).ok_or(PatternError::UnknownSetting(word))?;
            values[index] = Some(value.parse().map_err(|_| PatternError::BadNumber(value))?);
        }
        let value = |key: &'static str, default: Option<u64>| -> Result<u64, PatternError<'static>> {
            let index = allowed.iter().position(|k| *k == key).expect("a key of this kind");
            values[index].or(default).ok_or(PatternError::Missing(key))
        };
        let small = |key: &'static str, default: Option<u64>| -> Result<u32, PatternError<'static>> {
            u32::try_from(value(key, default)?).map_err(|_| PatternError::OutOfRange(key))
        };
        let pages = small("pages", None)?;
        if pages == 0 {
            return Err(PatternError::OutOfRange("pages"));
        }
        let kind = match kind {
            "sequential" => Kind::Sequential { passes: small("passes", Some(1))? },
            "strided" => {
                let stride = small("stride", None)?;
                if stride == 0 {
                    return Err(PatternError::OutOfRange("stride"));
                }
                Kind::Strided { stride, count: small("count", Some(u64::from(pages)))? }
            }
            "random" => Kind::Random { count: small("count", None)?, seed: value("seed", Some(1))? },
            "phased" => {
                let set = small("set", None)?;
                if set == 0 || set > pages {
                    return Err(PatternError::OutOfRange("set"));
                }
                let (phases, count) = (small("phases", None)?, small("count", None)?);
                Kind::Phased { set, phases, count, seed: value("seed", Some(1))? }
            }
            _ => Kind::ReadThenWrite,
        };
        let write_every = if allowed.contains(&"write") { small("write", Some(0))? } else { 0 };
        Ok(Pattern { pages, kind, write_every })
    }

    /// References in all.
    pub fn len(&self) -> u64 {
        match self.kind {
            Kind::Sequential { passes } => u64::from(self.pages) * u64::from(passes),
            Kind::Strided { count, .. } | Kind::Random { count, .. } => u64::from(count),
            Kind::Phased { phases, count, .. } => u64::from(phases) * u64::from(count),
            Kind::ReadThenWrite => 2 * u64::from(self.pages),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The references, in order.
    pub fn references(&self) -> References {
        let seed = match self.kind {
            Kind::Random { seed, .. } | Kind::Phased { seed, .. } => seed,
            _ => 0,
        };
        References { pattern: *self, index: 0, state: seed | 1, window: 0 }
    }
}

/// The iterator of [`Pattern::references`].
#[derive(Clone, Debug)]
pub struct References {
    pattern: Pattern,
    index: u64,
    state: u64,
    /// The current phase's first page.
    window: u32,
}

impl References {
    /// xorshift64* (Vigna): small, fast and the same everywhere.
    fn next_random(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u32) -> u32 {
        (((self.next_random() >> 32) * u64::from(bound)) >> 32) as u32
    }
}

impl Iterator for References {
    type Item = Reference;

    fn next(&mut self) -> Option<Reference> {
        let p = self.pattern;
        if self.index >= p.len() {
            return None;
        }
        let i = self.index;
        self.index += 1;
        let page = match p.kind {
            Kind::Sequential { .. } => (i % u64::from(p.pages)) as u32,
            Kind::Strided { stride, .. } => (i * u64::from(stride) % u64::from(p.pages)) as u32,
            Kind::Random { .. } => self.below(p.pages),
            Kind::Phased { set, count, .. } => {
                if i.is_multiple_of(u64::from(count)) {
                    self.window = self.below(p.pages - set + 1);
                }
                self.window + self.below(set)
            }
            Kind::ReadThenWrite => {
                let write = i >= u64::from(p.pages);
                return Some(Reference { page: (i % u64::from(p.pages)) as u32, write });
            }
        };
        let write = p.write_every != 0 && (i + 1).is_multiple_of(u64::from(p.write_every));
        Some(Reference { page, write })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(description: &str) -> ([u32; 16], usize) {
        let mut out = [0; 16];
        let mut n = 0;
        for r in Pattern::parse(description).unwrap().references().take(16) {
            out[n] = r.page;
            n += 1;
        }
        (out, n)
    }

    #[test]
    fn each_kind_makes_its_references() {
        assert_eq!(
            pages("sequential pages=3 passes=2"),
            ([0, 1, 2, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 6)
        );
        assert_eq!(pages("strided pages=8 stride=3 count=5").0[..5], [0, 3, 6, 1, 4]);
        let rtw: alloc_free::Refs = Pattern::parse("read-then-write pages=2").unwrap().references().into();
        assert_eq!(rtw.0[..4], [(0, false), (1, false), (0, true), (1, true)]);
        let random = Pattern::parse("random pages=10 count=1000 seed=7").unwrap();
        assert!(random.references().all(|r| r.page < 10 && !r.write));
        assert_eq!(random.references().count(), 1000);
        let again: u64 = random.references().map(|r| u64::from(r.page)).sum();
        assert_eq!(again, random.references().map(|r| u64::from(r.page)).sum(), "seeded: repeatable");
        let phased = Pattern::parse("phased pages=100 set=4 phases=3 count=50 seed=2").unwrap();
        let refs: [Reference; 150] = {
            let mut all = [Reference { page: 0, write: false }; 150];
            for (slot, r) in all.iter_mut().zip(phased.references()) {
                *slot = r;
            }
            all
        };
        for phase in refs.chunks(50) {
            let low = phase.iter().map(|r| r.page).min().unwrap();
            let high = phase.iter().map(|r| r.page).max().unwrap();
            assert!(high - low < 4, "a phase stays in its window of 4 pages");
        }
        let writes = Pattern::parse("sequential pages=10 write=2").unwrap();
        assert_eq!(writes.references().filter(|r| r.write).count(), 5);
    }

    #[test]
    fn bad_descriptions_are_named() {
        assert_eq!(Pattern::parse("zigzag pages=3"), Err(PatternError::UnknownKind("zigzag")));
        assert_eq!(Pattern::parse("sequential"), Err(PatternError::Missing("pages")));
        assert_eq!(Pattern::parse("sequential pages=x"), Err(PatternError::BadNumber("x")));
        assert_eq!(
            Pattern::parse("sequential pages=3 stride=2"),
            Err(PatternError::UnknownSetting("stride=2"))
        );
        assert_eq!(
            Pattern::parse("phased pages=3 set=4 phases=1 count=1"),
            Err(PatternError::OutOfRange("set"))
        );
        assert_eq!(Pattern::parse("sequential pages=0"), Err(PatternError::OutOfRange("pages")));
    }

    mod alloc_free {
        /// The first references of a pattern as (page, write) pairs, without a heap.
        pub struct Refs(pub [(u32, bool); 8]);

        impl From<super::References> for Refs {
            fn from(references: super::References) -> Self {
                let mut out = [(0, false); 8];
                for (slot, r) in out.iter_mut().zip(references) {
                    *slot = (r.page, r.write);
                }
                Refs(out)
            }
        }
    }
}
