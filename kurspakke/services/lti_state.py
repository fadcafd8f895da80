"""Launch records shared by every web process, and the nonces they consume.

The login keeps no server state: its state parameter is signed (see lti_tool/lti/oidc_login.py) and carries the
nonce. A launch consumes that nonce by recording itself: the launch record's nonce is unique, inserted with
ON CONFLICT DO NOTHING (or SET NX in Redis), so a replayed id_token, even raced from several processes at once,
finds its nonce taken. Two stores with one contract: the database (default) and Redis (REDIS_URL).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import JSON, CursorResult, bindparam, delete, select, text
from sqlalchemy.orm import Session

from kurspakke.models import LaunchRecord, utcnow
from kurspakke.models.base import UTCDateTime


class NonceReused(Exception):
    """This nonce was consumed by an earlier launch: a replay."""


class LtiStateStore(Protocol):
    def record_launch(self, launch_id: str, nonce: str, data: dict[str, Any], ttl_seconds: int) -> None:
        """Raises NonceReused."""

    def get_launch(self, launch_id: str) -> dict[str, Any] | None: ...

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


class DatabaseStateStore:
    """Launches in the request's own session: written in the same transaction as everything else of the request,
    so a refused launch consumes nothing."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record_launch(self, launch_id: str, nonce: str, data: dict[str, Any], ttl_seconds: int) -> None:
        now = utcnow()
        values = {
            "id": launch_id,
            "nonce": nonce,
            "data": data,
            "expires_at": now + timedelta(seconds=ttl_seconds),
            "created_at": now,
        }
        inserted = self.session.connection().execute(_RECORD_LAUNCH, values).first()
        if inserted is None:
            raise NonceReused(nonce)

    def get_launch(self, launch_id: str) -> dict[str, Any] | None:
        data = self.session.scalars(
            select(LaunchRecord.data).where(LaunchRecord.id == launch_id, LaunchRecord.expires_at > utcnow())
        ).one_or_none()
        return None if data is None else dict(data)

    def purge_expired(self) -> int:
        result: CursorResult[Any] = self.session.execute(  # type: ignore[assignment]
            delete(LaunchRecord).where(LaunchRecord.expires_at <= utcnow())
        )
        return result.rowcount or 0


class RedisStateStore:
    """Launches in Redis; expiry is Redis's own TTL, so purging is a no-op."""

    PREFIX = "kurspakke:lti:"

    def __init__(self, client: Any) -> None:
        self.client = client

    def record_launch(self, launch_id: str, nonce: str, data: dict[str, Any], ttl_seconds: int) -> None:
        # SET NX is atomic: of several racing launches with one nonce, one wins.
        if not self.client.set(f"{self.PREFIX}nonce:{nonce}", launch_id, nx=True, ex=ttl_seconds):
            raise NonceReused(nonce)
        self.client.set(f"{self.PREFIX}launch:{launch_id}", json.dumps(data), ex=ttl_seconds)

    def get_launch(self, launch_id: str) -> dict[str, Any] | None:
        raw = self.client.get(f"{self.PREFIX}launch:{launch_id}")
        return None if raw is None else dict(json.loads(raw))

    def purge_expired(self) -> int:
        return 0
