"""POST /api/purchases (DESIGN.md §6): signature, body validation, new orders, repeats, conflicts and concurrent
deliveries, through the real app on SQLite and PostgreSQL. Every refusal asserts that nothing was written."""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.licences.purchases import sign
from kurspakke.licences.services import cancel_order, confirm_order, create_order
from kurspakke.models import (
    AuditEntry,
    Order,
    OrderSource,
    OrderStatus,
    Organisation,
    OutboxStep,
    Person,
    ProgrammeRole,
    ProgrammeRoleKind,
    SeatPool,
)
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_organisation, get_or_create_person, grant_role

WEBHOOK_SECRET = "shop-shared-secret-" * 3
HEADER = "X-Kurspakke-Signature"
ORGNR = "958935420"
PROGRAMME = "lindrende-behandling"  # 30000 øre


@pytest.fixture
def app_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    return {**app_settings, "webhook_secret": WEBHOOK_SECRET}


def purchase(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": "shop-1001",
        "programme": PROGRAMME,
        "organisation": {"name": "Oslo kommune", "orgnr": ORGNR},
        "quantity": 25,
        "unit_price_ore": 30000,
        "currency": "NOK",
        "invoice_reference": "PO-77",
        "contact": {"name": "Kari Koordinator", "email": "Kari.Koordinator@Oslo.Kommune.no"},
    }
    body.update(changes)
    return body


def encode(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def post(client, body: Any, *, secret: str = WEBHOOK_SECRET, t: int | None = None, header: str | None = None):
    raw = encode(body)
    headers = {"Content-Type": "application/json"}
    if header is None:
        header = sign(secret, int(time.time()) if t is None else t, raw)
    if header != "<none>":
        headers[HEADER] = header
    return client.post("/api/purchases", data=raw, headers=headers)


def counts(db_session) -> dict[str, int]:
    return {
        "orders": db_session.scalar(select(func.count(Order.id))),
        "organisations": db_session.scalar(select(func.count(Organisation.id))),
        "bought": db_session.scalar(select(func.coalesce(func.sum(SeatPool.bought), 0))),
        "pools": db_session.scalar(select(func.count(SeatPool.id))),
        "people": db_session.scalar(select(func.count(Person.id))),
        "roles": db_session.scalar(select(func.count(ProgrammeRole.id))),
        "audit": db_session.scalar(select(func.count(AuditEntry.id))),
    }


NOTHING = {"orders": 0, "organisations": 0, "bought": 0, "pools": 0, "people": 0, "roles": 0, "audit": 0}


def fields_of(resp) -> list[str]:
    return [e["field"] for e in resp.get_json()["errors"]]


# --- a new order -------------------------------------------------------------------------------------------------


def test_new_order_is_created_confirmed_and_adds_seats(client, db_session):
    resp = post(client, purchase())
    assert resp.status_code == 201, resp.get_data(as_text=True)
    order = db_session.scalars(select(Order)).one()
    assert resp.get_json() == {"order": str(order.id), "status": "confirmed"}
    assert (order.source, order.external_id, order.status) == (OrderSource.WEBHOOK, "shop-1001", OrderStatus.CONFIRMED)
    assert (order.quantity, order.unit_price_ore, order.invoice_reference) == (25, 30000, "PO-77")
    assert (order.net_ore, order.vat_ore, order.total_ore) == (750000, 187500, 937500)
    assert order.organisation_name == "Oslo kommune"
    assert order.request_sha256 and len(order.request_sha256) == 64
    org = db_session.scalars(select(Organisation)).one()
    assert (org.name, org.orgnr, order.organisation_id) == ("Oslo kommune", ORGNR, org.id)
    pool = db_session.scalars(select(SeatPool)).one()
    assert (pool.organisation_id, pool.programme_id, pool.bought, pool.assigned) == (org.id, PROGRAMME, 25, 0)
    # The audit trail carries what the shop sent: the name it used and the hash that tells a repeat from a conflict.
    confirmed = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "order.confirm")).one()
    assert (confirmed.after["organisation_name"], confirmed.after["request_sha256"]) == (
        "Oslo kommune",
        order.request_sha256,
    )


