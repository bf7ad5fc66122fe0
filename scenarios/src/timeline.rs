//! The conversation of one scenario: every request the SPA made to the backend, every call the
//! backend (or the harness) made to the mock Clerk while answering, the backend's log lines and
//! the harness's own steps (a restart, a key rotation), on one clock — the data behind the
//! HTML report's sequence diagrams and the JSON report's `exchanges`.
//!
//! The SPA's requests are journaled by [`Ctx::fetch`](crate::Ctx::fetch); the mock's side comes
//! from its request record ([`mock_clerk::RecordedRequest`], real-clock `received_us`)
//! and the interception proxy's journal (which host, through the proxy or the TLS front); the
//! log lines from the backend's [`harness::LogBuffer`] (captured with their time).
//!
//! Nothing secret is kept: an `Authorization` bearer token is shown decoded (header and claims,
//! the signature elided), the instance's secret key, webhook secret and the per-run CA's private
//! key are replaced wherever they appear ([`Scrubber`]), and so is every JWT signature in free
//! text (bodies, log lines).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Serialize;

use crate::scenario::{Exchange, ScenarioResult};

/// A party of the conversation (a lane of the sequence diagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The harness driving the run (restarts, key rotations, its calls to the mock's admin API).
    Harness,
    /// The single-page app (the harness's SPA-like client).
    Spa,
    /// The backend under test.
    Backend,
    /// The mock Clerk (Frontend API: JWKS; Backend API: users, sessions…).
    Clerk,
}

impl Party {
    /// The lane's name.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Harness => "harness",
            Self::Spa => "SPA",
            Self::Backend => "backend",
            Self::Clerk => "Clerk (mock)",
        }
    }
}

/// A bearer token as a report may show it: its header and claims, never its signature.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DecodedToken {
    /// The JOSE header (`alg`, `kid`, `typ`, `cat`…).
    pub header: serde_json::Value,
    /// The claims (`sub`, `sid`, `iss`, `azp`, `exp`…), as sent.
    pub claims: serde_json::Value,
    /// What became of the signature: `elided (342 characters)`, or `none (empty)`.
    pub signature: String,
}

/// One HTTP request and its answer, from one party to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hop {
    /// When the request was sent, in ms since the scenario started.
    pub at_ms: f64,
    /// Who sent it.
    pub from: Party,
    /// Who answered.
    pub to: Party,
    /// The method.
    pub method: String,
    /// The path (and query).
    pub path: String,
    /// The host, for calls to Clerk (`api.clerk.com`, the FAPI host, or the mock's own address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The status, if an answer came.
    pub status: Option<u16>,
    /// Time to the answer (for the SPA: the body read too), ms.
    pub latency_ms: f64,
    /// The request headers that matter here (`Origin`, `Authorization` redacted,
    /// `Access-Control-Request-*`), values scrubbed.
    pub request_headers: Vec<(String, String)>,
    /// The answer's headers that matter here (CORS, `WWW-Authenticate`, `Location`,
    /// `Set-Cookie` without its value…); the mock's answers are not recorded.
    pub response_headers: Vec<(String, String)>,
    /// The bearer token sent, decoded (header + claims, signature elided).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<DecodedToken>,
    /// The start of the answer's body (the SPA's requests only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Why no answer came (a timeout, a reset connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The turn of a refresh-and-retry loop (1 = the first try), when the scenario replays one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    /// Anything else worth knowing (an injected fault answered it, it came through the proxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A line of the backend's log, or a step of the harness, on the scenario's clock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// When, in ms since the scenario started.
    pub at_ms: f64,
    /// [`Party::Backend`] (a log line) or [`Party::Harness`] (a step).
    pub source: Party,
    /// The line (scrubbed).
    pub text: String,
    /// The loop turn it happened in, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
}

/// A request of the SPA as journaled by [`crate::Ctx`], before it is made safe to show.
#[derive(Clone, Debug)]
pub(crate) struct SpaCall {
    pub started: SystemTime,
    pub elapsed: Option<Duration>,
    pub method: String,
    pub path: String,
    /// Raw request headers (the token included: only kept until [`collect`]).
    pub headers: Vec<(String, String)>,
    pub answer: Option<Result<Exchange, String>>,
    pub turn: Option<u32>,
}

