//! The runner's verdict paths, in-process on the stub backend: pass, warn, fail, error and
//! not applicable, each in milliseconds and without Python, Docker or Postgres.

mod stub;

use scenarios::{Outcome, Scenario, StepError, Verdict};
use stub::{assert_verdict, Behaviour};

#[tokio::test]
async fn a_correct_backend_passes_the_token_scenarios() {
    let report = stub::run(
        Behaviour::default(),
        &stub::scenarios(&[
            "tokens.session_token",
            "tokens.session_id",
            "tokens.expired",
            "tokens.expired_within_skew",
            "tokens.not_yet_valid",
            "tokens.iat_in_future",
            "tokens.wrong_azp",
            "tokens.foreign_instance",
            "tokens.wrong_issuer",
            "tokens.unknown_kid",
            "tokens.tampered",
            "tokens.alg_none",
            "tokens.hs256_public_key",
            "tokens.missing_sub",
            "tokens.no_authorization",
            "tokens.malformed_header",
        ]),
    )
    .await;
    for r in &report.results {
        assert_verdict(r, Verdict::Pass);
    }
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test]
async fn a_403_instead_of_401_fails_with_the_scenarios_class() {
    let r = stub::one(Behaviour { forbidden_instead_of_401: true, ..Behaviour::default() }, "tokens.expired").await;
    assert_verdict(&r, Verdict::Fail);
    let d = r.diagnosis.as_ref().expect("a failure has a diagnosis");
    assert_eq!(d.class, "token-expiry");
    assert_eq!(d.got.as_ref().map(|g| g.status), Some(403));
}

#[tokio::test]
async fn no_leeway_fails_the_clock_skew_scenario() {
    let r = stub::one(Behaviour { leeway: std::time::Duration::ZERO, ..Behaviour::default() }, "tokens.expired_within_skew").await;
    assert_verdict(&r, Verdict::Fail);
    assert_eq!(r.diagnosis.as_ref().map(|d| d.class.as_str()), Some("clock-skew"));
}

#[tokio::test]
async fn accepting_expired_tokens_fails() {
    let r = stub::one(Behaviour { accept_expired: true, ..Behaviour::default() }, "tokens.expired").await;
    assert_verdict(&r, Verdict::Fail);
}

fn custom(id: &'static str, body: scenarios::Body) -> Scenario {
    Scenario {
        id,
        group: scenarios::Group::Tokens,
        title: "a test scenario",
        sends: "nothing",
        expects: "its outcome",
        class: "token-expiry",
        reason: None,
        fix: "none",
        isolation: scenarios::Isolation::Shared,
        body,
    }
}

fn warns(_: &mut scenarios::Ctx) -> scenarios::BoxFut<'_> {
    Box::pin(async { Ok(Outcome::warn("GET /api/me", None, "works, with a risk")) })
}

fn cannot_run(_: &mut scenarios::Ctx) -> scenarios::BoxFut<'_> {
    Box::pin(async { Err(StepError::Other("the mock refused".into())) })
}

fn panics(_: &mut scenarios::Ctx) -> scenarios::BoxFut<'_> {
    quiet_scenario_panics();
    Box::pin(async { panic!("a bug in a scenario") })
}

/// The deliberate panic is caught by the runner: skip printing it (and symbolising its
/// backtrace, which takes a second); every other panic is reported as usual.
fn quiet_scenario_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>().is_some_and(|m| *m == "a bug in a scenario") {
                return;
            }
            default(info);
        }));
    });
}

#[tokio::test]
async fn a_warning_is_reported_and_exits_0() {
    let report = stub::run(Behaviour::default(), &[custom("test.warns", warns)]).await;
    assert_verdict(&report.results[0], Verdict::Warn);
    assert_eq!(report.results[0].diagnosis.as_ref().map(|d| d.summary.as_str()), Some("works, with a risk"));
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test]
async fn a_step_error_and_a_panic_are_errors_with_the_harness_class_and_exit_2() {
    let report = stub::run(Behaviour::default(), &[custom("test.cannot_run", cannot_run), custom("test.panics", panics)]).await;
    for r in &report.results {
        assert_verdict(r, Verdict::Error);
        let d = r.diagnosis.as_ref().expect("an error has a diagnosis");
        assert_eq!(d.class, scenarios::internal::HARNESS_ERROR_CLASS, "an error never carries the scenario's fault class");
    }
    assert!(report.results[1].diagnosis.as_ref().is_some_and(|d| d.summary.contains("a bug in a scenario")));
    assert_eq!(report.exit_code(), 2);
}

