"""The launch page, /sim/start and the JWKS endpoint."""

from __future__ import annotations

from urllib.parse import urlencode

import jwt
from bs4 import BeautifulSoup, Tag
from flask import Flask
from flask.testing import FlaskClient

from canvas_sim import DEMO_USERS, SimConfig, SimPlatform, create_sim_app


def soup_of(client: FlaskClient, url: str) -> BeautifulSoup:
    resp = client.get(url)
    assert resp.status_code == 200, resp.data
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def focusable(tag: Tag) -> bool:
    if tag.name in ("button", "select", "textarea", "iframe"):
        return tag.name != "iframe" or not tag.has_attr("hidden")
    return (tag.name == "input" and tag.get("type") != "hidden") or (tag.name == "a" and tag.has_attr("href"))


def test_factory_exposes_platform(app: Flask, platform: SimPlatform) -> None:
    assert app.extensions["canvas_sim"] is platform
    fresh = create_sim_app()
    assert isinstance(fresh.extensions["canvas_sim"], SimPlatform)


def test_launch_page_structure(client: FlaskClient) -> None:
    soup = soup_of(client, "/")
    assert soup.html is not None and soup.html["lang"] == "nb"
    assert soup.title is not None and soup.title.string == "Canvas-simulator"
    assert len(soup.find_all("h1")) == 1
    for landmark in ("header", "nav", "main"):
        el = soup.find(landmark)
        assert isinstance(el, Tag)
        assert el.get("aria-label") or el.get("aria-labelledby"), landmark

    # The language form's button is for browsers without script only.
    buttons = [b.get_text(strip=True) for b in soup.find_all("button") if not b.find_parent("noscript")]
    assert buttons == [
        "Start som deltaker",
        "Start som mentor",
        "Start som lisensadministrator",
        "Start som kurseier",
        "Legg til lenker (dyplenking) som kurseier",
    ]
    start_forms = soup.find_all("form", target=True)
    assert len(start_forms) == 5
    for form in start_forms:
        assert form["target"] == "tool_frame"
        assert form["action"] == "/sim/start"
        assert form.get("method", "get").lower() == "get"
    # The deep-linking start is the navigation's last control: Tab goes from it into the tool's frame.
    dl_form = soup.find_all("form")[-1]
    hidden = {i["name"]: i["value"] for i in dl_form.find_all("input", type="hidden")}
    assert hidden == {"user": "kurseier", "message_type": "LtiDeepLinkingRequest", "locale": "nb"}
    stops = soup.find_all(focusable)
    assert stops[stops.index(dl_form.find("button")) + 1] is soup.find("iframe", attrs={"name": "tool_frame"})

    frame = soup.find("iframe")
    assert isinstance(frame, Tag)
    assert frame["name"] == "tool_frame"
    assert frame.get("title")

    scripts = soup.find_all("script")
    assert all(s.get("src") for s in scripts), "no inline scripts"
    storage = soup.find("script", src="/static/platform_storage.js")
    assert isinstance(storage, Tag)
    assert storage["data-tool-origin"] == "http://127.0.0.1:5000"


def test_launch_page_csp_forbids_inline_script(client: FlaskClient) -> None:
    csp = client.get("/").headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["script-src"] == ["'self'"]
    assert "http://127.0.0.1:5000" in directives["frame-src"]
    assert "http://127.0.0.1:5000" in directives["form-action"]


def test_static_js_served(client: FlaskClient) -> None:
    for name in ("platform_storage.js", "autosubmit.js"):
        resp = client.get(f"/static/{name}")
        assert resp.status_code == 200
        assert "javascript" in resp.mimetype
        resp.close()


def test_sim_start_autoposts_login_initiation(client: FlaskClient, platform: SimPlatform) -> None:
    soup = soup_of(client, "/sim/start?" + urlencode({"user": "mentor", "view": "oversikt"}))
    form = soup.find("form")
    assert isinstance(form, Tag)
    assert form["method"] == "post"
    assert form["action"] == "http://127.0.0.1:5000/lti/login"
    assert form.has_attr("data-autosubmit")
    fields = {i["name"]: i["value"] for i in form.find_all("input", type="hidden")}
    assert fields["iss"] == platform.issuer
    assert fields["login_hint"] == "mentor"
    assert fields["client_id"] == "10000000000001"
    assert fields["lti_deployment_id"] == "1:kurspakke-sim"
    assert fields["target_link_uri"] == "http://127.0.0.1:5000/lti/launch"
    assert fields["lti_storage_target"] == "_parent"
    noscript = form.find("noscript")
    assert isinstance(noscript, Tag) and noscript.find("button") is not None
    assert soup.find("script", src="/static/autosubmit.js") is not None

    # The view travels to the id_token as a custom parameter.
    _, out = platform.authorize(
        {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": str(fields["client_id"]),
            "redirect_uri": "http://127.0.0.1:5000/lti/launch",
            "login_hint": str(fields["login_hint"]),
            "lti_message_hint": str(fields["lti_message_hint"]),
            "nonce": "n",
            "state": "s",
        }
    )
    claims = jwt.decode(out["id_token"], options={"verify_signature": False})
    assert claims["https://purl.imsglobal.org/spec/lti/claim/custom"]["kurspakke_view"] == "oversikt"


def test_sim_start_unknown_user_400(client: FlaskClient) -> None:
    assert client.get("/sim/start?user=ukjent").status_code == 400
    assert client.get("/sim/start?user=deltaker&message_type=Bogus").status_code == 400


def test_jwks_endpoint_and_counter(client: FlaskClient, platform: SimPlatform) -> None:
    assert platform.jwks_requests == 0
    resp = client.get("/api/lti/security/jwks")
    assert resp.status_code == 200
    (key,) = resp.get_json()["keys"]
    assert set(key) == {"kty", "n", "e", "kid", "alg", "use"}
    assert key["kid"] == platform.kid and key["alg"] == "RS256" and key["use"] == "sig"
    assert "d" not in key
    client.get("/api/lti/security/jwks")
    assert platform.jwks_requests == 2
    token = platform.id_token_for("deltaker", nonce="n")
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=platform.config.client_id)
    assert claims["sub"] == DEMO_USERS[0].sub


def test_kid_is_stable_for_a_given_key_and_overridable(platform_pem: bytes) -> None:
    a = SimPlatform(SimConfig(private_key_pem=platform_pem))
    b = SimPlatform(SimConfig(private_key_pem=platform_pem))
    assert a.kid == b.kid
    assert SimPlatform(SimConfig(private_key_pem=platform_pem, kid="k1")).jwks()["keys"][0]["kid"] == "k1"


def test_issuer_defaults_and_override() -> None:
    assert SimConfig(base_url="http://sim:8080").effective_issuer == "http://sim:8080"
    assert SimConfig(issuer="https://canvas.test").effective_issuer == "https://canvas.test"
