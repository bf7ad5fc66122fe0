#!/usr/bin/env bash
# The contract suite as scripts/test runs it: the schemathesis virtualenv (install.sh, skipped
# when up to date), the mock-clerk binary (cargo build, incremental), then run.py: schemathesis
# over Clerk's Backend and Frontend API specs against `mock-clerk serve`: 62 s on an idle
# 2-core machine, 2 min 51 s when three builds share it; run.py prints each spec's time.
# Extra arguments go to run.py (e.g. --examples 20, --only bapi, --mock-clerk /path/to/binary).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../../.."
bash "$here/install.sh"
cargo build --quiet -p mock-clerk --bin mock-clerk
target="$(cargo metadata --format-version 1 --no-deps | "$here/.venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
args=(--mock-clerk "$target/debug/mock-clerk")
for a in "$@"; do [ "$a" = --mock-clerk ] && args=(); done
exec "$here/.venv/bin/python" "$here/run.py" "${args[@]}" "$@"
