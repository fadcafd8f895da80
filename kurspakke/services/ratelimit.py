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

    def peek(self, name: str, window_seconds: int) -> Window:
        """The window's count without counting."""
        key, left = self._key(name, window_seconds)
        if self._redis is not None:
            return Window(int(self._redis.get(key) or 0), left)
        with self._sessions() as session:
            row = session.get(ExpiringValue, key)
            return Window(int(row.value) if row is not None and row.expires_at > utcnow() else 0, left)

    def hit(self, name: str, window_seconds: int) -> Window:
        """Count one and return the window's count."""
        key, left = self._key(name, window_seconds)
        if self._redis is not None:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, left + 1)
            count, _ = pipe.execute()
            return Window(int(count), left)
        for _ in range(2):  # two first hits at once: one inserts, the other counts on the row
            try:
                with transaction(self._sessions) as session:
                    row = session.get(ExpiringValue, key, with_for_update=True)
                    if row is None:
                        session.add(ExpiringValue(key=key, value="1", expires_at=utcnow() + timedelta(seconds=left)))
                        return Window(1, left)
                    row.value = str(int(row.value) + 1)
                    return Window(int(row.value), left)
            except IntegrityError:
                continue
        return Window(self.peek(name, window_seconds).count, left)


__all__ = ["RateLimiter", "Window"]
