//! Writes the captures of `pcaps/` and their expected verdicts: `cargo run -p pcapgen`.
//! `cargo run -p pcapgen -- flows SEED FILE` writes the generated many-flows mix of `SEED`
//! (the benchmarks make it in memory; it is not kept in `pcaps/`) to `FILE`, and its expected
//! verdicts to `FILE` with `.expected.jsonl` instead of its extension.

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [what, seed, file] = &args[..]
        && what == "flows"
    {
        let seed = seed.parse::<u64>().expect("SEED is a number");
        let c = pcapgen::flows(seed);
        let pcap = PathBuf::from(file);
        let expected = pcap.with_extension("expected.jsonl");
        std::fs::write(&pcap, pcapgen::pcap_bytes(&c))
            .unwrap_or_else(|e| panic!("{}: {e}", pcap.display()));
        std::fs::write(&expected, pcapgen::expected_jsonl(&c))
            .unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{}: {} frames, {} distinct flows (config {})",
                pcap.display(),
                c.frames.len(),
                pcapgen::distinct_flows(&c),
                c.config
            );
        }
        return;
    }
    assert!(args.is_empty(), "usage: pcapgen [flows SEED FILE]");
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
