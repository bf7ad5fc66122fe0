"""A running environment for your own tests: ``clerk-harness up`` or ``mock-clerk serve``.

With a profile, ``clerk-harness up --profile P`` brings up Postgres, the mock Clerk and your
backend exactly as a run does and prints one JSON line; without one, ``mock-clerk serve
--intercept`` runs the mock alone (``backend_url`` is then whatever ``--clerk-backend-url``
said, or None). Either way the process is ended when the environment is closed, and it ends
itself if this process dies (its standard input closes).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import urllib.request
from typing import Optional

from clerk_harness.cli import CliError, binary

#: How long a bring-up may take before the fixture gives up (the CLI has its own limits inside).
READY_TIMEOUT_SECS = 180


class Environment:
    """What a test needs to talk to the backend as the SPA would.

    Attributes:
        backend_url: the backend under test (``None`` for a bare mock with no ``--clerk-backend-url``).
        spa_origin: the SPA's origin, the ``azp`` of the tokens :meth:`sign_in` returns.
        fapi_url, api_url, jwks_url: the mock's Frontend API, Backend API and JWKS over plain HTTP.
        secret_key, publishable_key, issuer: the mock instance's keys and ``iss``.
        info: everything the program printed when it was ready.
    """

    def __init__(self, command: list[str], backend_url: Optional[str] = None):
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._stderr: list[str] = []
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()
        ready = self._ready_line(command)
        mock = ready.get("mock", ready)
        self.info = ready
        # No trailing slash, so `backend_url + "/api/me"` is the path the backend routes.
        url = ready.get("backend_url", backend_url)
        self.backend_url: Optional[str] = url.rstrip("/") if url else None
        self.spa_origin: str = ready.get("spa_origin", "http://localhost:3000")
        self.fapi_url: str = mock["fapi_url"].rstrip("/")
        self.api_url: str = mock["api_url"].rstrip("/")
        self.jwks_url: str = mock["jwks_url"]
        self.secret_key: str = mock["secret_key"]
        self.publishable_key: str = mock["publishable_key"]
        self.issuer: str = mock["issuer"]

    @classmethod
    def up(cls, profile: str, runtime: Optional[str] = None, backend_dir: Optional[str] = None) -> "Environment":
        """``clerk-harness up``: the profile's backend, Postgres and the mock, wired together."""
        command = [binary(), "up", "--profile", profile, "--until-stdin-closes"]
        if runtime:
            command += ["--runtime", runtime]
        if backend_dir:
            command += ["--backend-dir", backend_dir]
        return cls(command)

    @classmethod
    def mock_only(cls, backend_url: Optional[str] = None) -> "Environment":
        """``mock-clerk serve --intercept``: the mock alone, for a backend you run yourself."""
        return cls([binary("mock-clerk"), "serve", "--intercept"], backend_url=backend_url)

    def sign_in(self, email: str = "user@example.com", **user: object) -> str:
        """Creates a Clerk user with an active session in the mock and returns a session token
        for it, minted for the SPA's origin: what ``getToken()`` gives the SPA.

        Extra keyword arguments go into the user (``first_name``, ``last_name``, ``external_id``…).
        """
        created = self.admin("/_mock/users", {"email_addresses": [email], **user})
        session = self.admin("/_mock/sessions", {"user_id": created["id"]})
        return self.admin("/_mock/tokens", {"session_id": session["id"], "origin": self.spa_origin})["jwt"]

    def admin(self, path: str, body: dict) -> dict:
        """POSTs ``body`` to the mock's admin API (``mock-clerk --help`` lists its routes)."""
        request = urllib.request.Request(
            self.api_url + path,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.secret_key}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def close(self) -> None:
        """Tears the environment down (SIGTERM, then waits for the teardown to finish)."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdin:
            self._process.stdin.close()
        self._drain.join(timeout=5)

    def __enter__(self) -> "Environment":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _read_stderr(self) -> None:
        for line in self._process.stderr or ():
            self._stderr.append(line.rstrip("\n"))

    def _ready_line(self, command: list[str]) -> dict:
        """The program's one JSON line on stdout, or an error carrying what it said on stderr."""
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self._process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT_SECS)
        line = box[0] if box else ""
        if not line.strip():
            self.close()
            said = "\n".join(self._stderr[-30:])
            waited = "" if box else f" within {READY_TIMEOUT_SECS} s"
            raise CliError(f"{' '.join(command)} did not become ready{waited} (exit {self._process.returncode}):\n{said}")
        return json.loads(line)
