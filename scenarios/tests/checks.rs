//! The per-scenario checks, in-process on the stub backend: each finding of issue 12 (and
//! "no probe skipped for lack of an expectation", issue 10) with the misbehaviour that
//! triggers it and the verdict it must get — and the correct backend's pass beside it.

mod stub;

use std::time::Duration;

use harness::TestEnv;
use scenarios::{Ctx, ScenarioResult, Verdict};
use stub::{assert_verdict, Behaviour, Refetch, Stub};

/// Runs catalogue scenario `id` on a stub behaving as `behaviour`, described by the stub's
/// profile with `from` replaced by `to`.
async fn one_with_profile(behaviour: Behaviour, from: &str, to: &str, id: &str) -> ScenarioResult {
    assert!(stub_backend::PROFILE.contains(from), "`{from}` is not in the stub's profile");
    let profile = stub_backend::profile_with(from, to).unwrap_or_else(|e| panic!("profile: {e}"));
    let env = TestEnv::builder(profile).config(Stub::new(behaviour).config()).start().await.unwrap_or_else(|e| panic!("stub environment: {e}"));
    let mut ctx = Ctx::new(env);
    let report = scenarios::run(&mut ctx, &stub::scenarios(&[id]), |_| {}).await;
    report.results.into_iter().next().unwrap_or_else(|| panic!("{id} produced no result"))
}

async fn rotation(refetch: Refetch, patience: Duration) -> ScenarioResult {
    stub::one_tuned(Behaviour { refetch, ..Behaviour::default() }, "tokens.key_rotation", |ctx| ctx.rotation_patience = patience).await
}

fn summary(r: &ScenarioResult) -> &str {
    r.diagnosis.as_ref().map_or("", |d| d.summary.as_str())
}

// --- tokens.key_rotation: three findings -------------------------------------------------

#[tokio::test]
async fn key_rotation_may_outlast_the_scenario_timeout_by_its_patience() {
    // A 1 s scenario budget, a cooldown of 1.5 s: the rotation still gets its patience.
    let behaviour = Behaviour { refetch: Refetch::Cooldown(Duration::from_millis(1500)), ..Behaviour::default() };
    let mut ctx = Ctx::new(stub::env_with(behaviour, stub::quick_timeouts(Duration::from_secs(5), Duration::from_secs(1))).await);
    ctx.rotation_patience = Duration::from_secs(6);
    let report = scenarios::run(&mut ctx, &stub::scenarios(&["tokens.key_rotation"]), |_| {}).await;
    assert_verdict(&report.results[0], Verdict::Warn);
}

#[tokio::test]
async fn key_rotation_refetched_at_once_passes() {
    let r = rotation(Refetch::OnUnknownKid, Duration::from_secs(5)).await;
    assert_verdict(&r, Verdict::Pass);
    assert!(r.note.contains("first try"), "{}", r.note);
}

/// `tokens.key_rotation` on a stub whose JWKS cache refetches `refetch`, with a set lifetime
/// of `ttl`: a warning whose cause names the measured delay as `delay`.
async fn rotation_warns_with(refetch: Refetch, ttl: Option<Duration>, delay: &str) {
    let r = stub::one(Behaviour { refetch, jwks_ttl: ttl, ..Behaviour::default() }, "tokens.key_rotation").await;
    assert_verdict(&r, Verdict::Warn);
    let d = r.diagnosis.as_ref().expect("a warning has a diagnosis");
    assert_eq!(d.class, "jwks-cache");
    let cause = d.cause.as_ref().expect("a measured cause");
    assert!(cause.title.contains(delay), "{delay}: {}", cause.title);
    assert!(d.summary.contains("on the backend's clock, moved"), "{}", d.summary);
    assert!(!d.summary.contains("never"), "{}", d.summary);
    assert!(d.fix.contains("refetch the JWKS at once"), "{}", d.fix);
}

#[tokio::test]
async fn key_rotation_after_a_30_s_cooldown_is_measured_on_the_backends_clock() {
    rotation_warns_with(Refetch::Cooldown(Duration::from_secs(30)), Some(Duration::from_secs(300)), "≈30 s").await;
}

#[tokio::test]
async fn key_rotation_after_a_5_min_cooldown_is_measured_on_the_backends_clock() {
    rotation_warns_with(Refetch::Cooldown(Duration::from_secs(300)), None, "≈5 min").await;
}

#[tokio::test]
async fn key_rotation_behind_a_1_h_cache_is_measured_on_the_backends_clock() {
    rotation_warns_with(Refetch::Cooldown(Duration::from_secs(3600)), Some(Duration::from_secs(3600)), "≈1 h").await;
}

#[tokio::test]
async fn key_rotation_never_refetched_fails_saying_so() {
    let r = rotation(Refetch::Never, Duration::from_millis(800)).await;
    assert_verdict(&r, Verdict::Fail);
    assert!(summary(&r).contains("not accepted within ≈24 h") && summary(&r).contains("never refetched"), "{}", summary(&r));
}

