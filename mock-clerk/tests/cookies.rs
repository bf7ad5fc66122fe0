//! Cookie sessions and the handshake, walked the way `@clerk/backend` walks them.
//!
//! `Backend` below is a port of the cookie path of `@clerk/backend` (clerk/javascript
//! `packages/backend/src/tokens/request.ts` `authenticateRequestWithTokenInCookie`,
//! `handshake.ts` `HandshakeService`, `authenticateContext.ts` `usesSuffixedCookies`), kept to
//! the branches a same-site, non-satellite app takes. `Browser` is a cookie jar that follows
//! 307s. The chain: the app answers 307 to FAPI's `/v1/client/handshake`, FAPI answers 307
//! back with the handshake nonce, the app redeems it at the Backend API
//! (`/v1/clients/handshake_payload`) and sets the directives, and the next request is signed
//! in with a fresh `__session`. Every body is checked against Clerk's OpenAPI specs.

mod common;

use std::collections::BTreeMap;

use common::openapi::{assert_valid, validator};
use mock_clerk::cookies::{cookie_suffix, directive_name, directive_value, suffixed};
use mock_clerk::{Environment, InstanceConfig, MockClerk, NewUser};
use serde_json::{json, Value};
use url::Url;

const APP: &str = "http://localhost:3000";

/// What `authenticateRequest` decided.
#[derive(Debug, Clone, PartialEq)]
enum State {
    SignedIn {
        sub: String,
        token: String,
        set_cookies: Vec<String>,
        location: Option<String>,
    },
    SignedOut {
        reason: String,
        loop_detected: bool,
    },
    /// `resolveHandshake` found no `__session` among the directives: signed out, with the
    /// directives to set (and in development a redirect to the cleaned URL).
    HandshakeSignedOut {
        set_cookies: Vec<String>,
        location: Option<String>,
    },
    Handshake {
        reason: String,
        location: String,
        set_cookies: Vec<String>,
    },
}

/// A request as the app receives it.
struct Request {
    url: Url,
    cookies: BTreeMap<String, String>,
    method: &'static str,
    sec_fetch_dest: Option<&'static str>,
}

/// The cookie path of `@clerk/backend`'s `authenticateRequest`, against the mock.
struct Backend {
    publishable_key: String,
    secret_key: String,
    api_url: String,
    fapi_host: String,
    development: bool,
    /// Seconds the backend's clock runs ahead of the mock's.
    clock_ahead: i64,
    now: Box<dyn Fn() -> i64>,
}

impl Backend {
    fn new(mock: &MockClerk) -> Self {
        let clock = mock.clock().clone();
        Self {
            publishable_key: mock.instance().publishable_key().to_string(),
            secret_key: mock.instance().secret_key().expose().to_string(),
            api_url: mock.api_url(),
            fapi_host: mock.instance().fapi_host().to_string(),
            development: mock.instance().environment() == Environment::Development,
            clock_ahead: 0,
            now: Box::new(move || clock.now_unix()),
        }
    }

    fn now(&self) -> i64 {
        (self.now)() + self.clock_ahead
    }

