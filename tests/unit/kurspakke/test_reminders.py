"""Who gets which notice and when (kurspakke/reminders/services.py), the opt-out, the record that keeps anything from
being sent twice, and the texts (kurspakke/reminders/texts.py) — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kurspakke.groups import services as groups
from kurspakke.licences.models import CanvasStatus, OrderSource, Seat
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person, revoke_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.meetings import services as meetings
from kurspakke.meetings.services import Plan
from kurspakke.models import Organisation, OutboxStep, Person, ProgrammeRoleKind, StepStatus
from kurspakke.programmes import load_programmes
from kurspakke.reminders import services as reminders
from kurspakke.reminders.models import MeetingNotice, MeetingReminder, Nudge, ReminderPreference, SeatExpiryNotice
from kurspakke.reminders.texts import (
    CANCELLED,
    MOVED,
    SCHEDULED,
    MeetingFacts,
    meeting_notice_message,
    nudge_message,
    seat_expiry_message,
)
from kurspakke.services.people import get_or_create_organisation, get_or_create_person, grant_role

PROGRAMME = load_programmes()["lindrende-behandling"]
PROGRAMMES = {PROGRAMME.id: PROGRAMME}
ACTOR = "test"
SECRET = "reminder-test-secret-" * 3
NOW = datetime(2027, 1, 11, 7, 30, tzinfo=UTC)  # 08:30 in Oslo
TOMORROW_10 = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)  # 10:00 in Oslo the next day


def _org(session: Session, name: str, orgnr: str) -> Organisation:
    org = get_or_create_organisation(session, name=name, orgnr=orgnr)
    order = create_order(
        session, organisation=org, programme=PROGRAMME, quantity=20, source=OrderSource.MANUAL, actor=ACTOR
    )
    confirm_order(session, order, actor=ACTOR)
    return org


def _participant(session: Session, org: Organisation, name: str) -> Seat:
    email = f"{name.lower().replace(' ', '.')}@{org.orgnr}.no"
    return assign_person(session, org, PROGRAMME, PersonInput(name, email, "Sykehjem"), actor=ACTOR)


def _mentor(session: Session, org: Organisation, name: str) -> Person:
    return appoint_mentor(
        session, org, PROGRAMME, PersonInput(name, f"{name.lower()}@{org.orgnr}.no"), actor=ACTOR
    ).person


@pytest.fixture
def world(session: Session) -> dict[str, object]:
    """Oslo: group A (Kari, Ola; mentor Mona), group B (Per; mentor Bente). Bergen: group C (Siri; mentor Berit)."""
    oslo, bergen = _org(session, "Oslo kommune", "958935420"), _org(session, "Bergen kommune", "964338531")
    a = groups.create_group(session, oslo, PROGRAMME.id, "Gruppe A", actor=ACTOR)
    b = groups.create_group(session, oslo, PROGRAMME.id, "Gruppe B", actor=ACTOR)
    c = groups.create_group(session, bergen, PROGRAMME.id, "Gruppe C", actor=ACTOR)
    kari, ola, per = (_participant(session, oslo, n) for n in ("Kari Nordmann", "Ola Hansen", "Per Olsen"))
    siri = _participant(session, bergen, "Siri Berg")
    mona, bente, berit = (
        _mentor(session, oslo, "Mona"),
        _mentor(session, oslo, "Bente"),
        _mentor(session, bergen, "Berit"),
    )
    groups.add_members(session, a, [kari, ola], actor=ACTOR)
    groups.add_members(session, b, [per], actor=ACTOR)
    groups.add_members(session, c, [siri], actor=ACTOR)
    groups.add_mentor(session, a, mona, actor=ACTOR)
    groups.add_mentor(session, b, bente, actor=ACTOR)
    groups.add_mentor(session, c, berit, actor=ACTOR)
    session.commit()
    return dict(
        oslo=oslo,
        bergen=bergen,
        a=a,
        b=b,
        c=c,
        kari=kari,
        ola=ola,
        per=per,
        siri=siri,
        mona=mona,
        bente=bente,
        berit=berit,
    )


def _plan(starts_at: datetime = TOMORROW_10, place: str = "Møterom 2") -> Plan:
    return Plan(starts_at, 120, "physical", place=place)


def _notify_steps(session: Session) -> list[OutboxStep]:
    return list(
        session.scalars(select(OutboxStep).where(OutboxStep.kind == reminders.MEETING_NOTIFY).order_by(OutboxStep.id))
    )


def _run_notice(session: Session, step: OutboxStep, now: datetime = NOW) -> reminders.NoticePlan | None:
    """What the worker's meeting.notify does with one step (course_sync/reminder_steps.py), the step marked done."""
    plan = reminders.plan_notice(session, step.payload, now=now)
    step.status = StepStatus.DONE
    session.commit()
    return plan


