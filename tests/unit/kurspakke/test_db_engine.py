"""The embedded database is set up for several processes at once: WAL, a busy timeout, foreign keys."""

from __future__ import annotations

from sqlalchemy import text

from kurspakke.db import make_engine


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'k.sqlite3'}", busy_timeout_ms=1234)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 1234
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()
