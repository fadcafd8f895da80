"""The simulator's course page in a real Chromium: it reflows at phone width, keeps the Canvas-like layout on a
desktop, and its script keeps the language choice and the placed links up to date.

Only the simulator is served (no tool): nothing here starts a launch. It uses the browser tests' Chromium (one
Playwright per run: a second one in the same thread cannot start).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from werkzeug.serving import make_server

from canvas_sim import SimConfig, SimPlatform, create_sim_app
from canvas_sim.platform import PlacedLink
from tests.conftest import rsa_pem
from tests.e2e.helpers import axe_summary, run_axe

pytestmark = pytest.mark.e2e

TOOL_FRAME = "iframe[name='tool_frame']"
LONG_TITLE = "Mentoroversikt for veiledere i hjemmetjenesten – lindrende behandling og omsorg ved livets slutt"


@pytest.fixture(scope="module")
def platform_pem() -> bytes:
    return rsa_pem("platform")


@pytest.fixture
def sim(platform_pem: bytes) -> Iterator[SimPlatform]:
    """The simulator alone on a loopback port (the tool's URLs point at a port nobody serves)."""
    server = make_server("127.0.0.1", 0, lambda environ, start_response: [], threaded=True)
    base = f"http://127.0.0.1:{server.port}"
    platform = SimPlatform(SimConfig(base_url=base, private_key_pem=platform_pem))
    server.app = create_sim_app(platform=platform)
    thread = threading.Thread(target=server.serve_forever, name="sim-layout-server", daemon=True)
    thread.start()
    try:
        yield platform
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def open_page(browser: Browser, sim: SimPlatform, width: int, height: int) -> Page:
    context = browser.new_context(locale="nb-NO", viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(sim.config.base + "/")
    return page


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).bounding_box()
    assert found is not None, selector
    return dict(found)


def overflow(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        """() => ({scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
                   wide: [...document.querySelectorAll("body *")]
                         .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                         .map(e => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className)})"""
    )
    return result


@pytest.mark.parametrize("width", [360, 375, 400])
def test_at_phone_width_the_navigation_stands_above_a_full_width_tool(
    browser: Browser, sim: SimPlatform, axe_source: str, width: int
) -> None:
    sim.placed_links.append(PlacedLink("l1", LONG_TITLE, sim.config.tool_launch_url))
    page = open_page(browser, sim, width, 740)
    try:
        frame = box(page, TOOL_FRAME)
        nav = box(page, "nav.sim-nav")
        assert frame["width"] >= 320, frame
        assert frame["x"] >= 0 and frame["x"] + frame["width"] <= width, frame
        assert frame["height"] >= 0.6 * 740, frame  # most of the screen once scrolled to
        assert nav["y"] + nav["height"] <= frame["y"], (nav, frame)  # the navigation above, not beside
        seen = overflow(page)
        assert seen["scrollWidth"] <= seen["innerWidth"] and seen["wide"] == [], seen
        # Every start button is still there and reachable.
        for name in ("Start som deltaker", "Start som kurseier", "Legg til lenker (dyplenking) som kurseier"):
            expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
        expect(page.get_by_role("button", name=f"Åpne {LONG_TITLE}", exact=True)).to_be_visible()
        violations = run_axe(page.main_frame, axe_source)
        assert violations == [], axe_summary(violations)
    finally:
        page.context.close()


def test_at_desktop_width_the_navigation_stays_beside_the_tool(
    browser: Browser, sim: SimPlatform, axe_source: str
) -> None:
    sim.placed_links.append(PlacedLink("l1", "Mentoroversikt", sim.config.tool_launch_url))
    page = open_page(browser, sim, 1280, 800)
    try:
        frame = box(page, TOOL_FRAME)
        nav = box(page, "nav.sim-nav")
        assert nav["x"] + nav["width"] <= frame["x"], (nav, frame)
        assert abs(nav["width"] - 18 * 16) < 1, nav  # Canvas's course navigation column
        assert frame["width"] >= 900 and frame["height"] >= 36 * 16 - 1, frame
        seen = overflow(page)
        assert seen["scrollWidth"] <= seen["innerWidth"], seen
        violations = run_axe(page.main_frame, axe_source)
        assert violations == [], axe_summary(violations)
    finally:
        page.context.close()


def test_the_language_choice_goes_into_every_start_form(browser: Browser, sim: SimPlatform) -> None:
    page = open_page(browser, sim, 375, 740)
    try:
        select = page.get_by_label("Språk i verktøyet")
        expect(select).to_have_value("nb")
        select.select_option("nn")
        values = page.eval_on_selector_all("form[target=tool_frame] input[name=locale]", "els => els.map(e => e.value)")
        assert values == ["nn"] * 5
        assert page.url.endswith("/?locale=nn")  # a reload keeps it
        page.reload()
        expect(page.get_by_label("Språk i verktøyet")).to_have_value("nn")
        values = page.eval_on_selector_all("form[target=tool_frame] input[name=locale]", "els => els.map(e => e.value)")
        assert values == ["nn"] * 5
    finally:
        page.context.close()


def test_links_placed_while_the_page_is_open_appear_without_a_reload(browser: Browser, sim: SimPlatform) -> None:
    page = open_page(browser, sim, 1280, 800)
    try:
        expect(page.locator("#sim-links-list")).to_contain_text("Ingen lenker ennå")
        page.get_by_label("Språk i verktøyet").select_option("en")
        sim.placed_links.append(PlacedLink("l1", "Mentoroversikt", sim.config.tool_launch_url, {"v": "mentor"}))
        # What links_placed.js on the deep-linking answer page in the tool's frame sends (same origin).
        page.evaluate("window.postMessage({subject: 'canvas_sim.links_placed'}, location.origin)")
        expect(page.get_by_role("button", name="Åpne Mentoroversikt", exact=True)).to_be_visible()
        expect(page.get_by_role("status")).to_have_text("Lenker i emnet er oppdatert: 1 lenke.")
        expect(page.get_by_label("Åpne som")).to_have_value("deltaker")
        values = page.eval_on_selector_all("form[target=tool_frame] input[name=locale]", "els => els.map(e => e.value)")
        assert values == ["en"] * 6
        # Each answer page refreshes the list again.
        sim.placed_links.append(PlacedLink("l2", "Lisenser", sim.config.tool_launch_url))
        page.evaluate("window.postMessage({subject: 'canvas_sim.links_placed'}, location.origin)")
        expect(page.locator("#sim-links-list li")).to_have_count(2)
        expect(page.get_by_role("status")).to_have_text("Lenker i emnet er oppdatert: 2 lenker.")
    finally:
        page.context.close()
