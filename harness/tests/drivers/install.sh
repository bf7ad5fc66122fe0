#!/usr/bin/env bash
# Creates harness/tests/drivers/.venv with the pinned Python Postgres drivers the
# database_drivers test connects with ({database_url} and its variants). Idempotent: when
# requirements.txt is installed unchanged, it only checks a stamp. scripts/test runs it, and
# the test itself does (under a lock) when the venv is missing.
# PYTHON=/path/to/python3.11 overrides the interpreter choice.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
stamp="$venv/.installed-requirements"

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

# Two harness processes may install at once: serialise them.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$here/.install.lock"
  flock 9
fi

reqs=("$here/requirements.txt")
for extra in "$@"; do reqs+=("$(cd "$(dirname "$extra")" && pwd)/$(basename "$extra")"); done

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  up_to_date=1
  for r in "${reqs[@]}"; do
    line="$(sha256sum "$r" | cut -d' ' -f1) $(basename "$r")"
    grep -qxF "$line" "$stamp" 2>/dev/null || up_to_date=0
  done
  [ "$up_to_date" = 1 ] && exit 0
else
  rm -rf "$venv"
  py="$(pick_python)"
  "$py" -m venv "$venv"
fi

args=()
for r in "${reqs[@]}"; do args+=(-r "$r"); done
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}"
for r in "${reqs[@]}"; do
  name="$(basename "$r")"
  { grep -v " $name\$" "$stamp" 2>/dev/null || true; echo "$(sha256sum "$r" | cut -d' ' -f1) $name"; } > "$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
done
echo "install.sh: $venv ready" >&2
