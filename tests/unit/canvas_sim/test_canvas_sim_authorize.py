"""OIDC login initiation + authorize: the platform half of the LTI 1.3 launch."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from bs4 import BeautifulSoup
from flask.testing import FlaskClient

from canvas_sim import DEMO_USERS, SimAuthError, SimConfig, SimPlatform

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
TA_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


def auth_request(platform: SimPlatform, user: str = "deltaker", **kw: str) -> dict[str, str]:
    """What a tool sends to /api/lti/authorize_redirect after receiving the login initiation."""
    message_type = kw.pop("message_type", "LtiResourceLinkRequest")
    login = platform.login_initiation_params(user, message_type=message_type)
    params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": login["client_id"],
        "redirect_uri": platform.config.tool_launch_url,
        "login_hint": login["login_hint"],
        "lti_message_hint": login["lti_message_hint"],
        "nonce": "nonce-123",
        "state": "state-abc",
    }
    params.update(kw)
    return params


def verify(platform: SimPlatform, token: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    (jwk,) = [k for k in platform.jwks()["keys"] if k["kid"] == header["kid"]]
    key = jwt.PyJWK(jwk).key
    return jwt.decode(token, key, algorithms=["RS256"], audience=platform.config.client_id, issuer=platform.issuer)


def test_login_initiation_params(platform: SimPlatform) -> None:
    p = platform.login_initiation_params("mentor")
    assert p["iss"] == "http://127.0.0.1:5001"
    assert p["login_hint"] == "mentor"
    assert p["target_link_uri"] == "http://127.0.0.1:5000/lti/launch"
    assert p["client_id"] == "10000000000001"
    assert p["lti_deployment_id"] == "1:kurspakke-sim"
    assert p["lti_storage_target"] == "_parent"
    assert p["canvas_environment"] == "prod"
    assert p["lti_message_hint"]


def test_storage_target_omitted_when_disabled(platform_pem: bytes) -> None:
    p = SimPlatform(SimConfig(private_key_pem=platform_pem, storage_target=None))
    assert "lti_storage_target" not in p.login_initiation_params("deltaker")


def test_authorize_returns_verifiable_id_token(platform: SimPlatform) -> None:
    redirect_uri, form = platform.authorize(auth_request(platform, "kurseier"))
    assert redirect_uri == "http://127.0.0.1:5000/lti/launch"
    assert form["state"] == "state-abc"
    claims = verify(platform, form["id_token"])
    kurseier = next(u for u in DEMO_USERS if u.key == "kurseier")

    assert claims["aud"] == "10000000000001"  # a string, like Canvas
    assert claims["azp"] == "10000000000001"
    assert claims["sub"] == kurseier.sub
    assert claims["nonce"] == "nonce-123"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["name"] == kurseier.name
    assert claims["email"] == kurseier.email
    assert claims["locale"] == "nb"
    assert claims[LTI + "message_type"] == "LtiResourceLinkRequest"
    assert claims[LTI + "version"] == "1.3.0"
    assert claims[LTI + "deployment_id"] == "1:kurspakke-sim"
    assert claims[LTI + "target_link_uri"] == "http://127.0.0.1:5000/lti/launch"
    assert claims[LTI + "resource_link"]["id"] == "sim-link-1"
    assert claims[LTI + "roles"] == [
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor",
    ]
    assert claims[LTI + "context"] == {
        "id": "sim-course-1",
        "label": platform.config.course_label,
        "title": "Lindrende behandling og omsorg ved livets slutt",
        "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
    }
    tp = claims[LTI + "tool_platform"]
    assert tp["name"] == "Canvas-simulator" and tp["product_family_code"] == "canvas"
    assert tp["guid"] == platform.config.platform_guid
    assert claims[LTI + "launch_presentation"]["document_target"] == "iframe"
    assert claims[LTI + "custom"] == {"canvas_user_id": "104", "canvas_course_id": "1"}
    assert "course_offering_sourcedid" in claims[LTI + "lis"]
    nrps = claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"]
    assert nrps == {
        "context_memberships_url": "http://127.0.0.1:5001/api/lti/courses/1/names_and_roles",
        "service_versions": ["2.0"],
    }
    ags = claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
    assert ags["lineitems"] == "http://127.0.0.1:5001/api/lti/courses/1/line_items"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in ags["scope"]
    assert "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings" not in claims


def test_mentor_is_teaching_assistant_not_instructor(platform: SimPlatform) -> None:
    _, form = platform.authorize(auth_request(platform, "mentor"))
    roles = verify(platform, form["id_token"])[LTI + "roles"]
    assert roles == ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor", TA_ROLE]


def test_custom_params_travel_through_message_hint(platform: SimPlatform) -> None:
    login = platform.login_initiation_params("deltaker", custom={"kurspakke_view": "oversikt"})
    params = auth_request(platform, lti_message_hint=login["lti_message_hint"])
    _, form = platform.authorize(params)
    custom = verify(platform, form["id_token"])[LTI + "custom"]
    assert custom == {"canvas_user_id": "101", "canvas_course_id": "1", "kurspakke_view": "oversikt"}


def test_deep_linking_request_claims(platform: SimPlatform) -> None:
    _, form = platform.authorize(auth_request(platform, "kurseier", message_type="LtiDeepLinkingRequest"))
    claims = verify(platform, form["id_token"])
    assert claims[LTI + "message_type"] == "LtiDeepLinkingRequest"
    assert LTI + "resource_link" not in claims
    dl = claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"]
    assert dl["deep_link_return_url"] == "http://127.0.0.1:5001/courses/1/deep_linking_response"
    assert dl["accept_types"] == ["ltiResourceLink"]
    assert dl["accept_presentation_document_targets"] == ["iframe", "window"]
    assert dl["accept_multiple"] is True and dl["auto_create"] is True
    assert dl["data"]


BAD_PARAMS = [
    ("scope", "openid profile"),
    ("response_type", "code"),
    ("response_mode", "query"),
    ("prompt", "login"),
    ("client_id", "999"),
    ("redirect_uri", "http://evil.example/launch"),
    ("login_hint", "ukjent"),
    ("login_hint", "mentor"),  # known user, but the message hint was issued for deltaker
    ("nonce", ""),
    ("state", ""),
    ("lti_message_hint", "tampered"),
]


@pytest.mark.parametrize(("name", "value"), BAD_PARAMS)
def test_authorize_refuses_bad_parameter(platform: SimPlatform, name: str, value: str) -> None:
    with pytest.raises(SimAuthError):
        platform.authorize(auth_request(platform, **{name: value}))


@pytest.mark.parametrize("name", ["scope", "response_type", "nonce", "state", "lti_message_hint"])
def test_authorize_refuses_missing_parameter(platform: SimPlatform, name: str) -> None:
    params = auth_request(platform)
    del params[name]
    with pytest.raises(SimAuthError, match=name):
        platform.authorize(params)


def test_message_hint_from_other_platform_key_is_refused(platform: SimPlatform) -> None:
    stranger = SimPlatform(SimConfig())  # fresh key, same issuer
    login = stranger.login_initiation_params("deltaker")
    with pytest.raises(SimAuthError, match="lti_message_hint"):
        platform.authorize(auth_request(platform, lti_message_hint=login["lti_message_hint"]))


def test_authorize_http_form_post(client: FlaskClient, platform: SimPlatform) -> None:
    resp = client.get("/api/lti/authorize_redirect?" + urlencode(auth_request(platform)))
    assert resp.status_code == 200
    soup = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    form = soup.find("form")
    assert form is not None
    assert form["method"] == "post"
    assert form["action"] == "http://127.0.0.1:5000/lti/launch"
    fields = {i["name"]: i["value"] for i in form.find_all("input", type="hidden")}
    assert fields["state"] == "state-abc"
    assert verify(platform, str(fields["id_token"]))["nonce"] == "nonce-123"
    assert soup.find("script", src="/static/autosubmit.js") is not None
    assert form.find("noscript").find("button") is not None
    assert not [s for s in soup.find_all("script") if not s.get("src")], "no inline scripts"


def test_authorize_http_post_body_is_accepted(client: FlaskClient, platform: SimPlatform) -> None:
    resp = client.post("/api/lti/authorize_redirect", data=auth_request(platform))
    assert resp.status_code == 200
    assert b'name="id_token"' in resp.data


@pytest.mark.parametrize(("name", "value"), BAD_PARAMS)
def test_authorize_http_refuses_with_400(client: FlaskClient, platform: SimPlatform, name: str, value: str) -> None:
    resp = client.get("/api/lti/authorize_redirect?" + urlencode(auth_request(platform, **{name: value})))
    assert resp.status_code == 400
    assert resp.mimetype == "text/html"
    assert b'name="id_token"' not in resp.data
    assert name in resp.get_data(as_text=True), "the error page names the offending parameter"


def test_id_token_for_and_sign_with_foreign_key_fails_verification(platform: SimPlatform, other_key: Any) -> None:
    good = platform.id_token_for("deltaker", nonce="n")
    assert verify(platform, good)["sub"] == DEMO_USERS[0].sub
    bad = platform.sign(platform.claims_for("deltaker", nonce="n"), key=other_key)
    assert jwt.get_unverified_header(bad)["kid"] == platform.kid
    with pytest.raises(jwt.InvalidSignatureError):
        verify(platform, bad)
    no_kid = platform.sign({"a": 1}, kid=None)
    assert "kid" not in jwt.get_unverified_header(no_kid)
