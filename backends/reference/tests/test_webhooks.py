"""POST /api/webhooks/clerk: Svix verification, user events, at-most-once per svix-id."""

from __future__ import annotations

import json
import secrets
import time

from svix.webhooks import Webhook

from .fakes import WEBHOOK_SECRET, svix_signature

HOOK = "/api/webhooks/clerk"


def envelope(kind: str, data: dict) -> str:
    return json.dumps(
        {
            "data": data,
            "object": "event",
            "type": kind,
            "timestamp": int(time.time() * 1000),
            "instance_id": "ins_test",
            "event_attributes": {"http_request": {"client_ip": "127.0.0.1", "user_agent": "test"}},
        }
    )


def deliver(backend, body: str, msg_id: str | None = None, timestamp: int | None = None, signature: str | None = None):
    msg_id = msg_id or "msg_" + secrets.token_hex(12)
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = signature or svix_signature(WEBHOOK_SECRET, msg_id, timestamp, body)
    return backend.client.post(
        HOOK,
        content=body,
        headers={"svix-id": msg_id, "svix-timestamp": str(timestamp), "svix-signature": signature, "content-type": "application/json"},
    )


def test_signing_helper_matches_the_svix_test_vector():
    body = '{"email":"test@example.com","username":"test_user"}'
    expected = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    assert svix_signature(WEBHOOK_SECRET, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body) == expected
    from datetime import datetime, timezone

    ts = datetime.fromtimestamp(1649367553, tz=timezone.utc)
    assert Webhook(WEBHOOK_SECRET).sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", ts, body) == expected


def test_user_created_updated_deleted_are_applied(backend, clerk):
    user = clerk.add_user(emails=["hook@example.com"], first_name="Hook")
    resp = deliver(backend, envelope("user.created", user))
    assert resp.status_code == 200 and resp.json()["status"] == "applied", resp.text
    [row] = backend.users()
    assert (row["clerk_user_id"], row["email"], row["first_name"]) == (user["id"], "hook@example.com", "Hook")

    user["first_name"] = "Captain"
    assert deliver(backend, envelope("user.updated", user)).json()["status"] == "applied"
    assert backend.users()[0]["first_name"] == "Captain"

    resp = deliver(backend, envelope("user.deleted", {"object": "user", "id": user["id"], "deleted": True}))
    assert resp.json()["status"] == "applied"
    [row] = backend.users()
    assert row["deleted"] is True and row["is_active"] is False


def test_deleted_user_stays_deleted_after_a_later_sync(backend, clerk):
    user = clerk.add_user()
    assert backend.get("/api/v1/auth/me", clerk.token(sub=user["id"])).status_code == 200
    deliver(backend, envelope("user.deleted", {"object": "user", "id": user["id"], "deleted": True}))
    body = backend.get("/api/v1/auth/me", clerk.token(sub=user["id"])).json()
    assert body["deleted"] is True and body["is_active"] is False


def test_user_created_without_email_is_applied(backend, clerk):
    user = clerk.add_user(emails=[])
    assert deliver(backend, envelope("user.created", user)).status_code == 200
    assert backend.users()[0]["email"] is None


def test_bad_signature_is_400_and_changes_nothing(backend, clerk):
    user = clerk.add_user()
    body = envelope("user.created", user)
    forged = svix_signature("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", "msg_x", int(time.time()), body)
    resp = deliver(backend, body, msg_id="msg_x", signature=forged)
    assert resp.status_code == 400 and resp.json()["reason"] == "webhook-invalid-signature", resp.text
    assert backend.users() == []
    assert backend.sql("SELECT count(*) FROM webhook_events") == [(0,)]


def test_signature_over_another_body_is_400(backend, clerk):
    user = clerk.add_user()
    ts = int(time.time())
    signature = svix_signature(WEBHOOK_SECRET, "msg_y", ts, envelope("user.created", clerk.add_user()))
    resp = deliver(backend, envelope("user.created", user), msg_id="msg_y", timestamp=ts, signature=signature)
    assert resp.status_code == 400
    assert backend.users() == []


def test_stale_timestamp_is_400_and_changes_nothing(backend, clerk):
    user = clerk.add_user()
    resp = deliver(backend, envelope("user.created", user), timestamp=int(time.time()) - 600)
    assert resp.status_code == 400 and resp.json()["reason"] == "webhook-timestamp-out-of-tolerance", resp.text
    assert backend.users() == []


def test_future_timestamp_is_400(backend, clerk):
    resp = deliver(backend, envelope("user.created", clerk.add_user()), timestamp=int(time.time()) + 600)
    assert resp.status_code == 400 and resp.json()["reason"] == "webhook-timestamp-out-of-tolerance"


def test_missing_svix_headers_is_400(backend, clerk):
    resp = backend.client.post(HOOK, content=envelope("user.created", clerk.add_user()))
    assert resp.status_code == 400 and resp.json()["reason"] == "webhook-missing-headers"
    assert backend.users() == []


def test_malformed_signature_header_is_400(backend, clerk):
    resp = deliver(backend, envelope("user.created", clerk.add_user()), signature="garbage")
    assert resp.status_code == 400 and resp.json()["reason"] == "webhook-invalid-signature"


def test_same_svix_id_twice_is_applied_once(backend, clerk):
    user = clerk.add_user(first_name="One")
    deliver(backend, envelope("user.created", user))
    user["first_name"] = "Two"
    first_update = envelope("user.updated", user)
    assert deliver(backend, first_update, msg_id="msg_dup").json()["status"] == "applied"
    user["first_name"] = "Three"
    assert deliver(backend, envelope("user.updated", user)).json()["status"] == "applied"
    resp = deliver(backend, first_update, msg_id="msg_dup")  # a redelivery of the older event
    assert resp.status_code == 200 and resp.json()["status"] == "duplicate"
    assert backend.users()[0]["first_name"] == "Three"
    assert backend.sql("SELECT count(*) FROM webhook_events WHERE svix_id = 'msg_dup'") == [(1,)]


def test_other_event_types_are_acknowledged_and_ignored(backend):
    resp = deliver(backend, envelope("session.created", {"object": "session", "id": "sess_1"}))
    assert resp.status_code == 200 and resp.json()["status"] == "ignored"


def test_user_event_without_id_is_400(backend):
    resp = deliver(backend, envelope("user.created", {"object": "user"}))
    assert resp.status_code == 400 and resp.json()["reason"] == "webhook-invalid-payload"
