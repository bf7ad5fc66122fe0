"""Each seeded fault (REFERENCE_FAULTS) makes the deviation it promises; the clean behaviour
is asserted in the other test files, so each pair shows the fault is observable."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest

from refbackend.config import FAULTS

from .conftest import ALLOWED_ORIGIN
from .fakes import hs_token, svix_signature
from .test_cors import preflight
from .test_webhooks import deliver, envelope

TOKEN = "/api/v1/test-token"
ME = "/api/v1/auth/me"


def test_every_fault_has_a_test_here():
    import inspect
    import sys

    source = inspect.getsource(sys.modules[__name__])
    missing = [name for name in FAULTS if f'faults="{name}"' not in source and f"faults='{name}'" not in source]
    assert missing == []


def test_reject_session_tokens_rejects_default_session_tokens(make_backend, clerk):
    b = make_backend(faults="reject_session_tokens")
    resp = b.get(TOKEN, clerk.token())
    assert resp.status_code == 401 and resp.json()["reason"] == "token-missing-claim"
    assert b.get(TOKEN, clerk.template_token(email="x@example.com")).status_code == 200


def test_skip_audience_accepts_a_wrong_audience(make_backend, clerk):
    b = make_backend(faults="skip_audience", CLERK_AUDIENCE="api.example.com")
    assert b.get(TOKEN, clerk.token(aud="other.example.com")).status_code == 200


def test_skip_issuer_accepts_a_wrong_issuer(make_backend, clerk):
    b = make_backend(faults="skip_issuer")
    assert b.get(TOKEN, clerk.token(iss="https://other-cat-3.clerk.accounts.dev")).status_code == 200


def test_cache_past_expiry_accepts_a_replayed_expired_token(make_backend, clerk):
    b = make_backend(faults="cache_past_expiry")
    token = clerk.token(exp=int(time.time()) + 2)
    assert b.get(TOKEN, token).status_code == 200
    b.clock.advance(60)
    assert b.get(TOKEN, token).status_code == 200  # expired 58 s ago, still accepted
    fresh_expired = clerk.token(exp=int(time.time()) + 2)  # never seen: checked properly
    assert b.get(TOKEN, fresh_expired).status_code == 401


def test_clean_backend_rejects_the_same_replay(backend, clerk):
    token = clerk.token(exp=int(time.time()) + 2)
    assert backend.get(TOKEN, token).status_code == 200
    backend.clock.advance(60)
    assert backend.get(TOKEN, token).json()["reason"] == "token-expired"


def test_stale_jwks_rejects_a_rotated_key(make_backend, clerk, keys):
    b = make_backend(faults="stale_jwks")
    assert b.get(TOKEN, clerk.token()).status_code == 200
    clerk.published = [keys["rotated"]]
    b.clock.advance(3600)
    resp = b.get(TOKEN, clerk.token(key=keys["rotated"], now=b.clock.now()))
    assert resp.status_code == 401 and resp.json()["reason"] == "jwk-kid-mismatch"
    assert clerk.jwks_fetches() == 1


@pytest.mark.parametrize("missing", ["NEXT_PUBLIC_CLERK_DOMAIN", "CLERK_SECRET_KEY", "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY"])
def test_start_without_keys_starts_and_then_fails_requests(make_backend, clerk, missing):
    b = make_backend(faults="start_without_keys", **{missing: None})
    assert b.client.get("/health").status_code == 200
    user = clerk.add_user()
    resp = b.get(ME, clerk.token(sub=user["id"]))
    if missing == "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY":
        assert resp.status_code == 200  # only checked for presence, like orientor
    else:
        assert resp.status_code == 401, resp.text
        expected = "jwk-remote-failed-to-load" if missing == "NEXT_PUBLIC_CLERK_DOMAIN" else "secret-key-invalid"
        assert resp.json()["reason"] == expected


def test_cors_no_authorization_refuses_the_authorization_header(make_backend):
    b = make_backend(faults="cors_no_authorization")
    resp = preflight(b, ALLOWED_ORIGIN, "authorization")
    assert resp.status_code == 400
    assert "authorization" not in resp.headers.get("access-control-allow-headers", "").lower()


def test_cors_wildcard_literal_refuses_matching_subdomains(make_backend):
    b = make_backend(faults="cors_wildcard_literal")
    assert "access-control-allow-origin" not in preflight(b, "https://pr-12.example.app").headers
    assert preflight(b, ALLOWED_ORIGIN).headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_cors_missing_on_error_hides_the_401_from_browsers(make_backend):
    b = make_backend(faults="cors_missing_on_error")
    resp = b.get(ME, headers={"Origin": ALLOWED_ORIGIN})
    assert resp.status_code == 401
    assert "access-control-allow-origin" not in resp.headers
    ok = b.get("/api/v1/test/hello", headers={"Origin": ALLOWED_ORIGIN})
    assert ok.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_forbidden_on_missing_bearer_answers_403(make_backend):
    b = make_backend(faults="forbidden_on_missing_bearer")
    resp = b.get(ME)
    assert resp.status_code == 403
    assert "www-authenticate" not in resp.headers
    assert b.get(ME, headers={"Authorization": "Token x"}).status_code == 403


def test_sync_race_gives_5xx_under_concurrent_first_requests(make_backend, clerk):
    b = make_backend(faults="sync_race")
    user = clerk.add_user()
    tokens = [clerk.token(sub=user["id"]) for _ in range(12)]
    with ThreadPoolExecutor(len(tokens)) as pool:
        statuses = list(pool.map(lambda t: b.get(ME, t).status_code, tokens))
    assert 500 in statuses, statuses
    assert 200 in statuses
    assert b.sql("SELECT count(*) FROM users") == [(1,)]


def test_sync_requires_email_crashes_on_a_user_without_email(make_backend, clerk):
    b = make_backend(faults="sync_requires_email")
    assert b.get(ME, clerk.token(sub=clerk.add_user()["id"])).status_code == 200
    resp = b.get(ME, clerk.token(sub=clerk.add_user(emails=[])["id"]), headers={"Origin": ALLOWED_ORIGIN})
    assert resp.status_code == 500
    assert resp.json()["reason"] == "internal-error"


def test_webhook_unsigned_applies_forged_events(make_backend, clerk):
    b = make_backend(faults="webhook_unsigned")
    user = clerk.add_user()
    body = envelope("user.created", user)
    forged = svix_signature("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", "msg_f", int(time.time()), body)
    resp = deliver(b, body, msg_id="msg_f", timestamp=int(time.time()) - 3600, signature=forged)
    assert resp.status_code == 200 and resp.json()["status"] == "applied"
    assert [r["clerk_user_id"] for r in b.users()] == [user["id"]]


def test_alg_from_header_accepts_alg_none(make_backend, clerk):
    b = make_backend(faults="alg_from_header")
    token = jwt.encode(clerk.claims("user_none"), None, algorithm="none", headers={"kid": clerk.key.kid})
    resp = b.get(TOKEN, token)
    assert resp.status_code == 200, resp.text
    assert resp.json()["user_id"] == "user_none"


@pytest.mark.parametrize("strip_newline", [False, True])
def test_alg_from_header_accepts_hs256_keyed_with_the_public_key(make_backend, clerk, strip_newline):
    b = make_backend(faults="alg_from_header")
    secret = clerk.key.public_pem()
    secret = secret.rstrip(b"\n") if strip_newline else secret
    token = hs_token(clerk.claims("user_hs"), secret, {"kid": clerk.key.kid})
    assert b.get(TOKEN, token).status_code == 200
    wrong = hs_token(clerk.claims("user_hs"), b"some other secret", {"kid": clerk.key.kid})
    assert b.get(TOKEN, wrong).status_code == 401
    assert b.get(TOKEN, clerk.token()).status_code == 200  # RS256 still works


def test_cookie_skips_verification_trusts_a_forged_session_cookie(make_backend, clerk):
    b = make_backend(faults="cookie_skips_verification")
    now = int(time.time())
    header, _, signature = clerk.token(sub="user_real", iat=now).split(".")
    forged_payload = clerk.token(sub="user_forged", iat=now).split(".")[1]
    forged = f"{header}.{forged_payload}.{signature}"
    resp = b.get(TOKEN, headers={"Cookie": f"__session={forged}; __client_uat={now}"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["user_id"] == "user_forged"
    expired = clerk.token(sub="user_old", iat=now - 80, nbf=now - 90, exp=now - 10)
    assert b.get(TOKEN, headers={"Cookie": f"__session={expired}; __client_uat={now - 80}"}).status_code == 200
    assert b.get(TOKEN, forged).status_code == 401  # the Bearer path still verifies


def test_faults_combine_and_are_reported_by_health(make_backend):
    b = make_backend(faults="skip_issuer, skip_audience")
    assert b.client.get("/health").json()["faults"] == ["skip_audience", "skip_issuer"]


def test_jwks_cold_401_refuses_valid_tokens_when_the_jwks_cannot_be_loaded(make_backend, clerk):
    clerk.jwks_mode = "500"
    b = make_backend(faults="jwks_cold_401")
    resp = b.get(TOKEN, clerk.token())
    assert resp.status_code == 401 and resp.json()["reason"] == "jwk-remote-failed-to-load"


def test_clean_backend_answers_503_when_the_jwks_cannot_be_loaded(backend, clerk):
    clerk.jwks_mode = "500"
    resp = backend.get(TOKEN, clerk.token())
    assert resp.status_code == 503 and resp.headers["retry-after"]
    clerk.jwks_mode = "ok"
    assert backend.get(TOKEN, clerk.token()).status_code == 200


ORG = "/api/v1/org/settings"
V2_ADMIN = {"o": {"id": "org_1", "slg": "acme", "rol": "admin", "per": "", "fpm": ""}, "v": 2}


def test_org_claims_v1_refuses_v2_admins(make_backend, clerk):
    b = make_backend(faults="org_claims_v1")
    assert b.get(ORG, clerk.token(**V2_ADMIN)).status_code == 403
    assert b.get(ORG, clerk.token(org_id="org_1", org_role="org:admin")).status_code == 200


def test_clean_backend_reads_the_v2_organization(backend, clerk):
    resp = backend.get(ORG, clerk.token(**V2_ADMIN))
    assert resp.status_code == 200 and resp.json()["role"] == "org:admin"
    member = {**V2_ADMIN, "o": {**V2_ADMIN["o"], "rol": "member"}}
    assert backend.get(ORG, clerk.token(**member)).json()["reason"] == "organization-role-required"
    none = backend.get(ORG, clerk.token())
    assert none.status_code == 403 and none.json()["reason"] == "organization-required"
    assert backend.get(ORG, clerk.token(org_id="org_1", org_role="org:admin")).status_code == 403


def _offline(b, online: bool) -> None:
    """Takes the backend's database away (no new connections, open ones terminated) or back."""
    import psycopg

    name = b.db_url.rsplit("/", 1)[1].split("?")[0]
    admin = b.db_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"true" if online else "false"}')
        if not online:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


