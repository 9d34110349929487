//! The control socket: HTTP/1.1 with JSON bodies on a Unix socket, the way Docker's API socket
//! works, with resources in the shapes of the public Spectrum and BYOIP APIs. Every response is
//! the `{success, errors, messages, result}` envelope.
//!
//! The socket is created with mode 0600 (or 0660 with a group), so only root (or the group)
//! can connect; the peer's uid and pid (`SO_PEERCRED`) are logged with every change. Request
//! heads must arrive within [`HEADER_TIMEOUT`] and bodies are limited to [`MAX_BODY`]; a
//! request that is not HTTP gets `400` and the connection closes; none of this disturbs other
//! connections or the running configuration.

// Handlers return an early error response by value, once per request: boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{AccessRule, Binding, Cdn, Config, Prefix, SpectrumApp, parse_json};
use crate::daemon::{ApplyError, ApplyOutcome, Controller, EventFilter, Peer};

/// The largest request body accepted (a whole configuration with 100k access rules fits).
pub const MAX_BODY: usize = 64 << 20;
/// How long a client may take to send a request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A response body: a whole JSON document, or a stream of lines (`events?follow=true`).
#[derive(Debug)]
pub enum Body {
    /// The whole body at once.
    Full(Full<Bytes>),
    /// Chunks as they come; the stream ends when the sender is dropped.
    Stream(tokio::sync::mpsc::Receiver<Bytes>),
}

