"""Outbox steps and periodic-job leases."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kurspakke.models.base import Base, utcnow


class StepStatus(enum.StrEnum):
    PENDING = "pending"  # waiting to run, running (leased) or waiting for its next try
    DONE = "done"
    PARKED = "parked"  # failed for good after its tries, or refused by Canvas; a person retries it


class OutboxStep(Base):
    """One unit of work outside the database (a Canvas change, an e-mail), written in the transaction of the change
    that needs it. Steps are idempotent: a step that ran halfway (a worker killed, Canvas's answer lost) runs again
    from the start and finds what it already did.

    A worker claims a step by leasing it (``locked_by``/``locked_until``); a lease that runs out returns the step to
    the others, which is how a killed worker loses nothing. ``attempts`` counts claims, so a step that kills its
    worker every time is still parked after the bounded number of tries.
    """

    __tablename__ = "outbox_step"
    __table_args__ = (
        Index("ix_outbox_step_due", "status", "next_attempt_at"),
        Index("ix_outbox_step_subject", "subject", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    # What the step is about ("seat:12", "mail:…"): steps of one subject run one at a time, in order.
    subject: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[StepStatus] = mapped_column(
        Enum(StepStatus, native_enum=False, length=16), default=StepStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(128), default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(default=None)


class PeriodicJob(Base):
    """A job that runs once per period (a night, a day) however many workers run: a worker takes the period with
    one conditional UPDATE (``locked_until`` lease); a worker that dies mid-job leaves the lease to run out and
    another takes the period over. ``done_period`` is the last period that completed."""

    __tablename__ = "periodic_job"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    done_period: Mapped[str | None] = mapped_column(String(32), default=None)
    locked_by: Mapped[str | None] = mapped_column(String(128), default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_started_at: Mapped[datetime | None] = mapped_column(default=None)
    last_done_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


__all__ = ["OutboxStep", "PeriodicJob", "StepStatus"]
