//! Svix-signed webhooks: genuine events applied, forged ones refused without a DB change,
//! a redelivered message applied once.

use std::time::Duration;

use mock_clerk::webhooks::{Attempt, Endpoint, Forgery, Message, WebhookEvent};
use mock_clerk::{MockClerk, NewUser};

use super::body;
use crate::ctx::Ctx;
use crate::scenario::{Exchange, Outcome};
use crate::StepError;

const WAIT: Duration = Duration::from_secs(15);

fn endpoint(ctx: &Ctx) -> Result<Option<Endpoint>, StepError> {
    let Some(path) = ctx.env.profile().webhook_path.as_ref().map(|p| p.get().clone()) else { return Ok(None) };
    let url = format!("{}{path}", ctx.env.backend_url().as_str().trim_end_matches('/'));
    let ep =
        ctx.env.mock().webhooks().endpoint(&url).events(["user.created", "user.updated", "user.deleted"]).add().map_err(|e| StepError::Other(e.to_string()))?;
    Ok(Some(ep))
}

/// Runs `check` with an endpoint registered for the profile's webhook path, and removes the
/// endpoint afterwards whatever `check` returned (`not_applicable` without a webhook path).
async fn with_endpoint(ctx: &mut Ctx, check: impl AsyncFnOnce(&mut Ctx, &Endpoint) -> Result<Outcome, StepError>) -> Result<Outcome, StepError> {
    let Some(ep) = endpoint(ctx)? else { return Ok(Outcome::not_applicable(NO_WEBHOOKS)) };
    let result = check(ctx, &ep).await;
    let _ = ctx.env.mock().webhooks().remove_endpoint(&ep.id);
    result
}

const NO_WEBHOOKS: &str = "the profile has no webhook_path";

/// Waits for the genuine delivery of the `event_type` message about `object_id` and judges
/// its first attempt at once: 2xx is delivered; a 3xx or 4xx is the backend refusing a
/// correctly signed message (Svix would retry it for days, to no avail) — no need to wait
/// through the retry schedule; a 5xx or no answer gets the schedule's next attempt (5 s
/// later) within [`WAIT`]. The problem lists only this message's attempts.
async fn delivered(ctx: &Ctx, event_type: &str, object_id: &str) -> Result<Result<(), Refused>, StepError> {
    let hooks = ctx.env.mock().webhooks();
    let message = hooks.wait_for_event_about(event_type, object_id, WAIT).await.map_err(|e| StepError::Other(e.to_string()))?;
    message_delivered(ctx, &message).await
}

/// [`delivered`] for a message already found.
async fn message_delivered(ctx: &Ctx, message: &Message) -> Result<Result<(), Refused>, StepError> {
    let hooks = ctx.env.mock().webhooks();
    let event_type = message.event_type.as_str();
    let first = match ctx.timed(hooks.wait_first_attempt(&message.id, WAIT)).await {
        Ok(first) => first,
        Err(e) => return Ok(Err(Refused { problem: format!("{event_type} {} got no delivery attempt: {e}", message.id), got: None })),
    };
    if let Some(problem) = judge_first_attempt(event_type, &first) {
        return Ok(Err(Refused { problem, got: Some(answer(&first)) }));
    }
    if first.succeeded() {
        return Ok(Ok(()));
    }
    Ok(match ctx.timed(hooks.wait_delivered(&message.id, WAIT)).await {
        Ok(_) => Ok(()),
        Err(e) => Err(Refused {
            problem: format!("{event_type} {} was not accepted: {e}; its attempts:\n{}", message.id, hooks.attempts_summary(&message.id)),
            got: hooks.attempts(&message.id).last().map(answer),
        }),
    })
}

/// Why a genuine delivery was not accepted, and the last answer.
struct Refused {
    problem: String,
    got: Option<Exchange>,
}

/// An attempt's answer as an [`Exchange`] (status 0: no answer).
fn answer(attempt: &Attempt) -> Exchange {
    Exchange { status: attempt.status.unwrap_or(0), body: attempt.response_body.clone().unwrap_or_default(), ..Exchange::default() }
}

