//! A client of etcd v3 through its JSON gateway (`/v3/kv/range`, `/v3/kv/txn`, `/v3/watch`),
//! over plain HTTP/1.1 with hyper: the first brick of configuration shared by a fleet.
//!
//! Why the gateway and not gRPC: the `etcd-client` crate compiles its protos in `build.rs` and
//! needs `protoc` and `libprotobuf-dev`, which the quick start (only Rust and gcc) must not
//! require; generating the gRPC code once and committing it would add tonic and prost and a
//! regeneration check to CI. The gateway speaks JSON over the HTTP the control plane already
//! speaks (etcd 3.4.23, Debian's, serves it on the client port): keys and values are base64,
//! int64 fields are strings, and a watch is a stream of JSON objects, one per message.
//!
//! Endpoints are tried in turn: a request that cannot reach one (connect refused, timeout)
//! goes to the next, so a cluster with one member down still answers. A watch is a stream of
//! [`WatchMessage`]s; this client never resumes a broken watch by itself: the caller does,
//! from the revision it has seen (and reloads whole after [`WatchMessage::Compacted`]).

use core::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// How long connecting to one endpoint may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a unary request may take, the whole answer included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a request goes over the endpoints before it is given up.
pub const PASSES: u32 = 3;
/// The pause between two passes.
pub const PASS_PAUSE: Duration = Duration::from_millis(300);
/// The errors of a member that another member, or the same one a moment later, may not give.
const RETRIABLE: &[&str] = &[
    "no leader",
    "unavailable",
    "request timed out",
    "leader changed",
    "too many requests",
    "transport is closing",
];

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered.
    #[error("etcd unreachable ({endpoints}): {last}")]
    Unreachable {
        /// The endpoints tried.
        endpoints: String,
        /// The last endpoint's error.
        last: String,
    },
    /// An endpoint answered with an error (a non-2xx status, or an `error` object).
    #[error("etcd refused the request: {0}")]
    Refused(String),
    /// An answer that is not the gateway's JSON.
    #[error("etcd sent an answer this client cannot read: {0}")]
    Protocol(String),
}

/// `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`: where a fleet's configuration lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `HOST:PORT` of each member.
    pub endpoints: Vec<String>,
    /// The key prefix (without a trailing `/`), e.g. `/fastpath/edge`.
    pub prefix: String,
}

impl Source {
    /// Parses `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`.
    ///
    /// # Errors
    /// A message naming what is wrong, with an example.
    pub fn parse(s: &str) -> Result<Source, String> {
        let example = "e.g. etcd://127.0.0.1:2379,127.0.0.1:22379/fastpath/edge";
        let rest = s
            .strip_prefix("etcd://")
            .ok_or_else(|| format!("{s:?}: an etcd source starts with etcd:// ({example})"))?;
        let (hosts, prefix) = rest
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: no key prefix after the endpoints ({example})"))?;
        let prefix = format!("/{}", prefix.trim_end_matches('/'));
        if prefix == "/" {
            return Err(format!("{s:?}: the key prefix is empty ({example})"));
        }
        let mut endpoints = Vec::new();
        for h in hosts.split(',') {
            let port_ok = h
                .rsplit_once(':')
                .is_some_and(|(host, p)| !host.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(format!(
                    "{s:?}: endpoint {h:?} is not HOST:PORT with a port 1..=65535 ({example})"
                ));
            }
            endpoints.push(h.to_string());
        }
        Ok(Source { endpoints, prefix })
    }
}

/// The end of the range of every key that starts with `prefix` (etcd's `range_end`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte 0xff: the range to the end of the keyspace.
    vec![0]
}

/// A key and its value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The revision of its last change.
    pub mod_revision: i64,
    /// The revision that created it.
    pub create_revision: i64,
}

/// The header every answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// The cluster's id: another one means another etcd (rebuilt), so revisions restart.
    pub cluster_id: u64,
    /// The store's revision when it answered.
    pub revision: i64,
}

/// What a range read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The answer's header.
    pub header: Header,
    /// The keys, in key order.
    pub kvs: Vec<Kv>,
}

