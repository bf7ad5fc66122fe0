//! Start-up configuration: missing variables, another instance's keys or host, an invalid key.

mod missing;

use harness::{EnvChanges, GetToken};
use mock_clerk::{Api, MockClerk};

use super::body;
use crate::ctx::Ctx;
use crate::scenario::{Exchange, Outcome};
use crate::StepError;

/// The backend env variable whose profile value uses `placeholder` (e.g. `{secret_key}`).
fn var_with(ctx: &crate::ctx::Ctx, placeholder: &str) -> Option<String> {
    ctx.env.profile().env.iter().find(|(_, v)| v.get().contains(placeholder)).map(|(k, _)| k.clone())
}

body!(missing_required_variable, |ctx| { missing::missing_required_variable(ctx).await });

/// Words with which a 401 (or the backend's log) says why a token of the SPA's instance is
/// refused by a backend holding another instance's key: the kid is not in the JWKS it
/// fetched, or the Backend API does not know the user.
const SAYS_KID_MISMATCH: [&str; 10] =
    ["kid", "signing key", "no key", "key not found", "unknown key", "unable to find", "mismatch", "not found", "secret key", "secret_key"];

/// Words with which a 5xx (or the log) names the configuration problem.
const NAMES_CONFIG: [&str; 10] =
    ["secret key", "secret_key", "clerk_key_invalid", "key_invalid", "misconfigur", "configur", "api key", "same instance", "another instance", "clerk_secret"];

/// The text among `texts` that quotes the Backend API refusing the server's request (its
/// host and a 401/403/404 on one line, e.g. `401 Unauthorized for url
/// (https://api.clerk.com/v1/users/…)`): it names what to look at, the key.
fn quotes_api_refusal<'a>(texts: impl IntoIterator<Item = &'a str>) -> Option<String> {
    const API: [&str; 3] = ["api.clerk.com", "backend api", "/v1/"];
    const REFUSED: [&str; 6] = ["401", "unauthorized", "403", "forbidden", "404", "not found"];
    texts.into_iter().flat_map(str::lines).find_map(|line| {
        let lower = line.to_lowercase();
        (API.iter().any(|w| lower.contains(w)) && REFUSED.iter().any(|w| lower.contains(w))).then(|| harness::internal::excerpt_around(line, &API, 200))
    })
}

/// How a 5xx's body or the log points at the configuration: naming it, or quoting the
/// Backend API's refusal.
fn named_or_quoted<'a, I: IntoIterator<Item = &'a str>>(texts: impl Fn() -> I) -> Option<String> {
    says(texts(), &NAMES_CONFIG)
        .map(|named| format!("naming the configuration problem: {named}"))
        .or_else(|| quotes_api_refusal(texts()).map(|quoted| format!("quoting the Backend API's answer: {quoted}")))
}

/// The text among `texts` (the answer's body, then the backend's log lines) containing one
/// of `words`, as an excerpt.
fn says<'a>(texts: impl IntoIterator<Item = &'a str>, words: &[&str]) -> Option<String> {
    texts.into_iter().find_map(|text| {
        let plain = crate::pages::visible_text(text).to_lowercase();
        words.iter().any(|w| plain.contains(w)).then(|| harness::internal::excerpt_around(text, words, 160))
    })
}

/// What the backend's Backend API calls got while the key was in place: (count, statuses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyUse {
    /// `GET /v1/jwks 401`, … in order.
    pub(crate) calls: Vec<String>,
    /// Whether any was refused (401/403).
    pub(crate) refused: bool,
}

impl KeyUse {
    /// The Backend API calls since `since_us`, only those made with `key` when given (other
    /// backends run at the same time with other keys).
    fn since(ctx: &Ctx, since_us: u64, key: Option<&str>) -> Self {
        let calls: Vec<_> = ctx
            .env
            .mock()
            .faults()
            .requests()
            .into_iter()
            .filter(|r| r.api == Api::Backend && r.received_us >= since_us && !r.path.starts_with("/_mock"))
            .filter(|r| key.is_none_or(|key| made_with(r, key)))
            .collect();
        Self {
            refused: calls.iter().any(|r| r.status == 401 || r.status == 403),
            calls: calls.iter().map(|r| format!("{} {} {}", r.method, r.path, r.status)).collect(),
        }
    }

