"""People and the roles the tool grants them. (Seats, orders and groups arrive with their own issues.)"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.models import (
    IdentityKind,
    Organisation,
    Person,
    PersonIdentity,
    ProgrammeRole,
    ProgrammeRoleKind,
)

ORGNR_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


class InvalidOrgnr(ValueError):
    """Not a 9-digit organisasjonsnummer with a valid MOD11 check digit."""


def valid_orgnr(orgnr: str) -> bool:
    if len(orgnr) != 9 or not orgnr.isascii() or not orgnr.isdigit():
        return False
    remainder = sum(int(d) * w for d, w in zip(orgnr[:8], ORGNR_WEIGHTS, strict=True)) % 11
    check = 0 if remainder == 0 else 11 - remainder
    return check != 10 and check == int(orgnr[8])


def get_or_create_organisation(session: Session, *, name: str, orgnr: str) -> Organisation:
    """Raises InvalidOrgnr. Flushes; the caller commits."""
    orgnr = orgnr.replace(" ", "")
    if not valid_orgnr(orgnr):
        raise InvalidOrgnr(orgnr)
    org = session.scalars(select(Organisation).where(Organisation.orgnr == orgnr)).one_or_none()
    if org is None:
        org = Organisation(name=name.strip(), orgnr=orgnr)
        session.add(org)
        session.flush()
    return org


def get_or_create_person(session: Session, *, name: str, email: str) -> Person:
    email = email.strip().lower()
    person = session.scalars(select(Person).where(Person.email == email)).first()
    if person is None:
        person = Person(name=name.strip(), email=email)
        session.add(person)
        session.flush()
    return person


def add_identity(session: Session, person: Person, kind: IdentityKind, scope: str, value: str) -> None:
    exists = session.scalars(
        select(PersonIdentity).where(
            PersonIdentity.kind == kind, PersonIdentity.scope == scope, PersonIdentity.value == value
        )
    ).one_or_none()
    if exists is None:
        session.add(PersonIdentity(person_id=person.id, kind=kind, scope=scope, value=value))
        session.flush()


def grant_role(
    session: Session, person: Person, *, programme_id: str, organisation: Organisation, role: ProgrammeRoleKind
) -> ProgrammeRole:
    row = session.scalars(
        select(ProgrammeRole).where(
            ProgrammeRole.person_id == person.id,
            ProgrammeRole.programme_id == programme_id,
            ProgrammeRole.organisation_id == organisation.id,
            ProgrammeRole.role == role,
        )
    ).one_or_none()
    if row is None:
        row = ProgrammeRole(person_id=person.id, programme_id=programme_id, organisation_id=organisation.id, role=role)
        session.add(row)
        session.flush()
    return row