/// What [`crate::Ctx`] journals during a scenario.
#[derive(Clone, Debug)]
pub(crate) enum Journaled {
    Spa(SpaCall),
    Step { at: SystemTime, text: String, turn: Option<u32> },
}

/// Request headers of the SPA a timeline shows.
pub(crate) fn relevant_request_header(name: &str) -> bool {
    matches!(name, "authorization" | "origin" | "cookie" | "content-type") || name.starts_with("access-control-request-")
}

/// Replaces the run's secrets wherever they appear, and elides every JWT's signature.
#[derive(Clone, Debug, Default)]
pub struct Scrubber {
    secrets: Vec<(String, &'static str)>,
}

impl Scrubber {
    /// A scrubber for the environment's secrets: the instance's secret key and webhook secret,
    /// and the per-run CA's private key (the whole PEM and each of its lines).
    #[must_use]
    pub fn for_env(env: &harness::TestEnv) -> Self {
        let mut s = Self::default();
        let instance = env.mock().instance();
        s.add(instance.secret_key().expose(), "[secret key]");
        s.add(instance.webhook_secret(), "[webhook secret]");
        // The Svix secret's key part is what signs; it may be printed without its prefix.
        if let Some(key) = instance.webhook_secret().strip_prefix("whsec_") {
            s.add(key, "[webhook secret]");
        }
        if let Ok(pem) = std::fs::read_to_string(env.interceptor().ca().key_file()) {
            s.add(pem.trim(), "[CA private key]");
            for line in pem.lines().map(str::trim).filter(|l| l.len() >= 16 && !l.starts_with("-----")) {
                s.add(line, "[CA private key]");
            }
        }
        s
    }

    /// Adds a secret (ignored when shorter than 8 characters: too likely to match by chance).
    pub fn add(&mut self, secret: &str, replacement: &'static str) {
        if secret.len() >= 8 && !self.secrets.iter().any(|(s, _)| s == secret) {
            self.secrets.push((secret.to_string(), replacement));
            // Longest first, so a PEM goes before its lines.
            self.secrets.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every secret replaced and every JWT's signature elided.
    #[must_use]
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (secret, replacement) in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), replacement);
            }
        }
        elide_signatures(&out)
    }

    /// Scrubs every string of a result in place (its note, diagnosis, exchanges and events).
    pub fn scrub_result(&self, r: &mut ScenarioResult) {
        r.note = self.scrub(&r.note);
        if let Some(d) = &mut r.diagnosis {
            for s in [&mut d.summary, &mut d.sent, &mut d.expected, &mut d.fix] {
                *s = self.scrub(s);
            }
            d.backend_log = d.backend_log.iter().map(|l| self.scrub(l)).collect();
            if let Some(got) = &mut d.got {
                self.scrub_exchange(got);
            }
        }
        for hop in &mut r.exchanges {
            hop.path = self.scrub(&hop.path);
            for (_, v) in hop.request_headers.iter_mut().chain(hop.response_headers.iter_mut()) {
                *v = self.scrub(v);
            }
            for s in [&mut hop.body, &mut hop.error, &mut hop.note].into_iter().flatten() {
                *s = self.scrub(s);
            }
            if let Some(t) = &mut hop.token {
                scrub_json(self, &mut t.header);
                scrub_json(self, &mut t.claims);
            }
        }
        for e in &mut r.events {
            e.text = self.scrub(&e.text);
        }
    }

    fn scrub_exchange(&self, got: &mut Exchange) {
        got.body = self.scrub(&got.body);
        for (_, v) in &mut got.headers {
            *v = self.scrub(v);
        }
        for r in &mut got.redirects {
            r.location = self.scrub(&r.location);
        }
    }
}

fn scrub_json(s: &Scrubber, v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(text) => *text = s.scrub(text),
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| scrub_json(s, i)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|i| scrub_json(s, i)),
        _ => {}
    }
}