    fn describe(&self) -> String {
        if self.calls.is_empty() {
            "it made no Backend API call".into()
        } else {
            format!("its Backend API calls: {}", self.calls.join(", "))
        }
    }
}

/// Whether `request` carried `key` (the record keeps the `Authorization` value's start and its
/// last four characters).
fn made_with(request: &mock_clerk::RecordedRequest, key: &str) -> bool {
    let tail = &key[key.len().saturating_sub(4)..];
    request.headers.iter().any(|(name, value)| name.eq_ignore_ascii_case("authorization") && value.ends_with(tail))
}

fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The scenarios that call a backend started beside the shared one with another instance's
/// key or host, or an invalid key: the first of them to run starts the backends of all those
/// still to run at once ([`harness::TestEnv::start_beside`]), so three starts cost about one.
const FOREIGN_KEY: &str = "env.foreign_secret_key";
/// See [`FOREIGN_KEY`].
const INVALID_KEY: &str = "env.invalid_secret_key";
/// See [`FOREIGN_KEY`].
const FOREIGN_FAPI: &str = "env.foreign_fapi_host";

/// A backend started beside the shared one for one of the [`FOREIGN_KEY`] scenarios, and
/// what was set up for it.
#[derive(Debug)]
pub(crate) struct Prepared {
    side: Result<harness::SideBackend, harness::HarnessError>,
    setup: Setup,
}

/// What a side backend's variables point at, in place from before its start (a backend may
/// fetch its keys at start-up) until the scenario is over.
#[derive(Debug)]
struct Setup {
    /// The variable changed.
    var: String,
    /// Its changes to the environment.
    changes: EnvChanges,
    /// Instance B: a peer behind the Backend API host, or an intercepted Frontend API host.
    other: Option<(MockClerk, Registered)>,
    /// The secret key the backend was given: its Backend API calls are told apart by it.
    key: Option<String>,
    /// When its start began (µs since the epoch).
    since_us: u64,
}

#[derive(Debug, Clone, Copy)]
enum Registered {
    Peer,
    FapiRoute,
}

impl Setup {
    /// Takes instance B away again.
    fn undo(self, ctx: &Ctx) {
        match self.other {
            Some((other, Registered::Peer)) => ctx.env.mock().remove_peer(&other),
            Some((other, Registered::FapiRoute)) => {
                ctx.env.interceptor().remove_route(other.instance().fapi_host());
            }
            None => {}
        }
    }
}

/// What scenario `id` starts its backend with; `None` when the profile has no variable for it.
async fn plan(ctx: &Ctx, id: &str) -> Result<Option<Setup>, StepError> {
    let since_us = now_us();
    Ok(match id {
        FOREIGN_KEY => match var_with(ctx, "{secret_key}") {
            // Instance B, served by the same Backend API host as Clerk serves every instance:
            // B's valid key gets B's JWKS and B's users.
            Some(var) => {
                let other = MockClerk::start().await?;
                ctx.env.mock().add_peer(&other);
                let key = other.instance().secret_key().expose().to_string();
                let changes = EnvChanges::new().set(var.clone(), key.clone());
                Some(Setup { var, changes, other: Some((other, Registered::Peer)), key: Some(key), since_us })
            }
            None => None,
        },
        INVALID_KEY => var_with(ctx, "{secret_key}").map(|var| {
            // Well formed, of the instance's kind (sk_test_/sk_live_), of no instance: what a
            // revoked or mistyped key is to Clerk (401 clerk_key_invalid).
            let real = ctx.env.mock().instance().secret_key().expose();
            let prefix = if real.starts_with("sk_live_") { "sk_live_" } else { "sk_test_" };
            let key = format!("{prefix}{}", mock_clerk::base62(42));
            Setup { changes: EnvChanges::new().set(var.clone(), key.clone()), var, other: None, key: Some(key), since_us }
        }),
        FOREIGN_FAPI => match var_with(ctx, "{fapi_host}").or_else(|| var_with(ctx, "{jwks_url}")) {
            Some(var) => {
                let other = MockClerk::start().await?;
                ctx.env.interceptor().add_route(other.instance().fapi_host(), other.fapi_router()).map_err(|e| StepError::Other(e.to_string()))?;
                // Every variable that names the instance points at B, each keeping its own
                // shape (`https://{fapi_host}/.well-known/jwks.json` stays a URL); other
                // placeholders expand as usual.
                let mut changes = EnvChanges::new();
                for (name, value) in &ctx.env.profile().env {
                    let raw = value.get();
                    if raw.contains("{fapi_host}") || raw.contains("{jwks_url}") || raw.contains("{publishable_key}") || raw.contains("{pem_public_key}") {
                        let pointed = raw
                            .replace("{fapi_host}", other.instance().fapi_host())
                            .replace("{jwks_url}", &other.jwks_url())
                            .replace("{publishable_key}", other.instance().publishable_key())
                            .replace("{pem_public_key}", &other.instance().pem_public_key());
                        changes = changes.set(name.clone(), pointed);
                    }
                }
                Some(Setup { var, changes, other: Some((other, Registered::FapiRoute)), key: None, since_us })
            }
            None => None,
        },
        _ => None,
    })
}

