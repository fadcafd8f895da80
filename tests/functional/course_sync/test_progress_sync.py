"""Quiz progress read from the Canvas simulator over real HTTP (course_sync/progress_sync.py), on SQLite and
PostgreSQL: bulk reads, incremental reads from the watermark, faults, unknown users, regrades."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from canvas_sim.rest import CanvasRest, User, _sortable
from course_sync.canvas import CanvasClient, CanvasSubmission, CanvasUnavailable
from course_sync.progress_sync import OVERLAP, progress_job, sync_progress, ten_minute_slot
from course_sync.provisioning import StepContext, client_factory
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.models import AuditEntry, CourseLink, IdentityKind, Person, PersonIdentity
from kurspakke.programmes import load_programmes
from kurspakke.progress.models import ModuleCompletion, ProgressWatermark, QuizMapping
from tests.support.canvas_live import LiveCanvas, register

PROGRAMMES = load_programmes()
PROGRAMME_ID = "lindrende-behandling"
SUBMISSIONS = "GET /api/v1/courses/:course_id/students/submissions"


def students(rest: CanvasRest, n: int) -> list[int]:
    """n Canvas users with a student enrolment in the course."""
    ids = []
    with rest.lock:
        section = rest.sections[min(rest.sections)]
        for i in range(n):
            uid = next(rest._user_ids)
            name = f"Student {i}"
            rest.users[uid] = User(uid, name, name, _sortable(name), rest.now(), [f"s{i}@example.no"])
            rest._new_login(uid, f"s{i}@example.no", None, None, None)
            rest._enroll(uid, section, "StudentEnrollment", "active", False)
            ids.append(uid)
    return ids


def known(session: Session, canvas: LiveCanvas, user_ids: list[int]) -> dict[int, int]:
    """People the tool provisioned: their Canvas user ids recorded in the simulator's scope."""
    people = {}
    for uid in user_ids:
        p = Person(name=f"Person {uid}", email=f"p{uid}@example.no")
        p.identities.append(PersonIdentity(kind=IdentityKind.CANVAS_USER_ID, scope=canvas.scope, value=str(uid)))
        session.add(p)
        session.flush()
        people[uid] = p.id
    return people


def setup_course(
    sessions: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor, quizzes: int = 2
) -> tuple[int, list[int]]:
    """The course linked and registered, ``quizzes`` Classic Quizzes mapped to the first modules."""
    assignment_ids = [canvas.rest.add_assignment(f"Quiz {i + 1}").id for i in range(quizzes)]
    canvas.rest.add_assignment("Refleksjonsnotat", kind="plain")
    with transaction(sessions) as session:
        register(session, canvas, encryptor)
        link = session.scalars(select(CourseLink)).one()
        for module, aid in zip(PROGRAMMES[PROGRAMME_ID].modules, assignment_ids, strict=False):
            session.add(QuizMapping(course_link_id=link.id, module_id=module.id, assignment_id=str(aid)))
        return link.id, assignment_ids


def clients(encryptor: Encryptor):  # type: ignore[no-untyped-def]
    return client_factory(encryptor, timeout=5.0, max_tries=3, retry_base=0.01, retry_max=0.05)


def sync(sessions: sessionmaker[Session], encryptor: Encryptor, **kw):  # type: ignore[no-untyped-def]
    return sync_progress(sessions, clients(encryptor), PROGRAMME_ID, programmes=PROGRAMMES, **kw)


def completions(sessions: sessionmaker[Session]) -> set[tuple[int, str]]:
    with sessions() as session:
        return set(session.execute(select(ModuleCompletion.person_id, ModuleCompletion.module_id)).tuples())


def watermark(sessions: sessionmaker[Session], link_id: int) -> ProgressWatermark | None:
    with sessions() as session:
        return session.get(ProgressWatermark, link_id)


