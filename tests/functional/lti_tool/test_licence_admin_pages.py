"""The licence administrator's pages (issue 7) through the Flask client, on SQLite and PostgreSQL: signed in with a
magic link, or launched from Canvas. Every refusal asserts its message, its 4xx and that nothing was written."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.licences.models import AuditEntry, CanvasStatus, Order, OrderSource, Seat, SeatPool
from kurspakke.licences.seating import PersonInput, assign_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.models import Organisation, Person, ProgrammeRole, ProgrammeRoleKind
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.services.magic_links import request_link
from kurspakke.services.people import get_or_create_organisation, get_or_create_person, grant_role
from tests.conftest import SECRET, TOOL
from tests.support.factories import link_sim_course, person_for
from tests.support.lti import launch_token, open_page

PROGRAMME = "lindrende-behandling"
ADMIN = "kari.koordinator@oslo.kommune.no"
SAME_ORIGIN = {"Origin": TOOL, "Sec-Fetch-Site": "same-origin"}


def soup_of(resp) -> BeautifulSoup:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def text_of(resp) -> str:
    return " ".join(soup_of(resp).get_text(" ").split())


def alert_of(resp) -> str:
    found = soup_of(resp).find(attrs={"role": "alert"})
    assert found is not None, text_of(resp)
    return " ".join(found.get_text(" ").split())


class World:
    """Oslo (Kari administers it: 3 seats bought, Per holds one) and Bergen (its own administrator and a seat)."""

    def __init__(self, app) -> None:
        self.factory = app.extensions["kurspakke"].session_factory
        programme = app.extensions["kurspakke"].programmes[PROGRAMME]
        with transaction(self.factory) as s:
            oslo = get_or_create_organisation(s, name="Oslo kommune", orgnr="958935420")
            bergen = get_or_create_organisation(s, name="Bergen kommune", orgnr="964338531")
            kari = get_or_create_person(s, name="Kari Koordinator", email=ADMIN)
            grant_role(s, kari, programme_id=PROGRAMME, organisation=oslo, role=ProgrammeRoleKind.LICENCE_ADMIN)
            berit = get_or_create_person(s, name="Berit Bergen", email="berit@bergen.kommune.no")
            grant_role(s, berit, programme_id=PROGRAMME, organisation=bergen, role=ProgrammeRoleKind.LICENCE_ADMIN)
            for org, quantity in ((oslo, 3), (bergen, 2)):
                order = create_order(
                    s,
                    organisation=org,
                    programme=programme,
                    quantity=quantity,
                    source=OrderSource.MANUAL,
                    actor="test",
                    invoice_reference="REF-1",
                )
                confirm_order(s, order, actor="test")
            per = assign_person(
                s, oslo, programme, PersonInput("Per Pleier", "per@oslo.kommune.no", "sykehjem"), actor="test"
            )
            bob = assign_person(
                s, bergen, programme, PersonInput("Bjørn Bergen", "bjorn@bergen.kommune.no", "sykehjem"), actor="test"
            )
            self.oslo, self.bergen, self.kari, self.berit = oslo.id, bergen.id, kari.id, berit.id
            self.per_seat, self.bergen_seat = per.id, bob.id

    def path(self, tail: str = "", org: int | None = None) -> str:
        return f"/admin/{org or self.oslo}/{PROGRAMME}/{tail}"


@pytest.fixture
def world(app) -> World:
    return World(app)


def sign_in(client, app, email: str = ADMIN) -> str:
    """The magic-link flow: the link (as the e-mail carries it), its button's POST, the launch token of the page."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        found = request_link(s, email, secret_key=SECRET)
    assert found is not None
    home = client.post(f"/signin/link/{found[1]}", headers=SAME_ORIGIN, base_url=TOOL)
    assert home.status_code == 200, text_of(home)
    return launch_token(home.get_data(as_text=True))


@pytest.fixture
def token(client, app, world) -> str:
    return sign_in(client, app)


