//! Log windows that close on the backend's own output ([`TestEnv::settle_log`](crate::TestEnv::settle_log)).
//!
//! A scenario's log window cannot simply end when its last answer arrives: many servers
//! write a request's access line after the response is sent (gunicorn), and every line
//! reaches the harness through a pipe and a pump task, a moment later. Read at once, the
//! window misses its last lines and the next scenario's window shows them.
//!
//! So after each scenario the harness sends a *barrier*: a request to the profile's health
//! path marked with a query parameter (`GET /health?clerk-harness-barrier=7`), and waits for
//! the backend's log line of it (its access line; at most [`BARRIER_WAIT`]). The backend
//! logs in order, so what it wrote before is in by then; a few quiet milliseconds more
//! ([`AFTER_BARRIER_QUIET`]) let the other pipe (stderr beside stdout) catch up. The
//! barrier's own line is never kept in memory ([`crate::logs::BARRIER_MARKER`]).
//!
//! A backend that keeps no access log never logs the barrier: after the first barrier it
//! answers without a line, the harness stops sending them for the rest of the run and waits
//! for a quiet log instead ([`QUIET`], at most [`QUIET_CAP`]) — as it does when a barrier
//! gets no answer at all (a backend that hangs). A backend given by URL has no captured log:
//! there is nothing to wait for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use url::Url;

use crate::error::Result;
use crate::logs::{LogBuffer, LogMark};

/// How long a barrier may take: its request answered and its line in the log.
pub const BARRIER_WAIT: Duration = Duration::from_millis(300);

/// After the barrier's line: how long no other line may arrive before the window closes
/// (lines the backend wrote to its other stream, still in their pipe).
pub const AFTER_BARRIER_QUIET: Duration = Duration::from_millis(1);

/// The most [`AFTER_BARRIER_QUIET`] may be waited for on a chatty log.
const AFTER_BARRIER_CAP: Duration = Duration::from_millis(30);

/// Without a barrier: how long no line may arrive before the window closes.
pub const QUIET: Duration = Duration::from_millis(50);

/// The most [`QUIET`] may be waited for on a chatty log.
pub const QUIET_CAP: Duration = Duration::from_millis(300);

/// What the run learned about the backend's log of barriers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Learned {
    /// No barrier answered yet.
    Unknown,
    /// A barrier's line was seen: keep sending them.
    Logged,
    /// The first answered barrier left no line: no access log, no more barriers.
    NotLogged,
}

/// The barriers of one environment: their numbers, what was learned, their client.
#[derive(Debug)]
pub(crate) struct LogBarrier {
    sent: AtomicU64,
    learned: Mutex<Learned>,
    /// Direct, and a new connection per barrier: the SPA's pooled connections (and a backend
    /// that serves one connection at a time) are left alone.
    client: reqwest::Client,
}

impl LogBarrier {
    pub(crate) fn new() -> Result<Self> {
        let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).timeout(BARRIER_WAIT).build()?;
        Ok(Self { sent: AtomicU64::new(0), learned: Mutex::new(Learned::Unknown), client })
    }

    fn learned(&self) -> Learned {
        *self.learned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn learn(&self, learned: Learned) {
        *self.learned.lock().unwrap_or_else(PoisonError::into_inner) = learned;
    }
}

impl LogBarrier {
    /// Whether the backend logs the barriers: `Some(true)` once one was logged, `Some(false)`
    /// once one was answered without a line, `None` before either.
    pub(crate) fn logged(&self) -> Option<bool> {
        match self.learned() {
            Learned::Unknown => None,
            Learned::Logged => Some(true),
            Learned::NotLogged => Some(false),
        }
    }

    /// Waits until `logs` hold the lines of every request the backend at `backend_url`
    /// answered so far (a barrier to its `health_path`, else a quiet log), and returns where
    /// they end. See the module doc.
    pub(crate) async fn settle(&self, logs: &LogBuffer, backend_url: &Url, health_path: &str) -> LogMark {
        let started = tokio::time::Instant::now();
        if self.learned() != Learned::NotLogged {
            if let Some(end) = self.barrier_once(logs, backend_url, health_path).await {
                tracing::debug!(elapsed = ?started.elapsed(), "log window closed by a barrier");
                return end;
            }
        }
        let end = logs.settle(QUIET, QUIET_CAP).await;
        tracing::debug!(elapsed = ?started.elapsed(), "log window closed on a quiet log");
        end
    }

    /// One barrier: the window's end if its line arrived in time.
    async fn barrier_once(&self, logs: &LogBuffer, backend_url: &Url, health_path: &str) -> Option<LogMark> {
        let started = tokio::time::Instant::now();
        let number = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let mut url = backend_url.join(health_path).ok()?;
        url.query_pairs_mut().append_pair(crate::logs::BARRIER_MARKER.trim_end_matches('='), &number.to_string());
        if let Err(e) = self.client.get(url.clone()).send().await {
            // A backend that hangs or is gone: the quiet period, and nothing learned.
            tracing::debug!(%url, error = %e, "the log barrier got no answer");
            return None;
        }
        let left = BARRIER_WAIT.saturating_sub(started.elapsed());
        if logs.wait_for_barrier(number, left).await.is_some() {
            self.learn(Learned::Logged);
            return Some(logs.settle(AFTER_BARRIER_QUIET, AFTER_BARRIER_CAP).await);
        }
        if self.learned() == Learned::Unknown {
            self.learn(Learned::NotLogged);
            tracing::info!(
                path = health_path,
                "the backend wrote no log line for the harness's marked request to its health path (no access log?): \
                 log windows close after {} ms of quiet instead",
                QUIET.as_millis()
            );
        }
        None
    }
}
