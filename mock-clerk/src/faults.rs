//! Fault injection and request recording for both APIs.
//!
//! Faults are data: which requests they hit ([`Route`]), what they do ([`FaultAction`]) and
//! how often. Every request is recorded; [`Expectation`]s over the record are checked when
//! the mock drops, wiremock-style.

use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ClerkApiError;

/// Which of the mock's APIs a request went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `https://<fapi host>` (JWKS, client token endpoints).
    Frontend,
    /// `https://api.clerk.com` (Backend API, admin API).
    Backend,
}

/// Which requests a fault or expectation applies to: `"GET /v1/users/*"`, `"/v1/jwks"`,
/// `"*"`. A `*` path segment matches any one segment; a trailing `/**` any rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Frontend or Backend.
    pub api: Api,
    /// `None` matches every method.
    pub method: Option<String>,
    /// Path pattern.
    pub path: String,
}

impl Route {
    /// Parses `"GET /v1/users/*"` or `"/v1/users/*"` on `api`.
    #[must_use]
    pub fn new(api: Api, pattern: &str) -> Self {
        let pattern = pattern.trim();
        match pattern.split_once(' ') {
            Some((method, path)) if !method.starts_with('/') => Self { api, method: Some(method.to_uppercase()), path: path.trim().into() },
            _ => Self { api, method: None, path: pattern.into() },
        }
    }

    /// Requests to the Backend API matching `pattern`.
    #[must_use]
    pub fn backend(pattern: &str) -> Self {
        Self::new(Api::Backend, pattern)
    }

    /// Requests to the Frontend API matching `pattern`.
    #[must_use]
    pub fn frontend(pattern: &str) -> Self {
        Self::new(Api::Frontend, pattern)
    }

    /// Whether a request matches.
    #[must_use]
    pub fn matches(&self, api: Api, method: &str, path: &str) -> bool {
        if api != self.api || self.method.as_deref().is_some_and(|m| !m.eq_ignore_ascii_case(method)) {
            return false;
        }
        if self.path == "*" || self.path == "/**" {
            return true;
        }
        let mut pattern = self.path.split('/');
        let mut actual = path.split('/');
        loop {
            match (pattern.next(), actual.next()) {
                (Some("**"), _) => return true,
                (Some(p), Some(a)) if p == "*" || p == a => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {} {}", self.api, self.method.as_deref().unwrap_or("*"), self.path)
    }
}

/// What a fault does to a matching request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status and a Clerk error body (`code`, `message`).
    Status {
        /// HTTP status.
        status: u16,
        /// Clerk error code (default derived from the status).
        #[serde(default)]
        code: Option<String>,
        /// Message.
        #[serde(default)]
        message: Option<String>,
    },
    /// 429 `too_many_requests` with `Retry-After`.
    RateLimited {
        /// Seconds.
        retry_after_secs: u64,
    },
    /// Delay the genuine answer.
    Latency {
        /// Milliseconds.
        millis: u64,
    },
    /// Hold the request this long, then answer 504 (a Clerk that hangs).
    Hang {
        /// How long to hold the request before answering 504 (ms).
        millis: u64,
    },
}

/// An injected fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Which requests.
    pub route: Route,
    /// What happens.
    pub action: FaultAction,
    /// Apply this many times, then recover (`None`: until cleared).
    #[serde(default)]
    pub times: Option<u32>,
}

impl Fault {
    /// Answers `status` with a Clerk error body.
    #[must_use]
    pub fn status(route: Route, status: u16) -> Self {
        Self { route, action: FaultAction::Status { status, code: None, message: None }, times: None }
    }

    /// Answers 429 with `Retry-After`.
    #[must_use]
    pub fn rate_limited(route: Route, retry_after_secs: u64) -> Self {
        Self { route, action: FaultAction::RateLimited { retry_after_secs }, times: None }
    }

    /// Delays the answer.
    #[must_use]
    pub fn latency(route: Route, delay: Duration) -> Self {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        Self { route, action: FaultAction::Latency { millis }, times: None }
    }

    /// The JWKS is down on both APIs (503) — the "jwk-remote-failed-to-load" case.
    #[must_use]
    pub fn jwks_outage() -> Vec<Self> {
        vec![Self::status(Route::frontend("GET /.well-known/jwks.json"), 503), Self::status(Route::backend("GET /v1/jwks"), 503)]
    }

