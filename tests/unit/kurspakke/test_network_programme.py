"""The learning network (seeds/004) runs with no code of its own: a team registers before the deadline (an order at
0 kr), the six dated sessions are scheduled from the programme file for the whole run, the team's leader records
attendance, and the progress and export follow — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from kurspakke.groups import services as groups
from kurspakke.licences.models import OrderSource, Seat
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person
from kurspakke.licences.services import RegistrationClosed, confirm_order, create_order
from kurspakke.meetings import services as meetings
from kurspakke.meetings.models import Meeting
from kurspakke.meetings.services import Mark, MeetingError, Plan
from kurspakke.models import Organisation
from kurspakke.programmes import load_programmes
from kurspakke.progress.export import export_csv
from kurspakke.progress.overview import funnel, people_progress

NETWORK = load_programmes()["laeringsnettverk-parorende"]
OSLO = ZoneInfo("Europe/Oslo")
ACTOR = "test"
BEFORE_DEADLINE = datetime(2023, 8, 21, 21, 0, tzinfo=UTC)  # 23:00 in Oslo on the deadline day
AFTER_DEADLINE = datetime(2023, 8, 21, 22, 30, tzinfo=UTC)  # 00:30 the day after


def _register(session: Session, name: str, orgnr: str, *, now: datetime) -> Organisation:
    from kurspakke.services.people import get_or_create_organisation

    org = get_or_create_organisation(session, name=name, orgnr=orgnr)
    order = create_order(
        session,
        organisation=org,
        programme=NETWORK,
        quantity=5,
        source=OrderSource.FORM,
        actor=ACTOR,
        now=now,
        contact_name="Kari",
        contact_email="kari@example.no",
    )
    assert order.total_ore == 0  # no fee
    confirm_order(session, order, actor=ACTOR)
    return org


def _team(session: Session, org: Organisation) -> tuple[list[Seat], object]:
    seats = [
        assign_person(
            session,
            org,
            NETWORK,
            PersonInput(f"Deltaker {i} {org.orgnr}", f"d{i}@{org.orgnr}.no", "Hjemmetjeneste"),
            actor=ACTOR,
        )
        for i in range(NETWORK.registration.team_size)
    ]
    leader = appoint_mentor(
        session, org, NETWORK, PersonInput(f"Leder {org.orgnr}", f"leder@{org.orgnr}.no"), actor=ACTOR
    )
    team = groups.create_group(session, org, NETWORK.id, "Forbedringsteam", actor=ACTOR)
    groups.add_members(session, team, seats, actor=ACTOR)
    groups.add_mentor(session, team, leader.person, actor=ACTOR)
    return seats, leader.person


def _start(session_def) -> datetime:
    """The file's date; its time when the file has one, else the time the course owner chose (10:00)."""
    return datetime.combine(session_def.date, session_def.starts_at or time(10, 0)).replace(tzinfo=OSLO)


def _minutes(session_def) -> int:
    if session_def.starts_at and session_def.ends_at:
        span = datetime.combine(session_def.date, session_def.ends_at) - datetime.combine(
            session_def.date, session_def.starts_at
        )
        return int(span.total_seconds() // 60)
    return session_def.duration_minutes or 300


def test_the_network_runs_from_registration_to_attendance_with_content_only(session: Session) -> None:
    assert NETWORK.registration is not None and NETWORK.registration.binding
    bergen = _register(session, "Bergen kommune", "964338531", now=BEFORE_DEADLINE)
    askoy = _register(session, "Askøy kommune", "964338442", now=BEFORE_DEADLINE - timedelta(days=30))
    session.commit()
    with pytest.raises(RegistrationClosed):
        _register(session, "Os kommune", "974500019", now=AFTER_DEADLINE)
    session.rollback()

    team, leader = _team(session, bergen)
    other_team, other_leader = _team(session, askoy)
    # The six dated sessions, scheduled once for the whole run from the programme file.
    held = []
    for s in NETWORK.sessions:
        assert s.date is not None and s.kind == "network"
        minutes = _minutes(s)
        plan = (
            Plan(_start(s), minutes, "physical", place=s.place or "")
            if s.format == "physical"
            else Plan(_start(s), minutes, "digital", video_url="https://meet.example.no/nettverk")
        )
        held.append(meetings.schedule(session, NETWORK, s.id, plan, actor=ACTOR, now=_start(s) - timedelta(days=60)))
    session.commit()
    assert [m.organisation_id for m in held] == [None] * 6 and len({m.id for m in held}) == 6
    assert sum(1 for m in held if m.format == "physical") == 3

    # After each session, each team's leader records their own people; not the other team's.
    for meeting in held:
        after = meeting.starts_at + timedelta(hours=1)
        meetings.record_attendance(
            session, meeting, [Mark(seat, True) for seat in team], recorder=leader, actor=ACTOR, now=after
        )
        with pytest.raises(MeetingError) as refused:
            meetings.record_attendance(
                session, meeting, [Mark(team[0], False)], recorder=other_leader, actor=ACTOR, now=after
            )
        assert refused.value.key == "not_mentor_of_group"
    meetings.record_attendance(
        session,
        held[0],
        [Mark(seat, True) for seat in other_team],
        recorder=other_leader,
        actor=ACTOR,
        now=held[0].starts_at + timedelta(hours=1),
    )
    session.commit()

    people = people_progress(session, NETWORK, now=held[-1].starts_at + timedelta(days=1))
    done = {p.seat_id for p in people if p.complete}
    assert done == {s.id for s in team}
    counts = funnel(NETWORK, people)
    assert (counts.assigned, counts.started, counts.complete) == (10, 10, 5)
    rows = list(csv.reader(io.StringIO(export_csv(session, NETWORK, bergen).decode("utf-8-sig")), delimiter=";"))
    assert rows[0][5:11] == [s.id for s in NETWORK.sessions]
    assert all(row[5:11] == ["møtt"] * 6 and row[4] == "Forbedringsteam" for row in rows[1:])
    assert session.query(Meeting).count() == 6
