//! The `clerk-harness` binary as users run it: exit codes, JSON report, diagnoses.

use std::process::Command;

use serde_json::Value;

fn clerk_harness(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_clerk-harness")).args(args).output().expect("run clerk-harness");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, String::from_utf8_lossy(&out.stderr).to_string())
}

fn reference() -> String {
    format!("{}/../profiles/reference.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_clean_run_exits_0_with_one_json_object_per_scenario() {
    let profile = reference();
    let (code, report, stderr) = clerk_harness(&[
        "run",
        "--profile",
        &profile,
        "--runtime",
        "local",
        "--format",
        "json",
        "--only",
        "tokens.session_token,tokens.expired,tokens.wrong_audience,cors.",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let scenarios = report["scenarios"].as_array().expect("scenarios array");
    assert_eq!(scenarios.len(), 7, "`tokens.expired` also matches tokens.expired_within_skew: {report:#}");
    for s in scenarios {
        assert!(s["id"].is_string() && s["duration_ms"].is_u64(), "{s}");
        match s["verdict"].as_str() {
            Some("pass") => {}
            Some("not_applicable") => assert!(!s["note"].as_str().unwrap_or("").is_empty(), "n/a without a reason: {s}"),
            other => panic!("unexpected verdict {other:?}: {s}"),
        }
    }
    assert!(stderr.contains("[ 1/7]") && stderr.contains("[ 7/7]"), "a progress line per scenario: {stderr}");
}

#[test]
fn a_seeded_validation_cache_fails_with_a_diagnosis_that_explains_it() {
    let profile = reference();
    let (code, report, stderr) = clerk_harness(&[
        "run",
        "--profile",
        &profile,
        "--runtime",
        "local",
        "--format",
        "json",
        "--faults",
        "cache_past_expiry",
        "--only",
        "tokens.replay_after_expiry",
    ]);
    assert_eq!(code, 1, "{stderr}");
    let s = &report["scenarios"][0];
    assert_eq!(s["verdict"], "fail");
    let d = &s["diagnosis"];
    assert!(d["summary"].as_str().unwrap_or("").contains("cached without honouring exp"), "{d:#}");
    assert_eq!(d["class"], "validation-cache");
    assert_eq!(d["clerk_reason"], "token-expired");
    assert_eq!(d["got"]["status"], 200);
    assert!(!d["backend_log"].as_array().expect("log").is_empty(), "the backend's log lines are attached");
}

#[test]
fn an_env_arg_reaches_the_backend() {
    // The reference backend reads its seeded faults from REFERENCE_FAULTS: set here by --env
    // alone (no --faults), the seeded cache must show up as the failure it causes.
    let profile = reference();
    let (code, report, stderr) = clerk_harness(&[
        "run",
        "--profile",
        &profile,
        "--runtime",
        "local",
        "--format",
        "json",
        "--env",
        "REFERENCE_FAULTS=cache_past_expiry",
        "--env",
        "UNUSED_BY_THE_BACKEND={database_url_asyncpg}",
        "--only",
        "tokens.replay_after_expiry",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["scenarios"][0]["verdict"], "fail", "{report:#}");
}

#[test]
fn a_malformed_env_arg_exits_2_before_anything_starts() {
    let profile = reference();
    for (arg, says) in [("PYTHONPATH", "no `=`"), ("X={database}", "unknown placeholder `{database}`"), ("1A=b", "is not a variable name")] {
        let (code, _, stderr) = clerk_harness(&["run", "--profile", &profile, "--runtime", "local", "--env", arg]);
        assert_eq!(code, 2, "{arg}: {stderr}");
        assert!(stderr.contains(says) && stderr.contains("--env NAME=VALUE"), "{arg}: {stderr}");
        assert!(!stderr.contains("bringing up"), "refused before anything starts: {stderr}");
    }
}

#[test]
fn a_bad_profile_exits_2_naming_the_file_and_line() {
    let dir = tempfile_dir();
    let path = format!("{dir}/bad.toml");
    std::fs::write(&path, "name = \"x\"\nhealth_pat = \"/h\"\n").expect("write");
    let (code, _, stderr) = clerk_harness(&["run", "--profile", &path]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 2);
    assert!(stderr.contains("bad.toml:2:1") && stderr.contains("health_path"), "{stderr}");
}

#[test]
fn the_catalogue_is_listed() {
    let out = Command::new(env!("CARGO_BIN_EXE_clerk-harness")).arg("scenarios").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(text.lines().filter(|l| !l.starts_with(' ')).count(), scenarios::catalogue().len());
}

fn tempfile_dir() -> String {
    let dir = std::env::temp_dir().join(format!("clerk-harness-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.display().to_string()
}

#[test]
fn a_profile_endpoint_the_backend_does_not_have_stops_the_run_once_with_exit_2() {
    // The reference profile with a route the backend does not serve (as when pointed at
    // another entry point of the app): one error naming the profile line, not 30 failures.
    let text = std::fs::read_to_string(reference()).expect("reference profile").replace("path = \"/api/v1/test-token\"", "path = \"/api/v2/test-token\"");
    let line = text.lines().position(|l| l.contains("/api/v2/test-token")).expect("replaced") + 1;
    let dir = tempfile_dir();
    let path = format!("{dir}/mismatch.toml");
    std::fs::write(&path, &text).expect("write");
    let backend_dir = format!("{}/../backends/reference", env!("CARGO_MANIFEST_DIR"));
    let (code, _, stderr) = clerk_harness(&["run", "--profile", &path, "--backend-dir", &backend_dir, "--runtime", "local", "--format", "json"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("mismatch.toml:{line}")) && stderr.contains("GET /api/v2/test-token") && stderr.contains("404"), "{stderr}");
    assert!(!stderr.contains("[ 1/"), "no scenario ran: {stderr}");
}
