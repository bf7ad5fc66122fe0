//! Bring-up on the in-process stub: profile endpoints the backend does not have stop the run
//! once, naming the profile line; a health path answering an error is reported at once; a
//! failed restart shows only its own log lines.

mod stub;

use harness::{EnvChanges, HarnessError, TestEnv};
use stub::{Behaviour, Stub};

async fn start(profile: harness::Profile, behaviour: Behaviour) -> Result<TestEnv, HarnessError> {
    TestEnv::builder(profile).config(Stub::new(behaviour).config()).start().await
}

fn endpoint_path(to: &str) -> harness::Profile {
    stub_backend::profile_with("path = \"/api/me\"", &format!("path = \"{to}\"")).expect("valid profile")
}

/// The line of `needle` in the stub's profile text.
fn line_of(needle: &str) -> usize {
    stub_backend::PROFILE.lines().position(|l| l.contains(needle)).expect("in the profile") + 1
}

#[tokio::test]
async fn an_endpoint_the_backend_does_not_route_stops_the_bring_up_naming_the_profile_line() {
    let err = start(endpoint_path("/api/v1/me"), Behaviour::default()).await.expect_err("a route that does not exist");
    let HarnessError::EndpointMismatch { location, path, answer, .. } = &err else { panic!("expected EndpointMismatch, got {err}") };
    assert_eq!(path, "/api/v1/me");
    assert_eq!(location, &format!("stub-backend/PROFILE:{}", line_of("path = \"/api/me\"")));
    assert!(answer.starts_with("404"), "{answer}");
    assert!(err.to_string().contains("GET /api/v1/me"), "{err}");
}

#[tokio::test]
async fn a_method_the_route_does_not_allow_stops_the_bring_up() {
    let profile = stub_backend::profile_with("method = \"GET\"", "method = \"DELETE\"").expect("valid");
    let err = start(profile, Behaviour::default()).await.expect_err("405");
    assert!(matches!(&err, HarnessError::EndpointMismatch { answer, .. } if answer.starts_with("405")), "{err}");
}

#[tokio::test]
async fn a_redirect_to_a_login_page_stops_the_bring_up() {
    let err = start(endpoint_path(stub_backend::LOGIN_PAGE_PATH), Behaviour::default()).await.expect_err("login redirect");
    assert!(matches!(&err, HarnessError::EndpointMismatch { answer, .. } if answer.contains("/accounts/login/")), "{err}");
}

#[tokio::test]
async fn the_applications_own_404_is_not_a_missing_route() {
    // An API answering 404 "user not found" has the route: the scenarios judge it.
    let env = start(endpoint_path(stub_backend::MISSING_USER_PATH), Behaviour::default()).await;
    assert!(env.is_ok(), "{:?}", env.err());
}

#[tokio::test]
async fn a_health_path_answering_400_is_reported_at_once_with_the_part_of_the_page_that_says_why() {
    let page = format!(
        "<html><head><title>DisallowedHost</title></head><body>{}<pre>Invalid HTTP_HOST header: '127.0.0.1:41234'. You may need to add '127.0.0.1' to ALLOWED_HOSTS.</pre></body></html>",
        "<p>Django debug page</p>".repeat(60)
    );
    let err = start(stub_backend::profile(), Behaviour { health: Some((400, page)), ..Behaviour::default() }).await.expect_err("400 on /health");
    let HarnessError::HealthRefused { status, body, hint, log_tail, .. } = &err else {
        panic!("expected HealthRefused (not a wait for the ready timeout), got {err}")
    };
    assert_eq!(*status, 400);
    assert!(body.contains("add '127.0.0.1' to ALLOWED_HOSTS"), "{body}");
    assert!(hint.contains("ALLOWED_HOSTS"), "{hint}");
    assert!(!log_tail.contains("GET /health "), "the probes' own access-log lines are left out: {log_tail}");
    assert!(log_tail.contains("listening on"), "{log_tail}");
}

#[tokio::test]
async fn a_failed_restart_shows_only_the_log_of_that_start() {
    let mut env = start(stub_backend::profile(), Behaviour::default()).await.expect("stub env");
    let before = env.logs().join("\n");
    assert!(before.contains("listening on"), "{before}");
    let err = env.restart_backend_with(EnvChanges::new().unset("CLERK_SECRET_KEY")).await.expect_err("refuses without its key");
    let HarnessError::BackendExited { log_tail, .. } = &err else { panic!("expected BackendExited, got {err}") };
    assert!(log_tail.contains("CLERK_SECRET_KEY is not set"), "{log_tail}");
    assert!(!log_tail.contains("listening on"), "lines of the earlier start are not this start's: {log_tail}");
}
