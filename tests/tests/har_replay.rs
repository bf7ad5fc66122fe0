//! Replaying the recorded HAR fixtures (`scenarios/tests/fixtures/har/`, made by
//! `scripts/record-har-fixtures` in headless Chromium, and `firefox_*.har` by its `--firefox`
//! mode in Firefox's own DevTools export) against the reference backend: each
//! loop reproduces with its cause, the healthy session replays green, a loop caused by the
//! backend is gone once the backend is fixed, and the replay file written for a loop holds no
//! value of the HAR's tokens or cookies and runs as a scenario.

mod common;

use std::path::{Path, PathBuf};

use harness::{EnvChanges, HarnessConfig, TestEnv};
use rstest::rstest;
use scenarios::ReplayFile;
use scenarios::{Ctx, Report, Verdict};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/tests/fixtures/har").join(format!("{name}.har"))
}

/// Replays fixture `har` as the scenario `replay.<har>` on `profile` with `faults`.
async fn replay_fixture(har: &str, profile: &str, faults: Option<&str>) -> Report {
    let profile = common::profile(profile);
    let recording = scenarios::read_har(&fixture(har), &profile).expect("the fixture reads");
    let mut changes = EnvChanges::new();
    if let Some(f) = faults {
        changes = changes.set("REFERENCE_FAULTS", f);
    }
    let env = TestEnv::builder(profile).config(HarnessConfig::local()).env(changes).start().await.expect("environment");
    let mut ctx = Ctx::new(env);
    let report = scenarios::run_replays(&mut ctx, &[ReplayFile::new(har, recording)]).await;
    ctx.into_env().shutdown().await;
    eprintln!("{}", scenarios::render(&report, scenarios::Format::Table));
    report
}

#[rstest]
#[case::the_session_id_sent_as_bearer("session_id_as_bearer", "reference", None, "session-id-as-token", 1, Verdict::Warn)]
#[case::the_default_token_where_a_template_is_required("default_token", "reference-template", None, "default-token-where-template-required", 1, Verdict::Warn)]
#[case::clerks_clock_30_s_ahead("clock_skew", "reference", None, "clock-skew", 1, Verdict::Fail)]
#[case::a_jwks_cache_that_never_refetches("stale_jwks", "reference", Some("stale_jwks"), "stale-jwks", 2, Verdict::Fail)]
#[case::the_same_recorded_by_firefox("firefox_stale_jwks", "reference", Some("stale_jwks"), "stale-jwks", 2, Verdict::Fail)]
#[case::cors_headers_missing_on_the_401("cors_missing_on_401", "reference", Some("cors_missing_on_error"), "cors-missing-on-401", 1, Verdict::Fail)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_loop_reproduces_with_its_cause(
    #[case] har: &str,
    #[case] profile: &str,
    #[case] faults: Option<&str>,
    #[case] cause: &str,
    #[case] at: usize,
    #[case] verdict: Verdict,
) {
    let report = replay_fixture(har, profile, faults).await;
    let r = &report.results[0];
    // A warning when the SPA is at fault and the backend was right to refuse.
    assert_eq!(r.verdict, verdict, "{r:#?}");
    let d = r.diagnosis.as_ref().expect("a failure has a diagnosis");
    assert_eq!(d.cause.as_ref().map(|c| c.id.as_str()), Some(cause), "{d:#?}");
    assert!(d.summary.contains(&format!("the 401 loop reproduces at request {at} ")), "{}", d.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_session_replays_green() {
    let report = replay_fixture("healthy", "reference", None).await;
    assert_eq!(report.results[0].verdict, Verdict::Pass, "{:#?}", report.results[0]);
    assert!(report.results[0].note.contains("replays green"), "{}", report.results[0].note);
}

/// The causes are the backend's behaviour, not read off the HAR: the same recordings on the
/// reference backend without its seeded fault do not loop.
#[rstest]
#[case::the_stale_jwks_loop("stale_jwks")]
#[case::the_stale_jwks_loop_recorded_by_firefox("firefox_stale_jwks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_loop_is_gone_on_the_fixed_backend(#[case] har: &str) {
    let report = replay_fixture(har, "reference", None).await;
    assert_eq!(report.results[0].verdict, Verdict::Pass, "{:#?}", report.results[0]);
    assert!(report.results[0].note.contains("does not reproduce"), "{}", report.results[0].note);
}

/// On the fixed backend the 401 carries its CORS headers, so what still loops is the SPA's
/// cached, expired token: named as the SPA's mistake (a warning), no longer as CORS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cors_fixed_the_cached_expired_token_is_what_still_loops() {
    let report = replay_fixture("cors_missing_on_401", "reference", None).await;
    let r = &report.results[0];
    assert_eq!(r.verdict, Verdict::Warn, "{r:#?}");
    let d = r.diagnosis.as_ref().expect("a warning has a diagnosis");
    assert_eq!(d.cause.as_ref().map(|c| c.id.as_str()), Some("expired-token"), "{d:#?}");
    assert!(!d.summary.contains("CORS"), "{}", d.summary);
}

