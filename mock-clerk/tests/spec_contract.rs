//! The differences from Clerk's OpenAPI contract that schemathesis found (issue 24), one test
//! each: token lifetimes, request bodies, API keys, organisations, paging, unknown methods,
//! machine-token errors and FAPI tokens bound to the requesting client. The contract suite
//! itself (`tests/contract/run.py`, run by `scripts/test`) keeps finding the next ones.

use mock_clerk::{decode_unverified, Environment, InstanceConfig, MockClerk, NewUser, Session, TemplateSpec};
use rstest::rstest;
use serde_json::{json, Value};

/// A mock with one user (email required by the instance) and a signed-in session.
struct App {
    mock: MockClerk,
    http: reqwest::Client,
    session: Session,
}

impl App {
    async fn start() -> Self {
        Self::with(MockClerk::start().await.expect("mock"))
    }

    fn with(mock: MockClerk) -> Self {
        let user = mock.create_user(NewUser::with_email("ada@example.com")).expect("user");
        let session = mock.create_session(&user.id).expect("session");
        mock.add_template(TemplateSpec::new("backend", json!({"uid": "{{user.id}}"})).lifetime(60)).expect("template");
        Self { mock, http: reqwest::Client::new(), session }
    }

    /// A Backend API request with the secret key and a raw body; (status, JSON or Null).
    async fn bapi(&self, method: reqwest::Method, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.mock.api_url())).bearer_auth(self.mock.instance().secret_key().expose());
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_owned());
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.bapi(reqwest::Method::POST, path, Some(&body.to_string())).await
    }

    /// `POST` to the Frontend API with extra headers; (status, JSON).
    async fn fapi_post(&self, path_and_query: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path_and_query}", self.mock.fapi_url()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn lifetime(jwt: &Value) -> i64 {
    let (_, claims) = decode_unverified(jwt.as_str().expect("jwt")).expect("decodes");
    claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat")
}

fn code(body: &Value) -> &str {
    body["errors"][0]["code"].as_str().unwrap_or("")
}

#[rstest]
#[case::negative(json!(-5), 422)]
#[case::zero(json!(0), 422)]
#[case::just_below(json!(29), 422)]
#[case::just_above(json!(315_360_001), 422)]
#[case::i64_max_wraps_no_more(json!(i64::MAX), 422)]
#[case::beyond_i64(json!(1e20), 422)]
#[case::fractional(json!(30.5), 422)]
#[case::minimum(json!(30), 200)]
#[case::maximum(json!(315_360_000), 200)]
#[case::null_is_the_default(Value::Null, 200)]
#[tokio::test]
async fn session_token_lifetimes_are_bounded_as_the_spec_says(#[case] secs: Value, #[case] expected: u16) {
    let app = App::start().await;
    for path in [format!("/v1/sessions/{}/tokens", app.session.id), format!("/v1/sessions/{}/tokens/backend", app.session.id)] {
        let (status, body) = app.post(&path, &json!({ "expires_in_seconds": secs })).await;
        assert_eq!(status, expected, "{path} with {secs}: {body}");
        if expected == 200 {
            if let Some(secs) = secs.as_i64() {
                assert_eq!(lifetime(&body["jwt"]), secs, "{path}: exp - iat is the lifetime asked for");
            }
        } else if secs.is_i64() {
            assert_eq!(body["errors"][0]["meta"]["param_name"], "expires_in_seconds", "{body}");
        }
    }
}

#[tokio::test]
async fn template_tokens_honour_expires_in_seconds_and_default_to_the_templates_lifetime() {
    let app = App::start().await;
    let path = format!("/v1/sessions/{}/tokens/backend", app.session.id);
    let (_, body) = app.post(&path, &json!({ "expires_in_seconds": 600 })).await;
    assert_eq!(lifetime(&body["jwt"]), 600);
    let (_, body) = app.post(&path, &json!({})).await;
    assert_eq!(lifetime(&body["jwt"]), 60, "the template's own lifetime");
}

#[rstest]
#[case::not_json("not json")]
#[case::null("null")]
#[case::a_number("0.0")]
#[case::an_array("[null, null]")]
#[case::a_string("\"x\"")]
#[tokio::test]
async fn token_endpoints_refuse_a_body_that_is_not_a_json_object(#[case] body: &str) {
    let app = App::start().await;
    for path in [format!("/v1/sessions/{}/tokens", app.session.id), format!("/v1/sessions/{}/tokens/backend", app.session.id)] {
        let (status, answer) = app.bapi(reqwest::Method::POST, &path, Some(body)).await;
        assert_eq!(status, 422, "{path} with {body}: {answer}");
    }
}

