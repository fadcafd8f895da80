"""The platform-storage login and check as the browser sees them: the login's probe cookie (whether the frame keeps
cookies, so the page need not wait on the platform), the check page's failure texts, and /lti/storage-confirm
refusing a post from another site."""

from __future__ import annotations

from typing import Any

import pytest
from bs4 import BeautifulSoup, Tag
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from canvas_sim import SimPlatform
from lti_tool.lti.oidc_login import binding_proof, state_binding
from tests.conftest import SECRET
from tests.support.lti import SIM, TOOL, form_fields


@pytest.fixture
def storage_sim(sim: SimPlatform) -> SimPlatform:
    sim.config.storage_target = "post_message_forwarding"
    return sim


def login(client: FlaskClient, sim: SimPlatform) -> TestResponse:
    return client.get("/lti/login", query_string=sim.login_initiation_params("deltaker"), base_url=TOOL)


def set_cookies(resp: TestResponse) -> list[tuple[str, str, dict[str, str], set[str]]]:
    """(name, value, attributes with a value, lower-case, flags) per Set-Cookie header, in order."""
    parsed = []
    for header in resp.headers.getlist("Set-Cookie"):
        first, *rest = [part.strip() for part in header.split(";")]
        name, value = first.split("=", 1)
        attrs = {k.lower(): v for k, sep, v in (p.partition("=") for p in rest) if sep}
        flags = {p.lower() for p in rest if "=" not in p}
        parsed.append((name, value, attrs, flags))
    return parsed


def body_of(resp: TestResponse) -> Tag:
    body = BeautifulSoup(resp.get_data(as_text=True), "html.parser").body
    assert body is not None
    return body


def attr(tag: Tag, name: str) -> str:
    value = tag.get(name)
    assert isinstance(value, str), (name, value)
    return value


def by_id(page: BeautifulSoup, element_id: str) -> Tag:
    element = page.find(id=element_id)
    assert isinstance(element, Tag), element_id
    return element


def test_storage_login_sets_a_script_readable_probe_beside_the_state_cookie(client, storage_sim, db_session):
    resp = login(client, storage_sim)
    assert resp.status_code == 200
    body = body_of(resp)
    key = attr(body, "data-key")
    cookies = set_cookies(resp)
    assert [c[0] for c in cookies] == [key, key + "_probe"]  # the state cookie first, then its probe
    (_, proof, state_attrs, state_flags), (probe, value, probe_attrs, probe_flags) = cookies
    assert body["data-probe"] == probe
    # The probe is kept or dropped with the state cookie: the same attributes...
    assert {"secure", "partitioned"} <= probe_flags and {"secure", "partitioned", "httponly"} <= state_flags
    for attrs in (state_attrs, probe_attrs):
        assert (attrs["samesite"], attrs["path"]) == ("None", "/lti/")
    # ...but readable by the page's script, and worth nothing to anyone who reads it.
    assert "httponly" not in probe_flags
    assert value == "1" and value != proof and state_binding("x") not in probe
    assert 0 < int(probe_attrs["max-age"]) <= 60  # read at once by the page it came with


def test_a_login_without_platform_storage_sets_only_the_state_cookie(client, sim, db_session):
    resp = login(client, sim)  # no lti_storage_target: a redirect, no page to read a probe
    assert resp.status_code == 302
    assert [c[0].startswith("kp_state_") and not c[0].endswith("_probe") for c in set_cookies(resp)] == [True]


def test_the_probe_does_not_bind_the_launch(client, storage_sim, sim_client, linked):
    """A launch that brings only the probe (not the HttpOnly state cookie) is cookieless: storage check."""
    resp = login(client, storage_sim)
    key = attr(body_of(resp), "data-key")
    client.delete_cookie(key, domain="kurspakke.test", path="/lti/")
    assert [c.key for c in client._cookies.values()] == [key + "_probe"]
    auth_url = attr(body_of(resp), "data-next")
    _, fields = form_fields(sim_client.get(auth_url[len(SIM) :]).get_data(as_text=True))
    launch = client.post("/lti/launch", data=fields, base_url=TOOL)
    assert body_of(launch)["data-storage-mode"] == "check"


def cookieless_launch(client: FlaskClient, sim: SimPlatform, sim_client: FlaskClient) -> tuple[str, TestResponse]:
    resp = login(client, sim)
    auth_url = attr(body_of(resp), "data-next")
    client.delete_cookie(attr(body_of(resp), "data-key"), domain="kurspakke.test", path="/lti/")
    client.delete_cookie(attr(body_of(resp), "data-probe"), domain="kurspakke.test", path="/lti/")
    _, fields = form_fields(sim_client.get(auth_url[len(SIM) :]).get_data(as_text=True))
    return fields["state"], client.post("/lti/launch", data=fields, base_url=TOOL)


