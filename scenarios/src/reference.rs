//! The catalogue's reference page, generated from the catalogue's own rows.
//!
//! `docs/catalogue.md` is this function's output (`clerk-harness scenarios --format markdown`);
//! a test fails when the checked-in page differs from what the catalogue says today.

use std::fmt::Write as _;

use crate::scenario::{Group, Isolation, Scenario};

/// What each section is for and when its scenarios apply, in the order the page lists them.
const SECTIONS: &[(Group, &str, &str)] = &[
    (
        Group::Tokens,
        "tokens",
        "Token validation: every way a Clerk session or template token can be wrong, sent as the \
         profile's SPA sends it (the `Authorization` header or the `__session` cookie).",
    ),
    (
        Group::Orgs,
        "orgs",
        "Organization-gated endpoints: v2 session tokens carrying the active organization as Clerk \
         issues them (`o.id`, `o.rol`, `o.per`, …). Not applicable unless an `[[endpoints]]` entry \
         declares `org_role` or `org_permission`.",
    ),
    (
        Group::Environment,
        "environment",
        "Start-up configuration: each required variable missing, another instance's keys, an \
         invalid secret key. Each scenario starts backends of its own beside the shared one.",
    ),
    (Group::Cors, "cors", "CORS as the browser sees it: preflights from allowed and disallowed origins, and the headers on a refusal."),
    (
        Group::UserSync,
        "user sync",
        "The backend's user table: the first request creates one row, repeats and races do not \
         duplicate it, Clerk's outages and the database's are not turned into 401s. Needs the \
         profile's `[user]` section.",
    ),
    (
        Group::Webhooks,
        "webhooks",
        "Svix-signed webhooks: genuine deliveries applied once, forged or stale ones refused, retries \
         and reordering survived. Needs the profile's `[webhooks]` section.",
    ),
    (Group::Loops, "401 loops", "The SPA's refresh-and-retry policy against the backend: does a 401 converge or loop, and does each 401 say why."),
    (
        Group::Cookies,
        "cookies",
        "Session cookies and Clerk's handshake, for profiles whose SPA sends the `__session` cookie \
         (`[token] transport = \"cookie\"`); not applicable otherwise.",
    ),
    (Group::Errors, "errors", "Run-level: what the run's refusal and error bodies give away (tracebacks, driver messages, secrets). Runs last."),
];

/// The catalogue's reference in Markdown: a section per group, a row per scenario with what it
/// sends, the correct behaviour, the class of fault a failure points to and the fix.
///
/// ```
/// let page = scenarios::catalogue_markdown(&scenarios::catalogue());
/// assert!(page.contains("`tokens.expired`"));
/// ```
pub fn catalogue_markdown(scenarios: &[Scenario]) -> String {
    let mut page = String::new();
    let _ = writeln!(page, "# The scenario catalogue\n");
    let _ = writeln!(
        page,
        "<!-- Generated from scenarios/src/catalogue.rs by `clerk-harness scenarios --format markdown > docs/catalogue.md`.\n     \
         Do not edit by hand: scenarios/tests/docs.rs fails when this page is stale. -->\n"
    );
    let _ = writeln!(
        page,
        "{} scenarios. Each one sends one thing a SPA or Clerk can send and judges the answer against \
         the correct behaviour: `pass`, `warn` (works, but a risk or a silent refusal), `fail` (the \
         backend is wrong), `not applicable` (the profile does not declare what it needs) or `error` \
         (the harness could not judge). `clerk-harness scenarios` lists them; `run --only tokens.,cors.` \
         runs a subset.\n",
        scenarios.len()
    );
    let _ = writeln!(page, "How a scenario runs: **shared**: on the shared backend, leaving nothing behind; **fresh**: on a fresh backend with a fresh database; **beside**: on backends started beside the shared one with other variables; **after all**: judges what the other scenarios collected.\n");
    for (group, name, intro) in SECTIONS {
        let rows: Vec<&Scenario> = scenarios.iter().filter(|s| s.group == *group).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(page, "## {name} ({})\n\n{intro}\n", rows.len());
        let _ = writeln!(page, "| scenario | sends | correct behaviour | a failure points to | fix | runs |");
        let _ = writeln!(page, "|---|---|---|---|---|---|");
        for s in rows {
            let class = match s.reason {
                Some(reason) => format!("`{}` (Clerk's SDKs: `{reason}`)", s.class),
                None => format!("`{}`", s.class),
            };
            let _ = writeln!(
                page,
                "| `{}`<br>{} | {} | {} | {} | {} | {} |",
                s.id,
                cell(s.title),
                cell(s.sends),
                cell(s.expects),
                class,
                cell(s.fix),
                isolation(s.isolation)
            );
        }
        let _ = writeln!(page);
    }
    page
}

fn isolation(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::Shared => "shared",
        Isolation::FreshBackend => "fresh",
        Isolation::Beside => "beside",
        Isolation::AfterAll => "after all",
    }
}

/// One table cell: pipes escaped, line breaks flattened.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