def _names(recipients: list[reminders.Recipient]) -> list[str]:
    return sorted(r.name for r in recipients)


# --- the opt-out and its link ------------------------------------------------------------------------------------


def test_reminders_are_on_until_turned_off_and_keep_the_language(session: Session, world) -> None:
    kari = world["kari"].person_id
    assert reminders.reminders_on(session, kari) is True
    reminders.set_reminders(session, kari, False, locale="en")
    session.commit()
    assert reminders.settings_of(session, [kari, world["ola"].person_id]) == {
        kari: reminders.Setting(False, "en"),
        world["ola"].person_id: reminders.Setting(True, None),
    }
    reminders.set_reminders(session, kari, True, locale="xx")  # a language without a catalogue is not kept
    session.commit()
    assert session.get(ReminderPreference, kari).locale == "en"


def test_the_unsubscribe_token_names_one_person_and_refuses_forgeries() -> None:
    token = reminders.unsubscribe_token(SECRET, 42)
    assert reminders.person_of_token(SECRET, token) == 42
    assert reminders.unsubscribe_url("https://kp.no/", SECRET, 42) == f"https://kp.no/app/reminders/off/{token}"
    head, _, signature = token.rpartition(".")
    forged = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # altered signature
        reminders.unsubscribe_token("another secret of enough length!!", 42),  # another key
        head.replace(head[:2], "NDM", 1) + "." + signature,  # another person, same signature
        "",
        "x" * 500,
        "not-a-token",
    ]
    for bad in forged:
        assert reminders.person_of_token(SECRET, bad) is None, bad
    from itsdangerous import URLSafeSerializer

    other_salt = URLSafeSerializer(SECRET, salt="something-else").dumps(42)
    assert reminders.person_of_token(SECRET, other_salt) is None
    for value in (True, -1, "42", 0):
        assert reminders.person_of_token(SECRET, URLSafeSerializer(SECRET, salt="reminders-off").dumps(value)) is None


# --- recipients --------------------------------------------------------------------------------------------------


def test_a_group_meeting_concerns_its_participants_and_mentors_only(session: Session, world) -> None:
    revoke_person(session, world["ola"], actor=ACTOR)  # a revoked seat hears nothing more
    meeting = meetings.schedule(session, PROGRAMME, "samling-1", _plan(), group=world["a"], actor=ACTOR, now=NOW)
    assert _names(reminders.meeting_recipients(session, reminders.where_of(meeting))) == ["Kari Nordmann", "Mona"]


def test_an_organisation_meeting_leaves_out_groups_that_hold_the_session_themselves(session: Session, world) -> None:
    meetings.schedule(session, PROGRAMME, "intro", _plan(), group=world["b"], actor=ACTOR, now=NOW)
    org_meeting = meetings.schedule(
        session, PROGRAMME, "intro", _plan(), organisation=world["oslo"], actor=ACTOR, now=NOW
    )
    # Per's group B has its own introduction; Bergen is another organisation.
    assert _names(reminders.meeting_recipients(session, reminders.where_of(org_meeting))) == [
        "Bente",
        "Kari Nordmann",
        "Mona",
        "Ola Hansen",
    ]
    whole_run = meetings.schedule(
        session, PROGRAMME, "intro", _plan(TOMORROW_10 + timedelta(days=1)), actor=ACTOR, now=NOW
    )
    # Oslo holds its own: the whole run's introduction is Bergen's.
    assert _names(reminders.meeting_recipients(session, reminders.where_of(whole_run))) == ["Berit", "Siri Berg"]


# --- notices of scheduling ---------------------------------------------------------------------------------------


