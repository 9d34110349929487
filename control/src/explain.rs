//! Why a frame gets its verdict: one frame through the same pipeline code as live traffic,
//! with a tracing sink instead of the no-op one, against a scratch flow table (so an ACK is
//! judged as if no flow existed). Used by `fastpath explain` and the control socket's
//! `explain` endpoint.

use std::sync::Arc;

use fastpath::pipeline::{Outcome, Pipeline, PipelineConfig};
use fastpath::syncookie::{CookieConfig, CookieSecrets};
use fastpath::tables::Tables;
use fastpath::worker::{Timeouts, WorkerConfig, WorkerPools};
use serde::Serialize;

/// The answer.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// Frame length.
    pub length: usize,
    /// `pass`, `drop`, `tx`, `forward`.
    pub verdict: &'static str,
    /// The reason.
    pub reason: &'static str,
    /// Service, when known.
    pub service: Option<&'static str>,
    /// Binding id, when known.
    pub binding: Option<String>,
    /// App id, when known.
    pub app: Option<String>,
    /// Worker index, when known.
    pub worker: Option<u16>,
    /// The decisions, in order.
    pub path: Vec<String>,
    /// For a malformed frame: the check it fails.
    pub malformed: Option<String>,
    /// Our reply in hex, for a `tx` verdict.
    pub reply_hex: Option<String>,
}

/// Why a hex frame cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// An odd number of digits.
    #[error("the frame has an odd number of hex digits ({0})")]
    Odd(usize),
    /// A character that is not a hex digit.
    #[error("byte {index} ({text:?}) is not hex")]
    NotHex {
        /// 1-based byte position.
        index: usize,
        /// The two characters.
        text: String,
    },
    /// Nothing at all.
    #[error("the frame is empty")]
    Empty,
}

/// Parses hex with optional separators (spaces, colons, dashes, newlines) and a `0x` prefix.
///
/// # Errors
/// [`HexError`]: odd digit counts, non-hex characters, no digits.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, HexError> {
    let s = s.trim().trim_start_matches("0x");
    let digits: Vec<u8> = s.bytes().filter(|b| !b" \t\n\r:-".contains(b)).collect();
    if digits.is_empty() {
        return Err(HexError::Empty);
    }
    if !digits.len().is_multiple_of(2) {
        return Err(HexError::Odd(digits.len()));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, p)| {
            let t = String::from_utf8_lossy(p).to_string();
            u8::from_str_radix(&t, 16).map_err(|_| HexError::NotHex {
                index: i + 1,
                text: t,
            })
        })
        .collect()
}

/// The cookie secrets a frame is judged with.
#[derive(Debug, Clone)]
pub enum Secrets {
    /// A seed, as at the start of a run.
    Seed([u8; 32]),
    /// A running node's published secrets (with the rotations done so far), and the seed it
    /// started with (which keys the flow hash).
    Live {
        /// The seed the node started with.
        seed: [u8; 32],
        /// Its published secrets.
        secrets: Arc<CookieSecrets>,
    },
}

/// Explains `frame` against `tables` at `now_ns` (ns since the epoch).
pub fn explain(
    tables: &Tables,
    cfg: &PipelineConfig,
    cookies: &CookieConfig,
    secrets: &Secrets,
    now_ns: u64,
    frame: &[u8],
) -> Explanation {
    let scratch = PipelineConfig {
        flow_capacity: 64,
        ..cfg.clone()
    };
    let workers = WorkerConfig {
        queue_depth: 4,
        flow_capacity: 64,
        ..WorkerConfig::default()
    };
    let (pools, _workers) = WorkerPools::new(&workers, Timeouts::from(&scratch));
    let seed = match secrets {
        Secrets::Seed(s) | Secrets::Live { seed: s, .. } => *s,
    };
    let mut p = Pipeline::new(0, &scratch, cookies, seed, 1500, pools);
    if let Secrets::Live { secrets, .. } = secrets {
        p.follow_secrets(Arc::clone(secrets));
    }
    let mut buf = frame.to_vec();
    buf.resize(frame.len().max(fastpath::replay::FRAME_ROOM), 0);
    let mut path: Vec<String> = Vec::new();
    p.begin_batch(now_ns);
    let o: Outcome = p.process_traced(tables, now_ns, &mut buf, frame.len(), &mut path);
    p.end_batch();
    if o.verdict() == fastpath::Verdict::Forward {
        path.push(destination(tables, &o, frame));
    }
    Explanation {
        length: frame.len(),
        verdict: o.verdict().as_str(),
        reason: o.reason.as_str(),
        service: o.service.map(|s| s.as_str()),
        binding: o
            .binding
            .and_then(|b| tables.bindings.get(b as usize))
            .map(|b| {
                if b.id == b.cidr.to_string() {
                    b.id.clone()
                } else {
                    format!("{} ({})", b.id, b.cidr)
                }
            }),
        app: o
            .app
            .and_then(|a| tables.apps.get(a as usize))
            .map(|a| a.id.clone()),
        worker: o.worker,
        path,
        malformed: (o.reason == fastpath::Reason::Malformed)
            .then(|| fastpath::wire::frame::diagnose(frame))
            .flatten(),
        reply_hex: (o.tx_len > 0)
            .then(|| buf[..o.tx_len].iter().map(|b| format!("{b:02x}")).collect()),
    }
}

