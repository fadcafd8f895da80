"""The embedded database is set up for several processes at once: WAL, a busy timeout, foreign keys; and its
writers queue: on a lock of the engine's inside a process, on SQLite's lock, polled every millisecond or so,
across processes (here: two engines on one file), both within the busy timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from kurspakke.db import make_engine, make_session_factory, transaction, write_gate


def _engine(path: Path, busy_timeout_ms: int = 5000, **kwargs: Any) -> Engine:
    return make_engine(f"sqlite:///{path}", busy_timeout_ms=busy_timeout_ms, **kwargs)


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    path = tmp_path / "k.sqlite3"
    engine = _engine(path)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE item (id TEXT PRIMARY KEY, writer TEXT)"))
    engine.dispose()
    return path


@pytest.fixture
def engines() -> Iterator[Callable[..., Engine]]:
    made: list[Engine] = []

    def make(path: Path, busy_timeout_ms: int = 5000, **kwargs: Any) -> Engine:
        made.append(_engine(path, busy_timeout_ms, **kwargs))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


def _in_threads(target: Callable[[int], None], n: int, timeout: float = 60) -> list[BaseException]:
    """Run target(0..n-1) in n threads; return what they raised (a thread never ends the test quietly)."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a writer hung"
    return errors


def _count(engine: Engine) -> int:
    with make_session_factory(engine, readonly=True)() as s:
        return int(s.execute(text("SELECT count(*) FROM item")).scalar_one())


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'k.sqlite3'}", busy_timeout_ms=1234)
    try:
        with make_session_factory(engine, readonly=True)() as s:
            assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert s.execute(text("PRAGMA busy_timeout")).scalar() == 1234
            assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


def test_a_read_only_transaction_waits_the_whole_busy_timeout_even_on_a_connection_that_wrote(db_file, engines):
    """BEGIN IMMEDIATE polls with a short busy timeout of its own; a read-only transaction on the same pooled
    connection gets the configured one back (a reader can meet a busy database too, e.g. while another process
    checkpoints on close)."""
    engine = engines(db_file, busy_timeout_ms=1234, pool_size=1, max_overflow=0)
    with transaction(make_session_factory(engine)) as s:
        s.execute(text("INSERT INTO item VALUES ('a', 'x')"))
    with make_session_factory(engine, readonly=True)() as s:
        assert s.execute(text("PRAGMA busy_timeout")).scalar() == 1234


def test_many_threads_writing_through_one_engine_all_succeed_one_at_a_time(db_file, engines):
    engine = engines(db_file)
    factory = make_session_factory(engine)
    inside, most = [0], [0]
    guard = threading.Lock()

    def write(i: int) -> None:
        for j in range(25):
            with transaction(factory) as s:
                s.execute(text("INSERT INTO item VALUES (:id, 'x')"), {"id": f"{i}-{j}"})
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.0005)  # hold the lock across a GIL switch, as a request does
                with guard:
                    inside[0] -= 1

    started = time.monotonic()
    assert _in_threads(write, 8) == []
    assert _count(engine) == 8 * 25
    assert most[0] == 1
    assert time.monotonic() - started < 4  # no writer waited out a timeout (a gate never released: 5 s each)


def test_writers_of_two_engines_on_one_file_like_two_processes_all_succeed(db_file, engines):
    """Each engine has its own gate, so their writers meet on SQLite's lock itself and must queue there: with
    the short per-attempt busy timeout, only a BEGIN IMMEDIATE that is tried again until the busy timeout has
    passed lets them all through."""
    pair = [engines(db_file), engines(db_file)]

    def write(i: int) -> None:
        factory = make_session_factory(pair[i % 2])
        for j in range(25):
            with transaction(factory) as s:
                s.execute(text("INSERT INTO item VALUES (:id, 'x')"), {"id": f"{i}-{j}"})
                time.sleep(0.002)  # long enough that the other engine's writer finds the lock taken

    assert _in_threads(write, 6) == []
    assert _count(pair[0]) == 6 * 25


