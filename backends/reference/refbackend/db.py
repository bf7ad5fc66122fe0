"""Schema and the writes the auth flow makes: user sync and webhook events.

``users`` mirrors orientor's table, with two deliberate differences: ``email`` is nullable
(a Clerk user may have no email address at all: such a user is stored with ``email = NULL``
instead of a made-up address), and a ``deleted`` flag set by ``user.deleted`` webhooks.
``webhook_events`` remembers each applied ``svix-id`` so a redelivery is applied once.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Callable, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    false,
    func,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from .clerk_api import primary_email
from .errors import ApiError

log = logging.getLogger("reference")

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(255), unique=True, nullable=True),
    Column("clerk_user_id", String(255), unique=True, nullable=True),
    Column("first_name", String(255)),
    Column("last_name", String(255)),
    Column("is_active", Boolean, nullable=False, server_default=true()),
    Column("deleted", Boolean, nullable=False, server_default=false()),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_clerk_sync", DateTime(timezone=True)),
    # The Clerk user's `updated_at` (ms) of the data in the row: an older event changes nothing.
    Column("clerk_updated_at", BigInteger),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("svix_id", String(255), primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

SCHEMA_LOCK_ID = 7_243_001  # pg advisory lock: several processes may create the schema at once
SYNC_ATTEMPTS = 3
RACE_WINDOW_SECONDS = 0.1  # sync_race fault: widens the check-then-insert window

T = TypeVar("T")


def make_engine(url: str) -> Engine:
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=10)


def create_schema(engine: Engine) -> None:
    """Idempotent, and safe when several processes run it against one database."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SCHEMA_LOCK_ID})
        metadata.create_all(conn, checkfirst=True)


def user_json(row: Any) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": row.id,
        "email": row.email,
        "clerk_user_id": row.clerk_user_id,
        "first_name": row.first_name,
        "last_name": row.last_name,
        "is_active": row.is_active,
        "deleted": row.deleted,
        "created_at": iso(row.created_at),
        "last_clerk_sync": iso(row.last_clerk_sync),
    }


class EmailConflict(ApiError):
    def __init__(self, email: str) -> None:
        super().__init__(
            409,
            "user-email-conflict",
            f"the email {email} already belongs to another account with a different Clerk user id; "
            "it was not linked automatically (resolve the duplicate account)",
        )


def _unique_constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


