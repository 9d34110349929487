//! The replay driver: captures through exactly the code the live path runs.
//!
//! Frames are read in batches of `batch_size`; each batch loads one table snapshot, runs
//! [`Pipeline::begin_batch`], [`Pipeline::process`] for every frame and
//! [`Pipeline::end_batch`], exactly as an AF_XDP queue thread does. The clock is the capture's
//! timestamps. Workers are polled inline after each batch (live they run on their own threads),
//! which makes a replay deterministic: the same capture, config and cookie seed give the same
//! output, byte for byte.

use std::io::Read;
use std::sync::Arc;

use crate::pipeline::{Outcome, Pipeline, PipelineConfig};
use crate::replay::{CaptureError, CaptureReader, RecordMeta};
use crate::stats::QueueStats;
use crate::syncookie::{CookieConfig, CookieSecrets};
use crate::tables::{SharedTables, Tables};
use crate::worker::{Analytics, Worker, WorkerConfig, WorkerPools};

/// Room every replay frame buffer has at least, so a reply (SYN-ACK, RST, ICMP quote) fits as
/// it would in a UMEM chunk.
pub const FRAME_ROOM: usize = 2048;

/// One classified frame, as handed to a [`Sink`].
#[derive(Debug)]
pub struct FrameReport<'a> {
    /// 1-based frame number in the capture.
    pub frame: u64,
    /// Capture timestamp in nanoseconds.
    pub ts_ns: u64,
    /// The frame as read (after link-type conversion).
    pub data: &'a [u8],
    /// What happened to it.
    pub outcome: Outcome,
    /// The reply we transmitted, for a `tx` verdict.
    pub tx: Option<&'a [u8]>,
    /// The snapshot that classified it (for app and binding names).
    pub tables: &'a Tables,
    /// The batch it was in (0-based).
    pub batch: u64,
}

