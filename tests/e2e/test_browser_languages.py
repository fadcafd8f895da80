"""Every role's landing page in English and in Nynorsk, launched from a Canvas that sends that locale (the
simulator's language choice) — axe-core (WCAG 2.1 A/AA) finds no violation, the page says its language, and the
switcher on the page changes it for the rest of the launch."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

ROLES = [
    ("Start som deltaker", {"en": "My progress", "nn": "Min framdrift"}),
    ("Start som mentor", {"en": "Mentor overview", "nn": "Mentoroversikt"}),
    ("Start som lisensadministrator", {"en": "Licences", "nn": "Lisensar"}),
    ("Start som kurseier", {"en": "Course administration", "nn": "Kursadministrasjon"}),
]


@pytest.mark.parametrize("locale", ["en", "nn"])
@pytest.mark.parametrize(("button", "headings"), ROLES, ids=[r[0].split()[-1] for r in ROLES])
def test_each_role_in_english_and_nynorsk_without_wcag_violations(
    page: Page, live: LiveStack, axe_source: str, locale: str, button: str, headings: dict[str, str]
) -> None:
    page.goto(live.sim_url + "/")
    page.get_by_label("Språk i verktøyet").select_option(locale)
    page.get_by_role("button", name=button, exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text(headings[locale])
    expect(tool.locator("html")).to_have_attribute("lang", locale)
    page.wait_for_load_state()
    violations = run_axe(tool_frame(page), axe_source)
    if violations:
        print(json.dumps(violations, indent=2, ensure_ascii=False))
    assert violations == [], (button, locale, axe_summary(violations))


def test_the_switcher_changes_the_language_for_the_rest_of_the_launch(page: Page, live: LiveStack) -> None:
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som deltaker", exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text("Min fremdrift")
    page.wait_for_load_state()
    tool.get_by_role("button", name="English", exact=True).click()
    expect(tool.locator("h1")).to_have_text("My progress")
    expect(tool.locator("html")).to_have_attribute("lang", "en")
    # A reload keeps it: the choice is the launch's now.
    tool_frame(page).evaluate("() => window.location.reload()")
    expect(tool.locator("h1")).to_have_text("My progress")