/// The backend beside the shared one for scenario `id` (started earlier with the others of
/// its kind still to run, or now with them); `None` when the profile has no variable for it.
async fn side_for(ctx: &mut Ctx, id: &'static str) -> Result<Option<Prepared>, StepError> {
    if let Some(prepared) = ctx.beside.remove(id) {
        return Ok(Some(prepared));
    }
    let mut setups = vec![];
    for other in [FOREIGN_KEY, INVALID_KEY, FOREIGN_FAPI] {
        if other == id || (ctx.upcoming(other) && !ctx.beside.contains_key(other)) {
            if let Some(setup) = plan(ctx, other).await? {
                setups.push((other, setup));
            }
        }
    }
    if !setups.iter().any(|(planned, _)| *planned == id) {
        for (_, setup) in setups {
            setup.undo(ctx);
        }
        return Ok(None);
    }
    let started = ctx.start_beside(setups.iter().map(|(_, setup)| setup.changes.clone()).collect()).await;
    let sides = match started {
        Ok(sides) => sides,
        Err(e) => {
            for (_, setup) in setups {
                setup.undo(ctx);
            }
            return Err(e.into());
        }
    };
    for ((planned, setup), side) in setups.into_iter().zip(sides) {
        ctx.beside.insert(planned, Prepared { side, setup });
    }
    Ok(ctx.beside.remove(id))
}

/// Calls the endpoint that uses the key, on the side backend, with a valid token of this
/// instance: the call, the answer, the side backend's log of it, the Backend API calls it
/// made with its key since its start, and whether the endpoint syncs the user.
async fn call_beside(
    ctx: &mut Ctx,
    side: &harness::SideBackend,
    setup: &Setup,
    label: &str,
) -> Result<(String, Exchange, Vec<String>, KeyUse, bool), StepError> {
    // A syncing endpoint calls the Backend API with the key; without one, the token endpoint
    // may still use it (Clerk's SDKs fetch the JWKS from the Backend API with it).
    let syncs = ctx.sync_endpoint();
    let endpoint = match &syncs {
        Some(endpoint) => endpoint.clone(),
        None => ctx.token_endpoint()?,
    };
    ctx.aim_at(Some(side.url().clone()));
    let me = ctx.sign_in(label)?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let mark = side.log_buffer().mark();
    let got = ctx.call(&endpoint, &token).await?;
    // Lines written just after answering (the error it logged, the access log) belong to it.
    let end = side.log_buffer().settle(LOG_QUIET, LOG_SETTLE_CAP).await;
    let log = side.log_buffer().between(mark, end);
    let call = format!("{:?} {}", endpoint.method, endpoint.path.get());
    Ok((call, got, log, KeyUse::since(ctx, setup.since_us, setup.key.as_deref()), syncs.is_some()))
}

/// How long a side backend's log must stay quiet after an answer before its lines are read.
const LOG_QUIET: std::time::Duration = std::time::Duration::from_millis(40);
/// The most [`call_beside`] waits for that quiet.
const LOG_SETTLE_CAP: std::time::Duration = std::time::Duration::from_millis(400);