def post(client, path: str, token: str, **form: Any):
    return client.post(path, data={"lt": token, **form}, base_url=TOOL)


def counts(db_session) -> dict[str, int]:
    def n(model) -> int:
        return db_session.scalar(select(func.count()).select_from(model))

    return {
        "seats": n(Seat),
        "people": n(Person),
        "roles": n(ProgrammeRole),
        "audit": n(AuditEntry),
        "steps": n(OutboxStep),
        "orders": n(Order),
    }


def pool_of(db_session, org_id: int) -> tuple[int, int]:
    pool = db_session.scalars(select(SeatPool).where(SeatPool.organisation_id == org_id)).one()
    return pool.bought, pool.assigned


# --- who may open what --------------------------------------------------------------------------------------------


def test_the_signin_home_links_to_the_organisation_and_the_overview_shows_pool_and_orders(client, app, world):
    with transaction(world.factory) as s:
        s.execute(
            Order.__table__.update().values(created_at=datetime(2026, 7, 1, 10, 30, tzinfo=UTC))  # summer: UTC+2
        )
    token = sign_in(client, app)
    home = open_page(client, "/signin/home", token)
    link = soup_of(home).find("a", string="Oslo kommune")
    assert link["href"] == world.path() and link.has_attr("data-app-link")
    assert soup_of(home).find("a", string="Bergen kommune") is None

    page = open_page(client, world.path(), token)
    assert page.status_code == 200
    soup = soup_of(page)
    assert soup.h1.get_text() == "Lisenser"
    assert soup.body["data-canonical-url"] == world.path()  # the address launch.js shows: no token
    assert soup.body["data-launch-token"] == token
    assert [soup.find(attrs={"data-pool": k}).get_text() for k in ("bought", "assigned", "free")] == ["3", "1", "2"]
    [order_row] = soup.find("caption", string="Organisasjonens bestillinger, nyeste først").parent.tbody.find_all("tr")
    cells = [c.get_text(" ", strip=True) for c in order_row.find_all(["th", "td"])]
    # 3 × 300 kr + 25 % VAT; ordered 10:30 UTC = 12:30 in Oslo in July.
    assert cells[2:5] == ["3", "bekreftet", "1\xa0125,00 kr"]
    assert "12:30" in cells[1]
    receipt = open_page(client, order_row.find("a")["href"], token)
    assert receipt.status_code == 200
    amounts = {td["data-amount"]: td.get_text() for td in soup_of(receipt).find_all("td", attrs={"data-amount": True})}
    assert amounts == {"net": "900,00 kr", "vat": "225,00 kr", "total": "1\xa0125,00 kr"}
    assert "3 lisenser à 300,00 kr" in text_of(receipt) and "REF-1" in text_of(receipt)


def test_money_in_english_and_the_catalogue_is_used(client, app, world):
    token = sign_in(client, app)
    # The session's locale comes from the sign-in request; an English browser gets English pages.
    with transaction(world.factory) as s:
        found = request_link(s, ADMIN, secret_key=SECRET)
    assert found is not None
    home = client.post(f"/signin/link/{found[1]}", headers={**SAME_ORIGIN, "Accept-Language": "en-GB"}, base_url=TOOL)
    en_token = launch_token(home.get_data(as_text=True))
    page = open_page(client, world.path(), en_token)
    assert soup_of(page).h1.get_text() == "Licences"
    assert "1,125.00 kr" in text_of(page)
    assert "1 125,00 kr" in text_of(open_page(client, world.path(), token))  # text_of folds the NBSP


@pytest.mark.parametrize(
    "tail",
    ["", "people", "people/never-signed-in", "assign", "import", "administrators", "orders/1"],
)
def test_another_organisations_pages_are_refused(client, token, world, tail):
    resp = open_page(client, world.path(tail, org=world.bergen), token)
    assert resp.status_code == 403
    assert "Du har ikke tilgang til denne siden." in alert_of(resp)
    assert "Bergen" not in text_of(resp) and "Bjørn" not in text_of(resp)