fn is_b64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Every JWT in `text` (`eyJ….….…`) with its signature replaced by `[signature elided]`.
#[must_use]
pub fn elide_signatures(text: &str) -> String {
    if !text.contains("eyJ") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        // Only at a word start: not in the middle of another base64 run.
        if rest[..start].chars().next_back().is_some_and(|c| is_b64url(c) || c == '.') {
            out.push_str(&rest[..start + 3]);
            rest = &rest[start + 3..];
            continue;
        }
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let run = candidate.find(|c: char| !is_b64url(c) && c != '.').unwrap_or(candidate.len());
        let word = &candidate[..run];
        let parts: Vec<&str> = word.splitn(3, '.').collect();
        if parts.len() == 3 && !parts[1].is_empty() {
            out.push_str(parts[0]);
            out.push('.');
            out.push_str(parts[1]);
            out.push('.');
            if !parts[2].is_empty() {
                out.push_str("[signature elided]");
            }
        } else {
            out.push_str(word);
        }
        rest = &candidate[run..];
    }
    out.push_str(rest);
    out
}

/// A header's value safe to show, and the token it carried: `Bearer <JWT>` becomes
/// `Bearer <JWT: header and claims below, signature elided>`; cookies keep their names only.
pub(crate) fn show_header(name: &str, value: &str) -> (String, Option<DecodedToken>) {
    match name {
        "authorization" => {
            let (scheme, credential) = value.split_once(' ').unwrap_or(("", value));
            match decode_jwt(credential.trim()) {
                Some(token) => (format!("{scheme} <JWT: header and claims below, signature elided>").trim().to_string(), Some(token)),
                None if credential.len() > 48 => {
                    (format!("{scheme} {}… ({} characters)", &credential[..credential.floor_char_boundary_compat(24)], credential.len()), None)
                }
                None => (value.to_string(), None),
            }
        }
        "cookie" => {
            (value.split(';').map(|c| c.trim().split_once('=').map_or(c.trim(), |(n, _)| n)).map(|n| format!("{n}=…")).collect::<Vec<_>>().join("; "), None)
        }
        "set-cookie" => {
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
            (format!("{name}=…;{attributes}").trim_end_matches(';').to_string(), None)
        }
        _ => (value.to_string(), None),
    }
}