def test_a_writer_of_another_engine_starts_within_milliseconds_of_the_commit(db_file, engines):
    """SQLite's own busy handler sleeps 1, 2, 5, … 100 ms between looks: a writer that started waiting 240 ms
    before the lock came free would look again only at 328 ms, ~90 ms late. Ours looks about every millisecond.
    (Best of three, so that one scheduling hiccup of a loaded machine does not decide.)"""
    holder, waiter = engines(db_file), engines(db_file)

    def late_by(trial: int) -> float:
        holding, commit_at, began_at = threading.Event(), [0.0], [0.0]

        def hold() -> None:
            with transaction(make_session_factory(holder)) as s:
                s.execute(text("INSERT INTO item VALUES (:id, 'holder')"), {"id": f"held-{trial}"})
                holding.set()
                time.sleep(0.24)
                commit_at[0] = time.monotonic()
                s.commit()

        def wait() -> None:
            holding.wait(5)
            with transaction(make_session_factory(waiter)) as s:
                s.execute(text("INSERT INTO item VALUES (:id, 'waiter')"), {"id": f"waited-{trial}"})
                began_at[0] = time.monotonic()

        assert _in_threads(lambda i: (hold, wait)[i](), 2) == []
        return began_at[0] - commit_at[0]

    lateness = [late_by(trial) for trial in range(3)]
    assert _count(holder) == 6
    assert min(lateness) < 0.04, lateness


def test_a_writer_waiting_for_another_engines_lock_keeps_the_gate(db_file, engines):
    """While it polls SQLite's lock, the engine's first writer stays at the head of its queue: the gate is not
    given up after a failed attempt (SQLAlchemy rolls back after each one), so the engine's other writers keep
    waiting on the gate instead of polling SQLite as well."""
    holder, engine = engines(db_file), engines(db_file)
    gate = write_gate(engine)
    assert gate is not None
    holding, polled, done = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def hold() -> None:
        with transaction(make_session_factory(holder)) as s:
            s.execute(text("INSERT INTO item VALUES ('held', 'holder')"))
            holding.set()
            polled.wait(5)

    def wait() -> None:
        holding.wait(5)
        with transaction(make_session_factory(engine)) as s:
            s.execute(text("INSERT INTO item VALUES ('waited', 'waiter')"))
        done.set()

    def watch() -> None:
        holding.wait(5)
        time.sleep(0.1)  # the waiter has failed some 50 attempts by now
        seen.append(gate.locked() and not done.is_set())
        polled.set()

    assert _in_threads(lambda i: (hold, wait, watch)[i](), 3) == []
    assert seen == [True]
    assert _count(engine) == 2
    assert not gate.locked()


@pytest.mark.parametrize("same_engine", [True, False], ids=["same-engine", "other-engine"])
def test_a_writer_gives_up_after_the_busy_timeout(db_file, engines, same_engine):
    """The busy timeout stays the limit of the whole wait: on the engine's gate (same engine, another thread) and
    on SQLite's lock (another engine, like another process). Neither fails at once nor waits for ever."""
    waiter = engines(db_file, busy_timeout_ms=300)
    holder = waiter if same_engine else engines(db_file)
    holding, release = threading.Event(), threading.Event()
    outcome: list[tuple[str, float]] = []

    def hold() -> None:
        with transaction(make_session_factory(holder)) as s:
            s.execute(text("INSERT INTO item VALUES ('held', 'holder')"))
            holding.set()
            release.wait(5)

    def wait() -> None:
        holding.wait(5)
        started = time.monotonic()
        try:
            with transaction(make_session_factory(waiter)) as s:
                s.execute(text("INSERT INTO item VALUES ('waited', 'waiter')"))
            outcome.append(("committed", time.monotonic() - started))
        except OperationalError as exc:
            outcome.append((str(exc.orig), time.monotonic() - started))
        finally:
            release.set()

    assert _in_threads(lambda i: (hold, wait)[i](), 2) == []
    ((message, waited),) = outcome
    assert message == "database is locked"
    assert 0.25 < waited < 1.5