#[tokio::test]
async fn scenarios_that_read_the_database_are_not_applicable_without_one() {
    let r = stub::one(Behaviour::default(), "sync.first_request").await;
    assert_verdict(&r, Verdict::NotApplicable);
    assert!(!r.note.is_empty());
}

fn fails(_: &mut scenarios::Ctx) -> scenarios::BoxFut<'_> {
    Box::pin(async { Ok(Outcome::fail("GET /api/me", None, "wrong")) })
}

#[tokio::test]
async fn a_harness_error_is_never_counted_as_a_caught_fault() {
    // The same scenario class, once as an error, once as a panic, once as a warning: none
    // is a catch in the detection matrix's sense.
    let report = stub::run(Behaviour::default(), &[custom("test.cannot_run", cannot_run), custom("test.panics", panics), custom("test.warns", warns)]).await;
    assert!(!report.catches("token-expiry"), "{:#?}", report.results);
    // Even an error whose diagnosis was given the fault's class (as the old runner did)
    // does not count: only `fail` does.
    let mut forged = report.clone();
    for r in &mut forged.results {
        if let Some(d) = &mut r.diagnosis {
            d.class = "token-expiry".into();
        }
    }
    assert!(!forged.catches("token-expiry"));
    let failing = stub::run(Behaviour::default(), &[custom("test.fails", fails)]).await;
    assert!(failing.catches("token-expiry"), "a fail with the class is a catch");
    assert!(!failing.catches("audience"), "a fail of another class is not");
}

#[tokio::test]
async fn a_backend_that_closes_its_connection_after_a_500_does_not_break_the_next_scenario() {
    let behaviour = Behaviour { crash_on_garbage: true, close_after_500: true, ..Behaviour::default() };
    let report = stub::run(behaviour, &stub::scenarios(&["tokens.malformed_header", "tokens.no_authorization", "tokens.expired"])).await;
    assert_verdict(&report.results[0], Verdict::Fail);
    assert!(report.results[0].diagnosis.as_ref().is_some_and(|d| d.got.as_ref().is_some_and(|g| g.status == 500)));
    assert_verdict(&report.results[1], Verdict::Pass);
    assert_verdict(&report.results[2], Verdict::Pass);
}

fn not_applicable(_: &mut scenarios::Ctx) -> scenarios::BoxFut<'_> {
    Box::pin(async { Ok(Outcome::not_applicable("the profile has no webhook path")) })
}

fn passes(_: &mut scenarios::Ctx) -> scenarios::BoxFut<'_> {
    Box::pin(async { Ok(Outcome::pass("fine")) })
}

#[tokio::test]
async fn json_and_junit_carry_each_verdict() {
    use scenarios::{render, Format};
    let report = stub::run(
        Behaviour::default(),
        &[custom("t.pass", passes), custom("t.warn", warns), custom("t.fail", fails), custom("t.error", cannot_run), custom("t.na", not_applicable)],
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).expect("JSON");
    let verdicts: Vec<&str> = json["scenarios"].as_array().expect("array").iter().map(|s| s["verdict"].as_str().expect("verdict")).collect();
    assert_eq!(verdicts, ["pass", "warn", "fail", "error", "not_applicable"]);
    assert_eq!(json["exit_code"], 2);
    assert_eq!(json["scenarios"][3]["diagnosis"]["class"], "harness-error");

    let xml = render(&report, Format::Junit);
    assert!(xml.contains("tests=\"5\"") && xml.contains("failures=\"1\"") && xml.contains("errors=\"1\"") && xml.contains("skipped=\"1\""), "{xml}");
    assert!(xml.contains("<failure message=\"wrong\" type=\"token-expiry\""), "{xml}");
    assert!(xml.contains("<error message=\"the harness could not run this scenario: the mock refused\" type=\"harness-error\""), "{xml}");
    assert!(xml.contains("<skipped message=\"the profile has no webhook path\""), "{xml}");
    assert!(xml.contains("warn: works, with a risk"), "{xml}");
}

