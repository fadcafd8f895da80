"""Progress as the pages and the export show it: per participant seat, the modules done, the sessions attended, the
group, whether the completion rule holds and whether they are behind the programme's pacing.

Every function reads with a fixed number of statements whatever the number of participants (one per table:
seats with their people and groups, module completions, attendance, meetings), so a page of 2,000 participants costs
what a page of 10 does in round trips (tests/unit/kurspakke/test_progress_overview.py counts them)."""

from __future__ import annotations

import math
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.groups.planning import mixed
from kurspakke.licences.models import Seat, SeatKind
from kurspakke.meetings.models import Attendance, Meeting
from kurspakke.models import Organisation, Person, utcnow
from kurspakke.programmes import PARTICIPANT_RULES_WITH_QUIZZES, PARTICIPANT_RULES_WITH_SESSIONS, Programme
from kurspakke.progress.models import ModuleCompletion

PRESENT = "present"
ABSENT = "absent"
MAKEUP = "makeup"
DAYS_PER_WEEK = 7
# Norwegian collation puts æ, ø, å after z, in that order; these three characters follow z in ASCII. ä and ö sort
# as æ and ø, as in Norwegian dictionaries.
_NORWEGIAN_LETTERS = str.maketrans({"æ": "{", "ä": "{", "ø": "|", "ö": "|", "å": "}"})


def norwegian_key(text: str) -> str:
    """A sort key for Norwegian collation without ICU: case-insensitive, æ ø å after z, other accents ignored
    (é sorts as e)."""
    mapped = text.casefold().translate(_NORWEGIAN_LETTERS)
    if mapped.isascii():  # most names, once æ ø å are mapped: nothing to strip
        return mapped
    return "".join(c for c in unicodedata.normalize("NFKD", mapped) if not unicodedata.combining(c))


@dataclass
class PersonProgress:
    """One participant seat and what its holder has done in the programme."""

    seat_id: int
    person_id: int
    organisation_id: int
    organisation: str
    name: str
    email: str
    workplace: str
    assigned_at: datetime
    group_id: int | None
    group: str
    modules: dict[str, datetime] = field(default_factory=dict)  # module id → when the completing quiz was handed in
    sessions: dict[str, str] = field(default_factory=dict)  # session key → PRESENT, MAKEUP or ABSENT
    notes: dict[str, str] = field(default_factory=dict)  # session key → the mentor's note
    complete: bool = False
    behind: bool = False
    expected_modules: int = 0

    @property
    def started(self) -> bool:
        return bool(self.modules) or any(state in (PRESENT, MAKEUP) for state in self.sessions.values())

    def attended(self, key: str) -> bool:
        return self.sessions.get(key) in (PRESENT, MAKEUP)


def _seat_filter(programme: Programme, organisation_ids: Iterable[int] | None) -> list[ColumnElement[bool]]:
    held = [
        Seat.programme_id == programme.id,
        Seat.kind == SeatKind.PARTICIPANT,
        Seat.revoked_at.is_(None),
    ]
    if organisation_ids is not None:
        held.append(Seat.organisation_id.in_(list(organisation_ids)))
    return held


