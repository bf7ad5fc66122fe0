//! The Backend API answers like Clerk's: JSON validated against Clerk's OpenAPI spec,
//! millisecond timestamps, plain arrays for lists, Clerk's error JSON for every failure.

mod common;

use common::openapi::{assert_valid, validator};
use common::{bearer, fetch_jwks};
use mock_clerk::{Fault, MockClerk, NewUser, Route, TemplateSpec};
use reqwest::StatusCode;
use serde_json::{json, Value};

const SPEC: &str = "bapi-2025-11-10.yml";

struct Api {
    mock: MockClerk,
    client: reqwest::Client,
}

impl Api {
    async fn start() -> Self {
        Self { mock: MockClerk::start().await.expect("mock"), client: reqwest::Client::new() }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.mock.api_url())).header("authorization", bearer(&self.mock));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn assert_clerk_error(body: &Value, code: &str) {
    assert_valid(&validator(SPEC, "ClerkErrors"), body, "error body");
    assert_eq!(body["errors"][0]["code"], code, "{body:#}");
}

#[tokio::test]
async fn users_and_sessions_match_clerks_openapi_schemas() {
    let api = Api::start().await;
    let user_schema = validator(SPEC, "User");
    let (status, created) = api
        .call(
            reqwest::Method::POST,
            "/v1/users",
            Some(json!({
                "email_address": ["ada@example.com"], "first_name": "Ada", "last_name": "Lovelace",
                "public_metadata": {"role": "admin"}
            })),
        )
        .await;
    assert_eq!(status, 200);
    assert_valid(&user_schema, &created, "created user");
    let id = created["id"].as_str().expect("id");
    assert!(id.starts_with("user_"));
    let email = &created["email_addresses"][0];
    assert_eq!(created["primary_email_address_id"], email["id"]);
    assert_eq!(email["verification"]["status"], "verified");
    let created_at = created["created_at"].as_i64().expect("ms");
    assert!(created_at > 1_000_000_000_000, "timestamps are milliseconds, got {created_at}");

    // Users without email: phone-only, and a legacy user with an external id.
    for new in [NewUser::default().phone("+15555550100"), NewUser::default().external_id("legacy-42").names("Old", "Timer")] {
        let u = api.mock.create_user(new).expect("user");
        let (_, body) = api.call(reqwest::Method::GET, &format!("/v1/users/{}", u.id), None).await;
        assert_valid(&user_schema, &body, "user without email");
        assert_eq!(body["primary_email_address_id"], Value::Null);
        assert_eq!(body["email_addresses"], json!([]));
    }

    let (_, list) = api.call(reqwest::Method::GET, "/v1/users?limit=2", None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(2), "a plain array, limited");
    for u in list.as_array().expect("array") {
        assert_valid(&user_schema, u, "listed user");
    }
    let (_, by_email) = api.call(reqwest::Method::GET, "/v1/users?email_address=ada@example.com", None).await;
    assert_eq!(by_email[0]["id"], id);
    let (_, by_id) = api.call(reqwest::Method::GET, &format!("/v1/users?user_id={id}"), None).await;
    assert_eq!(by_id.as_array().map(Vec::len), Some(1));
    let (_, offset) = api.call(reqwest::Method::GET, "/v1/users?offset=2", None).await;
    assert_eq!(offset.as_array().map(Vec::len), Some(1));
    let (_, count) = api.call(reqwest::Method::GET, "/v1/users/count", None).await;
    assert_eq!(count, json!({"object": "total_count", "total_count": 3}));

    let (_, updated) = api.call(reqwest::Method::PATCH, &format!("/v1/users/{id}"), Some(json!({"first_name": "Augusta"}))).await;
    assert_eq!(updated["first_name"], "Augusta");
    assert!(updated["updated_at"].as_i64() >= Some(created_at));

    let session_schema = validator(SPEC, "Session");
    let (_, session) = api.call(reqwest::Method::POST, "/v1/sessions", Some(json!({"user_id": id}))).await;
    assert_valid(&session_schema, &session, "session");
    let sid = session["id"].as_str().expect("sid");
    let (_, listed) = api.call(reqwest::Method::GET, &format!("/v1/sessions?user_id={id}"), None).await;
    assert_eq!(listed[0]["id"], sid);
    let (_, token) = api.call(reqwest::Method::POST, &format!("/v1/sessions/{sid}/tokens"), Some(json!({}))).await;
    assert_valid(&validator(SPEC, "Token"), &token, "token");
    let (_, revoked) = api.call(reqwest::Method::POST, &format!("/v1/sessions/{sid}/revoke"), None).await;
    assert_eq!(revoked["status"], "revoked");
    assert_valid(&session_schema, &revoked, "revoked session");

    api.mock.add_template(TemplateSpec::new("backend", json!({"e": "{{user.primary_email_address}}"}))).expect("template");
    let (_, templates) = api.call(reqwest::Method::GET, "/v1/jwt_templates", None).await;
    assert_valid(&validator(SPEC, "JWTTemplate"), &templates[0], "template");

    let (status, deleted) = api.call(reqwest::Method::DELETE, &format!("/v1/users/{id}"), None).await;
    assert_eq!((status.as_u16(), deleted), (200, json!({"object": "user", "id": id, "deleted": true})));
}