def test_scheduling_writes_one_notice_step_and_two_moves_before_the_worker_collapse_into_one(
    session: Session, world
) -> None:
    meeting = meetings.schedule(session, PROGRAMME, "samling-2", _plan(), group=world["a"], actor=ACTOR, now=NOW)
    meetings.schedule(
        session, PROGRAMME, "samling-2", _plan(TOMORROW_10 + timedelta(days=1)), group=world["a"], actor=ACTOR, now=NOW
    )
    meetings.schedule(
        session, PROGRAMME, "samling-2", _plan(TOMORROW_10 + timedelta(days=2)), group=world["a"], actor=ACTOR, now=NOW
    )
    session.commit()
    [step] = _notify_steps(session)
    assert step.subject == f"meeting-notice:{meeting.id}"
    plan = _run_notice(session, step)
    assert plan is not None and plan.change == SCHEDULED and plan.sequence == 0
    assert plan.facts.starts_at == TOMORROW_10 + timedelta(days=2)  # the latest time, once
    assert _names(plan.recipients) == ["Kari Nordmann", "Mona", "Ola Hansen"]


def test_a_move_after_the_notice_is_a_new_notice_with_a_higher_sequence_then_the_cancellation(
    session: Session, world
) -> None:
    meeting = meetings.schedule(session, PROGRAMME, "samling-2", _plan(), group=world["a"], actor=ACTOR, now=NOW)
    session.commit()
    assert _run_notice(session, _notify_steps(session)[-1]).change == SCHEDULED
    meetings.schedule(session, PROGRAMME, "samling-2", _plan(place="Rom 4"), group=world["a"], actor=ACTOR, now=NOW)
    session.commit()
    moved = _run_notice(session, _notify_steps(session)[-1])
    assert moved is not None and moved.change == MOVED and moved.sequence == 1
    assert moved.before is not None and moved.before.place == "Møterom 2" and moved.facts.place == "Rom 4"
    # The same step again (a worker that died after writing) has nothing new to say.
    again = _notify_steps(session)[-1]
    assert reminders.plan_notice(session, again.payload, now=NOW) is None
    meeting_id = meeting.id
    meetings.cancel(session, meeting, actor=ACTOR)
    session.commit()
    cancel_step = _notify_steps(session)[-1]
    assert cancel_step.payload["cancelled"] is True
    cancelled = _run_notice(session, cancel_step)
    assert cancelled is not None and cancelled.change == CANCELLED and cancelled.sequence == 2
    assert cancelled.facts.place == "Rom 4"  # what people have in their calendars
    assert _names(cancelled.recipients) == ["Kari Nordmann", "Mona", "Ola Hansen"]
    notice = session.get(MeetingNotice, meeting_id)
    assert notice.cancelled_at is not None and notice.sequence == 2


def test_nothing_is_announced_for_a_meeting_cancelled_before_its_notice_or_held_in_the_past(
    session: Session, world
) -> None:
    meeting = meetings.schedule(session, PROGRAMME, "samling-2", _plan(), group=world["a"], actor=ACTOR, now=NOW)
    meetings.cancel(session, meeting, actor=ACTOR)
    session.commit()
    first, cancel = _notify_steps(session)
    assert _run_notice(session, first) is None  # the meeting is gone
    assert _run_notice(session, cancel) is None  # and was never in anyone's calendar
    past = meetings.schedule(
        session, PROGRAMME, "samling-1", _plan(NOW - timedelta(days=3)), group=world["a"], actor=ACTOR, now=NOW
    )
    session.commit()
    assert _run_notice(session, _notify_steps(session)[-1]) is None
    assert session.get(MeetingNotice, past.id) is None


def test_a_refused_schedule_writes_no_notice_step(session: Session, world) -> None:
    session.commit()
    with pytest.raises(meetings.MeetingError):
        meetings.schedule(
            session, PROGRAMME, "samling-2", Plan(TOMORROW_10, 120, "physical"), group=world["a"], actor=ACTOR, now=NOW
        )
    session.rollback()
    assert _notify_steps(session) == []


# --- the day before ----------------------------------------------------------------------------------------------


