//! A backend served inside the harness's own process by a [`Launcher`]: a test double (such
//! as the workspace's stub backend) started with the same environment a real backend would
//! get, so the harness's verdicts can be tested in milliseconds without Python, Docker or
//! Postgres.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use tokio::task::JoinHandle;
use url::Url;

use super::{wait_healthy, Health};
use crate::error::{HarnessError, Result};
use crate::logs::{LogBuffer, Stream};

/// What [`Launcher::launch`] returns: the running server, or why it refused to start (as a
/// real backend's exit message would say it).
pub type LaunchFuture = Pin<Box<dyn Future<Output = std::result::Result<InProcessServer, String>> + Send>>;

/// Starts one instance of an in-process backend.
pub trait Launcher: Send + Sync + fmt::Debug {
    /// Starts an instance with exactly `env` (the profile's `[env]` expanded, plus a
    /// restart's changes), writing its log lines to `logs`. An `Err` is a refused start
    /// (e.g. a required variable missing), reported like a backend that exited.
    fn launch(&self, env: BTreeMap<String, String>, logs: LogBuffer) -> LaunchFuture;

    /// The clock the backend's instances read, if the harness may move it
    /// ([`crate::BackendClock`]); `None` (the default): they read the system clock.
    fn clock(&self) -> Option<mock_clerk::Clock> {
        None
    }
}

/// A running in-process server: its base URL and the task serving it (aborted on drop).
#[derive(Debug)]
pub struct InProcessServer {
    url: Url,
    task: JoinHandle<()>,
}

impl InProcessServer {
    /// Wraps the task serving `url`. The task must own every connection task it spawns
    /// (e.g. in a `JoinSet`) so aborting it stops the whole server.
    #[must_use]
    pub fn new(url: Url, task: JoinHandle<()>) -> Self {
        Self { url, task }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl Drop for InProcessServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A started in-process backend (stopped on drop).
#[derive(Debug)]
pub struct InProcessBackend {
    server: InProcessServer,
}

impl InProcessBackend {
    /// Launches an instance and waits until its health path answers 2xx.
    ///
    /// # Errors
    /// [`HarnessError::BackendExited`] when the launcher refused or the server stopped,
    /// [`HarnessError::BackendNotReady`] when the health path does not answer in time.
    pub(crate) async fn start(launcher: &dyn Launcher, env: BTreeMap<String, String>, health: Health<'_>, logs: LogBuffer) -> Result<Self> {
        let name = format!("{launcher:?}");
        let since = logs.mark();
        let server = match launcher.launch(env, logs.clone()).await {
            Ok(server) => server,
            Err(message) => {
                logs.push(Stream::Stderr, &message);
                return Err(HarnessError::BackendExited {
                    command: name,
                    status: "refused to start".into(),
                    log_tail: logs.tail_since(since, super::TAIL_LINES, None),
                });
            }
        };
        let health_url = server.url.join(health.path).unwrap_or_else(|_| server.url.clone());
        let task = &server.task;
        wait_healthy(&health_url, health.timeout, &logs, since, &name, || {
            let finished = task.is_finished().then(|| "its serving task ended".to_string());
            async move { finished }
        })
        .await?;
        Ok(Self { server })
    }

    /// Base URL.
    #[must_use]
    pub fn url(&self) -> &Url {
        self.server.url()
    }
}
