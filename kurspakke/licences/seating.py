"""A licence administrator's seat operations on people: assign (a person by name and e-mail), edit, revoke, reassign.

Each operation changes the seat and writes the Canvas step (``seat.sync``) in the same transaction, so the worker
carries it to Canvas and nothing is lost (DESIGN.md §4). Input is validated before anything is written; a refusal
raises a LicenceError whose key names the message in the translation catalogue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.licences.models import CanvasStatus, Seat, SeatKind
from kurspakke.licences.services import (
    InvalidOrder,
    LicenceError,
    SeatStateError,
    _seat_state,
    assign_seat,
    audit,
    revoke_seat,
)
from kurspakke.models import Organisation, Person, ProgrammeRole, ProgrammeRoleKind
from kurspakke.outbox.services import enqueue
from kurspakke.programmes import Programme

SEAT_SYNC = "seat.sync"
MAX_NAME = 255
MAX_EMAIL = 320
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
_CANVAS_REF = re.compile(r"^[^\s]{1,255}$")
# Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@")


class InvalidPerson(LicenceError):
    """A person's details are not acceptable (name, e-mail, SIS id, login)."""


@dataclass(frozen=True)
class PersonInput:
    """What an administrator gives for a seat, validated by ``check_person``."""

    name: str
    email: str
    workplace: str = ""
    sis_user_id: str | None = None
    login_id: str | None = None


def neutralise(cell: str) -> str:
    """A cell as text for a spreadsheet: a leading =, +, - or @ gets an apostrophe, so it is never run as a formula."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def check_person(raw: PersonInput) -> PersonInput:
    """The input cleaned (trimmed, e-mail lower-cased), or InvalidPerson with key name_missing, name_too_long,
    email_invalid, workplace_too_long, sis_id_invalid or login_id_invalid."""
    name = " ".join(raw.name.split())
    email = raw.email.strip().lower()
    workplace = " ".join(raw.workplace.split())
    if not name:
        raise InvalidPerson("name_missing")
    if len(name) > MAX_NAME:
        raise InvalidPerson("name_too_long", maximum=MAX_NAME)
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise InvalidPerson("email_invalid", email=raw.email.strip()[:80])
    if len(workplace) > MAX_NAME:
        raise InvalidPerson("workplace_too_long", maximum=MAX_NAME)
    sis = (raw.sis_user_id or "").strip() or None
    login = (raw.login_id or "").strip() or None
    if sis is not None and not _CANVAS_REF.match(sis):
        raise InvalidPerson("sis_id_invalid")
    if login is not None and not _CANVAS_REF.match(login):
        raise InvalidPerson("login_id_invalid")
    return PersonInput(name, email, workplace, sis, login)


def person_by_email(session: Session, email: str) -> Person | None:
    """The person the tool knows by this address (compared lower-cased), the earliest when there are several."""
    return session.scalars(select(Person).where(Person.email == email.strip().lower()).order_by(Person.id)).first()


def active_seat(session: Session, organisation: Organisation, programme_id: str, person: Person) -> Seat | None:
    return session.scalars(
        select(Seat).where(
            Seat.organisation_id == organisation.id,
            Seat.programme_id == programme_id,
            Seat.person_id == person.id,
            Seat.revoked_at.is_(None),
        )
    ).one_or_none()


def _grant(
    session: Session,
    person: Person,
    organisation: Organisation,
    programme_id: str,
    role: ProgrammeRoleKind = ProgrammeRoleKind.PARTICIPANT,
) -> None:
    exists = session.scalar(
        select(ProgrammeRole.id).where(
            ProgrammeRole.person_id == person.id,
            ProgrammeRole.programme_id == programme_id,
            ProgrammeRole.organisation_id == organisation.id,
            ProgrammeRole.role == role,
        )
    )
    if exists is None:
        session.add(ProgrammeRole(person=person, programme_id=programme_id, organisation_id=organisation.id, role=role))
        session.flush()


def sync_seat_later(session: Session, seat: Seat, *, update_account: bool = False) -> None:
    """Write the step that makes Canvas match the seat (enrolled while it is held, concluded once revoked);
    ``update_account`` carries the person's name and e-mail to an account the tool created."""
    payload: dict[str, object] = {"seat_id": seat.id}
    if update_account:
        payload["update_account"] = True
    enqueue(session, SEAT_SYNC, f"seat:{seat.id}", payload)


def assign_person(
    session: Session, organisation: Organisation, programme: Programme, raw: PersonInput, *, actor: str
) -> Seat:
    """Give a seat of the organisation's pool to the person with this e-mail (known to the tool or new), and write
    the Canvas step. Raises InvalidPerson, NoFreeSeats or AlreadyAssigned; nothing is written when it raises."""
    return _seat_person(session, organisation, programme, raw, actor=actor, kind=SeatKind.PARTICIPANT)


