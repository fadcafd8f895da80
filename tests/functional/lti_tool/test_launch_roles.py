"""A launch from the simulator lands each role on its own view."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.models import LaunchRecord, ProgrammeRoleKind, UnlicensedLaunch
from lti_tool.lti.oidc_login import binding_proof, state_binding
from tests.conftest import register_sim
from tests.support.factories import link_sim_course, person_for
from tests.support.lti import TOOL, LtiDriver, form_fields, launch_token, open_page


@pytest.fixture
def linked(app, sim):
    """As tests/conftest.py's, with a mentor and a licence administrator as well."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
        person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT)
        person_for(s, sim, "mentor", ProgrammeRoleKind.MENTOR)
        person_for(s, sim, "lisensadministrator", ProgrammeRoleKind.LICENCE_ADMIN)


def h1(resp) -> str:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser").h1.get_text(strip=True)


@pytest.mark.parametrize(
    ("user", "heading"),
    [
        ("deltaker", "Min fremdrift"),
        ("mentor", "Mentoroversikt"),
        ("lisensadministrator", "Lisenser"),
        ("kurseier", "Kursadministrasjon"),
    ],
)
def test_each_role_lands_on_its_view(driver, linked, db_session, user, heading):
    resp = driver.launch(user)
    assert resp.status_code == 200
    assert h1(resp) == heading
    assert 'lang="nb"' in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(LaunchRecord)) == 1


def test_teaching_assistant_is_not_a_course_owner(driver, app, sim, db_session):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
    resp = driver.launch("mentor")  # a TA in Canvas, but no mentor role in the tool
    assert resp.status_code == 200
    assert h1(resp) == "Vi fant ingen lisens for deg"
    unlicensed = db_session.scalars(select(UnlicensedLaunch)).all()
    assert [u.email for u in unlicensed] == [sim.user("mentor").email]


def test_someone_unknown_is_told_whom_to_contact(driver, app, sim):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link = link_sim_course(s, sim)
    programme = app.extensions["kurspakke"].programmes[link.programme_id]
    page = BeautifulSoup(driver.launch("deltaker").get_data(as_text=True), "html.parser")
    contact = page.find("a", href=f"mailto:{programme.contact_email}")
    assert contact is not None and contact.get_text() == programme.contact_email
    assert programme.contact_name in contact.parent.get_text()
    assert "Lisensadministratoren i kommunen din" in page.get_text()
    assert page.find(class_="brand").get_text() == programme.title


def test_unknown_person_is_listed_for_the_course_owner(driver, app, sim):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
    driver.launch("deltaker")
    owner_page = driver.launch("kurseier").get_data(as_text=True)
    assert sim.user("deltaker").name in owner_page
    assert sim.user("deltaker").email in owner_page


def test_launch_token_opens_the_page_again_on_reload(driver, linked, client):
    """The landing page hands its token to launch.js and names its address without it; the script posts the
    token (or sends it as a header) to open the page again."""
    resp = driver.launch("deltaker")
    html = resp.get_data(as_text=True)
    token = launch_token(html)
    canonical = BeautifulSoup(html, "html.parser").body["data-canonical-url"]
    assert canonical == "/app/participant" and token not in canonical
    again = open_page(client, "/app/participant", token)
    assert again.status_code == 200
    assert h1(again) == "Min fremdrift"
    via_header = client.get("/app/participant", headers={"X-Launch-Token": token})
    assert h1(via_header) == "Min fremdrift"


def test_a_reload_without_a_token_gets_the_page_that_posts_the_frames_token(driver, linked, client):
    launch_token(driver.launch("deltaker").get_data(as_text=True))
    resp = client.get("/app/participant")
    assert resp.status_code == 200
    body = BeautifulSoup(resp.get_data(as_text=True), "html.parser").body
    assert body.has_attr("data-resume") and not body.has_attr("data-launch-token")
    assert "Kari Nordmann" not in resp.get_data(as_text=True)
    assert body.find(attrs={"role": "alert"}) is not None  # what the script shows when the frame has no token


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_token_in_the_address_is_refused_and_its_session_ended(driver, linked, client, method):
    """Tokens never travel in addresses; an address that carries one has been exposed (copied into a chat, logged
    by a proxy), so it opens nothing and the session it names ends."""
    token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    resp = client.open("/app/participant", method=method, query_string={"lt": token}, data={"lt": token})
    assert resp.status_code == 400
    assert "Kari Nordmann" not in resp.get_data(as_text=True)
    assert "inneholdt innloggingen din" in resp.get_data(as_text=True)
    assert open_page(client, "/app/participant", token).status_code == 401


