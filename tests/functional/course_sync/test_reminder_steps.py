"""The worker's notices and reminders through a real SMTP server (aiosmtpd): a meeting scheduled, moved and cancelled
(one e-mail per person with an .ics a strict reader accepts), the day-before reminder, the weekly nudge and the seat
expiry notice — each once, to one recipient, never naming another participant's address."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from course_sync.reminder_steps import (
    ReminderSteps,
    daily_from,
    nudge_job,
    reminder_job,
    reminder_step_kinds,
    seat_expiry_notice_job,
)
from course_sync.runtime import periodic_jobs
from course_sync.steps import step_kinds
from course_sync.worker import EXIT_IDLE, PeriodicJobSpec, StepKind, Worker
from kurspakke.db import transaction
from kurspakke.groups import services as groups
from kurspakke.licences.invitations import MAIL_SEND
from kurspakke.licences.models import CanvasStatus, OrderSource, Seat
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.mail import send_mail
from kurspakke.meetings import services as meetings
from kurspakke.meetings.models import Meeting
from kurspakke.meetings.services import Plan
from kurspakke.models import OutboxStep, Person, ProgrammeRoleKind, StepStatus
from kurspakke.outbox.services import StepRetry, enqueue
from kurspakke.programmes import load_programmes
from kurspakke.reminders.models import Nudge
from kurspakke.reminders.services import person_of_token, set_reminders
from kurspakke.services.people import get_or_create_organisation, get_or_create_person, grant_role
from tests.support import smtp
from tests.support.canvas_live import FAST
from tests.support.smtp import SmtpServer
from tests.unit.kurspakke.test_ics import parse_calendar, unescape, when

smtp_server = smtp.smtp_server  # the fixture
PROGRAMME = load_programmes()["lindrende-behandling"]
ACTOR = "test"
TOOL = "https://kurspakke.test"
SECRET = "reminder-steps-secret-" * 3
START = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)  # 10:00 in Oslo
DAY_BEFORE = datetime(2027, 1, 11, 7, 30, tzinfo=UTC)  # 08:30 in Oslo the day before
LINK = re.compile(r"https://kurspakke\.test/app/reminders/off/(\S+)")


def worker(sessions: sessionmaker[Session], server: SmtpServer | str, jobs: tuple[PeriodicJobSpec, ...] = ()) -> Worker:
    url = server if isinstance(server, str) else server.url
    send = partial(send_mail, Settings(smtp_url=url, mail_from="kurspakke@hinn.no", env="test"))
    kinds: dict[str, StepKind] = {
        MAIL_SEND: step_kinds(send)[MAIL_SEND],
        **reminder_step_kinds(send, base_url=TOOL, secret_key=SECRET),
    }
    return Worker(sessions, lambda instance: None, kinds, FAST, jobs=jobs)


@pytest.fixture
def world(session_factory: sessionmaker[Session]) -> dict[str, Any]:
    """Oslo: group A (Kari, Ola; mentor Mona), group B (Per; mentor Bente), administrator Lise. Bergen: Siri, with
    administrator Bjørn."""
    with transaction(session_factory) as s:
        ids: dict[str, Any] = {}
        orgs = {}
        for key, name, orgnr in (("oslo", "Oslo kommune", "958935420"), ("bergen", "Bergen kommune", "964338531")):
            org = get_or_create_organisation(s, name=name, orgnr=orgnr)
            order = create_order(
                s, organisation=org, programme=PROGRAMME, quantity=10, source=OrderSource.MANUAL, actor=ACTOR
            )
            confirm_order(s, order, actor=ACTOR)
            orgs[key] = org
        seats = {
            key: assign_person(s, orgs[org], PROGRAMME, PersonInput(name, email, "Sykehjem"), actor=ACTOR)
            for key, org, name, email in (
                ("kari", "oslo", "Kari Nordmann", "kari@oslo.kommune.no"),
                ("ola", "oslo", "Ola Hansen", "ola@oslo.kommune.no"),
                ("per", "oslo", "Per Olsen", "per@oslo.kommune.no"),
                ("siri", "bergen", "Siri Berg", "siri@bergen.kommune.no"),
            )
        }
        mona = appoint_mentor(
            s, orgs["oslo"], PROGRAMME, PersonInput("Mona Mentor", "mona@oslo.kommune.no"), actor=ACTOR
        )
        bente = appoint_mentor(s, orgs["oslo"], PROGRAMME, PersonInput("Bente", "bente@oslo.kommune.no"), actor=ACTOR)
        a = groups.create_group(s, orgs["oslo"], PROGRAMME.id, "Gruppe A", actor=ACTOR)
        b = groups.create_group(s, orgs["oslo"], PROGRAMME.id, "Gruppe B", actor=ACTOR)
        groups.add_members(s, a, [seats["kari"], seats["ola"]], actor=ACTOR)
        groups.add_members(s, b, [seats["per"]], actor=ACTOR)
        groups.add_mentor(s, a, mona.person, actor=ACTOR)
        groups.add_mentor(s, b, bente.person, actor=ACTOR)
        for key, name, email, org in (
            ("lise", "Lise Admin", "lise@oslo.kommune.no", "oslo"),
            ("bjorn", "Bjørn Admin", "bjorn@bergen.kommune.no", "bergen"),
        ):
            admin = get_or_create_person(s, name=name, email=email)
            grant_role(
                s, admin, programme_id=PROGRAMME.id, organisation=orgs[org], role=ProgrammeRoleKind.LICENCE_ADMIN
            )
            ids[key] = admin.id
        s.flush()
        ids.update({key: seat.id for key, seat in seats.items()})
        ids.update(mona=mona.person_id, bente=bente.person_id, a=a.id, b=b.id, oslo=orgs["oslo"].id)
        ids["people"] = {p.email: p.id for p in s.scalars(select(Person))}
    return ids


ADDRESSES = {
    "kari@oslo.kommune.no",
    "ola@oslo.kommune.no",
    "per@oslo.kommune.no",
    "siri@bergen.kommune.no",
    "mona@oslo.kommune.no",
    "bente@oslo.kommune.no",
    "lise@oslo.kommune.no",
    "bjorn@bergen.kommune.no",
}


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _calendar(message: EmailMessage) -> Any:
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == "text/calendar" and part.get_filename() == "samling-2.ics"
    return parse_calendar(part.get_payload(decode=True))


def _only_own_address(received: smtp.Received) -> None:
    """One recipient, in To only, and no other person's address anywhere in what they read."""
    [rcpt] = received.rcpt_tos
    message = received.message
    assert message["To"] == rcpt and message["Cc"] is None and message["Bcc"] is None
    readable = _text(message) + "".join(part.get_payload(decode=True).decode() for part in message.iter_attachments())
    assert {a for a in ADDRESSES if a in readable} <= {rcpt}, readable


