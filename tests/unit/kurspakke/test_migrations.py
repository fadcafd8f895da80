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
