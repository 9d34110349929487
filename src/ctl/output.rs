//! Human output: aligned plain-text tables, `key: value` lists, and the text forms of the
//! daemon's values (diff entries, findings, reasons, times).
//!
//! Everything here reads `serde_json::Value`s with fallbacks and never panics on a missing or
//! oddly typed field: the daemon may be older or newer than this client. A missing value shows
//! as `-`.

use std::fmt::Write as _;

use serde_json::Value;

/// An aligned plain-text table: columns separated by two spaces, a header row, no trailing
/// spaces. Numeric columns can be right-aligned.
///
/// ```
/// use fastpath_cli::ctl::output::Table;
///
/// let mut t = Table::new(&["ID", "PORTS"]);
/// t.right(1);
/// t.row(vec!["ssh".into(), "22".into()]);
/// t.row(vec!["range".into(), "1000".into()]);
/// assert_eq!(t.render(), "ID     PORTS\nssh       22\nrange   1000\n");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| (*s).to_string()).collect(),
            rows: Vec::new(),
            right: vec![false; header.len()],
        }
    }

    /// Right-aligns column `col` (numbers).
    pub fn right(&mut self, col: usize) -> &mut Table {
        if let Some(r) = self.right.get_mut(col) {
            *r = true;
        }
        self
    }

    /// Adds a row; missing cells are empty, extra cells are kept.
    pub fn row(&mut self, cells: Vec<String>) -> &mut Table {
        self.rows.push(cells);
        self
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let cols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut width = vec![0usize; cols];
        for r in self.rows.iter().chain([&self.header]) {
            for (i, c) in r.iter().enumerate() {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in [&self.header].into_iter().chain(&self.rows) {
            let mut line = String::new();
            for (i, w) in width.iter().enumerate() {
                let cell = r.get(i).map_or("", String::as_str);
                let pad = w - cell.chars().count();
                if i > 0 {
                    line.push_str("  ");
                }
                if self.right.get(i).copied().unwrap_or(false) {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `key: value` lines with the values aligned.
///
/// ```
/// use fastpath_cli::ctl::output::pairs;
///
/// let s = pairs(&[("node", "edge".to_string()), ("version", "7".to_string())]);
/// assert_eq!(s, "node:    edge\nversion: 7\n");
/// ```
pub fn pairs(items: &[(&str, String)]) -> String {
    let w = items.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in items {
        let _ = writeln!(out, "{:<w$} {v}", format!("{k}:"), w = w + 1);
    }
    out
}

/// A value as text: strings bare, `null` or missing as `-`, arrays joined with `, `, objects
/// as `key=value` words.
pub fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) if s.is_empty() => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(a)) if a.is_empty() => "-".into(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| text(Some(x)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Object(_)) => words(v.unwrap_or(&Value::Null)),
    }
}

/// An object as `key=value` words (nested objects in braces, strings with spaces quoted);
/// anything else as [`text`].
pub fn words(v: &Value) -> String {
    fn one(v: &Value) -> String {
        match v {
            Value::String(s) if s.is_empty() || s.contains(char::is_whitespace) => {
                format!("{s:?}")
            }
            Value::String(s) => s.clone(),
            Value::Object(_) => format!("{{{}}}", words(v)),
            Value::Array(a) => format!("[{}]", a.iter().map(one).collect::<Vec<_>>().join(",")),
            other => other.to_string(),
        }
    }
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| format!("{k}={}", one(x)))
            .collect::<Vec<_>>()
            .join(" "),
        other => text(Some(other)),
    }
}

/// A field that may be absent, with a default the daemon leaves out (`proxy_protocol` is
/// `off` unless said otherwise).
pub fn or_default(v: Option<&Value>, default: &str) -> String {
    match v {
        None | Some(Value::Null) => default.into(),
        some => text(some),
    }
}

/// An unsigned number field, 0 when absent or not a number.
pub fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// A float field (integers included), `None` when absent.
pub fn float(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// An example packet `{proto, dst, port}` as `tcp 203.0.113.10:22` (`[v6]:port`).
pub fn example(v: &Value) -> String {
    let proto = v.get("proto").and_then(Value::as_str).unwrap_or("?");
    let dst = v.get("dst").and_then(Value::as_str).unwrap_or("?");
    let port = text(v.get("port"));
    if dst.contains(':') {
        format!("{proto} [{dst}]:{port}")
    } else {
        format!("{proto} {dst}:{port}")
    }
}

/// One diff entry as `tcp 203.0.113.10 port 22: app ssh -> unconfigured drop (example tcp
/// 203.0.113.10:22)`, the daemon's own text form plus the example packet. A string entry is
/// printed as it is.
pub fn change_line(c: &Value) -> String {
    if let Some(s) = c.as_str() {
        return s.to_string();
    }
    let pair = |k: &str| -> (String, String) {
        match c.get(k) {
            Some(Value::Array(a)) if a.len() == 2 => (text(a.first()), text(a.get(1))),
            other => (text(other), text(other)),
        }
    };
    let proto = c.get("proto").and_then(Value::as_str).unwrap_or("?");
    let (a, b) = pair("addresses");
    let (p, q) = pair("ports");
    let mut s = format!("{proto} ");
    if a == b {
        s.push_str(&a);
    } else {
        let _ = write!(s, "{a}-{b}");
    }
    if p == q {
        let _ = write!(s, " port {p}");
    } else {
        let _ = write!(s, " ports {p}-{q}");
    }
    let _ = write!(s, ": {} -> {}", text(c.get("old")), text(c.get("new")));
    if let Some(e) = c.get("example").filter(|e| e.is_object()) {
        let _ = write!(s, " (example {})", example(e));
    }
    s
}

/// A verification finding as `overlap: apps ssh and dup both claim ... (example tcp
/// 203.0.113.10:22)`.
pub fn finding_line(f: &Value) -> String {
    if let Some(s) = f.as_str() {
        return s.to_string();
    }
    let mut s = format!(
        "{}: {}",
        f.get("rule").and_then(Value::as_str).unwrap_or("finding"),
        text(f.get("message"))
    );
    if let Some(e) = f.get("example").filter(|e| e.is_object()) {
        let _ = write!(s, " (example {})", example(e));
    }
    s
}

/// The diff lines of a change (`diff` array), indented by two spaces; `None` when the answer
/// has no diff.
pub fn diff_lines(diff: Option<&Value>) -> Vec<String> {
    diff.and_then(Value::as_array)
        .map(|d| d.iter().map(|c| format!("  {}", change_line(c))).collect())
        .unwrap_or_default()
}

/// What a change did: `{version, applied, diff, swap_us}` (the `_change` of a resource, or the
/// result of `PUT /v1/config`), with `would_apply` and `verification` on a dry run when the
/// daemon reports them.
///
/// ```text
/// applied: version 8 in 412 us; 1 change:
///   tcp 203.0.113.10 port 2222: unconfigured drop -> app ssh2 (example tcp 203.0.113.10:2222)
/// ```
pub fn change_summary(c: &Value) -> String {
    let mut out = String::new();
    let diff = c.get("diff").and_then(Value::as_array);
    let n = diff.map_or(0, Vec::len);
    let changes = match (diff, n) {
        (None, _) => String::new(),
        (Some(_), 0) => "; no change to where traffic goes".into(),
        (Some(_), 1) => "; 1 change:".into(),
        (Some(_), n) => format!("; {n} changes:"),
    };
    let version = text(c.get("version"));
    match c.get("applied").and_then(Value::as_bool) {
        Some(true) => {
            let _ = write!(out, "applied: version {version}");
            if let Some(us) = c.get("swap_us").filter(|v| !v.is_null()) {
                let _ = write!(out, " in {} us", text(Some(us)));
            }
        }
        Some(false) => {
            let _ = write!(out, "dry run: nothing changed (running version {version})");
        }
        None => {
            let _ = write!(out, "version {version}");
        }
    }
    out.push_str(&changes);
    out.push('\n');
    for l in diff_lines(c.get("diff")) {
        out.push_str(&l);
        out.push('\n');
    }
    if let Some(v) = c.get("verification").filter(|v| v.is_object()) {
        out.push_str(&verification_report(v));
    }
    if let Some(w) = c.get("would_apply").and_then(Value::as_bool) {
        let _ = writeln!(out, "would apply: {}", if w { "yes" } else { "no" });
    }
    out
}

/// `verification: passed`, or `verification: N findings` and one line per finding.
pub fn verification_report(v: &Value) -> String {
    let findings = v
        .get("findings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let passed = v
        .get("passed")
        .and_then(Value::as_bool)
        .unwrap_or(findings.is_empty());
    let mut out = String::new();
    if passed && findings.is_empty() {
        out.push_str("verification: passed\n");
    } else {
        let _ = writeln!(
            out,
            "verification: {} finding{}",
            findings.len(),
            if findings.len() == 1 { "" } else { "s" }
        );
        for f in &findings {
            let _ = writeln!(out, "  {}", finding_line(f));
        }
    }
    out
}

/// A `{reason: count}` map as `syn_cookie 900, new_flow 50`, largest first, zeros left out, at
/// most `top` entries (0: all). `-` when empty.
pub fn reasons(v: Option<&Value>, top: usize) -> String {
    let mut r: Vec<(&str, u64)> = v
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, n)| n.as_u64().map(|n| (k.as_str(), n)))
                .filter(|(_, n)| *n > 0)
                .collect()
        })
        .unwrap_or_default();
    if r.is_empty() {
        return "-".into();
    }
    r.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown = if top == 0 { r.len() } else { top.min(r.len()) };
    let mut s = r[..shown]
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    if shown < r.len() {
        let _ = write!(s, ", +{} more", r.len() - shown);
    }
    s
}