def test_no_page_puts_the_token_in_an_address(driver, linked, app, sim, client):
    """Every link and form action of a landing page, for every role, is free of the token."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        person_for(s, sim, "deltaker", ProgrammeRoleKind.MENTOR)  # two roles: a tab bar with links
    for user in ("deltaker", "kurseier"):
        html = driver.launch(user).get_data(as_text=True)
        token = launch_token(html)
        soup = BeautifulSoup(html, "html.parser")
        addresses = [a["href"] for a in soup.find_all("a", href=True)] + [
            f.get("action", "") for f in soup.find_all("form")
        ]
        addresses.append(soup.body.get("data-canonical-url", ""))
        assert addresses and not [a for a in addresses if token in a or "lt=" in a]


def test_a_participant_cannot_open_the_owner_view(driver, linked, client):
    token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    resp = open_page(client, "/app/owner", token)
    assert resp.status_code == 403


def test_launch_with_state_in_redis(app_settings, sim, sim_client, encryptor, db_session, redis_client):
    """With REDIS_URL, launch records and consumed nonces live in Redis, shared by every web process and host."""
    from kurspakke.services.keys import ensure_key
    from lti_tool import create_app
    from tests.conftest import register_sim

    client = redis_client
    app = create_app(
        {
            "settings": app_settings,
            "environ": {},
            "redis": client,
            "jwks_fetcher": lambda u, t: sim_client.get(u.split("canvas.sim.test", 1)[1]).get_json(),
        }
    )
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        ensure_key(s, encryptor)
        register_sim(s, sim)
        link_sim_course(s, sim)
        person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT)
    driver = LtiDriver(app.test_client(), sim, sim_client)
    login = driver.login()
    fields = driver.authorize(login)
    resp = driver.post_launch(fields)
    assert h1(resp) == "Min fremdrift"
    assert client.exists(f"kurspakke:lti:nonce:{login.nonce}")  # consumed
    assert db_session.scalar(select(func.count()).select_from(LaunchRecord)) == 0  # in Redis, not the DB
    token = launch_token(resp.get_data(as_text=True))
    assert h1(open_page(driver.client, "/app/participant", token)) == "Min fremdrift"
    binding = state_binding(login.state)  # replay with the browser's state cookie back in place
    proof = binding_proof(app.extensions["kurspakke"].settings.secret_key, binding)
    driver.client.set_cookie("kp_state_" + binding, proof, domain="kurspakke.test", path="/lti/")
    replay = driver.post_launch(fields)
    assert replay.status_code == 400 and "allerede brukt" in replay.get_data(as_text=True)
    app.extensions["kurspakke"].engine.dispose()


def test_the_no_licence_page_survives_a_reload(driver, app, sim, client):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
    page = driver.launch("deltaker")
    token = launch_token(page.get_data(as_text=True))
    again = open_page(client, "/app/", token)
    assert again.status_code == 200
    assert h1(again) == "Vi fant ingen lisens for deg"


def test_a_tampered_launch_token_is_refused(driver, linked, client):
    token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    launch_id, signature = token.split(".")
    other = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert open_page(client, "/app/participant", f"{launch_id}.{other}").status_code == 401
    assert open_page(client, "/app/participant", f"x{launch_id}.{signature}").status_code == 401


def test_an_expired_launch_is_refused(driver, linked, client, app):
    from datetime import timedelta

    from sqlalchemy import update

    from kurspakke.models import utcnow

    token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    assert open_page(client, "/app/participant", token).status_code == 200
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        s.execute(update(LaunchRecord).values(expires_at=utcnow() - timedelta(seconds=1)))
    resp = open_page(client, "/app/participant", token)
    assert resp.status_code == 401
    assert "Økten din er utløpt" in resp.get_data(as_text=True)


def test_an_english_canvas_gets_english_pages_after_the_launch_too(driver, linked, client, sim):
    sim.config.locale = "en-GB"
    resp = driver.launch("deltaker")
    assert resp.status_code == 200
    page = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    assert page.html["lang"] == "en" and h1(resp) == "My progress"
    again = open_page(client, "/app/participant", launch_token(resp.get_data(as_text=True)))
    assert BeautifulSoup(again.get_data(as_text=True), "html.parser").html["lang"] == "en"
    assert h1(again) == "My progress"


def test_a_nynorsk_canvas_gets_nynorsk_pages_after_the_launch_too(driver, linked, client, sim):
    sim.config.locale = "nn-NO"
    resp = driver.launch("deltaker")
    assert resp.status_code == 200
    page = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    assert page.html["lang"] == "nn" and h1(resp) == "Min framdrift"
    again = open_page(client, "/app/participant", launch_token(resp.get_data(as_text=True)))
    assert BeautifulSoup(again.get_data(as_text=True), "html.parser").html["lang"] == "nn"
    assert h1(again) == "Min framdrift"


def test_the_launch_token_lives_a_working_day(driver, linked, app, db_session):
    from datetime import timedelta

    from kurspakke.models import utcnow

    ttl = app.extensions["kurspakke"].settings.launch_token_ttl_seconds
    assert 8 * 3600 <= ttl <= 12 * 3600
    before = utcnow()
    driver.launch("deltaker")
    record = db_session.scalars(select(LaunchRecord)).one()
    assert before + timedelta(seconds=ttl - 5) <= record.expires_at <= utcnow() + timedelta(seconds=ttl)


def test_a_person_matched_by_email_is_found_again_on_later_requests(driver, app, sim, client, db_session):
    """Enrolled with an e-mail only (no Canvas id yet): the launch matches by e-mail and records its sub — only the
    sub: a launch's Canvas user id is a hint, never recorded — which is how every later request finds the person."""
    from kurspakke.models import PersonIdentity

    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
        person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT, with_canvas_id=False)
    resp = driver.launch("deltaker")
    assert h1(resp) == "Min fremdrift"
    recorded = db_session.scalars(select(PersonIdentity)).all()
    assert [(i.kind, i.value) for i in recorded] == [("lti_sub", sim.user("deltaker").sub)]
    again = open_page(client, "/app/participant", launch_token(resp.get_data(as_text=True)))
    assert again.status_code == 200 and h1(again) == "Min fremdrift"
    assert sim.user("deltaker").name in again.get_data(as_text=True)