def test_an_unknown_organisation_or_programme_is_refused_the_same_way(client, token, world):
    assert open_page(client, world.path(org=999_999), token).status_code == 403
    assert open_page(client, f"/admin/{world.oslo}/laeringsnettverk-parorende/", token).status_code == 403


def test_guessed_ids_of_another_organisation_write_nothing(client, token, world, db_session):
    before, pools = counts(db_session), (pool_of(db_session, world.oslo), pool_of(db_session, world.bergen))
    seat = world.bergen_seat
    attempts = [
        (f"seats/{seat}/edit", {"action": "edit", "name": "X", "email": "x@oslo.kommune.no", "workplace": ""}),
        (f"seats/{seat}/revoke", {"action": "revoke"}),
        (f"seats/{seat}/reassign", {"action": "reassign", "name": "Y", "email": "y@oslo.kommune.no"}),
    ]
    for tail, form in attempts:
        # In Kari's own organisation's address: the seat is not found there.
        resp = post(client, world.path(tail), token, **form)
        assert resp.status_code == 404, tail
        assert "Siden finnes ikke." in alert_of(resp)
        # In Bergen's address: Kari does not administer Bergen.
        assert post(client, world.path(tail, org=world.bergen), token, **form).status_code == 403
    # A guessed order id, and an administrator of Bergen removed from Oslo's page.
    assert open_page(client, world.path("orders/999999"), token).status_code == 404
    resp = post(client, world.path("administrators"), token, action="remove", person=str(world.berit))
    assert resp.status_code == 404
    assert counts(db_session) == before
    assert (pool_of(db_session, world.oslo), pool_of(db_session, world.bergen)) == pools
    bob = db_session.scalars(select(Seat).where(Seat.id == seat)).one()
    assert bob.revoked_at is None and bob.person_id != world.kari


def test_a_parked_step_of_another_organisation_cannot_be_retried(client, token, world, db_session):
    with transaction(world.factory) as s:
        step = s.scalars(select(OutboxStep).where(OutboxStep.subject == f"seat:{world.bergen_seat}")).one()
        step.status, step.last_error = StepStatus.PARKED, "Canvas said no"
        step_id = step.id
    page = open_page(client, world.path(), token)
    assert "Canvas said no" not in text_of(page)
    resp = post(client, world.path(), token, action="retry", step=str(step_id))
    assert resp.status_code == 404
    assert db_session.scalars(select(OutboxStep).where(OutboxStep.id == step_id)).one().status is StepStatus.PARKED


def test_without_a_token_a_page_asks_for_it_and_a_token_in_the_address_ends_the_session(client, token, world):
    resume = client.get(world.path("people"), base_url=TOOL)
    assert resume.status_code == 200
    assert soup_of(resume).body.has_attr("data-resume")
    assert "Bjørn" not in text_of(resume) and "Per Pleier" not in text_of(resume)
    assert client.post(world.path("people"), base_url=TOOL).status_code == 401
    assert post(client, world.path("people"), "forged.token").status_code == 401
    assert client.get(world.path("people") + f"?lt={token}", base_url=TOOL).status_code == 400
    assert open_page(client, world.path("people"), token).status_code == 401  # that session is over


def test_a_removed_administrator_loses_access_at_the_next_request(client, token, world):
    assert open_page(client, world.path(), token).status_code == 200
    with transaction(world.factory) as s:
        s.execute(ProgrammeRole.__table__.delete().where(ProgrammeRole.person_id == world.kari))
    assert open_page(client, world.path(), token).status_code == 403


def test_a_participants_canvas_launch_opens_no_licence_page(client, driver, app, sim, world):
    with transaction(world.factory) as s:
        link_sim_course(s, sim)
        person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT, org=s.get(Organisation, world.oslo))
    lti_token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    assert open_page(client, world.path(), lti_token).status_code == 403