def test_the_contact_becomes_licence_administrator_when_the_organisation_has_none(client, db_session):
    assert post(client, purchase()).status_code == 201
    person = db_session.scalars(select(Person)).one()
    assert (person.name, person.email) == ("Kari Koordinator", "kari.koordinator@oslo.kommune.no")
    role = db_session.scalars(select(ProgrammeRole)).one()
    org = db_session.scalars(select(Organisation)).one()
    assert (role.person_id, role.programme_id, role.organisation_id, role.role) == (
        person.id,
        PROGRAMME,
        org.id,
        ProgrammeRoleKind.LICENCE_ADMIN,
    )
    grants = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "role.grant")).all()
    assert [g.entity_id for g in grants] == [str(role.id)]
    # Invited by e-mail, through the outbox (sent once the order is committed).
    invitation = db_session.scalars(select(OutboxStep).where(OutboxStep.kind == "mail.send")).one()
    assert invitation.payload["to"] == "kari.koordinator@oslo.kommune.no"
    assert "lisensadministrator" in invitation.payload["subject"]
    assert "https://kurspakke.test/signin" in invitation.payload["text"]


def test_an_existing_licence_administrator_is_kept_and_the_contact_not_appointed(app, client, db_session):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        org = get_or_create_organisation(s, name="Oslo kommune", orgnr=ORGNR)
        admin = get_or_create_person(s, name="Ola Admin", email="ola@oslo.kommune.no")
        grant_role(s, admin, programme_id=PROGRAMME, organisation=org, role=ProgrammeRoleKind.LICENCE_ADMIN)
    assert post(client, purchase()).status_code == 201
    assert [p.email for p in db_session.scalars(select(Person))] == ["ola@oslo.kommune.no"]
    assert db_session.scalar(select(func.count(ProgrammeRole.id))) == 1
    assert db_session.scalar(select(func.count(OutboxStep.id))) == 0  # nobody invited


def test_a_known_organisation_keeps_its_name_and_the_order_records_the_name_sent(app, client, db_session):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        get_or_create_organisation(s, name="Oslo kommune", orgnr=ORGNR)
    body = purchase(organisation={"name": "Oslo kommune, Helseetaten", "orgnr": ORGNR})
    assert post(client, body).status_code == 201
    org = db_session.scalars(select(Organisation)).one()
    order = db_session.scalars(select(Order)).one()
    assert org.name == "Oslo kommune"
    assert (order.organisation_id, order.organisation_name) == (org.id, "Oslo kommune, Helseetaten")


@pytest.mark.parametrize("quantity", [1, 10_000])
def test_quantity_bounds_are_accepted(client, db_session, quantity):
    assert post(client, purchase(quantity=quantity)).status_code == 201
    assert db_session.scalar(select(SeatPool.bought)) == quantity


# --- repeats and conflicts ---------------------------------------------------------------------------------------


def test_a_repeat_with_the_same_body_answers_200_and_adds_nothing(client, db_session):
    first = post(client, purchase())
    assert first.status_code == 201
    before = counts(db_session)
    again = post(client, purchase())
    assert again.status_code == 200
    assert again.get_json() == first.get_json() == {"order": first.get_json()["order"], "status": "confirmed"}
    assert counts(db_session) == before


def test_a_repeat_serialised_differently_is_still_the_same_body(client, db_session):
    """The canonical hash of the parsed body, not the raw bytes: key order and whitespace do not matter."""
    assert post(client, purchase()).status_code == 201
    before = counts(db_session)
    reserialised = json.dumps(purchase(), sort_keys=True, indent=2, ensure_ascii=True).encode()
    assert reserialised != encode(purchase())
    assert post(client, reserialised).status_code == 200
    assert counts(db_session) == before


def test_a_repeat_after_cancellation_answers_cancelled(app, client, db_session):
    order_id = int(post(client, purchase()).get_json()["order"])
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        cancel_order(s, s.get(Order, order_id), actor="owner")
    before = counts(db_session)
    resp = post(client, purchase())
    assert resp.status_code == 200
    assert resp.get_json() == {"order": str(order_id), "status": "cancelled"}
    assert counts(db_session) == before