impl Body {
    fn full(b: impl Into<Bytes>) -> Body {
        Body::Full(Full::new(b.into()))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(f) => std::pin::Pin::new(f).poll_frame(cx),
            Body::Stream(rx) => rx
                .poll_recv(cx)
                .map(|c| c.map(|b| Ok(hyper::body::Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(f) => f.is_end_stream(),
            Body::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        // An exact size makes hyper send Content-Length instead of chunks.
        match self {
            Body::Full(f) => f.size_hint(),
            Body::Stream(_) => hyper::body::SizeHint::default(),
        }
    }
}

/// One error object of the envelope.
#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    /// A stable code.
    pub code: u32,
    /// What is wrong and what to do.
    pub message: String,
}

fn envelope(
    status: StatusCode,
    result: Value,
    errors: Vec<ApiError>,
    messages: Vec<String>,
) -> Response<Body> {
    let body = json!({
        "success": errors.is_empty(),
        "errors": errors,
        "messages": messages,
        "result": result,
    });
    let mut r = Response::new(Body::full(
        serde_json::to_vec_pretty(&body).unwrap_or_default(),
    ));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn ok(result: Value) -> Response<Body> {
    envelope(StatusCode::OK, result, Vec::new(), Vec::new())
}

fn fail(status: StatusCode, code: u32, message: impl Into<String>) -> Response<Body> {
    envelope(
        status,
        Value::Null,
        vec![ApiError {
            code,
            message: message.into(),
        }],
        Vec::new(),
    )
}

fn refused(e: &ApplyError) -> Response<Body> {
    let (status, errors, result) = match e {
        ApplyError::Invalid(errs) => (
            StatusCode::BAD_REQUEST,
            errs.iter()
                .map(|x| ApiError {
                    // The public API's own code for an origin name without an address.
                    code: if x.rule == crate::config::Rule::OriginUnresolvable {
                        531
                    } else {
                        e.code()
                    },
                    message: x.to_string(),
                })
                .collect(),
            Value::Null,
        ),
        ApplyError::Verification(findings) => (
            StatusCode::BAD_REQUEST,
            findings
                .iter()
                .map(|f| ApiError {
                    code: e.code(),
                    message: f.message.clone(),
                })
                .collect(),
            json!({ "findings": findings }),
        ),
        ApplyError::VersionMismatch { .. } => (
            StatusCode::CONFLICT,
            vec![ApiError {
                code: e.code(),
                message: e.to_string(),
            }],
            Value::Null,
        ),
        ApplyError::StoreConflict { .. } => (
            StatusCode::CONFLICT,
            vec![ApiError {
                code: e.code(),
                message: e.to_string(),
            }],
            Value::Null,
        ),
        ApplyError::Store(_) | ApplyError::NotLive(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            vec![ApiError {
                code: e.code(),
                message: e.to_string(),
            }],
            Value::Null,
        ),
        ApplyError::Persist { .. } | ApplyError::Install(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![ApiError {
                code: e.code(),
                message: e.to_string(),
            }],
            Value::Null,
        ),
        ApplyError::NeedsRestart(_)
        | ApplyError::ReadOnly
        | ApplyError::NoSecrets
        | ApplyError::FleetSeed(_) => (
            match e {
                ApplyError::NeedsRestart(_) => StatusCode::BAD_REQUEST,
                ApplyError::ReadOnly => StatusCode::FORBIDDEN,
                _ => StatusCode::CONFLICT,
            },
            vec![ApiError {
                code: e.code(),
                message: e.to_string(),
            }],
            Value::Null,
        ),
    };
    envelope(status, result, errors, Vec::new())
}

fn bad_body(e: &crate::config::ConfigErrors) -> Response<Body> {
    envelope(
        StatusCode::BAD_REQUEST,
        Value::Null,
        e.iter()
            .map(|x| ApiError {
                code: 1003,
                message: x.to_string(),
            })
            .collect(),
        Vec::new(),
    )
}

fn not_found(what: &str) -> Response<Body> {
    fail(StatusCode::NOT_FOUND, 1404, format!("no {what}"))
}

fn invalid(message: impl Into<String>) -> ApplyError {
    ApplyError::Invalid(crate::config::ConfigErrors::new(vec![
        crate::config::ConfigError::new(crate::config::Rule::InvalidValue, "", None, message),
    ]))
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// The opaque id of a prefix, as the BYOIP API gives prefixes ids: stable, the first 128 bits of
/// SHA-256 of `"fastpath prefix <cidr>"` in hex. URLs may name a prefix by its CIDR too.
pub fn prefix_id(cidr: &IpNet) -> String {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(format!("fastpath prefix {}", cidr.trunc()).as_bytes());
    h[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The CIDR a prefix id names in its other accepted forms: the CIDR itself (`203.0.113.0/24`,
/// URL-encoded or not) or with a dash (`203.0.113.0-24`).
fn parse_prefix_cidr(id: &str) -> Option<IpNet> {
    let s = percent_decode(id);
    s.parse().ok().or_else(|| {
        s.rsplit_once('-')
            .and_then(|(a, l)| format!("{a}/{l}").parse().ok())
    })
}

struct Ctx<'a> {
    c: &'a Controller,
    peer: Peer,
    /// When the request's head was read.
    received: std::time::Instant,
    q: HashMap<String, String>,
    body: Bytes,
}

impl Ctx<'_> {
    fn dry_run(&self) -> bool {
        matches!(
            self.q.get("dry_run").map(String::as_str),
            Some("true" | "1")
        )
    }

    fn expected_version(&self) -> Result<Option<u64>, Response<Body>> {
        match self.q.get("expected_version") {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                fail(
                    StatusCode::BAD_REQUEST,
                    1003,
                    format!("expected_version={v}: give the version number from GET /v1/config"),
                )
            }),
        }
    }

    fn text(&self) -> Result<&str, Response<Body>> {
        std::str::from_utf8(&self.body)
            .map_err(|_| fail(StatusCode::BAD_REQUEST, 1003, "the body is not UTF-8 JSON"))
    }

    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Response<Body>> {
        let t = self.text()?;
        if t.trim().is_empty() {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                1003,
                "a JSON body is required",
            ));
        }
        // serde_json straight into the type is fast; on failure, parse again with the path
        // tracking that names the offending key.
        serde_json::from_str(t).or_else(|_| parse_json(t).map_err(|e| bad_body(&e)))
    }

    /// Applies `change` to a copy of the running configuration; answers with `result(config)`
    /// and the outcome.
    fn change(
        &self,
        change: impl FnOnce(&mut Config) -> Result<(), ApplyError>,
        result: impl FnOnce(&Config) -> Value,
    ) -> Response<Body> {
        let ev = match self.expected_version() {
            Ok(v) => v,
            Err(r) => return r,
        };
        let mut after = None;
        let outcome =
            self.c
                .modify_since(self.received, Some(self.peer), ev, self.dry_run(), |cfg| {
                    change(cfg)?;
                    after = Some(cfg.clone());
                    Ok(())
                });
        match outcome {
            Ok(o) => {
                // The apps as the edge made them (assigned edge IPs, resolved origins).
                if let Some(a) = after.as_mut() {
                    a.spectrum_apps.clone_from(&o.apps);
                }
                let mut r = after.as_ref().map(result).unwrap_or(Value::Null);
                annotate(&mut r, &o);
                ok(r)
            }
            Err(e) => refused(&e),
        }
    }
}

fn annotate(r: &mut Value, o: &ApplyOutcome) {
    let meta =
        json!({ "version": o.version, "applied": o.applied, "diff": o.diff, "swap_us": o.swap_us });
    match r {
        Value::Object(m) => {
            m.insert("_change".into(), meta);
        }
        other => {
            *other = json!({ "items": other.clone(), "_change": meta });
        }
    }
}

/// An app as the public API shows it: every field, defaults included.
fn app_json(a: &SpectrumApp) -> Value {
    let mut v = serde_json::to_value(a).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        for (k, d) in [
            ("proxy_protocol", json!("off")),
            ("ip_firewall", json!(false)),
            ("tls", json!("off")),
            ("traffic_type", json!("direct")),
            ("argo_smart_routing", json!(false)),
        ] {
            m.entry(k).or_insert(d);
        }
    }
    v
}

/// An app with the state of its origin name's lookups (GET).
fn app_json_status(c: &Controller, a: &SpectrumApp) -> Value {
    let mut v = app_json(a);
    if let (Value::Object(m), Some(s)) = (&mut v, c.dns_status(&a.id)) {
        m.insert(
            "origin_dns_status".into(),
            serde_json::to_value(s).unwrap_or(Value::Null),
        );
    }
    v
}

