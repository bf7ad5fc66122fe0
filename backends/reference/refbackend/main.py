"""``create_app(settings)``: the FastAPI app, its routes and its start-up (schema creation)."""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

import httpx
from fastapi import Depends, FastAPI, Request, Response
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool

from . import cors, webhooks
from .clerk_api import fetch_user
from .clock import Clock
from .config import FAULTS, Settings
from .db import create_schema, make_engine, sync_user
from .errors import ApiError, api_error_handler, auth_error, unavailable
from .jwks import JwksCache
from .orgs import require_role
from .tokens import TokenVerifier

log = logging.getLogger("reference")


@dataclass
class AppState:
    settings: Settings
    clock: Clock
    http: httpx.AsyncClient
    jwks: JwksCache
    verifier: TokenVerifier
    engine: Engine
    webhook_verifier: Any


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the app. ``http_transport`` lets tests stand in for Clerk; by default httpx honours
    ``HTTPS_PROXY``/``NO_PROXY`` and ``SSL_CERT_FILE`` (trust_env), like orientor's client."""
    clock = clock or Clock()
    http = httpx.AsyncClient(transport=http_transport, trust_env=True, follow_redirects=False)
    jwks = JwksCache(settings, http, clock)
    state = AppState(
        settings=settings,
        clock=clock,
        http=http,
        jwks=jwks,
        verifier=TokenVerifier(settings, jwks, clock),
        engine=make_engine(settings.database_url),
        webhook_verifier=webhooks.make_verifier(settings),
    )
    _log_configuration(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = time.monotonic()
        try:
            await run_in_threadpool(create_schema, state.engine)
        except Exception as exc:
            log.error("cannot create the schema on DATABASE_URL: %s", exc)
            raise
        log.info("schema ready in %.0f ms", (time.monotonic() - started) * 1000)
        try:
            yield
        finally:
            await http.aclose()
            state.engine.dispose()

    app = FastAPI(title="clerk-harness reference backend", lifespan=lifespan)
    app.state.ref = state
    app.add_exception_handler(ApiError, api_error_handler)
    cors.install(app, settings)
    app.include_router(webhooks.router)
    _routes(app)
    return app


def _log_configuration(s: Settings) -> None:
    if s.faults:
        log.warning("seeded faults ACTIVE: %s", ", ".join(sorted(s.faults)))
        for name in sorted(s.faults):
            log.warning("  fault %s: %s", name, FAULTS[name])
    else:
        log.info("no seeded faults: correct behaviour")
    log.info(
        "clerk domain=%s issuer=%s env=%s cors_origins=%s audience=%s authorized_parties=%s",
        s.domain or "(unset)",
        s.issuer,
        s.env,
        list(s.cors_origins),
        list(s.audience) or "(not checked)",
        list(s.authorized_parties) or "(not checked)",
    )


def _state(request: Request) -> AppState:
    return request.app.state.ref


@dataclass(frozen=True)
class Credential:
    """The session token a request carries, and where it came from."""

    token: str
    from_cookie: bool = False
    #: ``__client_uat`` (Unix seconds; 0 when absent or signed out), for cookie tokens only.
    client_uat: int = 0


def session_credential(request: Request) -> Credential:
    """The ``Authorization: Bearer`` token first, then the ``__session`` cookie, as Clerk's Python
    SDK reads them (``authenticaterequest.py`` ``_get_session_token``). Of the cookies, the
    suffixed ones ``clerk-js`` sets (``__session_<suffix>``, suffix from the publishable key,
    ``@clerk/shared`` ``getCookieSuffix``) win over the plain ones, as in ``@clerk/backend``."""
    s = _state(request).settings
    header = request.headers.get("authorization")
    if header is None:
        cookie = _session_cookie(request, s.cookie_suffix)
        if cookie is not None:
            return cookie
        reason = "token-missing"
        detail = "no Authorization header and no __session cookie: send Authorization: Bearer <Clerk token>"
    else:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return Credential(value.strip())
        reason, detail = "token-malformed", "Authorization header is not of the form 'Bearer <token>'"
    if s.has("forbidden_on_missing_bearer"):
        raise ApiError(403, reason, "Not authenticated")
    raise auth_error(reason, detail, www_error=False)


def _session_cookie(request: Request, suffix: str) -> Credential | None:
    cookies = request.cookies

    def pick(name: str) -> str | None:
        value = cookies.get(f"{name}_{suffix}") if suffix else None
        return value if value else cookies.get(name) or None

    token = pick("__session")
    if token is None:
        return None
    try:
        uat = int(pick("__client_uat") or "0")
    except ValueError:
        uat = 0
    return Credential(token, from_cookie=True, client_uat=uat)


async def verified_claims(
    request: Request, response: Response, credential: Credential = Depends(session_credential)
) -> dict[str, Any]:
    state = _state(request)
    if credential.from_cookie:
        claims = await state.verifier.verify_cookie(credential.token, credential.client_uat)
    else:
        claims = await state.verifier.verify(credential.token)
    response.headers["x-clerk-auth-status"] = "signed-in"
    return claims


def _routes(app: FastAPI) -> None:
    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        s = _state(request).settings
        return {"status": "healthy", "service": "reference-backend", "env": s.env, "faults": sorted(s.faults)}

    @app.get("/api/v1/test/hello")
    async def hello() -> dict[str, str]:
        return {"message": "Hello from the reference backend"}

    @app.get("/api/v1/test-token")
    async def test_token(claims: dict[str, Any] = Depends(verified_claims)) -> dict[str, Any]:
        return {
            "valid": True,
            "user_id": claims.get("sub"),
            "session_id": claims.get("sid"),
            "issuer": claims.get("iss"),
            "azp": claims.get("azp"),
            "expires_at": claims.get("exp"),
            "claims": claims,
        }

    @app.get("/api/v1/org/settings")
    async def org_settings(request: Request, claims: dict[str, Any] = Depends(verified_claims)) -> dict[str, Any]:
        org = require_role(claims, "org:admin", v1=_state(request).settings.has("org_claims_v1"))
        return {"organization_id": org.id, "slug": org.slug, "role": org.role}

    @app.get("/api/v1/auth/me")
    async def me(request: Request, claims: dict[str, Any] = Depends(verified_claims)) -> dict[str, Any]:
        state = _state(request)
        kids = frozenset(k.kid for k in state.jwks.all_keys())
        user = await fetch_user(state.settings, state.http, claims["sub"], kids)
        try:
            return await run_in_threadpool(sync_user, state.engine, user, state.settings.faults)
        except (OperationalError, InterfaceError) as exc:  # the database is unreachable, not a bug
            if state.settings.has("db_error_401"):
                raise auth_error("authentication-failed", f"could not authenticate: {exc}") from exc
            log.error("user sync: the database failed: %s", exc)
            raise unavailable("database-unavailable", "the database is unavailable; retry later") from exc
