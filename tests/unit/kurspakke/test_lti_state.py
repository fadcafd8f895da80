"""The launch stores keep one contract on the database and on Redis: a nonce records one launch, atomically."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import bindparam, select, update

from kurspakke.models import LaunchRecord, Person, utcnow
from kurspakke.services.lti_state import DatabaseStateStore, NonceReused, RedisStateStore


@pytest.fixture(params=["database", "redis"])
def unit_of_work(request, session_factory):
    """A function returning (store, commit, rollback) for one unit of work."""
    if request.param == "redis":
        client = request.getfixturevalue("redis_client")

        def make_redis():
            return RedisStateStore(client), lambda: None, lambda: None

        return make_redis

    def make():
        s = session_factory()
        return DatabaseStateStore(s), lambda: (s.commit(), s.close()), lambda: (s.rollback(), s.close())

    return make


def test_a_nonce_records_one_launch(unit_of_work):
    nonce = uuid.uuid4().hex
    store, commit, _ = unit_of_work()
    store.record_launch("launch-1", nonce, {"roles": ["x"], "sub": "s"}, 60)
    commit()
    store, commit, _ = unit_of_work()
    assert store.get_launch("launch-1") == {"roles": ["x"], "sub": "s"}
    assert store.get_launch("nope") is None
    with pytest.raises(NonceReused):
        store.record_launch("launch-2", nonce, {}, 60)
    commit()
    store, commit, _ = unit_of_work()
    assert store.get_launch("launch-2") is None
    commit()


def test_a_launch_is_recorded_before_the_request_commits_on_postgresql_and_with_it_on_sqlite(session_factory):
    """On PostgreSQL the launch is one statement in its own transaction (callers refuse before recording); on
    SQLite it is part of the request's transaction, so a rollback leaves the nonce unused."""
    nonce = uuid.uuid4().hex
    with session_factory() as s:
        DatabaseStateStore(s).record_launch("a", nonce, {}, 60)
        postgresql = s.get_bind().dialect.name == "postgresql"
        if postgresql:  # (on SQLite another writer would wait for this transaction's lock)
            with session_factory() as other:
                assert DatabaseStateStore(other).get_launch("a") == {}
        s.rollback()
    with session_factory() as s:
        if postgresql:
            with pytest.raises(NonceReused):
                DatabaseStateStore(s).record_launch("b", nonce, {}, 60)
            assert DatabaseStateStore(s).get_launch("a") == {}
        else:
            DatabaseStateStore(s).record_launch("b", nonce, {}, 60)
            s.commit()
            assert DatabaseStateStore(s).get_launch("b") == {}
            assert DatabaseStateStore(s).get_launch("a") is None


PEOPLE_BY_EMAIL = select(Person.id, Person.name).where(Person.email == bindparam("email")).order_by(Person.name)


def runs_the_read(store: object) -> bool:
    """Only the database store on PostgreSQL records a launch and runs its read in one statement; elsewhere the
    store returns None and the caller runs the read."""
    return isinstance(store, DatabaseStateStore) and store.session.get_bind().dialect.name == "postgresql"


def test_recording_a_launch_returns_the_rows_of_its_read_where_it_runs_it(unit_of_work, session_factory):
    email = f"{uuid.uuid4().hex}@example.org"
    with session_factory() as s:
        s.add_all([Person(name="Kari", email=email), Person(name="Ola", email=email)])
        s.commit()
    store, commit, _ = unit_of_work()
    rows = store.record_launch("with-read", uuid.uuid4().hex, {"x": 1}, 60, (PEOPLE_BY_EMAIL, {"email": email}))
    commit()
    if runs_the_read(store):
        assert rows is not None
        assert sorted(row.name for row in rows) == ["Kari", "Ola"]
        assert all(isinstance(row.id, int) for row in rows)
    else:
        assert rows is None
    store, commit, _ = unit_of_work()
    rows = store.record_launch("no-match", uuid.uuid4().hex, {}, 60, (PEOPLE_BY_EMAIL, {"email": "none@example.org"}))
    commit()
    assert rows == ([] if runs_the_read(store) else None)
    store, commit, _ = unit_of_work()
    assert store.get_launch("with-read") == {"x": 1}
    assert store.get_launch("no-match") == {}
    commit()