def become_another_platform(app, sim) -> None:
    """Register a second platform (its own issuer and client id) and let the simulator sign as it, with this
    Canvas's guid, course and users."""
    evil = "https://evil.example"
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        register_sim(s, sim, issuer=evil, client_id="66600000000666")
    sim.config.issuer, sim.config.client_id = evil, "66600000000666"
    sim.issuer = evil


def test_another_platform_cannot_speak_for_this_canvas_by_sending_its_guid(driver, linked, app, sim):
    """A second registered platform (its own issuer and key) sends this Canvas's tool_platform.guid, its course's
    context id and Kari's Canvas user id. Course links and Canvas user ids are scoped by the signing issuer, so
    it reaches neither the course nor Kari."""
    become_another_platform(app, sim)
    resp = driver.launch("deltaker")
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert sim.user("deltaker").name not in body
    assert h1(resp) == "Opplæringspakken er ikke satt opp for dette emnet ennå"


def link_a_course_as_another_platform(driver, app, sim, client) -> None:
    """Become another registered platform, and link a course of its own to the programme as its course owner."""
    become_another_platform(app, sim)
    sim.config.context_id = "evil-course"
    _, fields = form_fields(driver.launch("kurseier").get_data(as_text=True))
    assert (
        client.post("/app/link", data={**fields, "programme": "lindrende-behandling"}, base_url=TOOL).status_code == 200
    )


