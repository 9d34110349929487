//! The Spectrum analytics API of seed 003 (`…/spectrum/analytics/events/summary` and
//! `…/events/bytime`): metrics of real connections (count, bytes ingress/egress, duration
//! average, median, 90th and 99th percentile) by event, app, colo and client IP version,
//! filtered, sorted and limited as the public API does, over a time interval.
//!
//! The data comes from the workers' connection events as the daemon drains them: each event is
//! recorded into a one-minute bucket (by its own time), kept for [`RETENTION_MINUTES`]. A
//! bucket holds one accumulator per (app, event, IP version) with a duration histogram (two
//! significant digits), so a query over any interval merges buckets and reads its quantiles
//! from the merged histograms.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long buckets are kept (7 days of minutes).
pub const RETENTION_MINUTES: u64 = 7 * 24 * 60;

/// The metrics of the public API, in its order.
pub const METRICS: [&str; 7] = [
    "count",
    "bytesIngress",
    "bytesEgress",
    "durationAvg",
    "durationMedian",
    "duration90th",
    "duration99th",
];

/// The dimensions of the public API.
pub const DIMENSIONS: [&str; 4] = ["event", "appID", "coloName", "ipVersion"];

/// The time steps of `bytime`, coarsest first (`auto` picks one).
pub const STEPS: [&str; 9] = [
    "auto",
    "year",
    "quarter",
    "month",
    "week",
    "day",
    "hour",
    "dekaminute",
    "minute",
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    app: Option<String>,
    event: String,
    ip_version: u8,
}

#[derive(Debug, Clone)]
struct Acc {
    count: u64,
    bytes_ingress: u64,
    bytes_egress: u64,
    durations: Histogram<u32>,
    duration_sum_ms: f64,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            count: 0,
            bytes_ingress: 0,
            bytes_egress: 0,
            // 1 ms .. 30 days at two significant digits: a few KiB each, fixed, so recording
            // never allocates.
            durations: Histogram::new_with_bounds(1, 30 * 24 * 3_600_000, 2)
                .expect("valid histogram bounds"),
            duration_sum_ms: 0.0,
        }
    }

    fn add(&mut self, o: &Acc) {
        self.count += o.count;
        self.bytes_ingress += o.bytes_ingress;
        self.bytes_egress += o.bytes_egress;
        self.duration_sum_ms += o.duration_sum_ms;
        let _ = self.durations.add(&o.durations);
    }

    fn metric(&self, name: &str) -> f64 {
        let q = |p: f64| {
            if self.durations.is_empty() {
                0.0
            } else {
                self.durations.value_at_quantile(p) as f64
            }
        };
        match name {
            "count" => self.count as f64,
            "bytesIngress" => self.bytes_ingress as f64,
            "bytesEgress" => self.bytes_egress as f64,
            "durationAvg" => {
                let n = self.durations.len();
                if n == 0 {
                    0.0
                } else {
                    self.duration_sum_ms / n as f64
                }
            }
            "durationMedian" => q(0.5),
            "duration90th" => q(0.9),
            "duration99th" => q(0.99),
            _ => 0.0,
        }
    }
}

/// One connection event, as recorded.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// When (Unix ms).
    pub ts_ms: u64,
    /// The app's id (`None`: not an app's).
    pub app: Option<&'a str>,
    /// `connect`, `disconnect`, ...
    pub event: &'a str,
    /// 4 or 6.
    pub ip_version: u8,
    /// Payload bytes from the client.
    pub bytes_ingress: u64,
    /// Payload bytes to the client.
    pub bytes_egress: u64,
    /// The connection's duration, for events that end one.
    pub duration_ms: Option<u64>,
}

/// The time-bucketed analytics of one daemon.
#[derive(Debug, Default)]
pub struct Store {
    buckets: BTreeMap<u64, BTreeMap<Key, Acc>>,
    /// The latest event's time (Unix ms), for `data_lag`.
    latest_ms: u64,
}

/// Why a query is refused: the parameter and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct QueryError {
    /// The query parameter.
    pub param: &'static str,
    /// What is wrong, and what is accepted.
    pub message: String,
}

fn bad(param: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        param,
        message: message.into(),
    }
}

/// A comparison of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

