//! The handoff: a TCP flow whose cookie ACK the fast path validated becomes a kernel socket
//! that starts *established*, through `TCP_REPAIR` (the mechanism CRIU restores live
//! connections with), with exactly the sequence numbers and options the cookie fixed:
//!
//! 1. `socket()`, `TCP_REPAIR` on (which also lets many flows share the edge port: repair mode
//!    binds with forced reuse), `IP_FREEBIND`, `bind(edge)`;
//! 2. the send queue's sequence number = the cookie + 1, the receive queue's = the client's
//!    ISN + 1 (`TCP_REPAIR_QUEUE`, `TCP_QUEUE_SEQ`, as 4-byte values);
//! 3. `connect(client)`: in repair mode it sends nothing and the socket is established;
//! 4. `TCP_REPAIR_OPTIONS`: the client's MSS, both window-scale shifts, SACK-permitted and
//!    timestamps, as the SYN-ACK announced them;
//! 5. `TCP_REPAIR_WINDOW`: the client's window from the ACK, ours from the SYN-ACK;
//! 6. `TCP_TIMESTAMP`: the TSval to send now (never below the SYN-ACK's, or the client's PAWS
//!    check would drop our segments);
//! 7. the payload that rode on the ACK, sent into the *receive* queue, as if received;
//! 8. `TCP_REPAIR` off: the socket is live (the kernel sends a window probe, and from then on
//!    ACKs, retransmits, does flow control, SACK and RTO itself).
//!
//! Needs `CAP_NET_ADMIN`, and the edge addresses must be local to the kernel ([`crate::routes`]).
//! The XDP program passes every later segment of the 4-tuple to the socket (it looks the tuple
//! up with `bpf_skc_lookup_tcp`); a segment that reached userspace before the socket existed is
//! put back into the kernel by [`Reinjector`].
//!
//! Known gaps: the ECN negotiated in the SYN-ACK cannot be given to a repaired socket (it will
//! not echo congestion marks); the client's timestamp to echo (`ts_recent`) is learned from its
//! next segment, so the window probe carries TSecr 0.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use fastpath::worker::Negotiated;

const TCP_REPAIR: libc::c_int = 19;
const TCP_REPAIR_QUEUE: libc::c_int = 20;
const TCP_QUEUE_SEQ: libc::c_int = 21;
const TCP_REPAIR_OPTIONS: libc::c_int = 22;
const TCP_TIMESTAMP: libc::c_int = 24;
const TCP_REPAIR_WINDOW: libc::c_int = 29;
const TCP_NO_QUEUE: u32 = 0;
const TCP_RECV_QUEUE: u32 = 1;
const TCP_SEND_QUEUE: u32 = 2;
const TCPOPT_MAXSEG: u32 = 2;
const TCPOPT_WINDOW: u32 = 3;
const TCPOPT_SACK_PERM: u32 = 4;
const TCPOPT_TIMESTAMP: u32 = 8;

/// `struct tcp_repair_opt`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RepairOpt {
    code: u32,
    val: u32,
}

/// `struct tcp_repair_window`.
#[repr(C)]
#[derive(Clone, Copy)]
struct RepairWindow {
    snd_wl1: u32,
    snd_wnd: u32,
    max_window: u32,
    rcv_wnd: u32,
    rcv_wup: u32,
}

