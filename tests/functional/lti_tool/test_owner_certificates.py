"""The course owner's certificates: the list with its statuses and search, one certificate with its history, revoking
and re-issuing (the public verification page then says so), and who may see them — through the Flask client and the
Canvas simulator, on SQLite and PostgreSQL.

Messages are compared with the app's own catalogue (``say``), so the assertions hold before and after the Bokmål
translations of these pages are merged into it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from kurspakke.certificates.codes import format_code
from kurspakke.certificates.eligibility import Standing
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.certificates.services import issue, reissue, revoke
from kurspakke.db import transaction
from kurspakke.licences.models import AuditEntry
from kurspakke.outbox.models import OutboxStep
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_person
from lti_tool.views.owner_certificates import MESSAGES
from tests.functional.lti_tool.test_owner_pages import factory, post, say, text_of
from tests.support.factories import PROGRAMME, organisation, person_for
from tests.support.lti import TOOL, launch_token, open_page

PROGRAMMES = load_programmes()
OTHER = "laeringsnettverk-parorende"
JSON = {"Accept": "application/json"}
OSLO = ZoneInfo("Europe/Oslo")


def give(app, name: str, *, org: str = "Oslo kommune", orgnr: str = "958935420", programme: str = PROGRAMME) -> int:
    """A certificate issued through the service, as the worker issues it."""
    with transaction(factory(app)) as s:
        o = organisation(s, org, orgnr)
        person = get_or_create_person(s, name=name, email=f"{name.split()[0].lower()}.{orgnr}@example.no")
        s.flush()
        standing = Standing(
            person_id=person.id,
            role=CertificateRole.PARTICIPANT,
            name=name,
            organisation_id=o.id,
            organisation=o.name,
            completed_at=datetime(2026, 3, 31, 12, 0, tzinfo=UTC),
        )
        cert = issue(s, PROGRAMMES[programme], standing, actor="kurspakke worker")
        assert cert is not None
        return cert.id


def cert_of(db_session, cert_id: int) -> Certificate:
    return db_session.scalars(select(Certificate).where(Certificate.id == cert_id)).one()


def counts(db_session) -> tuple[int, ...]:
    """Everything these pages may write."""
    return tuple(
        db_session.scalar(select(func.count()).select_from(model)) for model in (Certificate, AuditEntry, OutboxStep)
    )


def soup_of(resp) -> BeautifulSoup:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def statuses(resp) -> dict[str, str]:
    """The list's rows: name as printed → status key."""
    return {
        row.th.get_text(strip=True): row.find("td", attrs={"data-status": True})["data-status"]
        for row in soup_of(resp).select("table#certificates tbody tr")
    }


def verify_json(client, code: str) -> dict:
    resp = client.get(f"/verify/{code}", headers=JSON, base_url=TOOL)
    return resp.get_json()


@pytest.fixture
def owner(app, sim, driver) -> str:
    """The course owner's launch on the seller's Canvas (the programme linked, the Canvas registered)."""
    from tests.functional.lti_tool.test_owner_pages import register_provisioning_canvas
    from tests.support.factories import link_sim_course

    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
    register_provisioning_canvas(app, sim)
    resp = driver.launch("kurseier")
    assert resp.status_code == 200
    return launch_token(resp.get_data(as_text=True))


# --- the list ----------------------------------------------------------------------------------------------------


