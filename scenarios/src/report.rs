//! Renders a [`Report`]: a table for people, JSON for scripts, JUnit XML for CI.

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
            "duration_ms": report.duration_ms,
            "scenarios": report.results,
        }))
        .unwrap_or_default(),
        Format::Junit => junit(report),
    }
}

fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nclerk-harness — profile {} — {}\n", report.profile, report.environment);
    let _ = writeln!(out, "{:<30} {:<7} {:>8}  diagnosis / note", "scenario", "verdict", "time");
    let _ = writeln!(out, "{}", "-".repeat(100));
    for r in &report.results {
        let line = r.diagnosis.as_ref().map_or(r.note.as_str(), |d| d.summary.as_str());
        let line: String = line.chars().take(80).collect();
        let _ = writeln!(out, "{:<30} {:<7} {:>6} ms  {line}", r.id, verdict_word(r.verdict), r.duration_ms);
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

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn junit(report: &Report) -> String {
    let failures = report.with_verdict(Verdict::Fail).count();
    let errors = report.with_verdict(Verdict::Error).count();
    let skipped = report.with_verdict(Verdict::NotApplicable).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"clerk-harness {}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\">\n",
        xml(&report.profile),
        report.results.len(),
        report.duration_ms as f64 / 1000.0
    );
    for r in &report.results {
        let _ = write!(out, "  <testcase classname=\"{:?}\" name=\"{}\" time=\"{:.3}\">", r.group, xml(&r.id), r.duration_ms as f64 / 1000.0);
        match (&r.verdict, &r.diagnosis) {
            (Verdict::Fail, Some(d)) => {
                let body = serde_json::to_string_pretty(d).unwrap_or_default();
                let _ = write!(out, "<failure message=\"{}\">{}</failure>", xml(&d.summary), xml(&body));
            }
            (Verdict::Error, Some(d)) => {
                let body = serde_json::to_string_pretty(d).unwrap_or_default();
                let _ = write!(out, "<error message=\"{}\">{}</error>", xml(&d.summary), xml(&body));
            }
            (Verdict::Warn, Some(d)) => {
                let _ = write!(out, "<system-out>{}</system-out>", xml(&format!("warn: {}", d.summary)));
            }
            (Verdict::NotApplicable, _) => {
                let _ = write!(out, "<skipped message=\"{}\"/>", xml(&r.note));
            }
            _ => {}
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}
