//! The cookie side: a same-site app whose `clerk-js` keeps the session in cookies
//! (`__session`, `__client_uat`, on development instances `__clerk_db_jwt`, each plain and
//! suffixed), and Clerk's handshake (`@clerk/backend` `request.ts`/`handshake.ts`): a document
//! request whose cookies cannot be trusted is redirected (307) to FAPI's
//! `/v1/client/handshake`, which sends the browser back with a nonce the backend redeems at
//! the Backend API for fresh cookies. These scenarios apply to profiles with
//! `[token] transport = "cookie"`.

use std::collections::BTreeMap;

use harness::Transport;
use mock_clerk::cookies::{browser_cookies, cookie_header, directive_name, directive_value, REDIRECT_COUNT};
use reqwest::header::{HeaderValue, ACCEPT, COOKIE, LOCATION, SET_COOKIE};

use super::body;
use crate::ctx::{judge_rejection, Ctx};
use crate::scenario::{Exchange, Outcome};
use crate::StepError;

const NOT_COOKIES: &str =
    "the SPA sends its token as an Authorization: Bearer header ([token] transport = \"bearer\"): the app does not use Clerk's session cookies";

/// How many handshakes a navigation may go through before the harness calls it a loop
/// (`@clerk/backend` itself stops at 3, `checkAndTrackRedirectLoop`).
const MAX_HANDSHAKES: usize = 4;
/// Redirects of one navigation, handshakes included (a browser follows 20).
const MAX_HOPS: usize = 12;

fn cookie_transport(ctx: &Ctx) -> bool {
    *ctx.env.profile().token.transport.get() == Transport::Cookie
}

/// The browser's cookie jar on the application (name → value).
type Jar = BTreeMap<String, String>;

/// The cookies `clerk-js` keeps for `token` (`__client_uat` = `client_uat`), with the dev
/// browser of `session_id` on development instances unless `dev_browser` is false.
fn jar_for(ctx: &Ctx, session_id: &str, token: &str, client_uat: i64, dev_browser: bool) -> Result<Jar, StepError> {
    let mock = ctx.env.mock();
    let development = mock.instance().environment() == mock_clerk::Environment::Development;
    let dvb = if development && dev_browser { Some(mock.browser_client(session_id)?.dev_browser) } else { None };
    Ok(browser_cookies(&mock.cookie_suffix(), token, client_uat, dvb.as_deref()).into_iter().collect())
}

fn iat_of(token: &str) -> i64 {
    mock_clerk::decode_unverified(token).ok().and_then(|(_, c)| c.get("iat").and_then(serde_json::Value::as_i64)).unwrap_or(0)
}

fn apply_set_cookie(jar: &mut Jar, set_cookie: &str) {
    let (name, value) = (directive_name(set_cookie).trim().to_string(), directive_value(set_cookie).to_string());
    if name.is_empty() {
        return;
    }
    let expired = set_cookie.split(';').skip(1).any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
    if expired || value.is_empty() {
        jar.remove(&name);
    } else {
        jar.insert(name, value);
    }
}

/// The SPA's own API call (`fetch` with credentials): its origin, the jar's cookies.
async fn fetch(ctx: &mut Ctx, jar: &Jar) -> Result<Exchange, StepError> {
    let endpoint = ctx.token_endpoint()?;
    let request = ctx.env.spa().request(endpoint.method.as_reqwest(), endpoint.path.get()).header("sec-fetch-dest", "empty");
    let request = request
        .header(COOKIE, HeaderValue::from_str(&cookie_header(&jar.clone().into_iter().collect::<Vec<_>>())).map_err(|e| StepError::Other(e.to_string()))?);
    ctx.fetch(request).await
}

/// What one browser navigation went through.
#[derive(Debug, Default)]
struct Walk {
    /// `__clerk_hs_reason` of each handshake, in order.
    handshakes: Vec<String>,
    /// Every URL loaded, in order (backend paths and FAPI handshakes).
    hops: Vec<String>,
    /// The answer that ended it (`None`: stopped as a loop).
    last: Option<Exchange>,
}

impl Walk {
    fn describe(&self) -> String {
        self.hops.join(" → ")
    }
}

