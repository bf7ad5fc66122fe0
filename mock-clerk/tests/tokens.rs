//! Every token the mock mints verifies against the JWKS fetched over HTTP, and its header
//! and claims match Clerk's, field by field.

mod common;

use common::{fetch_jwks, verify, verify_networkless, Options};
use mock_clerk::decode_unverified;
use mock_clerk::{Clock, MockClerk, NewUser, SessionStatus, TemplateSpec, TokenVersion};
use rstest::rstest;
use serde_json::{json, Value};

const NOW: i64 = 1_760_000_000;
const ORIGIN: &str = "http://localhost:3000";

async fn mock_at_fixed_time() -> MockClerk {
    MockClerk::builder().clock(Clock::fixed_at_unix(NOW)).start().await.expect("mock starts")
}

fn keys(m: &serde_json::Map<String, Value>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

#[tokio::test]
async fn a_v2_session_token_has_clerks_exact_header_and_claims() {
    let mock = mock_at_fixed_time().await;
    let user = mock.create_user(NewUser::with_email("ada@example.com")).expect("user");
    let session = mock.create_session(&user.id).expect("session");
    let token = mock.session_token(&session.id, Some(ORIGIN)).expect("token");

    let (header, claims) = decode_unverified(&token).expect("decodes");
    assert_eq!(Value::Object(header.clone()), json!({"alg": "RS256", "cat": "cl_B7d4PD111AAA", "kid": mock.instance().id(), "typ": "JWT"}));
    assert_eq!(keys(&claims), ["azp", "exp", "fva", "iat", "iss", "nbf", "sid", "sts", "sub", "v"]);
    assert_eq!(claims["azp"], ORIGIN);
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["exp"], NOW + 60);
    assert_eq!(claims["nbf"], NOW - 10);
    assert_eq!(claims["iss"], format!("https://{}", mock.instance().fapi_host()));
    assert_eq!(claims["sid"], session.id.as_str());
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["v"], 2);
    assert_eq!(claims["fva"], json!([0, -1]));
    assert_eq!(claims["sts"], "active");
    assert!(claims["iss"].as_str().is_some_and(|i| i.contains(".clerk.accounts")), "Go SDK issuer rule");

    let jwks = fetch_jwks(&mock.jwks_url()).await;
    verify(&token, &jwks, &Options::sdk_defaults(), NOW).expect("verifies against JWKS");
}

#[tokio::test]
async fn azp_is_absent_without_an_origin_and_fva_counts_minutes() {
    let mock = mock_at_fixed_time().await;
    let user = mock.create_user(NewUser::default().phone("+15555550100")).expect("phone-only user");
    let session = mock.create_session(&user.id).expect("session");
    mock.store().update_session(&session.id, |s| s.second_factor_at = Some(s.first_factor_at)).expect("2fa");
    mock.clock().advance(std::time::Duration::from_secs(125));
    let (_, claims) = decode_unverified(&mock.session_token(&session.id, None).expect("token")).expect("decodes");
    assert!(!claims.contains_key("azp"));
    assert_eq!(claims["fva"], json!([2, 2]));
}

#[tokio::test]
async fn an_active_organization_appears_as_o_in_v2_and_org_claims_in_v1() {
    let mock = mock_at_fixed_time().await;
    let user = mock.create_user(NewUser::with_email("o@example.com")).expect("user");
    mock.define_role("org:billing", &["org:invoices:read", "org:invoices:manage", "org:reports:read", "org:sys_memberships:manage"]);
    let org = mock.create_organization("Acme Inc", None).expect("org");
    mock.add_membership(&org.id, &user.id, "org:billing").expect("membership");
    let session = mock.create_session(&user.id).expect("session");
    mock.set_active_organization(&session.id, Some(&org.id)).expect("active");
    let (_, v2) = decode_unverified(&mock.session_token(&session.id, None).expect("v2")).expect("decodes");
    // Features and names sorted; invoices = manage|read = 0b11, reports = read = 0b10; no system permissions.
    assert_eq!(v2["o"], json!({"id": org.id, "slg": "acme-inc", "rol": "billing", "per": "manage,read", "fpm": "3,2"}));
    assert_eq!(v2["fea"], "o:invoices,o:reports");
    assert_eq!(js_org_permissions(&v2), ["org:invoices:manage", "org:invoices:read", "org:reports:read"], "what @clerk/shared's jwtPayloadParser reads back");
    let v1_token = mock.session_token_version(&session.id, None, TokenVersion::V1).expect("v1");
    let (_, v1) = decode_unverified(&v1_token).expect("decodes");
    assert_eq!(keys(&v1), ["exp", "fva", "iat", "iss", "nbf", "org_id", "org_permissions", "org_role", "org_slug", "sid", "sub"]);
    assert_eq!(v1["org_role"], "org:billing");
    assert_eq!(v1["org_permissions"], json!(["org:invoices:read", "org:invoices:manage", "org:reports:read"]));
    let jwks = fetch_jwks(&mock.jwks_url()).await;
    verify(&v1_token, &jwks, &Options::sdk_defaults(), NOW).expect("v1 verifies");

    // A role change reaches the next token; leaving the organisation drops `o` and `fea`.
    mock.store().update_membership_role(&org.id, &user.id, "org:member").expect("role");
    let (_, member) = decode_unverified(&mock.session_token(&session.id, None).expect("v2")).expect("decodes");
    assert_eq!((member["o"]["rol"].clone(), member["o"]["per"].clone(), member.get("fea")), (json!("member"), json!(""), None));
    mock.store().delete_membership(&org.id, &user.id).expect("leave");
    let (_, gone) = decode_unverified(&mock.session_token(&session.id, None).expect("v2")).expect("decodes");
    assert_eq!(gone.get("o"), None);
}

