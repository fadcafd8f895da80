"""The progress pages in a real Chromium: the licence administrator's (signed in with a magic link, top level, and
launched from Canvas's frame) and the course owner's (inside the simulator's Canvas frame). Every page is checked
with axe-core (WCAG 2.1 A/AA): zero violations, the funnel chart included.

Pages are found through their addresses, not their words, so the tests hold before and after the Bokmål
translations of these pages are merged into the catalogue."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Frame, Page, expect
from sqlalchemy import delete, select

from canvas_sim.demo import demo_platform
from kurspakke.db import transaction
from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.licences.models import Seat
from kurspakke.meetings.models import Attendance
from kurspakke.models import CanvasInstance, Organisation, Person
from kurspakke.progress.models import ModuleCompletion
from kurspakke.services.magic_links import request_link
from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

ORGANISATION = "Oslo kommune"
PROGRAMME = "lindrende-behandling"
PEOPLE = 12


def factory(live: LiveStack):
    return live.tool_app.extensions["kurspakke"].session_factory


def assert_accessible(frame: Frame | Page, axe_source: str, what: str) -> None:
    violations = run_axe(frame.main_frame if isinstance(frame, Page) else frame, axe_source)
    if violations:
        print(f"\naxe violations on {what}:")
        print(json.dumps(violations, indent=2, ensure_ascii=False))
    assert violations == [], (what, axe_summary(violations))


@pytest.fixture
def progress_data(live: LiveStack) -> Iterator[LiveStack]:
    """Twelve participants of the demo municipality at every stage (two behind schedule), in a group with mixed
    workplaces and a mentor; removed after the test, so the other browser tests see the demo data as it was."""
    now = datetime.now(UTC)
    with transaction(factory(live)) as s:
        org = s.scalars(select(Organisation).where(Organisation.name == ORGANISATION)).one()
        people = [Person(name=f"Fremdrift {i:02d}", email=f"fremdrift-{i}.e2e@oslo.kommune.no") for i in range(PEOPLE)]
        mentor = Person(name="Fremdrift Mentor", email="fremdrift-mentor.e2e@oslo.kommune.no")
        s.add_all([*people, mentor])
        s.flush()
        seats = [
            Seat(
                organisation_id=org.id,
                programme_id=PROGRAMME,
                person_id=p.id,
                workplace="sykehjem" if i % 2 else "hjemmetjeneste",
                assigned_at=now - timedelta(weeks=10) if i >= 10 else now - timedelta(days=2),
                valid_until=now + timedelta(days=365),
            )
            for i, p in enumerate(people)
        ]
        group = MentorGroup(organisation_id=org.id, programme_id=PROGRAMME, name="Fremdrift-gruppa")
        s.add_all([*seats, group])
        s.flush()
        s.add(GroupMentor(group_id=group.id, person_id=mentor.id))
        s.add_all(GroupMember(group_id=group.id, seat_id=seat.id) for seat in seats[:6])
        for i, p in enumerate(people[:8]):
            s.add_all(
                ModuleCompletion(person_id=p.id, programme_id=PROGRAMME, module_id=f"emne-{m}", completed_at=now)
                for m in range(1, 5 - i // 2)
            )
        s.add(
            Attendance(
                seat_id=seats[9].id, programme_id=PROGRAMME, session_key="intro", present=True, recorded_by="e2e"
            )
        )
        s.flush()
        person_ids = [p.id for p in [*people, mentor]]
        seat_ids = [seat.id for seat in seats]
        group_id = group.id
    try:
        yield live
    finally:
        with transaction(factory(live)) as s:
            s.execute(delete(GroupMember).where(GroupMember.group_id == group_id))
            s.execute(delete(GroupMentor).where(GroupMentor.group_id == group_id))
            s.execute(delete(MentorGroup).where(MentorGroup.id == group_id))
            s.execute(delete(Attendance).where(Attendance.seat_id.in_(seat_ids)))
            s.execute(delete(ModuleCompletion).where(ModuleCompletion.person_id.in_(person_ids)))
            s.execute(delete(Seat).where(Seat.id.in_(seat_ids)))
            s.execute(delete(Person).where(Person.id.in_(person_ids)))


@pytest.fixture
def sellers_canvas(progress_data: LiveStack) -> Iterator[LiveStack]:
    """`kurspakke canvas add` for the simulator's Canvas, so its course owner sees the business pages; undone after."""
    live = progress_data
    instance = demo_platform(live.sim.config).platform_instance
    with transaction(factory(live)) as s:
        canvas = CanvasInstance(api_url=live.sim_url, account_id=1, token_encrypted=b"x", platform_instance=instance)
        s.add(canvas)
        s.flush()
        canvas_id = canvas.id
    try:
        yield live
    finally:
        with transaction(factory(live)) as s:
            s.execute(delete(CanvasInstance).where(CanvasInstance.id == canvas_id))


