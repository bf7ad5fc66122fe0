"""The backend as the harness runs it: ``uvicorn app:app`` in a child process, configured only by
env, reaching "Clerk" through HTTPS_PROXY + SSL_CERT_FILE; the setup command; start-up errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from refbackend.config import FAULTS, REQUIRED_VARS

from .conftest import base_env
from .fakes import DOMAIN, FakeClerk
from .tls import ConnectProxy, FakeClerkHttps, write_ca_and_cert

HERE = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
START_DEADLINE_SECONDS = 20


def child_env(extra: dict[str, str]) -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
    return {**keep, **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = ""
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=HERE,
            env=child_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_healthy(self) -> float:
        started = time.monotonic()
        while time.monotonic() - started < START_DEADLINE_SECONDS:
            if self.proc.poll() is not None:
                raise AssertionError(f"backend exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"backend not healthy after {START_DEADLINE_SECONDS} s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def output(self) -> str:
        if self.proc.poll() is not None and self.proc.stdout and not self.proc.stdout.closed:
            self.log += self.proc.stdout.read().decode(errors="replace")
            self.proc.stdout.close()
        return self.log


def run_to_exit(env: dict[str, str], timeout: float = 20) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [str(VENV_BIN / "uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=HERE,
        env=child_env(env),
        capture_output=True,
        timeout=timeout,
    )
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace"), time.monotonic() - started


@pytest.mark.parametrize("missing", REQUIRED_VARS)
def test_missing_required_variable_exits_non_zero_at_once_naming_it(missing):
    env = base_env("postgresql://nobody@127.0.0.1:1/none")
    del env[missing]
    code, output, seconds = run_to_exit(env)
    assert code != 0
    assert missing in output
    assert seconds < 10


def test_unknown_fault_exits_listing_the_valid_names():
    env = {**base_env("postgresql://nobody@127.0.0.1:1/none"), "REFERENCE_FAULTS": "skip_issuer,no_such_fault"}
    code, output, _ = run_to_exit(env)
    assert code != 0
    assert "no_such_fault" in output
    assert all(name in output for name in FAULTS)


def test_unreachable_database_exits_non_zero():
    code, output, _ = run_to_exit(base_env("postgresql://nobody@127.0.0.1:1/none"))
    assert code != 0
    assert "cannot create the schema" in output


def test_setup_command_creates_the_schema_idempotently(db_url):
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "app.py", "setup"], cwd=HERE, env=child_env({"DATABASE_URL": db_url}), capture_output=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr.decode()
    with psycopg.connect(db_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "webhook_events"} <= tables


def test_setup_command_without_database_url_fails():
    proc = subprocess.run([sys.executable, "app.py", "setup"], cwd=HERE, env=child_env({}), capture_output=True, timeout=60)
    assert proc.returncode != 0 and b"DATABASE_URL" in proc.stderr


@pytest.fixture
def https_clerk(tmp_path, clerk: FakeClerk):
    ca, cert, key = write_ca_and_cert(str(tmp_path), [DOMAIN, "api.clerk.com"])
    server = FakeClerkHttps(clerk, cert, key)
    proxy = ConnectProxy(server.port)
    yield {"ca": ca, "proxy": f"http://127.0.0.1:{proxy.port}", "targets": proxy.targets}
    proxy.close()
    server.close()


def test_end_to_end_through_the_proxy_with_a_private_ca(db_url, clerk, https_clerk, record_property):
    env = {**base_env(db_url), "HTTPS_PROXY": https_clerk["proxy"], "SSL_CERT_FILE": https_clerk["ca"], "NO_PROXY": "127.0.0.1,localhost"}
    server = Server(env)
    try:
        seconds = server.wait_healthy()
        record_property("startup_to_healthy_seconds", round(seconds, 2))
        print(f"\nstart-up to healthy /health: {seconds:.2f} s")
        user = clerk.add_user(emails=["e2e@example.com"])
        resp = httpx.get(f"{server.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {clerk.token(sub=user['id'])}"}, timeout=15)
        assert resp.status_code == 200, f"{resp.text}\n{server.output()}"
        assert resp.json()["email"] == "e2e@example.com"
        assert sorted(set(https_clerk["targets"])) == sorted({f"{DOMAIN}:443", "api.clerk.com:443"})
        resp = httpx.get(f"{server.url}/api/v1/auth/me", timeout=5)
        assert resp.status_code == 401 and resp.json()["reason"] == "token-missing"
    finally:
        server.stop()
    log = server.output()
    assert "reason=token-missing" in log  # rejections reach the log the harness captures
    assert "no seeded faults" in log


def test_start_without_keys_fault_starts_with_keys_missing(db_url):
    env = {**base_env(db_url), "REFERENCE_FAULTS": "start_without_keys"}
    del env["CLERK_SECRET_KEY"], env["NEXT_PUBLIC_CLERK_DOMAIN"]
    server = Server(env)
    try:
        server.wait_healthy()
    finally:
        server.stop()
    log = server.output()
    assert "CLERK_SECRET_KEY is not set" in log and "start_without_keys" in log