#[tokio::test]
async fn the_schema_check_catches_a_mistyped_or_missing_field() {
    let mock = MockClerk::start().await.expect("mock");
    let user = mock.create_user(NewUser::with_email("s@example.com")).expect("user").to_json();
    let v = validator(SPEC, "User");
    assert!(v.is_valid(&user));
    let mut seconds_as_string = user.clone();
    seconds_as_string["created_at"] = json!("1700000000");
    assert!(!v.is_valid(&seconds_as_string));
    let mut missing = user;
    missing.as_object_mut().expect("object").remove("primary_email_address_id");
    assert!(!v.is_valid(&missing));
}

#[tokio::test]
async fn bad_requests_get_clerks_error_json() {
    let api = Api::start().await;
    let user = api.mock.create_user(NewUser::with_email("e@example.com")).expect("user");
    let session = api.mock.create_session(&user.id).expect("session");

    let (status, body) = api.call(reqwest::Method::GET, "/v1/users/user_doesnotexist", None).await;
    assert_eq!(status, 404);
    assert_clerk_error(&body, "resource_not_found");

    let (status, body) = api.call(reqwest::Method::POST, &format!("/v1/sessions/{}/tokens/no-such-template", session.id), None).await;
    assert_eq!(status, 404, "unknown template");
    assert_clerk_error(&body, "resource_not_found");

    let (status, body) = api.call(reqwest::Method::GET, "/v1/no/such/route", None).await;
    assert_eq!(status, 404);
    assert_clerk_error(&body, "resource_not_found");

    let resp =
        api.client.post(format!("{}/v1/users", api.mock.api_url())).header("authorization", bearer(&api.mock)).body("{not json").send().await.expect("POST");
    assert_eq!(resp.status(), 422);
    assert_clerk_error(&resp.json().await.expect("json"), "form_param_format_invalid");

    let (status, body) = api.call(reqwest::Method::POST, "/v1/users", Some(json!({"email_address": ["e@example.com"]}))).await;
    assert_eq!(status, 422, "email taken");
    assert_clerk_error(&body, "form_identifier_exists");

    for auth in [None, Some("Bearer sk_test_wrong"), Some("Basic abc")] {
        let mut req = api.client.get(format!("{}/v1/users", api.mock.api_url()));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.expect("GET");
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert_clerk_error(&resp.json().await.expect("json"), "clerk_key_invalid");
    }
}

