"""The pages anyone may open outside Canvas: the tool's start page (what it is, where each role goes; the Canvas
simulator in development), the accessibility statement, the favicon, and the request log's one line a request."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient

from lti_tool import create_app
from tests.support.lti import TOOL


def _page(resp: Any) -> BeautifulSoup:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def test_the_root_says_what_the_tool_is_and_where_each_role_goes(client: FlaskClient) -> None:
    resp = client.get("/", base_url=TOOL, headers={"Accept-Language": "nb"})
    assert resp.status_code == 200
    soup = _page(resp)
    assert soup.html["lang"] == "nb" and "Kurspakke" in soup.h1.get_text()
    links = {a["href"] for a in soup.find_all("a")}
    assert {"/signin", "/order", "/verify", "/accessibility"} <= links
    assert "Lindrende behandling og omsorg ved livets slutt" in soup.get_text()
    assert soup.find(id="dev-heading") is None  # the simulator is only mentioned in development
    english = _page(client.get("/", base_url=TOOL, headers={"Accept-Language": "en"}))
    assert english.html["lang"] == "en" and "Where do I go?" in english.get_text()


def test_in_development_the_root_points_to_the_canvas_simulator(app_settings: dict[str, Any]) -> None:
    settings = {**app_settings, "env": "development", "base_url": "http://127.0.0.1:5000"}
    dev = create_app({"settings": settings, "environ": {}})
    try:
        soup = _page(dev.test_client().get("/", base_url=TOOL))
    finally:
        dev.extensions["kurspakke"].engine.dispose()
    section = soup.find("section", attrs={"aria-labelledby": "dev-heading"})
    assert section is not None and section.find("a")["href"] == "http://127.0.0.1:5001/"


def test_the_accessibility_statement_names_the_standard_the_contact_and_the_authority(client: FlaskClient) -> None:
    resp = client.get("/accessibility", base_url=TOOL, headers={"Accept-Language": "nb"})
    assert resp.status_code == 200
    text = " ".join(_page(resp).get_text(" ").split())
    assert "Tilgjengelighetserklæring" in text and "WCAG 2.1" in text and "uutilsynet.no" in text
    mails = {a["href"] for a in _page(resp).find_all("a") if a["href"].startswith("mailto:")}
    assert mails  # every programme's contact


def test_the_favicon_is_served(client: FlaskClient) -> None:
    resp = client.get("/favicon.ico", base_url=TOOL)
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml" and b"<svg" in resp.data


def test_a_request_is_one_log_line_with_its_method_path_and_status(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    from lti_tool.logs import PlainFormatter

    with caplog.at_level(logging.INFO, logger="kurspakke"):
        client.get("/verify?x=secret-token", base_url=TOOL)
    lines = [PlainFormatter().format(r) for r in caplog.records if r.getMessage() == "request"]
    assert len(lines) == 1
    assert "method=GET" in lines[0] and "path=/verify" in lines[0] and "status=200" in lines[0]
    assert "secret-token" not in lines[0]  # never the query string
