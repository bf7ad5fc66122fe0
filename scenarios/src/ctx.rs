//! [`Ctx`]: the environment a scenario runs in, plus the small steps scenarios share
//! (sign in a fresh user, send a token, judge a status) and a stopwatch for the time spent
//! waiting on the backend.

use std::time::{Duration, Instant};

use std::collections::HashMap;

use harness::Endpoint;
use harness::{CookieJar, EnvChanges, SignedIn, TestEnv, TokenKind, Transport};
use mock_clerk::{ForgedToken, NewUser};
use rand::Rng;
use reqwest::header::{HeaderValue, AUTHORIZATION};

use crate::scenario::{Exchange, Outcome, Redirect};
use crate::timeline::{Journaled, SpaCall};
use crate::StepError;

/// How long `tokens.key_rotation` keeps trying a new key's token after the first refusal
/// when the backend's clock cannot be moved and time must pass on the real clock: past
/// PyJWT's `PyJWKClient` default `cooldown_duration` (30 s since its last JWKS fetch,
/// `jwt/jwks_client.py`), with margin.
pub const ROTATION_PATIENCE: Duration = Duration::from_secs(38);

/// The environment and per-scenario bookkeeping.
pub struct Ctx {
    /// The running environment.
    pub env: TestEnv,
    backend_time: std::cell::Cell<Duration>,
    /// What the scenario is waiting for right now, and since when (for "what hung").
    waiting: std::cell::RefCell<Option<(String, Instant)>>,
    /// The time the scenario spent waiting for backend starts, which its timeout does not
    /// count (shared with the runner while the scenario's future holds `&mut Ctx`).
    starts: std::rc::Rc<StartTime>,
    /// Whether a request of this scenario got no answer within the request timeout: the
    /// backend may still be working on it (and logging about it), so the runner gives the next
    /// scenario a clean backend.
    left_running: std::cell::Cell<bool>,
    /// Whether the current backend has state or environment another scenario must not see.
    pub(crate) dirty: bool,
    /// Cookie jars per signed-in session, when the SPA sends credentials.
    jars: HashMap<String, CookieJar>,
    /// The session whose jar [`Ctx::call_raw`] uses: the last one signed in.
    current: Option<String>,
    /// The last session signed in (its browser's dev browser goes with cookie tokens).
    signed_in: Option<String>,
    /// How long `tokens.key_rotation` keeps trying a rotated key's token after the first
    /// refusal (default 38 s, `ROTATION_PATIENCE`; tests shorten it).
    pub rotation_patience: Duration,
    /// The scenario's requests to the backend and the harness's steps, for the timeline.
    journal: std::cell::RefCell<Vec<Journaled>>,
    /// The turn of a refresh-and-retry loop the SPA is in, if any.
    turn: std::cell::Cell<Option<u32>>,
    /// What the run measured of the backend so far (see [`Fingerprint`](crate::Fingerprint)).
    pub fingerprint: crate::fingerprint::Fingerprint,
    /// Every answer of 400 or more the run's scenarios received so far, unscrubbed (read by
    /// the run-level `errors.no_internal_leak`).
    pub(crate) collected: Vec<Collected>,
    /// Where the scenario's requests go instead of the shared backend: a side backend's URL
    /// ([`Ctx::aim_at`]); the runner clears it after every scenario.
    aimed: Option<url::Url>,
    /// The ids of the scenarios still to run, the current one first: what a scenario may
    /// start ahead for the ones after it (see [`Ctx::upcoming`]).
    pub(crate) upcoming: Vec<&'static str>,
    /// Side backends started ahead for scenarios later in the run, by scenario id.
    pub(crate) beside: HashMap<&'static str, crate::checks::environment::Prepared>,
    /// The replay files the run's `replay.*` scenarios replay (see [`ReplayFile`](crate::ReplayFile)).
    pub replays: Vec<crate::replay::ReplayFile>,
    /// The id of the scenario running now (set by the runner).
    pub scenario: Option<&'static str>,
}

