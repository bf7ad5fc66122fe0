#!/usr/bin/env bash
# Runs the reference backend's own test suite: installs the venv (+ test deps), then pytest.
# Starts a throwaway PostgreSQL from local binaries unless DATABASE_URL is set.
# Extra arguments go to pytest (e.g. -k webhook, -x).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/install.sh" "$here/requirements-test.txt"
cd "$here"
exec "$here/.venv/bin/python" -m pytest "$@"
