//! Webhooks: Svix signing checked by the `svix` crate's own verifier, retries, receivers
//! that are down or hang, forged deliveries, BAPI-driven events validated against Clerk's
//! webhook OpenAPI spec.

#[path = "webhooks/schema.rs"]
mod schema;

use std::time::Duration;

use anyhow::Context as _;
use mock_clerk::webhooks::{AttemptKind, Forgery, VerifyError, WebhookError, WebhookEvent, WebhookSecret, WebhookSettings};
use mock_clerk::{MockClerk, NewUser, SessionStatus};
use rstest::rstest;
use serde_json::{json, Value};
use svix::webhooks::{Webhook, WebhookError as SvixError};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const WITHIN: Duration = Duration::from_secs(10);

fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("mock_clerk=debug").with_test_writer().try_init();
    }
}

/// Svix's schedule in ten-thousandths (0, 0.5 ms, 30 ms, 180 ms, …), a short timeout.
fn fast(timeout: Duration) -> WebhookSettings {
    WebhookSettings { timeout, ..WebhookSettings::scaled(1e-4) }
}

async fn mock_with(settings: WebhookSettings) -> anyhow::Result<MockClerk> {
    init_tracing();
    Ok(MockClerk::builder().webhook_settings(settings).start().await?)
}

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(status)).mount(&server).await;
    server
}

fn bapi(mock: &MockClerk) -> (reqwest::Client, String, String) {
    (reqwest::Client::new(), mock.api_url(), format!("Bearer {}", mock.instance().secret_key().expose()))
}

fn verify_with_svix(secret: &str, request: &wiremock::Request) -> Result<(), SvixError> {
    Webhook::new(secret)?.verify(&request.body, &request.headers)
}

#[test]
fn reproduces_the_svix_test_vector() -> anyhow::Result<()> {
    let secret: WebhookSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".parse()?;
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let expected = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
    assert_eq!(secret.sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1_649_367_553, body), expected);
    let svix = Webhook::new(secret.expose())?.sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1_649_367_553, body)?;
    assert_eq!(svix, expected, "the svix crate agrees");
    Ok(())
}

#[tokio::test]
async fn every_delivered_message_verifies_with_the_svix_crate() -> anyhow::Result<()> {
    let mock = mock_with(fast(Duration::from_secs(5))).await?;
    let server = receiver(204).await;
    let endpoint = mock.webhooks().add_endpoint(&server.uri())?;
    assert_eq!(endpoint.secret.expose(), mock.instance().webhook_secret(), "defaults to the instance's secret");

    let user = mock.create_user(NewUser::with_email("ada@example.com"))?;
    let session = mock.create_session(&user.id)?;
    mock.store().set_session_status(&session.id, SessionStatus::Revoked)?;
    let hooks = mock.webhooks();
    let on_demand = hooks.send_event(WebhookEvent::new("user.updated", user.to_json()).http_request("203.0.113.7", "curl/8"));

    let mut ids = vec![on_demand.id.clone()];
    for t in ["user.created", "session.created", "session.revoked"] {
        ids.push(hooks.wait_for_event(t, WITHIN).await?.id);
    }
    for id in &ids {
        let attempts = hooks.wait_delivered(id, WITHIN).await?;
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0].status, Some(204));
    }
    let received = server.received_requests().await.context("recording is on")?;
    assert_eq!(received.len(), ids.len());
    for request in &received {
        verify_with_svix(endpoint.secret.expose(), request).map_err(|e| anyhow::anyhow!("svix rejected a genuine delivery: {e}"))?;
        let svix_id = request.headers.get("svix-id").context("svix-id")?.to_str()?;
        assert!(ids.iter().any(|id| id == svix_id) && svix_id.starts_with("msg_"), "{svix_id}");
        assert!(request.headers.get("svix-signature").context("signature")?.to_str()?.starts_with("v1,"));
        assert_eq!(request.headers.get("content-type").context("content-type")?, "application/json");
        let envelope: Value = request.body_json()?;
        assert_eq!(envelope["object"], "event");
        assert_eq!(envelope["instance_id"], mock.instance().id());
        assert!(envelope["timestamp"].as_i64().is_some_and(|t| t > 1_600_000_000_000), "ms: {}", envelope["timestamp"]);
    }
    let on_demand_envelope = on_demand.payload();
    assert_eq!(on_demand_envelope["event_attributes"], json!({"http_request": {"client_ip": "203.0.113.7", "user_agent": "curl/8"}}));
    Ok(())
}

