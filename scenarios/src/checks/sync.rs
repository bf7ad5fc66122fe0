//! The backend's user table: first request creates exactly one row; repeats, concurrency,
//! legacy rows, users without email and Backend API failures never end in a 401 loop.

use std::ops::ControlFlow;

use std::time::{Duration, Instant};

use harness::{GetToken, UserField};
use mock_clerk::{Fault, NewUser, Route};

use super::body;
use crate::ctx::Ctx;
use crate::scenario::{Exchange, Outcome};
use crate::StepError;

async fn rows_for(ctx: &Ctx, clerk_user_id: &str) -> Result<i64, StepError> {
    let sql = format!("SELECT count(*) FROM ({}) AS synced", ctx.env.profile().user.sql.get());
    Ok(sqlx::query_scalar(&sql).bind(clerk_user_id).fetch_one(ctx.env.db()?).await?)
}

/// Calls the first syncing endpoint with a fresh token of `session_id`.
async fn call_sync(ctx: &mut Ctx, session_id: &str) -> Result<Option<(String, Exchange)>, StepError> {
    let Some(endpoint) = ctx.sync_endpoint() else { return Ok(None) };
    let token = ctx.env.spa().get_token(session_id, &GetToken::ProfileDefault)?;
    let got = ctx.call(&endpoint, &token).await?;
    Ok(Some((format!("{:?} {}", endpoint.method, endpoint.path.get()), got)))
}

const NO_SYNC: &str = "no [[endpoints]] entry has syncs_user = true";

body!(first_request_creates_one_row, |ctx| {
    let me = ctx.sign_in("sync-first")?;
    let Some((sent, got)) = call_sync(ctx, &me.session.id).await? else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    if !(200..300).contains(&got.status) {
        return Ok(Outcome::fail(sent, Some(got), "the first authenticated request of a new user failed"));
    }
    let row = ctx.env.synced_user(&me.user.id).await?;
    let n = rows_for(ctx, &me.user.id).await?;
    let user = ctx.env.profile().user.clone();
    Ok(match row {
        None => Outcome::fail(sent, Some(got), "no row with the Clerk user id after the first request"),
        Some(_) if n != 1 => Outcome::fail(sent, Some(got), format!("{n} rows for one Clerk user")),
        Some(r) => match field_mismatches(&user, &r, &me.user) {
            wrong if !wrong.is_empty() => Outcome::fail(sent, Some(got), format!("the row does not match the Clerk user: {}", wrong.join(", "))),
            _ => Outcome::pass(format!("one row with the Clerk id{}", compared(&user))),
        },
    })
});

/// The declared `[user] fields` whose value in `row` is not the Clerk user's, as
/// `field = row value (Clerk: value)`.
pub(crate) fn field_mismatches(spec: &harness::profile::UserSpec, row: &harness::SyncedUser, user: &mock_clerk::User) -> Vec<String> {
    let pairs = [
        (UserField::Email, row.email.clone(), user.primary_email().map(str::to_string)),
        (UserField::FirstName, row.first_name.clone(), user.first_name.clone()),
        (UserField::LastName, row.last_name.clone(), user.last_name.clone()),
    ];
    pairs
        .into_iter()
        .filter(|(field, got, want)| spec.stores(*field) && got != want)
        .map(|(field, got, want)| format!("{} = {got:?} (Clerk: {want:?})", field.name()))
        .collect()
}

/// ", email and names" — the fields compared, and those the profile says are not stored.
pub(crate) fn compared(spec: &harness::profile::UserSpec) -> String {
    let judged: Vec<&str> = spec.fields.iter().map(|f| f.name()).collect();
    let skipped = spec.skipped();
    let mut note = if judged.is_empty() { String::new() } else { format!(" and {}", judged.join(", ")) };
    if !skipped.is_empty() {
        note.push_str(&format!(" (skipped {}: not in [user] fields)", skipped.join(", ")));
    }
    note
}

body!(repeat_is_idempotent, |ctx| {
    let me = ctx.sign_in("sync-repeat")?;
    for attempt in 1..=3 {
        let Some((sent, got)) = call_sync(ctx, &me.session.id).await? else { return Ok(Outcome::not_applicable(NO_SYNC)) };
        if !(200..300).contains(&got.status) {
            return Ok(Outcome::fail(format!("{sent} (request {attempt} of 3)"), Some(got), "a repeated request of a synced user failed"));
        }
    }
    let n = rows_for(ctx, &me.user.id).await?;
    Ok(if n == 1 { Outcome::pass("three requests, one row") } else { Outcome::fail("three requests", None, format!("{n} rows after three requests")) })
});