def test_tomorrow_is_the_next_oslo_day_also_when_the_clocks_change() -> None:
    start, end = reminders.tomorrow(datetime(2027, 3, 27, 22, 30, tzinfo=UTC))  # 23:30 on Saturday in Oslo
    assert start == datetime(2027, 3, 27, 23, 0, tzinfo=UTC) and end - start == timedelta(hours=23)
    start, _ = reminders.tomorrow(datetime(2027, 1, 11, 23, 30, tzinfo=UTC))  # already 12 January in Oslo
    assert start == datetime(2027, 1, 12, 23, 0, tzinfo=UTC)


def test_day_before_reminders_respect_the_opt_out_and_are_written_once(session: Session, world) -> None:
    tomorrow = meetings.schedule(session, PROGRAMME, "samling-1", _plan(), group=world["a"], actor=ACTOR, now=NOW)
    meetings.schedule(
        session, PROGRAMME, "samling-1", _plan(TOMORROW_10 + timedelta(days=2)), group=world["b"], actor=ACTOR, now=NOW
    )
    reminders.set_reminders(session, world["ola"].person_id, False)
    session.commit()
    rows = reminders.record_meeting_reminders(session, now=NOW)
    session.commit()
    assert sorted(session.get(Person, r.person_id).name for r in rows) == ["Kari Nordmann", "Mona"]
    assert {r.meeting_id for r in rows} == {tomorrow.id}
    assert reminders.record_meeting_reminders(session, now=NOW + timedelta(hours=3)) == []  # nothing twice
    # Moved to later the same day: reminded of the new time.
    meetings.schedule(
        session, PROGRAMME, "samling-1", _plan(TOMORROW_10 + timedelta(hours=4)), group=world["a"], actor=ACTOR, now=NOW
    )
    session.commit()
    assert len(reminders.record_meeting_reminders(session, now=NOW)) == 2
    meetings.cancel(session, tomorrow, actor=ACTOR)
    session.commit()
    assert session.scalar(select(func.count()).select_from(MeetingReminder)) == 0  # they go with the meeting


# --- nudges ------------------------------------------------------------------------------------------------------


def _enrolled(session: Session, *seats: Seat, weeks_ago: int = 10) -> None:
    for seat in seats:
        seat.canvas_status = CanvasStatus.ACTIVE
        seat.assigned_at = NOW - timedelta(weeks=weeks_ago)
    session.commit()


def test_participants_behind_are_nudged_at_most_once_a_week(session: Session, world) -> None:
    kari, ola, per, siri = world["kari"], world["ola"], world["per"], world["siri"]
    _enrolled(session, kari, ola, per)
    _enrolled(session, siri, weeks_ago=1)  # on pace
    reminders.set_reminders(session, per.person_id, False)
    session.commit()
    rows = reminders.record_nudges(session, PROGRAMMES, now=NOW)
    session.commit()
    assert sorted((r.seat_id, r.modules_done, r.modules_expected) for r in rows) == [(kari.id, 0, 2), (ola.id, 0, 2)]
    assert reminders.record_nudges(session, PROGRAMMES, now=NOW + timedelta(days=6)) == []
    session.commit()
    later = reminders.record_nudges(session, PROGRAMMES, now=NOW + timedelta(days=7, hours=1))
    assert sorted(r.seat_id for r in later) == [kari.id, ola.id]


def test_someone_not_yet_in_canvas_is_not_nudged(session: Session, world) -> None:
    _enrolled(session, world["kari"])
    world["kari"].canvas_status = CanvasStatus.FAILED
    session.commit()
    assert reminders.record_nudges(session, PROGRAMMES, now=NOW) == []


def test_the_mentor_sees_nudges_of_the_last_two_weeks_for_their_group(session: Session, world) -> None:
    kari, ola, siri = world["kari"], world["ola"], world["siri"]
    for seat, days in ((kari, 3), (ola, 20), (siri, 1)):
        session.add(
            Nudge(
                seat_id=seat.id,
                person_id=seat.person_id,
                programme_id=PROGRAMME.id,
                modules_done=0,
                modules_expected=2,
                sent_at=NOW - timedelta(days=days),
            )
        )
    session.commit()
    assert reminders.recent_nudges(session, world["a"].id, now=NOW) == {kari.id: NOW - timedelta(days=3)}


# --- seats about to expire ---------------------------------------------------------------------------------------


