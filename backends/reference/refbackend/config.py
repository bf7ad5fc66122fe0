"""Settings read once from the environment, and the catalogue of seeded faults.

Every setting is validated here, before the app serves anything: a missing required variable
is a ``ConfigError`` naming it, which ``app.py`` turns into a non-zero exit.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import sys
from dataclasses import dataclass, field
from typing import Mapping

log = logging.getLogger("reference")

#: Seeded faults: name -> the deliberate deviation it switches on.
FAULTS: dict[str, str] = {
    "reject_session_tokens": "demands the template-only claim `email`, so default session tokens get 401",
    "skip_audience": "never checks `aud`, even when CLERK_AUDIENCE is set",
    "skip_issuer": "never checks `iss`",
    "cache_past_expiry": "caches validated tokens for 300 s by token string, ignoring `exp`",
    "stale_jwks": "loads the JWKS once and never refetches (no TTL, no refetch on unknown kid)",
    "start_without_keys": "missing Clerk keys are only logged; the app starts and requests then fail with 401",
    "cors_no_authorization": "CORS does not allow the `authorization` request header",
    "cors_wildcard_literal": "CORS origins like https://*.example.app are compared literally",
    "cors_missing_on_error": "error responses (status >= 400) carry no CORS headers",
    "forbidden_on_missing_bearer": "403 instead of 401 for a missing or malformed Authorization header",
    "sync_race": "user sync does check-then-insert without conflict handling (duplicates -> 500)",
    "sync_requires_email": "user sync crashes with 500 when the Clerk user has no email address",
    "webhook_unsigned": "webhooks are applied without checking the Svix signature or timestamp",
    "alg_from_header": "trusts the token header's `alg`: accepts `none` and HS256 keyed with the public key",
    "cookie_skips_verification": "trusts the `__session` cookie without verifying it (decoded only: no signature, `exp` or claim checks)",
    "jwks_cold_401": "answers 401 (jwk-remote-failed-to-load) instead of 503 when the JWKS cannot be loaded and no key is cached",
    "org_claims_v1": "reads the organization from the v1 claim names (org_id, org_role), which v2 session tokens no longer carry",
    "db_error_401": "a database error during user sync becomes a 401 that carries the driver's error text",
    "deleted_user_500": "a user deleted in Clerk (GET /v1/users/{id} answers 404) is an unhandled error: 500",
    "webhook_ignores_updated_at": "user.updated is applied whatever its `updated_at`: a stale delivery arriving last wins",
    "webhook_poison_500": "a webhook that can never apply (an email taken by another row) is a 500 on every retry",
}

#: Variables that hold Clerk keys: only these are forgiven by the `start_without_keys` fault.
KEY_VARS = (
    "CLERK_SECRET_KEY",
    "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY",
    "NEXT_PUBLIC_CLERK_DOMAIN",
    "CLERK_WEBHOOK_SECRET",
)
REQUIRED_VARS = KEY_VARS + ("DATABASE_URL",)


def setup_logging() -> None:
    """Log lines on stderr, where the harness collects them for its diagnoses."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.setLevel(logging.INFO)


class ConfigError(Exception):
    """Bad or missing configuration; the message says which variable and what to do."""


@dataclass(frozen=True)
class Settings:
    secret_key: str
    publishable_key: str
    domain: str
    database_url: str
    webhook_secret: str
    env: str = "development"
    cors_origins: tuple[str, ...] = ()
    audience: tuple[str, ...] = ()
    authorized_parties: tuple[str, ...] = ()
    faults: frozenset[str] = field(default_factory=frozenset)

    def has(self, fault: str) -> bool:
        assert fault in FAULTS, fault
        return fault in self.faults

    @property
    def cookie_suffix(self) -> str:
        """The suffix of ``clerk-js``'s cookie names (``__session_<suffix>``) for this publishable
        key: ``@clerk/shared`` ``getCookieSuffix`` — SHA-1, base64, ``+/`` → ``-_``, 8 characters."""
        if not self.publishable_key:
            return ""
        digest = hashlib.sha1(self.publishable_key.encode()).digest()
        return base64.b64encode(digest).decode().replace("+", "-").replace("/", "_")[:8]

    @property
    def issuer(self) -> str:
        return f"https://{self.domain}"

    @property
    def jwks_url(self) -> str:
        return f"https://{self.domain}/.well-known/jwks.json"


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def parse_faults(value: str | None) -> frozenset[str]:
    names = _split(value)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ConfigError(
            f"REFERENCE_FAULTS: unknown fault(s) {', '.join(unknown)}; valid names: {', '.join(FAULTS)}"
        )
    return frozenset(names)


def sqlalchemy_url(url: str) -> str:
    """Accept the libpq-style URLs that other tools use and select the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg2://", "postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ConfigError(
        f"DATABASE_URL must start with postgresql:// (got {url.split('://')[0]}://…)"
    )


def publishable_key_host(key: str) -> str | None:
    """The FAPI host encoded in a publishable key, or None when it is not a valid one."""
    m = re.fullmatch(r"pk_(?:test|live)_([A-Za-z0-9+/=_-]+)", key)
    if not m:
        return None
    raw = m.group(1)
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except Exception:
        return None
    if not decoded.endswith("$") or decoded.count("$") != 1 or "." not in decoded:
        return None
    return decoded[:-1]


def load_settings(environ: Mapping[str, str]) -> Settings:
    faults = parse_faults(environ.get("REFERENCE_FAULTS"))
    values: dict[str, str] = {}
    missing: list[str] = []
    for name in REQUIRED_VARS:
        value = (environ.get(name) or "").strip()
        if not value:
            if name in KEY_VARS and "start_without_keys" in faults:
                log.error("%s is not set; starting anyway (fault start_without_keys)", name)
            else:
                missing.append(name)
        values[name] = value
    if missing:
        verb, pronoun = ("is", "it") if len(missing) == 1 else ("are", "them")
        raise ConfigError(f"{', '.join(missing)} {verb} not set: the reference backend cannot start without {pronoun}")

    domain = values["NEXT_PUBLIC_CLERK_DOMAIN"]
    if domain.startswith(("https://", "http://")) or "/" in domain:
        raise ConfigError(
            f"NEXT_PUBLIC_CLERK_DOMAIN must be a bare host such as clerk.example.com (got {domain!r})"
        )
    pk = values["NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY"]
    if pk:
        host = publishable_key_host(pk)
        if host is None:
            log.warning("NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY does not look like a Clerk publishable key")
        elif domain and host != domain:
            log.warning(
                "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY names host %s but NEXT_PUBLIC_CLERK_DOMAIN is %s",
                host,
                domain,
            )

    return Settings(
        secret_key=values["CLERK_SECRET_KEY"],
        publishable_key=pk,
        domain=domain,
        database_url=sqlalchemy_url(values["DATABASE_URL"]),
        webhook_secret=values["CLERK_WEBHOOK_SECRET"],
        env=(environ.get("ENV") or "development").strip(),
        cors_origins=_split(environ.get("CORS_ORIGINS")),
        audience=_split(environ.get("CLERK_AUDIENCE")),
        authorized_parties=_split(environ.get("CLERK_AUTHORIZED_PARTIES")),
        faults=faults,
    )