#[rstest]
#[case::array("public_metadata", json!([null]))]
#[case::string("private_metadata", json!("str"))]
#[case::number("unsafe_metadata", json!(5))]
#[tokio::test]
async fn user_metadata_must_be_an_object(#[case] field: &str, #[case] value: Value) {
    let app = App::start().await;
    let user_id = app.session.user_id.clone();
    let create = app.post("/v1/users", &json!({ "email_address": ["new@example.com"], field: value })).await;
    let update = app.bapi(reqwest::Method::PATCH, &format!("/v1/users/{user_id}"), Some(&json!({ field: value }).to_string())).await;
    let merge = app.bapi(reqwest::Method::PATCH, &format!("/v1/users/{user_id}/metadata"), Some(&json!({ field: value }).to_string())).await;
    for (what, (status, body)) in [("create", create), ("update", update), ("merge", merge)] {
        assert_eq!(status, 422, "{what}: {body}");
        assert_eq!(body["errors"][0]["meta"]["param_name"], field, "{what}: {body}");
    }
    let (status, body) = app.bapi(reqwest::Method::PATCH, &format!("/v1/users/{user_id}/metadata"), Some(r#"{"unsafe_metadata": null}"#)).await;
    assert_eq!(status, 422, "the metadata endpoint's fields are not nullable: {body}");
    let (status, body) =
        app.bapi(reqwest::Method::PATCH, &format!("/v1/users/{user_id}"), Some(r#"{"unsafe_metadata": null, "public_metadata": {"a": 1}}"#)).await;
    assert_eq!((status, &body["public_metadata"]), (200, &json!({"a": 1})), "PATCH /users/{{id}} takes null as unchanged: {body}");
}

#[rstest]
#[case::nothing(json!({}))]
#[case::a_phone_only(json!({"phone_number": ["+15555550100"]}))]
#[case::an_empty_address(json!({"email_address": [""]}))]
#[tokio::test]
async fn a_user_without_an_email_address_is_refused_as_the_instance_requires_one(#[case] body: Value) {
    let app = App::start().await;
    let (status, answer) = app.post("/v1/users", &body).await;
    assert_eq!((status, code(&answer)), (422, "form_data_missing"), "{answer}");
}

#[rstest]
#[case::unknown_property(json!({"email_address": ["b@example.com"], "nickname": "b"}), "nickname")]
#[case::mistyped_ignored_property(json!({"email_address": ["b@example.com"], "bypass_client_trust": {}}), "bypass_client_trust")]
#[case::password_hasher_not_a_string(json!({"email_address": ["b@example.com"], "password_hasher": 3}), "password_hasher")]
#[tokio::test]
async fn user_bodies_are_checked_against_every_property_of_the_spec(#[case] body: Value, #[case] param: &str) {
    let app = App::start().await;
    let (status, answer) = app.post("/v1/users", &body).await;
    assert_eq!((status, &answer["errors"][0]["meta"]["param_name"]), (422, &json!(param)), "{answer}");
    let (status, answer) = app.post("/v1/users", &json!({"email_address": ["c@example.com"], "locale": "fr-FR", "skip_password_checks": true})).await;
    assert_eq!(status, 200, "properties the mock ignores but the spec has are accepted: {answer}");
}

#[tokio::test]
async fn api_key_subjects_follow_the_specs_pattern_including_scim() {
    let app = App::start().await;
    let tail = "a".repeat(27);
    let scim = format!("scim_{tail}");
    let (status, body) = app.post("/v1/api_keys", &json!({"name": "scim key", "subject": scim})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], scim.as_str());
    for bad in ["user_short", "org_", "mch_", "service_account", &format!("scim_{tail}x")] {
        let (status, body) = app.post("/v1/api_keys", &json!({"name": "bad subject", "subject": bad})).await;
        assert_eq!((status, &body["errors"][0]["meta"]["param_name"]), (422, &json!("subject")), "{bad}: {body}");
    }
}

#[tokio::test]
async fn api_key_names_are_counted_in_characters() {
    let app = App::start().await;
    let subject = app.session.user_id.clone();
    let (status, body) = app.post("/v1/api_keys", &json!({"name": "ééé", "subject": subject})).await;
    assert_eq!(status, 200, "three characters (six bytes): {body}");
    let (status, body) = app.post("/v1/api_keys", &json!({"name": "éé", "subject": subject})).await;
    assert_eq!(status, 422, "two characters (four bytes): {body}");
}

#[tokio::test]
async fn organizations_take_role_set_key_and_created_at_and_count_members_on_request() {
    let app = App::start().await;
    let (status, org) = app.post("/v1/organizations", &json!({"name": "Engines", "role_set_key": "default", "created_at": "2012-10-20T07:15:20.902Z"})).await;
    assert_eq!(status, 200, "{org}");
    assert_eq!((&org["role_set_key"], &org["created_at"]), (&json!("default"), &json!(1_350_717_320_902_i64)));
    let id = org["id"].as_str().expect("id");
    let (status, org) =
        app.bapi(reqwest::Method::PATCH, &format!("/v1/organizations/{id}"), Some(r#"{"role_set_key": "custom", "created_at": "2020-01-01T00:00:00Z"}"#)).await;
    assert_eq!((status, &org["role_set_key"], &org["created_at"]), (200, &json!("custom"), &json!(1_577_836_800_000_i64)), "{org}");
    let (status, body) = app.post("/v1/organizations", &json!({"name": "Bad date", "created_at": "yesterday"})).await;
    assert_eq!((status, &body["errors"][0]["meta"]["param_name"]), (422, &json!("created_at")), "{body}");

    let (_, plain) = app.bapi(reqwest::Method::GET, &format!("/v1/organizations/{id}"), None).await;
    assert!(plain.get("members_count").is_none(), "no count unless asked: {plain}");
    let (_, counted) = app.bapi(reqwest::Method::GET, &format!("/v1/organizations/{id}?include_members_count=true"), None).await;
    assert_eq!(counted["members_count"], 0, "{counted}");
}

#[tokio::test]
async fn jwt_templates_page_and_paginate() {
    let app = App::start().await;
    for name in ["second", "third"] {
        app.mock.add_template(TemplateSpec::new(name, json!({}))).expect("template");
    }
    let (_, all) = app.bapi(reqwest::Method::GET, "/v1/jwt_templates", None).await;
    assert_eq!(all.as_array().map(Vec::len), Some(3));
    let (_, page) = app.bapi(reqwest::Method::GET, "/v1/jwt_templates?limit=1&offset=1", None).await;
    assert_eq!(page.as_array().map(Vec::len), Some(1));
    assert_eq!(page[0], all[1]);
    let (_, envelope) = app.bapi(reqwest::Method::GET, "/v1/jwt_templates?paginated=true&limit=2", None).await;
    assert_eq!((envelope["total_count"].as_i64(), envelope["data"].as_array().map(Vec::len)), (Some(3), Some(2)), "{envelope}");
    let (status, _) = app.bapi(reqwest::Method::GET, "/v1/jwt_templates?limit=-1", None).await;
    assert_eq!(status, 422);
}

#[rstest]
#[case::ban("POST", "/v1/users/ban")]
#[case::replace_metadata("PUT", "/v1/users/user_x/metadata")]
#[case::create_template("POST", "/v1/jwt_templates")]
#[case::list_api_keys("GET", "/v1/api_keys")]
#[tokio::test]
async fn an_unknown_method_on_a_known_backend_path_is_clerks_404_json(#[case] method: &str, #[case] path: &str) {
    let app = App::start().await;
    let (status, body) = app.bapi(method.parse().expect("method"), path, Some("{}")).await;
    assert_eq!((status, code(&body)), (404, "resource_not_found"), "{method} {path}: {body}");
}

#[tokio::test]
async fn an_unknown_method_on_a_known_frontend_path_is_clerks_404_json() {
    let app = App::start().await;
    let (status, body) = app.fapi_post("/v1/client", &[]).await;
    assert_eq!((status, code(&body)), (404, "resource_not_found"), "{body}");
}

#[rstest]
#[case::verify_api_key("/v1/api_keys/verify")]
#[case::verify_m2m("/v1/m2m_tokens/verify")]
#[case::verify_oauth("/v1/oauth_applications/access_tokens/verify")]
#[case::revoke_api_key("/v1/api_keys/ak_00000000000000000000000000000000/revoke")]
#[case::revoke_m2m("/v1/m2m_tokens/mt_00000000000000000000000000000000/revoke")]
#[case::create_api_key("/v1/api_keys")]
#[tokio::test]
async fn machine_token_endpoints_answer_400_to_a_malformed_body_as_the_spec_says(#[case] path: &str) {
    let app = App::start().await;
    for body in [None, Some("not json"), Some("[1]"), Some(r#"{"secret": 5}"#)] {
        let (status, answer) = app.bapi(reqwest::Method::POST, path, body).await;
        assert_eq!(status, 400, "{path} with {body:?}: {answer}");
    }
}

#[tokio::test]
async fn a_missing_required_body_is_refused() {
    let app = App::start().await;
    let (_, org) = app.post("/v1/organizations", &json!({"name": "Needs a body"})).await;
    let id = org["id"].as_str().expect("id");
    for (method, path) in
        [("PATCH", format!("/v1/organizations/{id}")), ("PATCH", format!("/v1/users/{}", app.session.user_id)), ("POST", "/v1/users".to_string())]
    {
        let (status, body) = app.bapi(method.parse().expect("method"), &path, None).await;
        assert_eq!(status, 422, "{method} {path} without a body: {body}");
    }
}

#[tokio::test]
async fn fapi_tokens_need_the_requesting_clients_own_session() {
    let app = App::start().await;
    let sid = app.session.id.clone();
    let own = app.mock.browser_client(&sid).expect("client").dev_browser;
    let other_user = app.mock.create_user(NewUser::with_email("mallory@example.com")).expect("user");
    let other_session = app.mock.create_session(&other_user.id).expect("session");
    let others = app.mock.browser_client(&other_session.id).expect("client").dev_browser;
    let tokens = format!("/v1/client/sessions/{sid}/tokens");
    let template = format!("/v1/client/sessions/{sid}/tokens/backend");

    for path in [&tokens, &template] {
        let (status, body) = app.fapi_post(path, &[]).await;
        assert_eq!((status, code(&body)), (401, "dev_browser_unauthenticated"), "no credential: {body}");
        let (status, body) = app.fapi_post(&format!("{path}?__clerk_db_jwt={others}"), &[]).await;
        assert_eq!((status, code(&body)), (404, "resource_not_found"), "another browser's client: {body}");
        let cookie = format!("__clerk_db_jwt={others}");
        let (status, _) = app.fapi_post(path, &[("cookie", &cookie)]).await;
        assert_eq!(status, 404, "another browser's client by cookie");
        let (status, _) = app.fapi_post(&format!("{path}?__clerk_db_jwt=dvb_unknown"), &[]).await;
        assert_eq!(status, 401, "an unknown dev browser is no client");
    }
    let cookie = format!("__clerk_db_jwt={own}");
    for (how, query, headers) in [
        ("__clerk_db_jwt query (clerk-js)", format!("?__clerk_db_jwt={own}"), vec![]),
        ("__dev_session query (the spec's DevBrowser)", format!("?__dev_session={own}"), vec![]),
        ("__clerk_db_jwt cookie", String::new(), vec![("cookie", cookie.as_str())]),
    ] {
        for path in [&tokens, &template] {
            let (status, body) = app.fapi_post(&format!("{path}{query}"), &headers).await;
            assert_eq!(status, 200, "{how} on {path}: {body}");
            assert!(body["jwt"].is_string(), "{how}: {body}");
        }
    }
}

#[tokio::test]
async fn production_fapi_tokens_need_the_client_cookie() {
    let config = InstanceConfig { environment: Environment::Production, fapi_host: Some("clerk.example.com".into()), ..InstanceConfig::default() };
    let app = App::with(MockClerk::builder().instance(config).start().await.expect("mock"));
    let sid = app.session.id.clone();
    let client = app.mock.browser_client(&sid).expect("client");
    let path = format!("/v1/client/sessions/{sid}/tokens");
    let (status, body) = app.fapi_post(&path, &[]).await;
    assert_eq!((status, code(&body)), (401, "signed_out"), "{body}");
    let cookie = format!("__client={}", client.client_cookie);
    let (status, body) = app.fapi_post(&path, &[("cookie", &cookie)]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_offset_past_what_an_integer_holds_is_an_empty_page_not_an_error() {
    let app = App::start().await;
    let huge = "834369803929559222004976975872";
    let (status, users) = app.bapi(reqwest::Method::GET, &format!("/v1/users?offset={huge}"), None).await;
    assert_eq!((status, users), (200, json!([])));
    let path = format!("/v1/users/{}/organization_memberships?offset={huge}&limit=129", app.session.user_id);
    let (status, page) = app.bapi(reqwest::Method::GET, &path, None).await;
    assert_eq!((status, &page["data"]), (200, &json!([])), "{page}");
    let (status, _) = app.bapi(reqwest::Method::GET, "/v1/users?offset=-1", None).await;
    assert_eq!(status, 422, "a negative offset is still refused");
}
