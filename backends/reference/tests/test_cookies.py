"""The ``__session`` cookie path: Bearer first, then the cookie, as Clerk's Python SDK reads them;
the suffixed cookie names of ``clerk-js``; ``__client_uat`` as ``@clerk/backend`` reads it."""

from __future__ import annotations

import time

from refbackend.config import Settings

from .fakes import PUBLISHABLE_KEY
from .test_tokens import expect_401

ENDPOINT = "/api/v1/test-token"


def cookies(token: str, uat: int | None, suffix: str | None = None) -> dict[str, str]:
    parts = [f"__session={token}"] if suffix is None else [f"__session_{suffix}={token}"]
    if uat is not None:
        parts.append(f"__client_uat={uat}" if suffix is None else f"__client_uat_{suffix}={uat}")
    return {"Cookie": "; ".join(parts)}


def test_the_cookie_suffix_is_clerk_shareds():
    # The cases of @clerk/shared's own test (packages/shared/src/__tests__/keys.spec.ts).
    def suffix(pk: str) -> str:
        return Settings(secret_key="", publishable_key=pk, domain="", database_url="", webhook_secret="").cookie_suffix

    assert suffix("pk_live_ZmFrZS1jbGVyay10ZXN0LmNsZXJrLmFjY291bnRzLmRldiQ=") == "qReyu04C"
    assert suffix("pk_test_Y2xlcmsuY2xlcmsuZGV2JA") == "QvfNY2dr"
    assert suffix("pk_test_ZW5vdWdoLWFscGFjYS04Mi5jbGVyay5hY2NvdW50cy5sY2xjbGVyay5jb20k") == "jtYvyt_H"
    assert suffix("pk_test_eHh4eHh4LXhhYWFhYS1hYS5jbGVyay5hY2NvdW50cy5sY2xjbGVyay5jb20k") == "tZJdb-5s"


def test_a_session_cookie_is_accepted_plain_or_suffixed(backend, clerk):
    now = int(time.time())
    resp = backend.get(ENDPOINT, headers=cookies(clerk.token(sub="user_cookie", iat=now), now))
    assert resp.status_code == 200, resp.text
    assert resp.json()["user_id"] == "user_cookie"
    suffix = Settings(secret_key="", publishable_key=PUBLISHABLE_KEY, domain="", database_url="", webhook_secret="").cookie_suffix
    resp = backend.get(ENDPOINT, headers=cookies(clerk.token(sub="user_sfx", iat=now), now, suffix))
    assert resp.status_code == 200, resp.text
    assert resp.json()["user_id"] == "user_sfx"
    # Both present: the suffixed one wins, as in @clerk/backend.
    both = {"Cookie": f"__session=garbage; __client_uat={now}; __session_{suffix}={clerk.token(sub='user_both', iat=now)}; __client_uat_{suffix}={now}"}
    assert backend.get(ENDPOINT, headers=both).json()["user_id"] == "user_both"


def test_the_bearer_header_comes_first(backend, clerk):
    now = int(time.time())
    resp = backend.get(ENDPOINT, clerk.token(sub="user_header"), headers=cookies(clerk.token(sub="user_cookie", iat=now), now))
    assert resp.json()["user_id"] == "user_header"


def test_cookie_tokens_are_verified_like_bearer_tokens(backend, clerk):
    now = int(time.time())
    expired = clerk.token(iat=now - 80, nbf=now - 90, exp=now - 10)
    expect_401(backend.get(ENDPOINT, headers=cookies(expired, now - 80)), "token-expired")
    header, payload, signature = clerk.token(sub="user_a", iat=now).split(".")
    other = clerk.token(sub="user_b", iat=now).split(".")[1]
    expect_401(backend.get(ENDPOINT, headers=cookies(f"{header}.{other}.{signature}", now)), "token-invalid-signature")
    expect_401(backend.get(ENDPOINT, headers=cookies("sess_2abcDEFghiJKLmnoPQRstuVWXyz", now)), "token-invalid")


def test_a_token_older_than_the_client_or_without_one_is_refused(backend, clerk):
    now = int(time.time())
    token = clerk.token(iat=now - 20, nbf=now - 30, exp=now + 40)
    expect_401(backend.get(ENDPOINT, headers=cookies(token, now)), "session-token-iat-before-client-uat")
    expect_401(backend.get(ENDPOINT, headers=cookies(token, None)), "session-token-but-no-client-uat")
    expect_401(backend.get(ENDPOINT, headers=cookies(token, 0)), "session-token-but-no-client-uat")
    assert backend.get(ENDPOINT, headers=cookies(token, now - 20)).status_code == 200


def test_no_header_and_no_cookie_is_token_missing(backend):
    resp = backend.get(ENDPOINT, headers={"Cookie": "theme=dark"})
    expect_401(resp, "token-missing")
    assert "__session" in resp.json()["detail"]