def _with_retry(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in a transaction; a unique violation from a concurrent writer is retried."""
    for attempt in range(1, SYNC_ATTEMPTS + 1):
        try:
            with engine.begin() as conn:
                return work(conn)
        except IntegrityError as exc:
            if attempt == SYNC_ATTEMPTS:
                raise
            log.info("user sync: concurrent write on %s, retrying (%d)", _unique_constraint(exc), attempt)
    raise AssertionError("unreachable")


def _profile(user: dict[str, Any], faults: frozenset[str]) -> dict[str, Any]:
    if "sync_requires_email" in faults:
        email = user["email_addresses"][0]["email_address"]  # the seeded crash: IndexError
    else:
        email = primary_email(user)
    updated_at = user.get("updated_at")
    return {
        "clerk_user_id": user["id"],
        "email": email,
        "first_name": user.get("first_name"),
        "last_name": user.get("last_name"),
        "updated_at": updated_at if isinstance(updated_at, int) else None,
        "ignore_order": "webhook_ignores_updated_at" in faults,
    }


def _upsert(conn: Connection, p: dict[str, Any]) -> Any:
    cid, email = p["clerk_user_id"], p["email"]
    names = {
        "first_name": p["first_name"],
        "last_name": p["last_name"],
        "last_clerk_sync": func.now(),
        "clerk_updated_at": p["updated_at"],
    }

    row = conn.execute(select(users).where(users.c.clerk_user_id == cid).with_for_update()).first()
    if row is not None:
        stale = p["updated_at"] is not None and row.clerk_updated_at is not None and p["updated_at"] < row.clerk_updated_at
        if stale and not p["ignore_order"]:
            log.info("user sync: %s data of updated_at %s is older than the row's (%s): kept the row", cid, p["updated_at"], row.clerk_updated_at)
            return row
        changes = dict(names)
        if email and email != row.email:
            _ensure_email_free(conn, email, cid)
            changes["email"] = email
        return conn.execute(
            update(users).where(users.c.id == row.id).values(**changes).returning(*users.c)
        ).one()

    if email:
        linked = conn.execute(
            update(users)
            .where(func.lower(users.c.email) == email.lower(), users.c.clerk_user_id.is_(None))
            .values(clerk_user_id=cid, email=email, **names)
            .returning(*users.c)
        ).first()
        if linked is not None:
            log.info("user sync: linked legacy user %s (%s) to %s", linked.id, email, cid)
            return linked
        _ensure_email_free(conn, email, cid)

    stmt = pg_insert(users).values(clerk_user_id=cid, email=email, **names)
    stmt = stmt.on_conflict_do_update(
        index_elements=[users.c.clerk_user_id],
        set_={
            "email": func.coalesce(stmt.excluded.email, users.c.email),
            "first_name": stmt.excluded.first_name,
            "last_name": stmt.excluded.last_name,
            "last_clerk_sync": func.now(),
            "clerk_updated_at": stmt.excluded.clerk_updated_at,
        },
    )
    return conn.execute(stmt.returning(*users.c)).one()


def _ensure_email_free(conn: Connection, email: str, cid: str) -> None:
    owner = conn.execute(
        select(users.c.clerk_user_id).where(func.lower(users.c.email) == email.lower())
    ).first()
    if owner is not None and owner.clerk_user_id not in (None, cid):
        raise EmailConflict(email)


def _racy_upsert(conn: Connection, p: dict[str, Any]) -> Any:
    """The sync_race fault: check, then insert, with nothing to handle a concurrent insert."""
    cid, email = p["clerk_user_id"], p["email"]
    names = {"first_name": p["first_name"], "last_name": p["last_name"], "last_clerk_sync": func.now()}
    names["clerk_updated_at"] = p["updated_at"]
    row = conn.execute(select(users).where(users.c.clerk_user_id == cid)).first()
    if row is not None:
        return conn.execute(update(users).where(users.c.id == row.id).values(**names).returning(*users.c)).one()
    if email:
        legacy = conn.execute(
            select(users).where(func.lower(users.c.email) == email.lower(), users.c.clerk_user_id.is_(None))
        ).first()
        if legacy is not None:
            return conn.execute(
                update(users).where(users.c.id == legacy.id).values(clerk_user_id=cid, **names).returning(*users.c)
            ).one()
    time.sleep(RACE_WINDOW_SECONDS)
    return conn.execute(
        users.insert().values(clerk_user_id=cid, email=email, **names).returning(*users.c)
    ).one()


def _apply_user(conn: Connection, user: dict[str, Any], faults: frozenset[str]) -> Any:
    profile = _profile(user, faults)
    return (_racy_upsert if "sync_race" in faults else _upsert)(conn, profile)


def sync_user(engine: Engine, user: dict[str, Any], faults: frozenset[str]) -> dict[str, Any]:
    """Create or update the local row for a Clerk user object; returns the row as JSON."""
    if "sync_race" in faults:
        with engine.begin() as conn:
            return user_json(_apply_user(conn, user, faults))
    return user_json(_with_retry(engine, lambda conn: _apply_user(conn, user, faults)))


def apply_webhook(engine: Engine, svix_id: str | None, event: dict[str, Any], faults: frozenset[str]) -> str:
    """Apply one event, at most once per svix-id; returns applied | duplicate | ignored."""
    kind = str(event.get("type"))
    data = event.get("data") or {}

    def work(conn: Connection) -> str:
        if svix_id:
            first_time = conn.execute(
                pg_insert(webhook_events)
                .values(svix_id=svix_id, event_type=kind[:100])
                .on_conflict_do_nothing()
                .returning(webhook_events.c.svix_id)
            ).first()
            if first_time is None:
                return "duplicate"
        if kind in ("user.created", "user.updated"):
            _apply_user(conn, data, faults)
            return "applied"
        if kind == "user.deleted":
            conn.execute(
                update(users)
                .where(users.c.clerk_user_id == data.get("id"))
                .values(deleted=True, is_active=False, last_clerk_sync=func.now())
            )
            return "applied"
        return "ignored"

    if "sync_race" in faults:
        with engine.begin() as conn:
            return work(conn)
    return _with_retry(engine, work)


def mark_seen(engine: Engine, svix_id: str | None, kind: str) -> None:
    """Records a delivery that was acknowledged without being applied."""
    if svix_id:
        with engine.begin() as conn:
            conn.execute(pg_insert(webhook_events).values(svix_id=svix_id, event_type=kind[:100]).on_conflict_do_nothing())


def find_user(engine: Engine, clerk_user_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.clerk_user_id == clerk_user_id)).first()
        return user_json(row) if row is not None else None
