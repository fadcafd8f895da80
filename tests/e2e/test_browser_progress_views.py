"""The participant's "Min fremdrift" and the mentor's pages in a real Chromium, inside the Canvas simulator's
cross-site iframe: what they show, attendance recorded with the keyboard alone, a session scheduled through its form,
and "Oppdater nå" with its live status. Every page is checked with axe-core (WCAG 2.1 A/AA): zero violations.

The data is the functional tests' world, built in the demo database: Kari (the simulator's participant, a nursing
home) and Sindre (home care) in one group of the demo municipality, led by the simulator's mentor; Samling 1 held
yesterday, the introduction in a week, module 1 done by Kari. Everything is removed after each test, so the other
browser tests see the demo data as it was."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Frame, FrameLocator, Page, expect
from sqlalchemy import delete, func, select

from kurspakke.db import transaction
from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.licences.models import Seat
from kurspakke.meetings.models import Attendance, Meeting
from kurspakke.models import Organisation, Person
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.programmes import load_programmes
from kurspakke.progress.models import ModuleCompletion
from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

ORGANISATION = "Oslo kommune"
PROGRAMME = load_programmes()["lindrende-behandling"]
GROUP = "Gruppe Sol"
OSLO = ZoneInfo("Europe/Oslo")
CONFIDENTIALITY = "taushetsplikt"
TAB_LIMIT = 80  # presses before a keyboard walk gives up: far more than any of these pages has stops


@dataclass(frozen=True)
class World:
    live: LiveStack
    group_id: int
    kari_seat: int
    sindre_seat: int
    mentor_id: int
    held_meeting: int


def factory(live: LiveStack):
    return live.tool_app.extensions["kurspakke"].session_factory


def assert_accessible(frame: Frame, axe_source: str, what: str) -> None:
    violations = run_axe(frame, axe_source)
    if violations:
        print(f"\naxe violations on {what}:")
        print(json.dumps(violations, indent=2, ensure_ascii=False))
    assert violations == [], (what, axe_summary(violations))


@pytest.fixture
def world(live: LiveStack) -> Iterator[World]:
    now = datetime.now(UTC)
    with transaction(factory(live)) as s:
        org = s.scalars(select(Organisation).where(Organisation.name == ORGANISATION)).one()
        kari = s.scalars(select(Person).where(Person.email == live.sim.user("deltaker").email)).one()
        mentor = s.scalars(select(Person).where(Person.email == live.sim.user("mentor").email)).one()
        sindre = Person(name="Sindre Vik", email="sindre.vik.e2e@oslo.kommune.no")
        s.add(sindre)
        s.flush()
        seats = [
            Seat(
                organisation_id=org.id,
                programme_id=PROGRAMME.id,
                person_id=person.id,
                workplace=workplace,
                assigned_at=now - timedelta(days=2),
                valid_until=now + timedelta(days=365),
            )
            for person, workplace in ((kari, "Sykehjem"), (sindre, "Hjemmetjeneste"))
        ]
        group = MentorGroup(organisation_id=org.id, programme_id=PROGRAMME.id, name=GROUP)
        s.add_all([*seats, group])
        s.flush()
        s.add(GroupMentor(group_id=group.id, person_id=mentor.id))
        s.add_all(GroupMember(group_id=group.id, seat_id=seat.id) for seat in seats)
        held = Meeting(
            programme_id=PROGRAMME.id,
            session_key="samling-1",
            group_id=group.id,
            starts_at=now - timedelta(days=1),
            duration_minutes=120,
            format="physical",
            place="Møterom 2",
        )
        soon = Meeting(
            programme_id=PROGRAMME.id,
            session_key="intro",
            group_id=group.id,
            starts_at=now + timedelta(days=7),
            duration_minutes=90,
            format="digital",
            video_url="https://meet.example.no/intro",
        )
        s.add_all([held, soon])
        s.add(
            ModuleCompletion(
                person_id=kari.id,
                programme_id=PROGRAMME.id,
                module_id="emne-1",
                completed_at=datetime(2026, 3, 10, 9, 0, tzinfo=UTC),
                score=8.0,
            )
        )
        s.flush()
        world = World(live, group.id, seats[0].id, seats[1].id, mentor.id, held.id)
        first_step = (s.scalar(select(func.max(OutboxStep.id))) or 0) + 1
        kari_id, sindre_id = kari.id, sindre.id
    try:
        yield world
    finally:
        seat_ids = [world.kari_seat, world.sindre_seat]
        with transaction(factory(live)) as s:
            s.execute(delete(Attendance).where(Attendance.seat_id.in_(seat_ids)))
            s.execute(delete(Meeting).where(Meeting.group_id == world.group_id))
            s.execute(delete(GroupMember).where(GroupMember.group_id == world.group_id))
            s.execute(delete(GroupMentor).where(GroupMentor.group_id == world.group_id))
            s.execute(delete(MentorGroup).where(MentorGroup.id == world.group_id))
            s.execute(delete(ModuleCompletion).where(ModuleCompletion.person_id.in_([kari_id, sindre_id])))
            s.execute(delete(Seat).where(Seat.id.in_(seat_ids)))
            s.execute(delete(Person).where(Person.id == sindre_id))
            # The calendar and progress syncs the pages asked for: no worker runs here, and their subjects are gone.
            s.execute(delete(OutboxStep).where(OutboxStep.id >= first_step))


def launch(page: Page, live: LiveStack, button: str, heading: str) -> FrameLocator:
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name=button, exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text(heading)
    expect(tool.locator("body[data-canonical-url]")).to_have_count(1)
    page.wait_for_load_state()  # launch.js has taken the token and handles the links
    return tool


def focused(frame: Frame, selector: str) -> bool:
    return bool(
        frame.evaluate(
            "(s) => document.hasFocus() && !!document.activeElement && document.activeElement.matches(s)", selector
        )
    )


def tab_to(page: Page, selector: str) -> Frame:
    """Press Tab (only Tab) until the tool's focused element matches ``selector``; the element must show where the
    focus is (WCAG 2.4.7). Returns the tool's frame."""
    frame = tool_frame(page)
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Tab")
        if focused(frame, selector):
            outline = frame.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("", "none"), f"{selector} shows no focus outline"
            return frame
    where = frame.evaluate("() => document.activeElement && document.activeElement.outerHTML.slice(0, 200)")
    raise AssertionError(f"Tab never reached {selector}; the focus is on {where}")