def people_progress(
    session: Session,
    programme: Programme,
    *,
    organisation_ids: Iterable[int] | None = None,
    group_id: int | None = None,
    person_id: int | None = None,
    person_ids: Iterable[int] | None = None,
    now: datetime | None = None,
) -> list[PersonProgress]:
    """The programme's unrevoked participant seats (of the given organisations, of one group, or of some people),
    ordered by organisation, then name (Norwegian collation). At most five statements."""
    now = now or utcnow()
    held = _seat_filter(programme, organisation_ids)
    if person_id is not None:
        held.append(Seat.person_id == person_id)
    if person_ids is not None:
        held.append(Seat.person_id.in_(list(person_ids)))
    query = (
        select(
            Seat.id,
            Seat.person_id,
            Seat.organisation_id,
            Organisation.name,
            Person.name,
            Person.email,
            Seat.workplace,
            Seat.assigned_at,
            MentorGroup.id,
            MentorGroup.name,
        )
        .join(Person, Person.id == Seat.person_id)
        .join(Organisation, Organisation.id == Seat.organisation_id)
        .outerjoin(GroupMember, GroupMember.seat_id == Seat.id)
        .outerjoin(MentorGroup, MentorGroup.id == GroupMember.group_id)
        .where(*held)
    )
    seat_ids = select(Seat.id).where(*held)
    if group_id is not None:
        query = query.where(GroupMember.group_id == group_id)
        seat_ids = seat_ids.join(GroupMember, GroupMember.seat_id == Seat.id).where(GroupMember.group_id == group_id)
    people = [
        PersonProgress(
            seat_id=row[0],
            person_id=row[1],
            organisation_id=row[2],
            organisation=row[3],
            name=row[4],
            email=row[5],
            workplace=row[6],
            assigned_at=row[7],
            group_id=row[8],
            group=row[9] or "",
        )
        for row in session.execute(query)
    ]
    if not people:
        return []
    by_person: dict[int, list[PersonProgress]] = defaultdict(list)
    by_seat = {p.seat_id: p for p in people}
    for p in people:
        by_person[p.person_id].append(p)
    seat_people = select(Seat.person_id).where(Seat.id.in_(seat_ids))
    for person_id, module_id, completed_at in session.execute(
        select(ModuleCompletion.person_id, ModuleCompletion.module_id, ModuleCompletion.completed_at).where(
            ModuleCompletion.programme_id == programme.id, ModuleCompletion.person_id.in_(seat_people)
        )
    ):
        for p in by_person.get(person_id, ()):
            p.modules[module_id] = completed_at
    for seat_id, key, present, makeup, note in session.execute(
        select(
            Attendance.seat_id, Attendance.session_key, Attendance.present, Attendance.makeup, Attendance.note
        ).where(Attendance.programme_id == programme.id, Attendance.seat_id.in_(seat_ids))
    ):
        p = by_seat[seat_id]
        state = (MAKEUP if makeup else PRESENT) if present else ABSENT
        # Attended anywhere beats absent elsewhere: one absence never blocks for good.
        if p.sessions.get(key) not in (PRESENT, MAKEUP) or state == PRESENT:
            p.sessions[key] = state
            if note:
                p.notes[key] = note
    starts = _pacing_starts(session, programme, {p.group_id for p in people if p.group_id is not None})
    judge = _Judge(programme, now)
    for p in people:
        judge(p, starts.get(p.group_id) if p.group_id is not None else None)
    people.sort(key=lambda p: (norwegian_key(p.organisation), norwegian_key(p.name), p.email, p.seat_id))
    return people


def _pacing_starts(session: Session, programme: Programme, group_ids: set[int]) -> dict[int, datetime]:
    """Each group's introduction meeting start, where it has one (DESIGN.md §2: pacing counts from it)."""
    intro_keys = [s.id for s in programme.sessions if s.kind == "introduction"]
    if not intro_keys or not group_ids:
        return {}
    return {
        group_id: starts_at
        for group_id, starts_at in session.execute(
            select(Meeting.group_id, Meeting.starts_at).where(
                Meeting.programme_id == programme.id,
                Meeting.session_key.in_(intro_keys),
                Meeting.group_id.in_(group_ids),
            )
        )
        if group_id is not None
    }


class ParticipantRule:
    """The programme file's completion rule for participants (DESIGN.md §2), the one place it is read: the pages'
    "fullført", the certificate's eligibility and "what remains" all come from here."""

    def __init__(self, programme: Programme) -> None:
        rule = programme.completion.participant
        self.modules = list(programme.completion.modules) if rule in PARTICIPANT_RULES_WITH_QUIZZES else []
        self.sessions = (
            [s.id for s in programme.sessions if s.required] if rule in PARTICIPANT_RULES_WITH_SESSIONS else []
        )

    def missing_modules(self, p: PersonProgress) -> list[str]:
        return [m for m in self.modules if m not in p.modules]

    def missing_sessions(self, p: PersonProgress) -> list[str]:
        return [k for k in self.sessions if not p.attended(k)]

    def complete(self, p: PersonProgress) -> bool:
        return not self.missing_modules(p) and not self.missing_sessions(p)


