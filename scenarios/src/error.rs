//! Errors that stop a scenario from reaching a verdict (they become a failing verdict
//! saying the harness could not run it).

/// A step of a scenario that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The environment failed.
    #[error(transparent)]
    Harness(#[from] harness::HarnessError),
    /// The mock refused.
    #[error("mock Clerk: {0}")]
    Mock(#[from] mock_clerk::Error),
    /// An HTTP request did not complete.
    #[error("HTTP request to the backend failed: {0}")]
    Http(#[from] reqwest::Error),
    /// A database query failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}