/// How many same-origin redirects [`Ctx::call_raw`] follows (a browser follows 20).
pub const MAX_REDIRECTS: usize = 5;

impl Ctx {
    /// Wraps a started environment.
    #[must_use]
    pub fn new(env: TestEnv) -> Self {
        Self {
            env,
            backend_time: std::cell::Cell::new(Duration::ZERO),
            waiting: std::cell::RefCell::new(None),
            starts: std::rc::Rc::default(),
            left_running: std::cell::Cell::new(false),
            dirty: false,
            jars: HashMap::new(),
            current: None,
            signed_in: None,
            rotation_patience: ROTATION_PATIENCE,
            journal: std::cell::RefCell::new(vec![]),
            turn: std::cell::Cell::new(None),
            fingerprint: crate::fingerprint::Fingerprint::default(),
            collected: vec![],
            aimed: None,
            upcoming: vec![],
            beside: HashMap::new(),
            replays: vec![],
            scenario: None,
        }
    }

    /// Sends the scenario's requests ([`Ctx::call`], [`Ctx::send`]…) to `url` (a side backend,
    /// [`harness::TestEnv::start_beside`]) instead of the shared backend; `None` aims back.
    pub fn aim_at(&mut self, url: Option<url::Url>) {
        self.aimed = url;
    }

