"""A benchmark's own database: a temporary SQLite file, or a database created (and dropped) beside the one of
--database-url on its PostgreSQL server, so benchmarks never touch the tests' tables."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from kurspakke.db import normalise_url


class Database:
    """A temporary SQLite file, or a database of its own on the PostgreSQL server of --database-url."""

    def __init__(self, url: str | None, purpose: str) -> None:
        self.tmp: Path | None = None
        self.admin_url: str | None = None
        self.name: str | None = None
        if url is None:
            self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{purpose}-"))
            self.url = f"sqlite:///{self.tmp / 'bench.sqlite3'}"
            self.backend = "sqlite"
            return
        parsed = make_url(normalise_url(url))
        self.backend = parsed.get_backend_name()
        if self.backend == "sqlite":
            self.url = url
            return
        if self.backend != "postgresql":
            raise SystemExit(f"unsupported database {self.backend!r}")
        self.name = f"bench_{purpose}_{os.getpid()}"
        self.admin_url = parsed.render_as_string(hide_password=False)
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}"'))
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        self.url = parsed.set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.admin_url is not None and self.name is not None:
            admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            admin.dispose()
