#!/usr/bin/env python
"""Page render time against the raw aggregate query, on one database of 50,000 participants.

Two pages, each measured as a whole HTTP request through the Flask test client (launch check, read model, template,
response) and beside it the raw aggregate for that page alone, in the same run:

1. the mentor matrix (``POST /app/mentor``) of a mentor who leads one group of 12, opened with the launch token of
   a real LTI launch: the Canvas simulator's "mentor" user launches through the tool's own handlers
   (``tests.support.lti.LtiDriver``: /lti/login → the simulator's authorize → /lti/launch), as the functional tests
   do; the token is read from the landing page;
2. the licence administrator's progress page (``POST /admin/<org>/<programme>/progress``) of the organisation of
   2,000 participants, opened with the token of a magic-link sign-in (``request_link`` → /signin/link/<token>).

The raw aggregate is not written by hand: during one render of each page an engine listener
(``before_cursor_execute``) records every statement whose call stack passes through
``kurspakke/progress/overview.py`` or ``summary.py`` (the read model: ``people_progress`` — seats, completions,
attendance, pacing — and ``meetings_for`` for the mentor page; ``summarise`` — the counts per organisation and those
behind schedule, done by the database — and ``group_summaries`` for the administrator's page),
with its parameters exactly as the driver got them. The baseline replays those statements in a fresh session
(connection from the app's pool) with ``session.connection().exec_driver_sql(sql, params).all()``: rows fetched,
no ORM objects, no Python aggregation, no template.

Data (bulk inserts, not timed in the figures): 25 organisations, 50,000 participants (the measured organisation
2,000; the others 1,500 or 2,500), each with a seat and a participant role; groups of 12 (an organisation's last
< 12 people stay without a group), each with its own mentor (person, mentor seat, role); per group the
introduction and samling 1 held (attendance: ~90 % and ~75 % present, some make-ups) and samling 2 scheduled;
module completions for a realistic spread (15 % none … 15 % all four); ANALYZE after loading.

Measured: --warmup rounds, then --repeat rounds (default 30); in each round every page and its raw aggregate once,
the order page/raw alternating from round to round to cancel drift. Printed per page: statements per request and
how many are the aggregate's; p50 and p90 (wall, ms) of the page and of the raw aggregate; the ratio of the p50s
(target ≤ 2.0, the verdict); the median of the per-round ratios ("paired"); and the p50s of this process's CPU time
(insensitive to other load on the machine; on PostgreSQL the server's work is not in it); then each page's time
split, without the profiler, into the read model's functions (their SQL included), render_template and the rest
(launch check, routing, the view's own Python, the test client). A page that misses the target gets one render
under cProfile: its time split into read model / template / the rest, the top 10 entries by cumulative and by own
time (request plumbing left out), and a GC on/off check. Exit 1 when a target is missed or a page does not show
what the data says.

    .venv/bin/python bench/pages.py                          # SQLite, a temporary file
    .venv/bin/python bench/pages.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
        # PostgreSQL: a database bench_pages_<pid> is created on that server and dropped at the end
    .venv/bin/python bench/pages.py --participants 5000 --organisation 200 --repeat 5   # smoke run (seconds)
    .venv/bin/python bench/pages.py --show-sql --profile   # also each page's statements and every page's profile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import logging
import os
import platform as py_platform
import pstats
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from sqlalchemy import Engine, event, func, select, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench._database import Database  # noqa: E402
from canvas_sim import SimConfig, SimPlatform, create_sim_app  # noqa: E402
from kurspakke.db import make_engine, transaction, upgrade  # noqa: E402
from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup  # noqa: E402
from kurspakke.licences.models import Seat, SeatKind  # noqa: E402
from kurspakke.licences.seating import PersonInput, appoint_mentor  # noqa: E402
from kurspakke.licences.services import confirm_order, create_order  # noqa: E402
from kurspakke.meetings.models import Attendance, Meeting  # noqa: E402
from kurspakke.models import (  # noqa: E402
    CourseLink,
    IdentityKind,
    OrderSource,
    Organisation,
    Person,
    ProgrammeRole,
    ProgrammeRoleKind,
)
from kurspakke.programmes import Programme, load_programmes  # noqa: E402
from kurspakke.progress import overview, summary  # noqa: E402
from kurspakke.progress.models import ModuleCompletion  # noqa: E402
from kurspakke.services.keys import ensure_key  # noqa: E402
from kurspakke.services.magic_links import request_link  # noqa: E402
from kurspakke.services.people import (  # noqa: E402
    add_identity,
    get_or_create_organisation,
    get_or_create_person,
    grant_role,
    valid_orgnr,
)
from kurspakke.services.platforms import add_platform, platform_instance  # noqa: E402
from lti_tool import create_app  # noqa: E402
from tests.support.lti import LtiDriver, launch_token  # noqa: E402

PROGRAMME_ID = "lindrende-behandling"
TOOL = "https://kurspakke.test"
SIM = "https://canvas.sim.test"
SECRET = "bench-pages-secret-key-" * 3
ACTOR = "bench"
ADMIN_EMAIL = "kari.koordinator@stor.kommune.example.no"
SAME_ORIGIN = {"Origin": TOOL, "Sec-Fetch-Site": "same-origin"}
ORGANISATIONS = 25
GROUP_SIZE = 12
WORKPLACES = ("Sykehjem", "Hjemmetjeneste", "Tjenester til utviklingshemmede")
MODULE_SPREAD = (0.15, 0.25, 0.25, 0.20, 0.15)  # share of participants with 0, 1, 2, 3, 4 modules done
TARGET = 2.0
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - open for the life of the process
# Frames of the request plumbing, left out of the profile's list (each has the whole request as cumulative time).
PLUMBING = ("werkzeug/", "flask/app.py", "flask/testing.py", "bench/pages.py", "contextlib.py")
OVERVIEW_FILES = {
    path for module in (overview, summary) for path in (str(module.__file__), str(Path(str(module.__file__)).resolve()))
}


# ------------------------------------------------------------------ the database
# ------------------------------------------------------------------ the app and the simulator
@dataclass
class Stack:
    app: Flask
    client: FlaskClient
    sim: SimPlatform
    driver: LtiDriver
    sessions: sessionmaker[Session]
    engine: Engine


def start_stack(url: str, instance: Path) -> Stack:
    config = SimConfig(
        base_url=SIM,
        tool_login_url=TOOL + "/lti/login",
        tool_launch_url=TOOL + "/lti/launch",
        tool_jwks_url=TOOL + "/lti/jwks",
        storage_target=None,
    )
    sim = SimPlatform(config)
    sim_client = create_sim_app(config, sim).test_client()

    def fetch_from_sim(address: str, timeout: float) -> dict[str, Any]:
        response = sim_client.get(address[len(SIM) :])
        assert response.status_code == 200, address
        return response.get_json()

    settings = {
        "env": "test",
        "database_url": url,
        "base_url": TOOL,
        "instance_path": instance,
        "secret_key": SECRET,
        "log_json": True,  # as in production: a JSON line per request
        "http_timeout_seconds": 2.0,
    }
    app = create_app({"settings": settings, "environ": {}, "jwks_fetcher": fetch_from_sim})
    # The request log is formatted as in production but written to /dev/null, not to this terminal.
    for handler in logging.getLogger("kurspakke").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(DEVNULL)
    services = app.extensions["kurspakke"]
    client = app.test_client()
    return Stack(app, client, sim, LtiDriver(client, sim, sim_client), services.session_factory, services.engine)


# ------------------------------------------------------------------ data
def orgnrs(count: int) -> list[str]:
    """Valid organisation numbers (mod 11), deterministic."""
    found: list[str] = []
    candidate = 964_000_000
    while len(found) < count:
        candidate += 1
        if valid_orgnr(str(candidate)):
            found.append(str(candidate))
    return found


def organisation_sizes(participants: int, big: int) -> list[int]:
    """The measured organisation first; the others alternate 0.75× and 1.25× the mean of the rest."""
    rest = participants - big
    mean = rest / (ORGANISATIONS - 1)
    sizes = [big] + [round(mean * (0.75 if k % 2 == 0 else 1.25)) for k in range(ORGANISATIONS - 1)]
    sizes[-1] += participants - sum(sizes)
    return sizes


@dataclass
class World:
    big_org: int
    mentor_group: int
    mentor_person: int
    participants: int
    big_size: int
    rows: dict[str, int] = field(default_factory=dict)


def _insert(session: Session, model: Any, rows: list[dict[str, Any]], counts: dict[str, int]) -> None:
    table = model.__table__
    for start in range(0, len(rows), 10_000):
        session.execute(table.insert(), rows[start : start + 10_000])
    counts[table.name] = counts.get(table.name, 0) + len(rows)


def build(stack: Stack, programme: Programme, participants: int, big: int, seed: int) -> World:
    """Services for the few rows a launch and a sign-in need; bulk inserts with explicit ids for the rest."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    sizes = organisation_sizes(participants, big)
    encryptor = stack.app.extensions["kurspakke"].encryptor
    scope = platform_instance(stack.sim.issuer, stack.sim.config.platform_guid)
    with transaction(stack.sessions) as s:
        ensure_key(s, encryptor)
        add_platform(
            s,
            issuer=stack.sim.issuer,
            client_id=stack.sim.config.client_id,
            deployment_ids=[stack.sim.config.deployment_id],
            auth_login_url=SIM + "/api/lti/authorize_redirect",
            auth_token_url=SIM + "/login/oauth2/token",
            key_set_url=SIM + "/api/lti/security/jwks",
            frame_origins=[SIM],
        )
        s.add(
            CourseLink(
                programme_id=programme.id,
                platform_instance=scope,
                context_id=stack.sim.config.context_id,
                canvas_course_id=str(stack.sim.config.course_id),
                title=stack.sim.config.course_title,
            )
        )
        orgs: list[Organisation] = []
        for k, orgnr in enumerate(orgnrs(ORGANISATIONS)):
            org = get_or_create_organisation(s, name=f"Bench kommune {k:02d}", orgnr=orgnr)
            order = create_order(
                s, organisation=org, programme=programme, quantity=sizes[k], source=OrderSource.MANUAL, actor=ACTOR
            )
            confirm_order(s, order, actor=ACTOR)
            orgs.append(org)
        user = stack.sim.user("mentor")
        mentor_seat = appoint_mentor(s, orgs[0], programme, PersonInput(user.name, user.email), actor=ACTOR)
        add_identity(s, mentor_seat.person, IdentityKind.CANVAS_USER_ID, scope, str(user.canvas_user_id))
        admin = get_or_create_person(s, name="Kari Koordinator", email=ADMIN_EMAIL)
        grant_role(s, admin, programme_id=programme.id, organisation=orgs[0], role=ProgrammeRoleKind.LICENCE_ADMIN)
        bench_mentor = mentor_seat.person_id
        org_ids = [o.id for o in orgs]

    counts: dict[str, int] = {}
    with transaction(stack.sessions) as s:
        next_id = {
            model: (s.scalar(select(func.max(model.id))) or 0) + 1 for model in (Person, Seat, MentorGroup, Meeting)
        }

        def new_id(model: Any) -> int:
            value = next_id[model]
            next_id[model] = value + 1
            return value

        people: list[dict[str, Any]] = []
        seats: list[dict[str, Any]] = []
        roles: list[dict[str, Any]] = []
        groups: list[dict[str, Any]] = []
        members: list[dict[str, Any]] = []
        mentors: list[dict[str, Any]] = []
        meetings: list[dict[str, Any]] = []
        attendance: list[dict[str, Any]] = []
        completions: list[dict[str, Any]] = []
        mentor_group = 0
        valid_until = now + timedelta(days=365)
        for k, (org_id, size) in enumerate(zip(org_ids, sizes, strict=True)):
            org_seats: list[int] = []
            for i in range(size):
                pid, sid = new_id(Person), new_id(Seat)
                people.append({"id": pid, "name": f"Deltaker {k:02d}-{i:04d}", "email": f"d{k:02d}-{i:04d}@bench.no"})
                assigned = now - timedelta(days=rng.randint(14, 120))
                seats.append(
                    {
                        "id": sid,
                        "organisation_id": org_id,
                        "programme_id": programme.id,
                        "person_id": pid,
                        "kind": SeatKind.PARTICIPANT,
                        "counted": True,
                        "workplace": rng.choice(WORKPLACES),
                        "assigned_at": assigned,
                        "valid_until": valid_until,
                    }
                )
                roles.append(
                    {
                        "person_id": pid,
                        "programme_id": programme.id,
                        "organisation_id": org_id,
                        "role": ProgrammeRoleKind.PARTICIPANT,
                    }
                )
                done = rng.choices(range(5), weights=MODULE_SPREAD)[0]
                completions += [
                    {
                        "person_id": pid,
                        "programme_id": programme.id,
                        "module_id": module.id,
                        "completed_at": assigned + timedelta(days=7 * (n + 1)),
                        "score": float(rng.randint(5, 10)),
                    }
                    for n, module in enumerate(programme.modules[:done])
                ]
                org_seats.append(sid)
            for g in range(size // GROUP_SIZE):
                gid = new_id(MentorGroup)
                groups.append(
                    {"id": gid, "organisation_id": org_id, "programme_id": programme.id, "name": f"Gruppe {g + 1:03d}"}
                )
                if k == 0 and g == 0:
                    mentor_group, mentor_pid = gid, bench_mentor
                else:
                    mentor_pid, mentor_sid = new_id(Person), new_id(Seat)
                    people.append({"id": mentor_pid, "name": f"Mentor {k:02d}-{g:03d}", "email": f"m{k}-{g}@bench.no"})
                    seats.append(
                        {
                            "id": mentor_sid,
                            "organisation_id": org_id,
                            "programme_id": programme.id,
                            "person_id": mentor_pid,
                            "kind": SeatKind.MENTOR,
                            "counted": False,
                            "workplace": "",
                            "assigned_at": now - timedelta(days=120),
                            "valid_until": valid_until,
                        }
                    )
                    roles.append(
                        {
                            "person_id": mentor_pid,
                            "programme_id": programme.id,
                            "organisation_id": org_id,
                            "role": ProgrammeRoleKind.MENTOR,
                        }
                    )
                mentors.append({"group_id": gid, "person_id": mentor_pid})
                group_seats = org_seats[g * GROUP_SIZE : (g + 1) * GROUP_SIZE]
                members += [{"group_id": gid, "seat_id": sid} for sid in group_seats]
                start = now - timedelta(days=rng.randint(40, 70))
                held = {}
                for key, when in (
                    ("intro", start),
                    ("samling-1", start + timedelta(days=28)),
                    ("samling-2", now + timedelta(days=rng.randint(3, 30))),
                ):
                    mid = new_id(Meeting)
                    held[key] = mid
                    meetings.append(
                        {
                            "id": mid,
                            "programme_id": programme.id,
                            "session_key": key,
                            "group_id": gid,
                            "starts_at": when,
                            "duration_minutes": 90 if key == "intro" else 120,
                            "format": "physical",
                            "place": f"Møterom {g % 9 + 1}",
                        }
                    )
                for key, share in (("intro", 0.9), ("samling-1", 0.75)):
                    for sid in group_seats:
                        present = rng.random() < share
                        attendance.append(
                            {
                                "seat_id": sid,
                                "programme_id": programme.id,
                                "session_key": key,
                                "meeting_id": held[key],
                                "present": present,
                                "makeup": False,
                                "note": "" if present else "Syk",
                                "led_by_person_id": mentor_pid,
                                "recorded_by": ACTOR,
                            }
                        )
                        if not present and rng.random() < 0.3:  # made up later with another group
                            attendance.append(
                                {
                                    "seat_id": sid,
                                    "programme_id": programme.id,
                                    "session_key": key,
                                    "meeting_id": None,
                                    "present": True,
                                    "makeup": True,
                                    "note": "Tok igjen samlingen med en annen gruppe",
                                    "led_by_person_id": None,
                                    "recorded_by": ACTOR,
                                }
                            )
        for model, rows in (
            (Person, people),
            (Seat, seats),
            (ProgrammeRole, roles),
            (MentorGroup, groups),
            (GroupMentor, mentors),
            (GroupMember, members),
            (Meeting, meetings),
            (Attendance, attendance),
            (ModuleCompletion, completions),
        ):
            _insert(s, model, rows, counts)
        if stack.engine.dialect.name == "postgresql":
            for table in ("person", "seat", "mentor_group", "meeting"):
                s.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # noqa: S608
                )
    with stack.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return World(org_ids[0], mentor_group, bench_mentor, participants, sizes[0], rows=counts)


