//! The backend under test: a local process, a container, or an already running URL.
//! Readiness is the profile's health path answering 2xx before a deadline; a backend that
//! exits first is reported with its exit status and the tail of its log.

pub(crate) mod container;
mod in_process;
mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use url::Url;

pub use container::{probe_faketime, run_container_setup, ContainerBackend};
pub use in_process::{InProcessBackend, InProcessServer, LaunchFuture, Launcher};
pub(crate) use process::resolve_program;
pub use process::{run_process_setup, ProcessBackend};

use crate::error::{HarnessError, Result};
use crate::logs::{LogBuffer, LogMark};

/// Lines of log shown in start-up errors.
pub(crate) const TAIL_LINES: usize = 40;

/// Changes to a backend's environment for a restart: variables set (values may use
/// placeholders) and variables removed.
///
/// ```
/// let changes = harness::EnvChanges::new().unset("CLERK_SECRET_KEY").set("ENV", "production");
/// assert!(changes.removes("CLERK_SECRET_KEY"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvChanges {
    set: BTreeMap<String, String>,
    unset: BTreeSet<String>,
}

impl EnvChanges {
    /// No changes.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` (placeholders such as `{fapi_host}` are expanded).
    #[must_use]
    pub fn set(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.unset.remove(&name);
        self.set.insert(name, value.into());
        self
    }

    /// Removes `name` from the environment (also when the profile or proxy would set it).
    #[must_use]
    pub fn unset(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.set.remove(&name);
        self.unset.insert(name);
        self
    }

    /// Whether nothing changes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.unset.is_empty()
    }

    /// The changed variables by name, for reports: `CLERK_SECRET_KEY changed, CLERK_JWKS_URL
    /// removed` (values are never shown: they may be secrets).
    #[must_use]
    pub fn names(&self) -> String {
        let set = self.set.keys().map(|n| format!("{n} changed"));
        let unset = self.unset.iter().map(|n| format!("{n} removed"));
        set.chain(unset).collect::<Vec<_>>().join(", ")
    }

    /// Whether `name` is removed.
    #[must_use]
    pub fn removes(&self, name: &str) -> bool {
        self.unset.contains(name)
    }

    /// Adds `other`'s changes on top of these.
    pub fn merge(&mut self, other: &Self) {
        for (name, value) in &other.set {
            self.unset.remove(name);
            self.set.insert(name.clone(), value.clone());
        }
        for name in &other.unset {
            self.set.remove(name);
            self.unset.insert(name.clone());
        }
    }

    /// Applies the changes to `env`, expanding placeholders with `wiring`.
    pub fn apply(&self, env: &mut BTreeMap<String, String>, wiring: &crate::profile::Wiring) {
        for (name, value) in &self.set {
            env.insert(name.clone(), crate::profile::expand(value, wiring));
        }
        for name in &self.unset {
            env.remove(name);
        }
    }
}

/// Where and how long to wait for a backend to become healthy.
#[derive(Debug, Clone, Copy)]
pub struct Health<'a> {
    /// The profile's health path, e.g. `/health`.
    pub path: &'a str,
    /// The deadline after the start.
    pub timeout: Duration,
}

/// A started backend. Dropping it stops the process or removes the container.
#[derive(Debug)]
pub enum Backend {
    /// A local process (its whole process group is killed on drop).
    Process(Box<ProcessBackend>),
    /// A container (removed on drop).
    Container(Box<ContainerBackend>),
    /// An already running backend the harness cannot restart.
    External(Url),
    /// Served in this process by a [`Launcher`].
    InProcess(InProcessBackend),
}

impl Backend {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    #[must_use]
    pub fn url(&self) -> &Url {
        match self {
            Self::Process(p) => p.url(),
            Self::Container(c) => c.url(),
            Self::External(url) => url,
            Self::InProcess(b) => b.url(),
        }
    }

    /// `process`, `container` or `url`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Process(_) => "process",
            Self::Container(_) => "container",
            Self::External(_) => "url",
            Self::InProcess(_) => "in-process",
        }
    }

    /// Stops it: a process group awaited (SIGTERM, SIGKILL after a grace period, its last log
    /// lines in); the other kinds on drop.
    pub async fn stop(self) {
        match self {
            Self::Process(process) => (*process).stop().await,
            other => drop(other),
        }
    }
}

/// An HTTP client for health probes: direct (never through a proxy), short timeouts.
pub(crate) fn probe_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build()?)
}

/// What a health probe saw.
pub(crate) enum Probe {
    Ready,
    NotYet(String),
    /// An answer that says the backend is up but misconfigured (4xx, or 5xx other than 503).
    Refused(u16, String),
}