@pytest.mark.parametrize(
    "changed",
    [
        {"quantity": 26},
        {"invoice_reference": "PO-78"},
        {"contact": {"name": "Kari Koordinator", "email": "other@oslo.kommune.no"}},
        {"organisation": {"name": "Oslo", "orgnr": ORGNR}},
        {"quantity": 0},  # an invalid body with a known order id is a different body
    ],
)
def test_the_same_order_id_with_another_body_is_a_conflict(client, db_session, changed):
    assert post(client, purchase()).status_code == 201
    before = counts(db_session)
    resp = post(client, purchase(**changed))
    assert resp.status_code == 409
    assert fields_of(resp) == ["order_id"]
    assert counts(db_session) == before


def test_an_order_id_of_another_source_is_not_a_repeat(app, client, db_session):
    """Idempotency is per source: a manual order with the same external id is another order."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        org = get_or_create_organisation(s, name="Oslo kommune", orgnr=ORGNR)
        manual = create_order(
            s,
            organisation=org,
            programme=load_programmes()[PROGRAMME],
            quantity=3,
            source=OrderSource.MANUAL,
            actor="owner",
            external_id="shop-1001",
        )
        confirm_order(s, manual, actor="owner")
    assert post(client, purchase()).status_code == 201
    assert db_session.scalar(select(SeatPool.bought)) == 28


def _deliver_concurrently(app, raw: bytes, n: int = 10) -> list[int]:
    barrier = threading.Barrier(n)
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def deliver() -> None:
        try:
            client = app.test_client()
            header = sign(WEBHOOK_SECRET, int(time.time()), raw)
            barrier.wait(timeout=30)
            resp = client.post("/api/purchases", data=raw, headers={HEADER: header})
            with lock:
                statuses.append(resp.status_code)
        except BaseException as exc:  # reported below, not lost in the thread
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return sorted(statuses)


@pytest.mark.parametrize("organisation_known", [False, True], ids=["new-organisation", "known-organisation"])
def test_ten_concurrent_deliveries_make_one_order_and_one_set_of_seats(app, db_session, organisation_known):
    """New organisation: the losers also race for the organisation (unique orgnr). Known organisation: they all
    pass the first look-up and race for the order's (source, external_id) at once."""
    if organisation_known:
        with transaction(app.extensions["kurspakke"].session_factory) as s:
            get_or_create_organisation(s, name="Oslo kommune", orgnr=ORGNR)
    for attempt in range(3):
        raw = encode(purchase(order_id=f"race-{attempt}"))
        assert _deliver_concurrently(app, raw) == [200] * 9 + [201]
    assert db_session.scalar(select(func.count(Order.id))) == 3
    assert db_session.scalar(select(func.count(Organisation.id))) == 1
    assert db_session.scalar(select(SeatPool.bought)) == 75
    assert db_session.scalar(select(func.count(Person.id))) == 1
    assert db_session.scalar(select(func.count(ProgrammeRole.id))) == 1
    confirms = db_session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "order.confirm"))
    assert confirms == 3


# --- signature ---------------------------------------------------------------------------------------------------


def _assert_refused_401(resp, db_session, reason: str) -> None:
    assert resp.status_code == 401, resp.get_data(as_text=True)
    errors = resp.get_json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [(HEADER, reason)]
    assert counts(db_session) == NOTHING


def test_missing_signature_is_refused(client, db_session):
    _assert_refused_401(post(client, purchase(), header="<none>"), db_session, "signature_missing")


def _valid_parts() -> tuple[str, str]:
    t = int(time.time())
    header = sign(WEBHOOK_SECRET, t, encode(purchase()))
    return str(t), header.split(",v1=")[1]


@pytest.mark.parametrize(
    "make",
    [
        lambda t, v: f"v1={v},t={t}",  # order swapped
        lambda t, v: f"t={t}, v1={v}",  # space
        lambda t, v: f"t={t},v1={v},v0=00",  # trailing part
        lambda t, v: f"t={t},v1={v.upper()}",  # hex is lower case
        lambda t, v: f"t={t},v1={v[:-2]}",  # short digest
        lambda t, v: f"t={t}",  # no v1
        lambda t, v: f"t=-{t},v1={v}",  # sign
        lambda t, v: f"t={t}.5,v1={v}",  # fraction
        lambda t, v: f"sha256={v}",
        lambda t, v: f" t={t},v1={v}",
    ],
)
def test_malformed_signature_header_is_refused(client, db_session, make):
    t, v = _valid_parts()
    resp = post(client, purchase(), header=make(t, v))
    _assert_refused_401(resp, db_session, "signature_malformed")


