//! "Detect, don't hang": telling an environment failure — the backend's calls to Clerk never
//! reach the mock — from a backend defect, from what the harness saw during one scenario:
//! the mock's request record, the interception proxy's journal and the backend's log lines.

use std::time::SystemTime;

use harness::LogMark;
use mock_clerk::MAX_RECORDED;

use crate::ctx::Ctx;

/// What the harness had seen before a scenario started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// The backend log's end.
    pub log: LogMark,
    mock_requests: usize,
    /// When the window opened.
    pub started: SystemTime,
}

impl Window {
    /// Opens a window at the current state of the mock, the proxy and the log.
    pub(crate) fn open(ctx: &Ctx) -> Self {
        Self { log: ctx.env.log_mark(), mock_requests: ctx.env.mock().faults().requests().len(), started: SystemTime::now() }
    }
}

/// An environment-level failure: the backend could not reach the mock Clerk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// The host the backend tried to reach (or the Clerk hosts it may have tried).
    pub host: String,
    /// What was seen, in one sentence.
    pub evidence: String,
    /// What to do.
    pub fix: String,
}

impl Unreachable {
    /// Groups repeats of the same failure ("the same environment-level error").
    #[must_use]
    pub fn key(&self) -> &str {
        &self.host
    }

    /// The diagnosis line.
    #[must_use]
    pub fn summary(&self) -> String {
        format!("the backend's call to Clerk did not reach the mock ({}): {}", self.host, self.evidence)
    }
}

/// Lower-case fragments of log lines that mean an outbound connection failed.
const CONNECTION_TROUBLE: [&str; 22] = [
    "connecterror",
    "connecttimeout",
    "connection refused",
    "connectionrefused",
    "connection reset",
    "name or service not known",
    "temporary failure in name resolution",
    "failed to resolve",
    "nodename nor servname",
    "max retries exceeded",
    "failed to establish a new connection",
    "econnrefused",
    "enotfound",
    "eai_again",
    "getaddrinfo",
    "timed out",
    "readtimeout",
    "certificate verify failed",
    "certificate_verify_failed",
    "network is unreachable",
    "no route to host",
    "error sending request",
];

/// The log lines that say an outbound connection failed.
#[must_use]
pub fn connection_trouble(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            CONNECTION_TROUBLE.iter().any(|m| lower.contains(m))
        })
        .map(String::as_str)
        .collect()
}

/// The host a connection-error line names, if it names one: `https://host/…`,
/// `host='host'` (urllib3), `Failed to resolve 'host'`, `ENOTFOUND host` (Node).
#[must_use]
pub fn host_in(line: &str) -> Option<String> {
    let host_chars = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-').collect::<String>();
    let candidates = [
        line.find("host='").map(|i| &line[i + 6..]),
        line.find("resolve '").map(|i| &line[i + 9..]),
        line.find("ENOTFOUND ").map(|i| &line[i + 10..]),
        line.find("://").map(|i| &line[i + 3..]),
    ];
    candidates.into_iter().flatten().map(host_chars).find(|h| !h.is_empty() && !h.starts_with('.'))
}

/// Whether the mock received a request during the window (at the record's cap, or after a
/// reset, the count says nothing: then it is assumed reached).
pub(crate) fn reached(ctx: &Ctx, window: &Window) -> bool {
    let requests = ctx.env.mock().faults().requests().len();
    requests > window.mock_requests || requests >= MAX_RECORDED || requests < window.mock_requests
}

/// The requests the mock answered with an injected fault during the window, grouped by
/// route: `[("GET /v1/users/user_…", 7, 10.2 s between the first and the last), …]`.
pub(crate) fn faulted_since(ctx: &Ctx, window: &Window) -> Vec<(String, usize, f64)> {
    let requests = ctx.env.mock().faults().requests();
    let fresh = requests.get(window.mock_requests..).unwrap_or(&requests[..]);
    let mut groups: Vec<(String, usize, u64, u64)> = vec![];
    for r in fresh.iter().filter(|r| r.faulted) {
        let key = format!("{} {}", r.method, r.path);
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => {
                g.1 += 1;
                g.3 = r.received_us;
            }
            None => groups.push((key, 1, r.received_us, r.received_us)),
        }
    }
    #[allow(clippy::cast_precision_loss)]
    groups.into_iter().map(|(k, n, first, last)| (k, n, last.saturating_sub(first) as f64 / 1e6)).collect()
}

/// Whether `host` may be where the backend looks for Clerk: a Clerk host, the instance's
/// FAPI host, or a loopback address (a backend wired to the mock's direct URLs).
#[must_use]
pub fn may_be_clerk(host: &str, fapi_host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host.contains("clerk") || host == fapi_host || host == "localhost" || host.starts_with("127.") || host == "::1" || host == harness::HOST_GATEWAY_NAME
}

