//! "Detect, don't hang", in-process on the stub: a request or a scenario that hangs ends in
//! `error` naming what hung; a backend whose Clerk calls never reach the mock gets an `error`
//! (not a `fail`) naming the host and the fix, and after three such scenarios in a row the
//! run stops with exit 2 and one diagnosis.

mod stub;

use std::time::Duration;

use scenarios::{Outcome, Scenario, Verdict};
use stub::{assert_verdict, Behaviour};

#[tokio::test]
async fn a_request_that_hangs_is_an_error_naming_the_request() {
    let behaviour = Behaviour { hang: Some(Duration::from_secs(30)), ..Behaviour::default() };
    let report =
        stub::run_with(behaviour, stub::quick_timeouts(Duration::from_millis(300), Duration::from_secs(20)), &stub::scenarios(&["tokens.expired"])).await;
    let r = &report.results[0];
    assert_verdict(r, Verdict::Error);
    let d = r.diagnosis.as_ref().expect("diagnosis");
    assert!(d.summary.contains("did not answer /api/me within 0.3 s"), "{}", d.summary);
    assert_eq!(d.class, scenarios::internal::HARNESS_ERROR_CLASS);
    assert_eq!(report.exit_code(), 2);
}

fn waits_for_a_delivery(ctx: &mut scenarios::Ctx) -> scenarios::BoxFut<'_> {
    Box::pin(async move {
        ctx.timed_as("the webhook delivery of msg_1", tokio::time::sleep(Duration::from_secs(60))).await;
        Ok(Outcome::pass("unreachable"))
    })
}

#[tokio::test]
async fn a_scenario_that_hangs_is_an_error_naming_what_it_waited_for_and_the_next_one_runs() {
    let hanging = Scenario {
        id: "test.hangs",
        group: scenarios::Group::Webhooks,
        title: "waits forever",
        sends: "nothing",
        expects: "an answer",
        class: "webhook-sync",
        reason: None,
        fix: "none",
        isolation: scenarios::Isolation::Shared,
        body: waits_for_a_delivery,
    };
    let mut list = vec![hanging];
    list.extend(stub::scenarios(&["tokens.expired"]));
    let report = stub::run_with(Behaviour::default(), stub::quick_timeouts(Duration::from_secs(5), Duration::from_millis(200)), &list).await;
    assert_verdict(&report.results[0], Verdict::Error);
    let summary = &report.results[0].diagnosis.as_ref().expect("diagnosis").summary;
    assert!(summary.contains("did not finish within 0.2 s"), "{summary}");
    assert!(summary.contains("for the webhook delivery of msg_1"), "{summary}");
    assert_verdict(&report.results[1], Verdict::Pass);
}

/// The stub pointed at a JWKS URL nothing answers on, as a backend whose client ignores the
/// proxy calls the real Clerk.
fn unreachable_jwks() -> harness::Profile {
    stub_backend::profile_with("CLERK_JWKS_URL = \"{jwks_url}\"", "CLERK_JWKS_URL = \"https://localhost:1/v1/jwks\"").expect("valid profile")
}

#[tokio::test]
async fn clerk_unreachable_is_an_error_naming_the_host_and_three_in_a_row_stop_the_run() {
    let env = harness::TestEnv::builder(unreachable_jwks()).config(stub::Stub::default().config()).start().await.expect("stub env");
    let mut ctx = scenarios::Ctx::new(env);
    let list = stub::scenarios(&[
        "tokens.session_token",
        "tokens.template_token",
        "tokens.expired_within_skew",
        "tokens.jwks_down_warm_cache",
        "tokens.expired",
        "tokens.tampered",
    ]);
    let report = scenarios::run(&mut ctx, &list, |_| {}).await;
    let verdicts: Vec<_> = report.results.iter().map(|r| (r.id.as_str(), r.verdict)).collect();
    assert_eq!(
        verdicts,
        [
            ("tokens.session_token", Verdict::Error),
            ("tokens.template_token", Verdict::NotApplicable),
            ("tokens.expired_within_skew", Verdict::Error),
            ("tokens.jwks_down_warm_cache", Verdict::Error)
        ],
        "{:#?}",
        report.results
    );
    let d = report.results[0].diagnosis.as_ref().expect("diagnosis");
    assert!(d.summary.contains("did not reach the mock (localhost)"), "{}", d.summary);
    assert!(d.fix.contains("docker runtime") && d.fix.contains("CLERK_JWT_KEY"), "{}", d.fix);
    assert!(!report.catches("token-type"), "an unreachable Clerk is no finding about token types");
    let stopped = report.stopped.as_ref().expect("the run stopped");
    assert_eq!(stopped.not_run, ["tokens.expired", "tokens.tampered"]);
    assert_eq!(stopped.after.len(), 3);
    assert_eq!(report.exit_code(), 2);
}

