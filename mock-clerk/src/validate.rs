//! Request-body checks the Backend API shares, each written from Clerk's OpenAPI spec
//! (`openapi/bapi-2025-11-10.yml`): what a client may send, and the error it gets otherwise.
//!
//! Every number a client sends is range-checked here before it meets the clock, so minting
//! never wraps or panics (`iat + expires_in_seconds` with `i64::MAX` once minted a token that
//! had expired in 1970, and panicked where overflow checks are on).

use std::ops::RangeInclusive;

use axum::body::Bytes;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::error::ClerkApiError;

/// The lifetime a client may ask for a token (`expires_in_seconds` of
/// `POST /v1/sessions/{id}/tokens[/{template}]`): 30 s to 10 years, as the spec bounds it.
pub(crate) const TOKEN_LIFETIME_SECS: RangeInclusive<i64> = 30..=315_360_000;

/// The furthest in the future a client may put an expiry (`seconds_until_expiration`): a
/// thousand years, far below where milliseconds since 1970 overflow an `i64`.
pub(crate) const MAX_SECONDS_AHEAD: i64 = 1000 * 365 * 24 * 3600;

/// How far the mock's clock may be set or moved from 1970, in seconds: to the end of year
/// 9999, so that every timestamp derived from it (ms, `exp`, a session's `expire_at`) fits.
pub(crate) const MAX_CLOCK_SECS: i64 = 253_402_300_799;

/// 422 `form_param_value_invalid` naming `param`.
pub(crate) fn invalid_param(param: &str, message: &str) -> ClerkApiError {
    ClerkApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "form_param_value_invalid", "is invalid", message).with_meta(json!({ "param_name": param }))
}

/// Parses a JSON body like Clerk: anything that is not the expected JSON is a 422
/// (an empty body is `{}`).
pub(crate) fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ClerkApiError> {
    parse(body).map_err(|e| ClerkApiError::unprocessable(&format!("request body is invalid: {e}")))
}

/// Parses the JSON body of an endpoint whose spec requires one (`requestBody.required`):
/// no body at all is a 422 too.
pub(crate) fn parse_required_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ClerkApiError> {
    if body.is_empty() {
        return Err(ClerkApiError::unprocessable("request body is missing: this endpoint takes a JSON object"));
    }
    parse_body(body)
}

/// Parses the (required) JSON body of the endpoints whose spec answers a malformed or missing
/// body with 400 (API keys, M2M and OAuth tokens: `createApiKey`, `verifyApiKey`, `revokeApiKey`, …).
pub(crate) fn parse_body_400<T: DeserializeOwned>(body: &Bytes) -> Result<T, ClerkApiError> {
    let bad = |reason: String| ClerkApiError::new(StatusCode::BAD_REQUEST, "request_body_invalid", "Request body invalid", &reason);
    if body.is_empty() {
        return Err(bad("request body is missing: this endpoint takes a JSON object".into()));
    }
    parse(body).map_err(|e| bad(format!("request body is invalid: {e}")))
}

/// Every body of the Backend API is a JSON object: `null`, `0.0` or `[null, null]` (which
/// serde would otherwise read into a struct field by field) are refused.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, serde_json::Error> {
    let bytes: &[u8] = if body.is_empty() { b"{}" } else { body };
    match serde_json::from_slice::<Value>(bytes)? {
        object @ Value::Object(_) => serde_json::from_value(object),
        other => Err(serde::de::Error::custom(format_args!("expected a JSON object, got {}", json_type(&other)))),
    }
}

/// The token lifetime a client asked for, if in [`TOKEN_LIFETIME_SECS`].
pub(crate) fn token_lifetime(expires_in_seconds: Option<i64>) -> Result<Option<i64>, ClerkApiError> {
    match expires_in_seconds {
        Some(secs) if !TOKEN_LIFETIME_SECS.contains(&secs) => Err(invalid_param(
            "expires_in_seconds",
            &format!("expires_in_seconds must be between {} and {} seconds, got {secs}", TOKEN_LIFETIME_SECS.start(), TOKEN_LIFETIME_SECS.end()),
        )),
        other => Ok(other),
    }
}

