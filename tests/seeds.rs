//! The seeds' own API requests, verbatim: every `curl` command in `../shared/seeds/` is extracted
//! (method, path, JSON body), sent to a daemon started on a config that onboards the seeds'
//! example prefixes, and must get the seed's response shape: `success`, `errors`, `messages` and
//! every `result` field the seed shows. Only the host changes (the control socket instead of
//! `api.cloudflare.com`) and the placeholders a user fills in (`$ZONE_ID`, `$PREFIX_ID`,
//! `<SERVICE_ID>`, taken from List Prefixes and List Services as the seed says).
//!
//! A request that sets a key this edge does not support (`tls` other than `off`,
//! `argo_smart_routing: true`, `traffic_type: http`) must be refused with an error naming the
//! key, and the same request with that key set to what is supported must then succeed with the
//! seed's shape. Requests that cannot apply here are listed in [`NOT_HERE`] with the reason and
//! must be refused with that clear error, never a 404.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::call;
use serde_json::Value;

/// Requests of the seeds that do not apply to this edge: (path fragment, status, reason).
const NOT_HERE: &[(&str, u16, &str)] = &[(
    "/load_balancers/monitors",
    501,
    "Load Balancing health monitors are another product; this edge runs no health checks",
)];

/// The keys this edge refuses in the values the seeds use, each with the value it supports.
const REFUSED: &[(&str, &str, Value)] = &[
    ("tls", "full", Value::Null),
    ("argo_smart_routing", "true", Value::Bool(false)),
    ("traffic_type", "http", Value::Null),
];

/// The names the seeds' `origin_dns` examples use, resolved through a private `/etc/hosts`.
const HOSTS: &str = "192.0.2.7 cname-to-origin.example.com\n192.0.2.8 origin.example.com\n";

const CONFIG: &str = r#"
[node]
name = "edge-seeds"

[syn_cookies]
rotate_secs = 60
secret = "6c61622d6f6e6c792d7365637265742d6e657665722d696e2d70726f64212121"

# The seeds' example prefixes: seed 000's CDN prefix with a Spectrum /29 inside it, seed 001's
# Spectrum addresses, and seed 003's dynamic apps drawing on a pool inside Spectrum bindings.
[[prefixes]]
cidr = "203.0.113.0/24"
[[prefixes]]
cidr = "198.51.100.0/24"
[[prefixes]]
cidr = "2001:db8::/48"

[[bindings]]
cidr = "203.0.113.0/24"
service = "cdn"
[[bindings]]
cidr = "203.0.113.16/29"
service = "spectrum"
[[bindings]]
cidr = "198.51.100.0/24"
service = "spectrum"
[[bindings]]
cidr = "2001:db8::/48"
service = "spectrum"

[cdn]
tcp_ports = [80, 443]
udp_ports = [443]
pool = ["tcp://192.0.2.50:443"]

[spectrum]
dynamic_pool = ["198.51.100.128/28", "2001:db8:0:5::/124"]

[[origin_policy.delegations]]
cidr = "192.0.2.0/24"
"#;

/// One `curl` command of a seed.
#[derive(Debug, Clone)]
struct Request {
    /// `file:line`.
    at: String,
    method: String,
    url: String,
    body: Option<String>,
    /// The response the seed shows after the command, if any: parsed JSON, or, where the seed's
    /// excerpt is not valid JSON, the keys it names.
    expect: Expect,
}

#[derive(Debug, Clone)]
enum Expect {
    Nothing,
    Json(Value),
    Keys(Vec<String>),
}