/// Why a handoff failed. Each kind is counted apart; none is fatal: the segment is dropped and
/// the client's retransmission tries again.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// The 4-tuple is taken (a socket still holds it: `EADDRNOTAVAIL`, `EADDRINUSE`), at
    /// `step`.
    #[error("the 4-tuple is in use ({0}): {1}")]
    InUse(&'static str, #[source] io::Error),
    /// Out of kernel memory or buffers (`ENOMEM`, `ENOBUFS`).
    #[error("no memory: {0}")]
    NoMemory(#[source] io::Error),
    /// At the file descriptor limit (`EMFILE`, `ENFILE`).
    #[error("file descriptor limit: {0}")]
    FdLimit(#[source] io::Error),
    /// Another failure, at `step`.
    #[error("{step}: {source}")]
    Other {
        /// The call that failed.
        step: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl HandoffError {
    fn at(step: &'static str, e: io::Error) -> HandoffError {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => HandoffError::FdLimit(e),
            Some(libc::ENOMEM | libc::ENOBUFS) => HandoffError::NoMemory(e),
            Some(libc::EADDRNOTAVAIL | libc::EADDRINUSE) => HandoffError::InUse(step, e),
            _ => HandoffError::Other { step, source: e },
        }
    }
}

/// What the handoff makes a socket of.
#[derive(Debug, Clone, Copy)]
pub struct Handoff<'a> {
    /// The client (the socket's peer).
    pub client: SocketAddr,
    /// The edge address and port the client connected to (the socket's local address).
    pub edge: SocketAddr,
    /// What the handshake negotiated (from the cookie and the validating ACK).
    pub negotiated: &'a Negotiated,
    /// Payload that rode on the validating ACK.
    pub payload: &'a [u8],
    /// The edge's millisecond clock now (the SYN-ACK's TSval came from the same clock).
    pub now_ms: u32,
}

fn setsockopt<T: Copy>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a live `T` of `size_of::<T>()` bytes for the call's duration; the
    // kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn setsockopt_slice<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: &[T],
) -> io::Result<()> {
    // SAFETY: `v` is a live slice of `len * size_of::<T>()` bytes; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            v.as_ptr().cast(),
            core::mem::size_of_val(v) as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A `sockaddr_storage` for `a` and its length.
pub(crate) fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero `sockaddr_storage` is a valid value (AF_UNSPEC).
    let mut ss: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
    match a {
        SocketAddr::V4(v) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and suitably aligned for
            // `sockaddr_in`.
            unsafe { core::ptr::write((&raw mut ss).cast::<libc::sockaddr_in>(), sin) };
            (ss, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(v) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v.ip().octets(),
                },
                sin6_scope_id: v.scope_id(),
            };
            // SAFETY: `sockaddr_storage` is larger than and suitably aligned for
            // `sockaddr_in6`.
            unsafe { core::ptr::write((&raw mut ss).cast::<libc::sockaddr_in6>(), sin6) };
            (ss, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// A new socket of `family` and `kind`, non-blocking and close-on-exec.
pub(crate) fn socket(
    family: libc::c_int,
    kind: libc::c_int,
    proto: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: plain system call; the returned descriptor is checked and owned below.
    let fd = unsafe {
        libc::socket(
            family,
            kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            proto,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn family(a: &SocketAddr) -> libc::c_int {
    if a.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

/// Sets `IP_FREEBIND` (or `IPV6_FREEBIND`) and, with `reuse`, `SO_REUSEADDR`, then binds `fd`
/// to `local`.
pub(crate) fn bind_free(fd: RawFd, local: SocketAddr, reuse: bool) -> io::Result<()> {
    let one: libc::c_int = 1;
    if local.is_ipv4() {
        setsockopt(fd, libc::SOL_IP, libc::IP_FREEBIND, &one)?;
    } else {
        setsockopt(fd, libc::SOL_IPV6, libc::IPV6_FREEBIND, &one)?;
    }
    if reuse {
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one)?;
    }
    let (ss, len) = sockaddr(local);
    // SAFETY: `ss` holds a valid address of `len` bytes.
    if unsafe { libc::bind(fd, (&raw const ss).cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The TSval the new socket sends now: the clock, but never at or below the SYN-ACK's (which
/// carried the client's wishes in its low bits, so it may be a little ahead of the clock).
pub fn tsval_now(now_ms: u32, syn_ack_tsval: u32) -> u32 {
    if (now_ms.wrapping_sub(syn_ack_tsval) as i32) > 0 {
        now_ms
    } else {
        syn_ack_tsval.wrapping_add(1)
    }
}

/// Makes `h` an established kernel socket (see the module docs), non-blocking.
///
/// # Errors
/// [`HandoffError`]: the kind says which counter it goes to. Nothing is left behind: a socket
/// made halfway is closed (in repair mode, so it sends nothing).
pub fn handoff(h: &Handoff<'_>) -> Result<TcpStream, HandoffError> {
    Repairing::new(h)?.finish()
}

/// A socket made from a handoff, still in repair mode (steps 1 to 7): it has sent nothing and
/// sends nothing until [`Repairing::finish`]. Dropping it closes it silently.
#[derive(Debug)]
pub struct Repairing(OwnedFd);

impl Repairing {
    /// Steps 1 to 7 of the module docs.
    ///
    /// # Errors
    /// As [`handoff`].
    pub fn new(h: &Handoff<'_>) -> Result<Repairing, HandoffError> {
        repair(h).map(Repairing)
    }

    /// Step 8: leaves repair mode; the socket is live.
    ///
    /// # Errors
    /// [`HandoffError::Other`] when the kernel refuses (the socket is closed silently).
    pub fn finish(self) -> Result<TcpStream, HandoffError> {
        let raw = self.0.as_raw_fd();
        setsockopt(raw, libc::SOL_TCP, TCP_REPAIR_QUEUE, &TCP_NO_QUEUE)
            .map_err(|e| HandoffError::at("TCP_REPAIR_QUEUE", e))?;
        let off: libc::c_int = 0;
        setsockopt(raw, libc::SOL_TCP, TCP_REPAIR, &off)
            .map_err(|e| HandoffError::at("TCP_REPAIR off", e))?;
        Ok(TcpStream::from(self.0))
    }
}

fn repair(h: &Handoff<'_>) -> Result<OwnedFd, HandoffError> {
    let n = h.negotiated;
    let fd =
        socket(family(&h.edge), libc::SOCK_STREAM, 0).map_err(|e| HandoffError::at("socket", e))?;
    let raw = fd.as_raw_fd();
    let on: libc::c_int = 1;
    let step = |s: &'static str, r: io::Result<()>| r.map_err(|e| HandoffError::at(s, e));
    step(
        "TCP_REPAIR",
        setsockopt(raw, libc::SOL_TCP, TCP_REPAIR, &on),
    )?;
    // Repair mode binds with SK_FORCE_REUSE: the edge port is shared by every flow and by the
    // TIME_WAIT sockets of closed ones. SO_REUSEADDR here would replace that with a plain
    // reuse that TIME_WAIT sockets (which leave repair mode without any) conflict with.
    step("bind", bind_free(raw, h.edge, false))?;
    let snd_nxt = n.edge_isn.wrapping_add(1);
    let rcv_nxt = n.client_isn.wrapping_add(1);
    step(
        "TCP_REPAIR_QUEUE",
        setsockopt(raw, libc::SOL_TCP, TCP_REPAIR_QUEUE, &TCP_SEND_QUEUE),
    )?;
    step(
        "TCP_QUEUE_SEQ",
        setsockopt(raw, libc::SOL_TCP, TCP_QUEUE_SEQ, &snd_nxt),
    )?;
    step(
        "TCP_REPAIR_QUEUE",
        setsockopt(raw, libc::SOL_TCP, TCP_REPAIR_QUEUE, &TCP_RECV_QUEUE),
    )?;
    step(
        "TCP_QUEUE_SEQ",
        setsockopt(raw, libc::SOL_TCP, TCP_QUEUE_SEQ, &rcv_nxt),
    )?;
    let (ss, len) = sockaddr(h.client);
    // SAFETY: `ss` holds a valid address of `len` bytes.
    if unsafe { libc::connect(raw, (&raw const ss).cast(), len) } != 0 {
        return Err(HandoffError::at("connect", io::Error::last_os_error()));
    }
    let mut opts = [RepairOpt { code: 0, val: 0 }; 4];
    let mut k = 0;
    opts[k] = RepairOpt {
        code: TCPOPT_MAXSEG,
        val: u32::from(n.mss),
    };
    k += 1;
    if let (Some(c), Some(e)) = (n.client_wscale, n.edge_wscale) {
        opts[k] = RepairOpt {
            code: TCPOPT_WINDOW,
            val: u32::from(c.min(14)) | (u32::from(e.min(14)) << 16),
        };
        k += 1;
    }
    if n.sack_perm {
        opts[k] = RepairOpt {
            code: TCPOPT_SACK_PERM,
            val: 0,
        };
        k += 1;
    }
    if n.ts_recent.is_some() {
        opts[k] = RepairOpt {
            code: TCPOPT_TIMESTAMP,
            val: 0,
        };
        k += 1;
    }
    step(
        "TCP_REPAIR_OPTIONS",
        setsockopt_slice(raw, libc::SOL_TCP, TCP_REPAIR_OPTIONS, &opts[..k]),
    )?;
    let client_shift = n.client_wscale.map_or(0, |s| s.min(14));
    let snd_wnd = u32::from(n.client_window) << client_shift;
    let w = RepairWindow {
        snd_wl1: rcv_nxt,
        snd_wnd,
        max_window: snd_wnd,
        rcv_wnd: u32::from(n.edge_window),
        rcv_wup: rcv_nxt,
    };
    step(
        "TCP_REPAIR_WINDOW",
        setsockopt(raw, libc::SOL_TCP, TCP_REPAIR_WINDOW, &w),
    )?;
    if n.ts_recent.is_some() {
        let ts = tsval_now(h.now_ms, n.ts_ecr);
        step(
            "TCP_TIMESTAMP",
            setsockopt(raw, libc::SOL_TCP, TCP_TIMESTAMP, &ts),
        )?;
    }
    if !h.payload.is_empty() {
        step(
            "TCP_REPAIR_QUEUE",
            setsockopt(raw, libc::SOL_TCP, TCP_REPAIR_QUEUE, &TCP_RECV_QUEUE),
        )?;
        let mut sent = 0;
        while sent < h.payload.len() {
            let rest = &h.payload[sent..];
            // SAFETY: `rest` is a live slice; the kernel copies it into the receive queue.
            let r = unsafe { libc::send(raw, rest.as_ptr().cast(), rest.len(), 0) };
            if r <= 0 {
                return Err(HandoffError::at(
                    "send (receive queue)",
                    io::Error::last_os_error(),
                ));
            }
            sent += r as usize;
        }
    }
    Ok(fd)
}

/// Closes `s` with a RST (`SO_LINGER` 0): for a client whose origin cannot be reached, or a
/// connection over a limit.
pub fn reset(s: &impl AsRawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, &l);
}

/// Half-closes `s` for writing (our FIN after the peer's data ended).
pub fn shutdown_write(s: &impl AsRawFd) {
    // SAFETY: plain system call on a descriptor the caller keeps open.
    unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_WR) };
}

/// Puts IP packets back into the local kernel stack through raw sockets (`IPPROTO_RAW`,
/// header included): a segment that reached userspace before its flow's socket existed is
/// delivered to that socket over the loopback path, as if the XDP program had passed it. Only
/// ever used for flows this worker just handed off.
#[derive(Debug)]
pub struct Reinjector {
    v4: OwnedFd,
    v6: OwnedFd,
}

impl Reinjector {
    /// Opens the two raw sockets.
    ///
    /// # Errors
    /// No `CAP_NET_RAW`, or no descriptors.
    pub fn new() -> io::Result<Reinjector> {
        Ok(Reinjector {
            v4: socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW)?,
            v6: socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_RAW)?,
        })
    }

    /// Delivers `ip` (a whole IP packet) to its destination `dst`, a local address.
    ///
    /// # Errors
    /// The kernel refused it (`EAGAIN` when the socket buffer is full, among others).
    pub fn send(&self, ip: &[u8], dst: IpAddr) -> io::Result<()> {
        let fd = if dst.is_ipv4() { &self.v4 } else { &self.v6 };
        let (ss, len) = sockaddr(SocketAddr::new(dst, 0));
        // SAFETY: `ip` is a live slice and `ss` a valid address of `len` bytes.
        let r = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                ip.as_ptr().cast(),
                ip.len(),
                0,
                (&raw const ss).cast(),
                len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Test support: whether this process may run the root-only tests, and a thread in a fresh
/// network namespace of its own for them.
#[cfg(test)]
pub(crate) mod testns {
    /// True when running as root; otherwise prints a loud skip (or fails under
    /// `FASTPATH_REQUIRE_PRIVILEGED=1`, as in CI).
    pub fn privileged(test: &str) -> bool {
        // SAFETY: plain system call.
        if unsafe { libc::geteuid() } == 0 {
            return true;
        }
        let msg = format!("SKIPPED {test}: needs root (CAP_NET_ADMIN) for TCP_REPAIR");
        assert!(
            std::env::var("FASTPATH_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
            "{msg} (FASTPATH_REQUIRE_PRIVILEGED=1)"
        );
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "\n!!!!!!!! {msg} !!!!!!!!\n");
        false
    }

    /// Runs `f` on a thread that moved into a new network namespace with its loopback up (the
    /// namespace goes away with the thread).
    pub fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(move || {
            // SAFETY: plain system call; it changes only this thread's namespace.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
            let up = std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .expect("ip");
            assert!(up.success());
            f()
        })
        .join()
        .expect("the namespace thread")
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn the_timestamp_never_goes_back() {
        assert_eq!(tsval_now(1000, 900), 1000);
        assert_eq!(tsval_now(1000, 1000), 1001);
        assert_eq!(
            tsval_now(1000, 1040),
            1041,
            "the SYN-ACK's wishes bits ran ahead"
        );
        assert_eq!(tsval_now(5, u32::MAX - 3), 5, "across the wrap");
    }

    #[test]
    fn errors_go_to_their_counters() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert!(matches!(
            HandoffError::at("x", e(libc::EMFILE)),
            HandoffError::FdLimit(_)
        ));
        assert!(matches!(
            HandoffError::at("x", e(libc::ENOBUFS)),
            HandoffError::NoMemory(_)
        ));
        assert!(matches!(
            HandoffError::at("x", e(libc::EADDRNOTAVAIL)),
            HandoffError::InUse("x", _)
        ));
        assert!(matches!(
            HandoffError::at("x", e(libc::EPERM)),
            HandoffError::Other { step: "x", .. }
        ));
    }

    fn negotiated(client_isn: u32, edge_isn: u32) -> Negotiated {
        Negotiated {
            mss: 1400,
            client_wscale: Some(7),
            edge_wscale: Some(9),
            sack_perm: true,
            ecn: false,
            ts_recent: Some(1),
            client_isn,
            edge_isn,
            client_window: 502,
            edge_window: 65535,
            ts_ecr: 0,
        }
    }

    /// Two handed-off sockets that are each other's peer on loopback: established at once,
    /// the injected payload first in the receive queue, then data both ways.
    #[test]
    fn a_repaired_pair_talks_on_loopback() {
        if !testns::privileged("a_repaired_pair_talks_on_loopback") {
            return;
        }
        testns::in_new_netns(|| {
            let a_addr: SocketAddr = "127.0.0.1:40001".parse().unwrap();
            let b_addr: SocketAddr = "127.0.0.1:40002".parse().unwrap();
            let now = 1_000_000;
            // A got "first" from B with the validating ACK: B's stream starts after it.
            let na = negotiated(1000, 5000);
            let nb = Negotiated {
                client_wscale: Some(9),
                edge_wscale: Some(7),
                ..negotiated(5000, 1000 + 5)
            };
            // Both are made before either goes live: a live socket's window probe to a peer
            // that does not exist yet would get a RST.
            let a = Repairing::new(&Handoff {
                client: b_addr,
                edge: a_addr,
                negotiated: &na,
                payload: b"first",
                now_ms: now,
            })
            .unwrap();
            let b = Repairing::new(&Handoff {
                client: a_addr,
                edge: b_addr,
                negotiated: &nb,
                payload: b"",
                now_ms: now,
            })
            .unwrap();
            let (a, b) = (a.finish().unwrap(), b.finish().unwrap());
            for s in [&a, &b] {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .unwrap();
            }
            assert_eq!(a.peer_addr().unwrap(), b_addr);
            let mut buf = [0u8; 5];
            (&a).read_exact(&mut buf).unwrap();
            assert_eq!(
                &buf, b"first",
                "the payload of the validating ACK comes first"
            );
            (&b).write_all(b"hello").unwrap();
            (&a).read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"hello");
            let big = vec![7u8; 1 << 20];
            let w = std::thread::spawn({
                let a = a.try_clone().unwrap();
                move || (&a).write_all(&big).unwrap()
            });
            let mut got = vec![0u8; 1 << 20];
            (&b).read_exact(&mut got).unwrap();
            w.join().unwrap();
            assert!(got.iter().all(|&x| x == 7), "a megabyte the other way");
            // The same tuple again while it is taken: in use, nothing left behind.
            let again = handoff(&Handoff {
                client: b_addr,
                edge: a_addr,
                negotiated: &na,
                payload: b"",
                now_ms: now,
            });
            assert!(
                matches!(again, Err(HandoffError::InUse("connect", _))),
                "{again:?}"
            );
        });
    }
}
