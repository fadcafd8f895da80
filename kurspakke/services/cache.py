"""A small shared cache with expiry (database or Redis), for values every process must see, such as LTI service
access tokens. Values are encrypted: they are bearer credentials."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.crypto import DecryptionError, Encryptor
from kurspakke.models import ExpiringValue, utcnow


class SharedCache(Protocol):
    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl_seconds: int) -> None: ...


class DatabaseCache:
    def __init__(self, session_factory: sessionmaker[Session], encryptor: Encryptor) -> None:
        self._factory = session_factory
        self._enc = encryptor

    def get(self, key: str) -> str | None:
        with self._factory() as session:
            value = session.scalars(
                select(ExpiringValue.value).where(ExpiringValue.key == key, ExpiringValue.expires_at > utcnow())
            ).one_or_none()
            session.rollback()
        if value is None:
            return None
        try:
            return self._enc.decrypt(value.encode()).decode()
        except DecryptionError:
            return None

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        try:
            with self._factory() as session, session.begin():
                session.execute(delete(ExpiringValue).where(ExpiringValue.key == key))
                session.add(
                    ExpiringValue(
                        key=key,
                        value=self._enc.encrypt(value.encode()).decode(),
                        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
                    )
                )
        except IntegrityError:
            pass  # another process cached a value for the same key at the same moment; either will do


class RedisCache:
    PREFIX = "kurspakke:cache:"

    def __init__(self, client: Any, encryptor: Encryptor) -> None:
        self._client = client
        self._enc = encryptor

    def get(self, key: str) -> str | None:
        raw = self._client.get(self.PREFIX + key)
        if raw is None:
            return None
        try:
            return self._enc.decrypt(raw if isinstance(raw, bytes) else raw.encode()).decode()
        except DecryptionError:
            return None

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self._client.set(self.PREFIX + key, self._enc.encrypt(value.encode()), ex=max(1, ttl_seconds))