/// `@clerk/shared` `jwtPayloadParser` (v2): `fpm[i]` pairs with the i-th organisation-scoped
/// feature of `fea`, bit j (least significant first) with `per[j]`.
fn js_org_permissions(claims: &mock_clerk::Claims) -> Vec<String> {
    let fea = claims.get("fea").and_then(|v| v.as_str()).unwrap_or("");
    let org_features: Vec<&str> = fea.split(',').filter_map(|f| f.trim().split_once(':')).filter(|(scope, _)| scope.contains('o')).map(|(_, f)| f).collect();
    let per: Vec<&str> = claims["o"]["per"].as_str().unwrap_or("").split(',').map(str::trim).collect();
    let fpm = claims["o"]["fpm"].as_str().unwrap_or("");
    let mut out = vec![];
    for (feature, mask) in org_features.iter().zip(fpm.split(',')) {
        let mask: u128 = mask.trim().parse().unwrap_or(0);
        for (j, name) in per.iter().enumerate() {
            if mask >> j & 1 == 1 {
                out.push(format!("org:{feature}:{name}"));
            }
        }
    }
    out
}

#[derive(Debug)]
enum Signing {
    Instance,
    Hs256,
    CustomRs256,
}

#[rstest]
#[case::instance_key(Signing::Instance, 60, 5)]
#[case::long_lived_with_big_skew(Signing::Instance, 3600, 300)]
#[case::hs256_custom_key(Signing::Hs256, 120, 0)]
#[case::rs256_custom_key(Signing::CustomRs256, 60, 5)]
#[tokio::test]
async fn a_template_token_carries_clerks_default_claims_and_verifies(#[case] signing: Signing, #[case] lifetime: i64, #[case] skew: i64) {
    let mock = mock_at_fixed_time().await;
    let user = mock.create_user(NewUser::with_email("t@example.com").names("Ada", "Lovelace")).expect("user");
    let session = mock.create_session(&user.id).expect("session");
    let custom_pem = mock_clerk::SigningKey::acquire(mock_clerk::KeySource::Pool, "custom").expect("key");
    let mut spec =
        TemplateSpec::new("backend", json!({"email": "{{user.primary_email_address}}", "role": "member"})).lifetime(lifetime).allowed_clock_skew(skew);
    spec = match signing {
        Signing::Instance => spec,
        Signing::Hs256 => spec.hs256("shared-secret-of-32-bytes-or-more!!"),
        Signing::CustomRs256 => spec.rs256_custom(custom_pem.private_pem()),
    };
    mock.add_template(spec).expect("template");
    let token = mock.template_token(&session.id, "backend", Some(ORIGIN)).expect("token");
    let (header, claims) = decode_unverified(&token).expect("decodes");

    assert_eq!(header["cat"], "cl_B7d4PD222AAA");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(keys(&claims), ["azp", "email", "exp", "iat", "iss", "jti", "nbf", "role", "sub"]);
    assert_eq!(claims["exp"], NOW + lifetime);
    assert_eq!(claims["nbf"], NOW - skew);
    assert_eq!(claims["email"], "t@example.com");
    assert!(!claims.contains_key("sid") && !claims.contains_key("v"), "sid and v never appear in template tokens");

    let validation_ok = match signing {
        Signing::Instance => {
            assert_eq!(header["alg"], "RS256");
            assert_eq!(header["kid"], mock.instance().id());
            verify(&token, &fetch_jwks(&mock.jwks_url()).await, &Options::sdk_defaults(), NOW).is_ok()
        }
        Signing::Hs256 => {
            assert_eq!(header["alg"], "HS256");
            let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            v.validate_exp = false;
            jsonwebtoken::decode::<Value>(&token, &jsonwebtoken::DecodingKey::from_secret(b"shared-secret-of-32-bytes-or-more!!"), &v).is_ok()
        }
        Signing::CustomRs256 => {
            assert!(!header.contains_key("kid"), "a custom key is not in the JWKS");
            let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
            v.validate_exp = false;
            let key = jsonwebtoken::DecodingKey::from_rsa_pem(custom_pem.public_pem().as_bytes()).expect("pem");
            jsonwebtoken::decode::<Value>(&token, &key, &v).is_ok()
        }
    };
    assert!(validation_ok, "{signing:?} token does not verify");
}