    /// Whether scenario `id` is still to run in this run (the current one included). A run
    /// driven scenario by scenario (no [`crate::run`]) knows no future: only the current one.
    #[must_use]
    pub fn upcoming(&self, id: &str) -> bool {
        self.upcoming.contains(&id)
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

    /// The scenario's time spent on backend starts so far (the runner's view of it).
    pub(crate) fn start_time(&self) -> std::rc::Rc<StartTime> {
        self.starts.clone()
    }

    /// Whether a request since the last call got no answer within the request timeout (see
    /// `left_running`); resets it.
    pub(crate) fn take_left_running(&self) -> bool {
        self.left_running.replace(false)
    }

    /// What the scenario was waiting for and since when, if it was waiting.
    pub(crate) fn take_waiting(&self) -> Option<(String, Instant)> {
        self.waiting.borrow_mut().take()
    }

    /// Sends a request the SPA built (e.g. `ctx.env.spa().with_origin(o).preflight(…)`) and
    /// reads its answer, journaling both for the scenario's timeline (the report's sequence
    /// diagram). Every request a scenario makes to the backend goes through here (or through
    /// [`Ctx::send`], which does).
    ///
    /// # Errors
    /// The request could not be built or did not complete.
    pub async fn fetch(&self, request: reqwest::RequestBuilder) -> Result<Exchange, StepError> {
        let (client, request) = request.build_split();
        let request = request?;
        let method = request.method().to_string();
        let path = match request.url().query() {
            Some(q) => format!("{}?{q}", request.url().path()),
            None => request.url().path().to_string(),
        };
        let headers = request
            .headers()
            .iter()
            .filter(|(k, _)| crate::timeline::relevant_request_header(k.as_str()))
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("<binary>").to_string()))
            .collect();
        let index = {
            let mut journal = self.journal.borrow_mut();
            journal.push(Journaled::Spa(SpaCall {
                started: std::time::SystemTime::now(),
                elapsed: None,
                method: method.clone(),
                path: path.clone(),
                headers,
                answer: None,
                turn: self.turn.get(),
            }));
            journal.len() - 1
        };
        let t0 = Instant::now();
        let result = self
            .timed_as(format!("{method} {path}"), async {
                let response = client.execute(request).await?;
                Ok::<_, reqwest::Error>(Exchange::read(response).await)
            })
            .await;
        if matches!(&result, Err(e) if e.is_timeout()) {
            self.left_running.set(true);
        }
        if let Some(Journaled::Spa(call)) = self.journal.borrow_mut().get_mut(index) {
            call.elapsed = Some(t0.elapsed());
            call.answer = Some(match &result {
                Ok(got) => Ok(got.clone()),
                Err(e) => Err(if e.is_timeout() { format!("no answer within the request timeout: {e}") } else { e.to_string() }),
            });
        }
        Ok(result?)
    }

    /// Writes a step of the harness on the scenario's timeline (a key rotation, a restart…).
    pub fn note(&self, text: impl Into<String>) {
        self.journal.borrow_mut().push(Journaled::Step { at: std::time::SystemTime::now(), text: text.into(), turn: self.turn.get() });
    }

    /// Marks the SPA's next requests as turn `turn` of a refresh-and-retry loop (`None`: no
    /// loop); the timeline draws each turn.
    pub fn set_turn(&self, turn: Option<u32>) {
        self.turn.set(turn);
    }

    /// Takes the journal (the runner does, per scenario).
    pub(crate) fn take_journal(&self) -> Vec<Journaled> {
        self.turn.set(None);
        std::mem::take(&mut *self.journal.borrow_mut())
    }

    /// A new Clerk user (unique email, names) signed in with an active session. Scenarios
    /// sharing a backend stay apart because each creates its own users.
    ///
    /// # Errors
    /// The mock refused the user.
    ///
    /// When the profile says the SPA sends credentials (`[cors] credentials = true`), the
    /// user gets a cookie jar, and the SPA's calls ([`Ctx::call_raw`]) carry it from then
    /// on, as a browser page of that user would, until another user signs in.
    pub fn sign_in(&mut self, label: &str) -> Result<SignedIn, StepError> {
        self.sign_in_as(Self::new_user(label))
    }

    /// [`Ctx::sign_in`] for a user described by the scenario (an email another user had, a
    /// phone-only user…): signed in in a browser of their own, so the SPA's calls never carry
    /// the cookies a backend set for the previous user (a backend session of its own would
    /// answer as that user and ignore the new user's token).
    ///
    /// # Errors
    /// The mock refused the user.
    pub fn sign_in_as(&mut self, user: NewUser) -> Result<SignedIn, StepError> {
        let me = self.env.sign_in(user)?;
        self.jars.clear();
        self.current = None;
        self.signed_in = Some(me.session.id.clone());
        if self.env.profile().cors.credentials {
            self.jars.insert(me.session.id.clone(), CookieJar::new(self.env.config().request_timeout())?);
            self.current = Some(me.session.id.clone());
        }
        Ok(me)
    }

    /// The cookie jar of `session_id`'s browser, if the SPA sends credentials.
    #[must_use]
    pub fn jar(&self, session_id: &str) -> Option<&CookieJar> {
        self.jars.get(session_id)
    }

    /// A unique user description (not yet created).
    #[must_use]
    pub fn new_user(label: &str) -> NewUser {
        let tag: u32 = rand::thread_rng().gen();
        NewUser::with_email(&format!("{label}-{tag:08x}@harness.test")).names("Harness", &format!("{label} {tag:08x}"))
    }

    /// The endpoint token scenarios call: one that only checks the token (no user sync, no
    /// organization gate) if the profile has one, else one without an organization gate
    /// (their plain signed-in user, in no organization, is entitled to it), else the first.
    ///
    /// # Errors
    /// The profile lists no endpoints.
    pub fn token_endpoint(&self) -> Result<Endpoint, StepError> {
        let endpoints = &self.env.profile().endpoints;
        let ungated = || endpoints.iter().filter(|e| e.org_gate().is_none());
        ungated()
            .find(|e| !e.syncs_user)
            .or_else(|| ungated().next())
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
    ///
    /// Same-origin redirects are followed like `fetch` does (303, and 301/302 after a POST,
    /// become a GET), up to `MAX_REDIRECTS` (5), and recorded in [`Exchange::redirects`]; the
    /// status judged is the last one. A redirect to another origin is not followed: its 3xx
    /// is the answer.
    pub async fn call_raw(&mut self, endpoint: &Endpoint, authorization: Option<&str>) -> Result<Exchange, StepError> {
        self.send(endpoint.method.as_reqwest(), endpoint.path.get(), authorization).await
    }

    /// Sends `method path` as the SPA (its origin, its current user's cookies) with
    /// `Authorization` verbatim, following same-origin redirects: see [`Ctx::call_raw`].
    ///
    /// # Errors
    /// The request did not complete.
    pub async fn send(&mut self, method: reqwest::Method, path: &str, authorization: Option<&str>) -> Result<Exchange, StepError> {
        self.send_with(method, path, authorization, None).await
    }

    /// [`Ctx::send`] with `cookies` (`name=value; …`) added to those of the user's jar, as a
    /// browser sends the cookies `clerk-js` set next to the backend's own.
    ///
    /// # Errors
    /// The request did not complete.
    pub async fn send_with(&mut self, method: reqwest::Method, path: &str, authorization: Option<&str>, cookies: Option<&str>) -> Result<Exchange, StepError> {
        let base = self.aimed.clone().unwrap_or_else(|| self.env.backend_url().clone());
        let mut method = method;
        let mut target = path.to_string();
        let mut redirects = vec![];
        loop {
            let mut spa = self.env.spa();
            let jar = self.current.as_ref().and_then(|s| self.jars.get(s));
            if let Some(jar) = jar {
                spa = spa.with_jar(jar);
            }
            if let Some(aimed) = &self.aimed {
                spa = spa.at(aimed);
            }
            let mut request = spa.request(method.clone(), &target);
            if let Some(cookies) = cookies {
                // A Cookie header set here replaces the jar's: send both.
                let from_jar = jar.zip(base.join(&target).ok()).and_then(|(jar, url)| jar.cookie_header(&url));
                let all = from_jar.map_or_else(|| cookies.to_string(), |j| format!("{j}; {cookies}"));
                request =
                    request.header(reqwest::header::COOKIE, HeaderValue::from_str(&all).unwrap_or_else(|_| HeaderValue::from_static("__session=invalid")));
            }
            if let Some(value) = authorization {
                request = request.header(AUTHORIZATION, HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid")));
            }
            let got = self.fetch(request).await?;
            let status = got.status;
            let location = got.header("location").map(str::to_owned);
            let current = base.join(&target).ok();
            let next = location.as_deref().and_then(|l| current.as_ref().and_then(|c| c.join(l).ok()));
            let follow = match (next, location) {
                (Some(next), Some(location)) if (300..400).contains(&status) && next.origin() == base.origin() && redirects.len() < MAX_REDIRECTS => {
                    Some((next, location))
                }
                _ => None,
            };
            if let Some((next, location)) = follow {
                redirects.push(Redirect { status, location });
                if status == 303 || (matches!(status, 301 | 302) && method == reqwest::Method::POST) {
                    method = reqwest::Method::GET;
                }
                target = match next.query() {
                    Some(q) => format!("{}?{q}", next.path()),
                    None => next.path().to_string(),
                };
                continue;
            }
            let mut got = got;
            got.redirects = redirects;
            return Ok(got);
        }
    }

    /// Calls `endpoint` with `token`, sent as the profile's `[token] transport` says: `Bearer
    /// token`, or the `__session` cookies of the last user signed in ([`Ctx::sign_in`]).
    ///
    /// # Errors
    /// The request did not complete.
    pub async fn call(&mut self, endpoint: &Endpoint, token: &str) -> Result<Exchange, StepError> {
        match self.env.profile().token.transport.get() {
            Transport::Bearer => self.call_raw(endpoint, Some(&format!("Bearer {token}"))).await,
            Transport::Cookie => {
                let cookies = self.env.spa().session_cookies(self.signed_in.as_deref(), token);
                self.send_with(endpoint.method.as_reqwest(), endpoint.path.get(), None, Some(&cookies)).await
            }
        }
    }

    /// [`Ctx::call`] without the cookies the backend set in the user's browser: what the
    /// token alone gets (a replay that tests token caching must not be answered by the
    /// backend's own session).
    ///
    /// # Errors
    /// The request did not complete.
    pub async fn call_without_cookies(&mut self, endpoint: &Endpoint, token: &str) -> Result<Exchange, StepError> {
        let current = self.current.take();
        let got = self.call(endpoint, token).await;
        self.current = current;
        got
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
            Outcome::pass(format!("accepted ({})", if got.redirects.is_empty() { got.status.to_string() } else { got.summary() }))
        } else {
            let problem = format!("a valid token was refused: expected {want}, got {}", got.status);
            Outcome::fail(sent, Some(got), problem)
        })
    }

    /// Starts the backend once per entry of `variants`, all at once, beside the running one
    /// (see [`harness::TestEnv::trial_starts`]), timed as time spent on the backend.
    ///
    /// # Errors
    /// An external backend, or a database that cannot be made.
    pub async fn trial_starts(&mut self, variants: Vec<EnvChanges>) -> Result<Vec<harness::TrialStart>, harness::HarnessError> {
        let names: Vec<String> = variants.iter().map(EnvChanges::names).collect();
        self.note(format!("starts the backend {} times at once ({})", variants.len(), names.join("; ")));
        let what = format!("{} backend starts at once (their health path or their exit)", variants.len());
        let _start = self.starts.begin();
        self.timed_as(what, self.env.trial_starts(variants)).await
    }

    /// Starts one backend per entry of `variants`, all at once, beside the shared one (see
    /// [`harness::TestEnv::start_beside`]), timed as time spent on the backend.
    ///
    /// # Errors
    /// An external backend, or a database that cannot be made.
    pub async fn start_beside(&mut self, variants: Vec<EnvChanges>) -> Result<Vec<Result<harness::SideBackend, harness::HarnessError>>, harness::HarnessError> {
        let names: Vec<String> = variants.iter().map(EnvChanges::names).collect();
        self.note(format!("starts {} backend(s) beside the shared one, at once ({})", variants.len(), names.join("; ")));
        let what = format!("{} backend start(s) beside the shared one (their health path)", variants.len());
        let _start = self.starts.begin();
        self.timed_as(what, self.env.start_beside(variants)).await
    }

    /// Restarts the backend with a fresh database and `changes` to its environment.
    ///
    /// # Errors
    /// The backend did not start (the error carries its exit status and log tail).
    pub async fn fresh_backend(&mut self, changes: EnvChanges) -> Result<(), harness::HarnessError> {
        self.dirty = true;
        self.note(if changes.is_empty() { "restarts the backend (fresh database)".to_string() } else { format!("restarts the backend ({})", changes.names()) });
        let t0 = Instant::now();
        *self.waiting.borrow_mut() = Some(("a backend restart (its health path)".into(), t0));
        let start = self.starts.begin();
        let result = self.env.restart_backend_with(changes).await;
        drop(start);
        *self.waiting.borrow_mut() = None;
        self.backend_time.set(self.backend_time.get() + t0.elapsed());
        result
    }
}

