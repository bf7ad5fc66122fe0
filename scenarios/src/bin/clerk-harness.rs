//! `clerk-harness`: runs the Clerk-auth scenario catalogue against a real backend.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use harness::{EnvChanges, HarnessConfig, Profile, Runtime, TestEnv};
use scenarios::report::{progress_line, render, Format};

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
    /// List the scenario catalogue.
    Scenarios,
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
}

#[derive(clap::Args)]
struct RunArgs {
    /// Backend profile (TOML), e.g. profiles/reference.toml.
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
    /// An already running backend (no restarts: environment scenarios are not applicable).
    #[arg(long)]
    backend_url: Option<url::Url>,
    /// Only scenarios whose id contains one of these comma-separated patterns.
    #[arg(long)]
    only: Option<String>,
    /// Seeded faults of the reference backend to switch on (REFERENCE_FAULTS), comma-separated.
    #[arg(long)]
    faults: Option<String>,
    /// Seconds one scenario may take, backend restarts included, before it ends in an
    /// `error` naming what hung (default: HARNESS_SCENARIO_TIMEOUT_SECS, else 30).
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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Scenarios => list(),
        Command::Run(args) => run(*args).await,
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clerk-harness: {}", error_chain(&e));
            std::process::ExitCode::from(2)
        }
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

fn list() -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    for s in scenarios::catalogue() {
        writeln!(out, "{:<30} {:?}\n    {}\n    sends:   {}\n    expects: {}", s.id, s.group, s.title, s.sends, s.expects)?;
    }
    Ok(0)
}

async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let mut config = HarnessConfig::from_env()?;
    if let Some(runtime) = args.runtime {
        config.runtime = match runtime {
            RuntimeArg::Auto => Runtime::Auto,
            RuntimeArg::Docker => Runtime::Docker,
            RuntimeArg::Local => Runtime::Local,
        };
    }
    if let Some(dir) = args.backend_dir {
        config.backend_dir = Some(dir);
    }
    config.backend_env.extend(args.env);
    if let Some(url) = args.backend_url {
        config.backend_url = Some(url);
        config.backend = Some(harness::BackendMode::Url);
    }
    if let Some(secs) = args.scenario_timeout {
        config.scenario_timeout = Some(std::time::Duration::from_secs(secs));
    }
    if let Some(secs) = args.request_timeout {
        config.request_timeout = Some(std::time::Duration::from_secs(secs));
    }
    let profile = Profile::from_file(&args.profile)?;
    let selected = scenarios::matching(args.only.as_deref());
    anyhow::ensure!(!selected.is_empty(), "no scenario matches --only {:?}; see `clerk-harness scenarios`", args.only);
    let mut changes = EnvChanges::new();
    if let Some(faults) = &args.faults {
        changes = changes.set("REFERENCE_FAULTS", faults.clone());
    }
    eprintln!("clerk-harness: bringing up profile {} …", profile.name.get());
    let started = std::time::Instant::now();
    let env = TestEnv::builder(profile).config(config).env(changes).start().await.context("the environment did not come up")?;
    eprintln!("clerk-harness: {} (ready in {:.1} s)", env.choice().reason.trim_start_matches("clerk-harness: "), started.elapsed().as_secs_f64());
    let mut ctx = scenarios::Ctx::new(env);
    let total = selected.len();
    let mut index = 0;
    let report = scenarios::run(&mut ctx, &selected, |r| {
        index += 1;
        eprintln!("{}", progress_line(index, total, r));
    })
    .await;
    let format = match args.format {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
        FormatArg::Junit => Format::Junit,
    };
    let text = render(&report, format);
    match &args.output {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => println!("{text}"),
    }
    if format != Format::Table && args.output.is_some() {
        eprintln!("{}", render(&report, Format::Table));
    }
    Ok(report.exit_code())
}
