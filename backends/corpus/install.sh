#!/usr/bin/env bash
# Installs every corpus backend: a Python backend (requirements.txt) gets its virtualenv
# (backends/corpus/*/.venv) from its pinned requirements (PyPI); a Rust backend (Cargo.toml)
# is built with `cargo build --release --locked` into its own target/ (crates.io, its
# committed Cargo.lock). Idempotent: a backend whose inputs are unchanged (sha256 stamp in
# its .venv, or in its target/ over Cargo.toml, Cargo.lock, build.rs, src/ and migrations/)
# is skipped. Arguments: backend names to install only those.
# PYTHON=/path/to/python3.11 overrides the interpreter choice. A backend whose folder has a
# `python-version` file (one line, e.g. `3.12`) gets exactly that version: python3.12 on PATH
# (a pyenv shim counts only if it runs), else pyenv's /root/.pyenv/versions/3.12*/bin/python3.12
# (or $PYENV_ROOT's); no such interpreter is an error naming it.
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

# The interpreter of exactly version $1 (e.g. 3.12), for a backend with a python-version file.
pick_python_version() {
  local want="$1" candidate
  for candidate in "${PYTHON:-}" "python$want" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want"*/bin/"python$want" /root/.pyenv/versions/"$want"*/bin/"python$want"; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || [ -x "$candidate" ] || continue
    # A pyenv shim exists on PATH even when no installed version provides it: run it to know.
    if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; then
      echo "$candidate"; return 0
    fi
  done
  echo "install.sh: $2 needs Python $want (its python-version file) and none was found: install it (e.g. pyenv install $want) or set PYTHON=/path/to/python$want" >&2
  return 1
}

# Two test processes may install at once: serialise them.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$here/.install.lock"
  flock 9
fi

if [ $# -gt 0 ]; then names=("$@"); else
  names=()
  for manifest in "$here"/*/requirements.txt "$here"/*/Cargo.toml; do
    if [ -f "$manifest" ]; then names+=("$(basename "$(dirname "$manifest")")"); fi
  done
fi

# The sha256 of what a Rust backend's binary is built from.
cargo_inputs_hash() {
  local dir="$1"
  (
    cd "$dir"
    {
      for f in Cargo.toml Cargo.lock build.rs; do if [ -f "$f" ]; then echo "$f"; fi; done
      for d in src migrations; do if [ -d "$d" ]; then find "$d" -type f; fi; done
    } | LC_ALL=C sort | while read -r f; do sha256sum "$f"; done | sha256sum | cut -d' ' -f1
  )
}

build_cargo() {
  local dir="$1"
  local stamp="$dir/target/.installed-inputs"
  local want
  want="$(cargo_inputs_hash "$dir")"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  command -v cargo >/dev/null 2>&1 || { echo "install.sh: $dir needs cargo (https://rustup.rs)" >&2; return 1; }
  # Its own target/, whatever CARGO_TARGET_DIR the caller builds the workspace with.
  cargo build --release --locked --quiet --manifest-path "$dir/Cargo.toml" --target-dir "$dir/target"
  echo "$want" > "$stamp"
  echo "install.sh: $dir/target/release built" >&2
}

failed=()
for name in "${names[@]}"; do
  dir="$here/$name"
  if [ -f "$dir/Cargo.toml" ]; then
    build_cargo "$dir"
    continue
  fi
  [ -f "$dir/requirements.txt" ] || { echo "install.sh: no backend $name (no $dir/requirements.txt or $dir/Cargo.toml)" >&2; exit 1; }
  venv="$dir/.venv"
  stamp="$venv/.installed-requirements"
  # Over requirements.txt, and its python-version file if any (a changed version rebuilds).
  inputs=("$dir/requirements.txt"); if [ -f "$dir/python-version" ]; then inputs+=("$dir/python-version"); fi
  want="$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys' 2>/dev/null && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    continue
  fi
  if [ -f "$dir/python-version" ]; then
    # A missing interpreter fails this backend only: the others are still installed.
    if ! python="$(pick_python_version "$(tr -d '[:space:]' < "$dir/python-version")" "$name")"; then
      failed+=("$name"); continue
    fi
  else
    python="$(pick_python)"
  fi
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
  echo "$want" > "$stamp"
  echo "install.sh: $venv ready" >&2
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "install.sh: not installed (no interpreter of the version they ask for): ${failed[*]}" >&2
  exit 1
fi
