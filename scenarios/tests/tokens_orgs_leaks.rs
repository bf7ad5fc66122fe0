//! Issue 23's tokens, organizations and leaks slice, on the stub backend: every declared
//! endpoint, the JWKS down with a cold cache, the scheme's case, organization-gated
//! endpoints and the run-level leak check — each pass and each failure mode.

mod stub;

use harness::TestEnv;
use scenarios::internal::ColdPhase;
use scenarios::{Ctx, Report, ScenarioResult, Verdict};
use stub::{assert_verdict, Behaviour};
use stub_backend::{ITEMS_PATH, ORG_ENDPOINT, ORG_PERMISSION_ENDPOINT};

/// The stub's profile with `extra` endpoints declared before `[user]`.
fn profile(extra: &str) -> harness::Profile {
    stub_backend::profile_with("[user]", &format!("{extra}[user]")).unwrap_or_else(|e| panic!("profile: {e}"))
}

async fn run(behaviour: Behaviour, extra: &str, ids: &[&str]) -> Report {
    let env = TestEnv::builder(profile(extra)).config(stub::Stub::new(behaviour).config()).start().await.unwrap_or_else(|e| panic!("stub environment: {e}"));
    let mut ctx = Ctx::new(env);
    scenarios::run(&mut ctx, &stub::scenarios(ids), |_| {}).await
}

async fn one(behaviour: Behaviour, extra: &str, id: &str) -> ScenarioResult {
    run(behaviour, extra, &[id]).await.results.into_iter().next().unwrap_or_else(|| panic!("{id} produced no result"))
}

fn summary(r: &ScenarioResult) -> String {
    r.diagnosis.as_ref().map_or_else(String::new, |d| d.summary.clone())
}

fn class(r: &ScenarioResult) -> &str {
    r.diagnosis.as_ref().map_or("", |d| d.class.as_str())
}

const ITEMS: &str = "[[endpoints]]\nmethod = \"GET\"\npath = \"/api/items\"\nstatus = 200\nsyncs_user = true\n\n";

// --- tokens.every_endpoint ------------------------------------------------------------------

#[tokio::test]
async fn every_endpoint_passes_when_each_answers_its_status() {
    let r = one(Behaviour::default(), &format!("{ITEMS}{ORG_ENDPOINT}"), "tokens.every_endpoint").await;
    assert_verdict(&r, Verdict::Pass);
    assert!(r.note.contains("3 endpoint(s)") && r.note.contains(ITEMS_PATH) && r.note.contains("/api/org/settings → 200"), "{}", r.note);
}

#[tokio::test]
async fn an_endpoint_that_crashes_for_a_valid_user_fails_naming_it_and_quoting_the_body() {
    let r = one(Behaviour { items_crash: true, ..Behaviour::default() }, ITEMS, "tokens.every_endpoint").await;
    assert_verdict(&r, Verdict::Fail);
    let s = summary(&r);
    assert!(s.contains("GET /api/items crashed (500)") && s.contains("Traceback"), "{s}");
    assert_eq!(class(&r), "endpoint-error");
}

// --- tokens.malformed_header: the scheme's case ---------------------------------------------

#[tokio::test]
async fn a_case_insensitive_scheme_passes_and_a_case_sensitive_one_warns_citing_the_rfc() {
    let ok = stub::one(Behaviour::default(), "tokens.malformed_header").await;
    assert_verdict(&ok, Verdict::Pass);
    assert!(ok.note.contains("`bearer` and `BEARER` accepted"), "{}", ok.note);
    let strict = stub::one(Behaviour { case_sensitive_bearer: true, ..Behaviour::default() }, "tokens.malformed_header").await;
    assert_verdict(&strict, Verdict::Warn);
    assert!(summary(&strict).contains("RFC 7235 §2.1") && summary(&strict).contains("bearer → 401"), "{}", summary(&strict));
    // A malformed header's crash still fails first.
    let crash = stub::one(Behaviour { crash_on_garbage: true, case_sensitive_bearer: true, ..Behaviour::default() }, "tokens.malformed_header").await;
    assert_verdict(&crash, Verdict::Fail);
}

// --- tokens.jwks_down_cold_cache --------------------------------------------------------------

#[tokio::test]
async fn jwks_down_with_a_cold_cache_503_passes_through_start_up_and_expiry() {
    let r = stub::one(Behaviour::default(), "tokens.jwks_down_cold_cache").await;
    assert_verdict(&r, Verdict::Pass);
    assert!(r.note.contains("at start-up") && r.note.contains("→ 503") && r.note.contains("cache expired") && !r.note.contains("→ 401"), "{}", r.note);
}

#[tokio::test]
async fn a_jwks_cache_that_outlives_the_clock_move_says_the_expiry_outage_was_not_exercised() {
    // A cache that never expires answers the second outage from memory: a pass for the
    // start-up outage, saying the expired-cache case was not tried (not a silent pass).
    let r = stub::one(Behaviour { jwks_ttl: None, ..Behaviour::default() }, "tokens.jwks_down_cold_cache").await;
    assert_verdict(&r, Verdict::Pass);
    assert!(r.note.contains("at start-up") && r.note.contains("outlived") && r.note.contains("not exercised"), "{}", r.note);
    // With the default 300 s cache the expiry outage is exercised: no such note.
    let r = stub::one(Behaviour::default(), "tokens.jwks_down_cold_cache").await;
    assert!(!r.note.contains("not exercised"), "{}", r.note);
}