#[tokio::test]
async fn an_endpoint_gets_only_its_events_signed_with_its_own_secret() -> anyhow::Result<()> {
    let mock = mock_with(fast(Duration::from_secs(5))).await?;
    let server = receiver(200).await;
    let own = WebhookSecret::random();
    let endpoint = mock.webhooks().endpoint(&server.uri()).secret(own.expose()).events(["user.deleted"]).add()?;
    let user = mock.create_user(NewUser::with_email("grace@example.com"))?;
    mock.store().delete_user(&user.id)?;
    let deleted = mock.webhooks().wait_for_event("user.deleted", WITHIN).await?;
    mock.webhooks().wait_delivered(&deleted.id, WITHIN).await?;
    let created = mock.webhooks().wait_for_event("user.created", WITHIN).await?;
    assert!(created.endpoints.is_empty(), "filtered out");
    assert!(matches!(mock.webhooks().wait_delivered(&created.id, WITHIN).await, Err(WebhookError::NoEndpoint(_))));

    let received = server.received_requests().await.context("recording is on")?;
    assert_eq!(received.len(), 1);
    verify_with_svix(endpoint.secret.expose(), &received[0])?;
    assert!(matches!(verify_with_svix(mock.instance().webhook_secret(), &received[0]), Err(SvixError::InvalidSignature)));
    assert_eq!(received[0].body_json::<Value>()?["data"], json!({"object": "user", "id": user.id, "deleted": true}));
    Ok(())
}

