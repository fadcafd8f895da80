"""The course owner's quiz page in a real Chromium, inside the simulator's Canvas frame: the owner maps a module to a
New Quiz of the course, listed live from the simulator's REST half (served on its own loopback port for this test,
for the demo course), and Canvas failing is said clearly. Every state of the page is checked with axe-core
(WCAG 2.1 A/AA): zero violations.

Elements are found through their addresses, ids and data attributes, not their words, so the test holds before
and after the Bokmål translations of this page are merged into the catalogue."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Frame, Page, expect
from sqlalchemy import delete, select
from werkzeug.serving import make_server

from canvas_sim import create_sim_app
from canvas_sim.demo import demo_platform
from canvas_sim.rest import CanvasRest
from kurspakke.db import transaction
from kurspakke.licences.models import AuditEntry
from kurspakke.models import CanvasInstance, CourseLink
from kurspakke.progress.models import QuizMapping
from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame
from tests.support.canvas_live import TOKEN

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

PATH = "/owner/quizzes"
ASSIGNMENTS = "GET /api/v1/courses/:course_id/assignments"


@dataclass
class QuizCanvas:
    live: LiveStack
    rest: CanvasRest
    classic: int
    new: int
    plain: int
    link_id: int


def factory(live: LiveStack):
    return live.tool_app.extensions["kurspakke"].session_factory


@pytest.fixture
def quiz_canvas(live: LiveStack) -> Iterator[QuizCanvas]:
    """The simulator's REST half for the demo course, with a Classic Quiz, a New Quiz and a plain assignment,
    registered as the seller's Canvas (`kurspakke canvas add`, a working token); all undone after, so the other
    browser tests see the demo data as it was."""
    config = live.sim.config
    rest = CanvasRest(config)
    classic = rest.add_assignment("Quiz emne 1", points_possible=10.0).id
    new = rest.add_assignment("Quiz emne 2", kind="new_quiz", points_possible=8.0).id
    plain = rest.add_assignment("Refleksjonsnotat", kind="plain").id
    server = make_server("127.0.0.1", 0, create_sim_app(config, live.sim, rest=rest), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-canvas-rest", daemon=True)
    thread.start()
    instance = demo_platform(config).platform_instance
    svc = live.tool_app.extensions["kurspakke"]
    try:
        with transaction(factory(live)) as s:
            s.add(
                CanvasInstance(
                    api_url=f"http://127.0.0.1:{server.server_port}",
                    account_id=1,
                    token_encrypted=svc.encryptor.encrypt(TOKEN.encode()),
                    platform_instance=instance,
                )
            )
            link_id = s.scalars(select(CourseLink.id).where(CourseLink.platform_instance == instance)).one()
        yield QuizCanvas(live, rest, classic, new, plain, link_id)
    finally:
        with transaction(factory(live)) as s:
            links = select(CourseLink.id).where(CourseLink.platform_instance == instance)
            s.execute(delete(QuizMapping).where(QuizMapping.course_link_id.in_(links)))
            s.execute(delete(AuditEntry).where(AuditEntry.entity_type == "quiz_mapping"))
            s.execute(delete(CanvasInstance).where(CanvasInstance.platform_instance == instance))
        rest.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def assert_accessible(frame: Frame, axe_source: str, what: str) -> None:
    violations = run_axe(frame, axe_source)
    assert violations == [], (what, axe_summary(violations))


def open_quizzes(page: Page) -> Frame:
    """Follow the owner's link to the quiz page (launch.js posts the launch token). Until the tab is in the owner
    pages' navigation, the same link is added to the frame's document first."""
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("a[href='/owner/orders']").first).to_be_visible()
    tool_frame(page).evaluate(
        """(path) => {
            if (!document.querySelector(`a[href='${path}'][data-app-link]`)) {
                const a = document.createElement("a");
                a.href = path;
                a.dataset.appLink = "";
                a.textContent = "Quiz";
                document.querySelector("main").prepend(a);
            }
        }""",
        PATH,
    )
    tool.locator(f"a[href='{PATH}'][data-app-link]").first.click()
    expect(tool.locator(f"body[data-canonical-url='{PATH}']")).to_have_count(1)
    return tool_frame(page)


def test_the_owner_maps_a_module_to_a_new_quiz_without_wcag_violations(
    page: Page, quiz_canvas: QuizCanvas, axe_source: str
) -> None:
    canvas, live = quiz_canvas, quiz_canvas.live
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som kurseier", exact=True).click()
    frame = open_quizzes(page)
    tool = page.frame_locator(TOOL_FRAME)

    # Only the quizzes are offered, in every module's list; the New Quiz is marked.
    first = tool.locator("section[data-module='emne-1']")
    choices = first.locator("select[name=assignment] option:not([value=''])")
    expect(choices).to_have_count(2)
    assert sorted(choices.evaluate_all("os => os.map(o => o.value)")) == sorted([str(canvas.classic), str(canvas.new)])
    expect(first.locator(f"option[value='{canvas.new}']")).to_have_attribute("data-kind", "new")
    expect(tool.locator(f"option[value='{canvas.plain}']")).to_have_count(0)
    assert_accessible(frame, axe_source, "the owner's quiz page")

    # Map module 1 to the New Quiz.
    first.locator("select[name=assignment]").select_option(str(canvas.new))
    first.locator("button[type=submit]").click()
    expect(tool.locator("[role=status]")).to_contain_text("Quiz emne 2")
    expect(tool.locator("section[data-module='emne-1'] dd[data-field='quiz']")).to_have_text("Quiz emne 2")
    expect(tool.locator(f"section[data-module='emne-2'] option[value='{canvas.new}']")).to_have_attribute(
        "disabled", ""
    )
    frame = tool_frame(page)
    assert_accessible(frame, axe_source, "the owner's quiz page after mapping a module")
    with factory(live)() as s:
        rows = s.execute(select(QuizMapping.course_link_id, QuizMapping.module_id, QuizMapping.assignment_id)).all()
    assert [tuple(r) for r in rows] == [(canvas.link_id, "emne-1", str(canvas.new))]

    # Canvas stops answering: the page says so (503), writes nothing, and is still accessible.
    canvas.rest.inject("status", endpoint=ASSIGNMENTS, status=503, times=None)
    second = tool.locator("section[data-module='emne-2']")
    second.locator("select[name=assignment]").select_option(str(canvas.classic))
    second.locator("button[type=submit]").click()
    expect(tool.locator("[role=alert]")).to_have_count(1)
    expect(tool.locator("form.map-quiz")).to_have_count(0)
    assert_accessible(tool_frame(page), axe_source, "the owner's quiz page with Canvas unavailable")
    with factory(live)() as s:
        assert s.scalars(select(QuizMapping.module_id)).all() == ["emne-1"]
