"""Short-lived LTI state shared by every web process: logins in flight (state + nonce) and launch records.

Two stores with one contract: the database (default) and Redis (when REDIS_URL is set). Consuming a login is
atomic in both — a DELETE ... RETURNING, or GETDEL in Redis — so a replayed id_token, even raced from several
processes at once, finds its state and nonce gone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import CursorResult, delete, insert, select
from sqlalchemy.orm import Session

from kurspakke.models import LaunchRecord, LoginState, utcnow


@dataclass(frozen=True)
class PendingLogin:
    state: str
    nonce: str
    registration_id: int
    target_link_uri: str
    storage_target: str | None
    expires_at: datetime


class LtiStateStore(Protocol):
    def save_login(self, login: PendingLogin) -> None: ...

    def get_login(self, state: str) -> PendingLogin | None: ...

    def take_login(self, state: str) -> PendingLogin | None: ...

    def save_launch(self, launch_id: str, data: dict[str, Any], ttl_seconds: int) -> None: ...

    def get_launch(self, launch_id: str) -> dict[str, Any] | None: ...

    def purge_expired(self) -> int: ...


class DatabaseStateStore:
    """State in the request's own session: written in the same transaction as everything else of the request."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def save_login(self, login: PendingLogin) -> None:
        self.session.add(LoginState(**asdict(login)))
        self.session.flush()

    def get_login(self, state: str) -> PendingLogin | None:
        row = self.session.get(LoginState, state)
        if row is None or row.expires_at <= utcnow():
            return None
        return _pending(row)

    def take_login(self, state: str) -> PendingLogin | None:
        """Remove and return the login; a refused launch rolls back with the request and the login stays."""
        stmt = (
            delete(LoginState)
            .where(LoginState.state == state, LoginState.expires_at > utcnow())
            .returning(
                LoginState.state,
                LoginState.nonce,
                LoginState.registration_id,
                LoginState.target_link_uri,
                LoginState.storage_target,
                LoginState.expires_at,
            )
        )
        row = self.session.execute(stmt).one_or_none()
        if row is None:
            return None
        return PendingLogin(*row)

    def save_launch(self, launch_id: str, data: dict[str, Any], ttl_seconds: int) -> None:
        # A Core insert: the ORM's unit of work costs more than the statement for this write-once row.
        self.session.execute(
            insert(LaunchRecord).values(
                id=launch_id, data=data, expires_at=utcnow() + timedelta(seconds=ttl_seconds), created_at=utcnow()
            )
        )

    def get_launch(self, launch_id: str) -> dict[str, Any] | None:
        row = self.session.scalars(
            select(LaunchRecord).where(LaunchRecord.id == launch_id, LaunchRecord.expires_at > utcnow())
        ).one_or_none()
        return None if row is None else dict(row.data)

    def purge_expired(self) -> int:
        now = utcnow()
        purged = 0
        for model in (LoginState, LaunchRecord):
            result: CursorResult[Any] = self.session.execute(  # type: ignore[assignment]
                delete(model).where(model.expires_at <= now)
            )
            purged += result.rowcount or 0
        return purged


def _pending(row: LoginState) -> PendingLogin:
    return PendingLogin(
        row.state, row.nonce, row.registration_id, row.target_link_uri, row.storage_target, row.expires_at
    )


class RedisStateStore:
    """State in Redis; expiry is Redis's own TTL, so purging is a no-op."""

    PREFIX = "kurspakke:lti:"

    def __init__(self, client: Any) -> None:
        self.client = client

    def _login_key(self, state: str) -> str:
        return f"{self.PREFIX}login:{state}"

    def save_login(self, login: PendingLogin) -> None:
        ttl = max(1, int((login.expires_at - utcnow()).total_seconds()))
        payload = {**asdict(login), "expires_at": login.expires_at.isoformat()}
        self.client.set(self._login_key(login.state), json.dumps(payload), ex=ttl)

    @staticmethod
    def _decode(raw: bytes | str | None) -> PendingLogin | None:
        if raw is None:
            return None
        data = json.loads(raw)
        data["expires_at"] = datetime.fromisoformat(data["expires_at"])
        return PendingLogin(**data)

    def get_login(self, state: str) -> PendingLogin | None:
        return self._decode(self.client.get(self._login_key(state)))

    def take_login(self, state: str) -> PendingLogin | None:
        """GETDEL: atomic, so of several racing launches one gets the login. Redis has no rollback: a refused
        launch has used its login up (the user starts again from the course)."""
        return self._decode(self.client.getdel(self._login_key(state)))

    def save_launch(self, launch_id: str, data: dict[str, Any], ttl_seconds: int) -> None:
        self.client.set(f"{self.PREFIX}launch:{launch_id}", json.dumps(data), ex=ttl_seconds)

    def get_launch(self, launch_id: str) -> dict[str, Any] | None:
        raw = self.client.get(f"{self.PREFIX}launch:{launch_id}")
        return None if raw is None else dict(json.loads(raw))

    def purge_expired(self) -> int:
        return 0
