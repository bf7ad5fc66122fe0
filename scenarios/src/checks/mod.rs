//! Scenario bodies, one module per section of the catalogue.

pub mod cookies;
pub mod cors;
pub mod environment;
pub mod errors;
mod explain;
pub mod loops;
pub mod orgs;
pub mod sync;
pub mod tokens;
pub mod webhooks;

/// Defines a scenario body: `body!(name, |ctx| { … Ok(Outcome) })`.
macro_rules! body {
    ($name:ident, |$ctx:ident| $block:block) => {
        pub fn $name($ctx: &mut $crate::ctx::Ctx) -> $crate::scenario::BoxFut<'_> {
            async fn inner($ctx: &mut $crate::ctx::Ctx) -> Result<$crate::scenario::Outcome, $crate::StepError> $block
            Box::pin(inner($ctx))
        }
    };
}
pub(crate) use body;

use harness::TokenKind;
use mock_clerk::ForgedToken;

use crate::ctx::Ctx;
use crate::StepError;

/// A genuine token of the kind the profile expects, ready to be forged, with the SPA's
/// origin as `azp` like the real one.
pub(crate) fn forge(ctx: &Ctx, session_id: &str) -> Result<ForgedToken, StepError> {
    let mock = ctx.env.mock();
    let spec = &ctx.env.profile().token;
    let token = match (spec.kind.get(), &spec.template) {
        (TokenKind::Template, Some(name)) => mock.forge_template_token(session_id, name)?,
        _ => mock.forge_session_token(session_id)?,
    };
    Ok(token.claim("azp", ctx.env.profile().spa_origin()))
}
