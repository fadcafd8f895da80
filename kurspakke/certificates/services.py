"""Issuing, revoking and re-issuing certificates.

``evaluate`` is what the worker runs whenever a module completion or an attendance changes, and what the nightly
sweep runs for everyone without one: it issues a certificate to each eligible person who has none. Exactly once:
the insert runs in a savepoint against the partial unique index on (programme, person) of current certificates, so
of two workers evaluating the same person at once, one inserts and the other finds the first's (kurspakke.
certificates.models). What follows an issue — the e-mail, the Canvas gradebook — is written as outbox steps in the
same transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kurspakke.certificates.codes import new_code
from kurspakke.certificates.eligibility import Standing, standings
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.licences.models import Seat, SeatKind
from kurspakke.licences.services import LicenceError, audit
from kurspakke.models import ProgrammeRole, ProgrammeRoleKind, utcnow
from kurspakke.outbox.services import enqueue
from kurspakke.programmes import Programme

log = logging.getLogger("kurspakke.certificates")

CERTIFICATE_NOTIFY = "certificate.notify"  # the e-mail to the holder
CERTIFICATE_AGS = "certificate.ags"  # completion to Canvas's gradebook
MAX_REASON = 500
MAX_NAME = 255
# How often a code collision (65 random bits: practically never) is retried before giving up.
CODE_TRIES = 3


class CertificateError(LicenceError):
    """A refusal with a message key the pages translate: reason_missing, reason_too_long, name_missing,
    name_too_long, name_invalid, certificate_revoked, certificate_superseded."""


def printed_texts(programme: Programme, role: CertificateRole) -> dict[str, Any]:
    """The programme's texts a certificate prints, as they are at issue (kept on the certificate)."""
    c = programme.certificate
    if c is None:
        raise ValueError(f"programme {programme.id} has no certificate")
    return {
        "title": c.title,
        "statement": c.participant_text if role is CertificateRole.PARTICIPANT else c.mentor_text,
        "programme_title": programme.title,
        "programme_version": programme.version,
        "requirements": c.requirements,
        "learning_goals_heading": c.learning_goals_heading,
        "learning_goals": list(c.learning_goals),
        "modules_heading": c.modules_heading,
        "module_titles": list(c.module_titles),
        "issuer": c.issuer,
        "signatories": list(c.signatories),
        "note": c.note,
    }


def current(session: Session, programme_id: str, person_id: int) -> Certificate | None:
    """The person's current certificate of the programme (valid or revoked), or None."""
    return session.scalars(
        select(Certificate).where(
            Certificate.programme_id == programme_id,
            Certificate.person_id == person_id,
            Certificate.superseded_at.is_(None),
        )
    ).one_or_none()


def by_code(session: Session, code: str) -> Certificate | None:
    return session.scalars(select(Certificate).where(Certificate.code == code)).one_or_none()


def _after_issue(session: Session, cert: Certificate) -> None:
    enqueue(session, CERTIFICATE_NOTIFY, f"certificate:{cert.id}:notify", {"certificate_id": cert.id})
    if cert.role is CertificateRole.PARTICIPANT:
        # One subject per programme: its steps run one at a time, so two never make the course's line item at once.
        enqueue(session, CERTIFICATE_AGS, f"certificate-ags:{cert.programme_id}", {"certificate_id": cert.id})


def _insert(session: Session, cert: Certificate) -> bool:
    """Insert in a savepoint. False when the current-certificate index refused it (someone else issued first)."""
    for _ in range(CODE_TRIES):
        try:
            with session.begin_nested():
                session.add(cert)
                session.flush()
            return True
        except IntegrityError:
            if cert.person_id is not None and current(session, cert.programme_id, cert.person_id) is not None:
                return False
            cert.code = new_code()  # a code collision: draw again
    raise RuntimeError("no free verification code after several tries")


def issue(session: Session, programme: Programme, standing: Standing, *, actor: str) -> Certificate | None:
    """Issue the certificate an eligible standing earns. None when the person already has a current one (also when
    another transaction issued it a moment ago). Flushes; the caller commits."""
    completed_on = standing.completed_on
    if not standing.eligible or completed_on is None:
        raise ValueError("the standing is not eligible")
    if current(session, programme.id, standing.person_id) is not None:
        return None
    cert = Certificate(
        code=new_code(),
        programme_id=programme.id,
        person_id=standing.person_id,
        organisation_id=standing.organisation_id,
        role=standing.role,
        name=standing.name,
        organisation_name=standing.organisation,
        mentor_names=", ".join(standing.mentors)[:500],
        completed_on=completed_on,
        printed=printed_texts(programme, standing.role),
        issued_at=utcnow(),
        issued_by=actor[:255],
    )
    if not _insert(session, cert):
        return None
    audit(
        session,
        actor=actor,
        action="certificate.issued",
        entity_type="certificate",
        entity_id=cert.id,
        before=None,
        after=_state(cert),
    )
    _after_issue(session, cert)
    log.info("certificate %s issued to person %s (%s)", cert.code, cert.person_id, programme.id)
    return cert


@dataclass
class Evaluation:
    evaluated: int = 0
    issued: int = 0
    already: int = 0
    not_yet: int = 0


def evaluate(
    session: Session, programme: Programme, person_ids: Iterable[int] | None = None, *, actor: str = "kurspakke"
) -> Evaluation:
    """Issue a certificate to each of the people (None: everyone in the programme) who is eligible and has none.
    Flushes; the caller commits."""
    ids = sorted(set(person_ids)) if person_ids is not None else None
    result = Evaluation()
    if programme.certificate is None:  # a programme file without a [certificate]: nothing to issue
        return result
    found = standings(session, programme, ids)
    have = _people_with_certificates(session, programme.id, list(found))
    for person_id, standing in sorted(found.items()):
        result.evaluated += 1
        if person_id in have:
            result.already += 1
        elif not standing.eligible:
            result.not_yet += 1
        elif issue(session, programme, standing, actor=actor) is None:
            result.already += 1
        else:
            result.issued += 1
    return result


