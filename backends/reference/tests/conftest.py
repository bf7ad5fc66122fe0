from __future__ import annotations

import os
import secrets
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import psycopg
from psycopg.rows import dict_row
import pytest
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from refbackend.clock import Clock
from refbackend.config import load_settings
from refbackend.main import create_app

from .fakes import DOMAIN, PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, FakeClerk, Key
from .pg import LocalPostgres

ALLOWED_ORIGIN = "http://localhost:3000"
WILDCARD_ORIGINS = "https://*.example.app"


def base_env(database_url: str) -> dict[str, str]:
    return {
        "CLERK_SECRET_KEY": SECRET_KEY,
        "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "NEXT_PUBLIC_CLERK_DOMAIN": DOMAIN,
        "DATABASE_URL": database_url,
        "CLERK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ENV": "production",
        "CORS_ORIGINS": f"{ALLOWED_ORIGIN},{WILDCARD_ORIGINS}",
    }


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """DATABASE_URL when given (must allow CREATE DATABASE), else a local throwaway server."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    server = LocalPostgres().start()
    try:
        yield server.admin_url
    finally:
        server.stop()


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def db_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = "ref_" + secrets.token_hex(6)
    admin = _libpq(pg_admin_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        # FILE_COPY is ~4x faster than PG 15's default WAL_LOG for tiny databases.
        strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(f'CREATE DATABASE "{name}"{strategy}')
    yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def keys() -> dict[str, Key]:
    return {"main": Key.generate(), "rotated": Key.generate(), "foreign": Key.generate()}


@pytest.fixture
def clerk(keys: dict[str, Key]) -> FakeClerk:
    return FakeClerk(key=keys["main"])


@dataclass
class Backend:
    client: TestClient
    clerk: FakeClerk
    clock: Clock
    db_url: str

    def get(self, path: str, token: str | None = None, headers: dict[str, str] | None = None, **kw: Any):
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        return self.client.get(path, headers=h, **kw)

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.db_url) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def users(self) -> list[dict[str, Any]]:
        with psycopg.connect(self.db_url, row_factory=dict_row) as conn:
            return conn.execute("SELECT * FROM users ORDER BY id").fetchall()


@pytest.fixture
def make_backend(db_url: str, clerk: FakeClerk) -> Iterator[Callable[..., Backend]]:
    """``make_backend(faults="a,b", CLERK_AUDIENCE=...)``; an env value of None removes it."""
    stack = ExitStack()

    def make(faults: str = "", **env: str | None) -> Backend:
        environ: dict[str, str] = {**base_env(db_url), "REFERENCE_FAULTS": faults}
        for k, v in env.items():
            if v is None:
                environ.pop(k, None)
            else:
                environ[k] = v
        clock = Clock()
        app = create_app(load_settings(environ), clock=clock, http_transport=clerk.transport())
        client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
        return Backend(client, clerk, clock, db_url)

    yield make
    stack.close()


@pytest.fixture
def backend(make_backend: Callable[..., Backend]) -> Backend:
    """The clean backend (no faults)."""
    return make_backend()