def test_a_licence_administrator_launched_from_canvas_reaches_the_pages(client, driver, app, sim, world):
    with transaction(world.factory) as s:
        link_sim_course(s, sim)
        person_for(s, sim, "lisensadministrator", ProgrammeRoleKind.LICENCE_ADMIN, org=s.get(Organisation, world.oslo))
    landing = driver.launch("lisensadministrator")
    assert landing.status_code == 200
    link = soup_of(landing).find("a", string="Oslo kommune")
    assert link is not None and link["href"] == world.path() and link.has_attr("data-app-link")
    lti_token = launch_token(landing.get_data(as_text=True))
    page = open_page(client, world.path("people"), lti_token)
    assert page.status_code == 200 and "Per Pleier" in text_of(page)
    assert soup_of(page).find("a", string="Alle organisasjonene dine")["href"] == "/app/licences"
    assert open_page(client, world.path(org=world.bergen), lti_token).status_code == 403


# --- assigning, editing, revoking, reassigning --------------------------------------------------------------------


def test_assigning_a_seat_writes_the_seat_its_canvas_step_and_the_audit(client, token, world, db_session):
    form = open_page(client, world.path("assign"), token)
    assert form.status_code == 200
    soup = soup_of(form)
    for name, label in (("name", "Navn"), ("email", "E-postadresse"), ("workplace", "Arbeidssted")):
        field = soup.find("input", attrs={"name": name})
        assert label in soup.find("label", attrs={"for": field["id"]}).get_text()
    resp = post(
        client,
        world.path("assign"),
        token,
        action="assign",
        name="  Ola  Nordmann ",
        email="Ola.Nordmann@Oslo.Kommune.no",
        workplace="hjemmetjeneste",
    )
    assert resp.status_code == 200, text_of(resp)
    assert "Ola Nordmann har fått lisens." in soup_of(resp).find(attrs={"role": "status"}).get_text()
    seat = db_session.scalars(select(Seat).join(Person).where(Person.email == "ola.nordmann@oslo.kommune.no")).one()
    assert (seat.organisation_id, seat.workplace, seat.canvas_status) == (
        world.oslo,
        "hjemmetjeneste",
        CanvasStatus.PENDING,
    )
    assert db_session.scalars(select(OutboxStep).where(OutboxStep.subject == f"seat:{seat.id}")).one()
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.entity_id == str(seat.id))).one()
    assert entry.action == "seat.assign" and entry.actor == f"licence_admin:{world.kari}:{ADMIN}"
    assert pool_of(db_session, world.oslo) == (3, 2)
    people = open_page(client, world.path("people"), token)
    row = soup_of(people).find("tr", attrs={"data-seat": str(seat.id)})
    assert row.find("td", attrs={"data-status": "pending"}).get_text() == "venter"


@pytest.mark.parametrize(
    ("form", "status", "message", "field"),
    [
        (
            {"name": "Ola", "email": "ikke-en-adresse"},
            422,
            "«ikke-en-adresse» er ikke en gyldig e-postadresse.",
            "email",
        ),
        ({"name": "  ", "email": "ola@oslo.kommune.no"}, 422, "Skriv inn navnet til personen.", "name"),
        (
            {"name": "Per", "email": "PER@oslo.kommune.no"},
            409,
            "Denne personen har allerede en lisens fra organisasjonen",
            "email",
        ),
        ({"name": "Ola", "email": "ola@oslo.kommune.no", "login_id": "a b"}, 422, "Canvas-påloggingen", "login_id"),
    ],
)
def test_a_refused_assignment_says_why_and_writes_nothing(
    client, token, world, db_session, form, status, message, field
):
    before = counts(db_session)
    resp = post(client, world.path("assign"), token, action="assign", **form)
    assert resp.status_code == status
    assert message in alert_of(resp)
    invalid = soup_of(resp).find("input", attrs={"name": field})
    assert invalid["aria-invalid"] == "true" and "form-error" in invalid["aria-describedby"]
    assert invalid["value"] == form[field]  # what was typed stays in the form
    assert counts(db_session) == before
    assert pool_of(db_session, world.oslo) == (3, 1)


