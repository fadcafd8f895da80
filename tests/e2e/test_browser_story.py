"""The whole story in a real Chromium, on a stack of its own (the tool, the Canvas simulator with its REST half
registered as the seller's Canvas, and an outbox worker run between the steps as `kurspakke worker` would):

a municipality orders 5 seats on the public form → the course owner confirms inside Canvas → the licence
administrator assigns them (one through the form, one from a CSV file) → the worker enrols them in the simulator's
course → the participant launches and sees four modules open → quiz submissions appear in the simulator and a sync
runs → the mentor schedules a session and records attendance through the pages (the other sessions through the
services) → the worker issues the certificate → the participant downloads it, and the QR code in the PDF decodes to
the verification address, which says the certificate is valid.

Each role's main page is saved as a PNG (test artefacts in test-artifacts/screenshots/, git-ignored; the current ones
are copied to docs/screenshots/ by hand)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Frame, FrameLocator, Page, expect
from sqlalchemy import select

from canvas_sim.demo import demo_platform
from canvas_sim.rest import rest_of
from course_sync.progress_sync import map_quiz_from_canvas
from course_sync.provisioning import client_factory
from course_sync.steps import step_kinds
from course_sync.worker import EXIT_IDLE, Worker
from kurspakke.certificates.models import Certificate
from kurspakke.db import transaction
from kurspakke.groups import services as groups
from kurspakke.licences.models import CanvasStatus, Order, Seat
from kurspakke.meetings.models import Meeting
from kurspakke.meetings.services import Mark, Plan, record_attendance, schedule
from kurspakke.models import CanvasInstance, Organisation, Person
from kurspakke.progress.models import ModuleCompletion
from kurspakke.progress.requests import request_sync
from tests.e2e.conftest import _live_stack
from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame
from tests.support.canvas_live import FAST

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

PROJECT = Path(__file__).resolve().parents[2]
SHOTS = PROJECT / "test-artifacts" / "screenshots"
PROGRAMME_ID = "lindrende-behandling"
ORGNR = "958935420"  # the demo's Oslo kommune
GROUP = "Gruppe Nord"
COLLEAGUE = ("Sindre Vik", "sindre.vik.story@oslo.kommune.no")


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """A stack of its own (the other browser tests share theirs), with the simulator's REST half registered as the
    Canvas the municipality's people are enrolled in, as `kurspakke canvas add` does."""
    with _live_stack(tmp_path_factory.mktemp("story"), canvas_layout=False) as live:
        svc = live.tool_app.extensions["kurspakke"]
        with transaction(svc.session_factory) as s:
            s.add(
                CanvasInstance(
                    api_url=live.sim_url,
                    account_id=1,
                    token_encrypted=svc.encryptor.encrypt(live.sim.config.rest_api_tokens[0].encode()),
                    platform_instance=demo_platform(live.sim.config).platform_instance,
                )
            )
        yield live


class Mail:
    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    def __call__(self, **message: str) -> None:
        self.sent.append(message)


def run_worker(live: LiveStack, mail: Mail) -> None:
    svc = live.tool_app.extensions["kurspakke"]
    clients = client_factory(svc.encryptor, timeout=5.0, max_tries=3, retry_base=0.01, retry_max=0.05)
    worker = Worker(svc.session_factory, clients, step_kinds(mail, base_url=live.tool_url), FAST)
    assert worker.run_until_idle(max_seconds=120) == EXIT_IDLE


def screenshot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def no_violations(frame: Frame, axe_source: str, where: str) -> None:
    violations = run_axe(frame, axe_source)
    assert violations == [], (where, axe_summary(violations))


def launch(page: Page, live: LiveStack, button: str, heading: str | re.Pattern[str]) -> FrameLocator:
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name=button, exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text(heading)
    expect(tool.locator("body[data-canonical-url]")).to_have_count(1)
    page.wait_for_load_state()
    return tool