@pytest.mark.parametrize("how", ["commit", "rollback", "error then rollback", "invalidated"])
def test_the_write_gate_is_held_for_the_transaction_and_released_as_soon_as_it_ends(db_file, engines, how):
    """Released at COMMIT or ROLLBACK (or when the connection is invalidated), not only when the connection goes
    back to the pool: here the connection stays checked out."""
    engine = engines(db_file, busy_timeout_ms=3000)
    gate = write_gate(engine)
    assert gate is not None
    with engine.connect() as conn:
        assert not gate.locked()
        conn.execute(text("INSERT INTO item VALUES ('a', 'x')"))
        assert gate.locked()  # taken at BEGIN IMMEDIATE
        if how == "commit":
            conn.commit()
        elif how == "rollback":
            conn.rollback()
        elif how == "error then rollback":
            with pytest.raises(IntegrityError):
                conn.execute(text("INSERT INTO item VALUES ('a', 'x')"))
            assert gate.locked()  # a failed statement does not end the transaction
            conn.rollback()
        else:
            conn.invalidate()
        assert not gate.locked()
        # the next writer, in another thread, does not wait out the 3 s timeout
        started = time.monotonic()
        assert _in_threads(lambda _: _write(engine, "next"), 1) == []
        assert time.monotonic() - started < 1
    assert _count(engine) == (2 if how == "commit" else 1)


def _write(engine: Engine, key: str) -> None:
    with transaction(make_session_factory(engine)) as s:
        s.execute(text("INSERT INTO item VALUES (:id, 'x')"), {"id": key})


@pytest.mark.parametrize("how", ["exception", "integrity error", "closed without commit", "invalidated"])
def test_a_session_that_fails_or_is_dropped_releases_the_write_gate(db_file, engines, how):
    engine = engines(db_file, busy_timeout_ms=3000)
    gate = write_gate(engine)
    factory = make_session_factory(engine)
    if how == "exception":
        with pytest.raises(RuntimeError), transaction(factory) as s:
            s.execute(text("INSERT INTO item VALUES ('e', 'x')"))
            raise RuntimeError("the job failed")
    elif how == "integrity error":
        with pytest.raises(IntegrityError), transaction(factory) as s:
            s.execute(text("INSERT INTO item VALUES ('dup', 'x')"))
            s.execute(text("INSERT INTO item VALUES ('dup', 'x')"))
    elif how == "closed without commit":
        s = factory()
        s.execute(text("INSERT INTO item VALUES ('c', 'x')"))
        s.close()
    else:
        with factory() as s:
            s.execute(text("INSERT INTO item VALUES ('i', 'x')"))
            s.connection().invalidate()
    assert gate is not None and not gate.locked()
    started = time.monotonic()
    assert _in_threads(lambda _: _write(engine, "next"), 1) == []
    assert time.monotonic() - started < 1
    assert _count(engine) == 1


def test_a_failed_begin_releases_the_write_gate(db_file, engines):
    """A BEGIN IMMEDIATE that gives up (another engine held the lock past the busy timeout) leaves the gate free,
    at once, not only when the connection goes back to the pool."""
    holder, engine = engines(db_file), engines(db_file, busy_timeout_ms=100)
    gate = write_gate(engine)
    assert gate is not None
    with transaction(make_session_factory(holder)) as held:
        held.execute(text("INSERT INTO item VALUES ('held', 'x')"))
        with engine.connect() as conn:
            with pytest.raises(OperationalError, match="database is locked"):
                conn.execute(text("SELECT 1"))
            assert not gate.locked()
    _write(engine, "next")
    assert _count(engine) == 2


def test_read_only_sessions_take_no_gate_and_read_while_a_writer_holds_it(db_file, engines):
    engine = engines(db_file, busy_timeout_ms=3000)
    gate = write_gate(engine)
    assert gate is not None
    with transaction(make_session_factory(engine)) as s:
        s.execute(text("INSERT INTO item VALUES ('a', 'x')"))
    seen: list[tuple[int, bool]] = []

    def read(_: int) -> None:
        with make_session_factory(engine, readonly=True)() as r:
            seen.append((int(r.execute(text("SELECT count(*) FROM item")).scalar_one()), gate.locked()))

    with transaction(make_session_factory(engine)) as s:
        s.execute(text("INSERT INTO item VALUES ('b', 'x')"))
        started = time.monotonic()
        assert _in_threads(read, 1) == []
        assert time.monotonic() - started < 1  # did not queue behind the writer
    assert seen == [(1, True)]  # the committed row; the gate was the writer's
    with make_session_factory(engine, readonly=True)() as r:
        r.execute(text("SELECT count(*) FROM item")).scalar_one()
        assert not gate.locked()