/// A genuine delivery's first attempt answered with a 3xx or 4xx: the problem, at once.
pub(crate) fn judge_first_attempt(event_type: &str, first: &Attempt) -> Option<String> {
    let status = first.status?;
    let body = first.response_body.as_deref().unwrap_or_default();
    match status {
        300..=399 => Some(format!(
            "the correctly signed {event_type} was answered {status} (a redirect): Svix never follows redirects, so every delivery fails — \
             register the exact URL (e.g. with its trailing slash) as the profile's webhook_path"
        )),
        400..=499 => Some(format!("the correctly signed {event_type} was refused with {status}: {}", crate::pages::excerpt(status, body, 200))),
        _ => None,
    }
}

body!(user_events_applied, |ctx| { with_endpoint(ctx, lifecycle).await });

async fn lifecycle(ctx: &mut Ctx, _: &Endpoint) -> Result<Outcome, StepError> {
    let user = ctx.env.mock().create_user(Ctx::new_user("webhook"))?;
    if let Err(r) = delivered(ctx, "user.created", &user.id).await? {
        return Ok(Outcome::fail("user.created", r.got, r.problem));
    }
    if ctx.env.synced_user(&user.id).await?.is_none() {
        return Ok(Outcome::fail("user.created (accepted with 2xx)", None, "no row for the user after user.created was accepted"));
    }
    ctx.env.mock().store().update_user(&user.id, |u| u.first_name = Some("Renamed".into()))?;
    if let Err(r) = delivered(ctx, "user.updated", &user.id).await? {
        return Ok(Outcome::fail("user.updated", r.got, r.problem));
    }
    let row = ctx.env.synced_user(&user.id).await?;
    if row.as_ref().and_then(|r| r.first_name.as_deref()) != Some("Renamed") {
        return Ok(Outcome::fail("user.updated with first_name = Renamed", None, format!("the row was not updated: {row:?}")));
    }
    ctx.env.mock().store().delete_user(&user.id)?;
    if let Err(r) = delivered(ctx, "user.deleted", &user.id).await? {
        return Ok(Outcome::fail("user.deleted", r.got, r.problem));
    }
    Ok(Outcome::pass("user.created, user.updated and user.deleted accepted; created and updated rows checked"))
}

body!(forged_deliveries_rejected, |ctx| { with_endpoint(ctx, forged).await });

async fn forged(ctx: &mut Ctx, ep: &Endpoint) -> Result<Outcome, StepError> {
    let other = MockClerk::start().await?;
    let mut outcome = Outcome::pass("bad signature, wrong secret, stale timestamp, missing signature and tampered body: all refused, no row written");
    for forgery in [Forgery::BadSignature, Forgery::WrongSecret, Forgery::StaleTimestamp, Forgery::MissingSignature, Forgery::TamperedBody] {
        let user = other.create_user(NewUser::with_email(&format!("forged-{}@harness.test", mock_clerk::base62(8).to_lowercase())))?;
        let hooks = ctx.env.mock().webhooks().clone();
        let attempt = ctx.timed(hooks.forge(forgery, ep, WebhookEvent::new("user.created", user.to_json()))).await;
        let row = ctx.env.synced_user(&user.id).await?;
        let status = attempt.status.unwrap_or(0);
        let sent = format!("user.created with {forgery:?}");
        let got = Some(Exchange { status, body: attempt.response_body.clone().unwrap_or_default(), ..Default::default() });
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
        if (300..400).contains(&status) {
            // The delivery never reached a handler: nothing about signatures can be judged.
            outcome = Outcome::error(format!(
                "the webhook URL answered {status} (a redirect) to a forged delivery: the signature check was never reached — \
                 register the exact URL (e.g. with its trailing slash) as the profile's webhook_path"
            ));
            break;
        }
        if status >= 500 || status == 0 {
            outcome = Outcome::fail(sent, got, format!("expected a 4xx refusal, got {}", attempt.error.clone().unwrap_or_else(|| status.to_string())));
            break;
        }
    }
    Ok(outcome)
}

body!(redelivery_applied_once, |ctx| { with_endpoint(ctx, redelivery).await });

