//! `clerk-harness replay` as users run it: a bad HAR is refused before anything starts, a
//! reproduced loop is written beside the profile, and `clerk-harness run` then runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn clerk_harness(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_clerk-harness")).args(args).output().expect("run clerk-harness");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> String {
    root().join("scenarios/tests/fixtures/har").join(format!("{name}.har")).display().to_string()
}

/// The reference profile copied into `dir` (its backend folder made absolute), so replay
/// files are written there.
fn profile_copy(dir: &Path) -> String {
    let text = std::fs::read_to_string(root().join("profiles/reference.toml")).expect("profile");
    let backend = root().join("backends/reference");
    let text = text.replace("cwd = \"../backends/reference\"", &format!("cwd = {:?}", backend.display().to_string()));
    let path = dir.join("mine.toml");
    std::fs::write(&path, text).expect("profile copy");
    path.display().to_string()
}

#[test]
fn a_malformed_har_is_refused_naming_the_entry_before_anything_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let har = dir.path().join("bad.har");
    std::fs::write(&har, r#"{"log":{"entries":[{"startedDateTime":"2026-12-06T06:20:00Z","request":{"method":"GET","url":"http://x/"},"response":{"status":200}},{"request":{}}]}}"#).expect("write");
    let profile = root().join("profiles/reference.toml").display().to_string();
    let (code, _, stderr) = clerk_harness(&["replay", "--har", &har.display().to_string(), "--profile", &profile]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("malformed HAR at log.entries[1]"), "{stderr}");
    assert!(!stderr.contains("bringing up"), "nothing starts for a bad HAR: {stderr}");
}

#[test]
fn only_is_refused_by_replay_instead_of_ignored() {
    let profile = root().join("profiles/reference.toml").display().to_string();
    let (code, _, stderr) = clerk_harness(&["replay", "--har", &fixture("healthy"), "--profile", &profile, "--only", "tokens."]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--only \"tokens.\" would be ignored"), "{stderr}");
    assert!(!stderr.contains("bringing up"), "nothing starts: {stderr}");
}

#[test]
fn a_reproduced_loop_is_written_beside_the_profile_and_run_picks_it_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = profile_copy(dir.path());
    let (code, stdout, stderr) =
        clerk_harness(&["replay", "--har", &fixture("stale_jwks"), "--profile", &profile, "--runtime", "local", "--faults", "stale_jwks"]);
    assert_eq!(code, 1, "the loop reproduces: {stdout}\n{stderr}");
    assert!(stdout.contains("the 401 loop reproduces at request 2"), "{stdout}");
    let written = dir.path().join("mine.replays/stale_jwks.toml");
    assert!(written.is_file(), "{stderr}");
    assert!(std::fs::read_to_string(&written).expect("file").contains("found = \"stale-jwks\""));

    let (code, stdout, stderr) =
        clerk_harness(&["run", "--profile", &profile, "--runtime", "local", "--faults", "stale_jwks", "--only", "replay.", "--format", "json"]);
    assert_eq!(code, 1, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    let ids: Vec<(&str, &str)> =
        report["scenarios"].as_array().expect("scenarios").iter().map(|s| (s["id"].as_str().unwrap_or(""), s["verdict"].as_str().unwrap_or(""))).collect();
    assert_eq!(ids, [("replay.stale_jwks", "fail")]);

    // `scenarios --profile` lists it after the catalogue (what the pytest plugin collects).
    let (code, stdout, stderr) = clerk_harness(&["scenarios", "--format", "json", "--profile", &profile, "--only", "replay.,tokens.expired"]);
    assert_eq!(code, 0, "{stderr}");
    let listed: serde_json::Value = serde_json::from_str(&stdout).expect("JSON list");
    let ids: Vec<&str> = listed.as_array().expect("a list").iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, ["tokens.expired", "tokens.expired_within_skew", "replay.stale_jwks"], "{stdout}");
    let (_, stdout, _) = clerk_harness(&["scenarios", "--format", "json", "--only", "replay."]);
    assert!(!stdout.contains("replay.stale_jwks"), "without --profile no replay is listed: {stdout}");

    // Fixed backend: the regression test passes.
    let (code, _, stderr) = clerk_harness(&["run", "--profile", &profile, "--runtime", "local", "--only", "replay."]);
    assert_eq!(code, 0, "{stderr}");
}