def test_licence_administrators_hear_of_their_own_expiring_seats_at_most_once_a_week(session: Session, world) -> None:
    lise = get_or_create_person(session, name="Lise Admin", email="lise@oslo.no")
    bjorn = get_or_create_person(session, name="Bjørn Admin", email="bjorn@bergen.no")
    grant_role(
        session, lise, programme_id=PROGRAMME.id, organisation=world["oslo"], role=ProgrammeRoleKind.LICENCE_ADMIN
    )
    grant_role(
        session, bjorn, programme_id=PROGRAMME.id, organisation=world["bergen"], role=ProgrammeRoleKind.LICENCE_ADMIN
    )
    world["kari"].valid_until = NOW + timedelta(days=20)
    world["per"].valid_until = NOW + timedelta(days=29)
    world["ola"].valid_until = NOW + timedelta(days=40)  # not yet
    world["siri"].valid_until = NOW + timedelta(days=10)
    session.commit()
    notices = reminders.record_expiry_notices(session, PROGRAMMES, now=NOW)
    session.commit()
    by_admin = {n.email: n for n in notices}
    assert set(by_admin) == {"lise@oslo.no", "bjorn@bergen.no"}
    assert [name for name, _ in by_admin["lise@oslo.no"].seats] == ["Kari Nordmann", "Per Olsen"]
    assert [name for name, _ in by_admin["bjorn@bergen.no"].seats] == ["Siri Berg"]
    assert reminders.record_expiry_notices(session, PROGRAMMES, now=NOW + timedelta(days=6)) == []
    session.commit()
    assert len(reminders.record_expiry_notices(session, PROGRAMMES, now=NOW + timedelta(days=7, hours=1))) == 2
    assert session.scalar(select(func.count()).select_from(SeatExpiryNotice)) == 4


# --- texts -------------------------------------------------------------------------------------------------------

FACTS = MeetingFacts(TOMORROW_10, 120, "physical", "Møterom 2")


def test_a_notice_says_when_where_and_what_moved_in_oslo_time_to_one_person() -> None:
    message = meeting_notice_message(
        change=MOVED,
        name="Kari Nordmann",
        email="kari@oslo.no",
        programme=PROGRAMME,
        session_title="Samling 2",
        group_name="Gruppe A",
        facts=FACTS,
        before=MeetingFacts(TOMORROW_10 - timedelta(days=1), 120, "physical", "Møterom 2"),
    )
    assert message.to == "kari@oslo.no"
    assert "Samling 2" in message.subject and "12. januar 2027" in message.subject
    assert "10:00" in message.text and "12:00" in message.text and "Møterom 2" in message.text  # Oslo, not UTC
    assert "11. januar 2027" in message.text and "Gruppe A" in message.text
    assert message.text.count("@") == 0  # nobody's address in the text
    english = meeting_notice_message(
        change=CANCELLED,
        name="Kari",
        email="kari@oslo.no",
        programme=PROGRAMME,
        session_title="Samling 2",
        group_name="",
        facts=FACTS,
        locale="en",
    )
    assert "January 12, 2027" in english.subject


def test_a_nudge_names_the_mentor_not_an_address_and_links_the_opt_out() -> None:
    message = nudge_message(
        name="Kari",
        email="kari@oslo.no",
        programme=PROGRAMME,
        done=1,
        expected=2,
        mentors=["Mona"],
        unsubscribe_url="https://kp.no/app/reminders/off/abc",
    )
    assert "Mona" in message.text and "https://kp.no/app/reminders/off/abc" in message.text
    assert "@" not in message.text.replace("https://kp.no/app/reminders/off/abc", "")


def test_the_expiry_notice_lists_names_and_days_only() -> None:
    seats = [("Kari Nordmann", datetime(2027, 2, 1, 12, tzinfo=UTC)), ("Per Olsen", datetime(2027, 2, 9, tzinfo=UTC))]
    message = seat_expiry_message(to="lise@oslo.no", organisation="Oslo kommune", programme=PROGRAMME, seats=seats)
    assert "Kari Nordmann" in message.text and "01.02.2027" in message.text and "09.02.2027" in message.text
    assert "@" not in message.text
    assert message.subject.startswith("2 ")