def test_no_free_seats_is_refused_with_ingen_ledige_lisenser(client, token, world, db_session):
    for n in range(2):
        resp = post(client, world.path("assign"), token, action="assign", name=f"P{n}", email=f"p{n}@oslo.kommune.no")
        assert resp.status_code == 200
    before = counts(db_session)
    resp = post(client, world.path("assign"), token, action="assign", name="Sist", email="sist@oslo.kommune.no")
    assert resp.status_code == 409
    assert alert_of(resp).startswith("Ingen ledige lisenser")
    assert counts(db_session) == before and pool_of(db_session, world.oslo) == (3, 3)


def test_opening_a_form_page_changes_nothing(client, token, world, db_session):
    """launch.js opens a page by posting only the token: without an action nothing is written."""
    before = counts(db_session)
    for tail in ("assign", f"seats/{world.per_seat}/revoke", f"seats/{world.per_seat}/reassign", "administrators"):
        assert open_page(client, world.path(tail), token).status_code == 200
    assert counts(db_session) == before


def test_edit_revoke_and_reassign(client, token, world, db_session):
    seat = world.per_seat
    edit = post(
        client, world.path(f"seats/{seat}/edit"), token, action="edit", name="Per Pleier-Hansen",
        email="per.hansen@oslo.kommune.no", workplace="hjemmetjeneste",
    )  # fmt: skip
    assert edit.status_code == 200 and "Endringene er lagret." in text_of(edit)
    person = db_session.scalars(select(Person).join(Seat).where(Seat.id == seat)).one()
    assert (person.name, person.email) == ("Per Pleier-Hansen", "per.hansen@oslo.kommune.no")

    taken = post(client, world.path(f"seats/{seat}/edit"), token, action="edit", name="Per", email=ADMIN, workplace="")
    assert taken.status_code == 409 and ADMIN in alert_of(taken)
    assert db_session.scalars(select(Person).where(Person.id == person.id)).one().email == "per.hansen@oslo.kommune.no"

    before = counts(db_session)
    reassigned = post(
        client,
        world.path(f"seats/{seat}/reassign"),
        token,
        action="reassign",
        name="Nina Ny",
        email="nina@oslo.kommune.no",
    )
    assert reassigned.status_code == 200, text_of(reassigned)
    assert "Nina Ny har fått lisens." in text_of(reassigned)
    old = db_session.scalars(select(Seat).where(Seat.id == seat)).one()
    assert old.revoked_at is not None and old.returned_at is not None  # nothing reached Canvas: back in the pool
    assert counts(db_session)["seats"] == before["seats"] + 1
    assert pool_of(db_session, world.oslo) == (3, 1)

    # A reassignment that fails for the new person revokes nothing either.
    nina = db_session.scalars(select(Seat).join(Person).where(Person.email == "nina@oslo.kommune.no")).one()
    before = counts(db_session)
    bad = post(client, world.path(f"seats/{nina.id}/reassign"), token, action="reassign", name="X", email="nope")
    assert bad.status_code == 422
    assert counts(db_session) == before
    assert db_session.scalars(select(Seat).where(Seat.id == nina.id)).one().revoked_at is None

    revoked = post(client, world.path(f"seats/{nina.id}/revoke"), token, action="revoke")
    assert revoked.status_code == 200 and "Lisensen er trukket tilbake" in text_of(revoked)
    assert db_session.scalars(select(Seat).where(Seat.id == nina.id)).one().revoked_at is not None
    before = counts(db_session)
    again = post(client, world.path(f"seats/{nina.id}/revoke"), token, action="revoke")
    assert again.status_code == 409 and "allerede trukket tilbake" in alert_of(again)
    assert counts(db_session) == before


# --- statuses, never signed in, export, parked steps --------------------------------------------------------------


