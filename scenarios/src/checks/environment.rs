//! Start-up configuration: missing variables, another instance's keys or host.

use std::time::Instant;

use harness::{EnvChanges, GetToken, HarnessError};
use mock_clerk::MockClerk;

use super::body;
use crate::scenario::{Exchange, Outcome};

/// The backend env variable whose profile value uses `placeholder` (e.g. `{secret_key}`).
fn var_with(ctx: &crate::ctx::Ctx, placeholder: &str) -> Option<String> {
    ctx.env.profile().env.iter().find(|(_, v)| v.get().contains(placeholder)).map(|(k, _)| k.clone())
}

body!(missing_required_variable, |ctx| {
    let vars: Vec<String> = ctx.env.profile().required_env.iter().map(|v| v.get().clone()).collect();
    if vars.is_empty() {
        return Ok(Outcome::not_applicable("the profile lists no required_env"));
    }
    if ctx.env.backend().is_some_and(|b| b.kind() == "url") {
        return Ok(Outcome::not_applicable("the backend is an external URL: the harness cannot restart it"));
    }
    let mut notes = vec![];
    for var in &vars {
        let t0 = Instant::now();
        match ctx.fresh_backend(EnvChanges::new().unset(var.clone())).await {
            Err(HarnessError::BackendExited { .. }) | Err(HarnessError::BackendNotReady { .. }) => {
                let text = ctx.env.log_buffer().tail(40);
                if !text.contains(var.as_str()) {
                    return Ok(Outcome::fail(
                        format!("start without {var}"),
                        None,
                        format!("the backend failed to start without {var} but its output never names the variable"),
                    ));
                }
                notes.push(format!("{var}: exits in {} ms naming it", t0.elapsed().as_millis()));
            }
            Err(other) => return Err(other.into()),
            Ok(()) => {
                let mut detail = String::new();
                if let Some(endpoint) = ctx.sync_endpoint().or_else(|| ctx.token_endpoint().ok()) {
                    let me = ctx.sign_in("missing-env")?;
                    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
                    let got = ctx.call(&endpoint, &token).await?;
                    detail = format!("; a valid request then got {}", got.summary());
                    return Ok(Outcome::fail(
                        format!("start without {var}"),
                        Some(got),
                        format!("the backend STARTED without the required variable {var}, so the misconfiguration only shows at request time{detail}"),
                    ));
                }
                return Ok(Outcome::fail(format!("start without {var}"), None, format!("the backend started without the required variable {var}{detail}")));
            }
        }
    }
    Ok(Outcome::pass(notes.join("; ")))
});

body!(secret_key_of_another_instance, |ctx| {
    let Some(var) = var_with(ctx, "{secret_key}") else {
        return Ok(Outcome::not_applicable("no [env] entry of the profile uses {secret_key}"));
    };
    let Some(endpoint) = ctx.sync_endpoint() else {
        return Ok(Outcome::not_applicable("no endpoint syncs the user, so the Backend API is never called"));
    };
    let other = MockClerk::start().await?;
    ctx.fresh_backend(EnvChanges::new().set(var.clone(), other.instance().secret_key().expose())).await?;
    let me = ctx.sign_in("foreign-sk")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let got = ctx.call(&endpoint, &token).await?;
    let sent = format!("{:?} {} with a valid token; {var} = another instance's secret key", endpoint.method, endpoint.path.get());
    Ok(match got.status {
        s if s >= 500 => Outcome::pass(format!("a server error ({s}), not a 401 the SPA would retry forever")),
        401 => Outcome::fail(
            sent,
            Some(got),
            "a Backend API authentication failure (clerk_key_invalid) surfaced as 401: the SPA refreshes its (valid) token and loops",
        ),
        s if (200..300).contains(&s) => Outcome::fail(sent, Some(got), "succeeded although the Backend API refused the secret key"),
        _ => Outcome::fail(sent, Some(got), "expected a 5xx telling the operator the secret key is wrong"),
    })
});

body!(fapi_host_of_another_instance, |ctx| {
    let Some(var) = var_with(ctx, "{fapi_host}").or_else(|| var_with(ctx, "{jwks_url}")) else {
        return Ok(Outcome::not_applicable("no [env] entry of the profile uses {fapi_host} or {jwks_url}"));
    };
    let other = MockClerk::start().await?;
    ctx.env.interceptor().add_route(other.instance().fapi_host(), other.fapi_router()).map_err(|e| crate::StepError::Other(e.to_string()))?;
    let value = if ctx.env.profile().env[&var].get().contains("{jwks_url}") { other.jwks_url() } else { other.instance().fapi_host().to_string() };
    ctx.fresh_backend(EnvChanges::new().set(var.clone(), value)).await?;
    let me = ctx.sign_in("foreign-fapi")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
    let endpoint = ctx.token_endpoint()?;
    let got: Exchange = ctx.call(&endpoint, &token).await?;
    ctx.env.interceptor().remove_route(other.instance().fapi_host());
    let sent = format!("a valid token of instance A; {var} points at instance B");
    Ok(match got.status {
        401 => Outcome::pass("refused with 401: the backend only trusts its own instance's keys"),
        s if (200..300).contains(&s) => Outcome::fail(sent, Some(got), "ACCEPTED a token of an instance it is not configured for"),
        _ => Outcome::fail(sent, Some(got), "expected 401 for a token signed by a key the configured instance does not publish"),
    })
});
