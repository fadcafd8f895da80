"""Purchases from an external shop (DESIGN.md §3 "Purchase → seats", §6 ``POST /api/purchases``).

The web layer hands over the raw body and the signature header; everything else is decided here, without Flask:

1. ``verify_signature``: ``X-Kurspakke-Signature: t=<unix>,v1=<hex>`` parsed strictly, HMAC-SHA256 with the shared
   secret over ``"<t>.<raw body bytes>"``, compared in constant time, ``t`` within the tolerance (300 s) of now in
   either direction. It runs before the body is parsed: an unsigned body is never looked at.
2. ``parse_purchase``: the body as UTF-8 JSON (no duplicate keys, no NaN/Infinity), an object with exactly the
   contract's fields. Its ``request_sha256`` is the SHA-256 of the *canonical* JSON of the parsed body (sorted
   keys, no whitespace, UTF-8): a shop that re-serialises its retry (another key order, other whitespace or
   escapes) is still recognised as a repeat, while any change of a value is a different body. The raw bytes are
   not hashed for that reason; the signature covers them.
3. ``record_purchase``: a known order id answers from the stored order — the same body gives the order's current
   status (also ``cancelled``), another body is a ``PurchaseConflict`` — before the rest is validated, so a
   retry of an order accepted at yesterday's price is still a repeat. A new order is validated (programme,
   organisation number with MOD11, quantity 1–10,000, unit price equal to the programme's, currency NOK,
   contact e-mail, lengths; every error names its field), the programme's registration deadline checked (a
   registration after it is refused on field ``programme``, code ``registration_closed``), then created (source
   webhook, external id = the shop's order id) and confirmed at once: a shop's order is paid.

Concurrent deliveries of one order: the unique (source, external_id) constraint decides. The order is inserted
inside a savepoint; a delivery that loses the race (PostgreSQL: its insert waits for the winner's commit, then
violates the constraint; SQLite: BEGIN IMMEDIATE queues it behind the winner, whose order it then finds) rolls
back only the savepoint, re-reads the winner's order and answers like a repeat. A new organisation is created the
same way (savepoint, unique orgnr), so ten deliveries make one organisation, one order and one set of seats.

Organisations are known by their orgnr. When the shop sends another name for a known organisation, the
organisation keeps its name and the order keeps the name it was sent (``Order.organisation_name``), so the course
owner can be shown the difference; nothing is renamed silently.

Licence administrator: when the organisation has no licence administrator for the programme yet, the order's
contact becomes one (person by e-mail, ``ProgrammeRole`` LICENCE_ADMIN), audited. This runs after the
confirmation, which holds the seat pool's row lock, so two orders of one organisation cannot both appoint one.
The role is recorded only: the e-mail inviting the contact to sign in is sent by the mail increment, which reads
these roles; this module sends nothing.

Nothing is written on any refusal: every check runs before the first write, and the caller rolls the transaction
back on every answer >= 400.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kurspakke.licences.invitations import invite_licence_admin
from kurspakke.licences.models import Order, OrderSource
from kurspakke.licences.services import (
    MAX_QUANTITY,
    MIN_QUANTITY,
    InvalidOrder,
    RegistrationClosed,
    audit,
    check_registration_open,
    confirm_order,
    create_order,
)
from kurspakke.models import Organisation, ProgrammeRole, ProgrammeRoleKind
from kurspakke.programmes import Programme
from kurspakke.services.people import get_or_create_organisation, get_or_create_person, grant_role, valid_orgnr

SIGNATURE_HEADER = "X-Kurspakke-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_TEXT = 255
MAX_EMAIL = 320
CURRENCY = "NOK"
ACTOR = "webhook"
_SIGNATURE = re.compile(r"t=([0-9]{1,12}),v1=([0-9a-f]{64})")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
FIELDS = frozenset(
    {"order_id", "programme", "organisation", "quantity", "unit_price_ore", "currency", "invoice_reference", "contact"}
)
ORGANISATION_FIELDS = frozenset({"name", "orgnr"})
CONTACT_FIELDS = frozenset({"name", "email"})


# --- refusals ----------------------------------------------------------------------------------------------------


class WebhookNotConfigured(Exception):
    """No KURSPAKKE_WEBHOOK_SECRET: every delivery is refused (the web layer answers 503)."""


class SignatureRefused(Exception):
    """Missing or malformed signature header, wrong signature, or a timestamp outside the tolerance (401).
    ``reason`` is one of signature_missing, signature_malformed, signature_stale, signature_mismatch."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path in the body ("organisation.orgnr"), or "body" for the whole of it
    code: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class PurchaseRefused(Exception):
    """The body is not a valid purchase (422). ``errors`` names every field that is wrong."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__([e.as_json() for e in errors])
        self.errors = errors


class PurchaseConflict(Exception):
    """The shop's order id is known with another body (409). ``order`` is the stored order."""

    def __init__(self, order: Order) -> None:
        super().__init__(order.id)
        self.order = order


