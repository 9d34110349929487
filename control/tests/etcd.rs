//! The etcd gateway client against a real etcd on loopback (Debian's `etcd-server`; `.ci/run`
//! installs it). Without the `etcd` binary the test skips loudly, and fails when
//! `FASTPATH_REQUIRE_PRIVILEGED=1` asks that nothing be skipped.

// Skips and waits are said on stderr, where cargo test shows them.
#![allow(clippy::print_stderr)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use control::etcd::{Client, Compare, Event, Op, WatchMessage, prefix_end};

struct Etcd {
    child: Child,
    client: String,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn etcd() -> Option<Etcd> {
    if Command::new("etcd").arg("--version").output().is_err() {
        let msg = "SKIPPED: no etcd binary (apt-get install etcd-server)";
        assert!(
            std::env::var("FASTPATH_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
            "{msg}, and FASTPATH_REQUIRE_PRIVILEGED=1"
        );
        eprintln!("{msg}");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (c, p) = (free_port(), free_port());
    let client = format!("127.0.0.1:{c}");
    let peer = format!("http://127.0.0.1:{p}");
    let child = Command::new("etcd")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--name", "t", "--listen-client-urls"])
        .arg(format!("http://{client}"))
        .arg("--advertise-client-urls")
        .arg(format!("http://{client}"))
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .arg("--initial-cluster")
        .arg(format!("t={peer}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let e = Etcd {
        child,
        client,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&e.client).is_err() {
        assert!(Instant::now() < deadline, "etcd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(e)
}

#[test]
fn range_txn_watch_and_compaction_through_the_gateway() {
    let Some(e) = etcd() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // A dead member first: requests go on to the live one.
        let dead = format!("127.0.0.1:{}", free_port());
        let c = Client::new(vec![dead, e.client.clone()]);
        let deadline = Instant::now() + Duration::from_secs(20);
        let start = loop {
            match c.range(b"/fp/", Some(&prefix_end(b"/fp/")), 0).await {
                Ok(r) => break r,
                Err(err) if Instant::now() < deadline => {
                    eprintln!("waiting for etcd: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("{err}"),
            }
        };
        assert!(start.kvs.is_empty());
        assert!(start.header.cluster_id != 0);
        // Create-if-absent wins once; a second one with the same expectation loses.
        let head = b"/fp/head".to_vec();
        let (ok, h1) = c
            .txn(
                &[Compare::ModRevision(head.clone(), 0)],
                &[
                    Op::Put(head.clone(), b"v1".to_vec()),
                    Op::Put(b"/fp/chunk/a".to_vec(), vec![0, 255, b'"']),
                ],
            )
            .await
            .unwrap();
        assert!(ok);
        let (lost, _) = c
            .txn(
                &[Compare::ModRevision(head.clone(), 0)],
                &[Op::Put(head.clone(), b"x".to_vec())],
            )
            .await
            .unwrap();
        assert!(!lost, "compare-and-swap on a stale revision must fail");
        let r = c
            .range(b"/fp/", Some(&prefix_end(b"/fp/")), 0)
            .await
            .unwrap();
        assert_eq!(r.kvs.len(), 2);
        assert_eq!(r.kvs[0].key, b"/fp/chunk/a");
        assert_eq!(r.kvs[0].value, [0, 255, b'"'], "binary values round-trip");
        assert_eq!(r.kvs[1].value, b"v1");
        assert_eq!(r.kvs[1].mod_revision, h1.revision);
        // A watch from the start sees both writes of the transaction at one revision, then a
        // later delete.
        let mut w = c
            .watch(b"/fp/", &prefix_end(b"/fp/"), start.header.revision + 1)
            .await
            .unwrap();
        assert!(matches!(
            w.next().await.unwrap(),
            Some(WatchMessage::Created(_))
        ));
        let (ok, h2) = c
            .txn(
                &[Compare::ModRevision(head.clone(), h1.revision)],
                &[Op::Delete(b"/fp/chunk/a".to_vec())],
            )
            .await
            .unwrap();
        assert!(ok);
        let mut seen = Vec::new();
        while seen.len() < 3 {
            match tokio::time::timeout(Duration::from_secs(10), w.next())
                .await
                .unwrap()
                .unwrap()
            {
                Some(WatchMessage::Events(h, ev)) => {
                    assert!(h.revision >= h1.revision);
                    seen.extend(ev);
                }
                Some(WatchMessage::Progress(_)) => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(&seen[0], Event::Put(kv) if kv.mod_revision == h1.revision));
        assert!(matches!(&seen[1], Event::Put(kv) if kv.mod_revision == h1.revision));
        assert!(
            matches!(&seen[2], Event::Delete { mod_revision, .. } if *mod_revision == h2.revision)
        );
        // After a compaction, a watch from before it is told so, with the compact revision.
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &e.client,
                "compact",
                &h2.revision.to_string(),
            ])
            .output();
        if let Ok(o) = out {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let mut old = c
                .watch(b"/fp/", &prefix_end(b"/fp/"), start.header.revision + 1)
                .await
                .unwrap();
            let mut got = None;
            for _ in 0..3 {
                match tokio::time::timeout(Duration::from_secs(10), old.next())
                    .await
                    .unwrap()
                    .unwrap()
                {
                    Some(WatchMessage::Compacted(r)) => {
                        got = Some(r);
                        break;
                    }
                    Some(WatchMessage::Created(_)) => {}
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(got, Some(h2.revision));
            // Reading a compacted revision is refused, not silently empty.
            assert!(
                c.range(b"/fp/", Some(&prefix_end(b"/fp/")), h1.revision)
                    .await
                    .is_err()
            );
        } else {
            let msg = "SKIPPED compaction part: no etcdctl (apt-get install etcd-client)";
            assert!(
                std::env::var("FASTPATH_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
                "{msg}, and FASTPATH_REQUIRE_PRIVILEGED=1"
            );
            eprintln!("{msg}");
        }
    });
}
