"""Migration 0003 (licences) keeps what is already there, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from kurspakke.db import MIGRATIONS_PATH


def _migrate(engine: Engine, direction: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_PATH))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, direction)(cfg, revision)


def _roles(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, person_id, organisation_id, role FROM programme_role ORDER BY id")).all()
    return [tuple(row) for row in rows]


def test_0003_keeps_organisations_and_their_programme_roles(engine):
    """SQLite rebuilds `organisation` to add the network-area link; with foreign keys on, the rebuild's DROP TABLE
    would delete every programme_role row by cascade."""
    _migrate(engine, "downgrade", "0002")
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO organisation (id, name, orgnr, created_at) VALUES "
                    "(1, 'Oslo kommune', '958935420', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO person (id, name, email, created_at) "
                    "VALUES (1, 'Kari', 'kari@x.no', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO programme_role (id, person_id, programme_id, organisation_id, role, created_at) "
                    "VALUES (7, 1, 'lindrende-behandling', 1, 'LICENCE_ADMIN', CURRENT_TIMESTAMP)"
                )
            )
    finally:
        _migrate(engine, "upgrade", "head")
    assert _roles(engine) == [(7, 1, 1, "LICENCE_ADMIN")]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name, kind, parent_id FROM organisation")).one() == (
            "Oslo kommune",
            "OTHER",
            None,
        )

    _migrate(engine, "downgrade", "0002")
    try:
        assert _roles(engine) == [(7, 1, 1, "LICENCE_ADMIN")]
    finally:
        _migrate(engine, "upgrade", "head")
