//! Shared by the suites: environments on the reference backend and report printing.
#![allow(dead_code)]

use std::path::PathBuf;

use harness::{EnvChanges, HarnessConfig, Profile, TestEnv};
use scenarios::{render, Format};
use scenarios::{Ctx, Report, Scenario};

/// `profiles/<name>.toml` of this repository.
pub fn profile(name: &str) -> Profile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("profiles").join(format!("{name}.toml"));
    Profile::from_file(&path).unwrap_or_else(|e| panic!("profile {}: {e}", path.display()))
}

/// Runs `scenarios` on a fresh environment of `profile` with `faults` switched on.
pub async fn run(profile: Profile, config: HarnessConfig, faults: Option<&str>, scenarios: &[Scenario]) -> Report {
    let mut changes = EnvChanges::new();
    if let Some(f) = faults {
        changes = changes.set("REFERENCE_FAULTS", f);
    }
    let env = TestEnv::builder(profile).config(config).env(changes).start().await.unwrap_or_else(|e| panic!("environment: {e}"));
    let mut ctx = Ctx::new(env);
    let report = scenarios::run(&mut ctx, scenarios, |r| eprintln!("{} {:?} {} ms", r.id, r.verdict, r.duration_ms)).await;
    eprintln!("{}", render(&report, Format::Table));
    report
}
