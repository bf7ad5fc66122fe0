//! Organization-gated endpoints (`[[endpoints]] org_role` / `org_permission`): v2 session
//! tokens carry the active organization as `o` (`id`, `slg`, `rol` without its `org:`
//! prefix, `per` and `fpm`) and the features as `fea`; the v1 names (`org_id`, `org_role`,
//! `org_permissions`) are gone. The tokens are minted by the mock (`Shared::mint_*`) from its
//! organizations, memberships and roles, exactly as Clerk issues them.

use harness::{Endpoint, OrgGate};
use harness::{GetToken, SignedIn};
use mock_clerk::TokenVersion;
use serde_json::json;

use crate::ctx::Ctx;
use crate::scenario::{Exchange, Outcome};
use crate::StepError;

/// The custom role the harness gives a member who must hold an endpoint's permission.
pub const PERMITTED_ROLE: &str = "org:harness_permitted";

/// What the signed-in user is in their active organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Holds the endpoint's role or permission.
    Required,
    /// A plain `org:member` (no custom permission).
    Member,
    /// In no organization: the token carries no `o`.
    NoActiveOrg,
}

/// A fresh user signed in as `grant` says for `endpoint`'s gate, with that organization
/// active on their session.
pub(crate) fn org_user(ctx: &mut Ctx, label: &str, gate: &OrgGate, grant: Grant) -> Result<SignedIn, StepError> {
    let me = ctx.sign_in(label)?;
    if grant == Grant::NoActiveOrg {
        return Ok(me);
    }
    let mock = ctx.env.mock();
    let tag: u32 = rand::random();
    let name = format!("Harness {label} {tag:08x}");
    let role = match (gate, grant) {
        (OrgGate::Role(role), Grant::Required) => role.clone(),
        (OrgGate::Permission(permission), Grant::Required) => {
            mock.define_role(PERMITTED_ROLE, &[permission.as_str()]);
            PERMITTED_ROLE.to_string()
        }
        _ => "org:member".to_string(),
    };
    if !matches!(role.as_str(), "org:admin" | "org:member" | PERMITTED_ROLE) {
        // A custom role the profile names: Clerk's instance defines it; so does the mock.
        mock.define_role(&role, &[]);
    }
    let org = mock.create_organization(&name, None)?;
    mock.add_membership(&org.id, &me.user.id, &role)?;
    mock.set_active_organization(&me.session.id, Some(&org.id))?;
    ctx.note(format!("{} is {role} of the active organization {} ({})", me.user.id, org.id, org.slug));
    Ok(me)
}

/// `GET /path` and what the gate is, for the diagnosis.
fn describe(endpoint: &Endpoint, gate: &OrgGate) -> String {
    let gate = match gate {
        OrgGate::Role(r) => format!("org_role {r}"),
        OrgGate::Permission(p) => format!("org_permission {p}"),
    };
    format!("{:?} {} ({gate})", endpoint.method, endpoint.path.get())
}

/// The org-gated endpoints (empty: the org scenarios do not apply, see [`NOT_GATED`]).
fn gated(ctx: &Ctx) -> Vec<(Endpoint, OrgGate)> {
    ctx.env.profile().org_endpoints().filter_map(|e| e.org_gate().map(|g| (e.clone(), g))).collect()
}

/// Why the org scenarios do not apply to a profile without an org-gated endpoint.
const NOT_GATED: &str =
    "the profile declares no organization-gated endpoint ([[endpoints]] org_role = \"org:admin\" or org_permission = \"org:<feature>:<permission>\")";

super::body!(admin_accepted, |ctx| {
    let endpoints = gated(ctx);
    if endpoints.is_empty() {
        return Ok(Outcome::not_applicable(NOT_GATED));
    }
    let mut passed = vec![];
    for (endpoint, gate) in endpoints {
        let me = org_user(ctx, "org-admin", &gate, Grant::Required)?;
        let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
        let got = ctx.call(&endpoint, &token).await?;
        let want = *endpoint.status.get();
        let sent = format!("{} with a v2 session token of a user who holds it in the active organization (o.rol, o.per/fea)", describe(&endpoint, &gate));
        if got.status == want {
            passed.push(format!("{} → {}", endpoint.path.get(), got.status));
            continue;
        }
        // Why: the same session's v1 token (org_id/org_role/org_permissions), and for a
        // role, a v2 token whose o.rol keeps the org: prefix.
        let origin = ctx.env.profile().spa_origin().to_string();
        let v1 = ctx.env.mock().session_token_version(&me.session.id, Some(&origin), TokenVersion::V1)?;
        let v1_got = ctx.call(&endpoint, &v1).await?;
        let prefixed = match &gate {
            OrgGate::Role(role) => {
                let forged = super::forge(ctx, &me.session.id)?;
                let mut o = forged.parts().claims.get("o").cloned().unwrap_or_else(|| json!({}));
                o["rol"] = json!(role);
                let token = forged.claim("o", o).build()?;
                Some(ctx.call(&endpoint, &token).await?.status)
            }
            OrgGate::Permission(_) => None,
        };
        return Ok(judge_admin(sent, got, want, v1_got.status, prefixed));
    }
    Ok(Outcome::pass(format!("a user holding the role or permission of the active organization was accepted: {}", passed.join("; "))))
});

