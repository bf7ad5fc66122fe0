"""Token verification by the rules of Clerk's SDKs, through GET /api/v1/test-token."""

from __future__ import annotations

import time

import jwt
import pytest

from .fakes import DROP, hs_token

ENDPOINT = "/api/v1/test-token"


def expect_401(resp, reason: str) -> None:
    assert resp.status_code == 401, resp.text
    body = resp.json()
    assert body["reason"] == reason, body
    assert body["detail"]
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert resp.headers["x-clerk-auth-status"] == "signed-out"
    assert resp.headers["x-clerk-auth-reason"] == reason


def test_valid_session_token_is_accepted_and_summarised(backend, clerk):
    resp = backend.get(ENDPOINT, clerk.token(sub="user_abc"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["valid"] is True
    assert body["user_id"] == "user_abc"
    assert body["session_id"].startswith("sess_")
    assert body["issuer"] == f"https://{clerk.domain}"
    assert resp.headers["x-clerk-auth-status"] == "signed-in"


def test_valid_template_token_is_accepted(backend, clerk):
    resp = backend.get(ENDPOINT, clerk.template_token(sub="user_tpl", email="a@b.co"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["claims"]["email"] == "a@b.co"


def test_missing_authorization_header_is_401_with_bearer_challenge(backend):
    resp = backend.get(ENDPOINT)
    expect_401(resp, "token-missing")
    assert resp.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "abc.def.ghi"])
def test_malformed_authorization_header_is_401_not_403(backend, header):
    resp = backend.get(ENDPOINT, headers={"Authorization": header})
    expect_401(resp, "token-malformed")


def test_session_id_sent_as_bearer_is_401_and_says_so(backend):
    resp = backend.get(ENDPOINT, "sess_2abcDEFghiJKLmnoPQRstuVWXyz")
    expect_401(resp, "token-invalid")
    assert "session id" in resp.json()["detail"]


def test_garbage_bearer_is_401(backend):
    expect_401(backend.get(ENDPOINT, "not-a-jwt"), "token-invalid")


def test_expired_beyond_leeway_is_401(backend, clerk):
    now = int(time.time())
    expect_401(backend.get(ENDPOINT, clerk.token(iat=now - 80, nbf=now - 90, exp=now - 10)), "token-expired")


def test_expired_within_leeway_is_accepted(backend, clerk):
    now = int(time.time())
    resp = backend.get(ENDPOINT, clerk.token(iat=now - 63, nbf=now - 73, exp=now - 3))
    assert resp.status_code == 200, resp.text


def test_not_yet_valid_is_401(backend, clerk):
    now = int(time.time())
    expect_401(backend.get(ENDPOINT, clerk.token(nbf=now + 30, iat=now, exp=now + 90)), "token-not-active-yet")


def test_nbf_within_leeway_is_accepted(backend, clerk):
    now = int(time.time())
    assert backend.get(ENDPOINT, clerk.token(nbf=now + 3, iat=now)).status_code == 200


def test_iat_in_the_future_is_401(backend, clerk):
    now = int(time.time())
    expect_401(backend.get(ENDPOINT, clerk.token(iat=now + 30, nbf=now - 10, exp=now + 90)), "token-iat-in-the-future")


def test_wrong_issuer_is_401(backend, clerk):
    expect_401(backend.get(ENDPOINT, clerk.token(iss="https://other-cat-3.clerk.accounts.dev")), "token-invalid-issuer")


def test_missing_issuer_is_401(backend, clerk):
    expect_401(backend.get(ENDPOINT, clerk.token(iss=DROP)), "token-invalid-issuer")


def test_audience_not_checked_when_not_configured(backend, clerk):
    assert backend.get(ENDPOINT, clerk.token(aud="anything")).status_code == 200


def test_wrong_audience_is_401_when_configured(make_backend, clerk):
    b = make_backend(CLERK_AUDIENCE="api.example.com")
    expect_401(b.get(ENDPOINT, clerk.token(aud="other.example.com")), "token-invalid-audience")
    expect_401(b.get(ENDPOINT, clerk.token()), "token-invalid-audience")
    assert b.get(ENDPOINT, clerk.token(aud="api.example.com")).status_code == 200
    assert b.get(ENDPOINT, clerk.token(aud=["x", "api.example.com"])).status_code == 200


def test_authorized_parties_checked_when_configured(make_backend, clerk):
    b = make_backend(CLERK_AUTHORIZED_PARTIES="http://localhost:3000,https://app.example.com")
    expect_401(b.get(ENDPOINT, clerk.token(azp="https://evil.example.net")), "token-invalid-authorized-parties")
    assert b.get(ENDPOINT, clerk.token(azp="https://app.example.com")).status_code == 200
    assert b.get(ENDPOINT, clerk.token(azp=DROP)).status_code == 200  # like Clerk's SDK: no azp, no check


def test_azp_not_checked_when_not_configured(backend, clerk):
    assert backend.get(ENDPOINT, clerk.token(azp="https://evil.example.net")).status_code == 200


def test_token_signed_by_another_key_is_401(backend, clerk, keys):
    forged = clerk.token(key=keys["foreign"].with_kid(clerk.key.kid))
    expect_401(backend.get(ENDPOINT, forged), "token-invalid-signature")


def test_foreign_instance_token_is_401(backend, clerk, keys):
    other = clerk.token(key=keys["foreign"], iss="https://other-cat-3.clerk.accounts.dev")
    expect_401(backend.get(ENDPOINT, other), "jwk-kid-mismatch")


def test_tampered_payload_is_401(backend, clerk):
    head, payload, sig = clerk.token(sub="user_a").split(".")
    claims = jwt.decode(clerk.token(sub="user_b"), options={"verify_signature": False})
    from .fakes import b64url
    import json

    tampered = f"{head}.{b64url(json.dumps(claims).encode())}.{sig}"
    expect_401(backend.get(ENDPOINT, tampered), "token-invalid-signature")


def test_alg_none_is_401(backend, clerk):
    token = jwt.encode(clerk.claims("user_x"), None, algorithm="none", headers={"kid": clerk.key.kid})
    expect_401(backend.get(ENDPOINT, token), "token-invalid-algorithm")


def test_hs256_signed_with_the_public_key_is_401(backend, clerk):
    token = hs_token(clerk.claims("user_x"), clerk.key.public_pem(), {"kid": clerk.key.kid})
    expect_401(backend.get(ENDPOINT, token), "token-invalid-algorithm")


def test_other_rsa_algorithms_are_401(backend, clerk):
    token = jwt.encode(clerk.claims("user_x"), clerk.key.private, algorithm="RS512", headers={"kid": clerk.key.kid})
    expect_401(backend.get(ENDPOINT, token), "token-invalid-algorithm")


def test_missing_sub_is_401(backend, clerk):
    expect_401(backend.get(ENDPOINT, clerk.token(sub=DROP)), "token-missing-claim")


def test_missing_exp_is_401(backend, clerk):
    expect_401(backend.get(ENDPOINT, clerk.token(exp=DROP)), "token-missing-claim")


def test_wrong_typ_is_401(backend, clerk):
    expect_401(backend.get(ENDPOINT, clerk.token(header={"typ": "at+jwt"})), "token-invalid")


def test_missing_kid_is_401(backend, clerk):
    expect_401(backend.get(ENDPOINT, clerk.token(header={"kid": DROP})), "token-invalid")


def test_rejections_are_logged_with_their_reason(backend, clerk, caplog):
    now = int(time.time())
    backend.get(ENDPOINT, clerk.token(exp=now - 30, iat=now - 90, nbf=now - 100))
    assert any("reason=token-expired" in r.getMessage() for r in caplog.records), caplog.text


def test_test_token_does_not_call_the_backend_api(backend, clerk):
    assert backend.get(ENDPOINT, clerk.token()).status_code == 200
    assert clerk.bapi_calls() == []
