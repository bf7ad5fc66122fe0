//! The sequence diagram: every request across SPA → backend → Clerk drawn as inline SVG, with
//! the backend's log lines and the turns of a loop, and the list of hops beneath it.

use std::fmt::Write as _;

use super::esc;
use crate::timeline::{Event, Hop, Party};

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
pub(super) fn diagram(out: &mut String, id: &str, hops: &[Hop], events: &[Event]) {
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
pub(super) fn hop_list(out: &mut String, id: &str, hops: &[Hop]) {
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
