//! The replay/bench summary: counts per verdict and reason, per service and app, flows and
//! connections. Printed as tables or serialized as JSON.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use fastpath::replay::Replay;
use fastpath::stats::{ByReason, QueueStats};
use fastpath::tables::Tables;
use fastpath::{Reason, Service, Verdict};
use serde::Serialize;

/// Counts by verdict and by reason (zero reasons omitted).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Mix {
    /// Frames.
    pub frames: u64,
    /// By verdict (all four present).
    pub verdicts: BTreeMap<&'static str, u64>,
    /// By reason (only reasons that occurred).
    pub reasons: BTreeMap<&'static str, u64>,
}

impl Mix {
    /// From per-reason counters.
    pub fn from_counts(counts: &[u64; Reason::COUNT]) -> Mix {
        let mut m = Mix::default();
        for v in Verdict::ALL {
            m.verdicts.insert(v.as_str(), 0);
        }
        for r in Reason::ALL {
            let n = counts[r as usize];
            m.frames += n;
            *m.verdicts.entry(r.verdict().as_str()).or_default() += n;
            if n > 0 {
                m.reasons.insert(r.as_str(), n);
            }
        }
        m
    }

    /// From live counters.
    pub fn from_stats(b: &ByReason) -> Mix {
        Mix::from_counts(&b.snapshot())
    }
}

/// Connection analytics of one (service, app, event, IP version).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectionRow {
    /// `cdn` or `spectrum`.
    pub service: &'static str,
    /// App id (Spectrum), or null.
    pub app: Option<String>,
    /// `connect`, `disconnect`, ...
    pub event: &'static str,
    /// 4 or 6.
    pub ip_version: u8,
    /// Events.
    pub count: u64,
    /// Payload bytes from clients.
    pub bytes_ingress: u64,
    /// Payload bytes to clients.
    pub bytes_egress: u64,
    /// Duration average (ms).
    pub duration_avg_ms: f64,
    /// Duration median (ms).
    pub duration_median_ms: u64,
    /// Duration 90th percentile (ms).
    pub duration_p90_ms: u64,
    /// Duration 99th percentile (ms).
    pub duration_p99_ms: u64,
}

/// Flow-table counters of the queue.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Flows {
    /// Flows created.
    pub inserts: u64,
    /// Flows evicted to make room.
    pub evictions: u64,
    /// Flows that timed out.
    pub expirations: u64,
    /// Flows still open at the end.
    pub open: u64,
}

/// What a replay did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// The capture.
    pub capture: String,
    /// The config.
    pub config: String,
    /// Table versions used.
    pub config_versions: Vec<u64>,
    /// Batches.
    pub batches: u64,
    /// Capture time spanned (s).
    pub capture_seconds: f64,
    /// Wall time taken (s); not reproducible, everything else is.
    pub wall_seconds: f64,
    /// All frames.
    pub total: Mix,
    /// Per service.
    pub services: BTreeMap<&'static str, Mix>,
    /// Per Spectrum app id.
    pub apps: BTreeMap<String, Mix>,
    /// Frames we transmitted.
    pub tx_frames: u64,
    /// Bytes we transmitted.
    pub tx_bytes: u64,
    /// Cookie ACKs that validated.
    pub cookies_valid: u64,
    /// Cookie ACKs that did not.
    pub cookies_invalid: u64,
    /// Flow table.
    pub flows: Flows,
    /// Worker connection analytics.
    pub connections: Vec<ConnectionRow>,
    /// Why the capture could not be read to the end, if it could not.
    pub error: Option<String>,
}

