//! TCP options: a panic-free parser and the writer for the options of a SYN-ACK.
//!
//! The parser is a cursor in the style of quiche's `octets`: every read is checked against the
//! end of the buffer, so no input can make it index out of bounds. Like Linux
//! (`tcp_parse_options`), it stops at the first option whose length is impossible and keeps what
//! it read before; options of a known kind with the wrong length are ignored.

/// Option kinds.
pub mod kind {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No-operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Window scale.
    pub const WSCALE: u8 = 3;
    /// SACK permitted.
    pub const SACK_PERM: u8 = 4;
    /// SACK blocks.
    pub const SACK: u8 = 5;
    /// Timestamps.
    pub const TIMESTAMP: u8 = 8;
}

/// Largest window-scale shift (RFC 7323 section 2.3); larger values are read as 14.
pub const MAX_WSCALE: u8 = 14;

/// The options the fast path negotiates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpOptions {
    /// Maximum segment size.
    pub mss: Option<u16>,
    /// Window scale shift (already capped at 14).
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack_perm: bool,
    /// Timestamps: (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    /// True when parsing stopped at an option with an impossible length.
    pub truncated: bool,
}

impl TcpOptions {
    /// Parses the options area of a TCP header. Never fails and never panics.
    #[inline(always)]
    pub fn parse(opts: &[u8]) -> TcpOptions {
        let mut o = TcpOptions::default();
        let mut i = 0usize;
        while i < opts.len() {
            let k = opts[i];
            match k {
                kind::EOL => break,
                kind::NOP => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let Some(&len) = opts.get(i + 1) else {
                o.truncated = true;
                break;
            };
            let len = usize::from(len);
            if len < 2 || i + len > opts.len() {
                o.truncated = true;
                break;
            }
            let body = &opts[i + 2..i + len];
            match (k, body.len()) {
                (kind::MSS, 2) => o.mss = Some(u16::from_be_bytes([body[0], body[1]])),
                (kind::WSCALE, 1) => o.wscale = Some(body[0].min(MAX_WSCALE)),
                (kind::SACK_PERM, 0) => o.sack_perm = true,
                (kind::TIMESTAMP, 8) => {
                    let v = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                    let e = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                    o.timestamp = Some((v, e));
                }
                _ => {}
            }
            i += len;
        }
        o
    }
}

/// What a SYN-ACK carries, in Linux's order (`tcp_options_write`): MSS; SACK-permitted and
/// timestamps (or NOP padding); window scale. At most 20 bytes, always a multiple of 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynAckOptions {
    /// Our MSS.
    pub mss: u16,
    /// Our window-scale shift, only when the client offered window scaling.
    pub wscale: Option<u8>,
    /// SACK permitted, only when the client offered it.
    pub sack_perm: bool,
    /// (our TSval, the client's TSval echoed), only when the client sent timestamps.
    pub timestamp: Option<(u32, u32)>,
}

impl SynAckOptions {
    /// Length in bytes of the encoded options.
    pub fn len(&self) -> usize {
        let mut n = 4;
        if self.timestamp.is_some() {
            n += 12;
        } else if self.sack_perm {
            n += 4;
        }
        if self.wscale.is_some() {
            n += 4;
        }
        n
    }

    /// Always false: the MSS option is always present.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the options into `out` and returns how many bytes were written.
    ///
    /// # Panics
    /// When `out` is shorter than [`SynAckOptions::len`] (at most 20 bytes).
    pub fn write(&self, out: &mut [u8]) -> usize {
        let n = self.len();
        let out = &mut out[..n];
        out[0] = kind::MSS;
        out[1] = 4;
        out[2..4].copy_from_slice(&self.mss.to_be_bytes());
        let mut i = 4;
        if let Some((val, ecr)) = self.timestamp {
            if self.sack_perm {
                out[i] = kind::SACK_PERM;
                out[i + 1] = 2;
            } else {
                out[i] = kind::NOP;
                out[i + 1] = kind::NOP;
            }
            out[i + 2] = kind::TIMESTAMP;
            out[i + 3] = 10;
            out[i + 4..i + 8].copy_from_slice(&val.to_be_bytes());
            out[i + 8..i + 12].copy_from_slice(&ecr.to_be_bytes());
            i += 12;
        } else if self.sack_perm {
            out[i..i + 4].copy_from_slice(&[kind::NOP, kind::NOP, kind::SACK_PERM, 2]);
            i += 4;
        }
        if let Some(ws) = self.wscale {
            out[i..i + 4].copy_from_slice(&[kind::NOP, kind::WSCALE, 3, ws]);
            i += 4;
        }
        i
    }
}

#[cfg(test)]
mod test {
    use super::*;

    // Linux SYN options: MSS 1460, SACK_PERM, TS 0x01020304/0, NOP, WS 7.
    static LINUX_SYN: [u8; 20] = [
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7,
    ];

    #[test]
    fn parse_linux_syn() {
        let o = TcpOptions::parse(&LINUX_SYN);
        assert_eq!(o.mss, Some(1460));
        assert!(o.sack_perm);
        assert_eq!(o.timestamp, Some((0x0102_0304, 0)));
        assert_eq!(o.wscale, Some(7));
        assert!(!o.truncated);
    }

    #[test]
    fn stops_at_bad_length_and_keeps_earlier() {
        let o = TcpOptions::parse(&[2, 4, 0x05, 0xb4, 3, 0]);
        assert_eq!(o.mss, Some(1460));
        assert!(o.truncated);
        let o = TcpOptions::parse(&[2, 4, 0x05, 0xb4, 8, 10, 1, 2]);
        assert_eq!(o.timestamp, None);
        assert!(o.truncated);
        let o = TcpOptions::parse(&[2]);
        assert!(o.truncated);
    }

    #[test]
    fn wrong_length_for_kind_is_ignored_and_wscale_capped() {
        let o = TcpOptions::parse(&[2, 3, 5, 3, 3, 30, 1, 0]);
        assert_eq!(o.mss, None);
        assert_eq!(o.wscale, Some(14));
    }

    #[test]
    fn eol_ends_parsing() {
        let o = TcpOptions::parse(&[0, 2, 4, 5, 0xb4]);
        assert_eq!(o, TcpOptions::default());
    }

    #[test]
    fn write_round_trips() {
        for ts in [None, Some((7u32, 9u32))] {
            for sack in [false, true] {
                for ws in [None, Some(9u8)] {
                    let s = SynAckOptions {
                        mss: 1400,
                        wscale: ws,
                        sack_perm: sack,
                        timestamp: ts,
                    };
                    let mut buf = [0u8; 20];
                    let n = s.write(&mut buf);
                    assert_eq!(n, s.len());
                    assert_eq!(n % 4, 0);
                    let o = TcpOptions::parse(&buf[..n]);
                    assert_eq!(o.mss, Some(1400));
                    assert_eq!(o.wscale, ws);
                    assert_eq!(o.sack_perm, sack);
                    assert_eq!(o.timestamp, ts);
                }
            }
        }
    }
}
