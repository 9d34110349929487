//! A fleet's configuration shared through etcd: every node loads the configuration stored
//! under one key prefix, follows it with a watch, and applies each new revision through the
//! same path a control-socket change takes ([`Controller::apply_stored`]); a change through
//! any node's socket is validated there and committed to etcd with compare-and-swap, and
//! becomes live on every node, the writer included, from the watch.
//!
//! Layout under `PREFIX` (see `docs/DESIGN.md`, "A fleet's configuration"):
//! - `PREFIX/chunks/SHA256`: the configuration document (the config as JSON, without the
//!   node-local `[node]` section) cut into pieces of at most [`CHUNK_BYTES`], each under the
//!   SHA-256 of its bytes. Written only when absent, never changed: content-addressed.
//! - `PREFIX/head`: a small JSON [`Head`] naming the chunks in order, the whole document's
//!   SHA-256 and the fleet's configuration version. A change is one compare-and-swap of this
//!   key on its `mod_revision`, so a node sees the whole old or the whole new document even
//!   when it is larger than etcd takes in one request (1.5 MiB by default).
//! - A node reads the chunks of a head at the head's own revision (etcd's MVCC), so a chunk
//!   collected after a newer head was written is still readable until etcd compacts.
//! - Collection: after a successful switch, the writer deletes every chunk the new head does
//!   not name that was created *before* the new head, guarded by the head still being that
//!   revision. A chunk created since then belongs to a writer whose own switch must fail (its
//!   base revision is older than the head), so nothing that a winning head needs is ever
//!   deleted.
//!
//! The follower: load the head (bootstrapping an empty prefix with this node's running
//! configuration), watch the head key from the read's header revision + 1, and every
//! [`HEALTH_EVERY`] read the head again (which catches a member that stopped answering while
//! its watch stayed open, and a head that moved without an event). Any failure makes the node
//! *stale*: it keeps serving its last applied revision, says so (stats, metrics, the log and an
//! event) and retries with backoff; each retry starts with a whole read, so a resumed watch
//! never starts at a compacted revision, an idle prefix needs no progress requests, and a
//! rebuilt etcd (another cluster id, revisions going backwards) is read whole and its content
//! compared with what runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Config, Node};
use crate::daemon::{ApplyError, ConfigStore, Controller};
use crate::etcd::{Client, Compare, EtcdError, Event, Op, Source, WatchMessage, prefix_end};

/// The largest chunk of a stored document: well under etcd's default request limit
/// (1.5 MiB) once base64 and JSON wrap it.
pub const CHUNK_BYTES: usize = 512 * 1024;
/// How often a following node reads the head besides its watch.
pub const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// The first retry's wait after a failure; it doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait between retries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a commit through the socket may take, chunks and switch together.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The head of a stored configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The fleet's configuration version.
    pub version: u64,
    /// SHA-256 of the whole document, hex.
    pub sha256: String,
    /// The document's length in bytes.
    pub bytes: usize,
    /// The chunks' SHA-256 (hex), in order.
    pub chunks: Vec<String>,
    /// The node that wrote it.
    pub writer: String,
    /// When it was written (ms since the Unix epoch).
    pub written_ms: u64,
}

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// etcd failed.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// What is stored is not a configuration this node can read.
    #[error("the stored configuration is unreadable: {0}")]
    Corrupt(String),
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The shared document of `config`: the configuration as JSON (the keys of the TOML file, as
/// `PUT /v1/config` takes it), with the node-local `[node]` section left at its default.
/// JSON, not TOML: a 100,000-rule list is 5.5 MB and parses in about 35 ms, against 7.1 MB and
/// about 600 ms as TOML, and every node parses every revision.
///
/// # Errors
/// The config cannot be written as JSON.
pub fn document(config: &Config) -> Result<String, String> {
    let mut c = config.clone();
    c.node = Node::default();
    serde_json::to_string(&c).map_err(|e| e.to_string())
}

/// The configuration of a shared `doc` on a node whose own section is `node`, validated.
///
/// # Errors
/// Every problem found (the shape, then every rule), each with its key.
pub fn config_of(doc: &str, node: &Node) -> Result<Config, crate::config::ConfigErrors> {
    let mut c: Config = crate::config::parse_json(doc)?;
    c.node = node.clone();
    c.validate()?;
    Ok(c)
}

/// The chunks of `doc`, each with its SHA-256.
pub fn chunks(doc: &[u8]) -> Vec<(String, &[u8])> {
    doc.chunks(CHUNK_BYTES)
        .map(|c| (sha256_hex(c), c))
        .collect()
}

/// The keys of one stored configuration.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    source: Source,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// The head was switched at this revision.
    Switched(i64, Head),
    /// The head was not at the base revision any more: it is at this one.
    Conflict(i64),
}

