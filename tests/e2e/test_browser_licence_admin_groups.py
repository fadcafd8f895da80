"""The licence administrator's mentor and group pages in a real Chromium: inside the Canvas simulator's cross-site
iframe (a launch) and at top level (a magic link). Every state of the pages — lists, a group with mixed workplaces,
refusals with their error summary — is checked with axe-core (WCAG 2.1 A/AA), and the changes are made with the
pages' own forms.

Elements are found by structure (ids, names, data attributes), not by their text, so the test holds whether the
Bokmål catalogue has the pages' texts yet or not."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Frame, FrameLocator, Page, expect
from sqlalchemy import select

from kurspakke.db import transaction
from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.licences.models import OrderSource, Seat
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.models import Organisation, Person
from kurspakke.services.magic_links import request_link
from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

ORGANISATION = "Oslo kommune"
PROGRAMME = "lindrende-behandling"


def _no_violations(frame: Frame | Page, axe_source: str, where: str) -> None:
    target = frame.main_frame if isinstance(frame, Page) else frame
    target.wait_for_load_state()
    violations = run_axe(target, axe_source)
    if violations:
        print(f"\naxe violations on {where}:")
        print(json.dumps(violations, indent=2, ensure_ascii=False))
    assert violations == [], axe_summary(violations)


def _seed(live: LiveStack, tag: str) -> tuple[int, dict[str, int]]:
    """Seats for three participants (two workplaces) and a mentor in the demo municipality; names carry ``tag`` so
    the tests of one session do not meet each other's people."""
    svc = live.tool_app.extensions["kurspakke"]
    programme = svc.programmes[PROGRAMME]
    with transaction(svc.session_factory) as s:
        org = s.scalars(select(Organisation).where(Organisation.name == ORGANISATION)).one()
        order = create_order(
            s, organisation=org, programme=programme, quantity=3, source=OrderSource.MANUAL, actor="e2e"
        )
        confirm_order(s, order, actor="e2e")
        seats = {}
        for key, name, workplace in (
            ("siri", "Siri Sykehjem", "sykehjem"),
            ("sara", "Sara Sykehjem", "sykehjem"),
            ("helge", "Helge Hjemmetjeneste", "hjemmetjeneste"),
        ):
            seat = assign_person(
                s, org, programme, PersonInput(f"{name} {tag}", f"{key}.{tag}@oslo.kommune.no", workplace), actor="e2e"
            )
            seats[key] = seat.id
        mentor = appoint_mentor(
            s, org, programme, PersonInput(f"Mentor Mari {tag}", f"mari.{tag}@oslo.kommune.no", "sykehjem"), actor="e2e"
        )
        seats["mentor"] = mentor.person_id
        return org.id, seats


def _go(page: Page, tool: FrameLocator | None, path: str) -> Frame:
    """Open a page of the tool as its links do (launch.js posts the token): a link with data-app-link, clicked.
    The navigation's link to these pages is another module's; this test does not depend on it."""
    frame = tool_frame(page) if tool is not None else page.main_frame
    frame.evaluate(
        """(href) => {
            const a = document.createElement("a");
            a.href = href; a.setAttribute("data-app-link", ""); a.textContent = href;
            document.body.appendChild(a); a.click();
        }""",
        path,
    )
    body = (tool or page).locator("body")
    expect(body).to_have_attribute("data-canonical-url", path)
    return tool_frame(page) if tool is not None else page.main_frame


def _submit(where: FrameLocator | Page, action: str) -> None:
    where.locator(f"form:has(input[name=action][value={action}]) button[type=submit]").first.click()


