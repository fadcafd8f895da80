"""Orders a municipality places through the public order form, and the course owner's own orders (DESIGN.md §3
"Purchase → seats" (a) and (b), issue 7).

``parse_order`` checks every field and names each one that is wrong (codes the page words in the user's language);
``place_order`` records a pending order; ``confirm`` confirms one, makes the order's contact the organisation's
first licence administrator when it has none, and tells the contact. E-mails are outbox steps of kind
``mail.send`` written in the same transaction as the change they report (course_sync.notify_orders sends them), so
a message is neither lost nor sent for a change that was rolled back.

Organisations are known by their orgnr. A new one is created with the name and kind the form gave; a known one
keeps its name and kind, and the order keeps the name it was given (``Order.organisation_name``), which the course
owner is shown when it differs. Nothing is renamed silently.

A refusal raises before anything is written; the web layer rolls back every answer >= 400 as well.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kurspakke.licences.admins import add_administrator
from kurspakke.licences.models import Order, OrderSource, OrderStatus
from kurspakke.licences.sales import format_kr
from kurspakke.licences.services import (
    MAX_QUANTITY,
    MIN_QUANTITY,
    audit,
    check_registration_open,
    confirm_order,
    create_order,
)
from kurspakke.models import Organisation, OrganisationKind, ProgrammeRole, ProgrammeRoleKind
from kurspakke.notices import catalogue
from kurspakke.outbox.models import OutboxStep
from kurspakke.outbox.services import enqueue
from kurspakke.programmes import Programme
from kurspakke.services.people import ORGNR_WEIGHTS, valid_orgnr

MAIL_STEP = "mail.send"
MAX_TEXT = 255
MAX_EMAIL = 320
# A public form: one organisation cannot pile up more unconfirmed form orders than this for the seller to wade
# through (a mistaken double submit is fine; a script is not).
MAX_PENDING_FORM_ORDERS = 5
FIELDS = (
    "organisation_name",
    "orgnr",
    "kind",
    "programme",
    "quantity",
    "invoice_reference",
    "contact_name",
    "contact_email",
)
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DIGITS = re.compile(r"[0-9]{9}")


@dataclass(frozen=True)
class FieldProblem:
    """``code``: required, too_long, control_characters, orgnr_format, orgnr_check, kind_unknown,
    programme_unknown, quantity_not_a_number, quantity_out_of_range, email_invalid."""

    field: str
    code: str
    params: dict[str, Any] = dataclass_field(default_factory=dict)


class OrderFormInvalid(Exception):
    def __init__(self, problems: list[FieldProblem], values: dict[str, str]) -> None:
        super().__init__([(p.field, p.code) for p in problems])
        self.problems = problems
        self.values = values  # the cleaned input, to fill the form again


class TooManyPendingOrders(Exception):
    """The organisation already has MAX_PENDING_FORM_ORDERS form orders waiting for the seller."""


@dataclass(frozen=True)
class OrderRequest:
    programme: Programme
    organisation_name: str
    orgnr: str
    kind: OrganisationKind
    quantity: int
    invoice_reference: str
    contact_name: str
    contact_email: str


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    organisation_created: bool


def orgnr_problem(orgnr: str) -> str | None:
    """None for a valid organisasjonsnummer, else orgnr_format (not 9 digits) or orgnr_check (MOD11 with weights
    ORGNR_WEIGHTS; a check digit of 10 is never valid)."""
    if not _DIGITS.fullmatch(orgnr):
        return "orgnr_format"
    return None if valid_orgnr(orgnr) else "orgnr_check"


def parse_order(
    form: Mapping[str, str], programmes: Mapping[str, Programme], *, contact_required: bool = True
) -> OrderRequest:
    """The form's fields checked and cleaned. Raises OrderFormInvalid naming every wrong field."""
    values = {name: " ".join(str(form.get(name, "")).split()) for name in FIELDS}
    values["orgnr"] = values["orgnr"].replace(" ", "")
    values["contact_email"] = values["contact_email"].lower()
    problems: list[FieldProblem] = []
    required = {"organisation_name", "orgnr", "kind", "programme", "quantity"}
    if contact_required:
        required |= {"contact_name", "contact_email"}
    for name in FIELDS:
        value = values[name]
        limit = MAX_EMAIL if name == "contact_email" else MAX_TEXT
        if not value:
            if name in required:
                problems.append(FieldProblem(name, "required"))
        elif len(value) > limit:
            problems.append(FieldProblem(name, "too_long", {"maximum": limit}))
        elif _CONTROL.search(value):
            problems.append(FieldProblem(name, "control_characters"))
    bad = {p.field for p in problems}
    if values["orgnr"] and "orgnr" not in bad:
        code = orgnr_problem(values["orgnr"])
        if code:
            problems.append(FieldProblem("orgnr", code))
    kind = None
    if values["kind"] and "kind" not in bad:
        try:
            kind = OrganisationKind(values["kind"])
        except ValueError:
            problems.append(FieldProblem("kind", "kind_unknown"))
    programme = programmes.get(values["programme"])
    if values["programme"] and "programme" not in bad and programme is None:
        problems.append(FieldProblem("programme", "programme_unknown"))
    quantity = None
    if values["quantity"] and "quantity" not in bad:
        if not values["quantity"].isascii() or not values["quantity"].isdigit():
            problems.append(FieldProblem("quantity", "quantity_not_a_number"))
        else:
            quantity = int(values["quantity"][:9])
            if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
                limits = {"minimum": MIN_QUANTITY, "maximum": MAX_QUANTITY}
                problems.append(FieldProblem("quantity", "quantity_out_of_range", limits))
    if values["contact_email"] and "contact_email" not in bad and not _EMAIL.fullmatch(values["contact_email"]):
        problems.append(FieldProblem("contact_email", "email_invalid"))
    if contact_required is False and bool(values["contact_name"]) != bool(values["contact_email"]):
        missing = "contact_email" if values["contact_name"] else "contact_name"
        if missing not in {p.field for p in problems}:
            problems.append(FieldProblem(missing, "required"))
    if problems:
        problems.sort(key=lambda p: FIELDS.index(p.field))
        raise OrderFormInvalid(problems, values)
    assert programme is not None and kind is not None and quantity is not None
    return OrderRequest(
        programme=programme,
        organisation_name=values["organisation_name"],
        orgnr=values["orgnr"],
        kind=kind,
        quantity=quantity,
        invoice_reference=values["invoice_reference"],
        contact_name=values["contact_name"],
        contact_email=values["contact_email"],
    )


