//! Writing an image on the host.

use alloc::string::String;
use alloc::vec::Vec;

use zerocopy::IntoBytes;

use crate::{
    encode_name, AppRecord, AttachmentRecord, Header, RegionRecord, ShareRecord, MAGIC, PAGE_SIZE, VERSION,
};

/// What goes into an image.
#[derive(Clone, Debug, Default)]
pub struct ImageSpec {
    pub name: String,
    pub policy: u32,
    pub policy_pages: u32,
    pub frame_capacity: u32,
    /// The most cap-copy slots (0: no limit).
    pub copy_slot_limit: u32,
    /// Recording mode, with its window (`Some(0)`: recording, no window); `None` for a normal image.
    pub trace: Option<u16>,
    /// Bytes the compressed store may hold (0: no app evicts).
    pub store_bytes: u32,
    pub apps: Vec<AppSpec>,
    pub regions: Vec<RegionSpec>,
}

/// One app; the default runs once.
#[derive(Clone, Debug)]
pub struct AppSpec {
    pub name: String,
    pub elf: Vec<u8>,
    pub instances: u16,
    /// Runs of each instance, at least 1.
    pub runs: u16,
    pub heap_base: u32,
    pub heap_size: u32,
    pub stack_top: u32,
    pub stack_size: u32,
    pub frame_budget: u32,
    /// What a client does at its budget: a [`crate::eviction`] number.
    pub evict: u8,
    pub expected_exit: i32,
    /// Milliseconds of guest time a client may run.
    pub time_limit_ms: u32,
    /// The argument the app reads with the argument call (at most `abi::ARGUMENT_LIMIT` bytes).
    pub argument: String,
    /// Indices of the apps this one may share areas into.
    pub share_to: Vec<u16>,
    pub attachments: Vec<AttachmentSpec>,
    /// [`abi::policy`] numbers per area kind (text, rodata, data, bss, heap, stack).
    pub policy: [u8; 6],
    /// Fault-around windows: file pages, zero pages.
    pub fault_around: [u8; 2],
    /// The bench's floor client ([`crate::AppRecord::bench_floor`]).
    pub bench_floor: bool,
}

