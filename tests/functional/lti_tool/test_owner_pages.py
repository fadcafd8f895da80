"""The course owner's business pages and the public order form, through the Flask client and the Canvas simulator,
on SQLite and PostgreSQL.

Messages are compared with the app's own catalogue (``say``), so the assertions hold before and after the Bokmål
translations of these pages are merged into it."""

from __future__ import annotations

from typing import Any

import pytest
from bs4 import BeautifulSoup
from flask import g
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.licences.models import AuditEntry, Order, OrderSource, OrderStatus, SeatPool
from kurspakke.licences.services import assign_seat, confirm_order, create_order
from kurspakke.models import CanvasInstance, Organisation, OrganisationKind, ProgrammeRole, ProgrammeRoleKind
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_person
from lti_tool.i18n import gettext
from tests.functional.lti_tool.test_identity_takeover import become_another_institution, link_own_course_as_owner
from tests.support.factories import PROGRAMME, link_sim_course, organisation, sim_instance
from tests.support.lti import TOOL, launch_token, open_page

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": TOOL}
GOOD_FORM = {
    "organisation_name": "Hamar kommune",
    "orgnr": "970000003",
    "kind": "kommune",
    "programme": PROGRAMME,
    "quantity": "25",
    "invoice_reference": "Ref 4411",
    "contact_name": "Kari Bestiller",
    "contact_email": "Kari.Bestiller@Hamar.kommune.no",
}


def factory(app):
    return app.extensions["kurspakke"].session_factory


def say(app, message: str, **params: Any) -> str:
    """The text the pages show for ``message`` (Bokmål when the catalogue has it)."""
    with app.test_request_context("/"):
        g.locale = "nb"
        return gettext(message, **params)


def text_of(resp) -> str:
    return " ".join(BeautifulSoup(resp.get_data(as_text=True), "html.parser").get_text(" ").split())


def counts(db_session) -> dict[str, int]:
    """Everything these pages may write."""
    return {
        model.__name__: db_session.scalar(select(func.count()).select_from(model))
        for model in (Order, Organisation, OutboxStep, AuditEntry, SeatPool, ProgrammeRole)
    }


def register_provisioning_canvas(app, sim) -> None:
    """`kurspakke canvas add` for the simulator's Canvas: a REST instance tied to its LTI platform instance."""
    with transaction(factory(app)) as s:
        s.add(
            CanvasInstance(
                api_url=sim.config.base_url, account_id=1, token_encrypted=b"x", platform_instance=sim_instance(sim)
            )
        )


@pytest.fixture
def seller(app, sim) -> None:
    """The programme linked on the simulator's Canvas, which the seller registered for provisioning."""
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
    register_provisioning_canvas(app, sim)


@pytest.fixture
def owner(driver, seller) -> str:
    """A launch token of the course owner (Per Olsen, Teacher) on the seller's Canvas."""
    resp = driver.launch("kurseier")
    assert resp.status_code == 200
    return launch_token(resp.get_data(as_text=True))


def post(client, path: str, token: str, **data: str):
    return client.post(path, data={"lt": token, **data}, base_url=TOOL)


def pending_order(app, *, name: str = "Oslo kommune", contact: str = "anne@oslo.kommune.no", quantity: int = 10) -> int:
    programme = load_programmes()[PROGRAMME]
    with transaction(factory(app)) as s:
        order = create_order(
            s,
            organisation=organisation(s),
            programme=programme,
            quantity=quantity,
            source=OrderSource.FORM,
            actor="test",
            contact_name="Anne Kontakt",
            contact_email=contact,
        )
        order.organisation_name = name
        return order.id


OWNER_PAGES = ["/owner/orders", "/owner/organisations", "/owner/steps", "/owner/sales"]


# --- who sees it ------------------------------------------------------------------------------------------------


def test_an_owner_on_the_sellers_canvas_sees_every_page_and_the_links(app, client, driver, seller):
    landing = driver.launch("kurseier")
    token = launch_token(landing.get_data(as_text=True))
    soup = BeautifulSoup(landing.get_data(as_text=True), "html.parser")
    assert {a["href"] for a in soup.select("a[data-app-link]")} >= set(OWNER_PAGES)
    for path in OWNER_PAGES:
        resp = open_page(client, path, token)
        assert resp.status_code == 200, path
        assert BeautifulSoup(resp.get_data(as_text=True), "html.parser").h1 is not None