/// A v2 token of a user who holds the gate was answered `got` (not `want`); the same
/// session's v1 token got `v1`, and (for a role) a v2 token with the `org:`-prefixed role got
/// `prefixed`.
#[must_use]
pub fn judge_admin(sent: String, got: Exchange, want: u16, v1: u16, prefixed: Option<u16>) -> Outcome {
    let status = got.status;
    let problem = if v1 == want {
        format!(
            "refused ({status}) a v2 session token whose o claim grants it, while the same session's v1 token (org_id, org_role, org_permissions) got {v1}: \
             the backend reads the v1 claim names, which v2 tokens no longer carry — every admin is refused"
        )
    } else if prefixed == Some(want) {
        format!(
            "refused ({status}) a v2 token with o.rol = the role without its org: prefix (as Clerk issues it), and accepted the same token with o.rol = org:…: \
             the backend compares o.rol with the prefixed role key"
        )
    } else if status >= 500 {
        format!("crashed ({status}) on a v2 session token carrying the active organization (o, fea)")
    } else {
        format!("a user who holds the required role or permission was refused: expected {want}, got {status} (the v1 token got {v1})")
    };
    Outcome::fail(sent, Some(got), problem)
}

/// Refused as it must be: 403. 401 (the SPA refreshes, then signs out or loops) and an
/// acceptance (the check is missing) are failures.
#[must_use]
pub fn judge_forbidden(sent: String, got: Exchange, who: &str) -> Outcome {
    match got.status {
        403 => Outcome::pass(format!("{who}: refused with 403 ({})", got.summary())),
        401 => Outcome::fail(
            sent,
            Some(got),
            format!("{who} was answered 401 instead of 403: the token is valid, so the SPA refreshes it, gets 401 again and signs the user out or loops"),
        ),
        s if (200..300).contains(&s) => Outcome::fail(sent, Some(got), format!("{who} was ACCEPTED ({s}): the organization role or permission is not checked")),
        s if s >= 500 => Outcome::fail(sent, Some(got), format!("{who}: crashed ({s}) instead of answering 403")),
        s => Outcome::fail(sent, Some(got), format!("{who}: answered {s} instead of 403")),
    }
}

async fn refused_for(ctx: &mut Ctx, grant: Grant, who: &str) -> Result<Outcome, StepError> {
    let endpoints = gated(ctx);
    if endpoints.is_empty() {
        return Ok(Outcome::not_applicable(NOT_GATED));
    }
    let mut notes = vec![];
    let mut skipped = vec![];
    for (endpoint, gate) in endpoints {
        if grant == Grant::Member && gate == OrgGate::Role("org:member".into()) {
            skipped.push(endpoint.path.get().clone());
            notes.push(format!("{} requires org:member itself: skipped", endpoint.path.get()));
            continue;
        }
        let me = org_user(ctx, "org-member", &gate, grant)?;
        let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
        let got = ctx.call(&endpoint, &token).await?;
        let sent = format!("{} with a valid v2 session token of {who}", describe(&endpoint, &gate));
        match judge_forbidden(sent, got, who) {
            Outcome::Pass(note) => notes.push(format!("{}: {note}", endpoint.path.get())),
            other => return Ok(other),
        }
    }
    if notes.len() == skipped.len() {
        // Nothing was sent: a pass would claim a check that never ran.
        return Ok(Outcome::not_applicable(format!(
            "every organization-gated endpoint requires org:member itself ({}), so a plain member is entitled to it: there is no member to refuse",
            skipped.join(", ")
        )));
    }
    Ok(Outcome::pass(notes.join("; ")))
}

super::body!(member_forbidden, |ctx| { refused_for(ctx, Grant::Member, "a plain org:member of the active organization").await });

super::body!(no_active_org_forbidden, |ctx| { refused_for(ctx, Grant::NoActiveOrg, "a signed-in user with no active organization").await });
