//! The count of `cargo xtask test`: passed and failed checks per phase, and one total for CI.
//!
//! A phase counts what it runs: a `cargo test` phase its tests (from the test harness's `test
//! result:` lines, a binary without the harness as one test), the fuzz phase its targets, the boot
//! phase its images. A phase that fails where no single check can be blamed (a build error, a setup
//! step) counts one failure, so a total of no failures always means that every phase passed.

use std::fmt::Write as _;

/// Passed and failed checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
}

impl Tally {
    /// One check, passed or failed.
    pub fn one(passed: bool) -> Self {
        if passed {
            Self { passed: 1, failed: 0 }
        } else {
            Self { passed: 0, failed: 1 }
        }
    }
}

impl std::ops::Add for Tally {
    type Output = Tally;

    fn add(self, other: Tally) -> Tally {
        Tally { passed: self.passed + other.passed, failed: self.failed + other.failed }
    }
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        *self = *self + other;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

/// Every phase's tally, in the order they ran.
#[derive(Default)]
pub struct Summary {
    phases: Vec<(String, Tally)>,
}

impl Summary {
    pub fn record(&mut self, phase: &str, tally: Tally) {
        self.phases.push((phase.to_owned(), tally));
    }

    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        for (_, tally) in &self.phases {
            total += *tally;
        }
        total
    }

    /// The phases that had a failure.
    pub fn failed_phases(&self) -> Vec<&str> {
        self.phases.iter().filter(|(_, tally)| tally.failed > 0).map(|(phase, _)| phase.as_str()).collect()
    }

    /// A line per phase, then the total alone on the last line (`N passed, M failed`).
    pub fn render(&self) -> String {
        let width = self.phases.iter().map(|(phase, _)| phase.len()).max().unwrap_or(0);
        let mut out = String::from("summary:\n");
        for (phase, tally) in &self.phases {
            let mark = if tally.failed > 0 { "FAILED" } else { "ok" };
            let _ = writeln!(out, "  {phase:<width$}  {mark:<6}  {tally}");
        }
        let _ = writeln!(out, "{}", self.total());
        out
    }
}

/// Counts a `cargo test` run from its output (stdout and stderr in the order written) and whether it
/// succeeded.
///
/// Each test binary's output follows cargo's `Running ...` or `Doc-tests ...` line. A binary with the
/// harness adds the figures of its `test result:` line; one without counts as one test, failed when
/// cargo says `error: test failed` after it. A failed run in which no test failed (a build error)
/// counts one failure.
pub fn count_cargo_test(output: &str, success: bool) -> Tally {
    let mut tally = Tally::default();
    // For the binary running now: whether it printed a result line, and whether cargo said it failed.
    let mut binary: Option<(bool, bool)> = None;
    let close = |binary: Option<(bool, bool)>, tally: &mut Tally| {
        if let Some((false, failed)) = binary {
            *tally += Tally::one(!failed);
        }
    };
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with("Running ") || line.starts_with("Doc-tests ") {
            close(binary.take(), &mut tally);
            binary = Some((false, false));
        } else if let Some(result) = line.strip_prefix("test result: ") {
            tally += parse_result(result);
            if let Some((seen, _)) = &mut binary {
                *seen = true;
            }
        } else if line.starts_with("error: test failed") {
            if let Some((_, failed)) = &mut binary {
                *failed = true;
            }
        }
    }
    close(binary, &mut tally);
    if !success && tally.failed == 0 {
        tally.failed = 1;
    }
    tally
}

/// The figures of a harness's result line: `ok. 12 passed; 0 failed; 1 ignored; ...`.
fn parse_result(result: &str) -> Tally {
    let mut tally = Tally::default();
    let result = result.split_once(". ").map_or(result, |(_, figures)| figures);
    for part in result.split(';') {
        let mut words = part.split_whitespace();
        let (Some(count), Some(what)) = (words.next(), words.next()) else { continue };
        let Ok(count) = count.parse::<usize>() else { continue };
        match what {
            "passed" => tally.passed += count,
            "failed" => tally.failed += count,
            _ => {}
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSING: &str = "\
   Compiling pager v0.1.0
    Finished `test` profile [unoptimized + debuginfo] target(s) in 2.0s
     Running unittests src/lib.rs (target/debug/deps/pager-586ec349e0fa4106)

running 7 tests
test area::tests::one ... ok

test result: ok. 7 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.09s

     Running tests/resident.rs (target/debug/deps/resident-f9c7624a7b64fe03)
resident_pages_match_a_btree_map_and_count_their_heap: 256 cases passed
     Running tests/abi.rs (target/debug/deps/abi-d3548c26bba705ce)

running 12 tests
test result: ok. 0 passed; 0 failed; 12 ignored; 0 measured; 0 filtered out; finished in 0.00s

   Doc-tests sim

running 1 test
test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.22s
";

    #[test]
    fn counts_harness_results_and_harnessless_binaries() {
        // 7 + the resident binary + 0 (all ignored) + 1.
        assert_eq!(count_cargo_test(PASSING, true), Tally { passed: 9, failed: 0 });
    }

    #[test]
    fn counts_failed_tests_and_failed_binaries() {
        let output = "\
     Running unittests src/main.rs (target/debug/deps/root_task-8e7820a88eb7c600)
test result: FAILED. 9 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
error: test failed, to rerun pass `-p root-task --bin root-task`
     Running unittests src/main.rs (target/debug/deps/hello-3ca625d1d5dcb988)
this program runs under the seL4 pager: build it for x86_64-unknown-none
error: test failed, to rerun pass `-p hello --bin hello`
     Running tests/resident.rs (target/debug/deps/resident-f9c7624a7b64fe03)
resident: 256 cases passed
error: 2 targets failed:
";
        assert_eq!(count_cargo_test(output, false), Tally { passed: 10, failed: 2 });
    }

    #[test]
    fn a_failed_build_is_one_failure() {
        let output = "   Compiling pager v0.1.0\nerror[E0425]: cannot find value `x` in this scope\n";
        assert_eq!(count_cargo_test(output, false), Tally { passed: 0, failed: 1 });
        assert_eq!(count_cargo_test("", true), Tally::default());
    }

    #[test]
    fn summary_ends_with_the_total_alone_on_a_line() {
        let mut summary = Summary::default();
        summary.record("host tests", Tally { passed: 300, failed: 0 });
        summary.record("fuzz targets", Tally { passed: 2, failed: 1 });
        summary.record("boots", Tally::one(true));
        assert_eq!(summary.total(), Tally { passed: 303, failed: 1 });
        assert_eq!(summary.failed_phases(), ["fuzz targets"]);
        let rendered = summary.render();
        assert_eq!(rendered.lines().last(), Some("303 passed, 1 failed"));
        assert!(rendered.contains("  fuzz targets  FAILED  2 passed, 1 failed\n"), "{rendered}");
        assert!(rendered.contains("  host tests    ok      300 passed, 0 failed\n"), "{rendered}");
    }
}
