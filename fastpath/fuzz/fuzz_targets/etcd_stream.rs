//! What etcd's gateway sends a following node, as whatever bytes arrive: a watch stream split
//! into objects and read as watch messages, a head key's value, a stored document. None may
//! panic; each is read or refused.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    while let Some(obj) = control::etcd::split_object(&mut buf) {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&obj) {
            let _ = control::etcd::parse_watch_message(&v);
        }
    }
    let _ = control::fleet::parse_head(data);
    if let Ok(doc) = std::str::from_utf8(data) {
        let _ = control::fleet::config_of(doc, &control::config::Node::default());
    }
});
