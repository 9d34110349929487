//! The running data plane's counters as the control socket shows them: `stats` (JSON, per
//! queue, service, binding, app and reason, with batch-time quantiles) and `metrics`
//! (Prometheus text exposition format, version 0.0.4).
//!
//! Counters are read with relaxed loads while the queues run: each value is exact, a set of
//! values is not one instant (a frame counted per reason may not yet be counted per app).
//! Per-app and per-binding counters are kept by slot; a slot is kept by an app or binding as
//! long as it exists, so its counts are its own since it was created (a slot freed by a
//! deletion may be given to a later one, which then starts from the old counts).

use std::fmt::Write as _;

use fastpath::stats::{ByReason, NsHistogram, QueueStats};
use fastpath::verdict::{Reason, Service, Verdict};
use serde_json::{Map, Value, json};

use crate::daemon::{Controller, DataPlane};

const VERDICTS: [Verdict; 4] = [Verdict::Pass, Verdict::Drop, Verdict::Tx, Verdict::Forward];
const SERVICES: [Service; 2] = [Service::Cdn, Service::Spectrum];

fn reasons_json(counts: &[u64; Reason::COUNT]) -> Value {
    let mut m = Map::new();
    for r in Reason::ALL {
        let n = counts[r as usize];
        if n > 0 {
            m.insert(r.as_str().into(), n.into());
        }
    }
    Value::Object(m)
}

fn verdicts_json(counts: &[u64; Reason::COUNT]) -> Value {
    let mut m = Map::new();
    for v in VERDICTS {
        let n: u64 = Reason::ALL
            .iter()
            .filter(|r| r.verdict() == v)
            .map(|r| counts[*r as usize])
            .sum();
        m.insert(v.as_str().into(), n.into());
    }
    Value::Object(m)
}

fn add(into: &mut [u64; Reason::COUNT], from: &ByReason) {
    for (i, n) in from.snapshot().iter().enumerate() {
        into[i] += n;
    }
}

fn histogram_json(h: &NsHistogram) -> Value {
    json!({
        "count": h.count(),
        "mean": h.mean(),
        "p50": h.quantile(0.5),
        "p90": h.quantile(0.9),
        "p99": h.quantile(0.99),
        "max": h.max(),
    })
}

fn queue_json(q: &crate::daemon::QueueHandle) -> Value {
    let s: &QueueStats = &q.stats;
    let counts = s.reasons.snapshot();
    let mut v = json!({
        "queue": q.queue,
        "core": q.core,
        "frames": s.frames(),
        "bytes": s.rx_bytes.get(),
        "tx_frames": s.tx_frames.get(),
        "tx_bytes": s.tx_bytes.get(),
        "reasons": reasons_json(&counts),
        "verdicts": verdicts_json(&counts),
        "cookies_valid": s.cookies_valid.get(),
        "cookies_invalid": s.cookies_invalid.get(),
        "flows": s.flows.get(),
        "flow_inserts": s.flow_inserts.get(),
        "flow_evictions": s.flow_evictions.get(),
        "flow_expirations": s.flow_expirations.get(),
        "batches": s.batches.get(),
        "batch_ns": histogram_json(&s.batch_ns),
    });
    if let Some(x) = &q.socket {
        v["socket"] = json!({
            "rx": x.rx.get(),
            "tx": x.tx.get(),
            "tx_ring_full": x.tx_ring_full.get(),
            "socket_dropped": x.kernel_dropped(),
            "rx_ring_full": x.kernel_rx_ring_full.get(),
            "fill_ring_empty": x.kernel_fill_ring_empty.get(),
        });
    }
    v
}

/// Sums of one data plane's queue counters.
struct Sums {
    total: [u64; Reason::COUNT],
    services: [[u64; Reason::COUNT]; 2],
}

fn sums(dp: &DataPlane) -> Sums {
    let mut out = Sums {
        total: [0; Reason::COUNT],
        services: [[0; Reason::COUNT]; 2],
    };
    for q in &dp.queues {
        add(&mut out.total, &q.stats.reasons);
        for (i, s) in q.stats.services.iter().enumerate() {
            add(&mut out.services[i], s);
        }
    }
    out
}

