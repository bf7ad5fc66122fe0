"""CORS from ``CORS_ORIGINS``, and the two ASGI middlewares that keep errors visible to browsers.

Starlette's ``CORSMiddleware`` adds its headers to every response that passes through it,
401s included — but an unhandled exception escapes it and becomes a bare 500 further out.
``CatchAllMiddleware`` sits inside CORS and turns such exceptions into a JSON 500, so the browser
shows the real error instead of a CORS failure.
"""

from __future__ import annotations

import json
import logging
import re

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import Settings

log = logging.getLogger("reference")

ALLOW_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ALLOW_HEADERS = ["Authorization", "Content-Type", "X-Requested-With"]
EXPOSE_HEADERS = ["WWW-Authenticate", "Retry-After", "x-clerk-auth-status", "x-clerk-auth-reason", "x-clerk-auth-message"]
LABEL = "[A-Za-z0-9-]+"  # what `*` stands for in an origin pattern: exactly one DNS label


def origin_rules(origins: tuple[str, ...], wildcards_literal: bool) -> tuple[list[str], str | None]:
    """Split CORS_ORIGINS into exact origins and one regex for the `*` patterns."""
    exact: list[str] = []
    patterns: list[str] = []
    for origin in origins:
        origin = origin.rstrip("/")
        if origin == "*":
            patterns.append(r"https?://.+")  # echoed back: never `*` together with credentials
        elif "*" in origin and not wildcards_literal:
            patterns.append(re.escape(origin).replace(r"\*", LABEL))
        else:
            exact.append(origin)
    return exact, ("|".join(f"(?:{p})" for p in patterns) if patterns else None)


def cors_options(settings: Settings) -> dict:
    exact, regex = origin_rules(settings.cors_origins, settings.has("cors_wildcard_literal"))
    headers = [h for h in ALLOW_HEADERS if not (settings.has("cors_no_authorization") and h == "Authorization")]
    return {
        "allow_origins": exact,
        "allow_origin_regex": regex,
        "allow_credentials": True,
        "allow_methods": ALLOW_METHODS,
        "allow_headers": headers,
        "expose_headers": EXPOSE_HEADERS,
        "max_age": 600,
    }


class CatchAllMiddleware:
    """Unhandled exception -> JSON 500 inside the CORS layer (so it still gets CORS headers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("%s %s -> 500 unhandled %s", scope.get("method"), scope.get("path"), type(exc).__name__)
            if started:
                raise
            body = json.dumps(
                {"detail": f"internal error: {type(exc).__name__}: {exc}"[:500], "reason": "internal-error"}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})


class StripCorsOnErrorsMiddleware:
    """The cors_missing_on_error fault: error responses lose their Access-Control-* headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stripping_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                message = dict(message)
                message["headers"] = [
                    (k, v) for k, v in message.get("headers", []) if not k.lower().startswith(b"access-control-")
                ]
            await send(message)

        await self.app(scope, receive, stripping_send if scope["type"] == "http" else send)


def install(app, settings: Settings) -> None:  # noqa: ANN001 - FastAPI app
    # add_middleware puts each new one outermost: catch-all, then CORS around it, then the fault.
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(CORSMiddleware, **cors_options(settings))
    if settings.has("cors_missing_on_error"):
        app.add_middleware(StripCorsOnErrorsMiddleware)
