"""Clerk token verification, by the rules of Clerk's own SDKs (CLERK.md).

RS256 only, key chosen by ``kid`` from the instance's JWKS, 5 s leeway on ``exp``/``nbf``/``iat``,
``iss`` must be ``https://{domain}``, ``aud`` and ``azp`` only checked when configured, ``sub``
required. Every rejection is an ``ApiError`` (401) carrying a Clerk reason name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .clock import Clock
from .config import Settings
from .errors import ApiError, auth_error
from .jwks import Jwk, JwksCache

log = logging.getLogger("reference")

LEEWAY_SECONDS = 5
VALIDATION_CACHE_SECONDS = 300  # only under the cache_past_expiry fault
TEMPLATE_ONLY_CLAIM = "email"  # demanded under the reject_session_tokens fault

_SIGNATURE_ONLY = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
}
_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class TokenVerifier:
    def __init__(self, settings: Settings, jwks: JwksCache, clock: Clock) -> None:
        self.settings = settings
        self.jwks = jwks
        self.clock = clock
        self._validated: dict[str, tuple[dict[str, Any], float]] = {}

    async def verify(self, token: str) -> dict[str, Any]:
        s = self.settings
        if s.has("cache_past_expiry"):
            hit = self._validated.get(token)
            if hit is not None and hit[1] > self.clock.now():
                return hit[0]

        if token.startswith("sess_"):
            raise auth_error(
                "token-invalid",
                "the bearer value is a Clerk session id (sess_…), not a token: send the JWT from getToken()",
            )
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise auth_error("token-invalid", "the bearer value is not a JWT (expected header.payload.signature)")
        typ = header.get("typ")
        if typ is not None and typ != "JWT":
            raise auth_error("token-invalid", f"JWT header typ is {typ!r}, expected 'JWT'")

        if s.has("alg_from_header"):
            claims = await self._verify_trusting_header_alg(token, header)
        else:
            alg = header.get("alg")
            if alg != "RS256":
                raise auth_error("token-invalid-algorithm", f"alg {alg!r} is not accepted: Clerk tokens are RS256")
            key = await self._key_for(header)
            claims = self._decode_rs(token, key, "RS256")

        self._check_claims(claims)
        if s.has("cache_past_expiry"):
            self._validated[token] = (claims, self.clock.now() + VALIDATION_CACHE_SECONDS)
        return claims

    async def verify_cookie(self, token: str, client_uat: int) -> dict[str, Any]:
        """A ``__session`` cookie: verified like a Bearer token, then refused when the client says
        it is signed out (``__client_uat`` missing or 0) or changed after the token was minted
        (``iat < __client_uat``: signed out or switched in another tab) — ``@clerk/backend``'s
        ``session-token-but-no-client-uat`` and ``session-token-iat-before-client-uat``."""
        if self.settings.has("cookie_skips_verification"):
            try:
                return jwt.decode(token, options={"verify_signature": False})
            except jwt.PyJWTError:
                raise auth_error("token-invalid", "the __session cookie is not a JWT")
        claims = await self.verify(token)
        if client_uat <= 0:
            raise auth_error(
                "session-token-but-no-client-uat",
                "a __session cookie without __client_uat: the browser's Clerk client is signed out",
            )
        iat = claims.get("iat")
        if _is_number(iat) and iat < client_uat:
            raise auth_error(
                "session-token-iat-before-client-uat",
                f"the __session cookie was minted (iat={iat}) before the Clerk client last changed "
                f"(__client_uat={client_uat}): it may belong to a session signed out since; let clerk-js refresh it",
            )
        return claims

    async def _key_for(self, header: dict[str, Any]) -> Jwk:
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise auth_error("token-invalid", "JWT header has no kid: cannot choose a key from the JWKS")
        if not self.settings.domain:  # only reachable under start_without_keys
            raise auth_error("jwk-remote-failed-to-load", "NEXT_PUBLIC_CLERK_DOMAIN is not set: no JWKS to verify with")
        return await self.jwks.get(kid)

    @staticmethod
    def _decode_rs(token: str, key: Jwk, alg: str) -> dict[str, Any]:
        try:
            return jwt.decode(token, key.public_key, algorithms=[alg], options=_SIGNATURE_ONLY)
        except jwt.InvalidSignatureError:
            raise auth_error("token-invalid-signature", f"signature does not verify with key {key.kid}")
        except jwt.PyJWTError as exc:
            raise auth_error("token-invalid", f"JWT could not be decoded: {exc}")

    async def _verify_trusting_header_alg(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        """The alg_from_header fault: the token says how it should be checked, and we believe it."""
        alg = str(header.get("alg"))
        if alg.lower() == "none":
            return jwt.decode(token, options={"verify_signature": False})
        if alg in _HMAC_HASHES:
            if self.settings.domain:
                try:  # loads the JWKS if needed; any key will do as the "secret"
                    await self.jwks.get(str(header.get("kid") or ""))
                except ApiError:
                    pass
            candidates = self.jwks.all_keys()
            signing_input, _, signature = token.rpartition(".")
            try:
                sig = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
            except Exception:
                raise auth_error("token-invalid", "signature is not base64url")
            for key in candidates:
                for secret in _public_key_encodings(key):
                    mac = hmac.new(secret, signing_input.encode(), _HMAC_HASHES[alg]).digest()
                    if hmac.compare_digest(mac, sig):
                        return jwt.decode(token, options={"verify_signature": False})
            raise auth_error("token-invalid-signature", f"{alg} signature does not verify")
        if alg in ("RS256", "RS384", "RS512"):
            return self._decode_rs(token, await self._key_for(header), alg)
        raise auth_error("token-invalid-algorithm", f"alg {alg!r} is not supported")

    def _check_claims(self, claims: dict[str, Any]) -> None:
        s = self.settings
        now = self.clock.now()
        exp = claims.get("exp")
        if not _is_number(exp):
            raise auth_error("token-missing-claim", "claim exp is missing or not a number")
        if exp <= now - LEEWAY_SECONDS:
            raise auth_error("token-expired", f"token expired {now - exp:.0f} s ago (leeway {LEEWAY_SECONDS} s)")
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_number(nbf) or nbf > now + LEEWAY_SECONDS):
            raise auth_error("token-not-active-yet", f"token not valid before nbf={nbf} (now {now:.0f}, leeway {LEEWAY_SECONDS} s)")
        iat = claims.get("iat")
        if iat is not None and (not _is_number(iat) or iat > now + LEEWAY_SECONDS):
            raise auth_error("token-iat-in-the-future", f"token issued in the future: iat={iat} (now {now:.0f})")
        if not s.has("skip_issuer") and claims.get("iss") != s.issuer:
            raise auth_error("token-invalid-issuer", f"iss {claims.get('iss')!r} is not {s.issuer!r}")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise auth_error("token-missing-claim", "claim sub is missing or not a string")
        if s.audience and not s.has("skip_audience"):
            aud = claims.get("aud")
            auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if not set(auds) & set(s.audience):
                raise auth_error("token-invalid-audience", f"aud {aud!r} is not one of {list(s.audience)}")
        azp = claims.get("azp")
        if s.authorized_parties and azp and azp not in s.authorized_parties:
            raise auth_error(
                "token-invalid-authorized-parties", f"azp {azp!r} is not one of {list(s.authorized_parties)}"
            )
        if s.has("reject_session_tokens") and TEMPLATE_ONLY_CLAIM not in claims:
            raise auth_error(
                "token-missing-claim", f"claim {TEMPLATE_ONLY_CLAIM} is required (use the JWT template)"
            )


def _public_key_encodings(key: Jwk) -> list[bytes]:
    """The byte strings a naive HS256 'secret' made from the RSA public key might be."""
    out: list[bytes] = []
    for fmt in (PublicFormat.SubjectPublicKeyInfo, PublicFormat.PKCS1):
        pem = key.public_key.public_bytes(Encoding.PEM, fmt)
        out += [pem, pem.rstrip(b"\n"), key.public_key.public_bytes(Encoding.DER, fmt)]
    return out
