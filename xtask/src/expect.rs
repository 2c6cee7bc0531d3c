//! Judging a pager-mode run against its manifest's expectations.
//!
//! The serial contract (docs/app-abi.md): an app's lines are `[<app>#<instance>] <text>`; the pager
//! reports `[pager] <app>#<i> exited with <code>` or `[pager] stopped <app>#<i>: <access> at <addr>
//! (ip <ip>): <reason>`. A manifest writes an app's `expect.output` lines *without* the prefix: every
//! instance must print each of them, as a whole line. Image-level `expect.output` lines are matched
//! verbatim as whole lines. Lines may come in any order (instances interleave). An app that runs
//! several times (`runs`) must show its exit line once per run, exactly.

use std::fmt::Write as _;

use manifest::Manifest;

/// One line the serial log must show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// This exact line.
    Line(String),
    /// This exact line, exactly this many times.
    Times(String, usize),
    /// A line starting with `prefix` that contains `fragment` after it.
    Containing { prefix: String, fragment: String },
    /// A `[stats]` line carrying every one of these pairs (and maybe more); a value `>N` is met by
    /// any number above N ([`value_meets`]).
    Stats(Vec<(String, String)>),
}

/// A requirement with the lines that look related, for the report when it is not met.
struct Expected {
    requirement: Requirement,
    /// Lines starting with any of these are shown as "seen instead".
    related: Vec<String>,
}

impl Requirement {
    /// Whether the serial lines meet the requirement.
    fn is_met(&self, lines: &[&str]) -> bool {
        match self {
            Self::Times(expected, times) => lines.iter().filter(|line| **line == expected).count() == *times,
            _ => lines.iter().any(|line| self.is_met_by(line)),
        }
    }

    fn is_met_by(&self, line: &str) -> bool {
        match self {
            Self::Line(expected) | Self::Times(expected, _) => line == expected,
            Self::Containing { prefix, fragment } => {
                line.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.contains(fragment.as_str()))
            }
            Self::Stats(pairs) => crate::stats::parse_line(line).is_some_and(|record| {
                pairs
                    .iter()
                    .all(|(key, value)| record.value(key).is_some_and(|seen| value_meets(value, seen)))
            }),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Line(line) => line.clone(),
            Self::Times(line, times) => format!("{line} (exactly {times} times)"),
            Self::Containing { prefix, fragment } => format!("{prefix}...{fragment}..."),
            Self::Stats(pairs) => {
                let pairs: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| if v.starts_with('>') { format!("{k}{v}") } else { format!("{k}={v}") })
                    .collect();
                format!("{}... {} ...", crate::stats::PREFIX, pairs.join(" ... "))
            }
        }
    }
}

/// Whether a `[stats]` value seen meets an expected one: `>N` (the manifest's "more than" form,
/// checked a number there) by a number above N, anything else by the same text.
fn value_meets(expected: &str, seen: &str) -> bool {
    match expected.strip_prefix('>') {
        Some(bound) => match (bound.trim().parse::<f64>(), seen.parse::<f64>()) {
            (Ok(bound), Ok(seen)) => seen > bound,
            _ => false,
        },
        None => seen == expected,
    }
}

/// The lines of a serial log, without the carriage returns of the kernel's "\n\r" line ends.
pub fn serial_lines(serial: &str) -> Vec<&str> {
    serial.lines().map(|line| line.trim_matches('\r')).collect()
}

fn requirements(manifest: &Manifest) -> Vec<Expected> {
    let mut all = Vec::new();
    for app in &manifest.apps {
        for instance in 0..app.instances {
            let client = format!("{}#{instance}", app.name);
            let pager_lines = vec![format!("[pager] {client} exited "), format!("[pager] stopped {client}:")];
            let requirement = match &app.expect.stopped {
                Some(fragment) => Requirement::Containing {
                    prefix: format!("[pager] stopped {client}: "),
                    fragment: fragment.clone(),
                },
                None => {
                    let line = format!("[pager] {client} exited with {}", app.expect.exit_code);
                    match app.runs {
                        1 => Requirement::Line(line),
                        runs => Requirement::Times(line, usize::from(runs)),
                    }
                }
            };
            all.push(Expected { requirement, related: pager_lines.clone() });
            for line in &app.expect.output {
                all.push(Expected {
                    requirement: Requirement::Line(format!("[{client}] {line}")),
                    related: vec![format!("[{client}] ")],
                });
            }
        }
    }
    for line in &manifest.expect.output {
        all.push(Expected { requirement: Requirement::Line(line.clone()), related: Vec::new() });
    }
    if manifest.expect.frames_returned {
        // The root task checks this too; seen from here, a root task that forgot to would not pass.
        let pairs = [
            ("scope", "total"),
            ("frames_in_use", "0"),
            ("large_frames_in_use", "0"),
            ("copy_slots_in_use", "0"),
        ];
        all.push(Expected {
            requirement: Requirement::Stats(pairs.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()),
            related: vec![format!("{}scope=total", crate::stats::PREFIX)],
        });
    }
    for pairs in &manifest.expect.stats {
        let scope = pairs.iter().find(|(k, _)| k == "scope").map_or("", |(_, v)| v.as_str());
        all.push(Expected {
            requirement: Requirement::Stats(pairs.clone()),
            related: vec![format!("{}scope={scope}", crate::stats::PREFIX)],
        });
    }
    all
}

