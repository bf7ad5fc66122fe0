"""The pytest plugin against a stand-in CLI (fake_cli.py): each verdict's pytest outcome, -k,
-x, --junitxml, --collect-only, and the errors a user can cause. The real CLI on a real
backend is test_wheel.py's job."""

import json
import os
import stat
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HERE = Path(__file__).parent

DIAGNOSIS = {
    "summary": "ACCEPTED a token it must refuse (200)",
    "sent": "GET /api/me with a token minted for https://evil.example.com (azp)",
    "expected": "401 (profiles that declare authorized parties)",
    "got": {"status": 200, "body": '{"user_id":"user_1"}', "headers": [["access-control-allow-origin", "*"]]},
    "backend_log": ['INFO:     127.0.0.1:50692 - "GET /api/me HTTP/1.1" 200 OK'],
    "class": "authorized-parties",
    "clerk_reason": "token-invalid-authorized-parties",
    "fix": "check azp against the list of the SPA's origins (authorizedParties)",
}

CATALOGUE = [
    {"id": "tokens.session_token", "group": "tokens", "title": "a session token is accepted", "sends": "s", "expects": "e"},
    {"id": "tokens.wrong_issuer", "group": "tokens", "title": "another instance's iss", "sends": "s", "expects": "e"},
    {"id": "tokens.wrong_azp", "group": "tokens", "title": "a token minted for another origin is refused", "sends": "s", "expects": "e"},
    {"id": "cors.preflight", "group": "cors", "title": "preflight", "sends": "s", "expects": "e"},
    {"id": "webhooks.signed", "group": "webhooks", "title": "signed webhooks", "sends": "s", "expects": "e"},
    {"id": "env.missing_required", "group": "env", "title": "missing env", "sends": "s", "expects": "e"},
]


def result(scenario_id, verdict, note="", diagnosis=None):
    return {"id": scenario_id, "title": scenario_id, "group": scenario_id.split(".")[0], "verdict": verdict, "note": note, "diagnosis": diagnosis}


REPORT = {
    "profile": "demo",
    "environment": "local process",
    "scenarios": [
        result("tokens.session_token", "pass", "accepted (200)"),
        result("tokens.wrong_issuer", "warn", diagnosis={**DIAGNOSIS, "summary": "accepted a token whose iss is another instance's", "class": "issuer"}),
        result("tokens.wrong_azp", "fail", diagnosis=DIAGNOSIS),
        result("cors.preflight", "pass", "ok"),
        result("webhooks.signed", "not_applicable", "the profile has no webhook_path"),
        result("env.missing_required", "error", "the backend did not start in 30 s: its log is empty"),
    ],
    "stopped": None,
}


@pytest.fixture
def fake(pytester, monkeypatch):
    """A fake `clerk-harness` with the catalogue and report above, and a profile file."""
    folder = pytester.path / "fake"
    folder.mkdir()
    (folder / "catalogue.json").write_text(json.dumps(CATALOGUE))
    (folder / "report.json").write_text(json.dumps(REPORT))
    program = folder / "clerk-harness"
    program.write_text(f"#!{sys.executable}\n" + (HERE / "fake_cli.py").read_text())
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("FAKE_CLI_DIR", str(folder))
    monkeypatch.setenv("CLERK_HARNESS_BIN", str(program))
    (pytester.path / "profile.toml").write_text('name = "demo"\n')
    return folder


def calls(folder):
    return [json.loads(line) for line in (folder / "calls.jsonl").read_text().splitlines()]


def run(pytester, *args):
    return pytester.runpytest("-p", "clerk_harness.plugin", "--clerk-profile", "profile.toml", "-p", "no:cacheprovider", *args)


