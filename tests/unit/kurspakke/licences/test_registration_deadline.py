"""The learning network's binding registration (seeds/004, DESIGN.md §2): a team's registration is an order at
0 kr, refused after the deadline (the end of that day, Europe/Oslo) with nothing written — through the services,
the order form and the shop webhook. The network runs on its content file alone."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.licences.order_form import OrderRequest, place_order
from kurspakke.licences.purchases import sign
from kurspakke.licences.services import (
    InvalidOrder,
    RegistrationClosed,
    check_registration_open,
    confirm_order,
    create_order,
    seat_pool,
)
from kurspakke.models import (
    AuditEntry,
    Order,
    OrderSource,
    OrderStatus,
    Organisation,
    OrganisationKind,
    OutboxStep,
    Person,
    ProgrammeRole,
    SeatPool,
)
from kurspakke.programmes import Registration, load_programmes
from kurspakke.services.people import get_or_create_organisation

PROGRAMMES = load_programmes()
NETWORK = PROGRAMMES["laeringsnettverk-parorende"]  # deadline 2023-08-21, no fee
MAIN = PROGRAMMES["lindrende-behandling"]  # no registration
ORGNR = "958935420"
OWNER = "course owner test@example.no"
# 21 August 2023 is summer time in Oslo (UTC+2): registration closes at 22:00 UTC.
BEFORE = datetime(2023, 8, 21, 21, 59, 59, tzinfo=UTC)
AFTER = datetime(2023, 8, 21, 22, 0, tzinfo=UTC)
CLOSED = ("registration_closed", {"programme": NETWORK.title, "deadline": "2023-08-21"})


def _counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        return {
            "orders": s.scalar(select(func.count(Order.id))) or 0,
            "organisations": s.scalar(select(func.count(Organisation.id))) or 0,
            "audit": s.scalar(select(func.count(AuditEntry.id))) or 0,
            "pools": s.scalar(select(func.count(SeatPool.id))) or 0,
            "outbox": s.scalar(select(func.count(OutboxStep.id))) or 0,
        }


def _register(session: Session, org: Organisation, now: datetime | None) -> Order:
    return create_order(
        session,
        organisation=org,
        programme=NETWORK,
        quantity=NETWORK.registration.team_size if NETWORK.registration and NETWORK.registration.team_size else 5,
        source=OrderSource.MANUAL,
        actor=OWNER,
        contact_name="Teamleder",
        contact_email="teamleder@bergen.kommune.no",
        now=now,
    )


def test_the_network_has_a_binding_registration_with_a_deadline_and_no_fee():
    assert NETWORK.registration == Registration(binding=True, deadline=date(2023, 8, 21), team_size=5)
    assert (NETWORK.price_per_licence_ore, NETWORK.vat_rate_percent) == (0, 0)
    assert NETWORK.registration_open(BEFORE) and not NETWORK.registration_open(AFTER)


def test_a_team_registers_before_the_deadline_as_an_order_at_0_kr(session, session_factory):
    org = get_or_create_organisation(session, name="Bergen kommune", orgnr=ORGNR)
    order = _register(session, org, BEFORE)
    assert (order.quantity, order.unit_price_ore, order.net_ore, order.vat_ore, order.total_ore) == (5, 0, 0, 0, 0)
    assert order.status is OrderStatus.PENDING
    confirm_order(session, order, actor=OWNER)
    session.commit()
    pool = seat_pool(session, org, NETWORK.id)
    assert pool is not None and (pool.bought, pool.assigned) == (5, 0)


def test_a_registration_after_the_deadline_is_refused_and_nothing_is_written(session, session_factory):
    org = get_or_create_organisation(session, name="Bergen kommune", orgnr=ORGNR)
    session.commit()
    before = _counts(session_factory)
    with pytest.raises(RegistrationClosed) as refused:
        _register(session, org, AFTER)
    assert isinstance(refused.value, InvalidOrder)  # every order page already shows InvalidOrder refusals
    assert (refused.value.key, refused.value.params) == CLOSED
    assert not session.new and not session.dirty
    session.commit()
    assert _counts(session_factory) == before


def test_today_is_the_default_and_the_deadline_is_long_gone(session):
    org = get_or_create_organisation(session, name="Bergen kommune", orgnr=ORGNR)
    with pytest.raises(RegistrationClosed):
        _register(session, org, None)
    # A programme without registration is ordered at any time.
    order = create_order(session, organisation=org, programme=MAIN, quantity=2, source=OrderSource.MANUAL, actor=OWNER)
    assert order.total_ore == 75000


def test_the_deadline_check_alone():
    check_registration_open(NETWORK, now=BEFORE)
    check_registration_open(MAIN, now=datetime(2099, 1, 1, tzinfo=UTC))
    check_registration_open(dataclasses.replace(NETWORK, registration=Registration(binding=True)), now=AFTER)
    with pytest.raises(RegistrationClosed):
        check_registration_open(NETWORK, now=AFTER)


def _form_request() -> OrderRequest:
    return OrderRequest(
        programme=NETWORK,
        organisation_name="Askøy kommune",
        orgnr="964338531",
        kind=OrganisationKind.KOMMUNE,
        quantity=5,
        invoice_reference="",
        contact_name="Teamleder",
        contact_email="teamleder@askoy.kommune.no",
    )


def test_the_order_form_refuses_after_the_deadline_before_writing_the_organisation(session, session_factory):
    with pytest.raises(RegistrationClosed) as refused:
        place_order(session, _form_request(), source=OrderSource.FORM, actor="form", now=AFTER)
    assert (refused.value.key, refused.value.params) == CLOSED
    assert not session.new
    session.commit()
    assert _counts(session_factory) == {"orders": 0, "organisations": 0, "audit": 0, "pools": 0, "outbox": 0}


def test_the_order_form_accepts_a_registration_before_the_deadline(session):
    placed = place_order(session, _form_request(), source=OrderSource.FORM, actor="form", now=BEFORE)
    assert (placed.order.total_ore, placed.order.quantity, placed.order.status) == (0, 5, OrderStatus.PENDING)


# --- through the shop webhook (POST /api/purchases) --------------------------------------------------------------

WEBHOOK_SECRET = "shop-shared-secret-" * 3


@pytest.fixture
def app_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    return {**app_settings, "webhook_secret": WEBHOOK_SECRET}


def _registration(order_id: str = "pamelding-1") -> dict[str, Any]:
    return {
        "order_id": order_id,
        "programme": NETWORK.id,
        "organisation": {"name": "Bergen kommune", "orgnr": ORGNR},
        "quantity": 5,
        "unit_price_ore": 0,
        "currency": "NOK",
        "invoice_reference": "",
        "contact": {"name": "Teamleder", "email": "teamleder@bergen.kommune.no"},
    }


def _post(client, body: dict[str, Any]):
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "X-Kurspakke-Signature": sign(WEBHOOK_SECRET, int(time.time()), raw)}
    return client.post("/api/purchases", data=raw, headers=headers)


def _written(db_session) -> dict[str, int]:
    return {
        "orders": db_session.scalar(select(func.count(Order.id))),
        "organisations": db_session.scalar(select(func.count(Organisation.id))),
        "pools": db_session.scalar(select(func.count(SeatPool.id))),
        "people": db_session.scalar(select(func.count(Person.id))),
        "roles": db_session.scalar(select(func.count(ProgrammeRole.id))),
        "audit": db_session.scalar(select(func.count(AuditEntry.id))),
    }


NOTHING = {"orders": 0, "organisations": 0, "pools": 0, "people": 0, "roles": 0, "audit": 0}


@pytest.fixture
def open_network(app):
    """The app's network programme with its deadline moved to the future (the shipped one closed in 2023)."""
    programmes = app.extensions["kurspakke"].programmes
    shipped = programmes[NETWORK.id]
    programmes[NETWORK.id] = dataclasses.replace(
        shipped, registration=Registration(binding=True, deadline=date(2999, 12, 31), team_size=5)
    )
    yield programmes
    programmes[NETWORK.id] = shipped