/// Shell words of one command starting at `s` (quotes, backslash-newline continuations, even
/// with the blank lines some seeds put after them); stops at an unquoted newline or pipe.
/// Returns the words and how many bytes they took.
fn words(s: &str) -> (Vec<String>, usize) {
    let b: Vec<char> = s.chars().collect();
    let (mut out, mut cur, mut in_word, mut i) = (Vec::new(), String::new(), false, 0);
    let mut bytes = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            '\'' => {
                i += 1;
                while i < b.len() && b[i] != '\'' {
                    cur.push(b[i]);
                    i += 1;
                }
                in_word = true;
            }
            '"' => {
                i += 1;
                while i < b.len() && b[i] != '"' {
                    if b[i] == '\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    cur.push(b[i]);
                    i += 1;
                }
                in_word = true;
            }
            '\\' if b.get(i + 1).is_some_and(|c| c.is_whitespace()) => {
                while b.get(i + 1).is_some_and(|c| c.is_whitespace()) {
                    i += 1;
                }
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\n' | '|' => break,
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
        i += 1;
        bytes = b[..i.min(b.len())].iter().map(|c| c.len_utf8()).sum();
    }
    if in_word {
        out.push(cur);
    }
    (out, bytes)
}

/// The response a seed shows in `after` (the text up to the next command or page): the first
/// JSON object that is not page metadata, or the keys of an excerpt that does not parse.
fn expected(after: &str) -> Expect {
    let mut keys_only = None;
    for (i, _) in after.match_indices('{') {
        // Only an object that starts a line (the seeds' response blocks), not one in prose.
        let line_start = after[..i].rfind('\n').map_or(0, |n| n + 1);
        if !after[line_start..i].trim().is_empty() {
            continue;
        }
        let mut it = serde_json::Deserializer::from_str(&after[i..]).into_iter::<Value>();
        match it.next() {
            Some(Ok(v)) if v.get("@context").is_none() => return Expect::Json(v),
            Some(Ok(_)) => {}
            Some(Err(_)) if keys_only.is_none() => keys_only = Some(i),
            _ => {}
        }
    }
    match keys_only {
        Some(i) => {
            let text = &after[i..];
            let keys: Vec<String> = text
                .split('"')
                .collect::<Vec<_>>()
                .windows(2)
                .enumerate()
                .filter(|(n, w)| n % 2 == 1 && w[1].trim_start().starts_with(':'))
                .map(|(_, w)| w[0].to_string())
                .filter(|k| !k.is_empty())
                .collect();
            Expect::Keys(keys)
        }
        None => Expect::Nothing,
    }
}

/// Every `curl` command in the seeds, in order.
fn seed_requests() -> Vec<Request> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let starts: Vec<usize> = text
            .match_indices("curl ")
            .map(|(i, _)| i)
            .filter(|&i| i == 0 || text[..i].ends_with('\n'))
            .collect();
        for (n, &start) in starts.iter().enumerate() {
            let (w, used) = words(&text[start..]);
            let end = starts.get(n + 1).copied().unwrap_or(text.len());
            // A response belongs to this command up to the next command or page (`---`).
            let after = &text[(start + used).min(end)..end];
            let after = after.split("\n---\n").next().unwrap_or(after);
            let (mut method, mut url, mut body) = (None, None, None);
            let mut it = w.iter().skip(1);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-X" | "--request" => method = it.next().cloned(),
                    "-H" | "--header" => {
                        it.next();
                    }
                    "-d" | "--data" | "--data-raw" | "--json" => body = it.next().cloned(),
                    "-s" | "--silent" => {}
                    a if a.starts_with('-') => panic!("{name}: curl option {a} not understood"),
                    a => url = Some(a.to_string()),
                }
            }
            let method =
                method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into());
            out.push(Request {
                at: format!("{name}:{}", text[..start].lines().count() + 1),
                method,
                url: url.unwrap_or_else(|| panic!("{name}: a curl without a URL")),
                body,
                expect: expected(after),
            });
        }
    }
    out
}