def test_a_get_without_token_gets_the_resume_page_and_no_data(client, owner, app):
    pending_order(app)
    resp = client.get("/owner/orders", base_url=TOOL)
    assert resp.status_code == 200
    assert "data-resume" in resp.get_data(as_text=True)
    assert "anne@oslo.kommune.no" not in resp.get_data(as_text=True)


def test_an_instructor_on_another_registered_canvas_sees_none_of_it(app, client, driver, sim, seller, db_session):
    """Another institution's Canvas (same issuer, registered as a platform, never `canvas add`ed): a teacher there
    links the programme in a course of their own and is its course owner — and sees no order, organisation or sale,
    and can change nothing."""
    order_id = pending_order(app)
    become_another_institution(app, sim)
    link_own_course_as_owner(driver, client, sim)
    landing = driver.launch("kurseier")
    assert landing.status_code == 200
    assert "/owner/orders" not in landing.get_data(as_text=True)
    token = launch_token(landing.get_data(as_text=True))
    before = counts(db_session)
    from lti_tool.views.owner_pages import REFUSAL_MESSAGES

    refusal = say(app, REFUSAL_MESSAGES["not_sellers_canvas"])
    for path in [*OWNER_PAGES, f"/owner/orders/{order_id}/confirm", "/owner/sales.csv", "/owner/organisations/1"]:
        resp = open_page(client, path, token)
        assert resp.status_code == 403, path
        assert refusal in text_of(resp)
        assert "anne@oslo.kommune.no" not in resp.get_data(as_text=True)
    resp = post(client, "/owner/orders/new", token, **GOOD_FORM)
    assert resp.status_code == 403
    assert counts(db_session) == before
    assert db_session.scalar(select(Order.status).where(Order.id == order_id)) is OrderStatus.PENDING


def test_an_owner_whose_canvas_was_never_added_for_provisioning_sees_none_of_it(app, client, driver, sim, db_session):
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
    token = launch_token(driver.launch("kurseier").get_data(as_text=True))
    for path in OWNER_PAGES:
        assert open_page(client, path, token).status_code == 403


def test_someone_who_is_not_a_course_owner_is_refused(app, client, driver, seller, sim):
    from tests.support.factories import person_for

    with transaction(factory(app)) as s:
        person_for(s, sim, "lisensadministrator", ProgrammeRoleKind.LICENCE_ADMIN)
    token = launch_token(driver.launch("lisensadministrator").get_data(as_text=True))
    for path in OWNER_PAGES:
        assert open_page(client, path, token).status_code == 403


# --- the public order form --------------------------------------------------------------------------------------


def test_the_form_is_public_and_labelled(client):
    resp = client.get("/order", base_url=TOOL)
    assert resp.status_code == 200
    soup = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    for field in GOOD_FORM:
        control = soup.select_one(f"[name={field}]")
        assert control is not None, field
        assert soup.select_one(f"label[for={control['id']}]") is not None, field


def test_a_form_order_is_pending_creates_the_organisation_and_writes_two_mails(app, client, db_session):
    resp = client.post("/order", data=GOOD_FORM, headers=SAME_ORIGIN, base_url=TOOL)
    assert resp.status_code == 200, text_of(resp)
    order = db_session.scalars(select(Order)).one()
    assert (order.status, order.source, order.quantity) == (OrderStatus.PENDING, OrderSource.FORM, 25)
    assert (order.net_ore, order.vat_ore, order.total_ore) == (750_000, 187_500, 937_500)
    assert order.contact_email == "kari.bestiller@hamar.kommune.no"
    assert order.invoice_reference == "Ref 4411"
    org = db_session.scalars(select(Organisation)).one()
    assert (org.name, org.orgnr, org.kind) == ("Hamar kommune", "970000003", OrganisationKind.KOMMUNE)
    steps = {s.subject: s for s in db_session.scalars(select(OutboxStep))}
    assert set(steps) == {f"mail:order:{order.id}:received", f"mail:order:{order.id}:new"}
    assert all(s.kind == "mail.send" for s in steps.values())
    received, new = steps[f"mail:order:{order.id}:received"], steps[f"mail:order:{order.id}:new"]
    assert received.payload["to"] == "kari.bestiller@hamar.kommune.no"
    assert new.payload["to"] == load_programmes()[PROGRAMME].contact_email
    assert "7\u00a0500,00\u00a0kr" in received.payload["text"] and "9\u00a0375,00\u00a0kr" in received.payload["text"]
    assert {a.action for a in db_session.scalars(select(AuditEntry))} == {"organisation.create", "order.create"}
    assert "7\u00a0500,00\u00a0kr" in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count(SeatPool.id))) == 0  # no seats before the owner confirms


