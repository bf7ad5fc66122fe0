//! Outages around the user sync: the database gone, the user gone from Clerk, a Backend API
//! that answers after 20 s. Each must end in an answer the SPA can act on — a retryable 5xx or
//! a 401 — never an auth failure for an outage, a crash, or a request that hangs.

use std::time::{Duration, Instant};

use harness::GetToken;
use mock_clerk::{Fault, Route};

use super::NO_SYNC;
use crate::checks::body;
use crate::ctx::Ctx;
use crate::scenario::{Exchange, Outcome};

/// Fragments of database drivers' and ORMs' error texts (lower case): a body with one of
/// them leaks the driver's message to the browser.
const DRIVER_TEXT: [&str; 16] = [
    "psycopg",
    "operationalerror",
    "interfaceerror",
    "sqlalchemy",
    "asyncpg",
    "django.db",
    "sqlx",
    "error returned from database",
    "pool timed out",
    "could not connect to server",
    "connection to server at",
    "not currently accepting connections",
    "terminating connection",
    "server closed the connection",
    "traceback (most recent call last)",
    "fatal:  ",
];

/// The driver text in `body`, if any.
pub(crate) fn driver_text(body: &str) -> Option<&'static str> {
    let lower = body.to_lowercase();
    DRIVER_TEXT.into_iter().find(|f| lower.contains(f))
}

body!(database_down, |ctx| {
    let Some(endpoint) = ctx.sync_endpoint() else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    if ctx.env.database().is_none() {
        return Ok(Outcome::not_applicable("this environment has no database the harness started (HARNESS_POSTGRES=none, or a backend given by URL)"));
    }
    let me = ctx.sign_in("db-down")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let offline = match ctx.env.database() {
        Some(db) => db.take_offline().await?,
        None => return Ok(Outcome::not_applicable("no database")),
    };
    ctx.note("the backend's database refuses connections and its open ones were terminated");
    let got = ctx.call(&endpoint, &token).await;
    let restored = offline.restore().await;
    ctx.note("the backend's database accepts connections again");
    let got = got?;
    restored?;
    // A pool that kept dead connections heals on its first errors: up to 3 calls until one
    // is answered 2xx, else the next scenario gets a fresh backend.
    let mut healed = false;
    for _ in 0..3 {
        if ctx.call(&endpoint, &token).await.is_ok_and(|g| (200..300).contains(&g.status)) {
            healed = true;
            break;
        }
    }
    if !healed {
        ctx.note("the backend did not answer 2xx within 3 calls after the database came back: the next scenario gets a fresh backend");
        ctx.dirty = true;
    }
    let sent = format!("a new user's {:?} {} while the backend's database refuses connections", endpoint.method, endpoint.path.get());
    Ok(judge_database_down(sent, got))
});

/// `sync.database_down`: a database outage is the server's problem — a 5xx (503 with
/// `Retry-After` at best), never an auth failure, and never the driver's text.
pub(crate) fn judge_database_down(sent: String, got: Exchange) -> Outcome {
    let leak = driver_text(&got.body);
    match got.status {
        401 | 403 => Outcome::fail(
            sent,
            Some(got.clone()),
            format!(
                "a database outage was answered {} (an auth failure): the SPA signs the user out or refreshes and retries in a loop{}",
                got.status,
                leak.map(|l| format!("; the body carries the driver's text ({l:?})")).unwrap_or_default()
            ),
        ),
        s if s >= 500 => match leak {
            Some(l) => {
                Outcome::fail(sent, Some(got), format!("answered {s}, but the body carries the database driver's text ({l:?}): internals leak to the browser"))
            }
            None if s == 503 => Outcome::pass("503 while the database was down, no driver text"),
            None => Outcome::pass(format!("{s} while the database was down, no driver text (503 with Retry-After would tell the SPA to retry)")),
        },
        s if (200..300).contains(&s) => Outcome::pass(format!("answered {s} without its database (this request did not need it)")),
        s => Outcome::fail(sent, Some(got), format!("a database outage was answered {s}: a 4xx blames the client for the server's outage (expected 503)")),
    }
}

/// Requests of `GET /v1/users/{user_id}` the mock received so far.
fn user_lookups(ctx: &Ctx, user_id: &str) -> usize {
    lookups_of(ctx.env.mock().faults(), user_id)
}

