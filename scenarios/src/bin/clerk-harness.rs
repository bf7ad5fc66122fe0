//! `clerk-harness`: runs the Clerk-auth scenario catalogue against a real backend.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use harness::{EnvChanges, HarnessConfig, Profile, Runtime, TestEnv};
use scenarios::{progress_line, render, Format};

/// Replays every way Clerk auth goes wrong — expired, wrong audience, session id instead of
/// JWT, missing env, CORS preflight, user sync, webhooks, 401 loops — against your REAL
/// backend, offline, with a mock Clerk, and explains each failure.
#[derive(Parser)]
#[command(name = "clerk-harness", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring up Postgres, the mock Clerk and the backend of a profile, and run the scenarios.
    Run(Box<RunArgs>),
    /// Replay a browser's recording (HAR) of a 401 loop against the backend of a profile: does
    /// the loop reproduce, at which request, and why. A reproduced loop is written as a replay
    /// file beside the profile (no token, cookie or id of the HAR in it), which `run` runs as a
    /// scenario from then on. Exit code 1 when the loop reproduces, 0 when it does not, 2 when
    /// it could not be judged.
    Replay(Box<ReplayArgs>),
    /// List the scenario catalogue.
    Scenarios(ListArgs),
    /// Bring up Postgres, the mock Clerk and the backend of a profile and keep them running for
    /// your own tests: prints ONE JSON line on stdout (backend_url, spa_origin, and the mock's
    /// fapi_url, api_url, jwks_url, secret_key… under "mock"), then waits for Ctrl-C/SIGTERM.
    Up(Box<UpArgs>),
    /// Remove what crashed runs left behind: processes, temp dirs, containers and networks
    /// whose harness process is gone. A live run's are never touched.
    Clean,
    /// The watchdog of a run (started by `run` itself).
    #[command(name = "__reaper", hide = true)]
    Reaper,
}

#[derive(Clone, Copy, ValueEnum)]
enum RuntimeArg {
    Auto,
    Docker,
    Local,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Table,
    Json,
    Junit,
    Html,
}

#[derive(clap::Args)]
struct ListArgs {
    /// `table` for people, `json` for tools: [{id, group, title, sends, expects}, …],
    /// `markdown` for the catalogue's reference page (docs/catalogue.md is its output).
    #[arg(long, value_enum, default_value = "table")]
    format: ListFormat,
    /// Only scenarios whose id contains one of these comma-separated patterns (as `run --only`).
    #[arg(long)]
    only: Option<String>,
    /// Also list the replays of this profile (`<profile>.replays/*.toml`, written by `replay`),
    /// which `run --profile` runs after the catalogue.
    #[arg(long)]
    profile: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Table,
    Json,
    Markdown,
}

#[derive(clap::Args)]
struct UpArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Also tear down when standard input closes (a parent test runner that dies closes it).
    #[arg(long)]
    until_stdin_closes: bool,
}

