"""Licence administrators of an organisation in a programme: several per organisation, added and removed by each
other or by the course owner (issue 7). Every change is audited in the caller's transaction; a refusal raises a
LicenceError before anything is written.

An organisation never loses its last licence administrator through these functions: the one left would be
locked out of the seats, orders and people nobody else in the municipality can reach. The rows of the
organisation's administrators are locked (FOR UPDATE; SQLite: BEGIN IMMEDIATE) before they are counted, so two
administrators removing each other at once cannot both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.licences.seating import InvalidPerson, PersonInput, check_person, person_by_email
from kurspakke.licences.services import LicenceError, audit
from kurspakke.models import Organisation, Person, ProgrammeRole, ProgrammeRoleKind


class AdminError(LicenceError):
    """Keys: admin_already (param email), admin_not_found, last_admin."""


@dataclass(frozen=True)
class AdminRow:
    person_id: int
    name: str
    email: str
    since: datetime


def administrators(session: Session, organisation_id: int, programme_id: str) -> list[AdminRow]:
    """The organisation's licence administrators in the programme, by name."""
    rows = session.execute(
        select(Person.id, Person.name, Person.email, ProgrammeRole.created_at)
        .join(ProgrammeRole, ProgrammeRole.person_id == Person.id)
        .where(
            ProgrammeRole.organisation_id == organisation_id,
            ProgrammeRole.programme_id == programme_id,
            ProgrammeRole.role == ProgrammeRoleKind.LICENCE_ADMIN,
        )
        .order_by(Person.name, Person.id)
    ).all()
    return [AdminRow(*row) for row in rows]


def is_administrator(session: Session, person_id: int, organisation_id: int, programme_id: str) -> bool:
    return (
        session.scalar(
            select(ProgrammeRole.id).where(
                ProgrammeRole.person_id == person_id,
                ProgrammeRole.organisation_id == organisation_id,
                ProgrammeRole.programme_id == programme_id,
                ProgrammeRole.role == ProgrammeRoleKind.LICENCE_ADMIN,
            )
        )
        is not None
    )


def _role_state(role: ProgrammeRole) -> dict[str, object]:
    return {
        "person_id": role.person_id,
        "organisation_id": role.organisation_id,
        "programme_id": role.programme_id,
        "role": role.role.value,
    }


def add_administrator(
    session: Session, organisation: Organisation, programme_id: str, *, name: str, email: str, actor: str
) -> Person:
    """Make the person with this e-mail (known to the tool, or new with this name) a licence administrator of the
    organisation. They sign in with a magic link to that address. Raises InvalidPerson (name_missing,
    name_too_long, email_invalid) or AdminError("admin_already"); nothing is written when it raises."""
    data = check_person(PersonInput(name=name, email=email))
    person = person_by_email(session, data.email)
    if person is not None and is_administrator(session, person.id, organisation.id, programme_id):
        raise AdminError("admin_already", email=data.email)
    if person is None:
        person = Person(name=data.name, email=data.email)
        session.add(person)
        session.flush()
    role = ProgrammeRole(
        person_id=person.id,
        programme_id=programme_id,
        organisation_id=organisation.id,
        role=ProgrammeRoleKind.LICENCE_ADMIN,
    )
    session.add(role)
    session.flush()
    audit(
        session,
        actor=actor,
        action="role.grant",
        entity_type="programme_role",
        entity_id=role.id,
        before=None,
        after=_role_state(role) | {"email": person.email},
    )
    session.flush()
    return person


def remove_administrator(
    session: Session, organisation: Organisation, programme_id: str, person_id: int, *, actor: str
) -> None:
    """Take the licence administrator role of the organisation from the person. Raises AdminError
    ("admin_not_found") when they do not hold it, and AdminError("last_admin") when they are the organisation's
    only one left; nothing is written when it raises."""
    roles = list(
        session.scalars(
            select(ProgrammeRole)
            .where(
                ProgrammeRole.organisation_id == organisation.id,
                ProgrammeRole.programme_id == programme_id,
                ProgrammeRole.role == ProgrammeRoleKind.LICENCE_ADMIN,
            )
            .order_by(ProgrammeRole.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    role = next((r for r in roles if r.person_id == person_id), None)
    if role is None:
        raise AdminError("admin_not_found")
    if len(roles) == 1:
        raise AdminError("last_admin")
    before = _role_state(role)
    session.delete(role)
    session.flush()
    audit(
        session,
        actor=actor,
        action="role.revoke",
        entity_type="programme_role",
        entity_id=role.id,
        before=before,
        after=None,
    )
    session.flush()


__all__ = [
    "AdminError",
    "AdminRow",
    "InvalidPerson",
    "add_administrator",
    "administrators",
    "is_administrator",
    "remove_administrator",
]