    /// `verifyToken` with the JWKS from the Backend API (`loadClerkJWKFromRemote`).
    async fn verify(&self, token: &str) -> Result<mock_clerk::Claims, &'static str> {
        let jwks: Value = reqwest::Client::new()
            .get(format!("{}/v1/jwks", self.api_url))
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(|_| "jwk-remote-failed-to-load")?
            .json()
            .await
            .map_err(|_| "jwk-remote-failed-to-load")?;
        let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
        common::verify(token, &keys, &common::Options::sdk_defaults(), self.now())
    }

    /// `AuthenticateContext.usesSuffixedCookies`.
    fn uses_suffixed_cookies(&self, cookies: &BTreeMap<String, String>) -> bool {
        let suffix = cookie_suffix(&self.publishable_key);
        let get = |n: &str| cookies.get(n).cloned();
        let suffixed_uat = get(&suffixed("__client_uat", &suffix));
        let uat = get("__client_uat");
        let suffixed_session = get(&suffixed("__session", &suffix)).unwrap_or_default();
        let session = get("__session").unwrap_or_default();
        let claims = |t: &str| mock_clerk::decode_unverified(t).ok().map(|(_, c)| c);
        let iss = |t: &str| claims(t).and_then(|c| c.get("iss").and_then(Value::as_str).map(str::to_string));
        if !session.is_empty() && iss(&session).is_none() {
            return false;
        }
        if !session.is_empty() && iss(&session).map(|i| i.replace("https://", "").replace("http://", "")) != Some(self.fapi_host.clone()) {
            return true;
        }
        if suffixed_uat.is_none() && suffixed_session.is_empty() {
            return false;
        }
        let iat = |t: &str| claims(t).and_then(|c| c.get("iat").and_then(Value::as_i64)).unwrap_or(0);
        if suffixed_uat.as_deref() != Some("0") && uat.as_deref() != Some("0") && iat(&session) > iat(&suffixed_session) {
            return false;
        }
        if suffixed_uat.as_deref() == Some("0") && uat.as_deref() != Some("0") {
            return false;
        }
        if self.development {
            let expired = claims(&suffixed_session).and_then(|c| c.get("exp").and_then(Value::as_i64)).is_some_and(|exp| exp <= self.now());
            if suffixed_uat.as_deref() != Some("0") && uat.as_deref() == Some("0") && expired {
                return false;
            }
        }
        if suffixed_uat.is_none() && !suffixed_session.is_empty() {
            return false;
        }
        true
    }

    /// `authenticateRequest` for a request without an `Authorization` header.
    async fn authenticate(&self, req: &Request) -> State {
        let suffix = cookie_suffix(&self.publishable_key);
        let use_suffixed = self.uses_suffixed_cookies(&req.cookies);
        let cookie = |name: &str| {
            let key = if use_suffixed { suffixed(name, &suffix) } else { name.to_string() };
            req.cookies.get(&key).cloned().filter(|v| !v.is_empty())
        };
        let query = |name: &str| req.url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let session_token = cookie("__session");
        let client_uat: i64 = cookie("__client_uat").and_then(|v| v.parse().ok()).unwrap_or(0);
        let dev_browser = query("__clerk_db_jwt").or_else(|| cookie("__clerk_db_jwt"));
        let nonce = query("__clerk_handshake_nonce").or_else(|| req.cookies.get("__clerk_handshake_nonce").cloned());
        let redirect_count: i64 = req.cookies.get("__clerk_redirect_count").and_then(|v| v.parse().ok()).unwrap_or(0);

        if let Some(nonce) = nonce {
            match self.resolve_handshake(req, &nonce).await {
                Ok(state) => return state,
                // Production: `console.error('Clerk: unable to resolve handshake:', error)` and
                // carry on with the cookies of the request.
                Err(e) if !self.development => eprintln!("Clerk: unable to resolve handshake: {e}"),
                Err(e) => return State::SignedOut { reason: format!("handshake failed: {e}"), loop_detected: false },
            }
        }
        let handshake = |reason: &str| self.maybe_handshake(req, reason, session_token.as_deref(), dev_browser.as_deref(), use_suffixed, redirect_count);
        if self.development && query("__clerk_db_jwt").is_some() {
            return handshake("dev-browser-sync");
        }
        if self.development && dev_browser.is_none() {
            return handshake("dev-browser-missing");
        }
        let Some(token) = session_token.clone() else {
            if client_uat == 0 {
                return State::SignedOut { reason: "session-token-and-uat-missing".into(), loop_detected: false };
            }
            return handshake("client-uat-but-no-session-token");
        };
        if client_uat == 0 {
            return handshake("session-token-but-no-client-uat");
        }
        let iat = mock_clerk::decode_unverified(&token).ok().and_then(|(_, c)| c.get("iat").and_then(Value::as_i64)).unwrap_or(0);
        if iat < client_uat {
            return handshake("session-token-iat-before-client-uat");
        }
        match self.verify(&token).await {
            Ok(claims) => State::SignedIn { sub: claims["sub"].as_str().unwrap_or_default().to_string(), token, set_cookies: vec![], location: None },
            // No `__refresh` cookie: `refreshError = non-eligible-no-refresh-cookie`.
            Err("token-expired") => handshake("session-token-expired-refresh-non-eligible-no-refresh-cookie"),
            Err("token-not-active-yet") => handshake("session-token-nbf"),
            Err("token-iat-in-the-future") => handshake("session-token-iat-in-the-future"),
            Err(reason) => State::SignedOut { reason: reason.into(), loop_detected: false },
        }
    }

    /// `handleMaybeHandshakeStatus`: `isRequestEligibleForHandshake`, `buildRedirectToHandshake`,
    /// `checkAndTrackRedirectLoop`.
    fn maybe_handshake(&self, req: &Request, reason: &str, session: Option<&str>, dev_browser: Option<&str>, use_suffixed: bool, count: i64) -> State {
        let eligible = req.method == "GET" && matches!(req.sec_fetch_dest, Some("document" | "iframe"));
        if !eligible {
            return State::SignedOut { reason: reason.into(), loop_detected: false };
        }
        if count == 3 {
            return State::SignedOut { reason: reason.into(), loop_detected: true };
        }
        let mut redirect_url = req.url.clone();
        let kept: Vec<(String, String)> =
            redirect_url.query_pairs().filter(|(k, _)| k != "__clerk_db_jwt" && k != "__dev_session").map(|(k, v)| (k.into(), v.into())).collect();
        redirect_url.set_query(None);
        if !kept.is_empty() {
            redirect_url.query_pairs_mut().extend_pairs(kept);
        }
        let mut url = Url::parse(&format!("https://{}/v1/client/handshake", self.fapi_host)).expect("FAPI URL");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("redirect_url", redirect_url.as_str());
            q.append_pair("__clerk_api_version", "2026-05-12");
            q.append_pair("suffixed_cookies", &use_suffixed.to_string());
            q.append_pair("__clerk_hs_reason", reason);
            q.append_pair("format", "nonce");
            if let Some(s) = session {
                q.append_pair("__session", s);
            }
            if let (true, Some(d)) = (self.development, dev_browser) {
                q.append_pair("__clerk_db_jwt", d);
            }
        }
        State::Handshake {
            reason: reason.into(),
            location: url.to_string(),
            set_cookies: vec![format!("__clerk_redirect_count={}; SameSite=Lax; HttpOnly; Max-Age=2", count + 1)],
        }
    }

    /// `HandshakeService.resolveHandshake` with a nonce.
    async fn resolve_handshake(&self, req: &Request, nonce: &str) -> Result<State, String> {
        let response = reqwest::Client::new()
            .get(format!("{}/v1/clients/handshake_payload", self.api_url))
            .query(&[("nonce", nonce)])
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("handshake_payload answered {status}: {body}"));
        }
        let directives: Vec<String> =
            body["directives"].as_array().map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_string)).collect()).unwrap_or_default();
        let mut token = String::new();
        for d in &directives {
            if directive_name(d).starts_with("__session") {
                token = directive_value(d).to_string();
            }
        }
        let location = self.development.then(|| {
            let mut url = req.url.clone();
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| !matches!(k.as_ref(), "__clerk_handshake" | "__clerk_help" | "__clerk_db_jwt" | "__clerk_handshake_nonce"))
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
            url.set_query(None);
            if !kept.is_empty() {
                url.query_pairs_mut().extend_pairs(kept);
            }
            url.to_string()
        });
        if token.is_empty() {
            return Ok(State::HandshakeSignedOut { set_cookies: directives, location });
        }
        match self.verify(&token).await {
            Ok(claims) => Ok(State::SignedIn { sub: claims["sub"].as_str().unwrap_or_default().to_string(), token, set_cookies: directives, location }),
            Err(reason) => Err(format!("Clerk: Handshake failed: {reason}")),
        }
    }
}

