"""The JWKS cache: TTL, refetch on unknown kid (key rotation), outages with a warm cache."""

from __future__ import annotations

import pytest

from refbackend.jwks import TTL_SECONDS, UNKNOWN_KID_COOLDOWN_SECONDS

ENDPOINT = "/api/v1/test-token"


def test_jwks_is_fetched_from_the_fapi_host(backend, clerk):
    assert backend.get(ENDPOINT, clerk.token()).status_code == 200
    urls = [url for _, url, _ in clerk.requests]
    assert urls == [f"https://{clerk.domain}/.well-known/jwks.json"]


def test_jwks_is_cached_between_requests(backend, clerk):
    for _ in range(3):
        assert backend.get(ENDPOINT, clerk.token()).status_code == 200
    assert clerk.jwks_fetches() == 1


def test_jwks_is_refetched_after_its_ttl(backend, clerk):
    assert backend.get(ENDPOINT, clerk.token()).status_code == 200
    backend.clock.advance(TTL_SECONDS + 1)
    assert backend.get(ENDPOINT, clerk.token(now=backend.clock.now())).status_code == 200
    assert clerk.jwks_fetches() == 2


def test_rotated_key_is_accepted_on_the_first_try(backend, clerk, keys):
    assert backend.get(ENDPOINT, clerk.token()).status_code == 200
    clerk.published = [keys["rotated"]]  # rotation right after a fetch: no waiting allowed
    resp = backend.get(ENDPOINT, clerk.token(key=keys["rotated"]))
    assert resp.status_code == 200, resp.text
    assert clerk.jwks_fetches() == 2


def test_unknown_kid_is_401_and_not_refetched_again_at_once(backend, clerk, keys):
    unknown = clerk.token(key=keys["foreign"])
    for _ in range(3):
        resp = backend.get(ENDPOINT, unknown)
        assert resp.status_code == 401 and resp.json()["reason"] == "jwk-kid-mismatch"
    assert clerk.jwks_fetches() == 1  # the first miss loaded the JWKS; the others hit the cooldown
    backend.clock.advance(UNKNOWN_KID_COOLDOWN_SECONDS + 1)
    backend.get(ENDPOINT, clerk.token(key=keys["foreign"], now=backend.clock.now()))
    assert clerk.jwks_fetches() == 2


@pytest.mark.parametrize("mode", ["down", "500"])
def test_jwks_outage_with_a_warm_cache_still_accepts_known_kids(backend, clerk, mode):
    assert backend.get(ENDPOINT, clerk.token()).status_code == 200
    clerk.jwks_mode = mode
    backend.clock.advance(TTL_SECONDS + 1)  # the cache is stale, the refetch fails
    resp = backend.get(ENDPOINT, clerk.token(now=backend.clock.now()))
    assert resp.status_code == 200, resp.text
    assert clerk.jwks_fetches() == 2


@pytest.mark.parametrize("mode", ["down", "500"])
def test_jwks_outage_with_a_cold_cache_is_503_not_401(backend, clerk, mode):
    clerk.jwks_mode = mode
    resp = backend.get(ENDPOINT, clerk.token())
    assert resp.status_code == 503, resp.text
    assert resp.json()["reason"] == "jwk-remote-failed-to-load"
    assert int(resp.headers["retry-after"]) >= 1
