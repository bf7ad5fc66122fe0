//! What a scenario is (data), what it concludes ([`Outcome`]), and how a failure is
//! explained ([`Diagnosis`]).

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::ctx::Ctx;

/// The catalogue's sections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Token validation.
    Tokens,
    /// Start-up configuration.
    Environment,
    /// CORS as the browser sees it.
    Cors,
    /// The backend's user table.
    UserSync,
    /// Svix-signed webhooks.
    Webhooks,
    /// The SPA's refresh-and-retry policy.
    Loops,
    /// Session cookies and Clerk's handshake (`[token] transport = "cookie"` profiles).
    Cookies,
    /// Organization-gated endpoints (`[[endpoints]] org_role` / `org_permission`).
    Orgs,
    /// What the run's refusal and error bodies give away.
    Errors,
}

/// Whether a scenario can share the backend with others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Leaves nothing behind: runs on the shared backend.
    Shared,
    /// Changes the backend's environment or leaves state in it (caches, keys): gets a
    /// fresh backend with a fresh database.
    FreshBackend,
    /// Calls backends of its own, started beside the shared one with other variables
    /// ([`harness::TestEnv::start_beside`], [`harness::TestEnv::trial_starts`]): it neither
    /// needs the shared backend clean nor leaves it changed, so the runner never restarts
    /// the shared backend for it or after it.
    Beside,
    /// Judges what the scenarios before it collected (`Ctx::collected`): the runner
    /// runs it after every other scenario of the run, on whatever backend is up, and never
    /// restarts the backend for it.
    AfterAll,
}

/// A future returned by a scenario body.
pub type BoxFut<'a> = Pin<Box<dyn Future<Output = Result<Outcome, crate::StepError>> + 'a>>;

/// A scenario body: drives the environment and judges what came back.
pub type Body = for<'a> fn(&'a mut Ctx) -> BoxFut<'a>;

/// One row of the catalogue.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// Stable id, `group.name` (used by `--only`).
    pub id: &'static str,
    /// Section.
    pub group: Group,
    /// One line.
    pub title: &'static str,
    /// What it sends.
    pub sends: &'static str,
    /// The correct behaviour.
    pub expects: &'static str,
    /// The class of fault a failure points to, named in the diagnosis (e.g. `validation-cache`).
    pub class: &'static str,
    /// The reason name Clerk's SDKs use for this rejection, if any.
    pub reason: Option<&'static str>,
    /// The likely fix when it fails.
    pub fix: &'static str,
    /// Shared or fresh backend.
    pub isolation: Isolation,
    /// The body.
    pub body: Body,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario").field("id", &self.id).finish_non_exhaustive()
    }
}

/// The most of a body an [`Exchange`] keeps: enough for any framework's error page.
pub const BODY_MAX: usize = 64 * 1024;

/// One redirect the SPA's request went through.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Redirect {
    /// The 3xx status.
    pub status: u16,
    /// Where it pointed (`Location`).
    pub location: String,
}

/// One HTTP answer, as a diagnosis shows it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Exchange {
    /// Status (of the last answer, after any redirects).
    pub status: u16,
    /// The body, up to `BODY_MAX` (64 KiB) bytes; reports show [`Exchange::excerpt`] instead.
    #[serde(rename = "body", serialize_with = "serialize_excerpt")]
    pub body: String,
    /// `access-control-*` and `www-authenticate` / `x-clerk-*` / `set-cookie` / `location` headers.
    pub headers: Vec<(String, String)>,
    /// Redirects followed before this answer, in order (empty: none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<Redirect>,
}

fn serialize_excerpt<S: serde::Serializer>(body: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::pages::excerpt(0, body, 400))
}

#[cfg(test)]
impl Exchange {
    /// An answer with `status` and `body` and no headers (for the checks' unit tests).
    pub(crate) fn answered(status: u16, body: &str) -> Self {
        Self { status, body: body.into(), ..Self::default() }
    }
}