fn lookups_of(faults: &mock_clerk::Faults, user_id: &str) -> usize {
    faults.requests_matching(&Route::backend("GET /v1/users/*")).iter().filter(|r| r.path.ends_with(user_id)).count()
}

body!(deleted_user, |ctx| {
    let Some(endpoint) = ctx.sync_endpoint() else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    let me = ctx.sign_in("deleted")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    ctx.env.mock().store().delete_user(&me.user.id)?;
    ctx.note("the user was deleted in Clerk (GET /v1/users/{id} answers 404); the token stays valid until its exp");
    let before = user_lookups(ctx, &me.user.id);
    let got = ctx.call(&endpoint, &token).await?;
    let lookups = user_lookups(ctx, &me.user.id) - before;
    let sent = format!("{:?} {} with a valid token of a user deleted in Clerk", endpoint.method, endpoint.path.get());
    Ok(judge_deleted_user(sent, lookups, got))
});

/// `sync.deleted_user`: the user is gone, so the session is over — 401 lets `clerk-js`
/// find out (its refresh fails, it signs out); 403/404 keep a dead user "signed in"
/// (`warn`); a 5xx is a crash on Clerk's 404 (`fail`).
pub(crate) fn judge_deleted_user(sent: String, lookups: usize, got: Exchange) -> Outcome {
    match got.status {
        401 => Outcome::pass("401: the user deleted in Clerk is signed out"),
        s if (200..300).contains(&s) && lookups == 0 => {
            Outcome::not_applicable(format!("answered {s} without calling GET /v1/users/{{id}}: the backend does not look the user up in Clerk while syncing"))
        }
        s if (200..300).contains(&s) => Outcome::warn(
            sent,
            Some(got),
            format!("answered {s} although GET /v1/users/{{id}} answered 404: a user deleted in Clerk keeps using the API until the token expires"),
        ),
        s if s >= 500 || s == 0 => Outcome::fail(
            sent,
            Some(got),
            format!("answered {s}: GET /v1/users/{{id}} answered 404 (the user was deleted in Clerk) and the backend did not handle it — answer 401"),
        ),
        s => Outcome::warn(
            sent,
            Some(got),
            format!("answered {s}: the user no longer exists, so the session is over — a 401 makes clerk-js refresh, fail and sign the user out; a {s} leaves a deleted user looking signed in"),
        ),
    }
}

/// How long the Backend API takes to answer `GET /v1/users/{id}` in `sync.backend_api_slow`.
pub const SLOW_BACKEND_API: Duration = Duration::from_secs(20);
/// `/health` is asked once the sync's lookup reached the mock, or this long after the sync
/// request was sent (a backend that never looks the user up).
pub const HEALTH_AFTER: Duration = Duration::from_millis(1000);
/// How long `/health` may take while a sync waits on the slow Backend API (a local health
/// path answers in milliseconds; slower means it queued behind the waiting request).
pub const HEALTH_WHILE_SLOW: Duration = Duration::from_millis(500);
/// How long the health probe waits at all.
pub const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

body!(backend_api_slow, |ctx| {
    let Some(endpoint) = ctx.sync_endpoint() else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    let route = Route::backend("GET /v1/users/*");
    let me = ctx.sign_in("bapi-slow")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let before = user_lookups(ctx, &me.user.id);
    ctx.env.mock().faults().inject(Fault::latency(route.clone(), SLOW_BACKEND_API));
    let health_url = format!("{}{}", ctx.env.backend_url().as_str().trim_end_matches('/'), ctx.env.profile().health_path.get());
    let http = ctx.env.http().clone();
    let faults = ctx.env.mock().faults().clone();
    let user_id = me.user.id.clone();
    let asked = Instant::now();
    let health = async {
        // Once the sync waits on Clerk: the mock records a held request as it arrives.
        let deadline = Instant::now() + HEALTH_AFTER;
        while lookups_of(&faults, &user_id) == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let t = Instant::now();
        let answer = http.get(&health_url).timeout(HEALTH_PROBE_TIMEOUT).send().await;
        (answer.map(|r| r.status().as_u16()).map_err(|e| e.to_string()), t.elapsed())
    };
    let (got, health) = futures::join!(ctx.call(&endpoint, &token), health);
    let took = asked.elapsed();
    ctx.env.mock().faults().clear();
    let sent = format!(
        "{:?} {} of a new user while GET /v1/users/{{id}} takes {} s; /health meanwhile",
        endpoint.method,
        endpoint.path.get(),
        SLOW_BACKEND_API.as_secs()
    );
    let got = match got {
        Ok(got) => Ok(got),
        Err(crate::StepError::Http(e)) if e.is_timeout() => Err(took),
        Err(e) => return Err(e),
    };
    let fix = crate::stack::fix(crate::stack::Knob::BoundedRetries, &ctx.fingerprint.stack);
    Ok(judge_backend_api_slow(sent, got, took, health, &fix))
});