def _organisation(session: Session, request: OrderRequest, *, actor: str) -> tuple[Organisation, bool]:
    """Found by orgnr, else created with the form's name and kind (audited). A concurrent first order of the same
    organisation violates the unique orgnr; the savepoint is undone and the winner's row read."""
    found = session.scalars(select(Organisation).where(Organisation.orgnr == request.orgnr)).one_or_none()
    if found is not None:
        return found, False
    try:
        with session.begin_nested():
            org = Organisation(name=request.organisation_name, orgnr=request.orgnr, kind=request.kind)
            session.add(org)
            session.flush()
    except IntegrityError:
        return session.scalars(select(Organisation).where(Organisation.orgnr == request.orgnr)).one(), False
    audit(
        session,
        actor=actor,
        action="organisation.create",
        entity_type="organisation",
        entity_id=org.id,
        before=None,
        after={"name": org.name, "orgnr": org.orgnr, "kind": org.kind.value},
    )
    return org, True


def pending_form_orders(session: Session, orgnr: str) -> int:
    return (
        session.scalar(
            select(func.count(Order.id))
            .join(Organisation, Organisation.id == Order.organisation_id)
            .where(
                Organisation.orgnr == orgnr,
                Order.source == OrderSource.FORM,
                Order.status == OrderStatus.PENDING,
            )
        )
        or 0
    )


