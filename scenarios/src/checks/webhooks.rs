//! Svix-signed webhooks: genuine events applied, forged ones refused without a DB change,
//! a redelivered message applied once.

use std::time::Duration;

use mock_clerk::webhooks::{Endpoint, Forgery, WebhookEvent};
use mock_clerk::{MockClerk, NewUser};

use super::body;
use crate::ctx::Ctx;
use crate::scenario::Outcome;
use crate::StepError;

const WAIT: Duration = Duration::from_secs(15);

fn endpoint(ctx: &Ctx) -> Result<Option<Endpoint>, StepError> {
    let Some(path) = ctx.env.profile().webhook_path.as_ref().map(|p| p.get().clone()) else { return Ok(None) };
    let url = format!("{}{path}", ctx.env.backend_url().as_str().trim_end_matches('/'));
    let ep =
        ctx.env.mock().webhooks().endpoint(&url).events(["user.created", "user.updated", "user.deleted"]).add().map_err(|e| StepError::Other(e.to_string()))?;
    Ok(Some(ep))
}

fn done(ctx: &Ctx, ep: &Endpoint) {
    let _ = ctx.env.mock().webhooks().remove_endpoint(&ep.id);
}

const NO_WEBHOOKS: &str = "the profile has no webhook_path";

async fn delivered(ctx: &Ctx, event_type: &str, object_id: &str) -> Result<Result<(), String>, StepError> {
    let hooks = ctx.env.mock().webhooks();
    let message = hooks.wait_for_event_about(event_type, object_id, WAIT).await.map_err(|e| StepError::Other(e.to_string()))?;
    Ok(match ctx.timed(hooks.wait_delivered(&message.id, WAIT)).await {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "{event_type} {} was not accepted: {e}; attempts: {}",
            message.id,
            hooks.attempts(&message.id).iter().map(mock_clerk::webhooks::Attempt::summary).collect::<Vec<_>>().join(" | ")
        )),
    })
}

body!(user_events_applied, |ctx| {
    let Some(ep) = endpoint(ctx)? else { return Ok(Outcome::not_applicable(NO_WEBHOOKS)) };
    let result = lifecycle(ctx).await;
    done(ctx, &ep);
    result
});

async fn lifecycle(ctx: &mut Ctx) -> Result<Outcome, StepError> {
    let user = ctx.env.mock().create_user(Ctx::new_user("webhook"))?;
    if let Err(problem) = delivered(ctx, "user.created", &user.id).await? {
        return Ok(Outcome::fail("user.created", None, problem));
    }
    if ctx.env.synced_user(&user.id).await?.is_none() {
        return Ok(Outcome::fail("user.created (accepted with 2xx)", None, "no row for the user after user.created was accepted"));
    }
    ctx.env.mock().store().update_user(&user.id, |u| u.first_name = Some("Renamed".into()))?;
    if let Err(problem) = delivered(ctx, "user.updated", &user.id).await? {
        return Ok(Outcome::fail("user.updated", None, problem));
    }
    let row = ctx.env.synced_user(&user.id).await?;
    if row.as_ref().and_then(|r| r.first_name.as_deref()) != Some("Renamed") {
        return Ok(Outcome::fail("user.updated with first_name = Renamed", None, format!("the row was not updated: {row:?}")));
    }
    ctx.env.mock().store().delete_user(&user.id)?;
    if let Err(problem) = delivered(ctx, "user.deleted", &user.id).await? {
        return Ok(Outcome::fail("user.deleted", None, problem));
    }
    Ok(Outcome::pass("user.created, user.updated and user.deleted accepted; created and updated rows checked"))
}