impl Store {
    /// The store at `source`.
    pub fn new(source: Source) -> Store {
        Store {
            client: Client::new(source.endpoints.clone()),
            source,
        }
    }

    /// The etcd client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `PREFIX/head`.
    pub fn head_key(&self) -> Vec<u8> {
        format!("{}/head", self.source.prefix).into_bytes()
    }

    fn chunk_prefix(&self) -> Vec<u8> {
        format!("{}/chunks/", self.source.prefix).into_bytes()
    }

    fn chunk_key(&self, sha: &str) -> Vec<u8> {
        format!("{}/chunks/{sha}", self.source.prefix).into_bytes()
    }

    /// The head: the read's header (cluster and revision), and the head with its
    /// `mod_revision` when there is one.
    ///
    /// # Errors
    /// [`FleetError`].
    pub async fn head(&self) -> Result<(crate::etcd::Header, Option<(i64, Head)>), FleetError> {
        let r = self.client.range(&self.head_key(), None, 0).await?;
        let head = match r.kvs.first() {
            None => None,
            Some(kv) => Some((kv.mod_revision, parse_head(&kv.value)?)),
        };
        Ok((r.header, head))
    }

    /// The document `head` names, read at `revision`, checked against its hashes.
    ///
    /// # Errors
    /// [`FleetError`]: a chunk missing or not matching its hash is [`FleetError::Corrupt`].
    pub async fn document(&self, head: &Head, revision: i64) -> Result<String, FleetError> {
        let mut doc = Vec::with_capacity(head.bytes);
        // All chunks at once, each on a connection of its own; joined in order.
        let reads: Vec<_> = head
            .chunks
            .iter()
            .map(|sha| {
                let (client, key) = (self.client.clone(), self.chunk_key(sha));
                tokio::spawn(async move { client.range(&key, None, revision).await })
            })
            .collect();
        for (sha, read) in head.chunks.iter().zip(reads) {
            let r = read
                .await
                .map_err(|e| FleetError::Corrupt(format!("a chunk read failed: {e}")))??;
            let kv = r.kvs.first().ok_or_else(|| {
                FleetError::Corrupt(format!("chunk {sha} is missing at revision {revision}"))
            })?;
            if sha256_hex(&kv.value) != *sha {
                return Err(FleetError::Corrupt(format!(
                    "chunk {sha} does not match its hash"
                )));
            }
            doc.extend_from_slice(&kv.value);
        }
        if doc.len() != head.bytes || sha256_hex(&doc) != head.sha256 {
            return Err(FleetError::Corrupt(format!(
                "the document does not match the head's hash ({} bytes, head says {})",
                doc.len(),
                head.bytes
            )));
        }
        String::from_utf8(doc).map_err(|e| FleetError::Corrupt(format!("not UTF-8: {e}")))
    }