def _schedule(sessions: sessionmaker[Session], group_id: int, starts_at: datetime, place: str = "Møterom 2") -> int:
    with transaction(sessions) as s:
        group = s.get(groups.MentorGroup, group_id)
        meeting = meetings.schedule(
            s, PROGRAMME, "samling-2", Plan(starts_at, 120, "physical", place=place), group=group, actor=ACTOR
        )
        return meeting.id


def test_scheduled_moved_and_cancelled_each_reach_the_group_once_with_a_calendar_invitation(
    session_factory: sessionmaker[Session], smtp_server: SmtpServer, world: dict[str, Any]
) -> None:
    meeting_id = _schedule(session_factory, world["a"], START)
    assert worker(session_factory, smtp_server).run_until_idle(max_seconds=30) == EXIT_IDLE
    first = smtp_server.received[:]
    assert sorted(r.rcpt_tos[0] for r in first) == [
        "kari@oslo.kommune.no",
        "mona@oslo.kommune.no",
        "ola@oslo.kommune.no",
    ]
    uid = f"meeting-{meeting_id}@kurspakke.test"
    for received in first:
        _only_own_address(received)
        assert "Samling 2" in received.message["Subject"]
        assert "10:00" in _text(received.message) and "Møterom 2" in _text(received.message)  # Oslo time
        cal = _calendar(received.message)
        [event] = cal.children
        assert cal.one("METHOD") == "REQUEST" and event.one("UID") == uid and event.one("SEQUENCE") == "0"
        assert when(event.one("DTSTART")) == START and unescape(event.one("LOCATION")) == "Møterom 2"
        assert event.one("ATTENDEE") == f"mailto:{received.rcpt_tos[0]}"

    # Kari turns reminders off: a notice of a move is a service message and still reaches her. Moved twice before
    # the worker runs: one notice each, at the latest time.
    with transaction(session_factory) as s:
        set_reminders(s, world["people"]["kari@oslo.kommune.no"], False)
    _schedule(session_factory, world["a"], START + timedelta(days=1))
    _schedule(session_factory, world["a"], START + timedelta(days=2), place="Rom 4")
    assert worker(session_factory, smtp_server).run_until_idle(max_seconds=30) == EXIT_IDLE
    moved = smtp_server.received[len(first) :]
    assert sorted(r.rcpt_tos[0] for r in moved) == [
        "kari@oslo.kommune.no",
        "mona@oslo.kommune.no",
        "ola@oslo.kommune.no",
    ]
    for received in moved:
        _only_own_address(received)
        [event] = _calendar(received.message).children
        assert event.one("UID") == uid and event.one("SEQUENCE") == "1"
        assert when(event.one("DTSTART")) == START + timedelta(days=2) and unescape(event.one("LOCATION")) == "Rom 4"
        assert "12. januar 2027" in _text(received.message)  # the time as announced before
    assert worker(session_factory, smtp_server).run_until_idle(max_seconds=5) == EXIT_IDLE
    assert len(smtp_server.received) == 6  # nothing twice

    with transaction(session_factory) as s:
        meetings.cancel(s, s.get(Meeting, meeting_id), actor=ACTOR)
    assert worker(session_factory, smtp_server).run_until_idle(max_seconds=30) == EXIT_IDLE
    cancelled = smtp_server.received[6:]
    assert len(cancelled) == 3
    for received in cancelled:
        _only_own_address(received)
        cal = _calendar(received.message)
        [event] = cal.children
        assert cal.one("METHOD") == "CANCEL" and event.one("STATUS") == "CANCELLED"
        assert event.one("UID") == uid and event.one("SEQUENCE") == "2"
        [part] = list(received.message.iter_attachments())
        assert part.get_param("method") == "CANCEL"


