"""Orders, seat pools and seats. Plain functions over a session: they flush, the caller commits (or rolls back on
an exception). Every change writes one AuditEntry in the same transaction. A refusal raises before anything is
written.

Never overselling: every change of a pool's counts runs after ``SELECT … FOR UPDATE`` on the pool row
(PostgreSQL), so concurrent assignments to one pool queue there and each counts what the previous one committed.
SQLite has no row locks; its write transactions start with BEGIN IMMEDIATE (kurspakke.db), which serialises them
the same way. The pool's CHECK (assigned <= bought) refuses an oversold row even if a path forgot the lock.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kurspakke.licences.models import AuditEntry, Order, OrderSource, OrderStatus, Seat, SeatKind, SeatPool
from kurspakke.models import Organisation, Person, utcnow
from kurspakke.programmes import Programme, programmes_once

MIN_QUANTITY = 1
MAX_QUANTITY = 10_000
SEAT_VALID_MONTHS = 12  # DESIGN.md §2: a seat is valid 12 months from assignment unless the programme says otherwise
MAX_TEXT = 255
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class LicenceError(Exception):
    """A refused licence operation. ``key`` names the message in the translation catalogue; ``params`` fill it."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key, params)
        self.key = key
        self.params = params


class InvalidOrder(LicenceError):
    """The order's input is not acceptable (quantity, source, external id, contact)."""


class RegistrationClosed(InvalidOrder):
    """The programme's registration deadline has passed (a learning network's binding registration): key
    registration_closed, params programme (its title) and deadline (ISO date; registration closed at the end of
    that day, Europe/Oslo)."""


class OrderStateError(LicenceError):
    """The order is not in a status that allows this step (e.g. confirming a confirmed order)."""


class SeatsInUse(LicenceError):
    """Cancelling or crediting would take away seats that are assigned; params: requested, free, in_use."""


class NoFreeSeats(LicenceError):
    """The pool has no free seat ("ingen ledige lisenser")."""


class AlreadyAssigned(LicenceError):
    """The person already holds an active seat in this pool."""


class SeatStateError(LicenceError):
    """The seat is already revoked."""


# --- money -------------------------------------------------------------------------------------------------------