/// The time a scenario spends waiting for backend starts (restarts, trial starts, starts
/// beside the shared one). The scenario timeout does not count it: each start is bounded by
/// the profile's `ready_timeout_secs` already, and a backend that takes 15 s to import its
/// dependencies, started three times at once on two cores, is slow, not hung.
#[derive(Debug, Default)]
pub(crate) struct StartTime {
    spent: std::cell::Cell<Duration>,
    since: std::cell::Cell<Option<Instant>>,
}

impl StartTime {
    /// A start begins; it ends when the guard is dropped.
    fn begin(&self) -> StartGuard<'_> {
        self.since.set(Some(Instant::now()));
        StartGuard(self)
    }

    /// [`StartTime::begin`], for the runner's tests.
    #[cfg(test)]
    pub(crate) fn begin_for_test(&self) -> impl Drop + '_ {
        self.begin()
    }

    /// Time spent on starts so far, the one under way included.
    pub(crate) fn so_far(&self) -> Duration {
        self.spent.get() + self.since.get().map_or(Duration::ZERO, |t0| t0.elapsed())
    }

    /// Whether a start is under way.
    pub(crate) fn ongoing(&self) -> bool {
        self.since.get().is_some()
    }

    /// Zero, for the next scenario.
    pub(crate) fn reset(&self) {
        self.spent.set(Duration::ZERO);
        self.since.set(None);
    }
}

