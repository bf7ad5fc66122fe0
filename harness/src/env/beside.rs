//! Backends started beside the environment's own, which keeps running: trial starts (how
//! does a start go?) and side backends (a scenario calls a backend configured otherwise
//! without disturbing the shared one).

use std::time::{Duration, Instant};

use url::Url;

use super::TestEnv;
use crate::backend::{Backend, EnvChanges};
use crate::config::BackendMode;
use crate::error::{HarnessError, Result};
use crate::logs::LogBuffer;
use crate::postgres::Database;

/// One start of a backend beside the environment's own ([`TestEnv::trial_starts`]).
#[derive(Debug)]
pub struct TrialStart {
    /// `Ok` when it became healthy (it was stopped again at once); otherwise how the start
    /// failed ([`HarnessError::BackendExited`], [`HarnessError::BackendNotReady`], …).
    pub result: Result<()>,
    /// Its output, alone (also appended to the environment's log once every trial is over).
    pub log: Vec<String>,
    /// From its start to its exit, to healthy or to giving up.
    pub elapsed: Duration,
}

/// A backend running beside the environment's own with other variables
/// ([`TestEnv::start_beside`]): its own port, its own fresh database from the template and its
/// own log. Call it at [`SideBackend::url`]; hand it back with [`TestEnv::retire`], which puts
/// its log into the environment's and stops it without making the caller wait.
#[derive(Debug)]
pub struct SideBackend {
    backend: Backend,
    database: Option<Database>,
    logs: LogBuffer,
    label: String,
    elapsed: Duration,
}

impl SideBackend {
    /// Where it listens.
    #[must_use]
    pub fn url(&self) -> &Url {
        self.backend.url()
    }

    /// Its output so far.
    #[must_use]
    pub fn log_lines(&self) -> Vec<String> {
        self.logs.lines()
    }

    /// Its log buffer (marks, waiting for a line).
    #[must_use]
    pub fn log_buffer(&self) -> &LogBuffer {
        &self.logs
    }

    /// From its start to healthy.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}

/// One start beside the environment's backend: its outcome, its log, its database.
struct Started {
    backend: Result<Backend>,
    logs: LogBuffer,
    database: Option<Database>,
    elapsed: Duration,
}

impl TestEnv {
    fn refuse_url_backend(&self) -> Result<()> {
        if self.choice.backend == BackendMode::Url {
            return Err(HarnessError::NotApplicable("the backend was given as a URL (HARNESS_BACKEND_URL): the harness cannot start it".into()));
        }
        Ok(())
    }

    /// Starts one backend with `changes` (on top of the builder's), its own database and log.
    async fn start_one_beside(&self, changes: &EnvChanges) -> Result<Started> {
        let parts = self.parts();
        let database = match &self.database {
            Some(database) => Some(parts.database(database.server(), &self.template).await?),
            None => None,
        };
        let logs = LogBuffer::new(None).map_err(HarnessError::io("a log buffer"))?;
        let mut merged = self.env_changes.clone();
        merged.merge(changes);
        let t0 = Instant::now();
        let backend = parts.start_backend(database.as_ref(), &merged, logs.clone()).await;
        Ok(Started { backend, logs, database, elapsed: t0.elapsed() })
    }

