//! The HAR reader and its analysis (no backend): the recorded fixtures, the shapes of
//! Firefox's and Safari's exports, gzip and base64 bodies, and one clear error per bad HAR.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use harness::Profile;
use scenarios::internal::analyse::{Party, Sent, TokenKind, Transport};
use scenarios::internal::{analyse, har};
use scenarios::{read_har, ReplayError};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/har").join(format!("{name}.har"))
}

fn profile(name: &str) -> Profile {
    Profile::from_file(Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles").join(format!("{name}.toml"))).expect("shipped profile")
}

#[test]
fn a_recorded_healthy_session_has_fresh_session_tokens_sent_as_bearer() {
    let rec = read_har(&fixture("healthy"), &profile("reference")).expect("healthy HAR");
    assert_eq!(rec.browser, "chromium");
    assert_eq!(rec.calls.len(), 2, "{rec:#?}");
    for call in &rec.calls {
        assert_eq!(call.status, 200);
        assert_eq!(call.origin, Party::Profile);
        let Sent::Token { transport, token } = &call.sent else { panic!("{call:?}") };
        assert_eq!(*transport, Transport::Bearer);
        assert_eq!(token.kind, TokenKind::Session);
        assert_eq!(token.version, Some(2));
        assert_eq!(token.lifetime_s, 60);
        assert!((-2..=0).contains(&token.iat_s), "fresh: {token:?}");
        assert_eq!(token.azp, Party::Profile);
        assert!(call.refreshed_before, "getToken() before each call");
    }
    assert!(scenarios::internal::recorded_loop(&rec).is_none());
}

#[test]
fn the_session_id_sent_as_bearer_is_recognised() {
    let rec = read_har(&fixture("session_id_as_bearer"), &profile("reference")).expect("HAR");
    assert!(rec.calls.iter().all(|c| matches!(c.sent, Sent::SessionId { transport: Transport::Bearer }) && c.status == 401), "{rec:#?}");
    assert_eq!(scenarios::internal::recorded_loop(&rec), Some(0));
}

#[test]
fn clock_skew_shows_as_a_token_issued_in_the_future() {
    let rec = read_har(&fixture("clock_skew"), &profile("reference")).expect("HAR");
    let Sent::Token { token, .. } = &rec.calls[0].sent else { panic!("{rec:#?}") };
    assert!((29..=31).contains(&token.iat_s), "Clerk 30 s ahead: {token:?}");
}

#[test]
fn a_key_rotation_shows_as_a_second_key() {
    let rec = read_har(&fixture("stale_jwks"), &profile("reference")).expect("HAR");
    let keys: Vec<usize> = rec.calls.iter().filter_map(|c| if let Sent::Token { token, .. } = &c.sent { Some(token.key) } else { None }).collect();
    assert_eq!(keys.first(), Some(&0));
    assert_eq!(keys.last(), Some(&1), "{keys:?}");
    assert_eq!(rec.calls[0].status, 200);
}

#[test]
fn a_cors_blocked_answer_is_recorded_as_no_status() {
    let rec = read_har(&fixture("cors_missing_on_401"), &profile("reference")).expect("HAR");
    assert!(rec.calls.iter().all(|c| c.status == 0), "{rec:#?}");
    // The page never saw a 401, so it never fetched a new token between its retries.
    assert!(rec.calls[1..].iter().all(|c| !c.refreshed_before), "{rec:#?}");
    let Sent::Token { token, .. } = &rec.calls[0].sent else { panic!() };
    assert!(token.exp_s < 0, "the cached token had expired: {token:?}");
}

#[test]
fn a_default_token_where_a_template_is_required_is_a_session_token() {
    let rec = read_har(&fixture("default_token"), &profile("reference-template")).expect("HAR");
    let Sent::Token { token, .. } = &rec.calls[0].sent else { panic!() };
    assert_eq!(token.kind, TokenKind::Session);
}

/// The stale-JWKS session exported by Firefox itself (`scripts/record-har-fixtures --firefox`:
/// firefox-esr's DevTools HAR auto-export, local time at +01:00, CORS preflights recorded as
/// their own `OPTIONS` entries): the same five calls as Chromium's recording.
#[test]
fn firefoxs_own_export_of_the_stale_jwks_loop_reads_like_chromiums() {
    let bytes = std::fs::read(fixture("firefox_stale_jwks")).expect("fixture");
    let parsed = har::parse(&bytes).expect("Firefox HAR");
    assert_eq!(parsed.browser, "Firefox");
    let raw: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(raw["log"]["creator"]["name"], "Firefox", "written by Firefox's exporter, not Playwright's");
    let first = raw["log"]["entries"][0]["startedDateTime"].as_str().expect("startedDateTime");
    assert!(first.ends_with("+01:00"), "local time with its offset: {first}");
    assert!(parsed.entries.iter().any(|e| e.request.method == "OPTIONS"), "Firefox records the preflights");

    let rec = read_har(&fixture("firefox_stale_jwks"), &profile("reference")).expect("HAR");
    assert_eq!(rec.browser, "Firefox");
    let statuses: Vec<u16> = rec.calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [200, 401, 401, 401, 401], "{rec:#?}");
    let mut keys = vec![];
    for call in &rec.calls {
        assert_eq!(call.method, "GET", "a preflight is not a call: {call:?}");
        assert_eq!(call.origin, Party::Profile);
        assert!(call.cors && call.refreshed_before, "{call:?}");
        let Sent::Token { transport, token } = &call.sent else { panic!("{call:?}") };
        assert_eq!(*transport, Transport::Bearer);
        // Fresh by the browser's clock: the +01:00 offset is read, not taken for UTC.
        assert!((-2..=0).contains(&token.iat_s), "fresh: {token:?}");
        keys.push(token.key);
    }
    assert_eq!(keys, [0, 1, 1, 1, 1], "Clerk rotated its key after the first call");
    assert!(rec.calls.windows(2).all(|w| (0..5_000).contains(&(w[1].at_ms - w[0].at_ms))), "{rec:#?}");
    assert_eq!(scenarios::internal::recorded_loop(&rec), Some(1));
}