/// How the svix crate refuses a forged delivery.
#[derive(Debug, PartialEq)]
enum Refused {
    Signature,
    TooOld,
    TooNew,
    Missing(&'static str),
}

#[rstest]
#[case::bad_signature(Forgery::BadSignature, Refused::Signature, VerifyError::InvalidSignature)]
#[case::signed_with_another_secret(Forgery::WrongSecret, Refused::Signature, VerifyError::InvalidSignature)]
#[case::stale_timestamp(Forgery::StaleTimestamp, Refused::TooOld, VerifyError::TimestampTooOld)]
#[case::future_timestamp(Forgery::FutureTimestamp, Refused::TooNew, VerifyError::TimestampInFuture)]
#[case::missing_svix_id(Forgery::MissingId, Refused::Missing("id"), VerifyError::MissingHeader("svix-id"))]
#[case::missing_svix_timestamp(Forgery::MissingTimestamp, Refused::Missing("timestamp"), VerifyError::MissingHeader("svix-timestamp"))]
#[case::missing_svix_signature(Forgery::MissingSignature, Refused::Missing("signature"), VerifyError::MissingHeader("svix-signature"))]
#[case::body_changed_after_signing(Forgery::TamperedBody, Refused::Signature, VerifyError::InvalidSignature)]
#[tokio::test]
async fn each_forged_delivery_fails_the_svix_verifier_for_its_reason(
    #[case] forgery: Forgery,
    #[case] svix_says: Refused,
    #[case] ours_says: VerifyError,
) -> anyhow::Result<()> {
    let mock = mock_with(fast(Duration::from_secs(5))).await?;
    let server = receiver(200).await;
    let endpoint = mock.webhooks().add_endpoint(&server.uri())?;
    let user = mock.create_user(NewUser::with_email("eve@example.com"))?;
    let genuine = mock.webhooks().wait_for_event("user.created", WITHIN).await?;
    mock.webhooks().wait_delivered(&genuine.id, WITHIN).await?;

    let attempt = mock.webhooks().forge(forgery, &endpoint, &genuine).await;
    assert_eq!(attempt.kind, AttemptKind::Forged(forgery));
    assert_eq!(attempt.status, Some(200), "the receiver answered: {}", attempt.summary());
    let received = server.received_requests().await.context("recording is on")?;
    let forged = received.last().context("the forged request arrived")?;
    assert_eq!(forged.body, attempt.request.body.as_bytes(), "the attempt records what was sent");

    let refused = match verify_with_svix(endpoint.secret.expose(), forged) {
        Ok(()) => anyhow::bail!("svix accepted a {forgery:?} delivery"),
        Err(SvixError::InvalidSignature) => Refused::Signature,
        Err(SvixError::TimestampTooOldError) => Refused::TooOld,
        Err(SvixError::FutureTimestampError) => Refused::TooNew,
        Err(SvixError::MissingHeader(h)) => Refused::Missing(h),
        Err(other) => anyhow::bail!("svix refused {forgery:?} for an unintended reason: {other}"),
    };
    assert_eq!(refused, svix_says);
    let now = mock.clock().now_unix();
    assert_eq!(endpoint.secret.verify(&forged.headers, &forged.body, now), Err(ours_says), "our verifier agrees");
    if forgery == Forgery::TamperedBody {
        let body: Value = serde_json::from_slice(&forged.body)?;
        assert_ne!(body["data"]["id"], user.id.as_str(), "the object id was changed");
    }
    Ok(())
}

#[tokio::test]
async fn retries_on_failure_and_stops_on_the_first_2xx() -> anyhow::Result<()> {
    let mock = mock_with(fast(Duration::from_secs(5))).await?;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).up_to_n_times(2).with_priority(1).mount(&server).await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).expect(1).with_priority(2).mount(&server).await;
    mock.webhooks().add_endpoint(&server.uri())?;
    let message = mock.webhooks().send_event(WebhookEvent::new("user.created", json!({"object": "user", "id": "user_1"})));

    let attempts = mock.webhooks().wait_delivered(&message.id, WITHIN).await?;
    let statuses: Vec<_> = attempts.iter().map(|a| (a.attempt, a.status)).collect();
    assert_eq!(statuses, [(1, Some(500)), (2, Some(500)), (3, Some(200))]);
    let received = server.received_requests().await.context("recording is on")?;
    assert!(received.iter().all(|r| r.headers.get("svix-id").is_some_and(|v| v == message.id.as_str())), "one svix-id for every retry");
    // Settled: no 4th attempt is scheduled (it would come 30 min × 1e-4 = 180 ms later).
    mock.webhooks().wait_idle(WITHIN).await?;
    assert_eq!(mock.webhooks().attempts(&message.id).len(), 3, "stopped after the 2xx");
    Ok(())
}