# ------------------------------------------------------------------ capture and replay
Captured = list[tuple[str, Any, str]]  # (driver SQL, driver parameters, the overview function it came from)


def _overview_caller() -> str | None:
    """The outermost function of kurspakke/progress/overview.py on the current call stack, if any."""
    frame = sys._getframe(1)
    found = None
    while frame is not None:
        if frame.f_code.co_filename in OVERVIEW_FILES:
            found = frame.f_code.co_name
        frame = frame.f_back  # type: ignore[assignment]
    return found


@contextmanager
def capture(engine: Engine) -> Iterator[tuple[Captured, list[tuple[str, str | None]]]]:
    """The read model's statements (with their parameters), and every statement with the overview function it came
    from (None: not the read model), run inside the block."""
    aggregate: Captured = []
    every: list[tuple[str, str | None]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        caller = _overview_caller()
        every.append((statement, caller))
        if caller is not None:
            assert not executemany, statement
            params = dict(parameters) if isinstance(parameters, dict) else tuple(parameters or ())
            aggregate.append((statement, params, caller))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield aggregate, every
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def replay(sessions: sessionmaker[Session], statements: Captured) -> int:
    """The raw aggregate: the captured statements, rows fetched, nothing built. Returns the rows read."""
    rows = 0
    with sessions() as session:
        conn = session.connection()
        for statement, params, _ in statements:
            rows += len(conn.exec_driver_sql(statement, params).all())
    return rows


def table_of(statement: str) -> str:
    found = re.search(r"\bFROM\s+(\w+)", statement)
    return found.group(1) if found else "?"


def per_statement(sessions: sessionmaker[Session], statements: Captured, times: int = 5) -> list[float]:
    """Median wall seconds of each captured statement alone (rows fetched), in one session."""
    result = []
    with sessions() as session:
        conn = session.connection()
        for statement, params, _ in statements:
            took = []
            for _ in range(times):
                start = time.perf_counter()
                conn.exec_driver_sql(statement, params).all()
                took.append(time.perf_counter() - start)
            result.append(percentile(took, 0.5))
    return result


# ------------------------------------------------------------------ the pages
@dataclass
class Page:
    name: str
    open: Callable[[], Any]
    check: Callable[[str], str | None]  # a failure, or None
    raw: Captured = field(default_factory=list)
    statements: int = 0
    raw_rows: int = 0
    page_times: list[float] = field(default_factory=list)  # wall seconds
    raw_times: list[float] = field(default_factory=list)
    page_cpu: list[float] = field(default_factory=list)  # this process's CPU seconds
    raw_cpu: list[float] = field(default_factory=list)


def mentor_page(stack: Stack) -> Page:
    landing = stack.driver.launch("mentor")
    if landing.status_code != 200:
        raise SystemExit(f"the mentor's launch answered {landing.status_code}")
    token = launch_token(landing.get_data(as_text=True))

    def open_() -> Any:
        return stack.client.post("/app/mentor", data={"lt": token}, base_url=TOOL)

    def check(html: str) -> str | None:
        rows = html.count('<th scope="row">Deltaker 00-')
        return None if rows == GROUP_SIZE else f"mentor page shows {rows} participants, expected {GROUP_SIZE}"

    return Page(f"mentor matrix (group of {GROUP_SIZE})", open_, check)


def admin_page(stack: Stack, world: World, programme: Programme) -> Page:
    with transaction(stack.sessions) as s:
        found = request_link(s, ADMIN_EMAIL, secret_key=SECRET)
    assert found is not None
    home = stack.client.post(f"/signin/link/{found[1]}", headers=SAME_ORIGIN, base_url=TOOL)
    if home.status_code != 200:
        raise SystemExit(f"the administrator's sign-in answered {home.status_code}")
    token = launch_token(home.get_data(as_text=True))
    path = f"/admin/{world.big_org}/{programme.id}/progress"

    def open_() -> Any:
        return stack.client.post(path, data={"lt": token}, base_url=TOOL)

    def check(html: str) -> str | None:
        marker = f'data-count="assigned">{world.big_size}<'
        return None if marker in html else f"administrator's page does not show {world.big_size} assigned"

    return Page(f"licence admin progress ({world.big_size:,} people)", open_, check)


def render(page: Page) -> str:
    response = page.open()
    if response.status_code != 200:
        raise SystemExit(f"{page.name}: HTTP {response.status_code}")
    return str(response.get_data(as_text=True))


READ_MODEL = {"people_progress", "meetings_for", "group_summaries", "summarise"}


def profile_top(page: Page, top: int = 10) -> str:
    """One render under cProfile: where the request's time goes (the read model's functions of overview.py, SQL and
    row building included; the template; the rest: launch check, routing, the view's own Python), then the top
    entries by cumulative time, the request plumbing (test client, Flask's dispatch, this script) left out."""
    profiler = cProfile.Profile()
    profiler.enable()
    render(page)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, tt, ct, _) in stats.values())

    def where(file: str, line: int, name: str) -> str:
        short = file.split("/site-packages/")[1] if "/site-packages/" in file else Path(file).name
        return f"{short}:{line}({name})"

    rows = [
        (ct, tt, nc, where(file, line, name))
        for (file, line, name), (_, nc, tt, ct, _) in stats.items()
        if not any(part in file for part in PLUMBING)
    ]
    by_cumulative = sorted(rows, reverse=True)[:top]
    by_own = sorted(rows, key=lambda row: row[1], reverse=True)[:top]
    read_model = sum(
        ct for (file, _, name), (_, _, _, ct, _) in stats.items() if file in OVERVIEW_FILES and name in READ_MODEL
    )
    template = sum(
        ct
        for (file, _, name), (_, _, _, ct, _) in stats.items()
        if file.endswith("flask/templating.py") and name == "render_template"
    )
    rest = total - read_model - template

    def share(value: float) -> str:
        return f"{value * 1000:.1f} ms ({value / total:.0%})"

    lines = [
        f"whole request under the profiler {total * 1000:.1f} ms: read model (overview.py) {share(read_model)},"
        f" template {share(template)}, the rest {share(rest)}",
        f"{'cum ms':>8} {'own ms':>8} {'calls':>7}",
    ]
    lines += [f"{ct * 1000:>8.2f} {tt * 1000:>8.2f} {nc:>7} {at}" for ct, tt, nc, at in by_cumulative]
    lines.append(f"and the top {top} by own time:")
    lines += [f"{ct * 1000:>8.2f} {tt * 1000:>8.2f} {nc:>7} {at}" for ct, tt, nc, at in by_own]
    return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(stack: Stack, pages: list[Page], warmup: int, repeat: int) -> None:
    for _ in range(warmup):
        for page in pages:
            render(page)
            replay(stack.sessions, page.raw)
    for rep in range(repeat):
        for page in pages:
            steps: list[tuple[list[float], list[float], Callable[[], Any]]] = [
                (page.page_times, page.page_cpu, page.open),
                (page.raw_times, page.raw_cpu, lambda page=page: replay(stack.sessions, page.raw)),  # type: ignore[misc]
            ]
            if rep % 2:
                steps.reverse()
            for times, cpu, step in steps:
                cpu_start, start = time.process_time(), time.perf_counter()
                result = step()
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - cpu_start)
                if times is page.page_times and result.status_code != 200:
                    raise SystemExit(f"{page.name}: HTTP {result.status_code}")


