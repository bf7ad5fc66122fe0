//! The cookie scenarios' verdicts on the stub backend, with the SPA sending its token as the
//! `__session` cookies (`[token] transport = "cookie"`): pass, warn, fail and not applicable.

mod stub;

use harness::TestEnv;
use scenarios::{Ctx, Report, ScenarioResult, Verdict};
use stub::{assert_verdict, Behaviour, Stub};

const COOKIES: [&str; 4] = ["cookies.expired_cookie", "cookies.client_uat_newer", "cookies.dev_browser_missing", "cookies.handshake_loop"];

async fn run_cookie_profile(behaviour: Behaviour, ids: &[&str]) -> Report {
    let profile = stub_backend::profile_with("kind = \"session\"", "kind = \"session\"\ntransport = \"cookie\"").expect("cookie profile");
    let env = TestEnv::builder(profile).config(Stub::new(behaviour).config()).start().await.unwrap_or_else(|e| panic!("stub environment: {e}"));
    let mut ctx = Ctx::new(env);
    scenarios::run(&mut ctx, &stub::scenarios(ids), |_| {}).await
}

fn result<'a>(report: &'a Report, id: &str) -> &'a ScenarioResult {
    report.result(id).unwrap_or_else(|| panic!("{id} has no result"))
}

fn handshaking() -> Behaviour {
    Behaviour { handshake: true, ..Behaviour::default() }
}

#[tokio::test]
async fn token_scenarios_go_through_the_cookie_path() {
    let ids = ["tokens.session_token", "tokens.expired", "tokens.expired_within_skew", "tokens.tampered", "tokens.wrong_azp", "loops.spa_converges"];
    let report = run_cookie_profile(Behaviour::default(), &ids).await;
    for id in ids {
        assert_verdict(result(&report, id), Verdict::Pass);
    }
    let accepting = run_cookie_profile(Behaviour { accept_expired: true, ..Behaviour::default() }, &["tokens.expired"]).await;
    assert_verdict(result(&accepting, "tokens.expired"), Verdict::Fail);
}

#[tokio::test]
async fn a_backend_without_the_handshake_passes_and_has_no_loop_to_guard() {
    let report = run_cookie_profile(Behaviour::default(), &COOKIES).await;
    for id in &COOKIES[..3] {
        assert_verdict(result(&report, id), Verdict::Pass);
    }
    let loop_result = result(&report, "cookies.handshake_loop");
    assert_verdict(loop_result, Verdict::NotApplicable);
    assert!(loop_result.note.contains("never redirects"), "{}", loop_result.note);
}

#[tokio::test]
async fn the_handshake_chain_through_the_mock_ends_signed_in() {
    let report = run_cookie_profile(handshaking(), &COOKIES).await;
    for id in COOKIES {
        assert_verdict(result(&report, id), Verdict::Pass);
    }
    let expired = result(&report, "cookies.expired_cookie");
    assert!(expired.note.contains("through the handshake (session-token-expired"), "{}", expired.note);
    let dvb = result(&report, "cookies.dev_browser_missing");
    assert!(dvb.note.contains("dev-browser-missing"), "{}", dvb.note);
}

#[tokio::test]
async fn ignoring_client_uat_is_a_warning() {
    let r = run_cookie_profile(Behaviour { cookie_ignores_client_uat: true, ..Behaviour::default() }, &["cookies.client_uat_newer"]).await;
    let r = result(&r, "cookies.client_uat_newer");
    assert_verdict(r, Verdict::Warn);
    assert_eq!(r.diagnosis.as_ref().map(|d| d.class.as_str()), Some("cookie-session"));
}

#[tokio::test]
async fn accepting_an_expired_cookie_fails_as_token_expiry() {
    let r = run_cookie_profile(Behaviour { accept_expired: true, ..Behaviour::default() }, &["cookies.expired_cookie"]).await;
    let r = result(&r, "cookies.expired_cookie");
    assert_verdict(r, Verdict::Fail);
    assert_eq!(r.diagnosis.as_ref().map(|d| d.class.as_str()), Some("token-expiry"));
}

#[tokio::test]
async fn a_handshake_that_never_takes_its_fresh_cookie_is_a_loop_explained() {
    let report = run_cookie_profile(Behaviour { handshake_refuses_fresh: true, ..handshaking() }, &["cookies.handshake_loop", "cookies.expired_cookie"]).await;
    for id in ["cookies.handshake_loop", "cookies.expired_cookie"] {
        let r = result(&report, id);
        assert_verdict(r, Verdict::Fail);
        let d = r.diagnosis.as_ref().expect("diagnosis");
        assert!(d.summary.contains("handshake redirect loop: 3 handshakes") && d.summary.contains("instance keys do not match"), "{id}: {}", d.summary);
    }
    assert_eq!(result(&report, "cookies.handshake_loop").diagnosis.as_ref().map(|d| d.class.as_str()), Some("handshake-loop"));
}

#[tokio::test]
async fn a_handshake_without_the_loop_guard_fails() {
    let r = run_cookie_profile(Behaviour { handshake_ignores_counter: true, ..handshaking() }, &["cookies.handshake_loop"]).await;
    let r = result(&r, "cookies.handshake_loop");
    assert_verdict(r, Verdict::Fail);
    assert!(r.diagnosis.as_ref().is_some_and(|d| d.summary.contains("4th time")), "{:#?}", r.diagnosis);
}

#[tokio::test]
async fn a_bearer_profile_does_not_apply_the_cookie_scenarios() {
    let report = stub::run(Behaviour::default(), &stub::scenarios(&COOKIES)).await;
    for id in COOKIES {
        let r = result(&report, id);
        assert_verdict(r, Verdict::NotApplicable);
        assert!(r.note.contains("transport = \"bearer\""), "{id}: {}", r.note);
    }
}