    /// Stores `doc` as `version` if the head is still at `base` (0: no head yet): the chunks
    /// that are missing first, then the head by compare-and-swap.
    ///
    /// # Errors
    /// [`FleetError`]: nothing is known to have switched.
    pub async fn commit(
        &self,
        doc: &str,
        version: u64,
        base: i64,
        writer: &str,
    ) -> Result<Committed, FleetError> {
        let pieces = chunks(doc.as_bytes());
        // All chunks at once; each only when absent (an existing chunk keeps its create
        // revision).
        let writes: Vec<_> = pieces
            .iter()
            .map(|(sha, bytes)| {
                let (client, key, value) =
                    (self.client.clone(), self.chunk_key(sha), bytes.to_vec());
                tokio::spawn(async move {
                    client
                        .txn(
                            &[Compare::ModRevision(key.clone(), 0)],
                            &[Op::Put(key, value)],
                        )
                        .await
                })
            })
            .collect();
        for w in writes {
            w.await
                .map_err(|e| FleetError::Corrupt(format!("a chunk write failed: {e}")))??;
        }
        let head = Head {
            version,
            sha256: sha256_hex(doc.as_bytes()),
            bytes: doc.len(),
            chunks: pieces.into_iter().map(|(s, _)| s).collect(),
            writer: writer.to_string(),
            written_ms: now_ms(),
        };
        let value = serde_json::to_vec(&head).map_err(|e| FleetError::Corrupt(e.to_string()))?;
        let (ok, h) = self
            .client
            .txn(
                &[Compare::ModRevision(self.head_key(), base)],
                &[Op::Put(self.head_key(), value)],
            )
            .await?;
        if ok {
            return Ok(Committed::Switched(h.revision, head));
        }
        // A retried request whose first try committed fails its compare: the head is ours.
        let (_, now) = self.head().await?;
        match now {
            Some((rev, stored)) if stored == head => Ok(Committed::Switched(rev, head)),
            now => Ok(Committed::Conflict(now.map_or(0, |(r, _)| r))),
        }
    }

    /// Deletes the chunks that `head` (switched at `revision`) does not name and that were
    /// created before it, while the head is still at `revision`. Returns how many went.
    ///
    /// # Errors
    /// [`FleetError`].
    pub async fn collect(&self, head: &Head, revision: i64) -> Result<usize, FleetError> {
        let prefix = self.chunk_prefix();
        let (_, keys) = self
            .client
            .range_keys(&prefix, &prefix_end(&prefix))
            .await?;
        let keep: std::collections::HashSet<Vec<u8>> =
            head.chunks.iter().map(|s| self.chunk_key(s)).collect();
        let stale: Vec<Vec<u8>> = keys
            .into_iter()
            .filter(|(k, created)| *created < revision && !keep.contains(k))
            .map(|(k, _)| k)
            .collect();
        let mut gone = 0;
        // etcd takes at most 128 operations in one transaction by default.
        for batch in stale.chunks(100) {
            let ops: Vec<Op> = batch.iter().map(|k| Op::Delete(k.clone())).collect();
            let (ok, _) = self
                .client
                .txn(&[Compare::ModRevision(self.head_key(), revision)], &ops)
                .await?;
            if !ok {
                break;
            }
            gone += batch.len();
        }
        Ok(gone)
    }
}

/// Reads a head's value.
///
/// # Errors
/// [`FleetError::Corrupt`]: not a head.
pub fn parse_head(v: &[u8]) -> Result<Head, FleetError> {
    serde_json::from_slice(v).map_err(|e| {
        FleetError::Corrupt(format!(
            "the head is not a configuration head: {e}: {}",
            String::from_utf8_lossy(&v[..v.len().min(120)])
        ))
    })
}

/// A revision this node did not apply, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    /// The head's revision.
    pub revision: i64,
    /// The fleet version it carries.
    pub version: u64,
    /// The refusal's code (as the socket's).
    pub code: u32,
    /// Why.
    pub reason: String,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
}