/// A browser: cookies of the app's host, cookies of FAPI's host, and where it is.
#[derive(Default)]
struct Browser {
    app: BTreeMap<String, String>,
    fapi: BTreeMap<String, String>,
}

fn apply(jar: &mut BTreeMap<String, String>, set_cookie: &str) {
    let (name, value) = (directive_name(set_cookie).to_string(), directive_value(set_cookie).to_string());
    if set_cookie.split(';').any(|a| a.trim().eq_ignore_ascii_case("Max-Age=0")) {
        jar.remove(&name);
    } else {
        jar.insert(name, value);
    }
}

/// One hop of the chain, for the assertions.
#[derive(Debug, PartialEq)]
enum Hop {
    App(String),
    Fapi(String),
}

/// Loads `url` like a browser navigation, following 307s between the app (`backend`) and
/// the mock's FAPI, at most `max_hops` responses. Returns the hops and the final state.
async fn navigate(mock: &MockClerk, backend: &Backend, browser: &mut Browser, url: &str, max_hops: usize) -> (Vec<Hop>, State) {
    let fapi_prefix = format!("https://{}", mock.instance().fapi_host());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let mut url = url.to_string();
    let mut hops = Vec::new();
    for _ in 0..max_hops {
        if let Some(path) = url.strip_prefix(&fapi_prefix) {
            hops.push(Hop::Fapi(path.split('?').next().unwrap_or_default().to_string()));
            let cookie_header: String = browser.fapi.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
            let mut request = http.get(format!("{}{path}", mock.fapi_url()));
            if !cookie_header.is_empty() {
                request = request.header("cookie", cookie_header);
            }
            let response = request.send().await.expect("FAPI answers");
            assert_eq!(response.status(), 307, "the handshake answers 307: {:?}", response.text().await);
            assert_eq!(response.headers()["cache-control"], "no-store");
            for c in response.headers().get_all("set-cookie") {
                // Production: the nonce cookie lands on the app's (parent) domain.
                apply(&mut browser.app, c.to_str().expect("ascii"));
            }
            url = response.headers()["location"].to_str().expect("ascii").to_string();
            continue;
        }
        hops.push(Hop::App(url.clone()));
        let request = Request { url: Url::parse(&url).expect("app URL"), cookies: browser.app.clone(), method: "GET", sec_fetch_dest: Some("document") };
        let state = backend.authenticate(&request).await;
        match &state {
            State::Handshake { location, set_cookies, .. } => {
                set_cookies.iter().for_each(|c| apply(&mut browser.app, c));
                url.clone_from(location);
            }
            State::SignedIn { set_cookies, location: Some(location), .. } | State::HandshakeSignedOut { set_cookies, location: Some(location) } => {
                set_cookies.iter().for_each(|c| apply(&mut browser.app, c));
                url.clone_from(location);
            }
            _ => return (hops, state),
        }
        // Max-Age=2 of the redirect counter outlives a fast chain; nothing to expire here.
    }
    panic!("no final answer after {max_hops} responses: {hops:#?}");
}

