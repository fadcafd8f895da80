"""The per-process services of one app: settings, database, keys, caches. Built once in create_app."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import current_app, g
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from course_sync.platform_keys import JWKSCache
from kurspakke.crypto import Encryptor, mac
from kurspakke.programmes import Programme
from kurspakke.services.access import CourseLinkCache
from kurspakke.services.keys import KeyRing
from kurspakke.services.lti_state import DatabaseStateStore, LtiStateStore, RedisStateStore
from kurspakke.services.platforms import RegistrationCache, platform_origins
from lti_tool.logs import log_event


@dataclass
class ToolServices:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    readonly_session_factory: sessionmaker[Session]
    encryptor: Encryptor
    keyring: KeyRing
    jwks: JWKSCache
    programmes: dict[str, Programme]
    registrations: RegistrationCache
    course_links: CourseLinkCache
    http: requests.Session
    redis: Any | None = None
    _origins: tuple[float, list[str], list[str]] = field(default=(float("-inf"), [], []))
    origins_ttl: float = 30.0
    origins_retry: float = 5.0

    @property
    def launch_url(self) -> str:
        return self.settings.base_url + "/lti/launch"

    def platform_origins(self) -> tuple[list[str], list[str]]:
        """(frame origins, form origins) of all registered platforms, cached briefly per process. With the
        database unreachable, the last origins known (none: only 'self') for a few seconds more, so that error
        pages and /healthz still answer, with headers at least as strict as before."""
        loaded_at, frames, forms = self._origins
        if time.monotonic() - loaded_at < self.origins_ttl:
            return frames, forms
        try:
            with self.readonly_session_factory() as session:
                frames, forms = platform_origins(session)
        except SQLAlchemyError as exc:
            log_event("platform origins unavailable", logging.WARNING, error=type(exc).__name__)
            self._origins = (time.monotonic() - self.origins_ttl + self.origins_retry, frames, forms)
            return frames, forms
        self._origins = (time.monotonic(), frames, forms)
        return frames, forms

    def invalidate_origins(self) -> None:
        self._origins = (float("-inf"), [], [])


def services() -> ToolServices:
    return current_app.extensions["kurspakke"]


def db() -> Session:
    """The request's session. The request boundary commits on success and rolls back otherwise."""
    if "db" not in g:
        g.db = services().session_factory()
    return g.db


def commit() -> None:
    """Commit the request's work now (before rendering a page), instead of at the boundary."""
    if "db" in g:
        g.db.commit()


def state_store() -> LtiStateStore:
    svc = services()
    if svc.redis is not None:
        return RedisStateStore(svc.redis)
    return DatabaseStateStore(db())


_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@functools.lru_cache(maxsize=4)
def _launch_token_key(secret_key: str) -> bytes:
    """Derived once per process (and per secret key, which tests replace)."""
    return hmac.new(secret_key.encode(), b"kurspakke-launch-token", hashlib.sha256).digest()


def _launch_signature(launch_id: str) -> str:
    return mac(_launch_token_key(services().settings.secret_key), launch_id.encode())


def make_launch_token(launch_id: str) -> str:
    """``<launch id>.<HMAC-SHA256>``: the id is random (192 bits) and the signature rejects forged tokens before any
    lookup. Its lifetime is the launch record's (``launch_token_ttl_seconds``, a working day), enforced by the store."""
    return f"{launch_id}.{_launch_signature(launch_id)}"


def read_launch_token(token: str) -> str | None:
    """The launch id in a correctly signed token, else None (the store then checks that it has not expired)."""
    if not token or len(token) > 128 or not _TOKEN_SHAPE.fullmatch(token):
        return None
    launch_id, signature = token.split(".")
    if not launch_id or not hmac.compare_digest(signature, _launch_signature(launch_id)):
        return None
    return launch_id
