"""Alembic environment: migrations run on the connection handed in by kurspakke.db.upgrade, or on DATABASE_URL."""

from __future__ import annotations

from alembic import context

from kurspakke.models import Base

target_metadata = Base.metadata
config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from config.settings import Settings
        from kurspakke.db import make_engine

        engine = make_engine(Settings.from_env().database_url)
        with engine.begin() as conn:
            _run_on(conn)
        return
    _run_on(connection)


def _run_on(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