def test_each_verdict_becomes_its_pytest_outcome(pytester, fake):
    out = run(pytester, "-rA")
    out.assert_outcomes(passed=3, failed=1, skipped=1, errors=1, warnings=1)
    text = out.stdout.str()
    assert "SKIPPED [1] profile.toml::webhooks::signed: the profile has no webhook_path" in text.replace("\n", " ") or "the profile has no webhook_path" in text
    assert "the backend did not start in 30 s" in text, "an error carries the CLI's words"
    assert "ClerkHarnessWarning: tokens.wrong_issuer" in text, "a warn's diagnosis is a pytest warning"
    assert len(calls(fake)) == 2, "one listing and ONE run per session"


def test_a_failure_text_is_the_full_diagnosis(pytester, fake):
    out = run(pytester)
    text = out.stdout.str()
    for line in (
        "problem:  ACCEPTED a token it must refuse (200)",
        "sent:     GET /api/me with a token minted for https://evil.example.com (azp)",
        "expected: 401 (profiles that declare authorized parties)",
        'got:      200 {"user_id":"user_1"}',
        "access-control-allow-origin: *",
        "class:    authorized-parties (Clerk SDK reason: token-invalid-authorized-parties)",
        "fix:      check azp against the list of the SPA's origins (authorizedParties)",
        '| INFO:     127.0.0.1:50692 - "GET /api/me HTTP/1.1" 200 OK',
    ):
        assert line in text, f"{line!r} missing from:\n{text}"
    assert "Traceback" not in text and "plugin.py" not in text, "no plugin internals in a finding"
    assert "FAILED profile.toml::tokens::wrong_azp" in text


def test_ids_are_test_names_and_groups_are_classes_in_junit(pytester, fake):
    run(pytester, "--junitxml=out.xml")
    cases = ET.parse(pytester.path / "out.xml").getroot().iter("testcase")
    got = sorted((c.get("classname"), c.get("name"), [child.tag for child in c if child.tag != "properties"]) for c in cases)
    assert got == sorted(
        [
            ("profile.toml.tokens", "session_token", []),
            ("profile.toml.tokens", "wrong_issuer", []),
            ("profile.toml.tokens", "wrong_azp", ["failure"]),
            ("profile.toml.cors", "preflight", []),
            ("profile.toml.webhooks", "signed", ["skipped"]),
            ("profile.toml.env", "missing_required", ["error"]),
        ]
    ), got


def test_k_runs_only_the_selected_scenarios(pytester, fake):
    out = run(pytester, "-k", "tokens and not wrong")
    out.assert_outcomes(passed=1, deselected=5)
    run_call = calls(fake)[-1]
    assert run_call[run_call.index("--only") + 1] == "tokens.session_token", run_call


def test_k_matches_a_scenario_id(pytester, fake):
    out = run(pytester, "-k", "tokens.wrong_azp")
    out.assert_outcomes(failed=1, deselected=5)


def test_clerk_only_is_passed_to_the_listing_and_the_run(pytester, fake):
    out = run(pytester, "--clerk-only", "cors.,webhooks.")
    out.assert_outcomes(passed=1, skipped=1)
    listing, run_call = calls(fake)
    assert listing[listing.index("--only") + 1] == "cors.,webhooks."
    assert run_call[run_call.index("--only") + 1] == "cors.,webhooks."


def test_the_listing_includes_the_profiles_replays(pytester, fake):
    run(pytester, "--collect-only")
    listing = calls(fake)[0]
    assert listing[0] == "scenarios" and listing[listing.index("--profile") + 1].endswith("profile.toml"), listing


def test_runtime_and_backend_url_reach_the_cli(pytester, fake):
    run(pytester, "--clerk-runtime", "docker", "--clerk-backend-url", "http://127.0.0.1:8000")
    run_call = calls(fake)[-1]
    assert run_call[run_call.index("--runtime") + 1] == "docker"
    assert run_call[run_call.index("--backend-url") + 1] == "http://127.0.0.1:8000"
    assert run_call[run_call.index("--format") + 1] == "json"


def test_x_stops_at_the_first_failure(pytester, fake):
    out = run(pytester, "-x")
    out.assert_outcomes(passed=2, failed=1)
    assert "stopping after 1 failures" in out.stdout.str()