/// What a node knows of its store: shown by `stats`, `metrics` and `fastpathctl status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// `etcd://...`.
    pub source: String,
    /// The head revision of the running configuration (0: none yet).
    pub revision: i64,
    /// The etcd cluster it came from.
    pub cluster_id: String,
    /// The running document's SHA-256.
    pub sha256: String,
    /// The running document's size and number of chunks.
    pub bytes: usize,
    /// Chunks of the running document.
    pub chunks: usize,
    /// Whether the node cannot follow the store now (it serves its last applied revision).
    pub stale: bool,
    /// Since when (ms since the Unix epoch).
    pub stale_since_ms: Option<u64>,
    /// The last failure to reach or read the store.
    pub last_error: Option<String>,
    /// The last revision this node refused to apply.
    pub refused: Option<Refused>,
    /// When the running revision was applied (ms since the Unix epoch; 0: at start).
    pub applied_ms: u64,
    /// Revisions applied since start.
    pub applied: u64,
    /// Whole reloads after a compaction or another cluster.
    pub reloads: u64,
    /// Times the watch was (re)established.
    pub watches: u64,
    /// Chunks this node collected after its own commits.
    pub collected: u64,
}

/// A node's link to its store: the [`ConfigStore`] of its controller and the follower.
pub struct Fleet {
    store: Store,
    node: Node,
    /// The runtime of the client and the follower; shut down (not dropped inside itself) by
    /// [`Fleet::shutdown`].
    rt: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    status: Mutex<Status>,
    stop: AtomicBool,
    wake: tokio::sync::Notify,
}

impl core::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Fleet")
            .field("source", &self.store.source)
            .finish_non_exhaustive()
    }
}

/// How a node starts: the configuration it serves first and where it came from.
#[derive(Debug)]
pub struct Start {
    /// The configuration to serve.
    pub config: Config,
    /// Its version.
    pub version: u64,
    /// Its head revision (0: none known).
    pub revision: i64,
    /// What happened, for the start banner and the log.
    pub how: String,
    /// The link, to give the controller ([`Fleet::follow`]).
    pub fleet: Arc<Fleet>,
}