def enter_the_tool(page: Page) -> None:
    """The keyboard user's way into the tool: focus on the Canvas page's iframe, then Tab into its document."""
    page.locator(TOOL_FRAME).focus()


def test_min_fremdrift_shows_modules_sessions_next_session_and_group_without_wcag_violations(
    page: Page, world: World, axe_source: str
) -> None:
    tool = launch(page, world.live, "Start som deltaker", "Min fremdrift")
    mentor_name = world.live.sim.user("mentor").name

    modules = tool.locator("section[aria-labelledby=modules-heading] tbody tr")
    expect(modules).to_have_count(len(PROGRAMME.modules))
    expect(modules.nth(0)).to_contain_text("10.03.2026")
    expect(modules.nth(1)).not_to_contain_text("10.03.2026")

    sessions = tool.locator("section[aria-labelledby=sessions-heading] tbody tr")
    expect(sessions).to_have_count(len(PROGRAMME.sessions))
    expect(sessions.filter(has_text="Samling 1")).to_contain_text("Møterom 2")

    following = tool.locator("section[aria-labelledby=next-heading]")
    expect(following).to_contain_text("Om opplæringspakken")
    expect(following.locator("a")).to_have_attribute("href", "https://meet.example.no/intro")

    group = tool.locator("section[aria-labelledby=group-heading]")
    expect(group).to_contain_text(GROUP)
    expect(group).to_contain_text(mentor_name)

    remaining = tool.locator("section[aria-labelledby=certificate-heading]")
    expect(remaining).to_contain_text(PROGRAMME.modules[1].title)
    expect(remaining).not_to_contain_text(PROGRAMME.modules[0].title)
    expect(remaining).to_contain_text("Samling 1")
    assert_accessible(tool_frame(page), axe_source, "the participant's Min fremdrift")


