//! `fastpathctl analytics`: the Spectrum analytics of real connections
//! (`GET /client/v4/zones/-/spectrum/analytics/events/summary` or `…/bytime`), as a table.

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::error::CtlError;
use super::output::{Table, text};
use super::{Ctl, Req};

/// Which view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum View {
    /// One row per combination of the dimensions over the whole interval.
    Summary,
    /// The same rows, each metric per time step.
    Bytime,
}

/// `fastpathctl analytics`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  fastpathctl analytics\n  fastpathctl analytics --dimensions appID,event --metrics count,bytesEgress,duration90th --sort -count\n  fastpathctl analytics bytime --step minute --since 2026-12-02T15:00:00Z --filters 'event==disconnect'\n\nMetrics: count, bytesIngress, bytesEgress, durationAvg, durationMedian, duration90th, duration99th (milliseconds).\nDimensions: event, appID, coloName, ipVersion. Filters: DIMENSION OP VALUE with ==, !=, >, <, >=, <=, joined by ; (AND) and , (OR)."
)]
pub struct AnalyticsArgs {
    /// `summary` (default) or `bytime`.
    #[arg(value_enum, default_value_t = View::Summary)]
    pub view: View,
    /// Metrics to compute, comma-separated (default: all seven).
    #[arg(long, value_name = "LIST")]
    pub metrics: Option<String>,
    /// Dimensions to break the rows down by, comma-separated.
    #[arg(long, value_name = "LIST")]
    pub dimensions: Option<String>,
    /// Rows to keep, e.g. `event==disconnect;ipVersion==6`.
    #[arg(long, value_name = "EXPR")]
    pub filters: Option<String>,
    /// Sort fields, comma-separated, `-` for descending (e.g. `-count`).
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// Start of the interval, RFC 3339 (default: `until` - 6 hours).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// End of the interval, RFC 3339 (default: now).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Rows at most.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// With `bytime`: auto, year, quarter, month, week, day, hour, dekaminute, minute.
    #[arg(long, value_name = "STEP")]
    pub step: Option<String>,
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The request path of `a`.
pub fn path(a: &AnalyticsArgs) -> String {
    let mut q = Vec::new();
    let mut add = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            q.push(format!("{k}={}", encode(v)));
        }
    };
    add("metrics", &a.metrics);
    add("dimensions", &a.dimensions);
    add("filters", &a.filters);
    add("sort", &a.sort);
    add("since", &a.since);
    add("until", &a.until);
    add("limit", &a.limit.map(|n| n.to_string()));
    if a.view == View::Bytime {
        add("step", &a.step);
    }
    let view = match a.view {
        View::Summary => "summary",
        View::Bytime => "bytime",
    };
    let mut p = format!("/client/v4/zones/-/spectrum/analytics/events/{view}");
    if !q.is_empty() {
        p.push('?');
        p.push_str(&q.join("&"));
    }
    p
}

fn cell(v: &Value) -> String {
    match v {
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(" "),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{f:.1}"),
            _ => n.to_string(),
        },
        v => text(Some(v)),
    }
}