def _statuses(world: World, app) -> dict[str, int]:
    programme = app.extensions["kurspakke"].programmes[PROGRAMME]
    ids = {}
    with transaction(world.factory) as s:
        oslo = s.get(Organisation, world.oslo)
        for key, name in (("active", "Aktiv Anne"), ("never", "=SUM(A1)"), ("failed", "Feil Frida")):
            seat = assign_person(
                s, oslo, programme, PersonInput(name, f"{key}@oslo.kommune.no", "@sykehjem"), actor="t"
            )
            ids[key] = seat.id
        s.get(Seat, ids["active"]).canvas_status = CanvasStatus.ACTIVE
        s.get(Seat, ids["active"]).canvas_last_activity_at = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
        s.get(Seat, ids["never"]).canvas_status = CanvasStatus.ACTIVE
        failed = s.get(Seat, ids["failed"])
        failed.canvas_status, failed.canvas_error = CanvasStatus.FAILED, "several Canvas users have this e-mail"
        step = s.scalars(select(OutboxStep).where(OutboxStep.subject == f"seat:{failed.id}")).one()
        step.status, step.last_error = StepStatus.PARKED, "several Canvas users have this e-mail"
        ids["step"] = step.id
    return ids


def test_people_show_their_canvas_status_and_the_never_signed_in_list(client, app, token, world):
    with transaction(world.factory) as s:  # room for three more
        s.execute(SeatPool.__table__.update().where(SeatPool.organisation_id == world.oslo).values(bought=4))
    ids = _statuses(world, app)
    soup = soup_of(open_page(client, world.path("people"), token))
    shown = {
        int(tr["data-seat"]): tr.find("td", attrs={"data-status": True}).get_text()
        for tr in soup.find_all("tr", attrs={"data-seat": True})
    }
    assert shown == {
        world.per_seat: "venter",
        ids["active"]: "aktiv i Canvas",
        ids["never"]: "aldri logget inn",
        ids["failed"]: "feilet: several Canvas users have this e-mail",
    }
    never = soup_of(open_page(client, world.path("people/never-signed-in"), token))
    listed = {int(tr["data-seat"]) for tr in never.find_all("tr", attrs={"data-seat": True})}
    assert listed == {world.per_seat, ids["never"], ids["failed"]}  # everyone without activity in Canvas
    assert never.h1.get_text() == "Personer som aldri har logget inn i Canvas"


def test_the_export_is_utf8_with_bom_semicolons_and_neutralised_cells(client, app, token, world):
    with transaction(world.factory) as s:
        s.execute(SeatPool.__table__.update().where(SeatPool.organisation_id == world.oslo).values(bought=4))
    _statuses(world, app)
    resp = post(client, world.path("people/export"), token)
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    raw = resp.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == [
        "navn", "e-post", "arbeidssted", "status", "Canvas-feil", "sist aktiv i Canvas", "tildelt", "gyldig til",
    ]  # fmt: skip
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {"Aktiv Anne", "'=SUM(A1)", "Feil Frida", "Per Pleier"}
    assert by_name["'=SUM(A1)"][2] == "'@sykehjem" and by_name["'=SUM(A1)"][3] == "aldri logget inn"
    assert by_name["Aktiv Anne"][3:6] == ["aktiv i Canvas", "", "2026-01-05"]
    assert "Bjørn" not in raw.decode("utf-8-sig")


def test_a_parked_step_is_shown_with_its_error_and_retried(client, app, token, world, db_session):
    with transaction(world.factory) as s:
        s.execute(SeatPool.__table__.update().where(SeatPool.organisation_id == world.oslo).values(bought=4))
    ids = _statuses(world, app)
    page = soup_of(open_page(client, world.path(), token))
    caption = page.find("caption", string=lambda t: t and t.startswith("Disse endringene"))
    row = caption.parent.tbody.tr
    assert "Feil Frida" in row.th.get_text() and "several Canvas users" in row.get_text()
    button = row.find("button")
    assert button.get_text() == "Prøv igjen" and button["aria-label"] == "Prøv igjen for Feil Frida"
    resp = post(client, world.path(), token, action="retry", step=str(ids["step"]))
    assert resp.status_code == 200 and "Canvas-steget er satt i kø igjen." in text_of(resp)
    step = db_session.scalars(select(OutboxStep).where(OutboxStep.id == ids["step"])).one()
    assert (step.status, step.attempts) == (StepStatus.PENDING, 0)
    seat = db_session.scalars(select(Seat).where(Seat.id == ids["failed"])).one()
    assert (seat.canvas_status, seat.canvas_error) == (CanvasStatus.PENDING, None)  # shown as "venter" again
    assert db_session.scalars(select(AuditEntry).where(AuditEntry.action == "seat.retry")).one().entity_id == str(
        ids["failed"]
    )
    again = post(client, world.path(), token, action="retry", step=str(ids["step"]))
    assert again.status_code == 404


