//! Valid tokens: the session and template tokens the SPA sends, and every declared endpoint
//! answering a valid user.

use harness::{GetToken, TokenKind};

use crate::checks::body;
use crate::ctx::judge_rejection;
use crate::scenario::{Exchange, Outcome};

body!(session_token_accepted, |ctx| {
    let me = ctx.sign_in("session-token")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::Session)?;
    if *ctx.env.profile().token.kind.get() == TokenKind::Template {
        let endpoint = ctx.token_endpoint()?;
        let got = ctx.call(&endpoint, &token).await?;
        return Ok(if got.status == 401 {
            Outcome::pass("the profile requires a template token: the default session token is refused with 401")
        } else {
            judge_rejection("a default session token (getToken() without template)".into(), got)
        });
    }
    ctx.expect_accepted("a valid default session token (getToken())", &token).await
});

body!(template_token_accepted, |ctx| {
    let spec = &ctx.env.profile().token;
    let (TokenKind::Template, Some(name)) = (spec.kind.get(), spec.template.clone()) else {
        return Ok(Outcome::not_applicable("the profile's SPA sends default session tokens ([token] kind = \"session\")"));
    };
    let me = ctx.sign_in("template-token")?;
    let token = ctx.env.spa().get_token(&me.session.id, &GetToken::Template(name.clone()))?;
    ctx.expect_accepted(&format!("a valid token of template '{name}'"), &token).await
});

body!(every_endpoint, |ctx| {
    let endpoints = ctx.env.profile().endpoints.clone();
    if endpoints.is_empty() {
        return Ok(Outcome::not_applicable("the profile lists no [[endpoints]]"));
    }
    let mut answers = vec![];
    for (i, endpoint) in endpoints.iter().enumerate() {
        // A fresh user each (a syncing endpoint creates its row), holding the endpoint's
        // organization role or permission when it is org-gated.
        let me = match endpoint.org_gate() {
            Some(gate) => crate::checks::orgs::org_user(ctx, &format!("endpoint-{i}"), &gate, crate::checks::orgs::Grant::Required)?,
            None => ctx.sign_in(&format!("endpoint-{i}"))?,
        };
        let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
        let got = ctx.call(endpoint, &token).await?;
        answers.push((endpoint.clone(), got));
    }
    Ok(judge_every_endpoint(answers))
});

/// Each declared endpoint with what a fresh valid user got: every one must answer its
/// declared status. The first mismatch is the finding (a 5xx first), naming every mismatch.
pub(crate) fn judge_every_endpoint(answers: Vec<(harness::Endpoint, Exchange)>) -> Outcome {
    let name = |e: &harness::Endpoint| format!("{:?} {}", e.method, e.path.get());
    let wrong: Vec<&(harness::Endpoint, Exchange)> = answers.iter().filter(|(e, got)| got.status != *e.status.get()).collect();
    let Some((endpoint, got)) = wrong.iter().find(|(_, got)| got.status >= 500).or_else(|| wrong.first()).copied() else {
        return Outcome::pass(format!(
            "{} endpoint(s), each called by a fresh signed-in user with a valid token, answered their declared status: {}",
            answers.len(),
            answers.iter().map(|(e, g)| format!("{} → {}", name(e), g.status)).collect::<Vec<_>>().join("; ")
        ));
    };
    let all = wrong.iter().map(|(e, g)| format!("{} → {} (declared {})", name(e), g.status, e.status.get())).collect::<Vec<_>>().join("; ");
    let sent = format!("{} with a valid token of a fresh signed-in user", name(endpoint));
    let problem = if got.status >= 500 {
        format!(
            "{} crashed ({}) for a valid signed-in user: \"{}\" — every user gets this error; all mismatches: {all}",
            name(endpoint),
            got.status,
            got.excerpt(160)
        )
    } else {
        format!("{} answered {} to a valid signed-in user, not its declared {}: {all}", name(endpoint), got.status, endpoint.status.get())
    };
    Outcome::fail(sent, Some(got.clone()), problem)
}