fn unique_app_id(cfg: &Config, base: &str) -> String {
    let base: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    let taken = |id: &str| cfg.spectrum_apps.iter().any(|a| a.id == id);
    if !base.is_empty() && !taken(&base) {
        return base;
    }
    (1..)
        .map(|n| format!("{}-{n}", if base.is_empty() { "app" } else { &base }))
        .find(|id| !taken(id))
        .unwrap_or_default()
}

fn status(c: &Controller) -> Value {
    let r = c.running();
    let (p50, p99, n) = c.swap_times();
    let dp = c.data_plane();
    let mut v = json!({
        "node": r.config.node.name,
        "version": r.version,
        "config_file": c.persist_path(),
        "read_only": c.persist_path().is_none(),
        "uptime_secs": c.uptime_secs(),
        "data_plane": dp.as_ref().map(|d| json!({ "kind": d.kind, "iface": d.iface })),
        "queues": dp.as_ref().map_or(0, |d| d.queues.len()),
        "prefixes": r.config.prefixes.len(),
        "bindings": r.config.bindings.len(),
        "spectrum_apps": r.config.spectrum_apps.len(),
        "access_rules": r.config.access_rules.len(),
        "changes_applied": n,
        "swap_us_p50": p50,
        "swap_us_p99": p99,
    });
    if let Some(st) = c.store_status() {
        let time = |k: &str| {
            st.get(k)
                .and_then(Value::as_u64)
                .map(crate::analytics::format_time)
        };
        v["config_source"] = st["source"].clone();
        v["etcd_revision"] = st["revision"].clone();
        v["stale"] = json!(match (
            time("stale_since_ms"),
            st.get("last_error").and_then(Value::as_str)
        ) {
            (Some(since), Some(e)) => format!("since {since}: {e}"),
            (Some(since), None) => format!("since {since}"),
            _ => "no".to_string(),
        });
        if let Some(r) = st.get("refused").filter(|r| !r.is_null()) {
            v["refused"] = json!(format!(
                "etcd revision {}: {}",
                r["revision"],
                r["reason"].as_str().unwrap_or("")
            ));
        }
    }
    v
}