#[tokio::test]
async fn jwks_down_with_a_cold_cache_401_fails() {
    let r = stub::one(Behaviour { jwks_failure_401: true, ..Behaviour::default() }, "tokens.jwks_down_cold_cache").await;
    assert_verdict(&r, Verdict::Fail);
    assert!(summary(&r).contains("at start-up") && summary(&r).contains("got 401"), "{}", summary(&r));
    assert_eq!(class(&r), "jwks");
}

#[tokio::test]
async fn a_401_only_when_the_cache_expires_during_an_outage_fails_too() {
    // 503 with a cold cache, but a stale cache whose refetch fails is dropped: 401.
    let r = stub::one(Behaviour { jwks_stale_failure_401: true, ..Behaviour::default() }, "tokens.jwks_down_cold_cache").await;
    assert_verdict(&r, Verdict::Fail);
    let s = summary(&r);
    assert!(s.contains("the cache expired") && s.contains("got 401") && !s.contains("at start-up"), "{s}");
    // A backend that stays refusing after the outage did not recover.
    let got = |status| scenarios::Exchange { status, ..scenarios::Exchange::default() };
    let stuck = vec![ColdPhase::outage("at start-up, the JWKS answering 503", got(503)), ColdPhase::recovery("once the JWKS answers again", got(401))];
    let outcome = scenarios::internal::judge_cold_cache("s".into(), 200, &stuck, false);
    assert!(matches!(&outcome, scenarios::Outcome::Fail(f) if f.problem.contains("did not recover")), "{outcome:?}");
}

// --- orgs.* -----------------------------------------------------------------------------------

const ORG_IDS: [&str; 3] = ["orgs.admin_accepted", "orgs.member_forbidden", "orgs.no_active_org_forbidden"];

#[tokio::test]
async fn a_correct_org_check_passes_all_three() {
    let report = run(Behaviour::default(), ORG_ENDPOINT, &ORG_IDS).await;
    for r in &report.results {
        assert_verdict(r, Verdict::Pass);
    }
    assert!(report.results[1].note.contains("403"), "{}", report.results[1].note);
}

#[tokio::test]
async fn a_permission_gate_is_granted_through_fea_per_and_fpm() {
    // The holder gets a custom role with the permission, packed into fea/o.per/o.fpm by the mock.
    let report = run(Behaviour::default(), ORG_PERMISSION_ENDPOINT, &ORG_IDS).await;
    for r in &report.results {
        assert_verdict(r, Verdict::Pass);
    }
    let every = one(Behaviour::default(), ORG_PERMISSION_ENDPOINT, "tokens.every_endpoint").await;
    assert_verdict(&every, Verdict::Pass);
    let loose = run(Behaviour { org_refusal_401: true, ..Behaviour::default() }, ORG_PERMISSION_ENDPOINT, &ORG_IDS).await;
    assert_verdict(&loose.results[0], Verdict::Pass);
    assert_verdict(&loose.results[1], Verdict::Fail);
}

#[tokio::test]
async fn without_an_org_gated_endpoint_the_org_scenarios_do_not_apply() {
    let report = run(Behaviour::default(), "", &ORG_IDS).await;
    for r in &report.results {
        assert_verdict(r, Verdict::NotApplicable);
        assert!(r.note.contains("org_role"), "{}", r.note);
    }
}

#[tokio::test]
async fn reading_the_v1_claim_names_is_caught_with_that_diagnosis() {
    let r = one(Behaviour { org_claims_v1: true, ..Behaviour::default() }, ORG_ENDPOINT, "orgs.admin_accepted").await;
    assert_verdict(&r, Verdict::Fail);
    assert!(summary(&r).contains("reads the v1 claim names") && summary(&r).contains("got 200"), "{}", summary(&r));
    assert_eq!(class(&r), "org-claims");
}

#[tokio::test]
async fn a_401_for_a_member_or_no_organization_fails() {
    let report = run(Behaviour { org_refusal_401: true, ..Behaviour::default() }, ORG_ENDPOINT, &ORG_IDS).await;
    assert_verdict(&report.results[0], Verdict::Pass);
    for r in &report.results[1..] {
        assert_verdict(r, Verdict::Fail);
        assert!(summary(r).contains("401 instead of 403"), "{}", summary(r));
    }
}

#[tokio::test]
async fn an_ignored_role_check_fails_the_member_scenario() {
    let report = run(Behaviour { org_role_ignored: true, ..Behaviour::default() }, ORG_ENDPOINT, &ORG_IDS).await;
    assert_verdict(&report.results[0], Verdict::Pass);
    assert_verdict(&report.results[1], Verdict::Fail);
    assert!(summary(&report.results[1]).contains("ACCEPTED"), "{}", summary(&report.results[1]));
    assert_verdict(&report.results[2], Verdict::Pass);
}

