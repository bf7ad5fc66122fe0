//! A scenario's log window holds the lines its own requests caused — also those the backend
//! writes after answering (gunicorn's access line) — and nothing of its neighbours, nor of
//! the harness's log barriers; and no report shows a terminal escape sequence.
//!
//! On the stub: [`AccessLog::AfterAnswer`] writes every access line 150 ms after the answer,
//! later than the runner reads the log; [`AccessLog::Off`] writes none, so windows close on a
//! quiet log.

mod stub;

use std::time::Duration;

use harness::Stream;
use scenarios::Party;
use scenarios::{render, Format};
use scenarios::{Ctx, Group, Isolation, Outcome, Scenario, ScenarioResult, Verdict};
use stub::Behaviour;
use stub_backend::AccessLog;

/// A scenario `test.<name>` that calls the token endpoint once, without a token, with
/// `?scenario=<name>` (so its access line names it), and fails (so it has a diagnosis).
macro_rules! calling {
    ($name:ident) => {{
        fn body(ctx: &mut Ctx) -> scenarios::BoxFut<'_> {
            Box::pin(async move {
                let path = format!("/api/me?scenario={}", stringify!($name));
                let got = ctx.send(reqwest::Method::GET, &path, None).await?;
                Ok(Outcome::fail(format!("GET {path}"), Some(got), "failed on purpose, to get a diagnosis"))
            })
        }
        Scenario {
            id: concat!("test.", stringify!($name)),
            group: Group::Tokens,
            title: "one call",
            sends: "GET /api/me?scenario=…",
            expects: "a diagnosis",
            class: "test",
            reason: None,
            fix: "none",
            isolation: Isolation::Shared,
            body,
        }
    }};
}

/// The backend's lines in a result's diagnosis and in its events.
fn windows(r: &ScenarioResult) -> (Vec<String>, Vec<String>) {
    let diagnosis = r.diagnosis.as_ref().map(|d| d.backend_log.clone()).unwrap_or_default();
    let events = r.events.iter().filter(|e| e.source == Party::Backend).map(|e| e.text.clone()).collect();
    (diagnosis, events)
}

/// Each scenario's window holds its own access line once and no line naming another one.
fn assert_own_lines_only(results: &[ScenarioResult], names: &[&str]) {
    for (r, own) in results.iter().zip(names) {
        let (diagnosis, events) = windows(r);
        for (what, lines) in [("diagnosis.backend_log", &diagnosis), ("events", &events)] {
            let text = lines.join("\n");
            let access = lines.iter().filter(|l| l.contains(&format!("\"GET /api/me?scenario={own} HTTP/1.1\" 401"))).count();
            assert_eq!(access, 1, "{}: its {what} holds its own access line once:\n{text}", r.id);
            for other in names.iter().filter(|n| *n != own) {
                assert!(!text.contains(&format!("scenario={other} ")), "{}: its {what} holds a line of test.{other}:\n{text}", r.id);
            }
            assert!(!text.contains("clerk-harness-barrier"), "{}: its {what} holds a barrier's line:\n{text}", r.id);
        }
    }
}

#[tokio::test]
async fn access_lines_written_after_the_answer_land_in_their_own_scenarios_window() {
    let behaviour = Behaviour { access_log: AccessLog::AfterAnswer(Duration::from_millis(150)), ..Behaviour::default() };
    let list = [calling!(one), calling!(two), calling!(three)];
    let mut ctx = Ctx::new(stub::env(behaviour).await);
    assert_eq!(ctx.env.log_barriers(), Some(true), "the bring-up's barrier was logged");
    let report = scenarios::run(&mut ctx, &list, |_| {}).await;
    assert!(report.results.iter().all(|r| r.verdict == Verdict::Fail), "{:#?}", report.results);
    assert_own_lines_only(&report.results, &["one", "two", "three"]);
    // The raw log has the barriers' lines: they were written, only kept out of the windows.
    let file = ctx.env.log_buffer().file().expect("mirrored to a file");
    let raw = std::fs::read_to_string(file).expect("the log file");
    assert!(raw.contains("clerk-harness-barrier="), "{raw}");
}

#[tokio::test]
async fn catalogue_scenarios_on_a_late_access_log_count_exactly_their_own_requests() {
    let behaviour = Behaviour { access_log: AccessLog::AfterAnswer(Duration::from_millis(150)), ..Behaviour::default() };
    let ids = ["tokens.expired", "tokens.no_authorization", "tokens.session_token", "tokens.wrong_azp"];
    let report = stub::run(behaviour, &stub::scenarios(&ids)).await;
    for r in &report.results {
        let requests = r.exchanges.iter().filter(|h| h.from == Party::Spa && h.path.starts_with("/api/me")).count();
        let (_, events) = windows(r);
        let access: Vec<&String> = events.iter().filter(|l| l.contains("\"GET /api/me") || l.contains("\"POST /api/me")).collect();
        assert!(requests > 0, "{}: it called the backend", r.id);
        assert_eq!(access.len(), requests, "{}: one access line per request it made, no neighbour's: {events:#?}", r.id);
        assert!(events.iter().all(|l| !l.contains("clerk-harness-barrier")), "{}: {events:#?}", r.id);
    }
}

