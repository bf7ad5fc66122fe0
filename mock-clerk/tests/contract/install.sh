#!/usr/bin/env bash
# Creates mock-clerk/tests/contract/.venv with schemathesis (requirements.txt, every package
# pinned). Skipped when the venv already holds exactly these requirements (a stamp with the
# file's hash): ~25 s the first time, ~0.1 s after.
# PYTHON=/path/to/python3.11 overrides the interpreter choice.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.installed-requirements"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"

if [ -x "$venv/bin/st" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

python=""
for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
  [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 || continue
  if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    python="$candidate"; break
  fi
done
[ -n "$python" ] || { echo "contract/install.sh: schemathesis needs Python >= 3.10 (set PYTHON=/path/to/python3)" >&2; exit 1; }

rm -rf "$venv"
"$python" -m venv "$venv" || { echo "contract/install.sh: '$python -m venv' failed: install the venv module (Debian: apt-get install python3-venv)" >&2; exit 1; }
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "$want" > "$stamp"