/// How many related lines a failure report shows per missing line.
const RELATED_LIMIT: usize = 8;

/// `Ok` with the number of requirements met when every one is; otherwise a diff-like report: each
/// missing line after `-`, the related lines that were seen after `+`.
pub fn check(manifest: &Manifest, serial: &str) -> Result<usize, String> {
    let lines = serial_lines(serial);
    let requirements = requirements(manifest);
    let mut report = String::new();
    let mut missing = 0;
    for Expected { requirement, related } in &requirements {
        if requirement.is_met(&lines) {
            continue;
        }
        missing += 1;
        let _ = writeln!(report, "- {}", requirement.describe());
        let seen: Vec<&&str> =
            lines.iter().filter(|line| related.iter().any(|prefix| line.starts_with(prefix))).collect();
        for line in seen.iter().take(RELATED_LIMIT) {
            let _ = writeln!(report, "+ {line}");
        }
        if seen.len() > RELATED_LIMIT {
            let _ = writeln!(report, "+ ... {} more", seen.len() - RELATED_LIMIT);
        }
    }
    if missing == 0 {
        return Ok(requirements.len());
    }
    Err(format!(
        "{missing} of {} expected lines missing from serial (- expected, + related lines seen):\n{}",
        requirements.len(),
        report.trim_end()
    ))
}

