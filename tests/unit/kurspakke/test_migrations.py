"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from kurspakke.models import Base


def test_models_and_migrations_agree(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        conn.rollback()
    assert diff == []


def test_constraint_names_follow_the_convention(engine):
    insp = inspect(engine)
    for table in Base.metadata.tables:
        pk = insp.get_pk_constraint(table)
        if engine.dialect.name == "postgresql":
            assert pk["name"] == f"pk_{table}"
        for uq in insp.get_unique_constraints(table):
            assert uq["name"].startswith(f"uq_{table}_")


def _migrate(engine, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from kurspakke.db import MIGRATIONS_PATH

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_PATH))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, direction)(cfg, revision)


def test_0002_drops_what_the_old_rules_let_launches_record(engine):
    """Under the old rules a launch recorded the Canvas user id of its custom parameter, and a takeover left a
    person with two subs of one issuer. 0002 keeps neither (its new unique index would refuse the second), and
    lower-cases e-mails."""
    from sqlalchemy import text

    _migrate(engine, "downgrade", "0001")
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO person (id, name, email, created_at) VALUES "
                    "(1, 'Kari', 'Kari.Nordmann@Example.NO', CURRENT_TIMESTAMP), "
                    "(2, 'Ingrid', 'ingrid@example.no', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO organisation (id, name, orgnr, created_at) "
                    "VALUES (1, 'Oslo kommune', '958935420', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO programme_role (person_id, programme_id, organisation_id, role, created_at) "
                    "VALUES (2, 'p', 1, 'LICENCE_ADMIN', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO person_identity (person_id, kind, scope, value) VALUES "
                    "(1, 'LTI_SUB', 'iss', 'kari'), (1, 'CANVAS_USER_ID', 'iss|g', '101'), "
                    "(2, 'LTI_SUB', 'iss', 'ingrid'), (2, 'LTI_SUB', 'iss', 'attacker'), "
                    "(2, 'LTI_SUB', 'other-iss', 'ingrid-elsewhere')"
                )
            )
    finally:
        _migrate(engine, "upgrade", "head")
    with engine.connect() as conn:
        identities = conn.execute(text("SELECT person_id, kind, scope, value FROM person_identity ORDER BY id")).all()
        emails = conn.execute(text("SELECT email FROM person ORDER BY id")).scalars().all()
    assert [tuple(row) for row in identities] == [
        (1, "LTI_SUB", "iss", "kari"),
        (2, "LTI_SUB", "other-iss", "ingrid-elsewhere"),
    ]
    assert emails == ["kari.nordmann@example.no", "ingrid@example.no"]
    with engine.connect() as conn:  # what the migrations rebuild on SQLite keeps its dependants (no cascade)
        assert conn.execute(text("SELECT person_id, organisation_id FROM programme_role")).all() == [(2, 1)]