def test_wrong_secret_is_refused(client, db_session):
    resp = post(client, purchase(), secret="another-secret")
    _assert_refused_401(resp, db_session, "signature_mismatch")


def test_a_body_changed_after_signing_is_refused(client, db_session):
    t = int(time.time())
    header = sign(WEBHOOK_SECRET, t, encode(purchase()))
    resp = post(client, purchase(quantity=2500), header=header)
    _assert_refused_401(resp, db_session, "signature_mismatch")


def test_the_timestamp_is_part_of_the_signed_message(client, db_session):
    t = int(time.time())
    v = sign(WEBHOOK_SECRET, t, encode(purchase())).split(",v1=")[1]
    resp = post(client, purchase(), header=f"t={t - 1},v1={v}")
    _assert_refused_401(resp, db_session, "signature_mismatch")


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400 * 365])
def test_a_timestamp_more_than_five_minutes_from_now_is_refused(client, db_session, offset):
    resp = post(client, purchase(), t=int(time.time()) + offset)
    _assert_refused_401(resp, db_session, "signature_stale")


@pytest.mark.parametrize("offset", [-290, 290])
def test_a_timestamp_within_five_minutes_is_accepted(client, offset):
    assert post(client, purchase(), t=int(time.time()) + offset).status_code == 201


def test_the_signature_is_checked_before_the_body_is_parsed(client, db_session):
    resp = post(client, b"{not json", secret="wrong")
    _assert_refused_401(resp, db_session, "signature_mismatch")


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_configured_secret_everything_is_refused_with_503(app_settings, db_session, secret):
    from lti_tool import create_app

    unconfigured = create_app({"settings": {**app_settings, "webhook_secret": secret}, "environ": {}})
    try:
        client = unconfigured.test_client()
        for header in ("<none>", None, sign("", int(time.time()), encode(purchase()))):
            resp = post(client, purchase(), header=header)
            assert resp.status_code == 503
            assert [e["code"] for e in resp.get_json()["errors"]] == ["not_configured"]
    finally:
        unconfigured.extensions["kurspakke"].engine.dispose()
    assert counts(db_session) == NOTHING


# --- body validation ---------------------------------------------------------------------------------------------


def _without(key: str) -> dict[str, Any]:
    body = purchase()
    del body[key]
    return body


