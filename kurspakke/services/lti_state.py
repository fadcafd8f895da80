"""Launch records shared by every web process, and the nonces they consume.

The login keeps no server state: its state parameter is signed (see lti_tool/lti/oidc_login.py) and carries the
nonce. A launch consumes that nonce by recording itself: the launch record's nonce is unique, inserted with
ON CONFLICT DO NOTHING (or SET NX in Redis), so a replayed id_token, even raced from several processes at once,
finds its nonce taken. Two stores with one contract: the database (default) and Redis (REDIS_URL).
"""

from __future__ import annotations

import functools
import json
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kurspakke.models import LaunchRecord, utcnow


class NonceReused(Exception):
    """This nonce was consumed by an earlier launch: a replay."""


class LtiStateStore(Protocol):
    def record_launch(self, launch_id: str, nonce: str, data: dict[str, Any], ttl_seconds: int) -> None:
        """Raises NonceReused."""

    def get_launch(self, launch_id: str) -> dict[str, Any] | None: ...

    def purge_expired(self) -> int: ...


@functools.cache
def _record_statement(dialect: str) -> Any:
    """A Core insert that consumes the nonce in the same statement: no savepoint, no ORM unit of work. Built once
    per dialect (building costs more than running it)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(LaunchRecord).on_conflict_do_nothing(index_elements=["nonce"]).returning(LaunchRecord.id)


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
        connection = self.session.connection()
        inserted = connection.execute(_record_statement(connection.dialect.name), values).first()
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
