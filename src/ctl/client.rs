//! The control socket's client: HTTP/1.1 over a Unix stream, with hyper on a current-thread
//! tokio runtime, one connection per request (a Unix connect costs microseconds, and no
//! connection state survives a daemon restart between two requests of `--watch`).
//!
//! Timeouts: connecting [`CONNECT_TIMEOUT`], a request and its whole answer
//! [`REQUEST_TIMEOUT`] (a 100k-rule apply takes a couple of seconds); a followed event stream
//! has none. Every failure to reach the daemon or to get HTTP back is
//! [`CtlError::Unreachable`], with what to do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::error::CtlError;

/// How long connecting to the socket may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may take, from sending it to the last byte of the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// An answer, not yet interpreted.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The whole body.
    pub body: Bytes,
}

/// A successful envelope, taken apart.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `result`.
    pub result: Value,
    /// `messages`: notes for a person, printed on stderr.
    pub messages: Vec<String>,
}

/// A client of one control socket.
#[derive(Debug)]
pub struct Client {
    socket: PathBuf,
    rt: tokio::runtime::Runtime,
}

/// An answer whose body is read as it arrives (the followed event stream).
#[derive(Debug)]
pub struct Stream<'c> {
    client: &'c Client,
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    body: Incoming,
    buf: Vec<u8>,
    done: bool,
    // Held so the connection stays open while the body streams.
    _sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

/// Percent-encodes `s` for a path segment or a query value: everything except the unreserved
/// characters `A-Z a-z 0-9 - . _ ~`.
///
/// ```
/// assert_eq!(fastpath_cli::ctl::client::encode("192.0.2.0/24"), "192.0.2.0%2F24");
/// ```
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client of the socket at `socket`; nothing is connected yet.
    ///
    /// # Errors
    /// [`CtlError::Output`] if the runtime cannot start (no threads or file descriptors).
    pub fn new(socket: &Path) -> Result<Client, CtlError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CtlError::Output)?;
        Ok(Client {
            socket: socket.to_path_buf(),
            rt,
        })
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn not_http(&self, e: &dyn std::fmt::Display) -> CtlError {
        CtlError::Unreachable(format!(
            "{} does not answer HTTP ({e}): is it the fastpath control socket?",
            self.socket.display()
        ))
    }

    /// Connects and sends one request; the answer's head.
    async fn open(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<
        (
            hyper::Response<Incoming>,
            hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        ),
        CtlError,
    > {
        let stream = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::UnixStream::connect(&self.socket),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(CtlError::connect(&self.socket, &e)),
            Err(_) => {
                return Err(CtlError::connect(
                    &self.socket,
                    &std::io::Error::from(std::io::ErrorKind::TimedOut),
                ));
            }
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.not_http(&e))?;
        tokio::spawn(async move {
            // Its errors reach the request below.
            let _ = conn.await;
        });
        let has_body = body.is_some();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "fastpath")
            .header(header::ACCEPT, "application/json");
        if has_body {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| CtlError::Usage(format!("cannot make a request for {path}: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.not_http(&e))?;
        Ok((resp, sender))
    }

    /// Sends one request and reads the whole answer, within [`REQUEST_TIMEOUT`].
    ///
    /// # Errors
    /// [`CtlError::Unreachable`]: the socket cannot be reached, the peer does not speak HTTP,
    /// or it did not answer in time.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, CtlError> {
        self.rt.block_on(async {
            let work = async {
                let (resp, _sender) = self.open(method, path, body).await?;
                let status = resp.status().as_u16();
                let content_type = content_type(resp.headers());
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| self.not_http(&e))?
                    .to_bytes();
                Ok(Reply {
                    status,
                    content_type,
                    body,
                })
            };
            match tokio::time::timeout(REQUEST_TIMEOUT, work).await {
                Ok(r) => r,
                Err(_) => Err(CtlError::Unreachable(format!(
                    "{} did not answer within {} s: is the daemon stuck?",
                    self.socket.display(),
                    REQUEST_TIMEOUT.as_secs()
                ))),
            }
        })
    }

    /// Sends one request and takes its envelope apart: the `result` of a success, or the
    /// refusal.
    ///
    /// # Errors
    /// [`CtlError::Refused`] (4xx, or `success: false`), [`CtlError::DaemonFailed`] (5xx), and
    /// as [`Client::send`]; a 2xx answer that is not an envelope is [`CtlError::Unreachable`]
    /// (not the fastpath control socket).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CtlError> {
        let body = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        let reply = self.send(method, path, body)?;
        self.envelope(&reply)
    }

    /// Interprets a [`Reply`] as an envelope.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub fn envelope(&self, reply: &Reply) -> Result<Answer, CtlError> {
        let parsed: Option<Value> = serde_json::from_slice(&reply.body).ok();
        let ok_status = (200..300).contains(&reply.status);
        match parsed {
            Some(env @ Value::Object(_)) => {
                let success = env.get("success").and_then(Value::as_bool);
                if ok_status && success != Some(false) {
                    let messages = env
                        .get("messages")
                        .and_then(Value::as_array)
                        .map(|m| {
                            m.iter()
                                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    let result = env.get("result").cloned().unwrap_or(Value::Null);
                    Ok(Answer { result, messages })
                } else {
                    Err(CtlError::from_answer(reply.status, env))
                }
            }
            _ if ok_status => Err(CtlError::Unexpected(format!(
                "{} answered HTTP {} without a JSON envelope: is it the fastpath control socket?",
                self.socket.display(),
                reply.status
            ))),
            _ => {
                // A refusal without an envelope (a proxy in between, or a daemon bug): show its
                // text.
                let text = String::from_utf8_lossy(&reply.body);
                let text = text.trim();
                let text: String = text.chars().take(300).collect();
                let errors = vec![super::error::ApiError {
                    code: None,
                    message: if text.is_empty() {
                        format!("HTTP {} with an empty body", reply.status)
                    } else {
                        format!("HTTP {}: {text}", reply.status)
                    },
                }];
                Err(if reply.status >= 500 {
                    CtlError::DaemonFailed {
                        status: reply.status,
                        errors,
                        envelope: Value::Null,
                    }
                } else {
                    CtlError::Refused {
                        status: reply.status,
                        errors,
                        envelope: Value::Null,
                    }
                })
            }
        }
    }

    /// Sends a GET and returns as soon as the answer's head arrives; its body is then read
    /// line by line with [`Stream::next_line`], without a timeout.
    ///
    /// # Errors
    /// As [`Client::send`] (connecting and the head are bound by [`REQUEST_TIMEOUT`]).
    pub fn stream(&self, path: &str) -> Result<Stream<'_>, CtlError> {
        let opened = self.rt.block_on(async {
            match tokio::time::timeout(REQUEST_TIMEOUT, self.open(Method::GET, path, None)).await {
                Ok(r) => r,
                Err(_) => Err(CtlError::Unreachable(format!(
                    "{} did not answer within {} s: is the daemon stuck?",
                    self.socket.display(),
                    REQUEST_TIMEOUT.as_secs()
                ))),
            }
        })?;
        let (resp, sender) = opened;
        let status = resp.status().as_u16();
        let content_type = content_type(resp.headers());
        Ok(Stream {
            client: self,
            status,
            content_type,
            body: resp.into_body(),
            buf: Vec::new(),
            done: false,
            _sender: sender,
        })
    }
}