def _check_funnel(where: Frame | Page) -> None:
    """The chart and its table show the same numbers; the chart is an image with a name and a description."""
    chart = where.locator("svg.funnel-chart")
    expect(chart).to_have_attribute("role", "img")
    steps = where.locator("#funnel-data tbody tr")
    expect(steps).to_have_count(7)
    table = [steps.nth(i).locator("td[data-count]").get_attribute("data-count") for i in range(7)]
    bars = chart.locator("g[data-step] text[data-count]")
    assert [bars.nth(i).get_attribute("data-count") for i in range(7)] == table
    assert int(table[0] or 0) >= PEOPLE


def test_the_licence_administrators_progress_page_signed_in_has_no_wcag_violations(
    page: Page, progress_data: LiveStack, axe_source: str
) -> None:
    live = progress_data
    svc = live.tool_app.extensions["kurspakke"]
    with transaction(svc.session_factory) as s:
        admin = s.scalars(select(Person).where(Person.name == live.sim.user("lisensadministrator").name)).first()
        assert admin is not None
        found = request_link(s, admin.email, secret_key=svc.settings.secret_key)
    assert found is not None
    page.goto(f"{live.tool_url}/signin/link/{found[1]}")
    page.locator("form button[type=submit]").first.click()
    page.get_by_role("link", name=ORGANISATION).click()
    expect(page.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"^/admin/\d+/[^/]+/$"))
    page.locator("nav a[href$='/progress'][data-app-link]").click()
    expect(page.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"^/admin/\d+/[^/]+/progress$"))
    expect(page.locator("nav a[aria-current=page]")).to_have_attribute("href", re.compile(r"/progress$"))
    _check_funnel(page)
    expect(page.locator("#groups tbody tr", has_text="Fremdrift-gruppa")).to_contain_text("Fremdrift Mentor")
    expect(page.locator("#behind tbody tr", has_text="Fremdrift 1")).to_have_count(2)  # Fremdrift 10 and 11
    assert_accessible(page, axe_source, "the licence administrator's progress page (signed in)")
    with page.expect_download() as download:
        page.locator("form[action$='/progress.csv'] button").click()
    path = download.value.path()
    assert path is not None and download.value.suggested_filename.endswith(f"-{PROGRAMME}-958935420.csv")
    with open(path, "rb") as fh:
        assert fh.read(3) == b"\xef\xbb\xbf"


def test_the_licence_administrators_progress_page_in_canvas_has_no_wcag_violations(
    page: Page, progress_data: LiveStack, axe_source: str
) -> None:
    live = progress_data
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som lisensadministrator", exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    # A click before launch.js has run would follow the link as a plain GET: wait for the page to be whole.
    expect(tool.locator("body[data-canonical-url]")).to_have_count(1)
    page.wait_for_load_state()
    tool.locator("a[href^='/admin/']").first.click()
    expect(tool.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"^/admin/\d+/[^/]+/$"))
    page.wait_for_load_state()
    tool.locator("nav a[href$='/progress'][data-app-link]").click()
    expect(tool.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"/progress$"))
    frame = tool_frame(page)
    _check_funnel(frame)
    assert_accessible(frame, axe_source, "the licence administrator's progress page (in Canvas)")


def test_the_course_owners_progress_page_has_no_wcag_violations(
    page: Page, sellers_canvas: LiveStack, axe_source: str
) -> None:
    live = sellers_canvas
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som kurseier", exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("a[href='/owner/progress']")).to_have_count(1)
    tool.locator("a[href='/owner/progress']").click()
    expect(tool.locator("body[data-canonical-url='/owner/progress']")).to_have_count(1)
    frame = tool_frame(page)
    _check_funnel(frame)
    expect(tool.locator("#organisation-progress tbody tr", has_text=ORGANISATION)).to_have_count(1)
    assert_accessible(frame, axe_source, "the owner's progress page")

    # The filter: a name that matches nothing, then the kind.
    tool.locator("#progress-q").fill("Finnes ikke")
    tool.locator("form.filters button[type=submit]").click()
    expect(tool.locator("#progress-q")).to_have_value("Finnes ikke")
    expect(tool.locator("#organisation-progress")).to_have_count(0)
    assert_accessible(tool_frame(page), axe_source, "the owner's progress page, nothing matches")
    tool.locator("#progress-q").fill("oslo")
    tool.locator("form.filters button[type=submit]").click()
    expect(tool.locator("#organisation-progress tbody tr")).to_have_count(1)
    assert_accessible(tool_frame(page), axe_source, "the owner's progress page, filtered")

    with page.expect_download() as download:
        tool.locator("form[action='/owner/progress.csv'] button").click()
    path = download.value.path()
    assert path is not None
    with open(path, "rb") as fh:
        assert fh.read(3) == b"\xef\xbb\xbf"
