"""The wheel as a Python team gets it: built by scripts/build-wheel, installed into a fresh
virtualenv whose PATH has no cargo or rustc, then `pytest --clerk-profile` on a corpus
backend (backends/corpus/clerk-sdk-fastapi, local runtime). pytest's counts must equal the
CLI's verdicts of that same run, --junitxml must hold one testcase per scenario, -k must run
a subset, and the `clerk_harness` fixture must sign a user in against the running backend.

Needs what scripts/test installs first: the corpus backend's virtualenv
(backends/corpus/install.sh) and PostgreSQL's binaries.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = "clerk-sdk-fastapi"
PROFILE = ROOT / "backends" / "corpus" / CORPUS / "profile.toml"
PYTEST_PIN = "pytest==8.4.2"


@pytest.fixture(scope="session")
def wheel() -> Path:
    """scripts/build-wheel's wheel (a no-op when it is newer than its inputs): from the debug
    build by default, whose dependencies the cargo test build shares;
    CLERK_HARNESS_WHEEL_PROFILE=release tests the release wheel."""
    profile = os.environ.get("CLERK_HARNESS_WHEEL_PROFILE", "dev")
    assert profile in ("dev", "release"), f"CLERK_HARNESS_WHEEL_PROFILE={profile!r}: dev or release"
    command = ["bash", str(ROOT / "scripts" / "build-wheel")] + (["--dev"] if profile == "dev" else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"scripts/build-wheel failed:\n{done.stderr}"
    path = Path(done.stdout.strip().splitlines()[-1])
    print(f"\nwheel ({profile}): {path}, {path.stat().st_size / 1e6:.1f} MB")
    return path


@pytest.fixture(scope="session")
def venv(wheel, tmp_path_factory):
    """A fresh virtualenv with the wheel and pytest, and an environment whose PATH has the
    venv's bin/ and no folder holding cargo or rustc."""
    folder = tmp_path_factory.mktemp("wheel-venv")
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    bin_dir = folder / "bin"
    subprocess.run([str(bin_dir / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel), PYTEST_PIN], check=True)
    path = [str(bin_dir)] + [d for d in os.environ["PATH"].split(os.pathsep) if d and not any((Path(d) / tool).exists() for tool in ("cargo", "rustc"))]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CLERK_HARNESS_BIN", "MOCK_CLERK_BIN", "CARGO_HOME", "RUSTUP_HOME")}
    env["PATH"] = os.pathsep.join(path)
    assert shutil.which("cargo", path=env["PATH"]) is None and shutil.which("rustc", path=env["PATH"]) is None
    return bin_dir, env


def run(venv, *command, cwd=None, check=True):
    bin_dir, env = venv
    done = subprocess.run(list(command), capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if check:
        assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def workspace_version() -> str:
    return tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]


def test_the_wheel_is_a_normal_wheel_with_both_programs_and_the_plugin(wheel, venv):
    bin_dir, _ = venv
    listing = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True, check=True).stdout
    version = workspace_version()
    for member in (
        f"clerk_harness-{version}.data/scripts/clerk-harness",
        f"clerk_harness-{version}.data/scripts/mock-clerk",
        "clerk_harness/plugin.py",
        f"clerk_harness-{version}.dist-info/entry_points.txt",
    ):
        assert member in listing, f"{member} not in the wheel:\n{listing}"
    shown = run(venv, str(bin_dir / "pip"), "show", "-f", "clerk-harness").stdout
    assert re.search(r"^\s+\.\./\.\./\.\./bin/clerk-harness$", shown, re.M), shown
    assert re.search(r"^\s+\.\./\.\./\.\./bin/mock-clerk$", shown, re.M), shown
    assert f"Version: {version}" in shown
    metadata = run(venv, str(bin_dir / "python"), "-c", "import importlib.metadata as m; print(m.metadata('clerk-harness'))").stdout
    for field in ("License-Expression: MIT OR Apache-2.0", "Requires-Python: >=3.9", "Classifier: Framework :: Pytest", "Description-Content-Type: text/markdown"):
        assert field in metadata, f"{field!r} missing:\n{metadata}"
    plugins = run(venv, str(bin_dir / "python"), "-c", "import importlib.metadata as m; print([e.value for e in m.entry_points(group='pytest11')])").stdout
    assert "clerk_harness.plugin" in plugins


def test_the_programs_on_path_are_the_workspace_version(venv):
    bin_dir, _ = venv
    version = workspace_version()
    assert run(venv, "clerk-harness", "--version").stdout.strip() == f"clerk-harness {version}"
    assert run(venv, "mock-clerk", "--version").stdout.strip() == f"mock-clerk {version}"
    assert shutil.which("clerk-harness", path=venv[1]["PATH"]) == str(bin_dir / "clerk-harness")