/// The backend to bring up: what `run` and `up` share.
#[derive(clap::Args)]
struct BackendArgs {
    /// Backend profile (TOML), e.g. profiles/reference.toml, or a pyproject.toml whose
    /// [tool.clerk-harness] table is the profile.
    #[arg(long)]
    profile: PathBuf,
    /// Where Postgres and the backend run (default: HARNESS_RUNTIME, else auto).
    #[arg(long, value_enum)]
    runtime: Option<RuntimeArg>,
    /// The backend's source folder, for profiles whose command runs from your checkout.
    #[arg(long)]
    backend_dir: Option<PathBuf>,
    /// One more variable for the backend, over the profile's [env] (repeatable); VALUE may use
    /// the profile placeholders, e.g. --env PYTHONPATH=/opt/stubs --env DB={database_url_asyncpg}.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = env_arg)]
    env: Vec<(String, String)>,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// An already running backend (no restarts: environment scenarios are not applicable).
    #[arg(long)]
    backend_url: Option<url::Url>,
    /// Only scenarios whose id contains one of these comma-separated patterns.
    #[arg(long)]
    only: Option<String>,
    /// Seeded faults of the reference backend to switch on (REFERENCE_FAULTS), comma-separated.
    #[arg(long)]
    faults: Option<String>,
    /// Seconds one scenario may take, not counting the backend starts it waits for (each
    /// bounded by the profile's ready_timeout_secs), before it ends in an `error` naming what
    /// hung (default: HARNESS_SCENARIO_TIMEOUT_SECS, else 30).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    scenario_timeout: Option<u64>,
    /// Seconds one request to the backend may take (default: HARNESS_REQUEST_TIMEOUT_SECS, else 10).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout: Option<u64>,
    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    format: FormatArg,
    /// Write the report here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Also write the HTML report here (one self-contained file: a summary, and per scenario
    /// its diagnosis and a timeline of every request SPA → backend → Clerk), whatever --format is.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Stop the whole run after this long (e.g. 90s, 10m, 1h30m): clean teardown, exit 2.
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<std::time::Duration>,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The browser's recording: DevTools → Network → "Save all as HAR" (.har, or .har.gz).
    #[arg(long)]
    har: PathBuf,
    /// The replay file's name (scenario `replay.NAME`; default: the HAR's file name).
    #[arg(long)]
    name: Option<String>,
    /// Do not write the replay file, even when the loop reproduces.
    #[arg(long)]
    no_write: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// `90s`, `10m`, `1h30m`, `500ms`, or plain seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{text:?} is not a duration: write e.g. 90s, 10m, 1h30m or 500ms");
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total = std::time::Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => std::time::Duration::from_millis(value),
            "s" => std::time::Duration::from_secs(value),
            "m" => std::time::Duration::from_secs(value * 60),
            "h" => std::time::Duration::from_secs(value * 3600),
            _ => return Err(bad()),
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    if total.is_zero() {
        return Err(format!("{text:?}: the timeout must be longer than zero"));
    }
    Ok(total)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // The watchdog and `clean` work without an async runtime (they make their own for Docker).
    match cli.command {
        Command::Reaper => return reaper(),
        Command::Clean => return clean(),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("clerk-harness: could not start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async {
        let result = match cli.command {
            Command::Run(args) => {
                let phase = Phase::default();
                let timeout = args.timeout;
                return interruptible(run(*args, phase.clone()), timeout, phase).await;
            }
            Command::Replay(args) => {
                let phase = Phase::default();
                let timeout = args.run.timeout;
                return interruptible(replay(*args, phase.clone()), timeout, phase).await;
            }
            Command::Up(args) => up(*args).await,
            Command::Scenarios(args) => list(&args),
            Command::Clean | Command::Reaper => Ok(0),
        };
        outcome(result)
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    // Everything was torn down: the watchdog exits without acting (or removes what is left).
    let left = harness::internal::finish_watchdog();
    if left > 0 {
        eprintln!("clerk-harness: the watchdog removed {left} resource(s) the teardown had left");
    }
    code
}

fn outcome(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clerk-harness: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

fn reaper() -> ExitCode {
    if let Some(report) = harness::internal::serve_reaper() {
        if !report.is_empty() {
            eprintln!("clerk-harness watchdog: run {} (pid {}) ended without its teardown: {report}", report.run, report.owner);
        }
    }
    ExitCode::SUCCESS
}

fn clean() -> ExitCode {
    let report = harness::internal::clean();
    eprintln!("clerk-harness clean: {report}");
    if report.live_skipped > 0 {
        eprintln!("clerk-harness clean: left {} resource(s) of runs that are still alive", report.live_skipped);
    }
    if !report.unmarked.is_empty() {
        let dirs: Vec<String> = report.unmarked.iter().map(|d| d.display().to_string()).collect();
        eprintln!("clerk-harness clean: left alone (no owner marker; remove by hand if no harness runs): {}", dirs.join(", "));
    }
    if report.survivors.is_empty() && report.problems.iter().all(|p| p.starts_with("Docker: ")) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// What the run is doing now: the scenario and the step within it, for the interrupt message.
#[derive(Clone, Default)]
struct Phase(std::sync::Arc<std::sync::Mutex<(String, String)>>);

impl Phase {
    fn set_outer(&self, outer: impl Into<String>) {
        let mut p = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *p = (outer.into(), String::new());
    }

    fn set_inner(&self, inner: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1 = inner.to_owned();
    }

    fn describe(&self) -> String {
        let (outer, inner) = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match (outer.is_empty(), inner.is_empty()) {
            (false, false) => format!("{outer} ({inner})"),
            (false, true) => outer,
            (true, false) => inner,
            (true, true) => "starting".into(),
        }
    }
}

/// `run` that ends cleanly on SIGINT (130), SIGTERM (143) or `--timeout` (2): the run's
/// future is dropped, so every guard tears its piece down; a second signal exits at once and
/// leaves the rest to the watchdog.
async fn interruptible(work: impl std::future::Future<Output = anyhow::Result<u8>>, timeout: Option<std::time::Duration>, phase: Phase) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    start_watchdog();
    let (Ok(mut sigint), Ok(mut sigterm)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        eprintln!("clerk-harness: could not install the SIGINT/SIGTERM handlers");
        return ExitCode::from(2);
    };
    let mut work = Box::pin(work);
    let deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let (why, code) = tokio::select! {
        result = &mut work => return outcome(result),
        _ = sigint.recv() => ("SIGINT received".to_owned(), 130u8),
        _ = sigterm.recv() => ("SIGTERM received".to_owned(), 143),
        () = deadline => (format!("the run timed out after {}", humanize(timeout.unwrap_or_default())), 2),
    };
    eprintln!("clerk-harness: {why} while {}; tearing down (a second Ctrl-C forces the exit) …", phase.describe());
    tokio::spawn(async move {
        tokio::select! {
            _ = sigint.recv() => {},
            _ = sigterm.recv() => {},
        }
        eprintln!("clerk-harness: second signal: exiting now; the watchdog removes what is left");
        std::process::exit(i32::from(code));
    });
    let started = std::time::Instant::now();
    // Dropping the run drops the environment: backend group, Postgres, containers, temp dirs.
    drop(work);
    eprintln!("clerk-harness: torn down in {:.1} s", started.elapsed().as_secs_f64());
    ExitCode::from(code)
}

/// The watchdog process that removes this run's resources if it dies without its teardown.
fn start_watchdog() {
    let watchdog_off = std::env::var("HARNESS_REAPER").is_ok_and(|v| matches!(v.as_str(), "off" | "0" | "none" | "false"));
    if let (Ok(exe), false) = (std::env::current_exe(), watchdog_off) {
        if let Err(e) = harness::internal::start_watchdog(&exe, std::process::Stdio::inherit()) {
            eprintln!("clerk-harness: warning: no watchdog ({e}); a kill -9 of this process would leave processes and temp dirs behind");
        }
    }
}

fn humanize(d: std::time::Duration) -> String {
    if d.subsec_millis() != 0 || d.as_secs() == 0 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

/// The error and its causes, each cause only if the text so far does not already say it
/// (library errors often include their source in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

fn env_arg(arg: &str) -> Result<(String, String), String> {
    harness::parse_env_arg(arg).map_err(|e| e.to_string())
}

/// The catalogue's scenarios matching `only`, then the replays of the profile at `profile`
/// (its `<stem>.replays/*.toml`) matching it: what `run` runs and `scenarios` lists.
fn selection(only: Option<&str>, profile: Option<&std::path::Path>) -> anyhow::Result<(Vec<scenarios::Scenario>, Vec<scenarios::ReplayFile>)> {
    let mut selected = scenarios::matching(only);
    let replays: Vec<scenarios::ReplayFile> = match profile {
        Some(path) => scenarios::load_replays(path)?.into_iter().filter(|f| only.is_none_or(|p| p.split(',').any(|p| f.id().contains(p.trim())))).collect(),
        None => vec![],
    };
    selected.extend(scenarios::replay_scenarios(&replays));
    anyhow::ensure!(!selected.is_empty(), "no scenario matches --only {only:?}; see `clerk-harness scenarios`");
    Ok((selected, replays))
}

fn list(args: &ListArgs) -> anyhow::Result<u8> {
    let (selected, _) = selection(args.only.as_deref(), args.profile.as_deref())?;
    anyhow::ensure!(!selected.is_empty(), "no scenario matches --only {:?}; see `clerk-harness scenarios`", args.only);
    let mut out = std::io::stdout().lock();
    if args.format == ListFormat::Markdown {
        write!(out, "{}", scenarios::catalogue_markdown(&selected))?;
        return Ok(0);
    }
    if args.format == ListFormat::Json {
        let list: Vec<_> =
            selected.iter().map(|s| serde_json::json!({"id": s.id, "group": s.group, "title": s.title, "sends": s.sends, "expects": s.expects})).collect();
        writeln!(out, "{}", serde_json::Value::Array(list))?;
        return Ok(0);
    }
    for s in selected {
        writeln!(out, "{:<30} {:?}\n    {}\n    sends:   {}\n    expects: {}", s.id, s.group, s.title, s.sends, s.expects)?;
    }
    Ok(0)
}

async fn run(args: RunArgs, phase: Phase) -> anyhow::Result<u8> {
    let profile = Profile::from_file(&args.backend.profile)?;
    let (selected, replays) = selection(args.only.as_deref(), Some(&args.backend.profile))?;
    let mut ctx = scenarios::Ctx::new(start_env(&args, profile, &phase).await?);
    ctx.replays = replays;
    let total = selected.len();
    let mut index = 0;
    phase.set_outer(format!("running scenario {}", selected[0].id));
    let report = scenarios::run(&mut ctx, &selected, |r| {
        index += 1;
        eprintln!("{}", progress_line(index, total, r));
        match selected.get(index) {
            Some(next) => phase.set_outer(format!("running scenario {}", next.id)),
            None => phase.set_outer("finishing"),
        }
    })
    .await;
    phase.set_outer("tearing down");
    ctx.into_env().shutdown().await;
    write_report(&args, &report)?;
    Ok(report.exit_code())
}

/// `replay`: the HAR is read and judged against the profile before anything starts.
async fn replay(args: ReplayArgs, phase: Phase) -> anyhow::Result<u8> {
    if let Some(only) = &args.run.only {
        anyhow::bail!(
            "replay runs the recording alone (as replay.NAME), so --only {only:?} would be ignored: drop it, or run the written replay with the catalogue: `clerk-harness run --profile P --only replay.`"
        );
    }
    let profile = Profile::from_file(&args.run.backend.profile)?;
    let recording = scenarios::read_har(&args.har, &profile)?;
    let name = args.name.clone().unwrap_or_else(|| scenarios::internal::name_from(&args.har));
    eprintln!("clerk-harness: {}", scenarios::internal::describe(&recording));
    let mut file = scenarios::ReplayFile::new(&name, recording);
    phase.set_outer("replaying the recording");
    let mut ctx = scenarios::Ctx::new(start_env(&args.run, profile, &phase).await?);
    let report = scenarios::run_replays(&mut ctx, std::slice::from_ref(&file)).await;
    ctx.into_env().shutdown().await;
    write_report(&args.run, &report)?;
    let result = report.results.first();
    let cause = result.and_then(|r| r.diagnosis.as_ref()).and_then(|d| d.cause.as_ref()).map(|c| c.id.clone());
    match result.map(|r| r.verdict) {
        Some(scenarios::Verdict::Fail | scenarios::Verdict::Warn) => {
            if !args.no_write {
                file.found = cause;
                let path = scenarios::write_replay(&args.run.backend.profile, &file)?;
                eprintln!(
                    "clerk-harness: the loop is written as {} — `clerk-harness run --profile {}` replays it as {}",
                    path.display(),
                    args.run.backend.profile.display(),
                    file.id()
                );
            }
            Ok(1)
        }
        Some(scenarios::Verdict::Pass) => {
            eprintln!("clerk-harness: the recorded conversation replays without a 401 loop");
            Ok(0)
        }
        _ => Ok(2),
    }
}

/// The harness settings from the environment, with the command line's choices over them.
fn harness_config(args: &BackendArgs) -> anyhow::Result<HarnessConfig> {
    let mut config = HarnessConfig::from_env()?;
    if let Some(runtime) = args.runtime {
        config.runtime = match runtime {
            RuntimeArg::Auto => Runtime::Auto,
            RuntimeArg::Docker => Runtime::Docker,
            RuntimeArg::Local => Runtime::Local,
        };
    }
    if let Some(dir) = args.backend_dir.clone() {
        config.backend_dir = Some(dir);
    }
    config.backend_env.extend(args.env.iter().cloned());
    Ok(config)
}

/// `up`: the environment of `run`, kept alive for the caller's own tests until a signal (or
/// the end of stdin), then torn down like a run.
async fn up(args: UpArgs) -> anyhow::Result<u8> {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut sigint, mut sigterm) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    start_watchdog();
    let profile = Profile::from_file(&args.backend.profile)?;
    let config = harness_config(&args.backend)?;
    eprintln!("clerk-harness: up {} (pid {}): bringing up profile {} …", harness::internal::run_id(), std::process::id(), profile.name.get());
    let env = tokio::select! {
        env = TestEnv::builder(profile).config(config).progress(|step| eprintln!("clerk-harness: {step} …")).start() => {
            env.context("the environment did not come up")?
        }
        _ = sigint.recv() => return Ok(130),
        _ = sigterm.recv() => return Ok(143),
    };
    let mock = env.mock();
    let mut mock_info = mock.info();
    if let Some(obj) = mock_info.as_object_mut() {
        obj.insert("fapi_url".into(), mock.fapi_url().into());
        obj.insert("api_url".into(), mock.api_url().into());
        obj.insert("jwks_url".into(), mock.jwks_url().into());
    }
    let ready = serde_json::json!({
        "backend_url": env.backend_url().as_str(),
        "spa_origin": env.profile().spa_origin(),
        "profile": env.profile().name.get(),
        "environment": env.choice().reason,
        "mock": mock_info,
    });
    println!("{ready}");
    std::io::stdout().flush()?;
    eprintln!("clerk-harness: up and ready: the backend at {} (Ctrl-C or SIGTERM tears it down)", env.backend_url());
    let stdin_closed = async {
        if args.until_stdin_closes {
            // A blocking read on its own thread: stdin is not a pollable pipe everywhere.
            let _ = tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = sigint.recv() => {},
        _ = sigterm.recv() => {},
        () = stdin_closed => {},
    }
    eprintln!("clerk-harness: tearing down …");
    env.shutdown().await;
    Ok(0)
}

/// Brings up the profile's environment with the run's options.
async fn start_env(args: &RunArgs, profile: Profile, phase: &Phase) -> anyhow::Result<TestEnv> {
    let mut config = harness_config(&args.backend)?;
    if let Some(url) = args.backend_url.clone() {
        config.backend_url = Some(url);
        config.backend = Some(harness::BackendMode::Url);
    }
    if let Some(secs) = args.scenario_timeout {
        config.scenario_timeout = Some(std::time::Duration::from_secs(secs));
    }
    if let Some(secs) = args.request_timeout {
        config.request_timeout = Some(std::time::Duration::from_secs(secs));
    }
    let mut changes = EnvChanges::new();
    if let Some(faults) = &args.faults {
        changes = changes.set("REFERENCE_FAULTS", faults.clone());
    }
    eprintln!("clerk-harness: run {} (pid {}): bringing up profile {} …", harness::internal::run_id(), std::process::id(), profile.name.get());
    phase.set_outer("bringing up the environment");
    let started = std::time::Instant::now();
    let steps = phase.clone();
    let env = TestEnv::builder(profile)
        .config(config)
        .env(changes)
        .progress(move |step| {
            steps.set_inner(step);
            eprintln!("clerk-harness: {step} …");
        })
        .start()
        .await
        .context("the environment did not come up")?;
    eprintln!("clerk-harness: {} (ready in {:.1} s)", env.choice().reason.trim_start_matches("clerk-harness: "), started.elapsed().as_secs_f64());
    Ok(env)
}

/// Writes the report as `--format`, `--output` and `--html` say.
fn write_report(args: &RunArgs, report: &scenarios::Report) -> anyhow::Result<()> {
    let format = match args.format {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
        FormatArg::Junit => Format::Junit,
        FormatArg::Html => Format::Html,
    };
    if let Some(path) = &args.html {
        std::fs::write(path, render(report, Format::Html)).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("clerk-harness: HTML report written to {}", path.display());
    }
    let text = render(report, format);
    match &args.output {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => println!("{text}"),
    }
    if format != Format::Table && args.output.is_some() {
        eprintln!("{}", render(report, Format::Table));
    }
    Ok(())
}
