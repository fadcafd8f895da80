"""Read models for the licence administrator's pages: people with their Canvas status, orders, parked Canvas steps,
and the organisation's people as a CSV file. Reads only; one or two queries per page, never one per row."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.licences.models import Order, Seat
from kurspakke.licences.seating import neutralise, status_of
from kurspakke.models import Person
from kurspakke.outbox.models import OutboxStep, StepStatus

OSLO = ZoneInfo("Europe/Oslo")
SEAT_SUBJECT = "seat:"
UTF8_BOM = "\ufeff"
CSV_SEPARATOR = ";"
# The export's columns; the page translates the header and the status through the catalogue.
EXPORT_COLUMNS = ("name", "email", "workplace", "status", "canvas_error", "last_activity", "assigned", "valid_until")


@dataclass(frozen=True)
class PersonRow:
    seat_id: int
    person_id: int
    name: str
    email: str
    workplace: str
    status: str  # seating.status_of: pending, active, never_signed_in, failed, concluded, revoked
    canvas_error: str | None
    last_activity_at: datetime | None
    assigned_at: datetime
    valid_until: datetime
    revoked_at: datetime | None


def _row(seat: Seat, name: str, email: str) -> PersonRow:
    return PersonRow(
        seat_id=seat.id,
        person_id=seat.person_id,
        name=name,
        email=email,
        workplace=seat.workplace,
        status=status_of(seat),
        canvas_error=seat.canvas_error,
        last_activity_at=seat.canvas_last_activity_at,
        assigned_at=seat.assigned_at,
        valid_until=seat.valid_until,
        revoked_at=seat.revoked_at,
    )


def people(
    session: Session,
    organisation_id: int,
    programme_id: str,
    *,
    include_revoked: bool = False,
    never_signed_in: bool = False,
) -> list[PersonRow]:
    """The people holding seats of the pool, by name (then e-mail). ``never_signed_in``: only held seats whose
    holder has no activity in Canvas yet (enrolled and never signed in, or not enrolled yet)."""
    query = (
        select(Seat, Person.name, Person.email)
        .join(Person, Person.id == Seat.person_id)
        .where(Seat.organisation_id == organisation_id, Seat.programme_id == programme_id)
        .order_by(Person.name, Person.email, Seat.id)
    )
    if not include_revoked or never_signed_in:
        query = query.where(Seat.revoked_at.is_(None))
    if never_signed_in:
        query = query.where(Seat.canvas_last_activity_at.is_(None))
    return [_row(seat, name, email) for seat, name, email in session.execute(query)]


def seat_of(session: Session, seat_id: int, organisation_id: int, programme_id: str) -> Seat | None:
    """The seat when it belongs to this organisation's pool; None otherwise (a guessed id of another
    organisation's seat is not found, not refused with its existence confirmed)."""
    return session.scalars(
        select(Seat).where(
            Seat.id == seat_id, Seat.organisation_id == organisation_id, Seat.programme_id == programme_id
        )
    ).one_or_none()


def orders(session: Session, organisation_id: int, programme_id: str) -> list[Order]:
    """The organisation's orders in the programme, newest first."""
    return list(
        session.scalars(
            select(Order)
            .where(Order.organisation_id == organisation_id, Order.programme_id == programme_id)
            .order_by(Order.created_at.desc(), Order.id.desc())
        )
    )


def order_of(session: Session, order_id: int, organisation_id: int, programme_id: str) -> Order | None:
    return session.scalars(
        select(Order).where(
            Order.id == order_id, Order.organisation_id == organisation_id, Order.programme_id == programme_id
        )
    ).one_or_none()


@dataclass(frozen=True)
class ParkedStep:
    step_id: int
    seat_id: int
    name: str
    email: str
    error: str
    attempts: int
    updated_at: datetime


def _seat_id_of(subject: str) -> int | None:
    rest = subject[len(SEAT_SUBJECT) :] if subject.startswith(SEAT_SUBJECT) else ""
    return int(rest) if rest.isdigit() else None


def parked_seat_steps(session: Session, organisation_id: int, programme_id: str) -> list[ParkedStep]:
    """Canvas steps of this pool's seats that failed for good and wait for a person (the retry button). Parked
    steps are few across the whole tool, so they are read first and matched to the pool's seats in one query."""
    steps = list(
        session.scalars(
            select(OutboxStep)
            .where(OutboxStep.status == StepStatus.PARKED, OutboxStep.subject.startswith(SEAT_SUBJECT))
            .order_by(OutboxStep.id)
        )
    )
    ids = {seat_id for step in steps if (seat_id := _seat_id_of(step.subject)) is not None}
    if not ids:
        return []
    seats = {
        row.id: row
        for row in session.execute(
            select(Seat.id, Person.name, Person.email)
            .join(Person, Person.id == Seat.person_id)
            .where(Seat.id.in_(ids), Seat.organisation_id == organisation_id, Seat.programme_id == programme_id)
        )
    }
    parked: list[ParkedStep] = []
    for step in steps:
        seat_id = _seat_id_of(step.subject)
        if seat_id is not None and seat_id in seats:
            seat = seats[seat_id]
            parked.append(
                ParkedStep(
                    step.id, seat_id, seat.name, seat.email, step.last_error or "", step.attempts, step.updated_at
                )
            )
    return parked


def parked_step_of(session: Session, step_id: int, organisation_id: int, programme_id: str) -> OutboxStep | None:
    """The parked step when it is about a seat of this pool; None otherwise."""
    step = session.get(OutboxStep, step_id)
    if step is None or step.status is not StepStatus.PARKED:
        return None
    seat_id = _seat_id_of(step.subject)
    if seat_id is None or seat_of(session, seat_id, organisation_id, programme_id) is None:
        return None
    return step


def _day(value: datetime | None) -> str:
    return value.astimezone(OSLO).strftime("%Y-%m-%d") if value is not None else ""


def people_csv(rows: Sequence[PersonRow], header: Sequence[str], status_label: Callable[[PersonRow], str]) -> bytes:
    """The organisation's people as a spreadsheet file: UTF-8 with BOM (Excel reads æøå right), ``;``, the header
    given (translated by the caller, in EXPORT_COLUMNS' order), days as YYYY-MM-DD in Europe/Oslo. Every cell
    that a spreadsheet would run as a formula is neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=CSV_SEPARATOR, lineterminator="\r\n")
    writer.writerow([neutralise(cell) for cell in header])
    for row in rows:
        cells = [
            row.name,
            row.email,
            row.workplace,
            status_label(row),
            row.canvas_error or "",
            _day(row.last_activity_at),
            _day(row.assigned_at),
            _day(row.valid_until),
        ]
        writer.writerow([neutralise(cell) for cell in cells])
    return (UTF8_BOM + out.getvalue()).encode("utf-8")


__all__ = [
    "EXPORT_COLUMNS",
    "ParkedStep",
    "PersonRow",
    "order_of",
    "orders",
    "parked_seat_steps",
    "parked_step_of",
    "people",
    "people_csv",
    "seat_of",
]
