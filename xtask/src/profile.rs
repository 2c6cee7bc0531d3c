//! `cargo xtask profile MANIFEST`: where the pager's own code per fault goes, by source function.
//!
//! The image boots under `-icount shift=0,sleep=off` with QEMU's exec log one instruction per
//! translation block (`-singlestep -d exec,nochain`), streamed through a pipe (`-D /dev/stdout`,
//! the serial going to a file) and parsed as it comes, so no log is kept. `-dfilter` keeps the
//! log to the root task's text and the kernel's entry points, which is what makes it quick
//! (seconds, not the ten minutes a whole log takes).
//!
//! Clients are linked at the root task's addresses, so the root task is followed by its kernel
//! entries: after an entry (a line at a kernel entry point), user code that resumes just past one
//! of the root task's `syscall` sites is the root task, and so is code resuming after an entry
//! that interrupted the root task (it has the highest priority). A message's stretch starts when
//! the root task resumes from its `ReplyRecv`/`Recv`. Within it, a fault's measured part runs
//! from the fault loop's first time stamp to its second (`fault_loop::loop_stamp`'s `rdtsc` sites) less
//! each timed kernel call's (from the time stamp before it to `count_call`'s after it): exactly
//! the interval the root task's `pager_code_median` measures, the timing's own instructions
//! included (the bench takes them out as `timing_overhead` per call; so does the comparison
//! here). The `rdtsc` and `syscall` sites come from `objdump -d` and are told apart by their
//! inlined callers (`addr2line -i`). A fault's class is the cost class whose marker function
//! (`root_task::costs::marks`) its cost record runs, after its reply's stamp and before the reply;
//! the fault is kept when its stretch ends, at the next receive.
//!
//! Every counted instruction is symbolised with `addr2line -i`: the count falls to the innermost
//! source function (inlined frames included) and, in a second table, to the top-level one (the
//! function the code was compiled into). The result is `target/profile/<image>.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::workspace::Workspace;
use crate::{host_setup, qemu, root_task, stats};

#[derive(clap::Args)]
pub struct ProfileArguments {
    /// The manifest to boot (e.g. manifests/bench/faults.toml).
    manifest: PathBuf,
    /// Functions per table.
    #[arg(long, default_value_t = 25)]
    top: usize,
    /// Faults per class profiled (the first ones; the bench's median takes the first 4096).
    #[arg(long, default_value_t = 4096)]
    faults: usize,
    /// Also list, per class, every counted instruction of the top-level functions whose name
    /// contains this, with its count per fault and innermost source function.
    #[arg(long)]
    annotate: Option<String>,
    /// Also list, per class, where the functions whose symbol contains this are called from
    /// (`memcpy`, `__rust_alloc`): the instruction before each entry, by source function.
    #[arg(long)]
    callers: Option<String>,
    /// Seconds before QEMU is stopped.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
}

/// What an `rdtsc` site of the root task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stamp {
    /// The fault loop's own (`fault_loop::loop_stamp`): a message's arrival, or its reply.
    Loop,
    /// The stamp after a timed kernel call (`Sel4Platform::count_call`).
    CallEnd,
    /// Any other: before a timed call, or a stamp kept for something else.
    Other,
}

/// The addresses the tracker acts on.
#[derive(Debug, Default)]
struct Sites {
    /// The root task's text (inclusive).
    text: (u64, u64),
    /// Kernel entry points (inclusive ranges).
    kernel_entries: Vec<(u64, u64)>,
    /// The root task's `syscall` instructions.
    syscalls: HashSet<u64>,
    /// Just past each `syscall`: where the root task resumes after one.
    resumes: HashSet<u64>,
    /// Just past the fault loop's `ReplyRecv` and `Recv`: a message's stretch starts here.
    receives: HashSet<u64>,
    stamps: HashMap<u64, Stamp>,
    /// Each cost class's marker function, by its entry address.
    marks: HashMap<u64, String>,
    /// The root task's instructions, for `--annotate`.
    instructions: HashMap<u64, String>,
    /// Entry addresses of the functions `--callers` names.
    callees: HashSet<u64>,
}

/// One fault's measured instructions.
#[derive(Debug, Default)]
struct Sample {
    pcs: Vec<u64>,
    timed_calls: u64,
    /// The root task's instructions in the whole stretch of the fault's message, from the receive
    /// that brought it to the `ReplyRecv` that answers it, timed calls included: its part of the
    /// client's round trip.
    stretch: u64,
    /// The PCs of that stretch.
    stretch_pcs: Vec<u64>,
}

