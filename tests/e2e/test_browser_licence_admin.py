"""The licence administrator's pages in a real Chromium: launched from the Canvas simulator (in its cross-site
iframe) and signed in with a magic link (top level). Every page is checked with axe-core (WCAG 2.1 A/AA), and a
seat is assigned with the keyboard alone."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Frame, FrameLocator, Page, expect
from sqlalchemy import select

from kurspakke.db import transaction
from kurspakke.licences.models import OrderSource, Seat
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.models import Organisation, Person
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.services.magic_links import request_link
from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

ORGANISATION = "Oslo kommune"
PROGRAMME = "lindrende-behandling"


def _no_violations(frame: Frame | Page, axe_source: str, where: str) -> None:
    violations = run_axe(frame.main_frame if isinstance(frame, Page) else frame, axe_source)
    if violations:
        print(f"\naxe violations on {where}:")
        print(json.dumps(violations, indent=2, ensure_ascii=False))
    assert violations == [], axe_summary(violations)


def _launch_as_admin(page: Page, live: LiveStack) -> FrameLocator:
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som lisensadministrator", exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text("Lisenser")
    return tool


def _open(page: Page, tool: FrameLocator, link: str, heading: str) -> Frame:
    """Follow a link of the tool (launch.js posts the token) and wait for the new page: an /admin/ address."""
    tool.get_by_role("link", name=link, exact=True).first.click()
    expect(tool.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"^/admin/"))
    expect(tool.locator("h1")).to_have_text(heading)
    return tool_frame(page)


def _parked_step_for_a_new_seat(live: LiveStack) -> None:
    """A seat whose Canvas step failed for good, so the overview shows the retry button."""
    from kurspakke.licences.seating import PersonInput, assign_person

    svc = live.tool_app.extensions["kurspakke"]
    with transaction(svc.session_factory) as s:
        org = s.scalars(select(Organisation).where(Organisation.name == ORGANISATION)).one()
        order = create_order(
            s, organisation=org, programme=svc.programmes[PROGRAMME], quantity=5, source=OrderSource.MANUAL, actor="e2e"
        )
        confirm_order(s, order, actor="e2e")
        seat = assign_person(
            s,
            org,
            svc.programmes[PROGRAMME],
            PersonInput("Feil Frida", "frida.e2e@oslo.kommune.no", "sykehjem"),
            actor="e2e",
        )
        step = s.scalars(select(OutboxStep).where(OutboxStep.subject == f"seat:{seat.id}")).one()
        step.status, step.last_error = StepStatus.PARKED, "Several Canvas users have this e-mail address"


def test_every_licence_admin_page_from_canvas_has_no_wcag_violations(page: Page, live: LiveStack, axe_source: str):
    _parked_step_for_a_new_seat(live)
    tool = _launch_as_admin(page, live)
    _no_violations(tool_frame(page), axe_source, "the licences view")

    frame = _open(page, tool, ORGANISATION, "Lisenser")
    assert frame.url.startswith(live.tool_url + "/admin/"), frame.url
    expect(tool.get_by_role("button", name="Prøv igjen for Feil Frida")).to_be_visible()
    _no_violations(frame, axe_source, "the overview")

    receipt = tool.get_by_role("link", name="Kvittering for bestilling").first
    receipt.click()
    expect(tool.locator("h1")).to_contain_text("Kvittering for bestilling")
    _no_violations(tool_frame(page), axe_source, "a receipt")

    for link, heading in [
        ("Personer", "Personer og Canvas-status"),
        ("Aldri logget inn", "Personer som aldri har logget inn i Canvas"),
        ("Tildel en lisens", "Tildel en lisens"),
        ("Importer fra fil", "Importer personer fra en fil"),
        ("Administratorer", "Lisensadministratorer"),
    ]:
        _no_violations(_open(page, tool, link, heading), axe_source, heading)

    # A refusal, as the page shows it: the alert and the marked field.
    _open(page, tool, "Tildel en lisens", "Tildel en lisens")
    tool.get_by_label("Navn").fill("Ola")
    tool.get_by_label("E-postadresse").fill("ikke-en-adresse")
    tool.get_by_role("button", name="Tildel lisensen").click()
    expect(tool.get_by_role("alert")).to_contain_text("er ikke en gyldig e-postadresse")
    expect(tool.get_by_label("E-postadresse")).to_have_attribute("aria-invalid", "true")
    _no_violations(tool_frame(page), axe_source, "the assign page with an error")

    # The seat pages of one person.
    _open(page, tool, "Personer", "Personer og Canvas-status")
    tool.get_by_role("link", name="Endre (Feil Frida)").click()
    expect(tool.locator("h1")).to_have_text("Endre Feil Frida")
    _no_violations(tool_frame(page), axe_source, "the edit page")
    _open(page, tool, "Personer", "Personer og Canvas-status")
    tool.get_by_role("link", name="Gi til en annen (Feil Frida)").click()
    expect(tool.locator("h1")).to_have_text("Gi lisensen til Feil Frida til en annen")
    _no_violations(tool_frame(page), axe_source, "the reassign page")
    _open(page, tool, "Personer", "Personer og Canvas-status")
    tool.get_by_role("link", name="Trekk tilbake (Feil Frida)").click()
    expect(tool.locator("h1")).to_have_text("Trekk tilbake lisensen til Feil Frida")
    _no_violations(tool_frame(page), axe_source, "the revoke page")


def test_csv_import_preview_and_apply_with_its_progress_indicator(page: Page, live: LiveStack, axe_source: str):
    tool = _launch_as_admin(page, live)
    _open(page, tool, ORGANISATION, "Lisenser")
    _open(page, tool, "Importer fra fil", "Importer personer fra en fil")
    data = "navn;e-post;arbeidssted\r\nImport Ida;ida.e2e@oslo.kommune.no;sykehjem\r\nFeil;ikke-e-post;x\r\n"
    tool.get_by_label("CSV-fil").set_input_files(
        {"name": "folk.csv", "mimeType": "text/csv", "buffer": data.encode("utf-8")}
    )
    tool.get_by_role("button", name="Vis forhåndsvisning").click()
    expect(tool.get_by_role("heading", name="Forhåndsvisning")).to_be_visible()
    expect(tool.locator("[data-fact=new]")).to_have_text("1")
    expect(tool.locator("[data-fact=refused]")).to_have_text("1")
    _no_violations(tool_frame(page), axe_source, "the import preview")

    # The progress indicator appears as the apply starts (licence_import.js); hold the answer back to see it.
    released: list[object] = []

    def hold(route):  # type: ignore[no-untyped-def]
        released.append(route)

    page.route(f"{live.tool_url}/admin/**/import", hold)
    tool.get_by_role("button", name="Gi 1 person lisens").click()
    expect(tool.locator("progress")).to_be_visible()
    expect(tool.locator("form#import-apply")).to_have_attribute("aria-busy", "true")
    assert len(released) == 1
    released[0].continue_()  # type: ignore[attr-defined]
    expect(tool.get_by_role("status").first).to_contain_text("1 person fikk lisens.")
    _no_violations(tool_frame(page), axe_source, "the import result")
    svc = live.tool_app.extensions["kurspakke"]
    with svc.session_factory() as s:
        assert s.scalars(select(Seat).join(Person).where(Person.email == "ida.e2e@oslo.kommune.no")).one()


def test_a_seat_is_assigned_with_the_keyboard_alone(page: Page, live: LiveStack):
    tool = _launch_as_admin(page, live)
    frame = tool_frame(page)

    def tab_to(selector: str, limit: int = 40) -> None:
        """Press Tab until the element matching ``selector`` in the tool's frame has the focus."""
        for _ in range(limit):
            if tool_frame(page).evaluate("(s) => document.activeElement === document.querySelector(s)", selector):
                return
            page.keyboard.press("Tab")
        raise AssertionError(f"Tab never reached {selector}")

    frame.locator("h1").wait_for()
    tab_to("a[href^='/admin/']")
    page.keyboard.press("Enter")
    expect(tool.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"^/admin/"))
    expect(tool.locator("h1")).to_have_text("Lisenser")
    tab_to("a[href$='/assign'][data-app-link]")
    page.keyboard.press("Enter")
    expect(tool.locator("h1")).to_have_text("Tildel en lisens")
    # The focus is visible where it is (an outline, not only a colour change).
    tab_to("#f-name")
    outline = tool_frame(page).evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), outline
    page.keyboard.type("Tastatur Tone")
    page.keyboard.press("Tab")
    page.keyboard.type("tone.e2e@oslo.kommune.no")
    page.keyboard.press("Tab")
    page.keyboard.type("hjemmetjeneste")
    page.keyboard.press("Enter")  # submits the form from its last field
    expect(tool.get_by_role("status")).to_contain_text("Tastatur Tone har fått lisens.")
    svc = live.tool_app.extensions["kurspakke"]
    with svc.session_factory() as s:
        seat = s.scalars(select(Seat).join(Person).where(Person.email == "tone.e2e@oslo.kommune.no")).one()
        assert seat.workplace == "hjemmetjeneste"


