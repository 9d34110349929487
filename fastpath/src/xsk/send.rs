//! A transmit-only AF_XDP socket for traffic generation (`fastpath gen`).
//!
//! The frames to send are copied once into the UMEM, one chunk each, and never written again:
//! the kernel only reads a chunk it transmits, so the same chunk may sit on the TX ring many
//! times at once. Sending is then nothing but descriptors: fill the TX ring from a cycling
//! index, wake the kernel, reap the completion ring. In copy mode the kernel transmits only
//! inside `sendto(2)` (at most 32 frames per call), so the loop wakes it whenever frames are
//! pending; in zero-copy mode only when the ring asks for it (`need_wakeup`).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingTx, Socket, SocketConfig, Umem, UmemConfig};

use super::{Area, XskError, ZeroCopy, sock_err};

/// The most distinct frames one sender holds (the UMEM is `frames × 2 KiB`).
pub const MAX_FRAMES: usize = 1 << 16;
const CHUNK: u32 = 2048;
const RING: u32 = 2048;

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// As fast as the link takes.
    Max,
    /// Packets per second.
    Pps(f64),
}

/// What a run of [`XskSender::send`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SendReport {
    /// Frames put on the TX ring.
    pub queued: u64,
    /// Frames the kernel reported transmitted (completion ring).
    pub completed: u64,
    /// Wake-ups of the kernel (`sendto(2)`).
    pub wakeups: u64,
    /// Seconds from the first frame to the last completion.
    pub seconds: f64,
}

/// A transmit-only AF_XDP socket on one queue of an interface, holding the frames it sends.
pub struct XskSender {
    // Field order is drop order: ring and socket before the UMEM, the UMEM before its memory.
    tx: RingTx,
    device: DeviceQueue,
    _socket: Socket,
    _umem: Umem,
    _area: Area,
    descs: Vec<XdpDesc>,
    zero_copy: bool,
}

impl core::fmt::Debug for XskSender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("XskSender")
            .field("frames", &self.descs.len())
            .field("zero_copy", &self.zero_copy)
            .finish_non_exhaustive()
    }
}

// SAFETY: the ring and the UMEM belong to this sender only; it is used from one thread at a time.
unsafe impl Send for XskSender {}

