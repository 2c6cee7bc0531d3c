//! The pager's serial reports: app output with its prefix, exit and stop lines, `[stats]` lines.
//! `cargo xtask` parses these; their format is fixed (see the serial output contract).

use core::fmt;

use pager::{AreaKind, Backend, Client, EvictCounts, FaultCounts, StoreCounts, StoredPages};

use crate::costs::FaultCosts;

/// An app instance as reports name it: `<app>#<instance>`.
#[derive(Clone, Copy)]
pub struct Name<'a> {
    pub app: &'a str,
    pub instance: u16,
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.app, self.instance)
    }
}

/// An area kind as a single word: `segment-2`, `heap`, `stack`, `region-0`, `shared-in`, `ipc-buffer`.
pub struct AreaName(pub AreaKind);

impl fmt::Display for AreaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            AreaKind::Segment(n) => write!(f, "segment-{n}"),
            AreaKind::Heap => f.write_str("heap"),
            AreaKind::Stack => f.write_str("stack"),
            AreaKind::StackGuard => f.write_str("stack-guard"),
            AreaKind::Region(n) => write!(f, "region-{n}"),
            AreaKind::SharedIn => f.write_str("shared-in"),
            AreaKind::IpcBuffer => f.write_str("ipc-buffer"),
        }
    }
}

/// `image=.. copy=.. zero=.. mixed=.. shared=.. large=.. zero-shared=.. upgrade=.. cow-copy=..
/// refault-soft=.. refault-store=.. dirty=..` of a set of fault counts.
struct Classes<'a>(&'a FaultCounts);

impl fmt::Display for Classes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (name, count)) in self.0.by_class().enumerate() {
            let separator = if index == 0 { "" } else { " " };
            write!(f, "{separator}{name}={count}")?;
        }
        Ok(())
    }
}

/// What eviction did, as `[stats]` pairs (the keys `cargo xtask simulate` prints too): pages
/// evicted clean and dirty, soft unmaps, dirty pages stored as zero markers, compressions (and of
/// them pages stored as they are), bytes in and stored, decompressions and bytes read back, the
/// compression ratio (bytes in per byte stored, `-` before any), the time-stamp ticks spent
/// compressing and decompressing (guest instructions under `-icount shift=0`) in all and per page,
/// and faults refused for a full store.
struct Evictions<'a>(&'a EvictCounts);

impl fmt::Display for Evictions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        write!(
            f,
            "evict_clean={} evict_dirty={} soft_unmaps={} zero_stored={} compressions={} incompressible={} \
             bytes_in={} bytes_stored={} decompressions={} bytes_out={} ratio={} compress_ticks={} \
             decompress_ticks={} ticks_per_compression={} ticks_per_decompression={} store_full={}",
            e.evictions_clean,
            e.evictions_dirty,
            e.soft_unmaps,
            e.zero_pages,
            e.compressions,
            e.incompressible,
            e.bytes_in,
            e.bytes_stored,
            e.decompressions,
            e.bytes_out,
            CompressionRatio(e),
            e.compress_ticks,
            e.decompress_ticks,
            e.compress_ticks.checked_div(e.compressions).unwrap_or(0),
            e.decompress_ticks.checked_div(e.decompressions).unwrap_or(0),
            e.store_full
        )
    }
}

/// Bytes given to the compressor per byte stored, `x.xxx` (`-` before the first compression).
struct CompressionRatio<'a>(&'a EvictCounts);

impl fmt::Display for CompressionRatio<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.ratio_milli() {
            Some(milli) => write!(f, "{}.{:03}", milli / 1000, milli % 1000),
            None => f.write_str("-"),
        }
    }
}

/// Writes raw bytes to the console.
pub fn put_bytes(bytes: &[u8]) {
    sel4::debug::put_bytes(bytes);
}

/// One line of app output, prefixed with its name.
pub fn app_line(name: Name<'_>, line: &[u8]) {
    sel4::debug_print!("[{name}] ");
    put_bytes(line);
    put_bytes(b"\n");
}

