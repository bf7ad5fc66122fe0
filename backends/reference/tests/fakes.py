"""Test doubles for Clerk: signing keys, session/template tokens, the FAPI JWKS, the Backend
API user endpoint and Svix signatures. One ``FakeClerk.handle`` answers both the in-process
httpx ``MockTransport`` and the TLS server used by the process tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

DOMAIN = "able-hound-12.clerk.accounts.dev"
SECRET_KEY = "sk_test_" + "r" * 40
PUBLISHABLE_KEY = "pk_test_" + base64.b64encode(f"{DOMAIN}$".encode()).decode().rstrip("=")
WEBHOOK_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
SESSION_CAT = "cl_B7d4PD111AAA"
TEMPLATE_CAT = "cl_B7d4PD222AAA"
DROP = object()  # claim/header value meaning "leave this one out"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class Key:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, kid: str | None = None) -> "Key":
        return cls(kid or "ins_" + secrets.token_hex(13), rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def jwk(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {"use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256", "n": jwk["n"], "e": jwk["e"]}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def with_kid(self, kid: str) -> "Key":
        return Key(kid, self.private)


def hs_token(claims: dict[str, Any], secret: bytes, header: dict[str, Any] | None = None) -> str:
    head = {"alg": "HS256", "typ": "JWT", **(header or {})}
    signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def svix_signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in overrides.items():
        if v is DROP:
            out.pop(k, None)
        else:
            out[k] = v
    return out


@dataclass
class FakeClerk:
    key: Key
    domain: str = DOMAIN
    published: list[Key] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    jwks_mode: str = "ok"  # ok | down (connection error) | 500
    bapi_mode: Any = None  # None | "down" | (status, headers)
    #: The secret key belongs to another instance: its GET /v1/jwks shares no kid with the FAPI's.
    bapi_foreign: bool = False
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.published:
            self.published = [self.key]

    # ---- what the backend sees -------------------------------------------------------------
    def handle(self, method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        with self.lock:
            self.requests.append((method, url, headers.get("authorization")))
        if parts.hostname == self.domain and parts.path == "/.well-known/jwks.json":
            if self.jwks_mode == "500":
                return 500, {}, b"oops"
            return 200, {"content-type": "application/json"}, json.dumps({"keys": [k.jwk for k in self.published]}).encode()
        if parts.hostname == "api.clerk.com" and parts.path == "/v1/jwks":
            keys = [Key.generate("ins_other_kid").jwk] if self.bapi_foreign else [k.jwk for k in self.published]
            return 200, {"content-type": "application/json"}, json.dumps({"keys": keys}).encode()
        if parts.hostname == "api.clerk.com" and parts.path.startswith("/v1/users/"):
            if headers.get("authorization") != f"Bearer {SECRET_KEY}":
                return 401, {}, _clerk_error("clerk_key_invalid", "The provided Clerk Secret Key is invalid.")
            if isinstance(self.bapi_mode, tuple):
                status, extra = self.bapi_mode
                return status, extra, _clerk_error("error", "fake failure")
            user = self.users.get(parts.path.rsplit("/", 1)[1])
            if user is None:
                return 404, {}, _clerk_error("resource_not_found", "not found")
            return 200, {"content-type": "application/json"}, json.dumps(user).encode()
        return 404, {}, b"not a clerk route"

    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            url = str(request.url)
            if (self.jwks_mode == "down" and "jwks" in url) or (self.bapi_mode == "down" and "api.clerk.com" in url):
                with self.lock:
                    self.requests.append((request.method, url, request.headers.get("authorization")))
                raise httpx.ConnectError("connection refused", request=request)
            status, headers, body = self.handle(request.method, url, {k.lower(): v for k, v in request.headers.items()})
            return httpx.Response(status, headers=headers, content=body)

        return httpx.MockTransport(handler)

    def jwks_fetches(self) -> int:
        return sum(1 for _, url, _ in self.requests if url.endswith("/.well-known/jwks.json"))

    def bapi_calls(self) -> list[tuple[str, str, str | None]]:
        return [r for r in self.requests if "api.clerk.com" in r[1]]

    # ---- users and tokens ------------------------------------------------------------------
    def add_user(
        self,
        emails: list[str] | None = None,
        first_name: str | None = "Ada",
        last_name: str | None = "Lovelace",
        primary: int = 0,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        if emails is None:
            emails = [f"{secrets.token_hex(4)}@example.com"]
        now_ms = int(time.time() * 1000)
        addresses = [
            {
                "id": "idn_" + secrets.token_hex(12),
                "object": "email_address",
                "email_address": e,
                "reserved": False,
                "verification": {"status": "verified", "strategy": "email_code", "attempts": 1, "expire_at": now_ms},
                "linked_to": [],
                "created_at": now_ms,
                "updated_at": now_ms,
            }
            for e in emails
        ]
        uid = user_id or "user_" + secrets.token_hex(13)
        user = {
            "id": uid,
            "object": "user",
            "external_id": None,
            "primary_email_address_id": addresses[primary]["id"] if addresses else None,
            "primary_phone_number_id": None,
            "username": None,
            "first_name": first_name,
            "last_name": last_name,
            "image_url": "https://img.clerk.com/x",
            "has_image": False,
            "public_metadata": {},
            "private_metadata": {},
            "unsafe_metadata": {},
            "email_addresses": addresses,
            "phone_numbers": [],
            "web3_wallets": [],
            "external_accounts": [],
            "password_enabled": False,
            "two_factor_enabled": False,
            "banned": False,
            "locked": False,
            "last_sign_in_at": now_ms,
            "last_active_at": now_ms,
            "created_at": now_ms,
            "updated_at": now_ms,
        }
        self.users[uid] = user
        return user

    def claims(self, sub: str, now: float | None = None, **overrides: Any) -> dict[str, Any]:
        now = int(now if now is not None else time.time())
        base = {
            "azp": "http://localhost:3000",
            "exp": now + 60,
            "fva": [0, -1],
            "iat": now,
            "iss": f"https://{self.domain}",
            "nbf": now - 10,
            "sid": "sess_" + secrets.token_hex(13),
            "sts": "active",
            "sub": sub,
            "v": 2,
        }
        return _merge(base, {"sub": sub, **overrides})

    def token(self, sub: str = "user_test", key: Key | None = None, header: dict[str, Any] | None = None, **claims: Any) -> str:
        """A default session token (like ``getToken()``), claims overridable; DROP removes one."""
        key = key or self.key
        head = _merge({"kid": key.kid, "typ": "JWT", "cat": SESSION_CAT}, header or {})
        return jwt.encode(self.claims(sub, **claims), key.private, algorithm="RS256", headers=head)

    def template_token(self, sub: str = "user_test", email: str = "t@example.com", **claims: Any) -> str:
        """A JWT-template token: no sid/v, with jti and the template's own claims (here email)."""
        payload = _merge(self.claims(sub), {"sid": DROP, "v": DROP, "fva": DROP, "sts": DROP, "jti": secrets.token_hex(10), "email": email})
        payload = _merge(payload, claims)
        return jwt.encode(payload, self.key.private, algorithm="RS256", headers={"kid": self.key.kid, "typ": "JWT", "cat": TEMPLATE_CAT})


def _clerk_error(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"message": message, "long_message": message, "code": code}], "clerk_trace_id": "t"}).encode()
