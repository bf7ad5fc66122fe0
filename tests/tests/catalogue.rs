//! The whole scenario catalogue against the clean reference backend, section by section,
//! in the local runtime and in the Docker runtime: every applicable scenario passes, and
//! every scenario that does not apply says why.

mod common;

use harness::HarnessConfig;
use rstest::rstest;
use scenarios::{Group, Verdict};

fn section(group: Group) -> Vec<scenarios::Scenario> {
    scenarios::catalogue().into_iter().filter(|s| s.group == group).collect()
}

fn assert_all_pass_or_say_why(report: &scenarios::Report) {
    for r in &report.results {
        match r.verdict {
            Verdict::Pass => {}
            Verdict::NotApplicable => assert!(!r.note.is_empty(), "{} is not applicable without a reason", r.id),
            Verdict::Warn | Verdict::Fail | Verdict::Error => panic!("{} is {:?} on the clean reference backend: {:#?}", r.id, r.verdict, r.diagnosis),
        }
    }
}

#[test]
fn every_scenario_belongs_to_a_tested_section() {
    let sections = [Group::Tokens, Group::Environment, Group::Cors, Group::UserSync, Group::Webhooks, Group::Loops, Group::Cookies, Group::Orgs, Group::Errors];
    for s in scenarios::catalogue() {
        assert!(sections.contains(&s.group), "{} is in no section the suites run", s.id);
    }
    let ids: std::collections::HashSet<_> = scenarios::catalogue().iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), scenarios::catalogue().len(), "scenario ids are unique");
}

#[rstest]
#[case::token_scenarios_pass(Group::Tokens)]
#[case::environment_scenarios_pass(Group::Environment)]
#[case::cors_scenarios_pass(Group::Cors)]
#[case::user_sync_scenarios_pass(Group::UserSync)]
#[case::webhook_scenarios_pass(Group::Webhooks)]
#[case::loop_scenarios_pass(Group::Loops)]
#[case::org_scenarios_pass(Group::Orgs)]
#[case::error_body_scenarios_pass(Group::Errors)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_clean_reference_backend(#[case] group: Group) {
    every_applicable_scenario_passes(group, HarnessConfig::local()).await;
}

#[rstest]
#[case::token_scenarios_pass(Group::Tokens)]
#[case::environment_scenarios_pass(Group::Environment)]
#[case::cors_scenarios_pass(Group::Cors)]
#[case::user_sync_scenarios_pass(Group::UserSync)]
#[case::webhook_scenarios_pass(Group::Webhooks)]
#[case::loop_scenarios_pass(Group::Loops)]
#[case::org_scenarios_pass(Group::Orgs)]
#[case::error_body_scenarios_pass(Group::Errors)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker and the offline images: scripts/test runs it when Docker answers"]
async fn on_the_clean_reference_backend_in_docker(#[case] group: Group) {
    harness::internal::require_docker_tests();
    every_applicable_scenario_passes(group, HarnessConfig::docker()).await;
}

async fn every_applicable_scenario_passes(group: Group, config: HarnessConfig) {
    let runtime = config.runtime;
    let report = common::run(common::profile("reference"), config, None, &section(group)).await;
    assert_all_pass_or_say_why(&report);
    assert!(report.with_verdict(Verdict::Pass).count() > 0, "nothing in {group:?} ran ({runtime:?})");
}

/// The SPA sending its token as the `__session` cookies (`[token] transport = "cookie"`):
/// every token and loop scenario goes through the backend's cookie path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_profile_passes_its_token_loop_and_cookie_scenarios() {
    let scenarios: Vec<_> = scenarios::catalogue().into_iter().filter(|s| matches!(s.group, Group::Tokens | Group::Loops | Group::Cookies)).collect();
    let report = common::run(common::profile("reference-cookie"), HarnessConfig::local(), None, &scenarios).await;
    assert_all_pass_or_say_why(&report);
    for id in ["tokens.session_token", "tokens.expired", "tokens.tampered", "loops.spa_converges"] {
        assert_eq!(report.result(id).map(|r| r.verdict), Some(Verdict::Pass), "{id} must apply and pass through the cookie path");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_profile_with_an_audience_passes_its_token_scenarios() {
    let report = common::run(common::profile("reference-template"), HarnessConfig::local(), None, &section(Group::Tokens)).await;
    assert_all_pass_or_say_why(&report);
    for id in ["tokens.template_token", "tokens.wrong_audience", "tokens.session_token"] {
        assert_eq!(report.result(id).map(|r| r.verdict), Some(Verdict::Pass), "{id} must apply and pass on a template profile");
    }
}
