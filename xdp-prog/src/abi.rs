//! `#[repr(C)]` mirrors of `include/fastpath_abi.h`, with compile-time size checks and a test
//! that the constants agree with the header.

#![allow(unsafe_code)]

use fastpath::Reason;

/// Counter slot: handed to the queue's AF_XDP socket.
pub const CTR_REDIRECTED: u32 = 16;
/// Counter slot: to be redirected, but no socket on that queue (dropped): the reason
/// [`Reason::NoSocket`].
pub const CTR_NO_SOCKET: u32 = Reason::NoSocket as u32;
/// Counter slot: the plain `XDP_DROP` program of the benchmarks.
pub const CTR_DROP_ALL: u32 = 17;
/// Number of counter slots.
pub const COUNTERS: u32 = 18;

/// `fp_dest.kind`: onboarded, no binding.
pub const DEST_PREFIX: u8 = 0;
/// `fp_dest.kind`: a binding covers it.
pub const DEST_BINDING: u8 = 1;
/// `fp_dest.service`: the CDN.
pub const SVC_CDN: u8 = 0;
/// `fp_dest.service`: Spectrum.
pub const SVC_SPECTRUM: u8 = 1;
/// `fp_dest.flags`: unconfigured ports go to userspace (which answers them).
pub const DEST_RESET: u8 = 0x01;
/// `fp_dest.flags`: a Spectrum edge IP whose port sets are `ports_id`.
pub const DEST_EDGE: u8 = 0x02;

/// `fp_dest.flags`: the served TCP ports are the inline `ranges[0]`.
pub const DEST_INLINE_TCP: u8 = 0x04;
/// `fp_dest.flags`: the served UDP ports are the inline `ranges[1]`.
pub const DEST_INLINE_UDP: u8 = 0x08;
/// `fp_dest.flags`: every TCP port served here is behind the access rules.
pub const DEST_FW_TCP: u8 = 0x10;
/// `fp_dest.flags`: some served TCP ports are behind the access rules, some not: the cookie
/// gate of this destination stays userspace's.
pub const DEST_FW_TCP_MIXED: u8 = 0x20;
/// `fp_dest.flags`: a CDN binding under `https_only`: TCP port 80 goes to userspace (which
/// answers it with a RST), never through the cookie gate.
pub const DEST_HTTPS_ONLY: u8 = 0x40;
/// `fp_access.action`: let the source through.
pub const ACCESS_ALLOW: u32 = 0;
/// `fp_access.action`: drop it (`firewall_block`).
pub const ACCESS_BLOCK: u32 = 1;
/// Secrets of the epochs around now in `fp_cookies.keys` (index: epoch % 4).
pub const COOKIE_KEYS: usize = 4;
/// Retired secrets in `fp_cookies.retired` ([`fastpath::syncookie::RETIRED_SECRETS`]).
pub const COOKIE_RETIRED: usize = fastpath::syncookie::RETIRED_SECRETS;

/// `struct fp_access`: an access rule's verdict for a source prefix.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// [`ACCESS_ALLOW`] or [`ACCESS_BLOCK`].
    pub action: u32,
}

/// `struct fp_cookie_key`: the secret of one epoch.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieKey {
    /// The epoch (`u64::MAX`: an empty slot).
    pub epoch: u64,
    /// SipHash key, first half.
    pub k0: u64,
    /// SipHash key, second half.
    pub k1: u64,
    /// 1: cookies of this epoch validate with this key.
    pub check: u32,
    /// Padding.
    pub pad: u32,
}

impl Default for CookieKey {
    fn default() -> Self {
        CookieKey {
            epoch: u64::MAX,
            k0: 0,
            k1: 0,
            check: 0,
            pad: 0,
        }
    }
}

/// `struct fp_cookie_retired`: a secret retired by a rotation on demand.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CookieRetired {
    /// Its epoch.
    pub epoch: u64,
    /// SipHash key, first half.
    pub k0: u64,
    /// SipHash key, second half.
    pub k1: u64,
    /// Unix second from which it no longer validates; 0: an empty slot.
    pub until: u64,
}

/// `struct fp_cookies`: the SYN-cookie gate's state.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cookies {
    /// 0: SYNs and ACKs go to userspace.
    pub enabled: u32,
    /// Seconds per secret epoch.
    pub rotate_secs: u32,
    /// The SYN-ACK's window.
    pub window: u16,
    /// Our window-scale shift.
    pub wscale: u8,
    /// Padding.
    pub pad: u8,
    /// The MSS announced over IPv4.
    pub mss4: u16,
    /// The MSS announced over IPv6.
    pub mss6: u16,
    /// Unix time = `bpf_ktime_get_ns()` + this.
    pub clock_offset_ns: i64,
    /// Nonzero: the program's clock stands at this Unix time (tests).
    pub fixed_now_ns: u64,
    /// Secrets of the epochs around now, at index epoch % 4.
    pub keys: [CookieKey; COOKIE_KEYS],
    /// Secrets retired by rotations on demand.
    pub retired: [CookieRetired; COOKIE_RETIRED],
}