/// Like `calling!(late)`, and the backend writes one more line 20 ms after answering (no
/// access log to wait for: only a quiet log says it is done).
fn calling_then_writing_late(ctx: &mut Ctx) -> scenarios::BoxFut<'_> {
    Box::pin(async move {
        let got = ctx.send(reqwest::Method::GET, "/api/me?scenario=late", None).await?;
        let log = ctx.env.log_buffer().clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            log.push(Stream::Stderr, "WARNING a line of scenario=late written after its answer");
        });
        Ok(Outcome::fail("GET /api/me?scenario=late", Some(got), "failed on purpose, to get a diagnosis"))
    })
}

#[tokio::test]
async fn without_an_access_log_windows_close_on_a_quiet_log_and_barriers_stop() {
    let behaviour = Behaviour { access_log: AccessLog::Off, ..Behaviour::default() };
    let late = Scenario { id: "test.late", body: calling_then_writing_late, ..calling!(late) };
    let list = [calling!(one), late, calling!(two)];
    let mut ctx = Ctx::new(stub::env(behaviour).await);
    assert_eq!(ctx.env.log_barriers(), Some(false), "the bring-up's barrier was answered without a line");
    let report = scenarios::run(&mut ctx, &list, |_| {}).await;
    for (r, own) in report.results.iter().zip(["one", "late", "two"]) {
        let (diagnosis, events) = windows(r);
        assert_eq!(diagnosis, events, "{}", r.id);
        assert_eq!(diagnosis.iter().filter(|l| l.contains("refused (401)")).count(), 1, "{}: its own refusal: {diagnosis:#?}", r.id);
        assert_eq!(
            diagnosis.iter().any(|l| l.contains("scenario=late")),
            own == "late",
            "{}: the late line is in test.late's window only: {diagnosis:#?}",
            r.id
        );
        assert!(diagnosis.iter().all(|l| !l.contains("GET /health")), "{} ({own}): no barrier was sent: {diagnosis:#?}", r.id);
    }
}

#[tokio::test]
async fn a_backend_that_logs_only_its_health_path_is_barriered_and_its_windows_are_clean() {
    // The stub's default: its health handler logs the request (the path and query).
    let report = stub::run(Behaviour::default(), &[calling!(one), calling!(two)]).await;
    for r in &report.results {
        let (diagnosis, events) = windows(r);
        assert!(diagnosis.iter().chain(&events).all(|l| !l.contains("/health")), "{}: {diagnosis:#?} {events:#?}", r.id);
        assert_eq!(diagnosis.iter().filter(|l| l.contains("refused (401)")).count(), 1, "{}: {diagnosis:#?}", r.id);
    }
}

fn colourful(ctx: &mut Ctx) -> scenarios::BoxFut<'_> {
    Box::pin(async move {
        // tracing-subscriber's default format with colours, an OSC 8 link and a bell.
        ctx.env.log_buffer().push(
            Stream::Stderr,
            "\x1b[2m2026-12-05T10:00:00Z\x1b[0m \x1b[31mERROR\x1b[0m \x1b[2mapp::auth\x1b[0m\x1b[2m:\x1b[0m token refused \x1b]8;;https://clerk.com/docs\x07see docs\x1b]8;;\x07\x07",
        );
        let got = ctx.send(reqwest::Method::GET, "/api/me", None).await?;
        Ok(Outcome::fail("GET /api/me", Some(got), "failed on purpose, to get a diagnosis"))
    })
}

#[tokio::test]
async fn no_report_shows_a_terminal_escape_sequence() {
    let scenario = Scenario {
        id: "test.colourful",
        group: Group::Tokens,
        title: "a coloured log line",
        sends: "GET /api/me",
        expects: "a diagnosis",
        class: "test",
        reason: None,
        fix: "none",
        isolation: Isolation::Shared,
        body: colourful,
    };
    let report = stub::run(Behaviour::default(), &[scenario]).await;
    let (diagnosis, events) = windows(&report.results[0]);
    let line = "2026-12-05T10:00:00Z ERROR app::auth: token refused see docs";
    assert!(diagnosis.iter().any(|l| l == line), "{diagnosis:#?}");
    assert!(events.iter().any(|l| l == line), "{events:#?}");
    for format in [Format::Table, Format::Json, Format::Junit, Format::Html] {
        let text = render(&report, format);
        assert!(text.contains("token refused see docs"), "{format:?} shows the line: {text}");
        for escape in ["\x1b", "\\u001b", "\\u001B", "&#27;", "&#x1b;", "[0m", "]8;;"] {
            assert!(!text.contains(escape), "{format:?} shows {escape:?}");
        }
    }
}