/// The faults of one class.
#[derive(Debug, Default)]
struct ClassProfile {
    faults: u64,
    counts: HashMap<u64, u64>,
    /// Per fault: instructions counted, and timed calls.
    totals: Vec<(u64, u64)>,
    /// Per fault: the root task's instructions in its message's whole stretch.
    stretches: Vec<u64>,
    /// The stretches' instructions by PC.
    stretch_counts: HashMap<u64, u64>,
    /// Calls of the `--callers` functions, by the PC before their entry.
    callers: HashMap<u64, u64>,
}

/// Follows the root task through the exec log and keeps each fault's measured instructions.
struct Tracker<'a> {
    sites: &'a Sites,
    limit: usize,
    in_root: bool,
    after_kernel: bool,
    root_interrupted: bool,
    last_root_pc: u64,
    /// `Some` while inside a measured part: the instructions since the last stamp (a timed call's
    /// if the next stamp ends one), and those kept.
    measuring: Option<(Vec<u64>, Sample)>,
    /// The last finished fault, until its cost record's marker names its class.
    pending: Option<Sample>,
    /// A fault its marker named, until its stretch ends (its reply, at the next receive).
    classified: Option<(String, Sample)>,
    classes: BTreeMap<String, ClassProfile>,
    /// Measured parts that no class marker followed (the loop stamps every message: an app's call,
    /// its exit, a stepped-over exception) and stretches that ended without their second stamp.
    unclassified: u64,
    unfinished: u64,
    /// The root task's instructions since its last receive returned.
    stretch: Vec<u64>,
}

impl<'a> Tracker<'a> {
    fn new(sites: &'a Sites, limit: usize) -> Self {
        Self {
            sites,
            limit,
            in_root: false,
            after_kernel: false,
            root_interrupted: false,
            last_root_pc: 0,
            measuring: None,
            pending: None,
            classified: None,
            classes: BTreeMap::new(),
            unclassified: 0,
            unfinished: 0,
            stretch: Vec::new(),
        }
    }

    /// One executed instruction at `pc`.
    fn instruction(&mut self, pc: u64) {
        let sites = self.sites;
        if sites.kernel_entries.iter().any(|&(start, end)| (start..=end).contains(&pc)) {
            if !self.after_kernel {
                self.after_kernel = true;
                self.root_interrupted = self.in_root && !sites.syscalls.contains(&self.last_root_pc);
            }
            return;
        }
        let in_text = (sites.text.0..=sites.text.1).contains(&pc);
        if self.after_kernel {
            self.after_kernel = false;
            self.in_root = in_text && (sites.resumes.contains(&pc) || self.root_interrupted);
            if self.in_root && sites.receives.contains(&pc) {
                // A new message: a measured part still open never reached its reply stamp, and
                // the last fault's stretch is complete.
                if self.measuring.take().is_some() {
                    self.unfinished += 1;
                }
                let stretch = core::mem::take(&mut self.stretch);
                if let Some((class, mut sample)) = self.classified.take() {
                    sample.stretch = stretch.len() as u64;
                    sample.stretch_pcs = stretch;
                    self.keep(&class, sample);
                }
            }
        }
        if !self.in_root || !in_text {
            return;
        }
        self.last_root_pc = pc;
        self.stretch.push(pc);
        if let Some(class) = sites.marks.get(&pc) {
            if let Some(sample) = self.pending.take() {
                self.classified = Some((class.clone(), sample));
            }
        }
        match (sites.stamps.get(&pc), &mut self.measuring) {
            (Some(Stamp::Loop), None) => {
                if self.pending.take().is_some() {
                    self.unclassified += 1;
                }
                self.measuring = Some((vec![pc], Sample::default()));
            }
            (Some(Stamp::Loop), Some(_)) => {
                // The reply's stamp itself is outside the interval.
                let (open, mut sample) = self.measuring.take().expect("measuring");
                sample.pcs.extend(open);
                self.pending = Some(sample);
            }
            (Some(Stamp::CallEnd), Some((open, sample))) => {
                // Everything since the stamp before the call was inside the timed interval.
                open.clear();
                open.push(pc);
                sample.timed_calls += 1;
            }
            (Some(Stamp::Other), Some((open, sample))) => {
                sample.pcs.append(open);
                open.push(pc);
            }
            (_, Some((open, _))) => open.push(pc),
            (_, None) => {}
        }
    }

