#!/usr/bin/env python3
"""A stand-in for `clerk-harness` in the plugin's tests: the catalogue and the report come from
FAKE_CLI_DIR/catalogue.json and FAKE_CLI_DIR/report.json, and every call's arguments are
appended to FAKE_CLI_DIR/calls.jsonl. FAKE_CLI_EXIT makes `run` exit with that code; with
FAKE_CLI_NO_REPORT=1 it writes no report (an environment that did not come up)."""

import json
import os
import sys
from pathlib import Path

here = Path(os.environ["FAKE_CLI_DIR"])
args = sys.argv[1:]
with open(here / "calls.jsonl", "a") as calls:
    calls.write(json.dumps(args) + "\n")


def option(name):
    return args[args.index(name) + 1] if name in args else None


if args[0] == "scenarios":
    catalogue = json.loads((here / "catalogue.json").read_text())
    only = option("--only")
    if only:
        catalogue = [s for s in catalogue if any(p in s["id"] for p in only.split(","))]
    print(json.dumps(catalogue))
elif args[0] == "run":
    report = json.loads((here / "report.json").read_text())
    for i, r in enumerate(report["scenarios"]):
        print(f"[{i + 1:>2}/{len(report['scenarios'])}] {r['verdict']:<4} {r['id']}", file=sys.stderr)
    if os.environ.get("FAKE_CLI_NO_REPORT") == "1":
        print("clerk-harness: the environment did not come up: Postgres binaries not found: apt-get install postgresql", file=sys.stderr)
        sys.exit(2)
    Path(option("--output")).write_text(json.dumps(report))
    Path(option("--html")).write_text("<html>report</html>")
    sys.exit(int(os.environ.get("FAKE_CLI_EXIT", "0")))
else:
    sys.exit(f"fake clerk-harness: unexpected arguments {args}")
