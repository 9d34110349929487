//! AF_XDP: one socket per RX queue, its UMEM, and the queue loop that runs the pipeline over
//! batches of frames (xdpilone for the rings; no libbpf, no C).
//!
//! The loop follows xdp-tutorial's `handle_receive_packets`: reap completions, top up the fill
//! ring, take a batch from the RX ring, classify it against one table snapshot, put replies
//! (SYN-ACK, RST, ICMP, written in place in the received frame) on the TX ring and return every
//! other frame to the fill ring. With `need_wakeup` (the default) an idle queue sleeps in
//! `poll(2)`, so a small machine stays usable; `busy_poll` spins instead.
//!
//! The UMEM is `frames` chunks of `frame_size` bytes; every chunk is at all times in exactly
//! one place: our free list, the fill ring, the kernel (between fill and RX, or TX and
//! completion), or the batch being classified.
#![allow(unsafe_code)]

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ffi::CString;
use std::num::NonZeroU32;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig};

use crate::pipeline::Pipeline;
use crate::stats::Counter;
use crate::tables::SharedTables;
use crate::verdict::Verdict;

mod send;
pub use send::{MAX_FRAMES, Rate, SendReport, XskSender};

/// Whether to ask the driver for zero-copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Zero-copy where the driver supports it, copy mode otherwise.
    Auto,
    /// Zero-copy or fail.
    On,
    /// Copy mode.
    Off,
}

/// Settings of one queue's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XskConfig {
    /// UMEM chunk size (a power of two, 2048 or 4096).
    pub frame_size: u32,
    /// Fill ring entries.
    pub fill_size: u32,
    /// Completion ring entries.
    pub comp_size: u32,
    /// RX ring entries.
    pub rx_size: u32,
    /// TX ring entries.
    pub tx_size: u32,
    /// Zero-copy request.
    pub zero_copy: ZeroCopy,
    /// Spin instead of sleeping in `poll(2)` when idle.
    pub busy_poll: bool,
    /// Frames per batch (one table snapshot per batch).
    pub batch: usize,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frame_size: 4096,
            // 4096 + 2048 + 1024 + 64 chunks fit the 8192-chunk UMEM (32 MiB). An RX ring of
            // 2048 holds 50 ms of a 40 kpps burst while the queue thread waits for a core.
            fill_size: 4096,
            comp_size: 1024,
            rx_size: 2048,
            tx_size: 1024,
            zero_copy: ZeroCopy::Auto,
            busy_poll: false,
            batch: 64,
        }
    }
}

impl XskConfig {
    /// Chunks in the UMEM: enough for every ring to be full at once plus a batch.
    pub fn frames(&self) -> u32 {
        (self.fill_size + self.rx_size + self.tx_size + self.batch as u32).next_power_of_two()
    }
}

/// Why a queue's socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// The interface does not exist.
    #[error("no interface {0}")]
    NoInterface(String),
    /// A socket call failed.
    #[error("AF_XDP {step} on {iface} queue {queue}: {errno} (errno {code}){hint}")]
    Socket {
        /// The step.
        step: &'static str,
        /// The interface.
        iface: String,
        /// The queue.
        queue: u32,
        /// The error text.
        errno: String,
        /// The errno.
        code: i32,
        /// What to try.
        hint: &'static str,
    },
    /// The UMEM could not be allocated.
    #[error("cannot allocate a {0}-byte UMEM")]
    Alloc(usize),
    /// Frames a sender cannot hold.
    #[error("cannot send these frames: {0}")]
    Frames(String),
}

/// Page-aligned UMEM memory.
struct Area {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Area {
    fn new(size: usize) -> Result<Area, XskError> {
        let layout = Layout::from_size_align(size, 4096).map_err(|_| XskError::Alloc(size))?;
        // SAFETY: `layout` has a non-zero size (at least one 2 KiB chunk).
        let p = unsafe { alloc_zeroed(layout) };
        NonNull::new(p)
            .map(|ptr| Area { ptr, layout })
            .ok_or(XskError::Alloc(size))
    }

