"""GET /api/v1/auth/me: token check, Backend API fetch, race-safe idempotent user sync."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from .fakes import SECRET_KEY

ME = "/api/v1/auth/me"


def test_first_request_creates_exactly_one_row(backend, clerk):
    user = clerk.add_user(emails=["ada@example.com"], first_name="Ada", last_name="Lovelace")
    resp = backend.get(ME, clerk.token(sub=user["id"]))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["clerk_user_id"] == user["id"]
    assert body["email"] == "ada@example.com"
    assert (body["first_name"], body["last_name"]) == ("Ada", "Lovelace")
    assert body["is_active"] is True and body["deleted"] is False
    assert isinstance(body["id"], int) and body["created_at"] and body["last_clerk_sync"]
    rows = backend.users()
    assert len(rows) == 1 and rows[0]["id"] == body["id"] and rows[0]["clerk_user_id"] == user["id"]


def test_backend_api_is_called_with_the_secret_key(backend, clerk):
    user = clerk.add_user()
    assert backend.get(ME, clerk.token(sub=user["id"])).status_code == 200
    assert clerk.bapi_calls() == [("GET", f"https://api.clerk.com/v1/users/{user['id']}", f"Bearer {SECRET_KEY}")]


def test_repeat_requests_are_idempotent_and_refresh_the_profile(backend, clerk):
    user = clerk.add_user(first_name="Ada")
    first = backend.get(ME, clerk.token(sub=user["id"])).json()
    user["first_name"] = "Augusta"
    second = backend.get(ME, clerk.token(sub=user["id"])).json()
    assert second["id"] == first["id"]
    assert second["first_name"] == "Augusta"
    assert len(backend.users()) == 1


def test_concurrent_first_requests_make_one_row_and_no_5xx(backend, clerk):
    user = clerk.add_user()
    tokens = [clerk.token(sub=user["id"]) for _ in range(12)]
    with ThreadPoolExecutor(len(tokens)) as pool:
        statuses = list(pool.map(lambda t: backend.get(ME, t).status_code, tokens))
    assert statuses == [200] * len(tokens)
    assert backend.sql("SELECT count(*) FROM users WHERE clerk_user_id = %s", (user["id"],)) == [(1,)]


def test_concurrent_first_requests_linking_a_legacy_row(backend, clerk):
    user = clerk.add_user(emails=["legacy-race@example.com"])
    backend.client.get("/health")
    backend.sql("INSERT INTO users (email, first_name, is_active) VALUES ('legacy-race@example.com', 'Old', true)")
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda t: backend.get(ME, t).status_code, [clerk.token(sub=user["id"]) for _ in range(8)]))
    assert statuses == [200] * 8
    assert len(backend.users()) == 1


def test_legacy_row_with_same_email_and_no_clerk_id_is_linked(backend, clerk):
    backend.sql(
        "INSERT INTO users (email, first_name, is_active) VALUES ('Grace@Example.com', 'Old', true) RETURNING id"
    )
    legacy_id = backend.sql("SELECT id FROM users")[0][0]
    user = clerk.add_user(emails=["grace@example.com"], first_name="Grace", last_name="Hopper")
    body = backend.get(ME, clerk.token(sub=user["id"])).json()
    assert body["id"] == legacy_id
    assert body["clerk_user_id"] == user["id"]
    assert body["first_name"] == "Grace"
    assert len(backend.users()) == 1


def test_same_email_under_another_clerk_id_is_409_not_401(backend, clerk):
    first = clerk.add_user(emails=["shared@example.com"])
    second = clerk.add_user(emails=["shared@example.com"])
    assert backend.get(ME, clerk.token(sub=first["id"])).status_code == 200
    resp = backend.get(ME, clerk.token(sub=second["id"]))
    assert resp.status_code == 409, resp.text
    assert resp.json()["reason"] == "user-email-conflict"
    rows = backend.users()
    assert [r["clerk_user_id"] for r in rows] == [first["id"]]


def test_user_without_email_is_stored_with_null_email(backend, clerk):
    user = clerk.add_user(emails=[])
    resp = backend.get(ME, clerk.token(sub=user["id"]))
    assert resp.status_code == 200, resp.text
    assert resp.json()["email"] is None
    assert backend.get(ME, clerk.token(sub=user["id"])).status_code == 200
    other = clerk.add_user(emails=[])  # NULL emails never collide
    assert backend.get(ME, clerk.token(sub=other["id"])).status_code == 200
    assert len(backend.users()) == 2


def test_primary_email_is_chosen(backend, clerk):
    user = clerk.add_user(emails=["second@example.com", "primary@example.com"], primary=1)
    assert backend.get(ME, clerk.token(sub=user["id"])).json()["email"] == "primary@example.com"


def test_email_change_in_clerk_is_synced(backend, clerk):
    user = clerk.add_user(emails=["old@example.com"])
    backend.get(ME, clerk.token(sub=user["id"]))
    user["email_addresses"][0]["email_address"] = "new@example.com"
    assert backend.get(ME, clerk.token(sub=user["id"])).json()["email"] == "new@example.com"


@pytest.mark.parametrize(
    "mode, retry_after",
    [((429, {"Retry-After": "7"}), "7"), ((500, {}), None), ((502, {}), None), ("down", None)],
    ids=["429", "500", "502", "connection-error"],
)
def test_backend_api_outage_is_503_with_retry_after_never_401(backend, clerk, mode, retry_after):
    user = clerk.add_user()
    clerk.bapi_mode = mode
    resp = backend.get(ME, clerk.token(sub=user["id"]))
    assert resp.status_code == 503, resp.text
    assert resp.json()["reason"] == "clerk-api-unavailable"
    assert int(resp.headers["retry-after"]) >= 1
    if retry_after:
        assert resp.headers["retry-after"] == retry_after
    assert backend.users() == []


def test_rejected_secret_key_is_500_with_reason(make_backend, clerk):
    b = make_backend(CLERK_SECRET_KEY="sk_test_someone_elses_key")
    user = clerk.add_user()
    resp = b.get(ME, clerk.token(sub=user["id"]))
    assert resp.status_code == 500 and resp.json()["reason"] == "secret-key-invalid"


def test_user_unknown_to_another_instances_backend_api_is_a_500_not_401(backend, clerk):
    clerk.bapi_foreign = True
    resp = backend.get(ME, clerk.token(sub="user_nobody"))
    assert resp.status_code == 500 and resp.json()["reason"] == "user-not-found-in-clerk"


def test_a_user_deleted_in_clerk_with_a_valid_token_gets_401(backend, clerk):
    resp = backend.get(ME, clerk.token(sub="user_deleted"))
    assert resp.status_code == 401 and resp.json()["reason"] == "user-deleted"


def test_a_stale_user_object_does_not_overwrite_a_newer_row(backend, clerk):
    user = clerk.add_user()
    user["updated_at"] = 2_000
    assert backend.get(ME, clerk.token(sub=user["id"])).json()["first_name"] == user["first_name"]
    user["first_name"], user["updated_at"] = "Stale", 1_000
    assert backend.get(ME, clerk.token(sub=user["id"])).json()["first_name"] != "Stale"


def test_me_requires_a_token(backend):
    resp = backend.get(ME)
    assert resp.status_code == 401 and resp.json()["reason"] == "token-missing"
