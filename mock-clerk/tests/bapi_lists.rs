//! Backend API list endpoints: every filter of Clerk's OpenAPI spec is honoured (read from the
//! spec itself, so a parameter added there and forgotten here fails), unknown or malformed
//! parameters are Clerk's 422, metadata merges deeply, session lists paginate, and the
//! organisation endpoints answer with Clerk's schemas.

mod common;

use common::bearer;
use common::openapi::{assert_valid, validator};
use mock_clerk::{MockClerk, NewUser};
use reqwest::{Method, StatusCode};
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

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.mock.api_url())).header("authorization", bearer(&self.mock));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn ids(&self, path: &str) -> Vec<String> {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {body:#}");
        body.as_array().unwrap_or_else(|| panic!("{path}: not an array: {body:#}")).iter().map(|u| u["id"].as_str().expect("id").to_string()).collect()
    }
}

/// The query parameters of `method path` in Clerk's spec, with their schema types.
fn spec_params(path: &str, method: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/bapi-2025-11-10.yml")).expect("spec");
    let doc: Value = serde_yaml::from_str(&text).expect("yaml");
    let op = &doc["paths"][path][method];
    op["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| match p.get("$ref").and_then(Value::as_str) {
            Some(r) => doc["components"]["parameters"][r.rsplit('/').next().expect("ref")].clone(),
            None => p.clone(),
        })
        .filter(|p| p["in"] == "query")
        .map(|p| (p["name"].as_str().expect("name").to_string(), p["schema"]["type"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// A value of `name` no seeded user matches (the user list must come back empty).
fn excluding_value(name: &str, ty: &str) -> Option<String> {
    Some(match (name, ty) {
        ("limit" | "offset" | "order_by" | "starting_after", _) => return None,
        ("provider", _) => "oauth_google&provider_user_id=nobody".into(),
        ("provider_user_id", _) => "nobody&provider=oauth_google".into(),
        ("banned", _) => "true".into(),
        (n, "integer") if n.ends_with("_before") => "1".into(),
        (_, "integer") => "99999999999999".into(),
        _ => "zzz-no-such-value".into(),
    })
}

async fn seeded() -> (Api, Vec<String>) {
    let api = Api::start().await;
    let mut ids = vec![];
    for new in [
        NewUser::with_email("ada@example.com").names("Ada", "Lovelace").username("ada").external_id("ext-ada"),
        NewUser::with_email("alan@example.com").names("Alan", "Turing").username("alan").phone("+15555550101"),
        NewUser::default().phone("+15555550102").names("Grace", "Hopper").username("grace"),
    ] {
        let u = api.mock.create_user(new).expect("user");
        api.mock.clock().advance(std::time::Duration::from_millis(5));
        ids.push(u.id);
    }
    (api, ids)
}

#[tokio::test]
async fn every_filter_in_clerks_spec_filters_and_nothing_is_silently_ignored() {
    let (api, ids) = seeded().await;
    for (path, spec_path) in [("/v1/users", "/users"), ("/v1/users/count", "/users/count")] {
        let params = spec_params(spec_path, "get");
        assert!(params.len() > 15, "{spec_path}: spec read wrong: {params:?}");
        for (name, ty) in params {
            let Some(value) = excluding_value(&name, &ty) else { continue };
            let (status, body) = api.call(Method::GET, &format!("{path}?{name}={value}"), None).await;
            assert_eq!(status, 200, "{path}?{name}: {body:#}");
            let n = if path.ends_with("count") { body["total_count"].as_u64() } else { body.as_array().map(|a| a.len() as u64) };
            assert_eq!(n, Some(0), "{path}?{name}={value} must match nobody, got {body:#}");
        }
        let (status, body) = api.call(Method::GET, &format!("{path}?usernme=ada"), None).await;
        assert_eq!(status, 422, "a misspelt filter is refused, not ignored");
        assert_valid(&validator(SPEC, "ClerkErrors"), &body, "error");
        assert_eq!(body["errors"][0]["code"], "form_param_unknown");
        assert_eq!(body["errors"][0]["meta"]["param_name"], "usernme");
    }
    assert_eq!(ids.len(), 3);
}

#[rstest::rstest]
#[case::username("username=alan", &[1])]
#[case::usernames_bracketed("username[]=alan&username[]=grace", &[2, 1])]
#[case::phone_number("phone_number=%2B15555550102", &[2])]
#[case::email("email_address=ADA@example.com", &[0])]
#[case::external_id("external_id=ext-ada", &[0])]
#[case::user_id_excluded("user_id=-{1}", &[2, 0])]
#[case::user_id_included("user_id=%2B{1}&user_id={0}", &[1, 0])]
#[case::query_phone("query=550101", &[1])]
#[case::query_name("query=hop", &[2])]
#[case::email_query("email_address_query=EXAMPLE", &[1, 0])]
#[case::phone_query("phone_number_query=0102", &[2])]
#[case::username_query("username_query=AL", &[1])]
#[case::name_query("name_query=ada lovelace", &[0])]
#[case::not_banned("banned=false", &[2, 1, 0])]
#[case::order_username_asc("order_by=username", &[0, 1, 2])]
#[case::order_first_name_desc("order_by=-first_name", &[2, 1, 0])]
#[case::order_created_asc_encoded_plus("order_by=%2Bcreated_at", &[0, 1, 2])]
#[case::limit_offset("limit=1&offset=1", &[1])]
#[case::cursor("starting_after={2}&limit=1", &[1])]
#[tokio::test]
async fn each_filter_selects_exactly_the_matching_users(#[case] query: &str, #[case] expected: &[usize]) {
    let (api, ids) = seeded().await;
    let query = (0..ids.len()).fold(query.to_string(), |q, i| q.replace(&format!("{{{i}}}"), &ids[i]));
    let want: Vec<String> = expected.iter().map(|&i| ids[i].clone()).collect();
    assert_eq!(api.ids(&format!("/v1/users?{query}")).await, want, "{query}");
}

#[tokio::test]
async fn organization_id_selects_members_and_malformed_values_are_422() {
    let (api, ids) = seeded().await;
    let org = api.mock.create_organization("Acme", Some(&ids[0])).expect("org");
    api.mock.add_membership(&org.id, &ids[2], "org:member").expect("member");
    assert_eq!(api.ids(&format!("/v1/users?organization_id={}", org.id)).await, vec![ids[2].clone(), ids[0].clone()]);
    assert_eq!(api.ids(&format!("/v1/users?organization_id=-{}", org.id)).await, vec![ids[1].clone()]);
    let (_, count) = api.call(Method::GET, &format!("/v1/users/count?organization_id={}", org.id), None).await;
    assert_eq!(count["total_count"], 2);

    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
        ("limit=ten", "limit"),
        ("banned=yes", "banned"),
        ("created_at_before=yesterday", "created_at_before"),
        ("order_by=password", "order_by"),
        ("provider=oauth_google", "provider_user_id"),
        ("starting_after=user_x&order_by=username", "starting_after"),
        ("starting_after=user_x&offset=2", "starting_after"),
    ] {
        let (status, body) = api.call(Method::GET, &format!("/v1/users?{query}"), None).await;
        assert_eq!(status, 422, "{query}: {body:#}");
        assert_valid(&validator(SPEC, "ClerkErrors"), &body, query);
        assert_eq!(body["errors"][0]["meta"]["param_name"], param, "{query}");
    }
    let too_many: String = (0..101).map(|i| format!("username=u{i}&")).collect();
    assert_eq!(api.call(Method::GET, &format!("/v1/users?{too_many}"), None).await.0, 422, "more than 100 values");
    assert_eq!(api.call(Method::GET, "/v1/users/count?limit=5", None).await.0, 422, "count has no paging parameters in the spec");
}

#[tokio::test]
async fn metadata_patch_deep_merges_and_null_deletes() {
    let api = Api::start().await;
    let user = api
        .mock
        .create_user(NewUser::with_email("m@example.com").public_metadata(json!({"onboarding": {"step": 1, "done": false}, "plan": "free", "tags": ["a"]})))
        .expect("user");
    let (status, body) = api
        .call(
            Method::PATCH,
            &format!("/v1/users/{}/metadata", user.id),
            Some(json!({"public_metadata": {"onboarding": {"done": true}, "plan": null, "tags": ["b"]}, "private_metadata": {"stripe": "cus_1"}})),
        )
        .await;
    assert_eq!(status, 200, "{body:#}");
    assert_valid(&validator(SPEC, "User"), &body, "merged user");
    assert_eq!(body["public_metadata"], json!({"onboarding": {"step": 1, "done": true}, "tags": ["b"]}));
    assert_eq!(body["private_metadata"], json!({"stripe": "cus_1"}));
    assert_eq!(body["unsafe_metadata"], json!({}), "untouched");
    let (status, body) = api.call(Method::PATCH, &format!("/v1/users/{}/metadata", user.id), Some(json!({"public_metadata": "flat"}))).await;
    assert_eq!((status.as_u16(), body["errors"][0]["code"].clone()), (422, json!("form_param_format_invalid")), "metadata must be an object");
    assert_eq!(api.call(Method::PATCH, "/v1/users/user_nobody/metadata", Some(json!({}))).await.0, 404);
}

#[tokio::test]
async fn session_lists_paginate_on_request() {
    let api = Api::start().await;
    let user = api.mock.create_user(NewUser::with_email("s@example.com")).expect("user");
    let mut sids = vec![];
    for _ in 0..3 {
        sids.push(api.mock.create_session(&user.id).expect("session").id);
        api.mock.clock().advance(std::time::Duration::from_millis(5));
    }
    let (_, plain) = api.call(Method::GET, &format!("/v1/sessions?user_id={}&limit=2", user.id), None).await;
    assert_eq!(plain.as_array().map(Vec::len), Some(2), "a bare array without paginated");
    let (status, paged) = api.call(Method::GET, &format!("/v1/sessions?user_id={}&paginated=true&limit=2&offset=1", user.id), None).await;
    assert_eq!(status, 200);
    assert_eq!(paged["total_count"], 3);
    let data = paged["data"].as_array().expect("data");
    assert_eq!(data.iter().map(|s| s["id"].as_str().expect("id")).collect::<Vec<_>>(), vec![sids[1].as_str(), sids[0].as_str()]);
    for s in data {
        assert_valid(&validator(SPEC, "Session"), s, "paged session");
    }
    let client = data[0]["client_id"].as_str().expect("client");
    assert_eq!(api.ids(&format!("/v1/sessions?client_id={client}")).await, vec![sids[1].clone()]);
    assert_eq!(api.call(Method::GET, "/v1/sessions?paginated=maybe", None).await.0, 422);
    assert_eq!(api.call(Method::GET, "/v1/sessions?state=active", None).await.0, 422, "unknown parameter");
}

#[tokio::test]
async fn organizations_and_memberships_match_clerks_schemas() {
    let api = Api::start().await;
    let owner = api.mock.create_user(NewUser::with_email("owner@example.com").names("Olga", "Owner")).expect("owner");
    let member = api.mock.create_user(NewUser::with_email("member@example.com")).expect("member");
    api.mock.define_role("org:billing", &["org:invoices:read"]);

    let (status, org) =
        api.call(Method::POST, "/v1/organizations", Some(json!({"name": "Acme Corp", "created_by": owner.id, "public_metadata": {"tier": "gold"}}))).await;
    assert_eq!(status, 200, "{org:#}");
    assert_valid(&validator(SPEC, "Organization"), &org, "organization");
    assert_eq!((org["slug"].clone(), org["members_count"].clone()), (json!("acme-corp"), json!(1)));
    let org_id = org["id"].as_str().expect("id");
    assert!(org_id.starts_with("org_"));

    let (status, m) =
        api.call(Method::POST, &format!("/v1/organizations/{org_id}/memberships"), Some(json!({"user_id": member.id, "role": "org:billing"}))).await;
    assert_eq!(status, 200, "{m:#}");
    assert_valid(&validator(SPEC, "OrganizationMembership"), &m, "membership");
    assert_eq!(m["permissions"], json!(["org:invoices:read"]));
    let (status, dup) =
        api.call(Method::POST, &format!("/v1/organizations/{org_id}/memberships"), Some(json!({"user_id": member.id, "role": "org:member"}))).await;
    assert_eq!((status.as_u16(), dup["errors"][0]["code"].clone()), (422, json!("already_a_member_in_organization")));
    let (status, _) = api.call(Method::POST, &format!("/v1/organizations/{org_id}/memberships"), Some(json!({"user_id": owner.id, "role": "org:nope"}))).await;
    assert_eq!(status, 422, "unknown role");

    let (_, list) = api.call(Method::GET, &format!("/v1/organizations/{org_id}/memberships"), None).await;
    assert_valid(&validator(SPEC, "OrganizationMemberships"), &list, "memberships");
    assert_eq!(list["total_count"], 2);
    let (_, admins) = api.call(Method::GET, &format!("/v1/organizations/{org_id}/memberships?role=org:admin"), None).await;
    assert_eq!(admins["data"][0]["public_user_data"]["user_id"], json!(owner.id));
    assert_eq!(admins["total_count"], 1);
    let (_, by_email) = api.call(Method::GET, &format!("/v1/organizations/{org_id}/memberships?email_address=member@example.com"), None).await;
    assert_eq!(by_email["total_count"], 1);
    assert_eq!(api.call(Method::GET, &format!("/v1/organizations/{org_id}/memberships?bogus=1"), None).await.0, 422);

    let (_, orgs) = api.call(Method::GET, "/v1/organizations?include_members_count=true", None).await;
    assert_valid(&validator(SPEC, "Organizations"), &orgs, "organizations");
    assert_eq!(orgs["data"][0]["members_count"], 2);
    let (_, none) = api.call(Method::GET, "/v1/organizations?query=zzz", None).await;
    assert_eq!(none["total_count"], 0);
    let (_, of_member) = api.call(Method::GET, &format!("/v1/organizations?user_id={}", member.id), None).await;
    assert_eq!(of_member["total_count"], 1);
    let (_, user_ms) = api.call(Method::GET, &format!("/v1/users/{}/organization_memberships", member.id), None).await;
    assert_valid(&validator(SPEC, "OrganizationMemberships"), &user_ms, "user memberships");
    assert_eq!(user_ms["data"][0]["role"], "org:billing");

    let (_, by_slug) = api.call(Method::GET, "/v1/organizations/acme-corp", None).await;
    assert_eq!(by_slug["id"], org_id);
    let (_, updated) = api.call(Method::PATCH, &format!("/v1/organizations/{org_id}"), Some(json!({"name": "Acme Ltd"}))).await;
    assert_eq!(updated["name"], "Acme Ltd");
    let (_, updated_m) = api.call(Method::PATCH, &format!("/v1/organizations/{org_id}/memberships/{}", member.id), Some(json!({"role": "org:member"}))).await;
    assert_valid(&validator(SPEC, "OrganizationMembership"), &updated_m, "updated membership");
    assert_eq!(updated_m["permissions"], json!(["org:sys_memberships:read"]));
    let (status, deleted_m) = api.call(Method::DELETE, &format!("/v1/organizations/{org_id}/memberships/{}", member.id), None).await;
    assert_eq!(status, 200);
    assert_valid(&validator(SPEC, "OrganizationMembership"), &deleted_m, "deleted membership");
    let (status, deleted) = api.call(Method::DELETE, &format!("/v1/organizations/{org_id}"), None).await;
    assert_eq!(status, 200);
    assert_valid(&validator(SPEC, "DeletedObject"), &deleted, "deleted organization");
    assert_eq!(api.call(Method::GET, &format!("/v1/organizations/{org_id}"), None).await.0, 404);
}
