//! The TCP relay between a client socket and an origin socket: both directions at once,
//! half-close aware, with an idle timeout, a drain deadline, bounded buffers (a slow side makes
//! the relay wait, never buffer more) and byte counts; `splice(2)` through a pipe when asked
//! (the bytes never cross into userspace), a copy loop otherwise.
//!
//! Each direction alternates: take what the source has (up to the buffer, waiting until it has
//! something), then write all of it to the destination (waiting while it cannot take more). A
//! source's end of stream becomes a `shutdown(SHUT_WR)` of the destination once everything
//! before it was written; the relay ends when both directions ended, one side failed, the
//! connection was idle too long, or its drain deadline passed.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fastpath::worker::events::status;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::repair::{reset, shutdown_write};
use crate::stats::AppCounters;

/// Which side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client.
    Client,
    /// The origin (or CDN pool member).
    Origin,
}

/// How a relay ended.
#[derive(Debug)]
pub enum End {
    /// Both directions reached their end of stream.
    Normal,
    /// Idle in both directions for the idle timeout.
    Idle,
    /// The drain deadline of a removed or moved app passed.
    Drained,
    /// The client's address is now blocked by the access rules.
    Filtered,
    /// A side failed (a RST included).
    Failed(Side, io::Error),
}

impl End {
    /// The Spectrum event log's status code.
    pub fn status(&self) -> u16 {
        let code = |e: &io::Error| e.raw_os_error().unwrap_or(0);
        match self {
            End::Normal | End::Idle | End::Drained => status::NORMAL_CLOSE,
            End::Filtered => status::FIREWALL_DENY,
            End::Failed(Side::Client, e) => match code(e) {
                libc::ECONNRESET => status::CLIENT_RESET,
                libc::ETIMEDOUT => status::CLIENT_TIMEOUT,
                libc::EPIPE => status::CLIENT_EPIPE,
                libc::EHOSTUNREACH => status::CLIENT_UNREACHABLE,
                _ => status::CLIENT_REFUSED,
            },
            End::Failed(Side::Origin, e) => match code(e) {
                libc::ECONNRESET => status::ORIGIN_RESET,
                libc::ETIMEDOUT => status::ORIGIN_TIMEOUT,
                libc::EHOSTUNREACH => status::ORIGIN_KEEPALIVE,
                libc::EPIPE => status::ORIGIN_EPIPE,
                _ => status::ORIGIN_IO,
            },
        }
    }
}

/// The relay's view of the world: limits, counters, and the signals that end it early.
#[derive(Debug, Clone)]
pub struct RelayParams {
    /// Bytes buffered per direction (half of `buffer_bytes`).
    pub buffer: usize,
    /// Use `splice(2)`.
    pub splice: bool,
    /// Idle timeout.
    pub idle: Duration,
}

/// Counters a relay updates as it goes.
#[derive(Debug, Clone)]
pub struct RelayCounters {
    /// The app's counters.
    pub app: Arc<AppCounters>,
    /// The worker's payload bytes from clients.
    pub ingress: Arc<AtomicU64>,
    /// The worker's payload bytes to clients.
    pub egress: Arc<AtomicU64>,
    /// The worker's back-pressure waits.
    pub backpressure: Arc<AtomicU64>,
}

/// Set from outside to end a relay early: a drain deadline, or a close for the access rules.
#[derive(Debug, Default)]
pub struct Control {
    /// Close when this passes.
    pub deadline: Cell<Option<Instant>>,
    /// Close now with status 403.
    pub filtered: Cell<bool>,
    /// Wakes the relay to look at the two fields above.
    pub wake: tokio::sync::Notify,
}

/// A non-blocking pipe for `splice(2)`.
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
}