#[tokio::test]
async fn jwks_on_both_apis_and_rotation_with_overlap() {
    let api = Api::start().await;
    let (status, bapi_jwks) = api.call(reqwest::Method::GET, "/v1/jwks", None).await;
    assert_eq!(status, 200);
    let fapi_keys = fetch_jwks(&api.mock.jwks_url()).await;
    assert_eq!(bapi_jwks["keys"].as_array(), Some(&fapi_keys));
    assert_valid(&validator(SPEC, "JWKS"), &bapi_jwks, "JWKS");
    assert_eq!(
        fapi_keys[0],
        json!({
            "use": "sig", "kty": "RSA", "kid": api.mock.instance().id(), "alg": "RS256",
            "n": fapi_keys[0]["n"], "e": "AQAB"
        })
    );

    let old_kid = api.mock.instance().id().to_string();
    let new_kid = api.mock.rotate_key(mock_clerk::Rotation::KeepOldFor(std::time::Duration::from_secs(300))).expect("rotate");
    let kids: Vec<Value> = fetch_jwks(&api.mock.jwks_url()).await.iter().map(|k| k["kid"].clone()).collect();
    assert_eq!(kids, vec![json!(new_kid), json!(old_kid)]);
    let user = api.mock.create_user(NewUser::with_email("r@example.com")).expect("user");
    let session = api.mock.create_session(&user.id).expect("session");
    let (header, _) = mock_clerk::decode_unverified(&api.mock.session_token(&session.id, None).expect("token")).expect("decodes");
    assert_eq!(header["kid"], json!(new_kid), "new tokens carry the new kid");
    api.mock.clock().advance(std::time::Duration::from_secs(301));
    assert_eq!(fetch_jwks(&api.mock.jwks_url()).await.len(), 1, "old key gone after the overlap");
    api.mock.rotate_key(mock_clerk::Rotation::DropOld).expect("rotate");
    assert_eq!(fetch_jwks(&api.mock.jwks_url()).await.len(), 1, "dropped at once");
}

#[tokio::test]
async fn injected_faults_answer_then_recover_and_everything_is_recorded() {
    let api = Api::start().await;
    api.mock.faults().inject(Fault::status(Route::backend("GET /v1/users/*"), 503).times(2));
    api.mock.faults().inject(Fault::rate_limited(Route::backend("GET /v1/users"), 7).times(1));
    let user = api.mock.create_user(NewUser::with_email("f@example.com")).expect("user");
    let path = format!("/v1/users/{}", user.id);
    for _ in 0..2 {
        let (status, body) = api.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 503);
        assert_clerk_error(&body, "internal_clerk_error");
    }
    assert_eq!(api.call(reqwest::Method::GET, &path, None).await.0, 200, "recovered after 2");
    let resp = api.client.get(format!("{}/v1/users", api.mock.api_url())).header("authorization", bearer(&api.mock)).send().await.expect("GET");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");

    for f in Fault::jwks_outage() {
        api.mock.faults().inject(f);
    }
    assert_eq!(reqwest::get(api.mock.jwks_url()).await.expect("GET").status(), 503);

    let recorded = api.mock.faults().requests_matching(&Route::backend("GET /v1/users/*"));
    assert_eq!(recorded.iter().map(|r| r.status).collect::<Vec<_>>(), vec![503, 503, 200]);
    let auth = recorded[0].headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.clone()).expect("auth header");
    assert!(!auth.contains(api.mock.instance().secret_key().expose()), "secrets are not recorded in full");
}

#[tokio::test]
#[should_panic(expected = "expectations not met")]
async fn an_unmet_expectation_panics_on_drop_with_the_requests_received() {
    let mock = MockClerk::start().await.expect("mock");
    mock.expect(mock_clerk::Expectation::new(Route::backend("GET /v1/users/*"), 1..));
    let _ = reqwest::get(mock.jwks_url()).await;
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let err = MockClerk::builder().ports(port, 0).start().await.expect_err("port taken");
    let msg = err.to_string();
    assert!(msg.contains(&port.to_string()) && msg.contains("already in use"), "{msg}");
}

#[tokio::test]
async fn mocks_started_in_a_loop_reuse_pool_keys_instead_of_generating_new_ones() {
    // A fresh RSA-2048 key takes ~100 ms; a pool key microseconds. Mocks started one after
    // another must hand their key back so the pool is never exhausted by a loop.
    let mut moduli = std::collections::HashSet::new();
    for _ in 0..30 {
        let mock = MockClerk::start().await.expect("mock");
        moduli.insert(mock.instance().jwks()[0].n.clone());
        drop(mock); // no await before the next start: the aborted server tasks still hold the key
    }
    assert!(moduli.len() <= 2, "{} distinct keys for 30 sequential mocks: the pool was not reused", moduli.len());
}
