"""Orders, seat pools, seats and the audit log of every change to them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Enum, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kurspakke.models.base import Base, utcnow
from kurspakke.models.people import Organisation, Person


class OrderSource(enum.StrEnum):
    FORM = "form"  # the order form a municipality fills in
    MANUAL = "manual"  # entered by the course owner
    WEBHOOK = "webhook"  # an external shop's signed purchase


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    CREDITED = "credited"


class Order(Base):
    """Seats bought by an organisation. Prices and totals are copied in at creation and never recomputed, so a later
    change of the programme file's price or VAT rate does not change what was sold."""

    __tablename__ = "licence_order"
    __table_args__ = (
        # NULLs are distinct on SQLite and PostgreSQL: form and manual orders need no external id.
        UniqueConstraint("source", "external_id"),
        CheckConstraint("quantity >= 1 AND quantity <= 10000", name="quantity_range"),
        CheckConstraint("net_ore + vat_ore = total_ore", name="total_adds_up"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"), index=True)
    programme_id: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    unit_price_ore: Mapped[int]
    vat_rate_percent: Mapped[int]
    net_ore: Mapped[int]
    vat_ore: Mapped[int]
    total_ore: Mapped[int]
    invoice_reference: Mapped[str] = mapped_column(String(255), default="")
    source: Mapped[OrderSource] = mapped_column(Enum(OrderSource, native_enum=False, length=32))
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    contact_name: Mapped[str] = mapped_column(String(255), default="")
    contact_email: Mapped[str] = mapped_column(String(320), default="")
    # The organisation's name as this order gave it. The organisation keeps its own name; a difference is shown to
    # the course owner, never applied silently (kurspakke.licences.purchases).
    organisation_name: Mapped[str] = mapped_column(String(255), default="")
    # Webhook orders: SHA-256 (hex) of the canonical JSON of the shop's parsed body, so a repeated delivery of the
    # same order id is told apart from a different body (kurspakke.licences.purchases). None for other sources.
    request_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[OrderStatus] = mapped_column(
        Enum(OrderStatus, native_enum=False, length=32), default=OrderStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    credited_at: Mapped[datetime | None] = mapped_column(default=None)
    # Optional expiry of the order's unassigned seats (the programme's unassigned_seats_expire_months from
    # confirmation): then its seats nobody holds leave the pool (lapsed_seats), assigned ones stay.
    unassigned_expire_at: Mapped[datetime | None] = mapped_column(default=None)
    lapsed_seats: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    lapsed_at: Mapped[datetime | None] = mapped_column(default=None)

    organisation: Mapped[Organisation] = relationship()


class SeatPool(Base):
    """The seats of one organisation in one programme. Its row is what concurrent assignments lock, and its CHECK
    keeps ``assigned <= bought`` even if a code path ever forgot the lock."""

    __tablename__ = "seat_pool"
    __table_args__ = (
        UniqueConstraint("organisation_id", "programme_id"),
        CheckConstraint("assigned >= 0 AND assigned <= bought", name="not_oversold"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"))
    programme_id: Mapped[str] = mapped_column(String(64))
    # Seats of confirmed orders that are neither cancelled nor credited.
    bought: Mapped[int] = mapped_column(default=0)
    # Seats taken: assigned and not returned (a seat revoked after its holder started stays taken).
    assigned: Mapped[int] = mapped_column(default=0)

    @property
    def free(self) -> int:
        return self.bought - self.assigned


class CanvasStatus(enum.StrEnum):
    """Where a seat stands in Canvas (the licence administrator's "venter", "aktiv i Canvas", "feilet: …")."""

    PENDING = "pending"  # an outbox step is on its way
    ACTIVE = "active"  # enrolled, active
    FAILED = "failed"  # parked: see canvas_error; a person retries or resolves it
    CONCLUDED = "concluded"  # revoked or expired, and the enrolment concluded in Canvas


class SeatKind(enum.StrEnum):
    PARTICIPANT = "participant"  # a StudentEnrollment in Canvas
    MENTOR = "mentor"  # a TaEnrollment limited to the section; takes a paid seat only when the programme says so


class Seat(Base):
    """One assigned seat. A person holds at most one unrevoked seat per pool (partial unique index)."""

    __tablename__ = "seat"
    __table_args__ = (
        Index(
            "uq_seat_one_active_per_person",
            "organisation_id",
            "programme_id",
            "person_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"), index=True)
    programme_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[SeatKind] = mapped_column(
        Enum(SeatKind, native_enum=False, length=16),
        default=SeatKind.PARTICIPANT,
        server_default=SeatKind.PARTICIPANT.name,
    )
    # Whether the seat counts in the pool's assigned seats: always for participants; for mentors when the
    # programme's mentor_uses_seat says so (DESIGN.md §2).
    counted: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    # Where the person works, e.g. sykehjem, hjemmetjeneste; municipalities report training per workplace.
    workplace: Mapped[str] = mapped_column(String(255), default="")
    # How to find the person's Canvas account, when the administrator knows it: the SIS id, or the login (needed
    # where people sign in through Feide or another provider). Else the tool looks for the e-mail address.
    sis_user_id: Mapped[str | None] = mapped_column(String(255), default=None)
    login_id: Mapped[str | None] = mapped_column(String(255), default=None)
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    valid_until: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set when the seat went back to the pool: a revocation before the person started. None while it is taken.
    returned_at: Mapped[datetime | None] = mapped_column(default=None)
    # A revocation whose "has the person started?" was decided (at once when nothing was ever sent to Canvas, else by
    # the worker that reads Canvas while concluding the enrolment). None while undecided.
    revoke_decided_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set (with revoked_at) when the seat ran past valid_until unfinished; it stays taken.
    expired_at: Mapped[datetime | None] = mapped_column(default=None)
    # The seat in Canvas (course_sync.provisioning keeps these; ids are Canvas's, as text).
    canvas_status: Mapped[CanvasStatus] = mapped_column(
        Enum(CanvasStatus, native_enum=False, length=16),
        default=CanvasStatus.PENDING,
        server_default=CanvasStatus.PENDING.name,
    )
    canvas_instance_id: Mapped[int | None] = mapped_column(
        ForeignKey("canvas_instance.id", ondelete="SET NULL"), default=None
    )
    canvas_user_id: Mapped[str | None] = mapped_column(String(64), default=None)
    canvas_section_id: Mapped[str | None] = mapped_column(String(64), default=None)
    canvas_enrollment_id: Mapped[str | None] = mapped_column(String(64), default=None)
    canvas_error: Mapped[str | None] = mapped_column(Text, default=None)
    # Canvas's last_activity_at for the enrolment, read by provisioning and reconciliation; None: never signed in.
    canvas_last_activity_at: Mapped[datetime | None] = mapped_column(default=None)
    canvas_synced_at: Mapped[datetime | None] = mapped_column(default=None)
    welcomed_at: Mapped[datetime | None] = mapped_column(default=None)

    person: Mapped[Person] = relationship()
    organisation: Mapped[Organisation] = relationship()


class CanvasSection(Base):
    """The organisation's section in the programme's course on one Canvas (one section per organisation, so
    enrolments limited to it keep municipalities from seeing each other's people). ``section_id`` is None until the
    worker that holds this row's lock has found or created the section."""

    __tablename__ = "canvas_section"
    __table_args__ = (UniqueConstraint("canvas_instance_id", "course_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    canvas_instance_id: Mapped[int] = mapped_column(ForeignKey("canvas_instance.id", ondelete="CASCADE"))
    course_id: Mapped[str] = mapped_column(String(64))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    section_id: Mapped[str | None] = mapped_column(String(64), default=None)
    name: Mapped[str] = mapped_column(String(255), default="")
    # The worker creating the section holds this lease, so two workers never create two sections.
    locked_by: Mapped[str | None] = mapped_column(String(128), default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Who changed what, when, with the entity's state before and after (JSON; None where it did not exist)."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


__all__ = [
    "AuditEntry",
    "CanvasSection",
    "CanvasStatus",
    "Order",
    "OrderSource",
    "OrderStatus",
    "Seat",
    "SeatKind",
    "SeatPool",
]
