//! The SPA's 401 handling, replayed: get a token, call, and on 401 refresh the token and
//! retry with backoff, up to a limit. A backend that refuses every fresh token traps the
//! SPA in a "401 loop"; this module says whether a policy converges and, if not, why.

use std::time::Duration;

use harness::Endpoint;
use harness::GetToken;

use crate::ctx::Ctx;
use crate::scenario::Exchange;
use crate::StepError;

/// How the SPA gets tokens and reacts to 401.
#[derive(Clone, Debug)]
pub struct SpaPolicy {
    /// Which token it sends.
    pub token: GetToken,
    /// Retries after the first 401.
    pub max_retries: u32,
    /// First backoff; doubles on each retry.
    pub backoff: Duration,
    /// Clerk's clock relative to the backend's (seconds; positive = Clerk ahead).
    pub clock_skew_secs: i64,
}

impl Default for SpaPolicy {
    fn default() -> Self {
        Self { token: GetToken::ProfileDefault, max_retries: 3, backoff: Duration::from_millis(50), clock_skew_secs: 0 }
    }
}

/// How the replay ended.
#[derive(Clone, Debug)]
pub enum LoopVerdict {
    /// The k-th try succeeded.
    Converged {
        /// Tries made (1 = no retry).
        tries: u32,
        /// The first answer, when it was a refusal (tries > 1).
        first: Option<Exchange>,
    },
    /// Every try, each with a fresh token, got 401.
    Loop {
        /// Tries made.
        tries: u32,
        /// The last answer: its body names the cause.
        last: Exchange,
    },
    /// A non-401 failure stopped the SPA (it shows an error instead of looping).
    Stopped {
        /// The answer.
        last: Exchange,
    },
}

impl LoopVerdict {
    /// `converges after 1 try` / `401 loop after 4 tries: …`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Converged { tries, .. } => format!("converges after {tries} {}", if *tries == 1 { "try" } else { "tries" }),
            Self::Loop { tries, last } => format!("401 loop: {tries} tries, each with a fresh token, all refused ({})", last.summary()),
            Self::Stopped { last } => format!("stops with {}", last.summary()),
        }
    }
}

/// Replays `policy` against `endpoint` for `session_id`.
///
/// # Errors
/// A token could not be minted or a request did not complete.
pub async fn replay(ctx: &mut Ctx, endpoint: &Endpoint, session_id: &str, policy: &SpaPolicy) -> Result<LoopVerdict, StepError> {
    let clock = ctx.env.mock().clock().clone();
    let before = clock.offset_ms();
    clock.set_offset_ms(before + policy.clock_skew_secs * 1000);
    let mut backoff = policy.backoff;
    let mut tries = 0;
    let mut first = None;
    let verdict = loop {
        tries += 1;
        let token = ctx.env.spa().get_token(session_id, &policy.token);
        let token = match token {
            Ok(t) => t,
            Err(e) => {
                clock.shift_ms(before - clock.offset_ms());
                return Err(e.into());
            }
        };
        ctx.set_turn(Some(tries));
        if tries > 1 {
            ctx.note(format!("turn {tries}: the SPA got a fresh token after the 401 and retries"));
        }
        let got = ctx.call(endpoint, &token).await;
        ctx.set_turn(None);
        let got = match got {
            Ok(got) => got,
            Err(e) => {
                clock.shift_ms(before - clock.offset_ms());
                return Err(e);
            }
        };
        match got.status {
            s if (200..300).contains(&s) => break LoopVerdict::Converged { tries, first },
            401 if tries > policy.max_retries => break LoopVerdict::Loop { tries, last: got },
            401 => {
                if first.is_none() {
                    first = Some(got);
                }
                ctx.timed(tokio::time::sleep(backoff)).await;
                backoff *= 2;
            }
            _ => break LoopVerdict::Stopped { last: got },
        }
    };
    clock.shift_ms(before - clock.offset_ms());
    Ok(verdict)
}
