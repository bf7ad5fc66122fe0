//! A real 401 loop, from the browser's recording to a scenario.
//!
//! When a loop happens in production, the team has the browser's recording: DevTools →
//! Network → "Save all as HAR". This module reads it ([`har`]: HAR 1.2 from Chrome, Firefox or
//! Safari, gzip and base64 bodies), finds the backend's requests (the profile's endpoints) and
//! Clerk's ([`mod@analyse`]), decodes each Clerk token without verifying it and keeps only facts
//! about it (kind, lifetime, times relative to the request, `azp`, key), replays the
//! conversation against the backend under the harness with equivalent tokens minted by the
//! mock ([`run`]), and judges whether the loop reproduces, at which request, and why.
//!
//! A reproduced loop is written as a replay file beside the profile ([`ReplayFile`], TOML,
//! no token, cookie, id or email of the HAR in it); `clerk-harness run` runs every replay
//! file of the profile as a scenario `replay.<name>` from then on: a regression test.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use harness::{Profile, TestEnv};
//! let profile = Profile::from_file("profiles/reference.toml")?;
//! let recording = scenarios::read_har("loop.har".as_ref(), &profile)?;
//! let env = TestEnv::start(profile).await?;
//! let mut ctx = scenarios::Ctx::new(env);
//! let file = scenarios::ReplayFile::new("my-loop", recording);
//! let report = scenarios::run_replays(&mut ctx, &[file]).await;
//! println!("{}", scenarios::render(&report, scenarios::Format::Table));
//! # Ok(()) }
//! ```

pub mod analyse;
pub mod har;
pub mod run;

use std::path::{Path, PathBuf};

use harness::Profile;
use serde::{Deserialize, Serialize};

pub use analyse::{analyse, Recording};

use crate::ctx::Ctx;
use crate::scenario::{Group, Isolation, Scenario};

/// Why a HAR cannot be replayed, or a replay file read.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not HAR 1.2, or one entry is broken.
    #[error("malformed HAR{}: {problem}", entry.map_or_else(String::new, |i| format!(" at log.entries[{i}]")))]
    Malformed {
        /// The entry, when one is at fault.
        entry: Option<usize>,
        /// What is wrong.
        problem: String,
    },
    /// No entry is a request to one of the profile's endpoints.
    #[error("none of the HAR's {entries} entries (log.entries[0..{entries}]) is a request to the profile's endpoints ({wanted}): record the page while it calls the backend, or pass the profile of the backend it calls")]
    NoEndpoint {
        /// How many entries the HAR has.
        entries: usize,
        /// The endpoints looked for.
        wanted: String,
    },
    /// The backend's requests carry no Clerk token and no session id.
    #[error("the HAR's {calls} request(s) to the backend (the first is log.entries[{first}]) carry no Clerk token (no Authorization: Bearer, no __session cookie): nothing to replay")]
    NoToken {
        /// The first backend request's entry.
        first: usize,
        /// How many backend requests there are.
        calls: usize,
    },
    /// A replay file is not valid.
    #[error("replay file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Reads and analyses a HAR file against `profile`.
///
/// # Errors
/// See [`ReplayError`].
pub fn read_har(path: &Path, profile: &Profile) -> Result<Recording, ReplayError> {
    let bytes = std::fs::read(path).map_err(|source| ReplayError::Read { path: path.to_path_buf(), source })?;
    analyse(&har::parse(&bytes)?, profile)
}

/// A replay file: a recording reduced to facts, run as the scenario `replay.<name>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayFile {
    /// The scenario is `replay.<name>`.
    pub name: String,
    /// What the replay found when the file was written (the cause's id), for the reader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// The conversation.
    pub recording: Recording,
}

impl ReplayFile {
    /// A replay file for `recording`.
    #[must_use]
    pub fn new(name: &str, recording: Recording) -> Self {
        Self { name: name.to_string(), found: None, recording }
    }

    /// The scenario id, `replay.<name>`.
    #[must_use]
    pub fn id(&self) -> String {
        format!("replay.{}", self.name)
    }

    /// The TOML text, with a header saying what it is.
    ///
    /// # Errors
    /// Serialisation failed (it does not for a recording).
    pub fn to_toml(&self) -> Result<String, ReplayError> {
        let body = toml::to_string(self).map_err(|e| ReplayError::File { path: PathBuf::new(), message: e.to_string() })?;
        Ok(format!(
            "# A 401 loop recorded by a browser (HAR), reduced to facts by `clerk-harness replay`:\n# no token, cookie, id or email of the recording is in this file. `clerk-harness run`\n# replays it as the scenario {}: it fails while the loop is there.\n\n{body}",
            self.id()
        ))
    }

    /// Reads one replay file.
    ///
    /// # Errors
    /// Unreadable, or not a replay file (the message has the line).
    pub fn from_file(path: &Path) -> Result<Self, ReplayError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|e| ReplayError::File { path: path.to_path_buf(), message: e.to_string() })
    }
}