def appoint_mentor(
    session: Session, organisation: Organisation, programme: Programme, raw: PersonInput, *, actor: str
) -> Seat:
    """Make the person a mentor of the organisation: a TA enrolment limited to its section, written as a step. The
    mentor takes a paid seat only when the programme says so (``mentor_uses_seat``); otherwise no free seat is
    needed. Raises InvalidPerson, NoFreeSeats (a paid mentor seat) or AlreadyAssigned (the person already holds a
    seat of this pool, as participant or mentor)."""
    return _seat_person(session, organisation, programme, raw, actor=actor, kind=SeatKind.MENTOR)


def _seat_person(
    session: Session,
    organisation: Organisation,
    programme: Programme,
    raw: PersonInput,
    *,
    actor: str,
    kind: SeatKind,
) -> Seat:
    data = check_person(raw)
    person = person_by_email(session, data.email)
    if person is None:
        person = Person(name=data.name, email=data.email)
        session.add(person)
        session.flush()
    mentor = kind is SeatKind.MENTOR
    seat = assign_seat(
        session,
        organisation,
        programme.id,
        person,
        data.workplace,
        actor=actor,
        valid_months=programme.seat_valid_months,
        sis_user_id=data.sis_user_id,
        login_id=data.login_id,
        kind=kind,
        counted=programme.mentor_uses_seat if mentor else True,
    )
    role = ProgrammeRoleKind.MENTOR if mentor else ProgrammeRoleKind.PARTICIPANT
    _grant(session, person, organisation, programme.id, role)
    sync_seat_later(session, seat)
    session.flush()
    return seat


def edit_person(session: Session, seat: Seat, *, name: str, email: str, workplace: str, actor: str) -> Seat:
    """Correct the seat holder's name, e-mail or workplace; the name and e-mail go to Canvas for accounts the tool
    created (the worker never edits an account it only matched). Raises InvalidPerson or SeatStateError."""
    if seat.revoked_at is not None:
        raise SeatStateError("seat_already_revoked")
    data = check_person(PersonInput(name, email, workplace))
    person = seat.person
    if data.email != person.email:
        other = person_by_email(session, data.email)
        if other is not None and other.id != person.id:
            raise InvalidPerson("email_taken", email=data.email)
    before = _seat_state(seat) | {"name": person.name, "email": person.email}
    person.name, person.email, seat.workplace = data.name, data.email, data.workplace
    session.flush()
    audit(
        session,
        actor=actor,
        action="seat.edit",
        entity_type="seat",
        entity_id=seat.id,
        before=before,
        after=_seat_state(seat) | {"name": person.name, "email": person.email},
    )
    sync_seat_later(session, seat, update_account=True)
    session.flush()
    return seat


def revoke_person(session: Session, seat: Seat, *, actor: str, started_in_tool: bool = False) -> Seat:
    """Revoke the seat and write the step that concludes the enrolment. When nothing ever reached Canvas (no account
    or enrolment recorded) and the tool has no record of the person starting (``started_in_tool``: attendance,
    quiz progress), the seat returns to the pool at once; otherwise the worker decides after reading Canvas."""
    # When nothing ever reached Canvas the seat returns at once; revoke_seat reads that under the seat's lock.
    started: bool | None = True if started_in_tool else None
    seat = revoke_seat(session, seat, started=started, actor=actor, unstarted_if_not_in_canvas=True)
    sync_seat_later(session, seat)
    return seat


def reassign(
    session: Session, seat: Seat, programme: Programme, raw: PersonInput, *, actor: str, started_in_tool: bool = False
) -> Seat:
    """Revoke ``seat`` and give a free seat to someone else in one transaction (when the revoked seat returns to the
    pool, that is the seat the new person gets)."""
    organisation = seat.organisation
    revoke_person(session, seat, actor=actor, started_in_tool=started_in_tool)
    return assign_person(session, organisation, programme, raw, actor=actor)


def status_of(seat: Seat) -> str:
    """The seat's Canvas status for the licence administrator: pending, active, never_signed_in, failed, concluded,
    expired (past its validity), revoked."""
    if seat.expired_at is not None:
        return "expired"
    if seat.revoked_at is not None:
        return "revoked"
    if seat.canvas_status is CanvasStatus.ACTIVE and seat.canvas_last_activity_at is None:
        return "never_signed_in"
    return seat.canvas_status.value


__all__ = [
    "FORMULA_PREFIXES",
    "SEAT_SYNC",
    "InvalidOrder",
    "InvalidPerson",
    "PersonInput",
    "active_seat",
    "appoint_mentor",
    "assign_person",
    "check_person",
    "edit_person",
    "neutralise",
    "person_by_email",
    "reassign",
    "revoke_person",
    "status_of",
    "sync_seat_later",
]