@pytest.mark.parametrize("sent", ["canvas_user_id", "sub"])
def test_another_platform_cannot_open_a_person_by_her_canvas_user_id_or_sub(driver, linked, app, sim, client, sent):
    """Canvas user ids are kept per Canvas instance under the issuer that signed them, subs per issuer: another
    registered platform, in a course of its own, that sends Kari's Canvas user id (or her sub from her earlier
    launch) with an e-mail of its own opens nothing of hers."""
    assert h1(driver.launch("deltaker")) == "Min fremdrift"  # her sub is recorded now, her Canvas user id was
    link_a_course_as_another_platform(driver, app, sim, client)
    kari = sim.user("deltaker")
    kari.name, kari.email = "Angriper", "angriper@evil.example"
    if sent == "canvas_user_id":
        kari.sub = "attacker-sub-0002"
    else:
        kari.canvas_user_id = 9999
    resp = driver.launch("deltaker")
    assert h1(resp) == "Vi fant ingen lisens for deg"
    assert "Kari Nordmann" not in resp.get_data(as_text=True)


def test_an_email_never_opens_a_person_already_tied_to_an_account(driver, linked, app, sim, client, db_session):
    """Kari is provisioned with her Canvas user id. Another registered platform links a course of its own and
    launches someone whose e-mail claim is Kari's, with another sub and Canvas id: that opens nothing of hers."""
    from kurspakke.models import PersonIdentity

    link_a_course_as_another_platform(driver, app, sim, client)
    kari = sim.user("deltaker")
    kari.sub, kari.canvas_user_id, kari.name = "attacker-sub-0001", 9999, "Angriper"
    resp = driver.launch("deltaker")
    assert h1(resp) == "Vi fant ingen lisens for deg"
    assert "Kari Nordmann" not in resp.get_data(as_text=True)
    assert db_session.scalars(select(PersonIdentity).where(PersonIdentity.value == "attacker-sub-0001")).all() == []


def test_an_email_finds_a_person_no_one_has_launched_as_only_once(driver, app, sim, db_session):
    """Enrolled by e-mail only: the first account to launch with that e-mail is tied to the person; a second
    account with the same e-mail claim later finds nothing."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
        person_for(s, sim, "deltaker", ProgrammeRoleKind.MENTOR, with_canvas_id=False)
    assert h1(driver.launch("deltaker")) == "Mentoroversikt"
    other = sim.user("deltaker")
    other.sub, other.canvas_user_id = "someone-else", 4242
    assert h1(driver.launch("deltaker")) == "Vi fant ingen lisens for deg"


def age_launches(app, seconds: int) -> None:
    """Make every recorded launch ``seconds`` older (its time lives in the launch record's data)."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        for record in s.scalars(select(LaunchRecord)):
            record.data = {**record.data, "launched_at": record.data["launched_at"] - seconds}


def test_course_owner_authority_lasts_an_hour_after_the_launch(driver, linked, app, client, db_session):
    """A teacher removed from the course must lose the owner views within an hour: the roles claim is only
    trusted that long, then a fresh launch from Canvas confirms it again."""
    token = launch_token(driver.launch("kurseier").get_data(as_text=True))
    age_launches(app, 3600 - 60)
    assert h1(open_page(client, "/app/owner", token)) == "Kursadministrasjon"
    age_launches(app, 61)
    for path in ("/app/owner", "/app/"):
        stale = open_page(client, path, token)
        assert stale.status_code == 401, path
        assert "åpne verktøyet på nytt fra emnet i Canvas" in stale.get_data(as_text=True)
        assert "Brukere uten lisens" not in stale.get_data(as_text=True)
    link = client.post("/app/link", data={"lt": token, "programme": "laeringsnettverk-parorende"}, base_url=TOOL)
    assert link.status_code == 401
    assert h1(driver.launch("kurseier")) == "Kursadministrasjon"  # a fresh launch


def test_an_hour_old_launch_keeps_the_persons_own_roles(driver, linked, app, client):
    """Only the owner authority expires: a participant's views come from the tool's own records."""
    token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    age_launches(app, 2 * 3600)
    assert h1(open_page(client, "/app/participant", token)) == "Min fremdrift"
