//! The HTML report: one self-contained file (inline CSS, a few lines of inline JS for the
//! filter, no network: a Content-Security-Policy of `default-src 'none'` forbids any fetch)
//! with a summary, and per scenario its diagnosis and a sequence diagram (inline SVG drawn
//! here) of every request across SPA → backend → Clerk, with the backend's log lines.
//!
//! Everything that comes from the backend or the run (bodies, headers, log lines, paths,
//! claims) is untrusted: it only ever reaches the page through [`esc`].

mod diagram;

use std::fmt::Write as _;

use self::diagram::{diagram, hop_list};
use crate::runner::Report;
use crate::scenario::{Group, ScenarioResult, Verdict};
use crate::timeline::{Event, Party};

/// Escapes text for HTML text and attribute values (and SVG, the same rules).
#[must_use]
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (other than tab and newline) would make the file invalid.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "fail",
        Verdict::Error => "error",
        Verdict::NotApplicable => "na",
    }
}

fn group_name(g: Group) -> &'static str {
    match g {
        Group::Tokens => "tokens",
        Group::Environment => "environment",
        Group::Cors => "cors",
        Group::UserSync => "user sync",
        Group::Webhooks => "webhooks",
        Group::Loops => "401 loops",
        Group::Cookies => "cookies",
        Group::Orgs => "organizations",
        Group::Errors => "error bodies",
    }
}

fn group_key(g: Group) -> &'static str {
    match g {
        Group::Tokens => "tokens",
        Group::Environment => "environment",
        Group::Cors => "cors",
        Group::UserSync => "user_sync",
        Group::Webhooks => "webhooks",
        Group::Loops => "loops",
        Group::Cookies => "cookies",
        Group::Orgs => "orgs",
        Group::Errors => "errors",
    }
}

const VERDICTS: [Verdict; 5] = [Verdict::Fail, Verdict::Error, Verdict::Warn, Verdict::Pass, Verdict::NotApplicable];
const GROUPS: [Group; 9] =
    [Group::Tokens, Group::Orgs, Group::Environment, Group::Cors, Group::UserSync, Group::Webhooks, Group::Loops, Group::Cookies, Group::Errors];

