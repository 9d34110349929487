//! The headers that tell an origin who the client is: PROXY v1 (text), PROXY v2 (binary) and
//! the Simple Proxy Protocol (SPP) header of seed 003.
//!
//! Contract:
//!
//! - The encoders ([`proxy_v1`], [`proxy_v2`], [`spp_encode`]) never allocate and never fail:
//!   a PROXY header is built on the stack in a [`HeaderBuf`] (at most 107 bytes for v1, 52 for
//!   v2), an SPP header is a `[u8; 38]`. When the client and the proxy address are of different
//!   families, the IPv4 one is written as an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) and
//!   the IPv6 form of the header is used (`TCP6`, family `AF_INET6`). Flow labels and scope ids
//!   of IPv6 socket addresses are not carried by any of the formats and are dropped.
//! - The decoders ([`parse_proxy`], [`spp_decode`]) take untrusted bytes, never panic and never
//!   read past the header they report. Addresses that arrive as IPv4-mapped IPv6 come back as
//!   IPv4 socket addresses, so that what one side encodes the other side decodes to the same
//!   addresses whatever mix of families went in.
//!
//! Formats (HAProxy's `proxy-protocol.txt`, version 1.8, and Cloudflare's Spectrum docs):
//!
//! ```text
//! v1:  "PROXY" SP ("TCP4" | "TCP6") SP client-ip SP proxy-ip SP client-port SP proxy-port CRLF
//!      "PROXY" SP "UNKNOWN" [anything] CRLF             at most 107 bytes, CRLF included
//!
//! v2:  0      12   13   14     16           16+len
//!      | sig | ver_cmd | fam | len (BE) | addresses | TLVs |
//!      sig     = \r\n\r\n\0\r\nQUIT\n
//!      ver_cmd = 0x2_ version 2; 0x_0 LOCAL, 0x_1 PROXY
//!      fam     = 0x00 UNSPEC, 0x11 TCP/IPv4, 0x12 UDP/IPv4, 0x21 TCP/IPv6, 0x22 UDP/IPv6,
//!                0x31 stream/unix, 0x32 dgram/unix
//!      addresses (IPv4: 12 bytes, IPv6: 36, unix: 216):
//!                src addr, dst addr, src port (BE), dst port (BE)
//!
//! SPP: 0      2             18            34            36            38
//!      | magic 0x56ec | client addr | proxy addr | client port | proxy port | payload...
//!      addresses are 16 bytes (IPv4 as IPv4-mapped IPv6), everything in network byte order
//! ```

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12-byte signature that starts every PROXY v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The first six bytes of every PROXY v1 header.
pub const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// The longest PROXY v1 line a receiver must accept, CRLF included (HAProxy's spec: "107
/// characters" for `UNKNOWN`, 104 for `TCP6`, 56 for `TCP4`).
pub const V1_MAX_LEN: usize = 107;

/// Bytes of the fixed part of a PROXY v2 header (signature, version/command, family, length).
pub const V2_FIXED_LEN: usize = 16;

/// Capacity of a [`HeaderBuf`]: the longest v1 line plus one spare byte.
pub const HEADER_BUF_CAP: usize = 108;

/// A header built on the stack: the bytes to write first to the origin.
///
/// Invariant: the bytes past `len` are zero, so the derived `PartialEq` compares headers.
///
/// ```
/// use fastpath_proxy::header::proxy_v1;
/// let h = proxy_v1("192.0.2.0:42300".parse().unwrap(), "192.0.2.255:443".parse().unwrap());
/// assert_eq!(h.as_bytes(), b"PROXY TCP4 192.0.2.0 192.0.2.255 42300 443\r\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderBuf {
    bytes: [u8; HEADER_BUF_CAP],
    len: u8,
}

impl HeaderBuf {
    const fn new() -> HeaderBuf {
        HeaderBuf {
            bytes: [0; HEADER_BUF_CAP],
            len: 0,
        }
    }

    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length of the header in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the header is empty (no encoder returns an empty one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `b`; false (and nothing written) if it does not fit.
    fn push(&mut self, b: &[u8]) -> bool {
        let at = usize::from(self.len);
        let Some(dst) = self.bytes.get_mut(at..at + b.len()) else {
            return false;
        };
        dst.copy_from_slice(b);
        // Fits in u8: at + b.len() <= HEADER_BUF_CAP = 108.
        self.len = (at + b.len()) as u8;
        true
    }
}

impl AsRef<[u8]> for HeaderBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Write for HeaderBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.push(s.as_bytes()) {
            Ok(())
        } else {
            Err(fmt::Error)
        }
    }
}

/// Transport of a PROXY v2 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP (`SOCK_STREAM`, protocol nibble 1).
    Stream,
    /// UDP (`SOCK_DGRAM`, protocol nibble 2).
    Dgram,
}

/// The two addresses of a header, in one family.
enum Pair {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// Both addresses in one family: IPv4 when both are IPv4, else IPv6 with IPv4 mapped.
fn pair(client: IpAddr, proxy: IpAddr) -> Pair {
    match (client, proxy) {
        (IpAddr::V4(c), IpAddr::V4(p)) => Pair::V4(c, p),
        (c, p) => Pair::V6(to_v6(c), to_v6(p)),
    }
}

/// IPv6 as is, IPv4 as IPv4-mapped IPv6.
fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// A socket address with an IPv4-mapped IPv6 address turned back into IPv4.
fn sock(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip.to_canonical(), port)
}

