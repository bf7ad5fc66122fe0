#!/usr/bin/env bash
# Creates the virtualenv of every corpus backend (backends/corpus/*/.venv) from its pinned
# requirements.txt (PyPI). Idempotent: a backend whose requirements are installed unchanged
# (sha256 stamp in its .venv) is skipped. Arguments: backend names to install only those.
# PYTHON=/path/to/python3.11 overrides the interpreter choice.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "install.sh: no Python >= 3.11 found (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

# Two test processes may install at once: serialise them.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$here/.install.lock"
  flock 9
fi

if [ $# -gt 0 ]; then names=("$@"); else
  names=()
  for req in "$here"/*/requirements.txt; do names+=("$(basename "$(dirname "$req")")"); done
fi

for name in "${names[@]}"; do
  dir="$here/$name"
  [ -f "$dir/requirements.txt" ] || { echo "install.sh: no backend $name (no $dir/requirements.txt)" >&2; exit 1; }
  venv="$dir/.venv"
  stamp="$venv/.installed-requirements"
  want="$(sha256sum "$dir/requirements.txt" | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    continue
  fi
  rm -rf "$venv"
  "$(pick_python)" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
  echo "$want" > "$stamp"
  echo "install.sh: $venv ready" >&2
done
