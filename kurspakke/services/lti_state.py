"""Launch records shared by every web process, and the nonces they consume.

The login keeps no server state: its state parameter is signed (see lti_tool/lti/oidc_login.py) and carries the
nonce. A launch consumes that nonce by recording itself: the launch record's nonce is unique, inserted with
ON CONFLICT DO NOTHING (or SET NX in Redis), so a replayed id_token, even raced from several processes at once,
finds its nonce taken. Two stores with one contract: the database (default) and Redis (REDIS_URL).

Recording a launch also runs the launch's one read (who is launching), so that on PostgreSQL the whole launch is a
single statement: the INSERT as a data-modifying CTE beside the SELECT, in its own implicit transaction. That is
one round trip where a transaction would take four (BEGIN, SELECT, INSERT, COMMIT).
"""

from __future__ import annotations

import functools
import json
import secrets
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    CursorResult,
    Engine,
    Executable,
    Row,
    Select,
    String,
    bindparam,
    delete,
    literal_column,
    select,
    text,
    true,
    update,
)
from sqlalchemy.orm import Session

from kurspakke.models import ExpiringValue, LaunchRecord, utcnow
from kurspakke.models.base import UTCDateTime


class NonceReused(Exception):
    """This nonce was consumed by an earlier launch: a replay."""


# A read-only query and its parameters, run by record_launch in the same round trip where the store can.
Read = tuple[Select[Any], dict[str, Any]]


class LtiStateStore(Protocol):
    def record_launch(
        self, launch_id: str, nonce: str, data: dict[str, Any], ttl_seconds: int, read: Read | None = None
    ) -> list[Row[Any]] | None:
        """Record the launch, consuming its nonce. Returns the rows of ``read`` where the store ran it in the same
        round trip (PostgreSQL), else None: the caller runs the read itself. Raises NonceReused, and then nothing
        was recorded."""

    def get_launch(self, launch_id: str) -> dict[str, Any] | None: ...

    def set_locale(self, launch_id: str, locale: str) -> bool:
        """The language the person chose on a page, for the rest of the launch. False when the launch is gone."""
        ...

    def end_launch(self, launch_id: str) -> bool:
        """The launch is used up (a deep-linking launch, for its one response): its token opens nothing more.
        False when it was ended already (or never was): of two racing callers, one gets True."""

    def purge_expired(self) -> int: ...


# Consumes the nonce in the same statement that records the launch: no savepoint, no ORM unit of work. Written
# as text because SQLAlchemy does not cache the compiled form of on_conflict_do_nothing() inserts ("no key"), and
# compiling it on every launch cost more than running it. The same SQL runs on PostgreSQL and SQLite (>= 3.35).
_RECORD_LAUNCH = text(
    "INSERT INTO lti_launch (id, nonce, data, expires_at, created_at) "
    "VALUES (:id, :nonce, :data, :expires_at, :created_at) "
    "ON CONFLICT (nonce) DO NOTHING RETURNING id"
).bindparams(
    bindparam("data", type_=JSON()),
    bindparam("expires_at", type_=UTCDateTime()),
    bindparam("created_at", type_=UTCDateTime()),
)


@functools.lru_cache(maxsize=8)
def _with_launch(read: Select[Any]) -> Select[Any]:
    """``WITH launch AS (INSERT … RETURNING id) SELECT launch.id, found.* FROM launch LEFT JOIN (read) AS found
    ON true``: no row when the nonce was taken (nothing inserted), else the read's rows, or one row whose ``hit``
    is NULL when the read found nothing. The read does not see the launch being inserted. Built once per read
    statement (building costs more than running; statements hash by identity)."""
    launch = _RECORD_LAUNCH.columns(id=String).cte("launch")
    found = read.add_columns(literal_column("1").label("hit")).subquery("found")
    return select(launch.c.id.label("launch_id"), *found.c).select_from(launch.outerjoin(found, true()))