/// `public_metadata` / `private_metadata` / `unsafe_metadata`: an object, never an array,
/// string or number; `null` (leaves it unchanged) only where the spec makes it `nullable`.
pub(crate) fn metadata(param: &str, value: Option<Value>, nullable: bool) -> Result<Option<Map<String, Value>>, ClerkApiError> {
    match value {
        None => Ok(None),
        Some(Value::Null) if nullable => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(invalid_param(param, &format!("{param} must be a JSON object, got {}", json_type(&other)))),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The JSON type the spec gives a body property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `type: string`.
    String,
    /// `type: boolean`.
    Bool,
    /// `type: integer`.
    Integer,
    /// `type: array` of strings.
    Strings,
    /// `type: object`.
    Object,
}

/// One property of a request body: name, type, and whether `null` is allowed.
pub(crate) type Field = (&'static str, Kind, bool);

/// Checks a body whose schema has `additionalProperties: false` against its properties:
/// an unknown property is a 422 `form_param_unknown`, a property of the wrong type a 422
/// `form_param_format_invalid`, both naming it. The properties the mock does not act on
/// (`locale`, `password`, `bypass_client_trust` …) are checked all the same, so a request
/// Clerk refuses is refused here too.
pub(crate) fn check_fields(body: &Bytes, fields: &[Field]) -> Result<(), ClerkApiError> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(if body.is_empty() { b"{}" } else { body }) else {
        return Ok(()); // parse_body reports what is not an object
    };
    for (name, value) in &map {
        let Some(&(_, kind, nullable)) = fields.iter().find(|(n, _, _)| n == name) else {
            return Err(ClerkApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_param_unknown",
                "is unknown",
                &format!("{name} is not a valid parameter for this request."),
            )
            .with_meta(json!({ "param_name": name })));
        };
        let ok = match (kind, value) {
            (_, Value::Null) => nullable,
            (Kind::String, Value::String(_)) | (Kind::Bool, Value::Bool(_)) | (Kind::Object, Value::Object(_)) => true,
            (Kind::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (Kind::Strings, Value::Array(items)) => items.iter().all(Value::is_string),
            _ => false,
        };
        if !ok {
            return Err(ClerkApiError::unprocessable(&format!("{name} must be {kind:?}{}, got {}", if nullable { " or null" } else { "" }, json_type(value)))
                .with_meta(json!({ "param_name": name })));
        }
    }
    Ok(())
}

/// Whether `id` is `<prefix>_` followed by 27 word characters (`^(user|org|…)_\w{27}$`;
/// the spec's regexes are ECMA, where `\w` is ASCII).
pub(crate) fn has_id_shape(id: &str, prefixes: &[&str]) -> bool {
    id.split_once('_')
        .is_some_and(|(prefix, rest)| prefixes.contains(&prefix) && rest.len() == 27 && rest.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'))
}

/// An API key's name: at least 3 characters (not bytes), no leading or trailing whitespace
/// (`^(\S(.*\S)?)?$`).
pub(crate) fn api_key_name(name: &str) -> Result<(), ClerkApiError> {
    if name.chars().count() < 3 {
        return Err(invalid_param("name", "name must be at least 3 characters"));
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) || name.contains(['\n', '\r']) {
        return Err(invalid_param("name", "name must not start or end with whitespace, nor span lines"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetime_admits_the_specs_bounds_only() {
        for ok in [30, 60, 315_360_000] {
            assert_eq!(token_lifetime(Some(ok)).expect("in range"), Some(ok));
        }
        for bad in [i64::MIN, -5, 0, 29, 315_360_001, i64::MAX] {
            assert_eq!(token_lifetime(Some(bad)).expect_err("out of range").status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        assert_eq!(token_lifetime(None).expect("absent"), None);
    }

    #[test]
    fn metadata_must_be_an_object() {
        assert!(metadata("public_metadata", Some(json!({"a": 1})), false).expect("object").is_some());
        assert!(metadata("public_metadata", Some(Value::Null), true).expect("null where nullable").is_none());
        assert!(metadata("public_metadata", Some(Value::Null), false).is_err(), "null where the spec says object");
        for bad in [json!([null]), json!("str"), json!(5), json!(true)] {
            let e = metadata("public_metadata", Some(bad.clone()), true).expect_err("not an object");
            assert_eq!(e.errors[0].meta, Some(json!({"param_name": "public_metadata"})), "{bad}");
        }
    }

    #[test]
    fn id_shape_counts_characters_after_a_known_prefix() {
        let tail = "a".repeat(27);
        assert!(has_id_shape(&format!("user_{tail}"), &["user", "scim"]));
        assert!(has_id_shape(&format!("scim_{tail}"), &["user", "scim"]));
        assert!(!has_id_shape(&format!("org_{tail}"), &["user", "scim"]));
        assert!(!has_id_shape("user_short", &["user"]));
        assert!(!has_id_shape(&format!("user_{tail}-"), &["user"]));
    }

    #[test]
    fn api_key_names_count_characters_not_bytes() {
        assert!(api_key_name("ééé").is_ok(), "three characters, six bytes");
        assert!(api_key_name("éé").is_err(), "two characters, four bytes");
        assert!(api_key_name(" abc").is_err());
        assert!(api_key_name("abc ").is_err());
    }

    #[test]
    fn check_fields_refuses_unknown_and_mistyped_properties() {
        const FIELDS: &[Field] = &[("name", Kind::String, true), ("banned", Kind::Bool, false), ("codes", Kind::Strings, false)];
        let body = |v: Value| Bytes::from(v.to_string());
        assert!(check_fields(&body(json!({"name": null, "banned": true, "codes": ["a"]})), FIELDS).is_ok());
        for (bad, param) in [
            (json!({"other": 1}), "other"),
            (json!({"banned": {}}), "banned"),
            (json!({"banned": null}), "banned"),
            (json!({"codes": [1]}), "codes"),
            (json!({"name": 5}), "name"),
        ] {
            let e = check_fields(&body(bad.clone()), FIELDS).expect_err("refused");
            assert_eq!(e.errors[0].meta, Some(json!({"param_name": param})), "{bad}");
        }
    }
}