impl Pipe {
    fn new(size: usize) -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` is a live array of two descriptors for the kernel to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned only here.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: plain fcntl on a descriptor we own. Failure keeps the default size (64 KiB).
        unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
        Ok(Pipe { r, w })
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: plain system call on descriptors the caller keeps open; no offsets.
    let n = unsafe {
        libc::splice(
            from,
            core::ptr::null_mut(),
            to,
            core::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One direction's buffer: a pipe or memory.
enum Buffer {
    Pipe(Pipe),
    Memory(Vec<u8>),
}

/// Moves bytes from `src` to `dst` until `src` ends (then half-closes `dst`) or a side fails.
#[allow(clippy::too_many_arguments)]
async fn pump(
    src: &TcpStream,
    dst: &TcpStream,
    (src_side, dst_side): (Side, Side),
    mut buf: Buffer,
    cap: usize,
    bytes: &dyn Fn(u64),
    waited: &dyn Fn(),
    activity: &Cell<Instant>,
) -> Result<(), (Side, io::Error)> {
    let (sfd, dfd) = (src.as_raw_fd(), dst.as_raw_fd());
    loop {
        // Take what the source has.
        src.readable().await.map_err(|e| (src_side, e))?;
        let got = match &mut buf {
            Buffer::Pipe(p) => src.try_io(Interest::READABLE, || splice(sfd, p.w.as_raw_fd(), cap)),
            Buffer::Memory(m) => src.try_read(&mut m[..cap]),
        };
        let mut held = match got {
            Ok(0) => {
                shutdown_write(dst);
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err((src_side, e)),
        };
        activity.set(Instant::now());
        // Write all of it.
        let mut off = 0;
        while held > 0 {
            let put = match &buf {
                Buffer::Pipe(p) => {
                    dst.try_io(Interest::WRITABLE, || splice(p.r.as_raw_fd(), dfd, held))
                }
                Buffer::Memory(m) => dst.try_write(&m[off..off + held]),
            };
            match put {
                Ok(n) => {
                    held -= n;
                    off += n;
                    bytes(n as u64);
                    activity.set(Instant::now());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    waited();
                    dst.writable().await.map_err(|e| (dst_side, e))?;
                }
                Err(e) => return Err((dst_side, e)),
            }
        }
    }
}

/// Relays between `client` and `origin` until the connection ends; returns how it ended and
/// the payload bytes each way (client to origin, origin to client). On a failure the other
/// side is reset, so that it knows data may be missing.
pub async fn relay(
    client: &TcpStream,
    origin: &TcpStream,
    p: &RelayParams,
    c: &RelayCounters,
    control: &Control,
) -> (End, u64, u64) {
    let cap = (p.buffer / 2).max(4096);
    let make = || -> Buffer {
        if p.splice
            && let Ok(pipe) = Pipe::new(cap)
        {
            return Buffer::Pipe(pipe);
        }
        Buffer::Memory(vec![0u8; cap])
    };
    let up_bytes = Rc::new(Cell::new(0u64));
    let down_bytes = Rc::new(Cell::new(0u64));
    let activity = Cell::new(Instant::now());
    let (ub, db) = (Rc::clone(&up_bytes), Rc::clone(&down_bytes));
    let up_count = move |n: u64| {
        ub.set(ub.get() + n);
        c.app.bytes_ingress.fetch_add(n, Ordering::Relaxed);
        c.ingress.fetch_add(n, Ordering::Relaxed);
    };
    let down_count = move |n: u64| {
        db.set(db.get() + n);
        c.app.bytes_egress.fetch_add(n, Ordering::Relaxed);
        c.egress.fetch_add(n, Ordering::Relaxed);
    };
    let waited = || {
        c.backpressure.fetch_add(1, Ordering::Relaxed);
    };
    let up = pump(
        client,
        origin,
        (Side::Client, Side::Origin),
        make(),
        cap,
        &up_count,
        &waited,
        &activity,
    );
    let down = pump(
        origin,
        client,
        (Side::Origin, Side::Client),
        make(),
        cap,
        &down_count,
        &waited,
        &activity,
    );
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    let end = loop {
        if up_done && down_done {
            break End::Normal;
        }
        if control.filtered.get() {
            break End::Filtered;
        }
        let deadline = control.deadline.get();
        if deadline.is_some_and(|d| d <= Instant::now()) {
            break End::Drained;
        }
        let idle_at = activity.get() + p.idle;
        if idle_at <= Instant::now() {
            break End::Idle;
        }
        let wake_at = deadline.map_or(idle_at, |d| d.min(idle_at));
        tokio::select! {
            r = &mut up, if !up_done => match r {
                Ok(()) => up_done = true,
                Err((side, e)) => break End::Failed(side, e),
            },
            r = &mut down, if !down_done => match r {
                Ok(()) => down_done = true,
                Err((side, e)) => break End::Failed(side, e),
            },
            () = control.wake.notified() => {}
            () = tokio::time::sleep_until(wake_at) => {}
        }
    };
    match &end {
        End::Failed(Side::Client, _) => reset(origin),
        End::Failed(Side::Origin, _) => reset(client),
        End::Filtered => {
            reset(client);
            reset(origin);
        }
        End::Normal | End::Idle | End::Drained => {}
    }
    (end, up_bytes.get(), down_bytes.get())
}

/// Writes all of `bytes` to `s` (the PROXY header), waiting as needed.
///
/// # Errors
/// The socket failed.
pub async fn write_all(s: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        s.writable().await?;
        match s.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