/// Receives every classified frame, in capture order.
pub trait Sink {
    /// One frame.
    ///
    /// # Errors
    /// An I/O error ends the replay with [`ReplayError::Sink`].
    fn frame(&mut self, r: &FrameReport<'_>) -> std::io::Result<()>;

    /// The replay ended: flush what was written.
    ///
    /// # Errors
    /// An I/O error.
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A sink that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl Sink for NullSink {
    fn frame(&mut self, _: &FrameReport<'_>) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The capture could not be read past frame `frame`.
    #[error("reading frame {frame}: {source}")]
    Capture {
        /// The frame that could not be read (1-based).
        frame: u64,
        /// The error.
        #[source]
        source: CaptureError,
    },
    /// A sink failed to write.
    #[error("writing output: {0}")]
    Sink(#[source] std::io::Error),
}

/// Settings of a replay.
#[derive(Debug, Clone)]
pub struct ReplaySettings {
    /// Pipeline settings (batch size, flow table, timeouts).
    pub pipeline: PipelineConfig,
    /// SYN-cookie settings.
    pub cookies: CookieConfig,
    /// Worker pool settings.
    pub workers: WorkerConfig,
    /// Cookie seed (fixed for reproducible output).
    pub seed: [u8; 32],
    /// MTU the announced MSS derives from when the config does not set it.
    pub mtu: u16,
}

#[derive(Debug, Default)]
struct Slot {
    orig: Vec<u8>,
    work: Vec<u8>,
    meta: Option<RecordMeta>,
    outcome: Option<Outcome>,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplayTotals {
    /// Frames read and classified.
    pub frames: u64,
    /// Batches.
    pub batches: u64,
    /// Timestamp of the first frame (ns).
    pub first_ts_ns: u64,
    /// Timestamp of the last frame (ns).
    pub last_ts_ns: u64,
    /// Table versions seen, in order of first use.
    pub versions: Vec<u64>,
}

/// A replay: one pipeline (queue 0) and its workers, run over captures.
#[derive(Debug)]
pub struct Replay {
    tables: Arc<SharedTables>,
    pipeline: Pipeline,
    workers: Vec<Worker>,
    batch_size: usize,
    slots: Vec<Slot>,
    totals: ReplayTotals,
}

impl Replay {
    /// A replay over the tables published in `tables` (they may be swapped while it runs; each
    /// batch sees one snapshot).
    pub fn new(tables: Arc<SharedTables>, s: &ReplaySettings) -> Replay {
        let (pools, workers) =
            WorkerPools::new(&s.workers, crate::worker::Timeouts::from(&s.pipeline));
        let pipeline = Pipeline::new(0, &s.pipeline, &s.cookies, s.seed, s.mtu, pools);
        let batch_size = s.pipeline.batch_size.max(1);
        Replay {
            tables,
            pipeline,
            workers,
            batch_size,
            slots: (0..batch_size).map(|_| Slot::default()).collect(),
            totals: ReplayTotals::default(),
        }
    }

    /// The queue's counters.
    pub fn stats(&self) -> Arc<QueueStats> {
        self.pipeline.stats()
    }

    /// Makes the pipeline follow `secrets` (rotations on demand; see
    /// [`Pipeline::follow_secrets`]).
    pub fn follow_secrets(&mut self, secrets: Arc<CookieSecrets>) {
        self.pipeline.follow_secrets(secrets);
    }

    /// Forgets every flow of the pipeline and the workers: the next frames are replayed as if
    /// from the start (one more pass of a looped replay). Counters and analytics keep going.
    pub fn reset_flows(&mut self) {
        self.pipeline.reset_flows();
        for w in &mut self.workers {
            w.reset();
        }
    }

    /// Totals so far.
    pub fn totals(&self) -> &ReplayTotals {
        &self.totals
    }

    /// The workers (for their counters and events).
    pub fn workers_mut(&mut self) -> &mut [Worker] {
        &mut self.workers
    }

    /// The workers' analytics, merged.
    pub fn analytics(&self) -> Analytics {
        let mut a = Analytics::default();
        for w in &self.workers {
            a.merge(w.analytics());
        }
        a
    }

    /// Replays every frame of `reader` into `sink`; `progress` is called after every batch with
    /// the number of frames so far and the batch's last timestamp (ns).
    ///
    /// # Errors
    /// [`ReplayError::Capture`] when the capture cannot be read further (frames before it were
    /// classified and reported), [`ReplayError::Sink`] when the sink fails.
    pub fn run<R: Read>(
        &mut self,
        reader: &mut CaptureReader<R>,
        sink: &mut dyn Sink,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), ReplayError> {
        loop {
            let mut n = 0;
            let mut err = None;
            while n < self.batch_size {
                let slot = &mut self.slots[n];
                match reader.next_into(&mut slot.orig) {
                    Ok(Some(meta)) => {
                        slot.meta = Some(meta);
                        n += 1;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            if n > 0 {
                self.batch(n, sink)?;
                progress(self.totals.frames, self.totals.last_ts_ns);
            }
            if let Some(source) = err {
                return Err(ReplayError::Capture {
                    frame: self.totals.frames + 1,
                    source,
                });
            }
            if n < self.batch_size {
                return Ok(());
            }
        }
    }

    fn batch(&mut self, n: usize, sink: &mut dyn Sink) -> Result<(), ReplayError> {
        let snapshot = self.tables.load();
        let t: &Tables = &snapshot;
        if self.totals.versions.last() != Some(&t.version()) {
            self.totals.versions.push(t.version());
        }
        self.pipeline.stats_ref().tables_version.set(t.version());
        let first_ts = self.slots[0].meta.as_ref().map_or(0, |m| m.ts_ns);
        self.pipeline.begin_batch(first_ts);
        for slot in &mut self.slots[..n] {
            let ts = slot.meta.as_ref().map_or(0, |m| m.ts_ns);
            let len = slot.orig.len();
            // Only the frame's own bytes are copied: a reply writes every byte up to its
            // length, so what an earlier frame left beyond `len` is never read (clearing and
            // zero-filling the whole FRAME_ROOM for every frame was most of replay's memset).
            if slot.work.len() < len.max(FRAME_ROOM) {
                slot.work.resize(len.max(FRAME_ROOM), 0);
            }
            slot.work[..len].copy_from_slice(&slot.orig);
            slot.outcome = Some(self.pipeline.process(t, ts, &mut slot.work, len));
        }
        self.pipeline.end_batch();
        let last_ts = self.slots[n - 1].meta.as_ref().map_or(0, |m| m.ts_ns);
        for w in &mut self.workers {
            w.poll(usize::MAX);
            w.expire(last_ts);
        }
        if self.totals.frames == 0 {
            self.totals.first_ts_ns = first_ts;
        }
        self.totals.last_ts_ns = last_ts;
        let batch = self.totals.batches;
        for slot in &self.slots[..n] {
            self.totals.frames += 1;
            let outcome = slot
                .outcome
                .expect("every slot of the batch was classified");
            let report = FrameReport {
                frame: self.totals.frames,
                ts_ns: slot.meta.as_ref().map_or(0, |m| m.ts_ns),
                data: &slot.orig,
                outcome,
                tx: (outcome.tx_len > 0).then(|| &slot.work[..outcome.tx_len]),
                tables: t,
                batch,
            };
            sink.frame(&report).map_err(ReplayError::Sink)?;
        }
        self.totals.batches += 1;
        Ok(())
    }

    /// Ends the replay: every flow still open is closed at the last timestamp (reported as open
    /// at the end of the capture).
    pub fn finish(&mut self) {
        let ts = self.totals.last_ts_ns;
        for w in &mut self.workers {
            w.poll(usize::MAX);
            w.finish(ts);
        }
    }
}