def _people_with_certificates(session: Session, programme_id: str, person_ids: list[int]) -> set[int]:
    have: set[int] = set()
    for i in range(0, len(person_ids), 500):
        have.update(
            pid
            for pid in session.scalars(
                select(Certificate.person_id).where(
                    Certificate.programme_id == programme_id,
                    Certificate.person_id.in_(person_ids[i : i + 500]),
                    Certificate.superseded_at.is_(None),
                )
            )
            if pid is not None
        )
    return have


def people_without_certificates(session: Session, programme: Programme) -> list[int]:
    """Everyone who could earn one and has none: holders of unrevoked participant seats and the programme's
    mentors. For the nightly sweep."""
    seat_people = select(Seat.person_id).where(
        Seat.programme_id == programme.id, Seat.kind == SeatKind.PARTICIPANT, Seat.revoked_at.is_(None)
    )
    mentors = select(ProgrammeRole.person_id).where(
        ProgrammeRole.programme_id == programme.id, ProgrammeRole.role == ProgrammeRoleKind.MENTOR
    )
    holders = select(Certificate.person_id).where(
        Certificate.programme_id == programme.id,
        Certificate.person_id.is_not(None),
        Certificate.superseded_at.is_(None),
    )
    candidates = set(session.scalars(seat_people.union(mentors)))
    return sorted(candidates - set(session.scalars(holders)))


def _state(cert: Certificate) -> dict[str, Any]:
    return {
        "code": cert.code,
        "programme_id": cert.programme_id,
        "person_id": cert.person_id,
        "role": cert.role.value,
        "name": cert.name,
        "organisation": cert.organisation_name,
        "completed_on": cert.completed_on.isoformat(),
        "revoked_at": cert.revoked_at.isoformat() if cert.revoked_at else None,
        "revoked_reason": cert.revoked_reason,
        "superseded_by_id": cert.superseded_by_id,
    }


def _clean_reason(reason: str) -> str:
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise CertificateError("reason_missing")
    if len(cleaned) > MAX_REASON:
        raise CertificateError("reason_too_long")
    return cleaned


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise CertificateError("name_missing")
    if len(cleaned) > MAX_NAME:
        raise CertificateError("name_too_long")
    if any(not ch.isprintable() for ch in cleaned):
        raise CertificateError("name_invalid")
    return cleaned


def revoke(session: Session, cert: Certificate, *, reason: str, actor: str) -> None:
    """Revoke with a reason (kept and shown with the date on the verification page). Raises CertificateError
    reason_missing, reason_too_long, certificate_revoked, certificate_superseded; nothing is written then.
    Flushes; the caller commits."""
    cleaned = _clean_reason(reason)
    if cert.superseded_at is not None:
        raise CertificateError("certificate_superseded")
    if cert.revoked_at is not None:
        raise CertificateError("certificate_revoked")
    before = _state(cert)
    cert.revoked_at, cert.revoked_reason, cert.revoked_by = utcnow(), cleaned, actor[:255]
    session.flush()
    audit(
        session,
        actor=actor,
        action="certificate.revoked",
        entity_type="certificate",
        entity_id=cert.id,
        before=before,
        after=_state(cert),
    )


def reissue(
    session: Session,
    cert: Certificate,
    *,
    reason: str,
    actor: str,
    name: str | None = None,
    completed_on: date | None = None,
) -> Certificate:
    """A new certificate in place of ``cert`` (e.g. a corrected name): a new code; the old code then says it was
    replaced. Raises CertificateError reason_*, name_*, certificate_revoked (revoked ones are not re-issued),
    certificate_superseded; nothing is written then. Flushes; the caller commits."""
    cleaned_reason = _clean_reason(reason)
    new_name = _clean_name(name) if name is not None else cert.name
    if cert.superseded_at is not None:
        raise CertificateError("certificate_superseded")
    if cert.revoked_at is not None:
        raise CertificateError("certificate_revoked")
    before = _state(cert)
    cert.superseded_at = utcnow()
    session.flush()  # the old row leaves the current-certificate index before the new one enters it
    replacement = Certificate(
        code=new_code(),
        programme_id=cert.programme_id,
        person_id=cert.person_id,
        organisation_id=cert.organisation_id,
        role=cert.role,
        name=new_name,
        organisation_name=cert.organisation_name,
        mentor_names=cert.mentor_names,
        completed_on=completed_on or cert.completed_on,
        printed=dict(cert.printed),
        issued_at=utcnow(),
        issued_by=actor[:255],
        ags_posted_at=cert.ags_posted_at,
    )
    if not _insert(session, replacement):  # another re-issue of the same certificate won the race
        raise CertificateError("certificate_superseded")
    cert.superseded_by_id = replacement.id
    session.flush()
    audit(
        session,
        actor=actor,
        action="certificate.reissued",
        entity_type="certificate",
        entity_id=cert.id,
        before=before,
        after={**_state(cert), "reason": cleaned_reason, "replacement": _state(replacement)},
    )
    return replacement


__all__ = [
    "CERTIFICATE_AGS",
    "CERTIFICATE_NOTIFY",
    "CertificateError",
    "Evaluation",
    "by_code",
    "current",
    "evaluate",
    "issue",
    "people_without_certificates",
    "printed_texts",
    "reissue",
    "revoke",
]
