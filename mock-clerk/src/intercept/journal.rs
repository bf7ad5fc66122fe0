use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::time::SystemTime;

use http::{Method, StatusCode};

use super::ca::lock;

/// How many entries of each kind are kept; older ones are dropped so a long `serve` run does
/// not grow without bound.
pub const JOURNAL_CAPACITY: usize = 10_000;

/// A connection the proxy refused because no mock serves the host: "the backend tried to
/// reach `host`". Refusals are what tell a test that a backend calls something the harness
/// does not mock (a telemetry endpoint, a second identity provider, a real Clerk host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownHostAttempt {
    /// The host as the client named it, lower-cased.
    pub host: String,
    /// The port it asked for (443 for a `CONNECT` without one, 80 for plain HTTP).
    pub port: u16,
    /// `CONNECT` for HTTPS, the request method for plain HTTP.
    pub method: Method,
    /// When the attempt was refused.
    pub at: SystemTime,
}

impl fmt::Display for UnknownHostAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the backend tried to reach {}:{} ({}) and was refused", self.host, self.port, self.method)
    }
}

/// A request the proxy handed to a mock's router, for reports and assertions that a backend
/// really called the mock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedRequest {
    /// The intercepted host.
    pub host: String,
    /// The request method.
    pub method: Method,
    /// The path, without the query (which may carry tokens).
    pub path: String,
    /// The status the router answered with.
    pub status: StatusCode,
    /// When the response was produced.
    pub at: SystemTime,
    /// True when it came through the direct TLS [`Front`](super::Front) (a client that
    /// ignores the proxy, routed by name), false through the proxy.
    pub via_front: bool,
}

impl fmt::Display for RoutedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} https://{}{} -> {}", self.method, self.host, self.path, self.status.as_u16())
    }
}

/// A TLS handshake inside a `CONNECT` tunnel that failed: most often a client that does not
/// trust the per-run CA because it ignores `SSL_CERT_FILE` and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeFailure {
    /// The host of the tunnel.
    pub host: String,
    /// True when the client rejected the certificate (an `unknown_ca`, `bad_certificate` or
    /// `certificate_unknown` alert), as opposed to a network or protocol failure.
    pub untrusted_ca: bool,
    /// The error as rustls reported it.
    pub error: String,
    /// What the client said: the TLS alert it sent (`unknown_ca`, `bad_certificate`, …), or
    /// `closed during the handshake` when it hung up without one; `None` for other failures.
    pub alert: Option<String>,
    /// When the handshake failed.
    pub at: SystemTime,
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS handshake for {} failed: {}", self.host, self.error)?;
        if self.untrusted_ca {
            f.write_str(
                " (the client does not trust the per-run CA: it must read SSL_CERT_FILE, \
                 REQUESTS_CA_BUNDLE or NODE_EXTRA_CA_CERTS, or be given the CA in code)",
            )?;
        }
        Ok(())
    }
}

/// A bounded, thread-safe log that keeps the most recent entries.
#[derive(Debug)]
pub(crate) struct Journal<T> {
    entries: Mutex<VecDeque<T>>,
}

impl<T: Clone> Journal<T> {
    pub(crate) fn push(&self, entry: T) {
        let mut entries = lock(&self.entries);
        if entries.len() == JOURNAL_CAPACITY {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    pub(crate) fn snapshot(&self) -> Vec<T> {
        lock(&self.entries).iter().cloned().collect()
    }
}

impl<T> Default for Journal<T> {
    fn default() -> Self {
        Self { entries: Mutex::default() }
    }
}