fn content_type(h: &hyper::HeaderMap) -> Option<String> {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Stream<'_> {
    /// Whether the answer is a stream of JSON lines (`application/x-ndjson`, or any type but
    /// `application/json` on a 200: the envelope is always `application/json`).
    pub fn is_ndjson(&self) -> bool {
        self.status == 200
            && !self
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("application/json"))
    }

    /// The next line of the body (without its newline), waiting as long as it takes; `None`
    /// when the daemon closed the stream.
    ///
    /// # Errors
    /// [`CtlError::Unreachable`] when the connection breaks mid-stream.
    pub fn next_line(&mut self) -> Result<Option<String>, CtlError> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line[..i]).trim_end().to_string();
                return Ok(Some(line));
            }
            if self.done {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.buf);
                return Ok(Some(String::from_utf8_lossy(&rest).trim_end().to_string()));
            }
            let client = self.client;
            match client.rt.block_on(self.body.frame()) {
                None => self.done = true,
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    return Err(CtlError::Unreachable(format!(
                        "the stream from {} broke: {e}",
                        client.socket.display()
                    )));
                }
            }
        }
    }

    /// The rest of the body, for an answer that turned out not to be a stream.
    ///
    /// # Errors
    /// As [`Stream::next_line`].
    pub fn into_reply(self) -> Result<Reply, CtlError> {
        let Stream {
            client,
            status,
            content_type,
            body,
            mut buf,
            ..
        } = self;
        let rest = client
            .rt
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, body.collect()).await })
            .map_err(|_| {
                CtlError::Unreachable(format!(
                    "{} did not finish its answer within {} s",
                    client.socket.display(),
                    REQUEST_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| client.not_http(&e))?
            .to_bytes();
        buf.extend_from_slice(&rest);
        Ok(Reply {
            status,
            content_type,
            body: Bytes::from(buf),
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(encode("203.0.113.0-24"), "203.0.113.0-24");
        assert_eq!(encode("2001:db8::/48"), "2001%3Adb8%3A%3A%2F48");
        assert_eq!(encode("a b&c=d"), "a%20b%26c%3Dd");
    }

    #[test]
    fn no_socket_is_unreachable_with_advice() {
        let c = Client::new(Path::new("/nonexistent-fastpath/x.sock")).unwrap();
        let e = c.call(Method::GET, "/v1/status", None).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().starts_with("no socket at"), "{e}");
    }
}
