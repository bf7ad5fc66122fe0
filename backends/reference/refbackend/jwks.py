"""The instance's signing keys, fetched from ``https://{domain}/.well-known/jwks.json``.

Like Clerk's JS SDK: cached for 5 minutes and refetched at once when a token names an unknown
``kid`` (so a rotated key is accepted on the first try). Refetches are single-flight, and an
unknown kid that is still unknown after a refetch is not refetched again for 5 s (so a flood of
forged kids cannot hammer the FAPI). When the FAPI is down, keys already cached stay usable.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from jwt.algorithms import RSAAlgorithm

from .clock import Clock
from .config import Settings
from .errors import ApiError, auth_error, unavailable

log = logging.getLogger("reference")

TTL_SECONDS = 300.0
UNKNOWN_KID_COOLDOWN_SECONDS = 5.0
FETCH_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Jwk:
    kid: str
    raw: dict[str, Any]
    public_key: Any  # cryptography RSAPublicKey


class JwksLoadError(Exception):
    pass


class JwksCache:
    def __init__(self, settings: Settings, http: httpx.AsyncClient, clock: Clock) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock
        self.keys: dict[str, Jwk] = {}
        self.fetched_at: float | None = None
        self.fetch_count = 0  # successful or not; tests and logs use it
        self._generation = 0
        self._lock = asyncio.Lock()
        self._unknown_kid_at: dict[str, float] = {}

    async def _fetch(self) -> dict[str, Jwk]:
        self.fetch_count += 1
        url = self.settings.jwks_url
        try:
            resp = await self.http.get(url, timeout=FETCH_TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            raise JwksLoadError(f"GET {url} failed: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            raise JwksLoadError(f"GET {url} answered {resp.status_code}")
        try:
            entries = resp.json()["keys"]
            assert isinstance(entries, list)
        except Exception as exc:
            raise JwksLoadError(f"GET {url} did not return a JWKS document") from exc
        keys: dict[str, Jwk] = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not entry.get("kid"):
                continue
            if entry.get("use") not in (None, "sig"):
                continue
            try:
                keys[entry["kid"]] = Jwk(entry["kid"], entry, RSAAlgorithm.from_jwk(entry))
            except Exception as exc:  # one bad key must not hide the others
                log.warning("JWKS key %s ignored: %s", entry.get("kid"), exc)
        return keys

    async def _refresh(self, seen_generation: int) -> None:
        async with self._lock:
            if self._generation != seen_generation:
                return  # another request refreshed while we waited
            keys = await self._fetch()
            self.keys = keys
            self.fetched_at = self.clock.now()
            self._generation += 1
            log.info("JWKS loaded from %s: kids=%s", self.settings.jwks_url, sorted(keys))

    async def get(self, kid: str) -> Jwk:
        now = self.clock.now()
        if self.settings.has("stale_jwks") and self.fetched_at is not None:
            return self._cached_or_mismatch(kid)

        fresh = self.fetched_at is not None and now - self.fetched_at < TTL_SECONDS
        if fresh and kid in self.keys:
            return self.keys[kid]
        if fresh and now - self._unknown_kid_at.get(kid, float("-inf")) < UNKNOWN_KID_COOLDOWN_SECONDS:
            return self._cached_or_mismatch(kid)

        try:
            await self._refresh(self._generation)
        except JwksLoadError as exc:
            if kid in self.keys:
                log.warning("JWKS refresh failed, using cached key %s: %s", kid, exc)
                return self.keys[kid]
            if self.settings.has("jwks_cold_401"):
                raise auth_error("jwk-remote-failed-to-load", f"could not load the JWKS: {exc}") from exc
            raise unavailable("jwk-remote-failed-to-load", f"could not load the JWKS: {exc}") from exc
        if kid not in self.keys:
            self._unknown_kid_at[kid] = self.clock.now()
        return self._cached_or_mismatch(kid)

    def _cached_or_mismatch(self, kid: str) -> Jwk:
        if kid in self.keys:
            return self.keys[kid]
        raise auth_error(
            "jwk-kid-mismatch",
            f"no key with kid {kid!r} in the JWKS of {self.settings.domain} (known: {', '.join(sorted(self.keys)) or 'none'})",
        )

    def all_keys(self) -> list[Jwk]:
        return list(self.keys.values())


__all__ = ["ApiError", "Jwk", "JwksCache"]
