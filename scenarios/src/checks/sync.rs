//! The backend's user table: first request creates exactly one row; repeats, concurrency,
//! legacy rows, users without email and Backend API failures never end in a 401 loop.

use std::ops::ControlFlow;

use std::time::{Duration, Instant};

use harness::{GetToken, UserField};
use mock_clerk::{Fault, NewUser, Route};

use super::body;
use crate::ctx::Ctx;

mod outages;
use crate::scenario::{Exchange, Outcome};
use crate::StepError;
pub use outages::{backend_api_slow, database_down, deleted_user};

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
pub(crate) fn field_mismatches(spec: &harness::UserSpec, row: &harness::SyncedUser, user: &mock_clerk::User) -> Vec<String> {
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
pub(crate) fn compared(spec: &harness::UserSpec) -> String {
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
/// ≈ 2·10⁻⁵. Rounds run [`RACE_AT_ONCE`] at a time.
pub const RACE_ROUNDS: usize = 30;
/// Rounds always run, whatever the time (0.7²⁰ ≈ 8·10⁻⁴ for a race lost one round in three).
pub const RACE_MIN_ROUNDS: usize = 20;
/// Past [`RACE_MIN_ROUNDS`], no new rounds start after this long (the catalogue's time budget).
pub const RACE_BUDGET: Duration = Duration::from_secs(1);
/// Rounds run at the same time (each its own user and barrier): more rounds in the budget.
pub const RACE_AT_ONCE: usize = 3;
/// Concurrent first requests per round (the SPA's calls on page load).
pub const RACE_WIDTH: usize = 8;

body!(concurrent_first_requests, |ctx| {
    let Some(endpoint) = ctx.sync_endpoint() else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    let sent = format!(
        "rounds of {RACE_WIDTH} concurrent first requests of a new user (a user per round, {RACE_AT_ONCE} rounds at a time) to {:?} {}",
        endpoint.method,
        endpoint.path.get()
    );
    let started = Instant::now();
    let mut rounds = 0;
    // The first round where the backend shed load (503/429, one row): not a race.
    let mut shed: Option<Outcome> = None;
    while rounds < RACE_ROUNDS && (rounds < RACE_MIN_ROUNDS || started.elapsed() < RACE_BUDGET) {
        // No cookie jar (a client per user): the rounds send their own requests.
        let users = (0..RACE_AT_ONCE).map(|_| ctx.env.sign_in(Ctx::new_user("sync-race"))).collect::<Result<Vec<_>, _>>()?;
        let mut tokens = vec![];
        for me in &users {
            tokens.push(ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?);
        }
        let mark = ctx.env.log_mark();
        let spa = ctx.env.spa();
        let shared: &Ctx = ctx;
        let batch = users.iter().zip(&tokens).map(|(me, token)| {
            let requests: Vec<_> = (0..RACE_WIDTH)
                .map(|_| spa.authenticate(spa.request(endpoint.method.as_reqwest(), endpoint.path.get()), Some(&me.session.id), token))
                .collect();
            async move {
                // Each round's requests leave together, released by its own barrier.
                let barrier = tokio::sync::Barrier::new(RACE_WIDTH);
                let barrier = &barrier;
                futures::future::join_all(requests.into_iter().map(|request| async move {
                    barrier.wait().await;
                    let sent_at = Instant::now();
                    let answer = shared.fetch(request).await;
                    (answer, sent_at.elapsed())
                }))
                .await
            }
        });
        let answers = futures::future::join_all(batch).await;
        // Requests the backend left unanswered past the request timeout while it answered
        // others of the same batch: it stalls under concurrent first requests. Measured here,
        // not left to the runner as "the harness could not judge".
        let (mut unanswered, mut answered_ms): (usize, Vec<u128>) = (0, vec![]);
        for (r, took) in answers.iter().flatten() {
            match r {
                Ok(_) => answered_ms.push(took.as_millis()),
                Err(StepError::Http(e)) if e.is_timeout() => unanswered += 1,
                Err(_) => {}
            }
        }
        if unanswered > 0 {
            // The stalled requests may still be running: the next scenario gets a clean backend.
            ctx.dirty = true;
            let end = ctx.env.settle_log().await;
            return Ok(stalled(&sent, rounds + 1, unanswered, &answered_ms, ctx.env.config().request_timeout())
                .with_log(round_log(ctx.env.log_lines_between(mark, end))));
        }
        for (me, answers) in users.iter().zip(answers) {
            rounds += 1;
            let mut statuses = vec![];
            let mut worst: Option<Exchange> = None;
            for (r, _) in answers {
                let got = r?;
                statuses.push(got.status);
                if !(200..300).contains(&got.status) && worst.is_none() {
                    worst = Some(got);
                }
            }
            let n = rows_for(ctx, &me.user.id).await?;
            if worst.is_none() && n == 1 {
                continue;
            }
            // The log of the rounds sent with this one, not the whole scenario's head and tail
            // (800 lines on a backend that logs every Backend API call): what the judgement
            // reads for a constraint violation, and what the diagnosis quotes.
            let end = ctx.env.settle_log().await;
            let log = ctx.env.log_lines_between(mark, end);
            match judge_race_round(&sent, rounds, &statuses, worst, n, &log) {
                Some(outcome @ Outcome::Warn(_)) if shed.is_none() => shed = Some(outcome.with_log(round_log(log))),
                Some(Outcome::Warn(_)) | None => {}
                Some(outcome) => return Ok(outcome.with_log(round_log(log))),
            }
        }
    }
    if let Some(shed) = shed {
        return Ok(shed);
    }
    Ok(Outcome::pass(format!("{rounds} rounds of {RACE_WIDTH} concurrent first requests in {} ms: all 2xx, one row each", started.elapsed().as_millis())))
});

/// `sync.concurrent` when requests of a batch got no answer within the request timeout: a
/// `hang` failure with what was measured (how many were left unanswered, how fast the others
/// were answered).
pub(crate) fn stalled(sent: &str, first_round: usize, unanswered: usize, answered_ms: &[u128], timeout: Duration) -> Outcome {
    let total = unanswered + answered_ms.len();
    let others = match answered_ms.iter().max() {
        Some(slowest) => format!("while the other {} were answered within {slowest} ms", answered_ms.len()),
        None => "and none of them was answered".to_string(),
    };
    Outcome::fail(
        sent,
        None,
        format!(
            "the backend stalls when first requests arrive together: {unanswered} of {total} concurrent first requests (rounds {first_round} to {}, {RACE_AT_ONCE} new users × {RACE_WIDTH}) got no answer within {} s, {others} — each stalled request is a page that hangs",
            first_round + RACE_AT_ONCE - 1,
            timeout.as_secs()
        ),
    )
    .classed(
        "hang",
        "find what serialises or blocks when several first requests arrive together (the rounds' log below): a blocking database or HTTP call inside an async handler blocks every request; a connection pool smaller than the concurrent requests makes them wait for its timeout",
    )
}

/// The most lines a lost round's log shows.
const ROUND_LOG_LINES: usize = 40;

/// The log lines of the rounds a failure was found in: all of them when few, else the lines
/// that say what went wrong (errors, exceptions, constraint violations, refusals) first, in
/// their order, up to [`ROUND_LOG_LINES`], with a count of what was left out.
pub(crate) fn round_log(lines: Vec<String>) -> Vec<String> {
    if lines.len() <= ROUND_LOG_LINES {
        return lines;
    }
    const TELLING: [&str; 12] = ["error", "exception", "traceback", "integrity", "unique", "duplicate", "violat", "conflict", " 401", " 403", " 409", " 500"];
    let telling = |line: &String| {
        let lower = line.to_ascii_lowercase();
        TELLING.iter().any(|word| lower.contains(word))
    };
    let mut out: Vec<String> = lines.iter().filter(|l| telling(l)).take(ROUND_LOG_LINES).cloned().collect();
    let total = lines.len();
    out.push(format!("… {} of the {total} lines these rounds logged are left out (only those naming an error or a refusal are shown) …", total - out.len()));
    out
}

/// One round of `sync.concurrent`: `None` when it went right (all 2xx, one row), else what
/// went wrong, measured, with the hit rate so far ("in round 3 (rounds 1 to 2 went right)"):
/// - more than one row for the user: the upsert is not race-safe;
/// - a refusal or error while the round's log names a unique/duplicate-key violation: the
///   race was lost in the upsert;
/// - a refusal or error with one row and no such line: something in the first-request path
///   fails under concurrency — not called a race, the round's log shows what;
/// - only 503/429 ("retry later") with one row: a `warn`, the backend shed load (a pool or
///   worker limit), which says nothing of its upsert.
pub(crate) fn judge_race_round(sent: &str, round: usize, statuses: &[u16], worst: Option<Exchange>, rows: i64, log: &[String]) -> Option<Outcome> {
    let when = if round == 1 { "in the first round".to_string() } else { format!("in round {round} (rounds 1 to {} went right)", round - 1) };
    let shed = statuses.iter().all(|s| (200..300).contains(s) || matches!(s, 503 | 429));
    let refused = statuses.iter().filter(|s| !(200..300).contains(*s)).count();
    let of = statuses.len();
    // Where the backend says so: in its log, or in the body it answered.
    let body = worst.as_ref().map(|got| got.body.clone()).unwrap_or_default();
    let violation = log.iter().chain(std::iter::once(&body)).find(|l| {
        let lower = l.to_ascii_lowercase();
        ["unique constraint", "duplicate key", "integrityerror", "uniqueviolation", "23505"].iter().any(|w| lower.contains(w))
    });
    let auth = worst.as_ref().is_some_and(|got| matches!(got.status, 401 | 403));
    let signs_out = if auth { "; a server-side failure answered as an auth failure signs the user out" } else { "" };
    match (worst, rows) {
        (Some(got), 1) if shed => Some(Outcome::warn(
            sent,
            Some(got),
            format!(
                "{refused} of {of} concurrent first requests were answered {} {when} (statuses {statuses:?}), with one row: the backend sheds load at this concurrency (a connection pool or worker limit?) rather than racing — the SPA's calls on page load are this concurrent, and each 503/429 is a retry for it",
                if statuses.contains(&429) { "503/429" } else { "503" }
            ),
        )),
        (Some(got), _) if violation.is_some() => Some(Outcome::fail(
            sent,
            Some(got),
            format!(
                "lost the race {when}: statuses {statuses:?}, and the log names a unique-key violation ({}){signs_out} — concurrent first requests race in the user upsert (use INSERT … ON CONFLICT)",
                violation.map(|l| l.trim().chars().take(160).collect::<String>()).unwrap_or_default()
            ),
        )),
        (Some(got), 1) => Some(Outcome::fail(
            sent,
            Some(got),
            format!(
                "{refused} of {of} concurrent first requests of a new user failed {when} (statuses {statuses:?}) while one row was kept, and the log names no unique-key violation: \
                 not a duplicate-row race, but something in the first-request path fails when requests arrive together (the round's log below says what){signs_out}"
            ),
        )),
        (_, n) if n > 1 => Some(Outcome::fail(sent, None, format!("{n} rows for one Clerk user {when}: the upsert is not race-safe (use INSERT … ON CONFLICT, or a unique index on the Clerk id)"))),
        (Some(got), n) => Some(Outcome::fail(sent, Some(got), format!("{refused} of {of} concurrent first requests failed {when} (statuses {statuses:?}) and {n} rows were found for the user"))),
        (None, 1) => None,
        (None, n) => Some(Outcome::fail(sent, None, format!("{n} rows for one Clerk user {when}: the user was not stored"))),
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
    let me = ctx.sign_in_as(new)?;
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
    let second = ctx.sign_in_as(NewUser::with_email(&email).names("Second", "Account"))?;
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
    let me = ctx.sign_in_as(NewUser::default().phone("+15555550123").names("Phone", "Only"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn got(status: u16) -> Exchange {
        Exchange::answered(status, "")
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
    fn a_stall_under_concurrency_is_a_measured_hang() {
        let o = stalled("s", 4, 22, &[265, 264], Duration::from_secs(10));
        let Outcome::Fail(f) = o else { panic!("{o:?}") };
        assert_eq!(f.class, Some("hang"));
        assert!(f.problem.contains("22 of 24") && f.problem.contains("rounds 4 to 6") && f.problem.contains("within 265 ms"), "{}", f.problem);
        let Outcome::Fail(f) = stalled("s", 1, 24, &[], Duration::from_secs(10)) else { panic!() };
        assert!(f.problem.contains("none of them was answered"), "{}", f.problem);
    }

    #[test]
    fn a_lost_rounds_log_shows_what_went_wrong_first() {
        let few: Vec<String> = (0..5).map(|i| format!("INFO line {i}")).collect();
        assert_eq!(round_log(few.clone()), few);
        let mut many: Vec<String> = (0..300).map(|i| format!("INFO GET /api/sync -> 200 ({i})")).collect();
        many.insert(150, "ERROR sqlalchemy.exc.IntegrityError: duplicate key value violates unique constraint".into());
        many.insert(151, "INFO 127.0.0.1 - \"GET /api/sync HTTP/1.1\" 401 Unauthorized".into());
        let shown = round_log(many);
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(shown[0].contains("IntegrityError") && shown[1].contains(" 401"), "{shown:?}");
        assert!(shown[2].contains("300 of the 302 lines"), "{shown:?}");
    }

    #[test]
    fn a_race_lost_in_a_later_round_says_which() {
        let violation = vec!["ERROR psycopg.errors.UniqueViolation: duplicate key value violates unique constraint \"users_clerk_id_key\"".to_string()];
        let o = judge_race_round("s", 4, &[200, 401], Some(got(401)), 1, &violation);
        assert!(
            matches!(&o, Some(Outcome::Fail(f)) if f.problem.contains("lost the race in round 4 (rounds 1 to 3 went right)") && f.problem.contains("UniqueViolation") && f.problem.contains("signs the user out")),
            "{o:?}"
        );
        assert!(judge_race_round("s", 1, &[200; 8], None, 1, &[]).is_none());
        // A refusal with one row and no violation in the log is not called a race.
        let o = judge_race_round("s", 19, &[200, 200, 401], Some(got(401)), 1, &["ERROR User authentication error: ReadTimeout".into()]);
        assert!(matches!(&o, Some(Outcome::Fail(f)) if f.problem.contains("not a duplicate-row race") && !f.problem.contains("ON CONFLICT")), "{o:?}");
        // Load shed with one row is not a race; a 503 beside a duplicate row still is.
        let shed = judge_race_round("s", 1, &[200, 200, 503, 200], Some(got(503)), 1, &[]);
        assert!(matches!(&shed, Some(Outcome::Warn(w)) if w.problem.contains("1 of 4") && w.problem.contains("sheds load")), "{shed:?}");
        assert!(matches!(judge_race_round("s", 1, &[200, 503], Some(got(503)), 2, &[]), Some(Outcome::Fail(f)) if f.problem.contains("2 rows")));
        assert!(matches!(judge_race_round("s", 1, &[200, 500], Some(got(500)), 1, &[]), Some(Outcome::Fail(_))));
        assert!(matches!(judge_race_round("s", 1, &[200; 8], None, 2, &[]), Some(Outcome::Fail(f)) if f.problem.contains("ON CONFLICT")));
    }

    #[test]
    fn an_outage_surfacing_as_401_fails() {
        assert!(matches!(judge_bapi_failure("s".into(), "503", 1, got(401)), ControlFlow::Break(Outcome::Fail(_))));
        assert!(matches!(judge_bapi_failure("s".into(), "503", 1, got(500)), ControlFlow::Break(Outcome::Fail(_))));
    }
}
