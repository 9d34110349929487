//! `fastpathctl` as a user runs it, against an in-process daemon on a real Unix socket: what
//! it prints on stdout and stderr, its exit codes, and what the daemon's config file holds
//! afterwards.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use control::api::{Server, bind};
use control::config::Config;
use control::daemon::{Controller, Running};
use fastpath::tables::{SharedTables, Tables};
use serde_json::Value;

const LAB: &str = include_str!("../pcaps/edge-lab.toml");

struct Daemon {
    dir: tempfile::TempDir,
    sock: PathBuf,
    file: PathBuf,
    controller: Arc<Controller>,
    _server: Server,
}

fn daemon_with(persist: Option<PathBuf>) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let file = persist.unwrap_or_else(|| dir.path().join("edge.toml"));
    let config = Config::from_toml_str(LAB).unwrap();
    let compiled = config.compile(1, &Default::default()).unwrap();
    let tables = SharedTables::new(Tables::build(&compiled.spec).unwrap());
    let controller = Arc::new(Controller::new(
        Running {
            config,
            compiled,
            version: 1,
        },
        tables,
        file.clone(),
        None,
    ));
    let sock = dir.path().join("control.sock");
    let l = bind(&sock, None).unwrap();
    let server = Server::start(Arc::clone(&controller), l, sock.clone()).unwrap();
    Daemon {
        dir,
        sock,
        file,
        controller,
        _server: server,
    }
}

fn daemon() -> Daemon {
    daemon_with(None)
}

/// A daemon whose data plane is the bundled capture replayed once in process, following the
/// controller's cookie secrets, as `fastpath replay --control` runs it.
fn daemon_with_data_plane() -> Daemon {
    use control::daemon::{DataPlane, LiveSecrets};
    use fastpath::replay::{CaptureReader, NullSink, Replay, ReplaySettings};
    use fastpath::syncookie::{CookieSecrets, SynCookies};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.toml");
    let config = Config::from_toml_str(LAB).unwrap();
    let compiled = config.compile(1, &Default::default()).unwrap();
    let seed = compiled.cookies.seed.unwrap();
    let tables = SharedTables::new(Tables::build(&compiled.spec).unwrap());
    let secrets = CookieSecrets::new(SynCookies::new(seed, compiled.cookies.rotate_secs));
    let mut replay = Replay::new(
        Arc::clone(&tables),
        &ReplaySettings {
            pipeline: compiled.pipeline.clone(),
            cookies: compiled.cookies.clone(),
            workers: compiled.workers.clone(),
            seed,
            mtu: 1500,
        },
    );
    replay.follow_secrets(Arc::clone(&secrets));
    let mut reader =
        CaptureReader::new(std::io::Cursor::new(include_bytes!("../pcaps/mixed.pcap"))).unwrap();
    replay
        .run(&mut reader, &mut NullSink, &mut |_, _| {})
        .unwrap();
    replay.finish();
    let controller = Arc::new(
        Controller::new(
            Running {
                config,
                compiled,
                version: 1,
            },
            tables,
            file.clone(),
            None,
        )
        .with_secrets(LiveSecrets {
            seed,
            secrets,
            clock: None,
        }),
    );
    controller.set_data_plane(DataPlane::of_replay(&mut replay));
    let sock = dir.path().join("control.sock");
    let l = bind(&sock, None).unwrap();
    let server = Server::start(Arc::clone(&controller), l, sock.clone()).unwrap();
    Daemon {
        dir,
        sock,
        file,
        controller,
        _server: server,
    }
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fastpathctl"));
    c.env_remove("FASTPATH_SOCKET");
    c
}

/// Runs `fastpathctl --socket SOCK ARGS...`.
fn ctl_at(sock: &Path, args: &[&str]) -> Output {
    bin()
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .expect("fastpathctl runs")
}

/// Runs `fastpathctl` against `d` with `stdin`.
fn ctl_stdin(d: &Daemon, args: &[&str], stdin: &str) -> Output {
    let mut child = bin()
        .arg("--socket")
        .arg(&d.sock)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.out, self.err
        )
    }
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

fn run_out(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).to_string(),
        err: String::from_utf8_lossy(&o.stderr).to_string(),
    }
}

fn ctl(d: &Daemon, args: &[&str]) -> Run {
    run_out(ctl_at(&d.sock, args))
}

/// Asserts exit code 0 and returns the run.
fn ok(d: &Daemon, args: &[&str]) -> Run {
    let r = ctl(d, args);
    assert_eq!(r.code, 0, "{args:?}: {r:?}");
    r
}