pub(crate) async fn probe(client: &reqwest::Client, url: &Url) -> Probe {
    match client.get(url.clone()).send().await {
        Ok(resp) if resp.status().is_success() => Probe::Ready,
        // 503 is how many backends say "starting"; keep polling.
        Ok(resp) if resp.status().as_u16() == 503 => Probe::NotYet("HTTP 503".into()),
        Ok(resp) if resp.status().is_client_error() || resp.status().is_server_error() => {
            let status = resp.status().as_u16();
            Probe::Refused(status, resp.text().await.unwrap_or_default())
        }
        Ok(resp) => Probe::NotYet(format!("HTTP {}", resp.status())),
        Err(e) => Probe::NotYet(if e.is_connect() { "connection refused".into() } else { e.to_string() }),
    }
}

/// The part of an error page that says what is wrong (framework pages bury it), cut to
/// about 300 characters, and a hint.
pub(crate) fn explain_health_refusal(path: &str, status: u16, body: &str) -> (String, String) {
    let text = crate::text::visible_text(body);
    let markers = ["Invalid HTTP_HOST", "ALLOWED_HOSTS", "CSRF", "DisallowedHost", "Not Found", "Method Not Allowed", "Traceback", "Error", "error"];
    let excerpt = crate::text::excerpt_around(&text, &markers, 300);
    let hint = if text.contains("ALLOWED_HOSTS") || text.contains("DisallowedHost") || text.contains("Invalid HTTP_HOST") {
        "the backend refuses the Host header the harness sends (Django: add 127.0.0.1 and localhost to ALLOWED_HOSTS in the profile's [env])".to_string()
    } else if status == 404 || status == 405 {
        format!("health_path {path} does not exist in the backend: set health_path in the profile to a path that answers 2xx without a token")
    } else if status == 401 || status == 403 {
        format!("health_path {path} needs authentication: set health_path to a path that answers 2xx without a token")
    } else {
        format!("the backend answers {status} on its health path: see its log below")
    };
    (excerpt, hint)
}

/// How long an error path waits for the backend's last log lines before reporting without them.
const DRAIN_WITHIN: Duration = Duration::from_millis(500);

/// Polls `health` until 2xx. `exited` is asked before each probe and returns the exit status
/// text once the backend has died. Error messages show the log written since `since` (this
/// start), without the access-log lines of the probes themselves.
pub(crate) async fn wait_healthy<F, Fut>(health: &Url, timeout: Duration, logs: &LogBuffer, since: LogMark, command: &str, mut exited: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let client = probe_client()?;
    let started = Instant::now();
    let probe_lines = format!("GET {} ", health.path());
    let tail = || logs.tail_since(since, TAIL_LINES, Some(&probe_lines));
    let mut last;
    loop {
        if let Some(status) = exited().await {
            // The last lines of a crash: the pipes reach end of file once the process is gone.
            logs.drained(DRAIN_WITHIN).await;
            return Err(HarnessError::BackendExited { command: command.into(), status, log_tail: tail() });
        }
        match probe(&client, health).await {
            Probe::Ready => {
                tracing::info!(url = %health, elapsed = ?started.elapsed(), "backend ready");
                return Ok(());
            }
            Probe::Refused(status, body) => {
                // The backend's own log line about it (its access log, when it keeps one).
                logs.wait_for_line(since, health.path(), DRAIN_WITHIN).await;
                let (body, hint) = explain_health_refusal(health.path(), status, &body);
                return Err(HarnessError::HealthRefused { url: health.to_string(), status, body, hint: hint.into(), log_tail: tail() });
            }
            Probe::NotYet(why) => last = why,
        }
        if started.elapsed() > timeout {
            return Err(HarnessError::BackendNotReady { url: health.to_string(), waited: timeout, last, log_tail: tail() });
        }
        // A refused connection costs microseconds: polling often takes ≈ 20 ms off every
        // start and restart (half the interval, on average, between ready and noticed).
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for an external backend's health path.
///
/// # Errors
/// [`HarnessError::BackendNotReady`].
pub async fn check_external(url: &Url, health_path: &str, timeout: Duration) -> Result<Backend> {
    let health = url
        .join(health_path)
        .map_err(|e| HarnessError::Missing { what: format!("bad backend URL {url}: {e}"), fix: "set HARNESS_BACKEND_URL to http://host:port".into() })?;
    let logs = LogBuffer::new(None).map_err(HarnessError::io("log buffer"))?;
    logs.push(crate::logs::Stream::Stderr, "(external backend: its log is not captured)");
    wait_healthy(&health, timeout, &logs, logs.mark(), url.as_str(), || async { None }).await?;
    Ok(Backend::External(url.clone()))
}

/// `program arg …` for messages (no quoting beyond spaces).
pub(crate) fn command_line(args: &[String]) -> String {
    args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect::<Vec<_>>().join(" ")
}
