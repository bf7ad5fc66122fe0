//! Records one HAR fixture of `scenarios/tests/fixtures/har/`: brings up a profile's backend
//! (with seeded faults) and the mock Clerk, signs a user in, and runs the recorder script:
//! `scripts/har/record.py` (the default), which drives the fixture SPA in headless Chromium
//! and saves the browser's HAR, or `scripts/har/record_firefox.py`, which has Firefox's
//! DevTools export it. Run by `scripts/record-har-fixtures`; the tokens in the HAR are the
//! mock's (no real secret).
//!
//! `cargo run -p scenarios --example record_har -- PROFILE FAULTS MISTAKE OUT.har PYTHON [RECORDER]`

use anyhow::Context as _;
use harness::{EnvChanges, HarnessConfig, Profile, TestEnv};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (profile, faults, mistake, out, python, recorder) = match args.as_slice() {
        [profile, faults, mistake, out, python] => (profile, faults, mistake, out, python, "record.py"),
        [profile, faults, mistake, out, python, recorder] => (profile, faults, mistake, out, python, recorder.as_str()),
        _ => anyhow::bail!("usage: record_har PROFILE FAULTS MISTAKE OUT.har PYTHON [RECORDER] (FAULTS: comma-separated or -; RECORDER: a script of scripts/har/, record.py by default)"),
    };
    let profile = Profile::from_file(profile)?;
    let template = (*profile.token.kind.get() == harness::TokenKind::Template && mistake != "default_token").then(|| profile.token.template.clone()).flatten();
    let path = profile.endpoints.iter().find(|e| !e.syncs_user).or(profile.endpoints.first()).context("the profile has no endpoint")?.path.get().clone();
    let mut changes = EnvChanges::new();
    if faults != "-" {
        changes = changes.set("REFERENCE_FAULTS", faults.clone());
    }
    let env = TestEnv::builder(profile).config(HarnessConfig::local()).env(changes).start().await?;
    let me = env.sign_in(mock_clerk::NewUser::with_email("har-fixture@example.com").names("Har", "Fixture"))?;
    // The browser's client: its dev browser is the credential the Frontend API's token calls
    // must carry (`__clerk_db_jwt`, as clerk-js sends it on a development instance).
    let client = env.mock().browser_client(&me.session.id)?;
    let config = serde_json::json!({
        "spa_origin": env.profile().spa_origin(),
        "backend_url": env.backend_url().as_str().trim_end_matches('/'),
        "path": path,
        "fapi_host": env.mock().instance().fapi_host(),
        "fapi_url": env.mock().fapi_url(),
        "api_url": env.mock().api_url(),
        "admin_url": "https://harness-admin.invalid",
        // The mock's own key, for its admin API (clock, key rotation): the recorder adds it.
        "secret_key": env.mock().instance().secret_key().expose(),
        "session_id": me.session.id,
        "dev_browser": client.dev_browser,
        "template": template,
        "mistake": mistake,
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/har").join(recorder);
    let status = tokio::process::Command::new(python).arg(&script).arg(config.to_string()).arg(out).status().await?;
    env.shutdown().await;
    anyhow::ensure!(status.success(), "{} failed ({status})", script.display());
    Ok(())
}
