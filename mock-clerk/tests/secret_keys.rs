//! The secret key selects the instance, as on `api.clerk.com`: another instance's valid key
//! gets THAT instance's JWKS and data; an invalid (or revoked) key gets 401
//! `clerk_key_invalid` in Clerk's error JSON.

mod common;

use common::openapi::{assert_valid, validator};
use mock_clerk::{MockClerk, NewUser};
use reqwest::StatusCode;
use serde_json::Value;

const SPEC: &str = "bapi-2025-11-10.yml";

async fn get(mock: &MockClerk, path: &str, key: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new().get(format!("{}{path}", mock.api_url())).bearer_auth(key).send().await.expect("request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"].as_array().expect("keys").iter().map(|k| k["kid"].as_str().expect("kid").to_string()).collect()
}

#[tokio::test]
async fn another_instances_valid_key_gets_that_instances_jwks_and_data() {
    let a = MockClerk::start().await.expect("mock a");
    let b = MockClerk::start().await.expect("mock b");
    a.add_peer(&b);
    let b_key = b.instance().secret_key().expose().to_string();

    let (status, jwks) = get(&a, "/v1/jwks", &b_key).await;
    assert_eq!(status, StatusCode::OK, "{jwks:#}");
    assert_eq!(kids(&jwks), vec![b.instance().active_key().kid().to_string()], "B's key gets B's JWKS");
    assert!(!kids(&jwks).contains(&a.instance().active_key().kid().to_string()), "not A's");

    // B's data, not A's: A's user is unknown to B (Clerk's 404), B's user is found.
    let user_a = a.create_user(NewUser::with_email("ada@a.test")).expect("user a");
    let user_b = b.create_user(NewUser::with_email("bob@b.test")).expect("user b");
    let (status, body) = get(&a, &format!("/v1/users/{}", user_a.id), &b_key).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body:#}");
    assert_valid(&validator(SPEC, "ClerkErrors"), &body, "404 body");
    let (status, body) = get(&a, &format!("/v1/users/{}", user_b.id), &b_key).await;
    assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some(user_b.id.as_str())));

    // A's own key still gets A.
    let (status, jwks) = get(&a, "/v1/jwks", a.instance().secret_key().expose()).await;
    assert_eq!((status, kids(&jwks)), (StatusCode::OK, vec![a.instance().active_key().kid().to_string()]));
}

#[tokio::test]
async fn an_invalid_key_or_a_gone_instances_key_gets_401_clerk_key_invalid() {
    let a = MockClerk::start().await.expect("mock a");
    let b = MockClerk::start().await.expect("mock b");
    let b_key = b.instance().secret_key().expose().to_string();

    // Not a peer: the key of no instance this API knows.
    for key in [b_key.as_str(), "sk_test_notakeyofanyinstance0000000000000000", "garbage"] {
        let (status, body) = get(&a, "/v1/jwks", key).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key}: {body:#}");
        assert_valid(&validator(SPEC, "ClerkErrors"), &body, "401 body");
        assert_eq!(body["errors"][0]["code"], "clerk_key_invalid", "{body:#}");
    }

    // A peer that was removed, or dropped (its instance deleted: its keys revoked), is unknown again.
    a.add_peer(&b);
    assert_eq!(get(&a, "/v1/jwks", &b_key).await.0, StatusCode::OK);
    a.remove_peer(&b);
    assert_eq!(get(&a, "/v1/jwks", &b_key).await.0, StatusCode::UNAUTHORIZED);
    a.add_peer(&b);
    drop(b);
    let (status, body) = get(&a, "/v1/jwks", &b_key).await;
    assert_eq!((status, body["errors"][0]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("clerk_key_invalid")));
}
