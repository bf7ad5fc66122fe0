"""clerk-harness for Python teams.

The wheel puts two programs on PATH: ``clerk-harness`` (runs the Clerk-auth scenario
catalogue against your real backend) and ``mock-clerk`` (the offline Clerk on its own). This
package is their pytest face: the ``pytest11`` plugin in :mod:`clerk_harness.plugin` turns
``pytest --clerk-profile PROFILE`` into one test per scenario, and :class:`Environment` (the
``clerk_harness`` fixture) keeps a backend wired to the mock running for your own tests.

Nothing here re-implements the harness: every verdict, token and URL comes from the CLI.
"""

from clerk_harness.cli import CliError, binary
from clerk_harness.environment import Environment

__all__ = ["CliError", "Environment", "binary"]
