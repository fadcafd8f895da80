"""Scheduling sessions and recording attendance (kurspakke.meetings.services), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kurspakke.groups import services as groups
from kurspakke.licences.models import AuditEntry, OrderSource, Seat
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.meetings import services as meetings
from kurspakke.meetings.models import Attendance, Meeting
from kurspakke.meetings.services import Mark, MeetingError, Plan
from kurspakke.models import Organisation, Person
from kurspakke.outbox.models import OutboxStep
from kurspakke.programmes import Programme, load_programmes
from kurspakke.services.people import get_or_create_organisation

PROGRAMMES = load_programmes()
PROGRAMME = PROGRAMMES["lindrende-behandling"]
NETWORK = PROGRAMMES["laeringsnettverk-parorende"]
ACTOR = "mentor:test"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PAST = NOW - timedelta(days=1)
FUTURE = NOW + timedelta(days=7)
PHYSICAL = Plan(PAST, 120, "physical", place="Møterom 2, Fjellheimen sykehjem")


def _org(
    session: Session, orgnr: str = "958935420", name: str = "Oslo kommune", programme: Programme = PROGRAMME
) -> Organisation:
    org = get_or_create_organisation(session, name=name, orgnr=orgnr)
    # The network's binding registration closed in 2023: its teams registered before the deadline.
    registered = datetime(2023, 8, 1, tzinfo=UTC) if programme.registration is not None else None
    order = create_order(
        session,
        organisation=org,
        programme=programme,
        quantity=20,
        source=OrderSource.MANUAL,
        actor=ACTOR,
        now=registered,
    )
    confirm_order(session, order, actor=ACTOR)
    return org


def _participant(session: Session, org: Organisation, name: str, programme: Programme = PROGRAMME) -> Seat:
    email = f"{name.lower().replace(' ', '.')}@{org.orgnr}.no"
    return assign_person(session, org, programme, PersonInput(name, email, "Sykehjem"), actor=ACTOR)


def _mentor(session: Session, org: Organisation, name: str, programme: Programme = PROGRAMME) -> Person:
    seat = appoint_mentor(session, org, programme, PersonInput(name, f"{name.lower()}@{org.orgnr}.no"), actor=ACTOR)
    return seat.person


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _snapshot(session: Session) -> tuple[int, ...]:
    return tuple(_count(session, m) for m in (Meeting, Attendance, AuditEntry, OutboxStep))


def _refused(session: Session, key: str, call: object, *args: object, **kwargs: object) -> MeetingError:
    session.commit()
    before = _snapshot(session)
    with pytest.raises(MeetingError) as refused:
        call(*args, **kwargs)  # type: ignore[operator]
    assert refused.value.key == key
    assert _snapshot(session) == before
    session.rollback()
    assert _snapshot(session) == before
    return refused.value


@pytest.fixture
def world(session: Session) -> dict[str, object]:
    """Oslo with two groups (A: Kari and Ola, mentor Mona; B: Per, mentor Bente) and Bergen with one (mentor Berit)."""
    oslo, bergen = _org(session), _org(session, "964338531", "Bergen kommune")
    group_a = groups.create_group(session, oslo, PROGRAMME.id, "Gruppe A", actor=ACTOR)
    group_b = groups.create_group(session, oslo, PROGRAMME.id, "Gruppe B", actor=ACTOR)
    group_c = groups.create_group(session, bergen, PROGRAMME.id, "Gruppe C", actor=ACTOR)
    kari, ola, per = (_participant(session, oslo, n) for n in ("Kari Nordmann", "Ola Hansen", "Per Olsen"))
    siri = _participant(session, bergen, "Siri Berg")
    mona, bente, berit = (
        _mentor(session, oslo, "Mona"),
        _mentor(session, oslo, "Bente"),
        _mentor(session, bergen, "Berit"),
    )
    groups.add_members(session, group_a, [kari, ola], actor=ACTOR)
    groups.add_members(session, group_b, [per], actor=ACTOR)
    groups.add_members(session, group_c, [siri], actor=ACTOR)
    groups.add_mentor(session, group_a, mona, actor=ACTOR)
    groups.add_mentor(session, group_b, bente, actor=ACTOR)
    groups.add_mentor(session, group_c, berit, actor=ACTOR)
    session.commit()
    return dict(
        oslo=oslo,
        bergen=bergen,
        a=group_a,
        b=group_b,
        c=group_c,
        kari=kari,
        ola=ola,
        per=per,
        siri=siri,
        mona=mona,
        bente=bente,
        berit=berit,
    )


def _meeting_steps(session: Session) -> list[tuple[str, dict[str, object]]]:
    steps = session.scalars(select(OutboxStep).where(OutboxStep.kind == meetings.MEETING_SYNC).order_by(OutboxStep.id))
    return [(s.subject, s.payload) for s in steps]


# --- scheduling --------------------------------------------------------------------------------------------------


def test_schedule_and_reschedule_a_group_session_are_audited_and_mirrored(session: Session, world: dict) -> None:
    group = world["a"]
    meeting = meetings.schedule(session, PROGRAMME, "samling-1", PHYSICAL, group=group, actor=ACTOR, now=NOW)
    session.commit()
    assert (meeting.group_id, meeting.organisation_id, meeting.session_key) == (group.id, world["oslo"].id, "samling-1")
    assert meeting.place == "Møterom 2, Fjellheimen sykehjem" and meeting.duration_minutes == 120
    assert _meeting_steps(session) == [(f"group:{group.id}", {"meeting_id": meeting.id})]
    # The same plan again writes nothing; a new time moves the same meeting.
    meetings.schedule(session, PROGRAMME, "samling-1", PHYSICAL, group=group, actor=ACTOR, now=NOW)
    digital = Plan(FUTURE, None, "digital", video_url="https://meet.example.no/abc")
    moved = meetings.schedule(session, PROGRAMME, "samling-1", digital, group=group, actor=ACTOR, now=NOW)
    session.commit()
    assert moved.id == meeting.id and moved.starts_at == FUTURE and moved.format == "digital"
    assert moved.duration_minutes == 120  # the programme file's duration when none is given
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity_type == "meeting").order_by(AuditEntry.id)
    ).all()
    assert actions == ["meeting.schedule", "meeting.reschedule"]
    assert _count(session, Meeting) == 1


@pytest.mark.parametrize(
    ("key", "plan", "kwargs_group"),
    [
        ("session_unknown", PHYSICAL, True),
        ("meeting_duration_invalid", Plan(PAST, -30, "physical", place="Rom 1"), True),
        ("meeting_duration_invalid", Plan(PAST, 0, "physical", place="Rom 1"), True),
        ("meeting_duration_out_of_range", Plan(PAST, 60, "physical", place="Rom 1"), True),  # 90–120 min
        ("meeting_duration_out_of_range", Plan(PAST, 180, "physical", place="Rom 1"), True),
        ("meeting_place_missing", Plan(PAST, 90, "physical", place="   "), True),
        ("meeting_video_url_missing", Plan(PAST, 90, "digital"), True),
        ("meeting_video_url_invalid", Plan(PAST, 90, "digital", video_url="http://meet.example.no/x"), True),
        ("meeting_video_url_invalid", Plan(PAST, 90, "digital", video_url="javascript:alert(1)"), True),
        ("meeting_format_invalid", Plan(PAST, 90, "hybrid", place="Rom 1"), True),
        ("meeting_time_invalid", Plan(datetime(2026, 3, 1, 10, 0), 90, "physical", place="Rom 1"), True),
        ("meeting_too_far_ahead", Plan(NOW + timedelta(days=3 * 365), 90, "physical", place="Rom 1"), True),
        ("session_needs_group", PHYSICAL, False),
    ],
)
def test_bad_plans_are_refused_and_nothing_is_written(
    session: Session, world: dict, key: str, plan: Plan, kwargs_group: bool
) -> None:
    session_key = "samling-9" if key == "session_unknown" else "samling-1"
    group = world["a"] if kwargs_group else None
    _refused(session, key, meetings.schedule, session, PROGRAMME, session_key, plan, group=group, actor=ACTOR, now=NOW)


def test_network_sessions_belong_to_the_whole_run_and_keep_their_format(session: Session) -> None:
    org = _org(session, programme=NETWORK)
    group = groups.create_group(session, org, NETWORK.id, "Team Oslo", actor=ACTOR)
    physical = next(s for s in NETWORK.sessions if s.format == "physical")
    digital = next(s for s in NETWORK.sessions if s.format == "digital")
    _refused(
        session,
        "session_not_for_group",
        meetings.schedule,
        session,
        NETWORK,
        physical.id,
        Plan(PAST, 300, "physical", place="Hotellet"),
        group=group,
        actor=ACTOR,
        now=NOW,
    )
    _refused(
        session,
        "meeting_format_not_allowed",
        meetings.schedule,
        session,
        NETWORK,
        physical.id,
        Plan(PAST, 300, "digital", video_url="https://meet.example.no/n"),
        actor=ACTOR,
        now=NOW,
    )
    whole_run = meetings.schedule(
        session,
        NETWORK,
        digital.id,
        Plan(PAST, 120, "digital", video_url="https://meet.example.no/n"),
        actor=ACTOR,
        now=NOW,
    )
    assert (whole_run.group_id, whole_run.organisation_id) == (None, None)
    assert _meeting_steps(session) == [(f"meeting:{whole_run.id}", {"meeting_id": whole_run.id})]


# --- attendance --------------------------------------------------------------------------------------------------


def _held(session: Session, world: dict, group_key: str = "a", session_key: str = "samling-1") -> Meeting:
    meeting = meetings.schedule(
        session, PROGRAMME, session_key, PHYSICAL, group=world[group_key], actor=ACTOR, now=NOW - timedelta(days=3)
    )
    session.commit()
    return meeting


def test_a_mentor_records_and_corrects_attendance_audited(session: Session, world: dict) -> None:
    meeting = _held(session, world)
    rows = meetings.record_attendance(
        session,
        meeting,
        [Mark(world["kari"], True), Mark(world["ola"], False, "Syk")],
        recorder=world["mona"],
        actor=ACTOR,
        now=NOW,
    )
    session.commit()
    assert [(r.seat_id, r.present, r.note, r.led_by_person_id) for r in rows] == [
        (world["kari"].id, True, "", world["mona"].id),
        (world["ola"].id, False, "Syk", world["mona"].id),
    ]
    # Unchanged marks write nothing; a correction is audited with before and after.
    again = meetings.record_attendance(
        session, meeting, [Mark(world["kari"], True)], recorder=world["mona"], actor=ACTOR, now=NOW
    )
    assert again == []
    meetings.record_attendance(
        session,
        meeting,
        [Mark(world["ola"], True, "Kom etter 20 min")],
        recorder=world["mona"],
        actor="mentor:mona",
        now=NOW,
    )
    session.commit()
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.entity_type == "attendance").order_by(AuditEntry.id)
    ).all()
    assert [e.action for e in entries] == ["attendance.record", "attendance.record", "attendance.correct"]
    assert entries[-1].before["present"] is False and entries[-1].after["present"] is True
    assert entries[-1].actor == "mentor:mona"
    assert _count(session, Attendance) == 2


def test_attendance_for_a_session_that_has_not_started_is_refused(session: Session, world: dict) -> None:
    meeting = meetings.schedule(
        session,
        PROGRAMME,
        "samling-1",
        Plan(FUTURE, 90, "physical", place="Rom 1"),
        group=world["a"],
        actor=ACTOR,
        now=NOW,
    )
    _refused(
        session,
        "session_not_started",
        meetings.record_attendance,
        session,
        meeting,
        [Mark(world["kari"], True)],
        recorder=world["mona"],
        actor=ACTOR,
        now=NOW,
    )


def test_attendance_for_someone_outside_the_group_is_refused(session: Session, world: dict) -> None:
    meeting = _held(session, world)
    error = _refused(
        session,
        "participant_not_in_group",
        meetings.record_attendance,
        session,
        meeting,
        [Mark(world["kari"], True), Mark(world["per"], True)],
        recorder=world["mona"],
        actor=ACTOR,
        now=NOW,
    )
    assert error.params == {"seat_id": world["per"].id}
    _refused(
        session,
        "participant_not_in_group",
        meetings.record_attendance,
        session,
        meeting,
        [Mark(world["siri"], True)],
        recorder=world["mona"],
        actor=ACTOR,
        now=NOW,
    )


@pytest.mark.parametrize("mentor", ["bente", "berit"])  # another group of Oslo; another organisation
def test_a_mentor_of_another_group_or_organisation_is_refused(session: Session, world: dict, mentor: str) -> None:
    meeting = _held(session, world)
    _refused(
        session,
        "not_mentor_of_group",
        meetings.record_attendance,
        session,
        meeting,
        [Mark(world["kari"], True)],
        recorder=world[mentor],
        actor=ACTOR,
        now=NOW,
    )


def test_the_leading_mentor_must_lead_the_group(session: Session, world: dict) -> None:
    meeting = _held(session, world)
    _refused(
        session,
        "leader_not_mentor",
        meetings.record_attendance,
        session,
        meeting,
        [Mark(world["kari"], True)],
        recorder=world["mona"],
        led_by=world["bente"],
        actor=ACTOR,
        now=NOW,
    )
    groups.add_mentor(session, world["a"], world["bente"], actor=ACTOR)  # a co-mentor may lead
    rows = meetings.record_attendance(
        session,
        meeting,
        [Mark(world["kari"], True)],
        recorder=world["mona"],
        led_by=world["bente"],
        actor=ACTOR,
        now=NOW,
    )
    assert rows[0].led_by_person_id == world["bente"].id


def test_notes_are_bounded_and_plain(session: Session, world: dict) -> None:
    meeting = _held(session, world)
    _refused(
        session,
        "attendance_note_too_long",
        meetings.record_attendance,
        session,
        meeting,
        [Mark(world["kari"], False, "x" * 501)],
        recorder=world["mona"],
        actor=ACTOR,
        now=NOW,
    )
    _refused(
        session,
        "attendance_note_invalid",
        meetings.record_attendance,
        session,
        meeting,
        [Mark(world["kari"], False, "a\x00b")],
        recorder=world["mona"],
        actor=ACTOR,
        now=NOW,
    )


def test_a_moved_participant_keeps_their_attendance(session: Session, world: dict) -> None:
    meeting = _held(session, world)
    meetings.record_attendance(
        session, meeting, [Mark(world["kari"], True)], recorder=world["mona"], actor=ACTOR, now=NOW
    )
    groups.add_members(session, world["b"], [world["kari"]], actor=ACTOR)  # moved to group B
    session.commit()
    kept = session.scalars(select(Attendance).where(Attendance.seat_id == world["kari"].id)).all()
    assert [(a.session_key, a.present, a.meeting_id) for a in kept] == [("samling-1", True, meeting.id)]
    # Her old mentor no longer records for her; the meeting's group no longer has her.
    _refused(
        session,
        "participant_not_in_group",
        meetings.record_attendance,
        session,
        meeting,
        [Mark(world["kari"], False)],
        recorder=world["mona"],
        actor=ACTOR,
        now=NOW,
    )


def test_a_makeup_counts_and_only_the_participants_mentor_records_it(session: Session, world: dict) -> None:
    _refused(
        session,
        "not_mentor_of_group",
        meetings.record_makeup,
        session,
        PROGRAMME,
        world["per"],
        "samling-2",
        recorder=world["mona"],
        note="Var med gruppe A",
        actor=ACTOR,
    )
    _refused(
        session,
        "attendance_note_missing",
        meetings.record_makeup,
        session,
        PROGRAMME,
        world["per"],
        "samling-2",
        recorder=world["bente"],
        note="  ",
        actor=ACTOR,
    )
    _refused(
        session,
        "session_unknown",
        meetings.record_makeup,
        session,
        PROGRAMME,
        world["per"],
        "samling-7",
        recorder=world["bente"],
        note="x",
        actor=ACTOR,
    )
    row = meetings.record_makeup(
        session,
        PROGRAMME,
        world["per"],
        "samling-2",
        recorder=world["bente"],
        note="Var med gruppe A 12.3.",
        actor=ACTOR,
    )
    again = meetings.record_makeup(
        session,
        PROGRAMME,
        world["per"],
        "samling-2",
        recorder=world["bente"],
        note="Var med gruppe A 13.3.",
        actor=ACTOR,
    )
    session.commit()
    assert row.id == again.id and (again.present, again.makeup, again.meeting_id) == (True, True, None)
    assert again.note == "Var med gruppe A 13.3."


def test_a_group_with_held_meetings_cannot_be_deleted_but_planned_ones_go_with_it(
    session: Session, world: dict
) -> None:
    oslo = world["oslo"]
    empty = groups.create_group(session, oslo, PROGRAMME.id, "Gruppe D", actor=ACTOR)
    meetings.schedule(session, PROGRAMME, "samling-1", PHYSICAL, group=empty, actor=ACTOR, now=NOW)
    session.commit()
    groups.delete_group(session, empty, actor=ACTOR)
    session.commit()
    assert session.scalar(select(func.count()).select_from(Meeting).where(Meeting.group_id == empty.id)) == 0
    meeting = _held(session, world, "b")
    meetings.record_attendance(
        session, meeting, [Mark(world["per"], True)], recorder=world["bente"], actor=ACTOR, now=NOW
    )
    groups.remove_member(session, world["b"], world["per"], actor=ACTOR)
    session.commit()
    with pytest.raises(groups.GroupError) as refused:
        groups.delete_group(session, world["b"], actor=ACTOR)
    assert refused.value.key == "group_has_attendance"
    session.rollback()


def test_a_cancelled_meeting_takes_its_event_along_unless_attendance_is_recorded(session: Session, world: dict) -> None:
    meeting = _held(session, world)
    meeting.canvas_event_id, meeting.canvas_context = "77", "group_5"
    session.commit()
    meeting_id = meeting.id
    meetings.cancel(session, meeting, actor=ACTOR)
    session.commit()
    assert session.get(Meeting, meeting_id) is None
    assert _meeting_steps(session)[-1][1] == {
        "meeting_id": meeting_id,
        "canvas_event_id": "77",
        "canvas_context": "group_5",
        "group_id": world["a"].id,
        "organisation_id": world["oslo"].id,
        "programme_id": PROGRAMME.id,
    }
    held = _held(session, world)
    meetings.record_attendance(session, held, [Mark(world["kari"], True)], recorder=world["mona"], actor=ACTOR, now=NOW)
    _refused(session, "meeting_has_attendance", meetings.cancel, session, held, actor=ACTOR)
    _refused(
        session,
        "meeting_has_attendance",
        meetings.schedule,
        session,
        PROGRAMME,
        "samling-1",
        Plan(FUTURE, 90, "physical", place="Rom 1"),
        group=world["a"],
        actor=ACTOR,
        now=NOW,
    )
