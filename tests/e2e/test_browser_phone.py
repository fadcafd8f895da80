"""Each role's main page at phone width (375 × 740, the simulator's page stacked above the tool): nothing runs off
the side of the tool's frame — wide tables scroll inside their own box — and axe-core finds no violation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

ROLES = [
    ("Start som deltaker", "Min fremdrift"),
    ("Start som mentor", "Mentoroversikt"),
    ("Start som lisensadministrator", "Lisenser"),
    ("Start som kurseier", "Kursadministrasjon"),
]


@pytest.mark.parametrize(("button", "heading"), ROLES, ids=[r[0].split()[-1] for r in ROLES])
def test_each_role_fits_a_phone(browser: Browser, live: LiveStack, axe_source: str, button: str, heading: str) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(live.sim_url + "/")
        page.get_by_role("button", name=button, exact=True).click()
        tool = page.frame_locator(TOOL_FRAME)
        expect(tool.locator("h1")).to_have_text(heading)
        page.wait_for_load_state()
        frame = tool_frame(page)
        width, scroll = frame.evaluate(
            "() => [document.documentElement.clientWidth, document.documentElement.scrollWidth]"
        )
        assert width >= 300, width
        assert scroll <= width + 1, (button, width, scroll)
        assert run_axe(frame, axe_source) == [], axe_summary(run_axe(frame, axe_source))
    finally:
        context.close()
