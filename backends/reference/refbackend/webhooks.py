"""``POST /api/webhooks/clerk``: Svix-verified ``user.created|updated|deleted`` events.

A bad signature, missing Svix headers or a timestamp more than 5 minutes off is a 400 and
changes nothing. Each ``svix-id`` is recorded in the same transaction as its effect, so a
redelivery is acknowledged (200, ``duplicate``) without being applied twice.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import base64
import binascii
import threading

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from .config import ConfigError, Settings
from .db import EmailConflict, apply_webhook, mark_seen
from .errors import ApiError

log = logging.getLogger("reference")

router = APIRouter()
USER_EVENTS = ("user.created", "user.updated", "user.deleted")


class SvixVerifier:
    """Checks ``CLERK_WEBHOOK_SECRET`` at start-up; imports the svix library on first use only,
    because importing it costs ~0.3 s of start-up time."""

    def __init__(self, secret: str) -> None:
        try:
            base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(f"CLERK_WEBHOOK_SECRET is not a valid whsec_<base64> secret: {exc}") from exc
        self.secret = secret
        self._webhook = None
        self._lock = threading.Lock()

    def verify(self, body: bytes, headers: dict[str, str]) -> None:
        with self._lock:
            if self._webhook is None:
                from svix.webhooks import Webhook

                self._webhook = Webhook(self.secret)
        self._webhook.verify(body, headers)


def make_verifier(settings: Settings) -> SvixVerifier | None:
    if not settings.webhook_secret:  # only under start_without_keys
        return None
    return SvixVerifier(settings.webhook_secret)


def _verify(verifier: SvixVerifier | None, body: bytes, headers: dict[str, str]) -> None:
    from svix.webhooks import WebhookVerificationError

    if verifier is None:
        raise ApiError(500, "webhook-secret-missing", "CLERK_WEBHOOK_SECRET is not set: cannot verify webhooks")
    try:
        verifier.verify(body, headers)
    except WebhookVerificationError as exc:
        message = str(exc)
        if "timestamp" in message.lower():
            raise ApiError(400, "webhook-timestamp-out-of-tolerance", f"svix-timestamp rejected: {message}")
        if "missing" in message.lower():
            raise ApiError(400, "webhook-missing-headers", "svix-id, svix-timestamp and svix-signature are required")
        raise ApiError(400, "webhook-invalid-signature", f"svix-signature rejected: {message}")
    except Exception as exc:  # malformed signature header, bad base64…
        raise ApiError(400, "webhook-invalid-signature", f"svix headers could not be parsed: {type(exc).__name__}")


def _parse(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError:
        raise ApiError(400, "webhook-invalid-payload", "body is not JSON")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise ApiError(400, "webhook-invalid-payload", "body is not a Clerk event (no type)")
    data = event.get("data")
    if event["type"] in USER_EVENTS and not (isinstance(data, dict) and isinstance(data.get("id"), str)):
        raise ApiError(400, "webhook-invalid-payload", f"{event['type']} without data.id")
    return event


@router.post("/api/webhooks/clerk")
async def clerk_webhook(request: Request) -> dict[str, Any]:
    state = request.app.state.ref
    body = await request.body()
    if not state.settings.has("webhook_unsigned"):
        await run_in_threadpool(_verify, state.webhook_verifier, body, dict(request.headers))
    event = _parse(body)
    svix_id = request.headers.get("svix-id")
    try:
        outcome = await run_in_threadpool(apply_webhook, state.engine, svix_id, event, state.settings.faults)
    except EmailConflict as exc:
        if state.settings.has("webhook_poison_500"):
            raise RuntimeError(f"webhook {svix_id}: {exc.detail}") from exc
        # It can never apply, and Svix retries every non-2xx for a day: acknowledge it, loudly.
        log.error("webhook %s %s skipped, it can never apply: %s", svix_id, event["type"], exc.detail)
        await run_in_threadpool(mark_seen, state.engine, svix_id, event["type"])
        outcome = "skipped"
    log.info("webhook %s %s: %s", svix_id, event["type"], outcome)
    return {"status": outcome, "type": event["type"], "svix_id": svix_id}