#[tokio::test]
async fn networkless_verification_with_the_pem_works_like_the_sdks() {
    let mock = mock_at_fixed_time().await;
    let user = mock.create_user(NewUser::with_email("n@example.com")).expect("user");
    let session = mock.create_session(&user.id).expect("session");
    let token = mock.session_token(&session.id, None).expect("token");
    let pem = mock.instance().pem_public_key();
    verify_networkless(&token, &pem, &Options::sdk_defaults(), NOW).expect("networkless verification");
    // The same PEM parses as a standard SPKI key too.
    jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).expect("SPKI PEM");
    // And a token of another instance does not verify with it.
    let other = MockClerk::start().await.expect("other");
    let u2 = other.create_user(NewUser::with_email("x@example.com")).expect("user");
    let s2 = other.create_session(&u2.id).expect("session");
    let foreign = other.session_token(&s2.id, None).expect("token");
    assert_eq!(verify_networkless(&foreign, &pem, &Options::sdk_defaults(), other.clock().now_unix()), Err("token-invalid-signature"));
}

#[tokio::test]
async fn the_fapi_mints_the_same_tokens_over_http_with_azp_from_origin() {
    let mock = MockClerk::start().await.expect("mock");
    let user = mock.create_user(NewUser::with_email("h@example.com")).expect("user");
    let session = mock.create_session(&user.id).expect("session");
    mock.add_template(TemplateSpec::new("backend", json!({"uid": "{{user.id}}"}))).expect("template");
    let client = reqwest::Client::new();
    // The browser's own client: FAPI mints only for a session of the requesting client.
    let dvb = mock.browser_client(&session.id).expect("client").dev_browser;
    for path in [format!("/v1/client/sessions/{}/tokens", session.id), format!("/v1/client/sessions/{}/tokens/backend", session.id)] {
        let body: Value = client
            .post(format!("{}{path}?__clerk_db_jwt={dvb}", mock.fapi_url()))
            .header("origin", ORIGIN)
            .send()
            .await
            .expect("POST")
            .json()
            .await
            .expect("JSON");
        assert_eq!(body["object"], "token");
        let jwt = body["jwt"].as_str().expect("jwt");
        let claims = verify(jwt, &fetch_jwks(&mock.jwks_url()).await, &Options::sdk_defaults(), mock.clock().now_unix()).expect("verifies");
        assert_eq!(claims["azp"], ORIGIN);
    }
    let revoked = mock.store().set_session_status(&session.id, SessionStatus::Revoked).expect("revoke");
    let status = client.post(format!("{}/v1/client/sessions/{}/tokens?__clerk_db_jwt={dvb}", mock.fapi_url(), revoked.id)).send().await.expect("POST").status();
    assert_eq!(status, 404, "a revoked session mints nothing");
}

#[tokio::test]
async fn repeated_fapi_requests_in_one_second_get_the_identical_token_and_a_new_second_a_new_one() {
    let mock = mock_at_fixed_time().await;
    let user = mock.create_user(NewUser::with_email("cache@example.com")).expect("user");
    let session = mock.create_session(&user.id).expect("session");
    let client = reqwest::Client::new();
    let dvb = mock.browser_client(&session.id).expect("client").dev_browser;
    let url = format!("{}/v1/client/sessions/{}/tokens?__clerk_db_jwt={dvb}", mock.fapi_url(), session.id);
    let mint = |origin: &'static str| {
        let req = client.post(&url).header("origin", origin).send();
        async move { req.await.expect("POST").json::<Value>().await.expect("json")["jwt"].as_str().expect("jwt").to_string() }
    };
    let a = mint(ORIGIN).await;
    assert_eq!(a, mint(ORIGIN).await, "RS256 is deterministic: same claims, same token");
    // The direct mint (never cached) agrees byte for byte.
    assert_eq!(a, mock.session_token(&session.id, Some(ORIGIN)).expect("token"));
    assert_ne!(a, mint("https://other.example").await, "another origin is another azp");
    mock.clock().advance(std::time::Duration::from_secs(1));
    let b = mint(ORIGIN).await;
    let (_, claims) = decode_unverified(&b).expect("decodes");
    assert_eq!(claims["iat"], NOW + 1);
    mock.rotate_key(mock_clerk::Rotation::DropOld).expect("rotate");
    let c = mint(ORIGIN).await;
    assert_ne!(b, c, "a rotated key signs anew within the same second");
}

