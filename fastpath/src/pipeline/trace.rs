//! Tracing the path of one frame through the tables: the engine behind `explain`.
//!
//! The pipeline is generic over [`Trace`]; the hot path uses [`NoTrace`], whose empty inline
//! method compiles away, so `explain` runs exactly the code that classifies live traffic.

use core::fmt;
use core::net::IpAddr;

use ipnet::IpNet;

use crate::tables::{AccessRuleSpec, AppSpec, BindingSpec, L4Proto, PrefixSpec};
use crate::verdict::Service;
use crate::wire::tcp::flags;
use crate::worker::Negotiated;

/// One decision on the way of a frame.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// The link layer parsed.
    Link {
        /// VLAN tags.
        vlans: u8,
        /// Ethertype after the tags.
        ethertype: u16,
    },
    /// The IP header parsed.
    Ip {
        /// Source.
        src: IpAddr,
        /// Destination.
        dst: IpAddr,
        /// Upper-layer protocol.
        proto: u8,
        /// Fragment.
        fragment: bool,
        /// IPv6 extension headers walked.
        ext_headers: u8,
    },
    /// The destination table entry that matched.
    Dest {
        /// The matched entry (prefix, binding or edge host route).
        matched: IpNet,
        /// The onboarded prefix it lies in.
        prefix: &'a PrefixSpec,
    },
    /// The binding that covers the destination.
    Binding(&'a BindingSpec),
    /// The Spectrum app serving the port.
    App(&'a AppSpec),
    /// No Spectrum app serves this protocol and port.
    NoApp {
        /// Protocol.
        proto: L4Proto,
        /// Port.
        port: u16,
    },
    /// The CDN's port policy.
    CdnPort {
        /// Protocol.
        proto: L4Proto,
        /// Port.
        port: u16,
        /// Served.
        served: bool,
        /// Port 80 under `https_only`.
        https_only: bool,
    },
    /// Access rules checked: the deciding rule (or none: allowed by default).
    Access(Option<&'a AccessRuleSpec>),
    /// Access rules not applied (`ip_firewall = false`).
    AccessSkipped,
    /// TCP header.
    Tcp {
        /// Flags.
        flags: u8,
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number.
        ack: u32,
    },
    /// A SYN-cookie minted.
    CookieMinted {
        /// The cookie.
        cookie: u32,
        /// The client MSS it encodes.
        mss: u16,
    },
    /// A cookie ACK checked.
    CookieChecked {
        /// The cookie (ack - 1).
        cookie: u32,
        /// Whether it validated.
        valid: bool,
    },
    /// A known flow.
    FlowHit {
        /// The client sent FIN earlier.
        closing: bool,
    },
    /// No flow for this 5-tuple.
    FlowMiss,
    /// The worker the flow belongs to.
    Worker {
        /// Service.
        service: Service,
        /// Worker index within the service's pool.
        index: u16,
    },
    /// A validated TCP flow, handed to its worker to become a kernel socket.
    Handoff(Negotiated),
}

/// Flag names, e.g. `SYN|ACK`.
pub fn flag_names(f: u8) -> String {
    let names = [
        (flags::FIN, "FIN"),
        (flags::SYN, "SYN"),
        (flags::RST, "RST"),
        (flags::PSH, "PSH"),
        (flags::ACK, "ACK"),
        (flags::URG, "URG"),
        (flags::ECE, "ECE"),
        (flags::CWR, "CWR"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join("|")
    }
}

impl fmt::Display for Step<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Link { vlans, ethertype } => write!(
                f,
                "link: Ethernet II, {vlans} VLAN tag(s), ethertype {ethertype:#06x}"
            ),
            Step::Ip {
                src,
                dst,
                proto,
                fragment,
                ext_headers,
            } => {
                write!(f, "ip: {src} -> {dst}, protocol {proto}")?;
                if *ext_headers > 0 {
                    write!(f, ", {ext_headers} extension header(s)")?;
                }
                if *fragment {
                    write!(f, ", fragment")?;
                }
                Ok(())
            }
            Step::Dest { matched, prefix } => write!(
                f,
                "destination: matched {matched} in onboarded prefix {}{}",
                prefix.cidr,
                if prefix.advertised {
                    ""
                } else {
                    " (not advertised)"
                }
            ),
            Step::Binding(b) => {
                write!(f, "binding: ")?;
                if b.id != b.cidr.to_string() {
                    write!(f, "{} ", b.id)?;
                }
                write!(
                    f,
                    "{} -> {} (unconfigured: {})",
                    b.cidr,
                    b.service,
                    b.unconfigured.as_str()
                )
            }
            Step::App(a) => write!(
                f,
                "spectrum app: {} ({}/{}, ip_firewall {})",
                a.id,
                a.proto.as_str(),
                a.ports,
                a.ip_firewall
            ),
            Step::NoApp { proto, port } => write!(
                f,
                "spectrum: no app serves {}/{port} on this address",
                proto.as_str()
            ),
            Step::CdnPort {
                proto,
                port,
                served,
                https_only,
            } => {
                if *https_only {
                    write!(
                        f,
                        "cdn: {}/{port} is refused with RST (https_only)",
                        proto.as_str()
                    )
                } else {
                    write!(
                        f,
                        "cdn: {}/{port} {}",
                        proto.as_str(),
                        if *served {
                            "is served"
                        } else {
                            "is not a CDN port"
                        }
                    )
                }
            }
            Step::Access(Some(r)) => {
                write!(f, "access rule: {} {}", r.action.as_str(), r.cidr)?;
                if r.id != r.cidr.to_string() && r.id != r.cidr.addr().to_string() {
                    write!(f, " ({})", r.id)?;
                }
                write!(f, " (longest match)")
            }
            Step::Access(None) => write!(f, "access rules: no rule matches the source (allowed)"),
            Step::AccessSkipped => write!(f, "access rules: not applied (ip_firewall = false)"),
            Step::Tcp { flags, seq, ack } => {
                write!(f, "tcp: flags {}, seq {seq}, ack {ack}", flag_names(*flags))
            }
            Step::CookieMinted { cookie, mss } => {
                write!(f, "syn cookie: minted {cookie:#010x} (client MSS {mss})")
            }
            Step::CookieChecked { cookie, valid } => write!(
                f,
                "syn cookie: ack-1 = {cookie:#010x} {}",
                if *valid {
                    "validates"
                } else {
                    "does not validate"
                }
            ),
            Step::FlowHit { closing } => {
                write!(f, "flow: known{}", if *closing { " (closing)" } else { "" })
            }
            Step::FlowMiss => write!(f, "flow: none for this 5-tuple"),
            Step::Worker { service, index } => write!(f, "worker: {service} #{index}"),
            Step::Handoff(n) => {
                write!(
                    f,
                    "handoff: live, the worker makes this flow a kernel socket, established at once \
                     (TCP_REPAIR: next seq {} ours, {} the client's; client MSS {}",
                    n.edge_isn.wrapping_add(1),
                    n.client_isn.wrapping_add(1),
                    n.mss
                )?;
                if let (Some(c), Some(e)) = (n.client_wscale, n.edge_wscale) {
                    write!(f, ", window scale {c}/{e}")?;
                }
                if n.sack_perm {
                    write!(f, ", SACK")?;
                }
                if n.ts_recent.is_some() {
                    write!(f, ", timestamps")?;
                }
                write!(
                    f,
                    "), this segment's payload in its receive queue; the XDP program passes \
                     its later segments to it (handed_off)"
                )
            }
        }
    }
}

/// Receives the steps of one frame.
pub trait Trace {
    /// One step.
    fn step(&mut self, s: Step<'_>);
}

/// The hot path's trace: nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrace;

impl Trace for NoTrace {
    #[inline(always)]
    fn step(&mut self, _: Step<'_>) {}
}

/// Collects the steps as lines of text.
impl Trace for Vec<String> {
    fn step(&mut self, s: Step<'_>) {
        self.push(s.to_string());
    }
}