/// Loads `path` as a browser navigation (`Sec-Fetch-Dest: document`, `Accept: text/html`)
/// with `jar`, following redirects: the backend's own, and the handshake through the mock's
/// FAPI and back, as a browser does. Stops after [`MAX_HANDSHAKES`] handshakes.
async fn navigate(ctx: &mut Ctx, path: &str, jar: &mut Jar) -> Result<Walk, StepError> {
    let fapi = format!("https://{}", ctx.env.mock().instance().fapi_host());
    let fapi_local = ctx.env.mock().fapi_url();
    let backend = ctx.env.backend_url().clone();
    let mut walk = Walk::default();
    let mut target = path.to_string();
    for _ in 0..MAX_HOPS {
        walk.hops.push(target.clone());
        let cookies = cookie_header(&jar.clone().into_iter().collect::<Vec<_>>());
        let mut request = ctx.env.spa().without_origin().get(&target).header("sec-fetch-dest", "document").header(ACCEPT, "text/html,application/xhtml+xml");
        if !cookies.is_empty() {
            request = request.header(COOKIE, HeaderValue::from_str(&cookies).map_err(|e| StepError::Other(e.to_string()))?);
        }
        let got = ctx.fetch(request).await?;
        for (_, c) in got.headers.iter().filter(|(k, _)| k == "set-cookie") {
            apply_set_cookie(jar, c);
        }
        let location = got.header("location").map(str::to_owned);
        let redirect = (300..400).contains(&got.status);
        let Some(location) = location.filter(|_| redirect) else {
            walk.last = Some(got);
            return Ok(walk);
        };
        if let Some(rest) = location.strip_prefix(&fapi).filter(|r| r.starts_with("/v1/client/handshake")) {
            let reason = url::Url::parse(&location).ok().and_then(|u| u.query_pairs().find(|(k, _)| k == "__clerk_hs_reason").map(|(_, v)| v.into_owned()));
            walk.handshakes.push(reason.unwrap_or_else(|| "(no __clerk_hs_reason)".into()));
            walk.hops.push(format!("FAPI {}", rest.split('?').next().unwrap_or(rest)));
            if walk.handshakes.len() > MAX_HANDSHAKES {
                walk.last = Some(got);
                return Ok(walk);
            }
            // The page is the SPA's: the app is served at its origin, wherever the harness
            // reaches the backend. FAPI mints the fresh token for redirect_url's origin (azp).
            let rest = as_spa_page(rest, ctx.env.profile().spa_origin());
            let answer = ctx.timed_as("the mock's FAPI handshake", ctx.env.http().get(format!("{fapi_local}{rest}")).send()).await?;
            for c in answer.headers().get_all(SET_COOKIE) {
                // Production: the nonce cookie, set on the application's parent domain.
                apply_set_cookie(jar, c.to_str().unwrap_or_default());
            }
            let back = answer.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let Some(back) = back.filter(|_| answer.status().as_u16() == 307) else {
                let status = answer.status().as_u16();
                let body = answer.text().await.unwrap_or_default();
                return Err(StepError::Other(format!("the mock's FAPI answered the handshake {location} with {status}: {body}")));
            };
            target = path_and_query(&back);
            continue;
        }
        let next = backend.join(&target).ok().and_then(|current| current.join(&location).ok());
        match next {
            Some(next) if next.origin() == backend.origin() => target = path_and_query(next.as_str()),
            _ => {
                walk.last = Some(got);
                return Ok(walk);
            }
        }
    }
    Ok(walk)
}

/// The handshake's `path?query` with `redirect_url` moved to `spa_origin` (same path and query).
fn as_spa_page(path_and_query: &str, spa_origin: &str) -> String {
    let Ok(mut url) = url::Url::parse(&format!("http://fapi.invalid{path_and_query}")) else { return path_and_query.to_string() };
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "redirect_url" { format!("{}{}", spa_origin.trim_end_matches('/'), self::path_and_query(&v)) } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// `/path?query` of a URL (the redirect back carries the backend's own idea of its host).
fn path_and_query(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        Err(_) => url.to_string(),
    }
}

/// The explanation of a handshake loop, in the words of `@clerk/backend`.
fn loop_problem(walk: &Walk) -> String {
    format!(
        "handshake redirect loop: {} handshakes ({}) — after each, FAPI delivered a fresh __session and the backend sent the browser back to the handshake. \
         Clerk: \"Refreshing the session token resulted in an infinite redirect loop. This usually means that your Clerk instance keys do not match\" — \
         or the backend's clock runs ahead, or it reads cookie names the handshake does not set. Path: {}",
        walk.handshakes.len(),
        walk.handshakes.join(", "),
        walk.describe()
    )
}

/// The token endpoint's path when a browser can load it as a page (a GET).
fn page_path(ctx: &Ctx) -> Result<Option<String>, StepError> {
    let endpoint = ctx.token_endpoint()?;
    Ok((endpoint.method.as_reqwest() == reqwest::Method::GET).then(|| endpoint.path.get().clone()))
}