def place_order(
    session: Session,
    request: OrderRequest,
    *,
    source: OrderSource,
    actor: str,
    owner_url: str = "",
    locale: str = "nb",
    now: datetime | None = None,
) -> PlacedOrder:
    """A pending order (source form or manual). A form order tells its contact that it was received and the
    programme's contact (the seller) that an order waits for confirmation (``owner_url``: where to confirm it).

    Raises TooManyPendingOrders (form orders only) and the InvalidOrder of create_order (RegistrationClosed after
    the programme's registration deadline, at ``now``: default the current time). Nothing is written when it
    raises."""
    check_registration_open(request.programme, now=now)  # before the organisation is written
    if source is OrderSource.FORM and pending_form_orders(session, request.orgnr) >= MAX_PENDING_FORM_ORDERS:
        raise TooManyPendingOrders()
    organisation, created = _organisation(session, request, actor=actor)
    order = create_order(
        session,
        organisation=organisation,
        programme=request.programme,
        quantity=request.quantity,
        source=source,
        actor=actor,
        invoice_reference=request.invoice_reference,
        contact_name=request.contact_name,
        contact_email=request.contact_email,
        now=now,
    )
    order.organisation_name = request.organisation_name
    session.flush()
    if source is OrderSource.FORM:
        _mail_received(session, order, request.programme, locale)
        _mail_seller(session, order, request.programme, organisation, owner_url, locale)
    return PlacedOrder(order=order, organisation_created=created)


def has_licence_admin(session: Session, organisation_id: int, programme_id: str) -> bool:
    return (
        session.scalar(
            select(ProgrammeRole.id)
            .where(
                ProgrammeRole.organisation_id == organisation_id,
                ProgrammeRole.programme_id == programme_id,
                ProgrammeRole.role == ProgrammeRoleKind.LICENCE_ADMIN,
            )
            .limit(1)
        )
        is not None
    )


def confirm(session: Session, order: Order, programme: Programme, *, actor: str, locale: str = "nb") -> bool:
    """Confirm a pending order (its seats join the pool). When the organisation has no licence administrator for
    the programme yet, the order's contact becomes one (as for a shop's order, kurspakke.licences.purchases), and
    the contact is told the order is confirmed. Returns whether the contact was made administrator.

    Raises OrderStateError("order_not_pending") from confirm_order; nothing is written when it raises."""
    order = confirm_order(session, order, actor=actor)
    appointed = False
    # After confirm_order: it holds the pool's row lock, so two confirmations of one organisation cannot both
    # appoint their contact.
    if order.contact_email and not has_licence_admin(session, order.organisation_id, order.programme_id):
        add_administrator(
            session,
            order.organisation,
            order.programme_id,
            name=order.contact_name or order.contact_email,
            email=order.contact_email,
            actor=actor,
        )
        appointed = True
    if order.contact_email:
        _mail_confirmed(session, order, programme, appointed, locale)
    return appointed


class NameUnchanged(Exception):
    """The order gives no other name than the organisation's."""


def rename_organisation(session: Session, order: Order, *, actor: str) -> Organisation:
    """Give the order's organisation the name the order gave (the course owner's decision), audited.

    Raises NameUnchanged when the order gives no name or the same one; nothing is written then."""
    org = order.organisation
    new_name = order.organisation_name.strip()
    if not new_name or new_name == org.name:
        raise NameUnchanged()
    before = {"name": org.name, "orgnr": org.orgnr}
    org.name = new_name
    session.flush()
    audit(
        session,
        actor=actor,
        action="organisation.rename",
        entity_type="organisation",
        entity_id=org.id,
        before=before,
        after={"name": org.name, "orgnr": org.orgnr, "reason": f"name given in order {order.id}"},
    )
    session.flush()
    return org


# --- e-mails (outbox steps) -----------------------------------------------------------------------------------


def enqueue_mail(session: Session, order: Order, what: str, *, to: str, subject: str, text: str) -> OutboxStep | None:
    """One ``mail.send`` step, in the caller's transaction; its subject ``mail:order:<id>:<what>`` makes a repeat
    of the same message while it waits a no-op."""
    return enqueue(session, MAIL_STEP, f"mail:order:{order.id}:{what}", {"to": to, "subject": subject, "text": text})


