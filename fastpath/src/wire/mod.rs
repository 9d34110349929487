//! Zero-copy views over untrusted frames.
//!
//! Every frame that reaches us, from a UMEM chunk or from a capture, is untrusted. The views in
//! this module follow smoltcp's contract: build them with `new_checked`, which verifies that the
//! buffer holds the whole header, and after that no accessor can panic as long as the buffer is
//! not shortened. `payload()` and friends borrow; nothing here copies or allocates.
//!
//! [`frame`] holds the staged parser that the pipeline runs: L2 (Ethernet II with up to two VLAN
//! tags), then L3 (IPv4, IPv6 with extension headers), then L4 (TCP, UDP). It is staged because
//! the pipeline interleaves parsing with table lookups (a frame to an address we do not own is
//! passed to the kernel before its L4 header is looked at).

pub mod checksum;
pub mod ethernet;
pub mod frame;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod tcpopt;
pub mod udp;

pub use ethernet::Frame as EthernetFrame;
pub use ipv4::Packet as Ipv4Packet;
pub use ipv6::Packet as Ipv6Packet;
pub use tcp::Packet as TcpPacket;
pub use tcpopt::TcpOptions;
pub use udp::Packet as UdpPacket;

/// A buffer too short for the header it should hold, or a header field that makes no sense.
///
/// Deliberately a unit struct (smoltcp's `wire::Error`): the pipeline maps it to the
/// `malformed` drop reason and never formats it per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("truncated or malformed header")]
pub struct Error;

/// Result of a checked header operation.
pub type Result<T> = core::result::Result<T, Error>;

/// IP protocol numbers the fast path cares about. Anything else is carried as a plain `u8`.
pub mod proto {
    /// Hop-by-hop options (IPv6 extension header).
    pub const HOPOPT: u8 = 0;
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// GRE.
    pub const GRE: u8 = 47;
    /// ESP (opaque: ends the IPv6 header chain).
    pub const ESP: u8 = 50;
    /// Authentication header (IPv6 extension header with its own length unit).
    pub const AH: u8 = 51;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const NONXT: u8 = 59;
    /// IPv6 destination options.
    pub const DSTOPTS: u8 = 60;
    /// IPv6 mobility header.
    pub const MOBILITY: u8 = 135;
    /// Host identity protocol.
    pub const HIP: u8 = 139;
    /// Shim6.
    pub const SHIM6: u8 = 140;
}

#[inline(always)]
pub(crate) fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline(always)]
pub(crate) fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline(always)]
pub(crate) fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}