def test_from_order_to_a_verified_certificate(page: Page, story: LiveStack, axe_source: str) -> None:
    live = story
    svc = live.tool_app.extensions["kurspakke"]
    kari_user = live.sim.user("deltaker")
    admin_user = live.sim.user("lisensadministrator")
    mail = Mail()

    # 1. The municipality orders 5 seats on the public form.
    page.goto(live.tool_url + f"/order?programme={PROGRAMME_ID}")
    page.fill("#f-organisation_name", "Oslo kommune")
    page.fill("#f-orgnr", ORGNR)
    page.fill("#f-quantity", "5")
    page.fill("#f-contact_name", admin_user.name)
    page.fill("#f-contact_email", admin_user.email)
    page.locator("form button[type=submit]").click()
    expect(page.locator("[role=status]")).to_be_visible()
    with svc.session_factory() as s:
        order_id = s.scalars(select(Order.id).order_by(Order.id.desc())).first()
    assert order_id is not None

    # 2. The course owner confirms it inside Canvas.
    tool = launch(page, live, "Start som kurseier", "Kursadministrasjon")
    screenshot(page, "course-owner")
    tool_frame(page).locator("a[href='/owner/orders']").first.click()
    expect(tool.locator("body[data-canonical-url='/owner/orders']")).to_have_count(1)
    tool_frame(page).locator(f"form[action='/owner/orders/{order_id}/confirm'] button").click()
    expect(tool.locator("[role=status]")).to_be_visible()

    # 3. The licence administrator assigns the seats: Kari through the form, a colleague from a CSV file.
    tool = launch(page, live, "Start som lisensadministrator", "Lisenser")
    tool.get_by_role("link", name="Oslo kommune", exact=True).first.click()
    expect(tool.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"^/admin/"))
    expect(tool.locator("h1")).to_have_text("Lisenser")
    screenshot(page, "licence-administrator")
    tool.get_by_role("link", name="Tildel en lisens", exact=True).first.click()
    expect(tool.locator("h1")).to_have_text("Tildel en lisens")
    tool.get_by_label("Navn").fill(kari_user.name)
    tool.get_by_label("E-postadresse").fill(kari_user.email)
    tool.get_by_role("button", name="Tildel lisensen").click()
    expect(tool.get_by_role("status")).to_contain_text(f"{kari_user.name} har fått lisens.")
    tool.get_by_role("link", name="Importer fra fil", exact=True).first.click()
    expect(tool.locator("h1")).to_have_text("Importer personer fra en fil")
    data = f"navn;e-post;arbeidssted\r\n{COLLEAGUE[0]};{COLLEAGUE[1]};hjemmetjeneste\r\n"
    tool.get_by_label("CSV-fil").set_input_files(
        {"name": "folk.csv", "mimeType": "text/csv", "buffer": data.encode("utf-8")}
    )
    tool.get_by_role("button", name="Vis forhåndsvisning").click()
    expect(tool.locator("[data-fact=new]")).to_have_text("1")
    tool.get_by_role("button", name="Gi 1 person lisens").click()
    expect(tool.get_by_role("status").first).to_contain_text("1 person fikk lisens.")

    # 4. The worker enrols both in the simulator's course (and sends their welcome e-mails).
    run_worker(live, mail)
    with svc.session_factory() as s:
        seats = {p.email: seat for seat, p in s.execute(select(Seat, Person).join(Person, Person.id == Seat.person_id))}
        assert seats[kari_user.email].canvas_status is CanvasStatus.ACTIVE
        assert seats[COLLEAGUE[1]].canvas_status is CanvasStatus.ACTIVE
    assert {m["to"] for m in mail.sent} >= {kari_user.email, COLLEAGUE[1]}

    # 5. Kari launches and sees four modules, none done yet, and what remains for the certificate.
    tool = launch(page, live, "Start som deltaker", "Min fremdrift")
    modules = tool.locator("section[aria-labelledby=modules-heading] tbody tr")
    expect(modules).to_have_count(4)
    for n in range(4):
        expect(modules.nth(n).locator("td")).to_contain_text("ikke fullført")
    expect(tool.locator("section[aria-labelledby=certificate-heading]")).to_contain_text("Lever quizen i")

    # 6. The course's four quizzes are mapped; Kari hands them in in Canvas; a sync reads them.
    rest = rest_of(live.sim_app)  # type: ignore[arg-type]
    clients = client_factory(svc.encryptor, timeout=5.0, max_tries=3, retry_base=0.01, retry_max=0.05)
    programme = svc.programmes[PROGRAMME_ID]
    handed_in = datetime.now(UTC) - timedelta(days=30)
    for n, module in enumerate(programme.modules):
        quiz = rest.add_assignment(f"Test {n + 1}: {module.title}")
        map_quiz_from_canvas(svc.session_factory, clients, programme, module.id, quiz.id, actor="e2e")
        rest.record_submission(quiz.id, kari_user.canvas_user_id, submitted_at=handed_in + timedelta(days=n))
    with transaction(svc.session_factory) as s:
        request_sync(s, PROGRAMME_ID, reason="e2e", actor="e2e", full=True)
    run_worker(live, mail)
    with svc.session_factory() as s:
        assert len(s.scalars(select(ModuleCompletion)).all()) == 4

    # 7. The licence administrator's group (through the services), then the mentor schedules samling 1 and records
    # attendance through the pages; the other sessions were held before (through the services).
    mentor_email = live.sim.user("mentor").email
    with transaction(svc.session_factory) as s:
        org = s.scalars(select(Organisation).where(Organisation.orgnr == ORGNR)).one()
        mentor = s.scalars(select(Person).where(Person.email == mentor_email)).one()
        group = groups.create_group(s, org, PROGRAMME_ID, GROUP, actor="e2e")
        kari_seat = s.get(Seat, seats[kari_user.email].id)
        colleague_seat = s.get(Seat, seats[COLLEAGUE[1]].id)
        assert kari_seat is not None and colleague_seat is not None
        groups.add_members(s, group, [kari_seat, colleague_seat], actor="e2e")
        groups.add_mentor(s, group, mentor, actor="e2e")
        for n, key in enumerate(["intro", "samling-2", "samling-3", "samling-4"]):
            when = handed_in + timedelta(days=n, hours=2)
            meeting = schedule(
                s, programme, key, Plan(when, 90, "physical", place="Rådhuset"), group=group, actor="e2e", now=when
            )
            record_attendance(
                s,
                meeting,
                [Mark(kari_seat, True), Mark(colleague_seat, True)],
                recorder=mentor,
                actor="e2e",
                now=when + timedelta(hours=2),
            )
        group_id = group.id
    tool = launch(page, live, "Start som mentor", "Mentoroversikt")
    tool.locator(f"a[href$='/mentor/groups/{group_id}/sessions/samling-1/schedule']").click()
    expect(tool.locator("form:has(#f-date)")).to_be_visible()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    tool.locator("#f-date").fill(yesterday.isoformat())
    tool.locator("#f-time").fill("10:00")
    tool.locator("#f-duration").fill("120")
    tool.locator("#f-place").fill("Møterom 2")
    tool.locator("button[name=save]").click()
    expect(tool.locator("p.notice[role=status]", has_text="Samling 1")).to_be_visible()
    tool.locator(f"a[href$='/mentor/groups/{group_id}/sessions/samling-1/attendance']").click()
    expect(tool.locator("form.attendance")).to_be_visible()
    tool.locator(f"#s{seats[kari_user.email].id}-present").check()
    tool.locator(f"#s{seats[COLLEAGUE[1]].id}-present").check()
    tool.locator("button[name=save]").click()
    expect(tool.locator("p.notice[role=status]", has_text="Oppmøtet for Samling 1")).to_be_visible()
    # The mentor has now led every group session: their own certificate is on its way.
    expect(tool.locator("section[aria-labelledby=own-certificate-heading]")).to_contain_text("gjort alt")
    screenshot(page, "mentor")
    with svc.session_factory() as s:
        assert s.scalars(select(Meeting).where(Meeting.group_id == group_id)).all()

    # 8. The worker evaluates and issues the certificates (the e-mail names Kari's code).
    run_worker(live, mail)
    with svc.session_factory() as s:
        cert = s.scalars(select(Certificate).join(Person).where(Person.email == kari_user.email)).one()
    assert any(m["to"] == kari_user.email and cert.code in m["text"].replace("-", "") for m in mail.sent)

    # 9. Kari sees it, downloads the PDF; its QR code decodes to the verification address, which says "valid".
    tool = launch(page, live, "Start som deltaker", "Min fremdrift")
    section = tool.locator("section[aria-labelledby=certificate-heading]")
    expect(section).to_contain_text("Kursbeviset ditt er klart")
    screenshot(page, "participant")
    no_violations(tool_frame(page), axe_source, "Min fremdrift with the certificate")
    with page.expect_download() as download:
        section.get_by_role("button", name="Last ned kursbeviset (PDF)").click()
    pdf = download.value.path()
    assert pdf is not None
    png = pdf.with_suffix(".png")
    subprocess.run(["pdftoppm", "-r", "200", "-png", "-singlefile", str(pdf), str(png.with_suffix(""))], check=True)
    decoded = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True, check=True)
    url = decoded.stdout.strip()
    assert url == f"{live.tool_url}/verify/{cert.code}"
    page.goto(url)
    expect(page.locator("#verify-result")).to_have_text("Kursbeviset er gyldig")
    expect(page.locator("dl.facts")).to_contain_text(kari_user.name)
    screenshot(page, "verification")