/// Rounds of [`RACE_WIDTH`] concurrent first requests `sync.concurrent` runs at most (it
/// stops at the first failure): a race lost one round in three is missed with odds of 0.7³⁰
/// ≈ 2·10⁻⁵; the reference backend's 30 rounds take about 1.5 s.
pub const RACE_ROUNDS: usize = 30;
/// See [`RACE_ROUNDS`]: no new round starts after this long.
pub const RACE_BUDGET: Duration = Duration::from_secs(3);
/// Concurrent first requests per round (the SPA's calls on page load).
pub const RACE_WIDTH: usize = 8;

body!(concurrent_first_requests, |ctx| {
    let Some(endpoint) = ctx.sync_endpoint() else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    let sent = format!("rounds of {RACE_WIDTH} concurrent first requests of a new user (one per round) to {:?} {}", endpoint.method, endpoint.path.get());
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < RACE_ROUNDS && (rounds == 0 || started.elapsed() < RACE_BUDGET) {
        rounds += 1;
        let me = ctx.sign_in("sync-race")?;
        let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
        let spa = ctx.env.spa();
        let barrier = tokio::sync::Barrier::new(RACE_WIDTH);
        let shared: &Ctx = ctx;
        let requests = (0..RACE_WIDTH).map(|_| {
            let request = spa.authenticate(spa.request(endpoint.method.as_reqwest(), endpoint.path.get()), Some(&me.session.id), &token);
            let barrier = &barrier;
            let ctx = shared;
            async move {
                barrier.wait().await;
                ctx.fetch(request).await
            }
        });
        let mut statuses = vec![];
        let mut worst: Option<Exchange> = None;
        for r in futures::future::join_all(requests).await {
            let got = r?;
            statuses.push(got.status);
            if !(200..300).contains(&got.status) && worst.is_none() {
                worst = Some(got);
            }
        }
        let n = rows_for(ctx, &me.user.id).await?;
        if let Some(outcome) = judge_race_round(&sent, rounds, &statuses, worst, n) {
            return Ok(outcome);
        }
    }
    Ok(Outcome::pass(format!("{rounds} rounds of {RACE_WIDTH} concurrent first requests in {} ms: all 2xx, one row each", started.elapsed().as_millis())))
});

/// One round of `sync.concurrent`: `None` when it went right (all 2xx, one row), else the
/// failure with the hit rate so far ("lost the race in round 3 of 3").
pub(crate) fn judge_race_round(sent: &str, round: usize, statuses: &[u16], worst: Option<Exchange>, rows: i64) -> Option<Outcome> {
    let when = if round == 1 { "in the first round".to_string() } else { format!("in round {round} (rounds 1 to {} went right)", round - 1) };
    match (worst, rows) {
        (Some(got), _) => {
            let auth = matches!(got.status, 401 | 403);
            Some(Outcome::fail(
                sent,
                Some(got),
                format!(
                    "lost the race {when}: statuses {statuses:?}{} — concurrent first requests race in the user upsert (use INSERT … ON CONFLICT)",
                    if auth { "; a lost race answered as an auth failure signs the user out" } else { "" }
                ),
            ))
        }
        (None, 1) => None,
        (None, n) => Some(Outcome::fail(sent, None, format!("{n} rows for one Clerk user {when}: the upsert is not race-safe"))),
    }
}

body!(legacy_row_is_linked, |ctx| {
    let Some(insert) = ctx.env.profile().user.legacy_insert_sql.as_ref().map(|s| s.get().clone()) else {
        return Ok(Outcome::not_applicable("the profile has no [user] legacy_insert_sql to create a pre-Clerk row"));
    };
    if !ctx.env.profile().user.stores(UserField::Email) {
        return Ok(Outcome::not_applicable("[user] fields does not list email: a pre-Clerk row cannot be linked (or judged) by its email"));
    }
    let new = Ctx::new_user("legacy");
    let email = new.email_addresses[0].clone();
    sqlx::query(&insert).bind(&email).execute(ctx.env.db()?).await?;
    let me = ctx.env.sign_in(new)?;
    let Some((sent, got)) = call_sync(ctx, &me.session.id).await? else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    if !(200..300).contains(&got.status) {
        return Ok(Outcome::fail(sent, Some(got), "a user whose email already has a pre-Clerk row was refused"));
    }
    // The legacy row is the one with that email: linked means the Clerk id's row has it.
    let n = rows_for(ctx, &me.user.id).await?;
    Ok(match ctx.env.synced_user(&me.user.id).await? {
        Some(r) if r.email.as_deref() == Some(email.as_str()) && n == 1 => Outcome::pass("the legacy row (found by its email) got the Clerk id"),
        other => Outcome::fail(sent, Some(got), format!("the legacy row was not linked to the Clerk id ({n} rows with the Clerk id; row: {other:?})")),
    })
});