/// Where the workers carry a forwarded frame's flow (live).
fn destination(tables: &Tables, o: &Outcome, frame: &[u8]) -> String {
    let header = |p: fastpath::tables::ProxyProtocol| match p {
        fastpath::tables::ProxyProtocol::Off => "no PROXY header".to_string(),
        fastpath::tables::ProxyProtocol::Simple => {
            "the Simple Proxy Protocol header on every datagram".to_string()
        }
        p => format!("a PROXY {} header first", p.as_str()),
    };
    let dport = fastpath::wire::frame::parse_l2(frame)
        .ok()
        .and_then(|l2| {
            fastpath::wire::frame::parse_l3(frame, &l2)
                .ok()
                .map(|l3| (l2, l3))
        })
        .and_then(|(_, l3)| {
            frame
                .get(l3.l4_off + 2..l3.l4_off + 4)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
        });
    match o.app.and_then(|a| tables.apps.get(a as usize)) {
        Some(app) => {
            let k = dport.map_or(0, |p| p.saturating_sub(app.ports.lo));
            let origins: Vec<String> = app
                .origins
                .iter()
                .map(|x| {
                    std::net::SocketAddr::new(x.addr, x.ports.lo.saturating_add(k)).to_string()
                })
                .collect();
            format!(
                "carried to: origin {} (edge port offset {k}), with {}",
                origins.join(" or "),
                header(app.proxy_protocol)
            )
        }
        None => format!(
            "carried to: the cdn.pool member Maglev picks for this flow, of {} ({}), with {}",
            tables.cdn.spec.pool.len(),
            tables
                .cdn
                .spec
                .pool
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            header(tables.cdn.spec.proxy_protocol)
        ),
    }
}

impl Explanation {
    /// The human form `fastpath explain` and `fastpathctl explain` print.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "verdict: {} ({})", self.verdict, self.reason);
        let mut ctx = Vec::new();
        if let Some(s) = self.service {
            ctx.push(format!("service {s}"));
        }
        if let Some(b) = &self.binding {
            ctx.push(format!("binding {b}"));
        }
        if let Some(a) = &self.app {
            ctx.push(format!("app {a}"));
        }
        if let Some(w) = self.worker {
            ctx.push(format!("worker {w}"));
        }
        if !ctx.is_empty() {
            let _ = writeln!(out, "         {}", ctx.join(", "));
        }
        let _ = writeln!(out, "path ({} bytes):", self.length);
        for (i, s) in self.path.iter().enumerate() {
            let _ = writeln!(out, "  {}. {s}", i + 1);
        }
        if let Some(m) = &self.malformed {
            let _ = writeln!(out, "  {}. malformed: {m}", self.path.len() + 1);
        }
        let _ = writeln!(out, "  => {}/{}", self.verdict, self.reason);
        if let Some(r) = &self.reply_hex {
            let _ = writeln!(out, "reply: {r}");
        }
        out
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("0a0B").unwrap(), vec![10, 11]);
        assert_eq!(parse_hex("0x0a:0b 0c-0d\n").unwrap(), vec![10, 11, 12, 13]);
        assert_eq!(parse_hex("abc"), Err(HexError::Odd(3)));
        assert!(matches!(
            parse_hex("zz"),
            Err(HexError::NotHex { index: 1, .. })
        ));
        assert_eq!(parse_hex("  "), Err(HexError::Empty));
    }
}