/// Answers one request whose head was read at `received`.
pub fn route(
    c: &Controller,
    peer: Peer,
    received: std::time::Instant,
    method: &Method,
    path: &str,
    q: HashMap<String, String>,
    body: Bytes,
) -> Response<Body> {
    let ctx = Ctx {
        c,
        peer,
        received,
        q,
        body,
    };
    let mut seg: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // The public API's other spellings: `/api/v4/…` (the analytics documentation) and the
    // addressing service's `/edge_services/…` without a version.
    if seg.starts_with(&["api", "v4"]) {
        seg[0] = "client";
    }
    if seg.first() == Some(&"edge_services") {
        seg.splice(0..0, ["client", "v4"]);
    }
    match (method, &seg[..]) {
        (&Method::GET, ["v1", "status"]) => ok(status(c)),
        (&Method::GET, ["v1", "config"]) => {
            let (version, config) = c.public_config();
            ok(json!({ "version": version, "config": config }))
        }
        (&Method::GET, ["v1", "stats"]) => ok(crate::stats::stats_json(c)),
        (&Method::GET, ["metrics"] | ["v1", "metrics"]) => {
            let mut r = Response::new(Body::full(crate::stats::prometheus(c)));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (&Method::POST, ["v1", "explain"]) => explain(&ctx),
        (&Method::POST, ["v1", "secrets", "rotate"]) => rotate(&ctx),
        (&Method::PUT | &Method::POST, ["v1", "config"]) => {
            let cfg: Config = match ctx.json() {
                Ok(c) => c,
                Err(r) => return r,
            };
            let ev = match ctx.expected_version() {
                Ok(v) => v,
                Err(r) => return r,
            };
            match c.apply_since(ctx.received, cfg, ev, ctx.dry_run(), Some(peer)) {
                Ok(o) => ok(serde_json::to_value(o).unwrap_or(Value::Null)),
                Err(e) => refused(&e),
            }
        }
        (&Method::GET, ["v1", "events"]) => {
            let filter = match event_filter(&ctx.q) {
                Ok(f) => f,
                Err(r) => return r,
            };
            let since = ctx.q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
            let wait = ctx
                .q
                .get("wait")
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0)
                .clamp(0.0, 60.0);
            ok(
                serde_json::to_value(c.events_since(since, Duration::from_secs_f64(wait), filter))
                    .unwrap_or(Value::Null),
            )
        }

        // Spectrum analytics (seed 003).
        (
            &Method::GET,
            [
                "client",
                "v4",
                "zones",
                _,
                "spectrum",
                "analytics",
                "events",
                kind @ ("summary" | "bytime"),
            ],
        ) => match c.analytics(&ctx.q, *kind == "bytime") {
            Ok(v) => ok(v),
            Err(e) => fail(StatusCode::BAD_REQUEST, 1010, e.to_string()),
        },

        // Spectrum apps.
        (&Method::GET, ["client", "v4", "zones", _, "spectrum", "apps"]) => ok(Value::Array(
            c.running()
                .config
                .spectrum_apps
                .iter()
                .map(|a| app_json_status(c, a))
                .collect(),
        )),
        (&Method::GET, ["client", "v4", "zones", _, "spectrum", "apps", id]) => {
            match c
                .running()
                .config
                .spectrum_apps
                .iter()
                .find(|a| a.id == *id)
            {
                Some(a) => ok(app_json_status(c, a)),
                None => not_found(&format!("Spectrum app {id}")),
            }
        }
        (&Method::POST, ["client", "v4", "zones", _, "spectrum", "apps"]) => {
            // One app, or an array of apps (as in the public API's examples).
            let v: Value = match ctx.json() {
                Ok(v) => v,
                Err(r) => return r,
            };
            let many = v.is_array();
            let items = if many {
                v.as_array().cloned().unwrap_or_default()
            } else {
                vec![v]
            };
            let mut apps = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match parse_json::<SpectrumApp>(&item.to_string()) {
                    Ok(a) => apps.push(a),
                    Err(e) => {
                        let mut r = bad_body(&e);
                        if many {
                            r = fail(StatusCode::BAD_REQUEST, 1003, format!("app [{i}]: {e}"));
                        }
                        return r;
                    }
                }
            }
            let ids = std::cell::RefCell::new(Vec::new());
            ctx.change(
                |cfg| {
                    for mut a in apps {
                        if a.id.is_empty() {
                            let base = a.dns.as_ref().map(|d| d.name.clone()).unwrap_or_default();
                            a.id = unique_app_id(cfg, &base);
                        } else if cfg.spectrum_apps.iter().any(|x| x.id == a.id) {
                            return Err(invalid(format!(
                                "a Spectrum app with id {} exists: use PUT to change it",
                                a.id
                            )));
                        }
                        ids.borrow_mut().push(a.id.clone());
                        cfg.spectrum_apps.push(a);
                    }
                    Ok(())
                },
                |cfg| {
                    let out: Vec<Value> = cfg
                        .spectrum_apps
                        .iter()
                        .filter(|a| ids.borrow().contains(&a.id))
                        .map(app_json)
                        .collect();
                    if many {
                        Value::Array(out)
                    } else {
                        out.into_iter().next().unwrap_or(Value::Null)
                    }
                },
            )
        }
        (&Method::PUT, ["client", "v4", "zones", _, "spectrum", "apps", id]) => {
            let mut a: SpectrumApp = match ctx.json() {
                Ok(a) => a,
                Err(r) => return r,
            };
            let id = (*id).to_string();
            a.id = id.clone();
            ctx.change(
                |cfg| match cfg.spectrum_apps.iter_mut().find(|x| x.id == id) {
                    Some(x) => {
                        *x = a;
                        Ok(())
                    }
                    None => Err(invalid(format!(
                        "no Spectrum app {id}: create it with POST"
                    ))),
                },
                |cfg| {
                    cfg.spectrum_apps
                        .iter()
                        .find(|x| x.id == id)
                        .map(app_json)
                        .unwrap_or(Value::Null)
                },
            )
        }
        (&Method::DELETE, ["client", "v4", "zones", _, "spectrum", "apps", id]) => {
            let id = (*id).to_string();
            if !c.running().config.spectrum_apps.iter().any(|a| a.id == id) {
                return not_found(&format!("Spectrum app {id}"));
            }
            ctx.change(
                |cfg| {
                    cfg.spectrum_apps.retain(|a| a.id != id);
                    Ok(())
                },
                |_| json!({ "id": id }),
            )
        }

        // BYOIP services, prefixes and their service bindings.
        (&Method::GET, ["client", "v4", "accounts", _, "addressing", "services"]) => {
            ok(services_json())
        }
        (&Method::GET, ["client", "v4", "accounts", _, "addressing", "prefixes"]) => {
            ok(Value::Array(
                c.running()
                    .config
                    .prefixes
                    .iter()
                    .map(prefix_json)
                    .collect(),
            ))
        }
        (&Method::GET, ["client", "v4", "accounts", _, "addressing", "prefixes", id]) => {
            match find_prefix(c, id) {
                Some(p) => ok(prefix_json(&p)),
                None => not_found(&format!("prefix {id}")),
            }
        }
        (&Method::POST, ["client", "v4", "accounts", _, "addressing", "prefixes"]) => {
            let p: Prefix = match ctx.json() {
                Ok(p) => p,
                Err(r) => return r,
            };
            let cidr = p.cidr;
            ctx.change(
                |cfg| {
                    if cfg.prefixes.iter().any(|x| x.cidr == cidr) {
                        return Err(invalid(format!("prefix {cidr} exists")));
                    }
                    cfg.prefixes.push(p);
                    Ok(())
                },
                |cfg| {
                    cfg.prefixes
                        .iter()
                        .find(|x| x.cidr == cidr)
                        .map(prefix_json)
                        .unwrap_or(Value::Null)
                },
            )
        }
        (&Method::DELETE, ["client", "v4", "accounts", _, "addressing", "prefixes", id]) => {
            let Some(p) = find_prefix(c, id) else {
                return not_found(&format!("prefix {id}"));
            };
            ctx.change(
                |cfg| {
                    cfg.prefixes.retain(|x| x.cidr != p.cidr);
                    Ok(())
                },
                |_| json!({ "id": prefix_id(&p.cidr) }),
            )
        }
        (
            &Method::GET,
            [
                "client",
                "v4",
                "accounts",
                _,
                "addressing",
                "prefixes",
                id,
                "bindings",
            ],
        ) => {
            let Some(p) = find_prefix(c, id) else {
                return not_found(&format!("prefix {id}"));
            };
            ok(Value::Array(
                c.running()
                    .config
                    .bindings
                    .iter()
                    .filter(|b| p.cidr.contains(&b.cidr))
                    .map(|b| binding_json(c, b, &p.cidr))
                    .collect(),
            ))
        }
        (
            &Method::GET,
            [
                "client",
                "v4",
                "accounts",
                _,
                "addressing",
                "prefixes",
                id,
                "bindings",
                bid,
            ],
        ) => {
            let Some(p) = find_prefix(c, id) else {
                return not_found(&format!("prefix {id}"));
            };
            match c
                .running()
                .config
                .bindings
                .iter()
                .find(|b| p.cidr.contains(&b.cidr) && binding_matches(b, bid))
            {
                Some(b) => ok(binding_json(c, b, &p.cidr)),
                None => not_found(&format!("binding {bid} in prefix {id}")),
            }
        }
        (
            &Method::POST,
            [
                "client",
                "v4",
                "accounts",
                _,
                "addressing",
                "prefixes",
                id,
                "bindings",
            ],
        ) => {
            let Some(p) = find_prefix(c, id) else {
                return not_found(&format!("prefix {id}"));
            };
            let b: Binding = match ctx.json() {
                Ok(b) => b,
                Err(r) => return r,
            };
            if !p.cidr.contains(&b.cidr) {
                return fail(
                    StatusCode::BAD_REQUEST,
                    1004,
                    format!("binding {} is outside prefix {}", b.cidr, p.cidr),
                );
            }
            let bid = b.effective_id();
            ctx.change(
                |cfg| {
                    if cfg.bindings.iter().any(|x| x.effective_id() == bid) {
                        return Err(invalid(format!("a binding with id {bid} exists")));
                    }
                    cfg.bindings.push(b);
                    Ok(())
                },
                |cfg| {
                    cfg.bindings
                        .iter()
                        .find(|x| x.effective_id() == bid)
                        .map(|x| binding_json(c, x, &p.cidr))
                        .unwrap_or(Value::Null)
                },
            )
        }
        (
            &Method::DELETE,
            [
                "client",
                "v4",
                "accounts",
                _,
                "addressing",
                "prefixes",
                id,
                "bindings",
                bid,
            ],
        ) => {
            let Some(p) = find_prefix(c, id) else {
                return not_found(&format!("prefix {id}"));
            };
            let running = c.running();
            let Some(b) = running
                .config
                .bindings
                .iter()
                .find(|b| p.cidr.contains(&b.cidr) && binding_matches(b, bid))
            else {
                return not_found(&format!("binding {bid} in prefix {id}"));
            };
            let eid = b.effective_id();
            ctx.change(
                |cfg| {
                    cfg.bindings.retain(|x| x.effective_id() != eid);
                    Ok(())
                },
                |_| json!({ "id": eid }),
            )
        }

        // IP access rules: the public API's shape ({mode, configuration: {target, value}}) or
        // ours ({mode, target, value}).
        (
            &Method::GET,
            [
                "client",
                "v4",
                "zones",
                _,
                "firewall",
                "access_rules",
                "rules",
            ],
        ) => ok(Value::Array(
            c.running()
                .config
                .access_rules
                .iter()
                .map(rule_json)
                .collect(),
        )),
        (
            &Method::POST,
            [
                "client",
                "v4",
                "zones",
                _,
                "firewall",
                "access_rules",
                "rules",
            ],
        ) => {
            let rule = match access_rule(&ctx) {
                Ok(r) => r,
                Err(r) => return r,
            };
            let id = rule.effective_id();
            ctx.change(
                |cfg| {
                    if cfg.access_rules.iter().any(|x| x.effective_id() == id) {
                        return Err(invalid(format!("an access rule with id {id} exists")));
                    }
                    cfg.access_rules.push(rule);
                    Ok(())
                },
                |cfg| {
                    cfg.access_rules
                        .iter()
                        .find(|x| x.effective_id() == id)
                        .map(rule_json)
                        .unwrap_or(Value::Null)
                },
            )
        }
        (
            &Method::PUT,
            [
                "client",
                "v4",
                "zones",
                _,
                "firewall",
                "access_rules",
                "rules",
            ],
        ) => {
            // The whole list at once: in our shape (parsed straight), else in the public API's
            // or as GET lists it.
            let rules: Vec<AccessRule> = match ctx
                .text()
                .ok()
                .and_then(|t| serde_json::from_str::<Vec<AccessRule>>(t).ok())
            {
                Some(mut rules) => {
                    for r in &mut rules {
                        drop_default_id(r);
                    }
                    rules
                }
                None => {
                    let items: Vec<Value> = match ctx.json() {
                        Ok(r) => r,
                        Err(r) => return r,
                    };
                    let mut rules = Vec::with_capacity(items.len());
                    for (i, item) in items.into_iter().enumerate() {
                        match rule_from_json(item) {
                            Ok(r) => rules.push(r),
                            Err(e) => {
                                return fail(
                                    StatusCode::BAD_REQUEST,
                                    1003,
                                    format!("rule [{i}]: {e}"),
                                );
                            }
                        }
                    }
                    rules
                }
            };
            let n = rules.len();
            ctx.change(
                |cfg| {
                    cfg.access_rules = rules;
                    Ok(())
                },
                |_| json!({ "count": n }),
            )
        }
        (
            &Method::DELETE,
            [
                "client",
                "v4",
                "zones",
                _,
                "firewall",
                "access_rules",
                "rules",
                id,
            ],
        ) => {
            let id = percent_decode(id);
            if !c
                .running()
                .config
                .access_rules
                .iter()
                .any(|x| x.effective_id() == id)
            {
                return not_found(&format!("access rule {id}"));
            }
            ctx.change(
                |cfg| {
                    cfg.access_rules.retain(|x| x.effective_id() != id);
                    Ok(())
                },
                |_| json!({ "id": id }),
            )
        }

        // CDN settings.
        (&Method::GET, ["v1", "cdn"]) => {
            ok(serde_json::to_value(&c.running().config.cdn).unwrap_or(Value::Null))
        }
        (&Method::PUT | &Method::PATCH, ["v1", "cdn"]) => {
            let patch: Value = match ctx.json() {
                Ok(v) => v,
                Err(r) => return r,
            };
            let mut merged = serde_json::to_value(&c.running().config.cdn).unwrap_or(Value::Null);
            if let (Value::Object(m), Value::Object(p)) = (&mut merged, patch) {
                m.extend(p);
            }
            let cdn: Cdn = match parse_json(&merged.to_string()) {
                Ok(c) => c,
                Err(e) => return bad_body(&e),
            };
            ctx.change(
                |cfg| {
                    cfg.cdn = cdn;
                    Ok(())
                },
                |cfg| serde_json::to_value(&cfg.cdn).unwrap_or(Value::Null),
            )
        }

        // Origin validation, as the addressing service answers it.
        (&Method::GET, [.., "edge_services", "spectrum", "validate_origin_ip_acl"]) => {
            let Some(cidr) = ctx.q.get("cidr") else {
                return fail(
                    StatusCode::BAD_REQUEST,
                    1003,
                    "give ?cidr=ADDRESS or ?cidr=PREFIX",
                );
            };
            let net = cidr
                .parse::<IpNet>()
                .ok()
                .or_else(|| cidr.parse::<std::net::IpAddr>().ok().map(IpNet::from));
            match net {
                Some(n) => {
                    let check = crate::config::origin_check(&c.running().config, n);
                    ok(json!({ "allowed_origins": { cidr.clone(): check } }))
                }
                None => fail(
                    StatusCode::BAD_REQUEST,
                    1003,
                    format!("cidr={cidr}: not an address or prefix"),
                ),
            }
        }
        // Seed 003 creates a Load Balancing monitor for a Spectrum origin pool: another
        // product, which this edge does not run. Named as such rather than an unknown path.
        (_, ["client", "v4", "accounts", _, "load_balancers", ..]) => fail(
            StatusCode::NOT_IMPLEMENTED,
            1011,
            "load balancers, pools and monitors are not supported here: this edge runs no \
             health checks; point an app's origin_dns at a load balancer run elsewhere",
        ),
        (_, _) => fail(
            StatusCode::NOT_FOUND,
            1404,
            format!("no endpoint {method} {path}; see the README's control socket section"),
        ),
    }
}

