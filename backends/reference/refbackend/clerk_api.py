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
#: The Backend API's own timeout (connect and read): a slow Clerk becomes a 503 well before the
#: SPA's or the harness's request timeout, and never holds a worker for long.
TIMEOUT_SECONDS = 1.0


async def fetch_user(
    settings: Settings, http: httpx.AsyncClient, user_id: str, signing_kids: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The Clerk user of a valid token. ``signing_kids``: the key ids of the FAPI's JWKS, which
    tell a user deleted in Clerk (this secret key's instance signs with them: 401) from a secret
    key of another instance (a 500 that says so)."""
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
        if "deleted_user_500" not in settings.faults and await _same_instance(settings, http, signing_kids):
            raise auth_error("user-deleted", f"the Clerk user {user_id} no longer exists (deleted in Clerk): sign in again")
        raise ApiError(
            500,
            "user-not-found-in-clerk",
            f"the Clerk Backend API has no user {user_id} although the token is valid: "
            "is CLERK_SECRET_KEY from the same instance as NEXT_PUBLIC_CLERK_DOMAIN?",
        )
    raise unavailable("clerk-api-unavailable", f"GET {url} answered {resp.status_code}")


async def _same_instance(settings: Settings, http: httpx.AsyncClient, signing_kids: frozenset[str]) -> bool:
    """Whether ``CLERK_SECRET_KEY``'s instance signs the tokens (its ``GET /v1/jwks`` shares a key
    id with the FAPI's JWKS): then a 404 for the token's ``sub`` means the user was deleted."""
    if not signing_kids:
        return False
    try:
        resp = await http.get(
            f"{API_URL}/v1/jwks", headers={"Authorization": f"Bearer {settings.secret_key}"}, timeout=TIMEOUT_SECONDS
        )
        kids = {k.get("kid") for k in resp.json().get("keys", [])} if resp.status_code == 200 else set()
    except (httpx.HTTPError, ValueError, AttributeError):
        return False
    return bool(kids & signing_kids)


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