async fn dev_mock() -> anyhow::Result<(MockClerk, String, String)> {
    let mock = MockClerk::start().await?;
    let user = mock.create_user(NewUser::with_email("cookie@example.com"))?;
    let session = mock.create_session(&user.id)?;
    Ok((mock, user.id, session.id))
}

#[tokio::test]
async fn the_browser_cookies_are_named_with_the_publishable_keys_suffix() -> anyhow::Result<()> {
    let (mock, _, sid) = dev_mock().await?;
    let browser = mock.browser_sign_in(&sid, Some(APP))?;
    let suffix = cookie_suffix(mock.instance().publishable_key());
    assert_eq!(browser.suffix, suffix);
    assert_eq!(suffix.len(), 8);
    let names: Vec<String> = browser.cookies().into_iter().map(|(n, _)| n).collect();
    for name in ["__session", "__client_uat", "__clerk_db_jwt"] {
        assert!(names.contains(&name.to_string()) && names.contains(&format!("{name}_{suffix}")), "{name} plain and suffixed: {names:?}");
    }
    let cookies: BTreeMap<String, String> = browser.cookies().into_iter().collect();
    assert!(cookies["__clerk_db_jwt"].starts_with("dvb_"));
    let (_, claims) = mock_clerk::decode_unverified(&cookies["__session"]).map_err(anyhow::Error::msg)?;
    assert_eq!(claims["azp"], APP);
    assert_eq!(claims["sid"], json!(sid));
    assert_eq!(cookies["__client_uat"], claims["iat"].to_string(), "signed in now: the token was issued when the client was updated");

    let backend = Backend::new(&mock);
    let state = backend
        .authenticate(&Request { url: Url::parse(&format!("{APP}/dashboard"))?, cookies: cookies.clone(), method: "GET", sec_fetch_dest: Some("document") })
        .await;
    assert!(matches!(&state, State::SignedIn { sub, .. } if *sub == browser.session_token_sub()?), "{state:?}");
    Ok(())
}

trait Sub {
    fn session_token_sub(&self) -> anyhow::Result<String>;
}

impl Sub for mock_clerk::cookies::BrowserSession {
    fn session_token_sub(&self) -> anyhow::Result<String> {
        let (_, claims) = mock_clerk::decode_unverified(&self.session_token).map_err(anyhow::Error::msg)?;
        Ok(claims["sub"].as_str().unwrap_or_default().to_string())
    }
}