/// `POST /v1/explain` with `{hex, time?}`.
fn explain(ctx: &Ctx<'_>) -> Response<Body> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Req {
        hex: String,
        #[serde(default)]
        time: Option<f64>,
    }
    let req: Req = match serde_json::from_slice(&ctx.body) {
        Ok(r) => r,
        Err(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                1003,
                format!("give {{\"hex\": \"FRAME\", \"time\": UNIX_SECS}}: {e}"),
            );
        }
    };
    let frame = match crate::explain::parse_hex(&req.hex) {
        Ok(f) => f,
        Err(e) => return fail(StatusCode::BAD_REQUEST, 1003, format!("hex: {e}")),
    };
    let now_ns = match req.time {
        Some(t) if t.is_finite() && t >= 0.0 => (t * 1e9) as u64,
        Some(t) => {
            return fail(
                StatusCode::BAD_REQUEST,
                1003,
                format!("time = {t}: give seconds since the epoch"),
            );
        }
        None => match ctx.c.secrets().and_then(|l| l.clock.as_ref()) {
            Some(_) => ctx.c.secrets().map_or(0, |l| l.now_secs() * 1_000_000_000),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        },
    };
    let running = ctx.c.running();
    let secrets = match ctx.c.secrets() {
        Some(l) => crate::explain::Secrets::Live {
            seed: l.seed,
            secrets: Arc::clone(&l.secrets),
        },
        None => crate::explain::Secrets::Seed(running.compiled.cookies.seed.unwrap_or([0; 32])),
    };
    let tables = ctx.c.tables().load_full();
    let e = crate::explain::explain(
        &tables,
        &running.compiled.pipeline,
        &running.compiled.cookies,
        &secrets,
        now_ns,
        &frame,
    );
    ok(serde_json::to_value(e).unwrap_or(Value::Null))
}

