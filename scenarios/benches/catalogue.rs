//! The whole catalogue on the reference backend, as `clerk-harness run` does it: per runtime,
//! `BENCH_RUNS` runs (default 3) of a bring-up (`TestEnv::start`, the template database warm
//! after the first) followed by every scenario, with
//! - the bring-up and the scenarios' time (medians, and every run),
//! - the part of it spent in the scenarios with backends of their own (restarts of the
//!   shared one, or backends started beside it) and the rest,
//! - the verdicts (the clean reference backend: every scenario `pass` or `not_applicable`).
//!
//! `cargo bench -p scenarios --bench catalogue` (the Docker rows need the daemon and the
//! images from `.ci/images/build.sh`; they are skipped with the reason otherwise; the local
//! rows need the reference backend's virtualenv: `backends/reference/install.sh`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::{HarnessConfig, Profile, Runtime, TestEnv};
use scenarios::{Ctx, Isolation, Verdict};

struct Run {
    bring_up: Duration,
    scenarios: Duration,
    fresh: Duration,
    verdicts: BTreeMap<&'static str, usize>,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn row(samples: Vec<Duration>) -> String {
    let all: Vec<String> = samples.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect();
    format!("median {:>5.2} s   (runs: {} s)", median(samples).as_secs_f64(), all.join(", "))
}

fn word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Warn => "warn",
        Verdict::Fail => "fail",
        Verdict::Error => "error",
        Verdict::NotApplicable => "n/a",
    }
}

async fn one_run(config: HarnessConfig) -> anyhow::Result<Run> {
    let catalogue = scenarios::catalogue();
    let t0 = Instant::now();
    let env = TestEnv::builder(Profile::reference()?).config(config).start().await?;
    let bring_up = t0.elapsed();
    let mut ctx = Ctx::new(env);
    let t1 = Instant::now();
    let report = scenarios::run(&mut ctx, &catalogue, |_| {}).await;
    let scenarios = t1.elapsed();
    let mut fresh = Duration::ZERO;
    let mut verdicts = BTreeMap::new();
    for (scenario, result) in catalogue.iter().zip(&report.results) {
        if matches!(scenario.isolation, Isolation::FreshBackend | Isolation::Beside) {
            fresh += Duration::from_millis(result.duration_ms);
        }
        *verdicts.entry(word(result.verdict)).or_default() += 1;
    }
    drop(ctx);
    Ok(Run { bring_up, scenarios, fresh, verdicts })
}

async fn bench_runtime(name: &str, config: HarnessConfig, runs: usize) -> anyhow::Result<()> {
    let mut all = vec![];
    for _ in 0..runs {
        all.push(one_run(config.clone()).await?);
    }
    let pick = |f: fn(&Run) -> Duration| all.iter().map(f).collect::<Vec<_>>();
    println!("{name:>6} | bring-up (TestEnv::start)         | {}", row(pick(|r| r.bring_up)));
    println!("{name:>6} | all {} scenarios                  | {}", scenarios::catalogue().len(), row(pick(|r| r.scenarios)));
    println!("{name:>6} |  - backends of their own (F, B)  | {}", row(pick(|r| r.fresh)));
    println!("{name:>6} |  - the others                    | {}", row(pick(|r| r.scenarios.saturating_sub(r.fresh))));
    let verdicts: Vec<String> = all.iter().map(|r| r.verdicts.iter().map(|(v, n)| format!("{n} {v}")).collect::<Vec<_>>().join(" ")).collect();
    println!("{name:>6} | verdicts per run                 | {}", verdicts.join(" / "));
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let runs = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    println!("the catalogue on the reference backend, {runs} runs each, {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!("runtime | what                             | time");
    bench_runtime("local", HarnessConfig { runtime: Runtime::Local, ..HarnessConfig::default() }, runs).await?;
    let docker_ready = match harness::internal::connect().await {
        Ok(docker) => {
            let mut missing = vec![];
            for image in ["clerk-harness/postgres:15", "clerk-harness/reference-backend:latest"] {
                if !harness::internal::image_present(&docker, image).await.unwrap_or(false) {
                    missing.push(image);
                }
            }
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("images missing ({}); run .ci/images/build.sh", missing.join(", ")))
            }
        }
        Err(e) => Err(e.to_string()),
    };
    match docker_ready {
        Ok(()) => {
            let config = HarnessConfig { runtime: Runtime::Docker, postgres_image: Some("clerk-harness/postgres:15".into()), ..HarnessConfig::default() };
            bench_runtime("docker", config, runs).await?;
        }
        Err(why) => println!("docker | skipped: {why}"),
    }
    Ok(())
}
