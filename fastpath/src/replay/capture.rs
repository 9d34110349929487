//! Reading captures: classic pcap and pcapng, as tolerant as libpcap.
//!
//! We do not use the `pcap-file` crate: it rejects 16 of the real captures in our test corpus
//! that libpcap and tshark read (records with `orig_len > snaplen` or `incl_len > snaplen`,
//! link-type fields with the FCS bits set, sub-second fields of a million or more). Our users
//! replay captures made by others, so this reader accepts what libpcap accepts:
//!
//! * pcap in either byte order, micro- or nanosecond resolution; the link-type field masked
//!   with `0x03ff_ffff` (its upper bits carry FCS information); the snaplen ignored (records
//!   longer than it are kept whole); sub-second fields of a million (a billion) or more carried
//!   into the seconds;
//! * pcapng sections in either byte order, any number of interfaces with `if_tsresol` (both the
//!   power-of-10 and power-of-2 forms) and `if_tsoffset`, Enhanced, Simple and obsolete Packet
//!   Blocks; other blocks are skipped;
//! * link types: Ethernet passes through; raw IP (101, and the historic 12 and 14), IPv4 (228),
//!   IPv6 (229), Linux cooked SLL (113) and SLL2 (276), BSD loopback NULL (0) and LOOP (108)
//!   get a synthetic Ethernet header `02:00:00:00:00:01 -> 02:00:00:00:00:02` with the ethertype
//!   of their payload, because the pipeline parses Ethernet. Other link types are an error.
//!
//! No input can make it panic or allocate without bound: a record above [`MAX_RECORD`] bytes is
//! an error, and a file that ends inside a header or record is [`CaptureError::Truncated`]
//! (every record before it is delivered).

use std::io::{self, Read};

/// Largest record accepted (bytes).
pub const MAX_RECORD: usize = 16 << 20;

/// Source MAC of the synthetic Ethernet header of converted link types.
pub const SYNTH_SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC of the synthetic Ethernet header of converted link types.
pub const SYNTH_DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Link-layer header types we know.
pub mod linktype {
    /// BSD loopback (4-byte host-order address family).
    pub const NULL: u32 = 0;
    /// Ethernet.
    pub const ETHERNET: u32 = 1;
    /// Raw IP on some platforms.
    pub const RAW_12: u32 = 12;
    /// Raw IP on some platforms.
    pub const RAW_14: u32 = 14;
    /// Raw IP.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback (network-order address family).
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;

    /// A name for error messages.
    pub fn name(t: u32) -> &'static str {
        match t {
            NULL => "NULL",
            ETHERNET => "EN10MB",
            RAW_12 | RAW_14 | RAW => "RAW",
            LOOP => "LOOP",
            LINUX_SLL => "LINUX_SLL",
            IPV4 => "IPV4",
            IPV6 => "IPV6",
            LINUX_SLL2 => "LINUX_SLL2",
            9 => "PPP",
            105 => "IEEE802_11",
            127 => "IEEE802_11_RADIOTAP",
            _ => "unknown",
        }
    }
}

/// Why a capture cannot be read (further).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// An I/O error.
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    /// Not a pcap or pcapng file.
    #[error("not a pcap or pcapng file (magic {0:#010x})")]
    NotACapture(u32),
    /// The file ends inside a header or record.
    #[error("the capture is truncated (it ends inside {0})")]
    Truncated(&'static str),
    /// A record larger than [`MAX_RECORD`].
    #[error("a record of {0} bytes is larger than the {MAX_RECORD}-byte limit")]
    RecordTooLarge(u64),
    /// A link type the pipeline cannot read.
    #[error(
        "link type {linktype} ({name}) is not supported: replay reads Ethernet, raw IP, Linux cooked and BSD loopback captures"
    )]
    UnsupportedLinkType {
        /// The link type.
        linktype: u32,
        /// Its name, if known.
        name: &'static str,
    },
    /// A structurally impossible pcapng block.
    #[error("malformed pcapng block: {0}")]
    BadBlock(&'static str),
}

/// What a record is, besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// Timestamp in nanoseconds since the epoch.
    pub ts_ns: u64,
    /// Original length on the wire (as recorded).
    pub orig_len: u32,
    /// The record's original link type.
    pub linktype: u32,
    /// 0-based record index.
    pub index: u64,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    /// Ticks per second.
    units: u64,
    offset_s: i64,
}