/// Every value of the HAR's tokens and cookies that could identify or authenticate: each
/// token, its segments, its claims' string values (except the format's constants — `alg`,
/// `typ`, `cat`, `sts` — and an `azp` equal to one of the profile's own origins, which is the
/// profile's value, not the HAR's), every cookie value,
/// and the session ids in Clerk's URLs.
fn har_values(path: &Path, profile_origins: &[String]) -> Vec<String> {
    let har: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("JSON");
    let mut tokens = vec![];
    let mut values = vec![];
    for e in har["log"]["entries"].as_array().expect("entries") {
        for h in e["request"]["headers"].as_array().into_iter().flatten() {
            let (name, value) = (h["name"].as_str().unwrap_or_default().to_ascii_lowercase(), h["value"].as_str().unwrap_or_default());
            if name == "authorization" {
                tokens.push(value.trim_start_matches("Bearer ").to_string());
            }
            if name == "cookie" {
                values.extend(value.split(';').filter_map(|c| c.split_once('=')).map(|(_, v)| v.trim().to_string()));
            }
        }
        for c in e["request"]["cookies"].as_array().into_iter().flatten().chain(e["response"]["cookies"].as_array().into_iter().flatten()) {
            values.push(c["value"].as_str().unwrap_or_default().to_string());
        }
        let url = e["request"]["url"].as_str().unwrap_or_default();
        values.extend(url.split('/').filter(|s| s.starts_with("sess_")).map(str::to_owned));
        if let Some(jwt) = e["response"]["content"]["text"]
            .as_str()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .and_then(|v| v["jwt"].as_str().map(str::to_owned))
        {
            tokens.push(jwt);
        }
    }
    for t in &tokens {
        values.push(t.clone());
        values.extend(t.split('.').map(str::to_owned));
        if let Ok((header, claims)) = mock_clerk::decode_unverified(t) {
            for (k, v) in header.iter().chain(claims.iter()) {
                let Some(s) = v.as_str() else { continue };
                // Constants of Clerk's format (every token has them, the mock's too), and the profile's own origin.
                if ["alg", "typ", "cat", "sts"].contains(&k.as_str()) || (k == "azp" && profile_origins.iter().any(|o| o == s)) {
                    continue;
                }
                values.push(s.to_string());
            }
            values.extend(["sub", "sid", "iat", "exp", "nbf"].iter().filter_map(|k| claims.get(*k).map(|v| v.to_string().trim_matches('"').to_string())));
        }
    }
    values.retain(|v| v.len() >= 6);
    values.sort();
    values.dedup();
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_written_replay_file_holds_no_value_of_the_har_and_runs_as_a_scenario() {
    let profile = common::profile("reference");
    let origins: Vec<String> = profile.token.authorized_parties.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let profile_path = dir.path().join("mine.toml");
    let mut checked = 0;
    let mut files = vec![];
    for har in ["session_id_as_bearer", "clock_skew", "healthy", "firefox_stale_jwks"] {
        let recording = scenarios::read_har(&fixture(har), &profile).expect("fixture");
        let file = ReplayFile::new(har, recording);
        let written = scenarios::write_replay(&profile_path, &file).expect("written");
        let text = std::fs::read_to_string(&written).expect("readable");
        let values = har_values(&fixture(har), &origins);
        assert!(!values.is_empty(), "the fixture {har} has tokens or ids to look for");
        for v in &values {
            assert!(!text.contains(v.as_str()), "{har}: the replay file holds {v:?} from the HAR:\n{text}");
        }
        checked += values.len();
        files.push(file);
    }
    assert!(checked > 30);
    let loaded = scenarios::load_replays(&profile_path).expect("the written files load");
    assert_eq!(loaded.len(), 4);
    assert!(files.iter().all(|f| loaded.contains(f)), "a written file reads back as written");

    // `clerk-harness run` adds them to the catalogue it runs: the same call here.
    let selected = scenarios::replay_scenarios(&loaded);
    let env = TestEnv::builder(profile).config(HarnessConfig::local()).start().await.expect("environment");
    let mut ctx = Ctx::new(env);
    ctx.replays = loaded;
    let report = scenarios::run(&mut ctx, &selected, |_| {}).await;
    ctx.into_env().shutdown().await;
    let verdicts: Vec<(&str, Verdict)> = report.results.iter().map(|r| (r.id.as_str(), r.verdict)).collect();
    assert_eq!(
        verdicts,
        [
            ("replay.clock_skew", Verdict::Fail),
            ("replay.firefox_stale_jwks", Verdict::Pass),
            ("replay.healthy", Verdict::Pass),
            ("replay.session_id_as_bearer", Verdict::Warn)
        ]
    );
    // The report (every format draws on the same results) holds none of the HAR's values either.
    let json = scenarios::render(&report, scenarios::Format::Json);
    for har in ["session_id_as_bearer", "clock_skew", "healthy", "firefox_stale_jwks"] {
        for v in har_values(&fixture(har), &origins) {
            assert!(!json.contains(v.as_str()), "the report holds {v:?} of {har}");
        }
    }
}
