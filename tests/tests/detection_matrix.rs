//! The detection matrix: for each seeded fault of the reference backend, at least one
//! scenario fails and its diagnosis names the fault's class. (The clean backend passing
//! every scenario is the catalogue suite.)
//!
//! One seeded fault is a risk rather than a defect, and is caught as a `warn`: skipping the
//! `iss` check. Clerk's own SDKs skip it too, and a token with another `iss` that verifies
//! must have been signed with this instance's key, which only Clerk holds — so calling it a
//! failure would be a false alarm on every backend built on Clerk's SDK.

mod common;

use harness::HarnessConfig;
use rstest::rstest;
use scenarios::Verdict;

#[rstest]
#[case::rejecting_default_session_tokens_is_caught("reject_session_tokens", "reference", "token-type")]
#[case::skipping_the_audience_check_is_caught("skip_audience", "reference-template", "audience")]
#[case::skipping_the_issuer_check_is_caught_as_a_warning("skip_issuer", "reference", "issuer")]
#[case::caching_tokens_past_expiry_is_caught("cache_past_expiry", "reference", "validation-cache")]
#[case::a_jwks_cache_that_never_refetches_is_caught("stale_jwks", "reference", "jwks-cache")]
#[case::starting_without_keys_is_caught("start_without_keys", "reference", "startup-config")]
#[case::cors_without_authorization_is_caught("cors_no_authorization", "reference", "cors")]
#[case::wildcard_origins_taken_literally_are_caught("cors_wildcard_literal", "reference", "cors")]
#[case::cors_headers_missing_on_errors_are_caught("cors_missing_on_error", "reference", "cors")]
#[case::forbidden_on_missing_bearer_is_caught("forbidden_on_missing_bearer", "reference", "missing-bearer")]
#[case::a_user_sync_race_is_caught("sync_race", "reference", "user-sync")]
#[case::crashing_on_users_without_email_is_caught("sync_requires_email", "reference", "user-sync")]
#[case::unsigned_webhooks_accepted_are_caught("webhook_unsigned", "reference", "webhook-signature")]
#[case::trusting_the_tokens_alg_is_caught("alg_from_header", "reference", "algorithm")]
#[case::trusting_the_session_cookie_unverified_is_caught("cookie_skips_verification", "reference-cookie", "signature")]
#[case::a_401_when_the_jwks_cannot_be_loaded_cold_is_caught("jwks_cold_401", "reference", "jwks")]
#[case::reading_v1_org_claims_is_caught("org_claims_v1", "reference", "org-claims")]
#[case::a_database_error_answered_401_is_caught("db_error_401", "reference", "database-errors")]
#[case::a_deleted_user_answered_500_is_caught("deleted_user_500", "reference", "backend-api-errors")]
#[case::webhooks_that_ignore_updated_at_are_caught("webhook_ignores_updated_at", "reference", "webhook-ordering")]
#[case::a_poison_webhook_failing_every_retry_is_caught("webhook_poison_500", "reference", "webhook-sync")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_fault(#[case] fault: &str, #[case] profile: &str, #[case] class: &str) {
    let report = common::run(common::profile(profile), HarnessConfig::local(), Some(fault), &scenarios::catalogue()).await;
    let failing: Vec<(String, String)> =
        report.with_verdict(Verdict::Fail).map(|r| (r.id.clone(), r.diagnosis.as_ref().map(|d| d.class.clone()).unwrap_or_default())).collect();
    if fault == "skip_issuer" {
        let warning: Vec<&str> = report.with_verdict(Verdict::Warn).map(|r| r.id.as_str()).collect();
        assert!(report.warns(class), "fault {fault}: no scenario warns with class {class}; warnings: {warning:?}; failing: {failing:?}");
    } else {
        assert!(report.catches(class), "fault {fault}: no failing scenario names class {class}; failing: {failing:?}");
    }
}

/// The validation cache past `exp` is found by moving the reference backend's clock
/// (libfaketime), not by sleeping: both the seconds replay and the minutes replay fail with the
/// cache's class, and their diagnoses say the clock was moved. (How long it takes is measured
/// by the CLI's report, not asserted here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_past_exp_is_found_by_moving_the_backends_clock() {
    let only: Vec<scenarios::Scenario> =
        scenarios::catalogue().into_iter().filter(|s| ["tokens.replay_after_expiry", "tokens.cache_outlives_exp"].contains(&s.id)).collect();
    let report = common::run(common::profile("reference"), HarnessConfig::local(), Some("cache_past_expiry"), &only).await;
    assert_eq!(report.results.len(), 2);
    for r in &report.results {
        assert_eq!(r.verdict, Verdict::Fail, "{}: {:?}", r.id, r.diagnosis);
        let d = r.diagnosis.as_ref().expect("a failure has a diagnosis");
        assert_eq!(d.class, "validation-cache", "{}", r.id);
        assert!(d.sent.contains("the backend's clock moved on"), "{}: {}", r.id, d.sent);
    }
    let minutes = &report.results[1].diagnosis.as_ref().expect("diagnosis").summary;
    assert!(minutes.contains("still accepted 3 min 7 s after its exp (refused 10 min 7 s after)"), "{minutes}");
    // Both explained by one measured cause.
    let causes = report.root_causes();
    assert_eq!(causes.len(), 1, "{causes:#?}");
    assert_eq!(causes[0].scenarios, ["tokens.replay_after_expiry", "tokens.cache_outlives_exp"]);
}
