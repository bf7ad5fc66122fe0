"""The one Backend API call the user sync makes: ``GET https://api.clerk.com/v1/users/{sub}``.

Outages (connection errors, timeouts, 429, 5xx) become a retryable 503 with ``Retry-After`` —
never a 401, which would make the SPA refresh its token and retry forever. A rejected secret key
or an unknown user is a configuration problem: a 500 that says so.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

from .config import Settings
from .errors import ApiError, auth_error, unavailable

log = logging.getLogger("reference")

API_URL = "https://api.clerk.com"
TIMEOUT_SECONDS = 10.0


async def fetch_user(settings: Settings, http: httpx.AsyncClient, user_id: str) -> dict[str, Any]:
    if not settings.secret_key:  # only reachable under start_without_keys
        raise auth_error("secret-key-invalid", "CLERK_SECRET_KEY is not set: cannot fetch the user from Clerk")
    url = f"{API_URL}/v1/users/{quote(user_id, safe='')}"
    try:
        resp = await http.get(
            url, headers={"Authorization": f"Bearer {settings.secret_key}"}, timeout=TIMEOUT_SECONDS
        )
    except httpx.HTTPError as exc:
        raise unavailable("clerk-api-unavailable", f"GET {url} failed: {type(exc).__name__}: {exc}") from exc

    if resp.status_code == 200:
        try:
            user = resp.json()
            assert isinstance(user, dict) and user.get("id") == user_id
            return user
        except Exception as exc:
            raise unavailable("clerk-api-unavailable", f"GET {url} returned an unexpected body") from exc
    if resp.status_code == 429 or resp.status_code >= 500:
        retry_after = _retry_after(resp.headers.get("Retry-After"))
        raise unavailable(
            "clerk-api-unavailable", f"GET {url} answered {resp.status_code}; retry later", retry_after
        )
    if resp.status_code in (401, 403):
        raise ApiError(
            500,
            "secret-key-invalid",
            f"the Clerk Backend API rejected CLERK_SECRET_KEY ({resp.status_code})",
        )
    if resp.status_code == 404:
        raise ApiError(
            500,
            "user-not-found-in-clerk",
            f"the Clerk Backend API has no user {user_id} although the token is valid: "
            "is CLERK_SECRET_KEY from the same instance as NEXT_PUBLIC_CLERK_DOMAIN?",
        )
    raise unavailable("clerk-api-unavailable", f"GET {url} answered {resp.status_code}")


def _retry_after(value: str | None) -> int:
    try:
        return max(1, min(60, int(float(value or "2"))))
    except ValueError:
        return 2


def primary_email(user: dict[str, Any]) -> str | None:
    """The primary email address, else the first one, else None (phone-only sign-ups)."""
    emails = [e for e in user.get("email_addresses") or [] if isinstance(e, dict) and e.get("email_address")]
    primary_id = user.get("primary_email_address_id")
    for entry in emails:
        if entry.get("id") == primary_id:
            return entry["email_address"]
    return emails[0]["email_address"] if emails else None