#[tokio::test]
async fn an_expired_cookie_walks_the_handshake_chain_back_to_signed_in() -> anyhow::Result<()> {
    let (mock, user_id, sid) = dev_mock().await?;
    let signed_in = mock.browser_sign_in(&sid, Some(APP))?;
    let mut browser = Browser { app: signed_in.cookies().into_iter().collect(), ..Browser::default() };
    let old_token = signed_in.session_token.clone();
    mock.clock().advance(std::time::Duration::from_secs(120));
    let backend = Backend::new(&mock);

    let (hops, state) = navigate(&mock, &backend, &mut browser, &format!("{APP}/dashboard?tab=1"), 8).await;
    let State::SignedIn { sub, token, .. } = &state else { panic!("not signed in after the handshake: {state:?} via {hops:#?}") };
    assert_eq!(sub, &user_id);
    assert_ne!(token, &old_token, "a fresh __session");
    assert_eq!(hops.len(), 4, "app 307 → FAPI handshake 307 → app with the nonce 307 → app signed in: {hops:#?}");
    assert_eq!(hops[0], Hop::App(format!("{APP}/dashboard?tab=1")));
    assert_eq!(hops[1], Hop::Fapi("/v1/client/handshake".into()));
    let Hop::App(with_nonce) = &hops[2] else { panic!("{hops:?}") };
    let with_nonce = Url::parse(with_nonce)?;
    assert!(with_nonce.query_pairs().any(|(k, v)| k == "__clerk_handshake_nonce" && !v.is_empty()), "development: the nonce comes back as a query parameter");
    assert!(with_nonce.query_pairs().any(|(k, v)| k == "tab" && v == "1"), "the app's own query survives");
    assert_eq!(hops[3], Hop::App(format!("{APP}/dashboard?tab=1")), "the nonce is taken off the URL");
    let suffix = cookie_suffix(mock.instance().publishable_key());
    assert_eq!(browser.app.get(&format!("__session_{suffix}")), Some(token), "the suffixed cookie carries the fresh token too");
    let (_, claims) = mock_clerk::decode_unverified(token).map_err(anyhow::Error::msg)?;
    assert_eq!(claims["azp"], APP, "azp is the origin of redirect_url");

    // The recorded FAPI request carries what @clerk/backend sends.
    let handshake = mock.faults().requests().into_iter().find(|r| r.path == "/v1/client/handshake").expect("recorded");
    let q: BTreeMap<String, String> = url::form_urlencoded::parse(handshake.query.as_deref().unwrap_or("").as_bytes()).into_owned().collect();
    assert_eq!(q["__clerk_hs_reason"], "session-token-expired-refresh-non-eligible-no-refresh-cookie");
    assert_eq!(q["format"], "nonce");
    assert_eq!(q["suffixed_cookies"], "true");
    assert_eq!(q["__session"], old_token);
    assert_eq!(q["__clerk_db_jwt"], signed_in.client.dev_browser);
    Ok(())
}

#[tokio::test]
async fn client_uat_newer_than_the_token_and_a_missing_dev_browser_resolve_through_the_handshake() -> anyhow::Result<()> {
    let (mock, user_id, sid) = dev_mock().await?;
    let signed_in = mock.browser_sign_in(&sid, Some(APP))?;
    let backend = Backend::new(&mock);
    let suffix = cookie_suffix(mock.instance().publishable_key());

    // __client_uat newer than the token's iat (the client changed on another tab).
    let mut browser = Browser { app: signed_in.cookies().into_iter().collect(), ..Browser::default() };
    let newer = (signed_in.client_uat + 5).to_string();
    browser.app.insert("__client_uat".into(), newer.clone());
    browser.app.insert(format!("__client_uat_{suffix}"), newer);
    mock.clock().advance(std::time::Duration::from_secs(10));
    let (hops, state) = navigate(&mock, &backend, &mut browser, &format!("{APP}/"), 8).await;
    assert!(matches!(&state, State::SignedIn { sub, .. } if *sub == user_id), "{state:?} via {hops:#?}");
    assert_eq!(hops.len(), 4, "{hops:#?}");

    // No dev browser cookie (a first visit, or cookies cleared): the handshake starts a new,
    // signed-out client and hands its dev browser to the app; the session of the old client
    // is not this browser's any more.
    let mut browser = Browser { app: signed_in.cookies().into_iter().filter(|(n, _)| !n.starts_with("__clerk_db_jwt")).collect(), ..Browser::default() };
    let first = backend.authenticate(&Request { url: Url::parse(APP)?, cookies: browser.app.clone(), method: "GET", sec_fetch_dest: Some("document") }).await;
    let State::Handshake { reason, location, .. } = &first else { panic!("{first:?}") };
    assert_eq!(reason, "dev-browser-missing");
    assert!(!location.contains("__clerk_db_jwt"));
    let (hops, state) = navigate(&mock, &backend, &mut browser, &format!("{APP}/"), 8).await;
    assert_eq!(state, State::SignedOut { reason: "session-token-and-uat-missing".into(), loop_detected: false }, "{hops:#?}");
    let new_dev_browser = browser.app.get("__clerk_db_jwt").cloned().unwrap_or_default();
    assert!(new_dev_browser.starts_with("dvb_") && new_dev_browser != signed_in.client.dev_browser, "a new dev browser: {:?}", browser.app);
    // A dev browser FAPI never issued is refused (401 dev_browser_unauthenticated).
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .get(format!("{}/v1/client/handshake", mock.fapi_url()))
        .query(&[("redirect_url", APP), ("format", "nonce"), ("__clerk_db_jwt", "dvb_neverissued")])
        .send()
        .await?;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await?;
    assert_eq!(body["errors"][0]["code"], "dev_browser_unauthenticated");
    assert_valid(&validator("fapi-2025-11-10.yml", "ClerkErrors"), &body, "401 of /v1/client/handshake");
    // A non-document request is never redirected: signed out with the reason.
    let without_dev_browser = signed_in.cookies().into_iter().filter(|(n, _)| !n.starts_with("__clerk_db_jwt")).collect();
    let api_call = backend.authenticate(&Request { url: Url::parse(APP)?, cookies: without_dev_browser, method: "GET", sec_fetch_dest: Some("empty") }).await;
    assert_eq!(api_call, State::SignedOut { reason: "dev-browser-missing".into(), loop_detected: false });
    Ok(())
}