/// The fix when a precondition delivery of `webhooks.redelivery_once` fails: that is the
/// `webhooks.user_events` problem, not an idempotency one.
const SYNC_FIX: &str = "genuine deliveries must be accepted with 2xx: verify with svix's Webhook(secret).verify(body, headers) and upsert from data";

async fn redelivery(ctx: &mut Ctx, _: &Endpoint) -> Result<Outcome, StepError> {
    let hooks = ctx.env.mock().webhooks().clone();
    let user = ctx.env.mock().create_user(Ctx::new_user("redeliver"))?;
    let precondition = |step: &str, r: Refused| {
        Outcome::fail(format!("{step} (before any redelivery)"), r.got, format!("{} — so the redelivery could not be tried", r.problem))
            .classed("webhook-sync", SYNC_FIX)
    };
    if let Err(r) = delivered(ctx, "user.created", &user.id).await? {
        return Ok(precondition("user.created", r));
    }
    ctx.env.mock().store().update_user(&user.id, |u| u.first_name = Some("First".into()))?;
    let first = hooks
        .wait_for_message("first user.updated", WAIT, |m| m.event_type == "user.updated" && m.body.contains("\"First\"") && m.body.contains(user.id.as_str()))
        .await
        .map_err(|e| StepError::Other(e.to_string()))?;
    if let Err(r) = message_delivered(ctx, &first).await? {
        return Ok(precondition("user.updated (first_name First)", r));
    }
    ctx.env.mock().store().update_user(&user.id, |u| u.first_name = Some("Second".into()))?;
    let second = hooks
        .wait_for_message("second user.updated", WAIT, |m| m.event_type == "user.updated" && m.body.contains("\"Second\"") && m.body.contains(user.id.as_str()))
        .await
        .map_err(|e| StepError::Other(e.to_string()))?;
    if let Err(r) = message_delivered(ctx, &second).await? {
        return Ok(precondition("user.updated (first_name Second)", r));
    }
    let attempts = ctx.timed(hooks.redeliver(&first.id)).await.map_err(|e| StepError::Other(e.to_string()))?;
    let row = ctx.env.synced_user(&user.id).await?;
    let sent = format!("user.updated {} (first_name First) redelivered with the same svix-id after {} (Second)", first.id, second.id);
    Ok(judge_redelivery(sent, row.as_ref().and_then(|r| r.first_name.as_deref()), attempts.first()))
}

/// A message redelivered with the same `svix-id` after a newer one: the row must keep the
/// newer value, and the answer must be a 2xx — Svix counts anything else as a failed
/// delivery and retries it through its schedule (a 4xx "duplicate" is a `warn`, a 5xx a
/// crash on the duplicate). No answer at all (status 0) is never a pass.
pub(crate) fn judge_redelivery(sent: String, first_name: Option<&str>, attempt: Option<&Attempt>) -> Outcome {
    let Some(attempt) = attempt else { return Outcome::error("the redelivery made no attempt (the endpoint was removed?)") };
    let got = Some(answer(attempt));
    let Some(status) = attempt.status else {
        let why = attempt.error.clone().unwrap_or_else(|| "no answer".into());
        return Outcome::fail(sent, got, format!("the redelivered message got no answer ({why}): a duplicate must be answered 2xx and change nothing"));
    };
    match first_name {
        Some("Second") if (200..300).contains(&status) => Outcome::pass(format!("the redelivered message (same svix-id) answered {status} and changed nothing")),
        Some("Second") if status < 500 => Outcome::warn(
            sent,
            got,
            format!("the duplicate changed nothing but was answered {status}: Svix counts a non-2xx as a failed delivery and retries it for days (and may disable the endpoint)"),
        ),
        Some("Second") => Outcome::fail(sent, got, format!("the duplicate changed nothing but crashed the handler ({status}): answer 2xx for a svix-id already processed")),
        name => Outcome::fail(sent, got, format!("the message was applied twice: first_name is now {name:?} (answer {status}); deduplicate on svix-id")),
    }
}