# --- signature ---------------------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The header value a shop sends: ``t=<unix>,v1=<hex hmac-sha256(secret, "<t>.<body>")>``."""
    return f"t={timestamp},v1={_mac(secret, str(timestamp), body)}"


def _mac(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str | None,
    header: str | None,
    body: bytes,
    *,
    now: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raises WebhookNotConfigured without a secret, SignatureRefused for anything but a valid, fresh signature."""
    if not secret:
        raise WebhookNotConfigured()
    if header is None or header == "":
        raise SignatureRefused("signature_missing")
    match = _SIGNATURE.fullmatch(header)
    if match is None:
        raise SignatureRefused("signature_malformed")
    timestamp, signature = match.groups()
    if abs(now - int(timestamp)) > tolerance_seconds:
        raise SignatureRefused("signature_stale")
    if not hmac.compare_digest(_mac(secret, timestamp, body), signature):
        raise SignatureRefused("signature_mismatch")


# --- body --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedPurchase:
    """A body that is a JSON object. ``data`` is not validated yet (``record_purchase`` does that)."""

    data: dict[str, Any]
    request_sha256: str


@dataclass(frozen=True)
class Purchase:
    """A validated purchase."""

    order_id: str
    programme: Programme
    organisation_name: str
    orgnr: str
    quantity: int
    unit_price_ore: int
    invoice_reference: str
    contact_name: str
    contact_email: str
    request_sha256: str = field(repr=False)


@dataclass(frozen=True)
class PurchaseOutcome:
    order: Order
    created: bool  # False: a repeat (or a concurrent delivery that lost the race) answered from the stored order


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_purchase(body: bytes) -> ParsedPurchase:
    """Raises PurchaseRefused (field "body") unless the body is a UTF-8 JSON object with no duplicate keys."""
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PurchaseRefused([FieldError("body", "invalid_json", "The body is not valid UTF-8 JSON.")]) from None
    if not isinstance(data, dict):
        raise PurchaseRefused([FieldError("body", "not_an_object", "The body must be a JSON object.")])
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return ParsedPurchase(data=data, request_sha256=hashlib.sha256(canonical).hexdigest())


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, path: str, code: str, message: str) -> None:
        self.errors.append(FieldError(path, code, message))

    def fields(self, obj: Mapping[str, Any], expected: frozenset[str], prefix: str = "") -> None:
        for name in sorted(expected - obj.keys()):
            self.fail(prefix + name, "missing", "This field is required.")
        for name in sorted(obj.keys() - expected):
            self.fail(prefix + name, "unknown_field", "This field is not part of a purchase.")

    def text(self, obj: Mapping[str, Any], name: str, path: str, *, required: bool, limit: int = MAX_TEXT) -> str:
        if name not in obj:
            return ""  # reported by fields()
        value = obj[name]
        if not isinstance(value, str):
            self.fail(path, "not_a_string", "This field must be a string.")
            return ""
        value = value.strip()
        if required and not value:
            self.fail(path, "empty", "This field must not be empty.")
        elif len(value) > limit:
            self.fail(path, "too_long", f"This field is longer than {limit} characters.")
        elif _CONTROL.search(value):
            self.fail(path, "control_characters", "This field contains control characters.")
        return value

    def integer(self, obj: Mapping[str, Any], name: str) -> int | None:
        if name not in obj:
            return None
        value = obj[name]
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, "not_an_integer", "This field must be a whole number.")
            return None
        return value

    def object(self, data: Mapping[str, Any], name: str, expected: frozenset[str]) -> dict[str, Any]:
        if name not in data:
            return {}
        value = data[name]
        if not isinstance(value, dict):
            self.fail(name, "not_an_object", "This field must be a JSON object.")
            return {}
        self.fields(value, expected, prefix=name + ".")
        return value


def order_id_of(data: Mapping[str, Any]) -> str | None:
    """The shop's order id when it is usable as one (a non-empty string of at most 255 characters), else None."""
    value = data.get("order_id")
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value and len(value) <= MAX_TEXT and not _CONTROL.search(value) else None


def validate_purchase(parsed: ParsedPurchase, programmes: Mapping[str, Programme]) -> Purchase:
    """Raises PurchaseRefused listing every wrong field (dotted paths)."""
    data = parsed.data
    check = _Checker()
    check.fields(data, FIELDS)
    order_id = check.text(data, "order_id", "order_id", required=True)
    programme_id = check.text(data, "programme", "programme", required=True)
    programme = programmes.get(programme_id)
    if programme_id and programme is None and not any(e.field == "programme" for e in check.errors):
        check.fail("programme", "unknown_programme", "No programme has this id.")
    organisation = check.object(data, "organisation", ORGANISATION_FIELDS)
    org_name = check.text(organisation, "name", "organisation.name", required=True)
    orgnr = ""
    if "orgnr" in organisation:
        raw = organisation["orgnr"]
        if not isinstance(raw, str):
            check.fail("organisation.orgnr", "not_a_string", "The organisation number must be a string of 9 digits.")
        else:
            orgnr = raw.replace(" ", "")
            if not valid_orgnr(orgnr):
                check.fail(
                    "organisation.orgnr",
                    "invalid_orgnr",
                    "Not a valid organisation number (9 digits with a MOD11 check digit).",
                )
    quantity = check.integer(data, "quantity")
    if quantity is not None and not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        check.fail("quantity", "out_of_range", f"The quantity must be between {MIN_QUANTITY} and {MAX_QUANTITY}.")
    unit_price = check.integer(data, "unit_price_ore")
    if unit_price is not None and programme is not None and unit_price != programme.price_per_licence_ore:
        check.fail(
            "unit_price_ore",
            "price_mismatch",
            f"The unit price must be the programme's price, {programme.price_per_licence_ore} øre.",
        )
    if "currency" in data and data["currency"] != CURRENCY:
        check.fail("currency", "unsupported_currency", f"The currency must be {CURRENCY}.")
    invoice_reference = check.text(data, "invoice_reference", "invoice_reference", required=False)
    contact = check.object(data, "contact", CONTACT_FIELDS)
    contact_name = check.text(contact, "name", "contact.name", required=True)
    contact_email = check.text(contact, "email", "contact.email", required=True, limit=MAX_EMAIL)
    email_ok = not any(e.field == "contact.email" for e in check.errors)
    if contact_email and email_ok and not _EMAIL.fullmatch(contact_email):
        check.fail("contact.email", "invalid_email", "Not a valid e-mail address.")
    if check.errors:
        raise PurchaseRefused(check.errors)
    assert programme is not None and quantity is not None and unit_price is not None
    return Purchase(
        order_id=order_id,
        programme=programme,
        organisation_name=org_name,
        orgnr=orgnr,
        quantity=quantity,
        unit_price_ore=unit_price,
        invoice_reference=invoice_reference,
        contact_name=contact_name,
        contact_email=contact_email.lower(),
        request_sha256=parsed.request_sha256,
    )


# --- recording ---------------------------------------------------------------------------------------------------


def _webhook_order(session: Session, order_id: str) -> Order | None:
    return session.scalars(
        select(Order)
        .where(Order.source == OrderSource.WEBHOOK, Order.external_id == order_id)
        .execution_options(populate_existing=True)
    ).one_or_none()


def _repeat(order: Order, request_sha256: str) -> PurchaseOutcome:
    if not hmac.compare_digest(order.request_sha256 or "", request_sha256):
        raise PurchaseConflict(order)
    return PurchaseOutcome(order=order, created=False)


def _organisation(session: Session, name: str, orgnr: str) -> Organisation:
    """Found by orgnr, else created with ``name``. A concurrent first order of the same organisation makes the insert
    violate the unique orgnr; the savepoint is undone and the winner's row read."""
    try:
        with session.begin_nested():
            return get_or_create_organisation(session, name=name, orgnr=orgnr)
    except IntegrityError:
        return session.scalars(select(Organisation).where(Organisation.orgnr == orgnr)).one()


def _appoint_first_admin(session: Session, order: Order, purchase: Purchase, signin_url: str | None = None) -> None:
    has_admin = session.scalar(
        select(ProgrammeRole.id)
        .where(
            ProgrammeRole.organisation_id == order.organisation_id,
            ProgrammeRole.programme_id == order.programme_id,
            ProgrammeRole.role == ProgrammeRoleKind.LICENCE_ADMIN,
        )
        .limit(1)
    )
    if has_admin is not None:
        return
    person = get_or_create_person(session, name=purchase.contact_name, email=purchase.contact_email)
    role = grant_role(
        session,
        person,
        programme_id=order.programme_id,
        organisation=order.organisation,
        role=ProgrammeRoleKind.LICENCE_ADMIN,
    )
    audit(
        session,
        actor=ACTOR,
        action="role.grant",
        entity_type="programme_role",
        entity_id=role.id,
        before=None,
        after={
            "person_id": person.id,
            "programme_id": order.programme_id,
            "organisation_id": order.organisation_id,
            "role": ProgrammeRoleKind.LICENCE_ADMIN.value,
            "reason": f"contact of order {order.id}",
        },
    )
    if signin_url:
        invite_licence_admin(session, person, order.organisation, purchase.programme, signin_url)
    session.flush()


def _registration_closed(exc: RegistrationClosed) -> FieldError:
    return FieldError(
        "programme",
        "registration_closed",
        f"Registration for this programme closed at the end of {exc.params['deadline']} (Europe/Oslo).",
    )


def record_purchase(
    session: Session,
    parsed: ParsedPurchase,
    programmes: Mapping[str, Programme],
    *,
    signin_url: str | None = None,
    now: datetime | None = None,
) -> PurchaseOutcome:
    """Record a shop's purchase: a repeat answers from the stored order, a new one is created and confirmed.

    Raises PurchaseConflict (known order id, other body) and PurchaseRefused (invalid body; also a registration
    for a programme whose registration deadline has passed at ``now``, default the current time: field
    ``programme``, code ``registration_closed``). Flushes; the caller commits, and rolls back on a refusal (nothing
    has been written by then anyway). With ``signin_url``, a contact who becomes the organisation's first licence
    administrator is invited by e-mail (an outbox step).
    """
    order_id = order_id_of(parsed.data)
    if order_id is not None:
        existing = _webhook_order(session, order_id)
        if existing is not None:
            return _repeat(existing, parsed.request_sha256)
    purchase = validate_purchase(parsed, programmes)
    try:
        # Before the organisation is written; create_order holds the same rule for every other path.
        check_registration_open(purchase.programme, now=now)
    except RegistrationClosed as exc:
        raise PurchaseRefused([_registration_closed(exc)]) from None
    organisation = _organisation(session, purchase.organisation_name, purchase.orgnr)
    try:
        with session.begin_nested():
            order = create_order(
                session,
                organisation=organisation,
                programme=purchase.programme,
                quantity=purchase.quantity,
                source=OrderSource.WEBHOOK,
                actor=ACTOR,
                invoice_reference=purchase.invoice_reference,
                external_id=purchase.order_id,
                contact_name=purchase.contact_name,
                contact_email=purchase.contact_email,
                now=now,
            )
    except (IntegrityError, InvalidOrder) as exc:
        # Lost the race for (source, external_id): another delivery of this order id committed first.
        if isinstance(exc, InvalidOrder) and exc.key != "external_id_taken":
            raise
        winner = _webhook_order(session, purchase.order_id)
        if winner is None:
            raise
        return _repeat(winner, purchase.request_sha256)
    order.organisation_name = purchase.organisation_name
    order.request_sha256 = purchase.request_sha256
    order = confirm_order(session, order, actor=ACTOR)
    _appoint_first_admin(session, order, purchase, signin_url)
    return PurchaseOutcome(order=order, created=True)


__all__ = [
    "SIGNATURE_HEADER",
    "FieldError",
    "ParsedPurchase",
    "Purchase",
    "PurchaseConflict",
    "PurchaseOutcome",
    "PurchaseRefused",
    "SignatureRefused",
    "WebhookNotConfigured",
    "parse_purchase",
    "record_purchase",
    "sign",
    "validate_purchase",
    "verify_signature",
]
