//! Settings of the per-packet pipeline.

/// Settings of one queue's pipeline (the same for every queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Frames per batch: one table snapshot per batch.
    pub batch_size: usize,
    /// Capacity of each queue's flow table (rounded up to a power of two).
    pub flow_capacity: usize,
    /// Idle timeout of an established TCP flow, in seconds.
    pub tcp_idle_secs: u32,
    /// Idle timeout of a UDP flow, in seconds.
    pub udp_idle_secs: u32,
    /// How long a TCP flow lingers after the client's FIN, in seconds (its last ACKs still pass).
    pub closing_secs: u32,
    /// Live with kernel-socket handoff (`fastpath run`): every validated TCP flow becomes a
    /// kernel socket and the XDP program passes its later segments to the kernel, so the gate
    /// only sees the segments that race the handoff. It keeps a TCP flow `closing_secs` instead
    /// of `tcp_idle_secs`, and takes a valid cookie ACK on a tuple it still holds for a new
    /// connection (the client reused its port). Off in replay and the benchmarks.
    pub handoff: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            batch_size: 64,
            flow_capacity: 1 << 18,
            tcp_idle_secs: 300,
            udp_idle_secs: 30,
            closing_secs: 10,
            handoff: false,
        }
    }
}

/// Why a [`PipelineConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineConfigError {
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

impl PipelineConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`PipelineConfigError::OutOfRange`] for a zero or oversized batch, a flow capacity below
    /// 64 or above 2^26, or a zero timeout.
    pub fn validate(self) -> Result<Self, PipelineConfigError> {
        let bad = |field, value: u64, range| {
            Err(PipelineConfigError::OutOfRange {
                field,
                value,
                range,
            })
        };
        if !(1..=1024).contains(&self.batch_size) {
            return bad("batch_size", self.batch_size as u64, "1..=1024");
        }
        if !(64..=1 << 26).contains(&self.flow_capacity) {
            return bad("flow_capacity", self.flow_capacity as u64, "64..=67108864");
        }
        for (f, v) in [
            ("tcp_idle_secs", self.tcp_idle_secs),
            ("udp_idle_secs", self.udp_idle_secs),
            ("closing_secs", self.closing_secs),
        ] {
            if !(1..=86_400).contains(&v) {
                return bad(f, u64::from(v), "1..=86400");
            }
        }
        Ok(self)
    }
}