#[tokio::test]
async fn gives_up_after_the_schedule_and_says_so() -> anyhow::Result<()> {
    let settings = WebhookSettings { schedule: vec![Duration::ZERO, Duration::from_millis(1), Duration::from_millis(1)], ..fast(Duration::from_secs(5)) };
    let mock = mock_with(settings).await?;
    let server = receiver(302).await;
    mock.webhooks().add_endpoint(&server.uri())?;
    let message = mock.webhooks().send_event(WebhookEvent::new("user.updated", json!({"object": "user", "id": "user_1"})));
    let failed = mock.webhooks().wait_failed_attempts(&message.id, 3, WITHIN).await?;
    assert!(failed.iter().all(|a| a.status == Some(302)), "a redirect is a failure, never followed");
    match mock.webhooks().wait_delivered(&message.id, WITHIN).await {
        Err(WebhookError::GaveUp { attempts: 3, last, .. }) => assert!(last.contains("302"), "{last}"),
        other => anyhow::bail!("expected GaveUp after 3 attempts, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_receiver_that_is_down_neither_blocks_the_api_nor_crashes_the_mock() -> anyhow::Result<()> {
    let mock = mock_with(fast(Duration::from_secs(5))).await?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?; // dropped: nothing listens
    mock.webhooks().add_endpoint(&format!("http://{closed}/webhooks"))?;
    let (http, api, auth) = bapi(&mock);
    let user: Value = http
        .post(format!("{api}/v1/users"))
        .header("authorization", &auth)
        .json(&json!({"email_address": ["down@example.com"]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = user["id"].as_str().context("user id")?;
    let message = mock.webhooks().wait_for_event_about("user.created", id, WITHIN).await?;
    let attempts = mock.webhooks().wait_failed_attempts(&message.id, 3, WITHIN).await?;
    for (n, a) in attempts.iter().take(3).enumerate() {
        assert_eq!(a.attempt as usize, n + 1);
        assert!(a.status.is_none() && a.error.as_deref().is_some_and(|e| e.starts_with("connection failed")), "{}", a.summary());
    }
    let again = http.get(format!("{api}/v1/users/{id}")).header("authorization", &auth).send().await?;
    assert_eq!(again.status(), 200, "the mock still serves");
    Ok(())
}

#[tokio::test]
async fn a_receiver_that_hangs_times_out_without_blocking_the_api() -> anyhow::Result<()> {
    let timeout = Duration::from_secs(1);
    let mock = mock_with(fast(timeout)).await?;
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60))).mount(&server).await;
    mock.webhooks().add_endpoint(&server.uri())?;
    let (http, api, auth) = bapi(&mock);
    let user: Value =
        http.post(format!("{api}/v1/users")).header("authorization", &auth).json(&json!({"email_address": ["slow@example.com"]})).send().await?.json().await?;
    // Had the API call waited for the webhook, its first attempt (timed out after 1 s) would
    // already be in the log; the receiver hangs for 60 s, so it can only be in flight.
    assert!(mock.webhooks().deliveries().is_empty(), "the API call waited for the webhook: {:#?}", mock.webhooks().deliveries());
    let id = user["id"].as_str().context("user id")?;
    let message = mock.webhooks().wait_for_event_about("user.created", id, WITHIN).await?;
    let attempts = mock.webhooks().wait_failed_attempts(&message.id, 2, WITHIN).await?;
    for a in &attempts[..2] {
        assert_eq!(a.error.as_deref(), Some("timed out after 1000 ms"), "{}", a.summary());
        assert!(a.latency >= timeout, "{:?}", a.latency);
    }
    Ok(())
}

#[tokio::test]
async fn bapi_user_changes_produce_matching_events_valid_against_the_spec() -> anyhow::Result<()> {
    let spec = schema::WebhookSpec::load()?;
    let mock = mock_with(fast(Duration::from_secs(5))).await?;
    let server = receiver(200).await;
    mock.webhooks().add_endpoint(&server.uri())?;
    let (http, api, auth) = bapi(&mock);

    let created: Value = http
        .post(format!("{api}/v1/users"))
        .header("authorization", &auth)
        .json(&json!({"email_address": ["lin@example.com"], "first_name": "Lin"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = created["id"].as_str().context("user id")?.to_string();
    let updated: Value = http
        .patch(format!("{api}/v1/users/{id}"))
        .header("authorization", &auth)
        .json(&json!({"last_name": "Chen", "public_metadata": {"role": "admin"}}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let session: Value =
        http.post(format!("{api}/v1/sessions")).header("authorization", &auth).json(&json!({"user_id": id})).send().await?.error_for_status()?.json().await?;
    let sid = session["id"].as_str().context("session id")?.to_string();
    // A session left with tasks (e.g. choosing an organization): Clerk sends session.pending.
    let pending = mock.create_session(&id)?;
    mock.store().set_session_status(&pending.id, SessionStatus::Pending)?;
    http.post(format!("{api}/v1/sessions/{sid}/revoke")).header("authorization", &auth).send().await?.error_for_status()?;
    http.delete(format!("{api}/v1/users/{id}")).header("authorization", &auth).send().await?.error_for_status()?;

    let expected_data = [
        ("user.created", id.as_str(), Some(created)),
        ("user.updated", id.as_str(), Some(updated)),
        ("session.created", sid.as_str(), None),
        ("session.pending", pending.id.as_str(), None),
        ("session.revoked", sid.as_str(), None),
        ("user.deleted", id.as_str(), Some(json!({"object": "user", "id": id, "deleted": true}))),
    ];
    let mut problems = vec![];
    for (event_type, object_id, data) in expected_data {
        let message = mock.webhooks().wait_for_event_about(event_type, object_id, WITHIN).await?;
        mock.webhooks().wait_delivered(&message.id, WITHIN).await?;
        let envelope = message.payload();
        assert_eq!(envelope["type"], event_type);
        if let Some(data) = data {
            assert_eq!(envelope["data"], data, "{event_type} carries the object the BAPI returned");
        } else {
            assert_eq!(envelope["data"]["user"]["id"], id.as_str(), "{event_type} carries the session's user");
        }
        let validator = spec.validator(event_type)?;
        let mut checked = envelope.clone();
        if event_type == "session.pending" {
            // What Clerk sends (its own SessionPendingEventPayloadExample has `status: pending`);
            // the 2025-04-15 Session schema's status enum forgot "pending": validate the rest.
            assert_eq!(envelope["data"]["status"], "pending");
            checked["data"]["status"] = json!("active");
        }
        problems.extend(schema::violations(&validator, &checked).into_iter().map(|v| format!("{event_type}: {v}")));
    }
    assert!(problems.is_empty(), "payloads break the webhooks spec:\n{}", problems.join("\n"));
    Ok(())
}

#[tokio::test]
async fn the_spec_validators_catch_a_wrong_payload() -> anyhow::Result<()> {
    let spec = schema::WebhookSpec::load()?;
    let mock = mock_with(fast(Duration::from_secs(5))).await?;
    let user = mock.create_user(NewUser::with_email("kim@example.com"))?;
    let session = mock.create_session(&user.id)?;
    let user_created = mock.webhooks().wait_for_event("user.created", WITHIN).await?.payload();
    let session_created = mock.webhooks().wait_for_event("session.created", WITHIN).await?.payload();
    let users = spec.validator("user.created")?;
    let sessions = spec.validator("session.created")?;
    assert!(schema::violations(&users, &user_created).is_empty());
    assert!(schema::violations(&sessions, &session_created).is_empty());

    let mut mistyped = user_created.clone();
    mistyped["data"]["first_name"] = json!(42);
    let mut unknown_field = user_created.clone();
    unknown_field["data"]["favourite_colour"] = json!("teal");
    let mut no_timestamp = user_created;
    no_timestamp.as_object_mut().context("envelope")?.remove("timestamp");
    let mut no_user = session_created;
    no_user["data"].as_object_mut().context("data")?.remove("user");
    for (validator, wrong) in [(&users, mistyped), (&users, unknown_field), (&users, no_timestamp), (&sessions, no_user)] {
        assert!(!schema::violations(validator, &wrong).is_empty(), "accepted: {wrong:#}");
    }
    assert_eq!(session.user_id, user.id);
    Ok(())
}

#[tokio::test]
async fn redelivery_keeps_the_svix_id_and_signs_again() -> anyhow::Result<()> {
    let mock = mock_with(fast(Duration::from_secs(5))).await?;
    let server = receiver(200).await;
    let endpoint = mock.webhooks().add_endpoint(&server.uri())?;
    let message = mock.webhooks().send_event(WebhookEvent::new("user.created", json!({"object": "user", "id": "user_1"})));
    mock.webhooks().wait_delivered(&message.id, WITHIN).await?;
    mock.clock().advance(Duration::from_secs(2));
    let again = mock.webhooks().redeliver(&message.id).await?;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].kind, AttemptKind::Redelivery);
    assert!(again[0].succeeded(), "{}", again[0].summary());

    let received = server.received_requests().await.context("recording is on")?;
    assert_eq!(received.len(), 2);
    for r in &received {
        verify_with_svix(endpoint.secret.expose(), r)?;
        assert_eq!(r.headers.get("svix-id").context("svix-id")?, message.id.as_str());
        assert_eq!(r.body, message.body.as_bytes(), "same body");
    }
    assert_ne!(received[0].headers.get("svix-timestamp"), received[1].headers.get("svix-timestamp"), "a fresh timestamp");
    Ok(())
}

#[tokio::test]
async fn the_admin_api_registers_sends_forges_and_shows_the_log() -> anyhow::Result<()> {
    let mock = mock_with(fast(Duration::from_secs(5))).await?;
    let server = receiver(200).await;
    let user = mock.create_user(NewUser::with_email("admin@example.com"))?;
    let (http, api, auth) = bapi(&mock);
    let post = |path: &str, body: Value| http.post(format!("{api}/_mock/webhooks/{path}")).header("authorization", &auth).json(&body).send();

    let endpoint: Value = post("endpoints", json!({"url": server.uri(), "events": ["user.updated"]})).await?.error_for_status()?.json().await?;
    assert_eq!(endpoint["secret"], mock.instance().webhook_secret());
    let bad = post("endpoints", json!({"url": server.uri(), "secret": "not-a-secret"})).await?;
    assert_eq!(bad.status(), 422, "{}", bad.text().await?);

    let message: Value = post("send", json!({"type": "user.updated", "user_id": user.id})).await?.error_for_status()?.json().await?;
    let message_id = message["id"].as_str().context("message id")?;
    mock.webhooks().wait_delivered(message_id, WITHIN).await?;
    let forged: Value =
        post("forge", json!({"forgery": "stale_timestamp", "type": "user.updated", "user_id": user.id})).await?.error_for_status()?.json().await?;
    assert_eq!(forged["kind"], json!({"forged": "stale_timestamp"}));
    let redelivered: Value = post("redeliver", json!({"message_id": message_id})).await?.error_for_status()?.json().await?;
    assert_eq!(redelivered["attempts"][0]["status"], 200);

    let log: Value = http.get(format!("{api}/_mock/webhooks/log")).header("authorization", &auth).send().await?.json().await?;
    let attempts = log["attempts"].as_array().context("attempts")?;
    assert_eq!(attempts.len(), 3, "{log:#}");
    assert!(attempts.iter().all(|a| a["latency_ms"].is_u64() && a["endpoint_id"] == endpoint["id"]));
    let sent = log["messages"].as_array().context("messages")?.iter().find(|m| m["id"] == message_id).context("the sent message is logged")?;
    assert_eq!(sent["type"], "user.updated");
    Ok(())
}

#[test]
fn the_config_file_declares_endpoints() -> anyhow::Result<()> {
    let config = mock_clerk::Config::parse(
        "[[webhook_endpoints]]\nurl = \"http://127.0.0.1:3000/hooks\"\nsecret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\nevents = [\"user.created\"]\n\n[[webhook_endpoints]]\nurl = \"http://127.0.0.1:3001/hooks\"\n",
        "mock.toml",
    )?;
    assert_eq!(config.webhook_endpoints.len(), 2);
    assert_eq!(config.webhook_endpoints[0].events, ["user.created"]);
    assert!(config.webhook_endpoints[1].secret.is_none());
    let err = mock_clerk::Config::parse("[[webhook_endpoints]]\nurl = \"http://x\"\nsecret = \"sk_nope\"\n", "mock.toml").expect_err("bad secret");
    assert!(err.to_string().starts_with("mock.toml:3:10: ") && err.to_string().contains("whsec_"), "{err}");
    Ok(())
}

#[tokio::test]
async fn dropping_the_mock_stops_deliveries() -> anyhow::Result<()> {
    let settings = WebhookSettings { schedule: vec![Duration::ZERO, Duration::from_millis(150), Duration::from_millis(150)], ..fast(Duration::from_secs(5)) };
    let mock = mock_with(settings).await?;
    let server = receiver(500).await;
    mock.webhooks().add_endpoint(&server.uri())?;
    let message = mock.webhooks().send_event(WebhookEvent::new("user.created", json!({"object": "user", "id": "user_1"})));
    mock.webhooks().wait_failed_attempts(&message.id, 1, WITHIN).await?;
    let webhooks = mock.webhooks().clone();
    assert_eq!(webhooks.pending(), 1, "the retry is scheduled");
    drop(mock);
    // Cancelled, not delivered: the retry was due 150 ms after the first attempt, and had it
    // run, the receiver would hold two requests by the time the delivery settled.
    webhooks.wait_idle(WITHIN).await?;
    assert_eq!(server.received_requests().await.context("recording is on")?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn organization_events_and_user_deleted_with_external_id_are_valid_against_the_spec() -> anyhow::Result<()> {
    let spec = schema::WebhookSpec::load()?;
    let mock = mock_with(fast(Duration::from_secs(5))).await?;
    let server = receiver(200).await;
    mock.webhooks().add_endpoint(&server.uri())?;
    let (http, api, auth) = bapi(&mock);
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut req = http.request(method, format!("{api}{path}")).header("authorization", &auth);
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move { anyhow::Ok(req.send().await?.error_for_status()?.json::<Value>().await?) }
    };
    let owner = call(reqwest::Method::POST, "/v1/users".into(), Some(json!({"email_address": ["own@example.com"], "external_id": "legacy-7"}))).await?;
    let member = call(reqwest::Method::POST, "/v1/users".into(), Some(json!({"email_address": ["mem@example.com"]}))).await?;
    let (owner_id, member_id) = (owner["id"].as_str().context("id")?.to_string(), member["id"].as_str().context("id")?.to_string());
    let org = call(reqwest::Method::POST, "/v1/organizations".into(), Some(json!({"name": "Hooks", "created_by": owner_id}))).await?;
    let org_id = org["id"].as_str().context("org id")?.to_string();
    let created_m =
        call(reqwest::Method::POST, format!("/v1/organizations/{org_id}/memberships"), Some(json!({"user_id": member_id, "role": "org:member"}))).await?;
    call(reqwest::Method::PATCH, format!("/v1/organizations/{org_id}"), Some(json!({"name": "Hooks Ltd"}))).await?;
    let updated_m = call(reqwest::Method::PATCH, format!("/v1/organizations/{org_id}/memberships/{member_id}"), Some(json!({"role": "org:admin"}))).await?;
    call(reqwest::Method::DELETE, format!("/v1/organizations/{org_id}/memberships/{member_id}"), None).await?;
    call(reqwest::Method::DELETE, format!("/v1/organizations/{org_id}"), None).await?;
    call(reqwest::Method::DELETE, format!("/v1/users/{owner_id}"), None).await?;

    let expected = [
        ("organization.created", org_id.clone(), None),
        ("organizationMembership.created", created_m["id"].as_str().context("id")?.to_string(), Some(created_m.clone())),
        ("organization.updated", org_id.clone(), None),
        ("organizationMembership.updated", updated_m["id"].as_str().context("id")?.to_string(), Some(updated_m.clone())),
        ("organizationMembership.deleted", updated_m["id"].as_str().context("id")?.to_string(), None),
        ("organization.deleted", org_id.clone(), Some(json!({"object": "organization", "id": org_id, "slug": "hooks", "deleted": true}))),
        ("user.deleted", owner_id.clone(), Some(json!({"object": "user", "id": owner_id, "deleted": true, "external_id": "legacy-7"}))),
    ];
    let mut problems = vec![];
    for (event_type, object_id, data) in expected {
        let message = mock.webhooks().wait_for_event_about(event_type, &object_id, WITHIN).await?;
        let envelope = message.payload();
        if let Some(data) = data {
            assert_eq!(envelope["data"], data, "{event_type}");
        }
        problems.extend(schema::violations(&spec.validator(event_type)?, &envelope).into_iter().map(|v| format!("{event_type}: {v}")));
    }
    // The owner's admin membership was created with the organisation.
    let owner_membership = mock.webhooks().wait_for_message("the owner's membership", WITHIN, |m| {
        m.event_type == "organizationMembership.created" && m.payload()["data"]["public_user_data"]["user_id"] == owner_id.as_str()
    });
    assert_eq!(owner_membership.await?.payload()["data"]["role"], "org:admin");
    assert!(problems.is_empty(), "payloads break the webhooks spec:\n{}", problems.join("\n"));
    Ok(())
}