// --- CORS on whatever refusal came back ---------------------------------------------------

#[tokio::test]
async fn a_403_refusal_with_cors_headers_passes_the_cors_check() {
    let r = stub::one(Behaviour { forbidden_on_missing_bearer: true, ..Behaviour::default() }, "cors.error_has_cors_headers").await;
    assert_verdict(&r, Verdict::Pass);
    assert!(r.note.contains("403"), "{}", r.note);
}

#[tokio::test]
async fn a_refusal_without_cors_headers_fails_whatever_its_status() {
    let behaviour = Behaviour { forbidden_on_missing_bearer: true, no_cors_on_errors: true, ..Behaviour::default() };
    let r = stub::one(behaviour, "cors.error_has_cors_headers").await;
    assert_verdict(&r, Verdict::Fail);
    assert!(summary(&r).contains("403 answer carries no Access-Control-Allow-Origin"), "{}", summary(&r));
}

// --- loose verdicts ------------------------------------------------------------------------

#[tokio::test]
async fn a_401_without_www_authenticate_is_a_warning() {
    let r = stub::one(Behaviour { no_www_authenticate: true, ..Behaviour::default() }, "tokens.no_authorization").await;
    assert_verdict(&r, Verdict::Warn);
    assert!(summary(&r).contains("WWW-Authenticate"), "{}", summary(&r));
    let ok = stub::one(Behaviour::default(), "tokens.no_authorization").await;
    assert_verdict(&ok, Verdict::Pass);
    assert!(ok.note.contains("WWW-Authenticate: Bearer"), "{}", ok.note);
}