# --- CSV import ---------------------------------------------------------------------------------------------------


def upload(client, world: World, token: str, data: bytes):
    return client.post(
        world.path("import"),
        data={"lt": token, "action": "preview", "file": (io.BytesIO(data), "folk.csv")},
        content_type="multipart/form-data",
        base_url=TOOL,
    )


def test_csv_preview_then_apply(client, token, world, db_session):
    data = (
        "navn;e-post;arbeidssted\r\n"
        "Åse Ås;ase@oslo.kommune.no;sykehjem\r\n"
        "Per Pleier;per@oslo.kommune.no;sykehjem\r\n"
        "Feil;ikke-e-post;sykehjem\r\n"
    ).encode()
    before = counts(db_session)
    preview = upload(client, world, token, b"\xef\xbb\xbf" + data)
    assert preview.status_code == 200, text_of(preview)
    soup = soup_of(preview)
    facts = {dd["data-fact"]: dd.get_text() for dd in soup.find_all("dd", attrs={"data-fact": True})}
    assert facts == {
        "encoding": "UTF-8 med BOM", "separator": "semikolon (;)", "new": "1", "unchanged": "1", "refused": "1",
        "free": "2",
    }  # fmt: skip
    outcomes = [tr["data-outcome"] for tr in soup.find_all("tr", attrs={"data-outcome": True})]
    assert outcomes == ["new", "unchanged", "refused"]
    refused = soup.find("tr", attrs={"data-outcome": "refused"})
    assert "«ikke-e-post» er ikke en gyldig e-postadresse." in refused.get_text()
    assert counts(db_session) == before  # a preview writes nothing
    apply_form = soup.find("form", id="import-apply")
    fields = {i["name"]: i.get("value", "") for i in apply_form.find_all("input")}
    assert fields["action"] == "apply"
    assert apply_form.find("progress") is not None
    result = post(client, world.path("import"), token, **{k: v for k, v in fields.items() if k != "lt"})
    assert result.status_code == 200, text_of(result)
    assert "1 person fikk lisens." in text_of(result)
    assert db_session.scalars(select(Person).where(Person.email == "ase@oslo.kommune.no")).one().name == "Åse Ås"
    assert pool_of(db_session, world.oslo) == (3, 2)
    # The same file again: nothing new, so nothing to apply.
    again = soup_of(upload(client, world, token, data))
    assert again.find("dd", attrs={"data-fact": "new"}).get_text() == "0"
    assert again.find("dd", attrs={"data-fact": "unchanged"}).get_text() == "2"
    assert again.find("form", id="import-apply") is None


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"name;mail\r\nA;a@b.no\r\n", 422, "Første rad må navngi kolonnene"),
        (b"", 422, "Velg en CSV-fil å importere."),
        ("navn;e-post;arbeidssted\r\n".encode("utf-16"), 422, "Filen er ikke tekst i UTF-8 eller Windows-1252"),
    ],
)
def test_an_unreadable_file_is_refused_and_writes_nothing(client, token, world, db_session, data, status, message):
    before = counts(db_session)
    resp = upload(client, world, token, data)
    assert resp.status_code == status
    assert message in alert_of(resp)
    assert counts(db_session) == before


