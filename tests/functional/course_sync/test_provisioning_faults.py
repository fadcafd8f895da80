"""DESIGN.md §4 under fire: 200 assignments carried to a Canvas that fails one request in five (5xx, timeouts,
throttling, connections dropped before and after the change is applied), with a `kurspakke worker` process killed
in the middle of a step, end with exactly 200 enrolments and no duplicate account or enrolment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from course_sync.worker import EXIT_IDLE, WorkerOptions
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.licences.models import CanvasStatus, Seat
from kurspakke.licences.seating import PersonInput, assign_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.models import OrderSource, OutboxStep, StepStatus
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_organisation
from tests.conftest import SECRET
from tests.support.canvas_live import LiveCanvas, register, worker

PROGRAMME = load_programmes()["lindrende-behandling"]
ACTOR = "licence admin test"
PEOPLE = 200
CLIENT_TIMEOUT = 0.5


def _coverage_env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"], **{k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}}


def test_two_hundred_assignments_survive_faults_and_a_killed_worker(
    session_factory: sessionmaker[Session],
    database_url: str,
    canvas: LiveCanvas,
    encryptor: Encryptor,
    tmp_path: object,
) -> None:
    with transaction(session_factory) as session:
        register(session, canvas, encryptor)
        org = get_or_create_organisation(session, name="Stange kommune", orgnr="964949204")
        order = create_order(
            session, organisation=org, programme=PROGRAMME, quantity=PEOPLE, source=OrderSource.MANUAL, actor=ACTOR
        )
        confirm_order(session, order, actor=ACTOR)
        for n in range(PEOPLE):
            assign_person(
                session,
                org,
                PROGRAMME,
                PersonInput(f"Ansatt {n:03d}", f"ansatt{n:03d}@stange.kommune.no", "hjemmetjeneste"),
                actor=ACTOR,
            )
    rest = canvas.rest
    rest.set_latency(0.005)
    # One request in five fails, spread over every kind of fault Canvas and the network produce.
    for kind, extra in [
        ("status", {"status": 500}),
        ("status", {"status": 503}),
        ("timeout", {"seconds": CLIENT_TIMEOUT + 0.3}),
        ("drop_before", {}),
        ("drop_after", {}),
        ("throttle", {}),
    ]:
        rest.inject(kind, path=r"^/api/v1/", times=None, rate=0.2 / 6, **extra)  # type: ignore[arg-type]

    # A worker process, killed (SIGKILL) while it holds a step.
    env = {
        **_coverage_env(),
        "KURSPAKKE_ENV": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path),
        "KURSPAKKE_CANVAS_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT),
        "KURSPAKKE_RETRY_BASE_SECONDS": "0.01",
        "KURSPAKKE_RETRY_MAX_TRIES": "3",
        "KURSPAKKE_OUTBOX_LEASE_SECONDS": "2",
        "KURSPAKKE_OUTBOX_POLL_SECONDS": "0.05",
        "KURSPAKKE_OUTBOX_MAX_ATTEMPTS": "30",
    }
    process = subprocess.Popen([sys.executable, "-m", "kurspakke", "worker"], env=env)
    killed_step = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and killed_step is None:
            with session_factory() as session:
                done = session.scalar(select(func.count(Seat.id)).where(Seat.canvas_status == CanvasStatus.ACTIVE))
                leased = session.scalars(
                    select(OutboxStep.id).where(
                        OutboxStep.locked_by.like(f"%:{process.pid}:%"), OutboxStep.status == StepStatus.PENDING
                    )
                ).first()
            if (done or 0) >= 20 and leased is not None:
                process.send_signal(signal.SIGKILL)
                killed_step = leased
            time.sleep(0.005)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
    assert killed_step is not None, "the worker never held a step to be killed in"
    with session_factory() as session:
        step = session.get(OutboxStep, killed_step)
        assert step is not None and step.status is StepStatus.PENDING  # left leased by the dead worker

    # The rest is done by another worker; the dead one's step comes back when its lease runs out.
    options = WorkerOptions(lease_seconds=2.0, max_attempts=30, retry_base=0.01, retry_cap=0.1, poll_seconds=0.05)
    code = worker(session_factory, encryptor, options, timeout=CLIENT_TIMEOUT).run_until_idle(max_seconds=240)
    assert code == EXIT_IDLE

    fired = Counter({f"{f.kind}:{f.status}": f.fired for f in rest.faults})
    assert all(count > 0 for count in fired.values()), fired
    default_section = min(rest.sections)
    ours = [e for e in rest.enrollments.values() if e.section_id != default_section]
    assert len(ours) == PEOPLE
    assert all(e.type == "StudentEnrollment" and e.state == "active" for e in ours)
    assert len({e.user_id for e in ours}) == PEOPLE  # one enrolment per person
    created = [u for u in rest.users.values() if u.name.startswith("Ansatt ")]
    assert len(created) == PEOPLE and len({u.name for u in created}) == PEOPLE  # no second account for anyone
    assert len([s for s in rest.sections.values() if s.name == "Stange kommune (964949204)"]) == 1
    with session_factory() as session:
        seats = list(session.scalars(select(Seat)))
        assert {s.canvas_status for s in seats} == {CanvasStatus.ACTIVE}
        assert {int(s.canvas_user_id or 0) for s in seats} == {e.user_id for e in ours}
        assert session.scalar(select(func.count(OutboxStep.id)).where(OutboxStep.status != StepStatus.DONE)) == 0