#[derive(Debug)]
enum Format {
    Pcap {
        big: bool,
        nanos: bool,
        linktype: u32,
    },
    PcapNg {
        big: bool,
        ifaces: Vec<Interface>,
    },
}

/// Reads records from a pcap or pcapng stream.
#[derive(Debug)]
pub struct CaptureReader<R: Read> {
    r: R,
    format: Format,
    index: u64,
    scratch: Vec<u8>,
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` at a clean end of file before the first byte.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8], what: &'static str) -> Result<bool, CaptureError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(CaptureError::Truncated(what)),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

fn u16_at(b: &[u8], big: bool) -> u16 {
    let a = [b[0], b[1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

fn u32_at(b: &[u8], big: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn u64_at(b: &[u8], big: bool) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    if big {
        u64::from_be_bytes(a)
    } else {
        u64::from_le_bytes(a)
    }
}

const PCAP_US: u32 = 0xa1b2_c3d4;
const PCAP_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

fn supported(linktype: u32) -> Result<u32, CaptureError> {
    use linktype::*;
    match linktype {
        ETHERNET | NULL | RAW_12 | RAW_14 | RAW | LOOP | LINUX_SLL | IPV4 | IPV6 | LINUX_SLL2 => {
            Ok(linktype)
        }
        t => Err(CaptureError::UnsupportedLinkType {
            linktype: t,
            name: name(t),
        }),
    }
}

impl<R: Read> CaptureReader<R> {
    /// Opens a capture, reading its file header (pcap) or first section header (pcapng).
    ///
    /// # Errors
    /// [`CaptureError::NotACapture`], [`CaptureError::Truncated`], an unsupported link type
    /// (pcap; for pcapng it is reported with the first record of that interface), I/O errors.
    pub fn new(mut r: R) -> Result<CaptureReader<R>, CaptureError> {
        let mut m = [0u8; 4];
        if !read_full(&mut r, &mut m, "the file header")? {
            return Err(CaptureError::Truncated("the file header"));
        }
        let le = u32::from_le_bytes(m);
        let be = u32::from_be_bytes(m);
        let format = if le == PCAPNG_SHB {
            let mut c = CaptureReader {
                r,
                format: Format::PcapNg {
                    big: false,
                    ifaces: Vec::new(),
                },
                index: 0,
                scratch: Vec::new(),
            };
            c.section_header()?;
            return Ok(c);
        } else if let Some((big, nanos)) = match (le, be) {
            (PCAP_US, _) => Some((false, false)),
            (PCAP_NS, _) => Some((false, true)),
            (_, PCAP_US) => Some((true, false)),
            (_, PCAP_NS) => Some((true, true)),
            _ => None,
        } {
            let mut h = [0u8; 20];
            if !read_full(&mut r, &mut h, "the file header")? {
                return Err(CaptureError::Truncated("the file header"));
            }
            let linktype = supported(u32_at(&h[16..20], big) & 0x03ff_ffff)?;
            Format::Pcap {
                big,
                nanos,
                linktype,
            }
        } else {
            return Err(CaptureError::NotACapture(be));
        };
        Ok(CaptureReader {
            r,
            format,
            index: 0,
            scratch: Vec::new(),
        })
    }

    /// Reads the rest of a section header block (its block type is already consumed).
    fn section_header(&mut self) -> Result<(), CaptureError> {
        let mut h = [0u8; 8];
        if !read_full(&mut self.r, &mut h, "a section header")? {
            return Err(CaptureError::Truncated("a section header"));
        }
        let big = match u32::from_le_bytes([h[4], h[5], h[6], h[7]]) {
            BYTE_ORDER_MAGIC => false,
            m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
            _ => return Err(CaptureError::BadBlock("section header byte-order magic")),
        };
        let len = u32_at(&h[0..4], big) as usize;
        if !(28..=MAX_RECORD).contains(&len) || !len.is_multiple_of(4) {
            return Err(CaptureError::BadBlock("section header length"));
        }
        self.skip(len - 12, "a section header")?;
        self.format = Format::PcapNg {
            big,
            ifaces: Vec::new(),
        };
        Ok(())
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), CaptureError> {
        self.scratch.resize(n, 0);
        let mut s = std::mem::take(&mut self.scratch);
        let r = read_full(&mut self.r, &mut s, what);
        self.scratch = s;
        match r {
            Ok(true) => Ok(()),
            Ok(false) if n == 0 => Ok(()),
            Ok(false) => Err(CaptureError::Truncated(what)),
            Err(e) => Err(e),
        }
    }

    /// Reads the next record into `buf` (replacing its contents), converted to Ethernet II.
    /// `Ok(None)` at the end of the capture.
    ///
    /// # Errors
    /// [`CaptureError::Truncated`], [`CaptureError::RecordTooLarge`],
    /// [`CaptureError::UnsupportedLinkType`], [`CaptureError::BadBlock`], I/O errors.
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<RecordMeta>, CaptureError> {
        let meta = match self.format {
            Format::Pcap {
                big,
                nanos,
                linktype,
            } => {
                let mut h = [0u8; 16];
                if !read_full(&mut self.r, &mut h, "a record header")? {
                    return Ok(None);
                }
                let sec = u64::from(u32_at(&h[0..4], big));
                let frac = u64::from(u32_at(&h[4..8], big));
                let incl = u32_at(&h[8..12], big) as usize;
                let orig = u32_at(&h[12..16], big);
                if incl > MAX_RECORD {
                    return Err(CaptureError::RecordTooLarge(incl as u64));
                }
                buf.resize(incl, 0);
                if !read_full(&mut self.r, buf, "a record")? && incl > 0 {
                    return Err(CaptureError::Truncated("a record"));
                }
                let ts_ns = sec.saturating_mul(1_000_000_000).saturating_add(if nanos {
                    frac
                } else {
                    frac.saturating_mul(1000)
                });
                RecordMeta {
                    ts_ns,
                    orig_len: orig,
                    linktype,
                    index: self.index,
                }
            }
            Format::PcapNg { .. } => match self.next_ng(buf)? {
                Some(m) => m,
                None => return Ok(None),
            },
        };
        self.index += 1;
        to_ethernet(meta.linktype, buf)?;
        Ok(Some(meta))
    }

    fn next_ng(&mut self, buf: &mut Vec<u8>) -> Result<Option<RecordMeta>, CaptureError> {
        loop {
            let Format::PcapNg { big, .. } = self.format else {
                unreachable!("pcapng state")
            };
            let mut h = [0u8; 8];
            if !read_full(&mut self.r, &mut h, "a block header")? {
                return Ok(None);
            }
            let btype = u32_at(&h[0..4], big);
            if btype == PCAPNG_SHB {
                // A new section: its byte order may differ; re-read the length with it.
                let mut rest = [0u8; 4];
                if !read_full(&mut self.r, &mut rest, "a section header")? {
                    return Err(CaptureError::Truncated("a section header"));
                }
                let nbig = match u32::from_le_bytes(rest) {
                    BYTE_ORDER_MAGIC => false,
                    m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                    _ => return Err(CaptureError::BadBlock("section header byte-order magic")),
                };
                let len = u32_at(&h[4..8], nbig) as usize;
                if !(28..=MAX_RECORD).contains(&len) || !len.is_multiple_of(4) {
                    return Err(CaptureError::BadBlock("section header length"));
                }
                self.skip(len - 12, "a section header")?;
                self.format = Format::PcapNg {
                    big: nbig,
                    ifaces: Vec::new(),
                };
                continue;
            }
            let len = u32_at(&h[4..8], big) as usize;
            if len < 12 || !len.is_multiple_of(4) {
                return Err(CaptureError::BadBlock("block length"));
            }
            if len > MAX_RECORD + 64 {
                return Err(CaptureError::RecordTooLarge(len as u64));
            }
            let mut body = std::mem::take(&mut self.scratch);
            body.resize(len - 8, 0);
            let ok = read_full(&mut self.r, &mut body, "a block");
            let res = match ok {
                Ok(true) => self.block(btype, &body[..len - 12], big, buf),
                Ok(false) | Err(CaptureError::Truncated(_)) => {
                    Err(CaptureError::Truncated("a block"))
                }
                Err(e) => Err(e),
            };
            self.scratch = body;
            if let Some(m) = res? {
                return Ok(Some(m));
            }
        }
    }

    /// Handles one pcapng block body (without the trailing length); a packet fills `buf`.
    fn block(
        &mut self,
        btype: u32,
        b: &[u8],
        big: bool,
        buf: &mut Vec<u8>,
    ) -> Result<Option<RecordMeta>, CaptureError> {
        let Format::PcapNg { ifaces, .. } = &mut self.format else {
            unreachable!("pcapng state")
        };
        match btype {
            // Interface Description Block.
            1 => {
                if b.len() < 8 {
                    return Err(CaptureError::BadBlock("interface description too short"));
                }
                let linktype = u32::from(u16_at(&b[0..2], big));
                let mut iface = Interface {
                    linktype,
                    units: 1_000_000,
                    offset_s: 0,
                };
                for (code, val) in options(&b[8..], big) {
                    match (code, val.len()) {
                        (9, 1) => {
                            let r = val[0];
                            let exp = u32::from(r & 0x7f);
                            iface.units = if r & 0x80 == 0 {
                                10u64.checked_pow(exp).unwrap_or(u64::MAX)
                            } else {
                                1u64.checked_shl(exp).unwrap_or(u64::MAX)
                            };
                        }
                        (14, 8) => iface.offset_s = u64_at(val, big) as i64,
                        _ => {}
                    }
                }
                ifaces.push(iface);
                Ok(None)
            }
            // Enhanced Packet Block, obsolete Packet Block.
            6 | 2 => {
                if b.len() < 20 {
                    return Err(CaptureError::BadBlock("packet block too short"));
                }
                let iface_id = if btype == 6 {
                    u32_at(&b[0..4], big)
                } else {
                    u32::from(u16_at(&b[0..2], big))
                } as usize;
                let ts =
                    (u64::from(u32_at(&b[4..8], big)) << 32) | u64::from(u32_at(&b[8..12], big));
                let cap = u32_at(&b[12..16], big) as usize;
                let orig = u32_at(&b[16..20], big);
                let data = b
                    .get(20..20 + cap)
                    .ok_or(CaptureError::BadBlock("captured length beyond the block"))?;
                let iface = *ifaces
                    .get(iface_id)
                    .ok_or(CaptureError::BadBlock("packet of an undeclared interface"))?;
                buf.clear();
                buf.extend_from_slice(data);
                Ok(Some(RecordMeta {
                    ts_ns: ts_ns(ts, &iface),
                    orig_len: orig,
                    linktype: iface.linktype,
                    index: self.index,
                }))
            }
            // Simple Packet Block: interface 0, no timestamp.
            3 => {
                if b.len() < 4 {
                    return Err(CaptureError::BadBlock("simple packet block too short"));
                }
                let iface = *ifaces
                    .first()
                    .ok_or(CaptureError::BadBlock("simple packet before any interface"))?;
                let orig = u32_at(&b[0..4], big);
                let cap = (orig as usize).min(b.len() - 4);
                buf.clear();
                buf.extend_from_slice(&b[4..4 + cap]);
                Ok(Some(RecordMeta {
                    ts_ns: 0,
                    orig_len: orig,
                    linktype: iface.linktype,
                    index: self.index,
                }))
            }
            _ => Ok(None),
        }
    }
}

fn ts_ns(ticks: u64, i: &Interface) -> u64 {
    let units = i.units.max(1);
    let secs = ticks / units;
    let rem = ticks % units;
    let frac = (u128::from(rem) * 1_000_000_000 / u128::from(units)) as u64;
    let secs = (secs as i64).saturating_add(i.offset_s).max(0) as u64;
    secs.saturating_mul(1_000_000_000).saturating_add(frac)
}

/// Iterates over pcapng options (code, value), stopping at `opt_endofopt` or a bad length.
fn options(mut b: &[u8], big: bool) -> impl Iterator<Item = (u16, &[u8])> {
    core::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let code = u16_at(&b[0..2], big);
        let len = usize::from(u16_at(&b[2..4], big));
        if code == 0 || 4 + len > b.len() {
            return None;
        }
        let val = &b[4..4 + len];
        let padded = (4 + len).div_ceil(4) * 4;
        b = &b[padded.min(b.len())..];
        Some((code, val))
    })
}

/// Replaces the link header of `linktype` in `buf` with a synthetic Ethernet II header.
fn to_ethernet(linktype: u32, buf: &mut Vec<u8>) -> Result<(), CaptureError> {
    use linktype::*;
    let ip_ethertype = |b: &[u8]| match b.first().map(|v| v >> 4) {
        Some(6) => 0x86ddu16,
        _ => 0x0800,
    };
    let (strip, ethertype) = match linktype {
        ETHERNET => return Ok(()),
        RAW | RAW_12 | RAW_14 => (0, ip_ethertype(buf)),
        IPV4 => (0, 0x0800),
        IPV6 => (0, 0x86dd),
        LINUX_SLL => (
            16,
            buf.get(14..16)
                .map_or(0, |p| u16::from_be_bytes([p[0], p[1]])),
        ),
        LINUX_SLL2 => (
            20,
            buf.get(0..2)
                .map_or(0, |p| u16::from_be_bytes([p[0], p[1]])),
        ),
        NULL | LOOP => {
            // The address family: host order for NULL (either order seen), network for LOOP.
            let af = buf.get(0..4).map_or(0, |p| {
                let le = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
                let be = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                if le < 256 { le } else { be }
            });
            let et = match af {
                2 => 0x0800,
                10 | 24 | 28 | 30 => 0x86dd,
                _ => 0,
            };
            (4, et)
        }
        t => {
            return Err(CaptureError::UnsupportedLinkType {
                linktype: t,
                name: name(t),
            });
        }
    };
    // A record shorter than its link header keeps no payload; the pipeline calls it malformed
    // (ethertype 0 for an unknown protocol: the pipeline passes it as not IP).
    let payload = buf.get(strip..).map_or(0, <[u8]>::len);
    let mut hdr = [0u8; 14];
    hdr[0..6].copy_from_slice(&SYNTH_DST);
    hdr[6..12].copy_from_slice(&SYNTH_SRC);
    hdr[12..14].copy_from_slice(&ethertype.to_be_bytes());
    let start = buf.len() - payload;
    buf.splice(0..start, hdr);
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn pcap(big: bool, nanos: bool, linktype: u32, recs: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend_from_slice(&w32(if nanos { PCAP_NS } else { PCAP_US }));
        f.extend_from_slice(&w16(2));
        f.extend_from_slice(&w16(4));
        f.extend_from_slice(&w32(0));
        f.extend_from_slice(&w32(0));
        f.extend_from_slice(&w32(64));
        f.extend_from_slice(&w32(linktype));
        for (s, frac, data, orig) in recs {
            f.extend_from_slice(&w32(*s));
            f.extend_from_slice(&w32(*frac));
            f.extend_from_slice(&w32(data.len() as u32));
            f.extend_from_slice(&w32(*orig));
            f.extend_from_slice(data);
        }
        f
    }

    fn read_all(b: &[u8]) -> Result<Vec<(RecordMeta, Vec<u8>)>, CaptureError> {
        let mut r = CaptureReader::new(b)?;
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while let Some(m) = r.next_into(&mut buf)? {
            out.push((m, buf.clone()));
        }
        Ok(out)
    }

    #[test]
    fn pcap_both_orders_and_resolutions_and_odd_fields() {
        let frame = [0xffu8; 14];
        for big in [false, true] {
            for nanos in [false, true] {
                // snaplen 64 but a 100-byte record; a sub-second field of 1.5 s; FCS bits set.
                let long = [0xaa; 100];
                let f = pcap(
                    big,
                    nanos,
                    0x3000_0001,
                    &[(10, 5, &frame, 14), (11, 1_500_000, &long, 60)],
                );
                let recs = read_all(&f).unwrap();
                assert_eq!(recs.len(), 2);
                let unit = if nanos { 1 } else { 1000 };
                assert_eq!(recs[0].0.ts_ns, 10_000_000_000 + 5 * unit);
                assert_eq!(recs[1].0.ts_ns, 11_000_000_000 + 1_500_000 * unit);
                assert_eq!(recs[1].1.len(), 100);
                assert_eq!(recs[1].0.orig_len, 60);
            }
        }
    }

    #[test]
    fn link_types_become_ethernet() {
        let ip4 = [
            0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        let ip6 = [0x60u8; 40];
        for (lt, rec, et) in [
            (linktype::RAW, ip4.to_vec(), 0x0800u16),
            (linktype::RAW, ip6.to_vec(), 0x86dd),
            (linktype::IPV4, ip4.to_vec(), 0x0800),
            (linktype::IPV6, ip6.to_vec(), 0x86dd),
            (
                linktype::NULL,
                [&2u32.to_le_bytes()[..], &ip4].concat(),
                0x0800,
            ),
            (
                linktype::NULL,
                [&30u32.to_le_bytes()[..], &ip6].concat(),
                0x86dd,
            ),
            (
                linktype::LOOP,
                [&2u32.to_be_bytes()[..], &ip4].concat(),
                0x0800,
            ),
            (
                linktype::LINUX_SLL,
                [&[0u8; 14][..], &[0x08, 0x00], &ip4].concat(),
                0x0800,
            ),
            (
                linktype::LINUX_SLL2,
                [&[0x86u8, 0xdd][..], &[0; 18], &ip6].concat(),
                0x86dd,
            ),
        ] {
            let f = pcap(false, false, lt, &[(1, 0, &rec, rec.len() as u32)]);
            let recs = read_all(&f).unwrap();
            let b = &recs[0].1;
            assert_eq!(&b[0..6], &SYNTH_DST);
            assert_eq!(u16::from_be_bytes([b[12], b[13]]), et, "linktype {lt}");
            assert_eq!(
                b[14],
                rec[rec.len() - if et == 0x0800 { 20 } else { 40 }],
                "payload kept"
            );
        }
    }

    #[test]
    fn errors() {
        assert!(matches!(
            CaptureReader::new(&b"hello world, not a capture"[..]),
            Err(CaptureError::NotACapture(_))
        ));
        assert!(matches!(
            CaptureReader::new(&b"\xd4\xc3"[..]),
            Err(CaptureError::Truncated(_))
        ));
        let f = pcap(false, false, 105, &[]);
        assert!(matches!(
            CaptureReader::new(&f[..]),
            Err(CaptureError::UnsupportedLinkType { linktype: 105, .. })
        ));
        let f = pcap(false, false, 1, &[(1, 0, &[1; 30], 30)]);
        let mut r = CaptureReader::new(&f[..f.len() - 3]).unwrap();
        let mut buf = Vec::new();
        assert!(matches!(
            r.next_into(&mut buf),
            Err(CaptureError::Truncated(_))
        ));
        let mut big = pcap(false, false, 1, &[]);
        big.extend_from_slice(&[0; 8]);
        big.extend_from_slice(&((MAX_RECORD as u32) + 1).to_le_bytes());
        big.extend_from_slice(&[0; 4]);
        let mut r = CaptureReader::new(&big[..]).unwrap();
        assert!(matches!(
            r.next_into(&mut buf),
            Err(CaptureError::RecordTooLarge(_))
        ));
        let empty = pcap(false, false, 1, &[]);
        assert!(read_all(&empty).unwrap().is_empty());
    }

    #[test]
    fn pcapng_round_trip_through_our_writer() {
        let mut out = Vec::new();
        {
            let mut w = super::super::PcapNgWriter::new(&mut out).unwrap();
            w.write(
                1_700_000_000_123_456_789,
                &[1; 60],
                Some("fastpath: drop malformed"),
            )
            .unwrap();
            w.write(1_700_000_001_000_000_000, &[2; 14], None).unwrap();
            w.finish().unwrap();
        }
        let recs = read_all(&out).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].0.ts_ns, 1_700_000_000_123_456_789);
        assert_eq!(recs[0].1, vec![1; 60]);
        assert_eq!(recs[1].1, vec![2; 14]);
    }

    #[test]
    fn pcap_round_trip_through_our_writer() {
        let mut out = Vec::new();
        {
            let mut w = super::super::PcapWriter::new(&mut out).unwrap();
            w.write(1_700_000_000_123_456_789, &[3; 70]).unwrap();
            w.finish().unwrap();
        }
        let recs = read_all(&out).unwrap();
        assert_eq!(recs[0].0.ts_ns, 1_700_000_000_123_456_789);
        assert_eq!(recs[0].1, vec![3; 70]);
    }

    /// Every capture of the shared corpus reads without a panic, and (for the link types we
    /// support) with as many records as tshark counted (`MANIFEST.tsv`).
    #[test]
    fn shared_corpus_reads_like_tshark() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/real");
        let manifest = std::fs::read_to_string(format!("{dir}/MANIFEST.tsv"))
            .unwrap_or_else(|e| panic!("the shared corpus must be at {dir}: {e}"));
        let mut checked = 0;
        for line in manifest.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (file, expected) = (cols[0], cols[5].parse::<u64>().unwrap());
            let bytes = std::fs::read(format!("{dir}/{file}")).unwrap();
            let mut n = 0u64;
            match CaptureReader::new(&bytes[..]) {
                Ok(mut r) => {
                    let mut buf = Vec::new();
                    loop {
                        match r.next_into(&mut buf) {
                            Ok(Some(_)) => n += 1,
                            Ok(None) => break,
                            Err(CaptureError::UnsupportedLinkType { .. }) => {
                                n = expected;
                                break;
                            }
                            Err(e) => panic!("{file}: record {}: {e}", n + 1),
                        }
                    }
                }
                Err(CaptureError::UnsupportedLinkType { .. }) => n = expected,
                Err(e) => panic!("{file}: {e}"),
            }
            assert_eq!(n, expected, "{file}");
            checked += 1;
        }
        assert!(checked >= 60, "only {checked} corpus files");
    }
}
