"""Fixed-window request counters shared by every process: Redis when configured (INCR with an expiry), else the
database's expiring values. Used to throttle guessing on public pages (the certificate verification page)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.db import transaction
from kurspakke.models import ExpiringValue, utcnow


@dataclass(frozen=True)
class Window:
    count: int  # hits in the current window, this one included when it was counted
    retry_after: int  # seconds until the window ends


class RateLimiter:
    def __init__(self, sessions: sessionmaker[Session], redis: Any = None, *, clock: Any = time.time) -> None:
        self._sessions = sessions
        self._redis = redis
        self._clock = clock

    def _key(self, name: str, window_seconds: int) -> tuple[str, int]:
        now = self._clock()
        bucket = int(now // window_seconds)
        return f"rl:{name}:{window_seconds}:{bucket}", int((bucket + 1) * window_seconds - now) + 1

    def peek(self, name: str, window_seconds: int, session: Session | None = None) -> Window:
        """The window's count without counting."""
        key, left = self._key(name, window_seconds)
        if self._redis is not None:
            return Window(int(self._redis.get(key) or 0), left)
        if session is not None:
            row = session.get(ExpiringValue, key)
            return Window(int(row.value) if row is not None and row.expires_at > utcnow() else 0, left)
        with self._sessions() as own:
            return self.peek(name, window_seconds, own)

    def hit(self, name: str, window_seconds: int, session: Session | None = None) -> Window:
        """Count one and return the window's count. With ``session`` (the database backend only) the count is
        written in the caller's transaction, which must commit it — also when its answer is an error: on SQLite a
        second transaction beside the caller's would wait for the caller's lock."""
        key, left = self._key(name, window_seconds)
        if self._redis is not None:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, left + 1)
            count, _ = pipe.execute()
            return Window(int(count), left)
        if session is not None:
            return Window(self._count(session, key, left), left)
        for _ in range(2):  # two first hits at once: one inserts, the other counts on the row
            try:
                with transaction(self._sessions) as own:
                    return Window(self._count(own, key, left), left)
            except IntegrityError:
                continue
        return Window(self.peek(name, window_seconds).count, left)

    @staticmethod
    def _count(session: Session, key: str, left: int) -> int:
        row = session.get(ExpiringValue, key, with_for_update=True)
        if row is None or row.expires_at <= utcnow():
            if row is not None:
                session.delete(row)
                session.flush()
            try:
                with session.begin_nested():
                    session.add(ExpiringValue(key=key, value="1", expires_at=utcnow() + timedelta(seconds=left)))
                return 1
            except IntegrityError:  # another request's first hit came in between: count on its row
                row = session.get(ExpiringValue, key, with_for_update=True, populate_existing=True)
                if row is None:
                    return 1
        row.value = str(int(row.value) + 1)
        session.flush()
        return int(row.value)


__all__ = ["RateLimiter", "Window"]
