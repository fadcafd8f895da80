"""Who has earned a certificate, and what remains for those who have not (the programme file's completion rules,
DESIGN.md §2: participants by kurspakke.progress.overview.ParticipantRule, mentors by the mentor rule below).

Reads a fixed number of statements for any number of people, so the nightly sweep of a whole programme costs what
one person's evaluation does in round trips."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.certificates.models import CertificateRole
from kurspakke.groups.models import GroupMentor
from kurspakke.licences.models import Seat
from kurspakke.meetings.models import Attendance, Meeting
from kurspakke.models import Organisation, Person, ProgrammeRole, ProgrammeRoleKind
from kurspakke.programmes import OSLO, Programme
from kurspakke.progress.overview import ParticipantRule, PersonProgress, people_progress

MENTOR_LED_EVERY_SESSION = "led_every_session_of_group"
MENTOR_ATTENDED = "attended_required_sessions"


@dataclass
class Standing:
    """One person in one role: what the rule asks that they have not done yet, and when they met the last of it."""

    person_id: int
    role: CertificateRole
    name: str
    organisation_id: int
    organisation: str
    missing_modules: list[str] = field(default_factory=list)  # module ids, in the file's order
    missing_sessions: list[str] = field(default_factory=list)  # session ids, in the file's order
    completed_at: datetime | None = None  # when the last requirement was met (None while something remains)
    mentors: list[str] = field(default_factory=list)  # participants: their group's mentors

    @property
    def eligible(self) -> bool:
        return not self.missing_modules and not self.missing_sessions and self.completed_at is not None

    @property
    def completed_on(self) -> date | None:
        return self.completed_at.astimezone(OSLO).date() if self.completed_at is not None else None


def _attended_at(session: Session, programme: Programme, seat_ids: list[int]) -> dict[tuple[int, str], datetime]:
    """When each seat attended each session: the meeting's start, or the record's time for a make-up."""
    found: dict[tuple[int, str], datetime] = {}
    if not seat_ids:
        return found
    for seat_id, key, starts_at, recorded_at in session.execute(
        select(Attendance.seat_id, Attendance.session_key, Meeting.starts_at, Attendance.recorded_at)
        .outerjoin(Meeting, Meeting.id == Attendance.meeting_id)
        .where(Attendance.programme_id == programme.id, Attendance.seat_id.in_(seat_ids), Attendance.present)
    ):
        when = starts_at or recorded_at
        previous = found.get((seat_id, key))
        # The first time they attended counts: a later make-up does not move the date on.
        if previous is None or when < previous:
            found[(seat_id, key)] = when
    return found


def _mentor_names(session: Session, group_ids: set[int]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = defaultdict(list)
    if not group_ids:
        return names
    for group_id, name in session.execute(
        select(GroupMentor.group_id, Person.name)
        .join(Person, Person.id == GroupMentor.person_id)
        .where(GroupMentor.group_id.in_(list(group_ids)))
        .order_by(Person.name)
    ):
        names[group_id].append(name)
    return names


def participant_standings(
    session: Session, programme: Programme, person_ids: Iterable[int] | None = None
) -> dict[int, Standing]:
    """Each person's best participant standing (a person with seats in two organisations: the more complete one)."""
    people = people_progress(session, programme, person_ids=person_ids)
    rule = ParticipantRule(programme)
    attended = _attended_at(session, programme, [p.seat_id for p in people])
    mentors = _mentor_names(session, {p.group_id for p in people if p.group_id is not None})
    best: dict[int, Standing] = {}
    for p in people:
        standing = _participant(p, rule, attended, mentors.get(p.group_id, []) if p.group_id is not None else [])
        current = best.get(p.person_id)
        if current is None or _remaining(standing) < _remaining(current):
            best[p.person_id] = standing
    return best


def _remaining(s: Standing) -> int:
    return len(s.missing_modules) + len(s.missing_sessions)


def _participant(
    p: PersonProgress,
    rule: ParticipantRule,
    attended: dict[tuple[int, str], datetime],
    mentors: list[str],
) -> Standing:
    standing = Standing(
        person_id=p.person_id,
        role=CertificateRole.PARTICIPANT,
        name=p.name,
        organisation_id=p.organisation_id,
        organisation=p.organisation,
        missing_modules=rule.missing_modules(p),
        missing_sessions=rule.missing_sessions(p),
        mentors=mentors,
    )
    if not standing.missing_modules and not standing.missing_sessions:
        moments = [p.modules[m] for m in rule.modules]
        moments += [attended[(p.seat_id, k)] for k in rule.sessions if (p.seat_id, k) in attended]
        # A rule with nothing to do (no modules, no sessions) has no completion moment: nobody earns it by default.
        standing.completed_at = max(moments) if moments else None
    return standing