/// The PROXY v1 line `PROXY TCP4 <client ip> <proxy ip> <client port> <proxy port>\r\n`
/// (`TCP6` for IPv6, addresses in the canonical compressed text form of RFC 5952, e.g.
/// `2001:db8::`), exactly as seed 003 shows. If the two addresses are of different families,
/// the IPv4 one is written as IPv4-mapped IPv6 and `TCP6` is used.
///
/// ```
/// use fastpath_proxy::header::proxy_v1;
/// let h = proxy_v1("[2001:db8::]:42300".parse().unwrap(), "192.0.2.1:443".parse().unwrap());
/// assert_eq!(h.as_bytes(), b"PROXY TCP6 2001:db8:: ::ffff:192.0.2.1 42300 443\r\n");
/// ```
pub fn proxy_v1(client: SocketAddr, proxy: SocketAddr) -> HeaderBuf {
    use fmt::Write as _;
    let mut b = HeaderBuf::new();
    let (cp, pp) = (client.port(), proxy.port());
    // The longest line is "PROXY TCP6 " (11) + 2 * 39 + 2 * 5 + 3 spaces + CRLF = 104 bytes,
    // within the 108 of the buffer, so the write cannot fail.
    let r = match pair(client.ip(), proxy.ip()) {
        Pair::V4(c, p) => write!(b, "PROXY TCP4 {c} {p} {cp} {pp}\r\n"),
        Pair::V6(c, p) => write!(b, "PROXY TCP6 {c} {p} {cp} {pp}\r\n"),
    };
    debug_assert!(r.is_ok(), "a PROXY v1 line fits in a HeaderBuf");
    b
}

/// The binary PROXY v2 header: the 12-byte signature `\r\n\r\n\0\r\nQUIT\n`, `0x21` (version 2,
/// command PROXY), the family/transport byte (`0x11` TCP/IPv4, `0x12` UDP/IPv4, `0x21`
/// TCP/IPv6, `0x22` UDP/IPv6), the big-endian address length (12 or 36), the source (client)
/// address, the destination (proxy) address, the source port and the destination port; no
/// TLVs. Mixed families: the IPv4 address is mapped to IPv4-mapped IPv6 as in [`proxy_v1`].
///
/// ```
/// use fastpath_proxy::header::{Transport, proxy_v2};
/// let h = proxy_v2("192.0.2.1:1".parse().unwrap(), "192.0.2.2:2".parse().unwrap(),
///                  Transport::Stream);
/// assert_eq!(h.len(), 28);
/// assert_eq!(&h.as_bytes()[12..16], &[0x21, 0x11, 0, 12]);
/// ```
pub fn proxy_v2(client: SocketAddr, proxy: SocketAddr, transport: Transport) -> HeaderBuf {
    let mut b = HeaderBuf::new();
    let proto = match transport {
        Transport::Stream => 0x01,
        Transport::Dgram => 0x02,
    };
    // At most 16 + 36 = 52 bytes: every push fits.
    let mut ok = b.push(&V2_SIGNATURE);
    match pair(client.ip(), proxy.ip()) {
        Pair::V4(c, p) => {
            ok &= b.push(&[0x21, 0x10 | proto]);
            ok &= b.push(&12u16.to_be_bytes());
            ok &= b.push(&c.octets());
            ok &= b.push(&p.octets());
        }
        Pair::V6(c, p) => {
            ok &= b.push(&[0x21, 0x20 | proto]);
            ok &= b.push(&36u16.to_be_bytes());
            ok &= b.push(&c.octets());
            ok &= b.push(&p.octets());
        }
    }
    ok &= b.push(&client.port().to_be_bytes());
    ok &= b.push(&proxy.port().to_be_bytes());
    debug_assert!(ok, "a PROXY v2 header fits in a HeaderBuf");
    b
}

/// Length of the Simple Proxy Protocol header.
pub const SPP_LEN: usize = 38;

/// Magic number of SPP (0x56EC, big-endian on the wire).
pub const SPP_MAGIC: u16 = 0x56ec;

/// The SPP header: the magic, the client address (16 bytes; IPv4 as IPv4-mapped IPv6), the
/// proxy address (16), the client port and the proxy port, all in network byte order.
///
/// ```
/// use fastpath_proxy::header::{SPP_LEN, spp_decode, spp_encode};
/// let (c, p) = ("192.0.2.7:5353".parse().unwrap(), "[2001:db8::1]:53".parse().unwrap());
/// let h = spp_encode(c, p);
/// assert_eq!(h.len(), SPP_LEN);
/// let (spp, payload) = spp_decode(&h).unwrap();
/// assert_eq!((spp.client, spp.proxy, payload.len()), (c, p, 0));
/// ```
pub fn spp_encode(client: SocketAddr, proxy: SocketAddr) -> [u8; SPP_LEN] {
    let mut h = [0u8; SPP_LEN];
    h[0..2].copy_from_slice(&SPP_MAGIC.to_be_bytes());
    h[2..18].copy_from_slice(&to_v6(client.ip()).octets());
    h[18..34].copy_from_slice(&to_v6(proxy.ip()).octets());
    h[34..36].copy_from_slice(&client.port().to_be_bytes());
    h[36..38].copy_from_slice(&proxy.port().to_be_bytes());
    h
}