/// The lines of `out` with runs of spaces squashed to one (table columns are aligned).
fn squashed(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Whether `out` has a line that reads `want` once its spaces are squashed.
fn has_row(out: &str, want: &str) -> bool {
    squashed(out).iter().any(|l| l == want)
}

fn on_disk(d: &Daemon) -> Config {
    Config::load(&d.file).unwrap()
}

fn write(d: &Daemon, name: &str, text: &str) -> PathBuf {
    let p = d.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn status_in_words_and_as_json() {
    let d = daemon();
    let r = ok(&d, &["status"]);
    assert!(
        r.out.lines().any(|l| l == "node:            edge-lab"),
        "{r:?}"
    );
    assert!(
        r.out
            .lines()
            .any(|l| l.starts_with("version:") && l.ends_with(" 1")),
        "{r:?}"
    );
    assert!(r.out.contains(&d.file.display().to_string()), "{r:?}");
    assert!(r.err.is_empty(), "{r:?}");
    let j = ok(&d, &["--json", "status"]).json();
    assert_eq!(j["node"], "edge-lab");
    assert_eq!(j["spectrum_apps"], 3);
    // The environment variable names the socket too.
    let o = bin()
        .env("FASTPATH_SOCKET", &d.sock)
        .args(["--json", "status"])
        .output()
        .unwrap();
    assert!(o.status.success());
}

#[test]
fn apps_create_list_update_delete_change_the_file() {
    let d = daemon();
    let r = ok(
        &d,
        &[
            "apps",
            "create",
            "--protocol",
            "tcp/2222",
            "--edge-ip",
            "203.0.113.10",
            "--origin",
            "tcp://192.0.2.1:22",
            "--dns-name",
            "ssh2.example.com",
            "--ip-firewall",
            "true",
            "--tls",
            "off",
        ],
    );
    assert!(
        r.out.starts_with("app ssh2.example.com (tcp/2222)\n"),
        "{r:?}"
    );
    assert!(r.out.contains("applied: version 2 in "), "{r:?}");
    assert!(
        r.out.contains(
            "tcp 203.0.113.10 port 2222: unconfigured drop -> app ssh2.example.com (example tcp 203.0.113.10:2222)"
        ),
        "{r:?}"
    );
    let cfg = on_disk(&d);
    let app = cfg
        .spectrum_apps
        .iter()
        .find(|a| a.id == "ssh2.example.com")
        .expect("persisted");
    assert!(app.ip_firewall);

    let r = ok(&d, &["apps", "list"]);
    assert!(r.out.starts_with("ID  "), "{r:?}");
    assert!(
        has_row(
            &r.out,
            "ssh2.example.com tcp/2222 203.0.113.10 tcp://192.0.2.1:22 off yes direct off"
        ),
        "{r:?}"
    );
    let j = ok(&d, &["--json", "apps", "list"]).json();
    assert_eq!(j.as_array().unwrap().len(), 4);
    let r = ok(&d, &["apps", "get", "ssh"]);
    assert!(
        r.out.contains("origins:        tcp://192.0.2.1:22\n"),
        "{r:?}"
    );

    // Update changes only what the flags say.
    let r = ok(
        &d,
        &[
            "apps",
            "update",
            "ssh2.example.com",
            "--origin",
            "tcp://192.0.2.9:22",
            "--expected-version",
            "2",
        ],
    );
    assert!(r.out.contains("applied: version 3"), "{r:?}");
    assert!(r.out.contains("no change to where traffic goes"), "{r:?}");
    let cfg = on_disk(&d);
    let app = cfg
        .spectrum_apps
        .iter()
        .find(|a| a.id == "ssh2.example.com")
        .unwrap();
    assert_eq!(app.origin_direct[0].to_string(), "tcp://192.0.2.9:22");
    assert!(app.ip_firewall, "kept");
    assert_eq!(app.protocol.to_string(), "tcp/2222", "kept");

    // A dry run of a delete changes nothing; the delete does.
    let r = ok(&d, &["apps", "delete", "ssh2.example.com", "--dry-run"]);
    assert!(
        r.out
            .contains("dry run: nothing changed (running version 3)"),
        "{r:?}"
    );
    assert!(
        r.out.contains("app ssh2.example.com -> unconfigured drop"),
        "{r:?}"
    );
    assert_eq!(d.controller.running().version, 3);
    let r = ok(&d, &["apps", "delete", "ssh2.example.com"]);
    assert!(r.out.starts_with("deleted app ssh2.example.com\n"), "{r:?}");
    assert!(
        !on_disk(&d)
            .spectrum_apps
            .iter()
            .any(|a| a.id == "ssh2.example.com")
    );

    // From a JSON body on stdin, with a flag on top.
    let body = r#"{"protocol": "udp/27016", "edge_ips": {"type": "static", "ips": ["203.0.113.11"]},
        "origin_direct": ["udp://192.0.2.2:27016"]}"#;
    let r = run_out(ctl_stdin(
        &d,
        &["apps", "create", "--file", "-", "--id", "game2"],
        body,
    ));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out.starts_with("app game2 (udp/27016)\n"), "{r:?}");
    assert!(on_disk(&d).spectrum_apps.iter().any(|a| a.id == "game2"));
}