def test_a_replay_with_a_read_records_nothing(unit_of_work, session_factory):
    email = f"{uuid.uuid4().hex}@example.org"
    with session_factory() as s:
        s.add(Person(name="Kari", email=email))  # the read finds rows: a replay must still be told apart
        s.commit()
    nonce = uuid.uuid4().hex
    store, commit, _ = unit_of_work()
    rows = store.record_launch("first", nonce, {}, 60, (PEOPLE_BY_EMAIL, {"email": email}))
    assert (len(rows) if rows is not None else None) == (1 if runs_the_read(store) else None)
    commit()
    store, _, rollback = unit_of_work()
    with pytest.raises(NonceReused):
        store.record_launch("replay", nonce, {}, 60, (PEOPLE_BY_EMAIL, {"email": email}))
    rollback()
    store, commit, _ = unit_of_work()
    assert store.get_launch("replay") is None
    commit()


def test_a_read_may_not_shadow_a_launch_column(session_factory):
    with session_factory() as s:
        nonce = uuid.uuid4().hex
        with pytest.raises(ValueError, match="launch column"):
            DatabaseStateStore(s).record_launch("x", nonce, {}, 60, (PEOPLE_BY_EMAIL, {"email": "e", "nonce": "n"}))
        assert DatabaseStateStore(s).get_launch("x") is None


def test_expired_launches_are_gone_and_purged(session_factory):
    with session_factory() as s:
        store = DatabaseStateStore(s)
        store.record_launch("old", "n-old", {}, 60)
        store.record_launch("new", "n-new", {}, 60)
        s.execute(update(LaunchRecord).where(LaunchRecord.id == "old").values(expires_at=utcnow() - timedelta(1)))
        s.commit()
        assert store.get_launch("old") is None
        assert store.purge_expired() == 1
        assert store.purge_expired() == 0
        assert store.get_launch("new") == {}
        s.commit()


def test_redis_launches_expire(redis_client):
    store = RedisStateStore(redis_client)
    store.record_launch("l", "n", {"a": 1}, 60)
    assert 0 < redis_client.ttl(store.PREFIX + "launch:l") <= 60
    assert 0 < redis_client.ttl(store.PREFIX + "nonce:n") <= 60


def test_concurrent_launches_with_one_nonce_record_exactly_one(unit_of_work):
    nonce = uuid.uuid4().hex
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def record(i: int) -> None:
        store, commit, rollback = unit_of_work()
        barrier.wait()
        try:
            store.record_launch(f"launch-{i}", nonce, {}, 60)
            commit()
            wins.append(True)
        except NonceReused:
            rollback()
            wins.append(False)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1 and len(wins) == 8


def test_an_ended_launch_is_gone_and_its_nonce_stays_used(unit_of_work):
    nonce = uuid.uuid4().hex
    store, commit, _ = unit_of_work()
    store.record_launch("to-end", nonce, {"a": 1}, 60)
    commit()
    store, commit, _ = unit_of_work()
    assert store.end_launch("to-end") is True
    assert store.end_launch("to-end") is False  # of two callers, one ends it
    commit()
    store, _, rollback = unit_of_work()
    assert store.get_launch("to-end") is None
    with pytest.raises(NonceReused):
        store.record_launch("again", nonce, {}, 60)
    rollback()


def test_a_chosen_language_stays_with_the_launch_and_an_ended_one_takes_none(unit_of_work):
    nonce = uuid.uuid4().hex
    store, commit, _ = unit_of_work()
    store.record_launch("chooser", nonce, {"locale": "nb", "sub": "s"}, 60)
    commit()
    store, commit, _ = unit_of_work()
    assert store.set_locale("chooser", "nn") is True
    commit()
    store, commit, _ = unit_of_work()
    assert store.get_launch("chooser") == {"locale": "nn", "sub": "s"}
    assert store.end_launch("chooser") is True
    commit()
    store, commit, _ = unit_of_work()
    assert store.set_locale("chooser", "en") is False
    assert store.set_locale("never-was", "en") is False
    commit()