/// Inline port ranges per protocol in a destination entry.
pub const INLINE_RANGES: usize = 12;

/// `struct fp_range`: an inclusive port range, host order.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

/// `struct fp_counter` (per CPU).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// `struct fp_dest`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dest {
    /// `DEST_PREFIX` or `DEST_BINDING`.
    pub kind: u8,
    /// `SVC_CDN` or `SVC_SPECTRUM`.
    pub service: u8,
    /// `DEST_RESET | DEST_EDGE`.
    pub flags: u8,
    /// Padding.
    pub pad: u8,
    /// Port-set id of an edge IP (host order).
    pub ports_id: u32,
    /// Inline ranges in use: `[0]` TCP, `[1]` UDP.
    pub n_ranges: [u8; 2],
    /// Padding.
    pub pad2: [u8; 2],
    /// Inline ranges: `[0]` TCP, `[1]` UDP.
    pub ranges: [[Range; INLINE_RANGES]; 2],
}

impl Dest {
    /// Keeps `ranges` (sorted, merged) of protocol index `i` (0 TCP, 1 UDP) inline and sets
    /// its flag, when they fit; returns whether they did.
    pub fn set_inline(&mut self, i: usize, ranges: &[(u16, u16)]) -> bool {
        if ranges.len() > INLINE_RANGES {
            return false;
        }
        for (slot, &(lo, hi)) in self.ranges[i].iter_mut().zip(ranges) {
            *slot = Range { lo, hi };
        }
        self.n_ranges[i] = ranges.len() as u8;
        self.flags |= if i == 0 {
            DEST_INLINE_TCP
        } else {
            DEST_INLINE_UDP
        };
        true
    }
}

/// Sorts `ranges` and merges the ones that overlap or touch.
pub fn merge_ranges(mut ranges: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    ranges.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// `struct fp_ports_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PortsKey {
    /// 0 for the CDN, from 1 for edge IPs (host order).
    pub id: u32,
    /// 6 or 17.
    pub proto: u8,
    /// Padding.
    pub pad: [u8; 3],
}

/// `struct fp_ports`: bit p set means port p goes to userspace.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// 65536 bits.
    pub bits: [u64; 1024],
}

impl Default for Ports {
    fn default() -> Self {
        Ports { bits: [0; 1024] }
    }
}

impl Ports {
    /// Sets ports `lo..=hi`.
    pub fn set_range(&mut self, lo: u16, hi: u16) {
        for p in lo..=hi {
            self.bits[usize::from(p >> 6)] |= 1 << (p & 63);
        }
    }

    /// True when `p` is set.
    pub fn contains(&self, p: u16) -> bool {
        self.bits[usize::from(p >> 6)] & (1 << (p & 63)) != 0
    }
}

const _: () = assert!(core::mem::size_of::<Counter>() == 16);
const _: () = assert!(core::mem::size_of::<Access>() == 4);
const _: () = assert!(core::mem::size_of::<CookieKey>() == 32);
const _: () = assert!(core::mem::size_of::<CookieRetired>() == 32);
const _: () =
    assert!(core::mem::size_of::<Cookies>() == 32 + 32 * COOKIE_KEYS + 32 * COOKIE_RETIRED);
const _: () = assert!(core::mem::size_of::<Range>() == 4);
const _: () = assert!(core::mem::size_of::<Dest>() == 12 + 8 * INLINE_RANGES);
const _: () = assert!(core::mem::size_of::<PortsKey>() == 8);
const _: () = assert!(core::mem::size_of::<Ports>() == 8192);
const _: () = assert!(core::mem::size_of::<aya::maps::lpm_trie::Key<[u8; 4]>>() == 8);
const _: () = assert!(core::mem::size_of::<aya::maps::lpm_trie::Key<[u8; 16]>>() == 20);

// SAFETY: plain `#[repr(C)]` integers without padding bytes, so any byte pattern is a valid value
// and every byte of a value is initialized (checked by the size assertions above).
unsafe impl aya::Pod for Counter {}
// SAFETY: as above; `pad` and `pad2` make the padding explicit.
unsafe impl aya::Pod for Dest {}
// SAFETY: two integers, no padding.
unsafe impl aya::Pod for Range {}
// SAFETY: as above; `pad` makes the padding explicit.
unsafe impl aya::Pod for PortsKey {}
// SAFETY: an array of integers.
unsafe impl aya::Pod for Ports {}
// SAFETY: an integer.
unsafe impl aya::Pod for Access {}
// SAFETY: integers, no padding the C side does not name.
unsafe impl aya::Pod for Cookies {}

