//! Spectrum UDP: flows per client 4-tuple, each with a socket of its own towards the origin
//! (connected, so only the origin's datagrams come back on it), an idle timeout, and replies
//! to the client from the edge address and port (a socket bound there with `IP_FREEBIND`; the
//! XDP program never passes the clients' datagrams to the kernel, so it receives nothing).
//!
//! - `simple`: the 38-byte Simple Proxy Protocol header goes in front of every datagram to the
//!   origin; every datagram back must carry a valid one naming this flow's client and edge
//!   address, which is stripped; one without is dropped and counted (`spp_invalid`).
//! - `v2`: a PROXY v2 header (DGRAM) in front of the flow's first datagram only.
//! - `off`: datagrams as they are.

use std::cell::Cell;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;

use fastpath::tables::ProxyProtocol;
use tokio::time::Instant;

use crate::header::{SPP_LEN, Transport, proxy_v2, spp_decode, spp_encode};
use crate::stats::AppCounters;

/// One UDP flow.
#[derive(Debug)]
pub struct UdpFlow {
    /// The socket towards the origin (connected to it), for the replies.
    pub sock: tokio::net::UdpSocket,
    /// The same socket, to send on at once (a non-blocking `send(2)`; tokio's `try_send` on a
    /// socket it has not polled yet would report it not ready).
    pub send: UdpSocket,
    /// The client.
    pub client: SocketAddr,
    /// The edge address and port the client sent to.
    pub edge: SocketAddr,
    /// The origin.
    pub origin: SocketAddr,
    /// The header mode.
    pub mode: ProxyProtocol,
    /// Whether a datagram was sent yet (PROXY v2 goes on the first one only).
    pub sent_first: Cell<bool>,
    /// The last datagram either way.
    pub last: Cell<Instant>,
    /// Payload bytes from the client.
    pub bytes_in: Cell<u64>,
    /// Payload bytes to the client.
    pub bytes_out: Cell<u64>,
    /// Datagrams from the client.
    pub datagrams: Cell<u64>,
    /// When the flow started (wall clock, ns).
    pub started_ns: u64,
    /// The app's slot.
    pub app_slot: u32,
    /// The app's counters.
    pub app: Arc<AppCounters>,
    /// Closed from outside (drain, access rules): the reply task ends.
    pub control: Rc<crate::relay::Control>,
}

/// Opens the flow's socket towards `origin`: the runtime's handle (replies) and a plain one
/// (sends).
///
/// # Errors
/// Socket creation or `connect(2)` failed.
pub fn origin_socket(origin: SocketAddr) -> io::Result<(tokio::net::UdpSocket, UdpSocket)> {
    let any: SocketAddr = if origin.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(any)?;
    s.connect(origin)?;
    s.set_nonblocking(true)?;
    let send = s.try_clone()?;
    Ok((tokio::net::UdpSocket::from_std(s)?, send))
}

/// A socket bound to an edge address and port (`IP_FREEBIND`, `SO_REUSEADDR`, so every worker
/// has its own), for replies to clients.
///
/// # Errors
/// Socket creation or `bind(2)` failed.
pub fn edge_socket(edge: SocketAddr) -> io::Result<UdpSocket> {
    let fam = if edge.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let fd = crate::repair::socket(fam, libc::SOCK_DGRAM, 0)?;
    crate::repair::bind_free(fd.as_raw_fd(), edge, true)?;
    Ok(UdpSocket::from(fd))
}

impl UdpFlow {
    /// What goes to the origin for one client datagram, into `out`.
    pub fn to_origin<'a>(&self, payload: &[u8], out: &'a mut Vec<u8>) -> &'a [u8] {
        out.clear();
        match self.mode {
            ProxyProtocol::Simple => out.extend_from_slice(&spp_encode(self.client, self.edge)),
            ProxyProtocol::V2 if !self.sent_first.get() => {
                out.extend_from_slice(
                    proxy_v2(self.client, self.edge, Transport::Dgram).as_bytes(),
                );
            }
            _ => {}
        }
        self.sent_first.set(true);
        out.extend_from_slice(payload);
        out
    }

    /// What goes to the client for one origin datagram: `None` when a Simple Proxy Protocol
    /// flow's datagram lacks a valid header for this flow.
    pub fn to_client<'a>(&self, datagram: &'a [u8]) -> Option<&'a [u8]> {
        if self.mode != ProxyProtocol::Simple {
            return Some(datagram);
        }
        let (h, payload) = spp_decode(datagram).ok()?;
        (h.client == self.client && h.proxy == self.edge && datagram.len() >= SPP_LEN)
            .then_some(payload)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn flow(mode: ProxyProtocol) -> UdpFlow {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        let (sock, send) = origin_socket("127.0.0.1:9".parse().unwrap()).unwrap();
        UdpFlow {
            sock,
            send,
            client: "192.0.2.7:5000".parse().unwrap(),
            edge: "203.0.113.11:27015".parse().unwrap(),
            origin: "127.0.0.1:9".parse().unwrap(),
            mode,
            sent_first: Cell::new(false),
            last: Cell::new(Instant::now()),
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            datagrams: Cell::new(0),
            started_ns: 0,
            app_slot: 0,
            app: Arc::default(),
            control: Rc::default(),
        }
    }

    #[test]
    fn simple_proxy_protocol_both_ways() {
        let f = flow(ProxyProtocol::Simple);
        let mut out = Vec::new();
        let d = f.to_origin(b"ping", &mut out).to_vec();
        assert_eq!(d.len(), SPP_LEN + 4);
        assert_eq!(&d[..2], &[0x56, 0xec]);
        assert_eq!(
            f.to_client(&d),
            Some(&b"ping"[..]),
            "the origin echoes the header"
        );
        assert_eq!(f.to_client(b"pong without a header"), None);
        let mut other = spp_encode("192.0.2.8:5000".parse().unwrap(), f.edge).to_vec();
        other.extend_from_slice(b"x");
        assert_eq!(f.to_client(&other), None, "another client's header");
    }

    #[test]
    fn proxy_v2_on_the_first_datagram_only() {
        let f = flow(ProxyProtocol::V2);
        let mut out = Vec::new();
        let first = f.to_origin(b"a", &mut out).to_vec();
        assert_eq!(&first[..12], b"\r\n\r\n\0\r\nQUIT\n");
        assert_eq!(first[13], 0x12, "UDP over IPv4");
        assert_eq!(f.to_origin(b"b", &mut out), b"b");
        assert_eq!(f.to_client(b"reply"), Some(&b"reply"[..]));
    }
}
