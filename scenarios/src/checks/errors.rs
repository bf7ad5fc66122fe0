//! What the run's refusal and error bodies give away: tracebacks, driver and parser
//! messages, file paths, secrets.
//!
//! `errors.no_internal_leak` is a run-level check ([`crate::Isolation::AfterAll`]): the runner
//! keeps every answer of 400 or more that a scenario received (`collect`, raw — before the
//! timeline scrubs secrets out of it) in [`Ctx::collected`], and runs this check after every
//! other scenario, so one run judges every refusal and error body the whole catalogue
//! provoked. Run alone (`--only errors.`), nothing was collected: it then provokes its own
//! refusals (no token, a garbage token, an expired one, to every endpoint), so it still judges
//! something rather than being skipped.

use crate::ctx::{Collected, Ctx};
use crate::scenario::Outcome;
use crate::timeline::Journaled;

/// Keeps the refusals and errors of `journal` (one scenario's requests) in `ctx`.
pub(crate) fn collect(ctx: &mut Ctx, scenario: &str, journal: &[Journaled]) {
    for entry in journal {
        let Journaled::Spa(call) = entry else { continue };
        let Some(Ok(answer)) = &call.answer else { continue };
        if answer.status >= 400 {
            ctx.collected.push(Collected { scenario: scenario.to_string(), request: format!("{} {}", call.method, call.path), answer: answer.clone() });
        }
    }
}

/// What gives a backend's internals away in a body, and what it is. Each marker is matched
/// case-sensitively, as the libraries print it.
const MARKERS: &[(&str, &str)] = &[
    ("Traceback (most recent call last)", "a Python traceback"),
    ("File \"/", "a Python traceback frame (a file path)"),
    ("psycopg2.", "a psycopg2 driver error"),
    ("psycopg.errors", "a psycopg driver error"),
    ("asyncpg.exceptions", "an asyncpg driver error"),
    ("sqlalchemy.exc", "an SQLAlchemy error"),
    ("sqlalche.me/e/", "an SQLAlchemy error"),
    ("django.db.utils", "a Django database error"),
    ("duplicate key value violates unique constraint", "a PostgreSQL error"),
    ("violates foreign key constraint", "a PostgreSQL error"),
    ("could not connect to server", "a PostgreSQL connection error"),
    ("connection to server at", "a PostgreSQL connection error"),
    ("IntegrityError", "a database driver's exception"),
    ("OperationalError", "a database driver's exception"),
    ("ProgrammingError", "a database driver's exception"),
    ("jwt.exceptions.", "a PyJWT exception class"),
    ("clerk_backend_api.", "a Clerk SDK exception class"),
    ("<class '", "a Python exception class"),
    ("sqlx::", "an sqlx error"),
    ("tokio_postgres", "a tokio-postgres error"),
    ("panicked at", "a Rust panic message"),
    ("/site-packages/", "a file path"),
    ("/usr/lib/python", "a file path"),
    ("/.cargo/registry/", "a file path"),
    ("sk_test_", "the Clerk secret key"),
    ("sk_live_", "the Clerk secret key"),
    ("whsec_", "the webhook signing secret"),
    ("-----BEGIN ", "a PEM key"),
    ("Werkzeug Debugger", "Werkzeug's interactive debugger"),
];

/// The first internal detail `body` gives away: what it is and an excerpt around it.
#[must_use]
pub fn leak(body: &str) -> Option<(&'static str, String)> {
    let found = MARKERS.iter().filter_map(|(marker, what)| body.find(marker).map(|at| (at, *what))).min_by_key(|(at, _)| *at);
    let (at, what) = match found {
        Some(found) => found,
        None => (serde_position(body)?, "a serde parser message (`… at line N column M`)"),
    };
    Some((what, excerpt_around(body, at)))
}