def test_collect_only_lists_the_scenarios_without_running_them(pytester, fake):
    out = run(pytester, "--collect-only", "-q")
    assert "profile.toml::tokens::wrong_azp" in out.stdout.str()
    assert "6 tests collected" in out.stdout.str()
    assert [c[0] for c in calls(fake)] == ["scenarios"]


def test_the_report_paths_are_in_the_terminal_summary(pytester, fake):
    out = run(pytester, "--clerk-report-dir", "reports")
    text = out.stdout.str()
    assert f"HTML report: {pytester.path / 'reports' / 'report.html'}" in text, text
    assert "demo: 2 pass, 1 warn, 1 fail, 1 error, 1 not_applicable" in text
    assert (pytester.path / "reports" / "report.html").is_file()


def test_a_run_without_a_report_makes_every_scenario_an_error_with_the_cli_words(pytester, fake, monkeypatch):
    monkeypatch.setenv("FAKE_CLI_NO_REPORT", "1")
    out = run(pytester)
    out.assert_outcomes(errors=6)
    text = out.stdout.str()
    assert "Postgres binaries not found: apt-get install postgresql" in text
    assert "no report: the harness exited 2" in text


def test_a_stopped_run_skips_what_it_did_not_run(pytester, fake):
    report = {**REPORT, "scenarios": REPORT["scenarios"][:3], "stopped": {"problem": "the backend's calls never reach the mock", "fix": "set HTTPS_PROXY", "after": [], "not_run": ["cors.preflight", "webhooks.signed", "env.missing_required"]}}
    (fake / "report.json").write_text(json.dumps(report))
    out = run(pytester, "-rs")
    out.assert_outcomes(passed=2, failed=1, skipped=3, warnings=1)
    assert "not run: the backend's calls never reach the mock (fix: set HTTPS_PROXY)" in out.stdout.str()


def test_a_missing_profile_or_program_is_a_usage_error(pytester, fake, monkeypatch):
    out = pytester.runpytest("-p", "clerk_harness.plugin", "--clerk-profile", "nope.toml")
    assert out.ret == pytest.ExitCode.USAGE_ERROR
    assert "--clerk-profile nope.toml: no such file" in out.stderr.str()
    monkeypatch.delenv("CLERK_HARNESS_BIN")
    monkeypatch.setenv("PATH", str(pytester.path))
    out = run(pytester)
    assert out.ret == pytest.ExitCode.USAGE_ERROR
    assert "`clerk-harness` was not found" in out.stderr.str() and "pip install clerk-harness" in out.stderr.str()


def test_without_the_option_the_plugin_adds_nothing(pytester, fake):
    pytester.makepyfile("def test_own():\n    pass\n")
    out = pytester.runpytest("-p", "clerk_harness.plugin")
    out.assert_outcomes(passed=1)
    assert not (fake / "calls.jsonl").exists()


def test_own_tests_run_beside_the_scenarios(pytester, fake):
    pytester.makepyfile("def test_own():\n    pass\n")
    out = run(pytester)
    out.assert_outcomes(passed=4, failed=1, skipped=1, errors=1, warnings=1)


def test_the_plugin_is_registered_as_a_pytest11_entry_point():
    pyproject = (HERE.parent / "pyproject.toml").read_text()
    assert '[project.entry-points.pytest11]\nclerk_harness = "clerk_harness.plugin"' in pyproject
    assert os.path.isfile(HERE.parent / "src" / "clerk_harness" / "plugin.py")


def test_v_streams_the_cli_progress_lines_and_q_does_not(pytester, fake):
    verbose = run(pytester, "-v").stdout.str()
    assert "[ 3/6] fail tokens.wrong_azp" in verbose
    assert "profile.toml::tokens::wrong_azp FAILED" in verbose
    quiet = run(pytester, "-q").stdout.str()
    assert "[ 3/6]" not in quiet and "running 6 scenario(s)" not in quiet
