//! The pager's `[stats]` lines: parsed generically, shown as tables.
//!
//! A statistics line is `[stats] ` followed by space-separated `key=value` pairs, the first being
//! `scope=<...>` (`total`, `client`, `area`, ...). Nothing here knows the keys: whatever the pager
//! reports is shown, grouped by scope, in the order it first appears.

use std::fmt::Write as _;

/// The prefix of a statistics line.
pub const PREFIX: &str = "[stats] ";

/// One `[stats]` line: its pairs in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub pairs: Vec<(String, String)>,
}

impl Record {
    /// The value of `key`, if present.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The `scope` value, or empty when the line has none.
    pub fn scope(&self) -> &str {
        self.value("scope").unwrap_or("")
    }
}

/// Parses one line; `None` when it is not a statistics line. A word without `=` becomes a key with
/// an empty value, so nothing the pager prints is lost.
pub fn parse_line(line: &str) -> Option<Record> {
    let rest = line.trim_matches('\r').strip_prefix(PREFIX)?;
    let pairs = rest
        .split_whitespace()
        .map(|word| match word.split_once('=') {
            Some((key, value)) => (key.to_owned(), value.to_owned()),
            None => (word.to_owned(), String::new()),
        })
        .collect();
    Some(Record { pairs })
}

/// Scopes shown first, in this order.
const SCOPE_ORDER: [&str; 3] = ["total", "client", "area"];

/// Every statistics line of a serial log, in order.
pub fn parse(serial: &str) -> Vec<Record> {
    serial.lines().filter_map(parse_line).collect()
}

/// Tables of the records, one per scope (`total`, `client`, `area`, then any other in order of
/// appearance): a lone record as `key  value` lines, several as rows with a
/// column per key (the scope itself left out). Empty when there are no records.
pub fn render(records: &[Record]) -> String {
    let mut scopes: Vec<&str> = Vec::new();
    for record in records {
        if !scopes.contains(&record.scope()) {
            scopes.push(record.scope());
        }
    }
    // The summary first, then the detail; other scopes as they come.
    scopes.sort_by_key(|scope| SCOPE_ORDER.iter().position(|s| s == scope).unwrap_or(SCOPE_ORDER.len()));
    let mut out = String::new();
    for scope in scopes {
        let group: Vec<&Record> = records.iter().filter(|r| r.scope() == scope).collect();
        let mut keys: Vec<&str> = Vec::new();
        for record in &group {
            for (key, _) in &record.pairs {
                if key != "scope" && !keys.contains(&key.as_str()) {
                    keys.push(key);
                }
            }
        }
        let title = if scope.is_empty() { "(no scope)" } else { scope };
        let _ = writeln!(out, "{title}:");
        if let [record] = group.as_slice() {
            let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
            for key in &keys {
                let _ = writeln!(out, "  {key:<width$}  {}", record.value(key).unwrap_or("-"));
            }
            continue;
        }
        let rows: Vec<Vec<&str>> =
            group.iter().map(|r| keys.iter().map(|k| r.value(k).unwrap_or("-")).collect()).collect();
        let widths: Vec<usize> = keys
            .iter()
            .enumerate()
            .map(|(column, key)| rows.iter().map(|row| row[column].len()).max().unwrap_or(0).max(key.len()))
            .collect();
        let line = |cells: &[&str]| {
            let cells: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                // Text left (names), numbers and gaps right.
                .map(|(column, (cell, &width))| {
                    if column > 0 && (*cell == "-" || cell.parse::<f64>().is_ok()) {
                        format!("{cell:>width$}")
                    } else {
                        format!("{cell:<width$}")
                    }
                })
                .collect();
            format!("  {}", cells.join("  ").trim_end())
        };
        let _ = writeln!(out, "{}", line(&keys));
        for row in &rows {
            let _ = writeln!(out, "{}", line(row));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_in_order() {
        let record = parse_line("[stats] scope=client name=hello#0 faults=12 image=3").unwrap();
        assert_eq!(record.scope(), "client");
        assert_eq!(record.value("name"), Some("hello#0"));
        assert_eq!(record.value("faults"), Some("12"));
        assert_eq!(record.value("missing"), None);
        let keys: Vec<&str> = record.pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["scope", "name", "faults", "image"]);
    }

    #[test]
    fn ignores_other_lines_and_keeps_odd_words() {
        assert_eq!(parse_line("[hello#0] [stats] scope=total"), None);
        assert_eq!(parse_line("[stats]scope=total"), None);
        let record = parse_line("\r[stats] scope=total  extra a=b=c\r").unwrap();
        assert_eq!(
            record.pairs,
            [("scope", "total"), ("extra", ""), ("a", "b=c")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .to_vec()
        );
        let serial =
            "boot\n\r[stats] scope=total faults=3\n\r[hello#0] hi\n\r[stats] scope=area area=heap\n\r";
        let records = parse(serial);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].value("area"), Some("heap"));
    }

    #[test]
    fn renders_a_table_per_scope() {
        let records = parse(
            "[stats] scope=client name=a#0 faults=10\n\
             [stats] scope=client name=b#0 faults=20 stopped=1\n\
             [stats] scope=total faults=30 frames=12\n",
        );
        let table = render(&records);
        assert_eq!(
            table,
            "total:\n  faults  30\n  frames  12\n\
             client:\n  name  faults  stopped\n  a#0       10        -\n  b#0       20        1\n"
        );
        assert_eq!(render(&[]), "");
    }
}
