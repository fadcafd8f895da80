"""Certificates (kursbevis): one current certificate per person and programme, its printed facts, and its history.

A certificate keeps everything it prints (name as printed, organisation, programme texts, date), so it stays
verifiable after the person's data is deleted (``person_id`` becomes NULL; DESIGN.md §4) and prints the same years
later even when the programme file has moved on.

Exactly once: a partial unique index on (programme_id, person_id) over the rows not superseded. Two workers that
evaluate the same person at the same time both try to insert; the database lets one through (not a read-then-write
race). A re-issue marks the old row superseded and inserts the new one in the same transaction; a revoked row stays
current, so no evaluation ever issues a second one behind a revocation."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from kurspakke.models.base import Base, utcnow
from kurspakke.programmes import OSLO


class CertificateRole(enum.StrEnum):
    PARTICIPANT = "participant"
    MENTOR = "mentor"


class Certificate(Base):
    __tablename__ = "certificate"
    __table_args__ = (
        Index(
            "uq_certificate_current",
            "programme_id",
            "person_id",
            unique=True,
            sqlite_where=text("superseded_at IS NULL"),
            postgresql_where=text("superseded_at IS NULL"),
        ),
        Index("ix_certificate_organisation", "organisation_id", "programme_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Canonical verification code (kurspakke.certificates.codes): 14 symbols, unique for ever.
    code: Mapped[str] = mapped_column(String(16), unique=True)
    programme_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="SET NULL"))
    role: Mapped[CertificateRole] = mapped_column(Enum(CertificateRole, native_enum=False, length=16))
    name: Mapped[str] = mapped_column(String(255))  # as printed
    organisation_name: Mapped[str] = mapped_column(String(255))
    mentor_names: Mapped[str] = mapped_column(String(500), default="")  # participants: their group's mentors
    completed_on: Mapped[date]  # the day (Europe/Oslo) the last requirement was met
    # The programme's texts as printed: title, statement, programme title, goals, modules, issuer, signatories, note.
    printed: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_by: Mapped[str] = mapped_column(String(255))
    # The Open Badges 3.0 credential (VC-JWT), signed once with the badge key ``badge_kid``.
    badge_kid: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    badge_jwt: Mapped[str | None] = mapped_column(Text, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str] = mapped_column(String(500), default="")
    revoked_by: Mapped[str] = mapped_column(String(255), default="")
    superseded_at: Mapped[datetime | None] = mapped_column(default=None)
    superseded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("certificate.id", ondelete="SET NULL"), default=None
    )
    # When Canvas's gradebook got the completion (AGS), None until then or where the platform gave no AGS scopes.
    ags_posted_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def valid(self) -> bool:
        return self.revoked_at is None and self.superseded_at is None


VALID = "valid"
REVOKED = "revoked"
SUPERSEDED = "superseded"


def status_of(cert: Certificate) -> tuple[str, date | None]:
    """``("valid", None)``, ``("revoked", <day revoked>)`` or ``("superseded", <day replaced>)``, days in Oslo: what
    every page and the verification answer say of a certificate. A certificate is never both (a revoked one is not
    re-issued, a replaced one not revoked); replaced is said first regardless."""
    if cert.superseded_at is not None:
        return SUPERSEDED, cert.superseded_at.astimezone(OSLO).date()
    if cert.revoked_at is not None:
        return REVOKED, cert.revoked_at.astimezone(OSLO).date()
    return VALID, None


__all__ = ["REVOKED", "SUPERSEDED", "VALID", "Certificate", "CertificateRole", "status_of"]