/// One condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's last change is at this revision (0: the key does not exist).
    ModRevision(Vec<u8>, i64),
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Write a key.
    Put(Vec<u8>, Vec<u8>),
    /// Delete a key.
    Delete(Vec<u8>),
}

/// A change a watch saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A key was written.
    Put(Kv),
    /// A key was deleted, at `mod_revision`.
    Delete {
        /// The key.
        key: Vec<u8>,
        /// The revision of the deletion.
        mod_revision: i64,
    },
}

/// One message of a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMessage {
    /// The watch exists.
    Created(Header),
    /// Changes, all of one revision or more, in revision order.
    Events(Header, Vec<Event>),
    /// Nothing changed up to `header.revision` (the answer to a progress request, or etcd's
    /// own progress notification).
    Progress(Header),
    /// The start revision was compacted away: reload whole at one revision and watch from
    /// its header revision + 1. (On 3.4 the reason text is empty; `compact_revision` is set.)
    Compacted(i64),
    /// etcd canceled the watch, with its reason.
    Canceled(String),
}

/// A client of one etcd cluster.
#[derive(Debug, Clone)]
pub struct Client {
    endpoints: Vec<String>,
}

fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

fn unb64(v: Option<&Value>) -> Result<Vec<u8>, EtcdError> {
    match v.and_then(Value::as_str) {
        None => Ok(Vec::new()),
        Some(s) => B64
            .decode(s)
            .map_err(|e| EtcdError::Protocol(format!("bad base64 {s:?}: {e}"))),
    }
}

/// The gateway's int64s are strings; absent means 0.
fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn header(v: &Value) -> Header {
    let h = &v["header"];
    Header {
        cluster_id: match &h["cluster_id"] {
            Value::String(s) => s.parse().unwrap_or(0),
            Value::Number(n) => n.as_u64().unwrap_or(0),
            _ => 0,
        },
        revision: int(h.get("revision")),
    }
}

fn kv(v: &Value) -> Result<Kv, EtcdError> {
    Ok(Kv {
        key: unb64(v.get("key"))?,
        value: unb64(v.get("value"))?,
        mod_revision: int(v.get("mod_revision")),
        create_revision: int(v.get("create_revision")),
    })
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(endpoint: &str) -> Result<Sender, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(endpoint))
        .await
        .map_err(|_| format!("{endpoint}: connect timed out"))?
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn request(endpoint: &str, path: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(hyper::header::HOST, endpoint)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid request")
}

/// An error object of the gateway (`{"error": ..., "code": N, "message": ...}`), if `v` is one.
fn gateway_error(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    // Unary answers carry `message` beside `error`; a watch's error is an object of its own
    // (`{"error": {"grpc_code": 14, "http_code": 503, "message": ...}}`).
    let msg = v
        .get("message")
        .or_else(|| e.get("message"))
        .and_then(Value::as_str)
        .or_else(|| e.as_str())
        .map_or_else(|| e.to_string(), str::to_string);
    Some(msg)
}

impl Client {
    /// A client of the members at `endpoints` (`HOST:PORT`), tried in that order.
    pub fn new(endpoints: Vec<String>) -> Client {
        Client { endpoints }
    }

    /// POSTs `body` to `path` on the first endpoint that answers, going over the endpoints
    /// up to [`PASSES`] times (with [`PASS_PAUSE`] between) while they answer that they have no
    /// leader or timed out: a leader election after a member failed takes about one election
    /// timeout. (A retried transaction that had committed is seen by its caller: its compare
    /// then fails and the caller reads what is stored.)
    async fn call(&self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let mut last = String::from("no endpoint");
        for pass in 0..PASSES {
            if pass > 0 {
                tokio::time::sleep(PASS_PAUSE).await;
            }
            match self.call_once(path, body, &mut last).await {
                Some(r) => return r,
                None => continue,
            }
        }
        Err(EtcdError::Unreachable {
            endpoints: self.endpoints.join(","),
            last,
        })
    }