/// A start under way (see [`StartTime::begin`]).
struct StartGuard<'a>(&'a StartTime);

impl Drop for StartGuard<'_> {
    fn drop(&mut self) {
        if let Some(t0) = self.0.since.take() {
            self.0.spent.set(self.0.spent.get() + t0.elapsed());
        }
    }
}

/// The root cause of every refusal answered 403: the backend's 401/403 choice (its fix is
/// put in the backend's stack's terms by the runner).
#[must_use]
pub fn forbidden_cause() -> crate::fingerprint::Cause {
    crate::fingerprint::Cause {
        id: FORBIDDEN_CAUSE.into(),
        title: "the backend answers 403, not 401, to requests it must refuse: the SPA never refreshes its token on a 403".into(),
        measurement: "a request it must refuse was answered 403".into(),
        fix: crate::stack::fix(crate::stack::Knob::Status401, &crate::stack::Stack::default()),
    }
}

/// The root cause of every bad token answered 5xx (its fix is put in the stack's terms by the
/// runner).
#[must_use]
pub fn crash_cause() -> crate::fingerprint::Cause {
    crate::fingerprint::Cause {
        id: CRASH_CAUSE.into(),
        title: "the backend crashes (5xx) on tokens it must refuse instead of answering 401".into(),
        measurement: "a token it must refuse was answered with a 5xx".into(),
        fix: crate::stack::fix(crate::stack::Knob::CatchErrors, &crate::stack::Stack::default()),
    }
}