/// `sync.backend_api_slow`: `got` is the answer (or `Err(waited)`: none within our request
/// timeout), `health` the health path's status (or error) and time meanwhile.
/// `fix`: the bounded-timeout fix in the backend's stack's terms.
pub(crate) fn judge_backend_api_slow(
    sent: String,
    got: Result<Exchange, Duration>,
    took: Duration,
    health: (Result<u16, String>, Duration),
    fix: &str,
) -> Outcome {
    let (health_status, health_took) = health;
    let health_ok = matches!(health_status, Ok(s) if (200..300).contains(&s)) && health_took <= HEALTH_WHILE_SLOW;
    let health_note = match &health_status {
        Ok(s) if health_ok => format!("/health answered {s} in {} ms meanwhile", health_took.as_millis()),
        Ok(s) if (200..300).contains(s) => format!(
            "/health did not answer while it waited: it answered {s} only after {} ms (over {} ms) — one slow Clerk call blocks the whole server",
            health_took.as_millis(),
            HEALTH_WHILE_SLOW.as_millis()
        ),
        Ok(s) => format!("/health answered {s} meanwhile"),
        Err(_) => format!("/health did not answer within {} s either: one slow Clerk call blocks the whole server", HEALTH_PROBE_TIMEOUT.as_secs()),
    };
    let got = match got {
        Ok(got) => got,
        Err(waited) => {
            return Outcome::fail(
                sent,
                None,
                format!(
                    "no answer within our request timeout ({} s): the backend waits on the slow GET /v1/users/{{id}} ({} s) without a timeout of its own; {health_note}",
                    waited.as_secs(),
                    SLOW_BACKEND_API.as_secs()
                ),
            )
            .classed("hang", fix)
        }
    };
    let secs = took.as_secs_f64();
    match got.status {
        401 | 403 => {
            Outcome::fail(sent, Some(got), format!("a slow Backend API surfaced as an auth failure after {secs:.1} s: the SPA signs the user out or loops"))
        }
        503 | 504 | 429 if health_ok => Outcome::pass(format!("answered {} after {secs:.1} s (its own timeout); {health_note}", got.status)),
        s @ (503 | 504 | 429) => Outcome::fail(sent, Some(got), format!("answered {s} after {secs:.1} s, but {health_note}")).classed("hang", fix),
        s if (200..300).contains(&s) => Outcome::not_applicable(format!(
            "answered {s} in {secs:.1} s without waiting for GET /v1/users/{{id}}: the backend does not look the user up while syncing"
        )),
        s => Outcome::warn(sent, Some(got), format!("answered {s} after {secs:.1} s; expected a retryable 503 (or 504) with Retry-After; {health_note}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(status: u16) -> Exchange {
        Exchange::answered(status, "")
    }

    #[test]
    fn driver_text_in_a_5xx_body_fails_and_a_clean_5xx_passes() {
        let leaked = Exchange {
            status: 500,
            body: "Something went wrong: error returned from database: database \"db_1\" is not currently accepting connections".into(),
            ..Exchange::default()
        };
        assert!(matches!(judge_database_down("s".into(), leaked), Outcome::Fail(f) if f.problem.contains("driver's text")));
        assert!(matches!(judge_database_down("s".into(), got(500)), Outcome::Pass(n) if n.contains("Retry-After")));
        assert!(matches!(judge_database_down("s".into(), got(400)), Outcome::Fail(_)));
        assert_eq!(driver_text("(psycopg.OperationalError) connection failed"), Some("psycopg"));
        assert_eq!(driver_text("{\"detail\": \"the database is unavailable, retry later\"}"), None);
    }
}
