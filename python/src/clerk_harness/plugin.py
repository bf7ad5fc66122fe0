"""The pytest plugin: ``pytest --clerk-profile PROFILE`` runs the catalogue as pytest tests.

One test item per catalogue scenario (``PROFILE::group::name``), collected from
``clerk-harness scenarios --format json``. The harness runs ONCE per session, before the
first test, with ``--format json``: only the scenarios still selected after ``-k`` and
marks. Each verdict becomes a pytest outcome:

========================  =======================================================
``pass``                  passed
``warn``                  passed, with a ``ClerkHarnessWarning`` carrying the diagnosis
``fail``                  failed; the failure text is the full diagnosis
``not_applicable``        skipped with the reason
``error``                 an error (the harness could not judge: not a finding)
========================  =======================================================

The ``clerk_harness`` fixture is an :class:`~clerk_harness.environment.Environment` for your
own tests: ``clerk-harness up`` on the profile, or ``mock-clerk serve`` without one.
"""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from pathlib import Path
from typing import Optional

import pytest

from clerk_harness import cli
from clerk_harness.environment import Environment

RUN_KEY = pytest.StashKey["Run"]()
RUNTIMES = ("auto", "local", "docker")


class ClerkHarnessWarning(UserWarning):
    """A scenario the backend passes with a risk worth fixing (verdict ``warn``)."""


class ScenarioFailed(Exception):
    """The backend got a scenario wrong (verdict ``fail``); the message is the diagnosis."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("clerk-harness", "clerk-harness: Clerk-auth scenarios against your backend")
    group.addoption(
        "--clerk-profile",
        metavar="PATH",
        help="backend profile (a TOML file, or a pyproject.toml with [tool.clerk-harness]): collects one test per catalogue scenario",
    )
    group.addoption("--clerk-runtime", choices=RUNTIMES, help="where Postgres and the backend run (default: HARNESS_RUNTIME, else auto)")
    group.addoption("--clerk-only", metavar="PATTERNS", help="only scenarios whose id contains one of these comma-separated patterns, e.g. 'tokens.,cors.'")
    group.addoption("--clerk-backend-url", metavar="URL", help="an already running backend (environment scenarios are then not applicable)")
    group.addoption("--clerk-backend-dir", metavar="DIR", help="the backend's source folder, for profiles whose command runs from your checkout")
    group.addoption("--clerk-report-dir", metavar="DIR", help="where report.html and report.json go (default: a folder under pytest's basetemp)")


def pytest_configure(config: pytest.Config) -> None:
    profile = config.getoption("clerk_profile")
    if profile is None:
        return
    path = Path(profile)
    if not path.is_file():
        raise pytest.UsageError(f"--clerk-profile {profile}: no such file (a profile TOML, or a pyproject.toml with [tool.clerk-harness])")
    config.stash[RUN_KEY] = Run(config, path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Adds the scenarios before ``-k`` and ``-m`` deselect (this hook runs first)."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    try:
        catalogue = cli.scenarios(config.getoption("clerk_only"), run.profile)
    except cli.CliError as e:
        raise pytest.UsageError(str(e)) from e
    root = Profile.from_parent(session, path=run.profile, name=run.node_name, nodeid=run.node_name)
    groups: dict[str, Group] = {}
    scenarios = []
    for entry in catalogue:
        group_name, _, name = entry["id"].partition(".")
        if group_name not in groups:
            groups[group_name] = Group.from_parent(root, name=group_name)
        scenarios.append(Scenario.from_parent(groups[group_name], name=name or entry["id"], entry=entry))
    run.listed = [entry["id"] for entry in catalogue]
    items[:0] = scenarios
    # The terminal's "collected N items" and --collect-only's count come from collect reports.
    session.ihook.pytest_collectreport(report=pytest.CollectReport(root.nodeid, "passed", None, scenarios))


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Runs the harness once, for the selected scenarios, before any test runs."""
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or session.config.option.collectonly:
        return
    selected = [item for item in session.items if isinstance(item, Scenario)]
    if selected:
        run.execute(selected, session.config)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None or run.html is None:
        return
    terminalreporter.write_sep("-", "clerk-harness")
    if run.summary:
        terminalreporter.write_line(run.summary)
    if run.html.is_file():
        terminalreporter.write_line(f"HTML report: {run.html}")
        terminalreporter.write_line(f"JSON report: {run.json}")
    else:
        terminalreporter.write_line(f"no report: the harness exited {run.exit_code} before writing one")