def test_the_list_shows_every_status_the_counts_and_a_tab(app, client, owner) -> None:
    kari = give(app, "Kari Nordmann")
    ola = give(app, "Ola Hansen", org="Bergen kommune", orgnr="964338531")
    per = give(app, "Per Åsen")
    with transaction(factory(app)) as s:
        revoke(s, s.get(Certificate, ola), reason="Feil person", actor="test")
        reissue(s, s.get(Certificate, per), reason="Stavefeil", actor="test", name="Per Aasen")
    resp = open_page(client, "/owner/certificates", owner)
    assert resp.status_code == 200
    soup = soup_of(resp)
    assert soup.h1 is not None
    assert soup.find("a", attrs={"aria-current": "page"})["href"] == "/owner/certificates"
    assert statuses(resp) == {
        "Kari Nordmann": "valid",
        "Ola Hansen": "revoked",
        "Per Åsen": "superseded",
        "Per Aasen": "valid",
    }
    assert {dd["data-count"]: dd.get_text() for dd in soup.select("dd[data-count]")} == {
        "valid": "2",
        "revoked": "1",
        "replaced": "1",
    }
    # Newest first; the table is captioned and its headers scoped.
    names = [row.th.get_text(strip=True) for row in soup.select("table#certificates tbody tr")]
    assert names[0] == "Per Aasen" and names[-1] == "Kari Nordmann"
    table = soup.find("table", id="certificates")
    assert table.caption is not None and all(th.get("scope") for th in table.find_all("th"))
    text = text_of(resp)
    today = datetime.now(OSLO).strftime("%d.%m.%Y")
    assert say(app, "valid") in text
    assert say(app, "revoked %(date)s", date=today) in text and say(app, "replaced %(date)s", date=today) in text
    with transaction(factory(app)) as s:
        code = s.get(Certificate, kari).code
    assert format_code(code) in text


def test_search_by_a_code_typed_any_way_and_by_a_part_of_a_name_or_organisation(app, client, owner) -> None:
    kari = give(app, "Kari Nordmann")
    give(app, "Åse Ødegård", org="Bergen kommune", orgnr="964338531")
    with transaction(factory(app)) as s:
        code = s.get(Certificate, kari).code
    typed = " ".join(format_code(code).lower().split("-"))  # "abcd efgh ijkl mn"
    assert statuses(post(client, "/owner/certificates", owner, q=typed)) == {"Kari Nordmann": "valid"}
    assert statuses(post(client, "/owner/certificates", owner, q="ødeg")) == {"Åse Ødegård": "valid"}
    assert statuses(post(client, "/owner/certificates", owner, q="BERGEN")) == {"Åse Ødegård": "valid"}
    nothing = post(client, "/owner/certificates", owner, q="Nobody here")
    assert nothing.status_code == 200 and statuses(nothing) == {}


def test_the_list_pages_fifty_at_a_time(app, client, owner) -> None:
    with transaction(factory(app)) as s:
        o = organisation(s)
        for n in range(51):
            person = get_or_create_person(s, name=f"Person {n:02d}", email=f"p{n}@example.no")
            s.flush()
            standing = Standing(
                person.id, CertificateRole.PARTICIPANT, f"Person {n:02d}", o.id, o.name, completed_at=datetime.now(UTC)
            )
            assert issue(s, PROGRAMMES[PROGRAMME], standing, actor="test") is not None
    first = open_page(client, "/owner/certificates", owner)
    assert len(statuses(first)) == 50
    assert soup_of(first).select("form input[name=page][value='2']")
    second = post(client, "/owner/certificates", owner, page="2")
    assert list(statuses(second)) == ["Person 00"]  # the oldest, last
    for odd in ("999", "0", "²", "x"):
        assert post(client, "/owner/certificates", owner, page=odd).status_code == 200


# --- revoking ----------------------------------------------------------------------------------------------------


def test_a_revocation_without_reason_or_confirmation_is_refused_and_writes_nothing(app, client, owner, db_session):
    kari = give(app, "Kari Nordmann")
    before = counts(db_session)
    resp = post(client, f"/owner/certificates/{kari}/revoke", owner, reason="   ", confirm="yes")
    assert resp.status_code == 422
    soup = soup_of(resp)
    field = soup.find(id="revoke-reason")
    assert field["aria-invalid"] == "true" and "e-revoke-reason" in field["aria-describedby"].split()
    assert soup.find(id="e-revoke-reason").get_text(strip=True) == say(app, MESSAGES["reason_missing"])
    assert soup.select_one("#error-summary a[href='#revoke-reason']") is not None
    unconfirmed = post(client, f"/owner/certificates/{kari}/revoke", owner, reason="Feil person")
    assert unconfirmed.status_code == 422
    assert soup_of(unconfirmed).find(id="revoke-confirm")["aria-invalid"] == "true"
    assert soup_of(unconfirmed).find(id="revoke-reason").get_text() == "Feil person"  # kept for the next try
    assert counts(db_session) == before
    assert cert_of(db_session, kari).revoked_at is None


