"""Orders, seat pools, seats and their audit rows (kurspakke.licences.services), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.licences.services import (
    AlreadyAssigned,
    InvalidOrder,
    NoFreeSeats,
    OrderStateError,
    SeatsInUse,
    add_months,
    assign_seat,
    cancel_order,
    confirm_order,
    create_order,
    credit_order,
    order_totals,
    revoke_seat,
    seat_pool,
)
from kurspakke.models import (
    AuditEntry,
    Order,
    OrderSource,
    OrderStatus,
    Organisation,
    OrganisationKind,
    Person,
    Seat,
    SeatPool,
)
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_organisation, get_or_create_person

PROGRAMME = load_programmes()["lindrende-behandling"]  # 300 kr, 25 % VAT
OWNER = "course owner test@example.no"
ORGNRS = ["958935420", "983544622", "964338531", "942110464"]


def _org(session: Session, orgnr: str = ORGNRS[0], name: str = "Oslo kommune") -> Organisation:
    return get_or_create_organisation(session, name=name, orgnr=orgnr)


def _person(session: Session, n: int) -> Person:
    return get_or_create_person(session, name=f"Person {n}", email=f"person{n}@example.no")


def _confirmed(session: Session, org: Organisation, quantity: int) -> Order:
    order = create_order(
        session, organisation=org, programme=PROGRAMME, quantity=quantity, source=OrderSource.MANUAL, actor=OWNER
    )
    return confirm_order(session, order, actor=OWNER)


def _counts(factory: sessionmaker[Session]) -> dict[str, int]:
    """What is committed, read in a fresh session."""
    with factory() as s:
        return {
            "orders": s.scalar(select(func.count(Order.id))) or 0,
            "seats": s.scalar(select(func.count(Seat.id))) or 0,
            "audit": s.scalar(select(func.count(AuditEntry.id))) or 0,
            "bought": s.scalar(select(func.coalesce(func.sum(SeatPool.bought), 0))) or 0,
            "assigned": s.scalar(select(func.coalesce(func.sum(SeatPool.assigned), 0))) or 0,
        }


# --- totals ------------------------------------------------------------------------------------------------------


def test_programme_file_price_is_300_kr_at_25_percent():
    assert (PROGRAMME.price_per_licence_ore, PROGRAMME.vat_rate_percent) == (30000, 25)


def test_order_totals_are_computed_once_and_stored(session):
    org = _org(session)
    order = create_order(
        session,
        organisation=org,
        programme=PROGRAMME,
        quantity=5,
        source=OrderSource.FORM,
        actor=OWNER,
        invoice_reference="Ressursnr 4711",
        contact_name="Kari Nordmann",
        contact_email="Kari@Oslo.Kommune.no",
    )
    session.commit()
    session.expire_all()
    stored = session.get(Order, order.id)
    assert stored is not None
    assert (stored.unit_price_ore, stored.vat_rate_percent) == (30000, 25)
    assert (stored.net_ore, stored.vat_ore, stored.total_ore) == (150000, 37500, 187500)
    assert stored.status is OrderStatus.PENDING
    assert stored.invoice_reference == "Ressursnr 4711"
    assert stored.contact_email == "kari@oslo.kommune.no"


def test_vat_exempt_programme_has_no_vat(session):
    exempt = dataclasses.replace(PROGRAMME, vat_rate_percent=0)
    order = create_order(
        session, organisation=_org(session), programme=exempt, quantity=3, source=OrderSource.MANUAL, actor=OWNER
    )
    assert (order.net_ore, order.vat_ore, order.total_ore) == (90000, 0, 90000)
    assert order.vat_rate_percent == 0


@pytest.mark.parametrize(
    ("quantity", "unit", "rate", "expected"),
    [
        (1, 10, 25, (10, 3, 13)),  # 2.5 øre: half up gives 3 (banker's rounding and floor give 2)
        (1, 2, 25, (2, 1, 3)),  # 0.5 øre: half up gives 1 (banker's rounding and floor give 0)
        (1, 6, 25, (6, 2, 8)),  # 1.5 øre: 2
        (1, 3, 25, (3, 1, 4)),  # 0.75 øre: 1 (floor gives 0)
        (1, 1, 25, (1, 0, 1)),  # 0.25 øre: 0 (ceiling gives 1)
        (3, 333, 15, (999, 150, 1149)),  # VAT on the net total, 149.85 øre: 150 (per-unit rounding gives 150 too)
        (7, 7, 15, (49, 7, 56)),  # 7.35 øre on the total; rounding each unit's 1.05 øre first would give 7×1 = 7
        (3, 5, 10, (15, 2, 17)),  # 1.5 on the total; per unit 0.5 → 1 each would give 3
    ],
)
def test_vat_is_rounded_half_up_on_the_net_total(quantity, unit, rate, expected):
    assert order_totals(quantity, unit, rate) == expected


def test_vat_rounding_half_up_is_what_an_order_stores(session):
    cheap = dataclasses.replace(PROGRAMME, price_per_licence_ore=10)
    order = create_order(
        session, organisation=_org(session), programme=cheap, quantity=1, source=OrderSource.MANUAL, actor=OWNER
    )
    assert (order.net_ore, order.vat_ore, order.total_ore) == (10, 3, 13)


# --- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -1, -10_000, 10_001, 10**9, True, 2.5, "5"])
def test_quantity_outside_1_to_10000_is_refused_and_nothing_written(session, session_factory, quantity):
    org = _org(session)
    session.commit()
    before = _counts(session_factory)
    with pytest.raises(InvalidOrder) as refused:
        create_order(
            session, organisation=org, programme=PROGRAMME, quantity=quantity, source=OrderSource.FORM, actor=OWNER
        )
    assert refused.value.key == "quantity_out_of_range"
    assert refused.value.params == {"minimum": 1, "maximum": 10_000}
    session.commit()  # even a boundary that commits after the refusal writes nothing
    assert _counts(session_factory) == before


@pytest.mark.parametrize("quantity", [1, 10_000])
def test_quantity_bounds_are_accepted(session, quantity):
    order = create_order(
        session,
        organisation=_org(session),
        programme=PROGRAMME,
        quantity=quantity,
        source=OrderSource.FORM,
        actor=OWNER,
    )
    assert order.quantity == quantity


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"source": OrderSource.WEBHOOK}, "external_id_required"),
        ({"contact_email": "not-an-address"}, "contact_email_invalid"),
        ({"invoice_reference": "x" * 256}, "text_too_long"),
        ({"source": "shop"}, "source_unknown"),
    ],
)
def test_bad_order_input_is_refused_and_nothing_written(session, session_factory, kwargs, key):
    org = _org(session)
    session.commit()
    before = _counts(session_factory)
    args = {"source": OrderSource.FORM} | kwargs
    with pytest.raises(InvalidOrder) as refused:
        create_order(session, organisation=org, programme=PROGRAMME, quantity=5, actor=OWNER, **args)
    assert refused.value.key == key
    session.commit()
    assert _counts(session_factory) == before


def test_external_id_is_unique_per_source(session, session_factory):
    org = _org(session)
    first = create_order(
        session,
        organisation=org,
        programme=PROGRAMME,
        quantity=5,
        source=OrderSource.WEBHOOK,
        external_id="A-1",
        actor="shop",
    )
    # The same id from another source is another order.
    create_order(
        session,
        organisation=org,
        programme=PROGRAMME,
        quantity=5,
        source=OrderSource.MANUAL,
        external_id="A-1",
        actor=OWNER,
    )
    session.commit()
    before = _counts(session_factory)
    with pytest.raises(InvalidOrder) as refused:
        create_order(
            session,
            organisation=org,
            programme=PROGRAMME,
            quantity=5,
            source=OrderSource.WEBHOOK,
            external_id="A-1",
            actor="shop",
        )
    assert (refused.value.key, refused.value.params) == ("external_id_taken", {"order_id": first.id})
    session.commit()
    assert _counts(session_factory) == before


# --- organisations -----------------------------------------------------------------------------------------------


def test_organisation_kind_defaults_to_other_and_takes_a_network_area(session):
    area = _org(session, ORGNRS[1], "Læringsnettverk Innlandet")
    org = _org(session)
    assert org.kind is OrganisationKind.OTHER
    org.kind, org.parent = OrganisationKind.KOMMUNE, area
    session.commit()
    session.expire_all()
    stored = session.get(Organisation, org.id)
    assert stored is not None
    assert stored.kind is OrganisationKind.KOMMUNE
    assert stored.parent_id == area.id


# --- confirming, cancelling, crediting ---------------------------------------------------------------------------


def test_confirming_adds_the_quantity_to_the_pool(session):
    org = _org(session)
    _confirmed(session, org, 5)
    second = _confirmed(session, org, 7)
    pending = create_order(
        session, organisation=org, programme=PROGRAMME, quantity=100, source=OrderSource.FORM, actor=OWNER
    )
    session.commit()
    pool = seat_pool(session, org, PROGRAMME.id)
    assert pool is not None
    assert (pool.bought, pool.assigned, pool.free) == (12, 0, 12)  # the pending order adds nothing
    assert second.status is OrderStatus.CONFIRMED and second.confirmed_at is not None
    assert pending.status is OrderStatus.PENDING


def test_confirming_twice_is_refused_and_adds_the_seats_once(session, session_factory):
    org = _org(session)
    order = _confirmed(session, org, 5)
    session.commit()
    before = _counts(session_factory)
    with pytest.raises(OrderStateError) as refused:
        confirm_order(session, order, actor=OWNER)
    assert (refused.value.key, refused.value.params) == ("order_not_pending", {"status": "confirmed"})
    session.commit()
    assert _counts(session_factory) == before
    assert before["bought"] == 5


@pytest.mark.parametrize("withdraw", [cancel_order, credit_order])
def test_withdrawing_an_order_takes_its_free_seats_back(session, withdraw):
    org = _org(session)
    _confirmed(session, org, 5)
    order = _confirmed(session, org, 3)
    assign_seat(session, org, PROGRAMME.id, _person(session, 1), "sykehjem", actor=OWNER)
    withdraw(session, order, actor=OWNER)  # 8 bought, 1 assigned: the order's 3 seats are free
    session.commit()
    pool = seat_pool(session, org, PROGRAMME.id)
    assert pool is not None
    assert (pool.bought, pool.assigned, pool.free) == (5, 1, 4)
    expected = OrderStatus.CANCELLED if withdraw is cancel_order else OrderStatus.CREDITED
    assert order.status is expected


@pytest.mark.parametrize("withdraw", [cancel_order, credit_order])
def test_withdrawing_is_refused_when_it_would_take_seats_in_use_and_writes_nothing(session, session_factory, withdraw):
    org = _org(session)
    _confirmed(session, org, 2)
    order = _confirmed(session, org, 3)
    for n in range(3):
        assign_seat(session, org, PROGRAMME.id, _person(session, n), actor=OWNER)
    session.commit()  # 5 bought, 3 in use, 2 free: the order's 3 cannot all go
    before = _counts(session_factory)
    with pytest.raises(SeatsInUse) as refused:
        withdraw(session, order, actor=OWNER)
    assert refused.value.key == "seats_in_use"
    assert refused.value.params == {"requested": 3, "free": 2, "in_use": 3}
    session.commit()
    assert _counts(session_factory) == before
    session.expire_all()
    assert session.get(Order, order.id).status is OrderStatus.CONFIRMED


def test_a_pending_order_can_be_cancelled_but_not_credited(session):
    org = _org(session)
    order = create_order(
        session, organisation=org, programme=PROGRAMME, quantity=4, source=OrderSource.FORM, actor=OWNER
    )
    with pytest.raises(OrderStateError) as refused:
        credit_order(session, order, actor=OWNER)
    assert refused.value.key == "order_not_creditable"
    cancel_order(session, order, actor=OWNER)
    assert order.status is OrderStatus.CANCELLED and order.cancelled_at is not None
    with pytest.raises(OrderStateError) as again:
        cancel_order(session, order, actor=OWNER)
    assert again.value.key == "order_not_cancellable"
    with pytest.raises(OrderStateError):
        confirm_order(session, order, actor=OWNER)
    assert seat_pool(session, org, PROGRAMME.id) is None


# --- seats -------------------------------------------------------------------------------------------------------


def test_assigning_a_seat_takes_one_from_the_pool_for_twelve_months(session):
    org = _org(session)
    _confirmed(session, org, 2)
    seat = assign_seat(session, org, PROGRAMME.id, _person(session, 1), " hjemmetjeneste ", actor=OWNER)
    session.commit()
    assert seat.workplace == "hjemmetjeneste"
    assert seat.valid_until == add_months(seat.assigned_at, 12)
    assert (seat.valid_until - seat.assigned_at).days in (365, 366)
    pool = seat_pool(session, org, PROGRAMME.id)
    assert pool is not None
    assert (pool.bought, pool.assigned, pool.free) == (2, 1, 1)


def test_add_months_keeps_the_day_or_takes_the_last_of_a_shorter_month():
    assert add_months(datetime(2026, 1, 31, 9, tzinfo=UTC), 1) == datetime(2026, 2, 28, 9, tzinfo=UTC)
    assert add_months(datetime(2027, 2, 28, tzinfo=UTC), 12) == datetime(2028, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2028, 2, 29, tzinfo=UTC), 12) == datetime(2029, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 29, tzinfo=UTC), 12) == datetime(2027, 11, 29, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 29, tzinfo=UTC), 2) == datetime(2027, 1, 29, tzinfo=UTC)


def test_no_seat_without_a_free_one_and_nothing_written(session, session_factory):
    org = _org(session)
    other = _org(session, ORGNRS[1], "Hamar kommune")
    _confirmed(session, org, 1)
    _confirmed(session, other, 5)  # another organisation's free seats are not this one's
    assign_seat(session, org, PROGRAMME.id, _person(session, 1), actor=OWNER)
    session.commit()
    before = _counts(session_factory)
    with pytest.raises(NoFreeSeats) as refused:
        assign_seat(session, org, PROGRAMME.id, _person(session, 2), actor=OWNER)
    assert refused.value.key == "no_free_seats"
    with pytest.raises(NoFreeSeats):
        assign_seat(session, org, "laeringsnettverk-parorende", _person(session, 2), actor=OWNER)
    session.rollback()  # _person wrote a person; the seat services wrote nothing else
    assert _counts(session_factory) == before


def test_a_person_holding_a_seat_is_not_assigned_twice(session, session_factory):
    org = _org(session)
    _confirmed(session, org, 5)
    person = _person(session, 1)
    assign_seat(session, org, PROGRAMME.id, person, actor=OWNER)
    session.commit()
    before = _counts(session_factory)
    with pytest.raises(AlreadyAssigned) as refused:
        assign_seat(session, org, PROGRAMME.id, person, actor=OWNER)
    assert refused.value.key == "already_assigned"
    session.commit()
    assert _counts(session_factory) == before
    assert before["assigned"] == 1


def test_a_revoked_person_can_be_assigned_again(session):
    org = _org(session)
    _confirmed(session, org, 1)
    person = _person(session, 1)
    revoke_seat(session, assign_seat(session, org, PROGRAMME.id, person, actor=OWNER), started=False, actor=OWNER)
    assign_seat(session, org, PROGRAMME.id, person, actor=OWNER)
    session.commit()
    assert session.scalar(select(func.count(Seat.id)).where(Seat.person_id == person.id)) == 2


def test_revoking_before_the_person_started_returns_the_seat(session):
    org = _org(session)
    _confirmed(session, org, 1)
    seat = assign_seat(session, org, PROGRAMME.id, _person(session, 1), actor=OWNER)
    revoke_seat(session, seat, started=False, actor=OWNER)
    session.commit()
    assert seat.revoked_at is not None and seat.returned_at is not None
    pool = seat_pool(session, org, PROGRAMME.id)
    assert pool is not None
    assert (pool.assigned, pool.free) == (0, 1)
    assign_seat(session, org, PROGRAMME.id, _person(session, 2), actor=OWNER)  # the seat is someone else's now


def test_revoking_after_the_person_started_keeps_the_seat_used(session):
    org = _org(session)
    _confirmed(session, org, 1)
    seat = assign_seat(session, org, PROGRAMME.id, _person(session, 1), actor=OWNER)
    revoke_seat(session, seat, started=True, actor=OWNER)
    session.commit()
    assert seat.revoked_at is not None and seat.returned_at is None
    pool = seat_pool(session, org, PROGRAMME.id)
    assert pool is not None
    assert (pool.assigned, pool.free) == (1, 0)
    with pytest.raises(NoFreeSeats):
        assign_seat(session, org, PROGRAMME.id, _person(session, 2), actor=OWNER)
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "seat.revoke")).one()
    assert entry.after is not None and entry.after["started"] is True


def _assign_concurrently(factory: sessionmaker[Session], org_id: int, person_ids: list[int]) -> list[str]:
    barrier = threading.Barrier(len(person_ids))
    outcomes: list[str] = []
    lock = threading.Lock()

    def work(person_id: int) -> None:
        barrier.wait()
        with factory() as s:
            org, person = s.get(Organisation, org_id), s.get(Person, person_id)
            assert org is not None and person is not None
            try:
                assign_seat(s, org, PROGRAMME.id, person, "sykehjem", actor="licence admin")
                s.commit()
                outcome = "assigned"
            except NoFreeSeats as exc:
                s.rollback()
                outcome = exc.key
            except Exception as exc:  # any other outcome is recorded by name and fails the test
                s.rollback()
                outcome = repr(exc)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=work, args=(pid,)) for pid in person_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_fifty_concurrent_assignments_for_the_last_ten_seats_never_oversell(session, session_factory):
    for round_ in range(3):
        org = _org(session, ORGNRS[round_], f"Kommune {round_}")
        _confirmed(session, org, 12)
        for n in range(2):  # the pool is partly used: 10 free seats left
            assign_seat(session, org, PROGRAMME.id, _person(session, 1000 * round_ + n), actor=OWNER)
        people = [_person(session, 1000 * round_ + 100 + n).id for n in range(50)]
        session.commit()

        outcomes = _assign_concurrently(session_factory, org.id, people)

        assert len(outcomes) == 50
        assert outcomes.count("assigned") == 10, outcomes
        assert outcomes.count("no_free_seats") == 40, outcomes
        with session_factory() as s:
            seats = s.scalar(select(func.count(Seat.id)).where(Seat.organisation_id == org.id))
            pool = s.scalars(select(SeatPool).where(SeatPool.organisation_id == org.id)).one()
        assert seats == 12
        assert (pool.bought, pool.assigned, pool.free) == (12, 12, 0)


# --- audit -------------------------------------------------------------------------------------------------------


def test_every_change_writes_one_audit_row_with_before_and_after(session):
    org = _org(session)
    order = create_order(
        session, organisation=org, programme=PROGRAMME, quantity=3, source=OrderSource.FORM, actor="Kari (form)"
    )
    confirm_order(session, order, actor=OWNER)
    extra = _confirmed(session, org, 1)
    seat = assign_seat(session, org, PROGRAMME.id, _person(session, 1), "sykehjem", actor="licence admin Per")
    revoke_seat(session, seat, started=False, actor="licence admin Per")
    cancel_order(session, extra, actor=OWNER)
    session.commit()

    entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.entity_type, e.actor) for e in entries] == [
        ("order.create", "order", "Kari (form)"),
        ("order.confirm", "order", OWNER),
        ("order.create", "order", OWNER),
        ("order.confirm", "order", OWNER),
        ("seat.assign", "seat", "licence admin Per"),
        ("seat.revoke_returned", "seat", "licence admin Per"),
        ("order.cancel", "order", OWNER),
    ]
    create, confirm = entries[0], entries[1]
    assert create.entity_id == str(order.id) and create.before is None
    assert create.after is not None and create.after["total_ore"] == 112500 and create.after["status"] == "pending"
    assert confirm.before is not None and confirm.before["status"] == "pending"
    assert confirm.after is not None and confirm.after["status"] == "confirmed"
    assign, revoke = entries[4], entries[5]
    assert assign.entity_id == str(seat.id) and assign.before is None
    assert assign.after is not None and assign.after["workplace"] == "sykehjem" and assign.after["revoked_at"] is None
    assert revoke.before == assign.after
    assert revoke.after is not None and revoke.after["returned_at"] is not None and revoke.after["started"] is False
    assert entries[6].after is not None and entries[6].after["status"] == "cancelled"
    assert all(e.at is not None for e in entries)


def test_unassigned_seats_of_an_expired_order_lapse_and_assigned_ones_stay(session, monkeypatch):
    """The programme's optional expiry of unassigned seats: seats fill the oldest order first, so what lapses is the
    expiring order's part nobody holds — never a held seat, and each order once."""
    from datetime import timedelta

    from kurspakke.licences import services as licence_services
    from kurspakke.licences.services import lapse_unassigned_seats

    expiring = dataclasses.replace(PROGRAMME, unassigned_seats_expire_months=6)
    monkeypatch.setattr(licence_services, "programmes_once", lambda: {PROGRAMME.id: expiring})
    org = _org(session)
    old = _confirmed(session, org, 3)
    new = _confirmed(session, org, 4)
    assert old.unassigned_expire_at == add_months(old.confirmed_at, 6)
    new.unassigned_expire_at = add_months(old.unassigned_expire_at, 1)  # confirmed a month later
    session.flush()
    for n in range(5):  # the old order's 3 and 2 of the new order's
        assign_seat(session, org, PROGRAMME.id, _person(session, n), actor=OWNER)

    at = old.unassigned_expire_at + timedelta(seconds=1)
    assert lapse_unassigned_seats(session, now=at, actor="worker") == [(old.id, 0)]  # all held
    pool = seat_pool(session, org, PROGRAMME.id)
    assert (pool.bought, pool.assigned) == (7, 5)

    later = new.unassigned_expire_at + timedelta(seconds=1)
    assert lapse_unassigned_seats(session, now=later, actor="worker") == [(new.id, 2)]
    assert (pool.bought, pool.assigned, new.lapsed_seats) == (5, 5, 2)
    assert lapse_unassigned_seats(session, now=later + timedelta(days=1), actor="worker") == []  # once
    lapses = session.scalars(select(AuditEntry).where(AuditEntry.action == "order.lapse")).all()
    assert [a.after["lapsed_seats"] for a in lapses] == [0, 2]


def test_without_the_setting_orders_never_lapse(session):
    from datetime import timedelta

    from kurspakke.licences.services import lapse_unassigned_seats

    assert PROGRAMME.unassigned_seats_expire_months is None
    order = _confirmed(session, _org(session), 3)
    assert order.unassigned_expire_at is None
    assert lapse_unassigned_seats(session, now=datetime.now(UTC) + timedelta(days=3650), actor="worker") == []
