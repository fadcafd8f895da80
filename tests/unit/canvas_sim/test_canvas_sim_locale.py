"""The launch language the course page offers (Bokmål, Nynorsk, English), carried to the id_token's locale claims."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from bs4 import BeautifulSoup, Tag
from flask.testing import FlaskClient

from canvas_sim import SimAuthError, SimConfig, SimPlatform, create_sim_app

LTI = "https://purl.imsglobal.org/spec/lti/claim/"


def page(client: FlaskClient, query: str = "") -> BeautifulSoup:
    resp = client.get("/" + query)
    assert resp.status_code == 200
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def locale_select(soup: BeautifulSoup) -> Tag:
    select = soup.find("select", attrs={"name": "locale"})
    assert isinstance(select, Tag)
    return select


def launched(client: FlaskClient, query: dict[str, str]) -> dict[str, Any]:
    """/sim/start, then the tool's authorize request as the tool would send it; the id_token's claims."""
    start = client.get("/sim/start?" + urlencode(query))
    assert start.status_code == 200, start.get_data(as_text=True)
    form = BeautifulSoup(start.get_data(as_text=True), "html.parser").find("form")
    assert isinstance(form, Tag)
    login = {i["name"]: i["value"] for i in form.find_all("input", type="hidden")}
    answer = client.get(
        "/api/lti/authorize_redirect?"
        + urlencode(
            {
                "scope": "openid",
                "response_type": "id_token",
                "response_mode": "form_post",
                "prompt": "none",
                "client_id": login["client_id"],
                "redirect_uri": login["target_link_uri"],
                "login_hint": login["login_hint"],
                "lti_message_hint": login["lti_message_hint"],
                "nonce": "n",
                "state": "s",
            }
        )
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    token = BeautifulSoup(answer.get_data(as_text=True), "html.parser").find("input", attrs={"name": "id_token"})
    assert isinstance(token, Tag)
    claims: dict[str, Any] = jwt.decode(str(token["value"]), options={"verify_signature": False})
    return claims


def test_the_page_offers_the_three_languages_with_bokmal_first_and_chosen(client: FlaskClient) -> None:
    soup = page(client)
    select = locale_select(soup)
    label = soup.find("label", attrs={"for": select["id"]})
    assert label is not None and label.get_text(strip=True) == "Språk i verktøyet"
    options = [(o["value"], o["lang"], o.get_text(strip=True)) for o in select.find_all("option")]
    assert options == [("nb", "nb", "Bokmål"), ("nn", "nn", "Nynorsk"), ("en", "en", "English")]
    assert [o["value"] for o in select.find_all("option", selected=True)] == ["nb"]
    # The language form works without script too: it reloads the page with ?locale=.
    form = select.find_parent("form")
    assert isinstance(form, Tag) and form["action"] == "/" and form.get("method") == "get"
    assert soup.find("script", src="/static/course_page.js") is not None
    start_forms = soup.find_all("form", target="tool_frame")
    assert start_forms and all(f.find("input", attrs={"name": "locale"})["value"] == "nb" for f in start_forms)


@pytest.mark.parametrize("locale", ["nn", "en"])
def test_the_page_with_a_language_chosen_starts_every_launch_in_it(client: FlaskClient, locale: str) -> None:
    soup = page(client, f"?locale={locale}")
    assert [o["value"] for o in locale_select(soup).find_all("option", selected=True)] == [locale]
    fields = [f.find("input", attrs={"name": "locale"}) for f in soup.find_all("form", target="tool_frame")]
    assert len(fields) == 5 and all(isinstance(i, Tag) and i["value"] == locale for i in fields)


def test_an_unknown_language_in_the_address_falls_back_to_the_default(client: FlaskClient) -> None:
    soup = page(client, "?locale=fr")
    assert [o["value"] for o in locale_select(soup).find_all("option", selected=True)] == ["nb"]


@pytest.mark.parametrize("locale", ["nn", "en", "nb"])
@pytest.mark.parametrize("message_type", ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"])
def test_a_launch_carries_the_chosen_locale_into_the_id_token(
    client: FlaskClient, locale: str, message_type: str
) -> None:
    claims = launched(client, {"user": "kurseier", "message_type": message_type, "locale": locale})
    assert claims["locale"] == locale
    assert claims[LTI + "launch_presentation"]["locale"] == locale
    assert claims[LTI + "message_type"] == message_type


def test_without_a_choice_the_configured_default_is_sent(client: FlaskClient, platform: SimPlatform) -> None:
    claims = launched(client, {"user": "deltaker"})
    assert claims["locale"] == platform.config.locale == "nb"
    assert claims[LTI + "launch_presentation"]["locale"] == "nb"
    assert platform.claims_for("deltaker", nonce="n")["locale"] == "nb"


def test_a_language_the_page_does_not_offer_is_refused(client: FlaskClient, platform: SimPlatform) -> None:
    resp = client.get("/sim/start?" + urlencode({"user": "deltaker", "locale": "fr"}))
    assert resp.status_code == 400
    assert "ukjent språk" in resp.get_data(as_text=True)
    with pytest.raises(SimAuthError):
        platform.login_initiation_params("deltaker", locale="nb<script>")


def test_a_configured_default_outside_the_three_is_offered_and_chosen(platform_pem: bytes) -> None:
    client = create_sim_app(SimConfig(private_key_pem=platform_pem, locale="en-GB")).test_client()
    select = locale_select(page(client))
    assert [o["value"] for o in select.find_all("option")] == ["en-GB", "nb", "nn", "en"]
    assert [o["value"] for o in select.find_all("option", selected=True)] == ["en-GB"]
    assert launched(client, {"user": "deltaker"})["locale"] == "en-GB"
    assert launched(client, {"user": "deltaker", "locale": "nn"})["locale"] == "nn"
