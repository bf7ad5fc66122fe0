//! Machine tokens over HTTP: API keys created through the Backend API, M2M and OAuth tokens
//! issued in-process, every verify answer (versioned and unversioned paths) validated against
//! Clerk's OpenAPI response schemas; revoked, expired, unknown and wrong-kind tokens are 404.

mod common;

use common::bearer;
use common::openapi::{assert_valid, response_validator};
use mock_clerk::{MachineTokenKind, NewMachineToken};
use mock_clerk::{MockClerk, NewUser};
use serde_json::{json, Value};

const SPEC: &str = "bapi-2025-11-10.yml";

async fn post(mock: &MockClerk, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new().post(format!("{}{path}", mock.api_url())).header("authorization", bearer(mock)).json(&body).send().await.expect("POST");
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn api_keys_m2m_and_oauth_tokens_verify_with_clerks_schemas() {
    let mock = MockClerk::start().await.expect("mock");
    let user = mock.create_user(NewUser::with_email("k@example.com")).expect("user");
    let (status, created) =
        post(&mock, "/v1/api_keys", json!({"name": "ci key", "subject": user.id, "scopes": ["read"], "seconds_until_expiration": 60})).await;
    assert_eq!(status, 200, "{created:#}");
    assert_valid(&response_validator(SPEC, "/api_keys", "post", "200"), &created, "created API key");
    let secret = created["secret"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("ak_"));

    for path in ["/v1/api_keys/verify", "/api_keys/verify"] {
        let (status, body) = post(&mock, path, json!({"secret": secret})).await;
        assert_eq!(status, 200, "{path}: {body:#}");
        assert_valid(&response_validator(SPEC, "/api_keys/verify", "post", "200"), &body, path);
        assert_eq!((body["subject"].clone(), body.get("secret")), (json!(user.id), None), "verify never returns the secret");
    }
    let machine = mock_clerk::new_id("mch");
    let m2m = mock.issue_machine_token(NewMachineToken::new(MachineTokenKind::M2m, &machine));
    for (path, field) in [("/v1/m2m_tokens/verify", "token"), ("/m2m_tokens/verify", "secret")] {
        let (status, body) = post(&mock, path, json!({ field: m2m.secret })).await;
        assert_eq!(status, 200, "{path}: {body:#}");
        assert_valid(&response_validator(SPEC, "/m2m_tokens/verify", "post", "200"), &body, path);
    }
    let oauth = mock.issue_machine_token(NewMachineToken::new(MachineTokenKind::OAuth, &user.id).scopes(&["email"]));
    let (status, body) = post(&mock, "/v1/oauth_applications/access_tokens/verify", json!({"access_token": oauth.secret})).await;
    assert_eq!(status, 200, "{body:#}");
    assert_valid(&response_validator(SPEC, "/oauth_applications/access_tokens/verify", "post", "200"), &body, "oauth");

    // Wrong kind, unknown, revoked, expired: 404 with Clerk's error JSON.
    let not_found = response_validator(SPEC, "/api_keys/verify", "post", "404");
    let (status, body) = post(&mock, "/api_keys/verify", json!({"secret": m2m.secret})).await;
    assert_eq!(status, 404, "an M2M token is not an API key");
    assert_valid(&not_found, &body, "wrong kind");
    let (status, revoked) = post(&mock, &format!("/v1/m2m_tokens/{}/revoke", m2m.id), json!({"revocation_reason": "leaked"})).await;
    assert_eq!((status, revoked["revoked"].clone(), revoked["revocation_reason"].clone()), (200, json!(true), json!("leaked")));
    assert_eq!(post(&mock, "/m2m_tokens/verify", json!({"secret": m2m.secret})).await.0, 404, "revoked");
    mock.clock().advance(std::time::Duration::from_secs(61));
    assert_eq!(post(&mock, "/api_keys/verify", json!({"secret": secret})).await.0, 404, "expired");
    assert_eq!(post(&mock, "/api_keys/verify", json!({})).await.0, 400, "no secret: the spec's 400 for a malformed body");
    let (status, _) = post(&mock, "/v1/api_keys", json!({"name": "x", "subject": user.id})).await;
    assert_eq!(status, 422, "name too short");
    let resp = reqwest::Client::new().post(format!("{}/api_keys/verify", mock.api_url())).json(&json!({"secret": oauth.secret})).send().await.expect("POST");
    assert_eq!(resp.status(), 401, "verification needs the secret key");
}
