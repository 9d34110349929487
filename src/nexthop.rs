//! The MAC of the next hop towards an address, asked of the kernel over `NETLINK_ROUTE`
//! (no `ip`, no `ping`): `RTM_GETROUTE` for the gateway (or the address itself when it is on
//! the link), then an `RTM_GETNEIGH` dump for its link-layer address. When the neighbour table
//! has no usable entry yet, one UDP datagram to the discard port of the hop, sent out of the
//! interface, makes the kernel send its ARP request or neighbour solicitation; the table is then
//! read again for up to two seconds.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// `NUD_INCOMPLETE | NUD_FAILED | NUD_NONE`: entries without a usable address.
const NUD_UNUSABLE: u16 = 0x01 | 0x20;

fn family(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink message: header, fixed body, attributes.
fn message(kind: u16, flags: u16, seq: u32, body: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = vec![0u8; NLMSG_HDR];
    m.extend_from_slice(body);
    m.resize(align4(m.len()), 0);
    for (t, v) in attrs {
        m.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        m.extend_from_slice(&t.to_ne_bytes());
        m.extend_from_slice(v);
        m.resize(align4(m.len()), 0);
    }
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&kind.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    m
}

/// The messages in a datagram: (type, payload after the header), checked for length.
fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDR {
            return None;
        }
        let len = u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDR || len > rest.len() {
            return None;
        }
        let kind = u16::from_ne_bytes(rest[4..6].try_into().ok()?);
        let body = &rest[NLMSG_HDR..len];
        rest = &rest[align4(len).min(rest.len())..];
        Some((kind, body))
    })
}

/// The attributes after a fixed body of `fixed` bytes: (type, value).
fn attrs(body: &[u8], fixed: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = body.get(align4(fixed)..).unwrap_or(&[]);
    std::iter::from_fn(move || {
        if rest.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        let v = &rest[4..len];
        rest = &rest[align4(len).min(rest.len())..];
        Some((kind, v))
    })
}

/// The error of an `NLMSG_ERROR` body (0 is an acknowledgement).
fn error_code(body: &[u8]) -> i32 {
    body.get(0..4)
        .and_then(|b| b.try_into().ok())
        .map_or(-libc::EIO, i32::from_ne_bytes)
}

/// `RTM_GETROUTE` for `dst`. (Not restricted to an interface: with `RTA_OIF` the kernel
/// answers even without a route, taking the destination as on the link.)
fn route_request(dst: IpAddr, seq: u32) -> Vec<u8> {
    let a = octets(dst);
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags (u32).
    let mut body = [0u8; 12];
    body[0] = family(dst);
    body[1] = (a.len() * 8) as u8;
    message(RTM_GETROUTE, NLM_F_REQUEST, seq, &body, &[(RTA_DST, &a)])
}

/// The next hop of a route reply (its gateway, or `dst` itself on the link) and the
/// interface it leaves through.
fn parse_route(buf: &[u8], dst: IpAddr) -> Result<(IpAddr, Option<u32>)> {
    for (kind, body) in messages(buf) {
        match kind {
            NLMSG_ERROR => {
                let e = error_code(body);
                bail!(
                    "no route to {dst}: {}",
                    io::Error::from_raw_os_error(-e.min(-1))
                );
            }
            RTM_NEWROUTE => {
                let mut hop = dst;
                let mut oif = None;
                for (t, v) in attrs(body, 12) {
                    match t {
                        RTA_GATEWAY => hop = ip_from(v).unwrap_or(dst),
                        RTA_OIF => oif = <[u8; 4]>::try_from(v).ok().map(u32::from_ne_bytes),
                        _ => {}
                    }
                }
                return Ok((hop, oif));
            }
            _ => {}
        }
    }
    bail!("no answer to the route request for {dst}")
}

/// `RTM_GETNEIGH` dump of one family.
fn neigh_request(fam: u8, seq: u32) -> Vec<u8> {
    // struct ndmsg: family, pad1, pad2 (u16), ifindex (i32), state (u16), flags, type.
    let mut body = [0u8; 12];
    body[0] = fam;
    message(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, &body, &[])
}

