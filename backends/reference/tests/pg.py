"""A throwaway PostgreSQL server from the local binaries (initdb/pg_ctl), for the test session.

Run as an unprivileged user when the tests run as root (postgres refuses root), in a temp dir,
on a free port, fsync off; stopped and deleted by ``stop()``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if candidates:
        return candidates[-1]
    raise RuntimeError(
        f"{name} not found on PATH or under /usr/lib/postgresql/*/bin: install PostgreSQL "
        "(e.g. apt-get install postgresql) or set DATABASE_URL to an existing server"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPostgres:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="refbackend-pg-")
        self.user: str | None = None
        if os.geteuid() == 0:
            for candidate in ("postgres", "nobody"):
                try:
                    pw = pwd.getpwnam(candidate)
                except KeyError:
                    continue
                self.user = candidate
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
                break
            else:
                raise RuntimeError("running as root and neither user 'postgres' nor 'nobody' exists")
        os.chmod(self.dir, 0o700)
        self.data = os.path.join(self.dir, "data")
        self.port = 0
        self.started = False

    def _run(self, args: list[str]) -> None:
        subprocess.run(args, user=self.user, check=True, capture_output=True, timeout=120, cwd=self.dir)

    def start(self) -> "LocalPostgres":
        try:
            self._run([_binary("initdb"), "-D", self.data, "-U", "postgres", "-A", "trust", "-N", "-E", "UTF8"])
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed: {exc.stderr.decode(errors='replace')}") from exc
        last_error = ""
        for _ in range(3):  # the port may be taken between probing and binding
            self.port = _free_port()
            opts = (
                f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                self._run([_binary("pg_ctl"), "-D", self.data, "-o", opts, "-l", os.path.join(self.dir, "log"), "-w", "-t", "30", "start"])
                self.started = True
                return self
            except subprocess.CalledProcessError as exc:
                last_error = exc.stdout.decode(errors="replace") + exc.stderr.decode(errors="replace")
                time.sleep(0.2)
        raise RuntimeError(f"pg_ctl start failed: {last_error}")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.started:
            try:
                self._run([_binary("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop"])
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
