#!/usr/bin/env python3
"""Clerk's own contract, held by a property-based tester: schemathesis against `mock-clerk serve`.

Starts the mock with seed.toml (users and sessions with ids of the spec's shapes), adds
organisations, a membership, an API key and a signed-in browser through the mock's own APIs,
then runs schemathesis over every operation of Clerk's Frontend API and Backend API specs
(openapi/): `not_a_server_error` on all of them, every check on the operations the mock
implements (fapi.toml, bapi.toml). The seeded ids are schemathesis dictionaries, so generated
requests reach existing resources as well as missing ones. Where Clerk's spec is wrong,
hooks.py corrects it, each correction with its evidence.

The seed is fixed and the example count bounded: the same command finds the same cases.
Usage: run.py --mock-clerk target/debug/mock-clerk [--examples 5] [--seed N] [--workers 1]
Prints each run's time; exits 1 on any failure (the failures are printed), 2 on a setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import select
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
OPENAPI = HERE.parents[2] / "openapi"
VENV_ST = HERE / ".venv" / "bin" / "st"


class SetupError(Exception):
    """The suite could not start (mock, seeding, schemathesis): says what to do."""


def start_mock(binary: pathlib.Path, log) -> tuple[subprocess.Popen, dict]:
    if not binary.is_file():
        raise SetupError(f"{binary} does not exist: build it first (cargo build -p mock-clerk --bin mock-clerk)")
    proc = subprocess.Popen([str(binary), "serve", "--config", str(HERE / "seed.toml")], stdout=subprocess.PIPE, stderr=log, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        proc.wait()
        raise SetupError(f"mock-clerk serve printed no ready line within 30 s (its stderr is in {log.name})")
    return proc, json.loads(line)


def call(url: str, method: str, body: dict | None, secret_key: str) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"Bearer {secret_key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        raise SetupError(f"seeding: {method} {url} answered {e.code}: {e.read().decode(errors='replace')}") from e


def seed(ready: dict) -> dict[str, list[str]]:
    """Adds what seed.toml cannot hold; returns the ids by path-parameter name."""
    api, key = ready["api_url"], ready["secret_key"]
    users = [u["id"] for u in ready["users"]]
    sessions = [s["id"] for s in ready["sessions"]]
    orgs = [call(f"{api}/v1/organizations", "POST", {"name": name, "created_by": users[0]}, key)["id"] for name in ("Analytical Engines", "Compilers")]
    call(f"{api}/v1/organizations/{orgs[0]}/memberships", "POST", {"user_id": users[1], "role": "org:member"}, key)
    api_key = call(f"{api}/v1/api_keys", "POST", {"name": "contract key", "subject": users[0]}, key)
    browser = call(f"{api}/_mock/browser", "POST", {"session_id": sessions[0]}, key)
    return {
        "user_id": users,
        "session_id": sessions,
        "organization_id": orgs,
        "template_name": ["backend"],
        "apiKeyID": [api_key["id"]],
        "dev_browser": [browser["dev_browser"]],
    }


def config(base: pathlib.Path, ids: dict[str, list[str]], auth: str) -> str:
    """The checked-in config plus the seeded ids as dictionaries (and the FAPI's dev browser)."""
    text = base.read_text() + "\n# Added by run.py: the seeded ids.\n"
    for name, values in ids.items():
        if name != "dev_browser":
            text += f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n"
    text += "[parameters]\n"
    for name in ids:
        if name != "dev_browser":
            text += f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}\n'
    if auth:
        text += f'[auth.openapi.DevBrowser]\napi_key = "{auth}"\n'
    return text


def implemented(config_file: pathlib.Path) -> list[str]:
    """The operation ids every check runs on (the `[[operations]]` with `checks.enabled`)."""
    data = tomllib.loads(config_file.read_text())
    return [op_id for op in data.get("operations", []) if op.get("checks", {}).get("enabled") for op_id in op.get("include-operation-id", [])]


def run_schemathesis(name: str, spec: pathlib.Path, url: str, config_text: str, headers: list[str], args, workdir: pathlib.Path, ops: list[str]) -> tuple[bool, float, str]:
    config_file = workdir / f"{name}.toml"
    config_file.write_text(config_text)
    command = [str(VENV_ST), "--no-color", "--config-file", str(config_file), "run", str(spec), "--url", url, "--seed", str(args.seed), "--max-examples", str(args.examples),
               "--phases", "examples,coverage,fuzzing", "--workers", str(args.workers), "--no-shrink", "--suppress-health-check", "all", "--warnings", "off"]
    for header in headers:
        command += ["-H", header]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="hooks", PYTHONPATH=str(HERE), CONTRACT_IMPLEMENTED=",".join(ops))
    started = time.monotonic()
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    return result.returncode == 0, time.monotonic() - started, result.stdout + result.stderr


def report(name: str, ok: bool, seconds: float, output: str) -> None:
    lines = output.splitlines()
    summary = next((i for i, line in enumerate(lines) if "SUMMARY" in line), len(lines))
    if not ok:
        start = next((i for i, line in enumerate(lines) if "FAILURES" in line or "ERRORS" in line), summary)
        # The failures, without schemathesis's advice on links between operations.
        print("\n".join(line for line in lines[start:summary] if not line.startswith(("No links", "💡", "  - "))))
    print("\n".join(lines[summary:]))
    print(f"contract {name}: {'passed' if ok else 'FAILED'} in {seconds:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mock-clerk", type=pathlib.Path, required=True, help="the mock-clerk binary")
    parser.add_argument("--examples", type=int, default=5, help="max examples per operation and phase (default 5)")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--workers", type=int, default=1, help="schemathesis workers (default 1: the same order every run)")
    parser.add_argument("--only", choices=["fapi", "bapi"], help="run one spec only")
    args = parser.parse_args()
    if not VENV_ST.exists():
        print(f"{VENV_ST} is missing: run {HERE / 'install.sh'} first", file=sys.stderr)
        return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mock-clerk-contract-") as tmp:
        workdir = pathlib.Path(tmp)
        with open(workdir / "mock-clerk.log", "w") as log:
            try:
                proc, ready = start_mock(args.mock_clerk, log)
            except SetupError as e:
                print(f"contract: {e}", file=sys.stderr)
                return 2
            try:
                ids = seed(ready)
                results = []
                # FAPI first: the Backend API run revokes and deletes what it finds.
                if args.only in (None, "fapi"):
                    base = HERE / "fapi.toml"
                    fapi_ids = {k: v for k, v in ids.items() if k in ("session_id", "template_name")}
                    results.append(("FAPI", *run_schemathesis("fapi", OPENAPI / "fapi-2025-11-10.yml", ready["fapi_url"], config(base, fapi_ids, ids["dev_browser"][0]), [], args, workdir, implemented(base))))
                if args.only in (None, "bapi"):
                    base = HERE / "bapi.toml"
                    headers = [f"Authorization: Bearer {ready['secret_key']}"]
                    results.append(("BAPI", *run_schemathesis("bapi", OPENAPI / "bapi-2025-11-10.yml", ready["api_url"] + "/v1", config(base, ids, ""), headers, args, workdir, implemented(base))))
            except SetupError as e:
                print(f"contract: {e}", file=sys.stderr)
                return 2
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    for name, ok, seconds, output in results:
        report(name, ok, seconds, output)
    print(f"contract suite: {sum(ok for _, ok, _, _ in results)}/{len(results)} specs passed in {time.monotonic() - started:.1f} s (seed {args.seed}, {args.examples} examples per operation)")
    return 0 if all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