body!(same_email_other_clerk_id, |ctx| {
    let first = ctx.sign_in("email-clash")?;
    let Some((sent, got)) = call_sync(ctx, &first.session.id).await? else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    if !(200..300).contains(&got.status) {
        return Ok(Outcome::fail(sent, Some(got), "the first user could not be synced"));
    }
    let email = first.user.primary_email().unwrap_or_default().to_string();
    ctx.env.mock().store().delete_user(&first.user.id)?;
    let second = ctx.env.sign_in(NewUser::with_email(&email).names("Second", "Account"))?;
    let Some((sent, got)) = call_sync(ctx, &second.session.id).await? else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    Ok(match got.status {
        401 => Outcome::fail(
            sent,
            Some(got),
            "a valid token was answered with 401 because the email belongs to another Clerk id: the SPA refreshes and loops forever",
        ),
        s if s >= 500 => Outcome::fail(sent, Some(got), "crashed on an email already used by another Clerk id (unique constraint?)"),
        s => Outcome::pass(format!("answered {s}, not a 401 loop")),
    })
});

body!(user_without_email, |ctx| {
    let me = ctx.env.sign_in(NewUser::default().phone("+15555550123").names("Phone", "Only"))?;
    let Some((sent, got)) = call_sync(ctx, &me.session.id).await? else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    Ok(match got.status {
        s if s >= 500 => {
            Outcome::fail(format!("{sent} as a phone-only user (no email address)"), Some(got), "crashed on a Clerk user without an email address")
        }
        401 => Outcome::fail(format!("{sent} as a phone-only user"), Some(got), "answered 401 to a valid token of a user without email: a 401 loop"),
        s => Outcome::pass(format!("answered {s}")),
    })
});

body!(backend_api_failure_is_retryable, |ctx| {
    if ctx.sync_endpoint().is_none() {
        return Ok(Outcome::not_applicable(NO_SYNC));
    }
    let route = Route::backend("GET /v1/users/*");
    let mut notes = vec![];
    for (label, fault) in [("503", Fault::status(route.clone(), 503)), ("429", Fault::rate_limited(route.clone(), 2))] {
        let before = faulted_hits(ctx, &route);
        ctx.env.mock().faults().inject(fault);
        let me = ctx.sign_in("bapi-down")?;
        let asked = std::time::Instant::now();
        let result = call_sync(ctx, &me.session.id).await;
        let took = asked.elapsed();
        ctx.env.mock().faults().clear();
        let Some((sent, got)) = result? else { return Ok(Outcome::not_applicable(NO_SYNC)) };
        let hits = faulted_hits(ctx, &route) - before;
        match judge_bapi_failure(format!("{sent} while the Backend API answers {label}"), label, hits, got) {
            ControlFlow::Continue(note) => notes.push(format!("{note} in {} ms", took.as_millis())),
            ControlFlow::Break(outcome) => return Ok(outcome),
        }
    }
    ctx.fingerprint.backend_api = Some(crate::fingerprint::Fact {
        figure: format!("answers while the Backend API fails: {}", notes.join("; ")),
        measurement: "GET /v1/users/{id} answered 503, then 429, during a new user's first request; the mock's record counts the calls".into(),
        by: "sync.backend_api_failure".into(),
    });
    Ok(summarise_bapi_failures(&notes))
});

/// Requests to `route` the mock answered with an injected fault so far.
fn faulted_hits(ctx: &Ctx, route: &Route) -> usize {
    ctx.env.mock().faults().requests_matching(route).iter().filter(|r| r.faulted).count()
}

/// One injected Backend API failure (`label`: 503 or 429), hit `hits` times during the
/// request: `Continue(note)` when the answer is acceptable, `Break(outcome)` when not. A 2xx is only
/// credited as "survived the outage" when the fault was actually hit; otherwise the note
/// says the backend never called `GET /v1/users/{id}`.
pub(crate) fn judge_bapi_failure(sent: String, label: &str, hits: usize, got: Exchange) -> ControlFlow<Outcome, String> {
    match got.status {
        401 | 403 => {
            ControlFlow::Break(Outcome::fail(sent, Some(got), "a Backend API outage surfaced as an auth failure: the SPA signs the user out or loops"))
        }
        _ if hits == 0 && (200..300).contains(&got.status) => {
            ControlFlow::Continue(format!("{label}: never hit (the backend did not call GET /v1/users/{{id}}), answered {}", got.status))
        }
        429 | 502..=504 => ControlFlow::Continue(format!("{label}: hit {hits}×, answered {} (retryable)", got.status)),
        s if (200..300).contains(&s) => ControlFlow::Continue(format!("{label}: hit {hits}×, still answered {s} (retried or fell back)")),
        _ => ControlFlow::Break(Outcome::fail(
            sent,
            Some(got),
            format!("expected a retryable 503 (with Retry-After) or 429 after the Backend API answered {label}"),
        )),
    }
}

