//! The capture reader never panics or allocates without bound on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut r) = fastpath::replay::CaptureReader::new(data) {
        let mut buf = Vec::new();
        for _ in 0..10_000 {
            match r.next_into(&mut buf) {
                Ok(Some(_)) => assert!(buf.len() <= fastpath::replay::MAX_RECORD + 64),
                _ => break,
            }
        }
    }
});
