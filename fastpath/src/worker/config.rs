//! Settings of the worker pools.

/// Worker pool settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Number of CDN workers.
    pub cdn: usize,
    /// Number of Spectrum workers.
    pub spectrum: usize,
    /// Capacity of each worker's queue; a full queue drops (`queue_full`), never blocks.
    pub queue_depth: usize,
    /// Capacity of each worker's flow state table (rounded up to a power of two).
    pub flow_capacity: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            cdn: 1,
            spectrum: 1,
            queue_depth: 4096,
            flow_capacity: 1 << 18,
        }
    }
}

/// Why a [`WorkerConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerConfigError {
    /// A value outside its range.
    #[error("{field} = {value} is out of range ({range})")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
        /// The accepted range.
        range: &'static str,
    },
}

impl WorkerConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`WorkerConfigError::OutOfRange`] for zero or more than 256 workers of a kind, a queue
    /// depth outside 1..=2^20, a flow capacity outside 64..=2^26.
    pub fn validate(self) -> Result<Self, WorkerConfigError> {
        let bad = |field, value: u64, range| {
            Err(WorkerConfigError::OutOfRange {
                field,
                value,
                range,
            })
        };
        if !(1..=256).contains(&self.cdn) {
            return bad("cdn", self.cdn as u64, "1..=256");
        }
        if !(1..=256).contains(&self.spectrum) {
            return bad("spectrum", self.spectrum as u64, "1..=256");
        }
        if !(1..=1 << 20).contains(&self.queue_depth) {
            return bad("queue_depth", self.queue_depth as u64, "1..=1048576");
        }
        if !(64..=1 << 26).contains(&self.flow_capacity) {
            return bad("flow_capacity", self.flow_capacity as u64, "64..=67108864");
        }
        Ok(self)
    }
}