/// Runs `judge` on scenario `id`'s side backend, then retires it (its log joins the
/// environment's) and takes instance B away; `None` when the profile has no variable for it.
async fn beside(
    ctx: &mut Ctx,
    id: &'static str,
    judge: impl AsyncFnOnce(&mut Ctx, &harness::SideBackend, &Setup) -> Result<Outcome, StepError>,
) -> Result<Option<Outcome>, StepError> {
    let Some(Prepared { side, setup }) = side_for(ctx, id).await? else { return Ok(None) };
    let side = match side {
        Ok(side) => side,
        Err(e) => {
            setup.undo(ctx);
            return Err(e.into());
        }
    };
    let outcome = judge(ctx, &side, &setup).await;
    ctx.aim_at(None);
    ctx.env.retire(side);
    setup.undo(ctx);
    outcome.map(Some)
}

body!(secret_key_of_another_instance, |ctx| {
    let judged = beside(ctx, FOREIGN_KEY, async |ctx, side, setup| {
        let (call, got, log, used, syncs) = call_beside(ctx, side, setup, "foreign-sk").await?;
        let sent = format!("{call} with a valid token; {} = another instance's (valid) secret key", setup.var);
        Ok(judge_foreign_key(&setup.var, sent, got, &log, &used, syncs))
    })
    .await?;
    Ok(judged.unwrap_or_else(|| Outcome::not_applicable("no [env] entry of the profile uses {secret_key}")))
});

/// Another instance's valid key: its JWKS lacks the token's kid and its Backend API does not
/// know the user. Clerk's SDKs answer that request signed-out (401, reason `jwk-kid-mismatch`:
/// "Unable to find a signing key in JWKS that matches the kid"), so a 401 that says why is
/// right; a 5xx naming the configuration too (the backend's fault, said at once).
pub(crate) fn judge_foreign_key(var: &str, sent: String, got: Exchange, log: &[String], used: &KeyUse, syncs: bool) -> Outcome {
    let texts = || std::iter::once(got.body.as_str()).chain(log.iter().map(String::as_str));
    match got.status {
        401 => match says(texts(), &SAYS_KID_MISMATCH) {
            Some(why) => Outcome::pass(format!("refused with 401 saying why, as Clerk's SDKs do (jwk-kid-mismatch): {why}")),
            None => {
                let silent = crate::checks::explain::silent_refusal(&sent, got, "a valid token, with the backend holding another instance's secret key");
                let Outcome::Warn(f) = silent else { return silent };
                Outcome::Warn(crate::scenario::Finding {
                    problem: format!(
                        "refused with 401, but neither the answer nor the log says why ({}): a backend configured with another instance's {var} \
                         refuses every user, and nothing points at the key",
                        used.describe()
                    ),
                    class: Some("backend-api-errors"),
                    fix: Some(format!(
                        "name the reason in the 401 and the log (Clerk's SDKs: jwk-kid-mismatch, \"Unable to find a signing key in JWKS that matches the kid\"), \
                         so a {var} of another instance is found at once"
                    )),
                    ..f
                })
            }
        },
        s if s >= 500 => match named_or_quoted(texts) {
            Some(named) => Outcome::pass(format!("a server error ({s}) {named}")),
            None => Outcome::warn(sent, Some(got), format!("a bare {s}: neither the answer nor the log names the misconfigured {var} ({})", used.describe()))
                .classed(
                    "backend-api-errors",
                    format!("say in the 5xx or the log that {var} belongs to another Clerk instance (kid not in its JWKS, user unknown to its Backend API)"),
                ),
        },
        s if (200..300).contains(&s) && used.calls.is_empty() => Outcome::not_applicable(format!(
            "{var} is not used to answer the request (it succeeded with another instance's key and made no Backend API call){}",
            if syncs { "" } else { ": no endpoint of the profile syncs the user" }
        )),
        s if (200..300).contains(&s) => Outcome::warn(
            sent,
            Some(got),
            format!("answered {s} although, with this key, the Backend API serves another instance ({}): the user's data cannot be its own", used.describe()),
        ),
        _ => Outcome::fail(sent, Some(got), format!("expected a 401 saying why (kid not in the JWKS, user unknown) or a 5xx naming {var}")),
    }
}