#[test]
fn a_refused_change_exits_1_names_the_problem_and_changes_nothing() {
    let d = daemon();
    let r = ctl(
        &d,
        &[
            "apps",
            "create",
            "--id",
            "dup",
            "--protocol",
            "tcp/22",
            "--edge-ip",
            "203.0.113.10",
            "--origin",
            "tcp://192.0.2.1:22",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.out.is_empty(), "{r:?}");
    let first = r.err.lines().next().unwrap();
    assert!(
        first.starts_with("fastpathctl: refused (code 1004): "),
        "{r:?}"
    );
    assert!(
        r.err.contains("22") && r.err.contains("203.0.113.10"),
        "{r:?}"
    );
    assert!(!d.file.exists(), "nothing was written");
    assert_eq!(d.controller.running().version, 1);

    // With --json the envelope is on stdout too.
    let r = ctl(
        &d,
        &[
            "--json",
            "apps",
            "create",
            "--id",
            "dup",
            "--protocol",
            "tcp/22",
            "--edge-ip",
            "203.0.113.10",
            "--origin",
            "tcp://192.0.2.1:22",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let env = r.json();
    assert_eq!(env["success"], false);
    assert_eq!(env["errors"][0]["code"], 1004);
    assert!(r.err.contains("refused (code 1004)"), "{r:?}");

    // Compare-and-swap: another version is running.
    let r = ctl(&d, &["apps", "delete", "game", "--expected-version", "7"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.err.starts_with("fastpathctl: refused (code 1009): "),
        "{r:?}"
    );
    // No such app.
    let r = ctl(&d, &["apps", "get", "nope"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("(code 1404)"), "{r:?}");
    assert!(!d.file.exists());
    assert_eq!(d.controller.running().version, 1);
}

#[test]
fn usage_errors_exit_2() {
    let d = daemon();
    for args in [
        &["apps", "create", "--proxy-protocol", "v9"][..],
        &["apps", "create", "--id", "x"],
        &["apps", "update", "ssh"],
        &["cdn", "set"],
        &["bindings", "list", "not-a-prefix"],
        &["config", "apply", "/nonexistent/edge.toml"],
        &["secrets", "rotate", "--secret", "abc"],
        &["stats", "--watch", "0"],
        &["nonsense"],
    ] {
        let r = ctl(&d, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(!r.err.is_empty(), "{args:?}: {r:?}");
    }
    assert_eq!(d.controller.running().version, 1);
}

#[test]
fn help_covers_every_command_and_the_exit_codes() {
    let o = bin().arg("--help").output().unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for sub in [
        "status",
        "apps",
        "prefixes",
        "bindings",
        "rules",
        "cdn",
        "config",
        "diff",
        "stats",
        "events",
        "explain",
        "metrics",
        "validate-origin",
        "secrets",
        "Exit codes:",
        "--socket",
        "FASTPATH_SOCKET",
        "--json",
    ] {
        assert!(out.contains(sub), "{sub}: {out}");
    }
    for sub in [
        &["apps", "create"][..],
        &["apps", "update"],
        &["bindings", "create"],
        &["rules", "replace"],
        &["config", "apply"],
        &["cdn", "set"],
        &["diff"],
        &["stats"],
        &["events"],
        &["explain"],
        &["secrets", "rotate"],
    ] {
        let o = bin().args(sub).arg("--help").output().unwrap();
        assert!(o.status.success(), "{sub:?}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("Example"), "{sub:?}: {out}");
    }
}

#[test]
fn config_get_and_apply_with_dry_run() {
    let d = daemon();
    let j = ok(&d, &["config", "get"]).json();
    assert_eq!(j["node"]["name"], "edge-lab");
    let j = ok(&d, &["--json", "config", "get"]).json();
    assert_eq!(j["version"], 1);
    let r = ok(&d, &["config", "get", "--toml"]);
    assert!(
        r.out.starts_with("# The running configuration, version 1"),
        "{r:?}"
    );
    let running = Config::from_toml_str(&r.out).unwrap();
    assert_eq!(
        running.spectrum_apps,
        d.controller.running().config.spectrum_apps
    );
    // The lab config's cookie secret is never printed, whatever the daemon sends.
    let secret = "6c61622d6f6e6c792d7365637265742d";
    assert!(!r.out.contains(secret), "{r:?}");
    for args in [&["config", "get"][..], &["--json", "config", "get"]] {
        let r = ok(&d, args);
        assert!(!r.out.contains(secret), "{r:?}");
    }

    // A dry run of a changed file: the diff, nothing applied.
    let edited = LAB.replace("protocol = \"tcp/22\"", "protocol = \"tcp/2222\"");
    let f = write(&d, "edited.toml", &edited);
    let fs = f.to_str().unwrap();
    let r = ok(&d, &["config", "apply", fs, "--dry-run"]);
    assert!(
        r.out
            .starts_with("dry run: nothing changed (running version 1); "),
        "{r:?}"
    );
    assert!(
        r.out.contains("  tcp 203.0.113.10 port 22: app ssh -> unconfigured drop (example tcp 203.0.113.10:22)\n"),
        "{r:?}"
    );
    assert!(r.out.contains("verification: passed\n"), "{r:?}");
    assert_eq!(d.controller.running().version, 1);
    assert!(!d.file.exists());

    // For real, with compare-and-swap; then the file on disk is the one applied.
    let r = ok(&d, &["config", "apply", fs, "--expected-version", "1"]);
    assert!(r.out.starts_with("applied: version 2 in "), "{r:?}");
    assert_eq!(
        on_disk(&d).spectrum_apps[0].protocol.to_string(),
        "tcp/2222"
    );
    let r = ctl(&d, &["config", "apply", fs, "--expected-version", "1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("code 1009"), "{r:?}");

    // JSON files work too (by extension, and by content on stdin).
    let json = ok(&d, &["config", "get"]).out;
    let fj = write(&d, "edge.json", &json);
    let r = ok(&d, &["config", "apply", fj.to_str().unwrap(), "--dry-run"]);
    assert!(r.out.contains("no change to where traffic goes"), "{r:?}");
    let r = run_out(ctl_stdin(&d, &["config", "apply", "-", "--dry-run"], &json));
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn a_local_file_that_does_not_validate_is_not_sent() {
    let d = daemon();
    let bad = LAB.replace(
        "cidr = \"203.0.113.0/24\"          #",
        "cidr = \"203.0.113.0/25\"          #",
    );
    let f = write(&d, "bad.toml", &bad);
    let fs = f.to_str().unwrap();
    let r = ctl(&d, &["config", "apply", fs]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.err.starts_with(&format!(
            "fastpathctl: {fs} does not validate; nothing was sent:\n"
        )),
        "{r:?}"
    );
    assert!(
        r.err.contains(&format!("{fs}:12: prefixes[0].cidr")),
        "{r:?}"
    );
    let r = ctl(&d, &["--json", "diff", fs]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["errors"][0]["code"], 1004);
    // The daemon never heard of it.
    let events = ok(&d, &["--json", "events"]);
    assert!(!events.out.contains("config_refused"), "{events:?}");
    assert_eq!(d.controller.running().version, 1);
    // A file that is not there: exit 2.
    let r = ctl(&d, &["diff", "/nonexistent/x.toml"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("cannot read /nonexistent/x.toml"), "{r:?}");
}

#[test]
fn diff_prints_the_semantic_diff_and_the_verification() {
    let d = daemon();
    // Without the ssh app.
    let cfg = Config::from_toml_str(LAB).unwrap();
    let mut without = cfg.clone();
    without.spectrum_apps.retain(|a| a.id != "ssh");
    let f = write(&d, "without-ssh.toml", &without.to_toml_string().unwrap());
    let r = ok(&d, &["diff", f.to_str().unwrap()]);
    assert!(
        r.out.contains("  tcp 203.0.113.10 port 22: app ssh -> unconfigured drop (example tcp 203.0.113.10:22)\n"),
        "{r:?}"
    );
    assert!(
        r.out
            .contains("tcp 2001:db8:100:1::10 port 22: app ssh -> unconfigured drop"),
        "{r:?}"
    );
    assert!(
        r.out.ends_with("verification: passed\nwould apply: yes\n"),
        "{r:?}"
    );
    let j = ok(&d, &["--json", "diff", f.to_str().unwrap()]).json();
    assert_eq!(j["applied"], false);
    assert_eq!(j["diff"].as_array().unwrap().len(), 2, "{j}");

    // A binding that more specific ones cover whole: verification refuses it.
    let mut shadowed = cfg.clone();
    for cidr in ["203.0.113.128/26", "203.0.113.192/26"] {
        shadowed.bindings.push(control::config::Binding {
            id: None,
            cidr: cidr.parse().unwrap(),
            service: shadowed.bindings[1].service,
            unconfigured: Default::default(),
        });
    }
    let f = write(&d, "shadowed.toml", &shadowed.to_toml_string().unwrap());
    let r = ctl(&d, &["diff", f.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.out
            .contains("\nverification: 1 finding\n  shadowed_binding: "),
        "{r:?}"
    );
    assert!(r.out.contains("(example tcp 203.0.113.128:"), "{r:?}");
    assert!(r.out.ends_with("would apply: no\n"), "{r:?}");
    assert!(
        r.err.starts_with("fastpathctl: refused (code 1005): "),
        "{r:?}"
    );
    assert_eq!(d.controller.running().version, 1);
}

#[test]
fn prefixes_bindings_and_origin_validation() {
    let d = daemon();
    let r = ok(&d, &["prefixes", "list"]);
    assert!(
        has_row(
            &r.out,
            "632231b77ce55c2eecd83f277899691c 203.0.113.0/24 yes"
        ),
        "the opaque id: {r:?}"
    );
    let r = ok(&d, &["bindings", "list", "203.0.113.0/24"]);
    assert!(
        has_row(&r.out, "203.0.113.128/25 203.0.113.128/25 cdn drop active"),
        "{r:?}"
    );
    let r = ok(
        &d,
        &["prefixes", "create", "198.51.100.0/24", "--no-advertise"],
    );
    assert!(
        r.out.starts_with(
            "prefix 198.51.100.0/24 (id 5e73ce439acb9156e66d912e9c32e677, not advertised)\n"
        ),
        "{r:?}"
    );
    let r = ok(
        &d,
        &[
            "bindings",
            "create",
            "198.51.100.0/24",
            "--cidr",
            "198.51.100.0/24",
            "--service",
            "cdn",
            "--unconfigured",
            "reset",
            "--id",
            "cdn-b",
        ],
    );
    assert!(
        r.out
            .starts_with("binding cdn-b (198.51.100.0/24 to cdn, unconfigured reset)\n"),
        "{r:?}"
    );
    assert!(
        on_disk(&d)
            .bindings
            .iter()
            .any(|b| b.id.as_deref() == Some("cdn-b"))
    );
    let r = ok(
        &d,
        &[
            "bindings",
            "create",
            "203.0.113.0-24",
            "--cidr",
            "203.0.113.100/32",
            "--service",
            "spectrum",
        ],
    );
    assert!(r.out.contains("203.0.113.100/32"), "{r:?}");
    // A binding by its CIDR (sent as 203.0.113.100-32), one by its id.
    ok(
        &d,
        &["bindings", "delete", "203.0.113.0/24", "203.0.113.100/32"],
    );
    ok(&d, &["bindings", "delete", "198.51.100.0/24", "cdn-b"]);
    let r = ok(&d, &["prefixes", "delete", "198.51.100.0/24"]);
    assert!(
        r.out
            .starts_with("deleted prefix 5e73ce439acb9156e66d912e9c32e677\n"),
        "{r:?}"
    );
    assert_eq!(on_disk(&d).prefixes.len(), 2);
    let r = ctl(&d, &["bindings", "list", "192.0.2.0/24"]);
    assert_eq!(r.code, 1, "{r:?}");

    let r = ok(&d, &["validate-origin", "203.0.113.10"]);
    assert_eq!(
        r.out,
        "ORIGIN        ALLOWED  MANAGED  DELEGATED  RESERVED  HAS BINDING\n\
         203.0.113.10  no       yes      no         yes       yes\n",
        "{r:?}"
    );
    let j = ok(&d, &["--json", "validate-origin", "192.0.2.0/24"]).json();
    assert_eq!(j["allowed_origins"]["192.0.2.0/24"]["allowed"], true);
}

#[test]
fn access_rules_create_delete_and_replace() {
    let d = daemon();
    let r = ok(
        &d,
        &[
            "rules",
            "create",
            "--mode",
            "block",
            "--target",
            "ip",
            "--value",
            "192.0.2.77",
        ],
    );
    assert!(
        r.out
            .starts_with("rule 192.0.2.77/32: block ip 192.0.2.77\n"),
        "{r:?}"
    );
    assert!(r.out.contains("applied: version 2"), "{r:?}");
    assert_eq!(on_disk(&d).access_rules.len(), 3);
    let r = ok(&d, &["rules", "list"]);
    assert!(
        has_row(&r.out, "192.0.2.77/32 block ip 192.0.2.77"),
        "{r:?}"
    );
    let r = ok(&d, &["rules", "delete", "192.0.2.77/32"]);
    assert!(r.out.starts_with("deleted rule 192.0.2.77/32\n"), "{r:?}");
    assert_eq!(on_disk(&d).access_rules.len(), 2);

    // What `--json rules list` prints goes back in through `replace`.
    let listed = ok(&d, &["--json", "rules", "list"]).out;
    let f = write(&d, "rules.json", &listed);
    let r = ok(&d, &["rules", "replace", f.to_str().unwrap()]);
    assert!(r.out.starts_with("2 rules\n"), "{r:?}");
    assert_eq!(
        on_disk(&d).access_rules,
        d.controller.running().config.access_rules
    );
    // A TOML file's [[access_rules]].
    let t = write(
        &d,
        "rules.toml",
        "[[access_rules]]\nmode = \"block\"\ntarget = \"ip_range\"\nvalue = \"192.0.2.0/25\"\n",
    );
    let r = ok(&d, &["rules", "replace", t.to_str().unwrap(), "--dry-run"]);
    assert!(
        r.out.starts_with("1 rules\ndry run: nothing changed"),
        "{r:?}"
    );
    ok(&d, &["rules", "replace", t.to_str().unwrap()]);
    assert_eq!(on_disk(&d).access_rules.len(), 1);
}

#[test]
fn cdn_get_and_set() {
    let d = daemon();
    let r = ok(&d, &["cdn", "get"]);
    assert!(r.out.contains("https only: no\n"), "{r:?}");
    let r = ok(
        &d,
        &["cdn", "set", "--https-only", "true", "--udp-ports", ""],
    );
    assert!(r.out.contains("https only: yes\n"), "{r:?}");
    assert!(r.out.contains("udp ports:  -\n"), "{r:?}");
    assert!(
        r.out.contains("udp 203.0.113.128"),
        "the QUIC port is gone: {r:?}"
    );
    let cfg = on_disk(&d);
    assert!(cfg.cdn.https_only);
    assert!(cfg.cdn.udp_ports.is_empty());
    assert_eq!(cfg.cdn.tcp_ports.len(), 13, "kept");
}

#[test]
fn events_list_the_changes() {
    let d = daemon();
    ok(&d, &["apps", "delete", "game"]);
    let _ = ctl(&d, &["apps", "delete", "range", "--expected-version", "9"]);
    let r = ok(&d, &["events"]);
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(lines[0].trim_start().starts_with("1  20"), "{r:?}");
    assert!(lines[0].contains("  config_applied  uid="), "{r:?}");
    assert!(lines[0].contains("version=2"), "{r:?}");
    assert!(
        lines[1].contains("config_refused") && lines[1].contains("code=1009"),
        "{r:?}"
    );
    let r = ok(&d, &["--json", "events", "--since", "1"]);
    let one: Vec<Value> = r
        .out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(one.len(), 1, "{r:?}");
    assert_eq!(one[0]["kind"], "config_refused");
}

/// Runs `fastpathctl events --follow` (with `extra` args), deletes the app `app`, and returns
/// the first line printed and the stderr.
fn follow_one(d: &Daemon, extra: &[&str], app: &str) -> (String, String) {
    let mut child = bin()
        .arg("--socket")
        .arg(&d.sock)
        .args(["events", "--follow"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            if tx.send(l.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ctl(d, &["apps", "delete", app]).code, 0);
    let line = rx.recv_timeout(Duration::from_secs(20));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    // One more event ends a long-poll the killed client left waiting in the daemon (polled
    // follow), which would otherwise hold up the daemon's shutdown for up to its `wait`.
    assert_eq!(
        ctl(d, &["apps", "delete", "ssh", "--expected-version", "999"]).code,
        1
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (
        line.unwrap_or_else(|_| panic!("no event line; stderr: {err}")),
        err,
    )
}

#[test]
fn events_follow_prints_changes_as_they_happen() {
    let d = daemon();
    let (line, _) = follow_one(&d, &[], "game");
    assert!(line.contains("config_applied"), "{line}");
    // Since the first two events (the change, and the refusal that ends the long-poll): the
    // second change is the first line.
    let (line, _) = follow_one(&d, &["--json", "--since", "2"], "range");
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["kind"], "config_applied");
}

#[test]
fn events_follow_uses_the_ndjson_stream() {
    let d = daemon();
    let (line, err) = follow_one(&d, &["--json"], "game");
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["kind"], "config_applied");
    assert!(
        !err.contains("does not stream events"),
        "fell back to polling: {err}"
    );
}

#[test]
fn unreachable_sockets_exit_3_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    // No socket at all.
    let r = run_out(ctl_at(&dir.path().join("none.sock"), &["status"]));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.err.starts_with("fastpathctl: no socket at "), "{r:?}");
    assert!(r.out.is_empty());
    // A plain file.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "x").unwrap();
    let r = run_out(ctl_at(&plain, &["status"]));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.err.contains("connection refused on "), "{r:?}");
    // A stale socket: bound, then its listener gone.
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let r = run_out(ctl_at(&stale, &["--json", "apps", "list"]));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.err.contains("connection refused on "), "{r:?}");
    assert!(r.out.is_empty(), "{r:?}");
}

#[test]
fn a_peer_that_does_not_speak_http_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.sock");
    let l = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(2) {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n");
        }
    });
    let r = run_out(ctl_at(&path, &["status"]));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.err.contains("does not answer HTTP"), "{r:?}");
}

#[test]
fn permission_denied_exits_3_with_what_to_do() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let d = daemon();
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    });
    if !root {
        let msg =
            "SKIPPED permission_denied_exits_3_with_what_to_do: needs root to run as another user";
        assert!(
            std::env::var("FASTPATH_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
            "{msg}"
        );
        let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {msg} !!!!!!!!\n");
        return;
    }
    // Only the socket's own mode (0600, root) should decide.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = bin()
        .arg("--socket")
        .arg(&d.sock)
        .arg("status")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let r = run_out(o);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.err.contains(&format!(
            "permission denied on {}: the socket is for root (or the --control-group group)",
            d.sock.display()
        )),
        "{r:?}"
    );
}

#[test]
fn a_daemon_that_cannot_persist_exits_4() {
    let d = daemon_with(Some(PathBuf::from("/nonexistent-dir-fastpath/edge.toml")));
    let r = ctl(&d, &["apps", "delete", "game"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.err
            .starts_with("fastpathctl: the daemon failed (code 1500): "),
        "{r:?}"
    );
    assert!(r.err.contains("nothing changed"), "{r:?}");
    assert_eq!(d.controller.running().version, 1);
}

// ---------------------------------------------------------------------------------------------
// Observability, explain, secrets and the dry-run report.

#[test]
fn stats_summary_and_json() {
    let d = daemon_with_data_plane();
    let r = ok(&d, &["stats"]);
    assert!(r.out.starts_with("version 1, up "), "{r:?}");
    for part in ["frames: ", "verdicts: ", "reasons: ", "xdp: ", "changes: "] {
        assert!(r.out.contains(part), "{part}: {r:?}");
    }
    let j = ok(&d, &["--json", "stats"]).json();
    assert_eq!(j["version"], 1);
    assert!(j["totals"].is_object(), "{j}");
    // Two samples with --watch: killed after the second.
    let mut child = bin()
        .arg("--socket")
        .arg(&d.sock)
        .args(["stats", "--watch", "0.2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap();
    let out = String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).to_string();
    assert!(out.matches("version 1, up ").count() >= 2, "{out}");
}

#[test]
fn metrics_are_the_prometheus_text() {
    let d = daemon();
    let r = ok(&d, &["metrics"]);
    assert!(r.out.contains("# TYPE "), "{r:?}");
    assert!(
        serde_json::from_str::<Value>(&r.out).is_err(),
        "not an envelope"
    );
}

#[test]
fn explain_against_the_running_tables() {
    let d = daemon();
    // A SYN from a blocked range to the ssh app of the bundled config (as in tests/cli.rs).
    let hex = "02000000000102000000001008004500002c000140004006d478c6336414cb00710a9c400016000003e8000000006002faf000000000020405b4";
    let r = ok(&d, &["explain", hex]);
    assert!(
        r.out.starts_with("verdict: drop (firewall_block)\n"),
        "{r:?}"
    );
    assert!(
        r.out.contains("access rule: block 198.51.100.0/24"),
        "{r:?}"
    );
    assert!(r.out.contains("  => drop/firewall_block\n"), "{r:?}");
    let j = ok(&d, &["--json", "explain", hex, "--time", "1700000000"]).json();
    assert_eq!(j["verdict"], "drop");
    let r = ctl(&d, &["explain", "zz"]);
    assert_eq!(r.code, 1, "{r:?}");
}

#[test]
fn secrets_rotate() {
    let d = daemon_with_data_plane();
    // Without a data plane there is nothing to rotate: refused, exit 1.
    let r = ctl(&daemon(), &["secrets", "rotate"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("code 1008"), "{r:?}");
    let r = ok(&d, &["secrets", "rotate"]);
    assert!(r.out.starts_with("rotated:   yes\n"), "{r:?}");
    let hex = "ab".repeat(32);
    let r = ok(&d, &["--json", "secrets", "rotate", "--secret", &hex]);
    assert_eq!(r.json()["rotated"], true);
    assert!(
        !r.out.contains(&hex) && !r.err.contains(&hex),
        "the secret is never printed"
    );
    // The lab config holds a fixed secret: the new one is persisted there.
    assert_eq!(r.json()["persisted"], true);
    assert!(std::fs::read_to_string(&d.file).unwrap().contains(&hex));
    let events = ok(&d, &["events"]).out;
    assert!(events.contains("secret_rotated"), "{events}");
}

#[test]
fn dry_runs_report_would_apply_and_verification() {
    let d = daemon();
    let f = write(&d, "same.toml", LAB);
    let j = ok(&d, &["--json", "diff", f.to_str().unwrap()]).json();
    assert_eq!(j["would_apply"], true, "{j}");
    assert_eq!(j["verification"]["passed"], true, "{j}");
    let r = ok(&d, &["diff", f.to_str().unwrap()]);
    assert!(
        r.out.ends_with("verification: passed\nwould apply: yes\n"),
        "{r:?}"
    );
}

#[test]
fn status_reports_the_data_plane() {
    let d = daemon();
    let j = ok(&d, &["--json", "status"]).json();
    for k in ["read_only", "uptime_secs", "data_plane", "queues"] {
        assert!(j.get(k).is_some(), "{k}: {j}");
    }
    let r = ok(&d, &["status"]);
    assert!(r.out.contains("read only:       no\n"), "{r:?}");
    assert!(r.out.contains("uptime:"), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// The client's side of the endpoints above, against a fake daemon that answers as
// docs/CONTROL.md says the real one will.

/// One canned answer: for requests whose `METHOD /path` starts with `route`.
struct Canned {
    route: &'static str,
    status: u16,
    content_type: &'static str,
    /// The body; for a stream, its lines, sent one by one (chunked), then the stream ends.
    body: Vec<String>,
    stream: bool,
}

fn canned(route: &'static str, body: Value) -> Canned {
    let envelope =
        serde_json::json!({"success": true, "errors": [], "messages": [], "result": body});
    Canned {
        route,
        status: 200,
        content_type: "application/json",
        body: vec![serde_json::to_string_pretty(&envelope).unwrap()],
        stream: false,
    }
}

struct Fake {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    /// Every request: `METHOD /path?query` and the body.
    seen: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

/// A daemon that answers each request with the first matching canned answer (404 otherwise).
fn fake(answers: Vec<Canned>) -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("fake.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let answers = Arc::new(answers);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let (log, answers) = (Arc::clone(&log), Arc::clone(&answers));
            std::thread::spawn(move || serve_fake(s, &log, &answers));
        }
    });
    Fake {
        _dir: dir,
        sock,
        seen,
    }
}

fn serve_fake(
    mut s: std::os::unix::net::UnixStream,
    log: &std::sync::Mutex<Vec<(String, String)>>,
    answers: &[Canned],
) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let request = format!(
        "{} {}",
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("")
    );
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    log.lock()
        .unwrap()
        .push((request.clone(), String::from_utf8_lossy(&body).to_string()));
    let Some(a) = answers.iter().find(|a| request.starts_with(a.route)) else {
        let b = r#"{"success": false, "errors": [{"code": 1404, "message": "no endpoint"}], "messages": [], "result": null}"#;
        let _ = write!(
            s,
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
            b.len()
        );
        return;
    };
    let reason = if a.status == 200 { "OK" } else { "Error" };
    if a.stream {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
            a.content_type
        );
        for l in &a.body {
            let chunk = format!("{l}\n");
            let _ = write!(s, "{:x}\r\n{chunk}\r\n", chunk.len());
            let _ = s.flush();
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = write!(s, "0\r\n\r\n");
        return;
    }
    let b = a.body.concat();
    let _ = write!(
        s,
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        a.status,
        a.content_type,
        b.len()
    );
}

fn fake_ctl(f: &Fake, args: &[&str]) -> Run {
    run_out(ctl_at(&f.sock, args))
}

/// The stats example of docs/CONTROL.md.
fn stats_example() -> Value {
    serde_json::json!({
      "version": 7, "uptime_secs": 12.5,
      "totals": {"frames": 1000, "verdicts": {"drop": 10, "tx": 990},
                 "reasons": {"syn_cookie": 900, "unconfigured_port": 10}},
      "queues": [{"queue": 0, "core": 0, "frames": 1000, "bytes": 64000, "tx_frames": 900,
                  "reasons": {"syn_cookie": 900}, "cookies_valid": 3, "cookies_invalid": 1,
                  "flows": 2, "flow_evictions": 0, "batches": 40,
                  "batch_ns": {"count": 40, "mean": 900, "p50": 800, "p90": 1200, "p99": 2000, "max": 2500},
                  "socket": {"rx": 1000, "tx": 900, "tx_ring_full": 0, "socket_dropped": 0}}],
      "xdp": {"reasons": {"unconfigured_port": 5}, "redirected": 1000, "no_socket": 0},
      "services": {"spectrum": {"syn_cookie": 900}, "cdn": {}},
      "bindings": [{"id": "203.0.113.0/24", "cidr": "203.0.113.0/24", "service": "spectrum",
                    "reasons": {"syn_cookie": 900}}],
      "apps": [{"id": "ssh", "reasons": {"syn_cookie": 900}}],
      "workers": [{"service": "spectrum", "index": 0, "items": 3, "connects": 1, "disconnects": 0, "backlog": 0}],
      "changes": {"applied": 3, "swap_us_p50": 350, "swap_us_p99": 900}
    })
}

#[test]
fn client_side_of_stats_metrics_explain_secrets_and_status() {
    let f = fake(vec![
        canned("GET /v1/stats", stats_example()),
        Canned {
            route: "GET /metrics",
            status: 200,
            content_type: "text/plain; version=0.0.4",
            body: vec!["# TYPE fastpath_frames_total counter\nfastpath_frames_total 1000\n".into()],
            stream: false,
        },
        canned(
            "POST /v1/explain",
            serde_json::json!({"length": 58, "verdict": "drop", "reason": "firewall_block",
                "service": "spectrum", "binding": "203.0.113.0/24", "app": "ssh", "worker": null,
                "path": ["ipv4 tcp 198.51.100.20:40000 -> 203.0.113.10:22 SYN",
                         "access rule: block 198.51.100.0/24"],
                "malformed": null, "reply_hex": null}),
        ),
        canned(
            "POST /v1/secrets/rotate",
            serde_json::json!({"rotated": true, "persisted": false, "version": 7}),
        ),
        canned(
            "GET /v1/status",
            serde_json::json!({"node": "edge-lab", "version": 7, "config_file": "/etc/fastpath/edge.toml",
                "read_only": false, "uptime_secs": 3700.0, "data_plane": "xdp native on eth0",
                "queues": 4, "prefixes": 2, "bindings": 4, "spectrum_apps": 3, "access_rules": 2,
                "changes_applied": 3, "swap_us_p50": 350.0, "swap_us_p99": 900.0}),
        ),
    ]);

    let r = fake_ctl(&f, &["stats"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out
            .starts_with("version 7, up 12.5 s\nframes: 1000 (0.000080 Mpps)\n"),
        "{r:?}"
    );
    assert!(r.out.contains("verdicts: tx 990, drop 10\n"), "{r:?}");
    assert!(
        has_row(
            &r.out,
            "203.0.113.0/24 203.0.113.0/24 spectrum syn_cookie 900"
        ),
        "{r:?}"
    );
    assert!(
        r.out
            .contains("xdp: redirected 1000, no socket 0; passed: -; answered: -; dropped: unconfigured_port 5"),
        "{r:?}"
    );
    assert!(
        r.out
            .ends_with("changes: 3 applied; swap p50 350 us, p99 900 us\n"),
        "{r:?}"
    );
    assert_eq!(fake_ctl(&f, &["--json", "stats"]).json()["version"], 7);
    // --watch: samples until killed, the later ones with the rate between two samples.
    let mut child = bin()
        .arg("--socket")
        .arg(&f.sock)
        .args(["stats", "--watch", "0.2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(900));
    child.kill().unwrap();
    let out = String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).to_string();
    assert!(out.matches("version 7, up 12.5 s").count() >= 2, "{out}");
    assert!(out.contains("(Mpps over the last "), "{out}");

    let r = fake_ctl(&f, &["metrics"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.out,
        "# TYPE fastpath_frames_total counter\nfastpath_frames_total 1000\n"
    );

    let r = fake_ctl(&f, &["explain", "02 00 00", "--time", "1700000000"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.out,
        "verdict: drop (firewall_block)\n         service spectrum, binding 203.0.113.0/24, app ssh\n\
         path (58 bytes):\n  1. ipv4 tcp 198.51.100.20:40000 -> 203.0.113.10:22 SYN\n  \
         2. access rule: block 198.51.100.0/24\n  => drop/firewall_block\n"
    );

    let hex = "cd".repeat(32);
    let r = fake_ctl(
        &f,
        &[
            "secrets",
            "rotate",
            "--secret",
            &hex,
            "--expected-version",
            "7",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.out, "rotated:   yes\npersisted: no\nversion:   7\n");
    assert!(!r.out.contains(&hex) && !r.err.contains(&hex));

    let r = fake_ctl(&f, &["status"]);
    assert_eq!(r.code, 0, "{r:?}");
    for l in [
        "read only:       no",
        "uptime:          1 h 1 min",
        "data plane:      xdp native on eth0",
        "queues:          4",
    ] {
        assert!(r.out.lines().any(|x| x == l), "{l}: {r:?}");
    }

    let seen = f.seen.lock().unwrap().clone();
    let explain = seen.iter().find(|(r, _)| r == "POST /v1/explain").unwrap();
    let body: Value = serde_json::from_str(&explain.1).unwrap();
    assert_eq!(body, serde_json::json!({"hex": "02 00 00", "time": 1.7e9}));
    let rotate = seen
        .iter()
        .find(|(r, _)| r.starts_with("POST /v1/secrets/rotate"))
        .unwrap();
    assert_eq!(rotate.0, "POST /v1/secrets/rotate?expected_version=7");
    assert_eq!(
        serde_json::from_str::<Value>(&rotate.1).unwrap(),
        serde_json::json!({"secret": hex})
    );
}

#[test]
fn client_side_of_the_ndjson_event_stream() {
    let events = [
        r#"{"seq": 5, "ts_ms": 1700000000000, "kind": "config_applied", "peer": {"uid": 0, "gid": 0, "pid": 77}, "detail": {"version": 8}}"#,
        "",
        r#"{"seq": 6, "ts_ms": 1700000000500, "kind": "connect", "peer": null, "detail": {"status": 0, "app": "ssh", "client": "198.51.100.9:4000"}}"#,
    ];
    let f = fake(vec![Canned {
        route: "GET /v1/events?follow=true&since=4",
        status: 200,
        content_type: "application/x-ndjson",
        body: events.iter().map(|s| s.to_string()).collect(),
        stream: true,
    }]);
    let r = fake_ctl(&f, &["events", "--follow", "--since", "4"]);
    // The fake ends the stream after its lines: the client says so and exits 3.
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(
        r.out,
        "     5  2023-11-14T22:13:20.000Z  config_applied  uid=0 pid=77     version=8\n     \
         6  2023-11-14T22:13:20.500Z  connect         -                app=ssh client=198.51.100.9:4000 status=0\n"
    );
    assert!(r.err.contains("closed the event stream"), "{r:?}");
    assert!(!r.err.contains("does not stream"), "{r:?}");
    let r = fake_ctl(&f, &["--json", "events", "--follow", "--since", "4"]);
    let lines: Vec<Value> = r
        .out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    assert_eq!(lines[1]["detail"]["app"], "ssh");
}

#[test]
fn client_side_of_a_dry_run_that_would_not_apply() {
    let f = fake(vec![canned(
        "PUT /v1/config?dry_run=true",
        serde_json::json!({"version": 7, "applied": false, "diff": [], "swap_us": 0,
            "would_apply": false, "verification": {"passed": false, "findings": [
                {"rule": "blackhole", "message": "203.0.113.0/24 is advertised; 203.0.113.7 has no binding",
                 "example": {"proto": "tcp", "dst": "203.0.113.7", "port": 1}}]}}),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.toml");
    std::fs::write(&file, LAB).unwrap();
    let r = fake_ctl(&f, &["diff", file.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.out,
        "dry run: nothing changed (running version 7); no change to where traffic goes\n\
         verification: 1 finding\n  blackhole: 203.0.113.0/24 is advertised; 203.0.113.7 has no \
         binding (example tcp 203.0.113.7:1)\nwould apply: no\n"
    );
    assert!(
        r.err
            .starts_with("fastpathctl: refused (code 1005): blackhole: "),
        "{r:?}"
    );
}

#[test]
fn a_peer_that_answers_http_but_not_the_envelope_exits_3() {
    let f = fake(vec![
        Canned {
            route: "GET /v1/status",
            status: 200,
            content_type: "text/html",
            body: vec!["<html>hello</html>".into()],
            stream: false,
        },
        Canned {
            route: "GET /client/v4/zones/local/spectrum/apps",
            status: 502,
            content_type: "text/plain",
            body: vec!["bad gateway".into()],
            stream: false,
        },
    ]);
    let r = fake_ctl(&f, &["status"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.err.contains("without a JSON envelope"), "{r:?}");
    let r = fake_ctl(&f, &["apps", "list"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(
        r.err,
        "fastpathctl: the daemon failed: HTTP 502: bad gateway\n"
    );
}