    /// Applies `n` times, then the route recovers.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    pub(crate) fn error(&self) -> ClerkApiError {
        match &self.action {
            FaultAction::RateLimited { retry_after_secs } => ClerkApiError::rate_limited(*retry_after_secs),
            FaultAction::Status { status, code, message } => {
                let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let default_code = match status.as_u16() {
                    401 => "authentication_invalid",
                    404 => "resource_not_found",
                    429 => "too_many_requests",
                    s if s >= 500 => "internal_clerk_error",
                    _ => "request_failed",
                };
                let message = message.clone().unwrap_or_else(|| format!("injected fault: {status}"));
                ClerkApiError::new(status, code.as_deref().unwrap_or(default_code), &message, &message)
            }
            FaultAction::Latency { .. } | FaultAction::Hang { .. } => ClerkApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", "timeout", "injected hang"),
        }
    }
}

/// One request the mock answered.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RecordedRequest {
    /// Which API.
    pub api: Api,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Headers (the `authorization` value is shortened so secrets never sit in reports).
    pub headers: Vec<(String, String)>,
    /// Status answered.
    pub status: u16,
    /// When (ms since the epoch, mock clock).
    pub at_ms: i64,
    /// Whether an injected fault answered it.
    pub faulted: bool,
    /// When it arrived on the real clock (µs since the epoch; the mock clock may be moved),
    /// to place it on a timeline next to the client's requests. 0 when unknown.
    #[serde(default)]
    pub received_us: u64,
    /// How long the mock took to answer (µs), injected latency included.
    #[serde(default)]
    pub duration_us: u64,
}

/// A count of matching requests to check, like wiremock's `expect`.
#[derive(Clone, Debug)]
pub struct Expectation {
    route: Route,
    min: u64,
    max: u64,
    description: String,
}

impl Expectation {
    /// Requests matching `route` must have been received a number of times within `range`
    /// (e.g. `1..`, `0..=0`, `2..=2`).
    pub fn new(route: Route, range: impl RangeBounds<u64>) -> Self {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let min = match range.start_bound() {
            Included(n) => *n,
            Excluded(n) => n + 1,
            Unbounded => 0,
        };
        let max = match range.end_bound() {
            Included(n) => *n,
            Excluded(n) => n.saturating_sub(1),
            Unbounded => u64::MAX,
        };
        let upper = if max == u64::MAX { "∞".to_string() } else { max.to_string() };
        Self { description: format!("{route}: between {min} and {upper} requests"), route, min, max }
    }
}

/// How many requests the record keeps (the oldest are dropped first).
pub const MAX_RECORDED: usize = 10_000;

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    requests: std::collections::VecDeque<RecordedRequest>,
    dropped: u64,
    expectations: Vec<Expectation>,
}

