//! Bring-up benchmark: per runtime, the median of 5 of
//! - the Postgres server alone,
//! - a whole `TestEnv::start` (mock, proxy, Postgres, template, database, backend),
//! - a backend restart (fresh database from the template + the backend's own start),
//!
//! with the phases of the whole start (the profile's setup and the backend's start are the
//! backend's own code; the rest is the harness's share), a fresh
//! database cloned from the template (median of 20), and the harness process's RSS.
//!
//! `cargo bench -p harness --bench bringup` (Docker rows need the daemon and the images from
//! `.ci/images/build.sh`; they are skipped with the reason otherwise). `BENCH_RUNS` overrides 5.

use std::time::{Duration, Instant};

use harness::internal::{BinSpec, PgServer, ServerSpec};
use harness::{EnvChanges, HarnessConfig, Profile, Runtime, TestEnv};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn fmt(samples: &[Duration]) -> String {
    let all: Vec<String> = samples.iter().map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0)).collect();
    format!("median {:>7.0} ms   (runs: {} ms)", median(samples.to_vec()).as_secs_f64() * 1000.0, all.join(", "))
}

fn rss() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or_else(|| "?".to_owned(), |kb| format!("{:.1} MiB", kb as f64 / 1024.0))
    };
    format!("current {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}

async fn bench_runtime(name: &str, config: HarnessConfig, spec: ServerSpec, runs: usize) -> anyhow::Result<()> {
    let profile = Profile::reference()?;
    let mut server = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let s = PgServer::start(&spec).await?;
        server.push(t.elapsed());
        drop(s);
    }
    println!("{name:>7} | postgres server start        | {}", fmt(&server));

    let mut whole = Vec::new();
    let mut restart = Vec::new();
    let mut phases = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut env = TestEnv::builder(profile.clone()).config(config.clone()).start().await?;
        whole.push(t.elapsed());
        phases.push(env.bring_up_times());
        let t = Instant::now();
        env.restart_backend_with(EnvChanges::new()).await?;
        restart.push(t.elapsed());
        drop(env);
    }
    println!("{name:>7} | TestEnv::start (everything)  | {}", fmt(&whole));
    println!("{name:>7} | backend restart (db + start) | {}", fmt(&restart));
    let pick = |f: fn(&harness::BringUpTimes) -> Duration| phases.iter().map(f).collect::<Vec<_>>();
    println!("{name:>7} |  - postgres (+ mock, proxy)  | {}", fmt(&pick(|t| t.postgres_and_mock)));
    println!("{name:>7} |  - routing, clock           | {}", fmt(&pick(|t| t.clock)));
    println!("{name:>7} |  - template: profile setup   | {}", fmt(&pick(|t| t.template)));
    println!("{name:>7} |  - database from template    | {}", fmt(&pick(|t| t.database)));
    println!("{name:>7} |  - backend start to healthy  | {}", fmt(&pick(|t| t.backend)));
    println!("{name:>7} | bring-up minus backend code  | {}", fmt(&pick(harness::BringUpTimes::harness_share)));
    Ok(())
}

async fn bench_clone(runs: usize) -> anyhow::Result<()> {
    let server = std::sync::Arc::new(PgServer::start(&ServerSpec::Local { bins: BinSpec::default(), listen_extra: None }).await?);
    let ddl = "CREATE TABLE users (id serial primary key, email varchar(255) unique, clerk_user_id varchar(255) unique, \
               first_name varchar(255), last_name varchar(255), created_at timestamptz default now())";
    let template = server
        .template("bench", |url, _| async move {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
                .await
                .map_err(|e| harness::HarnessError::Database { what: "bench".into(), source: e })?;
            sqlx::raw_sql(ddl).execute(&mut conn).await.map_err(|e| harness::HarnessError::Database { what: "bench".into(), source: e })?;
            Ok(())
        })
        .await?;
    let mut samples = Vec::new();
    let mut keep = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        keep.push(server.create_database(Some(&template)).await?);
        samples.push(t.elapsed());
    }
    println!("  local | fresh database from template | {}", fmt(&samples));
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful either way.
    let runs = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    println!("clerk-harness bring-up, {runs} runs each, {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!("runtime | what                         | time");

    let local = HarnessConfig { runtime: Runtime::Local, ..HarnessConfig::default() };
    bench_runtime("local", local, ServerSpec::Local { bins: BinSpec::default(), listen_extra: None }, runs).await?;

    let image = std::env::var("HARNESS_POSTGRES_IMAGE").unwrap_or_else(|_| "clerk-harness/postgres:15".into());
    let docker_ready = match harness::internal::connect().await {
        Ok(docker) => {
            let pg = harness::internal::image_present(&docker, &image).await.unwrap_or(false);
            let backend = harness::internal::image_present(&docker, "clerk-harness/reference-backend:latest").await.unwrap_or(false);
            if pg && backend {
                Ok(())
            } else {
                Err(format!("images missing ({image}: {pg}, clerk-harness/reference-backend:latest: {backend}); run .ci/images/build.sh"))
            }
        }
        Err(e) => Err(e.to_string()),
    };
    match docker_ready {
        Ok(()) => {
            let docker = HarnessConfig { runtime: Runtime::Docker, postgres_image: Some(image.clone()), ..HarnessConfig::default() };
            bench_runtime("docker", docker, ServerSpec::Docker { image }, runs).await?;
        }
        Err(why) => println!(" docker | skipped: {why}"),
    }

    bench_clone(20).await?;
    println!("harness process RSS: {}", rss());
    Ok(())
}