def test_a_notice_waits_for_a_mail_server_that_is_down_and_loses_nothing(
    session_factory: sessionmaker[Session], smtp_server: SmtpServer, world: dict[str, Any]
) -> None:
    _schedule(session_factory, world["b"], START)
    down = worker(session_factory, "smtp://127.0.0.1:9")  # nothing listens on the discard port
    for _ in range(4):
        down.run_one()
    assert smtp_server.received == []
    assert worker(session_factory, smtp_server).run_until_idle(max_seconds=30) == EXIT_IDLE
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == ["bente@oslo.kommune.no", "per@oslo.kommune.no"]


def test_the_day_before_each_person_with_reminders_on_is_reminded_once_with_a_link_to_stop(
    session_factory: sessionmaker[Session], smtp_server: SmtpServer, world: dict[str, Any]
) -> None:
    _schedule(session_factory, world["a"], START)
    with transaction(session_factory) as s:
        set_reminders(s, world["people"]["ola@oslo.kommune.no"], False)
    w = worker(
        session_factory,
        smtp_server,
        jobs=(PeriodicJobSpec("reminder", daily_from(8), partial(reminder_job, now=DAY_BEFORE)),),
    )
    assert w.run_until_idle(max_seconds=30) == EXIT_IDLE  # the scheduling notices
    notices = len(smtp_server.received)
    assert "reminder" not in w.run_jobs(DAY_BEFORE - timedelta(hours=1))  # 07:30 in Oslo: not yet
    assert w.run_jobs(DAY_BEFORE)["reminder"]["reminders"] == 2
    assert "reminder" not in worker(session_factory, smtp_server, jobs=w.jobs).run_jobs(DAY_BEFORE)  # once a day
    assert w.run_until_idle(max_seconds=30) == EXIT_IDLE
    reminded = smtp_server.received[notices:]
    assert sorted(r.rcpt_tos[0] for r in reminded) == ["kari@oslo.kommune.no", "mona@oslo.kommune.no"]
    for received in reminded:
        _only_own_address(received)
        assert "10:00" in received.message["Subject"]
        token = LINK.search(_text(received.message)).group(1)
        assert person_of_token(SECRET, token) == world["people"][received.rcpt_tos[0]]
    # The job run again (another period, the same tomorrow) finds everyone reminded already.
    assert reminder_job(_job_context(session_factory), now=DAY_BEFORE + timedelta(hours=5))["reminders"] == 0


def _job_context(sessions: sessionmaker[Session]) -> Any:
    from course_sync.provisioning import StepContext

    return StepContext(sessions, lambda instance: None, "test-worker", lambda session: True)


def _behind(sessions: sessionmaker[Session], *seat_ids: int) -> None:
    with transaction(sessions) as s:
        for seat_id in seat_ids:
            seat = s.get(Seat, seat_id)
            seat.canvas_status = CanvasStatus.ACTIVE
            seat.assigned_at = DAY_BEFORE - timedelta(weeks=10)


