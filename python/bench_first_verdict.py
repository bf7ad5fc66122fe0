#!/usr/bin/env python3
"""How long a Python team waits from `pip install <wheel>` to the first verdict.

    python3 python/bench_first_verdict.py [corpus-backend] [--runs N]

Builds the wheel (scripts/build-wheel; a no-op when up to date), then per run: a fresh
virtualenv (not timed: the team has one), `pip install <wheel>` (timed), and `clerk-harness
run` on backends/corpus/<backend> (default clerk-sdk-fastapi, local runtime) until its first
progress line (timed); the run is then interrupted (SIGINT: a clean teardown). Prints each
run and the median. A measurement, not a test: it asserts nothing.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", nargs="?", default="clerk-sdk-fastapi")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    profile = ROOT / "backends" / "corpus" / args.backend / "profile.toml"
    wheel = subprocess.run(["bash", str(ROOT / "scripts" / "build-wheel")], capture_output=True, text=True, check=True).stdout.split()[-1]
    print(f"wheel {Path(wheel).name}: {Path(wheel).stat().st_size / 1e6:.1f} MB")
    totals = []
    for n in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run([sys.executable, "-m", "venv", folder], check=True)
            bin_dir = Path(folder) / "bin"
            started = time.monotonic()
            subprocess.run([str(bin_dir / "pip"), "install", "--quiet", "--no-index", "--disable-pip-version-check", wheel], check=True)
            installed = time.monotonic()
            first = run_until_first_verdict(bin_dir / "clerk-harness", profile, Path(folder) / "report.json")
            done = time.monotonic()
            totals.append(done - started)
            print(f"run {n + 1}: pip install {installed - started:.1f} s, run to the first verdict {done - installed:.1f} s, total {done - started:.1f} s — {first}")
    print(f"median from `pip install` to the first verdict: {statistics.median(totals):.1f} s over {len(totals)} runs")


def run_until_first_verdict(program: Path, profile: Path, output: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("CLERK_HARNESS_BIN", "MOCK_CLERK_BIN")}
    command = [str(program), "run", "--profile", str(profile), "--runtime", "local", "--format", "json", "--output", str(output)]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) as process:
        first = ""
        for line in process.stderr:
            if line.lstrip().startswith("[") and "/" in line.split("]")[0]:
                first = line.strip()
                break
        process.send_signal(signal.SIGINT)
        process.stderr.read()
        process.wait()
    if not first:
        sys.exit(f"{' '.join(command)} exited {process.returncode} before its first verdict")
    return first


if __name__ == "__main__":
    main()