/// `expect` is a shape `got` has: every object key it names (recursively, the first element of
/// arrays), and the same kind of value wherever the seed shows one that is not null.
fn shape_errors(path: &str, expect: &Value, got: &Value, out: &mut Vec<String>) {
    match (expect, got) {
        (Value::Object(e), Value::Object(g)) => {
            for (k, ev) in e {
                match g.get(k) {
                    Some(gv) => shape_errors(&format!("{path}.{k}"), ev, gv, out),
                    None => out.push(format!("{path}.{k} missing")),
                }
            }
        }
        (Value::Array(e), Value::Array(g)) => {
            if let (Some(e0), Some(g0)) = (e.first(), g.first()) {
                shape_errors(&format!("{path}[0]"), e0, g0, out);
            }
        }
        (Value::Null, _) => {}
        (e, g) if std::mem::discriminant(e) == std::mem::discriminant(g) => {}
        (e, g) => out.push(format!("{path}: the seed shows {e}, got {g}")),
    }
}

fn all_keys(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.insert(k.clone());
                all_keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| all_keys(v, out)),
        _ => {}
    }
}

/// The daemon, started with a private `/etc/hosts` in a user and mount namespace of its own.
struct Daemon {
    child: Child,
    sock: PathBuf,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Daemon {
    fn start(dir: &Path) -> Option<Daemon> {
        let (config, hosts, sock) = (
            dir.join("seeds.toml"),
            dir.join("hosts"),
            dir.join("control.sock"),
        );
        std::fs::write(&config, CONFIG).unwrap();
        std::fs::write(&hosts, HOSTS).unwrap();
        // Can this machine make a mount namespace for us (root, or unprivileged user
        // namespaces)? Without one the seeds' DNS names cannot be made to resolve.
        let can = Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "true"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !can && !common::live::privileged("seed_requests_work_verbatim", &["unshare"]) {
            return None;
        }
        let mut cmd = Command::new("unshare");
        if !can {
            // Root without user namespaces: a mount namespace alone.
            cmd.args(["--mount"]);
        } else {
            cmd.args(["--user", "--map-root-user", "--mount"]);
        }
        cmd.args(["sh", "-c", "mount --bind \"$0\" /etc/hosts && exec \"$@\""])
            .arg(&hosts)
            .arg(env!("CARGO_BIN_EXE_fastpath"))
            .args(["replay", "--json", "--loops", "0", "--config"])
            .arg(&config)
            .arg("--control")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("unshare starts");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (mut pipe, log) = (child.stderr.take().unwrap(), std::sync::Arc::clone(&stderr));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut d = Daemon {
            child,
            sock,
            stderr,
        };
        let started = Instant::now();
        while UnixStream::connect(&d.sock).is_err() {
            if let Ok(Some(st)) = d.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "fastpath replay exited ({st}): {}",
                    d.stderr.lock().unwrap()
                );
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(d)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The placeholders of a seed request filled in as its text tells a user to.
fn fill(s: &str, prefix_id: &str, service_id: &str) -> String {
    s.replace("$ACCOUNT_ID", "seed-account")
        .replace("$ZONE_ID", "seed-zone")
        .replace("ZONEID", "seed-zone")
        .replace("$PREFIX_ID", prefix_id)
        .replace("<SERVICE_ID>", service_id)
}

/// The path and query of a seed URL (the host is the control socket's).
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_string())
}

/// What a created object is deleted with, so that the next request starts from the config.
fn cleanup(sock: &Path, path: &str, result: &Value) {
    let path = path.split('?').next().unwrap();
    let items: Vec<&Value> = match result.get("items") {
        Some(Value::Array(a)) => a.iter().collect(),
        _ => vec![result],
    };
    for item in items {
        if let Some(id) = item.get("id").and_then(Value::as_str) {
            let id = id.replace('/', "-");
            let (st, v) = call(sock, "DELETE", &format!("{path}/{id}"), None);
            assert_eq!(st, 200, "DELETE {path}/{id}: {v}");
        }
    }
}

/// That a created app runs what it asked for: dynamic edge IPs drawn from the pool, an
/// `origin_dns` name resolved (through the private hosts file) to its address.
fn effects(sock: &Path, path: &str, result: &Value) -> Vec<String> {
    let items: Vec<&Value> = match result.get("items") {
        Some(Value::Array(a)) => a.iter().collect(),
        _ => vec![result],
    };
    let mut errs = Vec::new();
    for item in items {
        let id = item["id"].as_str().unwrap_or_default();
        let (st, app) = call(sock, "GET", &format!("{path}/{id}"), None);
        let app = &app["result"];
        if st != 200 {
            errs.push(format!("GET app {id}: {st}"));
            continue;
        }
        if app["edge_ips"]["type"] == "dynamic" {
            let ips: Vec<&str> = app["edge_ips"]["ips"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let in_pool =
                |ip: &&str| ip.starts_with("198.51.100.1") || ip.starts_with("2001:db8:0:5::");
            if ips.len() != 2 || !ips.iter().all(in_pool) {
                errs.push(format!(
                    "app {id}: dynamic edge IPs {ips:?} not one v4 and one v6 from the pool"
                ));
            }
        }
        if let Some(name) = app["origin_dns"]["name"].as_str() {
            let want = HOSTS
                .lines()
                .find(|l| l.ends_with(&format!(" {name}")))
                .and_then(|l| l.split(' ').next());
            let got = &app["origin_dns"]["resolved"];
            if want.is_none_or(|w| !got.as_array().is_some_and(|a| a.iter().any(|r| r == w))) {
                errs.push(format!(
                    "app {id}: origin_dns {name} resolved to {got}, want {want:?}"
                ));
            }
        }
    }
    errs
}

/// Checks one response against what the seed shows; a list of what differs.
fn check(req: &Request, status: u16, got: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    if status != 200 || got["success"] != Value::Bool(true) {
        errs.push(format!("status {status}: {got}"));
        return errs;
    }
    for k in ["success", "errors", "messages", "result"] {
        if got.get(k).is_none() {
            errs.push(format!("no `{k}` in the answer"));
        }
    }
    match &req.expect {
        // Where a seed shows the data posted rather than the answer ("the associated data
        // being posted to the API"), the created object must show all of it.
        Expect::Json(e) if e.get("success").is_none() => {
            shape_errors(".result", e, &got["result"], &mut errs)
        }
        Expect::Json(e) => shape_errors("", e, got, &mut errs),
        Expect::Keys(keys) => {
            let mut have = std::collections::BTreeSet::new();
            all_keys(got, &mut have);
            for k in keys {
                if !have.contains(k) {
                    errs.push(format!("no `{k}` anywhere in the answer"));
                }
            }
        }
        Expect::Nothing => {}
    }
    errs
}

#[test]
fn the_seeds_curl_commands_are_all_found() {
    let reqs = seed_requests();
    // Seed 000: three binding requests and an app; 001: an app; 002: the origin check; 003: six
    // apps, a monitor and the analytics summary.
    assert_eq!(reqs.len(), 13, "{reqs:#?}");
    let posts = reqs.iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 9, "{reqs:#?}");
    for r in &reqs {
        assert!(r.url.starts_with("https://"), "{r:?}");
        if let Some(b) = &r.body {
            serde_json::from_str::<Value>(b).unwrap_or_else(|e| panic!("{}: body {e}", r.at));
        }
    }
    // The seed's response to Create Service Binding, found after its command.
    let binding = reqs
        .iter()
        .find(|r| r.method == "POST" && r.url.ends_with("/bindings"))
        .unwrap();
    match &binding.expect {
        Expect::Json(v) => assert_eq!(v["result"]["provisioning"]["state"], "provisioning"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn seed_requests_work_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let Some(d) = Daemon::start(dir.path()) else {
        return;
    };
    let sock = d.sock.clone();
    // The ids a user reads from List Prefixes and List Services first.
    let (st, prefixes) = call(
        &sock,
        "GET",
        "/client/v4/accounts/a/addressing/prefixes",
        None,
    );
    assert_eq!(st, 200, "{prefixes}");
    let prefix_id = prefixes["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["cidr"] == "203.0.113.0/24")
        .and_then(|p| p["id"].as_str())
        .unwrap()
        .to_string();
    let (st, services) = call(
        &sock,
        "GET",
        "/client/v4/accounts/a/addressing/services",
        None,
    );
    assert_eq!(st, 200, "{services}");
    let service_id = services["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Spectrum")
        .and_then(|s| s["id"].as_str())
        .unwrap()
        .to_string();

    let mut failures = Vec::new();
    let mut report = Vec::new();
    for req in seed_requests() {
        let mut path = fill(&path_of(&req.url), &prefix_id, &service_id);
        let body = req
            .body
            .as_deref()
            .map(|b| fill(b, &prefix_id, &service_id));
        if let Some((frag, want, why)) = NOT_HERE.iter().find(|(f, ..)| path.contains(f)) {
            let (st, v) = call(&sock, &req.method, &path, body.as_deref());
            let msg = v["errors"][0]["message"].as_str().unwrap_or("");
            if st != *want || msg.is_empty() {
                failures.push(format!("{}: {} {path}: {st} {v}", req.at, req.method));
            }
            report.push(format!(
                "{} {} {frag}: not here ({why}): {st} {msg}",
                req.at, req.method
            ));
            continue;
        }
        // Seed 002 redacts the address it checks: verbatim it must be a clear refusal, and with
        // the address a user puts there (a delegated origin), the seed's answer.
        if path.ends_with("cidr=") {
            let (st, v) = call(&sock, &req.method, &path, None);
            if st != 400
                || !v["errors"][0]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("cidr")
            {
                failures.push(format!("{}: empty cidr: {st} {v}", req.at));
            }
            path.push_str("192.0.2.1");
        }
        let mut body: Option<Value> = body.map(|b| serde_json::from_str(&b).unwrap());
        // Keys this edge refuses: first as the seed sends them, then neutralized.
        for (key, value, supported) in REFUSED {
            let items: Vec<&mut Value> = match body.as_mut() {
                Some(Value::Array(a)) => a.iter_mut().collect(),
                Some(v) => vec![v],
                None => vec![],
            };
            let mut hit = false;
            for item in items {
                if item
                    .get(*key)
                    .is_some_and(|v| v.to_string().trim_matches('"') == *value)
                {
                    hit = true;
                }
            }
            if !hit {
                continue;
            }
            let text = body.as_ref().unwrap().to_string();
            let (st, v) = call(&sock, &req.method, &path, Some(&text));
            let msg = v["errors"][0]["message"].as_str().unwrap_or("").to_string();
            if st != 400 || !msg.contains(key) {
                failures.push(format!(
                    "{}: {key} = {value} not refused by name: {st} {v}",
                    req.at
                ));
            }
            report.push(format!("{}: {key} = {value} refused: {msg}", req.at));
            let items: Vec<&mut Value> = match body.as_mut() {
                Some(Value::Array(a)) => a.iter_mut().collect(),
                Some(v) => vec![v],
                None => vec![],
            };
            for item in items {
                let m = item.as_object_mut().unwrap();
                if supported.is_null() {
                    m.remove(*key);
                } else {
                    m.insert(key.to_string(), supported.clone());
                }
            }
        }
        let text = body.as_ref().map(Value::to_string);
        let (st, v) = call(&sock, &req.method, &path, text.as_deref());
        let errs = check(&req, st, &v);
        if errs.is_empty() {
            report.push(format!("{} {} {path}: ok", req.at, req.method));
        } else {
            failures.push(format!(
                "{} {} {path}: {}",
                req.at,
                req.method,
                errs.join("; ")
            ));
        }
        if st == 200 && path.ends_with("/spectrum/apps") {
            failures.extend(
                effects(&sock, &path, &v["result"])
                    .into_iter()
                    .map(|e| format!("{}: {e}", req.at)),
            );
        }
        if st == 200 && req.method == "POST" {
            cleanup(&sock, &path, &v["result"]);
        }
    }
    // What each request got, seen with `--nocapture`.
    let _ = writeln!(std::io::stdout(), "{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "{} of the seeds' requests fail:\n{}\n\ndaemon log:\n{}",
        failures.len(),
        failures.join("\n"),
        d.stderr.lock().unwrap()
    );
}