body!(out_of_order, |ctx| {
    if ctx.env.profile().webhook_path.is_none() {
        return Ok(Outcome::not_applicable(NO_WEBHOOKS));
    }
    // The user and its newest state exist in Clerk before the endpoint is registered: the
    // deliveries are only the three sent below, in the order chosen here.
    let user = ctx.env.mock().create_user(Ctx::new_user("ooo"))?;
    let created = user.to_json();
    let newest = ctx.env.mock().store().update_user(&user.id, |u| u.first_name = Some("Newer".into()))?;
    let t0 = user.updated_at;
    let with = |name: &str, updated_at: i64| {
        let mut v = newest.to_json();
        v["first_name"] = serde_json::json!(name);
        v["updated_at"] = serde_json::json!(updated_at);
        v
    };
    let newer = with("Newer", newest.updated_at.max(t0 + 2000));
    let older = with("Older", t0 + 1000);
    // The store publishes its own events in the background: once its user.updated is in the
    // message log (sent to no endpoint), none of them can reach the endpoint registered next.
    ctx.env.mock().webhooks().wait_for_event_about("user.updated", &user.id, WAIT).await.map_err(|e| StepError::Other(e.to_string()))?;
    with_endpoint(ctx, async |ctx, _| out_of_order_deliveries(ctx, created, newer, older).await).await
});

async fn out_of_order_deliveries(ctx: &mut Ctx, created: serde_json::Value, newer: serde_json::Value, older: serde_json::Value) -> Result<Outcome, StepError> {
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let hooks = ctx.env.mock().webhooks().clone();
    for (step, event) in
        [("user.created", WebhookEvent::new("user.created", created)), ("user.updated (Newer, updated_at T+2 s)", WebhookEvent::new("user.updated", newer))]
    {
        let message = hooks.send_event(event);
        if let Err(r) = message_delivered(ctx, &message).await? {
            return Ok(Outcome::fail(format!("{step} (before the older one)"), r.got, r.problem).classed("webhook-sync", SYNC_FIX));
        }
    }
    let message = hooks.send_event(WebhookEvent::new("user.updated", older));
    let attempt = ctx.timed(hooks.wait_first_attempt(&message.id, WAIT)).await.map_err(|e| StepError::Other(e.to_string()))?;
    let row = ctx.env.synced_user(&id).await?;
    let sent = "user.created, user.updated (first_name Newer, updated_at T+2 s), then user.updated (first_name Older, updated_at T+1 s)".to_string();
    Ok(judge_out_of_order(sent, row.as_ref().and_then(|r| r.first_name.as_deref()), &attempt))
}

/// `webhooks.out_of_order`: after the older `user.updated` arrived last, the row must keep
/// the newer data; the older delivery should still be answered 2xx.
pub(crate) fn judge_out_of_order(sent: String, first_name: Option<&str>, attempt: &Attempt) -> Outcome {
    let got = Some(answer(attempt));
    match (first_name, attempt.status) {
        (Some("Older"), status) => Outcome::fail(
            sent,
            got,
            format!("the older data won: first_name is Older after the stale user.updated (answered {status:?}) — the backend ignores data.updated_at"),
        ),
        (Some("Newer"), Some(s)) if (200..300).contains(&s) => {
            Outcome::pass(format!("the stale user.updated was answered {s} and the row kept the newer data"))
        }
        (Some("Newer"), Some(s)) if s < 500 => Outcome::warn(
            sent,
            got,
            format!(
                "the row kept the newer data, but the stale delivery was answered {s}: Svix retries every non-2xx for about a day — acknowledge it with 2xx"
            ),
        ),
        (Some("Newer"), _) => {
            Outcome::fail(sent, got, "the row kept the newer data, but the stale delivery crashed the handler (or got no answer): answer 2xx and skip it")
        }
        (name, _) => Outcome::fail(sent, got, format!("the row does not hold either update: first_name {name:?}")),
    }
}

/// Svix retries `webhooks.poison_retry` sends after a failed first attempt (same `svix-id`).
pub const POISON_RETRIES: usize = 2;

body!(poison_retry, |ctx| { with_endpoint(ctx, poison).await });