/// `str::floor_char_boundary` for the MSRV.
trait FloorBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorBoundary for str {
    fn floor_char_boundary_compat(&self, index: usize) -> usize {
        let mut i = index.min(self.len());
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

/// The header and claims of a compact JWS, if `token` is one.
#[must_use]
pub fn decode_jwt(token: &str) -> Option<DecodedToken> {
    let mut parts = token.split('.');
    let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = |part: &str| -> Option<serde_json::Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let header = json(header).filter(serde_json::Value::is_object)?;
    let claims = json(claims).unwrap_or_else(|| serde_json::Value::String("(not JSON)".into()));
    let signature = if signature.is_empty() { "none (empty)".to_string() } else { format!("elided ({} characters)", signature.len()) };
    Some(DecodedToken { header, claims, signature })
}

fn ms_since(start: SystemTime, at: SystemTime) -> f64 {
    match at.duration_since(start) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -(e.duration().as_secs_f64() * 1000.0),
    }
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// The most backend log lines one scenario's timeline keeps (the latest).
pub const MAX_LOG_EVENTS: usize = 1000;

/// Turns the window's journal, the mock's record and the log lines of `log` (the scenario's
/// window, closed by [`harness::TestEnv::settle_log`]) into hops and events, in time order. Calls to Clerk get the loop turn of the last SPA request sent before them.
pub(crate) fn collect(ctx: &crate::Ctx, started: SystemTime, log: std::ops::Range<harness::LogMark>, journal: Vec<Journaled>) -> (Vec<Hop>, Vec<Event>) {
    let mut hops = vec![];
    let mut events = vec![];
    for entry in journal {
        match entry {
            Journaled::Spa(call) => hops.push(spa_hop(started, call)),
            Journaled::Step { at, text, turn } => events.push(Event { at_ms: round(ms_since(started, at)), source: Party::Harness, text, turn }),
        }
    }
    let start_us = started.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let instance = ctx.env.mock().instance();
    let fapi_host = instance.fapi_host().to_string();
    let routed = ctx.env.interceptor().routed_requests();
    let secret = instance.secret_key().expose();
    let secret_tail = secret.get(secret.len().saturating_sub(4)..).unwrap_or_default().to_string();
    for r in ctx.env.mock().faults().requests().into_iter().filter(|r| r.received_us >= start_us) {
        let at = UNIX_EPOCH + Duration::from_micros(r.received_us);
        let answered = at + Duration::from_micros(r.duration_us);
        let admin = r.path.starts_with("/_mock");
        // The Host the backend asked for (the mock's own address when it was given the direct
        // URLs), else the host the API stands for.
        let host = r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")).map(|(_, v)| v.clone()).unwrap_or_else(|| match r.api {
            mock_clerk::Api::Frontend => fapi_host.clone(),
            mock_clerk::Api::Backend => "api.clerk.com".to_string(),
        });
        // The proxy's journal says whether it came through the proxy or the TLS front (else the
        // backend used the mock's direct address).
        let via = routed
            .iter()
            .filter(|j| j.method.as_str() == r.method && j.path == r.path && j.status.as_u16() == r.status)
            .find(|j| j.at >= at && j.at.duration_since(answered).unwrap_or_default() < Duration::from_millis(500))
            .map(|j| if j.via_front { "through the TLS front (routed by name)" } else { "through the HTTPS_PROXY interception proxy" });
        let mut request_headers = vec![];
        let mut token = None;
        for (k, v) in &r.headers {
            let k = k.to_ascii_lowercase();
            if k == "authorization" {
                // The mock keeps a shortened value: say what it was, show none of it.
                let shown = if v.contains("sk_") {
                    // The record keeps the value's last 4 characters: enough to tell the
                    // instance's own key from another one (env.foreign_secret_key).
                    if v.ends_with(&secret_tail) {
                        "Bearer sk_… (this instance's secret key, elided)".to_string()
                    } else {
                        "Bearer sk_… (a secret key that is NOT this instance's, elided)".to_string()
                    }
                } else {
                    let (shown, t) = show_header(&k, v);
                    token = t;
                    if shown == *v {
                        "… (elided)".to_string()
                    } else {
                        shown
                    }
                };
                request_headers.push((k, shown));
            } else if k == "user-agent" {
                request_headers.push((k, v.clone()));
            }
        }
        let mut notes = vec![];
        if r.faulted {
            notes.push("answered by an injected fault".to_string());
        }
        if let Some(via) = via {
            notes.push(via.to_string());
        }
        hops.push(Hop {
            at_ms: round(ms_since(started, at)),
            from: if admin { Party::Harness } else { Party::Backend },
            to: Party::Clerk,
            method: r.method,
            path: r.query.map_or_else(|| r.path.clone(), |q| format!("{}?{q}", r.path)),
            host: Some(host),
            status: Some(r.status),
            latency_ms: (r.duration_us as f64 / 10.0).round() / 100.0,
            request_headers,
            response_headers: vec![],
            token,
            body: None,
            error: None,
            turn: None,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        });
    }
    let lines = ctx.env.log_buffer().between_timed(log.start, log.end);
    let skip = lines.len().saturating_sub(MAX_LOG_EVENTS);
    if skip > 0 {
        let at = lines.get(skip).map_or(0.0, |(at, _)| round(ms_since(started, *at)));
        events.push(Event { at_ms: at, source: Party::Harness, text: format!("{skip} earlier backend log lines of this scenario are not kept"), turn: None });
    }
    for (at, line) in lines.into_iter().skip(skip) {
        events.push(Event { at_ms: round(ms_since(started, at)), source: Party::Backend, text: line, turn: None });
    }
    hops.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms).then_with(|| (a.from != Party::Spa).cmp(&(b.from != Party::Spa))));
    // Calls to Clerk and log lines belong to the turn of the last SPA request sent before them.
    let turns: Vec<(f64, Option<u32>)> = hops.iter().filter(|h| h.from == Party::Spa).map(|h| (h.at_ms, h.turn)).collect();
    let turn_at = |at: f64| turns.iter().rev().find(|(t, _)| *t <= at).and_then(|(_, turn)| *turn);
    for hop in hops.iter_mut().filter(|h| h.from != Party::Spa) {
        hop.turn = turn_at(hop.at_ms);
    }
    for e in events.iter_mut().filter(|e| e.turn.is_none()) {
        e.turn = turn_at(e.at_ms);
    }
    events.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    (hops, events)
}

