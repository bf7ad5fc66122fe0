//! The corpus (`backends/corpus/`): small backends written the way published Clerk libraries
//! document them. Each has an `expected.toml` with the verdict every catalogue scenario must
//! get on it and why (the library's own behaviour). This suite runs the whole catalogue on
//! each backend in the local runtime and fails, with one readable list, on a wrong verdict, a
//! false alarm, a missed defect, or any scenario the harness could not judge (`error`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use harness::{HarnessConfig, Profile};
use rstest::rstest;
use scenarios::Report;
use serde::Deserialize;

/// The backends of `backends/corpus/`; `every_corpus_backend_has_a_case` keeps this list
/// equal to the directories there.
const BACKENDS: [&str; 6] =
    ["fastapi-clerk-auth", "clerk-sdk-fastapi", "clerk-sdk-flask-jwt-key", "clerk-django-drf", "rust-axum-jsonwebtoken", "django-clerk-users"];

/// An `expected.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// The library and versions the verdicts were worked out from.
    library: String,
    /// Scenario id → expectation; every catalogue scenario, nothing else.
    scenarios: BTreeMap<String, Expectation>,
}

/// The verdict one scenario must get, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectation {
    verdict: ExpectedVerdict,
    /// One line citing the library's behaviour (file:line or option).
    reason: String,
    /// The fault class the diagnosis must name, when the explanation matters (optional).
    #[serde(default)]
    class: Option<String>,
    /// The measured root cause the diagnosis must name (`leeway-60s`, `hang-on-clerk-failure`…),
    /// or `"none"` for a finding no measured cause explains (optional).
    #[serde(default)]
    cause: Option<String>,
    /// Another verdict this backend gets on some runs only: a real defect the scenario finds by
    /// chance (a race whose window is hit in some rounds). The reason must say why.
    #[serde(default)]
    sometimes: Option<ExpectedVerdict>,
}

/// The verdicts a corpus backend may be expected to get. `error` is not one of them: the
/// harness must be able to judge every scenario on a corpus backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ExpectedVerdict {
    Pass,
    Warn,
    Fail,
    NotApplicable,
}

impl ExpectedVerdict {
    /// The verdict's name as the report writes it (serde name of `scenarios::Verdict`).
    fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::NotApplicable => "not_applicable",
        }
    }
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("backends").join("corpus")
}

fn parse_expected(text: &str) -> Result<Expected, String> {
    let expected: Expected = toml::from_str(text).map_err(|e| e.to_string())?;
    if expected.library.trim().is_empty() {
        return Err("`library` is empty: name the library and versions the verdicts come from".into());
    }
    if let Some((id, _)) = expected.scenarios.iter().find(|(_, e)| e.reason.trim().is_empty()) {
        return Err(format!("{id}: empty reason — cite the library's behaviour (file:line or option)"));
    }
    Ok(expected)
}