def test_revoking_with_a_reason_shows_it_audits_it_and_verify_says_revoked(app, client, owner, db_session) -> None:
    kari = give(app, "Kari Nordmann")
    resp = post(client, f"/owner/certificates/{kari}/revoke", owner, reason="Utstedt ved en feil", confirm="yes")
    assert resp.status_code == 200
    cert = cert_of(db_session, kari)
    assert cert.revoked_at is not None and cert.revoked_reason == "Utstedt ved en feil"
    assert cert.revoked_by.startswith("course-owner:")
    soup = soup_of(resp)
    assert soup.find("dd", attrs={"data-status": "revoked"}) is not None
    assert soup.find(id="revoke-reason") is None  # nothing more to do with it; no download either
    history = [row["data-action"] for row in soup.select("table#history tbody tr")]
    assert history == ["issued", "revoked"]
    assert "Utstedt ved en feil" in soup.find("table", id="history").get_text()
    rows = db_session.scalars(
        select(AuditEntry).where(AuditEntry.entity_type == "certificate", AuditEntry.entity_id == str(kari))
    ).all()
    assert [r.action for r in rows] == ["certificate.issued", "certificate.revoked"]
    answer = verify_json(client, cert.code)
    assert answer["status"] == "revoked"
    # Revoking it again is a conflict, and nothing is written.
    before = counts(db_session)
    again = post(client, f"/owner/certificates/{kari}/revoke", owner, reason="Igjen", confirm="yes")
    assert again.status_code == 409
    assert say(app, MESSAGES["certificate_revoked"]) in text_of(again)
    assert counts(db_session) == before


# --- re-issuing --------------------------------------------------------------------------------------------------


def test_reissuing_with_a_new_name_gives_a_new_valid_code_and_the_old_one_says_superseded(
    app, client, owner, db_session
) -> None:
    per = give(app, "Per Åsen")
    old_code = cert_of(db_session, per).code
    page = open_page(client, f"/owner/certificates/{per}", owner)
    assert soup_of(page).find(id="reissue-name")["value"] == "Per Åsen"  # prefilled
    resp = post(client, f"/owner/certificates/{per}/reissue", owner, name="  Per  Aasen ", reason="Stavefeil i navnet")
    assert resp.status_code == 200
    old = cert_of(db_session, per)
    assert old.superseded_by_id is not None
    new = cert_of(db_session, old.superseded_by_id)
    assert (new.name, new.code != old_code) == ("Per Aasen", True)
    soup = soup_of(resp)
    # The new certificate's page, which says what happened to the old code.
    assert soup.find("body")["data-canonical-url"] == f"/owner/certificates/{new.id}"
    assert format_code(new.code) in soup.find(role="status").get_text()
    assert format_code(old_code) in soup.find(role="status").get_text()
    history = [row["data-action"] for row in soup.select("table#history tbody tr")]
    assert history == ["issued", "reissued"]
    assert "Per Åsen → Per Aasen" in soup.find("table", id="history").get_text()
    assert verify_json(client, new.code)["status"] == "valid"
    assert verify_json(client, old_code)["status"] == "superseded"
    # The old certificate's page links to the new one and offers no forms.
    old_page = open_page(client, f"/owner/certificates/{per}", owner)
    assert soup_of(old_page).find("a", href=f"/owner/certificates/{new.id}") is not None
    assert soup_of(old_page).find(id="reissue-name") is None


