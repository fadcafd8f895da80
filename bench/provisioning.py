#!/usr/bin/env python
"""Provisioning throughput: seats carried to Canvas by the outbox worker against a bare client in the same run.

For each size (default 1,000 and 5,000 new participants of one organisation):

1. bare: a client that sends exactly the requests the worker sends for a new person — search the account's users
   for the e-mail, create the user, enrol in the organisation's section (made once up front) — and nothing else,
   from C threads over keep-alive connections, at each C of --bare-concurrency; the best C is the baseline.
2. tool: the seats are assigned (one transaction, not timed), then W worker threads (each a `course_sync.worker.
   Worker`, as `kurspakke worker` runs, sharing one database) run until no step is pending. Timed from the first
   claim to idle; the welcome e-mails go to the log (no SMTP) and are part of the run.

Each run gets a fresh simulator process (its REST half: 50 ms service time per request, the throttle on:
high-water 700, 50 up front, leak 10/s, 403 "Rate Limit Exceeded"). Printed per run: people per second, Canvas
calls per new participant, throttle refusals; and the ratio tool / best bare.

    .venv/bin/python bench/provisioning.py                       # 1,000 and 5,000 (several minutes)
    .venv/bin/python bench/provisioning.py --sizes 200 --quick   # smoke run
    .venv/bin/python bench/provisioning.py --backend postgresql  # needs KURSPAKKE_TEST_POSTGRES_URL
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform as py_platform
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "sim-canvas-api-token"  # noqa: S105 - the simulator's own token
ORG_NAME, ORGNR = "Bench kommune", "964950113"


# ------------------------------------------------------------------ the simulator in its own process
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_sim(port: int, latency: float, ready: Any) -> None:
    from flask import jsonify
    from werkzeug.serving import make_server

    from canvas_sim import SimConfig, SimPlatform, create_sim_app
    from canvas_sim.rest import CanvasRest

    config = SimConfig(base_url=f"http://127.0.0.1:{port}", rest_latency=latency, storage_target=None)
    rest = CanvasRest(config)
    app = create_sim_app(config, SimPlatform(config), rest=rest)

    @app.get("/_bench/rest")
    def counters():  # type: ignore[no-untyped-def]
        with rest.lock:
            return jsonify(
                calls=sum(rest.counts.values()),
                counts=dict(rest.counts),
                refusals=rest.refusals,
                users=len(rest.users),
                enrollments=len(rest.enrollments),
                max_in_flight=rest.max_in_flight,
            )

    server = make_server("127.0.0.1", port, app, threaded=True)
    ready.set()
    server.serve_forever()


class Sim:
    def __init__(self, latency: float) -> None:
        self.port = _free_port()
        ctx = mp.get_context("fork")
        ready = ctx.Event()
        self.process = ctx.Process(target=_serve_sim, args=(self.port, latency, ready), daemon=True)
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("the simulator did not start")
        self.url = f"http://127.0.0.1:{self.port}"
        self.base = self.counters()

    def counters(self) -> dict[str, Any]:
        return dict(requests.get(self.url + "/_bench/rest", timeout=10).json())

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


# ------------------------------------------------------------------ bare client
def bare_run(size: int, concurrency: int, latency: float) -> dict[str, Any]:
    sim = Sim(latency)
    try:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=concurrency, pool_maxsize=concurrency)
        session.mount("http://", adapter)
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        api = sim.url + "/api/v1"
        section = session.post(api + "/courses/1/sections", data={"course_section[name]": ORG_NAME}).json()["id"]
        refused = 0
        lock = threading.Lock()

        def call(method: str, url: str, **kw: Any) -> Any:
            nonlocal refused
            while True:
                response = session.request(method, url, timeout=30, **kw)
                if response.status_code in (403, 429) and "Rate Limit" in response.text:
                    with lock:
                        refused += 1
                    time.sleep(0.2)
                    continue
                response.raise_for_status()
                return response.json()

        def person(n: int) -> None:
            email = f"bench{n:05d}@bench.kommune.no"
            call("GET", api + "/accounts/1/users", params={"search_term": email, "include[]": "email", "per_page": 100})
            user = call(
                "POST",
                api + "/accounts/1/users",
                data={
                    "user[name]": f"Bench {n}",
                    "pseudonym[unique_id]": email,
                    "communication_channel[type]": "email",
                    "communication_channel[address]": email,
                },
            )
            call(
                "POST",
                api + f"/sections/{section}/enrollments",
                data={
                    "enrollment[user_id]": user["id"],
                    "enrollment[type]": "StudentEnrollment",
                    "enrollment[enrollment_state]": "active",
                    "enrollment[limit_privileges_to_course_section]": "true",
                },
            )

        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(person, range(size)))
        elapsed = time.perf_counter() - start
        counters = sim.counters()
        return {
            "kind": "bare",
            "size": size,
            "concurrency": concurrency,
            "seconds": round(elapsed, 2),
            "people_per_second": round(size / elapsed, 2),
            "calls_per_person": round((counters["calls"] - sim.base["calls"] - 1) / size, 2),
            "refusals": counters["refusals"] - sim.base["refusals"],
            "client_refusals": refused,
        }
    finally:
        sim.stop()


# ------------------------------------------------------------------ the tool
def _database(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'bench.sqlite3'}"
    url = os.environ.get("KURSPAKKE_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("--backend postgresql needs KURSPAKKE_TEST_POSTGRES_URL")
    from sqlalchemy import create_engine, text

    schema = f"bench_prov_{os.getpid()}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def _worker_process(url: str, threads: int, encryptor: Any, in_flight: int) -> None:
    """One `kurspakke worker`-like process with ``threads`` workers, run until nothing is pending."""
    from course_sync.provisioning import client_factory
    from course_sync.steps import step_kinds
    from course_sync.worker import Worker, WorkerOptions
    from kurspakke.db import make_engine, make_session_factory

    sessions = make_session_factory(make_engine(url))
    options = WorkerOptions(lease_seconds=120, max_attempts=8, retry_base=0.2, retry_cap=5.0, poll_seconds=0.05)
    clients = client_factory(
        encryptor, timeout=30.0, max_tries=8, retry_base=0.2, retry_max=5.0, max_in_flight=in_flight
    )
    pool = [Worker(sessions, clients, step_kinds(None), options) for _ in range(threads)]
    codes: list[int] = []
    running = [threading.Thread(target=lambda w=w: codes.append(w.run_until_idle(3600))) for w in pool]
    for t in running:
        t.start()
    for t in running:
        t.join()
    os._exit(max(codes) if codes else 0)


def tool_run(size: int, workers: int, latency: float, backend: str, processes: int, in_flight: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from kurspakke.crypto import Encryptor
    from kurspakke.db import make_engine, make_session_factory, transaction, upgrade
    from kurspakke.licences.models import CanvasStatus, Seat
    from kurspakke.licences.seating import PersonInput, assign_person
    from kurspakke.licences.services import confirm_order, create_order
    from kurspakke.models import CanvasInstance, CourseLink, OrderSource
    from kurspakke.programmes import load_programmes
    from kurspakke.services.people import get_or_create_organisation
    from kurspakke.services.platforms import platform_instance

    sim = Sim(latency)
    tmp = Path(tempfile.mkdtemp(prefix="bench-prov-"))
    try:
        url = _database(backend, tmp)
        engine = make_engine(url)
        upgrade(engine)
        sessions = make_session_factory(engine)
        encryptor = Encryptor(secret_key="bench-secret-" * 4)
        programme = load_programmes()["lindrende-behandling"]
        from canvas_sim import SimConfig

        config = SimConfig(base_url=sim.url)
        scope = platform_instance(config.effective_issuer, config.platform_guid)
        with transaction(sessions) as session:
            session.add(
                CanvasInstance(
                    api_url=sim.url,
                    account_id=1,
                    token_encrypted=encryptor.encrypt(TOKEN.encode()),
                    platform_instance=scope,
                )
            )
            session.add(
                CourseLink(
                    programme_id=programme.id,
                    platform_instance=scope,
                    context_id=config.context_id,
                    canvas_course_id="1",
                )
            )
            org = get_or_create_organisation(session, name=ORG_NAME, orgnr=ORGNR)
            order = create_order(
                session, organisation=org, programme=programme, quantity=size, source=OrderSource.MANUAL, actor="bench"
            )
            confirm_order(session, order, actor="bench")
            for n in range(size):
                email = f"bench{n:05d}@bench.kommune.no"
                assign_person(session, org, programme, PersonInput(f"Bench {n}", email), actor="bench")
        engine.dispose()
        ctx = mp.get_context("fork")
        start = time.perf_counter()
        children = [
            ctx.Process(target=_worker_process, args=(url, workers // processes, encryptor, in_flight // processes))
            for _ in range(processes)
        ]
        for child in children:
            child.start()
        for child in children:
            child.join()
        codes = [child.exitcode for child in children]
        elapsed = time.perf_counter() - start
        counters = sim.counters()
        with sessions() as session:
            active = session.scalar(select(func.count(Seat.id)).where(Seat.canvas_status == CanvasStatus.ACTIVE))
        calls = counters["calls"] - sim.base["calls"]
        section_calls = 2  # list + create, once for the organisation
        return {
            "kind": "tool",
            "size": size,
            "workers": workers,
            "processes": processes,
            "canvas_in_flight": in_flight // processes * processes,
            "backend": backend,
            "seconds": round(elapsed, 2),
            "people_per_second": round(size / elapsed, 2),
            "calls_per_person": round((calls - section_calls) / size, 2),
            "refusals": counters["refusals"] - sim.base["refusals"],
            "active": active,
            "exit_codes": sorted(set(codes)),
        }
    finally:
        sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--bare-concurrency", type=int, nargs="+", default=[8, 12])
    parser.add_argument("--workers", type=int, default=24, help="worker threads in all")
    parser.add_argument("--processes", type=int, default=4, help="worker processes sharing them")
    parser.add_argument(
        "--in-flight", type=int, default=None, help="Canvas calls in flight in all (default: the best bare concurrency)"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="one bare concurrency only")
    args = parser.parse_args()
    print(f"# {' '.join(sys.argv)}")
    print(f"# {py_platform.platform()}, {os.cpu_count()} CPUs, Python {py_platform.python_version()}")
    results = []
    for size in args.sizes:
        bare = [
            bare_run(size, c, args.latency)
            for c in (args.bare_concurrency[:1] if args.quick else args.bare_concurrency)
        ]
        for row in bare:
            print(json.dumps(row), flush=True)
        best = max(bare, key=lambda r: r["people_per_second"])
        in_flight = args.in_flight or best["concurrency"]
        tool = tool_run(size, args.workers, args.latency, args.backend, args.processes, in_flight)
        tool["ratio_to_best_bare"] = round(tool["people_per_second"] / best["people_per_second"], 2)
        print(json.dumps(tool), flush=True)
        results += [*bare, tool]
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "provisioning.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
