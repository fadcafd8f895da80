"""The licence administrator's certificates page (lti_tool/views/licence_admin_certificates.py) through the Flask
client, on SQLite and PostgreSQL: the organisation's certificates and their statuses, PDFs, the ZIP of a small set
in the answer and of a large one through the worker's ``certificate.archive`` step, and that nothing of another
organisation is ever shown or handed out.

Texts are compared with the app's own catalogue (``say``), so the assertions hold before and after the Bokmål
translations of this page are merged into it."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup
from flask import g
from sqlalchemy import select

from course_sync import certificate_archive
from course_sync.steps import step_kinds
from course_sync.worker import EXIT_IDLE, Worker, WorkerOptions
from kurspakke.certificates import services as certificates
from kurspakke.certificates.archive import CERTIFICATE_ARCHIVE, INDEX_NAME
from kurspakke.certificates.codes import format_code
from kurspakke.certificates.models import Certificate
from kurspakke.db import transaction
from kurspakke.models import ProgrammeRoleKind
from kurspakke.models.lti import ExpiringValue
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.services.magic_links import request_link
from kurspakke.services.people import get_or_create_person, grant_role
from lti_tool.i18n import gettext
from lti_tool.views import licence_admin_certificates as page
from tests.conftest import SECRET, TOOL
from tests.support.certificates import PROGRAMME, complete_modules, hold_sessions, run
from tests.support.lti import launch_token, open_page

pytestmark = pytest.mark.timeout(180)

ADMIN = "kari.koordinator@oslo.kommune.no"
BERGEN_ADMIN = "berit@bergen.kommune.no"
SAME_ORIGIN = {"Origin": TOOL, "Sec-Fetch-Site": "same-origin"}
OSLO = ZoneInfo("Europe/Oslo")


def soup_of(resp) -> BeautifulSoup:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def text_of(resp) -> str:
    return " ".join(soup_of(resp).get_text(" ").split())


def say(app, message: str, **params: Any) -> str:
    """The text the pages show for ``message`` (Bokmål when the catalogue has it)."""
    with app.test_request_context("/"):
        g.locale = "nb"
        return gettext(message, **params)


class World:
    """Oslo (Kari Koordinator administers it): Åse, Ola and Per completed everything and got certificates, so did
    their mentor Mona; Ola's was then revoked and Per's re-issued with a corrected name; Kari Nordmann has not
    completed. Bergen (Berit administers it): Bjørn and his mentor hold certificates."""

    def __init__(self, app) -> None:
        self.factory = app.extensions["kurspakke"].session_factory
        with transaction(self.factory) as s:
            oslo = run(s, ["Åse Ødegård-Bjørnæs", "Ola Hansen", "Per Pleier", "Kari Nordmann"])
            for seat in oslo.seats[:3]:
                complete_modules(s, seat)
            hold_sessions(s, oslo)
            bergen = run(s, ["Bjørn Bergen"], orgnr="964338531", org_name="Bergen kommune")
            complete_modules(s, bergen.seats[0])
            hold_sessions(s, bergen)
            kari = get_or_create_person(s, name="Kari Koordinator", email=ADMIN)
            grant_role(s, kari, programme_id=PROGRAMME.id, organisation=oslo.organisation, role=LICENCE_ADMIN)
            berit = get_or_create_person(s, name="Berit Bergen", email=BERGEN_ADMIN)
            grant_role(s, berit, programme_id=PROGRAMME.id, organisation=bergen.organisation, role=LICENCE_ADMIN)
            assert certificates.evaluate(s, PROGRAMME).issued == 6
            by_name = {c.name: c for c in s.scalars(select(Certificate))}
            certificates.revoke(s, by_name["Ola Hansen"], reason="Registrert ved en feil", actor="test")
            certificates.reissue(s, by_name["Per Pleier"], reason="Navnet rettet", actor="test", name="Per P. Pleier")
            self.oslo, self.bergen = oslo.organisation.id, bergen.organisation.id
            self.orgnr = oslo.organisation.orgnr
            certs = list(s.scalars(select(Certificate)))
            self.own = {c.name: c.id for c in certs if c.organisation_id == self.oslo}
            self.codes = {c.id: c.code for c in certs}
            self.valid = {c.id for c in certs if c.organisation_id == self.oslo and c.valid}
            self.bergen_certs = [c.id for c in certs if c.organisation_id == self.bergen]

    def path(self, tail: str = "", org: int | None = None) -> str:
        return f"/admin/{org or self.oslo}/{PROGRAMME.id}/{tail}"


LICENCE_ADMIN = ProgrammeRoleKind.LICENCE_ADMIN


@pytest.fixture
def world(app) -> World:
    return World(app)


def sign_in(client, world: World, email: str = ADMIN) -> str:
    with transaction(world.factory) as s:
        found = request_link(s, email, secret_key=SECRET)
    assert found is not None
    home = client.post(f"/signin/link/{found[1]}", headers=SAME_ORIGIN, base_url=TOOL)
    assert home.status_code == 200, text_of(home)
    return launch_token(home.get_data(as_text=True))


@pytest.fixture
def token(client, world) -> str:
    return sign_in(client, world)


def post(client, path: str, token: str, **form: Any):
    return client.post(path, data={"lt": token, **form}, base_url=TOOL)


def poll(client, path: str, token: str):
    """As archive.js asks: the token in the header, nothing in the body."""
    return client.post(path, headers={"X-Launch-Token": token}, base_url=TOOL)


def rows_of(resp) -> dict[str, dict[str, Any]]:
    found = {}
    for row in soup_of(resp).select("table#certificates tbody tr"):
        cells = row.find_all("td")
        found[row.th.get_text(strip=True)] = {
            "id": int(row["data-certificate"]),
            "role": cells[0].get_text(strip=True),
            "completed": cells[1].get_text(strip=True),
            "code": cells[2].get_text(strip=True),
            "state": cells[3]["data-state"],
            "status": cells[3].get_text(strip=True),
            "pdf": row.find("form"),
        }
    return found


def run_worker(app) -> int:
    factory = app.extensions["kurspakke"].session_factory
    kinds = {CERTIFICATE_ARCHIVE: step_kinds()[CERTIFICATE_ARCHIVE]}
    return Worker(factory, lambda instance: None, kinds, WorkerOptions(poll_seconds=0.05)).run_until_idle(60)


def archive_steps(db_session) -> list[OutboxStep]:
    return db_session.scalars(select(OutboxStep).where(OutboxStep.kind == CERTIFICATE_ARCHIVE)).all()


# --- the page ------------------------------------------------------------------------------------------------------


def test_the_page_lists_the_organisations_certificates_with_their_status(client, app, token, world):
    resp = open_page(client, world.path("certificates"), token)
    assert resp.status_code == 200, text_of(resp)
    rows = rows_of(resp)

    assert set(rows) == {"Åse Ødegård-Bjørnæs", "Ola Hansen", "Per Pleier", "Per P. Pleier", "Mona Mentor"}
    assert {name: r["state"] for name, r in rows.items()} == {
        "Åse Ødegård-Bjørnæs": "valid",
        "Ola Hansen": "revoked",
        "Per Pleier": "superseded",
        "Per P. Pleier": "valid",
        "Mona Mentor": "valid",
    }
    assert rows["Åse Ødegård-Bjørnæs"]["status"] == say(app, "valid")
    today = datetime.now(OSLO).strftime("%d.%m.%Y")  # revoked and re-issued as the world was made
    assert rows["Per Pleier"]["status"] == say(app, "replaced %(date)s", date=today)
    assert rows["Ola Hansen"]["status"] == say(app, "revoked %(date)s", date=today)
    assert rows["Mona Mentor"]["role"] == say(app, "Mentor")
    assert rows["Åse Ødegård-Bjørnæs"]["role"] == say(app, "Participant")
    assert rows["Åse Ødegård-Bjørnæs"]["completed"] == "31.03.2026"
    assert rows["Åse Ødegård-Bjørnæs"]["code"] == format_code(world.codes[world.own["Åse Ødegård-Bjørnæs"]])
    # A PDF only of a valid certificate; its button names the holder for a screen reader.
    assert rows["Ola Hansen"]["pdf"] is None and rows["Per Pleier"]["pdf"] is None
    button = rows["Åse Ødegård-Bjørnæs"]["pdf"].button
    assert button.get_text(" ", strip=True).startswith("PDF")
    assert "Åse Ødegård-Bjørnæs" in button.find(class_="visually-hidden").get_text()
    assert rows["Åse Ødegård-Bjørnæs"]["pdf"].find("input", attrs={"name": "lt"})["value"] == token

    soup = soup_of(resp)
    assert soup.find("table", id="certificates").caption is not None
    assert all(th.get("scope") in ("col", "row") for th in soup.select("table#certificates th"))
    count = soup.find(attrs={"data-count": "without"}).get_text(" ", strip=True)
    assert count == say(app, "%(num)d participant has no certificate yet.", num=1)  # Kari Nordmann
    assert soup.find("a", attrs={"aria-current": "page"})["href"] == world.path("certificates")


def test_another_organisations_certificates_are_not_shown_nor_handed_out(client, token, world):
    resp = open_page(client, world.path("certificates"), token)
    body = resp.get_data(as_text=True)
    assert "Bjørn Bergen" not in body and "Bergen kommune" not in body
    assert all(format_code(world.codes[i]) not in body for i in world.bergen_certs)

    for cert_id in world.bergen_certs:
        pdf = post(client, world.path(f"certificates/{cert_id}/pdf"), token)
        assert pdf.status_code == 404 and pdf.mimetype == "text/html"
        assert b"%PDF" not in pdf.get_data() and "Bjørn" not in text_of(pdf)
    # Bergen's own addresses are refused outright.
    assert open_page(client, world.path("certificates", org=world.bergen), token).status_code == 403
    assert (
        post(client, world.path(f"certificates/{world.bergen_certs[0]}/pdf", org=world.bergen), token).status_code
        == 403
    )
    assert post(client, world.path("certificates/archive", org=world.bergen), token).status_code == 403


def test_a_pdf_of_an_own_valid_certificate_and_none_of_a_revoked_or_replaced_one(client, token, world):
    cert_id = world.own["Åse Ødegård-Bjørnæs"]
    resp = post(client, world.path(f"certificates/{cert_id}/pdf"), token)
    assert resp.status_code == 200
    assert resp.mimetype == "application/pdf" and resp.get_data().startswith(b"%PDF")
    assert resp.headers["Content-Disposition"] == f'attachment; filename="kursbevis-{world.codes[cert_id]}.pdf"'
    assert resp.headers["Cache-Control"] == "no-store"
    for name in ("Ola Hansen", "Per Pleier"):
        assert post(client, world.path(f"certificates/{world.own[name]}/pdf"), token).status_code == 404
    assert post(client, world.path("certificates/999999/pdf"), token).status_code == 404


def test_without_a_token_nothing_is_handed_out(client, world):
    cert_id = world.own["Åse Ødegård-Bjørnæs"]
    assert client.post(world.path(f"certificates/{cert_id}/pdf"), base_url=TOOL).status_code == 401
    assert client.post(world.path("certificates/archive"), base_url=TOOL).status_code == 401


# --- the ZIP -------------------------------------------------------------------------------------------------------


def check_zip(data: bytes, world: World) -> None:
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    pdfs = sorted(n for n in names if n.endswith(".pdf"))
    assert INDEX_NAME in names and len(names) == len(world.valid) + 1
    # One PDF per valid certificate, named after its holder and its code; revoked and replaced ones left out.
    assert pdfs == sorted(
        [
            f"kursbevis-Aase-Odegaard-Bjornaes-{format_code(world.codes[world.own['Åse Ødegård-Bjørnæs']])}.pdf",
            f"kursbevis-Per-P-Pleier-{format_code(world.codes[world.own['Per P. Pleier']])}.pdf",
            f"kursbevis-Mona-Mentor-{format_code(world.codes[world.own['Mona Mentor']])}.pdf",
        ]
    )
    assert all(archive.read(n).startswith(b"%PDF") for n in pdfs)
    index = archive.read(INDEX_NAME)
    assert index.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(index.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["navn", "kode", "fullført", "status"]
    status = {row[0]: row[3] for row in rows[1:]}
    today = datetime.now(OSLO).strftime("%d.%m.%Y")
    assert status["Åse Ødegård-Bjørnæs"] == "gyldig" and status["Per Pleier"] == f"erstattet {today}"
    assert status["Ola Hansen"] == f"trukket tilbake {today}"
    assert "Bjørn Bergen" not in status


def test_a_small_set_is_zipped_in_the_answer(client, token, world, db_session):
    resp = post(client, world.path("certificates/archive"), token)
    assert resp.status_code == 200
    assert resp.mimetype == "application/zip"
    assert resp.headers["Content-Disposition"] == (f'attachment; filename="kursbevis-{PROGRAMME.id}-{world.orgnr}.zip"')
    check_zip(resp.get_data(), world)
    assert archive_steps(db_session) == []


def test_a_large_set_is_built_by_the_worker_and_polled(client, app, token, world, db_session, monkeypatch):
    monkeypatch.setattr(page, "DIRECT_ARCHIVE_MAX", 1)
    resp = post(client, world.path("certificates/archive"), token)
    assert resp.status_code == 202, text_of(resp)
    soup = soup_of(resp)
    box = soup.find(id="archive")
    status_url = box["data-status-url"]
    match = re.fullmatch(rf"{re.escape(world.path('certificates/archive/'))}([A-Za-z0-9_-]{{32}})/status", status_url)
    assert match is not None, status_url
    token_ = match.group(1)
    # Labelled progress, a polite live region, the download waiting, and a way on without scripts.
    progress = soup.find("progress", id="archive-progress")
    assert soup.find("label", attrs={"for": "archive-progress"}) is not None
    assert progress.get("aria-describedby") == "archive-count"
    live = soup.find(id="archive-message")
    assert live["role"] == "status" and live["aria-live"] == "polite"
    assert soup.find(id="archive-download").has_attr("hidden")
    assert soup.find("body")["data-canonical-url"] == world.path(f"certificates/archive/{token_}")
    assert soup.find("script", src=re.compile(r"js/archive\.js"))

    state = poll(client, status_url, token).get_json()
    assert state["status"] == "pending" and (state["done"], state["total"]) == (0, 3)
    # A second press while the first waits costs nothing: the same build.
    again = post(client, world.path("certificates/archive"), token)
    assert soup_of(again).find(id="archive")["data-status-url"] == status_url
    assert len(archive_steps(db_session)) == 1
    assert post(client, world.path(f"certificates/archive/{token_}/download"), token).status_code == 404

    # What the page reads while the worker builds: after each progress report (every PDF here) is committed.
    seen: list[tuple[int, int, str, int]] = []
    real = certificate_archive.write_archive

    def watched(certs, base_url, out, progress):
        def report(done: int, total: int) -> None:
            progress(done, total)
            state = poll(client, status_url, token).get_json()
            seen.append((done, total, state["status"], state["done"]))

        return real(certs, base_url, out, report)

    monkeypatch.setattr(certificate_archive, "write_archive", watched)
    monkeypatch.setattr(certificate_archive, "PROGRESS_SECONDS", 0.0)
    assert run_worker(app) == EXIT_IDLE
    assert seen == [(n, 3, "running", n) for n in range(4)]

    state = poll(client, status_url, token).get_json()
    assert state["status"] == "done" and state["done"] == state["total"] == 3
    assert state["message"] == say(app, "The ZIP file is ready.")
    assert [s.status for s in archive_steps(db_session)] == [StepStatus.DONE]
    status_page = post(client, world.path(f"certificates/archive/{token_}"), token)
    assert status_page.status_code == 200
    assert not soup_of(status_page).find(id="archive-download").has_attr("hidden")
    assert soup_of(status_page).find("progress")["value"] == "3"

    download = post(client, world.path(f"certificates/archive/{token_}/download"), token)
    assert download.status_code == 200 and download.mimetype == "application/zip"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert f"kursbevis-{PROGRAMME.id}-{world.orgnr}.zip" in download.headers["Content-Disposition"]
    assert download.headers["Cache-Control"] == "no-store"
    check_zip(download.get_data(), world)
    download.close()
    exports = app.extensions["kurspakke"].settings.instance_path / "exports"
    assert [p.name for p in exports.iterdir()] == [f"kursbevis-{token_}.zip"]  # no part file left behind


def test_a_built_archive_is_only_for_its_organisation_and_a_forged_token_finds_nothing(
    client, app, token, world, db_session, monkeypatch
):
    monkeypatch.setattr(page, "DIRECT_ARCHIVE_MAX", 1)
    status_url = soup_of(post(client, world.path("certificates/archive"), token)).find(id="archive")["data-status-url"]
    token_ = status_url.rsplit("/", 2)[1]
    assert run_worker(app) == EXIT_IDLE

    berit = sign_in(client, world, BERGEN_ADMIN)
    # Berit administers Bergen, not Oslo: Oslo's addresses are refused, and Oslo's token under Bergen is unknown.
    assert post(client, world.path(f"certificates/archive/{token_}/download"), berit).status_code == 403
    assert (
        post(client, world.path(f"certificates/archive/{token_}/download", org=world.bergen), berit).status_code == 404
    )
    assert poll(client, world.path(f"certificates/archive/{token_}/status", org=world.bergen), berit).status_code == 404
    assert post(client, world.path(f"certificates/archive/{token_}", org=world.bergen), berit).status_code == 404

    forged = [
        token_[:-1] + ("A" if token_[-1] != "A" else "B"),  # the shape of a token, not one
        "A" * 32,
        "..%2F..%2Fkurspakke.sqlite3",
        token_ + "x",
    ]
    for other in forged:
        for tail in ("/download", "/status", ""):
            resp = post(client, world.path(f"certificates/archive/{other}{tail}"), token)
            assert resp.status_code == 404, (other, tail)
            assert b"PK\x03\x04" not in resp.get_data()


def test_an_expired_build_is_no_longer_handed_out(client, app, token, world, monkeypatch):
    monkeypatch.setattr(page, "DIRECT_ARCHIVE_MAX", 1)
    status_url = soup_of(post(client, world.path("certificates/archive"), token)).find(id="archive")["data-status-url"]
    token_ = status_url.rsplit("/", 2)[1]
    assert run_worker(app) == EXIT_IDLE
    from kurspakke.models.base import utcnow

    with transaction(world.factory) as s:
        s.execute(ExpiringValue.__table__.update().values(expires_at=utcnow()))
    assert post(client, world.path(f"certificates/archive/{token_}/download"), token).status_code == 404
    assert poll(client, status_url, token).status_code == 404


def test_nothing_valid_to_zip_is_said_on_the_page(client, app, token, world, db_session):
    with transaction(world.factory) as s:
        for cert in s.scalars(select(Certificate).where(Certificate.organisation_id == world.oslo)):
            if cert.valid:
                certificates.revoke(s, cert, reason="Test", actor="test")
    page_ = open_page(client, world.path("certificates"), token)
    assert soup_of(page_).find("form", action=world.path("certificates/archive")) is None
    resp = post(client, world.path("certificates/archive"), token)
    assert resp.status_code == 409
    assert say(app, "There are no valid certificates to download yet.") in text_of(resp)
    assert archive_steps(db_session) == []


def test_the_progress_page_counts_the_participants_valid_certificates(client, token, world):
    resp = open_page(client, world.path("progress"), token)
    assert resp.status_code == 200, text_of(resp)
    counted = soup_of(resp).find("dd", attrs={"data-count": "certified"})
    # Åse and Per P. Pleier: Ola's was revoked, Per's first replaced, Mona's is a mentor's, Bjørn is in Bergen.
    assert counted is not None and counted.get_text().strip() == "2"