const STYLE: &str = r#"
:root { --fail:#c62828; --error:#8e24aa; --warn:#ef6c00; --pass:#2e7d32; --na:#757575; --clerk:#5e35b1; --ink:#222; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); margin: 0; background: #f6f7f9; }
header, main { max-width: 1100px; margin: 0 auto; padding: 12px 20px; }
h1 { font-size: 20px; margin: 8px 0 2px; } h2 { font-size: 16px; margin: 18px 0 6px; } h3 { font-size: 14px; margin: 14px 0 6px; }
code, pre, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
pre { background: #fff; border: 1px solid #ddd; padding: 8px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; margin: 4px 0; }
.env { color: #555; margin: 0 0 8px; }
.counts span, .badge { display: inline-block; border-radius: 4px; padding: 1px 8px; color: #fff; font-weight: 600; margin-right: 6px; }
.pass { --c: var(--pass); } .warn { --c: var(--warn); } .fail { --c: var(--fail); } .error { --c: var(--error); } .na { --c: var(--na); }
.counts span, .badge { background: var(--c); }
.stopped { border-left: 4px solid var(--error); background: #fff; padding: 8px 12px; }
#filter { background: #fff; border: 1px solid #ddd; padding: 6px 10px; margin: 10px 0; }
#filter label { margin-right: 12px; white-space: nowrap; }
table.timings { border-collapse: collapse; width: 100%; background: #fff; }
table.timings td, table.timings th { border-bottom: 1px solid #eee; padding: 2px 6px; text-align: left; }
table.timings td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.bar { height: 10px; background: #cfd8dc; position: relative; min-width: 1px; }
.bar i { position: absolute; left: 0; top: 0; bottom: 0; background: #78909c; }
section.scenario { background: #fff; border: 1px solid #ddd; border-left: 5px solid var(--c); margin: 10px 0; padding: 4px 12px; }
section.scenario > details > summary { cursor: pointer; padding: 4px 0; }
section.scenario[hidden] { display: none; }
.title { color: #444; } .time { color: #777; float: right; }
dl.diag { display: grid; grid-template-columns: 90px 1fr; gap: 2px 10px; margin: 6px 0; }
dl.diag dt { font-weight: 600; color: #555; } dl.diag dd { margin: 0; }
.timeline { overflow-x: auto; border: 1px solid #e3e3e3; background: #fcfcfd; }
svg text { font-family: system-ui, "DejaVu Sans", sans-serif; font-size: 12px; }
svg .mono { font-family: "DejaVu Sans Mono", monospace; font-size: 11px; }
ol.hops { padding-left: 0; list-style: none; }
ol.hops > li { border-top: 1px solid #eee; padding: 4px 0; }
ol.hops .hdr { color: #555; }
.s2 { color: var(--pass); } .s3 { color: #1565c0; } .s4 { color: var(--fail); } .s5 { color: #b71c1c; } .s0 { color: var(--na); }
.tok { display: grid; grid-template-columns: 1fr 2fr; gap: 6px; }
"#;

const SCRIPT: &str = r#"
(function () {
  var form = document.getElementById('filter');
  function apply() {
    var on = {};
    form.querySelectorAll('input').forEach(function (i) { on[i.name + ':' + i.value] = i.checked; });
    var only = decodeURIComponent((location.hash.match(/^#only=(.+)$/) || [])[1] || '');
    document.querySelectorAll('section.scenario').forEach(function (s) {
      var show = only ? s.dataset.id === only : (on['verdict:' + s.dataset.verdict] && on['group:' + s.dataset.group]);
      s.hidden = !show;
      if (only && show) { s.querySelector('details').open = true; }
    });
    var shown = document.querySelectorAll('section.scenario:not([hidden])').length;
    document.getElementById('shown').textContent = shown;
  }
  form.addEventListener('change', apply);
  window.addEventListener('hashchange', apply);
  apply();
})();
"#;

/// Renders `report` as one self-contained HTML page.
#[must_use]
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let count = |v| report.with_verdict(v).count();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>clerk-harness — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n",
        esc(&report.profile)
    );
    let _ = writeln!(out, "<h1>clerk-harness — profile <code>{}</code></h1>", esc(&report.profile));
    let _ = writeln!(out, "<p class=\"env\">{}</p>", esc(&report.environment));
    let _ = write!(out, "<p class=\"counts\" id=\"counts\">");
    for v in VERDICTS {
        let _ = write!(out, "<span class=\"{}\" data-verdict=\"{}\">{} {}</span>", verdict_class(v), verdict_class(v), count(v), super::verdict_word(v));
    }
    let _ = writeln!(out, "</p>");
    let _ = writeln!(
        out,
        "<p>{} {} in {:.1} s (bring-up excluded) · exit code {} · <span id=\"shown\">{}</span> shown</p>",
        report.results.len(),
        if report.results.len() == 1 { "scenario" } else { "scenarios" },
        report.duration_ms as f64 / 1000.0,
        report.exit_code(),
        report.results.len()
    );
    if let Some(stop) = &report.stopped {
        let _ = writeln!(
            out,
            "<div class=\"stopped\"><b>The run stopped</b> after {}.<br>problem: {}<br>fix: {}<br>not run: {}</div>",
            esc(&stop.after.join(", ")),
            esc(&stop.problem),
            esc(&stop.fix),
            esc(&if stop.not_run.is_empty() { "(none)".to_string() } else { stop.not_run.join(", ") })
        );
    }
    fingerprint(&mut out, report);
    out.push_str("<form id=\"filter\"><b>Show</b> verdicts: ");
    for v in VERDICTS {
        let _ = write!(out, "<label><input type=\"checkbox\" name=\"verdict\" value=\"{}\" checked> {}</label>", verdict_class(v), super::verdict_word(v));
    }
    out.push_str(" sections: ");
    for g in GROUPS.iter().filter(|g| report.results.iter().any(|r| r.group == **g)) {
        let _ = write!(out, "<label><input type=\"checkbox\" name=\"group\" value=\"{}\" checked> {}</label>", group_key(*g), group_name(*g));
    }
    out.push_str("</form>\n");
    timings(&mut out, report);
    out.push_str("</header>\n<main>\n");
    for r in &report.results {
        scenario(&mut out, r);
    }
    let _ = write!(out, "</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}

/// The fingerprint (each figure with its measurement) and the root causes, each once with the
/// scenarios it explains (links).
fn fingerprint(out: &mut String, report: &Report) {
    out.push_str("<details class=\"fingerprint\" open><summary><b>The backend's auth fingerprint</b> (measured in this run)</summary>\n<table class=\"fingerprint\"><tr><th>figure</th><th>value</th><th>measured by</th></tr>\n");
    for (name, figure, measurement) in report.fingerprint.rows() {
        let _ = writeln!(out, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(name), esc(&figure), esc(&measurement));
    }
    out.push_str("</table></details>\n");
    let causes = report.root_causes();
    if causes.is_empty() {
        return;
    }
    out.push_str("<div class=\"causes\" id=\"causes\"><b>Root causes</b> (each measured once; the scenarios it explains)<ol>\n");
    for c in causes {
        let links: Vec<String> = c.scenarios.iter().map(|id| format!("<a href=\"#{}\"><code>{}</code></a>", esc(id), esc(id))).collect();
        let _ = writeln!(
            out,
            "<li data-cause=\"{}\"><b>{}</b><br>measured: {}<br>fix: {}<br>explains: {}</li>",
            esc(&c.cause.id),
            esc(&c.cause.title),
            esc(&c.cause.measurement),
            esc(&c.cause.fix),
            links.join(", ")
        );
    }
    out.push_str("</ol></div>\n");
}

fn timings(out: &mut String, report: &Report) {
    let longest = report.results.iter().map(|r| r.duration_ms).max().unwrap_or(1).max(1) as f64;
    out.push_str("<details><summary><b>Timings</b> (wall time per scenario; the dark part is time spent waiting for the backend)</summary>\n");
    out.push_str("<table class=\"timings\"><tr><th>scenario</th><th>verdict</th><th>time</th><th>backend</th><th style=\"width:40%\"></th></tr>\n");
    for r in &report.results {
        let width = r.duration_ms as f64 / longest * 100.0;
        let inner = if r.duration_ms == 0 { 0.0 } else { (r.backend_ms as f64 / r.duration_ms as f64 * 100.0).min(100.0) };
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#{id}\"><code>{id}</code></a></td><td><span class=\"badge {c}\">{v}</span></td><td class=\"num\">{} ms</td><td class=\"num\">{} ms</td>\
             <td><div class=\"bar\" style=\"width:{width:.1}%\"><i style=\"width:{inner:.1}%\"></i></div></td></tr>",
            r.duration_ms,
            r.backend_ms,
            id = esc(&r.id),
            c = verdict_class(r.verdict),
            v = super::verdict_word(r.verdict),
        );
    }
    out.push_str("</table></details>\n");
}

fn scenario(out: &mut String, r: &ScenarioResult) {
    let c = verdict_class(r.verdict);
    let open = if matches!(r.verdict, Verdict::Fail | Verdict::Error | Verdict::Warn) { " open" } else { "" };
    let _ = writeln!(
        out,
        "<section class=\"scenario {c}\" id=\"{id}\" data-id=\"{id}\" data-verdict=\"{c}\" data-group=\"{g}\">\n<details{open}><summary><span class=\"badge {c}\">{v}</span> <code>{id}</code> <span class=\"title\">{title}</span> <span class=\"time\">{} ms</span></summary>",
        r.duration_ms,
        id = esc(&r.id),
        g = group_key(r.group),
        v = super::verdict_word(r.verdict),
        title = esc(&r.title),
    );
    match &r.diagnosis {
        Some(d) => {
            out.push_str("<dl class=\"diag\">");
            let mut row = |k: &str, v: &str| {
                let _ = write!(out, "<dt>{k}</dt><dd>{}</dd>", esc(v));
            };
            row("problem", &d.summary);
            row("sent", &d.sent);
            row("expected", &d.expected);
            if let Some(got) = &d.got {
                let mut text = got.summary();
                for (k, v) in &got.headers {
                    let _ = write!(text, "\n{k}: {}", crate::timeline::show_header(k, v).0);
                }
                let _ = write!(out, "<dt>got</dt><dd><pre>{}</pre></dd>", esc(&text));
            }
            let class = match &d.clerk_reason {
                Some(reason) => format!("{} (Clerk SDK reason: {reason})", d.class),
                None => d.class.clone(),
            };
            let mut row = |k: &str, v: &str| {
                let _ = write!(out, "<dt>{k}</dt><dd>{}</dd>", esc(v));
            };
            row("class", &class);
            if let Some(cause) = &d.cause {
                row("cause", &format!("{} — measured {}", cause.title, cause.measurement));
            }
            row("fix", &d.fix);
            out.push_str("</dl>\n");
        }
        None => {
            let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(&r.note));
        }
    }
    if r.exchanges.iter().any(|h| h.from != Party::Harness) || !r.events.is_empty() {
        out.push_str("<h3>Timeline</h3>\n<div class=\"timeline\">");
        diagram(out, &r.id, &r.exchanges, &r.events);
        out.push_str("</div>\n");
    }
    if !r.exchanges.is_empty() {
        hop_list(out, &r.id, &r.exchanges);
    }
    let log: Vec<&Event> = r.events.iter().filter(|e| e.source == Party::Backend).collect();
    if !log.is_empty() {
        out.push_str("<h3>Backend log (this scenario's window)</h3>\n<pre class=\"log\">");
        for e in log {
            let _ = writeln!(out, "{:>9.1} ms  {}", e.at_ms, esc(&e.text));
        }
        out.push_str("</pre>\n");
    }
    out.push_str("</details>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(esc("<script>alert('x')</script> & \"y\""), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;");
        assert_eq!(esc("a\u{0}b\nc"), "a\u{fffd}b\nc");
    }
}
