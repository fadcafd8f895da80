"""A course owner links an unlinked course, and places the tool's pages as links through deep linking."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.models import CourseLink
from tests.support.factories import link_sim_course
from tests.support.lti import SIM, TOOL, form_fields, launch_token


def test_owner_links_an_unlinked_course(driver, client, db_session, sim):
    page = driver.launch("kurseier")
    assert page.status_code == 200
    action, fields = form_fields(page.get_data(as_text=True))
    assert action == "/app/link"
    resp = client.post(action, data={**fields, "programme": "lindrende-behandling"}, base_url=TOOL)
    assert resp.status_code == 200
    assert BeautifulSoup(resp.get_data(as_text=True), "html.parser").h1.get_text(strip=True) == "Kursadministrasjon"
    link = db_session.scalars(select(CourseLink)).one()
    assert (link.programme_id, link.context_id, link.platform_instance) == (
        "lindrende-behandling",
        sim.config.context_id,
        f"{sim.issuer}|{sim.config.platform_guid}",  # the guid, scoped by the issuer that signed the launch
    )


def test_linking_refuses_an_unknown_programme_and_writes_nothing(driver, client, db_session):
    _, fields = form_fields(driver.launch("kurseier").get_data(as_text=True))
    resp = client.post("/app/link", data={**fields, "programme": "no-such-programme"}, base_url=TOOL)
    assert resp.status_code == 422
    assert "Forespørselen ble ikke forstått" in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(CourseLink)) == 0


def test_a_participant_cannot_link_a_course(driver, client, db_session):
    page = driver.launch("deltaker")
    assert "ikke satt opp for dette emnet" in page.get_data(as_text=True)
    token = launch_token(page.get_data(as_text=True))  # a valid launch, but not a course owner's
    resp = client.post("/app/link", data={"lt": token, "programme": "lindrende-behandling"}, base_url=TOOL)
    assert resp.status_code == 403
    assert "Du har ikke tilgang til denne siden" in resp.get_data(as_text=True)
    resp = client.post("/app/link", data={"programme": "lindrende-behandling"}, base_url=TOOL)
    assert resp.status_code == 401  # and none at all
    assert db_session.scalar(select(func.count()).select_from(CourseLink)) == 0


def test_a_programme_is_linked_to_one_course_per_canvas(driver, client, app, sim, db_session):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link = link_sim_course(s, sim)
        link.context_id = "another-course"
    _, fields = form_fields(driver.launch("kurseier").get_data(as_text=True))
    resp = client.post("/app/link", data={**fields, "programme": "lindrende-behandling"}, base_url=TOOL)
    assert resp.status_code == 409
    assert "allerede koblet til et annet emne" in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(CourseLink)) == 1


def test_deep_linking_places_the_chosen_pages(driver, client, app, sim, sim_client):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
    page = driver.launch("kurseier", message_type="LtiDeepLinkingRequest")
    assert page.status_code == 200
    action, fields = form_fields(page.get_data(as_text=True))
    assert action == "/lti/deep-link"
    resp = client.post(action, data={"lt": fields["lt"], "view": ["participant", "mentor"]}, base_url=TOOL)
    assert resp.status_code == 200
    return_action, return_fields = form_fields(resp.get_data(as_text=True))
    assert return_action == f"{SIM}/courses/{sim.config.course_id}/deep_linking_response"
    sim.config.tool_jwks_fetcher = lambda url: client.get("/lti/jwks").get_json()
    done = sim_client.post(return_action[len(SIM) :], data=return_fields)
    assert done.status_code == 200, done.get_data(as_text=True)
    items = sim.deep_link_responses[-1]["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert [i["custom"]["kurspakke_view"] for i in items] == ["participant", "mentor"]
    assert all(i["url"] == TOOL + "/lti/launch" and i["type"] == "ltiResourceLink" for i in items)
    assert [i["title"] for i in items] == ["Min fremdrift", "Mentoroversikt"]


def test_a_deep_linked_page_opens_that_view(driver, app, sim):
    from kurspakke.models import ProgrammeRoleKind
    from tests.support.factories import person_for

    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
        person_for(s, sim, "mentor", ProgrammeRoleKind.MENTOR, ProgrammeRoleKind.PARTICIPANT)
    page = driver.launch("mentor", custom={"kurspakke_view": "participant"})
    soup = BeautifulSoup(page.get_data(as_text=True), "html.parser")
    assert soup.h1.get_text(strip=True) == "Min fremdrift"
    tabs = [a.get_text(strip=True) for a in soup.select("nav a")]
    assert tabs == ["Mentoroversikt", "Min fremdrift"]


def test_deep_linking_is_for_course_owners_only(driver, app, sim, db_session):
    from kurspakke.models import LaunchRecord

    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
    page = driver.launch("deltaker", message_type="LtiDeepLinkingRequest")
    assert page.status_code == 403
    assert db_session.scalar(select(func.count()).select_from(LaunchRecord)) == 0


def test_a_deep_linking_launch_signs_one_response(driver, client, app, sim, db_session):
    """The deep-linking launch is used up by its response: its token cannot sign a second set of links."""
    from kurspakke.models import LaunchRecord

    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
    _, fields = form_fields(driver.launch("kurseier", message_type="LtiDeepLinkingRequest").get_data(as_text=True))
    first = client.post("/lti/deep-link", data={"lt": fields["lt"], "view": "participant"}, base_url=TOOL)
    assert first.status_code == 200
    again = client.post("/lti/deep-link", data={"lt": fields["lt"], "view": "mentor"}, base_url=TOOL)
    assert again.status_code == 401
    assert "deep_linking_response" not in again.get_data(as_text=True)
    ended = db_session.scalars(select(LaunchRecord)).one()  # kept, under an id no token carries: nonce still used
    assert ended.id.startswith("ended-") and fields["lt"].split(".")[0] != ended.id


def deep_linking_launch(driver, sim, **settings):
    """A course owner's deep-linking launch whose deep_linking_settings the test shapes."""
    from canvas_sim import claims as c

    login = driver.login("kurseier", message_type="LtiDeepLinkingRequest")
    body = sim.claims_for(sim.user("kurseier"), nonce=login.nonce, message_type="LtiDeepLinkingRequest")
    body[c.DL_SETTINGS].update(settings)
    return driver.post_launch({"id_token": sim.sign(body), "state": login.state})