@pytest.fixture(scope="session")
def clerk_harness(pytestconfig: pytest.Config):
    """A running environment for your own tests (see :class:`clerk_harness.Environment`).

    With ``--clerk-profile``: ``clerk-harness up`` brings up the profile's backend wired to the
    mock (its own instance, beside the catalogue's run). Without: ``mock-clerk serve`` alone,
    and ``backend_url`` is ``--clerk-backend-url`` (or None).

    .. code-block:: python

        import urllib.request

        def test_me_answers_the_signed_in_user(clerk_harness):
            token = clerk_harness.sign_in("ada@example.com")
            request = urllib.request.Request(clerk_harness.backend_url + "/api/me", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request) as answer:
                assert answer.status == 200
    """
    profile = pytestconfig.getoption("clerk_profile")
    try:
        if profile:
            env = Environment.up(profile, pytestconfig.getoption("clerk_runtime"), pytestconfig.getoption("clerk_backend_dir"))
        else:
            env = Environment.mock_only(pytestconfig.getoption("clerk_backend_url"))
    except cli.CliError as e:
        pytest.fail(str(e), pytrace=False)
    with env:
        yield env


class Profile(pytest.Collector):
    """The profile: the file-level node of the scenarios."""

    def collect(self):
        return []


class Group(pytest.Collector):
    """A catalogue section (tokens, env, cors, sync, webhooks, loops…), like a test class."""

    def collect(self):
        return []


class Scenario(pytest.Item):
    """One catalogue scenario; its outcome is the verdict of the session's one harness run."""

    def __init__(self, *, entry: dict, **kwargs):
        super().__init__(**kwargs)
        self.entry = entry
        self.scenario_id: str = entry["id"]
        # `-k tokens.expired` matches the scenario's id as well as its node names.
        self.extra_keyword_matches.add(self.scenario_id)

    def setup(self) -> None:
        result = self.config.stash[RUN_KEY].result(self.scenario_id)
        verdict = result.get("verdict")
        if verdict == "not_applicable":
            pytest.skip(result.get("note") or "not applicable")
        # A failure in setup is what pytest reports as an error; pytrace=False keeps the
        # plugin's own frames out of it.
        if verdict == "error":
            pytest.fail(f"clerk-harness could not judge {self.scenario_id}: {diagnosis_text(result)}", pytrace=False)
        if verdict not in ("pass", "warn", "fail"):
            pytest.fail(f"unknown verdict {verdict!r} from clerk-harness for {self.scenario_id}: {result}", pytrace=False)

    def runtest(self) -> None:
        result = self.config.stash[RUN_KEY].result(self.scenario_id)
        if result["verdict"] == "warn":
            # Located at the profile, not at this plugin's line: the finding is the backend's.
            message = ClerkHarnessWarning(f"{self.scenario_id}: {diagnosis_text(result)}")
            warnings.warn_explicit(message, ClerkHarnessWarning, filename=str(self.path), lineno=0)
        elif result["verdict"] == "fail":
            raise ScenarioFailed(diagnosis_text(result))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"{self.scenario_id}: {self.entry.get('title', '')}"


