//! The HTML report (issue 16), checked in a real browser: a run with a seeded fault on the
//! in-process stub backend is rendered, opened in headless Chromium (Debian's `chromium`), and
//! the rendered page — its DOM after the inline script ran (`--dump-dom`) and its pixels
//! (`--screenshot`) — must show the failing scenario's conversation: the SPA's request, the
//! backend's JWKS call to the mock Clerk, and the 401. Other tests: every retry of a 401 loop
//! is a turn; backend-provided `<script>` is inert; no secret of the run is in the file.
//!
//! Chromium is required: without it these tests FAIL saying how to install it (`scripts/test`
//! and `.ci/run` install it with apt-get when it is missing). `CHROMIUM=/path/to/chrome`
//! points at another binary. `REPORT_SCREENSHOT_OUT=docs/report-loop.png` keeps the loop
//! scenario's screenshot (how docs/report-loop.png is made).

mod stub;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use harness::GetToken;
use harness::Stream;
use scenarios::{render, Format};
use scenarios::{Ctx, Group, Isolation, Outcome, Report, Scenario, Verdict};
use stub::{Behaviour, Refetch};

/// The Chromium binary, or a failure saying how to get one.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "CHROMIUM={} is not a file: point it at a Chromium binary, or unset it and install Debian's package (apt-get install -y chromium)",
            path.display()
        );
        return path;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(dir) = std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).find(|d| d.join(name).is_file())) {
            return dir.join(name);
        }
    }
    panic!(
        "headless Chromium is needed to check the HTML report as a browser renders it, and none was found in PATH: \
         install Debian's package (apt-get install -y chromium — scripts/test and .ci/run do this when it is missing) \
         or set CHROMIUM=/path/to/chromium"
    );
}