def _walk_the_pages(page: Page, tool: FrameLocator | None, live: LiveStack, axe_source: str, tag: str) -> None:
    """Every page and state, with axe-core after each; ``tool`` None: the pages at top level."""
    org_id, seats = _seed(live, tag)
    where: FrameLocator | Page = tool if tool is not None else page
    base = f"/admin/{org_id}/{PROGRAMME}"

    frame = _go(page, tool, base + "/groups")
    expect(where.locator("#f-size")).to_be_visible()
    _no_violations(frame, axe_source, f"the groups page ({tag})")

    # A refusal: an empty name. The error summary links to the field, which is marked.
    _submit(where, "create")
    expect(where.get_by_role("alert")).to_be_visible()
    expect(where.locator("#f-name")).to_have_attribute("aria-invalid", "true")
    expect(where.locator("[role=alert] a[href='#f-name']")).to_be_visible()
    _no_violations(frame, axe_source, f"the groups page with an error ({tag})")

    where.locator("#f-name").fill(f"Gruppe {tag}")
    _submit(where, "create")
    expect(where.get_by_role("status")).to_contain_text(f"Gruppe {tag}")
    where.locator(f"tr[data-group] a[data-app-link]:text-is('Gruppe {tag}')").click()
    expect(where.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"/groups/\d+$"))
    frame = tool_frame(page) if tool is not None else page.main_frame
    _no_violations(frame, axe_source, f"an empty group ({tag})")

    # A mentor, then participants from two workplaces: the group is marked as mixed.
    where.locator("#f-mentor").select_option(str(seats["mentor"]))
    _submit(where, "add_mentor")
    expect(where.locator(f"tr[data-mentor='{seats['mentor']}']")).to_be_visible()
    where.locator(f"#seat-{seats['siri']}").check()
    where.locator(f"#seat-{seats['helge']}").check()
    _submit(where, "add_members")
    expect(where.locator(f"tr[data-seat='{seats['helge']}']")).to_be_visible()
    expect(where.locator("p[data-mixed]")).to_be_visible()
    frame = tool_frame(page) if tool is not None else page.main_frame
    _no_violations(frame, axe_source, f"a group with mentor and participants ({tag})")

    # Adding nobody: refused, the fieldset marked.
    _submit(where, "add_members")
    expect(where.get_by_role("alert")).to_be_visible()
    expect(where.locator("fieldset#f-seats")).to_have_attribute("aria-invalid", "true")
    _no_violations(frame, axe_source, f"a group with an error ({tag})")

    # Fordel automatisk places Sara (and anyone else without a group) in groups of at most 4.
    frame = _go(page, tool, base + "/groups")
    if where.locator("#f-size").count():
        where.locator("#f-size").fill("4")
        where.locator("button[name=action][value=preview]").click()
        expect(where.locator("table#preview tr[data-planned]").first).to_be_visible()
        _no_violations(tool_frame(page) if tool is not None else page.main_frame, axe_source, f"a preview ({tag})")
        where.locator("button[name=action][value=distribute]").click()
        # The preview page has a status too: wait for the page the distribution answers with (no preview table).
        expect(where.locator("table#preview")).to_have_count(0)
        expect(where.get_by_role("status")).to_be_visible()
    expect(where.locator("[data-mixed]").first).to_be_visible()
    frame = tool_frame(page) if tool is not None else page.main_frame
    _no_violations(frame, axe_source, f"the groups page with groups ({tag})")

    frame = _go(page, tool, base + "/mentors")
    expect(where.locator(f"tr[data-mentor='{seats['mentor']}']")).to_contain_text(f"Gruppe {tag}")
    _no_violations(frame, axe_source, f"the mentors page ({tag})")
    where.locator("#f-name").fill(f"Mentor Mats {tag}")
    where.locator("#f-email").fill("ikke-en-adresse")
    _submit(where, "appoint")
    expect(where.locator("#f-email")).to_have_attribute("aria-invalid", "true")
    _no_violations(tool_frame(page) if tool is not None else page.main_frame, axe_source, f"the mentors error ({tag})")
    where.locator("#f-email").fill(f"mats.{tag}@oslo.kommune.no")
    _submit(where, "appoint")
    expect(where.get_by_role("status")).to_contain_text(f"Mentor Mats {tag}")

    svc = live.tool_app.extensions["kurspakke"]
    with svc.session_factory() as s:
        group = s.scalars(select(MentorGroup).where(MentorGroup.name == f"Gruppe {tag}")).one()
        members = set(s.scalars(select(GroupMember.seat_id).where(GroupMember.group_id == group.id)))
        assert {seats["siri"], seats["helge"]} <= members
        assert s.scalars(select(GroupMentor.person_id).where(GroupMentor.group_id == group.id)).all() == [
            seats["mentor"]
        ]
        assert s.scalars(select(GroupMember).where(GroupMember.seat_id == seats["sara"])).one()
        assert s.scalars(select(Seat).join(Person).where(Person.email == f"mats.{tag}@oslo.kommune.no")).one()


def test_group_pages_inside_canvas_have_no_wcag_violations(page: Page, live: LiveStack, axe_source: str):
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som lisensadministrator", exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text("Lisenser")
    tool.get_by_role("link", name=ORGANISATION, exact=True).first.click()
    expect(tool.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"^/admin/"))
    _walk_the_pages(page, tool, live, axe_source, "iframe")


def test_group_pages_signed_in_with_a_magic_link_have_no_wcag_violations(page: Page, live: LiveStack, axe_source: str):
    svc = live.tool_app.extensions["kurspakke"]
    with transaction(svc.session_factory) as s:
        admin = s.scalars(select(Person).where(Person.name == live.sim.user("lisensadministrator").name)).first()
        assert admin is not None
        found = request_link(s, admin.email, secret_key=svc.settings.secret_key)
    assert found is not None
    page.goto(f"{live.tool_url}/signin/link/{found[1]}")
    page.get_by_role("button", name="Logg inn").click()
    expect(page.locator("h1")).to_have_text("Lisensadministrasjon")
    page.wait_for_load_state()  # launch.js has taken the token and handles the links
    page.get_by_role("link", name=ORGANISATION).click()
    expect(page.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"^/admin/"))
    _walk_the_pages(page, None, live, axe_source, "toppniva")
