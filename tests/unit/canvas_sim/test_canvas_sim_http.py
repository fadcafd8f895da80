"""Over a real socket: the default JWKS fetcher (requests) and the token endpoint together."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify
from werkzeug.serving import BaseWSGIServer, make_server

from canvas_sim import SimConfig, create_sim_app
from canvas_sim.keys import public_jwk


def _serve(app: Flask) -> tuple[BaseWSGIServer, threading.Thread]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def tool_jwks_url(tool_key: rsa.RSAPrivateKey) -> Iterator[str]:
    tool = Flask("fake_tool")
    tool.add_url_rule("/lti/jwks", "jwks", lambda: jsonify({"keys": [public_jwk(tool_key, "live-kid")]}))
    server, thread = _serve(tool)
    yield f"http://127.0.0.1:{server.server_port}/lti/jwks"
    server.shutdown()
    server.server_close()
    thread.join()


def test_token_endpoint_fetches_tool_jwks_over_http(
    platform_pem: bytes, tool_key: rsa.RSAPrivateKey, tool_jwks_url: str
) -> None:
    # Bind first so base_url (and thus the token aud) carries the real port.
    server = make_server("127.0.0.1", 0, Flask("placeholder"), threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app = create_sim_app(SimConfig(base_url=base, private_key_pem=platform_pem, tool_jwks_url=tool_jwks_url))
    server.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": "10000000000001",
                "sub": "10000000000001",
                "aud": f"{base}/login/oauth2/token",
                "iat": now,
                "exp": now + 60,
                "jti": str(uuid.uuid4()),
            },
            tool_key,
            "RS256",
            headers={"kid": "live-kid"},
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
            "scope": "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
        }
        with requests.Session() as http:
            resp = http.post(f"{base}/login/oauth2/token", data=form, timeout=10)
            assert resp.status_code == 200, resp.text
            token = resp.json()["access_token"]
            nrps = http.get(
                f"{base}/api/lti/courses/1/names_and_roles",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert nrps.status_code == 200
            assert len(nrps.json()["members"]) == 4
            jwks = http.get(f"{base}/api/lti/security/jwks", timeout=10).json()
            assert jwks["keys"][0]["kid"] == app.extensions["canvas_sim"].kid
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
