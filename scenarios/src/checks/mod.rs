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

pub(crate) use crate::ctx::forge;