/// A gate of `org:member` (any membership, as django-clerk-users' `@clerk_org_required`):
/// a plain member holds it, so `orgs.member_forbidden` has nobody to refuse and must not
/// claim a pass for a request it never sent.
#[tokio::test]
async fn a_gate_every_member_holds_leaves_the_member_scenario_not_applicable() {
    let member_gate = ORG_ENDPOINT.replace("org:admin", "org:member");
    let r = one(Behaviour { org_role_ignored: true, ..Behaviour::default() }, &member_gate, "orgs.member_forbidden").await;
    assert_verdict(&r, Verdict::NotApplicable);
    assert!(r.note.contains("/api/org/settings") && r.note.contains("org:member"), "{}", r.note);
}

/// The token scenarios' endpoint is never an org-gated one (their user is in no
/// organization, so a correct backend answers 403): here the only endpoint without a user
/// sync is org-gated, and a valid token must still be judged on the syncing `/api/me`.
#[tokio::test]
async fn token_scenarios_never_call_an_org_gated_endpoint() {
    let profile = stub_backend::profile_with(
        "path = \"/api/me\"\nstatus = 200\n\n[user]",
        &format!("path = \"/api/me\"\nstatus = 200\nsyncs_user = true\n\n{ORG_ENDPOINT}[user]"),
    )
    .unwrap_or_else(|e| panic!("profile: {e}"));
    let env =
        TestEnv::builder(profile).config(stub::Stub::new(Behaviour::default()).config()).start().await.unwrap_or_else(|e| panic!("stub environment: {e}"));
    let mut ctx = Ctx::new(env);
    assert_eq!(ctx.token_endpoint().expect("an endpoint").path.get(), "/api/me");
    let report = scenarios::run(&mut ctx, &stub::scenarios(&["tokens.session_token", "tokens.expired_within_skew"]), |_| {}).await;
    for r in &report.results {
        assert_verdict(r, Verdict::Pass);
    }
}

#[test]
fn org_gates_are_validated_with_their_location() {
    for (bad, says) in [
        ("org_role = \"admin\"", "`org:<role>`"),
        ("org_permission = \"invoices:manage\"", "`org:<feature>:<permission>`"),
        ("org_permission = \"org:sys_memberships:manage\"", "system permissions"),
        ("org_role = \"org:admin\"\norg_permission = \"org:a:b\"", "not both"),
    ] {
        let text = format!("[[endpoints]]\nmethod = \"GET\"\npath = \"/api/x\"\n{bad}\n\n");
        let e = stub_backend::profile_with("[user]", &format!("{text}[user]")).map(|_| ()).expect_err(bad).to_string();
        assert!(e.contains(says) && e.contains("PROFILE:"), "{bad}: {e}");
    }
    let ok = profile("[[endpoints]]\nmethod = \"GET\"\npath = \"/api/x\"\norg_permission = \"org:invoices:manage\"\n\n");
    assert_eq!(ok.org_endpoints().count(), 1);
}

// --- errors.no_internal_leak ------------------------------------------------------------------

#[tokio::test]
async fn leaky_refusals_warn_with_the_excerpt_and_the_scenario_they_came_from() {
    let report = run(Behaviour { leaky_refusals: true, ..Behaviour::default() }, "", &["errors.no_internal_leak", "tokens.expired", "tokens.alg_none"]).await;
    // Run last whatever the order given.
    let r = report.results.last().expect("results");
    assert_eq!(r.id, "errors.no_internal_leak");
    assert_verdict(r, Verdict::Warn);
    let s = summary(r);
    assert!(s.contains("Traceback") && s.contains("in tokens.expired") && s.contains("tokens.alg_none"), "{s}");
    assert_eq!(class(r), "internal-leak");
}

#[tokio::test]
async fn clean_refusals_pass_and_a_lone_run_provokes_its_own() {
    let report = run(Behaviour::default(), "", &["tokens.expired", "errors.no_internal_leak"]).await;
    assert_verdict(&report.results[1], Verdict::Pass);
    assert!(report.results[1].note.contains("the run collected"), "{}", report.results[1].note);
    let alone = stub::one(Behaviour::default(), "errors.no_internal_leak").await;
    assert_verdict(&alone, Verdict::Pass);
    assert!(alone.note.contains("provoked itself"), "{}", alone.note);
    let leaky = stub::one(Behaviour { leaky_refusals: true, ..Behaviour::default() }, "errors.no_internal_leak").await;
    assert_verdict(&leaky, Verdict::Warn);
}

#[tokio::test]
async fn a_crash_body_from_every_endpoint_is_read_too() {
    let report = run(Behaviour { items_crash: true, ..Behaviour::default() }, ITEMS, &["tokens.every_endpoint", "errors.no_internal_leak"]).await;
    assert_verdict(&report.results[0], Verdict::Fail);
    assert_verdict(&report.results[1], Verdict::Warn);
    assert!(summary(&report.results[1]).contains("500 answer to GET /api/items in tokens.every_endpoint"), "{}", summary(&report.results[1]));
}