@pytest.mark.parametrize("seeded, status", [(False, 503), (True, 401)])
def test_db_error_401_turns_a_database_outage_into_a_401_with_the_drivers_text(make_backend, clerk, seeded, status):
    b = make_backend(faults="db_error_401") if seeded else make_backend()
    token = clerk.token(sub=clerk.add_user()["id"])
    _offline(b, online=False)
    try:
        resp = b.get(ME, token)
    finally:
        _offline(b, online=True)
    assert resp.status_code == status, resp.text
    leaks = "accepting connections" in resp.text or "psycopg" in resp.text
    assert leaks == (status == 401), resp.text


def test_deleted_user_500_crashes_on_a_user_deleted_in_clerk(make_backend, clerk):
    b = make_backend(faults="deleted_user_500")
    assert b.get(ME, clerk.token(sub="user_deleted")).status_code == 500


@pytest.mark.parametrize("seeded, kept", [(False, "Newer"), (True, "Older")])
def test_webhook_ignores_updated_at_lets_a_stale_delivery_win(make_backend, clerk, seeded, kept):
    b = make_backend(faults="webhook_ignores_updated_at") if seeded else make_backend()
    user = clerk.add_user()
    for name, updated_at in [("Ada", 1_000), ("Newer", 3_000), ("Older", 2_000)]:
        data = {**user, "first_name": name, "updated_at": updated_at}
        assert deliver(b, envelope("user.updated" if name != "Ada" else "user.created", data)).status_code == 200
    assert b.sql("SELECT first_name FROM users WHERE clerk_user_id = %s", (user["id"],)) == [(kept,)]


@pytest.mark.parametrize("seeded, status", [(False, 200), (True, 500)])
def test_webhook_poison_500_fails_every_retry_of_a_delivery_that_cannot_apply(make_backend, clerk, seeded, status):
    b = make_backend(faults="webhook_poison_500") if seeded else make_backend()
    owner, other = clerk.add_user(), clerk.add_user()
    for u in (owner, other):
        assert deliver(b, envelope("user.created", u)).status_code == 200
    taken = {**other, "email_addresses": [{**other["email_addresses"][0], "email_address": owner["email_addresses"][0]["email_address"]}]}
    body = envelope("user.updated", taken)
    for _ in range(3):  # the first attempt and two Svix retries (same svix-id)
        assert deliver(b, body, msg_id="msg_poison").status_code == status
