//! [`Ctx`]: the environment a scenario runs in, plus the small steps scenarios share
//! (sign in a fresh user, send a token, judge a status) and a stopwatch for the time spent
//! waiting on the backend.

use std::time::{Duration, Instant};

use harness::profile::Endpoint;
use harness::{EnvChanges, SignedIn, TestEnv};
use mock_clerk::NewUser;
use rand::Rng;
use reqwest::header::{HeaderValue, AUTHORIZATION};

use crate::scenario::{Exchange, Outcome};
use crate::StepError;

/// The environment and per-scenario bookkeeping.
pub struct Ctx {
    /// The running environment.
    pub env: TestEnv,
    backend_time: std::cell::Cell<Duration>,
    /// What the scenario is waiting for right now, and since when (for "what hung").
    waiting: std::cell::RefCell<Option<(String, Instant)>>,
    /// Whether the current backend has state or environment another scenario must not see.
    pub(crate) dirty: bool,
}

impl Ctx {
    /// Wraps a started environment.
    #[must_use]
    pub fn new(env: TestEnv) -> Self {
        Self { env, backend_time: std::cell::Cell::new(Duration::ZERO), waiting: std::cell::RefCell::new(None), dirty: false }
    }

    /// Gives the environment back.
    #[must_use]
    pub fn into_env(self) -> TestEnv {
        self.env
    }

    pub(crate) fn take_backend_time(&mut self) -> Duration {
        self.backend_time.replace(Duration::ZERO)
    }

    /// Runs `f` and counts its time as the backend's (waiting for its answers, its
    /// restarts, its webhook deliveries), so reports can tell the harness's own overhead.
    pub async fn timed<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.timed_as("the backend (an answer, a restart or a webhook delivery)", f).await
    }

    /// [`Ctx::timed`], naming what is awaited: a scenario that times out reports it.
    pub async fn timed_as<T>(&self, what: impl Into<String>, f: impl std::future::Future<Output = T>) -> T {
        let t0 = Instant::now();
        *self.waiting.borrow_mut() = Some((what.into(), t0));
        let out = f.await;
        // Left set if the future is dropped (a scenario timeout): the runner reads it.
        *self.waiting.borrow_mut() = None;
        self.backend_time.set(self.backend_time.get() + t0.elapsed());
        out
    }

    /// What the scenario was waiting for and since when, if it was waiting.
    pub(crate) fn take_waiting(&self) -> Option<(String, Instant)> {
        self.waiting.borrow_mut().take()
    }

    /// A new Clerk user (unique email, names) signed in with an active session. Scenarios
    /// sharing a backend stay apart because each creates its own users.
    ///
    /// # Errors
    /// The mock refused the user.
    pub fn sign_in(&self, label: &str) -> Result<SignedIn, StepError> {
        Ok(self.env.sign_in(Self::new_user(label))?)
    }

    /// A unique user description (not yet created).
    #[must_use]
    pub fn new_user(label: &str) -> NewUser {
        let tag: u32 = rand::thread_rng().gen();
        NewUser::with_email(&format!("{label}-{tag:08x}@harness.test")).names("Harness", &format!("{label} {tag:08x}"))
    }

    /// The endpoint token scenarios call: one that only checks the token if the profile
    /// has one, else the first.
    ///
    /// # Errors
    /// The profile lists no endpoints.
    pub fn token_endpoint(&self) -> Result<Endpoint, StepError> {
        let endpoints = &self.env.profile().endpoints;
        endpoints
            .iter()
            .find(|e| !e.syncs_user)
            .or_else(|| endpoints.first())
            .cloned()
            .ok_or_else(|| StepError::Other("the profile lists no [[endpoints]]".into()))
    }

    /// The first endpoint that syncs the user, if any.
    #[must_use]
    pub fn sync_endpoint(&self) -> Option<Endpoint> {
        self.env.profile().sync_endpoints().next().cloned()
    }

    /// Calls `endpoint` as the SPA with `Authorization` set to `authorization` verbatim
    /// (`None`: no header).
    ///
    /// # Errors
    /// The request did not complete.
    pub async fn call_raw(&mut self, endpoint: &Endpoint, authorization: Option<&str>) -> Result<Exchange, StepError> {
        let mut request = self.env.spa().request(endpoint.method.as_reqwest(), endpoint.path.get());
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid")));
        }
        let what = format!("{:?} {}", endpoint.method, endpoint.path.get());
        let response = self.timed_as(what, request.send()).await?;
        Ok(self.timed(Exchange::read(response)).await)
    }

    /// Calls `endpoint` with `Bearer token`.
    ///
    /// # Errors
    /// The request did not complete.
    pub async fn call(&mut self, endpoint: &Endpoint, token: &str) -> Result<Exchange, StepError> {
        self.call_raw(endpoint, Some(&format!("Bearer {token}"))).await
    }

    /// Sends `token` and expects a 401: anything else fails, with the reason.
    ///
    /// # Errors
    /// The request did not complete.
    pub async fn expect_rejected(&mut self, what: &str, token: &str) -> Result<Outcome, StepError> {
        let endpoint = self.token_endpoint()?;
        let got = self.call(&endpoint, token).await?;
        let sent = format!("{:?} {} with {what}", endpoint.method, endpoint.path.get());
        Ok(judge_rejection(sent, got))
    }

    /// Sends `token` and expects the endpoint's success status.
    ///
    /// # Errors
    /// The request did not complete.
    pub async fn expect_accepted(&mut self, what: &str, token: &str) -> Result<Outcome, StepError> {
        let endpoint = self.token_endpoint()?;
        let got = self.call(&endpoint, token).await?;
        let sent = format!("{:?} {} with {what}", endpoint.method, endpoint.path.get());
        let want = *endpoint.status.get();
        Ok(if got.status == want {
            Outcome::pass(format!("accepted ({})", got.status))
        } else {
            let problem = format!("a valid token was refused: expected {want}, got {}", got.status);
            Outcome::fail(sent, Some(got), problem)
        })
    }

    /// Restarts the backend with a fresh database and `changes` to its environment.
    ///
    /// # Errors
    /// The backend did not start (the error carries its exit status and log tail).
    pub async fn fresh_backend(&mut self, changes: EnvChanges) -> Result<(), harness::HarnessError> {
        self.dirty = true;
        let t0 = Instant::now();
        *self.waiting.borrow_mut() = Some(("a backend restart (its health path)".into(), t0));
        let result = self.env.restart_backend_with(changes).await;
        *self.waiting.borrow_mut() = None;
        self.backend_time.set(self.backend_time.get() + t0.elapsed());
        result
    }
}

/// 401 is the only right answer to a bad token: 403 means "you may not" (the SPA will not
/// refresh), 5xx means the backend crashed on input it should have refused.
#[must_use]
pub fn judge_rejection(sent: String, got: Exchange) -> Outcome {
    match got.status {
        401 => Outcome::pass(format!("rejected: {}", got.summary())),
        403 => Outcome::fail(sent, Some(got), "answered 403 instead of 401: the SPA treats 403 as 'forbidden' and never refreshes its token"),
        s if s >= 500 => Outcome::fail(sent, Some(got), format!("crashed ({s}) instead of answering 401")),
        s if (200..300).contains(&s) => Outcome::fail(sent, Some(got), format!("ACCEPTED a token it must refuse ({s})")),
        s => Outcome::fail(sent, Some(got), format!("answered {s} instead of 401")),
    }
}