/// Per-slot sums over the queues.
fn by_slot(dp: &DataPlane, slot: u32, apps: bool) -> [u64; Reason::COUNT] {
    let mut c = [0; Reason::COUNT];
    for q in &dp.queues {
        let t = if apps {
            &q.stats.apps
        } else {
            &q.stats.bindings
        };
        if let Some(b) = t.get(slot as usize) {
            add(&mut c, b);
        }
    }
    c
}

/// The `stats` result.
pub fn stats_json(c: &Controller) -> Value {
    let running = c.running();
    let (p50, p99, n) = c.swap_times();
    let mut v = json!({
        "version": running.version,
        "uptime_secs": c.uptime_secs(),
        "changes": { "applied": n, "swap_us_p50": p50, "swap_us_p99": p99 },
        "data_plane": Value::Null,
    });
    if let Some(st) = c.store_status() {
        v["store"] = st;
    }
    let Some(dp) = c.data_plane() else {
        return v;
    };
    let s = sums(&dp);
    v["data_plane"] = json!({ "kind": dp.kind, "iface": dp.iface });
    v["totals"] = json!({
        "frames": s.total.iter().sum::<u64>(),
        "verdicts": verdicts_json(&s.total),
        "reasons": reasons_json(&s.total),
    });
    v["queues"] = Value::Array(dp.queues.iter().map(queue_json).collect());
    let mut services = Map::new();
    for sv in SERVICES {
        services.insert(sv.as_str().into(), reasons_json(&s.services[sv as usize]));
    }
    v["services"] = Value::Object(services);
    let spec = &running.compiled.spec;
    v["bindings"] = Value::Array(
        spec.bindings
            .iter()
            .map(|b| {
                json!({
                    "id": b.id,
                    "cidr": b.cidr,
                    "service": b.service.as_str(),
                    "reasons": reasons_json(&by_slot(&dp, b.slot, false)),
                })
            })
            .collect(),
    );
    v["apps"] = Value::Array(
        spec.apps
            .iter()
            .map(|a| json!({ "id": a.id, "reasons": reasons_json(&by_slot(&dp, a.slot, true)) }))
            .collect(),
    );
    v["workers"] = Value::Array(
        dp.workers
            .iter()
            .map(|w| {
                json!({
                    "service": w.service.as_str(),
                    "index": w.index,
                    "items": w.counters.items.get(),
                    "connects": w.counters.connects.get(),
                    "disconnects": w.counters.disconnects.get(),
                    "open": w.counters.open.get(),
                    "evictions": w.counters.evictions.get(),
                    "backlog": dp.pools.as_ref().map(|p| p.backlog(w.service, usize::from(w.index))),
                    "handoff": handoff_json(&w.counters),
                    "bytes_ingress": w.counters.bytes_ingress.get(),
                    "bytes_egress": w.counters.bytes_egress.get(),
                    "origin_errors": w.counters.origin_errors.get(),
                    "limit_connections": w.counters.limit_connections.get(),
                    "backpressure": w.counters.backpressure.get(),
                    "spp_invalid": w.counters.spp_invalid.get(),
                    "bad_checksum": w.counters.bad_checksum.get(),
                    "drained": w.counters.drained.get(),
                })
            })
            .collect(),
    );
    let app_id = |slot: Option<u32>| -> Value {
        match slot {
            None => Value::Null,
            Some(s) => spec
                .apps
                .iter()
                .find(|a| a.slot == s)
                .map_or(json!(format!("slot {s}")), |a| json!(a.id)),
        }
    };
    v["traffic"] = match dp.traffic.as_ref() {
        None => Value::Null,
        Some(read) => Value::Array(
            read()
                .into_iter()
                .map(|t| {
                    json!({
                        "service": t.service.map(Service::as_str),
                        "app": app_id(t.app_slot),
                        "open": t.open,
                        "connects": t.connects,
                        "bytes_ingress": t.bytes_ingress,
                        "bytes_egress": t.bytes_egress,
                        "ends": t.statuses.iter().map(|(code, n)| (code.to_string(), json!(n))).collect::<Map<String, Value>>(),
                    })
                })
                .collect(),
        ),
    };
    v["analytics"] = match dp.analytics.as_ref() {
        None => Value::Null,
        Some(read) => Value::Array(
            read()
                .rows()
                .map(|r| {
                    json!({
                        "service": r.service.as_str(),
                        "app": app_id(r.app_slot),
                        "event": r.event.as_str(),
                        "ip_version": r.ip_version,
                        "count": r.count,
                        "bytes_ingress": r.bytes_ingress,
                        "bytes_egress": r.bytes_egress,
                        "duration_avg_ms": r.duration_avg_ms,
                        "duration_median_ms": r.duration_median_ms,
                        "duration_p90_ms": r.duration_p90_ms,
                        "duration_p99_ms": r.duration_p99_ms,
                    })
                })
                .collect(),
        ),
    };
    v["xdp"] = match dp.xdp.as_ref().and_then(|f| f()) {
        Some(x) => {
            let mut counts = [0u64; Reason::COUNT];
            for (i, n) in x.reasons.iter().take(Reason::COUNT).enumerate() {
                counts[i] = *n;
            }
            json!({
                "reasons": reasons_json(&counts),
                "redirected": x.redirected,
                "no_socket": x.no_socket,
            })
        }
        None => Value::Null,
    };
    v
}