def test_a_participant_behind_is_nudged_once_a_week_and_not_after_turning_reminders_off(
    session_factory: sessionmaker[Session], smtp_server: SmtpServer, world: dict[str, Any]
) -> None:
    _behind(session_factory, world["kari"], world["ola"], world["per"])
    with transaction(session_factory) as s:
        set_reminders(s, world["people"]["ola@oslo.kommune.no"], False)
    report = nudge_job(_job_context(session_factory), now=DAY_BEFORE)
    assert sorted(report["nudged_seats"]) == sorted([world["kari"], world["per"]])
    # Per turns reminders off before the worker sends: nothing goes, and no nudge is shown to his mentor.
    with transaction(session_factory) as s:
        set_reminders(s, world["people"]["per@oslo.kommune.no"], False)
    assert worker(session_factory, smtp_server).run_until_idle(max_seconds=30) == EXIT_IDLE
    [received] = smtp_server.received
    assert received.rcpt_tos == ["kari@oslo.kommune.no"]
    _only_own_address(received)
    text = _text(received.message)
    assert "Mona Mentor" in text  # the mentor by name, never by address
    assert person_of_token(SECRET, LINK.search(text).group(1)) == world["people"]["kari@oslo.kommune.no"]
    with session_factory() as s:
        assert s.scalars(select(Nudge.seat_id)).all() == [world["kari"]]
    assert nudge_job(_job_context(session_factory), now=DAY_BEFORE + timedelta(days=3))["nudged_seats"] == []
    assert nudge_job(_job_context(session_factory), now=DAY_BEFORE + timedelta(days=8))["nudged_seats"] == [
        world["kari"]
    ]


def test_licence_administrators_get_the_names_of_their_own_expiring_seats_once_a_week(
    session_factory: sessionmaker[Session], smtp_server: SmtpServer, world: dict[str, Any]
) -> None:
    now = datetime.now(UTC)
    with transaction(session_factory) as s:
        for key, days in (("kari", 10), ("per", 25), ("siri", 5), ("ola", 60)):
            s.get(Seat, world[key]).valid_until = now + timedelta(days=days)
    assert len(seat_expiry_notice_job(_job_context(session_factory), now=now)["sent"]) == 2
    assert seat_expiry_notice_job(_job_context(session_factory), now=now + timedelta(days=2))["sent"] == []
    assert worker(session_factory, smtp_server).run_until_idle(max_seconds=30) == EXIT_IDLE
    by_admin = {r.rcpt_tos[0]: r for r in smtp_server.received}
    assert set(by_admin) == {"lise@oslo.kommune.no", "bjorn@bergen.kommune.no"}
    oslo = _text(by_admin["lise@oslo.kommune.no"].message)
    assert "Kari Nordmann" in oslo and "Per Olsen" in oslo and "Ola Hansen" not in oslo and "Siri" not in oslo
    assert "@" not in oslo  # names only
    assert "Siri Berg" in _text(by_admin["bjorn@bergen.kommune.no"].message)
    for received in smtp_server.received:
        _only_own_address(received)


def test_the_worker_knows_the_steps_and_runs_the_jobs_on_their_schedule() -> None:
    assert {"meeting.notify", "mail.notice", "reminder.send"} <= set(step_kinds())
    jobs = {job.name: job for job in periodic_jobs()}
    oslo = {  # UTC in winter = Oslo minus one hour
        "seat_expiry_notice": datetime(2027, 1, 11, 6, 30, tzinfo=UTC),
        "reminder": datetime(2027, 1, 11, 7, 0, tzinfo=UTC),
        "nudge": datetime(2027, 1, 11, 8, 0, tzinfo=UTC),
    }
    for name, due in oslo.items():
        assert jobs[name].period(due - timedelta(minutes=1)) is None, name
        assert jobs[name].period(due) == "2027-01-11", name


def test_a_forged_notice_step_is_parked_and_sends_nothing(
    session_factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    with transaction(session_factory) as s:
        enqueue(s, "meeting.notify", "meeting-notice:x", {"meeting_id": "1; DROP"})
        enqueue(
            s,
            "mail.notice",
            "mail:x",
            {"to": "a@b.no", "subject": "x", "text": "x", "attachments": [{"filename": "../x"}]},
        )
        enqueue(s, "reminder.send", "reminder:x", {})
    worker(session_factory, smtp_server).run_until_idle(max_seconds=30)
    assert smtp_server.received == []
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(OutboxStep).where(OutboxStep.status == StepStatus.PARKED)) == 3


def test_without_a_given_secret_the_link_is_signed_with_the_environments_secret_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """``kurspakke worker`` composes the steps without its settings object: the secret comes from the same
    environment the web app reads, and an environment that cannot start a service makes the step wait."""
    monkeypatch.setenv("KURSPAKKE_ENV", "test")
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("KURSPAKKE_INSTANCE_PATH", str(tmp_path))
    assert ReminderSteps(None)._secret() == SECRET
    monkeypatch.setenv("KURSPAKKE_ENV", "production")  # which refuses to start without SECRET_KEY
    monkeypatch.delenv("SECRET_KEY")
    with pytest.raises(StepRetry):
        ReminderSteps(None)._secret()