impl Exchange {
    /// Reads a response (consumes it), keeping at most `BODY_MAX` (64 KiB) bytes of its body.
    pub async fn read(mut response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(k, _)| {
                let k = k.as_str();
                k.starts_with("access-control-")
                    || k == "www-authenticate"
                    || k.starts_with("x-clerk-")
                    || k == "retry-after"
                    || k == "location"
                    || k == "set-cookie"
            })
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("<binary>").to_string()))
            .collect();
        let mut bytes = Vec::new();
        while bytes.len() < BODY_MAX {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let cut = bytes.len() > BODY_MAX;
        bytes.truncate(BODY_MAX);
        let mut body = String::from_utf8_lossy(&bytes).into_owned();
        if cut {
            body.push('…');
        }
        Self { status, body, headers, redirects: vec![] }
    }

    /// A header's value (names are lowercase).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The framework error page the body is, if recognised (Django CSRF, `ALLOWED_HOSTS`,
    /// 404 pages…).
    #[must_use]
    pub fn recognised(&self) -> Option<crate::pages::Recognised> {
        crate::pages::recognise(self.status, &self.body)
    }

    /// The part of the body a reader needs (a recognised page's quote, or the start of its
    /// visible text), at most `max` characters.
    #[must_use]
    pub fn excerpt(&self, max: usize) -> String {
        crate::pages::excerpt(self.status, &self.body, max)
    }

    /// `401 {"detail":…}` in one line, with the redirects that led there
    /// (`301 → /api/me/, then 401 …`).
    #[must_use]
    pub fn summary(&self) -> String {
        let hops: String = self.redirects.iter().map(|r| format!("{} → {}, then ", r.status, r.location)).collect();
        format!("{hops}{} {}", self.status, self.excerpt(160))
    }
}

/// What a scenario concluded.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Correct behaviour; the note says what was observed.
    Pass(String),
    /// Works, with a risk worth fixing (e.g. a probe the profile declared no expectation
    /// for, answered in the permissive way).
    Warn(Finding),
    /// Deviation: the backend is wrong.
    Fail(Finding),
    /// The harness or the environment could not judge; never a finding about the backend.
    Error(String),
    /// Does not apply to this profile or runtime, and why.
    NotApplicable(String),
}

/// What went wrong, as seen from outside.
#[derive(Clone, Debug)]
pub struct Finding {
    /// What was sent (method, path, token description).
    pub sent: String,
    /// What came back, if anything.
    pub got: Option<Exchange>,
    /// The deviation in one sentence.
    pub problem: String,
    /// A fault class other than the scenario's, when the failure points elsewhere (e.g. a
    /// precondition step failed for a reason another scenario is about).
    pub class: Option<&'static str>,
    /// The fix for that other class.
    pub fix: Option<String>,
    /// The measured root cause that explains it, when one does (its fix replaces the
    /// scenario's; findings with the same cause are reported together).
    pub cause: Option<crate::fingerprint::Cause>,
    /// The backend log lines that belong to this finding, when not the whole scenario's
    /// window (e.g. each trial start's own output): shown instead of the window's, as they
    /// are (the finding keeps them short).
    pub log: Option<Vec<String>>,
}

impl Outcome {
    /// A failure.
    pub fn fail(sent: impl Into<String>, got: Option<Exchange>, problem: impl Into<String>) -> Self {
        Self::Fail(Finding { sent: sent.into(), got, problem: problem.into(), class: None, fix: None, cause: None, log: None })
    }

    /// A warning: it works, with a risk worth fixing.
    pub fn warn(sent: impl Into<String>, got: Option<Exchange>, problem: impl Into<String>) -> Self {
        Self::Warn(Finding { sent: sent.into(), got, problem: problem.into(), class: None, fix: None, cause: None, log: None })
    }

    /// The harness could not judge, and why.
    pub fn error(why: impl Into<String>) -> Self {
        Self::Error(why.into())
    }