def _nested(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(purchase())
    outer, inner = path.split(".")
    if value is ...:
        del body[outer][inner]
    else:
        body[outer][inner] = value
    return body


LONG = "x" * 256

INVALID_BODIES: list[tuple[str, Any, str]] = [
    ("malformed-json", b'{"order_id": "shop-1001",', "body"),
    ("not-utf8", b'{"order_id": "\xff"}', "body"),
    ("not-an-object", [purchase()], "body"),
    ("a-string", b'"purchase"', "body"),
    ("duplicate-keys", b'{"quantity": 1, "quantity": 2}', "body"),
    ("nan", encode(purchase()).replace(b'"quantity": 25', b'"quantity": NaN'), "body"),
    ("unknown-programme", purchase(programme="no-such-programme"), "programme"),
    ("programme-not-a-string", purchase(programme=["lindrende-behandling"]), "programme"),
    ("orgnr-mod11", _nested("organisation.orgnr", "958935421"), "organisation.orgnr"),
    ("orgnr-check-digit-10", _nested("organisation.orgnr", "000000060"), "organisation.orgnr"),
    ("orgnr-8-digits", _nested("organisation.orgnr", "95893542"), "organisation.orgnr"),
    ("orgnr-a-number", _nested("organisation.orgnr", 958935420), "organisation.orgnr"),
    ("orgnr-missing", _nested("organisation.orgnr", ...), "organisation.orgnr"),
    ("organisation-name-missing", _nested("organisation.name", ...), "organisation.name"),
    ("organisation-name-empty", _nested("organisation.name", "  "), "organisation.name"),
    ("organisation-name-too-long", _nested("organisation.name", LONG), "organisation.name"),
    ("organisation-not-an-object", purchase(organisation="Oslo kommune"), "organisation"),
    ("quantity-0", purchase(quantity=0), "quantity"),
    ("quantity-10001", purchase(quantity=10_001), "quantity"),
    ("quantity-negative", purchase(quantity=-5), "quantity"),
    ("quantity-a-string", purchase(quantity="25"), "quantity"),
    ("quantity-a-float", purchase(quantity=25.0), "quantity"),
    ("quantity-a-bool", purchase(quantity=True), "quantity"),
    ("price-lower", purchase(unit_price_ore=29_999), "unit_price_ore"),
    ("price-higher", purchase(unit_price_ore=30_001), "unit_price_ore"),
    ("price-in-kroner", purchase(unit_price_ore=300), "unit_price_ore"),
    ("price-a-string", purchase(unit_price_ore="30000"), "unit_price_ore"),
    ("currency-eur", purchase(currency="EUR"), "currency"),
    ("currency-lower-case", purchase(currency="nok"), "currency"),
    ("currency-null", purchase(currency=None), "currency"),
    ("email-invalid", _nested("contact.email", "kari.oslo.kommune.no"), "contact.email"),
    ("email-with-space", _nested("contact.email", "kari @oslo.kommune.no"), "contact.email"),
    ("email-too-long", _nested("contact.email", "k" * 320 + "@oslo.no"), "contact.email"),
    ("email-a-number", _nested("contact.email", 5), "contact.email"),
    ("contact-name-missing", _nested("contact.name", ...), "contact.name"),
    ("contact-name-too-long", _nested("contact.name", LONG), "contact.name"),
    ("contact-not-an-object", purchase(contact=None), "contact"),
    ("invoice-reference-too-long", purchase(invoice_reference=LONG), "invoice_reference"),
    ("invoice-reference-a-number", purchase(invoice_reference=77), "invoice_reference"),
    ("order-id-too-long", purchase(order_id=LONG), "order_id"),
    ("order-id-empty", purchase(order_id=""), "order_id"),
    ("order-id-a-number", purchase(order_id=1001), "order_id"),
    ("order-id-control-character", purchase(order_id="shop\x001001"), "order_id"),
    ("unknown-field", purchase(discount_ore=100), "discount_ore"),
    *[(f"missing-{key}", _without(key), key) for key in sorted(purchase())],
]


@pytest.mark.parametrize(
    ("body", "field"), [(b, f) for _, b, f in INVALID_BODIES], ids=[i for i, _, _ in INVALID_BODIES]
)
def test_an_invalid_body_is_refused_with_422_naming_the_field(client, db_session, body, field):
    resp = post(client, body)
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert resp.is_json
    assert fields_of(resp) == [field]
    assert all(e["message"] and e["code"] for e in resp.get_json()["errors"])
    assert counts(db_session) == NOTHING


def test_every_wrong_field_is_listed(client, db_session):
    body = purchase(quantity=0, currency="SEK", unit_price_ore=1)
    body["contact"]["email"] = "nope"
    resp = post(client, body)
    assert resp.status_code == 422
    assert sorted(fields_of(resp)) == ["contact.email", "currency", "quantity", "unit_price_ore"]
    assert counts(db_session) == NOTHING


def test_a_refused_body_with_an_existing_organisation_writes_nothing(app, client, db_session):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        get_or_create_organisation(s, name="Oslo kommune", orgnr=ORGNR)
    before = counts(db_session)
    resp = post(client, purchase(unit_price_ore=1))
    assert resp.status_code == 422
    assert counts(db_session) == before


def test_a_body_over_the_size_limit_is_refused_with_413(client, db_session, app):
    limit = app.extensions["kurspakke"].settings.max_request_bytes
    body = purchase(invoice_reference="x" * limit)
    resp = post(client, body)
    assert resp.status_code == 413
    assert resp.get_json()["errors"][0]["code"] == "too_large"
    assert counts(db_session) == NOTHING


def test_only_post_is_served(client):
    assert client.get("/api/purchases").status_code == 405