#[tokio::test]
async fn a_refusal_that_says_nothing_is_one_warning_cause_wherever_it_appears() {
    // Neither the body nor the log says why (a Django "Authentication required").
    let silent = Behaviour { refusal_body: Some(r#"{"detail":"Authentication required"}"#.into()), quiet_refusals: true, ..Behaviour::default() };
    let ids = ["tokens.session_id", "tokens.backend_clock_behind", "loops.session_id_by_mistake"];
    let report = stub::run(silent, &stub::scenarios(&ids)).await;
    for r in &report.results {
        assert_verdict(r, Verdict::Warn);
        assert!(summary(r).contains("does not say why") || summary(r).contains("neither the answer nor the backend's log"), "{}", summary(r));
    }
    let causes = report.root_causes();
    assert_eq!(causes.len(), 1, "{causes:#?}");
    assert_eq!(causes[0].cause.id, "silent-refusal");
    assert_eq!(causes[0].scenarios, ids);
    // The body may be terse when the log says why: a pass.
    let logged =
        stub::one(Behaviour { refusal_body: Some(r#"{"detail":"Unauthorized"}"#.into()), ..Behaviour::default() }, "loops.session_id_by_mistake").await;
    assert_verdict(&logged, Verdict::Pass);
    let ok = stub::one(Behaviour::default(), "tokens.session_id").await;
    assert_verdict(&ok, Verdict::Pass);
}

#[tokio::test]
async fn a_session_id_answered_403_is_worded_as_what_happened() {
    let r = stub::one(Behaviour { forbidden_instead_of_401: true, ..Behaviour::default() }, "loops.session_id_by_mistake").await;
    assert_verdict(&r, Verdict::Fail);
    assert!(summary(&r).contains("answered 403 instead of 401"), "{}", summary(&r));
    assert!(!summary(&r).contains("must never be accepted"), "{}", summary(&r));
}

// --- no probe skipped for lack of an expectation ---------------------------------------------

#[tokio::test]
async fn an_evil_azp_is_probed_without_declared_parties_and_accepting_it_warns() {
    let r = one_with_profile(Behaviour::default(), r#"authorized_parties = ["http://localhost:3000"]"#, "authorized_parties = []", "tokens.wrong_azp").await;
    assert_verdict(&r, Verdict::Warn);
    let d = r.diagnosis.as_ref().expect("diagnosis");
    assert!(d.sent.contains("https://evil.example.com"), "{}", d.sent);
    assert!(d.fix.contains("authorized parties"), "{}", d.fix);
}

#[tokio::test]
async fn an_evil_origin_preflight_is_probed_without_declared_origins() {
    let undeclared = (r#"disallowed_origins = ["https://evil.example.com"]"#, "disallowed_origins = []");
    let refused = one_with_profile(Behaviour::default(), undeclared.0, undeclared.1, "cors.preflight_disallowed").await;
    assert_verdict(&refused, Verdict::Pass);
    assert!(refused.note.contains("https://evil.example.com"), "{}", refused.note);
    let reflected =
        one_with_profile(Behaviour { reflect_any_origin: true, ..Behaviour::default() }, undeclared.0, undeclared.1, "cors.preflight_disallowed").await;
    assert_verdict(&reflected, Verdict::Warn);
    assert!(summary(&reflected).contains("any origin is allowed") && summary(&reflected).contains("Credentials"), "{}", summary(&reflected));
    let declared = stub::one(Behaviour { reflect_any_origin: true, ..Behaviour::default() }, "cors.preflight_disallowed").await;
    assert_verdict(&declared, Verdict::Fail);
}

#[tokio::test]
async fn a_foreign_audience_is_probed_without_a_declared_audience_and_reported() {
    // The stub, like Clerk's SDKs, checks aud only when an audience is configured.
    let r = stub::one(Behaviour::default(), "tokens.wrong_audience").await;
    assert_verdict(&r, Verdict::NotApplicable);
    assert!(r.note.contains("sent anyway") && r.note.contains("accepted"), "{}", r.note);
}

// --- what the body says; redirects ------------------------------------------------------------

#[tokio::test]
async fn a_django_csrf_page_is_diagnosed_as_csrf_with_its_reason_quoted() {
    let r = stub::one(Behaviour { csrf_page: true, ..Behaviour::default() }, "tokens.session_token").await;
    assert_verdict(&r, Verdict::Fail);
    let d = r.diagnosis.as_ref().expect("diagnosis");
    assert_eq!(d.class, "framework-csrf");
    assert!(d.summary.contains("CSRF verification failed"), "{}", d.summary);
    assert!(d.fix.contains("csrf_exempt"), "{}", d.fix);
    assert!(d.got.as_ref().is_some_and(|g| g.summary().contains("CSRF verification failed")), "{:?}", d.got.as_ref().map(scenarios::Exchange::summary));
}

#[tokio::test]
async fn a_trailing_slash_redirect_is_followed_and_reported() {
    let report =
        stub::run(Behaviour { trailing_slash_redirect: true, ..Behaviour::default() }, &stub::scenarios(&["tokens.session_token", "tokens.expired"])).await;
    let accepted = &report.results[0];
    assert_verdict(accepted, Verdict::Pass);
    assert!(accepted.note.contains("301 → /api/me/"), "{}", accepted.note);
    let refused = &report.results[1];
    assert_verdict(refused, Verdict::Pass);
    assert!(refused.note.contains("301 → /api/me/, then 401"), "{}", refused.note);
}

// --- the SPA's cookie jar -------------------------------------------------------------------

#[tokio::test]
async fn a_backend_session_cookie_that_outlives_the_clerk_token_fails() {
    let r = stub::one(Behaviour { session_cookie: true, ..Behaviour::default() }, "tokens.backend_session_outlives_clerk").await;
    assert_verdict(&r, Verdict::Fail);
    let s = summary(&r);
    assert!(s.contains("sessionid") && s.contains("expired") && s.contains("revoked"), "{s}");
    let ok = stub::one(Behaviour::default(), "tokens.backend_session_outlives_clerk").await;
    assert_verdict(&ok, Verdict::Pass);
    assert!(ok.note.contains("set no cookie"), "{}", ok.note);
}

/// The aged token of `tokens.backend_clock_ahead` is judged on its own: the session cookie
/// the fresh token's answer set would accept anything, and read as a 15 s leeway.
#[tokio::test]
async fn a_backend_session_cookie_is_not_read_as_clock_skew_leeway() {
    let r = stub::one(Behaviour { session_cookie: true, ..Behaviour::default() }, "tokens.backend_clock_ahead").await;
    assert_verdict(&r, Verdict::Pass);
    assert!(r.note.contains("refused with 401") && !r.note.contains("accepted too"), "{}", r.note);
}

#[tokio::test]
async fn without_credentials_the_cookie_scenario_does_not_apply() {
    let r = one_with_profile(
        Behaviour { session_cookie: true, ..Behaviour::default() },
        "credentials = true",
        "credentials = false",
        "tokens.backend_session_outlives_clerk",
    )
    .await;
    assert_verdict(&r, Verdict::NotApplicable);
}

// --- env.missing_required ---------------------------------------------------------------------

#[tokio::test]
async fn missing_variables_that_stop_the_backend_naming_them_pass() {
    let r = stub::one(Behaviour::default(), "env.missing_required").await;
    assert_verdict(&r, Verdict::Pass);
    assert!(r.note.contains("CLERK_SECRET_KEY") && r.note.contains("CLERK_JWKS_URL"), "{}", r.note);
}

#[tokio::test]
async fn a_backend_that_keeps_running_unhealthy_is_no_clean_exit() {
    let behaviour = Behaviour { unhealthy_without_keys: true, ..Behaviour::default() };
    let r = one_with_profile(behaviour, "ready_timeout_secs = 5", "ready_timeout_secs = 1", "env.missing_required").await;
    assert_verdict(&r, Verdict::Fail);
    assert!(summary(&r).contains("did not exit"), "{}", summary(&r));
}