/// The handoff counters of one worker: how many validated flows became kernel sockets, how
/// many failed and why, and the segments that raced a handoff.
fn handoff_json(c: &fastpath::worker::WorkerCounters) -> Value {
    json!({
        "ok": c.handoffs.get(),
        "in_use": c.handoff_in_use.get(),
        "no_memory": c.handoff_no_memory.get(),
        "fd_limit": c.handoff_fd_limit.get(),
        "failed": c.handoff_failed.get(),
        "reinjected": c.reinjected.get(),
        "stray": c.stray.get(),
    })
}

/// Writes Prometheus text: one `# HELP` and `# TYPE` per family, then its samples.
struct Prom {
    out: String,
}

impl Prom {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl core::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn reason_samples(
    p: &mut Prom,
    name: &str,
    base: &[(&str, &str)],
    counts: &[u64; Reason::COUNT],
    all: bool,
) {
    for r in Reason::ALL {
        let n = counts[r as usize];
        if n == 0 && !all {
            continue;
        }
        let mut l = base.to_vec();
        l.push(("verdict", r.verdict().as_str()));
        l.push(("reason", r.as_str()));
        p.sample(name, &l, n);
    }
}

/// The shared configuration's families: the etcd revision that runs, staleness, refusals.
fn store_samples(p: &mut Prom, st: &Value) {
    let int = |k: &str| st.get(k).and_then(Value::as_i64).unwrap_or(0);
    p.family(
        "fastpath_config_store_revision",
        "gauge",
        "etcd revision of the shared configuration that runs.",
    );
    p.sample("fastpath_config_store_revision", &[], int("revision"));
    p.family(
        "fastpath_config_store_stale",
        "gauge",
        "1 while the node cannot follow etcd and serves its last applied revision.",
    );
    let stale = st.get("stale").and_then(Value::as_bool).unwrap_or(false);
    p.sample("fastpath_config_store_stale", &[], u8::from(stale));
    p.family(
        "fastpath_config_store_stale_since_seconds",
        "gauge",
        "When the node became stale (Unix time), 0 when it is not.",
    );
    let since = st
        .get("stale_since_ms")
        .and_then(Value::as_u64)
        .map_or(0.0, |ms| ms as f64 / 1e3);
    p.sample(
        "fastpath_config_store_stale_since_seconds",
        &[],
        format!("{since:.3}"),
    );
    p.family(
        "fastpath_config_store_refused_revision",
        "gauge",
        "The last etcd revision this node refused to apply (0: none).",
    );
    let refused = st
        .get("refused")
        .and_then(|r| r.get("revision"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    p.sample("fastpath_config_store_refused_revision", &[], refused);
    p.family(
        "fastpath_config_store_applied_total",
        "counter",
        "Revisions of the shared configuration applied since start.",
    );
    p.sample("fastpath_config_store_applied_total", &[], int("applied"));
}

/// The `metrics` text.
pub fn prometheus(c: &Controller) -> String {
    let running = c.running();
    let mut p = Prom { out: String::new() };
    p.family(
        "fastpath_config_version",
        "gauge",
        "Version of the running configuration.",
    );
    p.sample("fastpath_config_version", &[], running.version);
    let (p50, p99, n) = c.swap_times();
    p.family(
        "fastpath_config_swap_seconds",
        "summary",
        "Time from a change request to its tables being live.",
    );
    p.sample(
        "fastpath_config_swap_seconds",
        &[("quantile", "0.5")],
        p50 / 1e6,
    );
    p.sample(
        "fastpath_config_swap_seconds",
        &[("quantile", "0.99")],
        p99 / 1e6,
    );
    p.sample("fastpath_config_swap_seconds_count", &[], n);
    p.family(
        "fastpath_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
    );
    p.sample(
        "fastpath_uptime_seconds",
        &[],
        format!("{:.3}", c.uptime_secs()),
    );
    if let Some(st) = c.store_status() {
        store_samples(&mut p, &st);
    }
    let Some(dp) = c.data_plane() else {
        return p.out;
    };

    p.family(
        "fastpath_frames_total",
        "counter",
        "Frames classified by the pipeline, by queue, verdict and reason.",
    );
    for q in &dp.queues {
        let qs = q.queue.to_string();
        reason_samples(
            &mut p,
            "fastpath_frames_total",
            &[("queue", &qs)],
            &q.stats.reasons.snapshot(),
            true,
        );
    }
    p.family(
        "fastpath_service_frames_total",
        "counter",
        "Frames classified by the pipeline, by service, verdict and reason.",
    );
    let s = sums(&dp);
    for sv in SERVICES {
        reason_samples(
            &mut p,
            "fastpath_service_frames_total",
            &[("service", sv.as_str())],
            &s.services[sv as usize],
            false,
        );
    }
    let spec = &running.compiled.spec;
    p.family(
        "fastpath_binding_frames_total",
        "counter",
        "Frames by service binding, verdict and reason.",
    );
    for b in &spec.bindings {
        let cidr = b.cidr.to_string();
        reason_samples(
            &mut p,
            "fastpath_binding_frames_total",
            &[
                ("binding", &b.id),
                ("cidr", &cidr),
                ("service", b.service.as_str()),
            ],
            &by_slot(&dp, b.slot, false),
            false,
        );
    }
    p.family(
        "fastpath_app_frames_total",
        "counter",
        "Frames by Spectrum app, verdict and reason.",
    );
    for a in &spec.apps {
        reason_samples(
            &mut p,
            "fastpath_app_frames_total",
            &[("app", &a.id)],
            &by_slot(&dp, a.slot, true),
            false,
        );
    }
    p.family(
        "fastpath_rx_bytes_total",
        "counter",
        "Bytes of the frames the pipeline classified.",
    );
    for q in &dp.queues {
        p.sample(
            "fastpath_rx_bytes_total",
            &[("queue", &q.queue.to_string())],
            q.stats.rx_bytes.get(),
        );
    }
    p.family(
        "fastpath_tx_frames_total",
        "counter",
        "Frames the fast path sent (SYN-ACKs, resets, ICMP errors).",
    );
    for q in &dp.queues {
        p.sample(
            "fastpath_tx_frames_total",
            &[("queue", &q.queue.to_string())],
            q.stats.tx_frames.get(),
        );
    }
    p.family(
        "fastpath_cookies_total",
        "counter",
        "Cookie ACKs checked, by result.",
    );
    for q in &dp.queues {
        let qs = q.queue.to_string();
        p.sample(
            "fastpath_cookies_total",
            &[("queue", &qs), ("result", "valid")],
            q.stats.cookies_valid.get(),
        );
        p.sample(
            "fastpath_cookies_total",
            &[("queue", &qs), ("result", "invalid")],
            q.stats.cookies_invalid.get(),
        );
    }
    p.family(
        "fastpath_flows",
        "gauge",
        "Flows in each queue's flow table.",
    );
    for q in &dp.queues {
        p.sample(
            "fastpath_flows",
            &[("queue", &q.queue.to_string())],
            q.stats.flows.get(),
        );
    }
    p.family(
        "fastpath_flow_evictions_total",
        "counter",
        "Flows evicted from a full flow table.",
    );
    for q in &dp.queues {
        p.sample(
            "fastpath_flow_evictions_total",
            &[("queue", &q.queue.to_string())],
            q.stats.flow_evictions.get(),
        );
    }
    p.family(
        "fastpath_batch_seconds",
        "summary",
        "Time to classify one batch of frames.",
    );
    for q in &dp.queues {
        let qs = q.queue.to_string();
        let h = &q.stats.batch_ns;
        for (label, qt) in [("0.5", 0.5), ("0.9", 0.9), ("0.99", 0.99)] {
            p.sample(
                "fastpath_batch_seconds",
                &[("queue", &qs), ("quantile", label)],
                h.quantile(qt) as f64 / 1e9,
            );
        }
        p.sample(
            "fastpath_batch_seconds_sum",
            &[("queue", &qs)],
            (h.mean() as f64 * h.count() as f64) / 1e9,
        );
        p.sample("fastpath_batch_seconds_count", &[("queue", &qs)], h.count());
    }
    if dp.queues.iter().any(|q| q.socket.is_some()) {
        p.family(
            "fastpath_socket_dropped_total",
            "counter",
            "Frames redirected to a queue's AF_XDP socket that the kernel dropped before its RX ring.",
        );
        for q in &dp.queues {
            if let Some(x) = &q.socket {
                p.sample(
                    "fastpath_socket_dropped_total",
                    &[("queue", &q.queue.to_string())],
                    x.kernel_dropped(),
                );
            }
        }
    }
    if let Some(x) = dp.xdp.as_ref().and_then(|f| f()) {
        p.family(
            "fastpath_xdp_frames_total",
            "counter",
            "Frames the XDP program decided, by verdict and reason: dropped, passed, or answered with XDP_TX (syn_cookie).",
        );
        let mut counts = [0u64; Reason::COUNT];
        for (i, n) in x.reasons.iter().take(Reason::COUNT).enumerate() {
            counts[i] = *n;
        }
        reason_samples(&mut p, "fastpath_xdp_frames_total", &[], &counts, false);
        p.family(
            "fastpath_xdp_redirected_total",
            "counter",
            "Frames the XDP program redirected to the AF_XDP sockets.",
        );
        p.sample("fastpath_xdp_redirected_total", &[], x.redirected);
    }
    p.family(
        "fastpath_worker_connections_total",
        "counter",
        "Connections the workers opened and closed.",
    );
    for w in &dp.workers {
        let i = w.index.to_string();
        let base = [("service", w.service.as_str()), ("worker", i.as_str())];
        let mut l = base.to_vec();
        l.push(("event", "connect"));
        p.sample(
            "fastpath_worker_connections_total",
            &l,
            w.counters.connects.get(),
        );
        let mut l = base.to_vec();
        l.push(("event", "disconnect"));
        p.sample(
            "fastpath_worker_connections_total",
            &l,
            w.counters.disconnects.get(),
        );
    }
    let workers_counter =
        |p: &mut Prom,
         name: &str,
         help: &str,
         f: &dyn Fn(&fastpath::worker::WorkerCounters) -> u64| {
            p.family(name, "counter", help);
            for w in &dp.workers {
                let i = w.index.to_string();
                p.sample(
                    name,
                    &[("service", w.service.as_str()), ("worker", &i)],
                    f(&w.counters),
                );
            }
        };
    if dp.traffic.is_some() {
        p.family(
            "fastpath_handoffs_total",
            "counter",
            "Validated TCP flows made kernel sockets (result ok), and handoffs that failed, by reason; the segment is dropped and the client's retransmission tries again.",
        );
        for w in &dp.workers {
            let i = w.index.to_string();
            let c = &w.counters;
            for (result, n) in [
                ("ok", c.handoffs.get()),
                ("in_use", c.handoff_in_use.get()),
                ("no_memory", c.handoff_no_memory.get()),
                ("fd_limit", c.handoff_fd_limit.get()),
                ("failed", c.handoff_failed.get()),
            ] {
                p.sample(
                    "fastpath_handoffs_total",
                    &[
                        ("service", w.service.as_str()),
                        ("worker", &i),
                        ("result", result),
                    ],
                    n,
                );
            }
        }
        workers_counter(
            &mut p,
            "fastpath_handoff_reinjected_total",
            "Segments that reached userspace before their flow's kernel socket existed, put back into the kernel.",
            &|c| c.reinjected.get(),
        );
        workers_counter(
            &mut p,
            "fastpath_worker_stray_total",
            "Segments or datagrams of flows the worker does not hold, dropped.",
            &|c| c.stray.get(),
        );
        workers_counter(
            &mut p,
            "fastpath_worker_limit_connections_total",
            "New flows refused (RST) because the worker held proxy.max_connections.",
            &|c| c.limit_connections.get(),
        );
        workers_counter(
            &mut p,
            "fastpath_worker_backpressure_total",
            "Times a relay direction waited with its buffer (proxy.buffer_bytes) full for a slow receiver.",
            &|c| c.backpressure.get(),
        );
        workers_counter(
            &mut p,
            "fastpath_worker_spp_invalid_total",
            "UDP datagrams from an origin without a valid Simple Proxy Protocol header, dropped.",
            &|c| c.spp_invalid.get(),
        );
        workers_counter(
            &mut p,
            "fastpath_worker_bad_checksum_total",
            "Segments or datagrams with a bad TCP/UDP checksum, dropped by a worker.",
            &|c| c.bad_checksum.get(),
        );
    }
    if let Some(read) = dp.traffic.as_ref() {
        let running = c.running();
        let spec = &running.compiled.spec;
        let traffic = read();
        let label = |t: &crate::daemon::AppTraffic| -> String {
            match t.app_slot {
                None => String::new(),
                Some(s) => spec
                    .apps
                    .iter()
                    .find(|a| a.slot == s)
                    .map_or_else(|| format!("slot {s}"), |a| a.id.clone()),
            }
        };
        // Each family: name, type, help, and the (extra label, value) samples of one app.
        type Samples = fn(&crate::daemon::AppTraffic) -> Vec<(Option<(&'static str, String)>, u64)>;
        let families: [(&str, &str, &str, Samples); 4] = [
            (
                "fastpath_app_connections_open",
                "gauge",
                "TCP connections and UDP flows open now, by service and app.",
                |t| vec![(None, t.open)],
            ),
            (
                "fastpath_app_connects_total",
                "counter",
                "Connections and UDP flows opened, by service and app.",
                |t| vec![(None, t.connects)],
            ),
            (
                "fastpath_app_bytes_total",
                "counter",
                "Payload bytes relayed, by service, app and direction (ingress: client to origin).",
                |t| {
                    vec![
                        (Some(("direction", "ingress".into())), t.bytes_ingress),
                        (Some(("direction", "egress".into())), t.bytes_egress),
                    ]
                },
            ),
            (
                "fastpath_app_connection_ends_total",
                "counter",
                "Connections that ended, by service, app and the Spectrum event log's status code.",
                |t| {
                    t.statuses
                        .iter()
                        .map(|(code, n)| (Some(("status", code.to_string())), *n))
                        .collect()
                },
            ),
        ];
        for (name, kind, help, samples) in families {
            p.family(name, kind, help);
            for t in &traffic {
                let app = label(t);
                let sv = t.service.map_or("", Service::as_str);
                for (extra, n) in samples(t) {
                    let mut l = vec![("service", sv), ("app", app.as_str())];
                    if let Some((k, v)) = &extra {
                        l.push((k, v.as_str()));
                    }
                    p.sample(name, &l, n);
                }
            }
        }
    }
    if let Some(pools) = &dp.pools {
        p.family(
            "fastpath_worker_backlog",
            "gauge",
            "Work items waiting in a worker's queue.",
        );
        for w in &dp.workers {
            let i = w.index.to_string();
            p.sample(
                "fastpath_worker_backlog",
                &[("service", w.service.as_str()), ("worker", &i)],
                pools.backlog(w.service, usize::from(w.index)),
            );
        }
    }
    p.out
}

#[cfg(test)]
mod test {
    use super::*;

    /// A live data plane's per-app traffic and handoff counters reach `stats` and `metrics`.
    #[test]
    fn live_traffic_and_handoffs_are_exported() {
        use crate::daemon::{AppTraffic, DataPlane, Running, WorkerHandle};
        let cfg = crate::config::Config::from_toml_str(
            "[[prefixes]]\ncidr = \"203.0.113.0/24\"\n[[bindings]]\ncidr = \"203.0.113.0/24\"\n\
             service = \"spectrum\"\n[[spectrum_apps]]\nid = \"ssh\"\nprotocol = \"tcp/22\"\n\
             edge_ips = { type = \"static\", ips = [\"203.0.113.10\"] }\n\
             origin_direct = [\"tcp://192.0.2.1:22\"]\n[[origin_policy.delegations]]\n\
             cidr = \"192.0.2.0/24\"\n",
        )
        .unwrap();
        let compiled = cfg.compile(1, &Default::default()).unwrap();
        let slot = compiled.spec.apps[0].slot;
        let tables = fastpath::tables::SharedTables::new(
            fastpath::tables::Tables::build(&compiled.spec).unwrap(),
        );
        let c = Controller::read_only(
            Running {
                config: cfg,
                compiled,
                version: 1,
            },
            tables,
            None,
        );
        let counters = std::sync::Arc::new(fastpath::worker::WorkerCounters::default());
        counters.handoffs.add(5);
        counters.handoff_in_use.add(2);
        counters.reinjected.add(3);
        c.set_data_plane(DataPlane {
            kind: "xdp",
            iface: Some("ed0".into()),
            queues: vec![],
            workers: vec![WorkerHandle {
                service: Service::Spectrum,
                index: 0,
                counters,
            }],
            pools: None,
            xdp: None,
            events: vec![],
            traffic: Some(Box::new(move || {
                vec![AppTraffic {
                    service: Some(Service::Spectrum),
                    app_slot: Some(slot),
                    open: 1,
                    connects: 5,
                    bytes_ingress: 100,
                    bytes_egress: 4000,
                    statuses: vec![(200, 3), (521, 1)],
                }]
            })),
            analytics: Some(Box::new(fastpath::worker::Analytics::default)),
        });
        let m = prometheus(&c);
        for line in [
            "fastpath_handoffs_total{service=\"spectrum\",worker=\"0\",result=\"ok\"} 5",
            "fastpath_handoffs_total{service=\"spectrum\",worker=\"0\",result=\"in_use\"} 2",
            "fastpath_handoff_reinjected_total{service=\"spectrum\",worker=\"0\"} 3",
            "fastpath_app_connections_open{service=\"spectrum\",app=\"ssh\"} 1",
            "fastpath_app_connects_total{service=\"spectrum\",app=\"ssh\"} 5",
            "fastpath_app_bytes_total{service=\"spectrum\",app=\"ssh\",direction=\"egress\"} 4000",
            "fastpath_app_connection_ends_total{service=\"spectrum\",app=\"ssh\",status=\"521\"} 1",
        ] {
            assert!(m.lines().any(|l| l == line), "{line} not in\n{m}");
        }
        let v = stats_json(&c);
        assert_eq!(v["traffic"][0]["app"], "ssh");
        assert_eq!(v["traffic"][0]["ends"]["200"], 3);
        assert_eq!(v["workers"][0]["handoff"]["in_use"], 2);
        assert_eq!(v["analytics"], serde_json::json!([]));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }
}
