"""Choosing the page's language on the page: inside Canvas for the rest of the launch, outside Canvas by a cookie;
bad choices refused with nothing changed, and never a redirect to another site."""

from __future__ import annotations

from typing import Any

from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient

from tests.support.lti import TOOL, launch_token, open_page


def _lang(resp: Any) -> str:
    return str(BeautifulSoup(resp.get_data(as_text=True), "html.parser").html["lang"])


def _launch_locale(app: Flask, token: str) -> str:
    from lti_tool.services import read_launch_token

    with app.app_context():
        launch_id = read_launch_token(token)
    with app.extensions["kurspakke"].session_factory() as s:
        from kurspakke.services.lti_state import DatabaseStateStore

        data = DatabaseStateStore(s).get_launch(launch_id or "")
        return str((data or {}).get("locale"))


def test_a_participant_switches_to_english_and_nynorsk_for_the_rest_of_the_launch(
    app: Flask, driver: Any, linked: None, client: FlaskClient
) -> None:
    landing = driver.launch("deltaker")
    token = launch_token(landing.get_data(as_text=True))
    soup = BeautifulSoup(landing.get_data(as_text=True), "html.parser")
    switcher = soup.find("nav", class_="language")
    assert switcher is not None
    assert [b["lang"] for b in switcher.find_all("button")] == ["nn", "en"]  # nb is the current one
    assert switcher.find(attrs={"aria-current": "true"})["lang"] == "nb"

    resp = client.post("/locale", data={"lt": token, "locale": "en", "next": "/app/participant"}, base_url=TOOL)
    # A small page whose script posts the token on to the page (no redirect: the token is not in any address).
    body = BeautifulSoup(resp.get_data(as_text=True), "html.parser").body
    assert resp.status_code == 200 and body["data-resume-to"] == "/app/participant"
    assert body["data-launch-token"] == token and "Location" not in resp.headers
    page = open_page(client, "/app/participant", token)
    assert _lang(page) == "en" and "My progress" in page.get_data(as_text=True)

    client.post("/locale", data={"lt": token, "locale": "nn", "next": "/app/participant"}, base_url=TOOL)
    page = open_page(client, "/app/participant", token)
    assert _lang(page) == "nn" and "Min framdrift" in page.get_data(as_text=True)


def test_bad_choices_are_refused_and_change_nothing(app: Flask, driver: Any, linked: None, client: FlaskClient) -> None:
    token = launch_token(driver.launch("deltaker").get_data(as_text=True))
    assert client.post("/locale", data={"lt": token, "locale": "de"}, base_url=TOOL).status_code == 400
    assert client.post("/locale", data={"locale": "en"}, base_url=TOOL).status_code == 401
    assert client.post("/locale", data={"lt": "forged.token", "locale": "en"}, base_url=TOOL).status_code == 401
    assert _launch_locale(app, token) == "nb"
    away = client.post("/locale", data={"lt": token, "locale": "en", "next": "//evil.example/x"}, base_url=TOOL)
    body = BeautifulSoup(away.get_data(as_text=True), "html.parser").body
    assert away.status_code == 200 and body["data-resume-to"] == "/"  # never another site


def test_outside_canvas_the_choice_is_a_cookie(client: FlaskClient) -> None:
    resp = client.get("/locale/nn", query_string={"next": "/verify"}, base_url=TOOL)
    assert resp.status_code == 303 and resp.headers["Location"] == "/verify"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("kp_lang=nn") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert _lang(client.get("/verify", base_url=TOOL)) == "nn"
    assert client.get("/locale/xx", base_url=TOOL).status_code == 404
    elsewhere = client.get("/locale/en", query_string={"next": "https://evil.example/"}, base_url=TOOL)
    assert elsewhere.headers["Location"] == "/"