impl Summary {
    /// Collects the summary of a finished replay. `t` maps app slots to ids.
    pub fn build(
        replay: &Replay,
        t: &Tables,
        capture: &str,
        config: &str,
        wall: Duration,
        error: Option<String>,
    ) -> Summary {
        let s: std::sync::Arc<QueueStats> = replay.stats();
        let totals = replay.totals();
        let mut services = BTreeMap::new();
        for sv in Service::ALL {
            let m = Mix::from_stats(&s.services[sv as usize]);
            if m.frames > 0 {
                services.insert(sv.as_str(), m);
            }
        }
        let mut apps = BTreeMap::new();
        for (slot, b) in s.apps.iter().enumerate() {
            let m = Mix::from_stats(b);
            if m.frames > 0 {
                let name = t
                    .app_by_slot(slot as u32)
                    .map_or_else(|| format!("slot {slot} (deleted)"), |a| a.id.clone());
                apps.insert(name, m);
            }
        }
        let connections = replay
            .analytics()
            .rows()
            .map(|r| ConnectionRow {
                service: r.service.as_str(),
                app: r.app_slot.map(|slot| {
                    t.app_by_slot(slot)
                        .map_or_else(|| format!("slot {slot}"), |a| a.id.clone())
                }),
                event: r.event.as_str(),
                ip_version: r.ip_version,
                count: r.count,
                bytes_ingress: r.bytes_ingress,
                bytes_egress: r.bytes_egress,
                duration_avg_ms: (r.duration_avg_ms * 1000.0).round() / 1000.0,
                duration_median_ms: r.duration_median_ms,
                duration_p90_ms: r.duration_p90_ms,
                duration_p99_ms: r.duration_p99_ms,
            })
            .collect();
        Summary {
            capture: capture.to_string(),
            config: config.to_string(),
            config_versions: totals.versions.clone(),
            batches: totals.batches,
            capture_seconds: totals.last_ts_ns.saturating_sub(totals.first_ts_ns) as f64 / 1e9,
            wall_seconds: (wall.as_secs_f64() * 1e6).round() / 1e6,
            total: Mix::from_stats(&s.reasons),
            services,
            apps,
            tx_frames: s.tx_frames.get(),
            tx_bytes: s.tx_bytes.get(),
            cookies_valid: s.cookies_valid.get(),
            cookies_invalid: s.cookies_invalid.get(),
            flows: Flows {
                inserts: s.flow_inserts.get(),
                evictions: s.flow_evictions.get(),
                expirations: s.flow_expirations.get(),
                open: s.flows.get(),
            },
            connections,
            error,
        }
    }

    /// Prints the summary as tables.
    ///
    /// # Errors
    /// Write errors.
    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "replayed {} frames of {} with {}",
            self.total.frames, self.capture, self.config
        )?;
        writeln!(
            out,
            "{} batches, {:.3} s of capture time in {:.3} s, config version {:?}",
            self.batches, self.capture_seconds, self.wall_seconds, self.config_versions
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "{:<8} {:<22} {:>10} {:>7}",
            "verdict", "reason", "frames", "share"
        )?;
        for v in Verdict::ALL {
            for r in Reason::ALL.iter().filter(|r| r.verdict() == v) {
                if let Some(n) = self.total.reasons.get(r.as_str()) {
                    let share = 100.0 * *n as f64 / self.total.frames.max(1) as f64;
                    writeln!(
                        out,
                        "{:<8} {:<22} {:>10} {:>6.1}%",
                        v.as_str(),
                        r.as_str(),
                        n,
                        share
                    )?;
                }
            }
        }
        writeln!(out, "{:<31} {:>10}", "total", self.total.frames)?;
        writeln!(out)?;
        writeln!(
            out,
            "{:<10} {:<14} {:>8} {:>8} {:>8} {:>8}  top reasons",
            "service", "app", "pass", "drop", "tx", "forward"
        )?;
        let row = |out: &mut dyn Write, svc: &str, app: &str, m: &Mix| -> std::io::Result<()> {
            let mut top: Vec<_> = m.reasons.iter().collect();
            top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let top: Vec<String> = top
                .iter()
                .take(3)
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            writeln!(
                out,
                "{:<10} {:<14} {:>8} {:>8} {:>8} {:>8}  {}",
                svc,
                app,
                m.verdicts["pass"],
                m.verdicts["drop"],
                m.verdicts["tx"],
                m.verdicts["forward"],
                top.join(", ")
            )
        };
        for (svc, m) in &self.services {
            row(out, svc, "(all)", m)?;
        }
        for (app, m) in &self.apps {
            row(out, "spectrum", app, m)?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "tx: {} frames, {} bytes; cookie ACKs: {} valid, {} invalid",
            self.tx_frames, self.tx_bytes, self.cookies_valid, self.cookies_invalid
        )?;
        writeln!(
            out,
            "flows: {} created, {} evicted, {} timed out, {} open at the end",
            self.flows.inserts, self.flows.evictions, self.flows.expirations, self.flows.open
        )?;
        if !self.connections.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "{:<10} {:<10} {:<11} {:>2} {:>7} {:>11} {:>10} {:>10} {:>8} {:>8} {:>8}",
                "service",
                "app",
                "event",
                "ip",
                "count",
                "bytes_in",
                "bytes_out",
                "dur_avg",
                "p50",
                "p90",
                "p99"
            )?;
            for c in &self.connections {
                writeln!(
                    out,
                    "{:<10} {:<10} {:<11} {:>2} {:>7} {:>11} {:>10} {:>8.1}ms {:>6}ms {:>6}ms {:>6}ms",
                    c.service,
                    c.app.as_deref().unwrap_or("-"),
                    c.event,
                    c.ip_version,
                    c.count,
                    c.bytes_ingress,
                    c.bytes_egress,
                    c.duration_avg_ms,
                    c.duration_median_ms,
                    c.duration_p90_ms,
                    c.duration_p99_ms
                )?;
            }
        }
        if let Some(e) = &self.error {
            writeln!(out)?;
            writeln!(out, "stopped early: {e}")?;
        }
        Ok(())
    }
}