class Run:
    """The session's one harness run and its results."""

    def __init__(self, config: pytest.Config, profile: Path):
        self.profile = profile.resolve()
        self.node_name = os.path.relpath(self.profile, config.invocation_params.dir)
        self.html: Optional[Path] = None
        self.json: Optional[Path] = None
        self.listed: list[str] = []
        self.results: dict[str, dict] = {}
        self.not_run: dict[str, str] = {}
        self.failure: Optional[str] = None
        self.exit_code: Optional[int] = None
        self.summary = ""

    def command(self, selected: list[Scenario], config: pytest.Config) -> list[str]:
        command = [cli.binary(), "run", "--profile", str(self.profile), "--format", "json", "--output", str(self.json), "--html", str(self.html)]
        only = config.getoption("clerk_only")
        # Everything the catalogue listing gave still selected: the user's own pattern (or
        # none); a -k subset: its ids (patterns match by substring, extra results are ignored).
        if len(selected) < len(self.listed):
            only = ",".join(item.scenario_id for item in selected)
        if only:
            command += ["--only", only]
        for option, flag in (("clerk_runtime", "--runtime"), ("clerk_backend_url", "--backend-url"), ("clerk_backend_dir", "--backend-dir")):
            value = config.getoption(option)
            if value:
                command += [flag, value]
        return command

    def execute(self, selected: list[Scenario], config: pytest.Config) -> None:
        report_dir = config.getoption("clerk_report_dir")
        folder = Path(report_dir) if report_dir else config._tmp_path_factory.mktemp("clerk-harness", numbered=True)  # noqa: SLF001
        folder.mkdir(parents=True, exist_ok=True)
        self.html, self.json = folder.resolve() / "report.html", folder.resolve() / "report.json"
        command = self.command(selected, config)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        verbose = config.get_verbosity() > 0
        if reporter is not None and config.get_verbosity() >= 0:
            reporter.write_line(f"clerk-harness: running {len(selected)} scenario(s) on {self.node_name} …")
        lines: list[str] = []
        with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as process:
            for line in process.stderr or ():
                line = line.rstrip("\n")
                lines.append(line)
                if verbose and reporter is not None and line.startswith("["):
                    reporter.write_line(line)
        self.exit_code = process.returncode
        self.load(lines)

    def load(self, stderr: list[str]) -> None:
        """Reads the JSON report; without one every scenario is an error carrying the CLI's words."""
        try:
            report = json.loads(self.json.read_text())
        except (OSError, json.JSONDecodeError):
            tail = "\n".join(line for line in stderr if not line.startswith("["))[-4000:]
            self.failure = f"clerk-harness exited {self.exit_code} without a report:\n{tail}"
            return
        self.results = {r["id"]: r for r in report.get("scenarios", [])}
        stopped = report.get("stopped") or {}
        for scenario_id in stopped.get("not_run", []):
            self.not_run[scenario_id] = f"not run: {stopped.get('problem', '')} (fix: {stopped.get('fix', '')})"
        counts: dict[str, int] = {}
        for r in self.results.values():
            counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
        words = ", ".join(f"{counts.get(v, 0)} {v}" for v in ("pass", "warn", "fail", "error", "not_applicable"))
        self.summary = f"{report.get('profile', '')}: {words} — {report.get('environment', '')}"

    def result(self, scenario_id: str) -> dict:
        if scenario_id in self.results:
            return self.results[scenario_id]
        if scenario_id in self.not_run:
            return {"id": scenario_id, "verdict": "not_applicable", "note": self.not_run[scenario_id]}
        if self.failure:
            return {"id": scenario_id, "verdict": "error", "note": self.failure}
        return {"id": scenario_id, "verdict": "error", "note": "the harness run did not report this scenario (was it selected?)"}


def diagnosis_text(result: dict) -> str:
    """The diagnosis as the CLI's table prints it (problem, sent, expected, got, class, cause,
    fix, backend log), or the note when there is none."""
    d = result.get("diagnosis")
    if not d:
        return result.get("note", "")
    lines = [f"{result.get('title', result['id'])}", f"problem:  {d['summary']}", f"sent:     {d['sent']}", f"expected: {d['expected']}"]
    got = d.get("got")
    if got:
        hops = "".join(f"{r['status']} → {r['location']}, then " for r in got.get("redirects", []))
        lines.append(f"got:      {hops}{got['status']} {got.get('body', '')}".rstrip())
        lines += [f"          {k}: {v}" for k, v in got.get("headers", [])]
    reason = f" (Clerk SDK reason: {d['clerk_reason']})" if d.get("clerk_reason") else ""
    lines.append(f"class:    {d['class']}{reason}")
    if d.get("cause"):
        lines.append(f"cause:    {d['cause']['title']} — measured: {d['cause']['measurement']}")
    lines.append(f"fix:      {d['fix']}")
    if d.get("backend_log"):
        lines.append("backend log:")
        lines += [f"  | {line}" for line in d["backend_log"]]
    return "\n".join(lines)
