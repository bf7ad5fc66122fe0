//! What the backend did: its captured log, the windows scenarios read it in (closed by a
//! barrier, see [`crate::barrier`]), and its calls to Clerk's hosts.

use mock_clerk::intercept::RoutedRequest;

use super::TestEnv;
use crate::backend::Backend;
use crate::logs::{LogBuffer, LogMark};
use crate::routing::{NameRouting, Unreached};

impl TestEnv {
    /// Every captured log line of the backend (all its starts).
    #[must_use]
    pub fn logs(&self) -> Vec<String> {
        self.logs.lines()
    }

    /// The current end of the log, for [`TestEnv::log_lines_since`].
    #[must_use]
    pub fn log_mark(&self) -> LogMark {
        self.logs.mark()
    }

    /// Log lines written after `mark`.
    #[must_use]
    pub fn log_lines_since(&self, mark: LogMark) -> Vec<String> {
        self.logs.since(mark)
    }

    /// Log lines written after `start` and before `end`: a scenario's window, `end` from
    /// [`TestEnv::settle_log`] once its last request was answered.
    #[must_use]
    pub fn log_lines_between(&self, start: LogMark, end: LogMark) -> Vec<String> {
        self.logs.between(start, end)
    }

    /// How Clerk's host names reach the mock for this backend (or why they do not).
    #[must_use]
    pub fn name_routing(&self) -> &NameRouting {
        &self.routing
    }

    /// Requests the mock answered for Clerk's hosts since `mark`, through the proxy or the
    /// TLS front: "did the backend's outbound call reach the mock?".
    #[must_use]
    pub fn clerk_calls_since(&self, mark: LogMark) -> Vec<RoutedRequest> {
        self.interceptor.routed_requests().into_iter().filter(|r| r.at >= mark.at() && self.routing.hosts().contains(&r.host)).collect()
    }

    /// Whether the backend's log since `mark` shows an outbound connection that failed
    /// (name resolution, refused, unreachable, timed out) to a host the mock never saw a
    /// request for in that window: the host, the log line, and (via [`Unreached::fix`]) what
    /// to do. `None` when the log shows no such failure, or the mock did see the call.
    ///
    /// A backend still waiting on the connection (retries with back-off) has logged nothing
    /// yet: combine with [`TestEnv::clerk_calls_since`] after a timed-out request.
    #[must_use]
    pub fn outbound_diagnosis(&self, since: LogMark) -> Option<Unreached> {
        let lines = self.logs.since(since);
        crate::routing::diagnose(&lines, &self.interceptor.routed_requests(), since.at(), self.routing.hosts(), &self.routing)
    }

    /// For a request to the backend that timed out: [`TestEnv::outbound_diagnosis`] if the log
    /// already shows a failed connection, else — when Clerk's host names are not routed and the
    /// mock saw no Clerk call since `since` — an inferred [`Unreached`] (a client that ignores
    /// the proxy and is still retrying). `None` otherwise.
    #[must_use]
    pub fn timeout_diagnosis(&self, since: LogMark) -> Option<Unreached> {
        self.outbound_diagnosis(since).or_else(|| crate::routing::diagnose_silence(&self.interceptor.routed_requests(), since.at(), &self.routing))
    }

    /// Whether the backend logs the harness's barriers: `Some(true)` once one was logged,
    /// `Some(false)` once one was answered without a line (log windows then close on a quiet
    /// log), `None` before either (or with no captured log).
    #[must_use]
    pub fn log_barriers(&self) -> Option<bool> {
        self.barrier.logged()
    }

    /// Waits until the backend's log holds the lines of every request answered so far, and
    /// returns where they end: the end of a scenario's log window
    /// ([`TestEnv::log_lines_between`]). Many servers log a request after answering it, and
    /// every line comes through a pipe: so the harness sends a *barrier*, a request to the
    /// health path marked with `?clerk-harness-barrier=N`, and waits for its log line (the
    /// backend logs in order); a backend that keeps no access log gets a quiet period
    /// instead. Costs a loopback request and a few milliseconds on a backend that logs its
    /// requests, about 50 ms on one that does not, nothing on a backend given by URL.
    pub async fn settle_log(&self) -> LogMark {
        match &self.backend {
            // No captured log, or no backend running (a failed restart: its pipes are drained).
            None | Some(Backend::External(_)) => self.logs.mark(),
            Some(_) => self.barrier.settle(&self.logs, &self.backend_url, self.profile.health_path.get()).await,
        }
    }

    /// The log buffer (also mirrored to a file: [`LogBuffer::file`]).
    #[must_use]
    pub fn log_buffer(&self) -> &LogBuffer {
        &self.logs
    }
}