def test_the_mentors_matrix_has_the_confidentiality_reminder_and_no_wcag_violations(
    page: Page, world: World, axe_source: str
) -> None:
    tool = launch(page, world.live, "Start som mentor", "Mentoroversikt")
    section = tool.locator(f"section[aria-labelledby=group-{world.group_id}]")
    expect(section.locator("h2")).to_have_text(GROUP)
    rows = section.locator("table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("th")).to_contain_text("Kari Nordmann")
    expect(rows.nth(0).locator("td").nth(0)).to_contain_text("10.03.2026")
    expect(rows.nth(1).locator("th")).to_contain_text("Sindre Vik")
    headers = section.locator("table thead th")
    expect(headers).to_have_count(1 + len(PROGRAMME.modules) + len(PROGRAMME.sessions))
    # Sykehjem and Hjemmetjeneste in one group: the reminder of the duty of confidentiality.
    reminder = section.locator(".reminder")
    expect(reminder).to_be_visible()
    expect(reminder).to_contain_text(CONFIDENTIALITY)
    # The wide matrix scrolls on its own and can be reached with the keyboard to do so.
    expect(section.locator(".matrix")).to_have_attribute("tabindex", "0")
    assert_accessible(tool_frame(page), axe_source, "the mentor's overview")


def test_attendance_is_recorded_with_the_keyboard_alone(page: Page, world: World, axe_source: str) -> None:
    tool = launch(page, world.live, "Start som mentor", "Mentoroversikt")
    link = f"a[href$='/mentor/groups/{world.group_id}/sessions/samling-1/attendance']"
    expect(tool.locator(link)).to_have_text("Registrer oppmøte for Samling 1")

    enter_the_tool(page)
    tab_to(page, link)
    page.keyboard.press("Enter")
    expect(tool.locator("form.attendance")).to_be_visible()
    expect(tool.locator("form.attendance fieldset legend")).to_have_text(["Kari Nordmann", "Sindre Vik"])
    expect(tool.locator(".reminder")).to_contain_text(CONFIDENTIALITY)
    assert_accessible(tool_frame(page), axe_source, "the attendance form")

    kari, sindre = world.kari_seat, world.sindre_seat
    # Kari: Tab reaches her radio group (none chosen yet: its first radio), Space chooses "Møtt".
    frame = tab_to(page, f"#s{kari}-present")
    page.keyboard.press("Space")
    expect(tool.locator(f"#s{kari}-present")).to_be_checked()
    # Sindre: Tab to his group, the arrow key moves to "Ikke møtt" and chooses it; Tab to the note, type it.
    frame = tab_to(page, f"#s{sindre}-present")
    page.keyboard.press("ArrowDown")
    assert focused(frame, f"#s{sindre}-absent")
    expect(tool.locator(f"#s{sindre}-absent")).to_be_checked()
    expect(tool.locator(f"#s{sindre}-present")).not_to_be_checked()
    tab_to(page, f"#s{sindre}-note")
    page.keyboard.type("Syk")
    expect(tool.locator(f"#s{sindre}-note")).to_have_value("Syk")
    expect(tool.locator(f"#s{kari}-present")).to_be_checked()  # the other group kept its choice
    tab_to(page, "button[name=save]")
    page.keyboard.press("Enter")

    notice = tool.locator("p.notice[role=status]")
    expect(notice).to_have_text(f"Oppmøtet for Samling 1 i {GROUP} er lagret.")
    expect(tool.locator("h1")).to_have_text("Mentoroversikt")
    rows = tool.locator(f"section[aria-labelledby=group-{world.group_id}] table tbody tr")
    column = len(PROGRAMME.modules) + [x.id for x in PROGRAMME.sessions].index("samling-1")
    expect(rows.nth(0).locator("td").nth(column)).to_have_text(re.compile(r"^\W*møtt$"))
    expect(rows.nth(1).locator("td").nth(column)).to_have_text(re.compile(r"^\W*ikke møtt$"))
    assert_accessible(tool_frame(page), axe_source, "the overview after attendance is saved")

    with factory(world.live)() as s:
        saved = s.scalars(
            select(Attendance)
            .where(Attendance.seat_id.in_([kari, sindre]), Attendance.session_key == "samling-1")
            .order_by(Attendance.seat_id)
        ).all()
        assert [(r.seat_id, r.present, r.note, r.led_by_person_id, r.meeting_id, r.makeup) for r in saved] == [
            (kari, True, "", world.mentor_id, world.held_meeting, False),
            (sindre, False, "Syk", world.mentor_id, world.held_meeting, False),
        ]


def test_a_session_is_scheduled_through_its_form(page: Page, world: World, axe_source: str) -> None:
    tool = launch(page, world.live, "Start som mentor", "Mentoroversikt")
    tool.locator(f"a[href$='/mentor/groups/{world.group_id}/sessions/samling-2/schedule']").click()
    form = tool.locator("form:has(#f-date)")
    expect(form).to_be_visible()
    expect(tool.locator("h1")).to_have_text(f"Sett opp Samling 2 for {GROUP}")
    expect(tool.locator("#f-format-physical")).to_be_checked()
    expect(tool.locator(".reminder")).to_contain_text(CONFIDENTIALITY)
    assert_accessible(tool_frame(page), axe_source, "the schedule form")

    day = (datetime.now(OSLO) + timedelta(days=21)).date()
    tool.locator("#f-date").fill(day.isoformat())
    tool.locator("#f-time").fill("18:30")
    tool.locator("#f-duration").fill("100")
    tool.locator("#f-place").fill("Møterom 3")
    tool.locator("button[name=save]").focus()
    page.keyboard.press("Enter")

    notice = tool.locator("p.notice[role=status]")
    expect(notice).to_contain_text(f"Samling 2 for {GROUP} er satt opp {day:%d.%m.%Y} 18:30")
    samling_2 = tool.locator(f"section[aria-labelledby=group-{world.group_id}] .status-list li", has_text="Samling 2")
    expect(samling_2).to_contain_text("Møterom 3")
    expect(samling_2.locator("a")).to_have_text("Endre tidspunkt for Samling 2")
    assert_accessible(tool_frame(page), axe_source, "the overview after a session is scheduled")

    with factory(world.live)() as s:
        meeting = s.scalars(
            select(Meeting).where(Meeting.group_id == world.group_id, Meeting.session_key == "samling-2")
        ).one()
        starts = datetime.combine(day, time(18, 30), tzinfo=OSLO).astimezone(UTC)
        assert (meeting.starts_at, meeting.duration_minutes, meeting.format, meeting.place, meeting.video_url) == (
            starts,
            100,
            "physical",
            "Møterom 3",
            "",
        )


def test_update_now_shows_a_progress_indicator_and_a_live_status(page: Page, world: World, axe_source: str) -> None:
    tool = launch(page, world.live, "Start som mentor", "Mentoroversikt")
    tool.get_by_role("button", name="Oppdater nå", exact=True).click()
    expect(tool.locator("h1")).to_have_text("Oppdaterer fremdrift fra Canvas")
    indicator = tool.locator("progress#sync-progress")
    expect(indicator).to_be_visible()
    expect(indicator).to_have_accessible_name(re.compile(r"\S"))
    message = tool.locator("#sync-message")
    expect(message).to_have_attribute("role", "status")
    expect(message).to_have_attribute("aria-live", "polite")
    # sync.js follows the request; no worker runs here, so it waits.
    expect(message).to_have_text("Venter på bakgrunnsjobben …")
    expect(indicator).not_to_have_attribute("value", re.compile(".*"))  # still indeterminate
    assert_accessible(tool_frame(page), axe_source, "the sync status page")

    with transaction(factory(world.live)) as s:
        steps = s.scalars(
            select(OutboxStep).where(OutboxStep.kind == "progress.sync", OutboxStep.status == StepStatus.PENDING)
        ).all()
        assert [step.payload["programme_id"] for step in steps] == [PROGRAMME.id]
        # As the worker leaves it: the page follows, the indicator fills and the live region says so.
        steps[0].status, steps[0].done_at = StepStatus.DONE, datetime.now(UTC)
    expect(message).to_have_text("Ferdig: oversikten er oppdatert.")
    expect(indicator).to_have_js_property("value", 1)
    expect(indicator).to_have_js_property("max", 1)

    # Back to the overview, with the keyboard.
    tab_to(page, "a[data-app-link]:not(nav a)")
    page.keyboard.press("Enter")
    expect(tool.locator("h1")).to_have_text("Mentoroversikt")