impl Fleet {
    /// A link to `source` for a node whose own section is `node`.
    ///
    /// # Errors
    /// The runtime cannot start.
    pub fn new(source: Source, node: Node) -> std::io::Result<Fleet> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fp-fleet")
            .enable_all()
            .build()?;
        Ok(Fleet {
            handle: rt.handle().clone(),
            rt: Mutex::new(Some(rt)),
            status: Mutex::new(Status {
                source: format!("etcd://{}{}", source.endpoints.join(","), source.prefix),
                ..Status::default()
            }),
            store: Store::new(source),
            node,
            stop: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        })
    }

    fn st(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the status.
    pub fn status_now(&self) -> Status {
        self.st().clone()
    }

    fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        f: impl Future<Output = Result<T, FleetError>> + Send + 'static,
    ) -> Result<T, FleetError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv_timeout(timeout).unwrap_or_else(|_| {
            Err(FleetError::Etcd(EtcdError::Unreachable {
                endpoints: "etcd".into(),
                last: format!("no answer in {timeout:?}"),
            }))
        })
    }

    /// Decides what a node starts with. `local` is this node's file (its `[node]` section and,
    /// after a first run, the last revision it applied, `local_revision`):
    /// - the store has a head: its configuration (with this node's section);
    /// - the store is empty: `local` becomes the fleet's first revision (one node wins;
    ///   the others then load what it wrote);
    /// - the store cannot be reached: `local`, reported stale from the start.
    ///
    /// # Errors
    /// The stored configuration does not load here (the node must not start on something
    /// else silently), or the runtime cannot start.
    pub fn start(
        source: Source,
        local: &Config,
        local_version: u64,
        local_revision: Option<i64>,
    ) -> Result<Start, String> {
        let fleet = Arc::new(
            Fleet::new(source, local.node.clone())
                .map_err(|e| format!("starting the etcd client: {e}"))?,
        );
        let f = Arc::clone(&fleet);
        let store = fleet.store.clone();
        let doc = document(local)?;
        let writer = local.node.name.clone();
        let read = fleet.run(COMMIT_TIMEOUT, async move {
            for _ in 0..3 {
                let (h, head) = store.head().await?;
                if let Some((rev, head)) = head {
                    let text = store.document(&head, h.revision).await?;
                    return Ok((h, rev, head, text, false));
                }
                match store.commit(&doc, local_version, 0, &writer).await? {
                    Committed::Switched(rev, head) => return Ok((h, rev, head, doc, true)),
                    // Another node wrote the first revision meanwhile: read it.
                    Committed::Conflict(_) => {}
                }
            }
            Err(FleetError::Corrupt(
                "the head keeps changing while this node starts".into(),
            ))
        });
        match read {
            Ok((h, rev, head, text, bootstrapped)) => {
                let config = match config_of(&text, &local.node) {
                    Ok(c) => c,
                    Err(e) => {
                        // Not on this node: it starts on its last good revision, and says so.
                        let revision = local_revision.unwrap_or(0);
                        let reason = format!("it does not load here:\n{e}");
                        {
                            let mut st = f.st();
                            st.cluster_id = h.cluster_id.to_string();
                            st.revision = revision;
                            st.sha256 = sha256_hex(document(local)?.as_bytes());
                            st.refused = Some(Refused {
                                revision: rev,
                                version: head.version,
                                code: 1004,
                                reason: reason.clone(),
                                at_ms: now_ms(),
                            });
                        }
                        tracing::warn!(
                            revision = rev,
                            reason,
                            "etcd: this node cannot apply the shared configuration; it starts on its own file"
                        );
                        return Ok(Start {
                            config: local.clone(),
                            version: local_version,
                            revision,
                            how: format!(
                                "the shared configuration (etcd revision {rev}, version {}) does not load on this node, which starts on its own file (etcd revision {revision}, version {local_version}) and reports why in its status:\n{e}",
                                head.version
                            ),
                            fleet,
                        });
                    }
                };
                f.record_applied(h.cluster_id, rev, &head);
                Ok(Start {
                    config,
                    version: head.version,
                    revision: rev,
                    how: if bootstrapped {
                        format!(
                            "the shared configuration was empty: this node's file is its first revision (etcd revision {rev}, version {})",
                            head.version
                        )
                    } else {
                        format!(
                            "shared configuration from etcd revision {rev} (version {}, {} bytes in {} chunk(s))",
                            head.version,
                            head.bytes,
                            head.chunks.len()
                        )
                    },
                    fleet,
                })
            }
            Err(FleetError::Etcd(e)) => {
                let revision = local_revision.unwrap_or(0);
                {
                    let mut st = f.st();
                    st.revision = revision;
                    st.sha256 = sha256_hex(document(local)?.as_bytes());
                }
                f.set_stale(&e.to_string());
                Ok(Start {
                    config: local.clone(),
                    version: local_version,
                    revision,
                    how: format!(
                        "etcd is unreachable ({e}): serving the last revision this node applied (etcd revision {revision}, version {local_version}) until it answers"
                    ),
                    fleet,
                })
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn record_applied(&self, cluster_id: u64, revision: i64, head: &Head) {
        let mut st = self.st();
        st.cluster_id = cluster_id.to_string();
        st.revision = revision;
        st.sha256.clone_from(&head.sha256);
        st.bytes = head.bytes;
        st.chunks = head.chunks.len();
        st.applied_ms = now_ms();
    }

    fn set_stale(&self, why: &str) {
        let mut st = self.st();
        st.last_error = Some(why.to_string());
        if !st.stale {
            st.stale = true;
            st.stale_since_ms = Some(now_ms());
            tracing::warn!(
                revision = st.revision,
                error = why,
                "etcd: cannot follow the shared configuration; serving the last applied revision (stale) and retrying"
            );
        }
    }

    fn set_fresh(&self) -> Option<u64> {
        let mut st = self.st();
        if !st.stale {
            return None;
        }
        st.stale = false;
        let since = st.stale_since_ms.take();
        tracing::info!(
            revision = st.revision,
            "etcd: following the shared configuration again"
        );
        since
    }

    /// Starts following the store for `controller` on a thread of the link's runtime.
    /// It stops when [`Fleet::shutdown`] is called.
    pub fn follow(self: &Arc<Self>, controller: Arc<Controller>) {
        let me = Arc::clone(self);
        self.handle
            .spawn(async move { me.follow_loop(controller).await });
    }

    /// Stops the follower and the client's runtime.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_waiters();
        if let Some(rt) = self.rt.lock().unwrap_or_else(|e| e.into_inner()).take() {
            rt.shutdown_background();
        }
    }

    async fn pause(&self, d: Duration) {
        let _ = tokio::time::timeout(d, self.wake.notified()).await;
    }

    async fn follow_loop(self: Arc<Self>, c: Arc<Controller>) {
        let mut backoff = BACKOFF_MIN;
        let head_key = self.store.head_key();
        while !self.stop.load(Ordering::Acquire) {
            let from = match self.sync(&c).await {
                Ok(r) => r,
                Err(e) => {
                    self.fail(&c, &e.to_string());
                    self.pause(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            let mut watch = match self.store.client.watch(&head_key, &[], from + 1).await {
                Ok(w) => w,
                Err(e) => {
                    self.fail(&c, &e.to_string());
                    self.pause(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            self.st().watches += 1;
            backoff = BACKOFF_MIN;
            if let Some(since) = self.set_fresh() {
                c.event(
                    "config_store_fresh",
                    None,
                    serde_json::json!({ "revision": c.store_revision(), "stale_ms": now_ms().saturating_sub(since) }),
                );
            }
            let mut tick = tokio::time::interval(HEALTH_EVERY);
            tick.tick().await;
            loop {
                if self.stop.load(Ordering::Acquire) {
                    return;
                }
                tokio::select! {
                    m = watch.next() => {
                        match m {
                            Ok(Some(WatchMessage::Events(_, events))) => {
                                // Only the last write of the head matters: each is whole.
                                let last = events.into_iter().rev().map(|e| match e {
                                    Event::Put(kv) => Ok(kv),
                                    Event::Delete { mod_revision, .. } => Err(mod_revision),
                                }).next();
                                match last {
                                    Some(Ok(kv)) => {
                                        if let Err(e) = self.apply_head(&c, kv.mod_revision, &kv.value).await {
                                            self.fail(&c, &e.to_string());
                                            break;
                                        }
                                    }
                                    Some(Err(rev)) => self.fail(&c, &format!(
                                        "the head key was deleted at etcd revision {rev}; serving the last applied revision"
                                    )),
                                    None => {}
                                }
                            }
                            Ok(Some(WatchMessage::Created(_) | WatchMessage::Progress(_))) => {}
                            Ok(Some(WatchMessage::Compacted(r))) => {
                                // Reload whole at one revision, watch from its header + 1.
                                self.st().reloads += 1;
                                tracing::info!(compact_revision = r, "etcd: the watch's start was compacted; reloading whole");
                                break;
                            }
                            Ok(Some(WatchMessage::Canceled(why))) => {
                                self.fail(&c, &format!("etcd canceled the watch: {why}"));
                                break;
                            }
                            Ok(None) => {
                                self.fail(&c, "etcd closed the watch");
                                break;
                            }
                            Err(e) => {
                                self.fail(&c, &e.to_string());
                                break;
                            }
                        }
                    }
                    _ = tick.tick() => {
                        match self.store.head().await {
                            Err(e) => {
                                self.fail(&c, &e.to_string());
                                break;
                            }
                            Ok((h, head)) => {
                                let st = self.status_now();
                                let rev = head.as_ref().map_or(0, |(r, _)| *r);
                                let refused = st.refused.as_ref().is_some_and(|x| x.revision == rev);
                                if h.cluster_id.to_string() != st.cluster_id || (rev != st.revision && !refused) {
                                    // Missed by the watch, or another etcd: read whole.
                                    break;
                                }
                            }
                        }
                    }
                    () = self.wake.notified() => return,
                }
            }
        }
    }

    fn fail(&self, c: &Controller, why: &str) {
        let was = self.st().stale;
        self.set_stale(why);
        if !was {
            c.event(
                "config_store_stale",
                None,
                serde_json::json!({ "revision": c.store_revision(), "error": why }),
            );
        }
    }

    /// One whole read: the head, applied when it is not what runs (another revision of
    /// another content, or another cluster); an empty store gets this node's configuration.
    /// Returns the read's header revision, where the watch starts.
    async fn sync(&self, c: &Arc<Controller>) -> Result<i64, FleetError> {
        let (h, head) = self.store.head().await?;
        let st = self.status_now();
        let cluster = h.cluster_id.to_string();
        let other_cluster = !st.cluster_id.is_empty() && st.cluster_id != cluster;
        if other_cluster || h.revision < st.revision {
            self.st().reloads += 1;
            tracing::warn!(
                from = st.cluster_id,
                to = cluster,
                revision = h.revision,
                "etcd: another cluster, or revisions went backwards (etcd rebuilt): reloading whole"
            );
        }
        match head {
            None => {
                // An empty prefix (a new or rebuilt etcd): this node's configuration is its
                // first revision. One node wins; the others read it on their next pass.
                let running = c.running();
                let doc = document(&running.config).map_err(FleetError::Corrupt)?;
                match self
                    .store
                    .commit(&doc, running.version, 0, &self.node.name)
                    .await?
                {
                    Committed::Switched(rev, head) => {
                        self.record_applied(h.cluster_id, rev, &head);
                        c.set_store_revision(rev);
                        Ok(rev)
                    }
                    Committed::Conflict(_) => Box::pin(self.sync(c)).await,
                }
            }
            Some((rev, head)) => {
                let refused = st.refused.as_ref().is_some_and(|x| x.revision == rev);
                if refused && !other_cluster {
                    return Ok(h.revision);
                }
                if head.sha256 == st.sha256 {
                    // What runs (perhaps under another revision: a node that started while
                    // etcd was down, or a rebuilt etcd restored).
                    self.record_applied(h.cluster_id, rev, &head);
                    if c.store_revision() != rev {
                        c.set_store_revision(rev);
                    }
                    return Ok(h.revision);
                }
                self.apply_parsed(c, h.cluster_id, rev, head, h.revision)
                    .await?;
                Ok(h.revision)
            }
        }
    }

    /// Applies the head written at `rev` (its value `value`) from the watch, in the cluster
    /// the node follows.
    async fn apply_head(
        &self,
        c: &Arc<Controller>,
        rev: i64,
        value: &[u8],
    ) -> Result<(), FleetError> {
        let st = self.status_now();
        if rev <= st.revision {
            return Ok(());
        }
        let head = match parse_head(value) {
            Ok(h) => h,
            Err(e) => {
                self.refuse(c, rev, 0, 1004, &e.to_string());
                return Ok(());
            }
        };
        let cluster = st.cluster_id.parse().unwrap_or(0);
        if head.sha256 == st.sha256 {
            self.record_applied(cluster, rev, &head);
            c.set_store_revision(rev);
            return Ok(());
        }
        self.apply_parsed(c, cluster, rev, head, rev).await
    }

    async fn apply_parsed(
        &self,
        c: &Arc<Controller>,
        cluster: u64,
        rev: i64,
        head: Head,
        read_at: i64,
    ) -> Result<(), FleetError> {
        let text = match self.store.document(&head, read_at).await {
            Ok(t) => t,
            Err(FleetError::Corrupt(why)) => {
                self.refuse(c, rev, head.version, 1004, &why);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let config = match config_of(&text, &self.node) {
            Ok(c) => c,
            Err(e) => {
                self.refuse(
                    c,
                    rev,
                    head.version,
                    1004,
                    &format!("it does not load here:\n{e}"),
                );
                return Ok(());
            }
        };
        let (cc, version) = (Arc::clone(c), head.version);
        let applied = tokio::task::spawn_blocking(move || cc.apply_stored(config, version, rev))
            .await
            .map_err(|e| FleetError::Corrupt(format!("the apply failed: {e}")))?;
        match applied {
            Ok(_) => {
                self.record_applied(cluster, rev, &head);
                let mut st = self.st();
                st.applied += 1;
                st.refused = None;
            }
            Err(e) => self.refuse(c, rev, head.version, e.code(), &e.to_string()),
        }
        Ok(())
    }

    fn refuse(&self, c: &Controller, rev: i64, version: u64, code: u32, reason: &str) {
        tracing::warn!(
            revision = rev,
            version,
            reason,
            "etcd: this node cannot apply the shared configuration's revision; it stays on its last good revision"
        );
        c.event(
            "config_store_refused",
            None,
            serde_json::json!({ "revision": rev, "version": version, "code": code, "message": reason }),
        );
        self.st().refused = Some(Refused {
            revision: rev,
            version,
            code,
            reason: reason.to_string(),
            at_ms: now_ms(),
        });
    }
}

impl ConfigStore for Fleet {
    fn commit(&self, config: &Config, version: u64, base: i64) -> Result<i64, ApplyError> {
        let doc = document(config).map_err(ApplyError::Store)?;
        let store = self.store.clone();
        let writer = self.node.name.clone();
        let done = self.run(COMMIT_TIMEOUT, async move {
            let c = store.commit(&doc, version, base, &writer).await?;
            if let Committed::Switched(rev, head) = &c {
                // Collection is best effort: a failure leaves chunks for the next writer.
                let gone = store.collect(head, *rev).await.unwrap_or(0);
                return Ok((c, gone));
            }
            Ok((c, 0))
        });
        match done {
            Ok((Committed::Switched(rev, _), gone)) => {
                self.st().collected += gone as u64;
                Ok(rev)
            }
            Ok((Committed::Conflict(current), _)) => {
                Err(ApplyError::StoreConflict { base, current })
            }
            Err(e) => Err(ApplyError::Store(e.to_string())),
        }
    }

    fn status(&self) -> serde_json::Value {
        serde_json::to_value(self.status_now()).unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn documents_leave_the_node_section_out_and_load_back_with_the_local_one() {
        let mut c = Config::default();
        c.node.name = "edge-a".into();
        c.node.config_source = Some("etcd://127.0.0.1:2379/fp".into());
        let doc = document(&c).unwrap();
        assert!(!doc.contains("edge-a") && !doc.contains("etcd://"), "{doc}");
        let node = Node {
            name: "edge-b".into(),
            config_source: Some("etcd://127.0.0.1:2379/fp".into()),
        };
        let back = config_of(&doc, &node).unwrap();
        assert_eq!(back.node, node);
        let mut expect = c.clone();
        expect.node = node;
        assert_eq!(back, expect);
    }

    #[test]
    fn chunks_cover_the_document_in_order() {
        let doc: Vec<u8> = (0..CHUNK_BYTES * 2 + 10).map(|i| (i % 251) as u8).collect();
        let c = chunks(&doc);
        assert_eq!(c.len(), 3);
        assert_eq!(c[2].1.len(), 10);
        let joined: Vec<u8> = c.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        assert_eq!(joined, doc);
        assert_eq!(c[0].0, sha256_hex(&doc[..CHUNK_BYTES]));
        assert!(chunks(b"").is_empty());
    }
}