def gc_check(page: Page, renders: int = 10) -> tuple[float, float]:
    """Diagnostic: p50 wall seconds of renders with Python's cyclic garbage collector on and off, alternating."""
    on: list[float] = []
    off: list[float] = []
    for n in range(2 * renders):
        disabled = n % 2 == 1
        if disabled:
            gc.collect()
            gc.disable()
        try:
            start = time.perf_counter()
            render(page)
            (off if disabled else on).append(time.perf_counter() - start)
        finally:
            gc.enable()
    return percentile(on, 0.5), percentile(off, 0.5)


# Where the pages' modules look up the read model's functions and render_template (each imported them by name).
PHASES = {
    "read model": [
        ("lti_tool.views.progress_views", "people_progress"),
        ("lti_tool.views.progress_views", "meetings_for"),
        ("lti_tool.views.licence_admin_progress", "summarise"),
        ("lti_tool.views.licence_admin_progress", "group_summaries"),
    ],
    "template": [
        ("lti_tool.views.pages", "render_template"),
        ("lti_tool.views.licence_admin", "render_template"),
    ],
}


def phase_split(page: Page, renders: int = 10) -> dict[str, float]:
    """Diagnostic without the profiler: median wall seconds per render in the read model's functions (their SQL
    included), in render_template, and in the rest (launch check, routing, the view's own Python, the test
    client). The functions are wrapped with timers for these renders only."""
    spent: dict[str, float] = {}
    originals: list[tuple[Any, str, Any]] = []

    def timed_call(phase: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - start

        return wrapper

    for phase, targets in PHASES.items():
        for module_name, attr in targets:
            module = sys.modules[module_name]
            fn = getattr(module, attr)
            originals.append((module, attr, fn))
            setattr(module, attr, timed_call(phase, fn))
    rows: list[dict[str, float]] = []
    try:
        for _ in range(renders):
            spent.clear()
            start = time.perf_counter()
            render(page)
            total = time.perf_counter() - start
            row = {phase: spent.get(phase, 0.0) for phase in PHASES}
            row["the rest"] = total - sum(row.values())
            row["whole request"] = total
            rows.append(row)
    finally:
        for module, attr, fn in originals:
            setattr(module, attr, fn)
    return {key: percentile([row[key] for row in rows], 0.5) for key in rows[0]}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return py_platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=50_000, help="in the whole database (default 50,000)")
    parser.add_argument("--organisation", type=int, default=2_000, help="participants of the measured organisation")
    parser.add_argument("--repeat", type=int, default=30, help="measured rounds (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="rounds before measuring (default 5)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument(
        "--database-url", default=None, help="default: a temporary SQLite file; PostgreSQL gets its own database"
    )
    parser.add_argument("--profile", action="store_true", help="print the cProfile top 10 for every page")
    parser.add_argument("--show-sql", action="store_true", help="print each page's statements (the aggregate marked)")
    args = parser.parse_args()
    if args.organisation * ORGANISATIONS > args.participants * 2 or args.organisation < GROUP_SIZE:
        parser.error("--organisation must be at least a group and at most about 2/25 of --participants")
    print(f"# {' '.join(sys.argv)}")
    print(f"# {py_platform.platform()}, {os.cpu_count()} CPUs ({cpu_model()}), Python {py_platform.python_version()}")

    programme = load_programmes()[PROGRAMME_ID]
    db = Database(args.database_url, "pages")
    instance = Path(tempfile.mkdtemp(prefix="bench-pages-instance-"))
    failures: list[str] = []
    stack: Stack | None = None
    try:
        began = time.perf_counter()
        engine = make_engine(db.url)
        upgrade(engine)
        engine.dispose()
        stack = start_stack(db.url, instance)
        world = build(stack, programme, args.participants, args.organisation, args.seed)
        rows = ", ".join(f"{name} {count:,}" for name, count in world.rows.items())
        print(f"# {db.backend}: migrated and loaded in {time.perf_counter() - began:.1f} s: {rows}")

        pages = [mentor_page(stack), admin_page(stack, world, programme)]
        for page in pages:
            for _ in range(2):  # first-request caches (templates, compiled statements, registrations)
                render(page)
            with capture(stack.engine) as (aggregate, every):
                html = render(page)
            page.raw, page.statements = list(aggregate), len(every)
            problem = page.check(html)
            if problem:
                failures.append(problem)
            page.raw_rows = replay(stack.sessions, page.raw)
            if not page.raw or not page.raw_rows:
                failures.append(f"{page.name}: no aggregate captured")
            callers = sorted({caller for _, _, caller in page.raw})
            print(
                f"# {page.name}: {page.statements} statements per request, {len(page.raw)} of them the aggregate"
                f" ({', '.join(callers)}), {page.raw_rows:,} rows"
            )
            each = per_statement(stack.sessions, page.raw)
            print(
                "#   each aggregate statement alone (ms, median of 5): "
                + ", ".join(
                    f"{caller}/{table_of(statement)} {t * 1000:.2f}"
                    for (statement, _, caller), t in zip(page.raw, each, strict=True)
                )
            )
            if args.show_sql:
                for statement, caller in every:
                    print(f"#   {caller or '-':<16} {' '.join(statement.split())[:150]}")

        began = time.perf_counter()
        measure(stack, pages, args.warmup, args.repeat)
        print(
            f"# measured {args.repeat} rounds after {args.warmup} warm-up rounds in {time.perf_counter() - began:.1f} s"
        )
        print()
        print(f"backend {db.backend}: times in ms, p50 / p90 of {args.repeat}, ratio = page p50 / raw p50 (wall)")
        header = (
            f"{'page':<38} {'page p50':>8} {'p90':>7} | {'raw p50':>7} {'p90':>7} | {'ratio':>5} {'target':>6} | "
            f"{'paired':>6} | {'CPU: page':>9} {'raw':>6} {'ratio':>5}"
        )
        print(header)
        print("-" * len(header))
        missed: list[Page] = []
        for page in pages:
            p50, p90 = percentile(page.page_times, 0.5) * 1000, percentile(page.page_times, 0.9) * 1000
            r50, r90 = percentile(page.raw_times, 0.5) * 1000, percentile(page.raw_times, 0.9) * 1000
            ratio = p50 / r50
            paired = percentile([p / r for p, r in zip(page.page_times, page.raw_times, strict=True)], 0.5)
            c50, rc50 = percentile(page.page_cpu, 0.5) * 1000, percentile(page.raw_cpu, 0.5) * 1000
            ok = ratio <= TARGET
            if not ok:
                missed.append(page)
                failures.append(f"{page.name}: page/raw {ratio:.2f}, target ≤ {TARGET}")
            print(
                f"{page.name:<38} {p50:>8.2f} {p90:>7.2f} | {r50:>7.2f} {r90:>7.2f} | {ratio:>5.2f} "
                f"{'ok' if ok else 'MISSED':>6} {paired:>6.2f} | {c50:>9.2f} {rc50:>6.2f} {c50 / rc50:>5.2f}"
            )
        print("paired: median of the per-round ratios page / raw (each round's two timings are side by side)")
        print(
            "CPU: p50 of this process's CPU time (time.process_time) per request / replay: insensitive to other load"
            " on the machine; on PostgreSQL the server's own time is not in it"
        )
        for page in pages:
            split = phase_split(page)
            parts = ", ".join(f"{key} {value * 1000:.2f}" for key, value in split.items())
            print(f"split of {page.name} (ms, medians of 10 renders, no profiler): {parts}")
        for page in pages if args.profile else missed:
            print()
            print(f"--- {page.name}: one render under cProfile, top 10 by cumulative time")
            print(profile_top(page))
            on, off = gc_check(page)
            print(
                f"diagnostic, 10 renders each, alternating: p50 with Python's cyclic GC on {on * 1000:.2f} ms,"
                f" off {off * 1000:.2f} ms"
            )
    finally:
        if stack is not None:
            stack.engine.dispose()
        db.drop()
        shutil.rmtree(instance, ignore_errors=True)
    print()
    for failure in failures:
        print(f"FAIL: {failure}")
    print("OK: every target met" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