/// `POST /v1/secrets/rotate` with nothing or `{secret}`.
fn rotate(ctx: &Ctx<'_>) -> Response<Body> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Req {
        secret: Option<String>,
    }
    let text = match ctx.text() {
        Ok(t) => t,
        Err(r) => return r,
    };
    let seed = if text.trim().is_empty() {
        None
    } else {
        let req: Req = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                return fail(
                    StatusCode::BAD_REQUEST,
                    1003,
                    format!("give nothing, or {{\"secret\": \"64 hex digits\"}}: {e}"),
                );
            }
        };
        match req.secret.map(|h| crate::config::Secret(h).bytes()) {
            None => None,
            Some(Ok(b)) => Some(b),
            Some(Err(why)) => {
                return fail(StatusCode::BAD_REQUEST, 1003, format!("secret {why}"));
            }
        }
    };
    match ctx.c.rotate_secret(Some(ctx.peer), seed) {
        Ok(r) => ok(serde_json::to_value(r).unwrap_or(Value::Null)),
        Err(e) => refused(&e),
    }
}

fn access_rule(ctx: &Ctx<'_>) -> Result<AccessRule, Response<Body>> {
    let v: Value = ctx.json()?;
    rule_from_json(v).map_err(|e| bad_body(&e))
}

/// An access rule in the public API's shape (`{mode, configuration: {target, value}, notes}`)
/// or ours (`{id, mode, target, value}`), or as `GET` lists it (both, with `id`). An `id` that
/// is just the rule's CIDR is the default id and is dropped.
fn rule_from_json(mut v: Value) -> Result<AccessRule, crate::config::ConfigErrors> {
    if let Value::Object(m) = &mut v {
        m.remove("notes");
        if let Some(Value::Object(conf)) = m.remove("configuration") {
            for (k, x) in conf {
                m.entry(k).or_insert(x);
            }
        }
    }
    // The fast path for well-formed rules (a 100k-rule list is parsed in tens of
    // milliseconds); a rule that does not parse is parsed again for a message naming the key.
    let mut r: AccessRule = match AccessRule::deserialize(&v) {
        Ok(r) => r,
        Err(_) => parse_json(&v.to_string())?,
    };
    drop_default_id(&mut r);
    Ok(r)
}