impl XskSender {
    /// Opens a transmit-only socket on `queue` of `iface` and copies `frames` into its UMEM.
    ///
    /// # Errors
    /// [`XskError`] with the failing step and what to try; [`XskError::Frames`] when there are
    /// no frames, too many, or one longer than a chunk.
    pub fn open(
        iface: &str,
        queue: u32,
        zero_copy: ZeroCopy,
        frames: &[Vec<u8>],
    ) -> Result<XskSender, XskError> {
        if frames.is_empty() || frames.len() > MAX_FRAMES {
            return Err(XskError::Frames(format!(
                "{} frames: give 1 to {MAX_FRAMES}",
                frames.len()
            )));
        }
        if let Some((i, f)) = frames
            .iter()
            .enumerate()
            .find(|(_, f)| f.len() < 14 || f.len() > CHUNK as usize)
        {
            return Err(XskError::Frames(format!(
                "frame {} is {} bytes: frames must be 14 to {CHUNK} bytes",
                i + 1,
                f.len()
            )));
        }
        let mut info = IfInfo::invalid();
        let name = CString::new(iface).map_err(|_| XskError::NoInterface(iface.to_string()))?;
        info.from_name(&name)
            .map_err(|_| XskError::NoInterface(iface.to_string()))?;
        info.set_queue(queue);
        let tries: &[(bool, u16)] = match zero_copy {
            ZeroCopy::On => &[(true, SocketConfig::XDP_BIND_ZEROCOPY)],
            ZeroCopy::Off => &[(false, SocketConfig::XDP_BIND_COPY)],
            ZeroCopy::Auto => &[
                (true, SocketConfig::XDP_BIND_ZEROCOPY),
                (false, SocketConfig::XDP_BIND_COPY),
            ],
        };
        // A socket closed just before (a previous run) is released by the kernel a moment
        // later; until then binding the queue says EBUSY. Wait for it, bounded.
        let started = std::time::Instant::now();
        loop {
            let mut last = None;
            for &(zc, flag) in tries {
                match Self::open_with(iface, queue, &info, zc, flag, frames) {
                    Ok(s) => return Ok(s),
                    Err(e) => last = Some(e),
                }
            }
            let e = last.expect("at least one mode is tried");
            let busy = matches!(e, XskError::Socket { code, .. } if code == libc::EBUSY);
            if !busy || started.elapsed() > Duration::from_secs(3) {
                return Err(e);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn open_with(
        iface: &str,
        queue: u32,
        info: &IfInfo,
        zero_copy: bool,
        mode: u16,
        frames: &[Vec<u8>],
    ) -> Result<XskSender, XskError> {
        // At least one ring's worth of chunks, so the UMEM is never smaller than the rings.
        let chunks = frames.len().max(RING as usize).next_power_of_two();
        let area = Area::new(chunks * CHUNK as usize)?;
        for (i, f) in frames.iter().enumerate() {
            // SAFETY: chunk `i` lies inside the area (`i < chunks`), `f` fits in a chunk
            // (checked in `open`), and nothing else references the area yet.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    f.as_ptr(),
                    area.ptr.as_ptr().add(i * CHUNK as usize),
                    f.len(),
                );
            }
        }
        let ucfg = UmemConfig {
            fill_size: RING,
            complete_size: RING,
            frame_size: CHUNK,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: `area` is page aligned, `chunks * CHUNK` bytes long, and outlives the UMEM
        // (field order of `XskSender`).
        let umem = unsafe { Umem::new(ucfg, area.as_slice_ptr()) }
            .map_err(|e| sock_err("UMEM registration", iface, queue, e))?;
        let socket =
            Socket::with_shared(info, &umem).map_err(|e| sock_err("socket", iface, queue, e))?;
        let device = umem
            .fq_cq(&socket)
            .map_err(|e| sock_err("fill/completion rings", iface, queue, e))?;
        let scfg = SocketConfig {
            rx_size: None,
            tx_size: NonZeroU32::new(RING),
            bind_flags: mode | SocketConfig::XDP_BIND_NEED_WAKEUP,
        };
        let rxtx = umem
            .rx_tx(&socket, &scfg)
            .map_err(|e| sock_err("TX ring", iface, queue, e))?;
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
        let descs = frames
            .iter()
            .enumerate()
            .map(|(i, f)| XdpDesc {
                addr: (i as u64) * u64::from(CHUNK),
                len: f.len() as u32,
                options: 0,
            })
            .collect();
        Ok(XskSender {
            tx,
            device,
            _socket: socket,
            _umem: umem,
            _area: area,
            descs,
            zero_copy,
        })
    }

    /// True when bound in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Sends the frames in turn, over and over, at `rate`, until `count` frames were queued
    /// (if given), `duration` passed (if given) or `stop` returns true (checked every batch);
    /// then waits (at most a second) for the kernel to complete what was queued.
    pub fn send(
        &mut self,
        rate: Rate,
        count: Option<u64>,
        duration: Option<Duration>,
        stop: &dyn Fn() -> bool,
    ) -> SendReport {
        const BATCH: u64 = 64;
        let mut r = SendReport::default();
        let mut next = 0usize;
        let start = Instant::now();
        let limit = count.unwrap_or(u64::MAX);
        loop {
            let elapsed = start.elapsed();
            if r.queued >= limit || duration.is_some_and(|d| elapsed >= d) || stop() {
                break;
            }
            let mut want = BATCH.min(limit - r.queued);
            if let Rate::Pps(pps) = rate {
                let allowed = (elapsed.as_secs_f64() * pps) as u64 + 1;
                want = want.min(allowed.saturating_sub(r.queued));
                if want == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                    continue;
                }
            }
            let n = {
                let descs = &self.descs;
                let mut w = self.tx.transmit(want as u32);
                let n = w.insert((0..want as usize).map(|i| descs[(next + i) % descs.len()]));
                w.commit();
                n
            };
            next = (next + n as usize) % self.descs.len();
            r.queued += u64::from(n);
            self.kick(&mut r);
            self.reap(&mut r);
        }
        // Drain: let the kernel finish what is on the ring.
        let drain = Instant::now();
        while r.completed < r.queued && drain.elapsed() < Duration::from_secs(1) {
            self.kick(&mut r);
            self.reap(&mut r);
        }
        r.seconds = start.elapsed().as_secs_f64();
        r
    }

    fn kick(&mut self, r: &mut SendReport) {
        let wanted = if self.zero_copy {
            self.tx.needs_wakeup()
        } else {
            self.tx.pending() > 0
        };
        if wanted {
            self.tx.wake();
            r.wakeups += 1;
        }
    }

    fn reap(&mut self, r: &mut SendReport) {
        let mut done = self.device.complete(RING);
        while done.read().is_some() {
            r.completed += 1;
        }
        done.release();
    }
}
