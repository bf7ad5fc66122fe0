//! The HTML report: one self-contained file (inline CSS, a few lines of inline JS for the
//! filter, no network: a Content-Security-Policy of `default-src 'none'` forbids any fetch)
//! with a summary, and per scenario its diagnosis and a sequence diagram (inline SVG drawn
//! here) of every request across SPA → backend → Clerk, with the backend's log lines.
//!
//! Everything that comes from the backend or the run (bodies, headers, log lines, paths,
//! claims) is untrusted: it only ever reaches the page through [`esc`].

use std::fmt::Write as _;

use crate::runner::Report;
use crate::scenario::{Group, ScenarioResult, Verdict};
use crate::timeline::{Event, Hop, Party};

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

/// The status's class (`s2`, `s4`…; `s0` for no answer).
fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "s2",
        Some(300..=399) => "s3",
        Some(400..=499) => "s4",
        Some(500..=599) => "s5",
        _ => "s0",
    }
}

fn status_color(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "#2e7d32",
        Some(300..=399) => "#1565c0",
        Some(400..=499) => "#c62828",
        Some(500..=599) => "#b71c1c",
        _ => "#757575",
    }
}

fn hop_id(scenario: &str, index: usize) -> String {
    format!("{scenario}-h{}", index + 1)
}