/// An `id` that is just the rule's CIDR is the default one: dropped (it is not a valid id).
fn drop_default_id(r: &mut AccessRule) {
    if r.id.is_some()
        && r.id
            .as_deref()
            .map(str::parse::<IpNet>)
            .and_then(Result::ok)
            == r.cidr()
    {
        r.id = None;
    }
}

fn rule_json(r: &AccessRule) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), Value::String(r.effective_id()));
        m.insert(
            "configuration".into(),
            json!({ "target": r.target, "value": r.value }),
        );
    }
    v
}

/// The prefix with opaque id `id` (as [`prefix_id`] gives it and List Prefixes shows it), or
/// with that CIDR.
fn find_prefix(c: &Controller, id: &str) -> Option<Prefix> {
    let cidr = parse_prefix_cidr(id);
    let id = percent_decode(id).to_ascii_lowercase();
    c.running()
        .config
        .prefixes
        .iter()
        .find(|p| Some(p.cidr) == cidr || prefix_id(&p.cidr) == id)
        .cloned()
}

fn prefix_json(p: &Prefix) -> Value {
    json!({ "id": prefix_id(&p.cidr), "cidr": p.cidr, "advertised": p.advertised })
}

/// List Services: the services this edge runs, with the ids bindings take as `service_id`.
fn services_json() -> Value {
    Value::Array(
        crate::config::ServiceName::SERVED
            .iter()
            .map(|s| json!({ "id": s.id(), "name": s.display_name() }))
            .collect(),
    )
}

fn binding_matches(b: &Binding, id: &str) -> bool {
    let id = percent_decode(id);
    b.effective_id() == id || b.cidr.to_string().replace('/', "-") == id
}

fn binding_json(c: &Controller, b: &Binding, prefix: &IpNet) -> Value {
    let mut v = serde_json::to_value(b).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        let id = b.effective_id();
        m.insert(
            "provisioning".into(),
            json!({ "state": c.binding_state(&id) }),
        );
        m.insert("id".into(), Value::String(id));
        m.insert("prefix_id".into(), Value::String(prefix_id(prefix)));
        m.insert("service_id".into(), json!(b.service.id()));
        m.insert("service_name".into(), json!(b.service.display_name()));
    }
    v
}

/// The id of group `name` (or a number), through the system's group database.
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let cname = std::ffi::CString::new(name).ok()?;
    let mut grp: libc::group = {
        // SAFETY: `group` is plain old data; all-zero is a valid (empty) value.
        #[allow(unsafe_code)]
        unsafe {
            core::mem::zeroed()
        }
    };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::group = core::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: the name is NUL-terminated, `grp` and
    // `buf` outlive it, and `buf.len()` is its size; getgrnam_r writes only into them.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    (rc == 0 && !out.is_null()).then_some(grp.gr_gid)
}