    /// One pass over the endpoints: `None` when none gave an answer to keep.
    async fn call_once(
        &self,
        path: &str,
        body: &Value,
        last: &mut String,
    ) -> Option<Result<Value, EtcdError>> {
        for ep in &self.endpoints {
            let attempt = async {
                let mut s = connect(ep).await?;
                let resp = s
                    .send_request(request(ep, path, body))
                    .await
                    .map_err(|e| format!("{ep}: {e}"))?;
                let status = resp.status();
                let bytes = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("{ep}: {e}"))?
                    .to_bytes();
                Ok::<_, String>((status, bytes))
            };
            match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
                Err(_) => *last = format!("{ep}: no answer in {REQUEST_TIMEOUT:?}"),
                Ok(Err(e)) => *last = e,
                Ok(Ok((status, bytes))) => {
                    let v: Value = match serde_json::from_slice(&bytes) {
                        Ok(v) => v,
                        Err(e) => {
                            return Some(Err(EtcdError::Protocol(format!(
                                "{ep}{path}: {e}: {}",
                                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                            ))));
                        }
                    };
                    if let Some(msg) = gateway_error(&v) {
                        // A member without a leader (quorum lost, or an election after the
                        // leader failed) answers so: try another, then again.
                        if RETRIABLE.iter().any(|r| msg.contains(r)) {
                            *last = format!("{ep}: {msg}");
                            continue;
                        }
                        return Some(Err(EtcdError::Refused(msg)));
                    }
                    if !status.is_success() {
                        return Some(Err(EtcdError::Refused(format!(
                            "{ep}{path}: HTTP {status}"
                        ))));
                    }
                    return Some(Ok(v));
                }
            }
        }
        None
    }

    /// Reads `key`, or with `range_end` every key in `[key, range_end)`, at `revision` (0:
    /// the latest).
    ///
    /// # Errors
    /// [`EtcdError`]; reading a compacted revision is [`EtcdError::Refused`].
    pub async fn range(
        &self,
        key: &[u8],
        range_end: Option<&[u8]>,
        revision: i64,
    ) -> Result<Range, EtcdError> {
        let mut body = json!({ "key": b64(key) });
        if let Some(end) = range_end {
            body["range_end"] = json!(b64(end));
        }
        if revision > 0 {
            body["revision"] = json!(revision.to_string());
        }
        let v = self.call("/v3/kv/range", &body).await?;
        let kvs = match v.get("kvs").and_then(Value::as_array) {
            Some(a) => a.iter().map(kv).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Range {
            header: header(&v),
            kvs,
        })
    }

    /// The keys in `[key, range_end)` with the revision that created each, without their
    /// values (the latest revision).
    ///
    /// # Errors
    /// [`EtcdError`].
    pub async fn range_keys(
        &self,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(Header, Vec<(Vec<u8>, i64)>), EtcdError> {
        let body = json!({ "key": b64(key), "range_end": b64(range_end), "keys_only": true });
        let v = self.call("/v3/kv/range", &body).await?;
        let mut out = Vec::new();
        for k in v.get("kvs").and_then(Value::as_array).into_iter().flatten() {
            out.push((unb64(k.get("key"))?, int(k.get("create_revision"))));
        }
        Ok((header(&v), out))
    }

    /// Runs `ops` if every comparison holds: `Ok((true, header))` when they ran (the header's
    /// revision is the one they made), `Ok((false, header))` when a comparison failed and
    /// nothing changed.
    ///
    /// # Errors
    /// [`EtcdError`]: nothing is known to have changed (a timeout may hide a commit, which
    /// the caller's next read or watch reveals).
    pub async fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<(bool, Header), EtcdError> {
        let compare: Vec<Value> = compares
            .iter()
            .map(|c| match c {
                Compare::ModRevision(k, r) => json!({
                    "target": "MOD", "result": "EQUAL", "key": b64(k),
                    "mod_revision": r.to_string(),
                }),
            })
            .collect();
        let success: Vec<Value> = ops
            .iter()
            .map(|o| match o {
                Op::Put(k, v) => json!({ "request_put": { "key": b64(k), "value": b64(v) } }),
                Op::Delete(k) => json!({ "request_delete_range": { "key": b64(k) } }),
            })
            .collect();
        let v = self
            .call(
                "/v3/kv/txn",
                &json!({ "compare": compare, "success": success }),
            )
            .await?;
        Ok((v.get("succeeded") == Some(&Value::Bool(true)), header(&v)))
    }

    /// Watches every key in `[key, range_end)` from `start_revision`, with etcd's progress
    /// notifications on, on the first endpoint that accepts.
    ///
    /// # Errors
    /// [`EtcdError`] when no endpoint accepts the watch.
    pub async fn watch(
        &self,
        key: &[u8],
        range_end: &[u8],
        start_revision: i64,
    ) -> Result<Watch, EtcdError> {
        let body = json!({ "create_request": {
            "key": b64(key), "range_end": b64(range_end),
            "start_revision": start_revision.to_string(), "progress_notify": true,
        }});
        let mut last = String::from("no endpoint");
        for ep in &self.endpoints {
            let attempt = async {
                let mut s = connect(ep).await?;
                let resp = s
                    .send_request(request(ep, "/v3/watch", &body))
                    .await
                    .map_err(|e| format!("{ep}: {e}"))?;
                if !resp.status().is_success() {
                    return Err(format!("{ep}: HTTP {}", resp.status()));
                }
                Ok((s, resp.into_body()))
            };
            match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
                Err(_) => last = format!("{ep}: no answer in {REQUEST_TIMEOUT:?}"),
                Ok(Err(e)) => last = e,
                Ok(Ok((sender, body))) => {
                    return Ok(Watch {
                        endpoint: ep.clone(),
                        body,
                        buf: Vec::new(),
                        _sender: sender,
                    });
                }
            }
        }
        Err(EtcdError::Unreachable {
            endpoints: self.endpoints.join(","),
            last,
        })
    }
}

