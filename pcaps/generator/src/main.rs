//! Writes the captures of `pcaps/` and their expected verdicts: `cargo run -p pcapgen`.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for c in pcapgen::all() {
        let pcap = dir.join(format!("{}.pcap", c.name));
        let expected = dir.join(format!("{}.expected.jsonl", c.name));
        std::fs::write(&pcap, pcapgen::pcap_bytes(&c))
            .unwrap_or_else(|e| panic!("{}: {e}", pcap.display()));
        std::fs::write(&expected, pcapgen::expected_jsonl(&c))
            .unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{}: {} frames (config {})",
                c.name,
                c.frames.len(),
                c.config
            );
        }
    }
}