    /// The same warning or failure, classed under `class` with `fix` instead of the
    /// scenario's own class and fix; other outcomes unchanged.
    #[must_use]
    pub fn classed(self, class: &'static str, fix: impl Into<String>) -> Self {
        match self {
            Self::Fail(f) => Self::Fail(Finding { class: Some(class), fix: Some(fix.into()), ..f }),
            Self::Warn(f) => Self::Warn(Finding { class: Some(class), fix: Some(fix.into()), ..f }),
            other => other,
        }
    }

    /// The same warning or failure explained by a measured root cause: the problem says so,
    /// and the cause's fix replaces the scenario's. Other outcomes unchanged.
    #[must_use]
    pub fn caused_by(self, cause: crate::fingerprint::Cause, problem: impl Into<String>) -> Self {
        let explain = |f: Finding| Finding { problem: problem.into(), fix: Some(cause.fix.clone()), cause: Some(cause), ..f };
        match self {
            Self::Fail(f) => Self::Fail(explain(f)),
            Self::Warn(f) => Self::Warn(explain(f)),
            other => other,
        }
    }

    /// The same warning or failure with its own backend log lines (shown instead of the
    /// scenario's log window); other outcomes unchanged.
    #[must_use]
    pub fn with_log(self, lines: Vec<String>) -> Self {
        match self {
            Self::Fail(f) => Self::Fail(Finding { log: Some(lines), ..f }),
            Self::Warn(f) => Self::Warn(Finding { log: Some(lines), ..f }),
            other => other,
        }
    }

    /// Whether this is a failure because the backend answered 2xx (it ACCEPTED what it must
    /// refuse).
    #[must_use]
    pub fn accepted_wrongly(&self) -> bool {
        matches!(self, Self::Fail(f) if f.got.as_ref().is_some_and(|g| (200..300).contains(&g.status)))
    }

    /// A pass.
    pub fn pass(note: impl Into<String>) -> Self {
        Self::Pass(note.into())
    }

    /// Not applicable.
    pub fn not_applicable(why: impl Into<String>) -> Self {
        Self::NotApplicable(why.into())
    }
}

/// The final word on one scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Correct.
    Pass,
    /// Works, with a risk worth fixing (diagnosis attached).
    Warn,
    /// The backend is wrong (diagnosis attached).
    Fail,
    /// The harness or the environment could not judge (diagnosis attached); never counted
    /// as a finding about the backend.
    Error,
    /// Not applicable, with a reason.
    NotApplicable,
}

/// Why a scenario failed and what to do about it.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    /// One line for the table.
    pub summary: String,
    /// What was sent.
    pub sent: String,
    /// The correct behaviour.
    pub expected: String,
    /// What came back.
    pub got: Option<Exchange>,
    /// The backend's log lines written during the scenario.
    pub backend_log: Vec<String>,
    /// The fault class (matches the seeded faults' classes).
    pub class: String,
    /// Clerk's SDK reason name.
    pub clerk_reason: Option<String>,
    /// The likely fix.
    pub fix: String,
    /// The measured root cause, when one explains this finding (the report groups by it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<crate::fingerprint::Cause>,
}

/// One scenario's result.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// Scenario id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Section.
    pub group: Group,
    /// Verdict.
    pub verdict: Verdict,
    /// Wall time.
    pub duration_ms: u64,
    /// Backend-side time: the part spent waiting for the backend (HTTP answers, restarts).
    pub backend_ms: u64,
    /// What was observed (pass), or why it does not apply.
    pub note: String,
    /// Present on warn, fail and error.
    pub diagnosis: Option<Diagnosis>,
    /// Every request of the scenario in time order: the SPA's to the backend, the backend's
    /// (and the harness's) to the mock Clerk — tokens decoded, secrets scrubbed.
    pub exchanges: Vec<crate::timeline::Hop>,
    /// The backend's log lines and the harness's steps during the scenario, timed.
    pub events: Vec<crate::timeline::Event>,
}