def test_more_new_people_than_free_seats_imports_nothing(client, token, world, db_session):
    rows = "".join(f"P{n};p{n}@oslo.kommune.no;sykehjem\r\n" for n in range(3))
    data = ("navn;e-post;arbeidssted\r\n" + rows).encode()
    preview = upload(client, world, token, data)
    assert preview.status_code == 200
    assert "Det mangler 1 lisenser: 3 nye personer trenger lisens, og 2 er ledige." in alert_of(preview)
    assert soup_of(preview).find("form", id="import-apply") is None
    # Posting the apply anyway (a crafted form): refused, nothing written.
    import base64

    before = counts(db_session)
    resp = post(client, world.path("import"), token, action="apply", data=base64.b64encode(data).decode())
    assert resp.status_code == 409
    assert "Ingenting ble importert." in alert_of(resp)
    assert counts(db_session) == before and pool_of(db_session, world.oslo) == (3, 1)


def test_an_apply_with_a_mangled_file_field_is_refused(client, token, world, db_session):
    before = counts(db_session)
    resp = post(client, world.path("import"), token, action="apply", data="%%% not base64")
    assert resp.status_code == 422
    assert counts(db_session) == before


# --- other administrators -----------------------------------------------------------------------------------------


def test_administrators_add_and_remove_each_other_but_not_the_last(client, app, token, world, db_session):
    page = open_page(client, world.path("administrators"), token)
    assert [th.get_text(" ", strip=True) for th in soup_of(page).tbody.find_all("th")] == ["Kari Koordinator (deg)"]
    assert soup_of(page).tbody.find("button") is None  # the last administrator has no remove button

    before = counts(db_session)
    last = post(client, world.path("administrators"), token, action="remove", person=str(world.kari))
    assert last.status_code == 409
    assert "Organisasjonens siste lisensadministrator kan ikke fjernes." in alert_of(last)
    assert counts(db_session) == before

    bad = post(client, world.path("administrators"), token, action="add", name="Ola", email="ola@")
    assert bad.status_code == 422 and counts(db_session) == before

    added = post(
        client, world.path("administrators"), token, action="add", name="Ola Olsen", email="Ola@Oslo.Kommune.no"
    )
    assert added.status_code == 200 and "Ola Olsen er nå lisensadministrator." in text_of(added)
    twice = post(
        client, world.path("administrators"), token, action="add", name="Ola Olsen", email="ola@oslo.kommune.no"
    )
    assert twice.status_code == 409 and "er allerede lisensadministrator" in alert_of(twice)

    ola_token = sign_in(client, app, "ola@oslo.kommune.no")
    assert open_page(client, world.path(), ola_token).status_code == 200
    removed = post(client, world.path("administrators"), ola_token, action="remove", person=str(world.kari))
    assert removed.status_code == 200 and "Lisensadministratoren er fjernet." in text_of(removed)
    assert open_page(client, world.path(), token).status_code == 403  # Kari's session lost Oslo at once
    actions = db_session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity_type == "programme_role").order_by(AuditEntry.id)
    ).all()
    assert actions == ["role.grant", "role.revoke"]


def test_an_administrator_may_remove_themself_when_another_remains(client, token, world, db_session):
    added = post(client, world.path("administrators"), token, action="add", name="Ola", email="ola@oslo.kommune.no")
    assert added.status_code == 200
    gone = post(client, world.path("administrators"), token, action="remove", person=str(world.kari))
    assert gone.status_code == 200
    assert soup_of(gone).h1.get_text() == "Du er ikke lenger lisensadministrator"
    assert open_page(client, world.path(), token).status_code == 403
    remaining = db_session.scalars(
        select(Person.email)
        .join(ProgrammeRole, ProgrammeRole.person_id == Person.id)
        .where(ProgrammeRole.organisation_id == world.oslo, ProgrammeRole.role == ProgrammeRoleKind.LICENCE_ADMIN)
    ).all()
    assert remaining == ["ola@oslo.kommune.no"]