body!(expired_cookie, |ctx| {
    if !cookie_transport(ctx) {
        return Ok(Outcome::not_applicable(NOT_COOKIES));
    }
    let me = ctx.sign_in("cookie-expired")?;
    let endpoint = ctx.token_endpoint()?;
    let expired = super::forge(ctx, &me.session.id)?.expired_by(30).build()?;
    let jar = jar_for(ctx, &me.session.id, &expired, iat_of(&expired), true)?;
    // 1. The SPA's API call with the expired cookie: refused (clerk-js then refreshes it).
    let refused = fetch(ctx, &jar).await?;
    let sent = format!("{:?} {} with a __session cookie expired 30 s ago", endpoint.method, endpoint.path.get());
    if (300..400).contains(&refused.status) {
        return Ok(Outcome::fail(sent, Some(refused), "redirected the SPA's fetch: only page loads (Sec-Fetch-Dest: document) may go through the handshake; a fetch gets 401 and clerk-js refreshes the cookie"));
    }
    let verdict = judge_rejection(sent, refused.clone());
    if !matches!(verdict, Outcome::Pass(_)) {
        return Ok(verdict);
    }
    // 2. A page load with the expired cookie: a handshake must end signed in.
    let mut note = format!("the expired cookie's fetch got {}", refused.status);
    if let Some(path) = page_path(ctx)? {
        let mut page_jar = jar.clone();
        let walk = navigate(ctx, &path, &mut page_jar).await?;
        if !walk.handshakes.is_empty() {
            let last = walk.last.clone();
            let want = *endpoint.status.get();
            if walk.handshakes.len() > 1 || last.as_ref().is_none_or(|g| g.status != want) {
                let problem = if walk.handshakes.len() > 1 {
                    loop_problem(&walk)
                } else {
                    format!("the handshake did not end signed in: expected {want} after it, path {}", walk.describe())
                };
                return Ok(Outcome::fail(format!("GET {path} as a page load with a __session cookie expired 30 s ago"), last, problem));
            }
            note.push_str(&format!("; a page load went through the handshake ({}) and came back signed in ({})", walk.handshakes[0], walk.describe()));
        }
    }
    // 3. clerk-js refreshes __session: the fresh cookie is accepted.
    let fresh = ctx.env.mock().session_token(&me.session.id, Some(ctx.env.profile().spa_origin()))?;
    let jar = jar_for(ctx, &me.session.id, &fresh, iat_of(&fresh), true)?;
    let got = fetch(ctx, &jar).await?;
    if got.status == *endpoint.status.get() {
        Ok(Outcome::pass(format!("{note}; the refreshed cookie was accepted ({})", got.status)))
    } else {
        let problem = format!("the refreshed __session cookie was refused: expected {}, got {}", endpoint.status, got.status);
        Ok(Outcome::fail(format!("{:?} {} with a fresh __session cookie", endpoint.method, endpoint.path.get()), Some(got), problem))
    }
});

body!(client_uat_newer, |ctx| {
    if !cookie_transport(ctx) {
        return Ok(Outcome::not_applicable(NOT_COOKIES));
    }
    let me = ctx.sign_in("cookie-uat")?;
    let now = ctx.env.mock().clock().now_unix();
    // Minted 20 s ago (still valid for 40 s); the client changed since (a sign-out or a
    // session switch in another tab moves __client_uat).
    let older = super::forge(ctx, &me.session.id)?.claim("iat", now - 20).claim("nbf", now - 30).claim("exp", now + 40).build()?;
    let jar = jar_for(ctx, &me.session.id, &older, now, true)?;
    let got = fetch(ctx, &jar).await?;
    let endpoint = ctx.token_endpoint()?;
    let sent = format!("{:?} {} with a valid __session minted 20 s before __client_uat", endpoint.method, endpoint.path.get());
    Ok(match got.status {
        401 => Outcome::pass(format!("refused: the cookie predates the client's last change ({})", got.summary())),
        s if (200..300).contains(&s) => Outcome::warn(
            sent,
            Some(got),
            "accepted a __session minted before the client's last change (__client_uat): after a sign-out in another tab the old cookie keeps working until it expires (≤ 60 s). \
             @clerk/backend refuses it (session-token-iat-before-client-uat); Clerk's Python SDK does not read __client_uat",
        ),
        _ => judge_rejection(sent, got),
    })
});

