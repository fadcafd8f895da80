#!/usr/bin/env python
"""Seat import from CSV without Canvas: read + preview, and apply + commit, of a file of 5,000 new people.

Each run starts from a fresh database migrated to head (a SQLite file in a temporary directory; on PostgreSQL a
database this script creates and drops), with one organisation whose pool has bought enough seats (an order made
and confirmed through the licence services). It then times, in this order:

* preview: ``read_csv`` of the file's bytes and ``preview`` (read-only session);
* apply: ``read_csv``, ``apply`` and the one commit (``kurspakke.db.transaction``), as ``kurspakke seats import
  --apply`` does;
* re-import: ``apply`` of the same file again (every row unchanged: nothing is written).

Medians of --runs runs (default 5). PostgreSQL runs when KURSPAKKE_TEST_POSTGRES_URL (or --pg-url) is set.

    .venv/bin/python bench/csv_import.py
    KURSPAKKE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/csv_import.py
    .venv/bin/python bench/csv_import.py --rows 20000 --runs 3 --profile   # also prints the top of a cProfile
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import platform as py_platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine  # noqa: E402

from kurspakke.db import make_engine, make_session_factory, transaction, upgrade  # noqa: E402
from kurspakke.licences import csv_import  # noqa: E402
from kurspakke.licences.services import confirm_order, create_order  # noqa: E402
from kurspakke.models import OrderSource, Organisation  # noqa: E402
from kurspakke.programmes import load_programmes  # noqa: E402
from kurspakke.services.people import get_or_create_organisation  # noqa: E402

PROGRAMME = load_programmes()["lindrende-behandling"]
ORGNR = "958935420"
ACTOR = "bench"
WORKPLACES = ("sykehjem", "hjemmetjeneste", "tjenester til utviklingshemmede")


def build_csv(rows: int) -> bytes:
    """UTF-8 with BOM and `;`, as Excel saves "CSV UTF-8"; Norwegian letters in every name."""
    lines = ["navn;e-post;arbeidssted;sis_id"]
    lines += [
        f"Åse Ørnes Bækkelund {n};ase.bekkelund{n}@kommune.example.no;{WORKPLACES[n % 3]};sis-{n}" for n in range(rows)
    ]
    return "\ufeff".encode() + "\r\n".join(lines).encode()


@contextlib.contextmanager
def fresh_database(backend: str, pg_url: str, workdir: Path, n: int) -> Iterator[Engine]:
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{workdir / f'bench-{n}.sqlite3'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    import psycopg

    name = f"kurspakke_bench_csv_{os.getpid()}_{n}"
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    engine = make_engine(urlsplit(pg_url)._replace(path="/" + name).geturl())
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def one_run(engine: Engine, data: bytes, rows: int, profile: cProfile.Profile | None) -> dict[str, float]:
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        org = get_or_create_organisation(session, name="Bench kommune", orgnr=ORGNR)
        order = create_order(
            session, organisation=org, programme=PROGRAMME, quantity=rows, source=OrderSource.MANUAL, actor=ACTOR
        )
        confirm_order(session, order, actor=ACTOR)
        org_id = org.id

    def do_preview() -> csv_import.Preview:
        with factory() as session:
            org = session.get_one(Organisation, org_id)
            return csv_import.preview(session, org, PROGRAMME, csv_import.read_csv(data))

    def do_apply() -> csv_import.Result:
        with transaction(factory) as session:
            org = session.get_one(Organisation, org_id)
            return csv_import.apply(session, org, PROGRAMME, csv_import.read_csv(data), actor=ACTOR)

    preview_s, shown = timed(do_preview)
    assert len(shown.new) == rows and shown.missing == 0, (len(shown.new), shown.missing)
    if profile is not None:
        profile.enable()
    apply_s, result = timed(do_apply)
    if profile is not None:
        profile.disable()
    assert result.assigned == rows, result.assigned
    again_s, again = timed(do_apply)
    assert again.assigned == 0 and again.unchanged == rows
    return {"preview": preview_s, "apply": apply_s, "reimport": again_s}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument(
        "--backends",
        default=None,
        help="comma list of sqlite, postgresql (default: sqlite, and postgresql when a URL is given)",
    )
    p.add_argument("--pg-url", default=os.environ.get("KURSPAKKE_TEST_POSTGRES_URL"))
    p.add_argument("--profile", action="store_true", help="print the top of a cProfile of the apply runs")
    args = p.parse_args(argv)
    if args.backends is None:
        args.backends = "sqlite,postgresql" if args.pg_url else "sqlite"
    args.backend_list = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "postgresql" in args.backend_list and not args.pg_url:
        p.error("postgresql needs --pg-url or KURSPAKKE_TEST_POSTGRES_URL")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = build_csv(args.rows)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"python {py_platform.python_version()}, {py_platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.rows} rows ({len(data) / 1024:.0f} KiB), {args.runs} runs per backend, fresh database per run"
    )
    print(f"{'backend':<11} {'step':<10} {'median s':>9} {'min s':>7} {'max s':>7} {'rows/s':>9}")
    with tempfile.TemporaryDirectory(prefix="kurspakke-bench-csv-") as tmp:
        for backend in args.backend_list:
            profile = cProfile.Profile() if args.profile else None
            runs: list[dict[str, float]] = []
            for n in range(args.runs):
                with fresh_database(backend, args.pg_url or "", Path(tmp), n) as engine:
                    runs.append(one_run(engine, data, args.rows, profile))
            for step in ("preview", "apply", "reimport"):
                values = [r[step] for r in runs]
                median = statistics.median(values)
                print(
                    f"{backend:<11} {step:<10} {median:>9.3f} {min(values):>7.3f} {max(values):>7.3f} "
                    f"{args.rows / median:>9.0f}"
                )
            if profile is not None:
                print(f"--- {backend}: cProfile of apply (cumulative, top 25)")
                pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