@pytest.mark.parametrize(
    "return_url", ["javascript:alert(document.domain)", "data:text/html,<form>", "//no-scheme.example/x", 42, None]
)
def test_a_deep_linking_return_url_that_is_not_http_is_refused(driver, app, sim, db_session, return_url):
    from kurspakke.models import LaunchRecord

    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
    resp = deep_linking_launch(driver, sim, deep_link_return_url=return_url)
    assert resp.status_code == 400
    assert "Innloggingsbeviset er ikke gyldig for dette verktøyet" in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(LaunchRecord)) == 0


def test_a_request_that_does_not_accept_links_is_refused(driver, app, sim, db_session):
    """The tool returns resource links only: a deep-linking request for other content types is refused at the
    launch, with nothing recorded and no response signed."""
    from kurspakke.models import LaunchRecord

    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
    resp = deep_linking_launch(driver, sim, accept_types=["file", "html"])
    assert resp.status_code == 400
    assert "deep_linking_response" not in resp.get_data(as_text=True)
    assert db_session.scalar(select(func.count()).select_from(LaunchRecord)) == 0
    assert sim.deep_link_responses == []


def test_one_link_only_when_the_platform_takes_one(driver, client, app, sim):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
    page = deep_linking_launch(driver, sim, accept_multiple=False)
    soup = BeautifulSoup(page.get_data(as_text=True), "html.parser")
    assert {i["type"] for i in soup.select("input[name=view]")} == {"radio"}
    token = launch_token(page.get_data(as_text=True))
    two = client.post("/lti/deep-link", data={"lt": token, "view": ["participant", "mentor"]}, base_url=TOOL)
    assert two.status_code == 422
    one = client.post("/lti/deep-link", data={"lt": token, "view": "participant"}, base_url=TOOL)
    assert one.status_code == 200 and "deep_linking_response" in one.get_data(as_text=True)


def test_an_hour_old_deep_linking_launch_signs_nothing(driver, client, app, sim, db_session):
    """Owner authority lasts an hour after the launch: a deep-linking page left open longer cannot sign links,
    nor show the selection again on a reload, even for an owner who also holds a programme role."""
    from kurspakke.models import LaunchRecord, ProgrammeRoleKind
    from tests.functional.lti_tool.test_launch_roles import age_launches
    from tests.support.factories import person_for
    from tests.support.lti import open_page

    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
        person_for(s, sim, "kurseier", ProgrammeRoleKind.MENTOR)
    page = driver.launch("kurseier", message_type="LtiDeepLinkingRequest")
    token = launch_token(page.get_data(as_text=True))
    age_launches(app, 3601)
    resp = client.post("/lti/deep-link", data={"lt": token, "view": "participant"}, base_url=TOOL)
    assert resp.status_code == 401 and "deep_linking_response" not in resp.get_data(as_text=True)
    assert not db_session.scalars(select(LaunchRecord)).one().id.startswith("ended-")  # nothing was signed
    reload = open_page(client, "/app/", token)
    assert reload.status_code == 401 and "Legg til lenker" not in reload.get_data(as_text=True)
    assert sim.deep_link_responses == []
