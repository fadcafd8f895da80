"""Magic-link sign-in for licence administrators (DESIGN.md §1), through the Flask client with a real SMTP server
(aiosmtpd) receiving the e-mail, on SQLite and PostgreSQL. Every refusal asserts that nothing was written."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.models import ExpiringValue, LaunchRecord, ProgrammeRoleKind, utcnow
from kurspakke.services.magic_links import request_link
from kurspakke.services.people import get_or_create_organisation, get_or_create_person, grant_role
from tests.conftest import SECRET, TOOL
from tests.support import smtp
from tests.support.lti import launch_token, open_page
from tests.support.smtp import SmtpServer

smtp_server = smtp.smtp_server

PROGRAMME = "lindrende-behandling"
ADMIN = "kari.koordinator@oslo.kommune.no"
SAME_ORIGIN = {"Origin": TOOL, "Sec-Fetch-Site": "same-origin"}
SENT = "Hvis adressen hører til en lisensadministrator, er en lenke sendt."
LINK = re.compile(re.escape(TOOL) + r"/signin/link/([A-Za-z0-9._-]+)")


@pytest.fixture
def app_settings(app_settings: dict[str, Any], smtp_server: SmtpServer) -> dict[str, Any]:
    return {**app_settings, "smtp_url": smtp_server.url, "mail_from": "Kurspakke <kurspakke@hinn.test>"}


@pytest.fixture
def admin(app) -> int:
    """Kari administers licences for Oslo kommune; Per only holds a seat."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        oslo = get_or_create_organisation(s, name="Oslo kommune", orgnr="958935420")
        kari = get_or_create_person(s, name="Kari Koordinator", email=ADMIN)
        grant_role(s, kari, programme_id=PROGRAMME, organisation=oslo, role=ProgrammeRoleKind.LICENCE_ADMIN)
        per = get_or_create_person(s, name="Per Deltaker", email="per@oslo.kommune.no")
        grant_role(s, per, programme_id=PROGRAMME, organisation=oslo, role=ProgrammeRoleKind.PARTICIPANT)
        return kari.id


def text_of(resp) -> str:
    return " ".join(BeautifulSoup(resp.get_data(as_text=True), "html.parser").get_text(" ").split())


def written(db_session) -> dict[str, int]:
    return {
        "used links": db_session.scalar(select(func.count()).select_from(ExpiringValue)),
        "sessions": db_session.scalar(select(func.count()).select_from(LaunchRecord)),
    }


NOTHING = {"used links": 0, "sessions": 0}


def ask(client, email: str, headers: dict[str, str] | None = None):
    return client.post(
        "/signin", data={"email": email}, headers=SAME_ORIGIN if headers is None else headers, base_url=TOOL
    )


def link_path(smtp_server: SmtpServer, index: int = -1) -> str:
    message = smtp_server.messages[index]
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    [token] = LINK.findall(plain.get_content())
    assert f'href="{TOOL}/signin/link/{token}"' in html.get_content()
    return f"/signin/link/{token}"


def test_the_request_page_is_an_accessible_form(client):
    resp = client.get("/signin", base_url=TOOL, headers={"Accept-Language": "nb-NO"})
    assert resp.status_code == 200
    soup = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    assert soup.html["lang"] == "nb"
    assert soup.h1.get_text() == "Logg inn som lisensadministrator"
    field = soup.find("input", attrs={"name": "email"})
    assert soup.find("label", attrs={"for": field["id"]}).get_text() == "E-postadresse"
    assert soup.find("meta", attrs={"name": "referrer"}, content="same-origin") is not None


def test_full_flow_from_request_to_home_page(client, smtp_server, admin, db_session):
    resp = ask(client, "  Kari.Koordinator@Oslo.Kommune.no ")
    assert resp.status_code == 200
    assert SENT in text_of(resp)
    [received] = smtp_server.received
    assert received.rcpt_tos == [ADMIN]
    assert received.message["Subject"] == "Innloggingslenken din til Kurspakke"
    path = link_path(smtp_server)
    assert written(db_session) == NOTHING  # asking writes nothing

    # Opening the link (twice: a mail scanner, then the person) shows the button and signs nobody in.
    for _ in range(2):
        page = client.get(path, base_url=TOOL)
        assert page.status_code == 200
        soup = BeautifulSoup(page.get_data(as_text=True), "html.parser")
        form = soup.find("form", attrs={"method": "post"})
        assert form["action"] == path
        assert form.find("button").get_text() == "Logg inn"
        assert soup.body.get("data-launch-token") is None
        assert written(db_session) == NOTHING

    home = client.post(path, headers=SAME_ORIGIN, base_url=TOOL)
    assert home.status_code == 200, text_of(home)
    body = text_of(home)
    assert "Lisensadministrasjon" in body and "Logget inn som Kari Koordinator." in body
    assert "Oslo kommune" in body and "958935420" in body
    soup = BeautifulSoup(home.get_data(as_text=True), "html.parser")
    assert soup.body["data-canonical-url"] == "/signin/home"  # the address launch.js shows: no token
    token = launch_token(home.get_data(as_text=True))
    assert token not in home.headers.get("Location", "")
    assert written(db_session) == {"used links": 1, "sessions": 1}
    record = db_session.scalars(select(LaunchRecord)).one()
    assert record.data["kind"] == "licence_admin" and record.data["person_id"] == admin
    assert not {"name", "email"} & set(record.data)

    # The session works like a launch's: the token posted by launch.js opens the home page again; a reload (a GET
    # without a token) gets the page that posts the kept token.
    again = open_page(client, "/signin/home", token)
    assert again.status_code == 200 and "Oslo kommune" in text_of(again)
    resume = client.get("/signin/home", base_url=TOOL)
    assert resume.status_code == 200
    assert BeautifulSoup(resume.get_data(as_text=True), "html.parser").body.has_attr("data-resume")

    # The same link a second time: refused, clearly, with a 4xx, and nothing more written.
    second = client.post(path, headers=SAME_ORIGIN, base_url=TOOL)
    assert second.status_code == 410
    assert "Denne innloggingslenken er allerede brukt" in text_of(second)
    assert "magic_link_used" in text_of(second)
    assert client.get(path, base_url=TOOL).status_code == 410
    assert written(db_session) == {"used links": 1, "sessions": 1}