/// The folder of a profile's replay files: `<profile>.replays/` beside `profile.toml`.
#[must_use]
pub fn replays_dir(profile_path: &Path) -> PathBuf {
    let stem = profile_path.file_stem().map_or_else(|| "profile".into(), |s| s.to_string_lossy().into_owned());
    profile_path.with_file_name(format!("{stem}.replays"))
}

/// Every replay file of the profile at `profile_path`, sorted by name (none: an empty list).
///
/// # Errors
/// A file that is not a replay file.
pub fn load_replays(profile_path: &Path) -> Result<Vec<ReplayFile>, ReplayError> {
    let dir = replays_dir(profile_path);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(vec![]) };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    paths.sort();
    paths.iter().map(|p| ReplayFile::from_file(p)).collect()
}

/// Writes `file` into the profile's replay folder as `<name>.toml`; returns its path.
///
/// # Errors
/// The folder or file could not be written.
pub fn write_replay(profile_path: &Path, file: &ReplayFile) -> Result<PathBuf, ReplayError> {
    let dir = replays_dir(profile_path);
    std::fs::create_dir_all(&dir).map_err(|source| ReplayError::Read { path: dir.clone(), source })?;
    let path = dir.join(format!("{}.toml", file.name));
    std::fs::write(&path, file.to_toml()?).map_err(|source| ReplayError::Read { path: path.clone(), source })?;
    Ok(path)
}

/// The scenarios of `files`; their bodies find their recording in [`Ctx::replays`], where
/// [`run_files`] (or the caller) puts `files`.
///
/// The scenario's texts are leaked: a run makes a handful, once.
#[must_use]
pub fn scenarios(files: &[ReplayFile]) -> Vec<Scenario> {
    files
        .iter()
        .map(|f| Scenario {
            id: Box::leak(f.id().into_boxed_str()),
            group: Group::Loops,
            title: "a 401 loop recorded in a browser does not happen again",
            sends: "the recording's backend requests, in order, each with an equivalent token minted by the mock (same kind, times relative to the request, azp, key); clocks moved instead of waiting",
            expects: "no two refusals in a row: the loop is gone",
            class: "recorded-401-loop",
            reason: None,
            fix: "see the cause: it names what the SPA sent and what the backend did with it",
            // Key rotations and moved clocks stay with the backend: the next scenario gets a fresh one.
            isolation: Isolation::FreshBackend,
            body: replay_body,
        })
        .collect()
}

/// Runs `files` as scenarios on `ctx` (the runner's timeouts, log window, timeline and
/// diagnosis apply).
pub async fn run_files(ctx: &mut Ctx, files: &[ReplayFile]) -> crate::Report {
    ctx.replays.extend(files.iter().cloned());
    let scenarios = scenarios(files);
    crate::run(ctx, &scenarios, |_| {}).await
}

fn replay_body(ctx: &mut Ctx) -> crate::scenario::BoxFut<'_> {
    Box::pin(async move {
        let id = ctx.scenario.unwrap_or_default();
        let file = ctx.replays.iter().find(|f| f.id() == id).cloned().ok_or_else(|| crate::StepError::Other(format!("no replay file loaded for {id}")))?;
        let replayed = run::replay(ctx, &file.recording).await?;
        Ok(run::judge(ctx, &file.recording, &replayed))
    })
}

/// A replay name from a HAR's file name: `prod-loop.har` → `prod-loop` (letters, digits,
/// `-` and `_` kept).
#[must_use]
pub fn name_from(har: &Path) -> String {
    let stem = har.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = stem.trim_end_matches(".gz").trim_end_matches(".har");
    let name: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    if name.is_empty() {
        "recorded".into()
    } else {
        name
    }
}

/// What the recording holds, in one paragraph (facts only: safe to print).
#[must_use]
pub fn describe(recording: &Recording) -> String {
    use analyse::{ClerkWhat, Sent};
    let refreshes = recording.clerk.iter().filter(|c| c.what == ClerkWhat::Token).count();
    let entries: Vec<String> = recording.calls.iter().map(|c| c.entry.to_string()).collect();
    let mut text = format!(
        "HAR from {}: {} request(s) to the backend (entries {}), {} to Clerk ({} token call(s))",
        if recording.browser.is_empty() { "an unnamed browser" } else { &recording.browser },
        recording.calls.len(),
        entries.join(", "),
        recording.clerk.len(),
        refreshes
    );
    match run::recorded_loop(recording) {
        Some(at) => {
            let c = &recording.calls[at];
            let sent = match &c.sent {
                Sent::Token { token, transport } => format!(
                    "a {:?} token by {:?} (iat {:+} s, exp {:+} s relative to the request, key #{})",
                    token.kind,
                    transport,
                    token.iat_s,
                    token.exp_s,
                    token.key + 1
                )
                .to_lowercase(),
                Sent::SessionId { .. } => "a session id instead of a token".into(),
                Sent::Nothing => "no token".into(),
                Sent::Opaque { .. } => "something that is not a JWT".into(),
            };
            text.push_str(&format!(
                "; the recorded loop starts at request {} (entry {}, {} {} answered {}), which sent {sent}",
                at + 1,
                c.entry,
                c.method,
                c.path,
                c.status
            ));
        }
        None => text.push_str("; no 401 loop in the recording"),
    }
    text
}