/// What was sent, without the method and path (`a token expired 30 s ago`).
fn short_sent(sent: &str) -> String {
    sent.split_once(" with ").map_or(sent, |(_, what)| what).to_string()
}

/// The id of [`crash_cause`].
pub const CRASH_CAUSE: &str = "crash-on-bad-token";

/// The id of [`forbidden_cause`].
pub const FORBIDDEN_CAUSE: &str = "refuses-with-403";

/// 401 is the only right answer to a bad token: 403 means "you may not" (the SPA will not
/// refresh), 5xx means the backend crashed on input it should have refused.
#[must_use]
pub fn judge_rejection(sent: String, got: Exchange) -> Outcome {
    match got.status {
        401 => Outcome::pass(format!("rejected: {}", got.summary())),
        403 => {
            let problem = "answered 403 instead of 401: the SPA treats 403 as 'forbidden' and never refreshes its token";
            let cause = crate::fingerprint::Cause { measurement: format!("403 to {}", short_sent(&sent)), ..forbidden_cause() };
            Outcome::fail(sent, Some(got), problem).caused_by(cause, problem)
        }
        s if s >= 500 => {
            let problem = format!("crashed ({s}) instead of answering 401");
            let cause = crate::fingerprint::Cause { measurement: format!("{s} to {}", short_sent(&sent)), ..crash_cause() };
            Outcome::fail(sent, Some(got), problem.clone()).caused_by(cause, problem)
        }
        s if (200..300).contains(&s) => Outcome::fail(sent, Some(got), format!("ACCEPTED a token it must refuse ({s})")),
        s => Outcome::fail(sent, Some(got), format!("answered {s} instead of 401")),
    }
}

/// A genuine token of the kind the profile expects, ready to be forged, with the SPA's
/// origin as `azp` like the real one.
pub(crate) fn forge(ctx: &Ctx, session_id: &str) -> Result<ForgedToken, StepError> {
    let mock = ctx.env.mock();
    let spec = &ctx.env.profile().token;
    let token = match (spec.kind.get(), &spec.template) {
        (TokenKind::Template, Some(name)) => mock.forge_template_token(session_id, name)?,
        _ => mock.forge_session_token(session_id)?,
    };
    Ok(token.claim("azp", ctx.env.profile().spa_origin()))
}

/// One answer of 400 or more a scenario received.
#[derive(Clone, Debug)]
pub struct Collected {
    /// The scenario that received it.
    pub scenario: String,
    /// `GET /api/me`.
    pub request: String,
    /// The answer, unscrubbed.
    pub answer: Exchange,
}