#[tokio::test]
async fn a_verdict_reached_without_calling_clerk_does_not_break_the_series_but_one_that_reached_the_mock_does() {
    // A garbage token is refused before any key is needed: its pass says nothing about Clerk.
    let env = harness::TestEnv::builder(unreachable_jwks()).config(stub::Stub::default().config()).start().await.expect("stub env");
    let mut ctx = scenarios::Ctx::new(env);
    let list =
        stub::scenarios(&["tokens.session_token", "tokens.malformed_header", "tokens.expired_within_skew", "tokens.jwks_down_warm_cache", "tokens.tampered"]);
    let report = scenarios::run(&mut ctx, &list, |_| {}).await;
    assert_verdict(&report.results[1], Verdict::Pass);
    assert_eq!(report.stopped.as_ref().map(|s| s.not_run.clone()), Some(vec!["tokens.tampered".to_string()]), "{:#?}", report.results);

    // With the mock reachable in between (the correct stub, a scenario that fetches the
    // JWKS), two environment errors are not three in a row: here, two hangs around a pass.
    let hung = custom_hang();
    let reaches = Scenario { id: "test.reaches_the_mock", body: fetches_the_jwks, ..hung };
    let list = vec![hung, hung, reaches, hung];
    let report = stub::run_with(Behaviour::default(), stub::quick_timeouts(Duration::from_secs(5), Duration::from_millis(150)), &list).await;
    assert!(report.stopped.is_none(), "{:?}", report.stopped);
    assert_eq!(report.results.len(), 4);
}

fn fetches_the_jwks(ctx: &mut scenarios::Ctx) -> scenarios::BoxFut<'_> {
    Box::pin(async move {
        let status = ctx.env.http().get(ctx.env.mock().jwks_url()).send().await?.status();
        Ok(Outcome::pass(format!("the JWKS answered {status}")))
    })
}

fn custom_hang() -> Scenario {
    Scenario {
        id: "test.hangs",
        group: scenarios::Group::Tokens,
        title: "waits forever",
        sends: "nothing",
        expects: "an answer",
        class: "jwks",
        reason: None,
        fix: "none",
        isolation: scenarios::Isolation::Shared,
        body: waits_for_a_delivery,
    }
}

#[tokio::test]
async fn a_diagnosis_shows_only_the_log_lines_of_its_own_scenario() {
    let behaviour = Behaviour { forbidden_instead_of_401: true, ..Behaviour::default() };
    let report = stub::run(behaviour, &stub::scenarios(&["tokens.expired", "tokens.no_authorization"])).await;
    let first = report.results[0].diagnosis.as_ref().expect("fail").backend_log.join("\n");
    let second = report.results[1].diagnosis.as_ref().expect("fail").backend_log.join("\n");
    assert!(first.contains("token-expired"), "{first}");
    assert!(second.contains("token-missing"), "{second}");
    assert!(!second.contains("token-expired"), "the second scenario's log holds the first one's lines: {second}");
    assert!(!second.contains("listening on"), "nor the start-up lines: {second}");
}

#[tokio::test]
async fn a_fresh_backend_scenario_shows_its_own_start_but_not_earlier_lines() {
    let behaviour = Behaviour { refetch: stub::Refetch::Never, forbidden_instead_of_401: true, ..Behaviour::default() };
    // Rotation polls through refusals before it says "never": keep that short, so the
    // window stays small enough to hold the start-up lines.
    let mut ctx = scenarios::Ctx::new(stub::env_with(behaviour, |c| c).await);
    ctx.rotation_patience = Duration::from_millis(800);
    let report = scenarios::run(&mut ctx, &stub::scenarios(&["tokens.expired", "tokens.key_rotation"]), |_| {}).await;
    assert_verdict(&report.results[1], Verdict::Fail);
    let log = report.results[1].diagnosis.as_ref().expect("fail").backend_log.join("\n");
    assert!(log.contains("listening on"), "its own backend's start: {log}");
    assert!(log.contains("not refetching"), "{log}");
    assert!(!log.contains("token-expired"), "the earlier scenario's lines: {log}");
}

