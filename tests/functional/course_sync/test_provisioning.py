"""Seats carried to Canvas by the outbox worker, against the simulator's REST half over real HTTP, on SQLite and
PostgreSQL: accounts found or created, one section per organisation, enrolments limited to it, revocation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from canvas_sim.rest import CanvasRest, Enrollment, User, _sortable
from course_sync.worker import EXIT_IDLE, EXIT_PARKED
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.licences.models import CanvasSection, CanvasStatus, Seat, SeatPool
from kurspakke.licences.seating import PersonInput, assign_person, edit_person, revoke_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.models import (
    IdentityKind,
    OrderSource,
    Organisation,
    OutboxStep,
    PersonIdentity,
    StepStatus,
)
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_organisation
from tests.support.canvas_live import LiveCanvas, register, worker

PROGRAMME = load_programmes()["lindrende-behandling"]
ACTOR = "licence admin test"
CREATE_USER = "POST /api/v1/accounts/:account_id/users"
ENROL = "POST /api/v1/sections/:section_id/enrollments"
CREATE_SECTION = "POST /api/v1/courses/:course_id/sections"


def canvas_user(rest: CanvasRest, name: str, email: str, login: str | None = None) -> User:
    """An account somebody made in Canvas before the tool (people often have one already)."""
    with rest.lock:
        uid = next(rest._user_ids)
        user = rest.users[uid] = User(uid, name, name, _sortable(name), rest.now(), [email])
        rest._new_login(uid, login or email, None, None, None)
    return user


def setup_pool(
    sessions: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor, seats: int, **instance: object
) -> int:
    with transaction(sessions) as session:
        register(session, canvas, encryptor, **instance)
        org = get_or_create_organisation(session, name="Hamar kommune", orgnr="970540008")
        order = create_order(
            session, organisation=org, programme=PROGRAMME, quantity=seats, source=OrderSource.MANUAL, actor=ACTOR
        )
        confirm_order(session, order, actor=ACTOR)
        return org.id


def assign(sessions: sessionmaker[Session], org_id: int, n: int, **extra: str) -> int:
    with transaction(sessions) as session:
        org = session.get(Organisation, org_id)
        assert org is not None
        raw = PersonInput(f"Deltaker {n}", f"deltaker{n}@hamar.kommune.no", "sykehjem", **extra)
        return assign_person(session, org, PROGRAMME, raw, actor=ACTOR).id


def student_enrolments(rest: CanvasRest) -> list[Enrollment]:
    """Student enrolments outside the course's default section (where the simulator's demo people are)."""
    default = min(rest.sections)
    return [e for e in rest.enrollments.values() if e.type == "StudentEnrollment" and e.section_id != default]


def test_new_people_get_an_account_a_section_and_an_enrolment_limited_to_it(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org_id = setup_pool(session_factory, canvas, encryptor, 5)
    seat_ids = [assign(session_factory, org_id, n) for n in range(3)]

    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE

    rest = canvas.rest
    sections = [s for s in rest.sections.values() if s.name == "Hamar kommune (970540008)"]
    assert len(sections) == 1
    assert rest.count(CREATE_SECTION) == 1
    ours = [e for e in student_enrolments(rest) if e.section_id == sections[0].id]
    assert len(ours) == 3
    assert all(e.state == "active" and e.limit_privileges_to_course_section for e in ours)
    assert rest.count(CREATE_USER) == 3
    logins = {lg.unique_id for lg in rest.logins.values()}
    assert {f"deltaker{n}@hamar.kommune.no" for n in range(3)} <= logins
    # Per new person: a search, a create and an enrolment (the section once for the organisation).
    per_person = (
        rest.count("GET /api/v1/accounts/:account_id/users") + rest.count(CREATE_USER) + rest.count(ENROL)
    ) / 3
    assert per_person <= 3
    with session_factory() as session:
        seats = [session.get(Seat, i) for i in seat_ids]
        assert all(s is not None and s.canvas_status is CanvasStatus.ACTIVE for s in seats)
        identities = session.scalars(select(PersonIdentity).where(PersonIdentity.kind == IdentityKind.CANVAS_USER_ID))
        recorded = {(i.scope, i.value, i.created_by_tool, i.email) for i in identities}
        assert recorded == {(canvas.scope, s.canvas_user_id, True, s.person.email) for s in seats if s is not None}
        org = session.get(Organisation, org_id)
        assert org is not None and org.canvas_instance_id is not None
        # The welcome e-mails went out as steps of their own.
        kinds = session.execute(select(OutboxStep.kind, OutboxStep.status)).all()
        assert sorted(kinds) == sorted([("seat.sync", StepStatus.DONE)] * 3 + [("mail.welcome", StepStatus.DONE)] * 3)


def test_an_existing_account_is_matched_by_email_and_never_edited(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org_id = setup_pool(session_factory, canvas, encryptor, 2)
    existing = canvas_user(canvas.rest, "Kari Nordmann", "DELTAKER0@hamar.kommune.no", login="kari.nordmann")
    seat_id = assign(session_factory, org_id, 0)

    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE

    assert canvas.rest.count(CREATE_USER) == 0
    assert [e.user_id for e in student_enrolments(canvas.rest)] == [existing.id]
    with transaction(session_factory) as session:
        seat = session.get(Seat, seat_id)
        assert seat is not None and seat.canvas_user_id == str(existing.id)
        identity = session.scalars(select(PersonIdentity).where(PersonIdentity.value == str(existing.id))).one()
        assert identity.created_by_tool is False
        assert identity.email == "deltaker0@hamar.kommune.no"
        edit_person(session, seat, name="Kari Nordkvinne", email=seat.person.email, workplace="", actor=ACTOR)
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE
    assert canvas.rest.users[existing.id].name == "Kari Nordmann"  # a matched account is never edited
    assert canvas.rest.count("PUT /api/v1/users/:user_id") == 0


def test_a_name_correction_reaches_an_account_the_tool_created(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org_id = setup_pool(session_factory, canvas, encryptor, 2)
    seat_id = assign(session_factory, org_id, 0)
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE
    with transaction(session_factory) as session:
        seat = session.get(Seat, seat_id)
        assert seat is not None
        edit_person(session, seat, name="Deltaker Null", email=seat.person.email, workplace="", actor=ACTOR)
        user_id = int(seat.canvas_user_id or 0)
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE
    assert canvas.rest.users[user_id].name == "Deltaker Null"


def test_several_fitting_accounts_are_parked_for_a_person_and_nothing_is_created(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org_id = setup_pool(session_factory, canvas, encryptor, 2)
    canvas_user(canvas.rest, "Deltaker 0", "deltaker0@hamar.kommune.no", login="d0-a")
    canvas_user(canvas.rest, "Deltaker Null", "other@example.no", login="deltaker0@hamar.kommune.no")
    seat_id = assign(session_factory, org_id, 0)

    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_PARKED

    assert canvas.rest.count(CREATE_USER) == 0
    assert student_enrolments(canvas.rest) == []
    with session_factory() as session:
        seat = session.get(Seat, seat_id)
        assert seat is not None and seat.canvas_status is CanvasStatus.FAILED
        assert "several Canvas accounts" in (seat.canvas_error or "")
        step = session.scalars(select(OutboxStep).where(OutboxStep.kind == "seat.sync")).one()
        assert step.status is StepStatus.PARKED and step.attempts == 1


def test_revoking_before_the_person_started_concludes_and_returns_the_seat(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org_id = setup_pool(session_factory, canvas, encryptor, 2)
    seat_ids = [assign(session_factory, org_id, n) for n in range(2)]
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE
    enrolment_of = {e.user_id: e for e in student_enrolments(canvas.rest)}
    with transaction(session_factory) as session:
        started = session.get(Seat, seat_ids[1])
        assert started is not None
        canvas.rest.set_last_activity(enrolment_of[int(started.canvas_user_id or 0)].id, datetime.now(UTC))
        for seat_id in seat_ids:
            seat = session.get(Seat, seat_id)
            assert seat is not None
            revoke_person(session, seat, actor=ACTOR)
        pool = session.scalars(select(SeatPool)).one()
        assert pool.assigned == 2  # undecided until Canvas is read

    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE

    assert {e.state for e in student_enrolments(canvas.rest)} == {"completed"}
    with session_factory() as session:
        pool = session.scalars(select(SeatPool)).one()
        assert pool.assigned == 1  # the one who had started keeps the seat taken
        fresh, used = (session.get(Seat, i) for i in seat_ids)
        assert fresh is not None and fresh.returned_at is not None
        assert used is not None and used.returned_at is None and used.revoke_decided_at is not None
        assert fresh.canvas_status is CanvasStatus.CONCLUDED


def test_one_section_per_organisation_however_many_workers(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    import threading

    org_id = setup_pool(session_factory, canvas, encryptor, 20)
    for n in range(20):
        assign(session_factory, org_id, n)
    canvas.rest.set_latency(0.02)
    workers = [worker(session_factory, encryptor) for _ in range(3)]
    codes: list[int] = []
    threads = [threading.Thread(target=lambda w=w: codes.append(w.run_until_idle(max_seconds=60))) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert codes == [EXIT_IDLE] * 3
    assert canvas.rest.count(CREATE_SECTION) == 1
    assert len(student_enrolments(canvas.rest)) == 20
    assert canvas.rest.count(CREATE_USER) == 20
    with session_factory() as session:
        assert session.scalar(select(func.count(CanvasSection.id))) == 1


def test_a_section_creation_that_fails_is_tried_again_at_once_not_after_its_lease(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org_id = setup_pool(session_factory, canvas, encryptor, 2)
    assign(session_factory, org_id, 0)
    fault = canvas.rest.inject("status", endpoint=CREATE_SECTION, status=500, times=1)

    # The section's lease is 120 s: a run that kept it after the failure would not finish within this budget.
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=20) == EXIT_IDLE

    assert fault.fired == 1
    assert canvas.rest.count(CREATE_SECTION) == 2
    assert len(student_enrolments(canvas.rest)) == 1
    with session_factory() as session:
        row = session.scalars(select(CanvasSection)).one()
        assert row.section_id is not None and row.locked_by is None


@pytest.mark.parametrize("uses_seat", [False, True], ids=["free-mentor", "paid-mentor"])
def test_a_mentor_becomes_a_ta_limited_to_the_section_and_takes_a_seat_only_when_the_programme_says(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor, uses_seat: bool
) -> None:
    import dataclasses

    from kurspakke.licences.seating import appoint_mentor
    from kurspakke.models import ProgrammeRole, ProgrammeRoleKind

    programme = dataclasses.replace(PROGRAMME, mentor_uses_seat=uses_seat)
    org_id = setup_pool(session_factory, canvas, encryptor, 1)
    assign(session_factory, org_id, 0)  # the pool's one seat
    with transaction(session_factory) as session:
        org = session.get(Organisation, org_id)
        assert org is not None
        raw = PersonInput("Mona Mentor", "mona.mentor@hamar.kommune.no", "sykehjem")
        if uses_seat:
            from kurspakke.licences.services import NoFreeSeats

            with pytest.raises(NoFreeSeats):
                appoint_mentor(session, org, programme, raw, actor=ACTOR)
            confirm_order(
                session,
                create_order(
                    session, organisation=org, programme=PROGRAMME, quantity=1, source=OrderSource.MANUAL, actor=ACTOR
                ),
                actor=ACTOR,
            )
        mentor_seat = appoint_mentor(session, org, programme, raw, actor=ACTOR).id
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE

    tas = [e for e in canvas.rest.enrollments.values() if e.type == "TaEnrollment" and e.section_id != 1]
    assert len(tas) == 1 and tas[0].limit_privileges_to_course_section and tas[0].state == "active"
    assert len(student_enrolments(canvas.rest)) == 1
    with transaction(session_factory) as session:
        pool = session.scalars(select(SeatPool)).one()
        assert (pool.bought, pool.assigned) == ((2, 2) if uses_seat else (1, 1))
        roles = session.scalars(select(ProgrammeRole.role).where(ProgrammeRole.role == ProgrammeRoleKind.MENTOR))
        assert list(roles) == [ProgrammeRoleKind.MENTOR]
        seat = session.get(Seat, mentor_seat)
        assert seat is not None
        revoke_person(session, seat, actor=ACTOR)
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE
    assert canvas.rest.enrollments[tas[0].id].state == "completed"
    with session_factory() as session:
        pool = session.scalars(select(SeatPool)).one()
        assert pool.assigned == 1  # the paid mentor seat returned; a free one never counted


def test_every_enrolment_change_is_audited_by_the_worker(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    from kurspakke.models import AuditEntry

    org_id = setup_pool(session_factory, canvas, encryptor, 1)
    seat_id = assign(session_factory, org_id, 0)
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE
    with transaction(session_factory) as session:
        seat = session.get(Seat, seat_id)
        assert seat is not None
        revoke_person(session, seat, actor=ACTOR)
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE
    with session_factory() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.entity_id == str(seat_id)).order_by(AuditEntry.id)
        ).all()
        enrolment = [r for r in rows if r.action.startswith("enrolment.")]
        assert [(r.action, r.actor) for r in enrolment] == [
            ("enrolment.active", "worker"),
            ("enrolment.conclude", "worker"),
        ]
        assert enrolment[0].before["canvas_status"] == "pending" and enrolment[0].after["canvas_status"] == "active"
        assert enrolment[0].after["account_created"] is True
        assert enrolment[1].after["canvas_status"] == "concluded" and enrolment[1].after["concluded"]


def test_the_welcome_email_is_run_by_the_worker_that_enrolled_the_person_without_a_second_claim(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org_id = setup_pool(session_factory, canvas, encryptor, 1)
    assign(session_factory, org_id, 0)
    runner = worker(session_factory, encryptor)
    assert runner.run_one() is True  # the seat step, then its welcome e-mail
    with session_factory() as session:
        steps = {s.kind: s for s in session.scalars(select(OutboxStep))}
        assert steps["seat.sync"].status is StepStatus.DONE
        assert steps["mail.welcome"].status is StepStatus.DONE and steps["mail.welcome"].attempts == 1
    assert runner.run_one() is False


def test_a_conclusion_applied_but_unanswered_never_returns_a_used_seat(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    """Canvas concludes the enrolment but the answer is lost every time: the retry finds no active enrolment and
    no activity left to read, so the decision must already be made before the first conclusion."""
    org_id = setup_pool(session_factory, canvas, encryptor, 1)
    seat_id = assign(session_factory, org_id, 0)
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=30) == EXIT_IDLE
    [enrolment] = student_enrolments(canvas.rest)
    canvas.rest.set_last_activity(enrolment.id, datetime.now(UTC))
    with transaction(session_factory) as session:
        seat = session.get(Seat, seat_id)
        assert seat is not None
        revoke_person(session, seat, actor=ACTOR)
    canvas.rest.inject("drop_after", method="DELETE", times=None)
    runner = worker(session_factory, encryptor)
    assert runner.run_one() is True  # concluded in Canvas, the answer lost: tried again later
    canvas.rest.clear_faults()
    assert enrolment.state == "completed"
    assert runner.run_until_idle(max_seconds=30) == EXIT_IDLE
    with session_factory() as session:
        seat = session.get(Seat, seat_id)
        assert seat is not None and seat.returned_at is None and seat.revoke_decided_at is not None
        assert session.scalars(select(SeatPool)).one().assigned == 1


def test_until_idle_does_not_wait_for_steps_of_a_kind_no_handler_runs(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    from kurspakke.outbox.services import enqueue

    with transaction(session_factory) as session:
        enqueue(session, "badge.issue", "badge:1", {"badge_id": 1})  # a kind this release has no handler for
    assert worker(session_factory, encryptor).run_until_idle(max_seconds=5) == EXIT_IDLE
    with session_factory() as session:
        assert session.scalars(select(OutboxStep.status)).one() is StepStatus.PENDING  # left for its handler