def test_check_page_has_an_alert_region_and_the_failure_texts(client, storage_sim, sim_client, linked):
    _, launch = cookieless_launch(client, storage_sim, sim_client)
    page = BeautifulSoup(launch.get_data(as_text=True), "html.parser")
    assert page.body is not None and page.body["data-storage-mode"] == "check"
    alert = by_id(page, "storage-failed")
    # Present and empty from the start, not hidden: a live region that is there before its text is announced.
    assert alert["role"] == "alert" and alert.get_text(strip=True) == ""
    assert not alert.has_attr("hidden") and not any(
        p.has_attr("hidden") for p in alert.parents if p.name != "[document]"
    )
    assert by_id(page, "storage-heading").get_text() == "Logger inn"
    texts = {i: by_id(page, "storage-text-" + i).get_text() for i in ("heading", "title", "no-answer", "not-confirmed")}
    assert texts["heading"] == "Innloggingen kunne ikke fullføres"
    assert texts["title"] == "Innloggingen kunne ikke fullføres – Kurspakke"
    assert texts["no-answer"].startswith("Canvas svarte ikke")
    assert texts["not-confirmed"].startswith("Canvas svarte, men innloggingen kunne ikke bekreftes")
    assert texts["no-answer"] != texts["not-confirmed"]
    # The confirmation names our origin (see storage_confirm): not the project-wide no-referrer on this page.
    metas = [m["content"] for m in page.find_all("meta", attrs={"name": "referrer"})]
    assert metas[-1] == "same-origin"


def test_check_page_in_english(client, storage_sim, sim_client, linked):
    storage_sim.config.locale = "en"
    _, launch = cookieless_launch(client, storage_sim, sim_client)
    page = BeautifulSoup(launch.get_data(as_text=True), "html.parser")
    assert by_id(page, "storage-heading").get_text() == "Signing in"
    assert by_id(page, "storage-text-heading").get_text() == "Sign-in could not be completed"
    assert by_id(page, "storage-text-no-answer").get_text().startswith("Canvas did not answer the sign-in check.")
    assert by_id(page, "storage-text-not-confirmed").get_text().startswith("Canvas answered, but the sign-in")


def confirm_form(client: FlaskClient, sim: SimPlatform, sim_client: FlaskClient) -> tuple[str, dict[str, Any]]:
    """The check page's form with the proof filled in, as its script would post it."""
    state, launch = cookieless_launch(client, sim, sim_client)
    action, fields = form_fields(launch.get_data(as_text=True), "#storage-confirm")
    return action, {**fields, "proof": binding_proof(SECRET, state_binding(state))}


CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "none"},
    {"Sec-Fetch-Site": "cross-site", "Origin": TOOL},
    {"Origin": "https://evil.example"},
    {"Origin": SIM},  # not even the platform posts it
    {"Origin": "null"},  # a sandboxed frame's post, or a page that hides its origin
    {"Origin": TOOL + ":8443"},
    {"Origin": "http://kurspakke.test"},
    {"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"},
]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=[" ".join(f"{k}={v}" for k, v in h.items()) for h in CROSS_SITE])
def test_storage_confirm_refuses_a_post_from_another_site(client, storage_sim, sim_client, linked, headers):
    action, fields = confirm_form(client, storage_sim, sim_client)
    resp = client.post(action, data=fields, headers=headers, base_url=TOOL)
    assert resp.status_code == 403
    assert "Location" not in resp.headers and "lt=" not in resp.get_data(as_text=True)
    assert "Innloggingen kunne ikke bekreftes" in resp.get_data(as_text=True)
    # The ticket and proof were good: from the tool's own page they still open the launch.
    ok = client.post(action, data=fields, headers={"Sec-Fetch-Site": "same-origin", "Origin": TOOL}, base_url=TOOL)
    assert ok.status_code == 200 and "Min fremdrift" in ok.get_data(as_text=True)


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "same-origin", "Origin": TOOL}, {"Sec-Fetch-Site": "same-origin"}, {"Origin": TOOL}, {}],
    ids=["both", "sec-fetch-site-only", "origin-only", "neither"],
)
def test_storage_confirm_from_the_tools_own_page_opens_the_launch(client, storage_sim, sim_client, linked, headers):
    action, fields = confirm_form(client, storage_sim, sim_client)
    resp = client.post(action, data=fields, headers=headers, base_url=TOOL)
    # The landing page itself (its launch token goes to launch.js, never into an address).
    assert resp.status_code == 200 and "Min fremdrift" in resp.get_data(as_text=True)
    assert "Location" not in resp.headers