def test_the_webhook_answers_422_after_the_deadline_and_writes_nothing(client, db_session):
    resp = _post(client, _registration())
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert resp.get_json() == {
        "errors": [
            {
                "field": "programme",
                "code": "registration_closed",
                "message": "Registration for this programme closed at the end of 2023-08-21 (Europe/Oslo).",
            }
        ]
    }
    assert _written(db_session) == NOTHING


def test_the_webhook_registers_a_team_before_the_deadline_and_repeats_it_after(client, db_session, open_network):
    resp = _post(client, _registration())
    assert resp.status_code == 201, resp.get_data(as_text=True)
    order = db_session.scalars(select(Order)).one()
    assert (order.total_ore, order.quantity, order.status) == (0, 5, OrderStatus.CONFIRMED)
    assert db_session.scalars(select(SeatPool)).one().bought == 5
    # The deadline passes: the shop's retry of the accepted registration is still answered from the stored order,
    open_network[NETWORK.id] = NETWORK
    again = _post(client, _registration())
    assert (again.status_code, again.get_json()) == (200, {"order": str(order.id), "status": "confirmed"})
    # while a new registration is refused.
    late = _post(client, _registration("pamelding-2"))
    assert late.status_code == 422 and late.get_json()["errors"][0]["code"] == "registration_closed"
    assert db_session.scalar(select(func.count(Order.id))) == 1


def test_the_order_form_refuses_a_late_registration_on_the_programme_field_and_writes_nothing(client, db_session):
    from bs4 import BeautifulSoup

    from tests.support.lti import TOOL

    form = {
        "organisation_name": "Askøy kommune",
        "orgnr": "964338442",
        "kind": "kommune",
        "programme": NETWORK.id,
        "quantity": "5",
        "invoice_reference": "",
        "contact_name": "Kari",
        "contact_email": "kari@askoy.kommune.no",
    }
    headers = {"Sec-Fetch-Site": "same-origin", "Origin": TOOL}
    resp = client.post("/order", data=form, headers=headers, base_url=TOOL)
    assert resp.status_code == 422
    soup = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    assert "Påmeldingen til Læringsnettverk om pårørendearbeid stengte" in soup.get_text()
    assert soup.find(attrs={"name": "programme"}).get("aria-invalid") == "true"
    assert _written(db_session) == NOTHING