class DatabaseStateStore:
    """Launches in the database.

    On PostgreSQL the launch and its read are one statement. When the request has not touched the database yet
    (the usual launch), it runs on its own connection in autocommit, so it is committed at once: callers refuse a
    launch before recording it, never after. When the request already holds a transaction, it runs inside it
    (one connection per request, never two). On SQLite the INSERT runs in the request's transaction, and the
    caller's read after it in the same transaction.
    A replayed launch records nothing. A request that fails after recording (a database error, say) leaves the
    record, and so the consumed nonce, behind until it expires: the platform has to start a new launch.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def record_launch(
        self, launch_id: str, nonce: str, data: dict[str, Any], ttl_seconds: int, read: Read | None = None
    ) -> list[Row[Any]] | None:
        now = utcnow()
        values = {
            "id": launch_id,
            "nonce": nonce,
            "data": data,
            "expires_at": now + timedelta(seconds=ttl_seconds),
            "created_at": now,
        }
        if read is not None and not values.keys().isdisjoint(read[1]):
            raise ValueError("a read parameter has the name of a launch column")
        bind = self.session.get_bind()
        if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
            statement: Executable = _RECORD_LAUNCH
            params = values
            if read is not None:
                statement, params = _with_launch(read[0]), {**read[1], **values}
            if self.session.in_transaction():
                rows = self.session.connection().execute(statement, params).all()
            else:
                with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    rows = conn.execute(statement, params).all()
            if not rows:
                raise NonceReused(nonce)
            return None if read is None else [row for row in rows if row.hit is not None]
        inserted = self.session.connection().execute(_RECORD_LAUNCH, values).first()
        if inserted is None:
            raise NonceReused(nonce)
        return None  # SQLite: the caller's read runs in this same transaction

    def get_launch(self, launch_id: str) -> dict[str, Any] | None:
        data = self.session.scalars(
            select(LaunchRecord.data).where(LaunchRecord.id == launch_id, LaunchRecord.expires_at > utcnow())
        ).one_or_none()
        return None if data is None else dict(data)

    def set_locale(self, launch_id: str, locale: str) -> bool:
        data = self.get_launch(launch_id)
        if data is None:
            return False
        data["locale"] = locale
        result: CursorResult[Any] = self.session.execute(  # type: ignore[assignment]
            update(LaunchRecord).where(LaunchRecord.id == launch_id).values(data=data)
        )
        return result.rowcount == 1

    def end_launch(self, launch_id: str) -> bool:
        # Re-keyed to an id no token carries, not deleted: the row keeps its nonce consumed until it expires.
        result: CursorResult[Any] = self.session.execute(  # type: ignore[assignment]
            update(LaunchRecord).where(LaunchRecord.id == launch_id).values(id="ended-" + secrets.token_urlsafe(24))
        )
        return result.rowcount == 1

    def purge_expired(self) -> int:
        """Expired launches, and expired shared values (cached tokens, rate-limit windows)."""
        now = utcnow()
        purged = 0
        for table in (LaunchRecord, ExpiringValue):
            result: CursorResult[Any] = self.session.execute(  # type: ignore[assignment]
                delete(table).where(table.expires_at <= now)
            )
            purged += result.rowcount or 0
        return purged


class RedisStateStore:
    """Launches in Redis; expiry is Redis's own TTL, so purging is a no-op. The caller runs the read."""

    PREFIX = "kurspakke:lti:"

    def __init__(self, client: Any) -> None:
        self.client = client

    def record_launch(
        self, launch_id: str, nonce: str, data: dict[str, Any], ttl_seconds: int, read: Read | None = None
    ) -> list[Row[Any]] | None:
        # SET NX is atomic: of several racing launches with one nonce, one wins.
        if not self.client.set(f"{self.PREFIX}nonce:{nonce}", launch_id, nx=True, ex=ttl_seconds):
            raise NonceReused(nonce)
        self.client.set(f"{self.PREFIX}launch:{launch_id}", json.dumps(data), ex=ttl_seconds)
        return None

    def get_launch(self, launch_id: str) -> dict[str, Any] | None:
        raw = self.client.get(f"{self.PREFIX}launch:{launch_id}")
        return None if raw is None else dict(json.loads(raw))

    def set_locale(self, launch_id: str, locale: str) -> bool:
        key = f"{self.PREFIX}launch:{launch_id}"
        raw = self.client.get(key)
        if raw is None:
            return False
        data = dict(json.loads(raw))
        data["locale"] = locale
        # keepttl: the launch ends when it would have.
        return bool(self.client.set(key, json.dumps(data), keepttl=True, xx=True))

    def end_launch(self, launch_id: str) -> bool:
        return bool(self.client.delete(f"{self.PREFIX}launch:{launch_id}"))  # the nonce key stays: no replay

    def purge_expired(self) -> int:
        return 0
