"""The order form's checks, the seller's visibility rule, sales per month and the ``mail.send`` step handler."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from kurspakke.licences.models import Order, OrderSource, OrderStatus
from kurspakke.licences.order_form import (
    OrderFormInvalid,
    TooManyPendingOrders,
    confirm,
    orgnr_problem,
    parse_order,
    place_order,
)
from kurspakke.licences.sales import (
    format_amount,
    format_kr,
    monthly_sales,
    neutralise,
    sales_csv,
    sales_totals,
)
from kurspakke.licences.services import cancel_order, confirm_order, create_order, credit_order
from kurspakke.licences.visibility import may_see_business
from kurspakke.models import CanvasInstance, OrganisationKind, ProgrammeRole
from kurspakke.outbox.models import OutboxStep
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_organisation

PROGRAMMES = load_programmes()
MAIN = PROGRAMMES["lindrende-behandling"]
FORM = {
    "organisation_name": "Hamar kommune",
    "orgnr": "970 000 003",
    "kind": "kommune",
    "programme": "lindrende-behandling",
    "quantity": "25",
    "invoice_reference": " Ref  4411 ",
    "contact_name": "Kari Bestiller",
    "contact_email": "KARI@hamar.kommune.no",
}


# --- parsing ---------------------------------------------------------------------------------------------------


def test_a_good_form_is_cleaned():
    req = parse_order(FORM, PROGRAMMES)
    assert (req.orgnr, req.kind, req.quantity, req.programme) == ("970000003", OrganisationKind.KOMMUNE, 25, MAIN)
    assert (req.invoice_reference, req.contact_email) == ("Ref 4411", "kari@hamar.kommune.no")


@pytest.mark.parametrize(
    ("orgnr", "problem"),
    [
        ("958935420", None),
        ("970000003", None),
        ("958935421", "orgnr_check"),
        ("958935480", "orgnr_check"),  # weights 3,2,7,6,5,4,3,2 give check digit 10: no digit is valid
        ("958935489", "orgnr_check"),
        ("95893542", "orgnr_format"),
        ("9589354200", "orgnr_format"),
        ("95893542a", "orgnr_format"),
        ("٩٥٨٩٣٥٤٢٠", "orgnr_format"),  # Arabic-Indic digits are digits to Python, not to the register
    ],
)
def test_organisation_numbers(orgnr, problem):
    assert orgnr_problem(orgnr) == problem


def problems(form: dict[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(OrderFormInvalid) as caught:
        parse_order(form, PROGRAMMES, **kwargs)
    return [(p.field, p.code) for p in caught.value.problems]


def test_every_wrong_field_is_named_in_form_order():
    bad = {**FORM, "orgnr": "123", "quantity": "10001", "contact_email": "x@", "kind": "fylke", "programme": "nope"}
    assert problems(bad) == [
        ("orgnr", "orgnr_format"),
        ("kind", "kind_unknown"),
        ("programme", "programme_unknown"),
        ("quantity", "quantity_out_of_range"),
        ("contact_email", "email_invalid"),
    ]


@pytest.mark.parametrize("quantity", ["0", "-1", "10001", "99999999999999999999"])
def test_quantity_outside_one_to_ten_thousand(quantity):
    assert problems({**FORM, "quantity": quantity}) in (
        [("quantity", "quantity_out_of_range")],
        [("quantity", "quantity_not_a_number")],  # "-1" is not a whole number as typed
    )


@pytest.mark.parametrize("quantity", ["1", "10000"])
def test_quantity_limits_are_inclusive(quantity):
    assert parse_order({**FORM, "quantity": quantity}, PROGRAMMES).quantity == int(quantity)


def test_missing_fields_and_contact_rules():
    assert problems({}) == [
        ("organisation_name", "required"),
        ("orgnr", "required"),
        ("kind", "required"),
        ("programme", "required"),
        ("quantity", "required"),
        ("contact_name", "required"),
        ("contact_email", "required"),
    ]
    # The owner's own order needs no contact, but half a contact is refused.
    no_contact = {k: v for k, v in FORM.items() if not k.startswith("contact")}
    assert parse_order(no_contact, PROGRAMMES, contact_required=False).contact_email == ""
    assert problems({**no_contact, "contact_name": "Kari"}, contact_required=False) == [("contact_email", "required")]


def test_control_characters_and_lengths():
    assert problems({**FORM, "contact_name": "Kari\x00"}) == [("contact_name", "control_characters")]
    assert problems({**FORM, "invoice_reference": "x" * 256}) == [("invoice_reference", "too_long")]


# --- placing and confirming ------------------------------------------------------------------------------------


def test_place_and_confirm(session):
    placed = place_order(session, parse_order(FORM, PROGRAMMES), source=OrderSource.FORM, actor="form")
    assert placed.organisation_created
    order = placed.order
    assert order.status is OrderStatus.PENDING
    subjects = sorted(session.scalars(select(OutboxStep.subject)))
    assert subjects == [f"mail:order:{order.id}:new", f"mail:order:{order.id}:received"]
    assert confirm(session, order, MAIN, actor="owner") is True  # no administrator yet: the contact becomes one
    role = session.scalars(select(ProgrammeRole)).one()
    assert role.person.email == "kari@hamar.kommune.no"
    confirmed = session.scalars(select(OutboxStep).where(OutboxStep.subject.like("%:confirmed"))).one()
    assert confirmed.payload["to"] == "kari@hamar.kommune.no"
    second = place_order(session, parse_order(FORM, PROGRAMMES), source=OrderSource.FORM, actor="form").order
    assert confirm(session, second, MAIN, actor="owner") is False  # it has one now
    assert session.scalar(select(func.count(ProgrammeRole.id))) == 1


def test_a_known_organisation_is_not_renamed(session):
    org = get_or_create_organisation(session, name="Hamar kommune", orgnr="970000003")
    placed = place_order(
        session,
        parse_order({**FORM, "organisation_name": "Hamar K.", "kind": "bydel"}, PROGRAMMES),
        source=OrderSource.FORM,
        actor="form",
    )
    assert not placed.organisation_created
    assert (org.name, org.kind, placed.order.organisation_name) == ("Hamar kommune", OrganisationKind.OTHER, "Hamar K.")


def test_pending_form_orders_are_capped_per_organisation(session):
    from kurspakke.licences.order_form import MAX_PENDING_FORM_ORDERS

    req = parse_order(FORM, PROGRAMMES)
    for _ in range(MAX_PENDING_FORM_ORDERS):
        place_order(session, req, source=OrderSource.FORM, actor="form")
    with pytest.raises(TooManyPendingOrders):
        place_order(session, req, source=OrderSource.FORM, actor="form")
    place_order(session, req, source=OrderSource.MANUAL, actor="owner")  # the owner is not capped


# --- visibility ------------------------------------------------------------------------------------------------


def test_only_an_owner_on_a_canvas_registered_for_provisioning_sees_the_business(session):
    here, elsewhere = "https://canvas.instructure.com|seller-guid", "https://canvas.instructure.com|other-guid"
    session.add(
        CanvasInstance(api_url="https://seller.test", account_id=1, token_encrypted=b"x", platform_instance=here)
    )
    session.flush()
    assert may_see_business(session, course_owner=True, course_platform_instance=here)
    assert not may_see_business(session, course_owner=False, course_platform_instance=here)
    assert not may_see_business(session, course_owner=True, course_platform_instance=elsewhere)
    assert not may_see_business(session, course_owner=True, course_platform_instance=None)


def test_a_canvas_added_but_not_tied_to_a_platform_shows_nothing(session):
    session.add(
        CanvasInstance(api_url="https://seller.test", account_id=1, token_encrypted=b"x", platform_instance=None)
    )
    session.flush()
    assert not may_see_business(session, course_owner=True, course_platform_instance=None)


# --- sales -----------------------------------------------------------------------------------------------------


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def order_at(session, org, quantity: int, confirmed: datetime | None, programme=MAIN) -> Order:
    order = create_order(
        session, organisation=org, programme=programme, quantity=quantity, source=OrderSource.MANUAL, actor="t"
    )
    if confirmed is not None:
        confirm_order(session, order, actor="t")
        order.confirmed_at = confirmed
    return order


def test_sales_per_month_in_oslo_time_with_credits_negative_in_their_month(session):
    org = get_or_create_organisation(session, name="Hamar kommune", orgnr="970000003")
    jan = order_at(session, org, 2, at(2027, 1, 15, 10))
    order_at(session, org, 1, at(2027, 1, 31, 23, 30))  # 00:30 on 1 February in Oslo
    credited = order_at(session, org, 4, at(2027, 1, 20))
    credit_order(session, credited, actor="t")
    credited.credited_at = at(2027, 3, 2)
    cancelled_confirmed = order_at(session, org, 3, at(2027, 2, 3))
    cancel_order(session, cancelled_confirmed, actor="t")
    cancelled_confirmed.cancelled_at = at(2027, 2, 10)
    never = order_at(session, org, 7, None)
    cancel_order(session, never, actor="t")  # cancelled while pending: never a sale
    order_at(session, org, 9, None)  # pending: not a sale yet
    session.flush()
    lines = monthly_sales(session, MAIN.id)
    table = [
        (x.month, x.vat_rate_percent, x.sales, x.credits, x.quantity, x.net_ore, x.vat_ore, x.total_ore) for x in lines
    ]
    assert table == [
        ("2027-01", 25, 2, 0, 6, 180_000, 45_000, 225_000),
        ("2027-02", 25, 2, 1, 1, 30_000, 7_500, 37_500),
        ("2027-03", 25, 0, 1, -4, -120_000, -30_000, -150_000),
    ]
    totals = sales_totals(lines)
    assert (totals.quantity, totals.net_ore, totals.vat_ore, totals.total_ore) == (3, 90_000, 22_500, 112_500)
    assert jan.total_ore == 75_000


def test_sales_are_per_vat_rate(session):
    org = get_or_create_organisation(session, name="Hamar kommune", orgnr="970000003")
    order_at(session, org, 1, at(2027, 5, 5))
    exempt = order_at(session, org, 1, at(2027, 5, 6))
    exempt.vat_rate_percent, exempt.vat_ore, exempt.total_ore = 0, 0, exempt.net_ore  # a VAT-exempt sale (§ 3-5)
    session.flush()
    assert [(x.month, x.vat_rate_percent, x.total_ore) for x in monthly_sales(session, MAIN.id)] == [
        ("2027-05", 0, 30_000),
        ("2027-05", 25, 37_500),
    ]


def test_money_formats():
    assert format_kr(37_500) == "375,00\u00a0kr"
    assert format_kr(1_234_567) == "12\u00a0345,67\u00a0kr"
    assert format_kr(-37_500) == "-375,00\u00a0kr"
    assert format_kr(5) == "0,05\u00a0kr"
    assert (format_amount(-150_000), format_amount(0)) == ("-1500,00", "0,00")


def test_csv_has_bom_semicolons_and_neutralised_text():
    from kurspakke.licences.sales import SalesLine

    body = sales_csv([SalesLine("2027-03", 25, 0, 1, -4, -120_000, -30_000, -150_000)])
    assert body.startswith("\ufeff".encode())
    assert body.decode("utf-8-sig").splitlines() == [
        "måned;mva-sats;salg;krediteringer;lisenser;netto;mva;totalt",
        "2027-03;25;0;1;-4;-1200,00;-300,00;-1500,00",
    ]
    assert [neutralise(v) for v in ("=1+1", "+47", "-x", "@SUM", "2027-01")] == [
        "'=1+1",
        "'+47",
        "'-x",
        "'@SUM",
        "2027-01",
    ]


# --- the mail.send step ----------------------------------------------------------------------------------------


class FakeCtx:
    def __init__(self, session_factory):
        self.sessions = session_factory
        self.finished = 0

    def finish(self, session) -> bool:
        self.finished += 1
        return True


def test_send_payload_sends_and_finishes(session_factory):
    from course_sync.notify_orders import send_payload

    sent: list[dict[str, str]] = []
    ctx = FakeCtx(session_factory)
    send_payload(ctx, {"to": "a@b.no", "subject": "S", "text": "T"}, lambda **kw: sent.append(kw))  # type: ignore[arg-type]
    assert sent == [{"to": "a@b.no", "subject": "S", "text": "T"}]
    assert ctx.finished == 1


def test_send_payload_parks_what_can_never_be_sent_and_retries_the_rest(session_factory):
    from course_sync.notify_orders import send_payload
    from kurspakke.mail import InvalidMail, MailError
    from kurspakke.outbox.services import StepPark, StepRetry

    ctx = FakeCtx(session_factory)

    def raising(exc: Exception):
        def send(**_kw: str) -> None:
            raise exc

        return send

    with pytest.raises(StepPark):
        send_payload(ctx, {"to": "a@b.no", "subject": "", "text": "T"}, raising(AssertionError()))  # type: ignore[arg-type]
    with pytest.raises(StepPark):
        send_payload(ctx, {"to": "a@b.no", "subject": "S", "text": "T"}, raising(InvalidMail("bad")))  # type: ignore[arg-type]
    with pytest.raises(StepRetry):
        send_payload(ctx, {"to": "a@b.no", "subject": "S", "text": "T"}, raising(MailError("down")))  # type: ignore[arg-type]
    assert ctx.finished == 0
