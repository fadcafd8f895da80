"""Engine and session factory. One session and transaction per request or job: services flush, the boundary
commits.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every write transaction starts with
BEGIN IMMEDIATE so that concurrent writers queue on the lock instead of failing when a read upgrades to a write.
Read-only sessions start with a deferred BEGIN: in WAL mode they never wait for, or block, a writer.

How writers queue (SQLite): SQLite's own busy handler sleeps with a growing backoff (1, 2, 5, 10, 15, 20, 25 … ms),
so a writer that finds the lock taken often sleeps long after it was freed; with several threads and processes
all queuing that way the slowest launches waited tens of milliseconds for a lock held for one. So:

* inside a process, write transactions queue on a lock of the engine's (a ``threading.Lock``, the "write gate"),
  taken before BEGIN IMMEDIATE and released as soon as the COMMIT or ROLLBACK has run (also when BEGIN fails,
  and when the connection is invalidated or goes back to the pool). A thread waiting there is woken the moment
  the lock is free, and holds no GIL while it waits;
* across processes, BEGIN IMMEDIATE runs with a busy timeout of a few milliseconds (SQLite polls at 1 ms without
  the GIL) and is repeated until the configured busy timeout has passed, so a writer of another process is
  picked up within about a millisecond of the lock coming free. Only then does it fail ("database is locked"),
  as before. The connection's busy timeout is set back to the configured one before a read-only transaction.

SQLite's lock stays the real one: the gate only orders this process's writers in front of it, so a transaction
that somehow runs without the gate (a gate not released, which the release points above rule out) is still
correct, only slower: a writer that cannot get the gate within the busy timeout tries SQLite's lock once itself.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_PATH = Path(__file__).resolve().parent / "migrations"
READONLY_OPTION = "kurspakke_readonly"

# SQLite: busy timeout (ms) of one BEGIN IMMEDIATE attempt. SQLite's busy handler sleeps 1 ms, then once more up
# to this total, before it gives up and we try again, so a waiting writer looks at the lock about every 1 ms.
BEGIN_POLL_MS = 2
SQLITE_BUSY = 5
# Keys in a pooled connection's info (kept for the life of the DBAPI connection).
_HOLDS_GATE = "kurspakke_holds_write_gate"
_IN_BEGIN = "kurspakke_in_begin"
_BUSY_MS = "kurspakke_busy_timeout_ms"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs (the form hosting platforms hand out)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, *, busy_timeout_ms: int = 5000, echo: bool = False, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False}, **kwargs
        )
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, echo=echo, **kwargs)


class WriteGate:
    """This process's writers to one SQLite engine queue here, in front of SQLite's write lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, timeout: float) -> bool:
        return self._lock.acquire(timeout=max(0.0, timeout))

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def _after_fork(self) -> None:
        # A thread of the parent may have held it at fork; that thread does not exist in the child.
        self._lock = threading.Lock()


_GATES: weakref.WeakKeyDictionary[Any, WriteGate] = weakref.WeakKeyDictionary()  # by the engine's dialect


def _reset_gates_after_fork() -> None:
    for gate in list(_GATES.values()):
        gate._after_fork()


os.register_at_fork(after_in_child=_reset_gates_after_fork)


def write_gate(engine: Engine) -> WriteGate | None:
    """The write gate of a SQLite engine made by make_engine (None for other engines)."""
    return _GATES.get(engine.dialect)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    timeout = busy_timeout_ms / 1000
    gate = WriteGate()
    _GATES[engine.dialect] = gate  # shared by engine.execution_options() copies, kept by dispose()

    def set_busy(fairy: Any, ms: int) -> None:
        if fairy.info.get(_BUSY_MS) != ms:
            fairy.driver_connection.execute(f"PRAGMA busy_timeout={int(ms)}")
            fairy.info[_BUSY_MS] = ms

    def release(info: dict[Any, Any]) -> None:
        # Not while BEGIN is being tried: SQLAlchemy "rolls back" after each failed attempt; the attempt loop
        # decides what happens to the gate.
        if not info.get(_IN_BEGIN) and info.pop(_HOLDS_GATE, False):
            gate.release()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # Take transaction control from the driver so we can issue BEGIN IMMEDIATE ourselves.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
        record.info[_BUSY_MS] = int(busy_timeout_ms)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        fairy = conn.connection
        if conn.get_execution_options().get(READONLY_OPTION, False):
            # Read-only sessions (key ring, caches) take no write lock and no gate, so they never wait for, or
            # block, a request that is writing; in WAL mode readers and the writer proceed side by side.
            set_busy(fairy, busy_timeout_ms)
            conn.exec_driver_sql("BEGIN")
            return
        info = fairy.info
        deadline = time.monotonic() + timeout
        set_busy(fairy, min(BEGIN_POLL_MS, busy_timeout_ms))
        info[_IN_BEGIN] = True
        try:
            if gate.acquire(timeout):
                info[_HOLDS_GATE] = True
            while True:
                try:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    return
                except OperationalError as exc:
                    if not _is_busy(exc) or time.monotonic() >= deadline:
                        raise
        except BaseException:
            info.pop(_IN_BEGIN, None)
            release(info)
            raise
        finally:
            info.pop(_IN_BEGIN, None)

    # Released right after the COMMIT or ROLLBACK itself has run (the "commit" and "rollback" events come before
    # it). The pool's reset-on-return rolls back through the same dialect.
    dialect = engine.dialect
    do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

    def _commit(fairy: Any) -> None:
        try:
            do_commit(fairy)
        finally:
            release(_info(fairy))

    def _rollback(fairy: Any) -> None:
        try:
            do_rollback(fairy)
        finally:
            release(_info(fairy))

    dialect.do_commit = _commit  # type: ignore[method-assign,assignment]
    dialect.do_rollback = _rollback  # type: ignore[method-assign,assignment]

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        # Back in the pool: an invalidated connection (closed, so SQLite's lock is free) comes this way without a
        # rollback; so would anything else that ended a transaction without COMMIT or ROLLBACK.
        if record is not None:
            release(record.info)


def _info(fairy: Any) -> dict[Any, Any]:
    try:
        info: dict[Any, Any] = fairy.info
        return info
    except NotImplementedError:  # the engine's first-connect check passes an ad-hoc wrapper without one
        return {}


def _is_busy(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == SQLITE_BUSY)
    return "database is locked" in str(exc.orig)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_session_factory(engine: Engine, *, readonly: bool = False) -> sessionmaker[Session]:
    """Sessions for a request or job; ``readonly=True`` for sessions that only read (no write lock on SQLite)."""
    bind = engine.execution_options(**{READONLY_OPTION: True}) if readonly else engine
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work for jobs and commands: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run Alembic migrations on ``engine`` (used by ``kurspakke db upgrade`` and by the tests)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_PATH))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