/// Runs Chromium headless on `page` (a `file://` URL, maybe with a fragment) with `args`.
fn headless(page: &str, profile: &Path, args: &[&str]) -> std::process::Output {
    let output = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(page)
        .output()
        .unwrap_or_else(|e| panic!("could not run Chromium: {e}"));
    assert!(output.status.success(), "Chromium failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    output
}

/// The DOM of `page` after its scripts ran.
fn dump_dom(page: &str, dir: &Path) -> String {
    let out = headless(page, &dir.join("chromium-profile"), &["--dump-dom"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A screenshot of `page`, decoded: (width, height, RGBA pixels).
fn screenshot(page: &str, dir: &Path, name: &str, size: (u32, u32)) -> (PathBuf, u32, u32, Vec<u8>) {
    let path = dir.join(name);
    headless(page, &dir.join("chromium-profile"), &[&format!("--screenshot={}", path.display()), &format!("--window-size={},{}", size.0, size.1)]);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("Chromium wrote no screenshot at {}: {e}", path.display()));
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a sized PNG")];
    let info = reader.next_frame(&mut pixels).expect("a PNG frame");
    let rgba = match info.color_type {
        png::ColorType::Rgba => pixels[..info.buffer_size()].to_vec(),
        png::ColorType::Rgb => pixels[..info.buffer_size()].chunks(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    (path, info.width, info.height, rgba)
}

/// The longest run of pixels of `color` (±10 per channel) in any one row: a horizontal
/// arrow of the diagram is hundreds of pixels long, a badge or a letter is not.
fn longest_row_of(color: (u8, u8, u8), width: u32, rgba: &[u8]) -> usize {
    let near = |a: u8, b: u8| a.abs_diff(b) <= 10;
    rgba.chunks(width as usize * 4)
        .map(|row| row.chunks(4).filter(|p| near(p[0], color.0) && near(p[1], color.1) && near(p[2], color.2)).count())
        .max()
        .unwrap_or(0)
}

/// The part of the DOM that is scenario `id`'s section.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no section {id} in the rendered page"));
    let end = dom[start..].find("</section>").map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

/// The `<g class="hop …">` elements of a section, in document (= time) order.
fn hops(section: &str) -> Vec<&str> {
    section.split("<g class=\"hop ").skip(1).map(|g| &g[..g.find('>').unwrap_or(g.len())]).collect()
}

fn write_report(report: &Report, dir: &Path) -> (PathBuf, String) {
    let html = render(report, Format::Html);
    let path = dir.join("report.html");
    std::fs::write(&path, &html).expect("write the report");
    (path, html)
}

fn url(path: &Path, fragment: &str) -> String {
    format!("file://{}{fragment}", path.display())
}

const SPA_BLUE_GREY: (u8, u8, u8) = (0x37, 0x47, 0x4f);
const CLERK_PURPLE: (u8, u8, u8) = (0x5e, 0x35, 0xb1);
const REFUSAL_RED: (u8, u8, u8) = (0xc6, 0x28, 0x28);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_scenario_shows_the_spa_request_the_jwks_call_and_the_401_in_chromium() {
    // Seeded fault: the backend never refetches the JWKS after a key rotation.
    let behaviour = Behaviour { refetch: Refetch::Never, ..Behaviour::default() };
    let mut ctx = Ctx::new(stub::env(behaviour).await);
    ctx.rotation_patience = Duration::from_millis(600);
    let report = scenarios::run(&mut ctx, &stub::scenarios(&["tokens.session_token", "tokens.key_rotation"]), |_| {}).await;
    ctx.into_env().shutdown().await;
    let rotation = report.result("tokens.key_rotation").expect("ran");
    assert_eq!(rotation.verdict, Verdict::Fail, "{:#?}", rotation.diagnosis);

    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = write_report(&report, dir.path());
    let dom = dump_dom(&url(&path, ""), dir.path());
    let failing = section(&dom, "tokens.key_rotation");
    assert!(failing.contains("data-verdict=\"fail\""), "the section is not marked failing");
    let hops = hops(failing);
    let first_spa = hops
        .iter()
        .position(|h| h.contains("data-from=\"spa\" data-to=\"backend\" data-method=\"GET\" data-path=\"/api/me\""))
        .unwrap_or_else(|| panic!("no SPA request GET /api/me in the timeline: {hops:#?}"));
    let jwks = hops
        .iter()
        .position(|h| h.contains("data-from=\"backend\" data-to=\"clerk\" data-method=\"GET\" data-path=\"/.well-known/jwks.json\""))
        .unwrap_or_else(|| panic!("no JWKS call from the backend to the mock in the timeline: {hops:#?}"));
    let refusal = hops
        .iter()
        .position(|h| h.contains("answer") && h.contains("data-from=\"backend\" data-to=\"spa\"") && h.contains("data-status=\"401\""))
        .unwrap_or_else(|| panic!("no 401 answer to the SPA in the timeline: {hops:#?}"));
    assert!(first_spa < jwks && jwks < refusal, "out of order: SPA request #{first_spa}, JWKS call #{jwks}, 401 #{refusal}");
    // The drawn labels say it too, as text a reader sees.
    assert!(failing.contains("GET /api/me") && failing.contains("/.well-known/jwks.json") && failing.contains("401 ·"), "labels missing");
    // The decoded token of the SPA's request: header and claims, no signature.
    assert!(failing.contains("&quot;kid&quot;") || failing.contains("\"kid\""), "the token's header is not shown");
    assert!(failing.contains("signature elided"), "the token is not shown as decoded with its signature elided");
    // The inline filter ran: every scenario is shown and the counter says so.
    assert!(dom.contains("<span id=\"shown\">2</span>"), "the filter script did not run");

    // The pixels: with only the failing scenario shown, the SPA's request arrow (blue-grey),
    // the JWKS call (purple) and a 401 answer (red) are drawn as long horizontal lines.
    let (_, width, _, rgba) = screenshot(&url(&path, "#only=tokens.key_rotation"), dir.path(), "failing.png", (1200, 1400));
    assert!(longest_row_of(SPA_BLUE_GREY, width, &rgba) >= 250, "no SPA request arrow in the screenshot");
    assert!(longest_row_of(CLERK_PURPLE, width, &rgba) >= 250, "no arrow to the mock Clerk in the screenshot");
    assert!(longest_row_of(REFUSAL_RED, width, &rgba) >= 180, "no 401 answer arrow in the screenshot");
    // …and with only the passing scenario (no Clerk call in its window, no refusal) neither
    // the purple nor the red arrow is there: the pixels come from the timeline.
    let (_, width, _, rgba) = screenshot(&url(&path, "#only=tokens.session_token"), dir.path(), "passing.png", (1200, 1400));
    assert!(longest_row_of(REFUSAL_RED, width, &rgba) < 100, "a red arrow where no request was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_retry_of_a_401_loop_is_a_turn_of_the_timeline() {
    // Seeded fault: no clock leeway, so tokens from a Clerk 3 s ahead are refused on every try.
    // The key rotation before it leaves the next scenario a fresh backend with a cold JWKS cache.
    let behaviour = Behaviour { leeway: Duration::ZERO, ..Behaviour::default() };
    let mut ctx = Ctx::new(stub::env(behaviour).await);
    ctx.rotation_patience = Duration::from_millis(600);
    let report = scenarios::run(&mut ctx, &stub::scenarios(&["tokens.key_rotation", "loops.clock_ahead"]), |_| {}).await;
    ctx.into_env().shutdown().await;
    let looped = report.result("loops.clock_ahead").expect("ran");
    assert_eq!(looped.verdict, Verdict::Fail, "{:#?}", looped.diagnosis);
    let turns: Vec<u32> = looped.exchanges.iter().filter(|h| h.from == scenarios::Party::Spa).filter_map(|h| h.turn).collect();
    assert_eq!(turns, [1, 2, 3, 4], "each try of the SPA is a turn");

    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = write_report(&report, dir.path());
    let dom = dump_dom(&url(&path, ""), dir.path());
    let section = section(&dom, "loops.clock_ahead");
    for turn in 1..=4 {
        assert!(section.contains(&format!("data-turn=\"{turn}\"")), "turn {turn} is not drawn");
    }
    let refusals = hops(section).iter().filter(|h| h.contains("answer") && h.contains("data-status=\"401\"")).count();
    assert_eq!(refusals, 4, "four 401 answers, one per turn");
    let (png, width, _, rgba) = screenshot(&url(&path, "#only=loops.clock_ahead"), dir.path(), "loop.png", (1080, 1320));
    if let Some(out) = std::env::var_os("REPORT_SCREENSHOT_OUT") {
        std::fs::copy(&png, &out).unwrap_or_else(|e| panic!("copy the screenshot to {out:?}: {e}"));
    }
    assert!(longest_row_of(REFUSAL_RED, width, &rgba) >= 180, "no 401 arrow in the loop's screenshot");
}

/// What a careless backend writes: its secrets and the bearer tokens it receives.
static LEAKED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn debug_logging_backend(ctx: &mut Ctx) -> scenarios::BoxFut<'_> {
    Box::pin(async move {
        let endpoint = ctx.token_endpoint()?;
        let me = ctx.sign_in("leaky")?;
        let token = ctx.env.spa().get_token(&me.session.id, &GetToken::ProfileDefault)?;
        let secret_key = ctx.env.mock().instance().secret_key().expose().to_string();
        let webhook_secret = ctx.env.mock().instance().webhook_secret().to_string();
        let pem = std::fs::read_to_string(ctx.env.interceptor().ca().key_file()).map_err(|e| scenarios::StepError::Other(e.to_string()))?;
        let logs = ctx.env.log_buffer().clone();
        logs.push(Stream::Stderr, &format!("DEBUG settings: CLERK_SECRET_KEY={secret_key} CLERK_WEBHOOK_SECRET={webhook_secret}"));
        logs.push(Stream::Stderr, &format!("DEBUG loaded the CA key:\n{pem}"));
        for line in pem.lines() {
            logs.push(Stream::Stderr, line);
        }
        logs.push(Stream::Stderr, &format!("DEBUG Authorization: Bearer {token}"));
        LEAKED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(token.clone());
        let got = ctx.call(&endpoint, &token).await?;
        // A refusal that echoes the token and the key (the stub answers what it is told to).
        Ok(Outcome::fail(format!("GET /api/me with {token}"), Some(got), format!("logged {secret_key}")))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_of_the_run_is_anywhere_in_the_report() {
    let leaky = Scenario {
        id: "tokens.debug_logging_backend",
        group: Group::Tokens,
        title: "a backend that logs its secrets and the tokens it gets",
        sends: "a valid token",
        expects: "-",
        class: "test",
        reason: None,
        fix: "-",
        isolation: Isolation::Shared,
        body: debug_logging_backend,
    };
    let mut list = stub::scenarios(&["tokens.session_token", "tokens.expired", "loops.session_id_by_mistake", "cors.error_has_cors_headers"]);
    list.push(leaky);
    let env = stub::env(Behaviour::default()).await;
    let secret_key = env.mock().instance().secret_key().expose().to_string();
    let webhook_secret = env.mock().instance().webhook_secret().to_string();
    let pem = std::fs::read_to_string(env.interceptor().ca().key_file()).expect("the CA key");
    let mut ctx = Ctx::new(env);
    let report = scenarios::run(&mut ctx, &list, |_| {}).await;
    // Every token the backend was sent, as its log would show it raw (the harness's log buffer).
    let raw_log = ctx.env.logs().join("\n");
    ctx.into_env().shutdown().await;
    assert_eq!(report.result("tokens.session_token").map(|r| r.verdict), Some(Verdict::Pass));

    let mut secrets: Vec<(String, String)> = vec![
        ("the secret key".into(), secret_key.clone()),
        ("the webhook secret".into(), webhook_secret.clone()),
        ("the webhook secret's key".into(), webhook_secret.trim_start_matches("whsec_").to_string()),
        ("the CA private key PEM".into(), pem.trim().to_string()),
    ];
    for line in pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16) {
        secrets.push(("a line of the CA private key".into(), line.to_string()));
    }
    let tokens = LEAKED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    assert!(!tokens.is_empty(), "the leaky scenario did not run");
    for token in &tokens {
        let signature = token.rsplit('.').next().unwrap_or_default();
        assert!(raw_log.contains(signature), "the raw log holds the token (the report must not)");
        secrets.push(("a token signature".into(), signature.to_string()));
    }
    // The SPA's tokens of the other scenarios: the report shows their claims; their signatures
    // are in no output.
    let shown_tokens = report.results.iter().flat_map(|r| &r.exchanges).filter(|h| h.token.is_some()).count();
    assert!(shown_tokens >= 3, "tokens are shown decoded ({shown_tokens})");

    let html = render(&report, Format::Html);
    let json = render(&report, Format::Json);
    let table = render(&report, Format::Table);
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what} is too short to test");
        assert!(!html.contains(secret.as_str()), "{what} is in the HTML report");
        assert!(!json.contains(secret.as_str()), "{what} is in the JSON report");
        assert!(!table.contains(secret.as_str()), "{what} is in the table report");
    }
    assert!(html.contains("[secret key]") && html.contains("[CA private key]") && html.contains("[webhook secret]"), "the redactions are shown");
    // No JWT in the file keeps a signature (whatever produced it).
    for (i, _) in html.match_indices("eyJ") {
        let word: String = html[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
        let parts: Vec<&str> = word.split('.').collect();
        assert!(parts.len() < 3 || parts[2].is_empty(), "a JWT with its signature in the report: {word}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_from_the_backend_is_shown_as_text_and_never_runs() {
    // JSON (shown verbatim), with markup in a string, as an API echoing its input would answer.
    const BODY: &str = r#"{"detail": "<script>document.body.setAttribute('data-pwned','body')</script><img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">"}"#;
    fn log_script(ctx: &mut Ctx) -> scenarios::BoxFut<'_> {
        Box::pin(async move {
            ctx.env.log_buffer().push(Stream::Stderr, "ERROR </pre></svg><script>document.body.setAttribute('data-pwned','log')</script>");
            ctx.expect_rejected("garbage", "not-a-jwt").await
        })
    }
    let logger = Scenario {
        id: "tokens.script_in_log",
        group: Group::Tokens,
        title: "a log line with <script>",
        sends: "<b>sent</b>",
        expects: "401",
        class: "<i>class</i>",
        reason: None,
        fix: "\"><script>document.body.setAttribute('data-pwned','fix')</script>",
        isolation: Isolation::Shared,
        body: log_script,
    };
    let behaviour = Behaviour { refusal_body: Some(BODY.into()), forbidden_instead_of_401: true, ..Behaviour::default() };
    let mut ctx = Ctx::new(stub::env(behaviour).await);
    let mut list = stub::scenarios(&["tokens.expired"]);
    list.push(logger);
    let report = scenarios::run(&mut ctx, &list, |_| {}).await;
    ctx.into_env().shutdown().await;
    assert!(report.results.iter().all(|r| r.verdict == Verdict::Fail), "both fail (403): {report:#?}");

    let dir = tempfile::tempdir().expect("temp dir");
    let (path, html) = write_report(&report, dir.path());
    assert!(!html.contains("<script>document") && !html.contains("<img src=x"), "backend markup reached the file unescaped");
    let dom = dump_dom(&url(&path, ""), dir.path());
    assert!(!dom.contains("data-pwned=\""), "a backend-provided script ran in the page");
    // …and a reader sees the markup as text.
    assert!(dom.contains("&lt;script&gt;document.body.setAttribute"), "the body's markup is not shown as text");
    assert!(section(&dom, "tokens.script_in_log").contains("&lt;/pre&gt;&lt;/svg&gt;&lt;script&gt;"), "the log line is not shown as text");
}