fn spa_hop(started: SystemTime, call: SpaCall) -> Hop {
    let mut request_headers = vec![];
    let mut token = None;
    for (k, v) in &call.headers {
        let (shown, t) = show_header(k, v);
        if t.is_some() {
            token = t;
        }
        request_headers.push((k.clone(), shown));
    }
    let (status, response_headers, body, error) = match call.answer {
        Some(Ok(got)) => {
            let headers = got
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), show_header(k, v).0))
                .chain(got.redirects.iter().map(|r| ("location".to_string(), r.location.clone())))
                .collect();
            let body = got.excerpt(300);
            (Some(got.status), headers, (!body.is_empty()).then_some(body), None)
        }
        Some(Err(e)) => (None, vec![], None, Some(e)),
        None => (None, vec![], None, Some("no answer: the scenario ended (timed out) while it was waiting".to_string())),
    };
    Hop {
        at_ms: round(ms_since(started, call.started)),
        from: Party::Spa,
        to: Party::Backend,
        method: call.method,
        path: call.path,
        host: None,
        status,
        latency_ms: round(call.elapsed.map_or(0.0, |d| d.as_secs_f64() * 1000.0)),
        request_headers,
        response_headers,
        token,
        body,
        error,
        turn: call.turn,
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Imluc18xIn0.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";

    #[test]
    fn signatures_are_elided_in_free_text() {
        let line = format!("DEBUG Authorization: Bearer {JWT} (ok)");
        let out = elide_signatures(&line);
        assert!(!out.contains("c2lnbmF0dXJlLWJ5dGVzLWhlcmU"), "{out}");
        assert!(out.contains("eyJzdWIiOiJ1c2VyXzEifQ.[signature elided] (ok)"), "{out}");
        assert_eq!(elide_signatures("no token here: eyJ alone, x.eyJa"), "no token here: eyJ alone, x.eyJa");
    }

    #[test]
    fn bearer_tokens_are_decoded_without_their_signature() {
        let (shown, token) = show_header("authorization", &format!("Bearer {JWT}"));
        assert!(!shown.contains("c2lnbmF0dXJl"), "{shown}");
        let token = token.expect("decoded");
        assert_eq!(token.header["kid"], "ins_1");
        assert_eq!(token.claims["sub"], "user_1");
        assert!(token.signature.starts_with("elided"), "{}", token.signature);
        assert_eq!(show_header("authorization", "Bearer sess_abc").0, "Bearer sess_abc");
        assert_eq!(show_header("cookie", "sessionid=abc; csrftoken=def").0, "sessionid=…; csrftoken=…");
        assert_eq!(show_header("set-cookie", "sessionid=abc; Path=/; HttpOnly").0, "sessionid=…; Path=/; HttpOnly");
    }

    #[test]
    fn secrets_are_replaced_longest_first() {
        let mut s = Scrubber::default();
        s.add("-----BEGIN PRIVATE KEY-----\nAAAABBBBCCCCDDDDEEEE\n-----END PRIVATE KEY-----", "[CA private key]");
        s.add("AAAABBBBCCCCDDDDEEEE", "[CA private key]");
        s.add("sk_test_0123456789", "[secret key]");
        s.add("short", "[x]");
        let out =
            s.scrub("key sk_test_0123456789 pem -----BEGIN PRIVATE KEY-----\nAAAABBBBCCCCDDDDEEEE\n-----END PRIVATE KEY----- line AAAABBBBCCCCDDDDEEEE short");
        assert_eq!(out, "key [secret key] pem [CA private key] line [CA private key] short");
    }
}