async fn poison(ctx: &mut Ctx, _: &Endpoint) -> Result<Outcome, StepError> {
    let hooks = ctx.env.mock().webhooks().clone();
    let mut cases = vec![];
    if ctx.env.profile().user.stores(harness::UserField::Email) {
        let owner = ctx.env.mock().create_user(Ctx::new_user("poison-owner"))?;
        let other = ctx.env.mock().create_user(Ctx::new_user("poison-other"))?;
        for u in [&owner, &other] {
            if let Err(r) = delivered(ctx, "user.created", &u.id).await? {
                return Ok(Outcome::fail("user.created (before the poison delivery)", r.got, r.problem).classed("webhook-sync", SYNC_FIX));
            }
        }
        let mut payload = other.to_json();
        payload["email_addresses"][0]["email_address"] = serde_json::json!(owner.primary_email().unwrap_or_default());
        payload["updated_at"] = serde_json::json!(other.updated_at + 1000);
        cases.push(("user.updated giving a user the email of another user's row", WebhookEvent::new("user.updated", payload)));
    }
    let stranger = format!("user_{}", mock_clerk::base62(27));
    cases.push((
        "user.deleted of a user the backend never stored",
        WebhookEvent::new("user.deleted", serde_json::json!({"deleted": true, "id": stranger, "object": "user"})),
    ));
    let mut notes = vec![];
    let mut worst: Option<Outcome> = None;
    for (what, event) in cases {
        let message = hooks.send_event(event);
        let first = ctx.timed(hooks.wait_first_attempt(&message.id, WAIT)).await.map_err(|e| StepError::Other(e.to_string()))?;
        let mut attempts = vec![first];
        while !attempts.last().is_some_and(Attempt::succeeded) && attempts.len() <= POISON_RETRIES {
            let again = ctx.timed(hooks.redeliver(&message.id)).await.map_err(|e| StepError::Other(e.to_string()))?;
            attempts.extend(again);
        }
        match judge_poison(what, &attempts) {
            Outcome::Pass(note) => notes.push(note),
            other if worst.as_ref().is_none_or(|w| matches!(w, Outcome::Warn(_))) => worst = Some(other),
            _ => {}
        }
    }
    Ok(worst.unwrap_or_else(|| Outcome::pass(notes.join("; "))))
}