def test_a_known_organisation_keeps_its_name_and_the_owner_is_shown_the_other_one(app, client, owner, db_session):
    with transaction(factory(app)) as s:
        organisation(s, name="Hamar kommune", orgnr="970000003")
    form = {**GOOD_FORM, "organisation_name": "Hamar kommune helse og omsorg", "kind": "other"}
    assert client.post("/order", data=form, headers=SAME_ORIGIN, base_url=TOOL).status_code == 200
    org = db_session.scalars(select(Organisation)).one()
    assert (org.name, org.kind) == ("Hamar kommune", OrganisationKind.OTHER)  # the existing row's kind: unchanged
    assert db_session.scalars(select(Order)).one().organisation_name == "Hamar kommune helse og omsorg"
    page = text_of(open_page(client, "/owner/orders", owner))
    assert say(app, "Other name in the order:") in page
    assert "Hamar kommune helse og omsorg" in page
    seller_mail = db_session.scalars(select(OutboxStep).where(OutboxStep.subject.like("%:new"))).one()
    assert "Hamar kommune helse og omsorg" in seller_mail.payload["text"]


def test_the_owner_may_take_the_orders_name_by_pressing_its_button(app, client, owner, db_session):
    order_id = pending_order(app, name="Oslo kommune, helseetaten")
    before = counts(db_session)
    resp = post(client, f"/owner/orders/{order_id}/use-name", owner)
    assert resp.status_code == 200
    assert db_session.scalar(select(Organisation.name)) == "Oslo kommune, helseetaten"
    rename = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "organisation.rename")).one()
    assert (rename.before["name"], rename.after["name"]) == ("Oslo kommune", "Oslo kommune, helseetaten")
    assert counts(db_session)["AuditEntry"] == before["AuditEntry"] + 1
    again = post(client, f"/owner/orders/{order_id}/use-name", owner)  # nothing left to apply
    assert again.status_code == 409
    assert counts(db_session)["AuditEntry"] == before["AuditEntry"] + 1


BAD_INPUT = [
    ("orgnr", "958935480", "orgnr_check"),  # MOD11 check digit 10: never valid
    ("orgnr", "958935421", "orgnr_check"),
    ("orgnr", "95893542", "orgnr_format"),
    ("orgnr", "95893542x", "orgnr_format"),
    ("quantity", "0", "quantity_out_of_range"),
    ("quantity", "10001", "quantity_out_of_range"),
    ("quantity", "2.5", "quantity_not_a_number"),
    ("quantity", "", "required"),
    ("contact_email", "kari@", "email_invalid"),
    ("contact_name", "  ", "required"),
    ("organisation_name", "x" * 256, "too_long"),
    ("organisation_name", "Hamar\x00kommune", "control_characters"),
    ("kind", "fylke", "kind_unknown"),
    ("programme", "no-such-programme", "programme_unknown"),
]


@pytest.mark.parametrize(("field", "value", "code"), BAD_INPUT, ids=[f"{f}-{c}" for f, _, c in BAD_INPUT])
def test_bad_input_is_refused_with_a_clear_message_and_nothing_written(app, client, db_session, field, value, code):
    from lti_tool.views.owner_pages import FIELD_LABELS, PROBLEM_MESSAGES

    before = counts(db_session)
    resp = client.post("/order", data={**GOOD_FORM, field: value}, headers=SAME_ORIGIN, base_url=TOOL)
    assert resp.status_code == 422
    soup = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    params = {"quantity_out_of_range": {"minimum": 1, "maximum": 10000}, "too_long": {"maximum": 255}}.get(code, {})
    message = say(app, PROBLEM_MESSAGES[code], **params)
    assert soup.select_one(f"#e-{field}").get_text(strip=True) == message
    assert soup.select_one(f"#f-{field}")["aria-invalid"] == "true"
    alert = soup.select_one("[role=alert]")
    assert say(app, FIELD_LABELS[field]) in alert.get_text() and message in alert.get_text()
    assert counts(db_session) == before


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "https://evil.example"}],
    ids=["cross-site", "same-site", "foreign-origin"],
)
def test_a_post_from_another_site_is_refused_and_writes_nothing(app, client, db_session, headers):
    before = counts(db_session)
    resp = client.post("/order", data=GOOD_FORM, headers=headers, base_url=TOOL)
    assert resp.status_code == 403
    assert say(app, "The order was sent from another website and has been stopped.") in text_of(resp)
    assert counts(db_session) == before