def order_totals(quantity: int, unit_price_ore: int, vat_rate_percent: int) -> tuple[int, int, int]:
    """(net, vat, total) in øre. VAT is computed on the net total and rounded half up to a whole øre."""
    net = quantity * unit_price_ore
    vat = (net * vat_rate_percent * 2 + 100) // 200  # half up, in integers: no float ever touches money
    return net, vat, net + vat


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` later; the month's last day when it is shorter (31 Jan + 1 = 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


# --- audit -------------------------------------------------------------------------------------------------------


def _order_state(order: Order) -> dict[str, Any]:
    return {
        "organisation_id": order.organisation_id,
        "programme_id": order.programme_id,
        "quantity": order.quantity,
        "unit_price_ore": order.unit_price_ore,
        "vat_rate_percent": order.vat_rate_percent,
        "net_ore": order.net_ore,
        "vat_ore": order.vat_ore,
        "total_ore": order.total_ore,
        "invoice_reference": order.invoice_reference,
        "source": order.source.value,
        "external_id": order.external_id,
        "contact_name": order.contact_name,
        "contact_email": order.contact_email,
        "organisation_name": order.organisation_name,
        "request_sha256": order.request_sha256,
        "status": order.status.value,
        "lapsed_seats": order.lapsed_seats,
    }


def _audit_order(session: Session, order: Order, *, actor: str, action: str, before: dict[str, Any] | None) -> None:
    audit(
        session,
        actor=actor,
        action=action,
        entity_type="order",
        entity_id=order.id,
        before=before,
        after=_order_state(order),
    )


def _seat_state(seat: Seat) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "organisation_id": seat.organisation_id,
        "programme_id": seat.programme_id,
        "person_id": seat.person_id,
        "workplace": seat.workplace,
        "kind": seat.kind.value,
        "counted": seat.counted,
        "assigned_at": iso(seat.assigned_at),
        "valid_until": iso(seat.valid_until),
        "revoked_at": iso(seat.revoked_at),
        "returned_at": iso(seat.returned_at),
        "sis_user_id": seat.sis_user_id,
        "login_id": seat.login_id,
    }


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """One audit row (who, when, what, before and after), in the caller's transaction."""
    session.add(
        AuditEntry(
            actor=actor[:MAX_TEXT],
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            before=before,
            after=after,
        )
    )


# --- pools -------------------------------------------------------------------------------------------------------


def _locked_pool(session: Session, organisation_id: int, programme_id: str, *, create: bool) -> SeatPool | None:
    """The pool row, locked for this transaction (FOR UPDATE); created first when ``create`` (an insert that does
    nothing on conflict, so two first confirmations of one pool cannot collide)."""
    if create:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        session.execute(
            insert(SeatPool)
            .values(organisation_id=organisation_id, programme_id=programme_id, bought=0, assigned=0)
            .on_conflict_do_nothing(index_elements=["organisation_id", "programme_id"])
        )
    return session.scalars(
        select(SeatPool)
        .where(SeatPool.organisation_id == organisation_id, SeatPool.programme_id == programme_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def seat_pool(session: Session, organisation: Organisation, programme_id: str) -> SeatPool | None:
    """The pool as committed (no lock), for display; None when nothing was ever confirmed."""
    return session.scalars(
        select(SeatPool).where(SeatPool.organisation_id == organisation.id, SeatPool.programme_id == programme_id)
    ).one_or_none()


def _locked_order(session: Session, order: Order) -> Order:
    return session.scalars(
        select(Order).where(Order.id == order.id).with_for_update().execution_options(populate_existing=True)
    ).one()


# --- orders ------------------------------------------------------------------------------------------------------


def check_registration_open(programme: Programme, *, now: datetime | None = None) -> None:
    """Raises RegistrationClosed when ``programme`` has a registration deadline and it has passed at ``now``
    (default: the current time). The one rule every order path goes through (create_order); callers that write
    something before creating the order (the shop webhook, the order form) ask it first."""
    registration = programme.registration
    if registration is None or registration.deadline is None:
        return
    if not registration.is_open(utcnow() if now is None else now):
        raise RegistrationClosed(
            "registration_closed", programme=programme.title, deadline=registration.deadline.isoformat()
        )


def create_order(
    session: Session,
    *,
    organisation: Organisation,
    programme: Programme,
    quantity: int,
    source: OrderSource,
    actor: str,
    invoice_reference: str = "",
    external_id: str | None = None,
    contact_name: str = "",
    contact_email: str = "",
    now: datetime | None = None,
) -> Order:
    """A pending order at the programme's price and VAT rate, totals computed once and stored.

    Raises RegistrationClosed (an InvalidOrder, key registration_closed) when the programme's registration deadline
    has passed at ``now`` (default: the current time), and InvalidOrder with key quantity_out_of_range,
    source_unknown, external_id_required (webhook orders), external_id_taken, text_too_long or
    contact_email_invalid. Nothing is written when it raises.
    """
    check_registration_open(programme, now=now)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise InvalidOrder("quantity_out_of_range", minimum=MIN_QUANTITY, maximum=MAX_QUANTITY)
    if not isinstance(source, OrderSource):
        raise InvalidOrder("source_unknown")
    external_id = external_id.strip() if external_id else None
    if source is OrderSource.WEBHOOK and not external_id:
        raise InvalidOrder("external_id_required")
    invoice_reference, contact_name, contact_email = (
        invoice_reference.strip(),
        contact_name.strip(),
        contact_email.strip().lower(),
    )
    for value in (invoice_reference, contact_name, external_id or ""):
        if len(value) > MAX_TEXT:
            raise InvalidOrder("text_too_long", maximum=MAX_TEXT)
    if contact_email and (len(contact_email) > 320 or not _EMAIL.match(contact_email)):
        raise InvalidOrder("contact_email_invalid")
    if external_id is not None:
        taken = session.scalar(select(Order.id).where(Order.source == source, Order.external_id == external_id))
        if taken is not None:
            raise InvalidOrder("external_id_taken", order_id=taken)
    net, vat, total = order_totals(quantity, programme.price_per_licence_ore, programme.vat_rate_percent)
    order = Order(
        organisation_id=organisation.id,
        programme_id=programme.id,
        quantity=quantity,
        unit_price_ore=programme.price_per_licence_ore,
        vat_rate_percent=programme.vat_rate_percent,
        net_ore=net,
        vat_ore=vat,
        total_ore=total,
        invoice_reference=invoice_reference,
        source=source,
        external_id=external_id,
        contact_name=contact_name,
        contact_email=contact_email,
        status=OrderStatus.PENDING,
    )
    session.add(order)
    session.flush()
    _audit_order(session, order, actor=actor, action="order.create", before=None)
    session.flush()
    return order


def confirm_order(session: Session, order: Order, *, actor: str) -> Order:
    """Confirm a pending order: its quantity joins the organisation's pool for the programme.

    Raises OrderStateError("order_not_pending", status=...) for an order that is not pending (so confirming twice,
    also concurrently, adds the seats once). Nothing is written when it raises.
    """
    order = _locked_order(session, order)
    if order.status is not OrderStatus.PENDING:
        raise OrderStateError("order_not_pending", status=order.status.value)
    before = _order_state(order)
    pool = _locked_pool(session, order.organisation_id, order.programme_id, create=True)
    assert pool is not None
    pool.bought += order.quantity
    order.status = OrderStatus.CONFIRMED
    order.confirmed_at = utcnow()
    programme = programmes_once().get(order.programme_id)
    if programme is not None and programme.unassigned_seats_expire_months:
        order.unassigned_expire_at = add_months(order.confirmed_at, programme.unassigned_seats_expire_months)
    _audit_order(session, order, actor=actor, action="order.confirm", before=before)
    session.flush()
    return order


def cancel_order(session: Session, order: Order, *, actor: str) -> Order:
    """Cancel a pending or confirmed order; a confirmed one takes its seats back out of the pool.

    Raises OrderStateError("order_not_cancellable") when already cancelled or credited, and SeatsInUse (params
    requested, free, in_use) when fewer than the order's quantity are free. Nothing is written when it raises.
    """
    return _withdraw(session, order, actor=actor, credit=False)


def credit_order(session: Session, order: Order, *, actor: str) -> Order:
    """Credit a confirmed order (a credit note for an invoiced order): its seats leave the pool.

    Raises OrderStateError("order_not_creditable") unless confirmed, and SeatsInUse (params requested, free,
    in_use) when fewer than the order's quantity are free. Nothing is written when it raises.
    """
    return _withdraw(session, order, actor=actor, credit=True)


def _withdraw(session: Session, order: Order, *, actor: str, credit: bool) -> Order:
    order = _locked_order(session, order)
    allowed = {OrderStatus.CONFIRMED} if credit else {OrderStatus.PENDING, OrderStatus.CONFIRMED}
    if order.status not in allowed:
        raise OrderStateError("order_not_creditable" if credit else "order_not_cancellable", status=order.status.value)
    before = _order_state(order)
    if order.status is OrderStatus.CONFIRMED:
        pool = _locked_pool(session, order.organisation_id, order.programme_id, create=False)
        assert pool is not None  # confirming created it
        if pool.free < order.quantity:
            raise SeatsInUse("seats_in_use", requested=order.quantity, free=pool.free, in_use=pool.assigned)
        pool.bought -= order.quantity
    now = utcnow()
    if credit:
        order.status, order.credited_at = OrderStatus.CREDITED, now
    else:
        order.status, order.cancelled_at = OrderStatus.CANCELLED, now
    _audit_order(session, order, actor=actor, action="order.credit" if credit else "order.cancel", before=before)
    session.flush()
    return order


# --- seats -------------------------------------------------------------------------------------------------------


def assign_seat(
    session: Session,
    organisation: Organisation,
    programme_id: str,
    person: Person,
    workplace: str = "",
    *,
    actor: str,
    valid_months: int = SEAT_VALID_MONTHS,
    sis_user_id: str | None = None,
    login_id: str | None = None,
    kind: SeatKind = SeatKind.PARTICIPANT,
    counted: bool = True,
) -> Seat:
    """Give the person a seat of the organisation's pool, valid ``valid_months`` from now. A seat that is not
    ``counted`` (a mentor's, when mentors use no paid seat) needs no free seat and leaves the counts alone.

    Raises NoFreeSeats("no_free_seats") when the pool has none free (or does not exist), AlreadyAssigned
    ("already_assigned") when the person holds an unrevoked seat of this pool, InvalidOrder("text_too_long") for an
    over-long workplace. Nothing is written when it raises.
    """
    workplace = workplace.strip()
    if len(workplace) > MAX_TEXT:
        raise InvalidOrder("text_too_long", maximum=MAX_TEXT)
    # Lock first, then count: a second assignment of this pool waits here until the first commits.
    pool = _locked_pool(session, organisation.id, programme_id, create=not counted)
    if pool is None or (counted and pool.free < 1):
        raise NoFreeSeats("no_free_seats")
    held = session.scalar(
        select(func.count(Seat.id)).where(
            Seat.organisation_id == organisation.id,
            Seat.programme_id == programme_id,
            Seat.person_id == person.id,
            Seat.revoked_at.is_(None),
        )
    )
    if held:
        raise AlreadyAssigned("already_assigned")
    now = utcnow()
    seat = Seat(
        organisation_id=organisation.id,
        programme_id=programme_id,
        person_id=person.id,
        workplace=workplace,
        sis_user_id=sis_user_id,
        login_id=login_id,
        kind=kind,
        counted=counted,
        assigned_at=now,
        valid_until=add_months(now, valid_months),
    )
    session.add(seat)
    if counted:
        pool.assigned += 1
    session.flush()
    audit(
        session,
        actor=actor,
        action="seat.assign",
        entity_type="seat",
        entity_id=seat.id,
        before=None,
        after=_seat_state(seat),
    )
    session.flush()
    return seat


def revoke_seat(
    session: Session, seat: Seat, *, started: bool | None, actor: str, unstarted_if_not_in_canvas: bool = False
) -> Seat:
    """Revoke a seat. It returns to the pool only when its holder has not ``started``; when ``started`` is None the
    decision waits for the worker that reads Canvas (``decide_revoked_seat``) and the seat stays taken until then.

    Raises SeatStateError("seat_already_revoked"). Nothing is written when it raises.
    """
    pool = _locked_pool(session, seat.organisation_id, seat.programme_id, create=False)
    assert pool is not None  # a seat was assigned from it
    seat = _locked_seat(session, seat.id)
    if seat.revoked_at is not None:
        raise SeatStateError("seat_already_revoked")
    if (
        started is None
        and unstarted_if_not_in_canvas
        and seat.canvas_user_id is None
        and seat.canvas_enrollment_id is None
    ):
        started = False  # read under the lock: a worker cannot record an enrolment in between
    before = _seat_state(seat)
    now = utcnow()
    seat.revoked_at = now
    if started is not None:
        seat.revoke_decided_at = now
    if started is False:
        _return(seat, pool, now)
    action = {None: "seat.revoke_pending", True: "seat.revoke", False: "seat.revoke_returned"}[started]
    audit(
        session,
        actor=actor,
        action=action,
        entity_type="seat",
        entity_id=seat.id,
        before=before,
        after=_seat_state(seat) | {"started": started},
    )
    session.flush()
    return seat


def decide_revoked_seat(session: Session, seat_id: int, *, started: bool, actor: str) -> Seat | None:
    """Settle a revocation whose decision waited for Canvas: the seat returns to the pool when its holder had not
    started. None when there was nothing to decide (not revoked, or decided already)."""
    seat = session.get(Seat, seat_id)
    if seat is None:
        return None
    pool = _locked_pool(session, seat.organisation_id, seat.programme_id, create=False)
    assert pool is not None
    seat = _locked_seat(session, seat_id)
    if seat.revoked_at is None or seat.revoke_decided_at is not None:
        return None
    before = _seat_state(seat)
    now = utcnow()
    seat.revoke_decided_at = now
    if not started:
        _return(seat, pool, now)
    audit(
        session,
        actor=actor,
        action="seat.revoke_returned" if not started else "seat.revoke",
        entity_type="seat",
        entity_id=seat.id,
        before=before,
        after=_seat_state(seat) | {"started": started},
    )
    session.flush()
    return seat


def expire_seats(session: Session, *, now: datetime, actor: str) -> list[Seat]:
    """Seats held past their validity (DESIGN.md §2): revoked as used (the seat does not return to the pool). The
    caller writes the step that concludes each enrolment; the licence administrator sees them as expired."""
    expired: list[Seat] = []
    ids = session.scalars(select(Seat.id).where(Seat.revoked_at.is_(None), Seat.valid_until < now).order_by(Seat.id))
    for seat_id in list(ids):
        seat = _locked_seat(session, seat_id)
        if seat.revoked_at is not None:
            continue
        before = _seat_state(seat)
        seat.revoked_at = seat.revoke_decided_at = now
        seat.expired_at = now
        audit(
            session,
            actor=actor,
            action="seat.expire",
            entity_type="seat",
            entity_id=seat.id,
            before=before,
            after=_seat_state(seat),
        )
        expired.append(seat)
    session.flush()
    return expired


def lapse_unassigned_seats(session: Session, *, now: datetime, actor: str) -> list[tuple[int, int]]:
    """Orders whose unassigned seats expired (``unassigned_expire_at``) give those seats up: (order id, seats).

    Seats are taken from a pool's orders oldest first, so an expiring order's unassigned seats are what is left of
    it after the assigned seats fill the older orders (and it); only those leave the pool, never a seat someone
    holds. An order lapses once."""
    lapsed: list[tuple[int, int]] = []
    due = session.execute(
        select(Order.organisation_id, Order.programme_id)
        .where(
            Order.status == OrderStatus.CONFIRMED,
            Order.unassigned_expire_at.is_not(None),
            Order.unassigned_expire_at <= now,
            Order.lapsed_at.is_(None),
        )
        .distinct()
    ).all()
    for organisation_id, programme_id in due:
        # Orders first, then the pool: the order in which cancelling and crediting lock them.
        orders = session.scalars(
            select(Order)
            .where(
                Order.organisation_id == organisation_id,
                Order.programme_id == programme_id,
                Order.status == OrderStatus.CONFIRMED,
            )
            .order_by(Order.confirmed_at, Order.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        pool = _locked_pool(session, organisation_id, programme_id, create=False)
        if pool is None:
            continue
        to_fill = pool.assigned
        for order in orders:
            effective = order.quantity - order.lapsed_seats
            held = min(to_fill, effective)
            to_fill -= held
            expired = order.unassigned_expire_at is not None and order.unassigned_expire_at <= now
            if not expired or order.lapsed_at is not None:
                continue
            unassigned = min(effective - held, pool.free)
            before = _order_state(order)
            order.lapsed_seats += unassigned
            order.lapsed_at = now
            pool.bought -= unassigned
            _audit_order(session, order, actor=actor, action="order.lapse", before=before)
            lapsed.append((order.id, unassigned))
    session.flush()
    return lapsed


def _return(seat: Seat, pool: SeatPool, now: datetime) -> None:
    """The revoked seat goes back to the pool (a seat that never counted, a free mentor's, changes no count)."""
    seat.returned_at = now
    if seat.counted:
        pool.assigned -= 1


def _locked_seat(session: Session, seat_id: int) -> Seat:
    return session.scalars(
        select(Seat).where(Seat.id == seat_id).with_for_update().execution_options(populate_existing=True)
    ).one()


__all__ = [
    "AlreadyAssigned",
    "InvalidOrder",
    "LicenceError",
    "NoFreeSeats",
    "OrderStateError",
    "RegistrationClosed",
    "SeatStateError",
    "SeatsInUse",
    "assign_seat",
    "cancel_order",
    "check_registration_open",
    "confirm_order",
    "create_order",
    "credit_order",
    "decide_revoked_seat",
    "expire_seats",
    "lapse_unassigned_seats",
    "order_totals",
    "revoke_seat",
    "seat_pool",
]