/// `dimension OP value`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cond {
    dim: &'static str,
    op: Op,
    value: String,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    metrics: Vec<&'static str>,
    dimensions: Vec<&'static str>,
    filters: Vec<Vec<Cond>>,
    filters_text: Option<String>,
    sort: Vec<(String, bool)>,
    since_ms: u64,
    until_ms: u64,
    limit: usize,
    step: Option<&'static str>,
}

fn known(list: &[&'static str], s: &str) -> Option<&'static str> {
    list.iter().copied().find(|x| *x == s)
}

fn parse_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

/// Parses an RFC 3339 timestamp into Unix milliseconds.
///
/// # Errors
/// Not RFC 3339.
pub fn parse_time(param: &'static str, s: &str) -> Result<u64, QueryError> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339).map_err(|e| {
        bad(
            param,
            format!("{s:?} is not an RFC 3339 timestamp (e.g. 2014-01-02T02:20:00Z): {e}"),
        )
    })?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).map_err(|_| bad(param, format!("{s} is before 1970")))
}

/// Formats Unix milliseconds as RFC 3339 (UTC, whole seconds when there are no milliseconds).
pub fn format_time(ms: u64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&Rfc3339).unwrap_or_default()
}

fn parse_filters(s: &str) -> Result<Vec<Vec<Cond>>, QueryError> {
    // OR binds looser than AND: `a;b,c` is (a AND b) OR c.
    let or_parts: Vec<String> = s
        .replace(" OR ", ",")
        .split(',')
        .map(|p| p.replace(" AND ", ";"))
        .collect();
    let mut out = Vec::new();
    for p in &or_parts {
        let mut and = Vec::new();
        for term in p.split(';').map(str::trim).filter(|t| !t.is_empty()) {
            let ops = [
                ("==", Op::Eq),
                ("!=", Op::Ne),
                (">=", Op::Ge),
                ("<=", Op::Le),
                (">", Op::Gt),
                ("<", Op::Lt),
            ];
            let Some((at, text, op)) = ops
                .iter()
                .filter_map(|(t, op)| term.find(t).map(|i| (i, *t, *op)))
                .min_by_key(|(i, t, _)| (*i, usize::MAX - t.len()))
            else {
                return Err(bad(
                    "filters",
                    format!(
                        "{term:?}: expected DIMENSION OP VALUE with OP one of ==, !=, >, <, >=, <="
                    ),
                ));
            };
            let dim = term[..at].trim();
            let value = term[at + text.len()..].trim().trim_matches('"').to_string();
            let Some(dim) = known(&DIMENSIONS, dim) else {
                return Err(bad(
                    "filters",
                    format!(
                        "{dim:?} is not a dimension; filter on {}",
                        DIMENSIONS.join(", ")
                    ),
                ));
            };
            and.push(Cond { dim, op, value });
        }
        if and.is_empty() {
            return Err(bad("filters", format!("an empty condition in {s:?}")));
        }
        out.push(and);
    }
    Ok(out)
}