body!(invalid_secret_key, |ctx| {
    let judged = beside(ctx, INVALID_KEY, async |ctx, side, setup| {
        let (call, got, log, used, syncs) = call_beside(ctx, side, setup, "invalid-sk").await?;
        let sent = format!("{call} with a valid token; {} = an invalid (revoked) secret key", setup.var);
        Ok(judge_invalid_key(&setup.var, sent, got, &log, &used, syncs))
    })
    .await?;
    Ok(judged.unwrap_or_else(|| Outcome::not_applicable("no [env] entry of the profile uses {secret_key}")))
});

/// An invalid or revoked key: the Backend API answers 401 `clerk_key_invalid`. The backend is
/// misconfigured, not the user: a 5xx naming the problem passes, a bare 5xx warns, a 401/403
/// fails (the SPA refreshes its valid token and loops, or signs the user out).
pub(crate) fn judge_invalid_key(var: &str, sent: String, got: Exchange, log: &[String], used: &KeyUse, syncs: bool) -> Outcome {
    let texts = || std::iter::once(got.body.as_str()).chain(log.iter().map(String::as_str));
    match got.status {
        s if s >= 500 => match named_or_quoted(texts) {
            Some(named) => Outcome::pass(format!("a server error ({s}) {named}")),
            None => {
                Outcome::warn(sent, Some(got), format!("a bare {s}: neither the answer nor the log says the Backend API refused {var} ({})", used.describe()))
                    .classed(
                        "backend-api-errors",
                        format!("say in the 5xx and the log that Clerk refused {var} (clerk_key_invalid), so the operator knows what to fix"),
                    )
            }
        },
        s @ (401 | 403) => Outcome::fail(
            sent,
            Some(got),
            format!(
                "the Backend API's refusal of the server's own key ({}) surfaced as {s}: the SPA {} its valid token — a server misconfiguration must be a 5xx",
                used.describe(),
                if s == 401 { "refreshes and retries" } else { "gives up on" }
            ),
        ),
        s if (200..300).contains(&s) && !used.refused => Outcome::not_applicable(format!(
            "{var} is not used to answer the request (it succeeded with an invalid key; {}){}",
            used.describe(),
            if syncs { "" } else { ": no endpoint of the profile syncs the user" }
        )),
        s if (200..300).contains(&s) => {
            Outcome::fail(sent, Some(got), format!("answered {s} although the Backend API refused the secret key ({})", used.describe()))
        }
        s => Outcome::fail(sent, Some(got), format!("answered {s}: expected a 5xx naming the refused {var}")),
    }
}

