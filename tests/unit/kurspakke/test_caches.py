"""The per-process caches of registrations and course links: hits skip the database, misses are not cached."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from kurspakke.db import make_session_factory, transaction
from kurspakke.models import CourseLink
from kurspakke.services.access import CourseLinkCache
from kurspakke.services.platforms import RegistrationCache, UnknownPlatform, add_platform


@pytest.fixture
def statements(engine):
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def register(session_factory, client_id="c1", deployments=("d1",)):
    with transaction(session_factory) as s:
        add_platform(
            s,
            issuer="https://canvas.example",
            client_id=client_id,
            deployment_ids=list(deployments),
            auth_login_url="https://canvas.example/auth",
            auth_token_url="https://canvas.example/token",
            key_set_url="https://canvas.example/jwks",
        )


def selects(statements):
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def test_registration_cache_hits_skip_the_database(engine, session_factory, statements):
    register(session_factory)
    cache = RegistrationCache(make_session_factory(engine, readonly=True), ttl_seconds=60)
    info = cache.get("https://canvas.example", "c1")
    assert info.deployment_ids == {"d1"} and info.issuer_client_ids == {"c1"}
    before = len(selects(statements))
    assert cache.get("https://canvas.example", "c1") is info
    assert cache.by_id(info.id) is info
    assert len(selects(statements)) == before


def test_registration_cache_does_not_remember_unknown_platforms(engine, session_factory):
    cache = RegistrationCache(make_session_factory(engine, readonly=True), ttl_seconds=60)
    with pytest.raises(UnknownPlatform):
        cache.get("https://canvas.example", "c1")
    register(session_factory)
    assert cache.get("https://canvas.example", "c1").client_id == "c1"


def test_registration_cache_sees_changes_after_its_ttl(engine, session_factory):
    register(session_factory)
    cache = RegistrationCache(make_session_factory(engine, readonly=True), ttl_seconds=0)
    cache.get("https://canvas.example", "c1")
    register(session_factory, deployments=("d1", "d2"))
    assert cache.get("https://canvas.example", "c1").deployment_ids == {"d1", "d2"}


def test_course_link_cache(session_factory, statements):
    cache = CourseLinkCache(ttl_seconds=60)
    with session_factory() as s:
        assert cache.get(s, "guid", "ctx") is None  # misses are not remembered
        s.add(CourseLink(programme_id="lindrende-behandling", platform_instance="guid", context_id="ctx", title="T"))
        s.commit()
        first = cache.get(s, "guid", "ctx")
        assert first is not None and first.programme_id == "lindrende-behandling"
        before = len(selects(statements))
        assert cache.get(s, "guid", "ctx") is first
        assert len(selects(statements)) == before
        assert cache.get(s, "guid", None) is None


@pytest.fixture(params=["database", "redis"])
def shared_cache(request, engine, encryptor):
    from kurspakke.services.cache import DatabaseCache, RedisCache

    if request.param == "redis":
        return RedisCache(request.getfixturevalue("redis_client"), encryptor)
    return DatabaseCache(make_session_factory(engine), encryptor)


def test_shared_cache_round_trip_encrypted_and_expiring(shared_cache, engine):
    import time

    shared_cache.set("token-key", "secret-access-token", 60)
    assert shared_cache.get("token-key") == "secret-access-token"
    assert shared_cache.get("other-key") is None
    shared_cache.set("token-key", "newer-token", 60)  # replaces
    assert shared_cache.get("token-key") == "newer-token"
    if hasattr(shared_cache, "_client"):
        raw = shared_cache._client.get(shared_cache.PREFIX + "token-key")
    else:
        with engine.connect() as conn:
            raw = conn.exec_driver_sql("SELECT value FROM expiring_value").scalar()
            conn.rollback()
    assert b"newer-token" not in (raw if isinstance(raw, bytes) else raw.encode())  # stored encrypted
    shared_cache.set("short", "x", 1)
    time.sleep(1.1)
    assert shared_cache.get("short") is None
