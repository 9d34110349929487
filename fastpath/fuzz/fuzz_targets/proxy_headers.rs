//! The PROXY v1/v2 and SPP parsers never panic, and what they accept re-encodes to a header
//! that parses back to the same addresses.
#![no_main]

use fastpath_proxy::header::{
    SPP_LEN, Transport, parse_proxy, proxy_v1, proxy_v2, spp_decode, spp_encode,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(info)) = parse_proxy(data) {
        assert!(info.len <= data.len());
        assert!(info.version == 1 || info.version == 2);
        assert_eq!(info.client.is_some(), info.proxy.is_some());
        if let (Some(c), Some(p)) = (info.client, info.proxy) {
            let h = match info.version {
                1 => proxy_v1(c, p),
                _ => proxy_v2(c, p, info.transport),
            };
            let back = parse_proxy(h.as_bytes())
                .expect("a header we wrote parses")
                .expect("a header we wrote is a header");
            assert_eq!(back.version, info.version);
            assert_eq!(back.client, info.client);
            assert_eq!(back.proxy, info.proxy);
            assert_eq!(back.len, h.len());
            if info.version == 1 {
                assert_eq!(back.transport, Transport::Stream);
            } else {
                assert_eq!(back.transport, info.transport);
            }
        }
    }
    if let Ok((spp, payload)) = spp_decode(data) {
        assert_eq!(payload.len(), data.len() - SPP_LEN);
        // IPv4-mapped addresses come back as IPv4 and are mapped again: the same 38 bytes.
        let h = spp_encode(spp.client, spp.proxy);
        assert_eq!(&h[..], &data[..SPP_LEN]);
        assert_eq!(spp_decode(&h), Ok((spp, &[][..])));
    }
});
