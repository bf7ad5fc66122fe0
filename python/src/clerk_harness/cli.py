"""Finding and calling the ``clerk-harness`` and ``mock-clerk`` programs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


class CliError(RuntimeError):
    """A program of the wheel is missing or answered with an error."""


def binary(name: str = "clerk-harness") -> str:
    """The path of ``clerk-harness`` or ``mock-clerk``.

    ``CLERK_HARNESS_BIN`` / ``MOCK_CLERK_BIN`` override it (a build from a checkout); else the
    one installed beside this interpreter (the wheel's), else the first on PATH.
    """
    override = os.environ.get(name.upper().replace("-", "_") + "_BIN")
    if override:
        return override
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise CliError(
        f"`{name}` was not found beside {sys.executable} nor on PATH: "
        f"install the wheel in this environment (pip install clerk-harness) "
        f"or set {name.upper().replace('-', '_')}_BIN to the program"
    )


def scenarios(only: str | None = None, profile: Path | None = None) -> list[dict]:
    """The catalogue (``clerk-harness scenarios --format json``): id, group, title, sends, expects;
    with ``profile``, the profile's replays (``replay.*``, written by ``clerk-harness replay``) too."""
    command = [binary(), "scenarios", "--format", "json"]
    if only:
        command += ["--only", only]
    if profile is not None:
        command += ["--profile", str(profile)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CliError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as e:
        raise CliError(f"{' '.join(command)} printed no JSON list ({e}); is clerk-harness older than this plugin?") from e
