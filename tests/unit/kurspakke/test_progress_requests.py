"""Progress syncs asked for now (kurspakke/progress/requests.py) and the ``progress.sync`` step that runs them
(course_sync/steps.py), on SQLite and PostgreSQL: requests collapse while one waits, the state a page polls moves
pending → running → done (or failed), and the step runs a real sync against the Canvas simulator over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from canvas_sim.keys import private_pem
from canvas_sim.rest import CanvasRest, User, _sortable
from course_sync.steps import PERIODIC_PROGRESS_JOB, step_kinds
from course_sync.worker import EXIT_IDLE, EXIT_PARKED, WorkerOptions
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.models import CourseLink, IdentityKind, OutboxStep, PeriodicJob, Person, PersonIdentity, StepStatus
from kurspakke.outbox import services as outbox
from kurspakke.programmes import load_programmes
from kurspakke.progress.models import ModuleCompletion, ProgressWatermark, QuizMapping
from kurspakke.progress.requests import PROGRESS_SYNC, UnknownSyncRequest, request_sync, sync_state
from tests.support.canvas_live import LiveCanvas, live_canvas, register, worker

PROGRAMMES = load_programmes()
PROGRAMME = "lindrende-behandling"
OTHER = "laeringsnettverk-parorende"
SUBMISSIONS = "GET /api/v1/courses/:course_id/students/submissions"


def ask(factory: sessionmaker[Session], programme: str = PROGRAMME, **kw: object) -> int:
    with transaction(factory) as session:
        return request_sync(
            session,
            programme,
            reason=str(kw.pop("reason", "button")),
            actor=str(kw.pop("actor", "person:1")),
            programmes=PROGRAMMES,
            **kw,  # type: ignore[arg-type]
        )


def state(factory: sessionmaker[Session], step_id: int, **kw: object) -> dict[str, object]:
    with factory() as session:
        return sync_state(session, step_id, **kw)  # type: ignore[arg-type]


def steps(factory: sessionmaker[Session]) -> list[OutboxStep]:
    with factory() as session:
        return list(session.scalars(select(OutboxStep).order_by(OutboxStep.id)))


def claim(factory: sessionmaker[Session], worker_id: str = "w1", lease: float = 60.0) -> int | None:
    with transaction(factory) as session:
        step = outbox.claim(session, worker_id, lease_seconds=lease)
        return step.id if step else None


# --- request_sync ------------------------------------------------------------------------------------------------


def test_requests_collapse_into_the_waiting_step_until_a_worker_claims_it(session_factory):
    first = ask(session_factory)
    assert [ask(session_factory, reason="live event", actor="canvas live events") for _ in range(4)] == [first] * 4
    (step,) = steps(session_factory)
    assert (step.kind, step.subject, step.status) == (PROGRESS_SYNC, f"progress:{PROGRAMME}", StepStatus.PENDING)
    assert step.payload == {"programme_id": PROGRAMME, "full": False, "reason": "button", "actor": "person:1"}

    other = ask(session_factory, OTHER)  # another programme: its own step
    assert other != first

    # Once claimed, the running sync may have read Canvas before the change now announced: a new step.
    assert claim(session_factory) == first
    second = ask(session_factory)
    assert second not in (first, other)
    assert ask(session_factory) == second
    assert len(steps(session_factory)) == 3
    # The subject keeps them in order: the second waits until the first is settled.
    assert claim(session_factory, "w2") == other
    assert claim(session_factory, "w3") is None
    with transaction(session_factory) as session:
        assert outbox.finish(session, first, "w1")
    assert claim(session_factory, "w3") == second


def test_concurrent_requests_for_one_programme_write_one_step(session_factory):
    """A burst of live events reaching several web processes at once: on PostgreSQL the requests queue on an
    advisory lock (FOR UPDATE locks only rows that exist); SQLite's writers queue anyway."""
    barrier = threading.Barrier(8)
    ids: list[int] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait(timeout=10)
            ids.append(ask(session_factory, reason="canvas live event grade_change"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and len(ids) == 8
    assert len(set(ids)) == 1
    assert len(steps(session_factory)) == 1


def test_a_request_for_a_full_sync_makes_the_waiting_step_full(session_factory):
    first = ask(session_factory)
    assert ask(session_factory, full=True) == first
    assert ask(session_factory) == first  # an incremental request does not take it back
    (step,) = steps(session_factory)
    assert step.payload["full"] is True


def test_an_unknown_programme_is_refused_and_nothing_is_written(session_factory):
    with pytest.raises(ValueError, match="unknown programme"):
        ask(session_factory, "no-such-programme")
    assert steps(session_factory) == []


# --- sync_state --------------------------------------------------------------------------------------------------


def test_sync_state_follows_the_step_from_pending_to_running_to_done(session_factory):
    step_id = ask(session_factory)
    pending = state(session_factory, step_id)
    assert pending["status"] == "pending" and pending["finished_at"] is None and pending["error"] is None
    assert pending["programme_id"] == PROGRAMME and pending["requested_at"]

    assert claim(session_factory) == step_id
    assert state(session_factory, step_id)["status"] == "running"
    later = datetime.now(UTC) + timedelta(seconds=120)  # the lease (60 s) ran out: its worker is gone
    assert state(session_factory, step_id, now=later)["status"] == "pending"

    with transaction(session_factory) as session:
        assert outbox.finish(session, step_id, "w1")
    done = state(session_factory, step_id)
    assert done["status"] == "done" and done["error"] is None
    assert isinstance(done["finished_at"], str)
    assert datetime.fromisoformat(done["finished_at"]) <= datetime.now(UTC)


def test_sync_state_says_pending_with_the_error_between_tries_and_failed_when_parked(session_factory):
    step_id = ask(session_factory)
    assert claim(session_factory) == step_id
    with transaction(session_factory) as session:
        status = outbox.fail(
            session, step_id, "w1", "Canvas answered 500", park=False, max_attempts=3, base=0.01, cap=0.01
        )
        assert status is StepStatus.PENDING
    between = state(session_factory, step_id)
    assert (between["status"], between["error"], between["attempts"]) == ("pending", "Canvas answered 500", 1)

    with transaction(session_factory) as session:
        step = session.get(OutboxStep, step_id)
        assert step is not None
        step.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    assert claim(session_factory) == step_id
    with transaction(session_factory) as session:
        outbox.fail(session, step_id, "w1", "Canvas answered 500 again", park=True, max_attempts=3, base=0, cap=0)
    failed = state(session_factory, step_id)
    assert failed["status"] == "failed" and failed["error"] == "Canvas answered 500 again"
    assert failed["finished_at"] is not None


def test_sync_state_knows_only_progress_syncs_and_only_of_the_programme_asked_about(session_factory):
    step_id = ask(session_factory)
    with transaction(session_factory) as session:
        seat_step = outbox.enqueue(session, "seat.sync", "seat:1", {"seat_id": 1})
        assert seat_step is not None
        seat_step_id = seat_step.id
    assert state(session_factory, step_id, programme_id=PROGRAMME)["id"] == step_id
    for bad, kw in ((step_id, {"programme_id": OTHER}), (seat_step_id, {}), (999_999, {})):
        with pytest.raises(UnknownSyncRequest):
            state(session_factory, bad, **kw)


# --- the step against the Canvas simulator ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def canvas_pem() -> bytes:
    return private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def canvas(canvas_pem: bytes) -> Iterator[LiveCanvas]:
    with live_canvas(canvas_pem) as live:
        yield live


def student(rest: CanvasRest, n: int) -> int:
    """A Canvas user with a student enrolment in the course."""
    with rest.lock:
        section = rest.sections[min(rest.sections)]
        uid = next(rest._user_ids)
        name = f"Student {n}"
        rest.users[uid] = User(uid, name, name, _sortable(name), rest.now(), [f"s{n}@example.no"])
        rest._new_login(uid, f"s{n}@example.no", None, None, None)
        rest._enroll(uid, section, "StudentEnrollment", "active", False)
    return uid


def setup_course(factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor) -> tuple[int, int, int, int]:
    """(course link id, mapped quiz id, Canvas user id, person id): the course linked on a registered Canvas, the
    first module mapped to a Classic Quiz, and a participant the tool provisioned (their Canvas user id recorded)."""
    quiz = canvas.rest.add_assignment("Quiz 1").id
    uid = student(canvas.rest, 1)
    with transaction(factory) as session:
        register(session, canvas, encryptor)
        link = session.scalars(select(CourseLink)).one()
        module = PROGRAMMES[PROGRAMME].modules[0].id
        session.add(QuizMapping(course_link_id=link.id, module_id=module, assignment_id=str(quiz)))
        person = Person(name="Kari Nordmann", email="kari@example.no")
        person.identities.append(PersonIdentity(kind=IdentityKind.CANVAS_USER_ID, scope=canvas.scope, value=str(uid)))
        session.add(person)
        session.flush()
        return link.id, quiz, uid, person.id


def completions(factory: sessionmaker[Session]) -> set[tuple[int, str]]:
    with factory() as session:
        return set(session.execute(select(ModuleCompletion.person_id, ModuleCompletion.module_id)).tuples())


def test_the_step_runs_a_progress_sync_and_is_done(session_factory, canvas, encryptor):
    link_id, quiz, uid, person_id = setup_course(session_factory, canvas, encryptor)
    canvas.rest.record_submission(quiz, uid, submitted_at=datetime.now(UTC) - timedelta(minutes=1), score=9.0)
    step_id = ask(session_factory, reason="canvas live event grade_change")

    calls = canvas.rest.count(SUBMISSIONS)
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE

    assert canvas.rest.count(SUBMISSIONS) > calls  # it read Canvas
    first_module = PROGRAMMES[PROGRAMME].modules[0].id
    assert completions(session_factory) == {(person_id, first_module)}
    with session_factory() as session:
        mark = session.get(ProgressWatermark, link_id)
        assert mark is not None and mark.submitted_since is not None  # a full first read, watermark advanced
    assert state(session_factory, step_id)["status"] == "done"


def test_a_sync_that_cannot_read_canvas_is_retried_with_backoff_then_failed_and_a_retry_completes_it(
    session_factory, canvas, encryptor
):
    link_id, quiz, uid, person_id = setup_course(session_factory, canvas, encryptor)
    canvas.rest.record_submission(quiz, uid, submitted_at=datetime.now(UTC) - timedelta(minutes=1), score=9.0)
    step_id = ask(session_factory)
    fault = canvas.rest.inject("status", status=500, times=None, endpoint=SUBMISSIONS)

    two_tries = WorkerOptions(lease_seconds=30.0, max_attempts=2, retry_base=0.01, retry_cap=0.05, poll_seconds=0.02)
    assert worker(session_factory, encryptor, two_tries).run_until_idle(max_seconds=30) == EXIT_PARKED
    assert fault.fired == 2 * 3  # two tries of the step, each the client's three tries
    failed = state(session_factory, step_id)
    assert failed["status"] == "failed" and failed["attempts"] == 2
    assert "incomplete" in str(failed["error"]) and "500" in str(failed["error"])
    assert completions(session_factory) == set()
    with session_factory() as session:
        assert session.get(ProgressWatermark, link_id) is None  # nothing read, nothing advanced

    canvas.rest.clear_faults()
    with transaction(session_factory) as session:
        assert outbox.retry(session, step_id) is not None  # the retry button
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE
    assert state(session_factory, step_id)["status"] == "done"
    assert completions(session_factory) == {(person_id, PROGRAMMES[PROGRAMME].modules[0].id)}


def test_a_step_of_a_programme_the_content_lacks_is_parked_at_once(session_factory, encryptor):
    with transaction(session_factory) as session:
        step = outbox.enqueue(session, PROGRESS_SYNC, "progress:gone", {"programme_id": "gone", "full": False})
        assert step is not None
        step_id = step.id
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=10) == EXIT_PARKED
    failed = state(session_factory, step_id)
    assert failed["status"] == "failed" and "unknown programme" in str(failed["error"])


def test_the_step_waits_while_the_periodic_progress_sync_runs(session_factory, canvas, encryptor):
    setup_course(session_factory, canvas, encryptor)
    step_id = ask(session_factory)
    with transaction(session_factory) as session:
        session.add(
            PeriodicJob(
                name=PERIODIC_PROGRESS_JOB, locked_by="other", locked_until=datetime.now(UTC) + timedelta(minutes=5)
            )
        )
    calls = canvas.rest.count(SUBMISSIONS)
    w = worker(session_factory, encryptor)
    assert w.run_one()
    waiting = state(session_factory, step_id)
    assert waiting["status"] == "pending" and waiting["attempts"] == 0  # waiting does not use up a try
    assert "periodic" in str(waiting["error"])
    assert canvas.rest.count(SUBMISSIONS) == calls  # Canvas was not read beside the periodic sync

    with transaction(session_factory) as session:
        job = session.get(PeriodicJob, PERIODIC_PROGRESS_JOB)
        assert job is not None
        job.locked_by, job.locked_until = None, None
    assert w.run_until_idle(max_seconds=30) == EXIT_IDLE
    assert state(session_factory, step_id)["status"] == "done"


def test_worker_until_idle_waits_for_a_requested_sync_like_any_other_step(session_factory):
    """`kurspakke worker --until-idle` counts only steps of kinds it runs: a requested sync is one of them."""
    assert PROGRESS_SYNC in step_kinds()
    ask(session_factory)
    with session_factory() as session:
        assert outbox.pending_count(session, tuple(step_kinds())) == 1
        assert session.scalar(select(func.count(OutboxStep.id))) == 1