/// The table of a `bytime` result: a row per time interval that has data, a column per
/// dimension combination and metric.
fn render_bytime(r: &Value, dims: &[String], metrics: &[String]) -> String {
    let data: Vec<&Value> = r["data"].as_array().into_iter().flatten().collect();
    let intervals: Vec<String> = r["time_intervals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| text(Some(&i[0])))
        .collect();
    let mut header = vec!["INTERVAL START".to_string()];
    for row in &data {
        let label: Vec<String> = row["dimensions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| text(Some(x)))
            .collect();
        for m in metrics {
            header.push(if dims.is_empty() {
                m.clone()
            } else {
                format!("{} {m}", label.join("/"))
            });
        }
    }
    let h: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&h);
    for i in 1..header.len() {
        t.right(i);
    }
    for (i, start) in intervals.iter().enumerate() {
        let cells: Vec<&Value> = data
            .iter()
            .flat_map(|row| {
                row["metrics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |series| &series[i])
            })
            .collect();
        if cells.iter().all(|c| c.as_f64().unwrap_or(0.0) == 0.0) {
            continue;
        }
        let mut row = vec![start.clone()];
        row.extend(cells.into_iter().map(cell));
        t.row(row);
    }
    t.render()
}

/// The table of an analytics result.
pub fn render(r: &Value) -> String {
    let q = &r["query"];
    let names = |k: &str| -> Vec<String> {
        q[k].as_array()
            .map(|a| a.iter().map(|x| text(Some(x))).collect())
            .unwrap_or_default()
    };
    let (dims, metrics) = (names("dimensions"), names("metrics"));
    let mut out = format!(
        "{} to {}{}: {} row(s)\n",
        text(Some(&q["since"])),
        text(Some(&q["until"])),
        q.get("step")
            .map(|s| format!(", by {} (intervals without data left out)", text(Some(s))))
            .unwrap_or_default(),
        r["rows"]
    );
    if q.get("step").is_some() {
        out.push_str(&render_bytime(r, &dims, &metrics));
    } else {
        out.push_str(&render_rows(r, &dims, &metrics));
    }
    let totals: Vec<String> = metrics
        .iter()
        .map(|m| format!("{m} {}", cell(&r["totals"][m])))
        .collect();
    out.push_str(&format!("totals: {}\n", totals.join(", ")));
    out
}

/// The table of a summary: a row per dimension combination.
fn render_rows(r: &Value, dims: &[String], metrics: &[String]) -> String {
    let header: Vec<&str> = dims.iter().chain(metrics).map(String::as_str).collect();
    let mut t = Table::new(&header);
    for i in dims.len()..header.len() {
        t.right(i);
    }
    for row in r["data"].as_array().into_iter().flatten() {
        let mut cells: Vec<String> = row["dimensions"]
            .as_array()
            .map(|a| a.iter().map(|x| text(Some(x))).collect())
            .unwrap_or_default();
        cells.extend(row["metrics"].as_array().into_iter().flatten().map(cell));
        t.row(cells);
    }
    t.render()
}

/// Runs `fastpathctl analytics`.
///
/// # Errors
/// [`CtlError`]: the daemon refuses a bad parameter (exit 1), or is unreachable.
pub fn run(ctl: &mut Ctl<'_>, a: &AnalyticsArgs) -> Result<(), CtlError> {
    let v = ctl.call(&Req::get(path(a)))?;
    if ctl.json {
        return ctl.print_json(&v);
    }
    ctl.print(&render(&v))
}

#[cfg(test)]
mod test {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_path_encodes_every_parameter() {
        let a = AnalyticsArgs {
            view: View::Bytime,
            metrics: Some("count,bytesIngress".into()),
            dimensions: None,
            filters: Some("event==disconnect;ipVersion==6".into()),
            sort: Some("-count".into()),
            since: Some("2026-12-02T15:00:00Z".into()),
            until: None,
            limit: Some(5),
            step: Some("minute".into()),
        };
        assert_eq!(
            path(&a),
            "/client/v4/zones/-/spectrum/analytics/events/bytime?metrics=count%2CbytesIngress\
             &filters=event%3D%3Ddisconnect%3BipVersion%3D%3D6&sort=-count\
             &since=2026-12-02T15%3A00%3A00Z&limit=5&step=minute"
        );
    }

    #[test]
    fn a_bytime_result_as_rows_of_intervals() {
        let r = json!({
            "data": [{"dimensions": ["connect"], "metrics": [[0, 2, 1]]},
                     {"dimensions": ["disconnect"], "metrics": [[0, 1, 3]]}],
            "rows": 2,
            "totals": {"count": 7},
            "time_intervals": [["2026-12-02T10:00:00Z", "2026-12-02T10:01:00Z"],
                               ["2026-12-02T10:01:00Z", "2026-12-02T10:02:00Z"],
                               ["2026-12-02T10:02:00Z", "2026-12-02T10:03:00Z"]],
            "query": {"dimensions": ["event"], "metrics": ["count"], "step": "minute",
                      "since": "2026-12-02T10:00:00Z", "until": "2026-12-02T10:03:00Z"}
        });
        let s = render(&r);
        assert!(s.contains("connect count  disconnect count"), "{s}");
        assert!(
            !s.contains("10:00:00Z  "),
            "an interval without data is left out: {s}"
        );
        assert!(
            s.contains("2026-12-02T10:02:00Z              1                 3\n"),
            "{s}"
        );
    }

    #[test]
    fn a_result_as_a_table() {
        let r = json!({
            "data": [{"dimensions": ["ssh", "disconnect"], "metrics": [4, 120.5]}],
            "rows": 1,
            "totals": {"count": 4, "durationAvg": 120.5},
            "query": {"dimensions": ["appID", "event"], "metrics": ["count", "durationAvg"],
                      "since": "2026-12-02T10:00:00Z", "until": "2026-12-02T16:00:00Z"}
        });
        let s = render(&r);
        assert!(
            s.starts_with("2026-12-02T10:00:00Z to 2026-12-02T16:00:00Z: 1 row(s)\n"),
            "{s}"
        );
        assert!(s.contains("ssh    disconnect      4        120.5\n"), "{s}");
        assert!(s.ends_with("totals: count 4, durationAvg 120.5\n"), "{s}");
    }
}