/// Every way to get a genuine token — in-process, FAPI, BAPI and the admin API — goes through
/// one minting path with one session check: for each session status they all mint or all
/// refuse, session tokens and template tokens alike.
#[rstest]
#[case::active(SessionStatus::Active, true)]
#[case::pending(SessionStatus::Pending, true)]
#[case::revoked(SessionStatus::Revoked, false)]
#[case::ended(SessionStatus::Ended, false)]
#[case::removed(SessionStatus::Removed, false)]
#[case::expired(SessionStatus::Expired, false)]
#[tokio::test]
async fn every_minting_path_agrees_on_which_sessions_get_tokens(#[case] status: SessionStatus, #[case] mints: bool) {
    let mock = MockClerk::start().await.expect("mock");
    mock.add_template(TemplateSpec::new("backend", json!({"uid": "{{user.id}}"}))).expect("template");
    let user = mock.create_user(NewUser::with_email("paths@example.com")).expect("user");
    let session = mock.create_session(&user.id).expect("session");
    if status != SessionStatus::Active {
        mock.store().set_session_status(&session.id, status).expect("status");
    }
    let sid = &session.id;
    let dvb = mock.browser_client(sid).expect("client").dev_browser;
    let secret = mock.instance().secret_key().expose().to_owned();
    let client = reqwest::Client::new();
    let post = |url: String, bearer: bool, body: Value| {
        let mut req = client.post(url).json(&body);
        if bearer {
            req = req.bearer_auth(&secret);
        }
        async move { req.send().await.expect("POST").status().is_success() }
    };
    let (fapi, api) = (mock.fapi_url(), mock.api_url());
    let paths = [
        ("in-process session token", mock.session_token(sid, Some(ORIGIN)).is_ok()),
        ("in-process template token", mock.template_token(sid, "backend", Some(ORIGIN)).is_ok()),
        ("FAPI session token", post(format!("{fapi}/v1/client/sessions/{sid}/tokens?__clerk_db_jwt={dvb}"), false, json!({})).await),
        ("FAPI template token", post(format!("{fapi}/v1/client/sessions/{sid}/tokens/backend?__clerk_db_jwt={dvb}"), false, json!({})).await),
        ("BAPI session token", post(format!("{api}/v1/sessions/{sid}/tokens"), true, json!({})).await),
        ("BAPI session token with expires_in_seconds", post(format!("{api}/v1/sessions/{sid}/tokens"), true, json!({"expires_in_seconds": 120})).await),
        ("BAPI template token", post(format!("{api}/v1/sessions/{sid}/tokens/backend"), true, json!({})).await),
        ("admin session token", post(format!("{api}/_mock/tokens"), true, json!({"session_id": sid})).await),
        ("admin template token", post(format!("{api}/_mock/tokens"), true, json!({"session_id": sid, "template": "backend"})).await),
    ];
    for (path, minted) in paths {
        assert_eq!(minted, mints, "{path} for a {} session: minted = {minted}, expected {mints}", status.as_str());
    }
    // Forging stays possible for any session: negative tests need tokens of ended sessions.
    assert!(mock.forge_session_token(sid).expect("forge").build().is_ok());
}

#[tokio::test]
async fn origin_null_gives_no_azp_like_clerk() {
    let mock = MockClerk::start().await.expect("mock");
    let user = mock.create_user(NewUser::with_email("null-origin@example.com")).expect("user");
    let session = mock.create_session(&user.id).expect("session");
    let dvb = mock.browser_client(&session.id).expect("client").dev_browser;
    let url = format!("{}/v1/client/sessions/{}/tokens?__clerk_db_jwt={dvb}", mock.fapi_url(), session.id);
    let body: Value = reqwest::Client::new().post(url).header("origin", "null").send().await.expect("POST").json().await.expect("JSON");
    let (_, claims) = decode_unverified(body["jwt"].as_str().expect("jwt")).expect("decodes");
    assert!(claims.get("azp").is_none(), "Origin: null must not become azp \"null\": {claims:?}");
}
