//! Real origins for the lab and the end-to-end tests: an HTTP server, a TCP echo and a UDP
//! echo, each reporting what PROXY or SPP header it received (`fastpath origin` serves them).
//!
//! Contract:
//!
//! - Every TCP origin accepts an optional PROXY v1 or v2 header first, auto-detected with
//!   [`parse_proxy`] before anything else is parsed. A malformed header closes the connection
//!   (the spec: "the receiver must ... close the connection"). A connection whose first bytes
//!   are a true prefix of a header and then stall for [`DETECT_TIMEOUT`] is treated as plain.
//! - HTTP ([`LabOrigins::http`]): HTTP/1.1, one request per connection (`Connection: close`).
//!   Every request gets `200` and a `text/plain` body naming the origin and the client:
//!   ```text
//!   hello from the origin at <local addr>
//!   you are <client addr from the PROXY header, else the TCP peer> (<PROXY v1|PROXY v2|no PROXY header>)
//!   ```
//!   `GET /bytes/N` answers `N` bytes of [`BYTES_PATTERN`] repeated (`Content-Length: N`).
//!   A `POST` or `PUT` body (`Content-Length` only; chunked uploads get `411`) is read and the
//!   answer is the hello lines followed by `received N bytes sha256 HEX\n`.
//! - TCP echo ([`LabOrigins::echo`]): writes `<banner>\r\n` at once when a banner is set (an
//!   origin that speaks first, like SSH or SMTP), then echoes every byte after the PROXY
//!   header and honours half-close: after the client's EOF it writes everything back, then
//!   shuts its write side down.
//! - UDP echo ([`LabOrigins::udp_echo`]): a datagram that starts with an SPP header is answered
//!   with the same 38-byte header and its payload; one that starts with a PROXY v2 header (the
//!   first datagram of a v2 UDP flow) is answered with the payload after the header; anything
//!   else is echoed as is.
//! - Log lines, one per event, all prefixed with the origin (`http <local>:`, `echo <local>:`,
//!   `udp <local>:`), go to the `log` channel; a closed channel is not an error:
//!   ```text
//!   http 127.0.0.1:8081: listening
//!   http 127.0.0.1:8081: 127.0.0.1:40000: GET /bytes/10 -> 200 (PROXY v1 client=192.0.2.1:5000 proxy=198.51.100.1:80)
//!   echo 127.0.0.1:8082: connection from 127.0.0.1:40002: PROXY v2 client=192.0.2.1:5000 proxy=198.51.100.1:22 header=0d0a0d0a000d0a515549540a211100...
//!   echo 127.0.0.1:8082: connection from 127.0.0.1:40004: no PROXY header
//!   echo 127.0.0.1:8082: closed 127.0.0.1:40002 after 5 bytes
//!   udp 127.0.0.1:8083: from 127.0.0.1:40006: SPP client=192.0.2.1:5000 proxy=198.51.100.1:53 payload=4 bytes
//!   udp 127.0.0.1:8083: from 127.0.0.1:40008: no SPP header, 4 bytes
//!   udp 127.0.0.1:8083: from 127.0.0.1:40008: PROXY v2 client=... proxy=... header=0d0a...
//!   ```
//!
//! Known gaps: no TLS, no keep-alive, no chunked request bodies, no pipelining. These origins
//! are for tests and demonstrations, not for load: every connection is a task and nothing
//! bounds their number.

use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;

use crate::header::{ProxyError, ProxyInfo, parse_proxy, spp_decode};

/// What to serve.
#[derive(Debug, Clone, Default)]
pub struct LabOrigins {
    /// Addresses of HTTP/1.1 origins.
    pub http: Vec<SocketAddr>,
    /// Addresses of TCP echo origins.
    pub echo: Vec<SocketAddr>,
    /// Addresses of UDP echo origins (SPP and PROXY v2 aware).
    pub udp_echo: Vec<SocketAddr>,
    /// A line the TCP echo origins write first on every connection (`\r\n` is appended).
    pub banner: Option<String>,
}