/// Whether the backend's outbound Clerk calls failed during the window: the mock received
/// no request while the backend's log shows connection errors, the proxy refused or failed
/// a TLS handshake for a host, or a request to the backend hung (`hung`).
pub(crate) fn check(ctx: &Ctx, window: &Window, hung: bool) -> Option<Unreachable> {
    if reached(ctx, window) {
        return None;
    }
    // The harness's own reading first (it knows whether Clerk's host names are routed, and
    // says what to do for that runtime), then the checks below (direct URLs, the proxy's
    // refusals and handshakes, loopback hosts).
    let unreached = if hung { ctx.env.timeout_diagnosis(window.log) } else { ctx.env.outbound_diagnosis(window.log) };
    let fapi_host = ctx.env.mock().instance().fapi_host().to_owned();
    if let Some(u) = unreached.filter(|u| may_be_clerk(&u.host, &fapi_host)) {
        return Some(Unreachable { host: u.host.clone(), evidence: format!("its log says: {}", u.evidence_line.trim()), fix: u.fix() });
    }
    let fapi = ctx.env.mock().instance().fapi_host().to_owned();
    let clerk_hosts = format!("api.clerk.com or {fapi}");
    let proxy = ctx.env.interceptor();
    if let Some(failure) = proxy.handshake_failures().into_iter().rev().find(|f| f.at >= window.started) {
        return Some(Unreachable { host: failure.host.clone(), evidence: failure.to_string(), fix: harness::internal::UNTRUSTED_CA_FIX.into() });
    }
    let fix = format!(
        "the backend's HTTP client does not reach the mock: a client that ignores HTTPS_PROXY (e.g. clerk-backend-api's \
         httpx.Client(transport=…)) calls the real {clerk_hosts}. Run it in the docker runtime (--runtime docker), where the Clerk hosts \
         are routed to the mock by name, or verify tokens without a network call: set CLERK_JWT_KEY = \"{{pem_public_key}}\" in the profile's [env]"
    );
    if let Some(attempt) = proxy.blocked_attempts().into_iter().rev().find(|a| a.at >= window.started) {
        return Some(Unreachable {
            host: attempt.host.clone(),
            evidence: attempt.to_string(),
            fix: format!("{} is not a host the mock serves: configure the backend with this instance's FAPI host ({fapi}) and api.clerk.com", attempt.host),
        });
    }
    let lines = ctx.env.log_lines_since(window.log);
    // A line naming a host that is clearly not Clerk (a telemetry endpoint, another API) is
    // not evidence about Clerk.
    let trouble: Vec<&str> = connection_trouble(&lines).into_iter().filter(|l| host_in(l).is_none_or(|h| may_be_clerk(&h, &fapi))).collect();
    if let Some(first) = trouble.first() {
        let host = trouble.iter().find_map(|l| host_in(l)).unwrap_or_else(|| clerk_hosts.clone());
        let quoted: String = first.chars().take(200).collect();
        return Some(Unreachable { host, evidence: format!("the mock received no request and the backend logged: {quoted}"), fix });
    }
    if hung {
        return Some(Unreachable {
            host: clerk_hosts.clone(),
            evidence: "the request to the backend hung and the mock Clerk received no request meanwhile: if the backend was calling Clerk, \
                       that call never reached the mock"
                .into(),
            fix,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_from_the_usual_client_errors() {
        let urllib3 = "HTTPSConnectionPool(host='api.clerk.com', port=443): Max retries exceeded with url: /v1/jwks";
        assert_eq!(host_in(urllib3).as_deref(), Some("api.clerk.com"));
        assert_eq!(
            host_in("httpx.ConnectError: error connecting to https://clever-otter-42.clerk.accounts.dev/.well-known/jwks.json").as_deref(),
            Some("clever-otter-42.clerk.accounts.dev")
        );
        assert_eq!(host_in("Error: getaddrinfo ENOTFOUND api.clerk.com").as_deref(), Some("api.clerk.com"));
        assert_eq!(host_in("httpx.ConnectError: [Errno 111] Connection refused"), None);
    }

    #[test]
    fn only_hosts_that_may_be_clerk_count() {
        assert!(may_be_clerk("api.clerk.com", "x.clerk.accounts.dev"));
        assert!(may_be_clerk("clerk.example.com", "clerk.example.com"));
        assert!(may_be_clerk("localhost", "x"));
        assert!(!may_be_clerk("o123.ingest.sentry.io", "x.clerk.accounts.dev"));
    }

    #[test]
    fn connection_errors_are_told_from_ordinary_lines() {
        let lines = vec![
            "INFO: 127.0.0.1:5000 - \"GET /api/me HTTP/1.1\" 401".to_string(),
            "httpx.ConnectError: [Errno -3] Temporary failure in name resolution".to_string(),
        ];
        assert_eq!(connection_trouble(&lines), [lines[1].as_str()]);
    }
}