/// A Firefox-style export: local time with an offset, `bodySize: -1`, cookies as sent; and a
/// Safari-style one: no `cookies` arrays (the Cookie header has them).
#[test]
fn firefox_and_safari_shapes_parse() {
    let jwt = std::fs::read_to_string(fixture("healthy")).expect("fixture");
    let v: serde_json::Value = serde_json::from_str(&jwt).expect("json");
    let token = v["log"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find_map(|e| {
            e["response"]["content"]["text"].as_str().and_then(|t| t.split("\"jwt\":\"").nth(1)).map(|t| t.split('"').next().unwrap_or_default().to_string())
        })
        .expect("a jwt");
    let firefox = serde_json::json!({"log": {"version": "1.2", "creator": {"name": "Firefox", "version": "133.0"}, "browser": {"name": "Firefox", "version": "133.0"}, "entries": [
        {"startedDateTime": "2026-12-06T07:20:00.123+01:00", "time": 12, "request": {"method": "GET", "url": "http://127.0.0.1:8000/api/v1/test-token", "httpVersion": "HTTP/1.1",
          "headers": [{"name": "Origin", "value": "http://localhost:3000"}], "cookies": [{"name": "__session", "value": token}], "queryString": [], "headersSize": -1, "bodySize": -1},
         "response": {"status": 401, "statusText": "Unauthorized", "httpVersion": "HTTP/1.1", "headers": [{"name": "Access-Control-Allow-Origin", "value": "http://localhost:3000"}], "cookies": [],
          "content": {"mimeType": "application/json", "size": 10, "text": "eyJkZXRhaWwiOiJubyJ9", "encoding": "base64"}, "redirectURL": "", "headersSize": -1, "bodySize": -1}, "cache": {}, "timings": {}}]}});
    let parsed = har::parse(firefox.to_string().as_bytes()).expect("Firefox HAR");
    assert_eq!(parsed.entries[0].started_ms % 1000, 123);
    assert_eq!(parsed.entries[0].response.body.as_deref(), Some("{\"detail\":\"no\"}"));
    let rec = analyse(&parsed, &profile("reference")).expect("analysis");
    assert!(matches!(rec.calls[0].sent, Sent::Token { transport: Transport::Cookie, .. }), "{rec:#?}");
    assert!(rec.calls[0].cors);

    let mut safari = firefox.clone();
    safari["log"]["creator"]["name"] = "WebKit Web Inspector".into();
    let entry = &mut safari["log"]["entries"][0]["request"];
    entry["cookies"] = serde_json::json!([]);
    entry["headers"] =
        serde_json::json!([{"name": "Origin", "value": "http://localhost:3000"}, {"name": "Cookie", "value": format!("theme=dark; __session={token}")}]);
    let rec = analyse(&har::parse(safari.to_string().as_bytes()).expect("Safari HAR"), &profile("reference")).expect("analysis");
    assert!(matches!(rec.calls[0].sent, Sent::Token { transport: Transport::Cookie, .. }), "{rec:#?}");
    assert_eq!(rec.calls[0].origin, Party::Profile);
}

#[test]
fn a_gzip_compressed_har_and_a_gzipped_base64_body_are_read() {
    let bytes = std::fs::read(fixture("healthy")).expect("fixture");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).expect("gzip");
    let har = har::parse(&gz.finish().expect("gzip")).expect("a .har.gz");
    assert!(!har.entries.is_empty());

    let mut body = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    body.write_all(b"{\"jwt\":\"x\"}").expect("gzip");
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(body.finish().expect("gzip"));
    let one = serde_json::json!({"log": {"entries": [{"startedDateTime": "2026-12-06T06:20:00Z", "request": {"method": "GET", "url": "http://x/"},
        "response": {"status": 200, "content": {"text": text, "encoding": "base64"}}}]}});
    let har = har::parse(one.to_string().as_bytes()).expect("HAR");
    assert_eq!(har.entries[0].response.body.as_deref(), Some("{\"jwt\":\"x\"}"));
}

