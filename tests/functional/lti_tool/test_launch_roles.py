"""A launch from the simulator lands each role on its own view."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.models import LaunchRecord, ProgrammeRoleKind, UnlicensedLaunch
from lti_tool.lti.oidc_login import state_binding
from tests.support.factories import link_sim_course, person_for
from tests.support.lti import LtiDriver, launch_token


@pytest.fixture
def linked(app, sim):
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


def test_unknown_person_is_listed_for_the_course_owner(driver, app, sim):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
    driver.launch("deltaker")
    owner_page = driver.launch("kurseier").get_data(as_text=True)
    assert sim.user("deltaker").name in owner_page
    assert sim.user("deltaker").email in owner_page


def test_launch_token_opens_the_page_again_on_reload(driver, linked, client):
    resp = driver.launch("deltaker")
    token = launch_token(resp.get_data(as_text=True))
    again = client.get("/app/participant", query_string={"lt": token})
    assert again.status_code == 200
    assert h1(again) == "Min fremdrift"
    via_header = client.get("/app/participant", headers={"X-Launch-Token": token})
    assert h1(via_header) == "Min fremdrift"


def test_a_participant_cannot_open_the_owner_view(driver, linked, client):
    token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    resp = client.get("/app/owner", query_string={"lt": token})
    assert resp.status_code == 403


def test_forged_launch_token_is_refused(client):
    resp = client.get("/app/participant", query_string={"lt": "not-a-token"})
    assert resp.status_code == 401


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
    assert h1(driver.client.get("/app/participant", query_string={"lt": token})) == "Min fremdrift"
    binding = state_binding(login.state)  # replay with the browser's state cookie back in place
    driver.client.set_cookie("kp_state_" + binding, binding, domain="kurspakke.test", path="/lti/")
    replay = driver.post_launch(fields)
    assert replay.status_code == 400 and "allerede brukt" in replay.get_data(as_text=True)
    app.extensions["kurspakke"].engine.dispose()


def test_the_no_licence_page_survives_a_reload(driver, app, sim, client):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
    page = driver.launch("deltaker")
    token = launch_token(page.get_data(as_text=True))
    again = client.get("/app/", query_string={"lt": token})
    assert again.status_code == 200
    assert h1(again) == "Vi fant ingen lisens for deg"


def test_a_tampered_launch_token_is_refused(driver, linked, client):
    token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    launch_id, signature = token.split(".")
    other = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert client.get("/app/participant", query_string={"lt": f"{launch_id}.{other}"}).status_code == 401
    assert client.get("/app/participant", query_string={"lt": f"x{launch_id}.{signature}"}).status_code == 401


def test_an_expired_launch_is_refused(driver, linked, client, app):
    from datetime import timedelta

    from sqlalchemy import update

    from kurspakke.models import utcnow

    token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    assert client.get("/app/participant", query_string={"lt": token}).status_code == 200
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        s.execute(update(LaunchRecord).values(expires_at=utcnow() - timedelta(seconds=1)))
    resp = client.get("/app/participant", query_string={"lt": token})
    assert resp.status_code == 401
    assert "Økten din er utløpt" in resp.get_data(as_text=True)