def test_one_organisation_cannot_pile_up_unconfirmed_orders(app, client, db_session):
    from kurspakke.licences.order_form import MAX_PENDING_FORM_ORDERS

    for _ in range(MAX_PENDING_FORM_ORDERS):
        assert client.post("/order", data=GOOD_FORM, headers=SAME_ORIGIN, base_url=TOOL).status_code == 200
    before = counts(db_session)
    resp = client.post("/order", data=GOOD_FORM, headers=SAME_ORIGIN, base_url=TOOL)
    assert resp.status_code == 429
    assert counts(db_session) == before


# --- the owner's work on orders ---------------------------------------------------------------------------------


def test_confirming_a_form_order_adds_seats_appoints_the_contact_and_tells_them(app, client, owner, db_session):
    assert client.post("/order", data=GOOD_FORM, headers=SAME_ORIGIN, base_url=TOOL).status_code == 200
    order_id = db_session.scalar(select(Order.id))
    resp = post(client, f"/owner/orders/{order_id}/confirm", owner)
    assert resp.status_code == 200, text_of(resp)
    assert say(app, "Order %(number)s is confirmed.", number=order_id) in text_of(resp)
    assert db_session.scalar(select(Order.status)) is OrderStatus.CONFIRMED
    assert db_session.scalar(select(SeatPool.bought)) == 25
    role = db_session.scalars(select(ProgrammeRole)).one()
    assert role.role is ProgrammeRoleKind.LICENCE_ADMIN
    mail = db_session.scalars(select(OutboxStep).where(OutboxStep.subject == f"mail:order:{order_id}:confirmed")).one()
    assert mail.payload["to"] == "kari.bestiller@hamar.kommune.no"
    actions = [a.action for a in db_session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-2:] == ["order.confirm", "role.grant"]
    assert (
        db_session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first().actor.startswith("course-owner:")
    )
    # Confirming twice is refused and changes nothing.
    before = counts(db_session)
    again = post(client, f"/owner/orders/{order_id}/confirm", owner)
    assert again.status_code == 409
    assert say(app, "This order is not waiting for confirmation any more.") in text_of(again)
    assert counts(db_session) == before


def test_an_organisation_with_an_administrator_keeps_just_that_one(app, client, owner, db_session):
    order_id = pending_order(app)
    with transaction(factory(app)) as s:
        from kurspakke.licences.admins import add_administrator

        add_administrator(s, organisation(s), PROGRAMME, name="Eva Admin", email="eva@oslo.kommune.no", actor="t")
    assert post(client, f"/owner/orders/{order_id}/confirm", owner).status_code == 200
    assert db_session.scalar(select(func.count(ProgrammeRole.id))) == 1  # Eva only; the order's contact is not added
    assert db_session.scalar(select(SeatPool.bought)) == 10


def test_cancelling_or_crediting_into_seats_in_use_is_refused_clearly(app, client, owner, db_session):
    programme = load_programmes()[PROGRAMME]
    with transaction(factory(app)) as s:
        org = organisation(s)
        order = create_order(s, organisation=org, programme=programme, quantity=2, source=OrderSource.MANUAL, actor="t")
        confirm_order(s, order, actor="t")
        person = get_or_create_person(s, name="Ola Deltaker", email="ola@oslo.kommune.no")
        assign_seat(s, org, PROGRAMME, person, actor="t")
        order_id = order.id
    before = counts(db_session)
    for action in ("cancel", "credit"):
        resp = post(client, f"/owner/orders/{order_id}/{action}", owner)
        assert resp.status_code == 409
        alert = BeautifulSoup(resp.get_data(as_text=True), "html.parser").select_one("[role=alert]").get_text()
        assert alert == say(
            app,
            "Refused: this would cut into seats in use. The order has %(requested)s licences, but only %(free)s of "
            "the organisation's licences are free (%(in_use)s are in use). Revoke seats first.",
            requested=2,
            free=1,
            in_use=1,
        )
    assert counts(db_session) == before
    assert db_session.scalar(select(Order.status)) is OrderStatus.CONFIRMED