def summary_counts(stdout: str) -> dict:
    """pytest's last line, e.g. `== 17 failed, 11 passed, 13 skipped, 3 warnings in 44.1s ==`."""
    last = stdout.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|warnings?|deselected)", last)} | {"line": last}


def verdict_counts(report: Path) -> dict:
    counts: dict = {}
    for scenario in json.loads(report.read_text())["scenarios"]:
        counts[scenario["verdict"]] = counts.get(scenario["verdict"], 0) + 1
    return counts


def test_pytest_counts_equal_the_cli_verdicts_on_a_corpus_backend(venv, tmp_path):
    catalogue = json.loads(run(venv, "clerk-harness", "scenarios", "--format", "json").stdout)
    out = run(venv, "pytest", "-p", "no:cacheprovider", "--clerk-profile", str(PROFILE), "--clerk-runtime", "local", "--junitxml", "junit.xml", "--clerk-report-dir", "reports", "-rN", cwd=tmp_path, check=False)
    assert out.returncode in (0, 1), f"pytest exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    verdicts = verdict_counts(tmp_path / "reports" / "report.json")
    counts = summary_counts(out.stdout)
    assert sum(verdicts.values()) == len(catalogue), f"the CLI judged every scenario: {verdicts}"
    got = (counts.get("passed", 0), counts.get("failed", 0), counts.get("skipped", 0), counts.get("errors", counts.get("error", 0)), counts.get("warnings", counts.get("warning", 0)))
    want = (verdicts.get("pass", 0) + verdicts.get("warn", 0), verdicts.get("fail", 0), verdicts.get("not_applicable", 0), verdicts.get("error", 0), verdicts.get("warn", 0))
    assert got == want, f"pytest (passed, failed, skipped, errors, warnings) {got} != the CLI's verdicts {want}: {counts['line']}"
    assert verdicts.get("fail", 0) > 0 and verdicts.get("pass", 0) > 0, f"this corpus backend has findings and passes: {verdicts}"
    cases = list(ET.parse(tmp_path / "junit.xml").getroot().iter("testcase"))
    names = sorted(f"{c.get('classname').rsplit('.', 1)[-1]}.{c.get('name')}" for c in cases)
    assert names == sorted(s["id"] for s in catalogue), "one testcase per scenario, named group.name"
    assert f"HTML report: {tmp_path / 'reports' / 'report.html'}" in out.stdout
    assert (tmp_path / "reports" / "report.html").stat().st_size > 10_000
    print(f"\n{counts['line']}\nthe CLI's verdicts: {verdicts}")


def test_k_selects_a_subset_and_the_harness_runs_only_that(venv, tmp_path):
    catalogue = json.loads(run(venv, "clerk-harness", "scenarios", "--format", "json", "--only", "cors.").stdout)
    out = run(venv, "pytest", "-p", "no:cacheprovider", "--clerk-profile", str(PROFILE), "--clerk-runtime", "local", "-k", "cors", "--junitxml", "junit.xml", "--clerk-report-dir", "reports", cwd=tmp_path, check=False)
    assert out.returncode in (0, 1), f"pytest exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    counts = summary_counts(out.stdout)
    assert counts.get("deselected", 0) > 0, counts["line"]
    cases = list(ET.parse(tmp_path / "junit.xml").getroot().iter("testcase"))
    assert sorted(f"cors.{c.get('name')}" for c in cases) == sorted(s["id"] for s in catalogue)
    ran = {s["id"] for s in json.loads((tmp_path / "reports" / "report.json").read_text())["scenarios"]}
    assert ran == {s["id"] for s in catalogue}, f"the harness ran only the selected scenarios: {ran}"


FIXTURE_EXAMPLE = '''
import json
import urllib.request


def test_me_answers_the_signed_in_user(clerk_harness):
    token = clerk_harness.sign_in("ada@example.com", first_name="Ada")
    request = urllib.request.Request(clerk_harness.backend_url + "/api/me", headers={"Authorization": f"Bearer {token}", "Origin": clerk_harness.spa_origin})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
        body = json.loads(answer.read())
    assert body["user_id"].startswith("user_"), body


def test_a_request_without_a_token_is_refused(clerk_harness):
    try:
        urllib.request.urlopen(clerk_harness.backend_url + "/api/me", timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code in (401, 403)
    else:
        raise AssertionError("accepted a request without a token")
'''


def test_the_clerk_harness_fixture_signs_in_against_the_running_backend(venv, tmp_path):
    (tmp_path / "test_own.py").write_text(FIXTURE_EXAMPLE)
    out = run(venv, "pytest", "-p", "no:cacheprovider", "--clerk-profile", str(PROFILE), "--clerk-runtime", "local", "--clerk-only", "tokens.session_token", "-q", cwd=tmp_path, check=False)
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    assert "3 passed" in summary_counts(out.stdout)["line"], out.stdout
