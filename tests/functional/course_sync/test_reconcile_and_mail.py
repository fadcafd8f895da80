"""The worker's e-mail through a real SMTP server (aiosmtpd), nightly reconciliation with Canvas, seat expiry and the
daily digest of parked steps — each once per period however many workers run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from canvas_sim.rest import CanvasRest, User, _sortable
from config.settings import Settings
from course_sync.provisioning import client_factory
from course_sync.runtime import daily_after, hourly, periodic_jobs
from course_sync.steps import step_kinds
from course_sync.worker import EXIT_IDLE, EXIT_PARKED, Worker
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.licences.models import CanvasStatus, Seat, SeatPool
from kurspakke.licences.seating import PersonInput, assign_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.mail import send_mail
from kurspakke.models import OrderSource, Organisation, PeriodicJob, ProgrammeRoleKind
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_organisation, get_or_create_person, grant_role
from tests.support import smtp
from tests.support.canvas_live import FAST, LiveCanvas, register
from tests.support.smtp import SmtpServer

smtp_server = smtp.smtp_server  # the fixture
PROGRAMME = load_programmes()["lindrende-behandling"]
ACTOR = "licence admin test"
NIGHT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 04:00 in Oslo: reconciliation is due, the digest is not
MORNING = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)  # 08:30 in Oslo: both are due


def make_worker(sessions: sessionmaker[Session], encryptor: Encryptor, smtp: SmtpServer) -> Worker:
    settings = Settings(smtp_url=smtp.url, mail_from="kurspakke@hinn.no", env="test")
    send = partial(send_mail, settings)
    clients = client_factory(encryptor, timeout=2.0, max_tries=2, retry_base=0.01, retry_max=0.05)
    return Worker(sessions, clients, step_kinds(send), FAST, jobs=periodic_jobs())


def provisioned(sessions: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor, people: int) -> list[int]:
    with transaction(sessions) as session:
        register(session, canvas, encryptor)
        org = get_or_create_organisation(session, name="Løten kommune", orgnr="964950113")
        order = create_order(
            session, organisation=org, programme=PROGRAMME, quantity=people + 1, source=OrderSource.MANUAL, actor=ACTOR
        )
        confirm_order(session, order, actor=ACTOR)
        return [
            assign_person(
                session, org, PROGRAMME, PersonInput(f"Ansatt {n}", f"ansatt{n}@loten.kommune.no"), actor=ACTOR
            ).id
            for n in range(people)
        ]


def test_the_welcome_email_arrives_once_and_says_how_to_sign_in(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor, smtp_server: SmtpServer
) -> None:
    provisioned(session_factory, canvas, encryptor, 2)
    worker = make_worker(session_factory, encryptor, smtp_server)
    assert worker.run_until_idle(max_seconds=30) == EXIT_IDLE
    messages = smtp_server.wait_for(2)
    assert sorted(m["To"] for m in messages) == ["ansatt0@loten.kommune.no", "ansatt1@loten.kommune.no"]
    body = messages[0].get_body(preferencelist=("plain",)).get_content()
    assert PROGRAMME.title in messages[0]["Subject"]
    assert "Løten kommune" in body and f"{canvas.url}/courses/{canvas.config.course_id}" in body
    assert "passord" in body  # Canvas's own sign-in on this instance: its registration e-mail, a password
    assert worker.run_until_idle(max_seconds=5) == EXIT_IDLE
    assert len(smtp_server.messages) == 2  # never twice


def test_an_smtp_server_that_is_down_delays_the_email_and_loses_nothing(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor, smtp_server: SmtpServer
) -> None:
    provisioned(session_factory, canvas, encryptor, 1)
    down = Settings(
        smtp_url="smtp://127.0.0.1:9", mail_from="kurspakke@hinn.no", env="test"
    )  # nothing listens on the discard port
    clients = client_factory(encryptor, timeout=2.0, max_tries=2, retry_base=0.01, retry_max=0.05)
    failing = Worker(session_factory, clients, step_kinds(partial(send_mail, down)), FAST)
    for _ in range(3):
        failing.run_one()
    assert smtp_server.messages == []
    assert make_worker(session_factory, encryptor, smtp_server).run_until_idle(max_seconds=30) == EXIT_IDLE
    assert [m["To"] for m in smtp_server.wait_for(1)] == ["ansatt0@loten.kommune.no"]


def test_reconciliation_repairs_removals_reports_hand_enrolments_and_runs_once_a_night(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor, smtp_server: SmtpServer
) -> None:
    seat_ids = provisioned(session_factory, canvas, encryptor, 3)
    worker = make_worker(session_factory, encryptor, smtp_server)
    assert worker.run_until_idle(max_seconds=30) == EXIT_IDLE
    rest: CanvasRest = canvas.rest
    with session_factory() as session:
        seats = [session.get(Seat, i) for i in seat_ids]
        removed = seats[0]
        section_id = int(removed.canvas_section_id)
    # Someone deletes one enrolment by hand and enrols a colleague by hand in the tool's section.
    rest.enrollments[int(removed.canvas_enrollment_id)].state = "deleted"
    with rest.lock:
        uid = next(rest._user_ids)
        rest.users[uid] = User(uid, "Håndlagt Person", "Håndlagt", _sortable("Håndlagt Person"), rest.now(), [])
        rest._enroll(uid, rest.sections[section_id], "StudentEnrollment", "active", True)
    teacher_states = {e.id: e.state for e in rest.enrollments.values() if e.type == "TeacherEnrollment"}
    rest.set_last_activity(int(seats[1].canvas_enrollment_id), datetime.now(UTC))

    other = make_worker(session_factory, encryptor, smtp_server)
    assert list(worker.run_jobs(NIGHT)) == [
        "purge_expired_state",
        "reconcile_enrolments",
        "certificate_sweep",
        "progress_sync",
    ]
    assert "reconcile_enrolments" not in other.run_jobs(NIGHT + timedelta(hours=1))  # once per night
    with session_factory() as session:
        report = session.get(PeriodicJob, "reconcile_enrolments").last_report
    course = report["courses"][0]
    assert course["removed_by_hand_repaired"] == [removed.id]
    assert course["enrolled_by_hand_reported"] == [uid]
    assert worker.run_until_idle(max_seconds=30) == EXIT_IDLE
    assert rest.enrollments[uid_enrolment(rest, uid)].state == "active"  # reported, never touched
    assert {e.id: e.state for e in rest.enrollments.values() if e.type == "TeacherEnrollment"} == teacher_states
    active_of_removed = [
        e for e in rest.enrollments.values() if e.user_id == int(removed.canvas_user_id) and e.state == "active"
    ]
    assert len(active_of_removed) == 1  # enrolled again
    with session_factory() as session:
        seat = session.get(Seat, seat_ids[1])
        assert seat.canvas_last_activity_at is not None
        assert session.get(Seat, seat_ids[2]).canvas_last_activity_at is None  # "aldri logget inn"


def uid_enrolment(rest: CanvasRest, user_id: int) -> int:
    return next(e.id for e in rest.enrollments.values() if e.user_id == user_id)


def test_an_expired_seat_is_concluded_and_stays_taken(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor, smtp_server: SmtpServer
) -> None:
    seat_ids = provisioned(session_factory, canvas, encryptor, 2)
    worker = make_worker(session_factory, encryptor, smtp_server)
    assert worker.run_until_idle(max_seconds=30) == EXIT_IDLE
    with transaction(session_factory) as session:
        seat = session.get(Seat, seat_ids[0])
        seat.valid_until = datetime.now(UTC) - timedelta(days=1)
        admin = get_or_create_person(session, name="Lise Admin", email="lise.admin@loten.kommune.no")
        grant_role(
            session,
            admin,
            programme_id=PROGRAMME.id,
            organisation=seat.organisation,
            role=ProgrammeRoleKind.LICENCE_ADMIN,
        )
    welcomes = len(smtp_server.messages)
    worker.run_jobs(NIGHT)
    assert worker.run_until_idle(max_seconds=30) == EXIT_IDLE
    # Reported to the licence administrator.
    [report] = smtp_server.wait_for(welcomes + 1)[welcomes:]
    assert report["To"] == "lise.admin@loten.kommune.no" and "utløpt" in report["Subject"]
    assert "Ansatt 0" in report.get_body(preferencelist=("plain",)).get_content()
    with session_factory() as session:
        seat = session.get(Seat, seat_ids[0])
        assert seat.expired_at is not None and seat.returned_at is None
        assert seat.canvas_status is CanvasStatus.CONCLUDED
        assert session.get(Seat, seat_ids[1]).expired_at is None
        assert session.scalars(select(SeatPool)).one().assigned == 2
    assert canvas.rest.enrollments[int(seat.canvas_enrollment_id)].state == "completed"


def test_the_digest_lists_parked_steps_once_a_day(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor, smtp_server: SmtpServer
) -> None:
    with transaction(session_factory) as session:
        register(session, canvas, encryptor, auth_provider_id=7)  # Feide: a seat needs the person's login
        org = get_or_create_organisation(session, name="Elverum kommune", orgnr="964948798")
        confirm_order(
            session,
            create_order(
                session, organisation=org, programme=PROGRAMME, quantity=1, source=OrderSource.MANUAL, actor=ACTOR
            ),
            actor=ACTOR,
        )
        seat = assign_person(session, org, PROGRAMME, PersonInput("Uten Login", "uten@elverum.kommune.no"), actor=ACTOR)
        seat_id = seat.id
    worker = make_worker(session_factory, encryptor, smtp_server)
    assert worker.run_until_idle(max_seconds=30) == EXIT_PARKED
    with session_factory() as session:
        seat = session.get(Seat, seat_id)
        assert seat.canvas_status is CanvasStatus.FAILED and "login id" in seat.canvas_error

    assert "parked_digest" not in worker.run_jobs(NIGHT)  # not before 07:00
    assert "parked_digest" in worker.run_jobs(MORNING)
    assert "parked_digest" not in make_worker(session_factory, encryptor, smtp_server).run_jobs(MORNING)
    assert worker.run_until_idle(max_seconds=30) == EXIT_PARKED  # sends it (the seat's step stays parked)
    digest = smtp_server.wait_for(1)
    assert [m["To"] for m in digest] == [PROGRAMME.contact_email]
    assert f"seat:{seat_id}" in digest[0].get_body(preferencelist=("plain",)).get_content()


def test_periods_follow_oslo_time() -> None:
    assert hourly(datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == "2026-12-01T00"
    assert daily_after(2)(datetime(2026, 11, 30, 0, 30, tzinfo=UTC)) is None  # 01:30 in Oslo
    assert daily_after(2)(datetime(2026, 11, 30, 1, 30, tzinfo=UTC)) == "2026-11-30"
    assert daily_after(2)(datetime(2026, 6, 30, 0, 30, tzinfo=UTC)) == "2026-06-30"  # summer time: 02:30


def test_organisation_canvas_is_remembered(session_factory, canvas, encryptor, smtp_server) -> None:
    provisioned(session_factory, canvas, encryptor, 1)
    assert make_worker(session_factory, encryptor, smtp_server).run_until_idle(max_seconds=30) == EXIT_IDLE
    with session_factory() as session:
        org = session.scalars(select(Organisation).where(Organisation.orgnr == "964950113")).one()
        assert org.canvas_instance_id is not None