/// Faults, the request record and expectations of one mock. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        tracing::debug!(route = %fault.route, action = ?fault.action, "fault injected");
        self.lock().faults.push(fault);
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.lock().faults.clear();
    }

    /// The faults still active.
    #[must_use]
    pub fn active(&self) -> Vec<Fault> {
        self.lock().faults.clone()
    }

    /// Takes the first fault matching a request, counting one use of it.
    pub(crate) fn take_matching(&self, api: Api, method: &str, path: &str) -> Option<Fault> {
        let mut state = self.lock();
        if state.faults.is_empty() {
            return None;
        }
        let index = state.faults.iter().position(|f| f.route.matches(api, method, path))?;
        let fault = state.faults[index].clone();
        if let Some(times) = &mut state.faults[index].times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                state.faults.remove(index);
            }
        }
        Some(fault)
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        let mut state = self.lock();
        // A load test must not grow the mock without bound: keep the latest requests.
        if state.requests.len() == MAX_RECORDED {
            state.requests.pop_front();
            state.dropped += 1;
        }
        state.requests.push_back(request);
    }

    /// Records a request an injected delay ([`FaultAction::Latency`], [`FaultAction::Hang`])
    /// holds, as it arrives, with status 0 until [`Faults::complete_held`]: a client waiting
    /// on a slow Clerk is seen calling it while it waits, not only once the delay is over.
    pub(crate) fn record_held(&self, request: RecordedRequest) -> u64 {
        self.record(request);
        let state = self.lock();
        state.dropped + state.requests.len() as u64 - 1
    }

    /// The answer to a request recorded by [`Faults::record_held`] (`seq` its number).
    pub(crate) fn complete_held(&self, seq: u64, status: u16, duration_us: u64) {
        let mut state = self.lock();
        let Some(index) = seq.checked_sub(state.dropped).and_then(|i| usize::try_from(i).ok()) else { return };
        if let Some(request) = state.requests.get_mut(index) {
            request.status = status;
            request.duration_us = duration_us;
        }
    }

    /// Every request received so far, in order (a request held by an injected delay is in
    /// it from its arrival, with status 0 until it is answered).
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.iter().cloned().collect()
    }

    /// Requests matching `route`.
    #[must_use]
    pub fn requests_matching(&self, route: &Route) -> Vec<RecordedRequest> {
        self.lock().requests.iter().filter(|r| route.matches(r.api, &r.method, &r.path)).cloned().collect()
    }

    /// Forgets recorded requests (faults and expectations stay).
    pub fn reset_requests(&self) {
        self.lock().requests.clear();
    }

    /// Registers an expectation, checked by [`Faults::verify`] and when the mock drops.
    pub fn expect(&self, expectation: Expectation) {
        self.lock().expectations.push(expectation);
    }

    /// Checks every expectation.
    ///
    /// # Errors
    /// A report listing each unmet expectation and every request received.
    pub fn verify(&self) -> Result<(), String> {
        let state = self.lock();
        let failures: Vec<String> = state
            .expectations
            .iter()
            .filter_map(|e| {
                let n = state.requests.iter().filter(|r| e.route.matches(r.api, &r.method, &r.path)).count() as u64;
                (n < e.min || n > e.max).then(|| format!("- expected {}, received {n}", e.description))
            })
            .collect();
        if failures.is_empty() {
            return Ok(());
        }
        let received: Vec<String> = state.requests.iter().map(|r| format!("  {:?} {} {} -> {}", r.api, r.method, r.path, r.status)).collect();
        Err(format!(
            "mock-clerk expectations not met:\n{}\nrequests received ({}):\n{}",
            failures.join("\n"),
            received.len(),
            if received.is_empty() { "  (none)".to_string() } else { received.join("\n") }
        ))
    }

    pub(crate) fn has_expectations(&self) -> bool {
        !self.lock().expectations.is_empty()
    }
}

/// A short, safe form of a header value for the record: secrets are cut to their tail.
pub(crate) fn redact(name: &str, value: &str) -> String {
    if name.eq_ignore_ascii_case("authorization") && value.len() > 16 {
        format!("{}…{}", &value[..12.min(value.len())], &value[value.len() - 4..])
    } else {
        value.to_string()
    }
}

/// Used by the JSON admin API: a fault as JSON.
pub(crate) fn fault_from_json(value: Value) -> Result<Fault, String> {
    serde_json::from_value(value).map_err(|e| format!("invalid fault: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_patterns_match_segments_and_methods() {
        let r = Route::backend("GET /v1/users/*");
        assert!(r.matches(Api::Backend, "GET", "/v1/users/user_1"));
        assert!(!r.matches(Api::Backend, "DELETE", "/v1/users/user_1"));
        assert!(!r.matches(Api::Backend, "GET", "/v1/users"));
        assert!(!r.matches(Api::Frontend, "GET", "/v1/users/user_1"));
        assert!(Route::backend("/v1/**").matches(Api::Backend, "POST", "/v1/sessions/s/tokens"));
    }

    #[test]
    fn a_fault_with_times_recovers() {
        let faults = Faults::default();
        faults.inject(Fault::status(Route::backend("*"), 503).times(2));
        assert!(faults.take_matching(Api::Backend, "GET", "/v1/jwks").is_some());
        assert!(faults.take_matching(Api::Backend, "GET", "/v1/jwks").is_some());
        assert!(faults.take_matching(Api::Backend, "GET", "/v1/jwks").is_none());
    }

    #[test]
    fn unmet_expectations_list_what_was_received() {
        let faults = Faults::default();
        faults.expect(Expectation::new(Route::backend("GET /v1/users/*"), 1..));
        faults.record(RecordedRequest {
            api: Api::Backend,
            method: "GET".into(),
            path: "/v1/jwks".into(),
            query: None,
            headers: vec![],
            status: 200,
            at_ms: 0,
            faulted: false,
            received_us: 0,
            duration_us: 0,
        });
        let report = faults.verify().expect_err("unmet");
        assert!(report.contains("GET /v1/users/*"), "{report}");
        assert!(report.contains("GET /v1/jwks -> 200"), "{report}");
    }
}