    fn keep(&mut self, class: &str, sample: Sample) {
        let profile = self.classes.entry(class.to_owned()).or_default();
        if profile.totals.len() >= self.limit {
            return;
        }
        profile.faults += 1;
        profile.totals.push((sample.pcs.len() as u64, sample.timed_calls));
        profile.stretches.push(sample.stretch);
        for pair in sample.stretch_pcs.windows(2) {
            if self.sites.callees.contains(&pair[1]) {
                *profile.callers.entry(pair[0]).or_default() += 1;
            }
        }
        for pc in sample.stretch_pcs {
            *profile.stretch_counts.entry(pc).or_default() += 1;
        }
        for pc in sample.pcs {
            *profile.counts.entry(pc).or_default() += 1;
        }
    }
}

/// The PC of one exec-log line (`Trace 0: 0x... [cs_base/pc/flags/cflags] symbol`).
fn exec_line_pc(line: &str) -> Option<u64> {
    let fields = line.strip_prefix("Trace ")?.split_once('[')?.1;
    let pc = fields.split('/').nth(1)?;
    u64::from_str_radix(pc, 16).ok()
}

/// `(address, instruction)` of each instruction in `objdump -d --no-show-raw-insn` output.
fn objdump_instructions(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|line| {
            let (address, rest) = line.trim_start().split_once(":\t")?;
            let address = u64::from_str_radix(address, 16).ok()?;
            let instruction = rest.split_whitespace().collect::<Vec<_>>().join(" ");
            (!instruction.is_empty()).then_some((address, instruction))
        })
        .collect()
}

/// An instruction's mnemonic.
fn mnemonic(instruction: &str) -> &str {
    instruction.split_whitespace().next().unwrap_or("")
}

/// The inlined frames of each address in `addr2line -a -f -i -C` output, innermost first.
fn addr2line_frames(text: &str) -> Vec<(u64, Vec<String>)> {
    let mut out: Vec<(u64, Vec<String>)> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(address) = line.strip_prefix("0x") {
            if let Ok(address) = u64::from_str_radix(address.trim(), 16) {
                out.push((address, Vec::new()));
                continue;
            }
        }
        // A function line, then its location line.
        if let Some((_, frames)) = out.last_mut() {
            frames.push(line.to_owned());
            lines.next();
        }
    }
    out
}

/// What the frames of an `rdtsc` site say it is: the function that called `sel4::timestamp`.
fn stamp_kind(frames: &[String]) -> Stamp {
    let caller = frames.iter().skip_while(|f| !f.starts_with("sel4::timestamp")).nth(1);
    match caller {
        Some(f) if f.ends_with("fault_loop::loop_stamp") => Stamp::Loop,
        Some(f) if f.ends_with("::count_call") => Stamp::CallEnd,
        _ => Stamp::Other,
    }
}

/// Symbols of `nm` output: `(address, name)`, addresses of an ELF32 copy of the 64-bit kernel
/// sign-extended back.
fn nm_symbols(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let address = u64::from_str_radix(words.next()?, 16).ok()?;
            let _kind = words.next()?;
            let name = words.collect::<Vec<_>>().join(" ");
            let address = if address >> 31 == 1 { address | 0xffff_ffff_0000_0000 } else { address };
            Some((address, name))
        })
        .collect()
}

