//! Renders a [`Report`]: a table for people, JSON for scripts (each scenario's `exchanges`
//! and `events` included), JUnit XML for CI, and one self-contained HTML page with a request
//! timeline per scenario ([`html`]).

pub mod html;

use std::fmt::Write as _;

use serde_json::json;

use crate::runner::Report;
use crate::scenario::{ScenarioResult, Verdict};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A table and full diagnoses of failures.
    Table,
    /// One JSON object with a `scenarios` array.
    Json,
    /// JUnit XML.
    Junit,
    /// One self-contained HTML page: a summary, and per scenario its diagnosis and a sequence
    /// diagram of every request (SPA → backend → Clerk) with the backend's log lines.
    Html,
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "FAIL",
        Verdict::Error => "ERROR",
        Verdict::NotApplicable => "n/a",
    }
}

/// One line per finished scenario, for progress output.
#[must_use]
pub fn progress_line(index: usize, total: usize, r: &ScenarioResult) -> String {
    let detail = r.diagnosis.as_ref().map_or(r.note.as_str(), |d| d.summary.as_str());
    let detail: String = detail.chars().take(90).collect();
    format!("[{index:>2}/{total}] {:<4} {:<30} {:>6} ms  {detail}", verdict_word(r.verdict), r.id, r.duration_ms)
}

/// Renders `report` in `format`.
#[must_use]
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => table(report),
        Format::Json => serde_json::to_string_pretty(&json!({
            "profile": report.profile,
            "environment": report.environment,
            "passed": report.passed(),
            "exit_code": report.exit_code(),
            "duration_ms": report.duration_ms,
            "fingerprint": report.fingerprint,
            "root_causes": report.root_causes(),
            "scenarios": report.results,
            "stopped": report.stopped,
        }))
        .unwrap_or_default(),
        Format::Junit => junit(report),
        Format::Html => html::render(report),
    }
}

fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nclerk-harness — profile {} — {}\n", report.profile, report.environment);
    let _ = writeln!(out, "The backend's auth fingerprint (measured in this run):");
    for (name, figure, measurement) in report.fingerprint.rows() {
        let _ = writeln!(out, "  {name:<12} {figure}");
        let _ = writeln!(out, "  {:<12}   measured by: {measurement}", "");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<38} {:<7} {:>8}  diagnosis / note", "scenario", "verdict", "time");
    let _ = writeln!(out, "{}", "-".repeat(108));
    for r in &report.results {
        let line = r.diagnosis.as_ref().map_or(r.note.as_str(), |d| d.summary.as_str());
        let line: String = line.chars().take(80).collect();
        let _ = writeln!(out, "{:<38} {:<7} {:>6} ms  {line}", r.id, verdict_word(r.verdict), r.duration_ms);
    }
    let count = |v| report.with_verdict(v).count();
    let _ = writeln!(
        out,
        "\n{} passed, {} warned, {} failed, {} could not be judged (error), {} not applicable — {:.1} s",
        count(Verdict::Pass),
        count(Verdict::Warn),
        count(Verdict::Fail),
        count(Verdict::Error),
        count(Verdict::NotApplicable),
        report.duration_ms as f64 / 1000.0
    );
    if let Some(stop) = &report.stopped {
        let _ = writeln!(out, "\n=== STOPPED after {}", stop.after.join(", "));
        let _ = writeln!(out, "  problem:  {}", stop.problem);
        let _ = writeln!(out, "  fix:      {}", stop.fix);
        let _ = writeln!(out, "  not run:  {}", if stop.not_run.is_empty() { "(none)".to_string() } else { stop.not_run.join(", ") });
    }
    let causes = report.root_causes();
    if !causes.is_empty() {
        let _ = writeln!(out, "\n=== Root causes (each measured once, with the scenarios it explains)");
        for (i, c) in causes.iter().enumerate() {
            let _ = writeln!(out, "  [{}] {}", i + 1, c.cause.title);
            let _ = writeln!(out, "      measured: {}", c.cause.measurement);
            let _ = writeln!(out, "      fix:      {}", c.cause.fix);
            let _ = writeln!(out, "      explains: {}", c.scenarios.join(", "));
        }
    }
    for r in report.results.iter().filter(|r| matches!(r.verdict, Verdict::Error | Verdict::Fail | Verdict::Warn)) {
        let Some(d) = &r.diagnosis else { continue };
        let _ = writeln!(out, "\n=== {} {} — {}", verdict_word(r.verdict), r.id, r.title);
        let _ = writeln!(out, "  problem:  {}", d.summary);
        let _ = writeln!(out, "  sent:     {}", d.sent);
        let _ = writeln!(out, "  expected: {}", d.expected);
        if let Some(got) = &d.got {
            let _ = writeln!(out, "  got:      {}", got.summary());
            for (k, v) in &got.headers {
                let _ = writeln!(out, "            {k}: {v}");
            }
        }
        let _ = writeln!(out, "  class:    {}{}", d.class, d.clerk_reason.as_ref().map_or(String::new(), |r| format!(" (Clerk SDK reason: {r})")));
        if let Some(cause) = &d.cause {
            let n = causes.iter().position(|c| c.cause.id == cause.id).map_or(String::new(), |i| format!(" [root cause {}]", i + 1));
            let _ = writeln!(out, "  cause:    {}{n}", cause.title);
        }
        let _ = writeln!(out, "  fix:      {}", d.fix);
        if !d.backend_log.is_empty() {
            let _ = writeln!(out, "  backend log:");
            for line in &d.backend_log {
                let _ = writeln!(out, "    | {line}");
            }
        }
    }
    out
}

