"""Helpers for migrations that SQLite can only run by rebuilding a table (Alembic's batch mode)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op


@contextmanager
def keeping_programme_roles() -> Iterator[None]:
    """SQLite rebuilds `organisation` in batch mode (copy, DROP, rename). Foreign keys are on and cannot be switched
    off inside the migration's transaction, so the DROP deletes every programme_role row by its ON DELETE CASCADE;
    keep a copy and put the rows back. Elsewhere a no-op."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TEMP TABLE _kept_programme_role AS SELECT * FROM programme_role")
    yield
    if sqlite:
        op.execute(
            "INSERT INTO programme_role SELECT * FROM _kept_programme_role"
            " WHERE id NOT IN (SELECT id FROM programme_role)"
        )
        op.execute("DROP TABLE _kept_programme_role")