/// The `[stats]` lines of a client that is about to be removed: one per area, then the client's.
/// `faults` counts the VM faults the client took; the class counts are pages served by class
/// (with fault-around, one fault serves several pages). `stored`: the client's pages in the
/// compressed store now, at its end and before its removal drops them.
pub fn client_stats(
    name: Name<'_>,
    client: &Client,
    stored: StoredPages,
    faults_taken: u64,
    paging_structures: u32,
) {
    // A reserved area (the IPC buffer page) is never served: it has no figures of its own.
    for area in client.areas().iter().filter(|a| a.backend() != Backend::Reserved) {
        let faults = area.faults();
        sel4::debug_println!(
            "[stats] scope=area client={name} area={} resident={} {} refused={} policy={}",
            AreaName(area.kind()),
            area.resident_pages(),
            Classes(faults),
            faults.refused,
            area.policy().describe()
        );
    }
    let mode = client.evict_mode();
    if mode.evicts() {
        for area in client.areas().iter().filter(|a| a.backend() != Backend::Reserved) {
            sel4::debug_println!(
                "[stats] scope=evict-area client={name} area={} {}",
                AreaName(area.kind()),
                Evictions(area.evict_counts())
            );
        }
        let faults = client.faults();
        sel4::debug_println!(
            "[stats] scope=evict-client client={name} mode={mode} refault_soft={} refault_store={} dirty={} {} \
             stored_pages={} stored_bytes={}",
            faults.refault_soft,
            faults.refault_store,
            faults.dirty,
            Evictions(&client.evict_counts()),
            stored.pages,
            stored.bytes
        );
    }
    let faults = client.faults();
    sel4::debug_println!(
        "[stats] scope=client name={name} faults={} {} spurious={} refused={} frames={} resident={} \
         paging_structures={}",
        faults_taken,
        Classes(faults),
        faults.spurious,
        faults.refused,
        client.frames_charged(),
        client.resident_pages(),
        paging_structures
    );
}

/// When a client's setup began, when its thread was resumed, what serving the fault on its first
/// instruction's fetch took (0 without one) and when it ended, in time-stamp ticks (guest
/// instructions under `-icount shift=0`): the reference for "instructions until the first
/// instruction" (`resume_tsc - setup_tsc + first_fetch_ticks`, the pager's work, without the
/// scheduler's) and "until exit".
pub fn timeline(name: Name<'_>, record: &crate::lifecycle::ClientRecord, ended_at: u64) {
    sel4::debug_println!(
        "[stats] scope=timeline client={name} setup_tsc={} resume_tsc={} first_fetch_ticks={} end_tsc={ended_at} \
         ticks={}",
        record.setup_at,
        record.resumed_at,
        record.first_fetch_ticks,
        ended_at.wrapping_sub(record.setup_at)
    );
}

/// One `[stats] scope=class` line per fault class: served faults, the pager's kernel entries (each
/// reply included), its time-stamp ticks from receiving a fault to replying, and the part of those
/// spent inside its kernel calls.
pub fn class_costs(costs: &FaultCosts) {
    for ((_, class), cost) in FaultCosts::CLASSES.iter().zip(costs.classes.iter()) {
        sel4::debug_println!(
            "[stats] scope=class class={class} faults={} kernel_entries={} kernel_entries_min={} \
             pager_ticks={} pager_ticks_min={} pager_ticks_median={} pager_ticks_max={} pager_kernel_ticks={} \
             pager_code_median={} timing_overhead={} page_copy_ticks={}",
            cost.faults,
            cost.kernel_entries,
            cost.kernel_entries_min,
            cost.ticks,
            cost.ticks_min,
            cost.ticks_median(),
            cost.ticks_max,
            cost.kernel_ticks,
            cost.code_ticks_median(),
            costs.timing_overhead,
            costs.page_copy_ticks
        );
    }
}

/// The kernel's floor ([`crate::floor`]): the pager's part of the floor client's `ud2` round
/// trips, and the probe's timed `CNode_Copy` and `Page_Map` calls.
pub struct FloorFigures<'a> {
    pub client: Name<'a>,
    pub exceptions: u64,
    pub handling_median: u64,
    pub rounds: u64,
    pub cnode_copy_median: u64,
    pub cnode_copy_min: u64,
    pub page_map_median: u64,
    pub page_map_min: u64,
}

/// The `[stats] scope=floor` line.
pub fn floor_stats(floor: &FloorFigures<'_>) {
    sel4::debug_println!(
        "[stats] scope=floor client={} exceptions={} pager_ticks_median={} rounds={} cnode_copy_median={} \
         cnode_copy_min={} page_map_median={} page_map_min={}",
        floor.client,
        floor.exceptions,
        floor.handling_median,
        floor.rounds,
        floor.cnode_copy_median,
        floor.cnode_copy_min,
        floor.page_map_median,
        floor.page_map_min
    );
}