/// An open watch: its messages, as etcd sends them.
#[derive(Debug)]
pub struct Watch {
    /// The member serving it.
    pub endpoint: String,
    body: Incoming,
    buf: Vec<u8>,
    // Held so the connection stays open while the body streams.
    _sender: Sender,
}

/// Splits one whole JSON object off the front of `buf` (the gateway writes them back to back,
/// with or without newlines between); `None` until one is whole.
pub fn split_object(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let start = buf.iter().position(|b| !b.is_ascii_whitespace())?;
    let mut depth = 0usize;
    let (mut in_str, mut esc) = (false, false);
    for (i, &b) in buf.iter().enumerate().skip(start) {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let obj = buf[start..=i].to_vec();
                    buf.drain(..=i);
                    return Some(obj);
                }
            }
            _ => {}
        }
    }
    None
}

/// Reads one gateway watch message.
///
/// # Errors
/// [`EtcdError::Protocol`] for one this client cannot read; [`EtcdError::Refused`] for an
/// error object.
pub fn parse_watch_message(v: &Value) -> Result<WatchMessage, EtcdError> {
    if let Some(msg) = gateway_error(v) {
        return Err(EtcdError::Refused(msg));
    }
    let r = v
        .get("result")
        .ok_or_else(|| EtcdError::Protocol(format!("a watch message without result: {v}")))?;
    let h = header(r);
    let compact = int(r.get("compact_revision"));
    if compact > 0 {
        return Ok(WatchMessage::Compacted(compact));
    }
    if r.get("canceled") == Some(&Value::Bool(true)) {
        let why = r
            .get("cancel_reason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Ok(WatchMessage::Canceled(why));
    }
    if r.get("created") == Some(&Value::Bool(true)) {
        return Ok(WatchMessage::Created(h));
    }
    let Some(events) = r.get("events").and_then(Value::as_array) else {
        return Ok(WatchMessage::Progress(h));
    };
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let kv = kv(&e["kv"])?;
        out.push(if e.get("type").and_then(Value::as_str) == Some("DELETE") {
            Event::Delete {
                key: kv.key,
                mod_revision: kv.mod_revision,
            }
        } else {
            Event::Put(kv)
        });
    }
    Ok(WatchMessage::Events(h, out))
}

