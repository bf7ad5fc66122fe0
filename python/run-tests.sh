#!/usr/bin/env bash
# The Python package's tests: the pytest plugin against a stand-in CLI (tests/test_plugin.py,
# about 6 s) and the wheel end to end (tests/test_wheel.py: scripts/build-wheel, a fresh
# virtualenv without cargo/rustc on PATH, `pytest --clerk-profile` on a corpus backend).
# pytest comes pinned from PyPI into python/.venv-test (made here). Arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pin="pytest==8.4.2"
venv="$here/.venv-test"
if ! "$venv/bin/python" -c 'import pytest, sys; sys.exit(pytest.__version__ != sys.argv[1])' "${pin#pytest==}" 2>/dev/null; then
	python=""
	for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
		[ -n "$candidate" ] || continue
		if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then python="$candidate"; break; fi
	done
	[ -n "$python" ] || { echo "python/run-tests.sh: no Python >= 3.11 found (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
	"$python" -m venv "$venv"
	"$venv/bin/pip" install --quiet --disable-pip-version-check "$pin"
fi
cd "$here"
PYTHONPATH="$here/src" exec "$venv/bin/python" -m pytest -p no:cacheprovider tests "$@"
