//! Start-up configuration on the stub backend (issue 23): every required variable judged by
//! what it guards and all reported, each with its own start's log; another instance's valid
//! secret key; an invalid (revoked) secret key.

mod stub;

use harness::{Profile, TestEnv};
use scenarios::{Ctx, ScenarioResult, Verdict};
use stub::{assert_verdict, Behaviour, Stub};
use stub_backend::{KeyRefused, MissingSecretKey, WebhookSecretUse};

/// The stub's profile with `CLERK_WEBHOOK_SECRET` required (guarding the webhook secret) and
/// the stub's webhook receiver as `webhook_path`.
fn webhook_profile() -> Profile {
    let text = stub_backend::PROFILE
        .replace(
            r#"required_env = ["CLERK_SECRET_KEY", "CLERK_JWKS_URL"]"#,
            &format!(
                "required_env = [\"CLERK_SECRET_KEY\", \"CLERK_JWKS_URL\", {{ name = \"CLERK_WEBHOOK_SECRET\", guards = \"webhook_secret\" }}]\nwebhook_path = \"{}\"",
                stub_backend::CONFIG_WEBHOOK_PATH
            ),
        )
        .replace(r#"CLERK_SECRET_KEY = "{secret_key}""#, "CLERK_SECRET_KEY = \"{secret_key}\"\nCLERK_WEBHOOK_SECRET = \"{webhook_secret}\"");
    assert!(text.contains("webhook_path") && text.contains("CLERK_WEBHOOK_SECRET = "), "the stub's profile changed: update this test");
    Profile::parse(&text, "stub-backend/PROFILE+webhooks", ".").unwrap_or_else(|e| panic!("profile: {e}"))
}

async fn run(profile: Profile, behaviour: Behaviour, id: &str) -> ScenarioResult {
    let env = TestEnv::builder(profile).config(Stub::new(behaviour).config()).start().await.unwrap_or_else(|e| panic!("stub environment: {e}"));
    let mut ctx = Ctx::new(env);
    let report = scenarios::run(&mut ctx, &stub::scenarios(&[id]), |_| {}).await;
    report.results.into_iter().next().unwrap_or_else(|| panic!("{id} produced no result"))
}

fn summary(r: &ScenarioResult) -> &str {
    r.diagnosis.as_ref().map_or("", |d| d.summary.as_str())
}

// --- env.missing_required ---------------------------------------------------------------------

#[tokio::test]
async fn every_required_variable_that_stops_the_backend_naming_it_passes() {
    let behaviour = Behaviour { webhook_secret: WebhookSecretUse::Required, ..Behaviour::default() };
    let r = run(webhook_profile(), behaviour, "env.missing_required").await;
    assert_verdict(&r, Verdict::Pass);
    for var in ["CLERK_SECRET_KEY", "CLERK_JWKS_URL", "CLERK_WEBHOOK_SECRET"] {
        assert!(r.note.contains(&format!("{var}: exits in")), "{var}: {}", r.note);
    }
}

#[tokio::test]
async fn a_webhook_secret_whose_absence_applies_unsigned_webhooks_is_fail_open() {
    let behaviour = Behaviour { webhook_secret: WebhookSecretUse::FailOpen, ..Behaviour::default() };
    let r = run(webhook_profile(), behaviour, "env.missing_required").await;
    assert_verdict(&r, Verdict::Fail);
    let d = r.diagnosis.as_ref().expect("a diagnosis");
    assert!(d.summary.contains("FAIL-OPEN") && d.summary.contains("CLERK_WEBHOOK_SECRET (guards webhook_secret)"), "{}", d.summary);
    assert_eq!(d.class, "webhook-signature", "the label follows what the variable guards");
    assert!(!d.fix.contains("failing every request"), "{}", d.fix);
    // The other variables are reported too, as correct.
    assert!(d.summary.contains("CLERK_SECRET_KEY: exits in") && d.summary.contains("CLERK_JWKS_URL: exits in"), "{}", d.summary);
    // Only that start's log: not the other starts' exits.
    assert_eq!(d.backend_log.first().map(String::as_str), Some("── the start without CLERK_WEBHOOK_SECRET ──"), "{:#?}", d.backend_log);
    assert!(d.backend_log.iter().any(|l| l.contains("applied (no CLERK_WEBHOOK_SECRET")), "{:#?}", d.backend_log);
    assert!(!d.backend_log.iter().any(|l| l.contains("CLERK_JWKS_URL is not set") || l.contains("CLERK_SECRET_KEY is not set")), "{:#?}", d.backend_log);
}

#[tokio::test]
async fn a_backend_that_starts_without_its_webhook_secret_but_refuses_unsigned_webhooks_passes() {
    let r = run(webhook_profile(), Behaviour::default(), "env.missing_required").await;
    assert_verdict(&r, Verdict::Pass);
    assert!(r.note.contains("CLERK_WEBHOOK_SECRET: starts without it but refuses unverifiable webhooks"), "{}", r.note);
}

#[tokio::test]
async fn an_exit_naming_the_setting_that_holds_the_key_passes() {
    let behaviour = Behaviour { missing_secret_key: MissingSecretKey::ExitNamingSetting, ..Behaviour::default() };
    let r = stub::one(behaviour, "env.missing_required").await;
    assert_verdict(&r, Verdict::Pass);
    assert!(r.note.contains("CLERK_SECRET_KEY: exits in") && r.note.contains("naming the setting"), "{}", r.note);
}

#[tokio::test]
async fn a_backend_that_starts_and_fails_every_request_fails_with_a_fix_for_that() {
    let behaviour = Behaviour { missing_secret_key: MissingSecretKey::FailEveryRequest, ..Behaviour::default() };
    let r = stub::one(behaviour, "env.missing_required").await;
    assert_verdict(&r, Verdict::Fail);
    let d = r.diagnosis.as_ref().expect("a diagnosis");
    assert!(d.summary.contains("STARTED without the required variable CLERK_SECRET_KEY") && d.summary.contains("500"), "{}", d.summary);
    assert_eq!(d.class, "startup-config");
    assert!(d.fix.contains("instead of failing every request later"), "{}", d.fix);
}

#[tokio::test]
async fn all_variables_are_reported_not_only_the_first() {
    // Without the secret key the stub still verifies tokens (a warn); without the JWKS URL
    // every request is refused (a fail): both are in the finding.
    let r = stub::one(Behaviour { start_without_keys: true, ..Behaviour::default() }, "env.missing_required").await;
    assert_verdict(&r, Verdict::Fail);
    let s = summary(&r);
    assert!(s.contains("[warn] CLERK_SECRET_KEY") && s.contains("[fail] CLERK_JWKS_URL"), "{s}");
}

// --- env.foreign_secret_key -------------------------------------------------------------------

#[tokio::test]
async fn another_instances_key_refused_with_a_401_that_says_why_passes() {
    let r = stub::one(Behaviour { jwks_via_secret_key: true, ..Behaviour::default() }, "env.foreign_secret_key").await;
    assert_verdict(&r, Verdict::Pass);
    assert!(r.note.contains("kid"), "{}", r.note);
}

#[tokio::test]
async fn another_instances_key_refused_silently_warns() {
    let behaviour = Behaviour { jwks_via_secret_key: true, quiet_refusals: true, empty_refusal_body: true, ..Behaviour::default() };
    let r = stub::one(behaviour, "env.foreign_secret_key").await;
    assert_verdict(&r, Verdict::Warn);
    assert!(summary(&r).contains("neither the answer nor the log says why"), "{}", summary(&r));
}

#[tokio::test]
async fn a_key_the_backend_never_uses_is_not_applicable() {
    // The stub verifies with CLERK_JWKS_URL and calls no Backend API for its token endpoint.
    let r = stub::one(Behaviour::default(), "env.foreign_secret_key").await;
    assert_verdict(&r, Verdict::NotApplicable);
}

// --- env.invalid_secret_key -------------------------------------------------------------------

#[tokio::test]
async fn an_invalid_key_answered_with_a_5xx_naming_it_passes() {
    let r = stub::one(Behaviour { jwks_via_secret_key: true, ..Behaviour::default() }, "env.invalid_secret_key").await;
    assert_verdict(&r, Verdict::Pass);
}

#[tokio::test]
async fn an_invalid_key_answered_with_a_bare_500_warns() {
    let behaviour = Behaviour { jwks_via_secret_key: true, key_refused: KeyRefused::BareServerError, ..Behaviour::default() };
    let r = stub::one(behaviour, "env.invalid_secret_key").await;
    assert_verdict(&r, Verdict::Warn);
    assert!(summary(&r).contains("bare 500"), "{}", summary(&r));
}

#[tokio::test]
async fn an_invalid_key_answered_with_401_fails() {
    let behaviour = Behaviour { jwks_via_secret_key: true, key_refused: KeyRefused::Unauthorized, ..Behaviour::default() };
    let r = stub::one(behaviour, "env.invalid_secret_key").await;
    assert_verdict(&r, Verdict::Fail);
    assert!(summary(&r).contains("GET /v1/jwks 401") && summary(&r).contains("must be a 5xx"), "{}", summary(&r));
}

#[tokio::test]
async fn an_invalid_key_the_backend_never_uses_is_not_applicable() {
    let r = stub::one(Behaviour::default(), "env.invalid_secret_key").await;
    assert_verdict(&r, Verdict::NotApplicable);
}

// --- the three together: backends beside the shared one, started at once ------------------------

#[tokio::test]
async fn the_key_and_host_scenarios_share_one_start_beside_the_untouched_shared_backend() {
    // An invalid key answered with 401 (fail), beside another instance's key (whose JWKS
    // calls succeed with *its* key): each verdict must quote only its own backend's calls.
    let behaviour = Behaviour { jwks_via_secret_key: true, key_refused: KeyRefused::Unauthorized, ..Behaviour::default() };
    let mut ctx = Ctx::new(stub::env(behaviour).await);
    let shared = ctx.env.backend_url().clone();
    let ids = ["env.foreign_secret_key", "env.invalid_secret_key", "env.foreign_fapi_host"];
    let report = scenarios::run(&mut ctx, &stub::scenarios(&ids), |_| {}).await;
    let verdicts: Vec<(&str, Verdict)> = report.results.iter().map(|r| (r.id.as_str(), r.verdict)).collect();
    assert_eq!(verdicts, [(ids[0], Verdict::Pass), (ids[1], Verdict::Fail), (ids[2], Verdict::Pass)], "{report:#?}");
    let invalid = summary(&report.results[1]);
    assert!(invalid.contains("GET /v1/jwks 401") && !invalid.contains(" 200"), "the invalid key's Backend API calls only: {invalid}");
    // The shared backend was never restarted, and the three starts were one batch.
    assert_eq!(ctx.env.backend_url(), &shared, "the shared backend was restarted");
    let logs = ctx.env.logs();
    let headers: Vec<&String> = logs.iter().filter(|l| l.contains("backend beside the shared one")).collect();
    assert_eq!(headers.len(), 3, "one log section per side backend: {headers:#?}");
    let first = &report.results[0];
    let timeline = serde_json::to_string(first).expect("a result serialises");
    assert!(timeline.contains("starts 3 backend(s) beside the shared one, at once"), "the first of them starts all three: {timeline}");
}

// --- TLS trust at bring-up ----------------------------------------------------------------------

#[tokio::test]
async fn a_backend_client_that_trusts_only_bundled_roots_is_one_error_at_bring_up_naming_the_fix() {
    // Routed through the interception proxy to https://{fapi_host}: the stub's client trusts
    // webpki-roots only (reqwest `rustls-tls`), so the per-run CA is refused with unknown_ca.
    let text = stub_backend::PROFILE
        .replace("intercept = false", "intercept = true")
        .replace(r#"CLERK_JWKS_URL = "{jwks_url}""#, r#"CLERK_JWKS_URL = "https://{fapi_host}/.well-known/jwks.json""#);
    assert!(text.contains("intercept = true") && text.contains("https://{fapi_host}/.well-known"), "the stub's profile changed: update this test");
    let profile = Profile::parse(&text, "stub-backend/PROFILE+intercept", ".").unwrap_or_else(|e| panic!("profile: {e}"));
    let behaviour = Behaviour { bundled_roots_only: true, ..Behaviour::default() };
    let t0 = std::time::Instant::now();
    let err = TestEnv::builder(profile).config(Stub::new(behaviour).config()).start().await.expect_err("a backend that cannot reach Clerk");
    assert!(matches!(err, harness::HarnessError::ClerkTlsUntrusted { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("clerk.accounts.dev") && message.contains("unknown_ca"), "names the host and the alert: {message}");
    assert!(message.contains("rustls-tls-native-roots") && message.contains("{jwks_url}"), "names the fix: {message}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(10), "within seconds, not a timeout per scenario: {:?}", t0.elapsed());

    // The fix it names: the same client pointed at the mock by URL ({jwks_url}, plain HTTP)
    // needs no TLS, and the bring-up goes through.
    let by_url = stub_backend::PROFILE.replace("intercept = false", "intercept = true");
    let profile = Profile::parse(&by_url, "stub-backend/PROFILE+intercept", ".").unwrap_or_else(|e| panic!("profile: {e}"));
    let env = TestEnv::builder(profile).config(Stub::new(Behaviour { bundled_roots_only: true, ..Behaviour::default() }).config()).start().await;
    assert!(env.is_ok(), "{:?}", env.err());
}
