//! Restarts: the backend stopped and started again with other variables and a fresh
//! database, the old one's exit overlapping the new one's start.

use std::time::Instant;

use super::bringup::connect_pool;
use super::TestEnv;
use crate::backend::{Backend, EnvChanges};
use crate::config::BackendMode;
use crate::error::{HarnessError, Result};

impl TestEnv {
    /// Stops the backend and starts a new one, with a fresh database from the template and
    /// the environment changed by `changes` (on top of the builder's changes).
    ///
    /// # Errors
    /// [`HarnessError::NotApplicable`] for an external backend; otherwise the start errors
    /// (e.g. [`HarnessError::BackendExited`] when a required variable is missing). The
    /// environment then has no backend until the next successful restart.
    pub async fn restart_backend_with(&mut self, changes: EnvChanges) -> Result<()> {
        if self.choice.backend == BackendMode::Url {
            return Err(HarnessError::NotApplicable(
                "the backend was given as a URL (HARNESS_BACKEND_URL): the harness cannot restart it with another environment".into(),
            ));
        }
        (self.progress)("restarting the backend");
        let t0 = Instant::now();
        // A local process is stopped while its successor starts (on another port, with another
        // database): its graceful exit (≈ 0.2 s for uvicorn) overlaps the new start instead of
        // preceding it, and is awaited before this returns, so none of its lines can land in
        // the next scenario's log window. Other kinds stop first, as before.
        let old = self.backend.take();
        let old_pool = self.pool.take();
        let overlap = matches!(old, Some(Backend::Process(_)));
        let stop_old = async move {
            if let Some(pool) = old_pool {
                pool.close().await;
            }
            if let Some(old) = old {
                old.stop().await;
            }
            t0.elapsed()
        };
        let parts = self.parts();
        let mut merged = self.env_changes.clone();
        merged.merge(&changes);
        let (old_database, template, logs) = (self.database.as_ref(), &self.template, self.logs.clone());
        let start_new = async {
            let database = match old_database {
                Some(database) => {
                    let database = parts.database(database.server(), template).await?;
                    let pool = connect_pool(&database).await?;
                    Some((database, pool))
                }
                None => None,
            };
            let databased = t0.elapsed();
            let backend = parts.start_backend(database.as_ref().map(|(d, _)| d), &merged, logs).await;
            Ok::<_, HarnessError>((database, backend, databased))
        };
        let (started, stopped) = if overlap {
            tokio::join!(start_new, stop_old)
        } else {
            let stopped = stop_old.await;
            (start_new.await, stopped)
        };
        let (database, backend, databased) = started?;
        if let Some((database, pool)) = database {
            self.pool = Some(pool);
            self.database = Some(database);
        }
        let backend = match backend {
            // Something the two share (a fixed port of its own, a lock or pid file) may have
            // refused the new one while the old one ran: once more, alone, before failing.
            Err(e) if overlap => {
                tracing::info!(error = %e, "the overlapped start failed: starting once more after the old backend's exit");
                let parts = self.parts();
                parts.start_backend(self.database.as_ref(), &merged, self.logs.clone()).await?
            }
            other => other?,
        };
        tracing::info!(overlapped = overlap, stop = ?stopped, database = ?databased, start = ?(t0.elapsed() - databased), "backend restarted");
        self.backend_url = backend.url().clone();
        self.backend = Some(backend);
        Ok(())
    }
}
