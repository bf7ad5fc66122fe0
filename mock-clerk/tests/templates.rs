//! JWT template shortcodes render like Clerk's: whole values keep their type, strings
//! interpolate, `||` falls back, unknown shortcodes are null; reserved claims are refused.

use mock_clerk::decode_unverified;
use mock_clerk::{ActiveOrganization, Error, MockClerk, NewUser, SessionStatus, TemplateSpec};
use serde_json::{json, Value};

async fn claims_for(user: NewUser, claims: Value) -> serde_json::Map<String, Value> {
    let mock = MockClerk::start().await.expect("mock");
    let user = mock.create_user(user).expect("user");
    let org = ActiveOrganization { id: "org_1".into(), slug: "acme".into(), name: "Acme Inc".into(), role: "org:admin".into(), permissions: vec![] };
    let session = mock.store().create_session_with(&user.id, SessionStatus::Active, Some(org)).expect("session");
    mock.add_template(TemplateSpec::new("t", claims)).expect("template");
    decode_unverified(&mock.template_token(&session.id, "t", None).expect("token")).expect("decodes").1
}

#[tokio::test]
async fn every_documented_shortcode_renders() {
    let user =
        NewUser::with_email("ada@example.com").phone("+15555550100").names("Ada", "Lovelace").public_metadata(json!({"role": "admin", "plan": {"tier": 3}}));
    let c = claims_for(
        user,
        json!({
            "uid": "{{user.id}}", "first": "{{user.first_name}}", "last": "{{user.last_name}}",
            "full": "{{user.full_name}}", "email": "{{user.primary_email_address}}",
            "phone": "{{user.primary_phone_address}}", "img": "{{user.image_url}}",
            "created": "{{user.created_at}}", "ev": "{{user.email_verified}}",
            "pv": "{{user.phone_number_verified}}", "meta": "{{user.public_metadata}}",
            "tier": "{{user.public_metadata.plan.tier}}", "unsafe": "{{user.unsafe_metadata}}",
            "org": "{{org.name}}", "actor": "{{session.actor}}"
        }),
    )
    .await;
    assert_eq!(c["first"], "Ada");
    assert_eq!(c["full"], "Ada Lovelace");
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["phone"], "+15555550100");
    assert!(c["uid"].as_str().is_some_and(|s| s.starts_with("user_")));
    assert!(c["img"].as_str().is_some_and(|s| s.starts_with("https://")));
    assert!(c["created"].is_i64(), "created_at keeps its numeric type");
    assert_eq!(c["ev"], true);
    assert_eq!(c["pv"], true);
    assert_eq!(c["meta"], json!({"role": "admin", "plan": {"tier": 3}}));
    assert_eq!(c["tier"], 3);
    assert_eq!(c["unsafe"], json!({}));
    assert_eq!(c["org"], "Acme Inc");
    assert_eq!(c["actor"], Value::Null);
}

#[tokio::test]
async fn interpolation_fallbacks_and_unknown_shortcodes() {
    let c = claims_for(
        NewUser::default().phone("+15555550100").names("Grace", "Hopper"),
        json!({
            "greeting": "Hello {{user.first_name}} {{user.last_name}}!",
            "email_or_phone": "{{user.primary_email_address || user.primary_phone_address}}",
            "email_or_literal": "{{user.primary_email_address || 'none'}}",
            "unknown": "{{user.shoe_size}}",
            "nested": {"list": ["{{user.first_name}}", 1, true]},
            "in_text_null": "id={{user.primary_email_address}}."
        }),
    )
    .await;
    assert_eq!(c["greeting"], "Hello Grace Hopper!");
    assert_eq!(c["email_or_phone"], "+15555550100");
    assert_eq!(c["email_or_literal"], "none");
    assert_eq!(c["unknown"], Value::Null);
    assert_eq!(c["nested"], json!({"list": ["Grace", 1, true]}));
    assert_eq!(c["in_text_null"], "id=.");
}

#[tokio::test]
async fn a_reserved_claim_is_refused_with_its_name() {
    let mock = MockClerk::start().await.expect("mock");
    for claim in ["sub", "azp", "iss", "exp"] {
        let err = mock.add_template(TemplateSpec::new("bad", json!({ claim: "x" }))).expect_err("reserved");
        assert!(matches!(&err, Error::ReservedClaim { claim: c, .. } if c == claim), "{err}");
        assert!(err.to_string().contains(&format!("'{claim}'")), "{err}");
    }
    let err = mock.add_template(TemplateSpec::new("t", json!({})).lifetime(10)).expect_err("too short");
    assert!(err.to_string().contains("lifetime 10"), "{err}");
}
