"""Every page a role reaches by the tool's own links, in English (the simulator's language choice), checked with
axe-core (WCAG 2.1 A/AA): the crawl starts at the role's landing page and follows the `data-app-link` links (the
tool's navigation: pages, never actions) two levels deep, as launch.js does — the token posted to each address."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import delete, func, select

from canvas_sim.demo import demo_platform
from kurspakke.db import transaction
from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.licences.models import Seat
from kurspakke.meetings.models import Meeting
from kurspakke.models import CanvasInstance, Organisation, Person
from kurspakke.outbox.models import OutboxStep
from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

PAGES_PER_ROLE = 16
PROGRAMME_ID = "lindrende-behandling"
ROLES = [
    ("Start som deltaker", "My progress"),
    ("Start som mentor", "Mentor overview"),
    ("Start som lisensadministrator", "Licences"),
    ("Start som kurseier", "Course administration"),
]

OPEN = """([href, token]) => {
  const form = document.createElement("form");
  form.method = "post"; form.action = href; form.hidden = true;
  const field = document.createElement("input");
  field.type = "hidden"; field.name = "lt"; field.value = token;
  form.appendChild(field); document.body.appendChild(form); form.submit();
}"""
LINKS = "() => [...document.querySelectorAll('a[data-app-link]')].map(a => a.getAttribute('href'))"


@pytest.fixture
def sellers_canvas(live: LiveStack) -> Iterator[LiveStack]:
    """The seller's Canvas registered, so the course owner's business pages are linked too, and a group the
    simulator's mentor leads (Kari in it, samling 1 held yesterday), so the mentor's forms are linked; undone
    after."""
    factory = live.tool_app.extensions["kurspakke"].session_factory
    now = datetime.now(UTC)
    with transaction(factory) as s:
        steps_before = s.scalar(select(func.max(OutboxStep.id))) or 0
        instance = demo_platform(live.sim.config).platform_instance
        canvas = CanvasInstance(api_url=live.sim_url, account_id=1, token_encrypted=b"x", platform_instance=instance)
        org = s.scalars(select(Organisation).where(Organisation.name == "Oslo kommune")).one()
        kari = s.scalars(select(Person).where(Person.email == live.sim.user("deltaker").email)).one()
        mentor = s.scalars(select(Person).where(Person.email == live.sim.user("mentor").email)).one()
        seat = Seat(
            organisation_id=org.id,
            programme_id=PROGRAMME_ID,
            person_id=kari.id,
            workplace="Sykehjem",
            assigned_at=now - timedelta(days=2),
            valid_until=now + timedelta(days=365),
        )
        group = MentorGroup(organisation_id=org.id, programme_id=PROGRAMME_ID, name="Group Sun")
        s.add_all([canvas, seat, group])
        s.flush()
        s.add_all(
            [GroupMentor(group_id=group.id, person_id=mentor.id), GroupMember(group_id=group.id, seat_id=seat.id)]
        )
        s.add(
            Meeting(
                programme_id=PROGRAMME_ID,
                session_key="samling-1",
                group_id=group.id,
                starts_at=now - timedelta(days=1),
                duration_minutes=120,
                format="physical",
                place="Room 2",
            )
        )
        ids = canvas.id, seat.id, group.id
    try:
        yield live
    finally:
        with transaction(factory) as s:
            s.execute(delete(Meeting).where(Meeting.group_id == ids[2]))
            s.execute(delete(GroupMember).where(GroupMember.group_id == ids[2]))
            s.execute(delete(GroupMentor).where(GroupMentor.group_id == ids[2]))
            s.execute(delete(MentorGroup).where(MentorGroup.id == ids[2]))
            s.execute(delete(OutboxStep).where(OutboxStep.id > steps_before))  # what the seat and group wrote
            s.execute(delete(Seat).where(Seat.id == ids[1]))
            s.execute(delete(CanvasInstance).where(CanvasInstance.id == ids[0]))


@pytest.mark.parametrize(("button", "heading"), ROLES, ids=[r[0].split()[-1] for r in ROLES])
def test_every_page_of_a_role_in_english_has_no_wcag_violations(
    page: Page, sellers_canvas: LiveStack, axe_source: str, button: str, heading: str
) -> None:
    live = sellers_canvas
    page.goto(live.sim_url + "/")
    page.get_by_label("Språk i verktøyet").select_option("en")
    page.get_by_role("button", name=button, exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text(heading)
    page.wait_for_load_state()
    frame = tool_frame(page)
    token = frame.evaluate("() => document.body.getAttribute('data-launch-token')")
    assert token
    landing = frame.evaluate("() => document.body.getAttribute('data-canonical-url')")
    visited: list[str] = []
    queue = [(href, 1) for href in frame.evaluate(LINKS)]
    failures: dict[str, list[str]] = {}
    violations = run_axe(frame, axe_source)
    if violations:
        failures[landing] = axe_summary(violations)
    while queue and len(visited) < PAGES_PER_ROLE:
        href, depth = queue.pop(0)
        if href in visited or href == landing:
            continue
        visited.append(href)
        with page.expect_event("framenavigated"):
            tool_frame(page).evaluate(OPEN, [href, token])
        expect(tool.locator("html")).to_have_attribute("lang", "en")
        expect(tool.locator("h1")).not_to_be_empty()
        page.wait_for_load_state()
        frame = tool_frame(page)
        violations = run_axe(frame, axe_source)
        if violations:
            print(json.dumps(violations, indent=2, ensure_ascii=False))
            failures[href] = axe_summary(violations)
        if depth < 2:
            queue += [(h, depth + 1) for h in frame.evaluate(LINKS) if h not in visited]
    assert failures == {}, failures
    # The participant's page has no links; the others have pages to walk.
    if button.endswith(("lisensadministrator", "kurseier")):
        assert len(visited) >= 5, visited
    if button.endswith("mentor"):
        assert any(h.endswith("/attendance") for h in visited) and any(h.endswith("/schedule") for h in visited)