def test_magic_link_sign_in_reaches_the_pages_without_wcag_violations(page: Page, live: LiveStack, axe_source: str):
    svc = live.tool_app.extensions["kurspakke"]
    with transaction(svc.session_factory) as s:
        admin = s.scalars(select(Person).where(Person.name == live.sim.user("lisensadministrator").name)).first()
        assert admin is not None
        found = request_link(s, admin.email, secret_key=svc.settings.secret_key)
    assert found is not None
    page.goto(f"{live.tool_url}/signin/link/{found[1]}")
    page.get_by_role("button", name="Logg inn").click()
    expect(page.locator("h1")).to_have_text("Lisensadministrasjon")
    _no_violations(page, axe_source, "the sign-in home")
    page.get_by_role("link", name=ORGANISATION).click()
    expect(page.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"^/admin/"))
    expect(page.locator("h1")).to_have_text("Lisenser")
    assert "lt=" not in page.url
    _no_violations(page, axe_source, "the overview (signed in)")
    # A reload keeps the session (launch.js posts the kept token again).
    page.reload()
    expect(page.locator("h1")).to_have_text("Lisenser")
    page.get_by_role("link", name="Administratorer", exact=True).click()
    expect(page.locator("h1")).to_have_text("Lisensadministratorer")
    _no_violations(page, axe_source, "the administrators page (signed in)")