def test_an_expired_link_is_refused_and_writes_nothing(app, client, admin, db_session):
    factory = app.extensions["kurspakke"].session_factory
    with transaction(factory) as s:
        found = request_link(s, ADMIN, secret_key=SECRET, now=utcnow() - timedelta(minutes=15, seconds=1))
    assert found is not None
    path = f"/signin/link/{found[1]}"
    for resp in (client.get(path, base_url=TOOL), client.post(path, headers=SAME_ORIGIN, base_url=TOOL)):
        assert resp.status_code == 410
        assert "Denne innloggingslenken er utløpt" in text_of(resp)
    assert written(db_session) == NOTHING


@pytest.mark.parametrize("email", ["ukjent@oslo.kommune.no", "per@oslo.kommune.no"])
def test_an_address_without_a_licence_administrator_gets_the_same_answer_and_no_mail(
    client, smtp_server, admin, db_session, email
):
    known = ask(client, ADMIN)
    unknown = ask(client, email)
    assert (unknown.status_code, text_of(unknown)) == (known.status_code, text_of(known))
    assert [r.rcpt_tos for r in smtp_server.received] == [[ADMIN]]
    assert written(db_session) == NOTHING


@pytest.mark.parametrize(
    "email", ["", "not an address", "kari@oslo.kommune.no\r\nBcc: x@y.no", "kari@oslo.kommune.no, x@y.no"]
)
def test_a_malformed_address_is_refused_with_a_message_and_nothing_is_sent(client, smtp_server, admin, email):
    resp = ask(client, email)
    assert resp.status_code == 422
    soup = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    assert "Skriv inn en e-postadresse" in soup.find(attrs={"role": "alert"}).get_text()
    assert soup.find("input", attrs={"name": "email"})["aria-invalid"] == "true"
    assert smtp_server.received == []


@pytest.mark.parametrize(
    "headers", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}, {"Origin": "null"}]
)
def test_cross_site_posts_are_refused_and_write_nothing(client, smtp_server, admin, db_session, headers):
    assert ask(client, ADMIN, headers=headers).status_code == 403
    assert smtp_server.received == []
    assert ask(client, ADMIN).status_code == 200
    path = link_path(smtp_server)
    resp = client.post(path, headers=headers, base_url=TOOL)
    assert resp.status_code == 403
    assert written(db_session) == NOTHING
    assert client.post(path, headers=SAME_ORIGIN, base_url=TOOL).status_code == 200  # the link still works


@pytest.mark.parametrize(
    "mangle", [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: "1" + t, lambda t: "x"]
)
def test_a_tampered_link_is_refused_and_writes_nothing(client, smtp_server, admin, db_session, mangle):
    assert ask(client, ADMIN).status_code == 200
    token = link_path(smtp_server).rsplit("/", 1)[1]
    resp = client.post(f"/signin/link/{mangle(token)}", headers=SAME_ORIGIN, base_url=TOOL)
    assert resp.status_code == 400
    assert "Denne innloggingslenken er ikke gyldig" in text_of(resp)
    assert written(db_session) == NOTHING


def test_a_session_token_in_the_address_is_refused_and_ends_the_session(client, smtp_server, admin):
    assert ask(client, ADMIN).status_code == 200
    token = launch_token(client.post(link_path(smtp_server), headers=SAME_ORIGIN, base_url=TOOL).get_data(True))
    resp = client.get(f"/signin/home?lt={token}", base_url=TOOL)
    assert resp.status_code == 400
    assert open_page(client, "/signin/home", token).status_code == 401


def test_an_lti_launch_token_is_not_a_licence_administrator_session(client, driver, linked):
    lti_token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    resp = open_page(client, "/signin/home", lti_token)
    assert resp.status_code == 401
    assert "Logg inn på nytt" in text_of(resp)


def test_signing_out_ends_the_session(client, smtp_server, admin):
    assert ask(client, ADMIN).status_code == 200
    token = launch_token(client.post(link_path(smtp_server), headers=SAME_ORIGIN, base_url=TOOL).get_data(True))
    assert open_page(client, "/signin/logout", token).status_code == 200
    assert open_page(client, "/signin/home", token).status_code == 401


def test_the_licence_admin_token_opens_no_lti_page(client, smtp_server, admin):
    assert ask(client, ADMIN).status_code == 200
    token = launch_token(client.post(link_path(smtp_server), headers=SAME_ORIGIN, base_url=TOOL).get_data(True))
    resp = open_page(client, "/app/licences", token)
    assert resp.status_code == 403


def test_a_mail_server_that_fails_gets_a_clear_503(app, client, admin, smtp_server, db_session, monkeypatch):
    from dataclasses import replace

    from tests.support.smtp import free_port

    svc = app.extensions["kurspakke"]
    monkeypatch.setattr(svc, "settings", replace(svc.settings, smtp_url=f"smtp://127.0.0.1:{free_port()}"))
    resp = ask(client, ADMIN)
    assert resp.status_code == 503
    assert "E-posten kunne ikke sendes akkurat nå" in text_of(resp)
    assert written(db_session) == NOTHING