def test_crediting_and_cancelling_free_seats(app, client, owner, db_session):
    programme = load_programmes()[PROGRAMME]
    with transaction(factory(app)) as s:
        org = organisation(s)
        first = create_order(s, organisation=org, programme=programme, quantity=3, source=OrderSource.MANUAL, actor="t")
        confirm_order(s, first, actor="t")
        second = create_order(
            s, organisation=org, programme=programme, quantity=4, source=OrderSource.MANUAL, actor="t"
        )
        ids = first.id, second.id
    assert post(client, f"/owner/orders/{ids[0]}/credit", owner).status_code == 200
    assert post(client, f"/owner/orders/{ids[1]}/cancel", owner).status_code == 200
    statuses = {o.id: o.status for o in db_session.scalars(select(Order))}
    assert statuses == {ids[0]: OrderStatus.CREDITED, ids[1]: OrderStatus.CANCELLED}
    assert db_session.scalar(select(SeatPool.bought)) == 0
    assert post(client, f"/owner/orders/{ids[1]}/credit", owner).status_code == 409  # a cancelled order: not creditable


def test_the_owner_enters_an_order_and_confirms_it_at_once(app, client, owner, db_session):
    form = {k: v for k, v in GOOD_FORM.items() if k != "programme"}
    resp = post(client, "/owner/orders/new", owner, **form, confirm_now="yes")
    assert resp.status_code == 200, text_of(resp)
    order = db_session.scalars(select(Order)).one()
    assert (order.source, order.status) == (OrderSource.MANUAL, OrderStatus.CONFIRMED)
    assert db_session.scalar(select(SeatPool.bought)) == 25
    # The owner's own order sends no "received"/"to confirm" mails; the contact is told it is confirmed.
    assert [s.subject for s in db_session.scalars(select(OutboxStep))] == [f"mail:order:{order.id}:confirmed"]


def test_the_owner_enters_a_pending_order_without_contact(app, client, owner, db_session):
    form = {"organisation_name": "Hamar kommune", "orgnr": "970000003", "kind": "kommune", "quantity": "5"}
    assert post(client, "/owner/orders/new", owner, **form).status_code == 200
    order = db_session.scalars(select(Order)).one()
    assert (order.source, order.status, order.contact_email) == (OrderSource.MANUAL, OrderStatus.PENDING, "")
    assert db_session.scalar(select(func.count(OutboxStep.id))) == 0


def test_a_bad_manual_order_is_refused_and_writes_nothing(app, client, owner, db_session):
    before = counts(db_session)
    resp = post(client, "/owner/orders/new", owner, **{**GOOD_FORM, "orgnr": "958935480"})
    assert resp.status_code == 422
    assert counts(db_session) == before


# --- organisations and their administrators ---------------------------------------------------------------------


def test_the_owner_adds_and_removes_licence_administrators_of_any_organisation(app, client, owner, db_session):
    with transaction(factory(app)) as s:
        org_id = organisation(s).id
    path = f"/owner/organisations/{org_id}"
    assert "Oslo kommune" in text_of(open_page(client, "/owner/organisations", owner))
    ok = post(client, path + "/admins/add", owner, name="Eva Admin", email="Eva@Oslo.kommune.no")
    assert ok.status_code == 200
    assert "eva@oslo.kommune.no" in text_of(ok)
    ok = post(client, path + "/admins/add", owner, name="Jon Admin", email="jon@oslo.kommune.no")
    assert ok.status_code == 200
    before = counts(db_session)
    dup = post(client, path + "/admins/add", owner, name="Eva", email="eva@oslo.kommune.no")
    assert dup.status_code == 409
    bad = post(client, path + "/admins/add", owner, name="Eva", email="not-an-address")
    assert bad.status_code == 422
    assert counts(db_session) == before
    eva = db_session.scalars(select(ProgrammeRole).order_by(ProgrammeRole.id)).first().person_id
    assert post(client, f"{path}/admins/{eva}/remove", owner).status_code == 200
    jon = db_session.scalars(select(ProgrammeRole)).one().person_id
    before = counts(db_session)
    last = post(client, f"{path}/admins/{jon}/remove", owner)
    assert last.status_code == 409
    assert say(
        app, "The organisation's last licence administrator cannot be removed. Add another one first."
    ) in text_of(last)
    assert counts(db_session) == before
    assert {a.action for a in db_session.scalars(select(AuditEntry))} == {"role.grant", "role.revoke"}


