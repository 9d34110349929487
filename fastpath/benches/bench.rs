//! Benchmarks of the data plane's fast structures, each against crates or a naive baseline.
//! `cargo bench -p fastpath --bench bench` (criterion, `harness = false`). The whole pipeline's
//! benchmark is in the workspace root (`benches/`), where the config crate is available.

use criterion::{criterion_group, criterion_main};

mod lpm;

criterion_group!(benches, lpm::lookups, lpm::build);
criterion_main!(benches);