#[tokio::test]
async fn production_carries_the_nonce_in_a_cookie_and_a_skewed_backend_loops_until_clerk_gives_up() -> anyhow::Result<()> {
    let mock = MockClerk::builder()
        .instance(InstanceConfig { environment: Environment::Production, fapi_host: Some("clerk.example.com".into()), ..Default::default() })
        .start()
        .await?;
    let user = mock.create_user(NewUser::with_email("prod@example.com"))?;
    let session = mock.create_session(&user.id)?;
    let signed_in = mock.browser_sign_in(&session.id, Some("https://example.com"))?;
    assert!(signed_in.cookies().iter().all(|(n, _)| !n.starts_with("__clerk_db_jwt")), "no dev browser in production");
    let fresh_browser = || Browser {
        app: signed_in.cookies().into_iter().collect(),
        fapi: [("__client".to_string(), signed_in.client.client_cookie.clone())].into_iter().collect(),
    };
    mock.clock().advance(std::time::Duration::from_secs(120));

    let backend = Backend::new(&mock);
    let mut browser = fresh_browser();
    let (hops, state) = navigate(&mock, &backend, &mut browser, "https://example.com/app", 8).await;
    assert!(matches!(&state, State::SignedIn { sub, .. } if *sub == user.id), "{state:?} via {hops:#?}");
    assert_eq!(hops.len(), 3, "app 307 → FAPI 307 (nonce cookie) → app signed in, no cleanup redirect in production: {hops:#?}");
    assert_eq!(hops[2], Hop::App("https://example.com/app".into()), "the nonce is a cookie, not in the URL");
    assert!(browser.app.contains_key("__clerk_handshake_nonce"));

    // A backend whose clock runs 2 minutes ahead sees every fresh token expired: each
    // handshake fails and sends it back to FAPI, until the redirect counter reaches 3.
    let mut skewed = Backend::new(&mock);
    skewed.clock_ahead = 120;
    let mut browser = fresh_browser();
    let (hops, state) = navigate(&mock, &skewed, &mut browser, "https://example.com/app", 20).await;
    assert_eq!(
        state,
        State::SignedOut { reason: "session-token-expired-refresh-non-eligible-no-refresh-cookie".into(), loop_detected: true },
        "Clerk: Refreshing the session token resulted in an infinite redirect loop ({hops:#?})"
    );
    assert_eq!(hops.iter().filter(|h| matches!(h, Hop::Fapi(_))).count(), 3, "three handshakes, then signed out: {hops:#?}");
    Ok(())
}

#[tokio::test]
async fn a_signed_out_client_gets_clearing_directives_and_the_nonce_is_checked() -> anyhow::Result<()> {
    let (mock, _, sid) = dev_mock().await?;
    let signed_in = mock.browser_sign_in(&sid, Some(APP))?;
    mock.store().set_session_status(&sid, mock_clerk::SessionStatus::Revoked)?;
    mock.clock().advance(std::time::Duration::from_secs(120));
    let backend = Backend::new(&mock);
    let mut browser = Browser { app: signed_in.cookies().into_iter().collect(), ..Browser::default() };
    let (hops, state) = navigate(&mock, &backend, &mut browser, &format!("{APP}/"), 8).await;
    assert_eq!(state, State::SignedOut { reason: "session-token-and-uat-missing".into(), loop_detected: false }, "{hops:#?}");
    assert_eq!(hops.len(), 4, "{hops:#?}");
    let suffix = cookie_suffix(mock.instance().publishable_key());
    assert!(!browser.app.contains_key("__session") && !browser.app.contains_key(&format!("__session_{suffix}")), "the __session cookies are cleared");
    assert_eq!(browser.app.get("__client_uat").map(String::as_str), Some("0"));

    let http = reqwest::Client::new();
    let bearer = common::bearer(&mock);
    let bad = http.get(format!("{}/v1/clients/handshake_payload?nonce=nope", mock.api_url())).header("authorization", &bearer).send().await?;
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await?;
    assert_eq!(body["errors"][0]["code"], "invalid_nonce");
    assert_valid(&validator("bapi-2025-11-10.yml", "ClerkErrors"), &body, "400 of handshake_payload");
    let missing = http.get(format!("{}/v1/clients/handshake_payload", mock.api_url())).header("authorization", &bearer).send().await?;
    assert_eq!(missing.status(), 400);
    assert_eq!(missing.json::<Value>().await?["errors"][0]["code"], "missing_parameter");
    let unauthenticated = http.get(format!("{}/v1/clients/handshake_payload?nonce=x", mock.api_url())).send().await?;
    assert_eq!(unauthenticated.status(), 401, "behind the secret key like every BAPI route");
    Ok(())
}