/// One row of the diagram.
enum Row<'a> {
    Request(usize, &'a Hop),
    Answer(usize, &'a Hop),
    Event(&'a Event),
    Turn(u32),
    Elided(usize),
}

/// The most rows one diagram draws; longer conversations keep their start and end.
const MAX_ROWS: usize = 240;

fn rows<'a>(hops: &'a [Hop], events: &'a [Event]) -> Vec<Row<'a>> {
    // (time, order, row): requests first, then events, then answers at the same instant.
    let mut timed: Vec<(f64, u8, Row<'a>)> = vec![];
    for (i, h) in hops.iter().enumerate().filter(|(_, h)| h.from != Party::Harness) {
        timed.push((h.at_ms, 0, Row::Request(i, h)));
        timed.push((h.at_ms + h.latency_ms, 2, Row::Answer(i, h)));
    }
    for e in events {
        timed.push((e.at_ms, 1, Row::Event(e)));
    }
    timed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let looped = hops.iter().filter_map(|h| h.turn).max().unwrap_or(0) > 1;
    let mut rows = vec![];
    let mut turn = None;
    for (_, _, row) in timed {
        if let (true, Row::Request(_, h)) = (looped, &row) {
            if h.from == Party::Spa && h.turn.is_some() && h.turn != turn {
                turn = h.turn;
                rows.push(Row::Turn(h.turn.unwrap_or_default()));
            }
        }
        rows.push(row);
    }
    if rows.len() > MAX_ROWS {
        let tail = rows.split_off(rows.len() - MAX_ROWS / 3);
        let elided = rows.len() - (MAX_ROWS - MAX_ROWS / 3);
        rows.truncate(MAX_ROWS - MAX_ROWS / 3);
        rows.push(Row::Elided(elided));
        rows.extend(tail);
    }
    rows
}

fn lane_x(p: Party) -> f64 {
    match p {
        Party::Harness | Party::Spa => 170.0,
        Party::Backend => 520.0,
        Party::Clerk => 870.0,
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

/// The sequence diagram: one lifeline per party, one row per request, answer, log line or step.
fn diagram(out: &mut String, id: &str, hops: &[Hop], events: &[Event]) {
    const W: f64 = 1040.0;
    const TOP: f64 = 44.0;
    const ROW: f64 = 24.0;
    let rows = rows(hops, events);
    let height = TOP + ROW * rows.len() as f64 + 16.0;
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"seq\" width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\" role=\"img\" aria-label=\"request timeline of {}\">",
        esc(id)
    );
    let marker = |name: &str, color: &str| {
        format!("<marker id=\"{name}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{color}\"/></marker>")
    };
    let _ = write!(out, "<defs>");
    for (name, color) in
        [("req", "#37474f"), ("clerk", "#5e35b1"), ("s2", "#2e7d32"), ("s3", "#1565c0"), ("s4", "#c62828"), ("s5", "#b71c1c"), ("s0", "#757575")]
    {
        out.push_str(&marker(&format!("{}-{name}", esc(id)), color));
    }
    out.push_str("</defs>");
    for p in [Party::Spa, Party::Backend, Party::Clerk] {
        let x = lane_x(p);
        let color = if p == Party::Clerk { "#5e35b1" } else { "#37474f" };
        let _ = write!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#b0bec5\" stroke-dasharray=\"4 3\"/>\
             <rect x=\"{}\" y=\"6\" width=\"150\" height=\"24\" rx=\"4\" fill=\"#fff\" stroke=\"{color}\"/><text x=\"{x}\" y=\"23\" text-anchor=\"middle\" font-weight=\"600\" fill=\"{color}\">{}</text>",
            TOP - 14.0,
            height - 6.0,
            x - 75.0,
            p.label()
        );
    }
    for (n, row) in rows.iter().enumerate() {
        let y = TOP + ROW * n as f64 + 14.0;
        match row {
            Row::Turn(turn) => {
                let _ = write!(
                    out,
                    "<g class=\"turn\" data-turn=\"{turn}\"><line x1=\"4\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#ef6c00\" stroke-width=\"1.5\" stroke-dasharray=\"8 4\"/>\
                     <rect x=\"4\" y=\"{}\" width=\"64\" height=\"18\" rx=\"9\" fill=\"#ef6c00\"/><text x=\"36\" y=\"{}\" text-anchor=\"middle\" fill=\"#fff\" font-weight=\"600\">turn {turn}</text></g>",
                    y - 2.0,
                    W - 4.0,
                    y - 2.0,
                    y - 11.0,
                    y + 2.0
                );
            }
            Row::Elided(count) => {
                let _ = write!(
                    out,
                    "<text x=\"{}\" y=\"{y}\" text-anchor=\"middle\" fill=\"#757575\">… {count} rows not drawn (see the list below) …</text>",
                    W / 2.0
                );
            }
            Row::Event(e) => {
                let text = cut(&e.text, 92);
                let time = format!("+{:.1} ms", e.at_ms);
                let _ = write!(out, "<text x=\"4\" y=\"{y}\" fill=\"#9e9e9e\" class=\"mono\">{}</text>", esc(&time));
                if e.source == Party::Backend {
                    let x = lane_x(Party::Backend) + 8.0;
                    let width = (text.chars().count() as f64 * 6.7 + 10.0).min(W - x - 4.0);
                    let _ = write!(
                        out,
                        "<g class=\"log\"><title>{full}</title><rect x=\"{x}\" y=\"{}\" width=\"{width:.0}\" height=\"18\" fill=\"#fff8e1\" stroke=\"#ffe082\"/>\
                         <text x=\"{}\" y=\"{y}\" class=\"mono\" fill=\"#5d4037\">{}</text></g>",
                        y - 13.0,
                        x + 5.0,
                        esc(&text),
                        full = esc(&e.text),
                    );
                } else {
                    let _ = write!(
                        out,
                        "<g class=\"step\"><title>{full}</title><text x=\"{}\" y=\"{y}\" fill=\"#546e7a\" font-style=\"italic\">harness: {}</text></g>",
                        lane_x(Party::Spa) - 80.0,
                        esc(&cut(&e.text, 120)),
                        full = esc(&e.text),
                    );
                }
            }
            Row::Request(i, h) | Row::Answer(i, h) => {
                let answer = matches!(row, Row::Answer(..));
                let (from, to) = if answer { (lane_x(h.to), lane_x(h.from)) } else { (lane_x(h.from), lane_x(h.to)) };
                let color = if answer {
                    status_color(h.status)
                } else if h.to == Party::Clerk {
                    "#5e35b1"
                } else {
                    "#37474f"
                };
                let mark = if answer {
                    status_class(h.status)
                } else if h.to == Party::Clerk {
                    "clerk"
                } else {
                    "req"
                };
                let at = if answer { h.at_ms + h.latency_ms } else { h.at_ms };
                let label = if answer {
                    match (h.status, &h.error) {
                        (Some(s), _) => format!("{s} · {} (#{})", ms(h.latency_ms), i + 1),
                        (None, Some(e)) => format!("no answer: {}", cut(e, 60)),
                        (None, None) => "no answer".to_string(),
                    }
                } else {
                    let host = h.host.as_deref().map(|h| format!("{h} ")).unwrap_or_default();
                    format!("#{} {} {host}{}", i + 1, h.method, cut(&h.path, 60))
                };
                let dash = if answer { " stroke-dasharray=\"6 3\"" } else { "" };
                let mid = (from + to) / 2.0;
                let _ = write!(
                    out,
                    "<g class=\"hop {kind}\" data-hop=\"{hop}\" data-from=\"{f}\" data-to=\"{t}\" data-method=\"{m}\" data-path=\"{p}\" data-status=\"{s}\">\
                     <title>{title}</title><text x=\"4\" y=\"{y}\" fill=\"#9e9e9e\" class=\"mono\">+{at:.1} ms</text>\
                     <line x1=\"{from}\" y1=\"{ly}\" x2=\"{to}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"{dash} marker-end=\"url(#{mid_id}-{mark})\"/>\
                     <text x=\"{mid}\" y=\"{ty}\" text-anchor=\"middle\" fill=\"{color}\"{weight}>{label}</text></g>",
                    kind = if answer { "answer" } else { "request" },
                    hop = i + 1,
                    f = party_key(if answer { h.to } else { h.from }),
                    t = party_key(if answer { h.from } else { h.to }),
                    m = esc(&h.method),
                    p = esc(&h.path),
                    s = h.status.map(|s| s.to_string()).unwrap_or_default(),
                    title = esc(&format!("#{} {} {} → {}", i + 1, h.method, h.path, h.status.map_or_else(|| "no answer".to_string(), |s| s.to_string()))),
                    ly = y + 4.0,
                    ty = y - 2.0,
                    mid_id = esc(id),
                    weight = if answer { " font-weight=\"600\"" } else { "" },
                    label = esc(&label),
                );
            }
        }
    }
    out.push_str("</svg>");
}

/// `4.6 ms`, `0.04 ms`.
fn ms(value: f64) -> String {
    if value < 1.0 {
        format!("{value:.2} ms")
    } else {
        format!("{value:.1} ms")
    }
}

fn party_key(p: Party) -> &'static str {
    match p {
        Party::Harness => "harness",
        Party::Spa => "spa",
        Party::Backend => "backend",
        Party::Clerk => "clerk",
    }
}

/// The requests in detail: headers, the decoded token, the start of the answer.
fn hop_list(out: &mut String, id: &str, hops: &[Hop]) {
    let _ = writeln!(out, "<details class=\"hops\"><summary><b>Requests</b> ({}): headers, decoded tokens, answers</summary><ol class=\"hops\">", hops.len());
    for (i, h) in hops.iter().enumerate().take(400) {
        let status = match (h.status, &h.error) {
            (Some(s), _) => s.to_string(),
            (None, Some(e)) => format!("no answer ({e})"),
            (None, None) => "no answer".into(),
        };
        let _ = write!(
            out,
            "<li id=\"{}\"><b>#{}</b> <span class=\"mono\">+{:.1} ms</span> {} → {} <code>{} {}{}</code> → <b class=\"{}\">{}</b> in {}{}{}",
            esc(&hop_id(id, i)),
            i + 1,
            h.at_ms,
            h.from.label(),
            h.to.label(),
            esc(&h.method),
            h.host.as_deref().map(|h| format!("{} ", esc(h))).unwrap_or_default(),
            esc(&h.path),
            status_class(h.status),
            esc(&status),
            ms(h.latency_ms),
            h.turn.map(|t| format!(" · turn {t}")).unwrap_or_default(),
            h.note.as_deref().map(|n| format!(" · {}", esc(n))).unwrap_or_default(),
        );
        let headers: Vec<String> =
            h.request_headers.iter().map(|(k, v)| format!("→ {k}: {v}")).chain(h.response_headers.iter().map(|(k, v)| format!("← {k}: {v}"))).collect();
        if !headers.is_empty() {
            let _ = write!(out, "<pre class=\"hdr\">{}</pre>", esc(&headers.join("\n")));
        }
        if let Some(t) = &h.token {
            let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
            let _ = write!(
                out,
                "<div class=\"tok\"><pre>token header\n{}</pre><pre>claims (signature {})\n{}</pre></div>",
                esc(&pretty(&t.header)),
                esc(&t.signature),
                esc(&pretty(&t.claims))
            );
        }
        if let Some(body) = &h.body {
            let _ = write!(out, "<pre class=\"body\">{}</pre>", esc(body));
        }
        out.push_str("</li>\n");
    }
    if hops.len() > 400 {
        let _ = writeln!(out, "<li>… {} more (see --format json)</li>", hops.len() - 400);
    }
    out.push_str("</ol></details>\n");
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
