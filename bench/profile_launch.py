#!/usr/bin/env python
"""Where a launch spends its server time: N launches through the tool in-process (Flask test client, no HTTP,
no gunicorn) under cProfile, on a throw-away SQLite file or PostgreSQL database.

    .venv/bin/python bench/profile_launch.py --backend postgresql -n 300 --sort tottime --limit 40

Prints the mean in-process time of login and launch, then the profile of the measured launches.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.launch import DEFAULT_PG_URL, TOOL_MARKER, USER, pg_admin, with_database  # noqa: E402
from bench.sim_app import sim_config  # noqa: E402
from canvas_sim import SimPlatform  # noqa: E402


def _package(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins/C (psycopg waits on the socket here)"
    for marker in ("site-packages/", "/work/main/"):
        if marker in filename:
            rest = filename.split(marker, 1)[1]
            return rest.split("/", 1)[0].removesuffix(".py")
    return "stdlib:" + Path(filename).stem


def print_by_package(stats: pstats.Stats, n: int) -> None:
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = _package(filename)
        totals[key] = totals.get(key, 0.0) + tottime
    whole = sum(totals.values())
    print(f"own time per package (profiled, ms per login+launch; total {whole / n * 1000:.2f} ms):")
    for key, value in sorted(totals.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {value / n * 1000:7.3f} ms  {value / whole * 100:5.1f}%  {key}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default="postgresql")
    p.add_argument("-n", type=int, default=300, help="measured launches")
    p.add_argument("--sort", default="cumulative")
    p.add_argument("--limit", type=int, default=45)
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    p.add_argument("--no-profile", action="store_true", help="only time the launches")
    p.add_argument("--sql", action="store_true", help="print the SQL statements of one warm launch")
    p.add_argument("--by-package", action="store_true", help="also sum the profile's own time per package")
    args = p.parse_args()

    from canvas_sim.demo import demo_platform, demo_users
    from kurspakke.db import make_engine, make_session_factory, transaction, upgrade
    from kurspakke.services import keys as key_service
    from kurspakke.services.demo import load_demo
    from lti_tool import create_app

    tmp = Path(tempfile.mkdtemp(prefix="kp-prof-"))
    database = None
    if args.backend == "sqlite":
        db_url = f"sqlite:///{tmp / 'kurspakke.sqlite3'}"
    else:
        database = f"kp_prof_{secrets.token_hex(4)}"
        pg_admin(args.pg_url, f'CREATE DATABASE "{database}"')
        db_url = with_database(args.pg_url, database)
    try:
        tool_url, sim_url = "http://127.0.0.1:5000", "http://127.0.0.1:5001"
        cfg = sim_config(sim_url, tool_url, None)
        sim = SimPlatform(cfg)
        environ = {
            "DATABASE_URL": db_url,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "KURSPAKKE_BASE_URL": tool_url,
            "KURSPAKKE_ENV": "development",
            "KURSPAKKE_INSTANCE_PATH": str(tmp / "instance"),
            "KURSPAKKE_LOG_JSON": "1",
        }
        from config.settings import Settings
        from kurspakke.crypto import Encryptor

        settings = Settings.from_env(environ)
        engine = make_engine(db_url)
        upgrade(engine)
        demo = demo_platform(cfg)
        with transaction(make_session_factory(engine)) as session:
            key_service.ensure_key(session, Encryptor(secret_key=settings.secret_key))
            load_demo(session, demo, demo_users(cfg))
        engine.dispose()
        import logging

        app = create_app({"environ": environ, "jwks_fetcher": lambda _url, _t: sim.jwks()})
        logging.getLogger("kurspakke").handlers[0].stream = open("/dev/null", "w")  # noqa: SIM115
        client = app.test_client()
        params = sim.login_initiation_params(USER)
        user = sim.user(USER)
        times = {"login": 0.0, "sign": 0.0, "launch": 0.0}

        def launch() -> None:
            t0 = time.perf_counter()
            resp = client.get("/lti/login", query_string=params)
            t1 = time.perf_counter()
            assert resp.status_code == 302, resp.status_code
            q = parse_qs(urlsplit(resp.headers["Location"]).query)
            state, nonce = q["state"][0], q["nonce"][0]
            token = sim.sign(sim.claims_for(user, nonce=nonce))
            t2 = time.perf_counter()
            resp = client.post(
                "/lti/launch", data={"id_token": token, "state": state}, headers={"Cookie": f"kp_state_{state}={state}"}
            )
            t3 = time.perf_counter()
            assert resp.status_code == 200 and TOOL_MARKER in resp.data, resp.data[:300]
            times["login"] += t1 - t0
            times["sign"] += t2 - t1
            times["launch"] += t3 - t2

        for _ in range(30):
            launch()
        if args.sql:
            from sqlalchemy import event

            engine = app.extensions["kurspakke"].engine
            seen: list[str] = []

            def _log(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
                seen.append(" ".join(statement.split())[:150])

            def _begin(conn):  # type: ignore[no-untyped-def]
                seen.append("-- begin (pool checkout)")

            event.listen(engine, "before_cursor_execute", _log)
            event.listen(engine, "begin", _begin)
            launch()
            event.remove(engine, "before_cursor_execute", _log)
            event.remove(engine, "begin", _begin)
            print(f"{len([s for s in seen if not s.startswith('--')])} statements in one login + launch:")
            for line in seen:
                print("  ", line)
        times = dict.fromkeys(times, 0.0)
        prof = cProfile.Profile()
        if not args.no_profile:
            prof.enable()
        for _ in range(args.n):
            launch()
        prof.disable()
        print(
            f"{args.backend}: mean per launch over {args.n}: login {times['login'] / args.n * 1000:.2f} ms, "
            f"client signing {times['sign'] / args.n * 1000:.2f} ms, launch {times['launch'] / args.n * 1000:.2f} ms"
            + ("" if args.no_profile else " (with profiler overhead)")
        )
        if not args.no_profile:
            stats = pstats.Stats(prof)
            stats.sort_stats(args.sort).print_stats(args.limit)
            if os.environ.get("BENCH_CALLEES"):
                stats.print_callees(os.environ["BENCH_CALLEES"])
            if args.by_package:
                print_by_package(stats, args.n)
        app.extensions["kurspakke"].engine.dispose()
    finally:
        if database:
            pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