class _Judge:
    """Whether a participant has completed the programme and whether they are behind its pacing (the programme's
    rules read once per page, not once per person)."""

    def __init__(self, programme: Programme, now: datetime) -> None:
        self.modules = [m.id for m in programme.modules]
        self.rule = ParticipantRule(programme)
        self.weeks = programme.pacing.weeks_per_module_max
        self.now = now

    def __call__(self, p: PersonProgress, intro: datetime | None) -> None:
        p.complete = self.rule.complete(p)
        if self.weeks <= 0 or not self.modules or p.complete:
            return
        start = intro if intro is not None and intro <= self.now else p.assigned_at
        elapsed_weeks = (self.now - start).total_seconds() / (DAYS_PER_WEEK * 86400)
        p.expected_modules = min(len(self.modules), max(0, math.floor(elapsed_weeks / self.weeks)))
        p.behind = len(p.modules) < p.expected_modules


# --- aggregates the overviews show ---------------------------------------------------------------------------------


@dataclass
class Funnel:
    """Assigned → started → each module → complete (what the licence administrator's chart shows)."""

    assigned: int
    started: int
    modules: list[tuple[str, str, int]]  # (module id, title, people who completed it)
    complete: int
    behind: int

    def steps(self) -> list[tuple[str, int]]:
        return (
            [("assigned", self.assigned), ("started", self.started)]
            + [(module_id, count) for module_id, _, count in self.modules]
            + [("complete", self.complete)]
        )


def funnel(programme: Programme, people: list[PersonProgress]) -> Funnel:
    return Funnel(
        assigned=len(people),
        started=sum(1 for p in people if p.started),
        modules=[(m.id, m.title, sum(1 for p in people if m.id in p.modules)) for m in programme.modules],
        complete=sum(1 for p in people if p.complete),
        behind=sum(1 for p in people if p.behind),
    )


@dataclass
class GroupSummary:
    id: int
    name: str
    organisation_id: int
    mentors: list[str]
    members: int
    mixed: bool = False


def group_summaries(session: Session, programme: Programme, organisation_ids: Iterable[int]) -> list[GroupSummary]:
    """The organisations' groups with their mentors' names and member counts. Three statements."""
    ids = list(organisation_ids)
    groups = {
        group_id: GroupSummary(group_id, name, organisation_id, [], 0)
        for group_id, name, organisation_id in session.execute(
            select(MentorGroup.id, MentorGroup.name, MentorGroup.organisation_id).where(
                MentorGroup.programme_id == programme.id, MentorGroup.organisation_id.in_(ids)
            )
        )
    }
    if not groups:
        return []
    for group_id, name in session.execute(
        select(GroupMentor.group_id, Person.name)
        .join(Person, Person.id == GroupMentor.person_id)
        .where(GroupMentor.group_id.in_(list(groups)))
        .order_by(Person.name)
    ):
        groups[group_id].mentors.append(name)
    workplaces: dict[int, list[str]] = defaultdict(list)
    for group_id, workplace in session.execute(
        select(GroupMember.group_id, Seat.workplace)
        .join(Seat, Seat.id == GroupMember.seat_id)
        .where(GroupMember.group_id.in_(list(groups)), Seat.revoked_at.is_(None))
    ):
        groups[group_id].members += 1
        workplaces[group_id].append(workplace)
    for group_id, places in workplaces.items():
        groups[group_id].mixed = mixed(places)
    return sorted(groups.values(), key=lambda g: norwegian_key(g.name))


def meetings_for(session: Session, programme: Programme, group: MentorGroup) -> dict[str, Meeting]:
    """The meetings a group's participants go to, by session key: the group's own, else their organisation's, else
    the whole run's. One statement."""
    rows = session.scalars(
        select(Meeting).where(
            Meeting.programme_id == programme.id,
            (Meeting.group_id == group.id)
            | (Meeting.group_id.is_(None) & (Meeting.organisation_id == group.organisation_id))
            | (Meeting.group_id.is_(None) & Meeting.organisation_id.is_(None)),
        )
    ).all()
    rank = {True: 0, False: 1}
    chosen: dict[str, Meeting] = {}
    for m in sorted(rows, key=lambda m: (rank[m.group_id is not None], m.organisation_id is None)):
        chosen.setdefault(m.session_key, m)
    return chosen


__all__ = [
    "ABSENT",
    "MAKEUP",
    "PRESENT",
    "Funnel",
    "GroupSummary",
    "ParticipantRule",
    "PersonProgress",
    "funnel",
    "group_summaries",
    "meetings_for",
    "people_progress",
]