impl Query {
    /// Parses the query string of `summary` (`bytime = false`) or `bytime`, at `now_ms`.
    ///
    /// # Errors
    /// [`QueryError`] naming the parameter: an unknown metric, dimension or step, a sort field
    /// outside the metrics and dimensions, a bad filter, timestamp or limit, `since` after
    /// `until`, or an unknown parameter.
    pub fn parse(
        q: &HashMap<String, String>,
        bytime: bool,
        now_ms: u64,
    ) -> Result<Query, QueryError> {
        for k in q.keys() {
            let ok = matches!(
                k.as_str(),
                "metrics" | "dimensions" | "filters" | "sort" | "since" | "until" | "limit"
            ) || (bytime && matches!(k.as_str(), "step" | "time_delta"));
            if !ok {
                return Err(bad(
                    "query",
                    format!(
                        "unknown parameter {k:?}; accepted: metrics, dimensions, filters, sort, since, until, limit{}",
                        if bytime { ", step (or time_delta)" } else { "" }
                    ),
                ));
            }
        }
        let metrics = match q.get("metrics") {
            None => METRICS.to_vec(),
            Some(s) => parse_list(s)
                .map(|m| {
                    known(&METRICS, m).ok_or_else(|| {
                        bad(
                            "metrics",
                            format!("unknown metric {m:?}; expected {}", METRICS.join(", ")),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if metrics.is_empty() {
            return Err(bad("metrics", "give at least one metric"));
        }
        let dimensions = match q.get("dimensions") {
            None => Vec::new(),
            Some(s) => parse_list(s)
                .map(|d| {
                    known(&DIMENSIONS, d).ok_or_else(|| {
                        bad(
                            "dimensions",
                            format!(
                                "unknown dimension {d:?}; expected {}",
                                DIMENSIONS.join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let filters = match q.get("filters").map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => Vec::new(),
            Some(s) => parse_filters(s)?,
        };
        let mut sort = Vec::new();
        if let Some(s) = q.get("sort") {
            for f in parse_list(s) {
                let (name, desc) = match f.as_bytes()[0] {
                    b'-' => (&f[1..], true),
                    b'+' => (&f[1..], false),
                    _ => (f, false),
                };
                if !metrics.contains(&name) && !dimensions.contains(&name) {
                    return Err(bad(
                        "sort",
                        format!(
                            "{name:?} is not among the query's metrics or dimensions (sort fields must be)"
                        ),
                    ));
                }
                sort.push((name.to_string(), desc));
            }
        }
        let until_ms = match q.get("until") {
            None => now_ms,
            Some(s) => parse_time("until", s)?,
        };
        let since_ms = match q.get("since") {
            None => until_ms.saturating_sub(6 * 3_600_000),
            Some(s) => parse_time("since", s)?,
        };
        if since_ms > until_ms {
            return Err(bad("since", "since is after until"));
        }
        let limit = match q.get("limit") {
            None => 10_000,
            Some(s) => match s.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => return Err(bad("limit", format!("{s:?}: give a positive integer"))),
            },
        };
        let step = if bytime {
            let s = q
                .get("step")
                .or_else(|| q.get("time_delta"))
                .map_or("auto", String::as_str);
            Some(known(&STEPS, s.trim()).ok_or_else(|| {
                bad(
                    "step",
                    format!("unknown step {s:?}; expected {}", STEPS.join(", ")),
                )
            })?)
        } else {
            None
        };
        Ok(Query {
            metrics,
            dimensions,
            filters_text: q.get("filters").cloned(),
            filters,
            sort,
            since_ms,
            until_ms,
            limit,
            step,
        })
    }
}

/// The start of the interval of `step` that contains `ms`, and the next one's.
fn interval(step: &str, ms: u64) -> (u64, u64) {
    let fixed = |w: u64| {
        let s = ms - ms % w;
        (s, s + w)
    };
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let ymd = |y: i32, m: u8| -> u64 {
        let month = time::Month::try_from(m).unwrap_or(time::Month::January);
        time::Date::from_calendar_date(y, month, 1)
            .map(|d| {
                (d.midnight().assume_utc().unix_timestamp() * 1000)
                    .try_into()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    };
    let months = |n: u8| {
        let m0 = (u8::from(t.month()) - 1) / n * n + 1;
        let (ny, nm) = if m0 + n > 12 {
            (t.year() + 1, m0 + n - 12)
        } else {
            (t.year(), m0 + n)
        };
        (ymd(t.year(), m0), ymd(ny, nm))
    };
    match step {
        "minute" => fixed(60_000),
        "dekaminute" => fixed(600_000),
        "hour" => fixed(3_600_000),
        "day" => fixed(86_400_000),
        // Weeks start on Monday (1970-01-01 was a Thursday).
        "week" => {
            let w = 7 * 86_400_000;
            let shifted = ms + 3 * 86_400_000;
            let s = shifted - shifted % w;
            (s - 3 * 86_400_000, s - 3 * 86_400_000 + w)
        }
        "month" => months(1),
        "quarter" => months(3),
        _ => (ymd(t.year(), 1), ymd(t.year() + 1, 1)),
    }
}

/// The step `auto` picks for an interval of `span_ms`: about a hundred buckets or fewer.
fn auto_step(span_ms: u64) -> &'static str {
    match span_ms {
        s if s <= 3 * 3_600_000 => "minute",
        s if s <= 24 * 3_600_000 => "dekaminute",
        s if s <= 14 * 86_400_000 => "hour",
        s if s <= 180 * 86_400_000 => "day",
        s if s <= 2 * 365 * 86_400_000 => "week",
        _ => "month",
    }
}

impl Store {
    /// Records one event.
    pub fn record(&mut self, r: &Record<'_>) {
        let minute = r.ts_ms / 60_000;
        let acc = self
            .buckets
            .entry(minute)
            .or_default()
            .entry(Key {
                app: r.app.map(str::to_string),
                event: r.event.to_string(),
                ip_version: r.ip_version,
            })
            .or_insert_with(Acc::new);
        acc.count += 1;
        acc.bytes_ingress += r.bytes_ingress;
        acc.bytes_egress += r.bytes_egress;
        if let Some(d) = r.duration_ms {
            let d = d.max(1);
            acc.durations.saturating_record(d);
            acc.duration_sum_ms += d as f64;
        }
        self.latest_ms = self.latest_ms.max(r.ts_ms);
        // Forget what is past the retention.
        let keep_from = minute.saturating_sub(RETENTION_MINUTES);
        while let Some((&m, _)) = self.buckets.first_key_value() {
            if m >= keep_from {
                break;
            }
            self.buckets.pop_first();
        }
    }

    /// Answers `q` (`summary`, or `bytime` when it has a step) for colo `colo` at `now_ms`.
    pub fn query(&self, q: &Query, colo: &str, now_ms: u64) -> Value {
        let step = q.step.map(|s| {
            if s == "auto" {
                auto_step(q.until_ms - q.since_ms)
            } else {
                s
            }
        });
        // The time intervals: one for a summary, the step's buckets for bytime.
        let mut intervals: Vec<(u64, u64)> = Vec::new();
        match step {
            None => intervals.push((q.since_ms, q.until_ms)),
            Some(s) => {
                let mut at = q.since_ms;
                while at < q.until_ms.max(q.since_ms + 1) && intervals.len() < 10_000 {
                    let (a, b) = interval(s, at);
                    intervals.push((a.max(q.since_ms), b.min(q.until_ms.max(q.since_ms + 1))));
                    at = b;
                }
            }
        }
        let dim_value = |k: &Key, d: &str| -> String {
            match d {
                "event" => k.event.clone(),
                "appID" => k.app.clone().unwrap_or_default(),
                "coloName" => colo.to_string(),
                _ => k.ip_version.to_string(),
            }
        };
        let passes = |k: &Key| -> bool {
            q.filters.is_empty()
                || q.filters.iter().any(|and| {
                    and.iter().all(|c| {
                        let v = dim_value(k, c.dim);
                        let ord = match (v.parse::<f64>(), c.value.parse::<f64>()) {
                            (Ok(a), Ok(b)) => a.partial_cmp(&b),
                            _ => Some(v.as_str().cmp(c.value.as_str())),
                        };
                        let Some(ord) = ord else { return false };
                        match c.op {
                            Op::Eq => ord.is_eq(),
                            Op::Ne => !ord.is_eq(),
                            Op::Gt => ord.is_gt(),
                            Op::Lt => ord.is_lt(),
                            Op::Ge => ord.is_ge(),
                            Op::Le => ord.is_le(),
                        }
                    })
                })
        };
        // Rows by dimension values; per row, one accumulator per interval.
        let n = intervals.len();
        let mut rows: BTreeMap<Vec<String>, Vec<Acc>> = BTreeMap::new();
        let mut total = Acc::new();
        for (&minute, accs) in self
            .buckets
            .range(q.since_ms / 60_000..=q.until_ms.saturating_sub(1) / 60_000)
        {
            let ms = minute * 60_000;
            if ms < q.since_ms - q.since_ms % 60_000 {
                continue;
            }
            let i = intervals
                .iter()
                .position(|(a, b)| ms >= a - a % 60_000 && ms < *b)
                .unwrap_or(n.saturating_sub(1));
            for (k, acc) in accs {
                if !passes(k) {
                    continue;
                }
                let dims: Vec<String> = q.dimensions.iter().map(|d| dim_value(k, d)).collect();
                let row = rows
                    .entry(dims)
                    .or_insert_with(|| (0..n).map(|_| Acc::new()).collect());
                row[i].add(acc);
                total.add(acc);
            }
        }
        let mut data: Vec<(Vec<String>, Acc, Vec<Acc>)> = rows
            .into_iter()
            .map(|(dims, per)| {
                let mut sum = Acc::new();
                for a in &per {
                    sum.add(a);
                }
                (dims, sum, per)
            })
            .collect();
        let field = |d: &(Vec<String>, Acc, Vec<Acc>), f: &str| -> (Option<f64>, String) {
            match q.dimensions.iter().position(|x| *x == f) {
                Some(i) => (None, d.0[i].clone()),
                None => (Some(d.1.metric(f)), String::new()),
            }
        };
        data.sort_by(|a, b| {
            for (f, desc) in &q.sort {
                let (x, y) = (field(a, f), field(b, f));
                let o = match (x.0, y.0) {
                    (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(core::cmp::Ordering::Equal),
                    _ => x.1.cmp(&y.1),
                };
                let o = if *desc { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            core::cmp::Ordering::Equal
        });
        data.truncate(q.limit);
        let num = |x: f64| -> Value {
            if x.fract() == 0.0 && x.abs() < 9e15 {
                json!(x as i64)
            } else {
                json!(x)
            }
        };
        let out: Vec<Value> = data
            .iter()
            .map(|(dims, sum, per)| {
                let metrics: Vec<Value> = q
                    .metrics
                    .iter()
                    .map(|m| {
                        if step.is_some() {
                            Value::Array(per.iter().map(|a| num(a.metric(m))).collect())
                        } else {
                            num(sum.metric(m))
                        }
                    })
                    .collect();
                json!({ "dimensions": dims, "metrics": metrics })
            })
            .collect();
        let per_metric = |f: &dyn Fn(&[f64]) -> f64| -> Map<String, Value> {
            q.metrics
                .iter()
                .map(|m| {
                    let vals: Vec<f64> = data.iter().map(|d| d.1.metric(m)).collect();
                    (
                        m.to_string(),
                        num(if vals.is_empty() { 0.0 } else { f(&vals) }),
                    )
                })
                .collect()
        };
        let max = per_metric(&|v| v.iter().copied().fold(f64::MIN, f64::max));
        let min = per_metric(&|v| v.iter().copied().fold(f64::MAX, f64::min));
        let totals: Map<String, Value> = q
            .metrics
            .iter()
            .map(|m| (m.to_string(), num(total.metric(m))))
            .collect();
        let mut query = json!({
            "dimensions": q.dimensions,
            "metrics": q.metrics,
            "since": format_time(q.since_ms),
            "until": format_time(q.until_ms),
            "sort": q.sort.iter().map(|(f, d)| format!("{}{f}", if *d { "-" } else { "+" })).collect::<Vec<_>>(),
            "limit": q.limit,
        });
        if let Some(f) = &q.filters_text {
            query["filters"] = json!(f);
        }
        if let Some(s) = step {
            query["step"] = json!(s);
        }
        json!({
            "data": out,
            "data_lag": if self.latest_ms == 0 { 0 } else { now_ms.saturating_sub(self.latest_ms) / 1000 },
            "max": max,
            "min": min,
            "totals": totals,
            "rows": data.len(),
            "query": query,
            "time_intervals": intervals
                .iter()
                .map(|(a, b)| vec![format_time(*a), format_time(*b)])
                .collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const T0: u64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

    fn q(pairs: &[(&str, &str)], bytime: bool) -> Result<Query, QueryError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Query::parse(&m, bytime, T0 + 3_600_000)
    }

    fn store() -> Store {
        let mut s = Store::default();
        for i in 0..10u64 {
            let rec = |event, d| Record {
                ts_ms: T0 + i * 60_000,
                app: Some(if i % 2 == 0 { "ssh" } else { "game" }),
                event,
                ip_version: if i < 8 { 4 } else { 6 },
                bytes_ingress: 100,
                bytes_egress: 1000,
                duration_ms: d,
            };
            s.record(&rec("connect", None));
            s.record(&rec("disconnect", Some((i + 1) * 10)));
        }
        s
    }

    #[test]
    fn a_summary_with_dimensions_filters_and_sort() {
        let s = store();
        let query = q(
            &[
                ("metrics", "count,bytesEgress,durationMedian"),
                ("dimensions", "appID,event"),
                ("filters", "event==disconnect"),
                ("sort", "-count"),
                ("since", "2023-11-14T22:00:00Z"),
            ],
            false,
        )
        .unwrap();
        let v = s.query(&query, "LAB", T0 + 3_600_000);
        assert_eq!(v["rows"], 2, "{v}");
        let data = v["data"].as_array().unwrap();
        assert_eq!(data[0]["dimensions"], json!(["game", "disconnect"]));
        assert_eq!(data[0]["metrics"][0], 5);
        assert_eq!(data[0]["metrics"][1], 5000);
        assert_eq!(v["totals"]["count"], 10);
        assert_eq!(v["query"]["filters"], "event==disconnect");
        // (durations 20, 40, ..., 100 for game; median 60)
        assert_eq!(data[0]["metrics"][2], 60);
    }

    #[test]
    fn or_and_and_in_filters_and_numeric_comparisons() {
        let s = store();
        let v = s.query(
            &q(
                &[
                    ("metrics", "count"),
                    (
                        "filters",
                        "ipVersion>4 AND event==connect,appID==ssh;event==disconnect",
                    ),
                    ("since", "2023-11-14T22:00:00Z"),
                ],
                false,
            )
            .unwrap(),
            "LAB",
            T0,
        );
        // IPv6 connects (i = 8, 9: 2) or ssh disconnects (i even: 5).
        assert_eq!(v["totals"]["count"], 7, "{v}");
    }

    #[test]
    fn bytime_buckets_by_the_step() {
        let s = store();
        let v = s.query(
            &q(
                &[
                    ("metrics", "count"),
                    ("step", "dekaminute"),
                    ("since", "2023-11-14T22:10:00Z"),
                    ("until", "2023-11-14T22:30:00Z"),
                    ("dimensions", "event"),
                ],
                true,
            )
            .unwrap(),
            "LAB",
            T0,
        );
        assert_eq!(v["time_intervals"].as_array().unwrap().len(), 2, "{v}");
        let connect = &v["data"][0];
        assert_eq!(connect["dimensions"], json!(["connect"]));
        // Events at 22:13:20 + i minutes: 7 before 22:20, 3 after.
        assert_eq!(connect["metrics"][0], json!([7, 3]));
    }

    #[test]
    fn bad_queries_name_the_parameter() {
        for (pairs, param) in [
            (vec![("metrics", "count,bogus")], "metrics"),
            (vec![("dimensions", "country")], "dimensions"),
            (
                vec![("sort", "-bytesIngress"), ("metrics", "count")],
                "sort",
            ),
            (vec![("filters", "colour==red")], "filters"),
            (vec![("filters", "event~connect")], "filters"),
            (vec![("since", "yesterday")], "since"),
            (
                vec![
                    ("since", "2023-11-15T00:00:00Z"),
                    ("until", "2023-11-14T00:00:00Z"),
                ],
                "since",
            ),
            (vec![("limit", "0")], "limit"),
            (vec![("foo", "1")], "query"),
        ] {
            let e = q(&pairs, false).unwrap_err();
            assert_eq!(e.param, param, "{pairs:?}: {e}");
        }
        assert_eq!(q(&[("step", "fortnight")], true).unwrap_err().param, "step");
        assert_eq!(q(&[("step", "hour")], false).unwrap_err().param, "query");
    }

    #[test]
    fn the_defaults_and_calendar_steps() {
        let d = q(&[], false).unwrap();
        assert_eq!(d.metrics.len(), 7);
        assert_eq!(
            d.until_ms - d.since_ms,
            6 * 3_600_000,
            "since defaults to until - 6 hours"
        );
        let ms = parse_time("since", "2024-05-17T10:11:12Z").unwrap();
        let (a, b) = interval("quarter", ms);
        assert_eq!(format_time(a), "2024-04-01T00:00:00Z");
        assert_eq!(format_time(b), "2024-07-01T00:00:00Z");
        let (a, _) = interval("week", ms);
        assert_eq!(format_time(a), "2024-05-13T00:00:00Z", "a Monday");
        let (a, b) = interval("month", parse_time("x", "2024-12-31T23:00:00Z").unwrap());
        assert_eq!(
            (format_time(a), format_time(b)),
            ("2024-12-01T00:00:00Z".into(), "2025-01-01T00:00:00Z".into())
        );
    }
}
