//! The TCP options parser never panics, and what we write for a SYN-ACK parses back.
#![no_main]

use fastpath::wire::tcpopt::{SynAckOptions, TcpOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let o = TcpOptions::parse(data);
    let s = SynAckOptions {
        mss: o.mss.unwrap_or(536),
        wscale: o.wscale,
        sack_perm: o.sack_perm,
        timestamp: o.timestamp,
    };
    let mut buf = [0u8; 40];
    let n = s.write(&mut buf);
    let back = TcpOptions::parse(&buf[..n]);
    assert_eq!(back.mss, Some(s.mss));
    assert_eq!(back.wscale, s.wscale);
    assert_eq!(back.sack_perm, s.sack_perm);
    assert_eq!(back.timestamp, s.timestamp);
});