def _summary(order: Order, programme: Programme, organisation_name: str, locale: str) -> str:
    _ = catalogue(locale).gettext
    lines = [
        _("Order number: %(number)s") % {"number": order.id},
        _("Programme: %(title)s") % {"title": programme.title},
        _("Organisation: %(name)s (organisation number %(orgnr)s)")
        % {"name": organisation_name, "orgnr": order.organisation.orgnr},
        _("Licences: %(quantity)s at %(price)s excluding VAT")
        % {"quantity": order.quantity, "price": format_kr(order.unit_price_ore)},
        _("Total: %(net)s + VAT %(vat)s = %(total)s")
        % {"net": format_kr(order.net_ore), "vat": format_kr(order.vat_ore), "total": format_kr(order.total_ore)},
    ]
    if order.invoice_reference:
        lines.append(_("Invoice reference: %(reference)s") % {"reference": order.invoice_reference})
    return "\n".join(lines)


def _mail_received(session: Session, order: Order, programme: Programme, locale: str) -> None:
    _ = catalogue(locale).gettext
    text = "\n\n".join(
        [
            _("Hello %(name)s,") % {"name": order.contact_name},
            _("We have received your order. It is confirmed by %(seller)s, and you get an e-mail when it is.")
            % {"seller": programme.issuer},
            _summary(order, programme, order.organisation_name, locale),
            _("Questions: %(email)s") % {"email": programme.contact_email},
        ]
    )
    subject = _("We received your order: %(title)s") % {"title": programme.title}
    enqueue_mail(session, order, "received", to=order.contact_email, subject=subject, text=text)


def _mail_seller(
    session: Session, order: Order, programme: Programme, organisation: Organisation, owner_url: str, locale: str
) -> None:
    _ = catalogue(locale).gettext
    parts = [
        _("A new order waits for your confirmation."),
        _summary(order, programme, order.organisation_name, locale),
        _("Contact: %(name)s <%(email)s>") % {"name": order.contact_name, "email": order.contact_email},
    ]
    if organisation.name != order.organisation_name:
        parts.append(
            _("The organisation is known as %(known)s; the order gives the name %(given)s.")
            % {"known": organisation.name, "given": order.organisation_name}
        )
    if owner_url:
        parts.append(_("Confirm or cancel it under Orders in the course administration: %(url)s") % {"url": owner_url})
    subject = _("New order to confirm: %(organisation)s, %(quantity)s licences") % {
        "organisation": order.organisation_name,
        "quantity": order.quantity,
    }
    enqueue_mail(session, order, "new", to=programme.contact_email, subject=subject, text="\n\n".join(parts))


def _mail_confirmed(session: Session, order: Order, programme: Programme, appointed: bool, locale: str) -> None:
    _ = catalogue(locale).gettext
    parts = [
        _("Hello %(name)s,") % {"name": order.contact_name or order.contact_email},
        _("Your order is confirmed. The licences are ready to be assigned."),
        _summary(order, programme, order.organisation_name or order.organisation.name, locale),
    ]
    if appointed:
        parts.append(
            _(
                "You are the licence administrator of %(organisation)s: sign in with this e-mail address on the "
                "tool's sign-in page to assign the licences."
            )
            % {"organisation": order.organisation.name}
        )
    parts.append(_("Questions: %(email)s") % {"email": programme.contact_email})
    subject = _("Your order is confirmed: %(title)s") % {"title": programme.title}
    enqueue_mail(session, order, "confirmed", to=order.contact_email, subject=subject, text="\n\n".join(parts))


__all__ = [
    "FIELDS",
    "MAIL_STEP",
    "MAX_PENDING_FORM_ORDERS",
    "ORGNR_WEIGHTS",
    "FieldProblem",
    "NameUnchanged",
    "OrderFormInvalid",
    "OrderRequest",
    "PlacedOrder",
    "TooManyPendingOrders",
    "confirm",
    "enqueue_mail",
    "has_licence_admin",
    "orgnr_problem",
    "parse_order",
    "pending_form_orders",
    "place_order",
    "rename_organisation",
]
