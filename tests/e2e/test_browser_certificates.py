"""Certificates in a real Chromium: the participant's certificate inside Canvas's frame with its PDF download, the
public verification page (a code typed in lower case, a mistyped one), and the course owner's certificate pages —
each checked with axe-core (WCAG 2.1 A/AA): zero violations.

Kari (the simulator's participant) holds a certificate for these tests only; it is removed after each test."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Frame, FrameLocator, Page, expect
from sqlalchemy import delete, select

from canvas_sim.demo import demo_platform
from kurspakke.certificates.codes import format_code, new_code
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.certificates.services import printed_texts
from kurspakke.db import transaction
from kurspakke.licences.models import AuditEntry
from kurspakke.models import CanvasInstance, Organisation, Person
from kurspakke.programmes import load_programmes
from tests.e2e.helpers import TOOL_FRAME, axe_summary, run_axe, tool_frame

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

PROGRAMME = load_programmes()["lindrende-behandling"]
ORGANISATION = "Oslo kommune"


def _no_violations(frame: Frame, axe_source: str, where: str) -> None:
    violations = run_axe(frame, axe_source)
    if violations:
        print(f"\naxe violations on {where}:")
        print(json.dumps(violations, indent=2, ensure_ascii=False))
    assert violations == [], (where, axe_summary(violations))


@pytest.fixture
def kari_certificate(live: LiveStack) -> Iterator[str]:
    """A valid certificate for the simulator's participant, and the seller's Canvas registered (for the owner's
    pages); both undone after."""
    factory = live.tool_app.extensions["kurspakke"].session_factory
    with transaction(factory) as s:
        kari = s.scalars(select(Person).where(Person.email == live.sim.user("deltaker").email)).one()
        org = s.scalars(select(Organisation).where(Organisation.name == ORGANISATION)).one()
        code = new_code()
        cert = Certificate(
            code=code,
            programme_id=PROGRAMME.id,
            person_id=kari.id,
            organisation_id=org.id,
            role=CertificateRole.PARTICIPANT,
            name=kari.name,
            organisation_name=org.name,
            mentor_names="Mona Mentor",
            completed_on=date(2026, 11, 2),
            printed=printed_texts(PROGRAMME, CertificateRole.PARTICIPANT),
            issued_at=datetime(2026, 11, 2, 12, tzinfo=UTC),
            issued_by="e2e",
        )
        instance = demo_platform(live.sim.config).platform_instance
        canvas = CanvasInstance(api_url=live.sim_url, account_id=1, token_encrypted=b"x", platform_instance=instance)
        s.add_all([cert, canvas])
        s.flush()
        canvas_id = canvas.id
    try:
        yield code
    finally:
        with transaction(factory) as s:
            s.execute(delete(AuditEntry).where(AuditEntry.entity_type == "certificate"))
            s.execute(delete(Certificate).where(Certificate.programme_id == PROGRAMME.id))
            s.execute(delete(CanvasInstance).where(CanvasInstance.id == canvas_id))


def test_the_participant_downloads_the_certificate_inside_canvas(
    page: Page, live: LiveStack, kari_certificate: str, axe_source: str
) -> None:
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som deltaker", exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text("Min fremdrift")
    section = tool.locator("section[aria-labelledby=certificate-heading]")
    expect(section).to_contain_text(format_code(kari_certificate))
    page.wait_for_load_state()
    _no_violations(tool_frame(page), axe_source, "Min fremdrift with a certificate")

    with page.expect_download() as download:
        section.get_by_role("button", name="Last ned kursbeviset (PDF)").click()
    assert download.value.suggested_filename == f"kursbevis-{kari_certificate}.pdf"
    path = download.value.path()
    assert path is not None and path.read_bytes()[:5] == b"%PDF-"


def test_the_public_verification_page_checks_a_typed_code(
    page: Page, live: LiveStack, kari_certificate: str, axe_source: str
) -> None:
    page.goto(live.tool_url + "/verify")
    expect(page.locator("h1")).to_have_text("Kontroller et kursbevis")
    _no_violations(page.main_frame, axe_source, "the verification form")

    page.get_by_label("Verifiseringskode").fill(format_code(kari_certificate).lower())
    page.get_by_role("button", name="Kontroller").click()
    expect(page).to_have_url(re.compile(f"/verify/{kari_certificate}$"))
    expect(page.locator("#verify-result")).to_have_text("Kursbeviset er gyldig")
    expect(page.locator("dl.facts")).to_contain_text(PROGRAMME.title)
    _no_violations(page.main_frame, axe_source, "a valid certificate")

    mistyped = ("1" if kari_certificate[0] != "1" else "2") + kari_certificate[1:]
    page.goto(f"{live.tool_url}/verify/{mistyped}")
    expect(page.locator("#verify-result")).to_have_text("Koden har en skrivefeil")
    _no_violations(page.main_frame, axe_source, "a mistyped code")


def test_the_course_owner_finds_and_opens_a_certificate(
    page: Page, live: LiveStack, kari_certificate: str, axe_source: str
) -> None:
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som kurseier", exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("a[href='/owner/certificates']")).to_have_count(1)
    tool_frame(page).locator("a[href='/owner/certificates']").first.click()
    expect(tool.locator("body[data-canonical-url='/owner/certificates']")).to_have_count(1)
    expect(tool.locator("h1")).to_have_text("Kursbevis")
    expect(tool.locator("table")).to_contain_text(format_code(kari_certificate))
    _no_violations(tool_frame(page), axe_source, "the owner's certificates")

    name = live.sim.user("deltaker").name
    tool.get_by_role("link", name=name, exact=True).click()
    expect(tool.locator("h1")).to_contain_text(name)
    _no_violations(tool_frame(page), axe_source, "one certificate with its history and forms")


def _admin_certificates(page: Page, live: LiveStack) -> FrameLocator:
    """The licence administrator's certificates page, from the simulator's start button."""
    page.goto(live.sim_url + "/")
    page.get_by_role("button", name="Start som lisensadministrator", exact=True).click()
    tool = page.frame_locator(TOOL_FRAME)
    expect(tool.locator("h1")).to_have_text("Lisenser")
    page.wait_for_load_state()
    tool.get_by_role("link", name=ORGANISATION, exact=True).first.click()
    expect(tool.locator("body")).to_have_attribute("data-canonical-url", re.compile(r"^/admin/"))
    tool.get_by_role("link", name="Kursbevis", exact=True).first.click()
    return tool


def test_the_licence_administrator_sees_the_organisations_certificates(
    page: Page, live: LiveStack, kari_certificate: str, axe_source: str
) -> None:
    tool = _admin_certificates(page, live)
    expect(tool.locator("h1")).to_have_text("Kursbevis")
    expect(tool.locator("table")).to_contain_text(format_code(kari_certificate))
    _no_violations(tool_frame(page), axe_source, "the licence administrator's certificates")

    with page.expect_download() as download:
        tool.get_by_role("button", name="Last ned alle som ZIP").click()
    assert download.value.suggested_filename.endswith(".zip")
    path = download.value.path()
    assert path is not None
    with zipfile.ZipFile(path) as archive:  # Kari's certificate as a PDF, beside the index
        pdfs = [n for n in archive.namelist() if n.endswith(f"-{format_code(kari_certificate)}.pdf")]
        assert len(pdfs) == 1 and archive.read(pdfs[0])[:5] == b"%PDF-"


def test_a_large_zip_shows_its_progress_page(
    page: Page, live: LiveStack, kari_certificate: str, axe_source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lti_tool.views import licence_admin_certificates

    monkeypatch.setattr(licence_admin_certificates, "DIRECT_ARCHIVE_MAX", 0)  # one certificate is "large" here
    tool = _admin_certificates(page, live)
    tool.get_by_role("button", name="Last ned alle som ZIP").click()
    expect(tool.locator("h1")).to_have_text("Alle kursbevis som ZIP")
    expect(tool.locator("#archive-message")).not_to_be_empty()
    _no_violations(tool_frame(page), axe_source, "the ZIP's progress page")
    factory = live.tool_app.extensions["kurspakke"].session_factory
    with transaction(factory) as s:  # the worker does not run here: its step goes with the test
        from kurspakke.outbox.models import OutboxStep

        s.execute(delete(OutboxStep).where(OutboxStep.kind == "certificate.archive"))