def test_a_full_sync_reads_in_pages_not_per_participant(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    rest = canvas.rest
    link_id, (q1, q2) = setup_course(session_factory, canvas, encryptor)
    uids = students(rest, 150)
    with transaction(session_factory) as session:
        people = known(session, canvas, uids)
    t = datetime.now(UTC) - timedelta(hours=1)
    for uid in uids[:40]:
        rest.record_submission(q1, uid, submitted_at=t, score=5.0)
    rest.record_submission(q2, uids[0], submitted_at=t)
    rest.record_submission(q2, uids[1], submitted_at=None, excused=True)  # excused, nothing handed in

    before = datetime.now(UTC)
    report = sync(session_factory, encryptor, full=True)

    assert report.ok
    course = report.courses[0]
    assert course.mode == "full" and course.counts["completed"] == 41
    every_student = len(rest.student_ids())  # the simulator's demo students too, unknown to the tool
    assert every_student > 150
    calls = rest.count(SUBMISSIONS)
    assert calls == math.ceil(every_student * 2 / 100)
    assert calls < every_student / 10
    assert completions(session_factory) == {(people[u], "emne-1") for u in uids[:40]} | {(people[uids[0]], "emne-2")}
    mark = watermark(session_factory, link_id)
    assert mark is not None and mark.submitted_since is not None and mark.graded_since is not None
    assert before <= mark.submitted_since <= datetime.now(UTC) and mark.graded_since == mark.submitted_since
    assert mark.last_full_at == mark.submitted_since


def test_incremental_sync_with_nothing_new_is_two_calls_and_picks_up_what_lands_between(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    rest = canvas.rest
    link_id, (q1, _) = setup_course(session_factory, canvas, encryptor)
    uids = students(rest, 3)
    with transaction(session_factory) as session:
        people = known(session, canvas, uids)
    assert sync(session_factory, encryptor).courses[0].mode == "full"  # no watermark yet
    first = watermark(session_factory, link_id)
    assert first is not None and first.submitted_since is not None

    calls = rest.count(SUBMISSIONS)
    report = sync(session_factory, encryptor)
    assert report.ok and report.courses[0].mode == "incremental"
    assert rest.count(SUBMISSIONS) - calls == 2
    assert completions(session_factory) == set()

    rest.record_submission(q1, uids[2], submitted_at=datetime.now(UTC))
    report = sync(session_factory, encryptor)
    assert report.courses[0].counts["completed"] == 1
    assert completions(session_factory) == {(people[uids[2]], "emne-1")}
    later = watermark(session_factory, link_id)
    assert later is not None and later.submitted_since is not None and later.submitted_since > first.submitted_since
    assert later.last_full_at == first.submitted_since


def test_a_submission_stamped_just_before_the_watermark_is_still_read(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    """Canvas may stamp submitted_at before our last sync started yet show it only afterwards: the overlap."""
    rest = canvas.rest
    link_id, (q1, _) = setup_course(session_factory, canvas, encryptor)
    uids = students(rest, 1)
    with transaction(session_factory) as session:
        people = known(session, canvas, uids)
    sync(session_factory, encryptor)
    mark = watermark(session_factory, link_id)
    assert mark is not None and mark.submitted_since is not None
    rest.record_submission(q1, uids[0], submitted_at=mark.submitted_since - OVERLAP / 2)
    assert sync(session_factory, encryptor).courses[0].mode == "incremental"
    assert completions(session_factory) == {(people[uids[0]], "emne-1")}


def test_the_watermark_stays_when_canvas_fails(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    rest = canvas.rest
    link_id, (q1, _) = setup_course(session_factory, canvas, encryptor)
    uids = students(rest, 2)
    with transaction(session_factory) as session:
        people = known(session, canvas, uids)
    sync(session_factory, encryptor)
    mark = watermark(session_factory, link_id)
    assert mark is not None

    rest.record_submission(q1, uids[0], submitted_at=datetime.now(UTC))
    fault = rest.inject("status", status=500, times=None, endpoint=SUBMISSIONS)
    report = sync(session_factory, encryptor)
    assert not report.ok and report.courses[0].error is not None and "500" in report.courses[0].error
    assert fault.fired == 3  # the client's tries
    after = watermark(session_factory, link_id)
    assert after is not None and after.submitted_since == mark.submitted_since
    assert completions(session_factory) == set()

    # The first call series answers, the second (graded_since) does not: nothing applied, the watermark stays.
    rest.clear_faults()
    base = clients(encryptor)

    class SecondSeriesFails:
        def __init__(self, client: CanvasClient) -> None:
            self.client = client

        def submissions(self, course_id: str, **kw: Any) -> list[CanvasSubmission]:
            if kw.get("graded_since") is not None:
                raise CanvasUnavailable("Canvas answered 500 to list submissions", status=500)
            return self.client.submissions(course_id, **kw)

    calls = rest.count(SUBMISSIONS)
    report = sync_progress(
        session_factory,
        lambda i: SecondSeriesFails(base(i)),
        PROGRAMME_ID,
        programmes=PROGRAMMES,  # type: ignore[arg-type,return-value]
    )
    assert not report.ok and rest.count(SUBMISSIONS) == calls + 1
    assert watermark(session_factory, link_id).submitted_since == mark.submitted_since  # type: ignore[union-attr]
    assert completions(session_factory) == set()

    rest.clear_faults()
    assert sync(session_factory, encryptor).ok
    assert completions(session_factory) == {(people[uids[0]], "emne-1")}


def test_submissions_of_unknown_users_are_ignored_and_not_stored(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    rest = canvas.rest
    _, (q1, _) = setup_course(session_factory, canvas, encryptor)
    mine, strangers = students(rest, 1), students(rest, 2)
    with transaction(session_factory) as session:
        people = known(session, canvas, mine)
        persons = session.scalar(select(func.count()).select_from(Person))
    when = datetime.now(UTC)
    for uid in mine + strangers:
        rest.record_submission(q1, uid, submitted_at=when)
    report = sync(session_factory, encryptor, full=True)
    assert report.courses[0].counts["unknown_users"] >= 2 * 2  # two quizzes each, and the demo students
    assert completions(session_factory) == {(people[mine[0]], "emne-1")}
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == persons
        assert session.scalar(select(func.count()).select_from(ModuleCompletion)) == 1


def test_a_regrade_below_the_share_is_read_incrementally_and_reverses_the_completion(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    rest = canvas.rest
    programme = PROGRAMMES[PROGRAMME_ID]
    strict = replace(programme, modules=(replace(programme.modules[0], min_score_share=0.8), *programme.modules[1:]))
    link_id, (q1, _) = setup_course(session_factory, canvas, encryptor)
    uids = students(rest, 1)
    with transaction(session_factory) as session:
        people = known(session, canvas, uids)
    handed_in = datetime.now(UTC) - timedelta(days=2)
    rest.record_submission(q1, uids[0], submitted_at=handed_in, score=9.0, graded_at=handed_in)
    with transaction(session_factory) as session:  # the quiz's points as mapping recorded them
        session.scalars(select(QuizMapping).where(QuizMapping.module_id == "emne-1")).one().points_possible = 10.0
    report = sync_progress(session_factory, clients(encryptor), PROGRAMME_ID, programmes={PROGRAMME_ID: strict})
    assert report.courses[0].counts["completed"] == 1

    rest.record_submission(q1, uids[0], submitted_at=handed_in, score=6.0, graded_at=datetime.now(UTC))
    report = sync_progress(session_factory, clients(encryptor), PROGRAMME_ID, programmes={PROGRAMME_ID: strict})
    assert report.courses[0].mode == "incremental" and report.courses[0].counts["reversed"] == 1
    assert completions(session_factory) == set()
    with session_factory() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "module_completion.reversed")).one()
        assert entry.before is not None and entry.before["person_id"] == people[uids[0]]
    assert watermark(session_factory, link_id) is not None


def test_a_course_without_mapped_quizzes_is_skipped_without_a_call(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    with transaction(session_factory) as session:
        register(session, canvas, encryptor)
    report = sync(session_factory, encryptor)
    assert report.ok and report.courses[0].mode == "skipped"
    assert canvas.rest.count(SUBMISSIONS) == 0


def test_the_periodic_job_syncs_every_programme_each_ten_minute_slot(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    setup_course(session_factory, canvas, encryptor)
    assert ten_minute_slot(datetime(2026, 11, 30, 0, 49, 59, tzinfo=UTC)) == "2026-11-30T00:40Z"
    assert ten_minute_slot(datetime(2026, 11, 30, 1, 50, tzinfo=UTC)) == "2026-11-30T01:50Z"
    ctx = StepContext(session_factory, clients(encryptor), "test-worker", lambda session: True)
    report = progress_job(ctx)
    by_id = {r["programme_id"]: r for r in report["programmes"]}
    assert by_id[PROGRAMME_ID]["ok"] and by_id[PROGRAMME_ID]["courses"][0]["mode"] == "full"
    assert canvas.rest.count(SUBMISSIONS) == 1


@pytest.mark.parametrize("full", [True, False])
def test_an_unlinked_programme_syncs_nothing(
    session_factory: sessionmaker[Session], encryptor: Encryptor, full: bool
) -> None:
    report = sync(session_factory, encryptor, full=full)
    assert report.ok and report.courses == []
