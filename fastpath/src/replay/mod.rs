//! Replay: captures in and out, and the driver that runs them through the pipeline.

mod capture;
mod driver;
mod writer;

pub use capture::{
    CaptureError, CaptureReader, MAX_RECORD, RecordMeta, SYNTH_DST, SYNTH_SRC, linktype,
};
pub use driver::{
    FRAME_ROOM, FrameReport, NullSink, Replay, ReplayError, ReplaySettings, ReplayTotals, Sink,
};
pub use writer::{PcapNgWriter, PcapWriter};
