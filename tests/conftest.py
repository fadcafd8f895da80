"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, the app, and the Canvas simulator.

Every database test runs twice, once per backend. PostgreSQL must be there in CI (CI=true); elsewhere its half
is skipped with a printed notice.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from canvas_sim import SimConfig, SimPlatform, create_sim_app
from kurspakke.crypto import Encryptor
from kurspakke.db import make_engine, make_session_factory, transaction, upgrade
from kurspakke.models import ToolKey
from kurspakke.services.keys import public_jwk
from kurspakke.services.platforms import add_platform
from lti_tool import create_app
from tests.support.lti import LtiDriver

TOOL = "https://kurspakke.test"
SIM = "https://canvas.sim.test"
SECRET = "test-secret-key-" * 4
PG_URL = os.environ.get("KURSPAKKE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_SCHEMA = f"kurspakke_test_{os.getpid()}"  # one schema per test run: parallel runs never collide
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("KURSPAKKE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _pg_url_with_schema() -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{PG_SCHEMA}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file we copy
    return path


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    admin = make_engine(PG_URL)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        message = f"PostgreSQL not reachable at {PG_URL}: {exc.__class__.__name__}"
        if IN_CI:
            pytest.fail(f"{message} (CI requires PostgreSQL)")
        print(f"\nNOTICE: {message}; skipping the PostgreSQL half of the suite")
        pytest.skip(message)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    admin.dispose()
    engine = make_engine(_pg_url_with_schema())
    upgrade(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
    admin.dispose()


_TABLES: list[str] = []


def _truncate(engine: Engine) -> None:
    # The schema is migrated once per run: its tables are read once (introspection costs ~20 ms a test).
    if not _TABLES:
        _TABLES.extend(t for t in inspect(engine).get_table_names() if t != "alembic_version")
    tables = _TABLES
    if tables:
        with engine.begin() as conn:
            # A connection a test left open would make TRUNCATE wait for ever; fail loudly instead.
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def redis_client() -> Iterator[Any]:
    """Redis for the Redis-backed stores. Required in CI; elsewhere its tests are skipped with a notice."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis not reachable at {REDIS_URL} (CI requires it): {exc}")
        print(f"\nNOTICE: Redis not reachable at {REDIS_URL}; skipping the Redis half")
        pytest.skip("Redis not reachable")
    yield client
    for key in client.scan_iter("kurspakke:*"):
        client.delete(key)
    client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "kurspakke.sqlite3"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    engine: Engine = request.getfixturevalue("pg_engine")
    _truncate(engine)  # before each test only: the next test's truncate (or the schema's drop) cleans up after it
    yield _pg_url_with_schema()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


@pytest.fixture
def encryptor() -> Encryptor:
    return Encryptor(secret_key=SECRET)


@cache
def rsa_pem(purpose: str) -> bytes:
    """One RSA key per purpose for the whole run (the simulated platform's, the tool's first signing key):
    generating a 2048-bit key costs ~60 ms, and every test made two. Tests that need another key make their own."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def add_tool_key(session: Session, encryptor: Encryptor) -> ToolKey:
    """The tool's active signing key, from the run's key (what ensure_key would generate on a first run)."""
    pem = rsa_pem("tool")
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    jwk = public_jwk(private.public_key())
    key = ToolKey(kid=jwk["kid"], private_key_encrypted=encryptor.encrypt(pem), public_jwk=jwk)
    session.add(key)
    session.flush()
    return key


@pytest.fixture
def sim_config() -> SimConfig:
    return SimConfig(
        base_url=SIM,
        tool_login_url=TOOL + "/lti/login",
        tool_launch_url=TOOL + "/lti/launch",
        tool_jwks_url=TOOL + "/lti/jwks",
        storage_target=None,
        private_key_pem=rsa_pem("platform"),
    )


@pytest.fixture
def sim(sim_config: SimConfig) -> SimPlatform:
    return SimPlatform(sim_config)


@pytest.fixture
def sim_app(sim: SimPlatform) -> Flask:
    return create_sim_app(sim.config, sim)


@pytest.fixture
def sim_client(sim_app: Flask) -> FlaskClient:
    return sim_app.test_client()


def register_sim(session: Session, sim: SimPlatform, **extra: Any) -> None:
    add_platform(
        session,
        issuer=extra.pop("issuer", sim.issuer),
        client_id=extra.pop("client_id", sim.config.client_id),
        deployment_ids=extra.pop("deployment_ids", [sim.config.deployment_id]),
        auth_login_url=SIM + "/api/lti/authorize_redirect",
        auth_token_url=SIM + "/login/oauth2/token",
        key_set_url=extra.pop("key_set_url", SIM + "/api/lti/security/jwks"),
        frame_origins=extra.pop("frame_origins", [SIM]),
        **extra,
    )


@pytest.fixture
def app_settings(database_url: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "env": "test",
        "database_url": database_url,
        "base_url": TOOL,
        "instance_path": tmp_path / "instance",
        "secret_key": SECRET,
        "log_json": False,
        "http_timeout_seconds": 2.0,
        "registration_cache_seconds": 0,  # tests register platforms mid-test; the cache has its own test
    }


@pytest.fixture
def app(
    app_settings: dict[str, Any], sim: SimPlatform, sim_client: FlaskClient, encryptor: Encryptor
) -> Iterator[Flask]:
    def fetch_from_sim(url: str, timeout: float) -> dict[str, Any]:
        assert url.startswith(SIM), url
        resp = sim_client.get(url[len(SIM) :])
        assert resp.status_code == 200
        return resp.get_json()  # type: ignore[no-any-return]

    flask_app = create_app({"settings": app_settings, "environ": {}, "jwks_fetcher": fetch_from_sim})
    factory = flask_app.extensions["kurspakke"].session_factory
    with transaction(factory) as s:
        add_tool_key(s, encryptor)
        register_sim(s, sim)
    yield flask_app
    flask_app.extensions["kurspakke"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class _Rows(list):  # type: ignore[type-arg]
    def one(self) -> Any:
        assert len(self) == 1, f"expected one row, got {len(self)}"
        return self[0]

    def first(self) -> Any:
        return self[0] if self else None

    def all(self) -> list[Any]:
        return list(self)


class FreshReads:
    """Reads for assertions, each in its own short read-only transaction: it never holds a lock the app's next
    request waits for, and it never reads an old snapshot."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def scalar(self, stmt: Any) -> Any:
        with self._factory() as s:
            return s.scalar(stmt)

    def scalars(self, stmt: Any) -> _Rows:
        with self._factory() as s:
            return _Rows(s.scalars(stmt).all())

    def rollback(self) -> None:
        """Nothing is held open."""


@pytest.fixture
def driver(client: FlaskClient, sim: SimPlatform, sim_client: FlaskClient) -> LtiDriver:
    """Drives launches through the tool's real handlers and the simulator."""
    return LtiDriver(client, sim, sim_client)


@pytest.fixture
def linked(app: Flask, sim: SimPlatform) -> None:
    """The simulator's course linked to the programme, with Kari (the simulator's "deltaker") as a participant."""
    from kurspakke.models import ProgrammeRoleKind
    from tests.support.factories import link_sim_course, person_for

    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
        person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT)


@pytest.fixture
def db_session(app: Flask) -> FreshReads:
    """Reads on the app's database, for asserting what was (not) written."""
    return FreshReads(app.extensions["kurspakke"].readonly_session_factory)