impl Default for AppSpec {
    fn default() -> Self {
        Self {
            name: String::new(),
            elf: Vec::new(),
            instances: 0,
            runs: 1,
            heap_base: 0,
            heap_size: 0,
            stack_top: 0,
            stack_size: 0,
            frame_budget: 0,
            evict: crate::eviction::NONE,
            expected_exit: 0,
            time_limit_ms: crate::DEFAULT_TIME_LIMIT_MS,
            argument: String::new(),
            share_to: Vec::new(),
            attachments: Vec::new(),
            policy: [abi::policy::SEED as u8; 6],
            fault_around: [0; 2],
            bench_floor: false,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct RegionSpec {
    pub name: String,
    pub size: u32,
}

#[derive(Clone, Debug, Default)]
pub struct AttachmentSpec {
    pub region: u16,
    pub writable: bool,
    pub address: u32,
    /// [`abi::policy`] number of the region in this app.
    pub policy: u8,
}

impl ImageSpec {
    /// Lays the image out. Fails with a message when a name is too long or a count too large.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let too_long =
            |what: &str| alloc::format!("name {what:?} is longer than {} bytes", crate::NAME_LENGTH);
        let count = |n: usize, what: &str| u16::try_from(n).map_err(|_| alloc::format!("too many {what}"));
        let attachments: Vec<AttachmentRecord> = self
            .apps
            .iter()
            .flat_map(|a| &a.attachments)
            .map(|a| AttachmentRecord {
                region: a.region.into(),
                writable: a.writable.into(),
                policy: a.policy,
                address: a.address.into(),
            })
            .collect();
        let shares: Vec<ShareRecord> =
            self.apps.iter().flat_map(|a| &a.share_to).map(|&app| ShareRecord { app: app.into() }).collect();
        let tables = core::mem::size_of::<Header>()
            + self.apps.len() * core::mem::size_of::<AppRecord>()
            + self.regions.len() * core::mem::size_of::<RegionRecord>()
            + attachments.len() * core::mem::size_of::<AttachmentRecord>()
            + shares.len() * core::mem::size_of::<ShareRecord>();
        let mut next_page = tables.div_ceil(PAGE_SIZE);
        let mut apps = Vec::new();
        let mut attachment_first = 0usize;
        let mut share_first = 0usize;
        for app in &self.apps {
            if app.runs == 0 {
                return Err(alloc::format!("app {:?} runs 0 times", app.name));
            }
            if app.evict > crate::eviction::CLOCK {
                return Err(alloc::format!("app {:?}: eviction number {} is unknown", app.name, app.evict));
            }
            if let Some(&target) = app.share_to.iter().find(|&&target| usize::from(target) >= self.apps.len())
            {
                return Err(alloc::format!(
                    "app {:?} may share into app {target}, which does not exist",
                    app.name
                ));
            }
            apps.push(AppRecord {
                name: encode_name(&app.name).ok_or_else(|| too_long(&app.name))?,
                elf_page: u32::try_from(next_page).map_err(|_| String::from("image too large"))?.into(),
                elf_length: u32::try_from(app.elf.len()).map_err(|_| String::from("ELF too large"))?.into(),
                instances: app.instances.into(),
                attachment_first: count(attachment_first, "attachments")?.into(),
                attachment_count: count(app.attachments.len(), "attachments")?.into(),
                runs: app.runs.into(),
                heap_base: app.heap_base.into(),
                heap_size: app.heap_size.into(),
                stack_top: app.stack_top.into(),
                stack_size: app.stack_size.into(),
                frame_budget: app.frame_budget.into(),
                evict: app.evict,
                reserved: [0; 3],
                expected_exit: app.expected_exit.into(),
                time_limit_ms: app.time_limit_ms.into(),
                share_first: count(share_first, "share records")?.into(),
                share_count: count(app.share_to.len(), "share records")?.into(),
                policy: app.policy,
                fault_around: app.fault_around,
                bench_floor: app.bench_floor.into(),
                argument: {
                    let bytes = app.argument.as_bytes();
                    if bytes.len() > abi::ARGUMENT_LIMIT || bytes.contains(&0) {
                        return Err(alloc::format!(
                            "app {:?}: its argument is longer than {} bytes or holds a NUL",
                            app.name,
                            abi::ARGUMENT_LIMIT
                        ));
                    }
                    let mut field = [0; abi::ARGUMENT_LIMIT];
                    field[..bytes.len()].copy_from_slice(bytes);
                    field
                },
            });
            attachment_first += app.attachments.len();
            share_first += app.share_to.len();
            next_page += app.elf.len().div_ceil(PAGE_SIZE);
        }
        let total = next_page.max(1) * PAGE_SIZE;
        let header = Header {
            magic: MAGIC,
            version: VERSION.into(),
            total_length: u32::try_from(total).map_err(|_| String::from("image too large"))?.into(),
            app_count: count(self.apps.len(), "apps")?.into(),
            region_count: count(self.regions.len(), "regions")?.into(),
            attachment_count: count(attachments.len(), "attachments")?.into(),
            share_count: count(shares.len(), "share records")?.into(),
            policy: self.policy.into(),
            policy_pages: self.policy_pages.into(),
            frame_capacity: self.frame_capacity.into(),
            copy_slot_limit: self.copy_slot_limit.into(),
            trace: u16::from(self.trace.is_some()).into(),
            trace_window: self.trace.unwrap_or(0).into(),
            store_bytes: self.store_bytes.into(),
            name: encode_name(&self.name).ok_or_else(|| too_long(&self.name))?,
        };
        let mut bytes = Vec::with_capacity(total);
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(apps.as_bytes());
        for region in &self.regions {
            let record = RegionRecord {
                name: encode_name(&region.name).ok_or_else(|| too_long(&region.name))?,
                size: region.size.into(),
            };
            bytes.extend_from_slice(record.as_bytes());
        }
        bytes.extend_from_slice(attachments.as_bytes());
        bytes.extend_from_slice(shares.as_bytes());
        for (app, record) in self.apps.iter().zip(&apps) {
            bytes.resize(record.elf_page.get() as usize * PAGE_SIZE, 0);
            bytes.extend_from_slice(&app.elf);
        }
        bytes.resize(total, 0);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BootImage;

    #[test]
    fn round_trip_keeps_every_field_and_aligns_elfs() {
        let spec = ImageSpec {
            name: "demo".into(),
            policy: abi::policy::FAULT_AROUND,
            policy_pages: 3,
            frame_capacity: 500,
            copy_slot_limit: 77,
            trace: Some(6),
            store_bytes: 8 << 20,
            regions: alloc::vec![RegionSpec { name: "ring".into(), size: 8192 }],
            apps: alloc::vec![
                AppSpec {
                    name: "a".into(),
                    elf: alloc::vec![1; 5000],
                    instances: 2,
                    runs: 300,
                    stack_top: 0x8000_0000,
                    stack_size: 0x4000,
                    attachments: alloc::vec![AttachmentSpec {
                        region: 0,
                        writable: true,
                        address: 0x3000_0000,
                        policy: abi::policy::COW as u8
                    }],
                    policy: [0, 0, 4, 3, 5, 1],
                    fault_around: [2, 8],
                    frame_budget: 40,
                    evict: crate::eviction::CLOCK,
                    ..AppSpec::default()
                },
                AppSpec {
                    name: "b".into(),
                    elf: alloc::vec![2; 10],
                    expected_exit: -3,
                    time_limit_ms: 2000,
                    share_to: alloc::vec![0],
                    argument: "random pages=9 count=3".into(),
                    ..AppSpec::default()
                },
            ],
        };
        let bytes = spec.to_bytes().unwrap();
        assert_eq!(bytes.len(), 4 * PAGE_SIZE, "tables page, two pages for a, one for b");
        let image = BootImage::parse(&bytes).unwrap();
        assert_eq!(image.name(), "demo");
        assert_eq!(image.header().policy_pages.get(), 3);
        let apps = image.apps();
        assert_eq!((apps[0].elf_page.get(), apps[1].elf_page.get()), (1, 3));
        assert_eq!(image.elf(&apps[0]), &[1; 5000][..]);
        assert_eq!(image.elf(&apps[1]), &[2; 10][..]);
        assert_eq!(
            (apps[0].time_limit_ms.get(), apps[1].time_limit_ms.get()),
            (crate::DEFAULT_TIME_LIMIT_MS, 2000)
        );
        assert!(image.may_share(&apps[1], 0), "b names a in its share_to");
        assert_eq!((apps[0].policy, apps[0].fault_around), ([0, 0, 4, 3, 5, 1], [2, 8]));
        assert_eq!(apps[1].policy, [abi::policy::SEED as u8; 6], "the seed unless told");
        assert_eq!(image.attachments_of(&apps[0])[0].policy, abi::policy::COW as u8);
        assert!(!image.may_share(&apps[1], 1) && !image.may_share(&apps[0], 1), "nothing else is permitted");
        assert_eq!(apps[1].expected_exit.get(), -3);
        assert_eq!(image.header().copy_slot_limit.get(), 77);
        assert_eq!(image.header().store_bytes.get(), 8 << 20);
        assert_eq!((apps[0].frame_budget.get(), apps[0].evict), (40, crate::eviction::CLOCK));
        assert_eq!(apps[1].evict, crate::eviction::NONE, "stopped at the budget unless told");
        assert_eq!((image.header().trace.get(), image.header().trace_window.get()), (1, 6));
        assert_eq!((apps[0].argument(), apps[1].argument()), (&b""[..], &b"random pages=9 count=3"[..]));
        let long = ImageSpec {
            apps: alloc::vec![AppSpec { name: "a".into(), argument: "x".repeat(129), ..AppSpec::default() }],
            ..ImageSpec::default()
        };
        assert!(long.to_bytes().unwrap_err().contains("longer than 128 bytes"));
        assert_eq!((apps[0].runs.get(), apps[1].runs.get()), (300, 1), "an app runs once by default");
        let attached = image.attachments_of(&apps[0]);
        assert_eq!(
            (attached[0].region.get(), attached[0].writable, attached[0].address.get()),
            (0, 1, 0x3000_0000)
        );
        assert!(image.attachments_of(&apps[1]).is_empty());
        assert_eq!(image.regions()[0].name(), "ring");
    }

    #[test]
    fn parse_rejects_corruption() {
        let spec = ImageSpec {
            name: "x".into(),
            apps: alloc::vec![AppSpec { name: "a".into(), elf: alloc::vec![1; 100], ..AppSpec::default() }],
            ..ImageSpec::default()
        };
        let good = spec.to_bytes().unwrap();
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(BootImage::parse(&bad).unwrap_err(), crate::FormatError::BadMagic);
        assert_eq!(
            BootImage::parse(&good[..100]).unwrap_err(),
            crate::FormatError::BadLength { total_length: 8192, available: 100 }
        );
        let mut bad = good.clone();
        // elf_length of app 0 past the end.
        let offset = core::mem::size_of::<Header>() + crate::NAME_LENGTH + 4;
        bad[offset..offset + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(BootImage::parse(&bad).unwrap_err(), crate::FormatError::ElfOutOfImage { app: 0 });
        assert!(encode_name(&"n".repeat(33)).is_none());
    }

    #[test]
    fn parse_rejects_zero_runs_and_other_versions() {
        let spec = ImageSpec {
            name: "x".into(),
            apps: alloc::vec![AppSpec { name: "a".into(), elf: alloc::vec![1; 100], ..AppSpec::default() }],
            ..ImageSpec::default()
        };
        let good = spec.to_bytes().unwrap();
        assert!(BootImage::parse(&good).is_ok());
        let mut bad = good.clone();
        // `runs` of app 0: after its name, elf_page, elf_length, instances and the attachment fields.
        let offset = core::mem::size_of::<Header>() + crate::NAME_LENGTH + 4 + 4 + 2 + 2 + 2;
        assert_eq!(&bad[offset..offset + 2], &1u16.to_le_bytes());
        bad[offset..offset + 2].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(BootImage::parse(&bad).unwrap_err(), crate::FormatError::NoRuns { app: 0 });
        // A version 1 image (no copy-slot limit, a reserved field for runs) is refused by number.
        let mut old = good.clone();
        old[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(BootImage::parse(&old).unwrap_err(), crate::FormatError::UnsupportedVersion(1));
        let zero = ImageSpec {
            apps: alloc::vec![AppSpec { name: "a".into(), runs: 0, ..AppSpec::default() }],
            ..ImageSpec::default()
        };
        assert!(zero.to_bytes().unwrap_err().contains("runs 0 times"));
        // A version 2 image (no share table, no time limits) is refused by number too.
        old[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(BootImage::parse(&old).unwrap_err(), crate::FormatError::UnsupportedVersion(2));
    }

    #[test]
    fn parse_rejects_an_unknown_eviction_and_version_5() {
        let spec = ImageSpec {
            name: "x".into(),
            store_bytes: 4096,
            apps: alloc::vec![AppSpec {
                name: "a".into(),
                elf: alloc::vec![1; 100],
                frame_budget: 8,
                evict: crate::eviction::FIFO,
                ..AppSpec::default()
            }],
            ..ImageSpec::default()
        };
        let good = spec.to_bytes().unwrap();
        assert_eq!(BootImage::parse(&good).unwrap().apps()[0].evict, crate::eviction::FIFO);
        let offset = core::mem::size_of::<Header>() + core::mem::offset_of!(AppRecord, evict);
        let mut bad = good.clone();
        bad[offset] = 3;
        assert_eq!(BootImage::parse(&bad).unwrap_err(), crate::FormatError::BadEviction { app: 0 });
        let unknown = ImageSpec {
            apps: alloc::vec![AppSpec { name: "a".into(), evict: 3, ..AppSpec::default() }],
            ..ImageSpec::default()
        };
        assert!(unknown.to_bytes().unwrap_err().contains("eviction number 3 is unknown"));
        // An image of the layout before eviction (version 5) is refused by number.
        let mut old = good;
        old[8..12].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(BootImage::parse(&old).unwrap_err(), crate::FormatError::UnsupportedVersion(5));
    }

    #[test]
    fn share_records_must_name_apps_of_the_image() {
        let spec = ImageSpec {
            name: "x".into(),
            apps: alloc::vec![AppSpec {
                name: "a".into(),
                elf: alloc::vec![1; 100],
                share_to: alloc::vec![0],
                ..AppSpec::default()
            }],
            ..ImageSpec::default()
        };
        let good = spec.to_bytes().unwrap();
        let image = BootImage::parse(&good).unwrap();
        assert!(image.may_share(&image.apps()[0], 0));
        // The one share record follows the header and the app record: point it past the apps.
        let offset = core::mem::size_of::<Header>() + core::mem::size_of::<AppRecord>();
        let mut bad = good.clone();
        assert_eq!(&bad[offset..offset + 2], &0u16.to_le_bytes());
        bad[offset..offset + 2].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(BootImage::parse(&bad).unwrap_err(), crate::FormatError::BadShares { app: 0 });
        let wrong = ImageSpec {
            apps: alloc::vec![AppSpec { name: "a".into(), share_to: alloc::vec![3], ..AppSpec::default() }],
            ..spec
        };
        assert!(wrong.to_bytes().unwrap_err().contains("does not exist"));
    }
}