#[tokio::test]
async fn connection_errors_to_a_host_that_is_not_clerk_do_not_excuse_a_failure() {
    // A backend that also logs a failing telemetry call: its wrong 403 is still a `fail`.
    fn noisy(ctx: &mut scenarios::Ctx) -> scenarios::BoxFut<'_> {
        Box::pin(async move {
            ctx.env
                .log_buffer()
                .push(harness::Stream::Stderr, "WARNING sentry: HTTPSConnectionPool(host='o1.ingest.sentry.io', port=443): Max retries exceeded");
            Ok(Outcome::fail("GET /api/me", None, "answered 403 instead of 401"))
        })
    }
    let scenario = Scenario {
        id: "test.noisy",
        group: scenarios::Group::Tokens,
        title: "a failure next to telemetry noise",
        sends: "a token",
        expects: "401",
        class: "token-expiry",
        reason: None,
        fix: "none",
        isolation: scenarios::Isolation::Shared,
        body: noisy,
    };
    let report = stub::run(Behaviour::default(), &[scenario]).await;
    assert_verdict(&report.results[0], Verdict::Fail);
}

/// A cold-cache JWKS outage: the JWKS answers 503 from the first request on, and a valid
/// token is sent to a freshly started backend (an `Environment` scenario, so no fingerprint
/// warms the cache first).
fn cold_jwks_outage(ctx: &mut scenarios::Ctx) -> scenarios::BoxFut<'_> {
    Box::pin(async move {
        // Bring-up warmed the running backend's cache: a fresh one starts cold.
        ctx.fresh_backend(harness::EnvChanges::new()).await?;
        for fault in mock_clerk::Fault::jwks_outage() {
            ctx.env.mock().faults().inject(fault);
        }
        let me = ctx.sign_in("cold-jwks")?;
        let token = ctx.env.spa().get_token(&me.session.id, &harness::GetToken::ProfileDefault)?;
        ctx.expect_accepted("a valid token while the JWKS answers 503", &token).await
    })
}

fn cold_outage_scenario() -> Scenario {
    Scenario {
        id: "test.cold_jwks_outage",
        group: scenarios::Group::Environment,
        title: "a JWKS outage with a cold cache",
        sends: "a valid token while the JWKS answers 503",
        expects: "an answer",
        class: "jwks",
        reason: None,
        fix: "none",
        isolation: scenarios::Isolation::Shared,
        body: cold_jwks_outage,
    }
}

#[tokio::test]
async fn a_backend_that_hangs_retrying_an_injected_fault_fails_naming_the_retries() {
    let retrying = Behaviour { retry_jwks_failures: true, ..Behaviour::default() };
    let report = stub::run_with(retrying, stub::quick_timeouts(Duration::from_millis(800), Duration::from_secs(5)), &[cold_outage_scenario()]).await;
    let r = &report.results[0];
    assert_verdict(r, Verdict::Fail);
    let d = r.diagnosis.as_ref().expect("a failure has a diagnosis");
    assert_eq!(d.class, "hang");
    assert!(d.summary.contains("requests of GET /.well-known/jwks.json") && d.summary.contains("retries"), "{}", d.summary);
    assert!(d.fix.contains("503 with Retry-After"), "{}", d.fix);
    assert!(report.fingerprint.backend_api.as_ref().is_some_and(|f| f.by == "test.cold_jwks_outage"), "{:?}", report.fingerprint.backend_api);

    // The same outage on a backend that gives up at once: an answer, judged as such — no hang.
    let report =
        stub::run_with(Behaviour::default(), stub::quick_timeouts(Duration::from_millis(800), Duration::from_secs(5)), &[cold_outage_scenario()]).await;
    let d = report.results[0].diagnosis.as_ref().expect("the refusal is a failure");
    assert_ne!(d.class, "hang", "{d:?}");
}