/// Creates the socket at `path` (replacing a stale one), mode 0600, or 0660 owned by `group`.
///
/// # Errors
/// The socket cannot be created or its mode set.
pub fn bind(path: &Path, group: Option<u32>) -> std::io::Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        // Refuse to steal a live socket.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a running daemon", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    // Created with no permissions for others at all, then opened to what was asked for.
    // SAFETY: umask only changes this process's file-creation mask; restored right after.
    #[allow(unsafe_code)]
    let old = unsafe { libc::umask(0o177) };
    let l = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above.
    #[allow(unsafe_code)]
    unsafe {
        libc::umask(old)
    };
    let l = l?;
    if let Some(g) = group {
        std::os::unix::fs::chown(path, None, Some(g))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    } else {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(l)
}

/// A running control socket; stops when dropped.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves `controller` on `listener` (from [`bind`]) on a thread of its own.
    ///
    /// # Errors
    /// The runtime cannot start.
    pub fn start(
        controller: Arc<Controller>,
        listener: std::os::unix::net::UnixListener,
        path: PathBuf,
    ) -> std::io::Result<Server> {
        listener.set_nonblocking(true)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fp-control")
            .enable_all()
            .build()?;
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fp-control".into())
            .spawn(move || {
                let rt = rt;
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::UnixListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        tokio::select! {
                            _ = &mut rx => break,
                            conn = listener.accept() => {
                                let Ok((stream, _)) = conn else { continue };
                                let c = Arc::clone(&controller);
                                tokio::spawn(serve_connection(c, stream));
                            }
                        }
                    }
                });
                // Do not wait for long-polls (`events?wait=`) parked in blocking threads:
                // they end by themselves within their wait.
                rt.shutdown_background();
            })?;
        Ok(Server {
            path,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve_connection(c: Arc<Controller>, stream: tokio::net::UnixStream) {
    let peer = stream
        .peer_cred()
        .map(|u| Peer {
            uid: u.uid(),
            gid: u.gid(),
            pid: u.pid().unwrap_or(0),
        })
        .unwrap_or_default();
    let io = hyper_util::rt::TokioIo::new(stream);
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let c = Arc::clone(&c);
        async move { Ok::<_, Infallible>(handle(c, peer, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(io, svc)
        .await;
}

fn event_filter(q: &HashMap<String, String>) -> Result<EventFilter, Response<Body>> {
    match q.get("kind") {
        None => Ok(EventFilter::All),
        Some(k) => EventFilter::parse(k).ok_or_else(|| {
            fail(
                StatusCode::BAD_REQUEST,
                1003,
                format!("kind={k}: give all, control or connections"),
            )
        }),
    }
}

/// `GET /v1/events?follow=true`: every event after `since`, one JSON object per line, as it
/// happens, until the client goes away.
fn follow_events(c: Arc<Controller>, since: u64, filter: EventFilter) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut since = since;
        while !tx.is_closed() {
            let c = Arc::clone(&c);
            let Ok(batch) = tokio::task::spawn_blocking(move || {
                c.events_since(since, Duration::from_secs(1), filter)
            })
            .await
            else {
                return;
            };
            for e in batch {
                since = e.seq;
                let mut line = serde_json::to_vec(&e).unwrap_or_default();
                line.push(b'\n');
                if tx.send(Bytes::from(line)).await.is_err() {
                    return;
                }
            }
        }
    });
    let mut r = Response::new(Body::Stream(rx));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-ndjson"),
    );
    r
}

async fn handle(c: Arc<Controller>, peer: Peer, req: Request<Incoming>) -> Response<Body> {
    let received = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let q = query(&req);
    if method == Method::GET
        && path.trim_end_matches('/') == "/v1/events"
        && matches!(q.get("follow").map(String::as_str), Some("true" | "1"))
    {
        // Without `since`, a follower sees what happens from now on.
        let since = q
            .get("since")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| c.last_seq());
        return match event_filter(&q) {
            Ok(f) => follow_events(c, since, f),
            Err(r) => r,
        };
    }
    let body = match tokio::time::timeout(
        Duration::from_secs(30),
        Limited::new(req.into_body(), MAX_BODY).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) => {
            return if e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                fail(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    1413,
                    format!("the body is larger than {MAX_BODY} bytes"),
                )
            } else {
                fail(
                    StatusCode::BAD_REQUEST,
                    1003,
                    format!("reading the body: {e}"),
                )
            };
        }
        Err(_) => {
            return fail(
                StatusCode::REQUEST_TIMEOUT,
                1408,
                "the body did not arrive within 30 s",
            );
        }
    };
    let mutating = method != Method::GET;
    tokio::task::spawn_blocking(move || {
        let r = route(&c, peer, received, &method, &path, q, body);
        if mutating {
            tracing::info!(uid = peer.uid, pid = peer.pid, %method, %path, status = r.status().as_u16(), "control change");
        }
        r
    })
    .await
    .unwrap_or_else(|_| fail(StatusCode::INTERNAL_SERVER_ERROR, 1500, "the request handler failed"))
}