/// A decoded SPP header. Addresses that are IPv4-mapped IPv6 come back as IPv4 socket
/// addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spp {
    /// The client: source address and port of the datagram the proxy received.
    pub client: SocketAddr,
    /// The proxy: the address and port the client sent the datagram to.
    pub proxy: SocketAddr,
}

/// Why a datagram does not start with an SPP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SppError {
    /// Fewer than [`SPP_LEN`] bytes.
    #[error("datagram shorter than the 38-byte SPP header")]
    Short,
    /// The first two bytes are not [`SPP_MAGIC`].
    #[error("SPP magic {0:#06x}, expected 0x56ec")]
    Magic(u16),
}

/// Splits a datagram into its SPP header and payload.
///
/// # Errors
/// [`SppError::Short`] when the datagram has fewer than 38 bytes, [`SppError::Magic`] when it
/// does not start with the magic number 0x56EC.
pub fn spp_decode(datagram: &[u8]) -> Result<(Spp, &[u8]), SppError> {
    let Some((h, payload)) = datagram.split_first_chunk::<SPP_LEN>() else {
        return Err(SppError::Short);
    };
    let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    let addr = |at: usize| {
        let mut o = [0u8; 16];
        o.copy_from_slice(&h[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    let magic = be16(0);
    if magic != SPP_MAGIC {
        return Err(SppError::Magic(magic));
    }
    let spp = Spp {
        client: sock(addr(2), be16(34)),
        proxy: sock(addr(18), be16(36)),
    };
    Ok((spp, payload))
}

/// What a PROXY header (v1 or v2) at the start of a stream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    /// 1 (text) or 2 (binary).
    pub version: u8,
    /// [`Transport::Stream`] for every v1 header; for v2 the protocol nibble, with
    /// `UNSPEC` (LOCAL health checks, unknown protocols) reported as `Stream`.
    pub transport: Transport,
    /// The client (source) address; `None` for v1 `UNKNOWN`, v2 `LOCAL`, and v2 `UNSPEC` or
    /// unix families.
    pub client: Option<SocketAddr>,
    /// The proxy (destination) address; `None` exactly when `client` is.
    pub proxy: Option<SocketAddr>,
    /// Bytes the header took, TLVs included: the stream's own data starts at `buf[len..]`.
    pub len: usize,
}

/// The field of a PROXY v1 line that is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Field {
    /// A CR or LF that is not part of the terminating CRLF.
    Terminator,
    /// The protocol is not `TCP4`, `TCP6` or `UNKNOWN`.
    Protocol,
    /// The client address is not an address of the protocol's family.
    ClientAddr,
    /// The proxy address is not an address of the protocol's family.
    ProxyAddr,
    /// The client port is not a decimal number in 0..=65535.
    ClientPort,
    /// The proxy port is not a decimal number in 0..=65535.
    ProxyPort,
    /// Fields missing or extra (they are separated by exactly one space).
    FieldCount,
}

impl fmt::Display for V1Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            V1Field::Terminator => "stray CR or LF",
            V1Field::Protocol => "protocol is not TCP4, TCP6 or UNKNOWN",
            V1Field::ClientAddr => "bad client address",
            V1Field::ProxyAddr => "bad proxy address",
            V1Field::ClientPort => "bad client port",
            V1Field::ProxyPort => "bad proxy port",
            V1Field::FieldCount => "wrong number of fields",
        })
    }
}

/// Why the start of a stream is not a usable PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The buffer is a prefix of a PROXY header: read more bytes and parse again. On a
    /// datagram (nothing more will come), this means a truncated header.
    #[error("incomplete PROXY header: more bytes needed")]
    Incomplete,
    /// No CRLF within the first 107 bytes of a v1 line.
    #[error("PROXY v1 line longer than 107 bytes")]
    V1TooLong,
    /// A v1 line with a bad field.
    #[error("bad PROXY v1 line: {0}")]
    V1Malformed(V1Field),
    /// The v2 version nibble is not 2.
    #[error("PROXY v2 header with version {0}, expected 2")]
    V2Version(u8),
    /// The v2 command nibble is neither LOCAL (0) nor PROXY (1).
    #[error("PROXY v2 header with command {0:#x}, expected LOCAL or PROXY")]
    V2Command(u8),
    /// The v2 family/transport byte of a PROXY command is not one the spec defines.
    #[error("PROXY v2 header with family/transport byte {0:#04x}")]
    V2Family(u8),
    /// The v2 length is shorter than the addresses of the family.
    #[error("PROXY v2 address length {len} too short for family byte {family:#04x}, needs {need}")]
    V2AddressLength {
        /// The family/transport byte.
        family: u8,
        /// The length the header gives.
        len: u16,
        /// The length the family's addresses take.
        need: u16,
    },
}

/// How `buf` relates to `sig`: a full match, a prefix of it, or neither.
enum Sig {
    Full,
    Prefix,
    No,
}