#[tokio::test]
async fn handshake_requests_and_answers_match_clerks_openapi_specs() -> anyhow::Result<()> {
    let (mock, _, sid) = dev_mock().await?;
    let signed_in = mock.browser_sign_in(&sid, Some(APP))?;
    let fapi: Value = serde_yaml::from_str(&std::fs::read_to_string(format!("{}/../openapi/fapi-2025-11-10.yml", env!("CARGO_MANIFEST_DIR")))?)?;
    let bapi: Value = serde_yaml::from_str(&std::fs::read_to_string(format!("{}/../openapi/bapi-2025-11-10.yml", env!("CARGO_MANIFEST_DIR")))?)?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;

    // The request: every documented query parameter @clerk/backend sends is in the spec, and
    // `format` takes one of its values; the answer is the spec's 307.
    let op = &fapi["paths"]["/v1/client/handshake"]["get"];
    let documented: Vec<&str> = op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "query").filter_map(|p| p["name"].as_str()).collect();
    for name in ["redirect_url", "format", "organization_id"] {
        assert!(documented.contains(&name), "{name} is a documented parameter of GET /v1/client/handshake");
    }
    let formats = op["parameters"].as_array().into_iter().flatten().find(|p| p["name"] == "format").map(|p| p["schema"]["enum"].clone());
    assert_eq!(formats, Some(json!(["nonce", "token"])));
    assert!(op["responses"].get("307").is_some());
    for format in ["nonce", "token"] {
        let response = http
            .get(format!("{}/v1/client/handshake", mock.fapi_url()))
            .query(&[("redirect_url", format!("{APP}/x").as_str()), ("format", format), ("__clerk_db_jwt", signed_in.client.dev_browser.as_str())])
            .send()
            .await?;
        assert_eq!(response.status(), 307, "format={format}");
        let location = Url::parse(response.headers()["location"].to_str()?)?;
        let carried = if format == "nonce" { "__clerk_handshake_nonce" } else { "__clerk_handshake" };
        let value = location.query_pairs().find(|(k, _)| k == carried).map(|(_, v)| v.into_owned()).expect("carried in the URL");
        if format == "token" {
            // `verifyHandshakeJwt`: typ JWT, RS256, a session-category header, signed by the
            // instance key; the payload is `{handshake: [directives]}`.
            let (header, claims) = mock_clerk::decode_unverified(&value).map_err(anyhow::Error::msg)?;
            assert_eq!((header["typ"].clone(), header["alg"].clone(), header["cat"].clone()), (json!("JWT"), json!("RS256"), json!("cl_B7d4PD111AAA")));
            let jwks = common::fetch_jwks(&mock.jwks_url()).await;
            let key = jwks.iter().find(|k| k["kid"] == header["kid"]).expect("kid in the JWKS");
            let decoding = jsonwebtoken::DecodingKey::from_rsa_components(key["n"].as_str().unwrap_or(""), key["e"].as_str().unwrap_or(""))?;
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
            validation.required_spec_claims.clear();
            jsonwebtoken::decode::<Value>(&value, &decoding, &validation)?;
            let directives = claims["handshake"].as_array().expect("handshake[]");
            assert!(directives.iter().any(|d| d.as_str().is_some_and(|d| directive_name(d) == "__session" && !directive_value(d).is_empty())));
        }
    }
    for bad in [json!({"format": "nonce"}), json!({"redirect_url": "/relative", "format": "nonce"}), json!({"redirect_url": APP, "format": "jwt"})] {
        let mut q: Vec<(String, String)> =
            bad.as_object().into_iter().flatten().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect();
        q.push(("__clerk_db_jwt".into(), signed_in.client.dev_browser.clone()));
        let response = http.get(format!("{}/v1/client/handshake", mock.fapi_url())).query(&q).send().await?;
        assert_eq!(response.status(), 422, "{bad}");
        assert_valid(&validator("fapi-2025-11-10.yml", "ClerkErrors"), &response.json().await?, "422 of /v1/client/handshake");
    }

    // The Backend API documents the path (with no operation in this spec version); the
    // answer is what @clerk/backend's HandshakePayloadJSON reads: `{directives: string[]}`.
    assert!(bapi["paths"].get("/clients/handshake_payload").is_some(), "the BAPI spec lists /clients/handshake_payload");
    let response = http
        .get(format!("{}/v1/client/handshake", mock.fapi_url()))
        .query(&[("redirect_url", APP), ("format", "nonce"), ("__clerk_db_jwt", &signed_in.client.dev_browser)])
        .send()
        .await?;
    let location = Url::parse(response.headers()["location"].to_str()?)?;
    let nonce = location.query_pairs().find(|(k, _)| k == "__clerk_handshake_nonce").map(|(_, v)| v.into_owned()).expect("nonce");
    let payload: Value = http
        .get(format!("{}/v1/clients/handshake_payload", mock.api_url()))
        .query(&[("nonce", &nonce)])
        .header("authorization", common::bearer(&mock))
        .send()
        .await?
        .json()
        .await?;
    let payload_schema = jsonschema::validator_for(&json!({
        "type": "object", "additionalProperties": false, "required": ["directives"],
        "properties": { "directives": { "type": "array", "items": { "type": "string", "pattern": "^__[a-z_]+(_[A-Za-z0-9_-]{8})?=[^;]*(; [A-Za-z-]+(=[^;]+)?)*$" } } }
    }))?;
    assert_valid(&payload_schema, &payload, "handshake_payload");
    let suffix = cookie_suffix(mock.instance().publishable_key());
    let names: Vec<&str> = payload["directives"].as_array().into_iter().flatten().filter_map(Value::as_str).map(directive_name).collect();
    assert_eq!(names, ["__session", "__client_uat", "__clerk_db_jwt"], "suffixed_cookies absent: only the plain names (suffix {suffix} unused)");

    // The other FAPI routes the browser SDK calls, against their response schemas.
    let dev_browser = http.post(format!("{}/v1/dev_browser", mock.fapi_url())).send().await?;
    assert_eq!(dev_browser.status(), 200);
    let dvb: Value = dev_browser.json().await?;
    assert!(dvb["id"].as_str().is_some_and(|id| id.starts_with("dvb_")), "clerk-js keeps `id` in __clerk_db_jwt: {dvb}");
    let client: Value =
        http.get(format!("{}/v1/client", mock.fapi_url())).query(&[("__clerk_db_jwt", &signed_in.client.dev_browser)]).send().await?.json().await?;
    assert_valid(&validator("fapi-2025-11-10.yml", "Client.ClientWrappedClient"), &client, "GET /v1/client");
    assert_eq!(client["response"]["last_active_session_id"], json!(sid));
    assert_eq!(client["response"]["sessions"][0]["id"], json!(sid));
    let empty: Value =
        http.get(format!("{}/v1/client", mock.fapi_url())).header("clerk-db-jwt", dvb["id"].as_str().unwrap_or_default()).send().await?.json().await?;
    assert_valid(&validator("fapi-2025-11-10.yml", "Client.ClientWrappedClient"), &empty, "GET /v1/client of a new dev browser");
    assert_eq!(empty["response"]["sessions"], json!([]));
    let env: Value = http.get(format!("{}/v1/environment", mock.fapi_url())).send().await?.json().await?;
    assert_valid(&validator("fapi-2025-11-10.yml", "Client.Environment"), &env, "GET /v1/environment");
    Ok(())
}

