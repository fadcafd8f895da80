"""The course owner schedules a learning-network session for the whole run inside Canvas's frame, in Chromium: the
form with the programme file's date and place, a refused plan marked on its field, then saved — axe-core (WCAG 2.1
A/AA) finds no violation on any state. The demo course is linked to the network programme for this test only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import delete, select, update

from canvas_sim.demo import demo_platform
from kurspakke.db import transaction
from kurspakke.meetings.models import Meeting
from kurspakke.models import CanvasInstance, CourseLink
from kurspakke.outbox.models import OutboxStep
from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

NETWORK = "laeringsnettverk-parorende"


@pytest.fixture
def network_course(live: LiveStack) -> Iterator[LiveStack]:
    """The seller's Canvas registered and the demo course selling the learning network; undone after."""
    factory = live.tool_app.extensions["kurspakke"].session_factory
    instance = demo_platform(live.sim.config).platform_instance
    with transaction(factory) as s:
        link = s.scalars(select(CourseLink).where(CourseLink.platform_instance == instance)).one()
        before = link.programme_id
        link.programme_id = NETWORK
        canvas = CanvasInstance(api_url=live.sim_url, account_id=1, token_encrypted=b"x", platform_instance=instance)
        s.add(canvas)
        s.flush()
        ids = link.id, canvas.id
    course_links = live.tool_app.extensions["kurspakke"].course_links
    course_links._entries.clear()  # the tool caches links per process: see the new programme at once
    try:
        yield live
    finally:
        course_links._entries.clear()
        with transaction(factory) as s:
            s.execute(delete(OutboxStep).where(OutboxStep.kind == "meeting.sync"))
            s.execute(delete(Meeting).where(Meeting.programme_id == NETWORK))
            s.execute(update(CourseLink).where(CourseLink.id == ids[0]).values(programme_id=before))
            s.execute(delete(CanvasInstance).where(CanvasInstance.id == ids[1]))


def test_the_owner_schedules_a_network_session_without_wcag_violations(
    page: Page, network_course: LiveStack, axe_source: str
) -> None:
    live = network_course
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som kurseier", exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("a[href='/owner/progress']")).to_have_count(1)
    frame = tool_frame(page)
    frame.locator("a[href='/owner/sessions']").first.click()
    expect(tool.locator("body[data-canonical-url='/owner/sessions']")).to_have_count(1)
    frame = tool_frame(page)
    section = frame.locator("section[aria-labelledby='session-samling-1']")
    expect(section.locator("input[name=date]")).to_have_value("2023-09-27")
    violations = run_axe(frame, axe_source)
    assert violations == [], ("sessions", axe_summary(violations))

    digital = frame.locator("section[aria-labelledby='session-samling-2']")
    digital.locator("input[name=date]").fill("2027-01-12")
    digital.locator("input[name=time]").fill("10:00")
    digital.locator("input[name=duration]").fill("120")
    digital.locator("input[name=video_url]").fill("http://insecure.example.no/x")
    digital.locator("button[type=submit]").click()
    expect(tool.locator("#error-samling-2")).to_be_visible()
    frame = tool_frame(page)
    expect(frame.locator("section[aria-labelledby='session-samling-2'] input[name=video_url]")).to_have_attribute(
        "aria-invalid", "true"
    )
    violations = run_axe(frame, axe_source)
    assert violations == [], ("sessions with an error", axe_summary(violations))

    digital = frame.locator("section[aria-labelledby='session-samling-2']")
    digital.locator("input[name=video_url]").fill("https://meet.example.no/samling-2")
    digital.locator("button[type=submit]").click()
    expect(tool.locator("[role=status]")).to_be_visible()
    frame = tool_frame(page)
    violations = run_axe(frame, axe_source)
    assert violations == [], ("sessions saved", axe_summary(violations))
    with transaction(live.tool_app.extensions["kurspakke"].session_factory) as s:
        meeting = s.scalars(select(Meeting).where(Meeting.programme_id == NETWORK)).one()
        assert (meeting.session_key, meeting.format, meeting.video_url) == (
            "samling-2",
            "digital",
            "https://meet.example.no/samling-2",
        )
