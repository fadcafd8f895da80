"""The launch stores keep one contract on the database and on Redis: a nonce records one launch, atomically."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from kurspakke.models import LaunchRecord, utcnow
from kurspakke.services.lti_state import DatabaseStateStore, NonceReused, RedisStateStore


@pytest.fixture(params=["database", "redis"])
def unit_of_work(request, session_factory):
    """A function returning (store, commit, rollback) for one unit of work."""
    if request.param == "redis":
        store = RedisStateStore(request.getfixturevalue("redis_client"))
        return lambda: (store, lambda: None, lambda: None)

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


def test_a_rolled_back_launch_leaves_the_nonce_unused(session_factory):
    nonce = uuid.uuid4().hex
    with session_factory() as s:
        DatabaseStateStore(s).record_launch("a", nonce, {}, 60)
        s.rollback()  # the request was refused after recording
    with session_factory() as s:
        DatabaseStateStore(s).record_launch("b", nonce, {}, 60)
        s.commit()
        assert DatabaseStateStore(s).get_launch("b") == {}


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
