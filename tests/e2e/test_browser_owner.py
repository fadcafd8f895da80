"""The seller's pages in a real Chromium: a municipality orders through the public form, the course owner confirms
the order inside Canvas's frame and looks at organisations, parked steps and sales. Every page is checked with
axe-core (WCAG 2.1 A/AA): zero violations.

Headings are compared through the page's addresses, not their words, so the test holds before and after the
Bokmål translations of these pages are merged into the catalogue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Frame, Page, expect
from sqlalchemy import delete, select

from canvas_sim.demo import demo_platform
from kurspakke.db import transaction
from kurspakke.licences.models import Order, OrderStatus, SeatPool
from kurspakke.models import CanvasInstance, Organisation
from kurspakke.outbox.models import OutboxStep, StepStatus
from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

ORGNR = "970000003"


def factory(live: LiveStack):
    return live.tool_app.extensions["kurspakke"].session_factory


@pytest.fixture
def sellers_canvas(live: LiveStack) -> Iterator[LiveStack]:
    """`kurspakke canvas add` for the simulator's Canvas, and one parked step for the steps page; undone after."""
    instance = demo_platform(live.sim.config).platform_instance
    with transaction(factory(live)) as s:
        canvas = CanvasInstance(api_url=live.sim_url, account_id=1, token_encrypted=b"x", platform_instance=instance)
        step = OutboxStep(
            kind="mail.send",
            subject="mail:order:0:new",
            payload={},
            status=StepStatus.PARKED,
            attempts=5,
            last_error="550 mailbox unavailable",
        )
        s.add_all([canvas, step])
        s.flush()
        ids = canvas.id, step.id
    try:
        yield live
    finally:
        with transaction(factory(live)) as s:
            s.execute(delete(OutboxStep).where(OutboxStep.id == ids[1]))
            s.execute(delete(CanvasInstance).where(CanvasInstance.id == ids[0]))


def assert_accessible(frame: Frame, axe_source: str, what: str) -> None:
    violations = run_axe(frame, axe_source)
    assert violations == [], (what, axe_summary(violations))


def open_in_frame(page: Page, frame: Frame, path: str) -> Frame:
    """Follow an owner link (launch.js posts the token) and wait for the page it opens."""
    frame.locator(f"a[href='{path}']").first.click()
    expect(page.frame_locator(TOOL_FRAME).locator(f"body[data-canonical-url='{path}']")).to_have_count(1)
    return tool_frame(page)


def test_an_order_from_the_form_to_confirmation_without_wcag_violations(
    page: Page, sellers_canvas: LiveStack, axe_source: str
) -> None:
    live = sellers_canvas

    # The municipality's public form, top level (no Canvas, no login).
    page.goto(live.tool_url + "/order?programme=lindrende-behandling")
    assert_accessible(page.main_frame, axe_source, "order form")
    page.fill("#f-organisation_name", "Hamar kommune")
    page.fill("#f-orgnr", "958935480")  # MOD11 check digit 10: never valid
    page.fill("#f-quantity", "12")
    page.fill("#f-invoice_reference", "Ref 4411")
    page.fill("#f-contact_name", "Kari Bestiller")
    page.fill("#f-contact_email", "kari@hamar.kommune.no")
    page.locator("form button[type=submit]").click()
    expect(page.locator("[role=alert]")).to_be_visible()
    expect(page.locator("#f-orgnr")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page.main_frame, axe_source, "order form with errors")
    with transaction(factory(live)) as s:
        assert s.scalar(select(Organisation.id).where(Organisation.orgnr == "958935480")) is None

    page.fill("#f-orgnr", ORGNR)
    page.locator("form button[type=submit]").click()
    expect(page.locator("[role=status]")).to_be_visible()
    assert_accessible(page.main_frame, axe_source, "order received")
    with transaction(factory(live)) as s:
        order_id = s.scalars(
            select(Order.id).join(Organisation).where(Organisation.orgnr == ORGNR).order_by(Order.id.desc())
        ).first()
        assert order_id is not None

    # A second order, for the demo's Oslo kommune under another name: the owner is shown the difference.
    page.goto(live.tool_url + "/order?programme=lindrende-behandling")
    page.fill("#f-organisation_name", "Oslo kommune, helseetaten")
    page.fill("#f-orgnr", "958935420")
    page.fill("#f-quantity", "3")
    page.fill("#f-contact_name", "Per Bestiller")
    page.fill("#f-contact_email", "per@oslo.kommune.no")
    page.locator("form button[type=submit]").click()
    expect(page.locator("[role=status]")).to_be_visible()

    # The course owner, inside the simulator's Canvas page.
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som kurseier", exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text("Kursadministrasjon")
    expect(tool.locator("a[href='/owner/orders']")).to_have_count(1)
    frame = tool_frame(page)
    assert_accessible(frame, axe_source, "owner landing with business links")

    frame = open_in_frame(page, frame, "/owner/orders")
    expect(page.frame_locator(TOOL_FRAME).locator("form[action$='/use-name']")).to_have_count(1)
    assert_accessible(frame, axe_source, "orders, one with another organisation name")
    frame.locator(f"form[action='/owner/orders/{order_id}/confirm'] button").click()
    expect(page.frame_locator(TOOL_FRAME).locator("[role=status]")).to_be_visible()
    frame = tool_frame(page)
    assert_accessible(frame, axe_source, "orders after confirming")
    with transaction(factory(live)) as s:
        assert s.get(Order, order_id).status is OrderStatus.CONFIRMED  # type: ignore[union-attr]
        org_id = s.scalar(select(Organisation.id).where(Organisation.orgnr == ORGNR))
        assert s.scalar(select(SeatPool.bought).where(SeatPool.organisation_id == org_id)) is not None

    frame = open_in_frame(page, frame, "/owner/organisations")
    assert_accessible(frame, axe_source, "organisations")
    frame = open_in_frame(page, frame, f"/owner/organisations/{org_id}")
    assert_accessible(frame, axe_source, "organisation")
    # The order's contact became the organisation's administrator when it was confirmed: adding her again is
    # refused, and the refusal is an alert.
    frame.fill("#admin-name", "Kari Bestiller")
    frame.fill("#admin-email", "kari@hamar.kommune.no")
    frame.locator("form[action$='/admins/add'] button").click()
    expect(page.frame_locator(TOOL_FRAME).locator("[role=alert]")).to_be_visible()
    frame = tool_frame(page)
    assert_accessible(frame, axe_source, "organisation with a refusal")

    frame = open_in_frame(page, frame, "/owner/steps")
    expect(page.frame_locator(TOOL_FRAME).locator("td", has_text="550 mailbox unavailable")).to_have_count(1)
    assert_accessible(frame, axe_source, "parked steps")
    frame = open_in_frame(page, frame, "/owner/sales")
    assert_accessible(frame, axe_source, "sales")
    with page.expect_download() as download:
        frame.locator("form[action='/owner/sales.csv'] button").click()
    path = download.value.path()
    assert path is not None
    with open(path, "rb") as fh:
        assert fh.read(3) == b"\xef\xbb\xbf"
