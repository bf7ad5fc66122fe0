//! Property tests over the token-minting bodies: whatever a client sends to
//! `POST /v1/sessions/{id}/tokens[/{template}]` — any JSON, any number in
//! `expires_in_seconds`, bytes that are no JSON at all — the mock answers 200 or a 4xx in
//! Clerk's error JSON, never a 5xx or a panic, and a token it mints expires exactly when asked
//! (`exp - iat` is the lifetime, never wrapped). The requests go through the Backend API
//! router in-process, so thousands of cases take about a second.

use axum::body::Body;
use axum::http::Request;
use mock_clerk::{decode_unverified, MockClerk, NewUser, TemplateSpec};
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt as _;

/// Clerk's bounds (`expires_in_seconds`: minimum 30, maximum 315360000).
const LIFETIME: std::ops::RangeInclusive<i64> = 30..=315_360_000;

struct Target {
    runtime: tokio::runtime::Runtime,
    mock: MockClerk,
    session: String,
}

impl Target {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let mock = runtime.block_on(MockClerk::start()).expect("mock");
        let user = mock.create_user(NewUser::with_email("prop@example.com")).expect("user");
        let session = mock.create_session(&user.id).expect("session").id;
        mock.add_template(TemplateSpec::new("backend", json!({"uid": "{{user.id}}"})).lifetime(120)).expect("template");
        Self { runtime, mock, session }
    }

    /// (status, body) of a POST with `body` to `path`.
    fn post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let request = Request::post(path)
            .header("authorization", format!("Bearer {}", self.mock.instance().secret_key().expose()))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        self.runtime.block_on(async {
            let response = self.mock.bapi_router().oneshot(request).await.expect("infallible");
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
            (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        })
    }

    fn paths(&self) -> [(String, i64); 2] {
        [(format!("/v1/sessions/{}/tokens", self.session), 60), (format!("/v1/sessions/{}/tokens/backend", self.session), 120)]
    }
}

/// Any JSON value, nested a little.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from), prop::collection::hash_map(".{0,6}", inner, 0..4).prop_map(|m| json!(m)),]
    })
}

/// Numbers around every edge of the lifetime and of `i64`.
fn any_lifetime() -> impl Strategy<Value = i64> {
    prop_oneof![any::<i64>(), -100..400_i64, 315_359_900..315_360_100_i64, Just(i64::MAX), Just(i64::MIN), Just(i64::MAX - 1)]
}

/// Checks one answer: 200 with a token living exactly `want` seconds, or a 4xx with Clerk's errors.
fn check(status: u16, body: &Value, want: Option<i64>) -> Result<(), TestCaseError> {
    prop_assert!(status == 200 || (400..500).contains(&status), "status {status}: {body}");
    if status == 200 {
        let (_, claims) = decode_unverified(body["jwt"].as_str().unwrap_or("")).map_err(|e| TestCaseError::fail(format!("no JWT: {e}")))?;
        let (iat, exp) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
        prop_assert!(exp > iat, "a minted token expires after it is issued: iat {iat}, exp {exp}");
        if let Some(want) = want {
            prop_assert_eq!(exp - iat, want);
        }
    } else {
        prop_assert!(body["errors"][0]["code"].is_string(), "Clerk's error JSON: {body}");
    }
    Ok(())
}

/// Runs `test` on `cases` values of `strategy` against one mock (a property test per mock
/// start, not per case).
fn for_all<S: Strategy>(strategy: S, test: impl Fn(&Target, S::Value) -> Result<(), TestCaseError>) {
    let target = Target::new();
    let config = ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, |value| test(&target, value)) {
        panic!("{e}");
    }
}

#[test]
fn any_lifetime_mints_exactly_that_lifetime_or_is_refused() {
    for_all(any_lifetime(), |target, secs| {
        for (path, _) in target.paths() {
            let (status, body) = target.post(&path, json!({ "expires_in_seconds": secs }).to_string().into_bytes());
            prop_assert_eq!(status == 200, LIFETIME.contains(&secs), "{} with {}: {} {}", path, secs, status, body);
            check(status, &body, Some(secs))?;
        }
        Ok(())
    });
}

#[test]
fn any_json_body_gets_a_token_or_a_clerk_error() {
    for_all((any_json(), any_json()), |target, (body, extra)| {
        let mut with_field = json!({ "expires_in_seconds": extra });
        if let (Some(m), Value::Object(b)) = (with_field.as_object_mut(), &body) {
            m.extend(b.clone());
        }
        for candidate in [body, with_field] {
            for (path, default) in target.paths() {
                let (status, answer) = target.post(&path, candidate.to_string().into_bytes());
                let asked = candidate.get("expires_in_seconds").and_then(Value::as_i64);
                check(status, &answer, Some(asked.unwrap_or(default)))?;
            }
        }
        Ok(())
    });
}

#[test]
fn any_bytes_get_a_token_or_a_clerk_error() {
    for_all(prop::collection::vec(any::<u8>(), 0..64), |target, bytes| {
        for (path, default) in target.paths() {
            let (status, answer) = target.post(&path, bytes.clone());
            check(status, &answer, Some(default))?;
        }
        Ok(())
    });
}