/// What one datagram of a neighbour dump says: the usable MAC of `hop` on `ifindex`, if any,
/// and whether the dump is over.
fn parse_neigh(buf: &[u8], ifindex: u32, hop: IpAddr) -> (Option<[u8; 6]>, bool) {
    let mut found = None;
    for (kind, body) in messages(buf) {
        match kind {
            NLMSG_DONE | NLMSG_ERROR => return (found, true),
            RTM_NEWNEIGH if body.len() >= 12 => {
                let idx = u32::from_ne_bytes(body[4..8].try_into().unwrap_or_default());
                let state = u16::from_ne_bytes([body[8], body[9]]);
                if idx != ifindex || state == 0 || state & NUD_UNUSABLE != 0 {
                    continue;
                }
                let mut dst = None;
                let mut mac = None;
                for (t, v) in attrs(body, 12) {
                    match t {
                        NDA_DST => dst = ip_from(v),
                        NDA_LLADDR => mac = <[u8; 6]>::try_from(v).ok(),
                        _ => {}
                    }
                }
                if dst == Some(hop) && mac.is_some() {
                    found = mac;
                }
            }
            _ => {}
        }
    }
    (found, false)
}

struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    fn open() -> Result<Netlink> {
        // SAFETY: socket() has no memory preconditions; the result is checked before use.
        #[allow(unsafe_code)]
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("opening a NETLINK_ROUTE socket");
        }
        // SAFETY: `fd` is a fresh socket that nothing else owns.
        #[allow(unsafe_code)]
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: `tv` lives across the call and its size is passed with it.
        #[allow(unsafe_code)]
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error()).context("setting a netlink timeout");
        }
        Ok(Netlink { fd, seq: 1 })
    }

    fn send(&mut self, msg: &[u8]) -> Result<()> {
        // SAFETY: a zeroed sockaddr_nl is valid (pid 0: the kernel).
        #[allow(unsafe_code)]
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `msg` and `to` outlive the call; their lengths are passed with them.
        #[allow(unsafe_code)]
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&raw const to).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error()).context("sending a netlink request");
        }
        self.seq += 1;
        Ok(())
    }

    fn recv<'a>(&self, buf: &'a mut [u8]) -> Result<&'a [u8]> {
        // SAFETY: `buf` is writable for its whole length, which is passed with it.
        #[allow(unsafe_code)]
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error()).context("reading a netlink answer");
        }
        Ok(&buf[..n as usize])
    }

    fn next_hop(&mut self, dst: IpAddr) -> Result<(IpAddr, Option<u32>)> {
        self.send(&route_request(dst, self.seq))?;
        let mut buf = vec![0u8; 32 * 1024];
        parse_route(self.recv(&mut buf)?, dst)
    }

    fn neighbour(&mut self, hop: IpAddr, ifindex: u32) -> Result<Option<[u8; 6]>> {
        self.send(&neigh_request(family(hop), self.seq))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut found = None;
        loop {
            let (m, done) = parse_neigh(self.recv(&mut buf)?, ifindex, hop);
            found = found.or(m);
            if done {
                return Ok(found);
            }
        }
    }
}

/// The index of interface `iface`.
///
/// # Errors
/// No such interface.
pub fn ifindex(iface: &str) -> Result<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .with_context(|| format!("no interface {iface}"))
}

