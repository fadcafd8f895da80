"""A holder's certificate inside Canvas (downloads, what remains), the Open Badges credential checked by a verifier
that only knows /lti/jwks, and the public verification page with its answers and throttle."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from canvas_sim import SimPlatform
from kurspakke.certificates import services as certificates
from kurspakke.certificates.badge import BadgeError, verify_credential
from kurspakke.certificates.codes import format_code
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.db import transaction
from kurspakke.groups import services as groups
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person
from kurspakke.models import IdentityKind, ToolKey
from kurspakke.services import keys as key_service
from kurspakke.services.people import add_identity
from tests.support.certificates import PROGRAMME, Run, complete_modules, hold_sessions, organisation
from tests.support.factories import link_sim_course, sim_instance
from tests.support.lti import TOOL, launch_token

ACTOR = "test"
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "data" / "openbadges" / "ob_v3p0_achievementcredential_schema.json").read_text()
)


@pytest.fixture
def world(app: Flask, sim: SimPlatform) -> dict[str, Any]:
    """Kari (the simulator's participant) has done everything; the simulator's mentor led samling 1 and 2 only."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
        oslo = organisation(s)
        kari_user, mentor_user = sim.user("deltaker"), sim.user("mentor")
        kari = assign_person(s, oslo, PROGRAMME, PersonInput(kari_user.name, kari_user.email, "Sykehjem"), actor=ACTOR)
        mentor = appoint_mentor(s, oslo, PROGRAMME, PersonInput(mentor_user.name, mentor_user.email), actor=ACTOR)
        for seat, user in ((kari, kari_user), (mentor, mentor_user)):
            add_identity(s, seat.person, IdentityKind.CANVAS_USER_ID, sim_instance(sim), str(user.canvas_user_id))
        group = groups.create_group(s, oslo, PROGRAMME.id, "Gruppe A", actor=ACTOR)
        groups.add_members(s, group, [kari], actor=ACTOR)
        groups.add_mentor(s, group, mentor.person, actor=ACTOR)
        run = Run(oslo, group, mentor.person, [kari])
        complete_modules(s, kari)
        hold_sessions(s, run, ["intro", "samling-1", "samling-2"])
        hold_sessions(s, run, ["samling-3", "samling-4"], leader=None)
        return {"kari": kari.person_id, "mentor": mentor.person_id, "name": kari_user.name}


def _issue(app: Flask, person_id: int) -> Certificate:
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        assert certificates.evaluate(s, PROGRAMME, [person_id]).issued == 1
        cert = certificates.current(s, PROGRAMME.id, person_id)
        assert cert is not None
        s.expunge(cert)
        return cert


def _launch(driver: Any, user: str) -> tuple[str, BeautifulSoup]:
    resp = driver.launch(user)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    html = resp.get_data(as_text=True)
    return launch_token(html), BeautifulSoup(html, "html.parser")


def _section(soup: BeautifulSoup, heading: str = "certificate-heading") -> str:
    found = soup.find("section", attrs={"aria-labelledby": heading})
    assert found is not None
    return " ".join(found.get_text(" ").split())


def test_the_participant_sees_it_being_issued_then_downloads_pdf_and_badge(
    app: Flask, driver: Any, client: FlaskClient, world: dict[str, Any], tmp_path: Path
) -> None:
    _token, soup = _launch(driver, "deltaker")
    assert "It is being issued" in _section(soup) or "blir utstedt" in _section(soup)

    cert = _issue(app, world["kari"])
    token, soup = _launch(driver, "deltaker")
    section = _section(soup)
    assert format_code(cert.code) in section and f"/verify/{cert.code}" in section

    pdf = client.post("/app/certificate.pdf", data={"lt": token}, base_url=TOOL)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF-")
    assert f"kursbevis-{cert.code}.pdf" in pdf.headers["Content-Disposition"]
    path = tmp_path / "kursbevis.pdf"
    path.write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert world["name"] in text and format_code(cert.code) in text

    badge = client.post("/app/certificate.jwt", data={"lt": token}, base_url=TOOL)
    assert badge.status_code == 200 and badge.mimetype == "application/jwt"
    again = client.post("/app/certificate.jwt", data={"lt": token}, base_url=TOOL)
    assert again.data == badge.data  # signed once and kept


def test_the_badge_verifies_against_lti_jwks_alone_also_after_a_launch_key_rotation(
    app: Flask, driver: Any, client: FlaskClient, world: dict[str, Any], encryptor: Any
) -> None:
    cert = _issue(app, world["kari"])
    token, _ = _launch(driver, "deltaker")
    jwt = client.post("/app/certificate.jwt", data={"lt": token}, base_url=TOOL).get_data(as_text=True)

    credential = verify_credential(jwt, client.get("/lti/jwks", base_url=TOOL).get_json())
    assert credential["id"].endswith(f"/verify/{cert.code}")
    assert credential["credentialSubject"]["achievement"]["criteria"]["narrative"].startswith(
        PROGRAMME.certificate.requirements  # type: ignore[union-attr]
    )
    # The schema wants a proof: the VC-JWT's signature is it (a JwtProof2020 naming the token).
    proof = {"type": "JwtProof2020", "jwt": jwt, "proofPurpose": "assertionMethod", "created": credential["validFrom"]}
    proof["verificationMethod"] = f"{TOOL}/lti/jwks"
    validator = jsonschema.Draft201909Validator(SCHEMA)
    assert list(validator.iter_errors({**credential, "proof": [proof]})) == []

    # Two rotations of the launch keys with no grace: the launch key of the test's start is deleted; the badge key
    # stays, because a valid certificate names it.
    services = app.extensions["kurspakke"]
    with transaction(services.session_factory) as s:
        first_lti = set(s.scalars(select(ToolKey.kid).where(ToolKey.purpose == "lti")))
        key_service.rotate(s, encryptor, grace_seconds=0)
        key_service.rotate(s, encryptor, grace_seconds=0)
        lti_now = set(s.scalars(select(ToolKey.kid).where(ToolKey.purpose == "lti")))
        badge_kid = s.scalars(select(ToolKey.kid).where(ToolKey.purpose == "badge")).one()
    services.keyring.invalidate()
    jwks = client.get("/lti/jwks", base_url=TOOL).get_json()
    assert not first_lti & lti_now and len(lti_now) == 2
    assert badge_kid in {k["kid"] for k in jwks["keys"]} and not first_lti & {k["kid"] for k in jwks["keys"]}
    assert verify_credential(jwt, jwks)["id"] == credential["id"]

    # Once the certificate is revoked its key may go; a verifier then refuses the credential.
    with transaction(services.session_factory) as s:
        row = s.get(Certificate, cert.id)
        assert row is not None
        certificates.revoke(s, row, reason="test", actor=ACTOR)
        key_service.retire_badge_key(s)
    services.keyring.invalidate()
    with pytest.raises(BadgeError):
        verify_credential(jwt, client.get("/lti/jwks", base_url=TOOL).get_json())


def test_the_mentor_who_led_every_group_session_is_told_the_certificate_is_on_its_way(
    driver: Any, world: dict[str, Any]
) -> None:
    _token, soup = _launch(driver, "mentor")
    section = _section(soup, "own-certificate-heading")
    # The simulator's mentor led every session (hold_sessions' leader is the group's mentor): nothing remains, and
    # the page says the certificate is being issued (not a list of sessions, not a download yet).
    assert "Du har gjort alt som kreves for kursbevis" in section
    assert "Led med gruppen" not in section and "Last ned" not in section


def test_downloads_without_a_certificate_are_404_and_write_nothing(
    app: Flask, driver: Any, client: FlaskClient, world: dict[str, Any]
) -> None:
    token, _ = _launch(driver, "deltaker")
    for path in ("/app/certificate.pdf", "/app/certificate.jwt"):
        assert client.post(path, data={"lt": token}, base_url=TOOL).status_code == 404
    with app.extensions["kurspakke"].session_factory() as s:
        assert s.scalar(select(func.count(Certificate.id))) == 0
        assert s.scalar(select(func.count(ToolKey.id)).where(ToolKey.purpose == "badge")) == 0


# --- the public verification page ----------------------------------------------------------------------------------


def _verify(client: FlaskClient, code: str, *, json_: bool = True, addr: str = "203.0.113.7") -> Any:
    headers = {"Accept": "application/json"} if json_ else {"Accept": "text/html"}
    return client.get(f"/verify/{code}", headers=headers, base_url=TOOL, environ_base={"REMOTE_ADDR": addr})


def _mistype(code: str) -> str:
    first = "1" if code[0] != "1" else "2"
    return first + code[1:]


def test_verification_tells_valid_revoked_replaced_unknown_mistyped_and_malformed_apart(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    cert = _issue(app, world["kari"])
    valid = _verify(client, format_code(cert.code).lower())
    assert valid.status_code == 200 and valid.headers["Vary"] == "Accept"
    body = valid.get_json()
    assert body["status"] == "valid" and body["name"] == world["name"]
    assert body["programme"] == PROGRAMME.title and body["issuer"] == "Høgskolen i Innlandet"
    assert set(body) == {"status", "code", "name", "programme", "completed_on", "issuer"}  # nothing more

    html = _verify(client, cert.code, json_=False)
    page = " ".join(BeautifulSoup(html.get_data(as_text=True), "html.parser").get_text(" ").split())
    assert html.status_code == 200 and world["name"] in page and "Kursbeviset er gyldig" in page

    mistyped = _verify(client, _mistype(cert.code), addr="203.0.113.8")
    assert (mistyped.status_code, mistyped.get_json()["status"]) == (404, "mistyped")
    unknown = _verify(client, "0" * 14, addr="203.0.113.8")
    assert (unknown.status_code, unknown.get_json()["status"]) == (404, "unknown")
    malformed = _verify(client, "ikke-en-kode", addr="203.0.113.8")
    assert (malformed.status_code, malformed.get_json()["status"]) == (404, "malformed")

    with transaction(app.extensions["kurspakke"].session_factory) as s:
        row = s.get(Certificate, cert.id)
        assert row is not None
        new = certificates.reissue(s, row, reason="Navnet rettet", actor=ACTOR, name="Kari Korrigert")
        new_code = new.code
    replaced = _verify(client, cert.code).get_json()
    assert replaced["status"] == "superseded" and "superseded_on" in replaced
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        row = certificates.by_code(s, new_code)
        assert row is not None
        certificates.revoke(s, row, reason="Feil", actor=ACTOR)
    revoked = _verify(client, new_code).get_json()
    assert revoked["status"] == "revoked" and revoked["name"] == "Kari Korrigert" and "revoked_on" in revoked
    assert "reason" not in json.dumps(revoked)  # the reason is for the owner's records, not the public


def test_guessing_codes_is_throttled_per_address_and_nothing_is_looked_up_past_the_limit(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    cert = _issue(app, world["kari"])
    guesser = "198.51.100.23"
    answers = [_verify(client, f"{n:014d}", addr=guesser).status_code for n in range(10)]
    assert answers == [404] * 10
    blocked = _verify(client, cert.code, addr=guesser)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert blocked.get_json() == {"status": "throttled", "retry_after": int(blocked.headers["Retry-After"])}
    page = _verify(client, cert.code, json_=False, addr=guesser)
    assert page.status_code == 429 and "Too many" not in page.get_data(as_text=True)  # Norwegian by default
    # Another address is not affected.
    assert _verify(client, cert.code, addr="198.51.100.99").get_json()["status"] == "valid"


def test_the_form_sends_a_typed_code_to_its_page(client: FlaskClient, world: dict[str, Any]) -> None:
    resp = client.get("/verify", query_string={"code": " abcd-efgh-jkmn-pq "}, base_url=TOOL)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/verify/ABCDEFGHJKMNPQ")
    form = client.get("/verify", base_url=TOOL)
    assert form.status_code == 200 and 'name="code"' in form.get_data(as_text=True)


def test_issuer_profile_is_published_for_a_programme(client: FlaskClient) -> None:
    profile = client.get(f"/badges/issuers/{PROGRAMME.id}", base_url=TOOL).get_json()
    assert profile["name"] == "Høgskolen i Innlandet" and profile["type"] == ["Profile"]
    assert client.get("/badges/issuers/nope", base_url=TOOL).status_code == 404


def test_role_of_a_mentor_certificate(app: Flask, world: dict[str, Any]) -> None:
    cert = _issue(app, world["mentor"])
    assert cert.role is CertificateRole.MENTOR


def test_a_launch_keeps_the_courses_ags_endpoint_for_the_worker(
    app: Flask, driver: Any, sim: SimPlatform, world: dict[str, Any]
) -> None:
    from kurspakke.models import CourseLink

    driver.launch("deltaker")
    with app.extensions["kurspakke"].session_factory() as s:
        link = s.scalars(select(CourseLink)).one()
        assert link.ags_lineitems_url == f"{sim.config.base}/api/lti/courses/{sim.config.course_id}/line_items"
        assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in link.ags_scopes
        assert link.ags_registration_id is not None


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted_and_a_client_cannot_choose_its_own(
    app: Flask, client: FlaskClient, world: dict[str, Any]
) -> None:
    def guess(n: int, peer: str, forwarded: str) -> int:
        resp = client.get(
            f"/verify/{n:014d}",
            headers={"Accept": "application/json", "X-Forwarded-For": forwarded},
            base_url=TOOL,
            environ_base={"REMOTE_ADDR": peer},
        )
        return resp.status_code

    # Through the proxy (127.0.0.1, trusted by default): the last forwarded hop is the client; what the client put
    # before it (a spoofed first entry) changes nothing.
    assert [guess(n, "127.0.0.1", f"10.0.0.{n}, 198.51.100.5") for n in range(10)] == [404] * 10
    assert guess(99, "127.0.0.1", "10.9.9.9, 198.51.100.5") == 429
    assert guess(99, "127.0.0.1", "198.51.100.6") == 404  # another client behind the same proxy
    # Straight from an untrusted peer, a forwarded header is ignored: varying it does not dodge the throttle.
    assert [guess(n, "203.0.113.50", f"192.0.2.{n}") for n in range(10)] == [404] * 10
    assert guess(99, "203.0.113.50", "192.0.2.200") == 429