body!(forged_deliveries_rejected, |ctx| {
    let Some(ep) = endpoint(ctx)? else { return Ok(Outcome::not_applicable(NO_WEBHOOKS)) };
    let other = MockClerk::start().await?;
    let mut outcome = Outcome::pass("bad signature, wrong secret, stale timestamp, missing signature and tampered body: all refused, no row written");
    for forgery in [Forgery::BadSignature, Forgery::WrongSecret, Forgery::StaleTimestamp, Forgery::MissingSignature, Forgery::TamperedBody] {
        let user = other.create_user(NewUser::with_email(&format!("forged-{}@harness.test", mock_clerk::ids::base62(8).to_lowercase())))?;
        let hooks = ctx.env.mock().webhooks().clone();
        let attempt = ctx.timed(hooks.forge(forgery, &ep, WebhookEvent::new("user.created", user.to_json()))).await;
        let row = ctx.env.synced_user(&user.id).await?;
        let status = attempt.status.unwrap_or(0);
        let sent = format!("user.created with {forgery:?}");
        let got = Some(crate::scenario::Exchange { status, body: attempt.response_body.clone().unwrap_or_default(), headers: vec![] });
        if (200..300).contains(&status) || row.is_some() {
            outcome = Outcome::fail(
                sent,
                got,
                format!(
                    "a forged delivery ({forgery:?}) was accepted{}: the signature is not verified",
                    if row.is_some() { " and written to the database" } else { "" }
                ),
            );
            break;
        }
        if status >= 500 || status == 0 {
            outcome = Outcome::fail(sent, got, format!("expected a 4xx refusal, got {}", attempt.error.clone().unwrap_or_else(|| status.to_string())));
            break;
        }
    }
    done(ctx, &ep);
    Ok(outcome)
});

body!(redelivery_applied_once, |ctx| {
    let Some(ep) = endpoint(ctx)? else { return Ok(Outcome::not_applicable(NO_WEBHOOKS)) };
    let result = redelivery(ctx).await;
    done(ctx, &ep);
    result
});

async fn redelivery(ctx: &mut Ctx) -> Result<Outcome, StepError> {
    let hooks = ctx.env.mock().webhooks().clone();
    let user = ctx.env.mock().create_user(Ctx::new_user("redeliver"))?;
    if let Err(problem) = delivered(ctx, "user.created", &user.id).await? {
        return Ok(Outcome::fail("user.created", None, problem));
    }
    ctx.env.mock().store().update_user(&user.id, |u| u.first_name = Some("First".into()))?;
    let first = hooks
        .wait_for_message("first user.updated", WAIT, |m| m.event_type == "user.updated" && m.body.contains("\"First\""))
        .await
        .map_err(|e| StepError::Other(e.to_string()))?;
    ctx.timed(hooks.wait_delivered(&first.id, WAIT)).await.map_err(|e| StepError::Other(e.to_string()))?;
    ctx.env.mock().store().update_user(&user.id, |u| u.first_name = Some("Second".into()))?;
    let second = hooks
        .wait_for_message("second user.updated", WAIT, |m| m.event_type == "user.updated" && m.body.contains("\"Second\""))
        .await
        .map_err(|e| StepError::Other(e.to_string()))?;
    ctx.timed(hooks.wait_delivered(&second.id, WAIT)).await.map_err(|e| StepError::Other(e.to_string()))?;
    let attempts = ctx.timed(hooks.redeliver(&first.id)).await.map_err(|e| StepError::Other(e.to_string()))?;
    let row = ctx.env.synced_user(&user.id).await?;
    let status = attempts.first().and_then(|a| a.status).unwrap_or(0);
    Ok(match row.as_ref().and_then(|r| r.first_name.as_deref()) {
        Some("Second") if status < 500 => Outcome::pass(format!("the redelivered {} (same svix-id) answered {status} and changed nothing", first.id)),
        name => Outcome::fail(
            format!("user.updated {} (first_name First) redelivered with the same svix-id after {} (Second)", first.id, second.id),
            None,
            format!("the message was applied twice: first_name is now {name:?} (answer {status}); deduplicate on svix-id"),
        ),
    })
}