/// `webhooks.poison_retry`, one delivery and its retries: a 2xx ends it (pass); a 4xx on
/// every attempt is a warn (Svix retries any non-2xx, docs.svix.com/retries); a 5xx or no
/// answer on every attempt a fail.
pub(crate) fn judge_poison(what: &str, attempts: &[Attempt]) -> Outcome {
    let statuses: Vec<String> = attempts.iter().map(|a| a.status.map_or_else(|| "no answer".to_string(), |s| s.to_string())).collect();
    let sent = format!("{what}, then {POISON_RETRIES} Svix retries (same svix-id)");
    let last = attempts.last().map(answer);
    if attempts.iter().any(Attempt::succeeded) {
        return Outcome::pass(format!("{what}: acknowledged ({})", statuses.join(", ")));
    }
    if attempts.iter().all(|a| a.status.is_some_and(|s| (400..500).contains(&s))) {
        return Outcome::warn(
            sent,
            last,
            format!(
                "answered {} to a delivery that can never apply: Svix retries every non-2xx (a 4xx too) for about a day and then disables the endpoint — acknowledge it with 2xx and log it",
                statuses.join(", ")
            ),
        );
    }
    Outcome::fail(
        sent,
        last,
        format!(
            "answered {} on every attempt to a delivery that can never apply: it fails on every Svix retry until the endpoint is disabled",
            statuses.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mock_clerk::webhooks::{Attempt, AttemptKind, SentRequest};

    use super::*;
    use crate::scenario::Verdict;

    fn attempt(status: Option<u16>, body: &str) -> Attempt {
        Attempt {
            message_id: "msg_1".into(),
            event_type: "user.created".into(),
            endpoint_id: "ep_1".into(),
            url: "http://127.0.0.1:1/api/webhooks/clerk".into(),
            attempt: 1,
            kind: AttemptKind::Scheduled,
            at_ms: 0,
            status,
            error: status.is_none().then(|| "connection failed: connection refused".to_string()),
            response_body: status.map(|_| body.to_string()),
            latency: Duration::from_millis(3),
            request: SentRequest { headers: vec![], body: "{}".into() },
        }
    }

    fn verdict(o: &Outcome) -> Verdict {
        match o {
            Outcome::Pass(_) => Verdict::Pass,
            Outcome::Warn(_) => Verdict::Warn,
            Outcome::Fail(_) => Verdict::Fail,
            Outcome::Error(_) => Verdict::Error,
            Outcome::NotApplicable(_) => Verdict::NotApplicable,
        }
    }

    #[test]
    fn a_redelivery_without_an_answer_never_passes() {
        let o = judge_redelivery("redelivery".into(), Some("Second"), Some(&attempt(None, "")));
        assert_eq!(verdict(&o), Verdict::Fail, "{o:?}");
        assert_eq!(verdict(&judge_redelivery("redelivery".into(), Some("Second"), None)), Verdict::Error);
    }

    #[test]
    fn a_redelivery_is_judged_by_row_and_status() {
        assert_eq!(verdict(&judge_redelivery("r".into(), Some("Second"), Some(&attempt(Some(200), "{}")))), Verdict::Pass);
        assert_eq!(verdict(&judge_redelivery("r".into(), Some("Second"), Some(&attempt(Some(409), "duplicate")))), Verdict::Warn);
        assert_eq!(verdict(&judge_redelivery("r".into(), Some("Second"), Some(&attempt(Some(500), "")))), Verdict::Fail);
        let twice = judge_redelivery("r".into(), Some("First"), Some(&attempt(Some(200), "{}")));
        assert!(matches!(&twice, Outcome::Fail(f) if f.problem.contains("applied twice")), "{twice:?}");
    }

    #[test]
    fn a_first_attempt_answered_4xx_or_3xx_is_judged_at_once_and_5xx_waits_for_the_retry() {
        let csrf =
            judge_first_attempt("user.created", &attempt(Some(403), "<h1>Forbidden <span>(403)</span></h1><p>CSRF verification failed. Request aborted.</p>"));
        assert!(csrf.as_deref().is_some_and(|p| p.contains("refused with 403") && p.contains("CSRF verification failed")), "{csrf:?}");
        let moved = judge_first_attempt("user.created", &attempt(Some(301), ""));
        assert!(moved.as_deref().is_some_and(|p| p.contains("redirect") && p.contains("trailing slash")), "{moved:?}");
        assert_eq!(judge_first_attempt("user.created", &attempt(Some(503), "")), None);
        assert_eq!(judge_first_attempt("user.created", &attempt(None, "")), None);
        assert_eq!(judge_first_attempt("user.created", &attempt(Some(200), "")), None);
    }

    #[test]
    fn a_poison_delivery_is_judged_over_all_its_attempts() {
        let refused = [attempt(Some(409), "conflict"), attempt(Some(409), "conflict"), attempt(Some(409), "conflict")];
        let o = judge_poison("user.updated", &refused);
        assert!(matches!(&o, Outcome::Warn(f) if f.problem.contains("Svix retries every non-2xx")), "{o:?}");
        assert_eq!(verdict(&judge_poison("user.updated", &[attempt(Some(500), ""), attempt(Some(200), "{}")])), Verdict::Pass);
        assert_eq!(verdict(&judge_poison("user.updated", &[attempt(Some(500), ""), attempt(None, ""), attempt(Some(409), "")])), Verdict::Fail);
    }

    #[test]
    fn a_stale_delivery_refused_with_4xx_is_a_warning_when_the_row_kept_the_newer_data() {
        assert_eq!(verdict(&judge_out_of_order("s".into(), Some("Newer"), &attempt(Some(409), "stale"))), Verdict::Warn);
        assert_eq!(verdict(&judge_out_of_order("s".into(), Some("Older"), &attempt(Some(200), ""))), Verdict::Fail);
        assert_eq!(verdict(&judge_out_of_order("s".into(), Some("Newer"), &attempt(None, ""))), Verdict::Fail);
    }

    #[test]
    fn a_failed_precondition_step_is_classed_as_webhook_sync_not_idempotency() {
        let o = Outcome::fail("user.created", None, "refused").classed("webhook-sync", SYNC_FIX);
        assert!(matches!(&o, Outcome::Fail(f) if f.class == Some("webhook-sync") && f.fix.as_deref() == Some(SYNC_FIX)), "{o:?}");
    }
}