def test_an_unknown_organisation_is_a_404(client, owner):
    assert open_page(client, "/owner/organisations/999", owner).status_code == 404
    assert post(client, "/owner/organisations/999/admins/add", owner, name="A", email="a@b.no").status_code == 404


# --- parked steps and sales -------------------------------------------------------------------------------------


def test_a_parked_step_is_shown_and_retried(app, client, owner, db_session):
    with transaction(factory(app)) as s:
        step = OutboxStep(
            kind="mail.send",
            subject="mail:order:1:new",
            payload={},
            status=StepStatus.PARKED,
            attempts=5,
            last_error="SMTP refused the address",
        )
        s.add(step)
        s.flush()
        step_id = step.id
    page = text_of(open_page(client, "/owner/steps", owner))
    assert "SMTP refused the address" in page
    assert post(client, f"/owner/steps/{step_id}/retry", owner).status_code == 200
    assert db_session.scalar(select(OutboxStep.status)) is StepStatus.PENDING
    assert db_session.scalars(select(AuditEntry)).one().action == "outbox.retry"
    before = counts(db_session)
    assert post(client, f"/owner/steps/{step_id}/retry", owner).status_code == 409
    assert counts(db_session) == before


def test_sales_page_and_csv(app, client, owner, db_session):
    programme = load_programmes()[PROGRAMME]
    with transaction(factory(app)) as s:
        order = create_order(
            s, organisation=organisation(s), programme=programme, quantity=1, source=OrderSource.MANUAL, actor="t"
        )
        confirm_order(s, order, actor="t")
    page = text_of(open_page(client, "/owner/sales", owner))
    assert "300,00 kr" in page.replace("\u00a0", " ") and "375,00 kr" in page.replace("\u00a0", " ")
    resp = open_page(client, "/owner/sales.csv", owner)
    assert resp.status_code == 200
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    body = resp.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0] == "måned;mva-sats;salg;krediteringer;lisenser;netto;mva;totalt"
    assert lines[1].endswith(";25;1;0;1;300,00;75,00;375,00")


def test_the_owner_sets_an_organisations_kind_and_network_area(app, client, owner, db_session):
    with transaction(factory(app)) as s:
        oslo = organisation(s).id
        area = organisation(s, name="Læringsnettverk Innlandet", orgnr="974761076").id
        member = organisation(s, name="Hamar kommune", orgnr="970540008").id
    path = f"/owner/organisations/{oslo}/details"
    ok = post(client, path, owner, kind="bydel", parent=str(area))
    assert ok.status_code == 200 and "Læringsnettverk Innlandet" in text_of(ok)
    org = db_session.scalars(select(Organisation).where(Organisation.id == oslo)).one()
    assert (org.kind.value, org.parent_id) == ("bydel", area)
    update = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "organisation.update")).one()
    assert update.before["parent_id"] is None and update.after["parent_id"] == area
    # The area may not end up inside its own member (Oslo is in the area now), nor be itself; unknown kinds and
    # areas are refused.
    member_ok = post(client, f"/owner/organisations/{member}/details", owner, kind="kommune", parent=str(area))
    assert member_ok.status_code == 200
    before = counts(db_session)
    cycle = "That organisation already belongs to this one's network area; choose another."
    missing = "The network area was not found: choose one from the list."
    for org_id, data, message in [
        (area, {"kind": "other", "parent": str(oslo)}, cycle),
        (oslo, {"kind": "bydel", "parent": str(oslo)}, "An organisation cannot be its own network area."),
        (oslo, {"kind": "fylke", "parent": ""}, "Choose one of the kinds of organisation."),
        (oslo, {"kind": "bydel", "parent": "999"}, missing),
        (oslo, {"kind": "bydel", "parent": "x1"}, missing),
    ]:
        resp = post(client, f"/owner/organisations/{org_id}/details", owner, **data)
        assert resp.status_code == 422 and say(app, message) in text_of(resp), data
    assert counts(db_session) == before
    assert db_session.scalar(select(Organisation.parent_id).where(Organisation.id == area)) is None
