//! Verdicts and reasons: what happens to a frame, and why.
//!
//! Every frame gets exactly one [`Reason`]; the reason determines the [`Verdict`]. Reasons are
//! counted, never logged. Their numeric values are shared with the XDP program's per-reason
//! counters, so the order below is part of the ABI: only append.

use core::fmt;

/// What happens to a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Verdict {
    /// Handed to the kernel's stack (ARP, ND, traffic to addresses we do not own).
    Pass = 0,
    /// Dropped.
    Drop = 1,
    /// Answered by us (SYN-ACK, RST, ICMP unreachable) on the TX ring.
    Tx = 2,
    /// Handed to a CDN or Spectrum worker.
    Forward = 3,
}

impl Verdict {
    /// All verdicts in order.
    pub const ALL: [Verdict; 4] = [Verdict::Pass, Verdict::Drop, Verdict::Tx, Verdict::Forward];

    /// The lowercase name used in JSON, pcapng comments and counters.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Drop => "drop",
            Verdict::Tx => "tx",
            Verdict::Forward => "forward",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a frame got its verdict. The numbering is shared with the XDP program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Reason {
    /// Not Ethernet II (+ up to two VLAN tags) carrying IPv4/IPv6: `pass`.
    NotIp = 0,
    /// Too short for its headers, or an invalid IP/TCP/UDP header: `drop`.
    Malformed = 1,
    /// Destination outside every onboarded prefix: `pass`.
    NotOurs = 2,
    /// IPv4 fragment or IPv6 fragment header: `drop`.
    Fragment = 3,
    /// No service binding covers the destination: `drop`.
    NoBinding = 4,
    /// TCP/UDP to a port no app or CDN setting serves: `drop`.
    UnconfiguredPort = 5,
    /// An IP protocol the binding does not serve (ICMP, GRE, ESP, ...): `drop`.
    UnconfiguredProtocol = 6,
    /// Source blocked by the IP access rules: `drop`.
    FirewallBlock = 7,
    /// Answered with a TCP RST or ICMP port unreachable: `tx`.
    Reset = 8,
    /// A SYN answered with a SYN-cookie SYN-ACK: `tx`.
    SynCookie = 9,
    /// A segment or datagram of a known flow: `forward`.
    Flow = 10,
    /// The first packet of a new flow (a valid cookie ACK, a first UDP datagram): `forward`.
    NewFlow = 11,
    /// TCP that is neither a SYN, nor of a known flow, nor a valid cookie ACK: `drop`.
    OutOfState = 12,
    /// The worker's queue was full: `drop`.
    QueueFull = 13,
    /// Live, decided by the XDP program: a segment of a flow that a kernel socket owns (the
    /// worker made the validating ACK a socket), passed to it: `pass`. Never in replay, which
    /// has no kernel sockets (those segments are `flow` there).
    HandedOff = 14,
    /// Live, decided by the XDP program: the frame arrived on an RX queue without an AF_XDP
    /// socket: `drop` (the edge prefixes are local routes; the kernel must not answer them).
    NoSocket = 15,
}

impl Reason {
    /// Number of reasons (size of per-reason counter arrays).
    pub const COUNT: usize = 16;

    /// All reasons in numeric order.
    pub const ALL: [Reason; Reason::COUNT] = [
        Reason::NotIp,
        Reason::Malformed,
        Reason::NotOurs,
        Reason::Fragment,
        Reason::NoBinding,
        Reason::UnconfiguredPort,
        Reason::UnconfiguredProtocol,
        Reason::FirewallBlock,
        Reason::Reset,
        Reason::SynCookie,
        Reason::Flow,
        Reason::NewFlow,
        Reason::OutOfState,
        Reason::QueueFull,
        Reason::HandedOff,
        Reason::NoSocket,
    ];

    /// The verdict this reason implies.
    pub const fn verdict(self) -> Verdict {
        match self {
            Reason::NotIp | Reason::NotOurs | Reason::HandedOff => Verdict::Pass,
            Reason::Reset | Reason::SynCookie => Verdict::Tx,
            Reason::Flow | Reason::NewFlow => Verdict::Forward,
            Reason::Malformed
            | Reason::Fragment
            | Reason::NoBinding
            | Reason::UnconfiguredPort
            | Reason::UnconfiguredProtocol
            | Reason::FirewallBlock
            | Reason::OutOfState
            | Reason::QueueFull
            | Reason::NoSocket => Verdict::Drop,
        }
    }

    /// Whether the userspace pipeline gives this reason (replay, `explain`); the others are
    /// only the XDP program's, live.
    pub const fn in_pipeline(self) -> bool {
        !matches!(self, Reason::HandedOff | Reason::NoSocket)
    }

    /// The snake_case name used in JSON, pcapng comments and counters.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::NotIp => "not_ip",
            Reason::Malformed => "malformed",
            Reason::NotOurs => "not_ours",
            Reason::Fragment => "fragment",
            Reason::NoBinding => "no_binding",
            Reason::UnconfiguredPort => "unconfigured_port",
            Reason::UnconfiguredProtocol => "unconfigured_protocol",
            Reason::FirewallBlock => "firewall_block",
            Reason::Reset => "reset",
            Reason::SynCookie => "syn_cookie",
            Reason::Flow => "flow",
            Reason::NewFlow => "new_flow",
            Reason::OutOfState => "out_of_state",
            Reason::QueueFull => "queue_full",
            Reason::HandedOff => "handed_off",
            Reason::NoSocket => "no_socket",
        }
    }

    /// Parses a name produced by [`Reason::as_str`].
    pub fn from_name(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The reason with this numeric value.
    pub fn from_u8(v: u8) -> Option<Reason> {
        Reason::ALL.get(usize::from(v)).copied()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The service a binding hands traffic to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Service {
    /// The CDN (HTTP/HTTPS through a pool of L7 proxies).
    Cdn = 0,
    /// Spectrum (any TCP/UDP app, per edge IP and port).
    Spectrum = 1,
}

impl Service {
    /// Both services.
    pub const ALL: [Service; 2] = [Service::Cdn, Service::Spectrum];

    /// The lowercase name used in configs and JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Service::Cdn => "cdn",
            Service::Spectrum => "spectrum",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn numbering_is_dense_and_names_round_trip() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(Reason::from_u8(i as u8), Some(*r));
            assert_eq!(Reason::from_name(r.as_str()), Some(*r));
        }
        assert_eq!(Reason::from_u8(Reason::COUNT as u8), None);
    }

    #[test]
    fn verdicts() {
        assert_eq!(Reason::SynCookie.verdict(), Verdict::Tx);
        assert_eq!(Reason::Reset.verdict(), Verdict::Tx);
        assert_eq!(Reason::NotOurs.verdict(), Verdict::Pass);
        assert_eq!(Reason::NewFlow.verdict(), Verdict::Forward);
        assert_eq!(Reason::QueueFull.verdict(), Verdict::Drop);
    }
}
