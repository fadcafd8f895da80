"""Organisations, people, the roles the tool itself records, and the link between a programme and a course."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from kurspakke.models.base import Base, utcnow


class ProgrammeRoleKind(enum.StrEnum):
    PARTICIPANT = "participant"
    MENTOR = "mentor"
    LICENCE_ADMIN = "licence_admin"


class IdentityKind(enum.StrEnum):
    # scope: the Canvas instance, services.platforms.platform_instance(). Recorded by the tool itself
    # (provisioning), never taken from a launch: a launch's Canvas user id is a custom parameter, a hint only.
    CANVAS_USER_ID = "canvas_user_id"
    LTI_SUB = "lti_sub"  # scope: the issuer; recorded by the launch that matched the person


class OrganisationKind(enum.StrEnum):
    KOMMUNE = "kommune"
    BYDEL = "bydel"
    HELSEFORETAK = "helseforetak"
    OTHER = "other"


class Organisation(Base):
    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    orgnr: Mapped[str] = mapped_column(String(9), unique=True)
    # The Canvas its people are provisioned into. Only launches from that Canvas may tie one of its people to an
    # account by e-mail (kurspakke.services.access); None until provisioning sets it.
    canvas_instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("canvas_instance.id", ondelete="SET NULL"), default=None
    )
    kind: Mapped[OrganisationKind] = mapped_column(
        Enum(OrganisationKind, native_enum=False, length=32),
        default=OrganisationKind.OTHER,
        server_default=OrganisationKind.OTHER.name,
    )
    # A network area (læringsnettverk) the organisation belongs to, itself an organisation.
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL"), default=None, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Organisation | None] = relationship(remote_side=[id])


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    identities: Mapped[list[PersonIdentity]] = relationship(back_populates="person", cascade="all, delete-orphan")
    roles: Mapped[list[ProgrammeRole]] = relationship(back_populates="person", cascade="all, delete-orphan")

    @validates("email")
    def _lower_email(self, _key: str, value: str) -> str:
        # Addresses are compared case-insensitively; stored lower-cased, they compare on their index.
        return value.strip().lower()


class PersonIdentity(Base):
    """How a platform names a person: a Canvas user id within one Canvas instance, or an LTI sub of an issuer."""

    __tablename__ = "person_identity"
    __table_args__ = (
        UniqueConstraint("kind", "scope", "value"),
        # One account per person and issuer: two first launches of different accounts cannot both claim a person.
        Index(
            "uq_person_identity_one_sub_per_issuer",
            "person_id",
            "scope",
            unique=True,
            sqlite_where=text("kind = 'LTI_SUB'"),
            postgresql_where=text("kind = 'LTI_SUB'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    kind: Mapped[IdentityKind] = mapped_column(Enum(IdentityKind, native_enum=False, length=32))
    scope: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    # For a Canvas user id: the primary e-mail Canvas reported for the account when the tool provisioned it (people
    # matched to an existing account often have another primary address than their seat's).
    email: Mapped[str | None] = mapped_column(String(320), default=None, index=True)
    # A Canvas account the tool created (its name follows the person's); False for an account it only matched, which
    # the tool never edits (DESIGN.md §3).
    created_by_tool: Mapped[bool] = mapped_column(default=False, server_default=text("false"))

    person: Mapped[Person] = relationship(back_populates="identities")

    @validates("email")
    def _lower_email(self, _key: str, value: str | None) -> str | None:
        return value.strip().lower() if value else None


class ProgrammeRole(Base):
    """A role the tool grants: participant (holds a seat), mentor, licence administrator — per organisation."""

    __tablename__ = "programme_role"
    __table_args__ = (UniqueConstraint("person_id", "programme_id", "organisation_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    programme_id: Mapped[str] = mapped_column(String(64))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    role: Mapped[ProgrammeRoleKind] = mapped_column(Enum(ProgrammeRoleKind, native_enum=False, length=32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship(back_populates="roles")
    organisation: Mapped[Organisation] = relationship()


class CourseLink(Base):
    """A programme linked to one Canvas course per Canvas instance."""

    __tablename__ = "course_link"
    __table_args__ = (
        UniqueConstraint("programme_id", "platform_instance"),
        UniqueConstraint("platform_instance", "context_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[str] = mapped_column(String(64))
    # The Canvas instance: "<issuer>|<tool_platform.guid>", or the issuer alone without a guid
    # (kurspakke.services.platforms.platform_instance).
    platform_instance: Mapped[str] = mapped_column(String(255))
    context_id: Mapped[str] = mapped_column(String(255))
    canvas_course_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255), default="")
    linked_by_person_sub: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # AGS (DESIGN.md §3): the course's line-items URL and the scopes the platform granted, from the latest launch
    # that carried them, so a worker posts completion without a live launch (launch records expire). The
    # "Kursbevis" line item's own URL once the worker has found or made it.
    ags_lineitems_url: Mapped[str | None] = mapped_column(String(1024), default=None)
    ags_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    ags_registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("lti_registration.id", ondelete="SET NULL"), default=None
    )
    ags_lineitem_url: Mapped[str | None] = mapped_column(String(1024), default=None)


class UnlicensedLaunch(Base):
    """Someone launched from a linked course whom the tool does not know; the course owner sees the list."""

    __tablename__ = "unlicensed_launch"
    __table_args__ = (UniqueConstraint("course_link_id", "issuer", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_link_id: Mapped[int] = mapped_column(ForeignKey("course_link.id", ondelete="CASCADE"))
    issuer: Mapped[str] = mapped_column(String(255))
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    canvas_user_id: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    launches: Mapped[int] = mapped_column(default=1)