def test_a_bad_reissue_is_refused_beside_its_field_and_writes_nothing(app, client, owner, db_session) -> None:
    per = give(app, "Per Åsen")
    before = counts(db_session)
    resp = post(client, f"/owner/certificates/{per}/reissue", owner, name="Per\u0007Aasen", reason="Stavefeil")
    assert resp.status_code == 422
    assert soup_of(resp).find(id="reissue-name")["aria-invalid"] == "true"
    assert say(app, MESSAGES["name_invalid"]) in text_of(resp)
    no_reason = post(client, f"/owner/certificates/{per}/reissue", owner, name="Per Aasen", reason="")
    assert no_reason.status_code == 422
    assert soup_of(no_reason).find(id="reissue-reason")["aria-invalid"] == "true"
    assert soup_of(no_reason).find(id="reissue-name")["value"] == "Per Aasen"
    assert counts(db_session) == before


def test_a_revoked_certificate_is_not_reissued(app, client, owner, db_session) -> None:
    ola = give(app, "Ola Hansen")
    with transaction(factory(app)) as s:
        revoke(s, s.get(Certificate, ola), reason="Feil person", actor="test")
    before = counts(db_session)
    resp = post(client, f"/owner/certificates/{ola}/reissue", owner, name="Ola Hansen", reason="Prøver")
    assert resp.status_code == 409
    assert say(app, MESSAGES["certificate_revoked"]) in text_of(resp)
    assert counts(db_session) == before
    assert cert_of(db_session, ola).superseded_at is None


# --- downloads ---------------------------------------------------------------------------------------------------


def test_a_valid_certificate_downloads_as_pdf_and_a_revoked_one_does_not(app, client, owner) -> None:
    kari = give(app, "Kari Nordmann")
    resp = post(client, f"/owner/certificates/{kari}.pdf", owner)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert resp.data.startswith(b"%PDF")
    with transaction(factory(app)) as s:
        revoke(s, s.get(Certificate, kari), reason="Feil", actor="test")
    refused = post(client, f"/owner/certificates/{kari}.pdf", owner)
    assert refused.status_code == 409 and refused.mimetype == "text/html"


# --- who sees it -------------------------------------------------------------------------------------------------


def test_a_certificate_of_another_programme_is_not_found(app, client, owner, db_session) -> None:
    other = give(app, "Kari Nordmann", programme=OTHER)
    before = counts(db_session)
    for path in (f"/owner/certificates/{other}", f"/owner/certificates/{other}.pdf", "/owner/certificates/99999999"):
        resp = open_page(client, path, owner)
        assert resp.status_code == 404, path
        assert say(app, MESSAGES["certificate_not_found"]) in text_of(resp)
    resp = post(client, f"/owner/certificates/{other}/revoke", owner, reason="Feil", confirm="yes")
    assert resp.status_code == 404
    assert open_page(client, f"/owner/certificates/{2**70}", owner).status_code == 404
    assert "Kari Nordmann" not in statuses(open_page(client, "/owner/certificates", owner))
    assert counts(db_session) == before


def test_someone_who_is_not_the_course_owner_is_refused(app, client, driver, owner, sim, db_session) -> None:
    kari = give(app, "Kari Nordmann")
    with transaction(factory(app)) as s:
        person_for(s, sim, "deltaker")
    token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    before = counts(db_session)
    for path in ("/owner/certificates", f"/owner/certificates/{kari}", f"/owner/certificates/{kari}.pdf"):
        resp = open_page(client, path, token)
        assert resp.status_code == 403, path
        assert "Kari Nordmann" not in resp.get_data(as_text=True)
    resp = post(client, f"/owner/certificates/{kari}/revoke", token, reason="Feil", confirm="yes")
    assert resp.status_code == 403
    assert counts(db_session) == before


def test_a_get_without_token_gets_the_resume_page(app, client, owner) -> None:
    kari = give(app, "Kari Nordmann")
    for path in ("/owner/certificates", f"/owner/certificates/{kari}"):
        resp = client.get(path, base_url=TOOL)
        assert resp.status_code == 200 and "data-resume" in resp.get_data(as_text=True)
        assert "Kari Nordmann" not in resp.get_data(as_text=True)