impl Watch {
    /// The next message; `Ok(None)` when etcd closed the stream (the caller re-watches from
    /// the revision it has seen).
    ///
    /// # Errors
    /// [`EtcdError`]: the connection broke, or a message could not be read.
    pub async fn next(&mut self) -> Result<Option<WatchMessage>, EtcdError> {
        loop {
            if let Some(obj) = split_object(&mut self.buf) {
                let v: Value = serde_json::from_slice(&obj)
                    .map_err(|e| EtcdError::Protocol(format!("{}: {e}", self.endpoint)))?;
                return parse_watch_message(&v).map(Some);
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(EtcdError::Unreachable {
                        endpoints: self.endpoint.clone(),
                        last: format!("the watch broke: {e}"),
                    });
                }
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn sources_parse_and_bad_ones_say_why() {
        let s = Source::parse("etcd://127.0.0.1:2379,[::1]:22379/fastpath/edge/").unwrap();
        assert_eq!(s.endpoints, ["127.0.0.1:2379", "[::1]:22379"]);
        assert_eq!(s.prefix, "/fastpath/edge");
        for (bad, why) in [
            ("http://h:1/p", "starts with etcd://"),
            ("etcd://h:1", "no key prefix"),
            ("etcd://h:1/", "prefix is empty"),
            ("etcd://h/p", "not HOST:PORT"),
            ("etcd://h:0/p", "not HOST:PORT"),
            ("etcd://h:1,:2/p", "not HOST:PORT"),
        ] {
            let e = Source::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), [0]);
    }

    #[test]
    fn watch_messages_split_and_parse() {
        // Two objects back to back, one cut in the middle, braces inside a string.
        let mut buf = br#"{"result":{"header":{"cluster_id":"7","revision":"3"},"created":true}}
{"result":{"header":{"revision":"4"},"events":[{"kv":{"key":"e30=","value":"In0i","mod_revision":"4"}},{"type":"DELETE","kv":{"key":"YQ==","mod_revision":"4"}}]}}{"result":"#.to_vec();
        let a: Value = serde_json::from_slice(&split_object(&mut buf).unwrap()).unwrap();
        assert_eq!(
            parse_watch_message(&a).unwrap(),
            WatchMessage::Created(Header {
                cluster_id: 7,
                revision: 3
            })
        );
        let b: Value = serde_json::from_slice(&split_object(&mut buf).unwrap()).unwrap();
        let WatchMessage::Events(h, ev) = parse_watch_message(&b).unwrap() else {
            panic!()
        };
        assert_eq!(h.revision, 4);
        assert_eq!(
            ev[0],
            Event::Put(Kv {
                key: b"{}".to_vec(),
                value: b"\"}\"".to_vec(),
                mod_revision: 4,
                create_revision: 0
            })
        );
        assert_eq!(
            ev[1],
            Event::Delete {
                key: b"a".to_vec(),
                mod_revision: 4
            }
        );
        assert!(
            split_object(&mut buf).is_none(),
            "an unfinished object waits"
        );
        let c = json!({"result": {"header": {"revision": "9"}, "compact_revision": "5",
            "canceled": true, "cancel_reason": ""}});
        assert_eq!(parse_watch_message(&c).unwrap(), WatchMessage::Compacted(5));
        let p = json!({"result": {"header": {"revision": "12"}}});
        assert!(matches!(
            parse_watch_message(&p).unwrap(),
            WatchMessage::Progress(Header { revision: 12, .. })
        ));
        let e = json!({"error": {"grpc_code": 9}, "code": 9, "message": "etcdserver: no leader"});
        assert!(parse_watch_message(&e).is_err());
        let e = json!({"error": {"grpc_code": 14, "http_code": 503, "message": "transport is closing"}});
        assert_eq!(gateway_error(&e).as_deref(), Some("transport is closing"));
    }
}
