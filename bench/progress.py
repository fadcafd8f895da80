#!/usr/bin/env python
"""Quiz progress sync at scale: Canvas calls and wall time of `course_sync.progress_sync.sync_progress` against the
simulator, beside a bare read of the same endpoint in the same run.

Set-up (not timed): the simulator's state is seeded directly (N students enrolled in the course, M Classic
Quizzes, a submission for every student and quiz as Canvas keeps them, of which a seeded random --share is handed
in, all well before the sync) and then served from its own process (fork, werkzeug, threaded; REST service time
--latency, throttle on). The tool's database gets the course link, the M quiz mappings and N people with their
Canvas user ids, inserted in bulk.

Per repetition (--repeat, medians printed):

1. bare: GET /courses/1/students/submissions?student_ids[]=all&assignment_ids[]=… followed by Link rel="next"
   with a plain requests.Session (JSON decoded, nothing else) — the baseline;
2. client: the same read through `CanvasClient.submissions()` (checks, dataclasses), no database;
3. full sync: the module completions and the watermark are deleted, then `sync_progress(full=True)`;
4. incremental sync with nothing new: `sync_progress()` from the watermark just written, beside its bare
   baseline (the two call series with submitted_since / graded_since).

Then once: 50 new hand-ins in the simulator and an incremental sync, which must pick up exactly those.

Also printed: the simulator's own (server-side) time of the bare read and of the full sync, the ratio without it,
and the full sync split into reading Canvas (client.submissions, timed around the client) and the rest (database).

Canvas calls are the requests the simulator counted (all REST endpoints) during each sync. Targets: a full sync
≤ ceil(N·M/100) + 5 calls (N·M is what per-participant-per-quiz reads would cost), an incremental sync with
nothing new ≤ 2. Exits 1 when a target is missed or the completions are wrong.

    .venv/bin/python bench/progress.py                                 # 10,000 × 4, temp SQLite file
    .venv/bin/python bench/progress.py --participants 500 --repeat 1   # smoke run
    .venv/bin/python bench/progress.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
        # PostgreSQL: a database bench_progress_<pid> is created on that server and dropped at the end
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import platform as py_platform
import random
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, func, insert, select, text  # noqa: E402

from bench._database import Database  # noqa: E402
from canvas_sim import SimConfig, SimPlatform, create_sim_app  # noqa: E402
from canvas_sim.rest import CanvasRest, User, _sortable  # noqa: E402
from course_sync.canvas import CanvasClient  # noqa: E402
from course_sync.progress_sync import OVERLAP, sync_progress  # noqa: E402
from course_sync.provisioning import client_factory  # noqa: E402
from kurspakke.crypto import Encryptor  # noqa: E402
from kurspakke.db import make_engine, make_session_factory, transaction, upgrade  # noqa: E402
from kurspakke.models import CanvasInstance, CourseLink, IdentityKind, Person, PersonIdentity  # noqa: E402
from kurspakke.programmes import Programme, load_programmes  # noqa: E402
from kurspakke.progress.models import ModuleCompletion, ProgressWatermark, QuizMapping  # noqa: E402
from kurspakke.services.platforms import platform_instance  # noqa: E402

TOKEN = "sim-canvas-api-token"  # noqa: S105 - the simulator's own token
PROGRAMME_ID = "lindrende-behandling"
SUBMISSIONS = "GET /api/v1/courses/:course_id/students/submissions"
PER_PAGE = 100
NEW_HAND_INS = 50
CLIENT_OPTIONS: dict[str, float] = {"timeout": 120.0, "max_tries": 3, "retry_base": 0.2, "retry_max": 2.0}


# ------------------------------------------------------------------ the simulator, seeded, in its own process
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Seeded:
    user_ids: list[int]
    assignment_ids: list[int]
    handed_in: int  # submissions with submitted_at (of our participants)
    students: int  # every student of the course (the simulator's demo learners too)


def seed(rest: CanvasRest, participants: int, quizzes: int, share: float, rng: random.Random) -> Seeded:
    """Students, quizzes and submissions written straight into the simulator's state (no HTTP)."""
    now = rest.now()
    with rest.lock:
        section = rest.sections[min(rest.sections)]
        user_ids = []
        for i in range(participants):
            uid = next(rest._user_ids)
            name, email = f"Deltaker {i:05d}", f"deltaker{i:05d}@bench.kommune.no"
            rest.users[uid] = User(uid, name, name, _sortable(name), now, [email])
            rest._new_login(uid, email, None, None, None)
            rest._enroll(uid, section, "StudentEnrollment", "active", False)
            user_ids.append(uid)
        assignment_ids = [rest.add_assignment(f"Quiz {j + 1}").id for j in range(quizzes)]
        handed_in = 0
        for aid in assignment_ids:
            for uid in sorted(rest.student_ids()):  # Canvas keeps one submission per student and quiz
                rest._submission(aid, uid)
            for uid in user_ids:
                if rng.random() < share:
                    when = now - timedelta(days=1 + rng.random() * 60)
                    score = float(rng.randint(0, 10))
                    rest.record_submission(aid, uid, submitted_at=when, score=score, graded_at=when)
                    handed_in += 1
        return Seeded(user_ids, assignment_ids, handed_in, len(rest.student_ids()))


