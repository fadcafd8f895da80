"""More tasks done with the keyboard alone, inside Canvas's frame (the others: assigning a seat in
test_browser_licence_admin.py, recording attendance and scheduling in test_browser_progress_views.py, placing links
in test_browser_deep_linking.py): the participant downloads the certificate, the course owner revokes one with a
reason, the course owner confirms an order. Only Tab, Space, Enter and typing; every focused control shows a focus
outline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Frame, Page, expect
from sqlalchemy import delete, select

from canvas_sim.demo import demo_platform
from kurspakke.certificates.codes import new_code
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.certificates.services import printed_texts
from kurspakke.db import transaction
from kurspakke.licences.models import AuditEntry, Order, OrderSource, OrderStatus
from kurspakke.licences.services import create_order
from kurspakke.models import CanvasInstance, Organisation, Person
from kurspakke.programmes import load_programmes
from tests.e2e.helpers import TOOL_FRAME, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

PROGRAMME = load_programmes()["lindrende-behandling"]
TAB_LIMIT = 80


def focused(frame: Frame, selector: str) -> bool:
    script = "(s) => document.hasFocus() && !!document.activeElement && document.activeElement.matches(s)"
    return bool(frame.evaluate(script, selector))


def tab_to(page: Page, selector: str) -> Frame:
    """Tab (only Tab) until the tool's focused element matches ``selector``; it must show a focus outline."""
    frame = tool_frame(page)
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Tab")
        if focused(frame, selector):
            outline = frame.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("", "none"), f"{selector} shows no focus outline"
            return frame
    where = frame.evaluate("() => document.activeElement && document.activeElement.outerHTML.slice(0, 200)")
    raise AssertionError(f"Tab never reached {selector}; the focus is on {where}")


def start(page: Page, live: LiveStack, button: str, heading: str) -> None:
    """The simulator's start button by keyboard, then into the tool's frame."""
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name=button, exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.frame_locator(TOOL_FRAME).locator("h1")).to_have_text(heading)
    page.wait_for_load_state()
    page.locator(TOOL_FRAME).focus()


@pytest.fixture
def business(live: LiveStack) -> Iterator[dict[str, int]]:
    """Kari holds a certificate, a municipality's order waits for confirmation, the seller's Canvas is registered;
    all undone after."""
    factory = live.tool_app.extensions["kurspakke"].session_factory
    with transaction(factory) as s:
        kari = s.scalars(select(Person).where(Person.email == live.sim.user("deltaker").email)).one()
        org = s.scalars(select(Organisation).where(Organisation.name == "Oslo kommune")).one()
        cert = Certificate(
            code=new_code(),
            programme_id=PROGRAMME.id,
            person_id=kari.id,
            organisation_id=org.id,
            role=CertificateRole.PARTICIPANT,
            name=kari.name,
            organisation_name=org.name,
            completed_on=date(2026, 11, 2),
            printed=printed_texts(PROGRAMME, CertificateRole.PARTICIPANT),
            issued_at=datetime(2026, 11, 2, 12, tzinfo=UTC),
            issued_by="e2e",
        )
        order = create_order(s, organisation=org, programme=PROGRAMME, quantity=3, source=OrderSource.FORM, actor="e2e")
        instance = demo_platform(live.sim.config).platform_instance
        canvas = CanvasInstance(api_url=live.sim_url, account_id=1, token_encrypted=b"x", platform_instance=instance)
        s.add_all([cert, canvas])
        s.flush()
        ids = {"cert": cert.id, "order": order.id, "canvas": canvas.id}
    try:
        yield ids
    finally:
        with transaction(factory) as s:
            s.execute(delete(AuditEntry).where(AuditEntry.entity_type == "certificate"))
            s.execute(delete(Certificate).where(Certificate.id == ids["cert"]))
            s.execute(delete(CanvasInstance).where(CanvasInstance.id == ids["canvas"]))


def test_the_participant_downloads_the_certificate_by_keyboard(
    page: Page, live: LiveStack, business: dict[str, int]
) -> None:
    start(page, live, "Start som deltaker", "Min fremdrift")
    tab_to(page, "form[action='/app/certificate.pdf'] button")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert download.value.suggested_filename.startswith("kursbevis-")


def test_the_course_owner_revokes_a_certificate_by_keyboard(
    page: Page, live: LiveStack, business: dict[str, int]
) -> None:
    start(page, live, "Start som kurseier", "Kursadministrasjon")
    tab_to(page, "a[href='/owner/certificates']")
    page.keyboard.press("Enter")
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text("Kursbevis")
    name = live.sim.user("deltaker").name
    tab_to(page, f"a[href='/owner/certificates/{business['cert']}']")
    page.keyboard.press("Enter")
    expect(tool.locator("h1")).to_contain_text(name)
    tab_to(page, "#revoke-reason")
    page.keyboard.type("Registrert på feil person")
    tab_to(page, "#revoke-confirm")
    page.keyboard.press("Space")
    tab_to(page, f"form[action='/owner/certificates/{business['cert']}/revoke'] button[type=submit]")
    page.keyboard.press("Enter")
    expect(tool.locator("[role=status]").first).to_be_visible()
    with live.tool_app.extensions["kurspakke"].session_factory() as s:
        cert = s.get(Certificate, business["cert"])
        assert cert is not None and cert.revoked_reason == "Registrert på feil person"


def test_the_course_owner_confirms_an_order_by_keyboard(page: Page, live: LiveStack, business: dict[str, int]) -> None:
    start(page, live, "Start som kurseier", "Kursadministrasjon")
    tab_to(page, "a[href='/owner/orders']")
    page.keyboard.press("Enter")
    expect(page.frame_locator(TOOL_FRAME).locator("body[data-canonical-url='/owner/orders']")).to_have_count(1)
    tab_to(page, f"form[action='/owner/orders/{business['order']}/confirm'] button")
    page.keyboard.press("Enter")
    expect(page.frame_locator(TOOL_FRAME).locator("[role=status]").first).to_be_visible()
    with live.tool_app.extensions["kurspakke"].session_factory() as s:
        order = s.get(Order, business["order"])
        assert order is not None and order.status is OrderStatus.CONFIRMED