/// JUnit XML (via `quick-junit`): `fail` is a `<failure>`, `error` an `<error>` (the harness
/// could not judge), `not_applicable` `<skipped>`, `warn` a passing case with its warning in
/// `system-out`; scenarios a stopped run did not run are `<skipped>` saying why.
fn junit(report: &Report) -> String {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("clerk-harness {}", report.profile));
    suite.set_time(std::time::Duration::from_millis(report.duration_ms));
    for (name, figure, measurement) in report.fingerprint.rows() {
        suite.add_property(quick_junit::Property::new(format!("fingerprint.{}", name.replace(' ', "_")), format!("{figure} — measured by: {measurement}")));
    }
    for (i, c) in report.root_causes().iter().enumerate() {
        suite.add_property(quick_junit::Property::new(
            format!("root_cause.{}", i + 1),
            format!("{} — measured: {} — fix: {} — explains: {}", c.cause.title, c.cause.measurement, c.cause.fix, c.scenarios.join(", ")),
        ));
    }
    for r in &report.results {
        let details = r.diagnosis.as_ref().map(|d| serde_json::to_string_pretty(d).unwrap_or_default()).unwrap_or_default();
        let summary = r.diagnosis.as_ref().map_or(r.note.as_str(), |d| d.summary.as_str());
        let status = match r.verdict {
            Verdict::Pass | Verdict::Warn => TestCaseStatus::success(),
            Verdict::Fail | Verdict::Error => {
                let kind = if r.verdict == Verdict::Fail { NonSuccessKind::Failure } else { NonSuccessKind::Error };
                let mut status = TestCaseStatus::non_success(kind);
                status.set_message(summary).set_type(r.diagnosis.as_ref().map_or("", |d| d.class.as_str())).set_description(details.as_str());
                status
            }
            Verdict::NotApplicable => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(r.note.as_str());
                status
            }
        };
        let mut case = TestCase::new(r.id.as_str(), status);
        case.set_classname(format!("{:?}", r.group)).set_time(std::time::Duration::from_millis(r.duration_ms));
        if r.verdict == Verdict::Warn {
            case.set_system_out(format!("warn: {summary}\n{details}"));
        }
        suite.add_test_case(case);
    }
    if let Some(stop) = &report.stopped {
        for id in &stop.not_run {
            let mut status = TestCaseStatus::skipped();
            status.set_message(format!("not run: {}", stop.problem));
            suite.add_test_case(TestCase::new(id.as_str(), status));
        }
    }
    let mut junit = quick_junit::Report::new("clerk-harness");
    junit.add_test_suite(suite);
    junit.to_string().unwrap_or_else(|e| format!("<!-- JUnit serialisation failed: {e} -->\n"))
}
