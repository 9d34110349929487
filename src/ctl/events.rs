//! `fastpathctl events`: the daemon's event log (`GET /v1/events`), one line per event, and
//! with `--follow` the live stream (`GET /v1/events?follow=true`, one JSON object per line).
//!
//! A daemon that answers the followed request with an envelope instead of a stream (one older
//! than the stream) is followed by long-polling `GET /v1/events?since=SEQ&wait=50` instead,
//! with a note on stderr; `wait` stays below the request timeout.

use clap::Args;
use serde_json::Value;

use super::error::CtlError;
use super::output::{text, utc_ms, words};
use super::{Ctl, Req, warn};

/// How long one long-poll asks the daemon to wait for an event (below the client's 60 s
/// request timeout).
const POLL_WAIT_SECS: u32 = 50;

/// `fastpathctl events`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  fastpathctl events\n  fastpathctl events --follow --since 120\n  fastpathctl --json events --follow | jq -c 'select(.kind == \"config_refused\")'\n\nEach line: SEQ TIME(UTC) KIND PEER DETAIL. With --json, one JSON object per line."
)]
pub struct EventsArgs {
    /// Keep printing events as they happen, until interrupted.
    #[arg(long, short)]
    pub follow: bool,
    /// Only the events after sequence number SEQ (0: every event the daemon keeps).
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    pub since: u64,
}

/// The request for a list of events after `since`, waiting up to `wait` seconds for one.
pub fn list_request(since: u64, wait: u32) -> Req {
    let mut p = format!("/v1/events?since={since}");
    if wait > 0 {
        p.push_str(&format!("&wait={wait}"));
    }
    Req::get(p)
}

/// The path of the followed stream.
pub fn follow_path(since: u64) -> String {
    format!("/v1/events?follow=true&since={since}")
}

/// Who caused an event: `uid=0 pid=1234`, or `-`.
pub fn peer(v: Option<&Value>) -> String {
    match v {
        Some(p @ Value::Object(_)) => {
            let mut s = format!("uid={}", text(p.get("uid")));
            if let Some(pid) = p.get("pid").and_then(Value::as_i64).filter(|&p| p > 0) {
                s.push_str(&format!(" pid={pid}"));
            }
            s
        }
        Some(Value::String(s)) => s.clone(),
        _ => "-".into(),
    }
}

/// One event as a line: `SEQ TIME KIND PEER DETAIL`.
pub fn line(e: &Value) -> String {
    let time = e
        .get("ts_ms")
        .and_then(Value::as_u64)
        .map_or_else(|| "-".to_string(), utc_ms);
    let detail = match e.get("detail") {
        None | Some(Value::Null) => String::new(),
        Some(d) => words(d),
    };
    format!(
        "{:>6}  {time}  {:<14}  {:<15}  {detail}",
        text(e.get("seq")),
        text(e.get("kind")),
        peer(e.get("peer"))
    )
    .trim_end()
    .to_string()
}

/// An event as printed: [`line`], or one line of JSON with `--json`.
fn event_text(json: bool, e: &Value) -> String {
    if json {
        format!("{}\n", serde_json::to_string(e).unwrap_or_default())
    } else {
        format!("{}\n", line(e))
    }
}

fn print_event(ctl: &mut Ctl<'_>, e: &Value) -> Result<(), CtlError> {
    let s = event_text(ctl.json, e);
    ctl.print(&s)
}

/// Prints a list of events; the highest sequence number seen (or `since`).
fn print_list(ctl: &mut Ctl<'_>, list: &Value, mut since: u64) -> Result<u64, CtlError> {
    let Some(items) = list.as_array() else {
        return Err(CtlError::Unexpected(
            "GET /v1/events did not answer a list of events".into(),
        ));
    };
    for e in items {
        print_event(ctl, e)?;
        since = since.max(e.get("seq").and_then(Value::as_u64).unwrap_or(0));
    }
    Ok(since)
}

/// Runs `fastpathctl events`.
///
/// # Errors
/// [`CtlError`]; a followed stream that the daemon closes is [`CtlError::Unreachable`].
pub fn run(ctl: &mut Ctl<'_>, a: &EventsArgs) -> Result<(), CtlError> {
    if !a.follow {
        let list = ctl.call(&list_request(a.since, 0))?;
        print_list(ctl, &list, a.since)?;
        return Ok(());
    }
    let mut stream = ctl.client.stream(&follow_path(a.since))?;
    if stream.is_ndjson() {
        while let Some(l) = stream.next_line()? {
            if l.trim().is_empty() {
                // Keep-alive.
                continue;
            }
            let e: Value = serde_json::from_str(&l).map_err(|e| {
                CtlError::Unexpected(format!(
                    "the event stream sent a line that is not JSON ({e}): {l}"
                ))
            })?;
            // Written and flushed straight away: the stream has no end to wait for. (`out`
            // directly: the stream borrows the client.)
            ctl.out.write_all(event_text(ctl.json, &e).as_bytes())?;
            ctl.out.flush()?;
        }
        return Err(CtlError::Unreachable(format!(
            "the daemon closed the event stream on {} (did it stop?)",
            ctl.client.socket().display()
        )));
    }
    // An envelope: a daemon without the stream (or a refusal).
    let reply = stream.into_reply()?;
    let answer = ctl.client.envelope(&reply)?;
    warn(&format!(
        "note: the daemon does not stream events (GET /v1/events?follow=true); following by \
         polling GET /v1/events?wait={POLL_WAIT_SECS} instead"
    ));
    let mut since = print_list(ctl, &answer.result, a.since)?;
    loop {
        let list = ctl.call(&list_request(since, POLL_WAIT_SECS))?;
        since = print_list(ctl, &list, since)?;
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests() {
        assert_eq!(list_request(0, 0).path, "/v1/events?since=0");
        assert_eq!(list_request(7, 50).path, "/v1/events?since=7&wait=50");
        assert_eq!(follow_path(3), "/v1/events?follow=true&since=3");
    }

    #[test]
    fn one_line_per_event() {
        let e = json!({"seq": 12, "ts_ms": 1_735_689_599_999u64, "kind": "config_applied",
            "peer": {"uid": 0, "gid": 0, "pid": 4242},
            "detail": {"version": 2, "changes": 1, "swap_us": 412}});
        assert_eq!(
            line(&e),
            "    12  2024-12-31T23:59:59.999Z  config_applied  uid=0 pid=4242   changes=1 swap_us=412 version=2"
        );
        let e = json!({"seq": 13, "kind": "connect", "peer": null,
            "detail": {"status": 0, "app": "ssh"}});
        assert_eq!(
            line(&e),
            "    13  -  connect         -                app=ssh status=0"
        );
        assert_eq!(line(&json!({})), "     -  -  -               -");
    }
}
