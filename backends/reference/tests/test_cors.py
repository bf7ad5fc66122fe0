"""CORS from CORS_ORIGINS: credentials, `authorization` allowed, wildcards, headers on errors."""

from __future__ import annotations

import pytest

from .conftest import ALLOWED_ORIGIN

ME = "/api/v1/auth/me"


def preflight(backend, origin: str, headers: str = "authorization", path: str = ME):
    return backend.client.options(
        path,
        headers={"Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": headers},
    )


def test_preflight_from_allowed_origin_allows_authorization_with_credentials(backend):
    resp = preflight(backend, ALLOWED_ORIGIN, "authorization,content-type")
    assert resp.status_code == 200, resp.text
    assert resp.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert resp.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in resp.headers["access-control-allow-headers"].lower()
    assert "GET" in resp.headers["access-control-allow-methods"]


def test_preflight_from_disallowed_origin_gets_no_allow_origin(backend):
    resp = preflight(backend, "https://evil.example.net")
    assert "access-control-allow-origin" not in resp.headers


@pytest.mark.parametrize("origin", ["https://pr-12.example.app", "https://my-app.example.app"])
def test_wildcard_origin_pattern_matches_one_subdomain_label(backend, origin):
    resp = preflight(backend, origin)
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize(
    "origin", ["https://example.app", "https://evil.net/.example.app", "http://pr-1.example.app", "https://a.b.example.app", "https://pr-1.example.app.evil.net"]
)
def test_wildcard_origin_pattern_does_not_match_other_origins(backend, origin):
    assert "access-control-allow-origin" not in preflight(backend, origin).headers


def test_preflight_needs_no_token(backend):
    assert preflight(backend, ALLOWED_ORIGIN).status_code == 200


def test_401_carries_cors_headers_for_an_allowed_origin(backend):
    resp = backend.get(ME, headers={"Origin": ALLOWED_ORIGIN})
    assert resp.status_code == 401
    assert resp.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert resp.headers["access-control-allow-credentials"] == "true"
    assert "x-clerk-auth-reason" in resp.headers["access-control-expose-headers"].lower()


def test_never_wildcard_allow_origin_with_credentials(make_backend):
    b = make_backend(CORS_ORIGINS="*")
    resp = preflight(b, "https://anything.example.org")
    assert resp.headers["access-control-allow-origin"] == "https://anything.example.org"
    resp = b.get("/api/v1/test/hello", headers={"Origin": "https://anything.example.org"})
    assert resp.headers["access-control-allow-origin"] == "https://anything.example.org"


def test_unhandled_500_is_json_and_keeps_cors_headers(backend, clerk):
    user = clerk.add_user()
    backend.sql("DROP TABLE users")  # the sync now fails with an unexpected database error
    resp = backend.get(ME, clerk.token(sub=user["id"]), headers={"Origin": ALLOWED_ORIGIN})
    assert resp.status_code == 500
    assert resp.json()["reason"] == "internal-error"
    assert resp.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_simple_request_from_allowed_origin(backend):
    resp = backend.get("/api/v1/test/hello", headers={"Origin": ALLOWED_ORIGIN})
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
