"""Links placed by deep linking: kept by the platform, listed on the course page, launched as resource links."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from bs4 import BeautifulSoup, Tag
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient

from canvas_sim import SimAuthError, SimPlatform
from canvas_sim.platform import PlacedLink

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
LTI = "https://purl.imsglobal.org/spec/lti/claim/"
URL = "/courses/1/deep_linking_response"
LAUNCH = "http://127.0.0.1:5000/lti/launch"

ITEMS: list[dict[str, Any]] = [
    {
        "type": "ltiResourceLink",
        "title": "Mentoroversikt",
        "text": "Gruppene dine",
        "url": LAUNCH,
        "custom": {"kurspakke_view": "mentor"},
    },
    {"type": "ltiResourceLink", "title": "Lisenser", "url": LAUNCH + "?x=1", "custom": {"kurspakke_view": "licences"}},
]


def response_jwt(platform: SimPlatform, tool_key: rsa.RSAPrivateKey, items: list[dict[str, Any]]) -> str:
    now = int(time.time())
    request = platform.claims_for("kurseier", nonce="n", message_type="LtiDeepLinkingRequest")
    claims: dict[str, Any] = {
        "iss": platform.config.client_id,
        "aud": platform.issuer,
        "iat": now,
        "exp": now + 300,
        "nonce": str(uuid.uuid4()),
        LTI + "message_type": "LtiDeepLinkingResponse",
        LTI + "version": "1.3.0",
        LTI + "deployment_id": platform.config.deployment_id,
        DL + "data": request[DL + "deep_linking_settings"]["data"],
        DL + "content_items": items,
    }
    return jwt.encode(claims, tool_key, "RS256", headers={"kid": "tool-key-1"})


def place(client: FlaskClient, platform: SimPlatform, tool_key: rsa.RSAPrivateKey, items: list[dict[str, Any]]) -> str:
    resp = client.post(URL, data={"JWT": response_jwt(platform, tool_key, items)})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_data(as_text=True)


def course_page(client: FlaskClient, query: str = "") -> BeautifulSoup:
    resp = client.get("/" + query)
    assert resp.status_code == 200
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def link_titles(soup: BeautifulSoup) -> list[str]:
    return [t.get_text(strip=True) for t in soup.select("#sim-links-list li .sim-link-title")]


def launch_claims(client: FlaskClient, platform: SimPlatform, form: Tag, user: str) -> dict[str, Any]:
    """Submit a start form of the course page as the browser would, then the tool's OIDC round trip."""
    fields = {i["name"]: i["value"] for i in form.find_all("input", type="hidden")}
    fields["user"] = user
    start = client.get(f"{form['action']}?{urlencode(fields)}")
    assert start.status_code == 200, start.get_data(as_text=True)
    login_form = BeautifulSoup(start.get_data(as_text=True), "html.parser").find("form")
    assert isinstance(login_form, Tag)
    login = {i["name"]: i["value"] for i in login_form.find_all("input", type="hidden")}
    authorize = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": login["client_id"],
        "redirect_uri": login["target_link_uri"].split("?")[0],
        "login_hint": login["login_hint"],
        "lti_message_hint": login["lti_message_hint"],
        "nonce": "nonce-1",
        "state": "state-1",
    }
    answer = client.post("/api/lti/authorize_redirect", data=authorize)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    post = BeautifulSoup(answer.get_data(as_text=True), "html.parser").find("form")
    assert isinstance(post, Tag)
    token = str(post.find("input", attrs={"name": "id_token"})["value"])
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    assert claims[LTI + "target_link_uri"] == login["target_link_uri"]
    return claims


def test_the_course_page_says_when_no_links_are_placed(client: FlaskClient) -> None:
    section = course_page(client).find("section", attrs={"aria-labelledby": "links-heading"})
    assert isinstance(section, Tag)
    heading = section.find("h2")
    assert heading is not None and heading.get_text(strip=True) == "Lenker i emnet"
    assert "Ingen lenker ennå" in section.get_text()
    assert section.find("ul") is None