/// The pass (or not-applicable) note over both injected failures.
pub(crate) fn summarise_bapi_failures(notes: &[String]) -> Outcome {
    let all_missed = notes.iter().all(|n| n.contains("never hit"));
    if all_missed {
        Outcome::not_applicable(format!(
            "the backend never called GET /v1/users/{{id}} while syncing, so the injected Backend API failures were not exercised ({})",
            notes.join("; ")
        ))
    } else {
        Outcome::pass(format!("Backend API failures during sync never became 401: {}", notes.join("; ")))
    }
}

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
            Some(l) => Outcome::fail(sent, Some(got), format!("answered {s}, but the body carries the database driver's text ({l:?}): internals leak to the browser")),
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
    let sent = format!("{:?} {} of a new user while GET /v1/users/{{id}} takes {} s; /health meanwhile", endpoint.method, endpoint.path.get(), SLOW_BACKEND_API.as_secs());
    let got = match got {
        Ok(got) => Ok(got),
        Err(crate::StepError::Http(e)) if e.is_timeout() => Err(took),
        Err(e) => return Err(e),
    };
    Ok(judge_backend_api_slow(sent, got, took, health))
});

/// `sync.backend_api_slow`: `got` is the answer (or `Err(waited)`: none within our request
/// timeout), `health` the health path's status (or error) and time meanwhile.
pub(crate) fn judge_backend_api_slow(sent: String, got: Result<Exchange, Duration>, took: Duration, health: (Result<u16, String>, Duration)) -> Outcome {
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
    let fix = "give the Backend API client a timeout of a few seconds (connect and read) and answer 503 with Retry-After when it expires; run blocking calls off the event loop / worker that serves other requests";
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
        401 | 403 => Outcome::fail(sent, Some(got), format!("a slow Backend API surfaced as an auth failure after {secs:.1} s: the SPA signs the user out or loops")),
        503 | 504 | 429 if health_ok => Outcome::pass(format!("answered {} after {secs:.1} s (its own timeout); {health_note}", got.status)),
        s @ (503 | 504 | 429) => Outcome::fail(sent, Some(got), format!("answered {s} after {secs:.1} s, but {health_note}")).classed("hang", fix),
        s if (200..300).contains(&s) => Outcome::not_applicable(format!("answered {s} in {secs:.1} s without waiting for GET /v1/users/{{id}}: the backend does not look the user up while syncing")),
        s => Outcome::warn(sent, Some(got), format!("answered {s} after {secs:.1} s; expected a retryable 503 (or 504) with Retry-After; {health_note}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn got(status: u16) -> Exchange {
        Exchange { status, ..Exchange::default() }
    }

    #[test]
    fn a_2xx_counts_only_when_the_injected_failure_was_hit() {
        let note = |c: ControlFlow<Outcome, String>| match c {
            ControlFlow::Continue(n) => n,
            ControlFlow::Break(o) => panic!("{o:?}"),
        };
        let missed = note(judge_bapi_failure("s".into(), "503", 0, got(200)));
        assert!(missed.contains("never hit"), "{missed}");
        let hit = note(judge_bapi_failure("s".into(), "503", 2, got(200)));
        assert!(hit.contains("hit 2×"), "{hit}");
        assert!(matches!(summarise_bapi_failures(&[missed.clone(), missed]), Outcome::NotApplicable(n) if n.contains("never called")));
        let summary = match summarise_bapi_failures(&[hit, note(judge_bapi_failure("s".into(), "429", 1, got(429)))]) {
            Outcome::Pass(n) => n,
            other => panic!("{other:?}"),
        };
        assert!(summary.contains("503: hit 2×") && summary.contains("429: hit 1×"), "{summary}");
    }

    #[test]
    fn an_outage_surfacing_as_401_fails() {
        assert!(matches!(judge_bapi_failure("s".into(), "503", 1, got(401)), ControlFlow::Break(Outcome::Fail(_))));
        assert!(matches!(judge_bapi_failure("s".into(), "503", 1, got(500)), ControlFlow::Break(Outcome::Fail(_))));
    }
}