body!(dev_browser_missing, |ctx| {
    if !cookie_transport(ctx) {
        return Ok(Outcome::not_applicable(NOT_COOKIES));
    }
    if ctx.env.mock().instance().environment() != mock_clerk::Environment::Development {
        return Ok(Outcome::not_applicable("a production instance: clients are named by FAPI's __client cookie, there is no dev browser (__clerk_db_jwt)"));
    }
    let me = ctx.sign_in("cookie-dvb")?;
    let token = ctx.env.mock().session_token(&me.session.id, Some(ctx.env.profile().spa_origin()))?;
    let jar = jar_for(ctx, &me.session.id, &token, iat_of(&token), false)?;
    let endpoint = ctx.token_endpoint()?;
    let got = fetch(ctx, &jar).await?;
    let sent = format!("{:?} {} with valid __session cookies and no __clerk_db_jwt", endpoint.method, endpoint.path.get());
    let mut note = match got.status {
        s if s == *endpoint.status.get() => format!("the fetch was accepted on the session cookie alone ({s})"),
        401 => format!("the fetch was refused ({}), as @clerk/backend does without a dev browser", got.summary()),
        _ => return Ok(Outcome::fail(sent, Some(got), "a missing dev browser cookie must give the session's answer or a 401, not this")),
    };
    if let Some(path) = page_path(ctx)? {
        let mut page_jar = jar.clone();
        let walk = navigate(ctx, &path, &mut page_jar).await?;
        let page = format!("GET {path} as a page load without __clerk_db_jwt");
        if walk.handshakes.len() > 1 {
            return Ok(Outcome::fail(page, walk.last.clone(), loop_problem(&walk)));
        }
        match walk.last.as_ref().map(|g| g.status) {
            Some(s) if s < 500 && !(300..400).contains(&s) => {
                if let Some(reason) = walk.handshakes.first() {
                    note.push_str(&format!("; the page load went through the handshake ({reason}) and ended with {s}: {}", walk.describe()));
                }
            }
            _ => return Ok(Outcome::fail(page, walk.last.clone(), format!("the page load without a dev browser did not end cleanly: {}", walk.describe()))),
        }
    }
    Ok(Outcome::pass(note))
});

body!(handshake_loop, |ctx| {
    if !cookie_transport(ctx) {
        return Ok(Outcome::not_applicable(NOT_COOKIES));
    }
    let Some(path) = page_path(ctx)? else {
        return Ok(Outcome::not_applicable("the profile's token endpoint is not a GET: no page load goes through Clerk's handshake"));
    };
    let me = ctx.sign_in("cookie-loop")?;
    let expired = super::forge(ctx, &me.session.id)?.expired_by(30).build()?;
    let jar = jar_for(ctx, &me.session.id, &expired, iat_of(&expired), true)?;
    let mut walk_jar = jar.clone();
    let walk = navigate(ctx, &path, &mut walk_jar).await?;
    let sent = format!("GET {path} as a page load with a __session cookie expired 30 s ago");
    if walk.handshakes.is_empty() {
        let status = walk.last.as_ref().map_or_else(|| "nothing".to_string(), |g| g.status.to_string());
        return Ok(Outcome::not_applicable(format!(
            "the backend never redirects to Clerk's handshake (the page load got {status}): there is no handshake to loop"
        )));
    }
    if walk.handshakes.len() > 1 {
        return Ok(Outcome::fail(sent, walk.last.clone(), loop_problem(&walk)));
    }
    // Clerk's loop guard: after 3 handshakes (`__clerk_redirect_count=3`) the backend answers
    // signed out instead of redirecting again.
    let mut guarded = jar;
    guarded.insert(REDIRECT_COUNT.into(), "3".into());
    let cookies = cookie_header(&guarded.into_iter().collect::<Vec<_>>());
    let request = ctx
        .env
        .spa()
        .without_origin()
        .get(&path)
        .header("sec-fetch-dest", "document")
        .header(ACCEPT, "text/html")
        .header(COOKIE, HeaderValue::from_str(&cookies).map_err(|e| StepError::Other(e.to_string()))?);
    let got = ctx.fetch(request).await?;
    let location = got.header("location").unwrap_or_default().to_string();
    if (300..400).contains(&got.status) && location.contains("/v1/client/handshake") {
        return Ok(Outcome::fail(
            format!("{sent}, with __clerk_redirect_count=3"),
            Some(got),
            "redirected to the handshake a 4th time: nothing stops the loop when the handshake cannot fix the cookie (keys of another instance, a clock ahead). \
             @clerk/backend counts handshakes in __clerk_redirect_count and answers signed out at 3 (\"Clerk: Refreshing the session token resulted in an infinite redirect loop…\")",
        ));
    }
    Ok(Outcome::pass(format!(
        "one handshake ({}) and signed in; after 3 handshakes it stops redirecting ({}): {}",
        walk.handshakes[0],
        got.status,
        walk.describe()
    )))
});
