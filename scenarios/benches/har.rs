//! Reading a big HAR: a 10,000-entry recording (the Chromium fixture `stale_jwks.har`'s
//! entries repeated: page, Frontend API token calls with their JWT bodies, backend calls with
//! Bearer tokens) parsed and analysed against the reference profile, as `clerk-harness replay`
//! does before it starts anything. Target: under 1 s (printed, not asserted).
//!
//! `cargo bench -p scenarios --bench har`

use std::path::Path;
use std::time::{Duration, Instant};

const ENTRIES: usize = 10_000;
const RUNS: usize = 5;

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("tests/fixtures/har/stale_jwks.har"))?)?;
    let source = fixture["log"]["entries"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(!source.is_empty(), "the fixture has no entries");
    let mut big = fixture.clone();
    big["log"]["entries"] = serde_json::Value::Array(source.iter().cycle().take(ENTRIES).cloned().collect());
    let bytes = serde_json::to_vec(&big)?;
    let profile = harness::Profile::from_file(root.join("../profiles/reference.toml"))?;
    let mut parse = vec![];
    let mut total = vec![];
    let mut calls = 0;
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let har = scenarios::internal::har::parse(&bytes)?;
        let t1 = Instant::now();
        let recording = scenarios::internal::analyse(&har, &profile)?;
        let t2 = Instant::now();
        calls = recording.calls.len();
        parse.push(t1 - t0);
        total.push(t2 - t0);
    }
    println!("HAR of {ENTRIES} entries ({:.1} MB, {calls} backend requests), {RUNS} runs:", bytes.len() as f64 / 1e6);
    println!("  parse            median {:>8.1} ms  (all: {})", ms(median(&parse)), all(&parse));
    println!("  parse + analyse  median {:>8.1} ms  (all: {})  target < 1000 ms", ms(median(&total)), all(&total));
    Ok(())
}

fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn all(samples: &[Duration]) -> String {
    samples.iter().map(|d| format!("{:.0}", ms(*d))).collect::<Vec<_>>().join(", ")
}
