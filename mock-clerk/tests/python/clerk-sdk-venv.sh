#!/usr/bin/env bash
# Builds (once) a venv with Clerk's official Python SDK, clerk-backend-api, pinned, and prints
# its interpreter's path. Used by mock-clerk/tests/python_sdk.rs.
#
#   mock-clerk/tests/python/clerk-sdk-venv.sh            # prints /…/bin/python
#
# The venv is cached outside the cargo target dir (survives `cargo clean`), keyed by the Python
# and SDK versions: ${CLERK_HARNESS_PY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clerk-harness/python}.
# The first run needs python3-venv and PyPI; later runs are offline. The venv is built next to
# its final place and renamed, so it is either complete or absent, even with concurrent builders.
set -euo pipefail

SDK_VERSION="${CLERK_SDK_VERSION:-7.0.0}"
python="$(command -v python3 || true)"
if [[ -z "$python" ]]; then
    echo "python3 not found on PATH: the Clerk Python SDK tests need it (apt-get install python3 python3-venv)" >&2
    exit 1
fi
py_version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
root="${CLERK_HARNESS_PY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clerk-harness/python}"
venv="$root/py$py_version-clerk-backend-api-$SDK_VERSION"
if [[ -x "$venv/bin/python" ]]; then
    echo "$venv/bin/python"
    exit 0
fi

mkdir -p "$root"
building="$(mktemp -d "$root/building-XXXXXX")"
trap 'rm -rf "$building"' EXIT
if ! "$python" -m venv "$building" >&2; then
    echo "python3 -m venv failed: install python3-venv" >&2
    exit 1
fi
if ! "$building/bin/python" -m pip install --quiet --disable-pip-version-check "clerk-backend-api==$SDK_VERSION" >&2; then
    echo "pip install clerk-backend-api==$SDK_VERSION failed: the first run needs PyPI" >&2
    exit 1
fi
# Only the interpreter is used (never the venv's scripts, whose shebangs name the build
# path), so renaming the finished venv into place is safe.
if mv -T "$building" "$venv" 2>/dev/null; then
    trap - EXIT
fi
# Else another builder won the race; its venv is as good as ours (the trap removes ours).
echo "$venv/bin/python"