fn sig(buf: &[u8], sig: &[u8]) -> Sig {
    let n = buf.len().min(sig.len());
    if buf[..n] != sig[..n] {
        Sig::No
    } else if n < sig.len() {
        Sig::Prefix
    } else {
        Sig::Full
    }
}

/// Parses a PROXY v1 or v2 header at the start of `buf` (the receiving side: the lab's origins
/// and the tests use it).
///
/// Returns `Ok(None)` when `buf` does not start with a PROXY header at all (plain data: it
/// differs from both `PROXY ` and the v2 signature). Never panics and never reads past the
/// header it reports (nor past the first 107 bytes of a v1 line).
///
/// ```
/// use fastpath_proxy::header::{ProxyError, parse_proxy};
/// let info = parse_proxy(b"PROXY TCP4 192.0.2.0 192.0.2.255 42300 443\r\nGET /").unwrap().unwrap();
/// assert_eq!(info.client, Some("192.0.2.0:42300".parse().unwrap()));
/// assert_eq!(info.len, 44);
/// assert_eq!(parse_proxy(b"PROXY TCP4 19"), Err(ProxyError::Incomplete));
/// assert_eq!(parse_proxy(b"GET / HTTP/1.1\r\n"), Ok(None));
/// ```
///
/// # Errors
/// - [`ProxyError::Incomplete`] when `buf` is a prefix of a header that needs more bytes
///   (the empty buffer included; on a stream: read more and call again).
/// - [`ProxyError::V1TooLong`] and [`ProxyError::V1Malformed`] for a bad v1 line.
/// - [`ProxyError::V2Version`], [`ProxyError::V2Command`], [`ProxyError::V2Family`] and
///   [`ProxyError::V2AddressLength`] for a bad v2 header. These are reported as soon as the
///   byte that decides them is in `buf`, even before the rest of the header arrived.
pub fn parse_proxy(buf: &[u8]) -> Result<Option<ProxyInfo>, ProxyError> {
    match (sig(buf, V1_PREFIX), sig(buf, &V2_SIGNATURE)) {
        (Sig::Full, _) => parse_v1(buf).map(Some),
        (_, Sig::Full) => parse_v2(buf).map(Some),
        (Sig::Prefix, _) | (_, Sig::Prefix) => Err(ProxyError::Incomplete),
        (Sig::No, Sig::No) => Ok(None),
    }
}

/// `buf` starts with `PROXY `.
fn parse_v1(buf: &[u8]) -> Result<ProxyInfo, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        // A LF, or a CR followed by something else, can never become the terminator.
        let stray_cr = window
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\r' && i + 1 < window.len());
        if stray_cr || window.contains(&b'\n') {
            return Err(ProxyError::V1Malformed(V1Field::Terminator));
        }
        return Err(if buf.len() >= V1_MAX_LEN {
            ProxyError::V1TooLong
        } else {
            ProxyError::Incomplete
        });
    };
    let line = &window[V1_PREFIX.len()..end];
    let len = end + 2;
    let mut fields = line.split(|&b| b == b' ');
    let proto = fields.next().unwrap_or_default();
    let unknown = ProxyInfo {
        version: 1,
        transport: Transport::Stream,
        client: None,
        proxy: None,
        len,
    };
    // "For UNKNOWN, the rest of the line before the CRLF may be omitted by the sender, and
    // the receiver must ignore anything presented before the CRLF is found."
    if proto == b"UNKNOWN" {
        return Ok(unknown);
    }
    if line.contains(&b'\r') || line.contains(&b'\n') {
        return Err(ProxyError::V1Malformed(V1Field::Terminator));
    }
    let v6 = match proto {
        b"TCP4" => false,
        b"TCP6" => true,
        _ => return Err(ProxyError::V1Malformed(V1Field::Protocol)),
    };
    let mut next = || {
        fields
            .next()
            .ok_or(ProxyError::V1Malformed(V1Field::FieldCount))
    };
    let (ca, pa, cp, pp) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(ProxyError::V1Malformed(V1Field::FieldCount));
    }
    let ip = |text: &[u8], field| {
        let text = core::str::from_utf8(text).map_err(|_| ProxyError::V1Malformed(field))?;
        let ip = if v6 {
            text.parse::<Ipv6Addr>().map(IpAddr::V6)
        } else {
            text.parse::<Ipv4Addr>().map(IpAddr::V4)
        };
        ip.map_err(|_| ProxyError::V1Malformed(field))
    };
    let client_ip = ip(ca, V1Field::ClientAddr)?;
    let proxy_ip = ip(pa, V1Field::ProxyAddr)?;
    let client_port = v1_port(cp).ok_or(ProxyError::V1Malformed(V1Field::ClientPort))?;
    let proxy_port = v1_port(pp).ok_or(ProxyError::V1Malformed(V1Field::ProxyPort))?;
    Ok(ProxyInfo {
        client: Some(sock(client_ip, client_port)),
        proxy: Some(sock(proxy_ip, proxy_port)),
        ..unknown
    })
}

/// A decimal port: 1 to 5 ASCII digits, at most 65535 (no sign, unlike `u16::from_str`).
fn v1_port(text: &[u8]) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = text.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok()
}