def _serve_sim(rest: CanvasRest, config: SimConfig, port: int, ready: Any) -> None:
    import logging

    from flask import jsonify, request
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    app = create_sim_app(config, SimPlatform(config), rest=rest)
    rng = random.Random(4242)
    busy = [0.0]  # seconds spent answering REST calls (the simulator's own share of a read's wall time)
    inner = app.wsgi_app

    def timing(environ: dict[str, Any], start_response: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(environ, start_response)
        finally:
            if environ.get("PATH_INFO", "").startswith("/api/"):
                with rest.lock:
                    busy[0] += time.perf_counter() - start

    app.wsgi_app = timing  # type: ignore[method-assign]

    @app.get("/_bench/rest")
    def counters() -> Any:
        with rest.lock:
            return jsonify(calls=sum(rest.counts.values()), submissions=rest.counts[SUBMISSIONS], busy=busy[0])

    @app.post("/_bench/hand-in")
    def hand_in() -> Any:
        """``count`` new hand-ins, now, of submissions not handed in yet (bench participants only)."""
        count = int(request.args["count"])
        first_user = int(request.args["first_user"])
        with rest.lock:
            open_ = [key for key, s in rest.submissions.items() if s.submitted_at is None and key[1] >= first_user]
            picked = rng.sample(sorted(open_), count)
            now = rest.now()
            for aid, uid in picked:
                rest.record_submission(aid, uid, submitted_at=now, score=7.0, graded_at=now)
        return jsonify(picked=picked)

    server = make_server("127.0.0.1", port, app, threaded=True)
    ready.set()
    server.serve_forever()


class Sim:
    def __init__(self, rest: CanvasRest, config: SimConfig, port: int) -> None:
        ctx = mp.get_context("fork")
        ready = ctx.Event()
        self.process = ctx.Process(target=_serve_sim, args=(rest, config, port, ready), daemon=True)
        self.process.start()
        if not ready.wait(60):
            raise RuntimeError("the simulator did not start")
        self.url = f"http://127.0.0.1:{port}"

    def counters(self) -> tuple[int, float]:
        """REST calls answered so far, and seconds the simulator spent answering them."""
        data = requests.get(self.url + "/_bench/rest", timeout=30).json()
        return int(data["calls"]), float(data["busy"])

    def hand_in(self, count: int, first_user: int) -> list[list[int]]:
        r = requests.post(self.url + "/_bench/hand-in", params={"count": count, "first_user": first_user}, timeout=60)
        r.raise_for_status()
        return list(r.json()["picked"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


# ------------------------------------------------------------------ the tool's database
def bench_programme(quizzes: int) -> Programme:
    """The programme, with extra modules (copies of its last) when more quizzes than modules are asked for."""
    programme = load_programmes()[PROGRAMME_ID]
    modules = list(programme.modules)
    while len(modules) < quizzes:
        modules.append(replace(modules[-1], id=f"emne-{len(modules) + 1}"))
    return replace(programme, modules=tuple(modules))


def setup_tool(
    sessions: Any, backend: str, config: SimConfig, sim_url: str, encryptor: Encryptor, seeded: Seeded, programme: Any
) -> None:
    scope = platform_instance(config.effective_issuer, config.platform_guid)
    with transaction(sessions) as session:
        session.add(
            CanvasInstance(
                api_url=sim_url,
                account_id=config.rest_account_id,
                token_encrypted=encryptor.encrypt(TOKEN.encode()),
                platform_instance=scope,
            )
        )
        link = CourseLink(
            programme_id=programme.id,
            platform_instance=scope,
            context_id=config.context_id,
            canvas_course_id=str(config.course_id),
            title=config.course_title,
        )
        session.add(link)
        session.flush()
        for module, aid in zip(programme.modules, seeded.assignment_ids, strict=False):
            session.add(
                QuizMapping(
                    course_link_id=link.id,
                    module_id=module.id,
                    assignment_id=str(aid),
                    assignment_name=f"Quiz {aid}",
                    points_possible=10.0,
                    mapped_by="bench",
                )
            )
        first = (session.scalar(select(func.max(Person.id))) or 0) + 1
        people = [
            {"id": first + i, "name": f"Deltaker {i:05d}", "email": f"deltaker{i:05d}@bench.kommune.no"}
            for i in range(len(seeded.user_ids))
        ]
        session.execute(insert(Person), people)
        session.execute(
            insert(PersonIdentity),
            [
                {
                    "person_id": first + i,
                    "kind": IdentityKind.CANVAS_USER_ID,
                    "scope": scope,
                    "value": str(uid),
                    "email": f"deltaker{i:05d}@bench.kommune.no",
                    "created_by_tool": True,
                }
                for i, uid in enumerate(seeded.user_ids)
            ],
        )
        if backend == "postgresql":
            session.execute(text("SELECT setval(pg_get_serial_sequence('person', 'id'), (SELECT max(id) FROM person))"))


# ------------------------------------------------------------------ the measurements
def bare_read(http: requests.Session, url: str, params: list[tuple[str, str]]) -> tuple[int, int]:
    """A paginated read with nothing but requests: (rows, calls)."""
    rows, calls = 0, 0
    next_url: str | None = url
    query: list[tuple[str, str]] | None = [*params, ("per_page", str(PER_PAGE))]
    while next_url:
        response = http.get(next_url, params=query, timeout=120)
        response.raise_for_status()
        rows += len(response.json())
        calls += 1
        next_url = response.links.get("next", {}).get("url")
        query = None  # the next link carries the query
    return rows, calls


class TimedReads:
    """The sync's client_for, with the seconds its clients spend in submissions() (the Canvas read, parsing
    included) summed up, so a sync's time splits into reading and the rest (the database)."""

    def __init__(self, client_for: Any) -> None:
        self.client_for = client_for
        self.seconds = 0.0

    def __call__(self, instance: CanvasInstance) -> Any:
        reads, client = self, self.client_for(instance)

        class Timed:
            def submissions(self, course_id: Any, **kw: Any) -> Any:
                start = time.perf_counter()
                try:
                    return client.submissions(course_id, **kw)
                finally:
                    reads.seconds += time.perf_counter() - start

        return Timed()


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


@dataclass
class Rep:
    bare: float
    client: float
    full: float
    full_calls: int
    full_counts: dict[str, Any]
    completions: int
    incr: float
    incr_calls: int
    incr_bare: float
    incr_counts: dict[str, Any] = field(default_factory=dict)
    bare_sim: float = 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--quizzes", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.6, help="share of submissions handed in (default 0.6)")
    parser.add_argument("--latency", type=float, default=0.0, help="simulated Canvas service time per request, s")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument(
        "--database-url", default=None, help="default: a temporary SQLite file; PostgreSQL gets its own database"
    )
    args = parser.parse_args()
    n, m = args.participants, args.quizzes
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        py_platform.processor(),
    )
    print(f"# {' '.join(sys.argv)}")
    print(f"# {py_platform.platform()}, {os.cpu_count()} CPUs ({cpu}), Python {py_platform.python_version()}")

    programme = bench_programme(m)
    port = _free_port()
    config = SimConfig(base_url=f"http://127.0.0.1:{port}", rest_latency=args.latency, storage_target=None)
    rest = CanvasRest(config)
    seconds, seeded = timed(lambda: seed(rest, n, m, args.share, random.Random(args.seed)))
    print(f"# simulator seeded in {seconds:.1f} s: {n} participants, {seeded.students} students in all, {m} quizzes,")
    print(f"#   {seeded.handed_in} of {n * m} submissions of participants handed in; latency {args.latency} s/call")
    sim = Sim(rest, config, port)
    db = Database(args.database_url, "progress")
    failures: list[str] = []
    reps: list[Rep] = []
    try:
        engine = make_engine(db.url)
        upgrade(engine)
        sessions = make_session_factory(engine)
        encryptor = Encryptor(secret_key="bench-secret-" * 4)
        seconds, _ = timed(lambda: setup_tool(sessions, db.backend, config, sim.url, encryptor, seeded, programme))
        print(f"# {db.backend}: {n} people with Canvas user ids inserted in {seconds:.1f} s")

        clients = TimedReads(client_factory(encryptor, **CLIENT_OPTIONS))
        programmes = {PROGRAMME_ID: programme}
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        endpoint = f"{sim.url}/api/v1/courses/{config.course_id}/students/submissions"
        params = [("student_ids[]", "all"), *[("assignment_ids[]", str(a)) for a in seeded.assignment_ids]]
        direct = CanvasClient(sim.url, TOKEN, **CLIENT_OPTIONS)  # type: ignore[arg-type]
        expected_rows = seeded.students * m

        def sync(full: bool) -> tuple[float, int, dict[str, Any]]:
            calls, busy = sim.counters()
            clients.seconds = 0.0
            seconds, report = timed(
                lambda: sync_progress(sessions, clients, PROGRAMME_ID, full=full, programmes=programmes)
            )
            after, busy_after = sim.counters()
            course = report.courses[0]
            if not report.ok:
                failures.append(f"sync failed: {course.error}")
            return (
                seconds,
                after - calls,
                {**course.as_dict(), "sim_seconds": busy_after - busy, "read_seconds": clients.seconds},
            )

        for rep in range(args.repeat):
            _, busy = sim.counters()
            bare, (rows, _) = timed(lambda: bare_read(http, endpoint, params))
            bare_sim = sim.counters()[1] - busy
            if rows != expected_rows:
                failures.append(f"bare read got {rows} rows, expected {expected_rows}")
            client, got = timed(lambda: direct.submissions(config.course_id, assignment_ids=seeded.assignment_ids))
            if len(got) != expected_rows:
                failures.append(f"client read got {len(got)} rows, expected {expected_rows}")
            del got
            with transaction(sessions) as session:
                session.execute(delete(ModuleCompletion))
                session.execute(delete(ProgressWatermark))
            full, full_calls, full_counts = sync(True)
            with sessions() as session:
                done = session.scalar(select(func.count()).select_from(ModuleCompletion)) or 0
                mark = session.scalars(select(ProgressWatermark)).one()
            if done != seeded.handed_in:
                failures.append(f"full sync: {done} completions, expected {seeded.handed_in}")
            incr, incr_calls, incr_counts = sync(False)
            if incr_counts["mode"] != "incremental":
                failures.append(f"the second sync was {incr_counts['mode']}, not incremental")
            assert mark.submitted_since is not None and mark.graded_since is not None
            since_params = [
                [*params, ("submitted_since", (mark.submitted_since - OVERLAP).strftime("%Y-%m-%dT%H:%M:%SZ"))],
                [*params, ("graded_since", (mark.graded_since - OVERLAP).strftime("%Y-%m-%dT%H:%M:%SZ"))],
            ]
            incr_bare, _ = timed(lambda since=since_params: [bare_read(http, endpoint, p) for p in since])
            r = Rep(
                bare, client, full, full_calls, full_counts, done, incr, incr_calls, incr_bare, incr_counts, bare_sim
            )
            reps.append(r)
            print(
                f"# rep {rep + 1}: bare {bare:.2f} s (simulator {bare_sim:.2f}), client {client:.2f} s,"
                f" full sync {full:.2f} s (simulator {full_counts['sim_seconds']:.2f},"
                f" read {full_counts['read_seconds']:.2f}) / {full_calls} calls"
                f" ({full_counts['submissions']} rows, {full_counts['completed']} completed,"
                f" {full_counts['unknown_users']} unknown), incremental {incr * 1000:.0f} ms / {incr_calls} calls"
                f" (bare {incr_bare * 1000:.0f} ms)",
                flush=True,
            )

        # 50 new hand-ins (since the last sync) and an incremental sync.
        picked = sim.hand_in(NEW_HAND_INS, seeded.user_ids[0])
        new_s, new_calls, new_counts = sync(False)
        with sessions() as session:
            done_after = session.scalar(select(func.count()).select_from(ModuleCompletion)) or 0
        if new_counts["completed"] != len(picked) or done_after != seeded.handed_in + len(picked):
            failures.append(
                f"after {len(picked)} hand-ins: {new_counts['completed']} completed, {done_after} completions in all"
            )
        engine.dispose()
    finally:
        sim.stop()
        db.drop()

    full_target = math.ceil(n * m / PER_PAGE) + 5
    full_calls = max(r.full_calls for r in reps)
    incr_calls = max(r.incr_calls for r in reps)
    if full_calls > full_target:
        failures.append(f"full sync made {full_calls} Canvas calls, target ≤ {full_target}")
    if incr_calls > 2:
        failures.append(f"incremental sync with nothing new made {incr_calls} Canvas calls, target ≤ 2")
    if new_calls > 2:
        failures.append(f"incremental sync after {NEW_HAND_INS} hand-ins made {new_calls} Canvas calls, target ≤ 2")

    def med(values: list[float]) -> float:
        return statistics.median(values)

    bare, client, full = med([r.bare for r in reps]), med([r.client for r in reps]), med([r.full for r in reps])
    incr, incr_bare = med([r.incr for r in reps]), med([r.incr_bare for r in reps])
    print()
    print(f"backend {db.backend}, medians of {len(reps)} repetition(s), times in seconds")
    header = (
        f"{'N':>6} {'M':>2} {'N·M':>7} | {'full calls':>10} {'(target)':>9} | {'incr calls':>10} {'(target)':>8} | "
        f"{'full sync':>9} {'bare':>6} {'ratio':>5} {'excess':>6} {'client':>6} {'ratio':>5} | "
        f"{'incr':>6} {'bare':>6} {'ratio':>5}"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{n:>6} {m:>2} {n * m:>7} | {full_calls:>10} {'(≤ ' + str(full_target) + ')':>9} | {incr_calls:>10} "
        f"{'(≤ 2)':>8} | {full:>9.2f} {bare:>6.2f} {full / bare:>5.2f} {full - bare:>6.2f} "
        f"{client:>6.2f} {client / bare:>5.2f} | "
        f"{incr:>6.3f} {incr_bare:>6.3f} {incr / incr_bare:>5.2f}"
    )
    print("excess: full sync − bare (the tool's own time: parsing, checks, database); ratios are to bare")
    read = med([r.full_counts["read_seconds"] for r in reps])
    print(
        f"full sync split: reading Canvas (client.submissions) {read:.2f} s, the rest (database: people looked up,"
        f" completions written, watermark) {med([r.full - r.full_counts['read_seconds'] for r in reps]):.2f} s"
    )
    bare_sim, full_sim = med([r.bare_sim for r in reps]), med([r.full_counts["sim_seconds"] for r in reps])
    bare_own, full_own = (
        med([r.bare - r.bare_sim for r in reps]),
        med([r.full - r.full_counts["sim_seconds"] for r in reps]),
    )
    print(
        f"without the simulator's own time (server side: bare {bare_sim:.2f} s, full sync {full_sim:.2f} s):"
        f" bare {bare_own:.2f} s, full sync {full_own:.2f} s, ratio {full_own / bare_own:.2f}"
    )
    print()
    print(
        f"full sync: {reps[0].full_counts['submissions']} rows read ({seeded.students} students × {m}),"
        f" {reps[0].completions} completions written (expected {seeded.handed_in}); per-participant-per-quiz reads"
        f" would be N·M = {n * m} calls"
    )
    print(
        f"incremental after {len(picked)} new hand-ins: {new_calls} calls (target ≤ 2), {new_s:.3f} s,"
        f" {new_counts['completed']} completed, {done_after} completions in all"
    )
    for failure in failures:
        print(f"FAIL: {failure}")
    print("OK: every target met" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