    fn as_slice_ptr(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.layout.size())
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: allocated in `Area::new` with this layout; the UMEM and sockets using it are
        // dropped before (field order of `XskQueue`).
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

// SAFETY: the area is plain memory owned by one queue; it moves to that queue's thread once.
unsafe impl Send for Area {}

/// Counters of one queue's socket, readable from other threads.
#[derive(Debug, Default)]
pub struct XskStats {
    /// Frames received.
    pub rx: Counter,
    /// Frames queued for transmission.
    pub tx: Counter,
    /// Replies dropped because the TX ring was full.
    pub tx_ring_full: Counter,
    /// Wake-ups of the kernel (`poll`/`sendto`).
    pub wakeups: Counter,
    /// Frames redirected to the socket that the kernel dropped for want of a frame from the
    /// fill ring, or because they did not fit a chunk (`XDP_STATISTICS` `rx_dropped`), as
    /// last read.
    pub kernel_rx_dropped: Counter,
    /// Frames redirected to the socket that the kernel dropped because the RX ring was full
    /// (`rx_ring_full`).
    pub kernel_rx_ring_full: Counter,
    /// Times the fill ring was empty when the kernel needed a frame
    /// (`rx_fill_ring_empty_descs`).
    pub kernel_fill_ring_empty: Counter,
}

impl XskStats {
    /// Frames the XDP program redirected to this socket that the kernel dropped before they
    /// reached the RX ring (no fill-ring frame, or the RX ring full).
    pub fn kernel_dropped(&self) -> u64 {
        self.kernel_rx_dropped.get() + self.kernel_rx_ring_full.get()
    }
}

/// One RX queue's AF_XDP socket and its UMEM.
pub struct XskQueue {
    // Field order is drop order: rings and sockets before the UMEM, the UMEM before its memory.
    rx: RingRx,
    tx: RingTx,
    device: DeviceQueue,
    _socket: Socket,
    _umem: Umem,
    area: Area,
    free: Vec<u64>,
    frame_size: u64,
    queue: u32,
    zero_copy: bool,
    cfg: XskConfig,
    stats: Arc<XskStats>,
    /// When the kernel's drop counters were last read while idle.
    stats_read: std::time::Instant,
}

impl core::fmt::Debug for XskQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("XskQueue")
            .field("queue", &self.queue)
            .field("zero_copy", &self.zero_copy)
            .finish_non_exhaustive()
    }
}

// SAFETY: the rings and the UMEM belong to this queue only; the value moves to the queue's
// thread once and is used there alone.
unsafe impl Send for XskQueue {}

fn sock_err(step: &'static str, iface: &str, queue: u32, e: xdpilone::Errno) -> XskError {
    let code = e.get_raw();
    let hint = match code {
        libc::EPERM | libc::EACCES => ": AF_XDP needs root (CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF)",
        libc::ENOPROTOOPT | libc::EAFNOSUPPORT => ": this kernel has no AF_XDP",
        libc::EOPNOTSUPP => ": the driver has no zero-copy support; use --zero-copy off or auto",
        libc::EINVAL => ": the queue may not exist on this interface",
        libc::EBUSY => ": another AF_XDP socket is bound to this queue",
        _ => "",
    };
    XskError::Socket {
        step,
        iface: iface.to_string(),
        queue,
        errno: e.to_string(),
        code,
        hint,
    }
}