def test_placed_links_are_listed_and_launch_with_their_own_id_title_and_custom(
    client: FlaskClient, platform: SimPlatform, tool_key: rsa.RSAPrivateKey
) -> None:
    done = place(client, platform, tool_key, ITEMS)
    # The answer page in the tool's frame tells the course page to show them (and says where they are).
    done_soup = BeautifulSoup(done, "html.parser")
    assert done_soup.find("script", src="/static/links_placed.js") is not None
    assert "Lenker i emnet" in done_soup.get_text()

    assert [(link.title, link.url, link.custom, link.text) for link in platform.placed_links] == [
        ("Mentoroversikt", LAUNCH, {"kurspakke_view": "mentor"}, "Gruppene dine"),
        ("Lisenser", LAUNCH + "?x=1", {"kurspakke_view": "licences"}, ""),
    ]
    first, second = platform.placed_links
    assert first.id != second.id

    soup = course_page(client)
    assert link_titles(soup) == ["Mentoroversikt", "Lisenser"]
    forms = soup.select("#sim-links-list form")
    for form, link in zip(forms, platform.placed_links, strict=True):
        assert form["target"] == "tool_frame" and form["action"] == "/sim/start"
        select = form.find("select", attrs={"name": "user"})
        assert isinstance(select, Tag)
        label = soup.find("label", attrs={"for": select["id"]})
        assert label is not None and label.get_text(strip=True) == "Åpne som"
        assert [o["value"] for o in select.find_all("option")] == [u.key for u in platform.config.users]
        button = form.find("button")
        assert isinstance(button, Tag)
        # Its accessible name: "Åpne" and the link's title.
        names = [soup.find(id=i).get_text(strip=True) for i in str(button["aria-labelledby"]).split()]
        assert names == ["Åpne", link.title]
        assert {i["name"]: i["value"] for i in form.find_all("input", type="hidden")} == {
            "link": link.id,
            "locale": "nb",
        }

    claims = launch_claims(client, platform, forms[0], "mentor")
    assert claims[LTI + "message_type"] == "LtiResourceLinkRequest"
    assert claims[LTI + "resource_link"] == {"id": first.id, "title": "Mentoroversikt", "description": "Gruppene dine"}
    assert claims[LTI + "custom"]["kurspakke_view"] == "mentor"
    assert claims[LTI + "custom"]["canvas_course_id"] == "1"  # Canvas's own custom still there
    assert claims["sub"] == platform.user("mentor").sub

    claims = launch_claims(client, platform, forms[1], "lisensadministrator")
    assert claims[LTI + "resource_link"] == {"id": second.id, "title": "Lisenser"}
    assert claims[LTI + "target_link_uri"] == LAUNCH + "?x=1"
    assert claims[LTI + "custom"]["kurspakke_view"] == "licences"

    # A second response adds to the course; the links already there stay.
    place(client, platform, tool_key, [{"type": "ltiResourceLink", "title": "Min fremdrift"}])
    assert link_titles(course_page(client)) == ["Mentoroversikt", "Lisenser", "Min fremdrift"]
    assert platform.placed_links[-1].url == platform.config.tool_launch_url  # no url: the tool's launch URL
    assert platform.placed_links[-1].custom == {}


def test_only_resource_links_are_placed_and_custom_values_become_strings(
    client: FlaskClient, platform: SimPlatform, tool_key: rsa.RSAPrivateKey
) -> None:
    done = place(
        client,
        platform,
        tool_key,
        [
            {"type": "link", "url": "https://example.org/", "title": "Nettside"},
            {"type": "ltiResourceLink", "title": "Tall", "custom": {"n": 3, "on": True}},
        ],
    )
    assert [link.title for link in platform.placed_links] == ["Tall"]
    assert platform.placed_links[0].custom == {"n": "3", "on": "true"}
    assert "links_placed.js" in done
    nothing = place(client, platform, tool_key, [{"type": "link", "url": "https://example.org/"}])
    assert "links_placed.js" not in nothing


@pytest.mark.parametrize(
    "item",
    [
        {"type": "ltiResourceLink", "title": "Borte", "url": "https://evil.example/lti/launch"},
        {"type": "ltiResourceLink", "title": "Rar", "url": 5},
        {"type": "ltiResourceLink", "title": "Liste", "custom": ["a"]},
    ],
    ids=["other host", "url not a string", "custom not an object"],
)
def test_a_link_canvas_could_not_place_refuses_the_response(
    client: FlaskClient, platform: SimPlatform, tool_key: rsa.RSAPrivateKey, item: dict[str, Any]
) -> None:
    token = response_jwt(platform, tool_key, [ITEMS[0], item])
    with pytest.raises(SimAuthError):
        platform.receive_deep_link_response(token)
    assert client.post(URL, data={"JWT": token}).status_code == 400
    assert platform.placed_links == [] and platform.deep_link_responses == []


def test_an_unknown_link_is_refused(client: FlaskClient) -> None:
    resp = client.get("/sim/start?" + urlencode({"user": "deltaker", "link": "no-such-link"}))
    assert resp.status_code == 400
    assert "ukjent lenke" in resp.get_data(as_text=True)


def test_a_link_launch_is_a_resource_link_launch_only(platform: SimPlatform) -> None:
    link = PlacedLink("l1", "T", LAUNCH)
    with pytest.raises(SimAuthError):
        platform.login_initiation_params("kurseier", message_type="LtiDeepLinkingRequest", link=link)
