"""The overviews' numbers counted by the database: per organisation the seats assigned, started, each module,
completed and behind schedule — and who is behind, by name. The licence administrator's and the course owner's
pages show these for thousands of participants; the rows that come back are one per organisation (and per module),
plus the people behind schedule, whatever the number of participants.

The rules are those of kurspakke/progress/overview.py (which builds a row per participant for the matrices and the
export); tests/unit/kurspakke/test_progress_summary.py checks that both count the same.

Behind schedule in SQL: with ``w`` weeks per module, a participant who has done ``d`` of ``M`` modules is behind
when their start (their group's introduction meeting, once it has started, else the seat's assignment) lies at
least ``(d + 1)·w`` weeks before now. The cut-off for each ``d`` is computed here and compared in the database, so
no date arithmetic differs between SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, distinct, false, func, literal, or_, select, type_coerce
from sqlalchemy.orm import Session

from kurspakke.groups.models import GroupMember, MentorGroup
from kurspakke.licences.models import Seat, SeatKind
from kurspakke.meetings.models import Attendance, Meeting
from kurspakke.models import Person, utcnow
from kurspakke.models.base import UTCDateTime
from kurspakke.programmes import Programme
from kurspakke.progress.models import ModuleCompletion
from kurspakke.progress.overview import Funnel, norwegian_key


@dataclass
class BehindPerson:
    seat_id: int
    name: str
    workplace: str
    group: str
    done: int
    expected: int


@dataclass
class Summary:
    by_organisation: dict[int, Funnel] = field(default_factory=dict)
    behind: list[BehindPerson] = field(default_factory=list)

    def total(self, programme: Programme, organisation_ids: Iterable[int] | None = None) -> Funnel:
        """The funnel of the given organisations together (all when None)."""
        chosen = [f for o, f in self.by_organisation.items() if organisation_ids is None or o in set(organisation_ids)]
        return Funnel(
            assigned=sum(f.assigned for f in chosen),
            started=sum(f.started for f in chosen),
            modules=[
                (m.id, m.title, sum(dict((k, c) for k, _, c in f.modules).get(m.id, 0) for f in chosen))
                for m in programme.modules
            ],
            complete=sum(f.complete for f in chosen),
            behind=sum(f.behind for f in chosen),
        )


def empty_funnel(programme: Programme) -> Funnel:
    return Funnel(0, 0, [(m.id, m.title, 0) for m in programme.modules], 0, 0)


def summarise(
    session: Session,
    programme: Programme,
    *,
    organisation_ids: Iterable[int] | None = None,
    with_behind: bool = False,
    now: datetime | None = None,
) -> Summary:
    """The funnel per organisation (of the given ones, or all), and with ``with_behind`` the people behind
    schedule ordered by name. Three statements (four with the names)."""
    now = now or utcnow()
    held: list[ColumnElement[bool]] = [
        Seat.programme_id == programme.id,
        Seat.kind == SeatKind.PARTICIPANT,
        Seat.revoked_at.is_(None),
    ]
    if organisation_ids is not None:
        held.append(Seat.organisation_id.in_(list(organisation_ids)))
    module_ids = [m.id for m in programme.modules]
    required = [s.id for s in programme.sessions if s.required]
    intro_keys = [s.id for s in programme.sessions if s.kind == "introduction"]

    done = (
        select(Seat.id.label("seat_id"), func.count(distinct(ModuleCompletion.module_id)).label("done"))
        .join(
            ModuleCompletion,
            and_(
                ModuleCompletion.person_id == Seat.person_id,
                ModuleCompletion.programme_id == programme.id,
                ModuleCompletion.module_id.in_(module_ids or [""]),
            ),
        )
        .where(*held)
        .group_by(Seat.id)
        .subquery()
    )
    attended = (
        select(
            Attendance.seat_id.label("seat_id"),
            func.count(distinct(case((Attendance.session_key.in_(required or [""]), Attendance.session_key)))).label(
                "required"
            ),
        )
        .join(Seat, Seat.id == Attendance.seat_id)
        .where(*held, Attendance.programme_id == programme.id, Attendance.present.is_(True))
        .group_by(Attendance.seat_id)
        .subquery()
    )
    intro = (
        select(Meeting.group_id.label("group_id"), func.min(Meeting.starts_at).label("starts_at"))
        .where(
            Meeting.programme_id == programme.id,
            Meeting.session_key.in_(intro_keys or [""]),
            Meeting.group_id.is_not(None),
            Meeting.starts_at <= now,
        )
        .group_by(Meeting.group_id)
        .subquery()
    )
    done_n = func.coalesce(done.c.done, 0)
    required_n = func.coalesce(attended.c.required, 0)
    started = or_(done_n > 0, attended.c.seat_id.is_not(None))
    complete = and_(done_n == len(module_ids), required_n == len(required))
    start = type_coerce(func.coalesce(intro.c.starts_at, Seat.assigned_at), UTCDateTime())
    weeks = programme.pacing.weeks_per_module_max
    if weeks > 0 and module_ids:
        cutoffs = {d: now - timedelta(weeks=(d + 1) * weeks) for d in range(len(module_ids))}
        cutoff = case(
            *((done_n == d, literal(at, UTCDateTime())) for d, at in cutoffs.items()),
            else_=literal(None, UTCDateTime()),
        )
        behind: ColumnElement[bool] = and_(done_n < len(module_ids), start <= cutoff)
    else:
        behind = false()

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.sum(case((condition, 1), else_=0))

    per_seat = (
        select(Seat.organisation_id)
        .outerjoin(GroupMember, GroupMember.seat_id == Seat.id)
        .outerjoin(done, done.c.seat_id == Seat.id)
        .outerjoin(attended, attended.c.seat_id == Seat.id)
        .outerjoin(intro, intro.c.group_id == GroupMember.group_id)
        .where(*held)
    )
    summary = Summary()
    counts = per_seat.with_only_columns(
        Seat.organisation_id,
        func.count(Seat.id),
        count_if(started),
        count_if(complete),
        count_if(behind),
    ).group_by(Seat.organisation_id)
    for organisation_id, assigned, n_started, n_complete, n_behind in session.execute(counts):
        funnel = empty_funnel(programme)
        funnel.assigned, funnel.started = assigned, int(n_started or 0)
        funnel.complete, funnel.behind = int(n_complete or 0), int(n_behind or 0)
        summary.by_organisation[organisation_id] = funnel
    per_module: dict[int, dict[str, int]] = {}
    if module_ids:
        for organisation_id, module_id, n in session.execute(
            select(Seat.organisation_id, ModuleCompletion.module_id, func.count(distinct(Seat.id)))
            .join(ModuleCompletion, ModuleCompletion.person_id == Seat.person_id)
            .where(*held, ModuleCompletion.programme_id == programme.id, ModuleCompletion.module_id.in_(module_ids))
            .group_by(Seat.organisation_id, ModuleCompletion.module_id)
        ):
            per_module.setdefault(organisation_id, {})[module_id] = n
    for organisation_id, funnel in summary.by_organisation.items():
        got = per_module.get(organisation_id, {})
        funnel.modules = [(m.id, m.title, got.get(m.id, 0)) for m in programme.modules]
    if with_behind and weeks > 0 and module_ids:
        rows = session.execute(
            per_seat.with_only_columns(Seat.id, Person.name, Seat.workplace, MentorGroup.name, done_n, start)
            .join(Person, Person.id == Seat.person_id)
            .outerjoin(MentorGroup, MentorGroup.id == GroupMember.group_id)
            .where(behind)
        )
        for seat_id, name, workplace, group, n_done, started_at in rows:
            elapsed = (now - started_at) / timedelta(weeks=weeks)
            expected = min(len(module_ids), int(elapsed))
            summary.behind.append(BehindPerson(seat_id, name, workplace, group or "", n_done, expected))
        summary.behind.sort(key=lambda p: (norwegian_key(p.name), p.seat_id))
    return summary


__all__ = ["BehindPerson", "Summary", "empty_funnel", "summarise"]
