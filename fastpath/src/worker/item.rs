//! What the pipeline hands a worker: a fixed-size description of one packet of a flow and,
//! live, the packet itself (in a buffer of a [`super::PacketPool`]).

use super::Packet;
use crate::flow::FlowKey;
use crate::verdict::Service;

/// The TCP options negotiated by the SYN-cookie handshake; they travel with the new flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Negotiated {
    /// The client's MSS, as encoded in the cookie (rounded down to a table value).
    pub mss: u16,
    /// The client's window-scale shift, if window scaling was negotiated.
    pub client_wscale: Option<u8>,
    /// The edge's window-scale shift announced in the SYN-ACK, if negotiated.
    pub edge_wscale: Option<u8>,
    /// SACK permitted.
    pub sack_perm: bool,
    /// ECN negotiated.
    pub ecn: bool,
    /// Timestamps negotiated: the client's latest TSval (from the ACK).
    pub ts_recent: Option<u32>,
    /// The client's initial sequence number.
    pub client_isn: u32,
    /// The edge's initial sequence number (the cookie).
    pub edge_isn: u32,
    /// The window field of the validating ACK (unscaled; shift it by `client_wscale`).
    pub client_window: u16,
    /// The receive window the SYN-ACK announced (unscaled).
    pub edge_window: u16,
    /// The TSecr of the validating ACK: the TSval of our SYN-ACK, when timestamps were
    /// negotiated. A socket taking over the flow must not send a smaller TSval.
    pub ts_ecr: u32,
}

/// What kind of packet a [`WorkItem`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    /// The first packet of a new flow (a cookie-validated ACK, a first UDP datagram).
    NewFlow,
    /// A later packet of a known flow.
    Segment,
}

/// Marks "no app" (CDN traffic) in [`WorkItem::app_slot`].
pub const NO_APP: u32 = u32::MAX;

/// One packet of a flow, as handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    /// The client-side 5-tuple.
    pub key: FlowKey,
    /// New flow or later segment.
    pub kind: WorkKind,
    /// CDN or Spectrum.
    pub service: Service,
    /// The Spectrum app's slot, or [`NO_APP`].
    pub app_slot: u32,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
    /// Frame length in bytes.
    pub wire_len: u32,
    /// L4 payload length in bytes.
    pub payload_len: u32,
    /// Time the frame arrived (capture time in replay), in nanoseconds.
    pub ts_ns: u64,
    /// The RX queue it came from.
    pub queue: u16,
    /// Negotiated TCP options (meaningful for a TCP [`WorkKind::NewFlow`]).
    pub negotiated: Negotiated,
    /// A TCP segment of a known flow that repeats the flow's validating ACK (same sequence and
    /// acknowledgment numbers: a retransmission, or the client's first data when the pure ACK
    /// was lost). A worker whose handoff of the flow failed takes it as a new attempt.
    pub handshake: bool,
    /// The IP packet, when the pipeline carries packets (live); `None` in replay.
    pub packet: Option<Packet>,
}