body!(fapi_host_of_another_instance, |ctx| {
    let judged = beside(ctx, FOREIGN_FAPI, async |ctx, side, setup| {
        ctx.aim_at(Some(side.url().clone()));
        let me = ctx.sign_in("foreign-fapi")?;
        let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
        let endpoint = ctx.token_endpoint()?;
        let got: Exchange = ctx.call(&endpoint, &token).await?;
        let sent = format!("a valid token of instance A; {} points at instance B", setup.var);
        Ok(match got.status {
            401 => Outcome::pass("refused with 401: the backend only trusts its own instance's keys"),
            s if (200..300).contains(&s) => Outcome::fail(sent, Some(got), "ACCEPTED a token of an instance it is not configured for"),
            _ => Outcome::fail(sent, Some(got), "expected 401 for a token signed by a key the configured instance does not publish"),
        })
    })
    .await?;
    Ok(judged.unwrap_or_else(|| Outcome::not_applicable("no [env] entry of the profile uses {fapi_host} or {jwks_url}")))
});

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(status: u16, body: &str) -> Exchange {
        Exchange::answered(status, body)
    }

    fn used(calls: &[&str]) -> KeyUse {
        KeyUse { calls: calls.iter().map(|c| (*c).to_string()).collect(), refused: calls.iter().any(|c| c.ends_with(" 401")) }
    }

    #[test]
    fn another_instances_key_is_judged_on_a_401_that_says_why() {
        let jwks = used(&["GET /v1/jwks 200"]);
        let o = judge_foreign_key("K", "s".into(), ex(401, r#"{"reason":"jwk-kid-mismatch"}"#), &[], &jwks, false);
        assert!(matches!(o, Outcome::Pass(_)), "{o:?}");
        let o = judge_foreign_key("K", "s".into(), ex(401, ""), &["ERROR Unable to find a signing key in JWKS that matches the kid".into()], &jwks, false);
        assert!(matches!(o, Outcome::Pass(_)), "the log says why: {o:?}");
        let o = judge_foreign_key("K", "s".into(), ex(401, ""), &["INFO refused (401)".into()], &jwks, false);
        assert!(matches!(&o, Outcome::Warn(f) if f.cause.as_ref().is_some_and(|c| c.id == "silent-refusal")), "a silent 401 warns: {o:?}");
        let o = judge_foreign_key(
            "K",
            "s".into(),
            ex(500, r#"{"detail":"is CLERK_SECRET_KEY from the same instance?"}"#),
            &[],
            &used(&["GET /v1/users/u 404"]),
            true,
        );
        assert!(matches!(o, Outcome::Pass(_)), "{o:?}");
        let o = judge_foreign_key("K", "s".into(), ex(500, "Internal Server Error"), &[], &used(&["GET /v1/users/u 404"]), true);
        assert!(matches!(o, Outcome::Warn(_)), "{o:?}");
        let o = judge_foreign_key("K", "s".into(), ex(200, "{}"), &[], &used(&[]), false);
        assert!(matches!(o, Outcome::NotApplicable(_)), "{o:?}");
        let o = judge_foreign_key("K", "s".into(), ex(403, "{}"), &[], &jwks, false);
        assert!(matches!(o, Outcome::Fail(_)), "{o:?}");
    }

    #[test]
    fn an_invalid_key_must_be_a_5xx_naming_it_never_a_401() {
        let refused = used(&["GET /v1/jwks 401"]);
        let o = judge_invalid_key("K", "s".into(), ex(500, r#"{"detail":"the Clerk Backend API rejected CLERK_SECRET_KEY (401)"}"#), &[], &refused, true);
        assert!(matches!(o, Outcome::Pass(_)), "{o:?}");
        let o = judge_invalid_key("K", "s".into(), ex(503, "Service Unavailable"), &["ERROR clerk_key_invalid".into()], &refused, true);
        assert!(matches!(o, Outcome::Pass(_)), "named in the log: {o:?}");
        let o = judge_invalid_key("K", "s".into(), ex(500, "Internal Server Error"), &[], &refused, true);
        assert!(matches!(o, Outcome::Warn(_)), "{o:?}");
        // A 500 quoting the Backend API's 401 names what to look at.
        let quoted = "Something went wrong: HTTP status client error (401 Unauthorized) for url (https://api.clerk.com/v1/users/user_1)";
        let o = judge_invalid_key("K", "s".into(), ex(500, quoted), &[], &refused, true);
        assert!(matches!(o, Outcome::Pass(_)), "{o:?}");
        // An access-log line of the SPA's own request is no such quote.
        let o = judge_invalid_key("K", "s".into(), ex(500, ""), &[r#"INFO 127.0.0.1 "GET /api/me HTTP/1.1" 500"#.into()], &refused, true);
        assert!(matches!(o, Outcome::Warn(_)), "{o:?}");
        for status in [401, 403] {
            let o = judge_invalid_key("K", "s".into(), ex(status, r#"{"detail":"secret-key-invalid"}"#), &[], &refused, true);
            assert!(matches!(&o, Outcome::Fail(f) if f.problem.contains("must be a 5xx")), "{status}: {o:?}");
        }
        let o = judge_invalid_key("K", "s".into(), ex(200, "{}"), &[], &used(&[]), false);
        assert!(matches!(o, Outcome::NotApplicable(_)), "{o:?}");
        let o = judge_invalid_key("K", "s".into(), ex(200, "{}"), &[], &refused, true);
        assert!(matches!(o, Outcome::Fail(_)), "{o:?}");
    }
}