/// The MAC of the next hop towards `dst` out of `iface`.
///
/// # Errors
/// No route to `dst`, a route through another interface, or no answer to the kernel's ARP/ND
/// request within two seconds.
pub fn next_hop_mac(iface: &str, dst: IpAddr) -> Result<[u8; 6]> {
    let idx = ifindex(iface)?;
    let mut nl = Netlink::open()?;
    let (hop, oif) = nl
        .next_hop(dst)
        .with_context(|| format!("looking up the route to {dst} (give --dst-mac to skip it)"))?;
    if oif.is_some_and(|o| o != idx) {
        bail!(
            "the route to {dst} leaves through interface #{}, not {iface} (#{idx}): add a route through {iface} or give --dst-mac",
            oif.unwrap_or_default()
        );
    }
    if let Some(m) = nl.neighbour(hop, idx)? {
        return Ok(m);
    }
    // Not resolved yet: one datagram makes the kernel ask (ARP or ND) on the interface.
    let bind: SocketAddr = match hop {
        IpAddr::V4(_) => "0.0.0.0:0".parse().expect("valid"),
        IpAddr::V6(_) => "[::]:0".parse().expect("valid"),
    };
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(bind),
        socket2::Type::DGRAM,
        None,
    )
    .context("opening a UDP socket to resolve the next hop")?;
    let _ = sock.bind_device(Some(iface.as_bytes()));
    let sock: UdpSocket = sock.into();
    let _ = sock.send_to(b"fastpath gen: resolving the next hop", (hop, 9));
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(m) = nl.neighbour(hop, idx)? {
            return Ok(m);
        }
    }
    bail!(
        "cannot resolve the MAC of next hop {hop} on {iface}: no answer to ARP/ND within 2 s; give --dst-mac"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neigh(ifindex: u32, state: u16, dst: IpAddr, mac: &[u8]) -> Vec<u8> {
        let mut body = [0u8; 12];
        body[0] = family(dst);
        body[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        body[8..10].copy_from_slice(&state.to_ne_bytes());
        let a = octets(dst);
        message(
            RTM_NEWNEIGH,
            0,
            1,
            &body,
            &[(NDA_DST, &a), (NDA_LLADDR, mac)],
        )
    }

    #[test]
    fn a_route_reply_gives_its_gateway_or_the_destination() {
        let dst: IpAddr = "203.0.113.10".parse().unwrap();
        let gw: IpAddr = "192.0.2.129".parse().unwrap();
        let mut body = [0u8; 12];
        body[0] = libc::AF_INET as u8;
        let g = octets(gw);
        let oif = 7u32.to_ne_bytes();
        let with = message(
            RTM_NEWROUTE,
            0,
            1,
            &body,
            &[(RTA_OIF, &oif), (RTA_GATEWAY, &g)],
        );
        assert_eq!(parse_route(&with, dst).unwrap(), (gw, Some(7)));
        let without = message(RTM_NEWROUTE, 0, 1, &body, &[(RTA_OIF, &oif)]);
        assert_eq!(parse_route(&without, dst).unwrap(), (dst, Some(7)));
        let err = message(NLMSG_ERROR, 0, 1, &(-libc::ENETUNREACH).to_ne_bytes(), &[]);
        let e = parse_route(&err, dst).unwrap_err().to_string();
        assert!(e.contains("no route to 203.0.113.10"), "{e}");
        // The request carries the destination.
        let req = route_request(dst, 1);
        let (kind, body) = messages(&req).next().unwrap();
        assert_eq!(kind, RTM_GETROUTE);
        let a: Vec<(u16, Vec<u8>)> = attrs(body, 12).map(|(t, v)| (t, v.to_vec())).collect();
        assert_eq!(a, vec![(RTA_DST, vec![203, 0, 113, 10])]);
    }

    #[test]
    fn a_neighbour_dump_gives_the_usable_mac_of_the_hop_on_the_interface() {
        let hop: IpAddr = "192.0.2.129".parse().unwrap();
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        let mac = [2, 0, 0, 0, 0, 9];
        let mut dump = Vec::new();
        dump.extend(neigh(7, 0x02, other, &[1; 6]));
        dump.extend(neigh(8, 0x02, hop, &[3; 6])); // other interface
        dump.extend(neigh(7, 0x04, hop, &mac)); // stale: still usable
        assert_eq!(parse_neigh(&dump, 7, hop), (Some(mac), false));
        dump.extend(message(NLMSG_DONE, 0, 1, &[0; 4], &[]));
        assert_eq!(parse_neigh(&dump, 7, hop), (Some(mac), true));
        // Incomplete and failed entries have no address to use.
        let bad = [neigh(7, 0x01, hop, &mac), neigh(7, 0x20, hop, &mac)].concat();
        assert_eq!(parse_neigh(&bad, 7, hop), (None, false));
        // A cut datagram never panics.
        for n in 0..dump.len() {
            let _ = parse_neigh(&dump[..n], 7, hop);
        }
    }
}
