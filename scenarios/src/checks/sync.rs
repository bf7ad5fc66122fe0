//! The backend's user table: first request creates exactly one row; repeats, concurrency,
//! legacy rows, users without email and Backend API failures never end in a 401 loop.

use harness::GetToken;
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
    let email = me.user.primary_email().map(str::to_string);
    Ok(match row {
        None => Outcome::fail(sent, Some(got), "no row with the Clerk user id after the first request"),
        Some(_) if n != 1 => Outcome::fail(sent, Some(got), format!("{n} rows for one Clerk user")),
        Some(r) if r.email != email || r.first_name != me.user.first_name || r.last_name != me.user.last_name => {
            Outcome::fail(sent, Some(got), format!("the row does not match the Clerk user: email {:?}, names {:?} {:?}", r.email, r.first_name, r.last_name))
        }
        Some(_) => Outcome::pass("one row with the Clerk id, email and names"),
    })
});

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

body!(concurrent_first_requests, |ctx| {
    let Some(endpoint) = ctx.sync_endpoint() else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    let me = ctx.sign_in("sync-race")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let spa = ctx.env.spa();
    let requests = (0..8).map(|_| spa.request(endpoint.method.as_reqwest(), endpoint.path.get()).bearer_auth(&token).send());
    let responses = ctx.timed(futures::future::join_all(requests)).await;
    let mut statuses = vec![];
    let mut worst: Option<Exchange> = None;
    for r in responses {
        let got = ctx.timed(Exchange::read(r?)).await;
        statuses.push(got.status);
        if !(200..300).contains(&got.status) && worst.is_none() {
            worst = Some(got);
        }
    }
    let n = rows_for(ctx, &me.user.id).await?;
    let sent = format!("8 concurrent first requests {:?} {}", endpoint.method, endpoint.path.get());
    Ok(match (worst, n) {
        (Some(got), _) => {
            Outcome::fail(sent, Some(got), format!("statuses {statuses:?}: concurrent first requests race in the user upsert (use INSERT … ON CONFLICT)"))
        }
        (None, 1) => Outcome::pass("8 concurrent first requests: all 2xx, one row"),
        (None, n) => Outcome::fail(sent, None, format!("{n} rows for one Clerk user: the upsert is not race-safe")),
    })
});

body!(legacy_row_is_linked, |ctx| {
    let Some(insert) = ctx.env.profile().user.legacy_insert_sql.as_ref().map(|s| s.get().clone()) else {
        return Ok(Outcome::not_applicable("the profile has no [user] legacy_insert_sql to create a pre-Clerk row"));
    };
    let new = Ctx::new_user("legacy");
    let email = new.email_addresses[0].clone();
    sqlx::query(&insert).bind(&email).execute(ctx.env.db()?).await?;
    let me = ctx.env.sign_in(new)?;
    let Some((sent, got)) = call_sync(ctx, &me.session.id).await? else { return Ok(Outcome::not_applicable(NO_SYNC)) };
    if !(200..300).contains(&got.status) {
        return Ok(Outcome::fail(sent, Some(got), "a user whose email already has a pre-Clerk row was refused"));
    }
    Ok(match ctx.env.synced_user(&me.user.id).await? {
        Some(r) if r.email.as_deref() == Some(email.as_str()) => Outcome::pass("the legacy row got the Clerk id"),
        other => Outcome::fail(sent, Some(got), format!("the legacy row was not linked to the Clerk id (row: {other:?})")),
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
    for (label, fault) in [("503", Fault::status(Route::backend("GET /v1/users/*"), 503)), ("429", Fault::rate_limited(Route::backend("GET /v1/users/*"), 2))] {
        ctx.env.mock().faults().inject(fault);
        let me = ctx.sign_in("bapi-down")?;
        let result = call_sync(ctx, &me.session.id).await;
        ctx.env.mock().faults().clear();
        let Some((sent, got)) = result? else { return Ok(Outcome::not_applicable(NO_SYNC)) };
        let sent = format!("{sent} while the Backend API answers {label}");
        match got.status {
            401 | 403 => return Ok(Outcome::fail(sent, Some(got), "a Backend API outage surfaced as an auth failure: the SPA signs the user out or loops")),
            429 | 502..=504 => {}
            s if (200..300).contains(&s) => {}
            _ => return Ok(Outcome::fail(sent, Some(got), "expected a retryable 503 (with Retry-After) or 429")),
        }
    }
    Ok(Outcome::pass("Backend API 503 and 429 during sync answered with retryable statuses, never 401"))
});