#[test]
fn a_stopped_run_lists_what_it_did_not_run_and_exits_2() {
    use scenarios::{render, Format};
    use scenarios::{Report, Stopped};
    let report = Report {
        profile: "p".into(),
        environment: "e".into(),
        results: vec![],
        duration_ms: 1,
        fingerprint: scenarios::Fingerprint::default(),
        stopped: Some(Stopped {
            problem: "Clerk unreachable".into(),
            fix: "use docker".into(),
            after: vec!["a".into()],
            not_run: vec!["b".into(), "c".into()],
        }),
    };
    assert_eq!(report.exit_code(), 2);
    let xml = render(&report, Format::Junit);
    assert_eq!(xml.matches("<skipped message=\"not run: Clerk unreachable\"").count(), 2, "{xml}");
    let table = render(&report, Format::Table);
    assert!(table.contains("not run:  b, c") && table.contains("fix:      use docker"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).expect("JSON");
    assert_eq!(json["stopped"]["not_run"], serde_json::json!(["b", "c"]));
}

#[tokio::test]
async fn the_stubs_cors_switches_are_seen_by_the_cors_scenarios() {
    let clean =
        stub::run(Behaviour::default(), &stub::scenarios(&["cors.preflight_allowed", "cors.preflight_disallowed", "cors.error_has_cors_headers"])).await;
    for r in &clean.results {
        assert_verdict(r, Verdict::Pass);
    }
    let reflect = stub::one(Behaviour { reflect_any_origin: true, ..Behaviour::default() }, "cors.preflight_disallowed").await;
    assert_verdict(&reflect, Verdict::Fail);
    let bare = stub::one(Behaviour { no_cors_on_errors: true, ..Behaviour::default() }, "cors.error_has_cors_headers").await;
    assert_verdict(&bare, Verdict::Fail);
    assert_eq!(bare.diagnosis.as_ref().map(|d| d.class.as_str()), Some("cors"));
}

#[tokio::test]
async fn a_jwks_cache_that_refetches_on_an_unknown_kid_passes_key_rotation_and_one_that_never_does_fails() {
    let at_once = stub::one(Behaviour::default(), "tokens.key_rotation").await;
    assert_verdict(&at_once, Verdict::Pass);
    let never = stub::one_tuned(Behaviour { refetch: stub::Refetch::Never, ..Behaviour::default() }, "tokens.key_rotation", |ctx| {
        ctx.rotation_patience = std::time::Duration::from_millis(800);
    })
    .await;
    assert_verdict(&never, Verdict::Fail);
    assert_eq!(never.diagnosis.as_ref().map(|d| d.class.as_str()), Some("jwks-cache"));
}

#[tokio::test]
async fn forbidden_on_a_missing_bearer_fails_the_missing_bearer_scenario() {
    let r = stub::one(Behaviour { forbidden_on_missing_bearer: true, ..Behaviour::default() }, "tokens.no_authorization").await;
    assert_verdict(&r, Verdict::Fail);
    assert_eq!(r.diagnosis.as_ref().map(|d| d.class.as_str()), Some("missing-bearer"));
}

/// The clock scenarios on a correct backend: time is moved on the stub's own clock (the
/// harness's [`harness::BackendClock`]), so nothing sleeps.
#[tokio::test]
async fn a_correct_backend_passes_the_clock_scenarios() {
    let report = stub::run(
        Behaviour::default(),
        &stub::scenarios(&[
            "tokens.backend_clock_behind",
            "tokens.backend_clock_ahead",
            "tokens.replay_after_expiry",
            "tokens.cache_outlives_exp",
            "tokens.jwks_cache_expiry",
            "tokens.session_token",
        ]),
    )
    .await;
    for r in &report.results {
        assert_verdict(r, Verdict::Pass);
    }
    let behind = &report.results[0];
    assert!(behind.note.contains("saying why") && behind.note.contains("not valid before"), "{}", behind.note);
    assert!(report.results[1].note.contains("refused with 401"), "{}", report.results[1].note);
    assert!(report.results[4].note.contains("refused with 401 and the current key accepted"), "{}", report.results[4].note);
}

#[tokio::test]
async fn a_validation_cache_past_exp_is_found_by_moving_the_clock() {
    let cache = Behaviour { validation_cache: Some(std::time::Duration::from_secs(300)), ..Behaviour::default() };
    let report = stub::run(cache, &stub::scenarios(&["tokens.replay_after_expiry", "tokens.cache_outlives_exp"])).await;
    for r in &report.results {
        assert_verdict(r, Verdict::Fail);
        assert_eq!(r.diagnosis.as_ref().map(|d| d.class.as_str()), Some("validation-cache"));
    }
    let replay = &report.results[0];
    assert!(replay.diagnosis.as_ref().is_some_and(|d| d.sent.contains("the backend's clock moved on")), "{:?}", replay.diagnosis);
    // A 300 s cache from validation: still accepted 3 min 7 s after a 60 s token's exp, refused 10 min 7 s after.
    let minutes = report.results[1].diagnosis.as_ref().map(|d| d.summary.clone()).unwrap_or_default();
    assert!(minutes.contains("still accepted 3 min 7 s after its exp (refused 10 min 7 s after)"), "{minutes}");
    // One cause, measured, for both.
    let causes = report.root_causes();
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert_eq!(causes[0].cause.id, "validation-cache");
    assert_eq!(causes[0].scenarios, ["tokens.replay_after_expiry", "tokens.cache_outlives_exp"]);
}

#[tokio::test]
async fn a_clock_behind_refused_without_a_reason_warns_and_a_wide_leeway_passes() {
    let silent = Behaviour { quiet_refusals: true, refusal_body: Some("{\"detail\":\"Unauthorized\"}".into()), ..Behaviour::default() };
    let r = stub::one(silent, "tokens.backend_clock_behind").await;
    assert_verdict(&r, Verdict::Warn);
    assert_eq!(r.diagnosis.as_ref().map(|d| d.class.as_str()), Some("clock-skew"));
    let wide = stub::one(Behaviour { leeway: std::time::Duration::from_secs(60), ..Behaviour::default() }, "tokens.backend_clock_behind").await;
    assert_verdict(&wide, Verdict::Pass);
    assert!(wide.note.contains("allows at least 20 s of clock skew"), "{}", wide.note);
    let forbidden = stub::one(Behaviour { forbidden_instead_of_401: true, ..Behaviour::default() }, "tokens.backend_clock_behind").await;
    assert_verdict(&forbidden, Verdict::Fail);
    let ahead = stub::one(Behaviour { leeway: std::time::Duration::from_secs(60), ..Behaviour::default() }, "tokens.backend_clock_ahead").await;
    assert_verdict(&ahead, Verdict::Pass);
    assert!(ahead.note.contains("accepted too"), "{}", ahead.note);
}

#[tokio::test]
async fn a_jwks_cache_that_never_expires_fails_after_hours() {
    for behaviour in [Behaviour { jwks_ttl: None, ..Behaviour::default() }, Behaviour { refetch: stub::Refetch::Never, ..Behaviour::default() }] {
        let r = stub::one(behaviour.clone(), "tokens.jwks_cache_expiry").await;
        assert_verdict(&r, Verdict::Fail);
        let d = r.diagnosis.as_ref().expect("a failure has a diagnosis");
        assert_eq!(d.class, "jwks-cache", "{behaviour:?}");
        assert!(d.summary.contains("never expires"), "{}", d.summary);
    }
}

#[tokio::test]
async fn a_stale_while_revalidate_jwks_cache_is_a_warning_not_an_eternal_cache() {
    // orientor's JWKS cache: expired after its lifetime, it still verifies the request that
    // found it stale with the old set and refreshes; the next request sees the new set.
    let swr = Behaviour { jwks_stale_while_revalidate: true, ..Behaviour::default() };
    let r = stub::one(swr, "tokens.jwks_cache_expiry").await;
    assert_verdict(&r, Verdict::Warn);
    let d = r.diagnosis.as_ref().expect("a warning has a diagnosis");
    assert!(d.summary.contains("does expire") && d.summary.contains("stale"), "{}", d.summary);
}

/// A launcher whose backend reads the system clock: the harness cannot move it.
#[derive(Debug)]
struct SystemClockStub(stub::Stub);

impl harness::Launcher for SystemClockStub {
    fn launch(&self, env: std::collections::BTreeMap<String, String>, logs: harness::LogBuffer) -> harness::LaunchFuture {
        harness::Launcher::launch(&self.0, env, logs)
    }
}

#[tokio::test]
async fn without_a_movable_clock_the_hours_scenarios_do_not_apply_and_the_skew_moves_clerks_clock() {
    let config = harness::HarnessConfig::in_process(std::sync::Arc::new(SystemClockStub(stub::Stub::new(Behaviour::default()))));
    let env = harness::TestEnv::builder(stub_backend::profile()).config(config).start().await.expect("stub environment");
    assert!(env.backend_clock().unavailable_reason().is_some_and(|r| r.contains("system clock")));
    let mut ctx = scenarios::Ctx::new(env);
    let report =
        scenarios::run(&mut ctx, &stub::scenarios(&["tokens.cache_outlives_exp", "tokens.jwks_cache_expiry", "tokens.backend_clock_behind"]), |_| {}).await;
    for r in &report.results[..2] {
        assert_verdict(r, Verdict::NotApplicable);
        assert!(r.note.contains("cannot be moved") && r.note.contains("system clock"), "{}", r.note);
    }
    // Clerk's clock 30 s ahead is the same skew for a token verifier: judged all the same.
    assert_verdict(&report.results[2], Verdict::Pass);
    assert_eq!(ctx.env.backend_clock().offset_ms(), 0, "the skew is undone after the scenario");
}

#[tokio::test]
async fn one_wide_leeway_is_one_measured_cause_for_every_scenario_it_explains() {
    // jsonwebtoken's default: 60 s of leeway (the stub applies it to exp, nbf and iat), no cache.
    let wide = Behaviour { leeway: std::time::Duration::from_secs(60), ..Behaviour::default() };
    let ids = ["tokens.expired", "tokens.not_yet_valid", "tokens.iat_in_future", "tokens.replay_after_expiry", "tokens.cache_outlives_exp"];
    let report = stub::run(wide, &stub::scenarios(&ids)).await;
    assert_eq!(report.fingerprint.exp, Some(scenarios::Leeway::Bounded { accepted: 60, refused: 61 }));
    for r in &report.results {
        assert_verdict(r, Verdict::Fail);
        let d = r.diagnosis.as_ref().expect("a failure has a diagnosis");
        assert!(d.summary.contains("≈60 s"), "{}: {}", r.id, d.summary);
        assert!(!d.summary.contains("cache") && !d.fix.contains("cache") && !d.class.contains("cache"), "{}: {d:?}", r.id);
        assert!(!d.fix.contains("PyJWT"), "the stub's stack is not told: {}", d.fix);
    }
    let causes = report.root_causes();
    assert_eq!(causes.len(), 1, "{causes:#?}");
    assert_eq!(causes[0].cause.id, "leeway-60s");
    assert_eq!(causes[0].scenarios, ids);
    // The table names it once, with the scenarios it explains.
    let table = scenarios::render(&report, scenarios::Format::Table);
    assert_eq!(table.matches("explains: ").count(), 1, "{table}");
    assert!(table.contains("exp          ≈60 s (accepted 60 s past exp, refused 61 s past exp)"), "{table}");

    // Clerk's 5 s: the same scenarios pass, and the fingerprint says ≈5 s.
    let clerk = stub::run(Behaviour::default(), &stub::scenarios(&ids)).await;
    assert!(clerk.results.iter().all(|r| r.verdict == Verdict::Pass), "{:#?}", clerk.results);
    assert_eq!(clerk.fingerprint.exp.as_ref().and_then(scenarios::Leeway::approx), Some(5));
}