/// `buf` starts with the 12-byte v2 signature.
fn parse_v2(buf: &[u8]) -> Result<ProxyInfo, ProxyError> {
    let Some(&ver_cmd) = buf.get(12) else {
        return Err(ProxyError::Incomplete);
    };
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::V2Version(ver_cmd >> 4));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        c => return Err(ProxyError::V2Command(c)),
    };
    let Some(&fam) = buf.get(13) else {
        return Err(ProxyError::Incomplete);
    };
    // "the receiver must accept this connection as valid and must use the real connection
    // endpoints and discard the protocol block including the family": LOCAL does not look at
    // the family byte, PROXY accepts only the seven the spec defines.
    let need: u16 = match fam {
        _ if local => 0,
        0x00 => 0,
        0x11 | 0x12 => 12,
        0x21 | 0x22 => 36,
        0x31 | 0x32 => 216,
        _ => return Err(ProxyError::V2Family(fam)),
    };
    let Some(&[hi, lo]) = buf.get(14..16) else {
        return Err(ProxyError::Incomplete);
    };
    let len = u16::from_be_bytes([hi, lo]);
    if len < need {
        return Err(ProxyError::V2AddressLength {
            family: fam,
            len,
            need,
        });
    }
    let total = V2_FIXED_LEN + usize::from(len);
    let Some(block) = buf.get(V2_FIXED_LEN..total) else {
        return Err(ProxyError::Incomplete);
    };
    let transport = if fam & 0x0f == 0x02 {
        Transport::Dgram
    } else {
        Transport::Stream
    };
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    let (client, proxy) = match need {
        _ if local => (None, None),
        12 => {
            let c = Ipv4Addr::new(block[0], block[1], block[2], block[3]);
            let p = Ipv4Addr::new(block[4], block[5], block[6], block[7]);
            (
                Some(sock(IpAddr::V4(c), port(8))),
                Some(sock(IpAddr::V4(p), port(10))),
            )
        }
        36 => {
            let mut c = [0u8; 16];
            let mut p = [0u8; 16];
            c.copy_from_slice(&block[0..16]);
            p.copy_from_slice(&block[16..32]);
            (
                Some(sock(IpAddr::V6(Ipv6Addr::from(c)), port(32))),
                Some(sock(IpAddr::V6(Ipv6Addr::from(p)), port(34))),
            )
        }
        // UNSPEC and unix sockets: no IP addresses to report.
        _ => (None, None),
    };
    Ok(ProxyInfo {
        version: 2,
        transport,
        client,
        proxy,
        len: total,
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// The v2 header of 192.0.2.1:42300 -> 198.51.100.2:443 over TCP, written out by hand.
    static V2_TCP4: [u8; 28] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
        0x21, // version 2, PROXY
        0x11, // AF_INET, STREAM
        0x00, 0x0c, // 12 address bytes
        192, 0, 2, 1, // source
        198, 51, 100, 2, // destination
        0xa5, 0x3c, // 42300
        0x01, 0xbb, // 443
    ];

    /// The v2 header of [2001:db8::1]:42300 -> [2001:db8:ffff::2]:443 over UDP, by hand.
    static V2_UDP6: [u8; 52] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
        0x21, // version 2, PROXY
        0x22, // AF_INET6, DGRAM
        0x00, 0x24, // 36 address bytes
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source
        0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // destination
        0xa5, 0x3c, // 42300
        0x01, 0xbb, // 443
    ];

    /// The SPP header of 192.0.2.1:42300 -> [2001:db8::2]:53, by hand.
    static SPP_MIXED: [u8; 38] = [
        0x56, 0xec, // magic
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1, // client, IPv4-mapped
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // proxy
        0xa5, 0x3c, // 42300
        0x00, 0x35, // 53
    ];

    #[test]
    fn v1_seed_examples() {
        let h = proxy_v1(sa("192.0.2.0:42300"), sa("192.0.2.255:443"));
        assert_eq!(
            h.as_bytes(),
            b"PROXY TCP4 192.0.2.0 192.0.2.255 42300 443\r\n"
        );
        let h = proxy_v1(
            sa("[2001:db8::]:42300"),
            sa("[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:443"),
        );
        assert_eq!(
            h.as_bytes(),
            b"PROXY TCP6 2001:db8:: 2001:db8:ffff:ffff:ffff:ffff:ffff:ffff 42300 443\r\n"
        );
    }

    #[test]
    fn v1_parse_seed_examples() {
        let line = b"PROXY TCP4 192.0.2.0 192.0.2.255 42300 443\r\n";
        let info = parse_proxy(line).unwrap().unwrap();
        assert_eq!(
            info,
            ProxyInfo {
                version: 1,
                transport: Transport::Stream,
                client: Some(sa("192.0.2.0:42300")),
                proxy: Some(sa("192.0.2.255:443")),
                len: line.len(),
            }
        );
        let line =
            b"PROXY TCP6 2001:db8:: 2001:db8:ffff:ffff:ffff:ffff:ffff:ffff 42300 443\r\nrest";
        let info = parse_proxy(line).unwrap().unwrap();
        assert_eq!(info.client, Some(sa("[2001:db8::]:42300")));
        assert_eq!(
            info.proxy,
            Some(sa("[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:443"))
        );
        assert_eq!(&line[info.len..], b"rest");
    }

    #[test]
    fn v1_mixed_families_use_tcp6() {
        let h = proxy_v1(sa("192.0.2.1:1000"), sa("[2001:db8::2]:443"));
        assert_eq!(
            h.as_bytes(),
            b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1000 443\r\n"
        );
        let info = parse_proxy(h.as_bytes()).unwrap().unwrap();
        assert_eq!(info.client, Some(sa("192.0.2.1:1000")));
        assert_eq!(info.proxy, Some(sa("[2001:db8::2]:443")));
    }

    #[test]
    fn v1_longest_line_fits() {
        let ip = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535";
        let h = proxy_v1(sa(ip), sa(ip));
        assert_eq!(h.len(), 104);
        assert!(parse_proxy(h.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn v1_unknown() {
        for line in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
            b"PROXY UNKNOWN \x01\xff whatever\r\n",
        ] {
            let info = parse_proxy(line).unwrap().unwrap();
            assert_eq!((info.client, info.proxy), (None, None), "{line:?}");
            assert_eq!(info.len, line.len());
        }
    }

    #[test]
    fn v1_malformed() {
        use ProxyError::V1Malformed as M;
        let cases: &[(&[u8], ProxyError)] = &[
            (b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", M(V1Field::Protocol)),
            (b"PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n", M(V1Field::Protocol)),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", M(V1Field::FieldCount)),
            (
                b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
                M(V1Field::FieldCount),
            ),
            (
                b"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n",
                M(V1Field::FieldCount),
            ),
            (
                b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",
                M(V1Field::FieldCount),
            ),
            (b"PROXY TCP4 ::1 1.2.3.4 1 2\r\n", M(V1Field::ClientAddr)),
            (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", M(V1Field::ClientAddr)),
            (
                b"PROXY TCP4 1.2.3.4 1.2.3.256 1 2\r\n",
                M(V1Field::ProxyAddr),
            ),
            (b"PROXY TCP6 ::1 fe80::1%1 1 2\r\n", M(V1Field::ProxyAddr)),
            (
                b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
                M(V1Field::ClientPort),
            ),
            (
                b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n",
                M(V1Field::ClientPort),
            ),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 \r\n", M(V1Field::ProxyPort)),
            (
                b"PROXY TCP4 1.2.3.4 1.2.3.4 1 -2\r\n",
                M(V1Field::ProxyPort),
            ),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", M(V1Field::Terminator)),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rx", M(V1Field::Terminator)),
            (
                b"PROXY TCP4 1.2.\r3.4 1.2.3.4 1 2\r\n",
                M(V1Field::Terminator),
            ),
        ];
        for (line, err) in cases {
            assert_eq!(
                parse_proxy(line),
                Err(*err),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn v1_too_long() {
        let mut line = b"PROXY UNKNOWN ".to_vec();
        line.resize(V1_MAX_LEN - 2, b'x');
        line.extend_from_slice(b"\r\n");
        assert_eq!(parse_proxy(&line).unwrap().unwrap().len, V1_MAX_LEN);
        // One byte more and the CRLF is past the 107 a receiver reads.
        line.insert(20, b'x');
        assert_eq!(parse_proxy(&line), Err(ProxyError::V1TooLong));
        // Without a CRLF: incomplete until 107 bytes, then too long.
        let open = vec![b'x'; 200];
        let mut buf = b"PROXY UNKNOWN ".to_vec();
        buf.extend_from_slice(&open);
        assert_eq!(parse_proxy(&buf[..106]), Err(ProxyError::Incomplete));
        assert_eq!(parse_proxy(&buf[..107]), Err(ProxyError::V1TooLong));
    }

    #[test]
    fn v2_by_hand() {
        let h = proxy_v2(
            sa("192.0.2.1:42300"),
            sa("198.51.100.2:443"),
            Transport::Stream,
        );
        assert_eq!(h.as_bytes(), &V2_TCP4);
        let h = proxy_v2(
            sa("[2001:db8::1]:42300"),
            sa("[2001:db8:ffff::2]:443"),
            Transport::Dgram,
        );
        assert_eq!(h.as_bytes(), &V2_UDP6);
    }

    #[test]
    fn v2_parse_by_hand() {
        let mut buf = V2_TCP4.to_vec();
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            parse_proxy(&buf),
            Ok(Some(ProxyInfo {
                version: 2,
                transport: Transport::Stream,
                client: Some(sa("192.0.2.1:42300")),
                proxy: Some(sa("198.51.100.2:443")),
                len: 28,
            }))
        );
        assert_eq!(
            parse_proxy(&V2_UDP6),
            Ok(Some(ProxyInfo {
                version: 2,
                transport: Transport::Dgram,
                client: Some(sa("[2001:db8::1]:42300")),
                proxy: Some(sa("[2001:db8:ffff::2]:443")),
                len: 52,
            }))
        );
    }

    #[test]
    fn v2_mixed_families_use_inet6() {
        let h = proxy_v2(sa("[2001:db8::1]:1"), sa("192.0.2.2:2"), Transport::Stream);
        assert_eq!(&h.as_bytes()[12..16], &[0x21, 0x21, 0x00, 0x24]);
        assert_eq!(
            &h.as_bytes()[32..48],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 2]
        );
        let info = parse_proxy(h.as_bytes()).unwrap().unwrap();
        assert_eq!(info.client, Some(sa("[2001:db8::1]:1")));
        assert_eq!(info.proxy, Some(sa("192.0.2.2:2")));
    }

    #[test]
    fn v2_tlvs_are_skipped() {
        let mut buf = V2_TCP4.to_vec();
        buf[15] = 12 + 7; // an ALPN TLV follows the addresses
        buf.extend_from_slice(&[0x01, 0x00, 0x04, b'h', b't', b't', b'p']);
        buf.extend_from_slice(b"data");
        let info = parse_proxy(&buf).unwrap().unwrap();
        assert_eq!(info.len, 28 + 7);
        assert_eq!(info.client, Some(sa("192.0.2.1:42300")));
        assert_eq!(&buf[info.len..], b"data");
        // Length past the buffer: the TLVs have not all arrived.
        assert_eq!(parse_proxy(&buf[..30]), Err(ProxyError::Incomplete));
    }

    #[test]
    fn v2_local_and_unspec() {
        // LOCAL (a health check): addresses discarded, even with a family byte.
        let mut buf = V2_TCP4.to_vec();
        buf[12] = 0x20;
        let info = parse_proxy(&buf).unwrap().unwrap();
        assert_eq!((info.client, info.proxy, info.len), (None, None, 28));
        let local = [&V2_SIGNATURE[..], &[0x20, 0x00, 0x00, 0x00]].concat();
        let info = parse_proxy(&local).unwrap().unwrap();
        assert_eq!((info.version, info.client, info.len), (2, None, 16));
        // PROXY with UNSPEC family: no addresses.
        let unspec = [&V2_SIGNATURE[..], &[0x21, 0x00, 0x00, 0x00]].concat();
        assert_eq!(parse_proxy(&unspec).unwrap().unwrap().client, None);
        // Unix sockets: 216 bytes of paths, no IP addresses.
        let mut unix = [&V2_SIGNATURE[..], &[0x21, 0x31, 0x00, 216]].concat();
        unix.resize(16 + 216, 0);
        let info = parse_proxy(&unix).unwrap().unwrap();
        assert_eq!(
            (info.client, info.transport, info.len),
            (None, Transport::Stream, 232)
        );
    }

    #[test]
    fn v2_malformed() {
        let with = |at: usize, b: u8| {
            let mut v = V2_TCP4.to_vec();
            v[at] = b;
            v
        };
        assert_eq!(parse_proxy(&with(12, 0x11)), Err(ProxyError::V2Version(1)));
        assert_eq!(parse_proxy(&with(12, 0x31)), Err(ProxyError::V2Version(3)));
        assert_eq!(parse_proxy(&with(12, 0x22)), Err(ProxyError::V2Command(2)));
        assert_eq!(
            parse_proxy(&with(13, 0x13)),
            Err(ProxyError::V2Family(0x13))
        );
        assert_eq!(
            parse_proxy(&with(13, 0x41)),
            Err(ProxyError::V2Family(0x41))
        );
        assert_eq!(
            parse_proxy(&with(13, 0x01)),
            Err(ProxyError::V2Family(0x01))
        );
        assert_eq!(
            parse_proxy(&with(15, 11)),
            Err(ProxyError::V2AddressLength {
                family: 0x11,
                len: 11,
                need: 12
            })
        );
        assert_eq!(
            parse_proxy(&with(13, 0x21)),
            Err(ProxyError::V2AddressLength {
                family: 0x21,
                len: 12,
                need: 36
            })
        );
        // Decided as soon as the deciding byte is there.
        assert_eq!(
            parse_proxy(&with(12, 0x11)[..13]),
            Err(ProxyError::V2Version(1))
        );
        assert_eq!(
            parse_proxy(&with(13, 0x13)[..14]),
            Err(ProxyError::V2Family(0x13))
        );
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let v1 = proxy_v1(sa("[2001:db8::]:42300"), sa("192.0.2.1:443"));
        let v2 = proxy_v2(sa("192.0.2.1:1"), sa("192.0.2.2:2"), Transport::Stream);
        let headers: [&[u8]; 5] = [
            v1.as_bytes(),
            v2.as_bytes(),
            &V2_UDP6,
            b"PROXY UNKNOWN\r\n",
            &[&V2_SIGNATURE[..], &[0x20, 0x00, 0x00, 0x00]].concat(),
        ];
        for h in headers {
            for n in 0..h.len() {
                assert_eq!(
                    parse_proxy(&h[..n]),
                    Err(ProxyError::Incomplete),
                    "{h:?}[..{n}]"
                );
            }
            assert_eq!(parse_proxy(h).unwrap().unwrap().len, h.len());
        }
    }

    #[test]
    fn plain_data_is_none() {
        for data in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"\r\n\r\n\0\r\nQUIZ",
            b"proxy tcp4",
            b"\x16\x03\x01",
        ] {
            assert_eq!(parse_proxy(data), Ok(None), "{data:?}");
        }
        assert_eq!(parse_proxy(b"PROXYTCP4"), Ok(None));
        assert_eq!(parse_proxy(b"\r\n\r\nGET"), Ok(None));
        assert_eq!(parse_proxy(b""), Err(ProxyError::Incomplete));
    }

    #[test]
    fn spp_by_hand() {
        let h = spp_encode(sa("192.0.2.1:42300"), sa("[2001:db8::2]:53"));
        assert_eq!(h, SPP_MIXED);
        let mut d = SPP_MIXED.to_vec();
        d.extend_from_slice(b"query");
        let (spp, payload) = spp_decode(&d).unwrap();
        assert_eq!(spp.client, sa("192.0.2.1:42300"));
        assert_eq!(spp.proxy, sa("[2001:db8::2]:53"));
        assert_eq!(payload, b"query");
    }

    #[test]
    fn spp_errors() {
        assert_eq!(spp_decode(&SPP_MIXED[..37]), Err(SppError::Short));
        assert_eq!(spp_decode(&[]), Err(SppError::Short));
        let mut d = SPP_MIXED;
        d[1] = 0xed;
        assert_eq!(spp_decode(&d), Err(SppError::Magic(0x56ed)));
        assert_eq!(spp_decode(&SPP_MIXED).unwrap().1, b"");
    }

    /// Arbitrary v4 or v6 socket addresses (no flow label or scope: no format carries them).
    fn any_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(IpAddr::from(a), p)),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(a, p)| SocketAddr::new(IpAddr::from(a), p)),
            // IPv4-mapped IPv6 on purpose: it must come back as IPv4.
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(
                IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped()),
                p
            )),
        ]
    }

    /// What a decoder must give back for `a`: the same address, IPv4-mapped as IPv4.
    fn canonical(a: SocketAddr) -> SocketAddr {
        SocketAddr::new(a.ip().to_canonical(), a.port())
    }

    /// The model of [`proxy_v1`]: `format!` into a `String`.
    fn v1_model(c: SocketAddr, p: SocketAddr) -> String {
        match (c.ip(), p.ip()) {
            (IpAddr::V4(ci), IpAddr::V4(pi)) => {
                format!("PROXY TCP4 {ci} {pi} {} {}\r\n", c.port(), p.port())
            }
            (ci, pi) => format!(
                "PROXY TCP6 {} {} {} {}\r\n",
                to_v6(ci),
                to_v6(pi),
                c.port(),
                p.port()
            ),
        }
    }

    proptest! {
        #[test]
        fn v1_round_trip(c in any_addr(), p in any_addr(), tail in any::<Vec<u8>>()) {
            let h = proxy_v1(c, p);
            let model = v1_model(c, p);
            prop_assert_eq!(h.as_bytes(), model.as_bytes());
            let buf = [h.as_bytes(), &tail].concat();
            let info = parse_proxy(&buf).unwrap().unwrap();
            prop_assert_eq!(info, ProxyInfo {
                version: 1,
                transport: Transport::Stream,
                client: Some(canonical(c)),
                proxy: Some(canonical(p)),
                len: h.len(),
            });
        }

        #[test]
        fn v2_round_trip(c in any_addr(), p in any_addr(), dgram in any::<bool>(),
                         tail in any::<Vec<u8>>()) {
            let t = if dgram { Transport::Dgram } else { Transport::Stream };
            let h = proxy_v2(c, p, t);
            let buf = [h.as_bytes(), &tail].concat();
            let info = parse_proxy(&buf).unwrap().unwrap();
            prop_assert_eq!(info, ProxyInfo {
                version: 2,
                transport: t,
                client: Some(canonical(c)),
                proxy: Some(canonical(p)),
                len: h.len(),
            });
        }

        #[test]
        fn spp_round_trip(c in any_addr(), p in any_addr(), payload in any::<Vec<u8>>()) {
            let d = [&spp_encode(c, p)[..], &payload].concat();
            let (spp, rest) = spp_decode(&d).unwrap();
            prop_assert_eq!(spp, Spp { client: canonical(c), proxy: canonical(p) });
            prop_assert_eq!(rest, &payload[..]);
        }

        #[test]
        fn garbage_never_panics(buf in any::<Vec<u8>>()) {
            if let Ok(Some(info)) = parse_proxy(&buf) {
                prop_assert!(info.len <= buf.len());
            }
            let _ = spp_decode(&buf);
        }

        /// Garbage behind each signature, to reach the field parsers.
        #[test]
        fn garbage_after_signature_never_panics(v2 in any::<bool>(), fam in any::<u8>(),
                                                 rest in any::<Vec<u8>>()) {
            let buf = if v2 {
                [&V2_SIGNATURE[..], &[0x21, fam], &rest].concat()
            } else {
                [&V1_PREFIX[..], &rest].concat()
            };
            match parse_proxy(&buf) {
                Ok(Some(info)) => prop_assert!(info.len <= buf.len()),
                Ok(None) => prop_assert!(false, "a signature is never plain data"),
                Err(_) => {}
            }
        }

        /// Text that looks like a v1 line, field by field.
        #[test]
        fn v1_like_lines_never_panic(proto in "(TCP4|TCP6|UNKNOWN|X)",
                                     f in prop::collection::vec("[0-9a-f:.%+ ]{0,40}", 0..6)) {
            let line = format!("PROXY {proto} {}\r\n", f.join(" "));
            if let Ok(Some(info)) = parse_proxy(line.as_bytes()) {
                prop_assert!(info.len <= line.len());
            }
        }
    }
}