impl XskQueue {
    /// Creates and binds the socket of `queue` on `iface`.
    ///
    /// # Errors
    /// [`XskError`] with the failing step and what to try.
    pub fn open(iface: &str, queue: u32, cfg: &XskConfig) -> Result<XskQueue, XskError> {
        let mut info = IfInfo::invalid();
        let name = CString::new(iface).map_err(|_| XskError::NoInterface(iface.to_string()))?;
        info.from_name(&name)
            .map_err(|_| XskError::NoInterface(iface.to_string()))?;
        info.set_queue(queue);
        let tries: &[(bool, u16)] = match cfg.zero_copy {
            ZeroCopy::On => &[(true, SocketConfig::XDP_BIND_ZEROCOPY)],
            ZeroCopy::Off => &[(false, SocketConfig::XDP_BIND_COPY)],
            ZeroCopy::Auto => &[
                (true, SocketConfig::XDP_BIND_ZEROCOPY),
                (false, SocketConfig::XDP_BIND_COPY),
            ],
        };
        let mut last = None;
        for &(zc, flag) in tries {
            match Self::open_with(iface, queue, cfg, &info, zc, flag) {
                Ok(q) => return Ok(q),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one mode is tried"))
    }

    fn open_with(
        iface: &str,
        queue: u32,
        cfg: &XskConfig,
        info: &IfInfo,
        zero_copy: bool,
        mode: u16,
    ) -> Result<XskQueue, XskError> {
        let frames = cfg.frames();
        let area = Area::new(frames as usize * cfg.frame_size as usize)?;
        let ucfg = UmemConfig {
            fill_size: cfg.fill_size,
            complete_size: cfg.comp_size,
            frame_size: cfg.frame_size,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: `area` is page aligned, `frames * frame_size` bytes long, and outlives the
        // UMEM (it is dropped after it, see the field order of `XskQueue`).
        let umem = unsafe { Umem::new(ucfg, area.as_slice_ptr()) }
            .map_err(|e| sock_err("UMEM registration", iface, queue, e))?;
        let socket =
            Socket::with_shared(info, &umem).map_err(|e| sock_err("socket", iface, queue, e))?;
        let device = umem
            .fq_cq(&socket)
            .map_err(|e| sock_err("fill/completion rings", iface, queue, e))?;
        let need_wakeup = if cfg.busy_poll {
            0
        } else {
            SocketConfig::XDP_BIND_NEED_WAKEUP
        };
        let scfg = SocketConfig {
            rx_size: NonZeroU32::new(cfg.rx_size),
            tx_size: NonZeroU32::new(cfg.tx_size),
            bind_flags: mode | need_wakeup,
        };
        let rxtx = umem
            .rx_tx(&socket, &scfg)
            .map_err(|e| sock_err("RX/TX rings", iface, queue, e))?;
        let rx = rxtx
            .map_rx()
            .map_err(|e| sock_err("mapping the RX ring", iface, queue, e))?;
        let tx = rxtx
            .map_tx()
            .map_err(|e| sock_err("mapping the TX ring", iface, queue, e))?;
        umem.bind(&rxtx).map_err(|e| {
            sock_err(
                if zero_copy {
                    "bind (zero-copy)"
                } else {
                    "bind (copy)"
                },
                iface,
                queue,
                e,
            )
        })?;
        let free = (0..u64::from(frames))
            .rev()
            .map(|i| i * u64::from(cfg.frame_size))
            .collect();
        let mut q = XskQueue {
            rx,
            tx,
            device,
            _socket: socket,
            _umem: umem,
            area,
            free,
            frame_size: u64::from(cfg.frame_size),
            queue,
            zero_copy,
            cfg: cfg.clone(),
            stats: Arc::new(XskStats::default()),
            stats_read: std::time::Instant::now(),
        };
        q.refill();
        Ok(q)
    }

    /// The socket's file descriptor (for the XDP program's `XSKMAP`).
    pub fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// The queue.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// True when bound in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// This socket's counters.
    pub fn stats(&self) -> Arc<XskStats> {
        Arc::clone(&self.stats)
    }

    fn chunk(&self, addr: u64) -> u64 {
        addr - addr % self.frame_size
    }

    /// Returns transmitted frames to the free list and tops up the fill ring.
    fn refill(&mut self) {
        self.reap_completions();
        if self.free.is_empty() {
            return;
        }
        let n = {
            let mut fill = self.device.fill(self.free.len() as u32);
            let n = fill.insert(self.free.iter().rev().copied()) as usize;
            fill.commit();
            n
        };
        self.free.truncate(self.free.len() - n);
    }

    /// Returns the frames the kernel finished transmitting to the free list.
    fn reap_completions(&mut self) {
        let fs = self.frame_size;
        let mut done = self.device.complete(self.cfg.comp_size);
        while let Some(addr) = done.read() {
            self.free.push(addr - addr % fs);
        }
        done.release();
    }

    /// Puts `replies` on the TX ring and makes the kernel send them. In copy mode the kernel
    /// transmits only inside `sendto(2)`, at most 32 frames per call, so this kicks until it
    /// took them all (bounded), reaping completions in between so the completion ring never
    /// stalls transmission. Replies that still find no room are counted in `tx_ring_full`.
    fn transmit(&mut self, replies: &[XdpDesc]) {
        const MAX_KICKS: u32 = 64;
        let mut rest = replies;
        let mut kicks = 0;
        loop {
            if !rest.is_empty() {
                let n = {
                    let mut w = self.tx.transmit(rest.len() as u32);
                    let n = w.insert(rest.iter().copied()) as usize;
                    w.commit();
                    n
                };
                self.stats.tx.add(n as u64);
                rest = &rest[n..];
            }
            let wanted = if self.zero_copy {
                self.tx.needs_wakeup()
            } else {
                self.tx.pending() > 0
            };
            if (!wanted && rest.is_empty()) || kicks == MAX_KICKS {
                break;
            }
            if wanted {
                self.tx.wake();
                self.stats.wakeups.add(1);
            }
            kicks += 1;
            self.reap_completions();
        }
        for r in rest {
            self.stats.tx_ring_full.add(1);
            let c = self.chunk(r.addr);
            self.free.push(c);
        }
    }

    /// The writable bytes of the frame at `addr`: from the frame's start to its chunk's end.
    ///
    /// # Safety
    /// The caller must own the frame: it came off the RX ring and is on no ring now.
    unsafe fn frame_mut(&mut self, addr: u64) -> &mut [u8] {
        let end = self.chunk(addr) + self.frame_size;
        // SAFETY: `addr..end` lies inside the UMEM area (the kernel only hands out addresses of
        // our chunks, and `end` is the end of that chunk); the caller owns the frame, so nothing
        // else reads or writes these bytes while the slice lives.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.area.ptr.as_ptr().add(addr as usize),
                (end - addr) as usize,
            )
        }
    }

    /// Copies the kernel's drop counters of this socket (`XDP_STATISTICS`) into the stats:
    /// frames the XDP program redirected here that never reached the RX ring. One
    /// `getsockopt(2)`; called when idle (at most every 100 ms, so a lightly loaded queue that
    /// wakes for every few frames does not pay a second syscall per wakeup), every few thousand
    /// batches and at the end.
    fn read_kernel_stats(&self) {
        if let Ok(k) = self.device.statistics_v2() {
            self.stats.kernel_rx_dropped.set(k.rx_dropped);
            self.stats.kernel_rx_ring_full.set(k.rx_ring_full);
            self.stats
                .kernel_fill_ring_empty
                .set(k.rx_fill_ring_empty_descs);
        }
    }

    fn wait_for_rx(&mut self) {
        if self.cfg.busy_poll {
            core::hint::spin_loop();
            return;
        }
        if self.stats_read.elapsed() >= std::time::Duration::from_millis(100) {
            self.read_kernel_stats();
            self.stats_read = std::time::Instant::now();
        }
        let mut p = libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut p, 1, 100) };
        self.stats.wakeups.add(1);
    }

    /// Runs the queue until `stop` is set: batches from the RX ring through `pipeline` against
    /// one snapshot of `tables` each, replies on the TX ring. `clock` gives the time in ns.
    pub fn run(
        mut self,
        mut pipeline: Pipeline,
        tables: Arc<SharedTables>,
        stop: Arc<AtomicBool>,
        clock: impl Fn() -> u64,
    ) -> Pipeline {
        tables.register_reader();
        let batch = self.cfg.batch.clamp(1, 256);
        let mut descs: Vec<XdpDesc> = Vec::with_capacity(batch);
        let mut replies: Vec<XdpDesc> = Vec::with_capacity(batch);
        let mut batches = 0u32;
        while !stop.load(Ordering::Relaxed) {
            self.refill();
            descs.clear();
            {
                let mut r = self.rx.receive(batch as u32);
                while let Some(d) = r.read() {
                    descs.push(d);
                }
                r.release();
            }
            if descs.is_empty() {
                if self.device.needs_wakeup() || !self.cfg.busy_poll {
                    self.wait_for_rx();
                }
                // An idle queue runs the newest configuration too (it wakes at least every
                // 100 ms): say so, so that a change is known to be live everywhere.
                pipeline
                    .stats_ref()
                    .tables_version
                    .set(tables.load().version());
                continue;
            }
            self.stats.rx.add(descs.len() as u64);
            batches = batches.wrapping_add(1);
            if batches.is_multiple_of(4096) {
                self.read_kernel_stats();
            }
            let now = clock();
            let snapshot = tables.load();
            pipeline.stats_ref().tables_version.set(snapshot.version());
            pipeline.begin_batch(now);
            replies.clear();
            for &d in &descs {
                // SAFETY: `d` came off the RX ring just now and is on no ring.
                let buf = unsafe { self.frame_mut(d.addr) };
                let o = pipeline.process(&snapshot, now, buf, d.len as usize);
                if o.verdict() == Verdict::Tx {
                    replies.push(XdpDesc {
                        addr: d.addr,
                        len: o.tx_len as u32,
                        options: 0,
                    });
                } else {
                    let c = self.chunk(d.addr);
                    self.free.push(c);
                }
            }
            pipeline.end_batch();
            drop(snapshot);
            if !replies.is_empty() {
                self.transmit(&replies);
            }
        }
        self.read_kernel_stats();
        pipeline
    }
}

/// The RX queues of `iface` (from `/sys/class/net/IF/queues`), at least 1.
pub fn rx_queues(iface: &str) -> usize {
    std::fs::read_dir(format!("/sys/class/net/{iface}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

/// The MTU of `iface`, if it can be read.
pub fn mtu(iface: &str) -> Option<u16> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}