    /// Starts one backend per entry of `variants` at the same time, beside the environment's
    /// own (which keeps running), each with its own port, its own fresh database from the
    /// template and its own log, and stops each again once it is healthy. For scenarios that
    /// only ask *how* a start goes (does it exit without a required variable?): N starts cost
    /// about one on an idle machine instead of N.
    ///
    /// # Errors
    /// [`HarnessError::NotApplicable`] for a backend given by URL; a fresh database that
    /// cannot be made. A failed start is not an error: it is the trial's `result`.
    pub async fn trial_starts(&self, variants: Vec<EnvChanges>) -> Result<Vec<TrialStart>> {
        use futures::StreamExt;
        self.refuse_url_backend()?;
        (self.progress)(&format!("starting the backend {} times at once", variants.len()));
        // As many at once as there are cores: more would only slow each start down (a
        // start is mostly the backend importing its code) towards its ready timeout.
        let at_once = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get).max(1);
        let names: Vec<String> = variants.iter().map(EnvChanges::names).collect();
        let trials = variants.iter().map(|changes| async move {
            let started = self.start_one_beside(changes).await?;
            let (result, running) = match started.backend {
                Ok(Backend::Process(process)) => {
                    (*process).stop().await;
                    (Ok(()), None)
                }
                // Removing a container blocks: after every trial is over.
                Ok(other) => (Ok(()), Some(other)),
                Err(e) => (Err(e), None),
            };
            Ok::<_, HarnessError>((TrialStart { result, log: started.logs.lines(), elapsed: started.elapsed }, running, started.database))
        });
        let done: Vec<_> = futures::stream::iter(trials).buffered(at_once).collect().await;
        let mut trials = Vec::with_capacity(done.len());
        let mut leftovers = vec![];
        for outcome in done {
            let (trial, running, database) = outcome?;
            leftovers.push((running, database));
            trials.push(trial);
        }
        drop(leftovers);
        for (i, (trial, names)) in trials.iter().zip(&names).enumerate() {
            let how = match &trial.result {
                Ok(()) => "healthy".to_string(),
                Err(HarnessError::BackendExited { status, .. }) => status.clone(),
                Err(_) => "did not become healthy".to_string(),
            };
            let header = format!("trial start {} of {} ({names}): {how} after {} ms", i + 1, trials.len(), trial.elapsed.as_millis());
            self.append_log(&header, &trial.log);
        }
        Ok(trials)
    }

    /// Starts one backend per entry of `variants`, all at once, beside the environment's own
    /// (which keeps running and is not changed): for scenarios that call a backend configured
    /// otherwise (another instance's key, another Frontend API host). Starting them together
    /// costs about what the slowest start costs on an idle machine, instead of one restart of
    /// the environment's backend each — and the shared backend needs no restart afterwards.
    /// Each start's outcome is returned in order; a failed start carries its error (e.g.
    /// [`HarnessError::BackendExited`]) with its log tail.
    ///
    /// # Errors
    /// [`HarnessError::NotApplicable`] for a backend given by URL; a fresh database that
    /// cannot be made.
    pub async fn start_beside(&self, variants: Vec<EnvChanges>) -> Result<Vec<Result<SideBackend>>> {
        self.refuse_url_backend()?;
        (self.progress)(&format!("starting {} backend(s) beside the running one", variants.len()));
        let starts = variants.iter().map(|changes| self.start_one_beside(changes));
        let mut sides = Vec::with_capacity(variants.len());
        for (started, changes) in futures::future::join_all(starts).await.into_iter().zip(&variants) {
            let Started { backend, logs, database, elapsed } = started?;
            let label = changes.names();
            sides.push(match backend {
                Ok(backend) => Ok(SideBackend { backend, database, logs, label, elapsed }),
                Err(e) => {
                    self.append_log(&format!("start beside ({label}): failed after {} ms", elapsed.as_millis()), &logs.lines());
                    Err(e)
                }
            });
        }
        Ok(sides)
    }

    /// Hands a side backend back: its output so far goes into the environment's log (under a
    /// header naming its variables) and it is stopped in the background — its database is
    /// dropped after it; [`TestEnv::shutdown`] waits for both.
    pub fn retire(&self, side: SideBackend) {
        let SideBackend { backend, database, logs, label, elapsed } = side;
        self.append_log(&format!("backend beside the shared one ({label}), started in {} ms", elapsed.as_millis()), &logs.lines());
        let stop = match backend {
            Backend::Process(process) => tokio::spawn(async move {
                (*process).stop().await;
                // Dropping the database runs DROP DATABASE on a thread of its own: not here.
                let _ = tokio::task::spawn_blocking(move || drop(database)).await;
            }),
            // A container's removal blocks: off the async workers.
            other => tokio::task::spawn_blocking(move || {
                drop(other);
                drop(database);
            }),
        };
        self.retiring.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(stop);
    }

    /// Waits for every side backend [`TestEnv::retire`] is stopping.
    pub(crate) async fn retired(&self) {
        let stopping = std::mem::take(&mut *self.retiring.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for stop in stopping {
            let _ = stop.await;
        }
    }

    /// Appends another backend's `lines` to the environment's log under `header`.
    fn append_log(&self, header: &str, lines: &[String]) {
        self.logs.push(crate::logs::Stream::Stderr, &format!("── clerk-harness: {header} ──"));
        for line in lines {
            self.logs.push(crate::logs::Stream::Stdout, line);
        }
    }
}
