//! Benchmarks of the whole pipeline (the LPM benchmarks are in `fastpath/benches`).
//!
//! `cargo bench --bench bench` (criterion, `harness = false`).

use criterion::{criterion_group, criterion_main};

mod naive;
mod pipeline;

criterion_group!(benches, pipeline::bench);
criterion_main!(benches);
