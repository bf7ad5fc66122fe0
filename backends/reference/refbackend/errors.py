"""One error type, one JSON shape: ``{"detail": "...", "reason": "<name>"}``.

Auth failures use the Clerk SDK reason names (CLERK.md) so a harness diagnosis can quote them,
and carry the headers Clerk-aware middleware sets (``x-clerk-auth-status``/``-reason``).
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse

log = logging.getLogger("reference")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        reason: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = dict(headers or {})


def _header_safe(text: str) -> str:
    return text.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")[:300]


def auth_error(reason: str, detail: str, *, www_error: bool = True) -> ApiError:
    """A 401: the credentials were missing or rejected (never used for outages)."""
    challenge = 'Bearer error="invalid_token"' if www_error else "Bearer"
    return ApiError(
        401,
        reason,
        detail,
        {
            "WWW-Authenticate": challenge,
            "x-clerk-auth-status": "signed-out",
            "x-clerk-auth-reason": reason,
            "x-clerk-auth-message": _header_safe(detail),
        },
    )


def unavailable(reason: str, detail: str, retry_after: int = 2) -> ApiError:
    """A 503 the client may retry: an upstream (JWKS, Backend API) failed, not the user."""
    return ApiError(503, reason, detail, {"Retry-After": str(max(1, retry_after))})


def error_response(err: ApiError) -> JSONResponse:
    return JSONResponse({"detail": err.detail, "reason": err.reason}, status_code=err.status, headers=err.headers)


async def api_error_handler(request: Request, err: ApiError) -> JSONResponse:
    level = logging.WARNING if err.status < 500 else logging.ERROR
    log.log(level, "%s %s -> %d reason=%s detail=%s", request.method, request.url.path, err.status, err.reason, err.detail)
    return error_response(err)
