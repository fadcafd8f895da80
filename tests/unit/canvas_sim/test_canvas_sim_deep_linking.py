"""Receiving LtiDeepLinkingResponse JWTs from the tool."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from bs4 import BeautifulSoup
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient

from canvas_sim import SimAuthError, SimPlatform

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
LTI = "https://purl.imsglobal.org/spec/lti/claim/"
URL = "/courses/1/deep_linking_response"


def request_data(platform: SimPlatform) -> str:
    claims = platform.claims_for("kurseier", nonce="n", message_type="LtiDeepLinkingRequest")
    return str(claims[DL + "deep_linking_settings"]["data"])


def response_jwt(
    platform: SimPlatform, tool_key: rsa.RSAPrivateKey, *, key: Any = None, kid: str = "tool-key-1", **over: Any
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": platform.config.client_id,
        "aud": platform.issuer,
        "iat": now,
        "exp": now + 300,
        "nonce": str(uuid.uuid4()),
        LTI + "message_type": "LtiDeepLinkingResponse",
        LTI + "version": "1.3.0",
        LTI + "deployment_id": platform.config.deployment_id,
        DL + "data": request_data(platform),
        DL + "content_items": [
            {"type": "ltiResourceLink", "title": "Modul 1: Smertelindring", "url": "http://127.0.0.1:5000/lti/launch"},
            {"type": "ltiResourceLink", "title": "Modul 2: Pårørende", "url": "http://127.0.0.1:5000/lti/launch"},
        ],
        DL + "msg": "To lenker lagt til",
    }
    claims.update(over)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key or tool_key, "RS256", headers={"kid": kid})


def test_accepts_valid_response(client: FlaskClient, platform: SimPlatform, tool_key: rsa.RSAPrivateKey) -> None:
    resp = client.post(URL, data={"JWT": response_jwt(platform, tool_key)})
    assert resp.status_code == 200
    soup = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    assert soup.html is not None and soup.html["lang"] == "nb"
    assert [li.get_text() for li in soup.select("ul li")] == ["Modul 1: Smertelindring", "Modul 2: Pårørende"]
    assert "To lenker lagt til" in soup.get_text()
    assert len(platform.deep_link_responses) == 1
    assert platform.deep_link_responses[0][DL + "content_items"][0]["title"] == "Modul 1: Smertelindring"


BAD: list[tuple[str, dict[str, Any]]] = [
    ("wrong iss", {"iss": "someone-else"}),
    ("wrong aud", {"aud": "https://canvas.instructure.com"}),
    ("wrong message type", {LTI + "message_type": "LtiResourceLinkRequest"}),
    ("wrong version", {LTI + "version": "1.1"}),
    ("wrong deployment", {LTI + "deployment_id": "2:other"}),
    ("no nonce", {"nonce": None}),
    ("expired", {"exp": int(time.time()) - 5}),
    ("no data echoed", {DL + "data": None}),
    ("forged data", {DL + "data": "not-our-data"}),
    ("unknown kid", {"kid": "other"}),
]


@pytest.mark.parametrize(("case", "over"), BAD, ids=[b[0] for b in BAD])
def test_refuses_bad_response(
    client: FlaskClient, platform: SimPlatform, tool_key: rsa.RSAPrivateKey, case: str, over: dict[str, Any]
) -> None:
    token = response_jwt(platform, tool_key, **over)
    with pytest.raises(SimAuthError):
        platform.receive_deep_link_response(token)
    resp = client.post(URL, data={"JWT": token})
    assert resp.status_code == 400
    assert platform.deep_link_responses == []


def test_refuses_wrong_signature_and_missing_jwt(
    client: FlaskClient, platform: SimPlatform, tool_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    assert client.post(URL, data={"JWT": response_jwt(platform, tool_key, key=other_key)}).status_code == 400
    assert client.post(URL, data={}).status_code == 400
    assert client.post(URL, data={"JWT": "garbage"}).status_code == 400
    assert platform.deep_link_responses == []


def test_aud_list_accepted(client: FlaskClient, platform: SimPlatform, tool_key: rsa.RSAPrivateKey) -> None:
    token = response_jwt(platform, tool_key, aud=[platform.issuer, "x"])
    assert client.post(URL, data={"JWT": token}).status_code == 200