/// The reason a counter slot below [`fastpath::Reason::COUNT`] counts.
pub fn slot_reason(slot: u32) -> Option<Reason> {
    u8::try_from(slot).ok().and_then(Reason::from_u8)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn ranges_merge_and_fit_inline_or_not() {
        assert_eq!(
            merge_ranges(vec![
                (443, 443),
                (80, 80),
                (81, 90),
                (85, 100),
                (2000, 3000)
            ]),
            vec![(80, 100), (443, 443), (2000, 3000)]
        );
        assert_eq!(merge_ranges(vec![(0, 65535), (5, 6)]), vec![(0, 65535)]);
        let mut d = Dest::default();
        assert!(d.set_inline(1, &[(53, 53), (443, 443)]));
        assert_eq!(d.flags, DEST_INLINE_UDP);
        assert_eq!(d.n_ranges, [0, 2]);
        let many: Vec<(u16, u16)> = (0..13).map(|i| (i * 10, i * 10)).collect();
        assert!(!d.set_inline(0, &many));
        assert_eq!(d.flags & DEST_INLINE_TCP, 0);
    }

    /// The header's `#define`s and enum values are what the Rust side says.
    #[test]
    fn constants_agree_with_the_header() {
        let h = include_str!("../include/fastpath_abi.h");
        let value = |name: &str| -> u64 {
            let line = h
                .lines()
                .find(|l| {
                    let t = l.trim_start();
                    t.starts_with(&format!("#define {name} "))
                        || t.starts_with(&format!("{name} ="))
                })
                .unwrap_or_else(|| panic!("{name} not in the header"));
            let v = line
                .split(['=', ' ', '\t', ','])
                .filter(|s| !s.is_empty())
                .nth(if line.contains('=') { 1 } else { 2 })
                .unwrap();
            if let Some(hex) = v.strip_prefix("0x") {
                u64::from_str_radix(hex, 16).unwrap()
            } else {
                v.parse().unwrap()
            }
        };
        assert_eq!(value("FP_CTR_REDIRECTED"), u64::from(CTR_REDIRECTED));
        assert_eq!(value("FP_CTR_DROP_ALL"), u64::from(CTR_DROP_ALL));
        assert_eq!(value("FP_COUNTERS"), u64::from(COUNTERS));
        assert_eq!(value("FP_DEST_PREFIX"), u64::from(DEST_PREFIX));
        assert_eq!(value("FP_DEST_BINDING"), u64::from(DEST_BINDING));
        assert_eq!(value("FP_SVC_CDN"), u64::from(SVC_CDN));
        assert_eq!(value("FP_SVC_SPECTRUM"), u64::from(SVC_SPECTRUM));
        assert_eq!(value("FP_DEST_RESET"), u64::from(DEST_RESET));
        assert_eq!(value("FP_DEST_EDGE"), u64::from(DEST_EDGE));
        assert_eq!(value("FP_DEST_INLINE_TCP"), u64::from(DEST_INLINE_TCP));
        assert_eq!(value("FP_DEST_INLINE_UDP"), u64::from(DEST_INLINE_UDP));
        assert_eq!(value("FP_INLINE_RANGES"), INLINE_RANGES as u64);
        assert_eq!(value("FP_DEST_FW_TCP"), u64::from(DEST_FW_TCP));
        assert_eq!(value("FP_DEST_FW_TCP_MIXED"), u64::from(DEST_FW_TCP_MIXED));
        assert_eq!(value("FP_DEST_HTTPS_ONLY"), u64::from(DEST_HTTPS_ONLY));
        assert_eq!(value("FP_ACCESS_ALLOW"), u64::from(ACCESS_ALLOW));
        assert_eq!(value("FP_ACCESS_BLOCK"), u64::from(ACCESS_BLOCK));
        assert_eq!(value("FP_COOKIE_KEYS"), COOKIE_KEYS as u64);
        assert_eq!(value("FP_COOKIE_RETIRED"), COOKIE_RETIRED as u64);
        assert_eq!(value("FP_REASONS"), Reason::COUNT as u64);
        for (name, r) in [
            ("FP_NOT_IP", Reason::NotIp),
            ("FP_MALFORMED", Reason::Malformed),
            ("FP_NOT_OURS", Reason::NotOurs),
            ("FP_FRAGMENT", Reason::Fragment),
            ("FP_NO_BINDING", Reason::NoBinding),
            ("FP_UNCONFIGURED_PORT", Reason::UnconfiguredPort),
            ("FP_UNCONFIGURED_PROTOCOL", Reason::UnconfiguredProtocol),
            ("FP_FIREWALL_BLOCK", Reason::FirewallBlock),
            ("FP_SYN_COOKIE", Reason::SynCookie),
            ("FP_OUT_OF_STATE", Reason::OutOfState),
            ("FP_HANDED_OFF", Reason::HandedOff),
            ("FP_NO_SOCKET", Reason::NoSocket),
        ] {
            assert_eq!(value(name), r as u64, "{name}");
        }
    }
}