/// Where `at line <n> column <m>` (serde_json's error position) starts, if anywhere.
fn serde_position(body: &str) -> Option<usize> {
    body.match_indices(" at line ").find_map(|(at, m)| {
        let rest = &body[at + m.len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        (digits > 0 && rest[digits..].starts_with(" column ") && rest[digits + " column ".len()..].starts_with(|c: char| c.is_ascii_digit())).then_some(at)
    })
}

/// ~160 characters of `body` around byte `at`, on one line.
fn excerpt_around(body: &str, at: usize) -> String {
    let start = body[..at].char_indices().rev().nth(60).map_or(0, |(i, _)| i);
    let end = body[at..].char_indices().nth(100).map_or(body.len(), |(i, _)| at + i);
    let text: String = body[start..end].split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{}{text}{}", if start > 0 { "…" } else { "" }, if end < body.len() { "…" } else { "" })
}

/// Every leak among `collected`: `(collected, what, excerpt)`, one per body.
#[must_use]
pub fn leaks(collected: &[Collected]) -> Vec<(&Collected, &'static str, String)> {
    collected.iter().filter_map(|c| leak(&c.answer.body).map(|(what, excerpt)| (c, what, excerpt))).collect()
}

/// `warn` with the first leak (and how many more), or `pass` saying how many bodies were read.
#[must_use]
pub fn judge(collected: &[Collected], own: bool) -> Outcome {
    let found = leaks(collected);
    let from = if own { "refusals this check provoked itself" } else { "refusal and error bodies the run collected" };
    let Some((first, what, excerpt)) = found.first() else {
        return Outcome::pass(format!("{} {from}: none gives away a traceback, a driver or parser message, a file path or a secret", collected.len()));
    };
    let mut scenarios: Vec<&str> = found.iter().map(|(c, _, _)| c.scenario.as_str()).collect();
    scenarios.dedup();
    let more = if found.len() > 1 { format!(" ({} bodies in all, from {})", found.len(), scenarios.join(", ")) } else { String::new() };
    let problem = format!(
        "the {} answer to {} in {} gives away {what}: \"{excerpt}\"{more} — internals in a body help an attacker and tell the user nothing",
        first.answer.status, first.request, first.scenario
    );
    Outcome::warn(format!("{} (in {})", first.request, first.scenario), Some(first.answer.clone()), problem)
}

super::body!(no_internal_leak, |ctx| {
    if !ctx.collected.is_empty() {
        let collected = ctx.collected.clone();
        return Ok(judge(&collected, false));
    }
    // Run alone: provoke refusals of our own, on a clean backend.
    if ctx.dirty || ctx.env.backend().is_none() {
        ctx.fresh_backend(harness::EnvChanges::new()).await?;
        ctx.dirty = false;
    }
    let me = ctx.sign_in("leak")?;
    let expired = super::forge(ctx, &me.session.id)?.expired_by(30).build()?;
    let mut own = vec![];
    for endpoint in ctx.env.profile().endpoints.clone() {
        let request = format!("{:?} {}", endpoint.method, endpoint.path.get());
        for authorization in [None, Some("Bearer not-a-jwt".to_string()), Some("Bearer a.b.c".to_string()), Some(format!("Bearer {expired}"))] {
            let answer = ctx.call_raw(&endpoint, authorization.as_deref()).await?;
            if answer.status >= 400 {
                own.push(Collected { scenario: "errors.no_internal_leak".into(), request: request.clone(), answer });
            }
        }
    }
    if own.is_empty() {
        return Ok(Outcome::not_applicable("nothing was refused: no refusal or error body to read (run it with the other scenarios to read theirs)"));
    }
    Ok(judge(&own, true))
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaks_are_named_and_clean_refusals_are_not() {
        assert!(leak(r#"{"detail":"token-expired","reason":"the token expired 30 s ago"}"#).is_none());
        assert!(leak(r#"{"detail":"Not enough segments"}"#).is_none());
        let tb = "Traceback (most recent call last):\n  File \"/app/main.py\", line 12, in me\nsqlalchemy.exc.OperationalError: boom";
        assert_eq!(leak(tb).map(|(w, _)| w), Some("a Python traceback"));
        assert_eq!(
            leak("invalid type: string \"x\", expected u64 at line 1 column 9").map(|(w, _)| w),
            Some("a serde parser message (`… at line N column M`)")
        );
        assert!(leak("at line one column two").is_none());
        assert_eq!(leak("key sk_test_abc").map(|(w, _)| w), Some("the Clerk secret key"));
        let (_, excerpt) = leak(&format!("{}psycopg2.errors.UniqueViolation{}", "x".repeat(200), "y".repeat(200))).unwrap_or_default();
        assert!(excerpt.starts_with('…') && excerpt.ends_with('…') && excerpt.contains("psycopg2.errors"), "{excerpt}");
    }
}