/// How long a connection may stall on the prefix of a PROXY header before its bytes are taken
/// as plain data.
pub const DETECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The bytes of `GET /bytes/N`: byte `i` of the body is `BYTES_PATTERN[i % 64]`.
pub const BYTES_PATTERN: &[u8; 64] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-\n";

/// Fills `buf` with the body of `GET /bytes/N` from byte `offset` on.
pub fn fill_pattern(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = BYTES_PATTERN[((offset + i as u64) % 64) as usize];
    }
}

/// The longest request head (request line and headers) the HTTP origin reads.
const MAX_HEAD: usize = 64 * 1024;

/// The sockets of [`LabOrigins`], bound: their addresses are known (port 0 resolved) before
/// they serve.
#[derive(Debug)]
pub struct BoundOrigins {
    http: Vec<TcpListener>,
    echo: Vec<TcpListener>,
    udp_echo: Vec<UdpSocket>,
    banner: Option<Arc<str>>,
}

impl LabOrigins {
    /// Binds every address.
    ///
    /// # Errors
    /// The first address that cannot be bound (in use, not local, no permission), with the
    /// address in the message.
    pub async fn bind(&self) -> io::Result<BoundOrigins> {
        let ctx = |what: &str, a: &SocketAddr| {
            let what = what.to_owned();
            let a = *a;
            move |e: io::Error| io::Error::new(e.kind(), format!("binding {what} on {a}: {e}"))
        };
        let mut b = BoundOrigins {
            http: Vec::new(),
            echo: Vec::new(),
            udp_echo: Vec::new(),
            banner: self.banner.as_deref().map(Arc::from),
        };
        for a in &self.http {
            b.http
                .push(TcpListener::bind(a).await.map_err(ctx("HTTP", a))?);
        }
        for a in &self.echo {
            b.echo
                .push(TcpListener::bind(a).await.map_err(ctx("echo", a))?);
        }
        for a in &self.udp_echo {
            b.udp_echo
                .push(UdpSocket::bind(a).await.map_err(ctx("UDP echo", a))?);
        }
        Ok(b)
    }
}