/// Nanoseconds as `800 ns`, `2.0 us`, `1.5 ms`.
pub fn nanos(ns: Option<f64>) -> String {
    match ns {
        None => "-".into(),
        Some(n) if n < 1e3 => format!("{n:.0} ns"),
        Some(n) if n < 1e6 => format!("{:.1} us", n / 1e3),
        Some(n) => format!("{:.1} ms", n / 1e6),
    }
}

/// Seconds as `12.5 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`.
pub fn duration(secs: Option<f64>) -> String {
    let Some(s) = secs.filter(|s| s.is_finite() && *s >= 0.0) else {
        return "-".into();
    };
    let whole = s as u64;
    match whole {
        0..60 => format!("{s:.1} s"),
        60..3600 => format!("{} min {} s", whole / 60, whole % 60),
        3600..86_400 => format!("{} h {} min", whole / 3600, whole % 3600 / 60),
        _ => format!("{} d {} h", whole / 86_400, whole % 86_400 / 3600),
    }
}

/// Unix milliseconds as UTC `2025-01-31T12:00:00.123Z` (no time-zone database needed).
pub fn utc_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date
    // Algorithms").
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod test {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_tolerate_ragged_rows() {
        let mut t = Table::new(&["ID", "CIDR", "N"]);
        t.right(2);
        t.row(vec!["a".into(), "203.0.113.0/24".into(), "1".into()]);
        t.row(vec!["longer-id".into()]);
        t.row(vec!["b".into(), "x".into(), "100".into(), "extra".into()]);
        assert_eq!(
            t.render(),
            "ID         CIDR              N\n\
             a          203.0.113.0/24    1\n\
             longer-id\n\
             b          x               100  extra\n"
        );
        assert!(Table::new(&["X"]).is_empty());
        assert_eq!(Table::new(&["X"]).render(), "X\n");
    }

    #[test]
    fn values_as_text() {
        assert_eq!(text(None), "-");
        assert_eq!(text(Some(&json!(null))), "-");
        assert_eq!(text(Some(&json!(""))), "-");
        assert_eq!(text(Some(&json!(true))), "yes");
        assert_eq!(text(Some(&json!(["a", 1]))), "a, 1");
        assert_eq!(
            text(Some(&json!({"uid": 0, "name": "a b", "x": {"y": [1, 2]}}))),
            "name=\"a b\" uid=0 x={y=[1,2]}"
        );
        assert_eq!(or_default(None, "off"), "off");
        assert_eq!(or_default(Some(&json!("v2")), "off"), "v2");
        assert_eq!(num(&json!({"a": 3}), "a"), 3);
        assert_eq!(num(&json!({"a": "3"}), "a"), 0);
    }

    #[test]
    fn diff_entries_in_the_daemons_words() {
        let c = json!({"proto": "tcp", "addresses": ["203.0.113.10", "203.0.113.10"],
            "ports": [22, 22], "old": "app ssh", "new": "unconfigured drop",
            "example": {"proto": "tcp", "dst": "203.0.113.10", "port": 22}});
        assert_eq!(
            change_line(&c),
            "tcp 203.0.113.10 port 22: app ssh -> unconfigured drop (example tcp 203.0.113.10:22)"
        );
        let c = json!({"proto": "udp", "addresses": ["2001:db8::", "2001:db8::ff"],
            "ports": [1, 65535], "old": "cdn", "new": "not_ours",
            "example": {"proto": "udp", "dst": "2001:db8::", "port": 1}});
        assert_eq!(
            change_line(&c),
            "udp 2001:db8::-2001:db8::ff ports 1-65535: cdn -> not_ours (example udp [2001:db8::]:1)"
        );
        // Missing fields never panic.
        assert_eq!(change_line(&json!({})), "? - port -: - -> -");
        assert_eq!(change_line(&json!("as text")), "as text");
    }

    #[test]
    fn change_summaries() {
        let c = json!({"version": 8, "applied": true, "swap_us": 412, "diff": [
            {"proto": "tcp", "addresses": ["203.0.113.10", "203.0.113.10"], "ports": [2222, 2222],
             "old": "unconfigured drop", "new": "app ssh2"}]});
        assert_eq!(
            change_summary(&c),
            "applied: version 8 in 412 us; 1 change:\n  \
             tcp 203.0.113.10 port 2222: unconfigured drop -> app ssh2\n"
        );
        let c = json!({"version": 7, "applied": false, "diff": [], "swap_us": 0,
            "would_apply": true, "verification": {"passed": true, "findings": []}});
        assert_eq!(
            change_summary(&c),
            "dry run: nothing changed (running version 7); no change to where traffic goes\n\
             verification: passed\nwould apply: yes\n"
        );
        let v = json!({"passed": false, "findings": [{"rule": "overlap", "message": "m",
            "example": {"proto": "tcp", "dst": "203.0.113.10", "port": 22}}]});
        assert_eq!(
            verification_report(&v),
            "verification: 1 finding\n  overlap: m (example tcp 203.0.113.10:22)\n"
        );
        assert_eq!(change_summary(&json!({})), "version -\n");
    }

    #[test]
    fn reasons_nanos_and_times() {
        let r = json!({"a": 1, "b": 5, "c": 0, "d": 5, "e": 2});
        assert_eq!(reasons(Some(&r), 0), "b 5, d 5, e 2, a 1");
        assert_eq!(reasons(Some(&r), 2), "b 5, d 5, +2 more");
        assert_eq!(reasons(None, 3), "-");
        assert_eq!(nanos(Some(800.0)), "800 ns");
        assert_eq!(nanos(Some(2000.0)), "2.0 us");
        assert_eq!(nanos(Some(1.5e6)), "1.5 ms");
        assert_eq!(nanos(None), "-");
        assert_eq!(duration(Some(12.54)), "12.5 s");
        assert_eq!(duration(Some(200.0)), "3 min 20 s");
        assert_eq!(duration(Some(7500.0)), "2 h 5 min");
        assert_eq!(duration(Some(288_000.0)), "3 d 8 h");
        assert_eq!(duration(Some(-1.0)), "-");
        assert_eq!(duration(None), "-");
        assert_eq!(utc_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc_ms(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
    }
}
