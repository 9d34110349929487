//! Connection events with the status codes of the Spectrum event log.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use core::net::SocketAddr;

use crate::flow::FlowKey;
use crate::stats::Counter;
use crate::verdict::Service;

/// Status codes of the Spectrum event log (seed "Event logs").
pub mod status {
    /// Connection was opened successfully.
    pub const OPENED: u16 = 0;
    /// Normal connection closure.
    pub const NORMAL_CLOSE: u16 = 200;
    /// The client IP matched a firewall rule with deny action.
    pub const FIREWALL_DENY: u16 = 403;
    /// The origin closed the connection with a RST.
    pub const ORIGIN_RESET: u16 = 444;
    /// A timeout on an established connection to origin.
    pub const ORIGIN_TIMEOUT: u16 = 445;
    /// Origin keepalive expired.
    pub const ORIGIN_KEEPALIVE: u16 = 446;
    /// Error reading or writing an established origin connection.
    pub const ORIGIN_IO: u16 = 447;
    /// Origin connection broken pipe.
    pub const ORIGIN_EPIPE: u16 = 448;
    /// Client connection received an error.
    pub const CLIENT_REFUSED: u16 = 495;
    /// Client host unreachable.
    pub const CLIENT_UNREACHABLE: u16 = 496;
    /// A timeout on an established connection to the client.
    pub const CLIENT_TIMEOUT: u16 = 497;
    /// Client connection broken pipe.
    pub const CLIENT_EPIPE: u16 = 498;
    /// The client closed the connection with a RST.
    pub const CLIENT_RESET: u16 = 499;
    /// Internal error.
    pub const INTERNAL: u16 = 500;
    /// Unknown origin connection error.
    pub const ORIGIN_UNKNOWN: u16 = 520;
    /// Origin refused the connection.
    pub const ORIGIN_REFUSED: u16 = 521;
    /// Opening a connection to origin timed out.
    pub const ORIGIN_CONNECT_TIMEOUT: u16 = 522;
    /// Origin network unreachable.
    pub const ORIGIN_UNREACHABLE: u16 = 523;
    /// Opening a connection to origin failed (internal).
    pub const ORIGIN_INTERNAL: u16 = 524;
    /// The origin IP is blocked.
    pub const ORIGIN_BLOCKED: u16 = 532;
    /// Unknown connection error.
    pub const UNKNOWN: u16 = 999;
}

/// The event dimension of the analytics (seed "Analytics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A connection was opened.
    Connect,
    /// A long-lived connection's running totals (at the end of a replay for flows still open).
    Progress,
    /// A connection ended.
    Disconnect,
    /// The origin side failed.
    OriginError,
    /// The client was filtered by the access rules.
    ClientFiltered,
}

impl EventKind {
    /// The name used by the analytics API.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Connect => "connect",
            EventKind::Progress => "progress",
            EventKind::Disconnect => "disconnect",
            EventKind::OriginError => "originError",
            EventKind::ClientFiltered => "clientFiltered",
        }
    }
}

/// One connection event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// When (ns; capture time in replay).
    pub ts_ns: u64,
    /// What.
    pub kind: EventKind,
    /// Status code (see [`status`]).
    pub status: u16,
    /// The flow.
    pub key: FlowKey,
    /// Service.
    pub service: Service,
    /// App slot, or [`super::NO_APP`].
    pub app_slot: u32,
    /// Payload bytes from the client so far.
    pub bytes_ingress: u64,
    /// Payload bytes to the client so far.
    pub bytes_egress: u64,
    /// Packets from the client so far.
    pub packets: u64,
    /// Connection duration so far (ns).
    pub duration_ns: u64,
    /// The origin (or CDN backend) the connection was carried to; `None` offline and before
    /// one was chosen.
    pub origin: Option<SocketAddr>,
}

/// A bounded ring of events: writing never blocks; when full, the oldest event is dropped and
/// counted. Cloning gives another handle to the same ring (for a reader on another thread).
#[derive(Debug, Clone)]
pub struct EventRing {
    q: Arc<ArrayQueue<Event>>,
    dropped: Arc<Counter>,
}

impl EventRing {
    /// A ring of `capacity` (>= 1) events.
    pub fn new(capacity: usize) -> EventRing {
        EventRing {
            q: Arc::new(ArrayQueue::new(capacity.max(1))),
            dropped: Arc::new(Counter::default()),
        }
    }

    /// Appends `e`, dropping the oldest event when full. Only the owning worker writes.
    #[inline]
    pub fn push(&self, e: Event) {
        if self.q.force_push(e).is_some() {
            self.dropped.add(1);
        }
    }

    /// Takes the oldest event.
    pub fn pop(&self) -> Option<Event> {
        self.q.pop()
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// True when no event waits.
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Events dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}