def sessions_a_mentor_leads(programme: Programme) -> list[str]:
    """The required group sessions ("ledet gruppesamlingene"); a programme without group sessions (a learning
    network, whose team leaders lead their team through the run's sessions): every required session."""
    required = [s for s in programme.sessions if s.required]
    return [s.id for s in required if s.kind == "group"] or [s.id for s in required]


def mentor_standings(
    session: Session, programme: Programme, person_ids: Iterable[int] | None = None
) -> dict[int, Standing]:
    """The programme's mentors (a mentor role in an organisation) and what the mentor rule asks of them: under
    ``led_every_session_of_group`` every required session has a meeting they are named as leader of; under
    ``attended_required_sessions`` also attendance on a seat of their own counts. ``none``: no mentor standings."""
    rule = programme.completion.mentor
    if rule not in (MENTOR_LED_EVERY_SESSION, MENTOR_ATTENDED):
        return {}
    query = (
        select(ProgrammeRole.person_id, Person.name, Organisation.id, Organisation.name)
        .join(Person, Person.id == ProgrammeRole.person_id)
        .join(Organisation, Organisation.id == ProgrammeRole.organisation_id)
        .where(ProgrammeRole.programme_id == programme.id, ProgrammeRole.role == ProgrammeRoleKind.MENTOR)
        .order_by(ProgrammeRole.id)
    )
    if person_ids is not None:
        query = query.where(ProgrammeRole.person_id.in_(list(person_ids)))
    mentors: dict[int, tuple[str, int, str]] = {}
    for person_id, name, organisation_id, organisation in session.execute(query):
        mentors.setdefault(person_id, (name, organisation_id, organisation))
    if not mentors:
        return {}
    required = sessions_a_mentor_leads(programme)
    done: dict[int, dict[str, datetime]] = defaultdict(dict)

    def note(person_id: int, key: str, when: datetime) -> None:
        previous = done[person_id].get(key)
        if previous is None or when < previous:
            done[person_id][key] = when

    for leader, key, starts_at in session.execute(
        select(Attendance.led_by_person_id, Attendance.session_key, Meeting.starts_at)
        .join(Meeting, Meeting.id == Attendance.meeting_id)
        .where(Attendance.programme_id == programme.id, Attendance.led_by_person_id.in_(list(mentors)))
    ):
        if leader is not None:
            note(leader, key, starts_at)
    if rule == MENTOR_ATTENDED:
        for person_id, key, starts_at, recorded_at in session.execute(
            select(Seat.person_id, Attendance.session_key, Meeting.starts_at, Attendance.recorded_at)
            .join(Seat, Seat.id == Attendance.seat_id)
            .outerjoin(Meeting, Meeting.id == Attendance.meeting_id)
            .where(
                Attendance.programme_id == programme.id,
                Attendance.present,
                Seat.person_id.in_(list(mentors)),
                Seat.revoked_at.is_(None),
            )
        ):
            note(person_id, key, starts_at or recorded_at)
    standings: dict[int, Standing] = {}
    for person_id, (name, organisation_id, organisation) in mentors.items():
        led = done.get(person_id, {})
        standing = Standing(
            person_id=person_id,
            role=CertificateRole.MENTOR,
            name=name,
            organisation_id=organisation_id,
            organisation=organisation,
            missing_sessions=[k for k in required if k not in led],
        )
        if not standing.missing_sessions and required:
            standing.completed_at = max(led[k] for k in required)
        standings[person_id] = standing
    return standings


def standings(session: Session, programme: Programme, person_ids: Iterable[int] | None = None) -> dict[int, Standing]:
    """Each person's standing: as a participant where they hold a seat, else as a mentor. An eligible mentor
    standing wins over an unfinished participant one (a mentor who also took a seat is not held back by it)."""
    ids = list(person_ids) if person_ids is not None else None
    result = participant_standings(session, programme, ids)
    for person_id, standing in mentor_standings(session, programme, ids).items():
        current = result.get(person_id)
        if current is None or (standing.eligible and not current.eligible):
            result[person_id] = standing
    return result


__all__ = [
    "MENTOR_ATTENDED",
    "MENTOR_LED_EVERY_SESSION",
    "Standing",
    "mentor_standings",
    "participant_standings",
    "sessions_a_mentor_leads",
    "standings",
]