/// The whole verdict on a pager-mode run: the runner's (one PASS marker, status 33, no timeout) and
/// the manifest's expectations, both reported when both fail. `Ok` with the lines matched.
pub fn judge(manifest: &Manifest, outcome: &crate::qemu::BootOutcome) -> Result<usize, String> {
    match (outcome.verdict(), check(manifest, &outcome.serial)) {
        (Ok(()), Ok(lines)) => Ok(lines),
        (Err(reason), Ok(_)) => Err(reason),
        (Ok(()), Err(report)) => Err(report),
        (Err(reason), Err(report)) => Err(format!("{reason}\n{report}")),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(Path::new("manifests/t.toml"), text).unwrap()
    }

    const TWO_APPS: &str = r#"
        name = "t"
        expect.output = ["[pager] all clients done"]
        [[app]]
        name = "hello"
        crate = "hello"
        instances = 2
        expect.output = ["Hello from the pager", "bye"]
        [[app]]
        name = "bad"
        crate = "bad"
        expect.stopped = "write at 0x0"
    "#;

    const GOOD_SERIAL: &str = "boot\n\r\
        [hello#1] Hello from the pager\n\r\
        [hello#0] Hello from the pager\n\r\
        [hello#0] bye\n\r\
        [hello#1] bye\n\r\
        [pager] hello#0 exited with 0\n\r\
        [pager] stopped bad#0: write at 0x0 (ip 0x401000): no area\n\r\
        [pager] hello#1 exited with 0\n\r\
        [pager] all clients done\n\r\
        [stats] scope=total clients=3 frames_in_use=0 frames_free=4 large_frames_in_use=0 copy_slots_in_use=0\n\r\
        [test] PASS\n\r";

    #[test]
    fn a_run_showing_every_line_passes() {
        assert_eq!(check(&manifest(TWO_APPS), GOOD_SERIAL), Ok(2 * 3 + 1 + 1 + 1));
    }

    #[test]
    fn a_wrong_exit_code_is_reported_with_the_line_seen() {
        let serial = GOOD_SERIAL.replace("hello#1 exited with 0", "hello#1 exited with 3");
        let report = check(&manifest(TWO_APPS), &serial).unwrap_err();
        assert!(report.starts_with("1 of 9 expected lines missing"), "{report}");
        assert!(
            report.contains("\n- [pager] hello#1 exited with 0\n+ [pager] hello#1 exited with 3"),
            "{report}"
        );
    }

    #[test]
    fn an_unexpected_stop_shows_the_stop_line() {
        let serial = GOOD_SERIAL.replace(
            "[pager] hello#0 exited with 0",
            "[pager] stopped hello#0: read at 0x9000 (ip 0x400123): no area",
        );
        let report = check(&manifest(TWO_APPS), &serial).unwrap_err();
        assert!(
            report.contains("- [pager] hello#0 exited with 0\n+ [pager] stopped hello#0: read at 0x9000"),
            "{report}"
        );
    }

    #[test]
    fn stop_reasons_must_contain_the_fragment() {
        let serial = GOOD_SERIAL.replace("write at 0x0", "read at 0x0");
        let report = check(&manifest(TWO_APPS), &serial).unwrap_err();
        assert!(report.contains("- [pager] stopped bad#0: ...write at 0x0..."), "{report}");
        assert!(report.contains("+ [pager] stopped bad#0: read at 0x0"), "{report}");
    }

    #[test]
    fn output_lines_are_whole_lines_for_every_instance() {
        // hello#1 printed "bye" only as part of a longer line; hello#10 does not count for hello#1.
        let serial = GOOD_SERIAL
            .replace("[hello#1] bye\n", "[hello#1] bye bye\n")
            .replace("[hello#0] bye\n", "[hello#0] bye\n\r[hello#10] bye\n");
        let report = check(&manifest(TWO_APPS), &serial).unwrap_err();
        assert!(
            report.contains("- [hello#1] bye\n+ [hello#1] Hello from the pager\n+ [hello#1] bye bye"),
            "{report}"
        );
        assert!(!report.contains("hello#0"), "{report}");
    }

    #[test]
    fn stats_expectations_need_every_pair_on_one_line() {
        let manifest = manifest(
            "name = \"t\"\n[[app]]\nname = \"a\"\ncrate = \"a\"\n[[expect.stats]]\nscope = \"area\"\nclient = \"a#0\"\nzero = 64\n",
        );
        let exit = "[pager] a#0 exited with 0\n[stats] scope=total frames_in_use=0 large_frames_in_use=0 copy_slots_in_use=0\n";
        let good = format!("{exit}[stats] scope=area client=a#0 area=segment-2 resident=64 zero=64\n");
        assert_eq!(check(&manifest, &good), Ok(3));
        // The pairs split over two lines do not count.
        let split =
            format!("{exit}[stats] scope=area client=a#0 zero=63\n[stats] scope=area client=a#1 zero=64\n");
        let report = check(&manifest, &split).unwrap_err();
        assert!(report.contains("- [stats] ... client=a#0 ... scope=area ... zero=64 ..."), "{report}");
        assert!(report.contains("+ [stats] scope=area client=a#0 zero=63"), "{report}");
    }

    #[test]
    fn a_more_than_value_needs_a_number_above_it() {
        let manifest = manifest(
            "name = \"t\"\nexpect.frames_returned = false\n[[app]]\nname = \"a\"\ncrate = \"a\"\n\
             [[expect.stats]]\nscope = \"client\"\nname = \"a#0\"\nevictions = \">0\"\nratio = \">1.5\"\n",
        );
        let line = |evictions: &str, ratio: &str| {
            format!("[pager] a#0 exited with 0\n[stats] scope=client name=a#0 evictions={evictions} ratio={ratio}\n")
        };
        assert_eq!(check(&manifest, &line("1", "1.51")), Ok(2));
        assert_eq!(check(&manifest, &line("123456", "7.00")), Ok(2));
        for (evictions, ratio) in [("0", "2.00"), ("5", "1.50"), ("-", "2.00"), ("many", "2.00")] {
            let report = check(&manifest, &line(evictions, ratio)).unwrap_err();
            assert!(
                report.contains("- [stats] ... evictions>0 ... name=a#0 ... ratio>1.5 ... scope=client ..."),
                "{report}"
            );
        }
        // A line without the key does not meet it either.
        let missing = "[pager] a#0 exited with 0\n[stats] scope=client name=a#0 ratio=2.00\n";
        assert!(check(&manifest, missing).is_err());
        // `>` is the more-than form only at the start; elsewhere the value is text as ever.
        assert!(value_meets("a>b", "a>b") && !value_meets("a>b", "a"));
    }

    #[test]
    fn an_app_with_runs_exits_once_per_run() {
        let manifest = manifest(
            "name = \"t\"\nexpect.frames_returned = false\n[[app]]\nname = \"a\"\ncrate = \"a\"\nruns = 3\n",
        );
        let exits = |n: usize| "[pager] a#0 exited with 0\n\r".repeat(n);
        assert_eq!(check(&manifest, &exits(3)), Ok(1));
        for wrong in [2, 4] {
            let report = check(&manifest, &exits(wrong)).unwrap_err();
            assert!(report.contains("- [pager] a#0 exited with 0 (exactly 3 times)"), "{report}");
        }
    }

    #[test]
    fn frames_must_come_back_unless_the_manifest_says_otherwise() {
        let serial = GOOD_SERIAL.replace("frames_in_use=0", "frames_in_use=2");
        let report = check(&manifest(TWO_APPS), &serial).unwrap_err();
        assert!(
            report.contains("- [stats] ... scope=total ... frames_in_use=0 ... large_frames_in_use=0 ... copy_slots_in_use=0 ...\n+ [stats] scope=total clients=3 frames_in_use=2"),
            "{report}"
        );
        let relaxed =
            TWO_APPS.replace("name = \"t\"", "name = \"t\"\n        expect.frames_returned = false");
        assert_eq!(check(&manifest(&relaxed), &serial), Ok(2 * 3 + 1 + 1));
    }

    #[test]
    fn image_lines_are_verbatim() {
        let serial = GOOD_SERIAL.replace("[pager] all clients done", "[pager] all clients done.");
        let report = check(&manifest(TWO_APPS), &serial).unwrap_err();
        assert!(report.ends_with("- [pager] all clients done"), "{report}");
    }
}