impl BoundOrigins {
    /// Local addresses of the HTTP origins, in the order given.
    pub fn http_addrs(&self) -> Vec<SocketAddr> {
        self.http
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Local addresses of the TCP echo origins, in the order given.
    pub fn echo_addrs(&self) -> Vec<SocketAddr> {
        self.echo
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Local addresses of the UDP echo origins, in the order given.
    pub fn udp_echo_addrs(&self) -> Vec<SocketAddr> {
        self.udp_echo
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Serves until `stop` resolves, then drops every listener and connection. Logs one
    /// `listening` line per origin first.
    ///
    /// # Errors
    /// None so far: accept and receive errors are logged and retried, and connection errors
    /// end only their connection. The `Result` leaves room for fatal errors.
    pub async fn serve(
        self,
        log: UnboundedSender<String>,
        stop: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let mut tasks = JoinSet::new();
        for l in self.http {
            let local = l.local_addr()?;
            emit(&log, format!("http {local}: listening"));
            tasks.spawn(accept_loop(l, local, log.clone(), Kind::Http));
        }
        for l in self.echo {
            let local = l.local_addr()?;
            emit(&log, format!("echo {local}: listening"));
            let banner = self.banner.clone();
            tasks.spawn(accept_loop(l, local, log.clone(), Kind::Echo(banner)));
        }
        for s in self.udp_echo {
            let local = s.local_addr()?;
            emit(&log, format!("udp {local}: listening"));
            tasks.spawn(udp_loop(s, local, log.clone()));
        }
        stop.await;
        // Aborting an accept loop drops its JoinSet, which aborts its connections.
        tasks.shutdown().await;
        Ok(())
    }
}

/// Serves until `stop` resolves; every line it prints goes to `log` (one line per connection
/// or datagram event, see the module docs). Binds first, so a bad address is an error before
/// anything is served.
///
/// # Errors
/// An address that cannot be bound (see [`LabOrigins::bind`]).
pub async fn serve(
    o: LabOrigins,
    log: UnboundedSender<String>,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    o.bind().await?.serve(log, stop).await
}

fn emit(log: &UnboundedSender<String>, line: String) {
    // Nobody listening any more is fine: the origins keep serving.
    let _ = log.send(line);
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `PROXY v2 client=<addr> proxy=<addr> header=<hex>`.
fn describe(info: &ProxyInfo, raw: &[u8]) -> String {
    let addr = |a: Option<SocketAddr>| a.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    format!(
        "PROXY v{} client={} proxy={} header={}",
        info.version,
        addr(info.client),
        addr(info.proxy),
        hex(raw)
    )
}

/// Which TCP origin an accept loop serves.
#[derive(Clone)]
enum Kind {
    Http,
    Echo(Option<Arc<str>>),
}

async fn accept_loop(l: TcpListener, local: SocketAddr, log: UnboundedSender<String>, kind: Kind) {
    let tag = match kind {
        Kind::Http => "http",
        Kind::Echo(_) => "echo",
    };
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = l.accept() => match r {
                Ok((s, peer)) => {
                    let log = log.clone();
                    match &kind {
                        Kind::Http => conns.spawn(http_conn(s, local, peer, log)),
                        Kind::Echo(b) => conns.spawn(echo_conn(s, local, peer, b.clone(), log)),
                    };
                }
                Err(e) => {
                    // EMFILE and friends: wait for connections to finish rather than spin.
                    emit(&log, format!("{tag} {local}: accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// What the start of a connection turned out to be.
enum Detected {
    /// A PROXY header, which took `buf[..info.len]`.
    Header(ProxyInfo),
    /// Plain data (possibly none: the client closed without sending anything).
    Plain,
    /// A malformed PROXY header.
    Bad(ProxyError),
}

/// Reads into `buf` until it is known whether the connection starts with a PROXY header.
async fn detect(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Detected> {
    let mut chunk = [0u8; 4096];
    loop {
        match parse_proxy(buf) {
            Ok(Some(info)) => return Ok(Detected::Header(info)),
            Ok(None) => return Ok(Detected::Plain),
            Err(ProxyError::Incomplete) => {}
            Err(e) => return Ok(Detected::Bad(e)),
        }
        let n = if buf.is_empty() {
            // Nothing yet: a client may wait for the banner or just be slow to speak.
            s.read(&mut chunk).await?
        } else {
            match tokio::time::timeout(DETECT_TIMEOUT, s.read(&mut chunk)).await {
                Ok(r) => r?,
                Err(_) => return Ok(Detected::Plain),
            }
        };
        if n == 0 {
            // EOF inside a header prefix: what came is plain data.
            return Ok(Detected::Plain);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn echo_conn(
    mut s: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    banner: Option<Arc<str>>,
    log: UnboundedSender<String>,
) {
    let r = echo(&mut s, local, peer, banner, &log).await;
    let line = match r {
        Ok(n) => format!("echo {local}: closed {peer} after {n} bytes"),
        Err((n, e)) => format!("echo {local}: closed {peer} after {n} bytes ({e})"),
    };
    emit(&log, line);
}

/// The echo of one connection: bytes echoed, or the error with the bytes echoed before it.
async fn echo(
    s: &mut TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    banner: Option<Arc<str>>,
    log: &UnboundedSender<String>,
) -> Result<u64, (u64, io::Error)> {
    if let Some(b) = banner {
        let line = format!("{b}\r\n");
        s.write_all(line.as_bytes()).await.map_err(|e| (0, e))?;
    }
    let mut buf = Vec::new();
    let start = match detect(s, &mut buf).await.map_err(|e| (0, e))? {
        Detected::Header(info) => {
            emit(
                log,
                format!(
                    "echo {local}: connection from {peer}: {}",
                    describe(&info, &buf[..info.len])
                ),
            );
            info.len
        }
        Detected::Plain => {
            emit(
                log,
                format!("echo {local}: connection from {peer}: no PROXY header"),
            );
            0
        }
        Detected::Bad(e) => {
            emit(
                log,
                format!("echo {local}: connection from {peer}: bad PROXY header ({e}), closing"),
            );
            return Ok(0);
        }
    };
    let mut total = 0u64;
    let first = &buf[start..];
    s.write_all(first).await.map_err(|e| (0, e))?;
    total += first.len() as u64;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = s.read(&mut chunk).await.map_err(|e| (total, e))?;
        if n == 0 {
            break;
        }
        s.write_all(&chunk[..n]).await.map_err(|e| (total, e))?;
        total += n as u64;
    }
    // Half-close: the client is done sending and has everything back; say we are done too.
    s.shutdown().await.map_err(|e| (total, e))?;
    Ok(total)
}

/// A parsed request head.
struct Request {
    method: String,
    target: String,
    content_length: u64,
    chunked: bool,
    expect_continue: bool,
}

/// Parses a request head (without the final empty line); `Err(status)` for a bad one.
fn parse_head(head: &[u8]) -> Result<Request, u16> {
    let head = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (first.next(), first.next(), first.next(), first.next())
    else {
        return Err(400);
    };
    if method.is_empty() || target.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(400);
    }
    let mut r = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        content_length: 0,
        chunked: false,
        expect_continue: false,
    };
    let mut length: Option<u64> = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(400);
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value.parse().map_err(|_| 400u16)?;
            if length.is_some_and(|l| l != n) {
                return Err(400);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            r.chunked = true;
        } else if name.eq_ignore_ascii_case("expect") {
            r.expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    r.content_length = length.unwrap_or(0);
    Ok(r)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        411 => "Length Required",
        431 => "Request Header Fields Too Large",
        _ => "",
    }
}

/// Writes a whole response with a `text/plain` body.
async fn respond(s: &mut TcpStream, status: u16, body: &str, head_only: bool) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    s.write_all(out.as_bytes()).await
}

async fn http_conn(
    mut s: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    log: UnboundedSender<String>,
) {
    let line = match http(&mut s, local, peer).await {
        Ok(Some(line)) => line,
        Ok(None) => return,
        Err(e) => format!("{peer}: {e}"),
    };
    emit(&log, format!("http {local}: {line}"));
    // Lingering close: drain what the client still sends (a refused upload) for a moment, so
    // that closing with unread data does not reset the connection before it read the answer.
    let _ = s.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(n) = s.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// One HTTP exchange: the log line (without the origin prefix), `None` when the client left
/// without a request.
async fn http(
    s: &mut TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let (info, mut at) = match detect(s, &mut buf).await? {
        Detected::Header(info) => {
            let len = info.len;
            (Some(info), len)
        }
        Detected::Plain => (None, 0),
        Detected::Bad(e) => return Ok(Some(format!("{peer}: bad PROXY header ({e}), closing"))),
    };
    let (who, how) = match &info {
        Some(i) => (i.client.unwrap_or(peer), format!("PROXY v{}", i.version)),
        None => (peer, "no PROXY header".to_owned()),
    };
    let via = match &info {
        Some(i) => describe(i, &buf[..i.len]),
        None => how.clone(),
    };
    // The request head.
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = buf[at..].windows(4).position(|w| w == b"\r\n\r\n") {
            break at + i;
        }
        if buf.len() - at > MAX_HEAD {
            respond(s, 431, "request head too large\n", false).await?;
            return Ok(Some(format!(
                "{peer}: request head too large -> 431 ({via})"
            )));
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            if buf.len() == at {
                return Ok(None);
            }
            return Ok(Some(format!(
                "{peer}: closed inside the request head ({via})"
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let req = match parse_head(&buf[at..head_end]) {
        Ok(r) => r,
        Err(status) => {
            respond(s, status, "bad request\n", false).await?;
            return Ok(Some(format!("{peer}: bad request -> {status} ({via})")));
        }
    };
    at = head_end + 4;
    let summary = format!("{peer}: {} {}", req.method, req.target);
    if req.chunked {
        respond(
            s,
            411,
            "chunked uploads are not supported: send Content-Length\n",
            false,
        )
        .await?;
        return Ok(Some(format!("{summary} -> 411 ({via})")));
    }
    // The body, hashed as it streams in.
    if req.expect_continue && req.content_length > 0 {
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    let mut hash = Sha256::new();
    let have = (buf.len() - at).min(usize::try_from(req.content_length).unwrap_or(usize::MAX));
    hash.update(&buf[at..at + have]);
    let mut left = req.content_length - have as u64;
    while left > 0 {
        let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = s.read(&mut chunk[..want]).await?;
        if n == 0 {
            return Ok(Some(format!("{summary}: closed inside the body ({via})")));
        }
        hash.update(&chunk[..n]);
        left -= n as u64;
    }
    let head_only = req.method == "HEAD";
    let path = req.target.split('?').next().unwrap_or_default();
    if let Some(n) = path.strip_prefix("/bytes/")
        && (req.method == "GET" || head_only)
    {
        let Ok(n) = n.parse::<u64>() else {
            respond(s, 400, "give /bytes/N with N a number of bytes\n", false).await?;
            return Ok(Some(format!("{summary} -> 400 ({via})")));
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {n}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await?;
        if !head_only {
            let mut sent = 0u64;
            while sent < n {
                let k = chunk
                    .len()
                    .min(usize::try_from(n - sent).unwrap_or(usize::MAX));
                fill_pattern(sent, &mut chunk[..k]);
                s.write_all(&chunk[..k]).await?;
                sent += k as u64;
            }
        }
        return Ok(Some(format!("{summary} -> 200, {n} bytes ({via})")));
    }
    let mut body = format!("hello from the origin at {local}\nyou are {who} ({how})\n");
    if req.method == "POST" || req.method == "PUT" {
        let digest = hash.finalize();
        let _ = writeln!(
            body,
            "received {} bytes sha256 {}",
            req.content_length,
            hex(&digest)
        );
    }
    respond(s, 200, &body, head_only).await?;
    Ok(Some(format!("{summary} -> 200 ({via})")))
}

async fn udp_loop(s: UdpSocket, local: SocketAddr, log: UnboundedSender<String>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, peer) = match s.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                emit(&log, format!("udp {local}: receive failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let d = &buf[..n];
        let reply = match spp_decode(d) {
            Ok((spp, payload)) => {
                emit(
                    &log,
                    format!(
                        "udp {local}: from {peer}: SPP client={} proxy={} payload={} bytes",
                        spp.client,
                        spp.proxy,
                        payload.len()
                    ),
                );
                // The same header, then the payload: exactly what came.
                d
            }
            Err(_) => {
                emit(
                    &log,
                    format!("udp {local}: from {peer}: no SPP header, {n} bytes"),
                );
                match parse_proxy(d) {
                    Ok(Some(info)) if info.version == 2 => {
                        emit(
                            &log,
                            format!(
                                "udp {local}: from {peer}: {}",
                                describe(&info, &d[..info.len])
                            ),
                        );
                        &d[info.len..]
                    }
                    _ => d,
                }
            }
        };
        if let Err(e) = s.send_to(reply, peer).await {
            emit(&log, format!("udp {local}: reply to {peer} failed: {e}"));
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::header::{Transport, proxy_v1, proxy_v2, spp_encode};
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
    use tokio::sync::oneshot;

    /// Origins serving on loopback, port 0: their addresses, the log, and the way to stop them.
    struct Lab {
        http: Vec<SocketAddr>,
        echo: Vec<SocketAddr>,
        udp: Vec<SocketAddr>,
        log: UnboundedReceiver<String>,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<io::Result<()>>,
    }

    async fn lab(banner: Option<&str>) -> Lab {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let o = LabOrigins {
            http: vec![any],
            echo: vec![any],
            udp_echo: vec![any],
            banner: banner.map(str::to_owned),
        };
        let b = o.bind().await.unwrap();
        let (http, echo, udp) = (b.http_addrs(), b.echo_addrs(), b.udp_echo_addrs());
        let (tx, log) = unbounded_channel();
        let (stop, rx) = oneshot::channel();
        let task = tokio::spawn(b.serve(tx, async {
            let _ = rx.await;
        }));
        Lab {
            http,
            echo,
            udp,
            log,
            stop: Some(stop),
            task,
        }
    }

    impl Lab {
        /// The next log line that contains `needle` (waits up to 5 s).
        async fn expect_log(&mut self, needle: &str) -> String {
            let wait = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(line) = self.log.recv().await {
                    if line.contains(needle) {
                        return line;
                    }
                }
                panic!("log closed before a line with {needle:?}");
            });
            wait.await
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"))
        }

        async fn stop(mut self) {
            let _ = self.stop.take().unwrap().send(());
            self.task.await.unwrap().unwrap();
        }
    }

    /// Sends `req` (after `prefix`), reads the whole answer.
    async fn exchange(addr: SocketAddr, prefix: &[u8], req: &[u8]) -> (TcpStream, Vec<u8>) {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(&[prefix, req].concat()).await.unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).await.unwrap();
        (c, out)
    }

    /// Status, headers and body of an answer.
    fn split(answer: &[u8]) -> (String, Vec<u8>) {
        let i = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            String::from_utf8(answer[..i].to_vec()).unwrap(),
            answer[i + 4..].to_vec(),
        )
    }

    #[tokio::test]
    async fn http_without_proxy_header() {
        let mut lab = lab(None).await;
        let (c, out) = exchange(lab.http[0], b"", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let me = c.local_addr().unwrap();
        let (head, body) = split(&out);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Type: text/plain"), "{head}");
        let want = format!(
            "hello from the origin at {}\nyou are {me} (no PROXY header)\n",
            lab.http[0]
        );
        assert_eq!(String::from_utf8(body).unwrap(), want);
        lab.expect_log(&format!("{me}: GET / -> 200 (no PROXY header)"))
            .await;
        lab.stop().await;
    }

    #[tokio::test]
    async fn http_with_proxy_v1() {
        let mut lab = lab(None).await;
        let client: SocketAddr = "192.0.2.7:4242".parse().unwrap();
        let h = proxy_v1(client, lab.http[0]);
        let (_, out) = exchange(lab.http[0], h.as_bytes(), b"GET /x HTTP/1.1\r\n\r\n").await;
        let (_, body) = split(&out);
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.ends_with("you are 192.0.2.7:4242 (PROXY v1)\n"),
            "{body}"
        );
        let line = lab.expect_log("GET /x -> 200").await;
        assert!(line.contains("PROXY v1 client=192.0.2.7:4242"), "{line}");
        lab.stop().await;
    }

    #[tokio::test]
    async fn http_with_proxy_v2_ipv6() {
        let mut lab = lab(None).await;
        let client: SocketAddr = "[2001:db8::7]:4242".parse().unwrap();
        let h = proxy_v2(client, lab.http[0], Transport::Stream);
        let (_, out) = exchange(lab.http[0], h.as_bytes(), b"GET / HTTP/1.1\r\n\r\n").await;
        let (_, body) = split(&out);
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.ends_with("you are [2001:db8::7]:4242 (PROXY v2)\n"),
            "{body}"
        );
        lab.expect_log("PROXY v2 client=[2001:db8::7]:4242").await;
        lab.stop().await;
    }

    #[tokio::test]
    async fn http_bytes() {
        let lab = lab(None).await;
        let (_, out) = exchange(lab.http[0], b"", b"GET /bytes/100000 HTTP/1.1\r\n\r\n").await;
        let (head, body) = split(&out);
        assert!(head.contains("Content-Length: 100000\r\n"), "{head}");
        let mut want = vec![0u8; 100_000];
        fill_pattern(0, &mut want);
        assert_eq!(body, want);
        assert_eq!(&body[60..70], b"YZ-\n012345");
        let (_, out) = exchange(lab.http[0], b"", b"GET /bytes/x HTTP/1.1\r\n\r\n").await;
        assert!(out.starts_with(b"HTTP/1.1 400 "));
        let (_, out) = exchange(lab.http[0], b"", b"HEAD /bytes/5 HTTP/1.1\r\n\r\n").await;
        let (head, body) = split(&out);
        assert!(
            head.contains("Content-Length: 5\r\n") && body.is_empty(),
            "{head}"
        );
        lab.stop().await;
    }

    #[tokio::test]
    async fn http_post_body_is_hashed() {
        let lab = lab(None).await;
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 7) as u8).collect();
        let want = hex(&Sha256::digest(&data));
        for expect in ["", "Expect: 100-continue\r\n"] {
            let req = [
                format!("POST /up HTTP/1.1\r\nContent-Length: 70000\r\n{expect}\r\n").as_bytes(),
                &data,
            ]
            .concat();
            let (_, out) = exchange(lab.http[0], b"", &req).await;
            let text = String::from_utf8_lossy(&out);
            assert!(
                text.contains(&format!("received 70000 bytes sha256 {want}\n")),
                "{text}"
            );
        }
        let (_, out) = exchange(lab.http[0], b"", b"PUT / HTTP/1.1\r\n\r\n").await;
        let text = String::from_utf8_lossy(&out);
        let empty = hex(&Sha256::digest(b""));
        assert!(
            text.contains(&format!("received 0 bytes sha256 {empty}")),
            "{text}"
        );
        lab.stop().await;
    }

    #[tokio::test]
    async fn http_refuses_chunked_and_garbage() {
        let lab = lab(None).await;
        let req = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let (_, out) = exchange(lab.http[0], b"", req).await;
        assert!(out.starts_with(b"HTTP/1.1 411 Length Required\r\n"));
        let (_, out) = exchange(lab.http[0], b"", b"HELLO\r\n\r\n").await;
        assert!(out.starts_with(b"HTTP/1.1 400 "));
        // A malformed PROXY header closes without an answer.
        let (_, out) = exchange(lab.http[0], b"PROXY TCP9 x\r\n", b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(out.is_empty());
        lab.stop().await;
    }

    #[tokio::test]
    async fn echo_banner_then_proxy_v2() {
        let mut lab = lab(Some("SSH-2.0-lab")).await;
        let mut c = TcpStream::connect(lab.echo[0]).await.unwrap();
        // The origin speaks first, before the client sent anything.
        let mut banner = [0u8; 13];
        c.read_exact(&mut banner).await.unwrap();
        assert_eq!(&banner, b"SSH-2.0-lab\r\n");
        let client: SocketAddr = "192.0.2.9:5000".parse().unwrap();
        let proxy: SocketAddr = "198.51.100.1:22".parse().unwrap();
        let h = proxy_v2(client, proxy, Transport::Stream);
        // The header in two writes: detection waits for the rest.
        c.write_all(&h.as_bytes()[..10]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.write_all(&[&h.as_bytes()[10..], b"hello"].concat())
            .await
            .unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        c.shutdown().await.unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        let line = lab.expect_log("connection from").await;
        let want = format!(
            "PROXY v2 client=192.0.2.9:5000 proxy=198.51.100.1:22 header={}",
            hex(h.as_bytes())
        );
        assert!(line.ends_with(&want), "{line}");
        lab.expect_log("after 5 bytes").await;
        lab.stop().await;
    }

    #[tokio::test]
    async fn echo_half_close_plain() {
        let mut lab = lab(None).await;
        let c = TcpStream::connect(lab.echo[0]).await.unwrap();
        let me = c.local_addr().unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
        let (mut r, mut w) = c.into_split();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.unwrap();
            w.shutdown().await.unwrap();
            w
        });
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        let _w = writer.await.unwrap();
        assert_eq!(back.len(), data.len());
        assert!(back == data);
        lab.expect_log(&format!("connection from {me}: no PROXY header"))
            .await;
        lab.expect_log(&format!("closed {me} after 1000000 bytes"))
            .await;
        lab.stop().await;
    }

    #[tokio::test]
    async fn echo_proxy_v1_and_bad_header() {
        let mut lab = lab(None).await;
        let h = proxy_v1(
            "192.0.2.1:1".parse().unwrap(),
            "192.0.2.2:2".parse().unwrap(),
        );
        let mut c = TcpStream::connect(lab.echo[0]).await.unwrap();
        c.write_all(&[h.as_bytes(), b"ping"].concat())
            .await
            .unwrap();
        c.shutdown().await.unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"ping");
        lab.expect_log("PROXY v1 client=192.0.2.1:1 proxy=192.0.2.2:2 header=50524f5859")
            .await;
        let (_, out) = exchange(lab.echo[0], b"\r\n\r\n\0\r\nQUIT\n\x13", b"").await;
        assert!(out.is_empty());
        lab.expect_log("bad PROXY header").await;
        lab.stop().await;
    }

    async fn udp_client() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    async fn udp_exchange(c: &UdpSocket, to: SocketAddr, d: &[u8]) -> Vec<u8> {
        c.send_to(d, to).await.unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), c.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, to);
        buf.truncate(n);
        buf
    }

    #[tokio::test]
    async fn udp_with_spp() {
        let mut lab = lab(None).await;
        let c = udp_client().await;
        let client: SocketAddr = "[2001:db8::5]:5353".parse().unwrap();
        let proxy: SocketAddr = "192.0.2.53:53".parse().unwrap();
        let d = [&spp_encode(client, proxy)[..], b"query"].concat();
        assert_eq!(udp_exchange(&c, lab.udp[0], &d).await, d);
        let line = lab.expect_log("SPP client=").await;
        assert!(
            line.ends_with("SPP client=[2001:db8::5]:5353 proxy=192.0.2.53:53 payload=5 bytes"),
            "{line}"
        );
        lab.stop().await;
    }

    #[tokio::test]
    async fn udp_plain_and_proxy_v2() {
        let mut lab = lab(None).await;
        let c = udp_client().await;
        let me = c.local_addr().unwrap();
        assert_eq!(udp_exchange(&c, lab.udp[0], b"ping").await, b"ping");
        lab.expect_log(&format!("from {me}: no SPP header, 4 bytes"))
            .await;
        let h = proxy_v2(
            "192.0.2.1:5000".parse().unwrap(),
            "192.0.2.2:53".parse().unwrap(),
            Transport::Dgram,
        );
        let d = [h.as_bytes(), b"first"].concat();
        assert_eq!(udp_exchange(&c, lab.udp[0], &d).await, b"first");
        lab.expect_log("no SPP header, 33 bytes").await;
        let line = lab
            .expect_log("PROXY v2 client=192.0.2.1:5000 proxy=192.0.2.2:53")
            .await;
        assert!(line.ends_with(&hex(h.as_bytes())), "{line}");
        lab.stop().await;
    }

    #[tokio::test]
    async fn serve_reports_bind_errors_and_stops() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let o = LabOrigins {
            http: vec![taken.local_addr().unwrap()],
            ..LabOrigins::default()
        };
        let (tx, _rx) = unbounded_channel();
        let e = serve(o, tx, async {}).await.unwrap_err();
        assert!(e.to_string().contains("binding HTTP on"), "{e}");
        // An immediate stop returns at once.
        let (tx, mut rx) = unbounded_channel();
        let o = LabOrigins {
            echo: vec!["127.0.0.1:0".parse().unwrap()],
            ..LabOrigins::default()
        };
        serve(o, tx, async {}).await.unwrap();
        assert!(rx.recv().await.unwrap().ends_with(": listening"));
    }

    #[test]
    fn pattern_wraps() {
        let mut b = [0u8; 4];
        fill_pattern(62, &mut b);
        assert_eq!(&b, b"-\n01");
    }
}