#[test]
fn a_malformed_entry_is_named_by_its_index() {
    let bad = serde_json::json!({"log": {"entries": [
        {"startedDateTime": "2026-12-06T06:20:00Z", "request": {"method": "GET", "url": "http://x/"}, "response": {"status": 200}},
        {"startedDateTime": "yesterday", "request": {"method": "GET", "url": "http://x/"}, "response": {"status": 200}}]}});
    let e = har::parse(bad.to_string().as_bytes()).expect_err("malformed");
    assert!(matches!(e, ReplayError::Malformed { entry: Some(1), .. }), "{e}");
    assert!(e.to_string().contains("log.entries[1]") && e.to_string().contains("startedDateTime"), "{e}");

    let e = har::parse(b"<html>not a har</html>").expect_err("not JSON");
    assert!(e.to_string().contains("not a HAR file") && e.to_string().contains("Save all as HAR"), "{e}");
}

#[test]
fn a_har_without_the_profiles_endpoints_is_one_clear_error() {
    let other = serde_json::json!({"log": {"entries": [{"startedDateTime": "2026-12-06T06:20:00Z", "request": {"method": "GET", "url": "https://example.com/"}, "response": {"status": 200}}]}});
    let e = analyse(&har::parse(other.to_string().as_bytes()).expect("HAR"), &profile("reference")).expect_err("unrelated");
    assert!(matches!(e, ReplayError::NoEndpoint { entries: 1, .. }), "{e}");
    assert!(e.to_string().contains("GET /api/v1/test-token") && e.to_string().contains("log.entries[0..1]"), "{e}");
}

#[test]
fn a_har_whose_backend_requests_carry_no_token_is_one_clear_error() {
    let none = serde_json::json!({"log": {"entries": [
        {"startedDateTime": "2026-12-06T06:20:00Z", "request": {"method": "GET", "url": "https://example.com/"}, "response": {"status": 200}},
        {"startedDateTime": "2026-12-06T06:20:01Z", "request": {"method": "GET", "url": "http://127.0.0.1:8000/api/v1/auth/me"}, "response": {"status": 401}}]}});
    let e = analyse(&har::parse(none.to_string().as_bytes()).expect("HAR"), &profile("reference")).expect_err("no token");
    assert!(matches!(e, ReplayError::NoToken { first: 1, calls: 1 }), "{e}");
    assert!(e.to_string().contains("log.entries[1]"), "{e}");
}

#[test]
fn an_error_never_quotes_a_token_an_id_or_an_email_of_the_har() {
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEyMyJ9.c2ln";
    let bad = serde_json::json!({"log": {"entries": [
        {"startedDateTime": "2026-12-06T06:20:00Z", "request": {"method": "GET", "url": format!("http://x/?t={jwt}&u=ada@example.com&s=sess_2abcdefghijklmnop")}, "response": {"status": jwt}}]}});
    let e = har::parse(bad.to_string().as_bytes()).expect_err("status is not a number").to_string();
    assert!(e.contains("log.entries[0]"), "{e}");
    assert!(!e.contains(jwt) && !e.contains("eyJ"), "{e}");
    assert_eq!(har::scrub(&format!("a {jwt} b ada@example.com sess_2abcdefghijklmnop c")), "a [token] b [email] sess_[id] c");
}