#[tokio::test]
async fn the_admin_api_signs_a_browser_in_for_out_of_process_harnesses() -> anyhow::Result<()> {
    let (mock, _, sid) = dev_mock().await?;
    let http = reqwest::Client::new();
    let answer: Value = http
        .post(format!("{}/_mock/browser", mock.api_url()))
        .header("authorization", common::bearer(&mock))
        .json(&json!({"session_id": sid, "origin": APP}))
        .send()
        .await?
        .json()
        .await?;
    let suffix = cookie_suffix(mock.instance().publishable_key());
    assert_eq!(answer["cookie_suffix"], json!(suffix));
    let token = answer["cookies"][format!("__session_{suffix}")].as_str().expect("suffixed __session");
    assert_eq!(answer["cookies"]["__session"].as_str(), Some(token));
    assert!(answer["dev_browser"].as_str().is_some_and(|d| d.starts_with("dvb_")) && answer["client_cookie"].is_null(), "{answer:#}");
    let header = answer["cookie_header"].as_str().expect("cookie_header");
    assert!(header.contains(&format!("__clerk_db_jwt={}", answer["dev_browser"].as_str().unwrap_or_default())));
    let missing = http
        .post(format!("{}/_mock/browser", mock.api_url()))
        .header("authorization", common::bearer(&mock))
        .json(&json!({"session_id": "sess_nope"}))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    Ok(())
}