/// The class a marker symbol names (`root_task::costs::marks::shared_first` → `shared-first`).
fn mark_class(symbol: &str) -> Option<String> {
    let rest = symbol.strip_prefix("root_task::costs::marks::")?;
    let name = match rest.rsplit_once("::h") {
        Some((name, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => name,
        _ => rest,
    };
    Some(name.replace('_', "-"))
}

fn tool(program: &str, arguments: &[&str], input: Option<&str>) -> Result<String> {
    let mut child = Command::new(program)
        .args(arguments)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    let writer = input.map(|input| {
        let mut stdin = child.stdin.take().expect("piped");
        let input = input.to_owned();
        std::thread::spawn(move || stdin.write_all(input.as_bytes()))
    });
    let output = child.wait_with_output().with_context(|| format!("{program} failed"))?;
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    if !output.status.success() {
        bail!("{program} {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Frames of each address, from one `addr2line` run.
fn symbolise(elf: &Path, addresses: &[u64]) -> Result<HashMap<u64, Vec<String>>> {
    let input: String = addresses.iter().map(|a| format!("{a:#x}\n")).collect();
    let elf = elf.to_string_lossy();
    let output = tool("addr2line", &["-a", "-f", "-i", "-C", "-e", &elf], Some(&input))?;
    Ok(addr2line_frames(&output).into_iter().collect())
}

/// Reads the sites out of the root task's and the kernel's ELFs.
fn sites(root_task: &Path, kernel: &Path) -> Result<Sites> {
    let root = root_task.to_string_lossy();
    let instructions = objdump_instructions(&tool("objdump", &["-d", "--no-show-raw-insn", &root], None)?);
    let (first, last) = match (instructions.first(), instructions.last()) {
        (Some(first), Some(last)) => (first.0, last.0),
        _ => bail!("objdump found no instructions in {root}"),
    };
    let pick = |mnemonic: &str| -> Vec<u64> {
        instructions.iter().filter(|(_, i)| self::mnemonic(i) == mnemonic).map(|(a, _)| *a).collect()
    };
    let (rdtsc, syscall) = (pick("rdtsc"), pick("syscall"));
    let frames = symbolise(root_task, &[rdtsc.as_slice(), syscall.as_slice()].concat())?;
    let mut sites = Sites { text: (first, last), ..Sites::default() };
    sites.instructions = instructions.iter().cloned().collect();
    for address in &rdtsc {
        sites.stamps.insert(*address, stamp_kind(frames.get(address).map_or(&[][..], Vec::as_slice)));
    }
    for address in &syscall {
        sites.syscalls.insert(*address);
        sites.resumes.insert(address + 2);
        if frames.get(address).is_some_and(|f| f.iter().any(|f| f.contains("Sel4Platform::receive"))) {
            sites.receives.insert(address + 2);
        }
    }
    for (address, name) in nm_symbols(&tool("nm", &["-C", &root], None)?) {
        if let Some(class) = mark_class(&name) {
            sites.marks.insert(address, class);
        }
    }
    let kernel_symbols = nm_symbols(&tool("nm", &["-n", &kernel.to_string_lossy()], None)?);
    let symbol = |name: &str| kernel_symbols.iter().find(|(_, n)| n == name).map(|(a, _)| *a);
    // The interrupt and exception stubs (`int_00` .. `int_ff`, then `handle_interrupt`) and the
    // syscall entry.
    match (
        symbol("int_00"),
        symbol("handle_interrupt"),
        symbol("handle_fastsyscall"),
        symbol("handle_syscall"),
    ) {
        (Some(stubs), Some(end), Some(fast), Some(slow)) => {
            sites.kernel_entries = vec![(stubs, end), (fast, fast), (slow, slow)];
        }
        _ => bail!("the kernel has no int_00, handle_interrupt, handle_fastsyscall or handle_syscall symbol"),
    }
    if sites.marks.is_empty()
        || !sites.stamps.values().any(|s| *s == Stamp::Loop)
        || sites.receives.is_empty()
    {
        bail!("the root task has no cost-class markers, fault-loop time stamps or receive sites: is it the pager?");
    }
    Ok(sites)
}

/// `-dfilter`'s ranges for the sites.
fn dfilter(sites: &Sites) -> String {
    let mut ranges = vec![format!("{:#x}..{:#x}", sites.text.0, sites.text.1)];
    ranges.extend(sites.kernel_entries.iter().map(|(start, end)| format!("{start:#x}..{end:#x}")));
    ranges.join(",")
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Adds `count` to `key`'s row.
fn add(table: &mut HashMap<String, u64>, key: &str, count: u64) {
    *table.entry(key.to_owned()).or_default() += count;
}

/// The crate a function's path names: its first `name::` (`<usize as core::slice::...>::index` is
/// `core`'s, `<root_task::platform::Sel4Platform as pager::...>::map_page` `root_task`'s).
fn crate_of(function: &str) -> &str {
    let mut start = None;
    for (index, c) in function.char_indices() {
        match (start, c.is_ascii_alphanumeric() || c == '_') {
            (None, true) => start = Some(index),
            (Some(from), false) => {
                if function[index..].starts_with("::") {
                    return &function[from..index];
                }
                start = None;
            }
            _ => {}
        }
    }
    function
}

/// The project's own crates: a profile's rows are theirs, a library frame counted to its caller.
const PROJECT_CRATES: [&str; 5] = ["root_task", "pager", "sel4", "abi", "trace"];

/// The innermost frame of `chain` (innermost first) in one of [`PROJECT_CRATES`], else its
/// outermost frame.
fn project_function(chain: &[String]) -> &str {
    chain.iter().find(|f| PROJECT_CRATES.contains(&crate_of(f))).or(chain.last()).map_or("??", String::as_str)
}

/// Markdown of the profile.
fn report(
    image: &str,
    tracker: &Tracker<'_>,
    frames: &HashMap<u64, Vec<String>>,
    stats: &[stats::Record],
    top: usize,
    annotate: Option<&str>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Profile of {image}: the pager's own code per fault, by function\n\n\
         Guest instructions of the root task in each fault's measured part (the fault loop's two time \
         stamps, less its timed kernel calls; `cargo xtask profile`, xtask/src/profile.rs), mean per \
         fault. The timing of each call is in them (`count_call`, `invoke`, `sel4::timestamp`); the \
         bench takes it out as `timing_overhead` per call, and so does the check against it.\n"
    );
    let _ = writeln!(
        out,
        "Messages that were no served fault (app calls, exits, stepped-over exceptions): {}; stretches \
         without a reply stamp: {}.\n",
        tracker.unclassified, tracker.unfinished
    );
    for (class, profile) in &tracker.classes {
        let record = stats.iter().find(|r| r.scope() == "class" && r.value("class") == Some(class));
        let overhead: u64 = record.and_then(|r| r.value("timing_overhead")?.parse().ok()).unwrap_or(0);
        let bench_median = record.and_then(|r| r.value("pager_code_median")).unwrap_or("-");
        let faults = profile.faults.max(1) as f64;
        let mut totals: Vec<u64> = profile.totals.iter().map(|&(total, _)| total).collect();
        let mut less_timing: Vec<u64> =
            profile.totals.iter().map(|&(total, calls)| total.saturating_sub(calls * overhead)).collect();
        let mean_total = totals.iter().sum::<u64>() as f64 / faults;
        let mut stretches = profile.stretches.clone();
        let calls = profile.totals.iter().map(|&(_, calls)| calls).sum::<u64>() as f64 / faults;
        let _ = writeln!(
            out,
            "## {class}\n\n{} faults; per fault {:.1} instructions (mean), median {}; {:.2} timed calls. \
             Less {overhead} per timed call: median {} against the bench's `pager_code_median` {bench_median} \
             in the same run. The root task's whole stretch per fault (receive to reply, its timed \
             calls' own instructions and its cost record included: its part of the client's round \
             trip): median {}.\n",
            profile.faults,
            mean_total,
            median(&mut totals),
            calls,
            median(&mut less_timing),
            median(&mut stretches),
        );
        let mut innermost = HashMap::new();
        let mut project = HashMap::new();
        let mut outermost = HashMap::new();
        let mut crates = HashMap::new();
        for (pc, count) in &profile.counts {
            let unknown = vec!["??".to_owned()];
            let chain = frames.get(pc).filter(|f| !f.is_empty()).unwrap_or(&unknown);
            add(&mut innermost, &chain[0], *count);
            let own = project_function(chain);
            add(&mut project, own, *count);
            add(&mut crates, crate_of(own), *count);
            add(&mut outermost, chain.last().expect("not empty"), *count);
        }
        let mut outside = HashMap::new();
        for (pc, count) in &profile.stretch_counts {
            let inside = profile.counts.get(pc).copied().unwrap_or(0);
            let unknown = vec!["??".to_owned()];
            let chain = frames.get(pc).filter(|f| !f.is_empty()).unwrap_or(&unknown);
            add(&mut outside, project_function(chain), count.saturating_sub(inside));
        }
        outside.retain(|_, count| *count > 0);
        for (title, table, rows) in [
            ("innermost source function (inlined frames included)", &innermost, top),
            (
                "innermost function of the project's own crates (core and alloc frames to their caller)",
                &project,
                top,
            ),
            ("top-level function (the code it was compiled into)", &outermost, top),
            ("crate of the innermost project function", &crates, top),
            (
                "outside the measured part, in the stretch (timed calls' own instructions, the loop, \
                 the fault's cost record): innermost project function",
                &outside,
                top,
            ),
        ] {
            let mut rows_sorted: Vec<(&String, &u64)> = table.iter().collect();
            rows_sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let _ = writeln!(out, "| {title} | per fault | share |\n|---|---:|---:|");
            let total: u64 = table.values().sum();
            for (name, count) in rows_sorted.iter().take(rows) {
                let _ = writeln!(
                    out,
                    "| `{}` | {:.1} | {:.1} % |",
                    name.replace('|', "\\|"),
                    **count as f64 / faults,
                    100.0 * **count as f64 / total.max(1) as f64
                );
            }
            let rest: u64 = rows_sorted.iter().skip(rows).map(|(_, c)| **c).sum();
            if rest > 0 {
                let _ = writeln!(out, "| (the rest) | {:.1} | |", rest as f64 / faults);
            }
            out.push('\n');
        }
        if !profile.callers.is_empty() {
            let mut by_function = HashMap::new();
            for (pc, count) in &profile.callers {
                let unknown = vec!["??".to_owned()];
                let chain = frames.get(pc).filter(|f| !f.is_empty()).unwrap_or(&unknown);
                add(&mut by_function, project_function(chain), *count);
            }
            let mut rows: Vec<(&String, &u64)> = by_function.iter().collect();
            rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let _ = writeln!(out, "| calls of the `--callers` functions, from | per fault |\n|---|---:|");
            for (name, count) in rows.iter().take(top) {
                let _ = writeln!(out, "| `{}` | {:.2} |", name.replace('|', "\\|"), **count as f64 / faults);
            }
            out.push('\n');
        }
        if let Some(name) = annotate {
            let mut listed: Vec<(&u64, &u64)> = profile
                .stretch_counts
                .iter()
                .filter(|(pc, _)| frames.get(pc).and_then(|f| f.last()).is_some_and(|f| f.contains(name)))
                .collect();
            listed.sort();
            let _ = writeln!(
                out,
                "Instructions of `{name}`, per fault: in the measured part, then in the whole stretch:\n\n```"
            );
            for (pc, count) in listed {
                let instruction = tracker.sites.instructions.get(pc).map_or("?", String::as_str);
                let source = frames.get(pc).and_then(|f| f.first()).map_or("??", String::as_str);
                let measured = profile.counts.get(pc).copied().unwrap_or(0) as f64 / faults;
                let all = *count as f64 / faults;
                let _ = writeln!(out, "{pc:8x} {measured:6.2} {all:6.2}  {instruction:40}  {source}");
            }
            let _ = writeln!(out, "```\n");
        }
    }
    out
}

pub fn run(workspace: &Workspace, arguments: &ProfileArguments) -> Result<()> {
    let root_task = root_task::build(workspace)?;
    let (_, image) = crate::compose_manifest(workspace, &root_task, &arguments.manifest)?;
    host_setup::ensure_qemu(workspace)?;
    let mut sites = sites(&image.root_task, &image.kernel)?;
    if let Some(name) = &arguments.callers {
        let symbols = nm_symbols(&tool("nm", &["-C", &image.root_task.to_string_lossy()], None)?);
        sites.callees =
            symbols.iter().filter(|(_, symbol)| symbol.contains(name.as_str())).map(|(a, _)| *a).collect();
        if sites.callees.is_empty() {
            bail!("no function of the root task is named like {name}");
        }
    }
    let directory = workspace.target_directory.join("profile");
    std::fs::create_dir_all(&directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let serial_path = directory.join(format!("{}.serial.log", image.name));
    let mut qemu_arguments =
        qemu::arguments(&image.kernel.to_string_lossy(), &image.root_task.to_string_lossy(), image.memory);
    for argument in &mut qemu_arguments {
        if argument == "stdio" {
            *argument = format!("file:{}", serial_path.display());
        }
    }
    if image.variant == crate::kernel::Variant::Debug {
        bail!("{} boots the debug kernel: profile an image on the release kernel", image.name);
    }
    qemu_arguments.extend(qemu::ICOUNT_ARGUMENTS.map(str::to_owned));
    qemu_arguments.extend(
        ["-singlestep", "-d", "exec,nochain", "-dfilter", &dfilter(&sites), "-D", "/dev/stdout"]
            .map(str::to_owned),
    );
    eprintln!("... profile {}: {} {}", image.name, qemu::PROGRAM, qemu_arguments.join(" "));
    let started = Instant::now();
    let mut child = Command::new(qemu::PROGRAM)
        .args(&qemu_arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start qemu-system-x86_64")?;
    let log = child.stdout.take().context("QEMU has no stdout pipe")?;
    let mut stderr = child.stderr.take().context("QEMU has no stderr pipe")?;
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Duration::from_secs(arguments.timeout);
    let watchdog = std::thread::spawn(move || loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if started.elapsed() > deadline => {
                let _ = child.kill();
                return child.wait().map_err(anyhow::Error::from);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(error) => return Err(anyhow::Error::from(error)),
        }
    });
    let mut tracker = Tracker::new(&sites, arguments.faults);
    let mut lines = 0u64;
    for line in BufReader::with_capacity(1 << 20, log).lines() {
        let line = line.context("reading QEMU's exec log")?;
        if let Some(pc) = exec_line_pc(&line) {
            tracker.instruction(pc);
            lines += 1;
        }
    }
    let status = watchdog.join().map_err(|_| anyhow::anyhow!("watchdog panicked"))??;
    let qemu_stderr = stderr_reader.join().unwrap_or_default();
    let serial = std::fs::read_to_string(&serial_path)
        .with_context(|| format!("cannot read {}", serial_path.display()))?;
    eprintln!("    {lines} logged instructions in {:.1} s, QEMU {status}", started.elapsed().as_secs_f64());
    if !serial.contains(qemu::PASS_MARKER) {
        bail!(
            "{} did not pass under the profiler (serial: {}){}",
            image.name,
            serial_path.display(),
            qemu_stderr.lines().last().map(|l| format!("; QEMU: {l}")).unwrap_or_default()
        );
    }
    let addresses: Vec<u64> = {
        let set: HashSet<u64> = tracker
            .classes
            .values()
            .flat_map(|p| p.stretch_counts.keys().chain(p.counts.keys()).copied())
            .collect();
        let mut addresses: Vec<u64> = set.into_iter().collect();
        addresses.sort_unstable();
        addresses
    };
    let frames = symbolise(&image.root_task, &addresses)?;
    let stats = stats::parse(&serial);
    let markdown =
        report(&image.name, &tracker, &frames, &stats, arguments.top, arguments.annotate.as_deref());
    let path = directory.join(format!("{}.md", image.name));
    std::fs::write(&path, &markdown).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{markdown}");
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exec_log_lines() {
        let line = "Trace 0: 0x7f3bd4000240 [00000000000f0000/000000000041dd12/00000040/ff020201] ";
        assert_eq!(exec_line_pc(line), Some(0x41dd12));
        assert_eq!(exec_line_pc("Linking TBs 0x1 [0000000000400000] index 0"), None);
        assert_eq!(exec_line_pc("Trace 0: 0x1 [zz/qq/0/0]"), None);
    }

    #[test]
    fn reads_objdump_and_nm() {
        let dump = "\nroot-task.elf:     file format elf64-x86-64\n\n\
                    000000000041dd10 <_ZN4run>:\n  41dd10:\tpush   %rbp\n  41dd12:\trdtsc\n  41dd14:\tsyscall\n";
        assert_eq!(
            objdump_instructions(dump),
            vec![
                (0x41dd10, "push %rbp".to_owned()),
                (0x41dd12, "rdtsc".to_owned()),
                (0x41dd14, "syscall".to_owned())
            ]
        );
        assert_eq!(mnemonic("push %rbp"), "push");
        let symbols =
            nm_symbols("80717c21 T handle_fastsyscall\n0000000000401000 t root_task::costs::marks::zero\n");
        assert_eq!(symbols[0], (0xffff_ffff_8071_7c21, "handle_fastsyscall".to_owned()));
        assert_eq!(symbols[1].0, 0x401000);
        assert_eq!(mark_class(&symbols[1].1).as_deref(), Some("zero"));
        assert_eq!(
            mark_class("root_task::costs::marks::shared_first::h0123456789abcdef").as_deref(),
            Some("shared-first")
        );
        assert_eq!(mark_class("root_task::costs::record"), None);
    }

    #[test]
    fn reads_inlined_frames_and_tells_stamps_apart() {
        let output = "0x000000000041dd12\ncore::core_arch::x86::rdtsc::_rdtsc\n/x/rdtsc.rs:27\n\
                      sel4::timestamp::timestamp\n/x/timestamp.rs:12\nroot_task::fault_loop::loop_stamp\n/x/fault_loop.rs:160\n\
                      0x0000000000409f87\ncore::core_arch::x86::rdtsc::_rdtsc\n/x/rdtsc.rs:27\n\
                      sel4::timestamp::timestamp\n/x/timestamp.rs:12\n\
                      root_task::platform::Sel4Platform::count_call\n/x/platform.rs:1\n\
                      root_task::platform::Sel4Platform::invoke\n/x/platform.rs:2\n\
                      0x0000000000409f55\ncore::core_arch::x86::rdtsc::_rdtsc\n/x/rdtsc.rs:27\n\
                      sel4::timestamp::timestamp\n/x/timestamp.rs:12\n\
                      root_task::platform::Sel4Platform::invoke\n/x/platform.rs:2\n";
        let frames = addr2line_frames(output);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].0, 0x41dd12);
        assert_eq!(frames[0].1.len(), 3);
        assert_eq!(frames[1].1[3], "root_task::platform::Sel4Platform::invoke");
        let kinds: Vec<Stamp> = frames.iter().map(|(_, f)| stamp_kind(f)).collect();
        assert_eq!(kinds, [Stamp::Loop, Stamp::CallEnd, Stamp::Other]);
        assert_eq!(
            crate_of("<root_task::platform::Sel4Platform as pager::platform::MapPages>::map_page"),
            "root_task"
        );
        assert_eq!(crate_of("<usize as core::slice::index::SliceIndex<[T]>>::index"), "core");
        assert_eq!(crate_of("<&u64 as core::ops::Sub>::sub"), "core");
        assert_eq!(crate_of("memcpy"), "memcpy");
        let chain =
            ["core::slice::index::get".to_owned(), "pager::seed::classify".to_owned(), "pager::x".to_owned()];
        assert_eq!(project_function(&chain), "pager::seed::classify");
        assert_eq!(project_function(&["memcpy".to_owned()]), "memcpy");
    }

    /// A root task at 0x1000.., the kernel's entry at 0xf000: receive syscall at 0x1000 (resume
    /// 0x1002), the loop's stamps at 0x1010 and 0x1020, a timed call 0x1030 (stamp) .. 0x1032
    /// (syscall) .. 0x1034 (`count_call`'s stamp), markers at 0x1050 (zero) and 0x1060 (image).
    fn test_sites() -> Sites {
        let mut sites =
            Sites { text: (0x1000, 0x10ff), kernel_entries: vec![(0xf000, 0xf000)], ..Sites::default() };
        for syscall in [0x1000, 0x1032] {
            sites.syscalls.insert(syscall);
            sites.resumes.insert(syscall + 2);
        }
        sites.receives.insert(0x1002);
        sites.stamps.insert(0x1010, Stamp::Loop);
        sites.stamps.insert(0x1020, Stamp::Loop);
        sites.stamps.insert(0x1030, Stamp::Other);
        sites.stamps.insert(0x1034, Stamp::CallEnd);
        sites.marks.insert(0x1050, "zero".to_owned());
        sites.marks.insert(0x1060, "image".to_owned());
        sites
    }

    #[test]
    fn keeps_a_faults_measured_part_less_its_timed_calls() {
        let sites = test_sites();
        let mut tracker = Tracker::new(&sites, 10);
        let run = |tracker: &mut Tracker<'_>, pcs: &[u64]| pcs.iter().for_each(|&pc| tracker.instruction(pc));
        // The root task waits; a client runs at the root task's addresses, faults.
        run(&mut tracker, &[0x1000, 0xf000, 0x1010, 0x1011, 0x1020, 0xf000]);
        assert!(tracker.classes.is_empty() && tracker.measuring.is_none(), "the client is not the root task");
        // The fault arrives: stamp, 2 instructions, a timed call, 1 instruction, the reply stamp,
        // the cost record with its class's marker, the reply.
        run(&mut tracker, &[0x1002, 0x1010, 0x1011, 0x1012, 0x1030, 0x1031, 0x1032, 0xf000]);
        run(&mut tracker, &[0x1034, 0x1035, 0x1020, 0x1021, 0x1050, 0x1051, 0x1000, 0xf000]);
        assert!(tracker.classes.is_empty(), "kept when its stretch ends, at the next receive");
        // The client runs, at a marker's address too, and faults again.
        run(&mut tracker, &[0x1060, 0xf000, 0x1002]);
        let zero = &tracker.classes["zero"];
        // 0x1010, 0x1011, 0x1012, then 0x1034 (the call's end stamp) and 0x1035.
        assert_eq!(zero.totals, vec![(5, 1)]);
        assert_eq!(zero.counts.get(&0x1031), None, "inside the timed call");
        assert_eq!(zero.counts[&0x1034], 1);
        // Its stretch: 0x1002 .. 0x1000, the timed call's 0x1031 and 0x1032 and the cost record
        // included (14).
        assert_eq!(zero.stretches, vec![14]);
        assert!(
            !tracker.classes.contains_key("image"),
            "the client's code at a marker's address is not a marker"
        );
        // An interrupt inside the root task's code resumes it.
        run(&mut tracker, &[0x1010, 0x1011, 0xf000, 0x1012, 0x1020, 0x1060, 0x1000, 0xf000, 0x1002]);
        assert_eq!(tracker.classes["image"].totals, vec![(3, 0)]);
        // A message without a reply stamp (an app call whose stretch ends at the next receive),
        // then a measured part with no class after it.
        run(&mut tracker, &[0x1010, 0x1011, 0x1000, 0xf000, 0x1002]);
        run(&mut tracker, &[0x1010, 0x1020, 0x1000, 0xf000, 0x1002, 0x1010]);
        assert_eq!((tracker.unfinished, tracker.unclassified), (1, 1));
        assert_eq!(tracker.classes["image"].totals, vec![(3, 0)]);
    }
}
