"""A programme run to certificate: an organisation, a group with a mentor, participants, and helpers that complete
modules and hold sessions through the real services (quiz completions as the progress sync records them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from kurspakke.groups import services as groups
from kurspakke.groups.models import MentorGroup
from kurspakke.licences.models import OrderSource, Seat
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.meetings import services as meetings
from kurspakke.meetings.services import Mark, Plan
from kurspakke.models import Organisation, Person
from kurspakke.programmes import load_programmes
from kurspakke.progress.models import SOURCE_CANVAS_SYNC, ModuleCompletion
from kurspakke.services.people import get_or_create_organisation

PROGRAMMES = load_programmes()
PROGRAMME = PROGRAMMES["lindrende-behandling"]
ACTOR = "test"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Run:
    organisation: Organisation
    group: MentorGroup
    mentor: Person
    seats: list[Seat]


def organisation(
    session: Session, orgnr: str = "958935420", name: str = "Oslo kommune", quantity: int = 50
) -> Organisation:
    org = get_or_create_organisation(session, name=name, orgnr=orgnr)
    order = create_order(
        session, organisation=org, programme=PROGRAMME, quantity=quantity, source=OrderSource.MANUAL, actor=ACTOR
    )
    confirm_order(session, order, actor=ACTOR)
    return org


def run(session: Session, names: list[str], *, orgnr: str = "958935420", org_name: str = "Oslo kommune") -> Run:
    org = organisation(session, orgnr, org_name, quantity=max(10, len(names) + 2))
    group = groups.create_group(session, org, PROGRAMME.id, "Gruppe 1", actor=ACTOR)
    seats = [
        assign_person(
            session,
            org,
            PROGRAMME,
            PersonInput(name, f"person{i}.{orgnr}@example.no", "Fjellheimen sykehjem"),
            actor=ACTOR,
        )
        for i, name in enumerate(names)
    ]
    mentor = appoint_mentor(
        session, org, PROGRAMME, PersonInput("Mona Mentor", f"mona.{orgnr}@example.no"), actor=ACTOR
    ).person
    groups.add_members(session, group, seats, actor=ACTOR)
    groups.add_mentor(session, group, mentor, actor=ACTOR)
    session.flush()
    return Run(org, group, mentor, seats)


def complete_modules(session: Session, seat: Seat, module_ids: list[str] | None = None, *, day: int = 0) -> None:
    """Quiz completions as the progress sync records them."""
    for n, module in enumerate(PROGRAMME.modules):
        if module_ids is not None and module.id not in module_ids:
            continue
        session.add(
            ModuleCompletion(
                person_id=seat.person_id,
                programme_id=PROGRAMME.id,
                module_id=module.id,
                completed_at=START + timedelta(days=7 * n + day),
                score=1.0,
                source=SOURCE_CANVAS_SYNC,
                assignment_id=str(100 + n),
            )
        )
    session.flush()


def hold_sessions(
    session: Session,
    run_: Run,
    keys: list[str] | None = None,
    *,
    present: list[Seat] | None = None,
    leader: Person | None = None,
) -> None:
    """Hold the group's sessions (all required ones by default) with ``present`` (default everyone) marked present,
    the others absent, led by ``leader`` (default the group's mentor)."""
    wanted = keys or [s.id for s in PROGRAMME.sessions if s.required]
    attending = {s.id for s in (present if present is not None else run_.seats)}
    for n, key in enumerate(wanted):
        when = START + timedelta(days=7 * n + 1)
        plan = Plan(when, 90, "physical", place="Møterom 2")
        meeting = meetings.schedule(session, PROGRAMME, key, plan, group=run_.group, actor=ACTOR, now=when)
        marks = [Mark(seat, seat.id in attending) for seat in run_.seats]
        meetings.record_attendance(
            session,
            meeting,
            marks,
            recorder=leader or run_.mentor,
            actor=ACTOR,
            now=when + timedelta(hours=2),
        )
    session.flush()


__all__ = [
    "ACTOR",
    "PROGRAMME",
    "PROGRAMMES",
    "START",
    "Run",
    "complete_modules",
    "hold_sessions",
    "organisation",
    "run",
]