/// The eviction totals of an image whose apps evict (`modes`: theirs, `fifo`, `clock` or
/// `fifo,clock`), every client's, removed ones included, and the store's gauges: pages and bytes
/// held now (none once every client is removed), the most bytes held at once and the budget.
pub fn evict_stats(modes: &str, faults: &FaultCounts, evictions: &EvictCounts, store: &StoreCounts) {
    sel4::debug_println!(
        "[stats] scope=evict mode={modes} refault_soft={} refault_store={} dirty={} {} stored_pages={} \
         store_bytes={} store_peak={} store_capacity={}",
        faults.refault_soft,
        faults.refault_store,
        faults.dirty,
        Evictions(evictions),
        store.pages,
        store.used,
        store.peak,
        store.capacity
    );
}

/// Totals for the last `[stats]` line.
pub struct Totals<'a> {
    pub clients: usize,
    pub faults: &'a FaultCounts,
    pub distinct_image_pages: u32,
    pub frames: pager::FrameCounts,
    pub large_frames: pager::LargeFrameCounts,
    pub copy_slots_in_use: u32,
    pub kernel_entries: u64,
    /// VM faults received: what the entries were spent on.
    pub vm_faults: u64,
    pub policy: &'static str,
    /// Pages the policy mapped before clients started (eager), and the kernel entries that took.
    pub startup_pages: u64,
    pub startup_entries: u64,
}

/// `x.yy` of `numerator / denominator`, rounded down (0.00 when there is nothing to divide).
pub struct Ratio(pub u64, pub u64);

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hundredths = (self.0 * 100).checked_div(self.1).unwrap_or(0);
        write!(f, "{}.{:02}", hundredths / 100, hundredths % 100)
    }
}

/// The last `[stats]` line.
pub fn total_stats(totals: &Totals<'_>) {
    let faults = totals.faults;
    sel4::debug_println!(
        "[stats] scope=total clients={} faults={} {} refused={} distinct_image_pages={} frames_created={} \
         frames_in_use={} frames_free={} large_frames_created={} large_frames_in_use={} copy_slots_in_use={} \
         kernel_entries={} entries_per_fault={} policy={} startup_pages={} startup_entries={} frames_pinned={}",
        totals.clients,
        totals.vm_faults,
        Classes(faults),
        faults.refused,
        totals.distinct_image_pages,
        totals.frames.created,
        totals.frames.in_use,
        totals.frames.free,
        totals.large_frames.created,
        totals.large_frames.in_use,
        totals.copy_slots_in_use,
        totals.kernel_entries,
        Ratio(totals.kernel_entries, totals.vm_faults),
        totals.policy,
        totals.startup_pages,
        totals.startup_entries,
        totals.frames.pinned
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn names_and_ratios() {
        assert_eq!(Name { app: "hello", instance: 2 }.to_string(), "hello#2");
        assert_eq!(AreaName(AreaKind::Segment(2)).to_string(), "segment-2");
        assert_eq!(AreaName(AreaKind::SharedIn).to_string(), "shared-in");
        assert_eq!(AreaName(AreaKind::IpcBuffer).to_string(), "ipc-buffer");
        assert_eq!(Ratio(10, 3).to_string(), "3.33");
        assert_eq!(Ratio(7, 0).to_string(), "0.00");
        assert_eq!(Ratio(300, 100).to_string(), "3.00");
    }

    #[test]
    fn eviction_pairs_and_the_compression_ratio() {
        let none = EvictCounts::default();
        assert_eq!(CompressionRatio(&none).to_string(), "-");
        let counts = EvictCounts {
            evictions_clean: 3,
            evictions_dirty: 5,
            compressions: 4,
            bytes_in: 4 * 4096,
            bytes_stored: 6000,
            decompressions: 2,
            bytes_out: 2500,
            compress_ticks: 40_002,
            decompress_ticks: 9_000,
            ..EvictCounts::default()
        };
        assert_eq!(CompressionRatio(&counts).to_string(), "2.730");
        let text = Evictions(&counts).to_string();
        for pair in [
            "evict_clean=3 evict_dirty=5 ",
            " bytes_in=16384 bytes_stored=6000 decompressions=2 bytes_out=2500 ratio=2.730 ",
            " ticks_per_compression=10000 ticks_per_decompression=4500 store_full=0",
        ] {
            assert!(text.contains(pair), "{text}");
        }
        assert!(Evictions(&none).to_string().contains("ticks_per_compression=0 ticks_per_decompression=0"));
    }
}