fn load_expected(backend: &str) -> Expected {
    let path = corpus_dir().join(backend).join("expected.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_expected(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What is wrong with the ids of `expected` against the catalogue's: missing and unknown ids.
fn id_problems(expected: &Expected, catalogue: &BTreeSet<&str>) -> Vec<String> {
    let listed: BTreeSet<&str> = expected.scenarios.keys().map(String::as_str).collect();
    let missing = catalogue.difference(&listed).map(|id| format!("{id}: catalogue scenario not listed"));
    let unknown = listed.difference(catalogue).map(|id| format!("{id}: listed but not in the catalogue (renamed or removed?)"));
    missing.chain(unknown).collect()
}

fn catalogue_ids() -> BTreeSet<&'static str> {
    scenarios::catalogue().iter().map(|s| s.id).collect()
}

/// One scenario whose verdict differs from the expectation.
#[derive(Debug, PartialEq, Eq)]
struct Mismatch {
    id: String,
    kind: &'static str,
    expected: String,
    got: String,
}

/// The verdict a report gave (its serde name, so new verdicts need no change here) and the
/// line explaining it.
fn verdict_and_detail(result: &scenarios::ScenarioResult) -> (String, String) {
    let verdict = match serde_json::to_value(result.verdict) {
        Ok(serde_json::Value::String(name)) => name,
        other => format!("{other:?}"),
    };
    let detail = result.diagnosis.as_ref().map_or_else(|| result.note.clone(), |d| d.summary.clone());
    (verdict, first_line(&detail))
}

/// The first line of `text`, at most 300 characters: a summary may carry a whole log tail.
fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// Every scenario of `report` whose verdict is not the expected one, plus every expected
/// scenario the report lacks. `error` never matches.
fn mismatches(report: &Report, expected: &Expected) -> Vec<Mismatch> {
    let mut out = vec![];
    for result in &report.results {
        let (got, detail) = verdict_and_detail(result);
        let Some(want) = expected.scenarios.get(&result.id) else {
            out.push(Mismatch { id: result.id.clone(), kind: "not in expected.toml", expected: "-".into(), got: format!("{got} — {detail}") });
            continue;
        };
        if got == want.verdict.name() || want.sometimes.is_some_and(|v| got == v.name()) {
            // The explanation, where expected.toml pins it.
            let d = result.diagnosis.as_ref();
            let class = d.map_or("-", |d| d.class.as_str());
            let cause = d.and_then(|d| d.cause.as_ref()).map_or("none", |c| c.id.as_str());
            if want.class.as_deref().is_some_and(|c| c != class) || want.cause.as_deref().is_some_and(|c| c != cause) {
                out.push(Mismatch {
                    id: result.id.clone(),
                    kind: "wrong explanation",
                    expected: format!("class {}, cause {} — {}", want.class.as_deref().unwrap_or("any"), want.cause.as_deref().unwrap_or("any"), want.reason),
                    got: format!("class {class}, cause {cause} — {detail}"),
                });
            }
            continue;
        }
        let kind = match (want.verdict, got.as_str()) {
            (_, "error") => "harness error (could not judge)",
            (ExpectedVerdict::Pass | ExpectedVerdict::Warn | ExpectedVerdict::NotApplicable, "fail") => "false alarm",
            (ExpectedVerdict::Fail, "pass" | "warn" | "not_applicable") => "missed defect",
            _ => "wrong verdict",
        };
        out.push(Mismatch {
            id: result.id.clone(), kind, expected: format!("{} — {}", want.verdict.name(), want.reason), got: format!("{got} — {detail}")
        });
    }
    let ran: BTreeSet<&str> = report.results.iter().map(|r| r.id.as_str()).collect();
    for (id, want) in &expected.scenarios {
        if !ran.contains(id.as_str()) {
            out.push(Mismatch { id: id.clone(), kind: "did not run", expected: format!("{} — {}", want.verdict.name(), want.reason), got: "-".into() });
        }
    }
    out
}

fn render(backend: &str, total: usize, list: &[Mismatch]) -> String {
    let mut text = format!("backends/corpus/{backend}: {} of {total} scenarios differ from expected.toml\n", list.len());
    for m in list {
        text.push_str(&format!("  {} [{}]\n    expected: {}\n    got:      {}\n", m.id, m.kind, m.expected, m.got));
    }
    text
}

fn corpus_profile(backend: &str) -> Profile {
    let path = corpus_dir().join(backend).join("profile.toml");
    Profile::from_file(&path).unwrap_or_else(|e| panic!("profile {}: {e}", path.display()))
}

fn backend_dirs(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("profile.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_corpus_backend_has_a_case() {
    let on_disk = backend_dirs(&corpus_dir());
    let listed: BTreeSet<String> = BACKENDS.iter().map(|b| (*b).to_owned()).collect();
    assert_eq!(on_disk, listed, "BACKENDS must list exactly the directories of backends/corpus with a profile.toml");
    assert!(listed.len() >= 4, "the corpus has at least four backends");
}

#[test]
fn every_expected_toml_lists_each_catalogue_scenario_once_with_a_reason() {
    let catalogue = catalogue_ids();
    let mut problems = vec![];
    for backend in BACKENDS {
        let expected = load_expected(backend);
        problems.extend(id_problems(&expected, &catalogue).into_iter().map(|p| format!("{backend}/expected.toml: {p}")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_corpus_profile_loads() {
    for backend in BACKENDS {
        corpus_profile(backend);
    }
}

#[test]
fn expected_toml_refuses_unknown_fields_verdicts_and_empty_reasons() {
    let ok = "library = \"x 1.0\"\n[scenarios]\n\"tokens.expired\" = { verdict = \"fail\", reason = \"x.py:1\" }\n";
    assert!(parse_expected(ok).is_ok());
    let unknown_field = "library = \"x\"\n[scenarios]\n\"tokens.expired\" = { verdict = \"fail\", reason = \"r\", note = \"n\" }\n";
    assert!(parse_expected(unknown_field).expect_err("must be refused").contains("unknown field `note`"));
    let top_level = "library = \"x\"\nversion = 2\n[scenarios]\n";
    assert!(parse_expected(top_level).expect_err("must be refused").contains("unknown field `version`"));
    let error_verdict = "library = \"x\"\n[scenarios]\n\"tokens.expired\" = { verdict = \"error\", reason = \"r\" }\n";
    assert!(parse_expected(error_verdict).expect_err("must be refused").contains("unknown variant `error`"), "error is never an acceptable expectation");
    let no_reason = "library = \"x\"\n[scenarios]\n\"tokens.expired\" = { verdict = \"pass\", reason = \" \" }\n";
    assert!(parse_expected(no_reason).expect_err("must be refused").contains("tokens.expired: empty reason"));
    let missing_reason = "library = \"x\"\n[scenarios]\n\"tokens.expired\" = { verdict = \"pass\" }\n";
    assert!(parse_expected(missing_reason).expect_err("must be refused").contains("missing field `reason`"));
}

#[test]
fn an_expected_toml_with_a_missing_or_unknown_id_is_reported() {
    let catalogue: BTreeSet<&str> = ["tokens.expired", "tokens.alg_none"].into();
    let text = "library = \"x\"\n[scenarios]\n\"tokens.expired\" = { verdict = \"pass\", reason = \"r\" }\n\"tokens.renamed\" = { verdict = \"pass\", reason = \"r\" }\n";
    let expected = parse_expected(text).expect("valid");
    assert_eq!(
        id_problems(&expected, &catalogue),
        vec!["tokens.alg_none: catalogue scenario not listed".to_owned(), "tokens.renamed: listed but not in the catalogue (renamed or removed?)".to_owned()]
    );
}

fn result(id: &str, verdict: scenarios::Verdict, note: &str) -> scenarios::ScenarioResult {
    scenarios::ScenarioResult {
        id: id.into(),
        title: String::new(),
        group: scenarios::Group::Tokens,
        verdict,
        duration_ms: 0,
        backend_ms: 0,
        note: note.into(),
        diagnosis: None,
        exchanges: vec![],
        events: vec![],
    }
}

#[test]
fn mismatches_name_false_alarms_missed_defects_and_scenarios_that_did_not_run() {
    use scenarios::Verdict;
    let text = "library = \"x\"\n[scenarios]\n\
        \"a.same\" = { verdict = \"pass\", reason = \"ok\" }\n\
        \"a.alarm\" = { verdict = \"pass\", reason = \"lib.py:1 refuses\" }\n\
        \"a.missed\" = { verdict = \"fail\", reason = \"lib.py:2 accepts\" }\n\
        \"a.na\" = { verdict = \"not_applicable\", reason = \"no table\" }\n\
        \"a.absent\" = { verdict = \"pass\", reason = \"r\" }\n";
    let expected = parse_expected(text).expect("valid");
    let report = Report {
        profile: "p".into(),
        environment: String::new(),
        fingerprint: scenarios::Fingerprint::default(),
        results: vec![
            result("a.same", Verdict::Pass, "fine"),
            result("a.alarm", Verdict::Fail, "answered 500"),
            result("a.missed", Verdict::Pass, "accepted"),
            result("a.na", Verdict::NotApplicable, "no table"),
            result("a.extra", Verdict::Pass, "?"),
        ],
        duration_ms: 0,
        stopped: None,
    };
    let found = mismatches(&report, &expected);
    let summary: Vec<(&str, &str)> = found.iter().map(|m| (m.id.as_str(), m.kind)).collect();
    assert_eq!(summary, vec![("a.alarm", "false alarm"), ("a.missed", "missed defect"), ("a.extra", "not in expected.toml"), ("a.absent", "did not run")]);
    assert_eq!(found[0].expected, "pass — lib.py:1 refuses");
    assert_eq!(found[0].got, "fail — answered 500");
    assert_eq!(first_line("could not run: exited\n--- log ---\nTraceback"), "could not run: exited");
    assert_eq!(first_line(&"x".repeat(400)).chars().count(), 301);
    let text = render("b", 5, &found);
    assert!(text.starts_with("backends/corpus/b: 4 of 5 scenarios differ from expected.toml\n  a.alarm [false alarm]\n"), "{text}");
}

#[test]
fn a_verdict_found_by_chance_is_accepted_only_where_expected_toml_says_sometimes() {
    use scenarios::Verdict;
    let text = "library = \"x\"\n[scenarios]\n\
        \"a.race\" = { verdict = \"pass\", sometimes = \"fail\", reason = \"a narrow race\" }\n\
        \"a.plain\" = { verdict = \"pass\", reason = \"no race\" }\n";
    let expected = parse_expected(text).expect("valid");
    let report = |race: Verdict, plain: Verdict| Report {
        profile: "p".into(),
        environment: String::new(),
        fingerprint: scenarios::Fingerprint::default(),
        results: vec![result("a.race", race, "n"), result("a.plain", plain, "n")],
        duration_ms: 0,
        stopped: None,
    };
    assert!(mismatches(&report(Verdict::Pass, Verdict::Pass), &expected).is_empty());
    assert!(mismatches(&report(Verdict::Fail, Verdict::Pass), &expected).is_empty(), "the race's fail is allowed");
    let kinds = |r: &Report| mismatches(r, &expected).iter().map(|m| (m.id.clone(), m.kind)).collect::<Vec<_>>();
    assert_eq!(kinds(&report(Verdict::Warn, Verdict::Fail)), vec![("a.race".to_owned(), "wrong verdict"), ("a.plain".to_owned(), "false alarm")]);
}

/// Runs the whole catalogue on `backend` in `config`'s runtime and compares with its
/// expected.toml. No verdict depends on the runtime: a container runs under libfaketime
/// too, so the scenarios that move the backend's clock are judged in both.
async fn check_backend(backend: &str, config: HarnessConfig) {
    let expected = load_expected(backend);
    let problems = id_problems(&expected, &catalogue_ids());
    assert!(problems.is_empty(), "{backend}/expected.toml: {}", problems.join("; "));
    let report = common::run(corpus_profile(backend), config, None, &scenarios::catalogue()).await;
    let found = mismatches(&report, &expected);
    assert!(found.is_empty(), "{}", render(backend, report.results.len(), &found));
}

#[rstest]
#[case::fastapi_clerk_auth("fastapi-clerk-auth")]
#[case::clerk_sdk_fastapi("clerk-sdk-fastapi")]
#[case::clerk_sdk_flask_jwt_key("clerk-sdk-flask-jwt-key")]
#[case::clerk_django_drf("clerk-django-drf")]
#[case::rust_axum_jsonwebtoken("rust-axum-jsonwebtoken")]
#[case::django_clerk_users("django-clerk-users")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_backend_gets_its_expected_verdicts(#[case] backend: &str) {
    check_backend(backend, HarnessConfig::local()).await;
}

/// Two corpus backends in the docker runtime, their images built from their own Dockerfiles
/// (`[container] build = "."`): one that reaches Clerk through the proxy, and Clerk's SDK,
/// whose client ignores `HTTPS_PROXY` and is routed by name.
#[rstest]
#[case::fastapi_clerk_auth("fastapi-clerk-auth")]
#[case::clerk_sdk_fastapi("clerk-sdk-fastapi")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn corpus_backend_gets_its_expected_verdicts_in_docker(#[case] backend: &str) {
    harness::internal::require_docker_tests();
    check_backend(backend, HarnessConfig::docker()).await;
}

#[test]
fn a_right_verdict_with_a_wrong_explanation_is_reported() {
    use scenarios::Verdict;
    let text = "library = \"x\"\n[scenarios]\n\
        \"a.leeway\" = { verdict = \"fail\", class = \"clock-skew\", cause = \"leeway-60s\", reason = \"validation.rs:126\" }\n\
        \"a.right\" = { verdict = \"fail\", cause = \"leeway-60s\", reason = \"validation.rs:126\" }\n";
    let expected = parse_expected(text).expect("valid");
    let diagnosis = |class: &str, cause: Option<&str>| scenarios::Diagnosis {
        summary: "s".into(),
        sent: "s".into(),
        expected: "e".into(),
        got: None,
        backend_log: vec![],
        class: class.into(),
        clerk_reason: None,
        fix: "f".into(),
        cause: cause.map(|id| scenarios::Cause { id: id.into(), title: "t".into(), measurement: "m".into(), fix: "f".into() }),
    };
    let mut guessed = result("a.leeway", Verdict::Fail, "");
    guessed.diagnosis = Some(diagnosis("validation-cache", Some("validation-cache")));
    let mut right = result("a.right", Verdict::Fail, "");
    right.diagnosis = Some(diagnosis("token-expiry", Some("leeway-60s")));
    let report = Report {
        profile: "p".into(),
        environment: String::new(),
        fingerprint: scenarios::Fingerprint::default(),
        results: vec![guessed, right],
        duration_ms: 0,
        stopped: None,
    };
    let found = mismatches(&report, &expected);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].id.as_str(), found[0].kind), ("a.leeway", "wrong explanation"));
    assert!(found[0].got.contains("class validation-cache, cause validation-cache"), "{:?}", found[0]);
}
