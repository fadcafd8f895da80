"""Fixtures for the Canvas simulator tests.

RSA keys are generated once per session: key generation dominates runtime otherwise.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

# The venv's editable install was generated while canvas_sim/ was still empty, so its
# finder registers `canvas_sim` as a *namespace* package. With --import-mode=importlib
# the repo root is not on sys.path and that namespace shadows the real package
# (`from canvas_sim import SimConfig` fails). Put the repo root first until the
# editable install is regenerated.
_ROOT = str(Path(__file__).resolve().parents[3])
if getattr(sys.modules.get("canvas_sim"), "__file__", "") is None:
    del sys.modules["canvas_sim"]
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from canvas_sim import SimConfig, SimPlatform, create_sim_app  # noqa: E402
from canvas_sim.keys import private_pem, public_jwk  # noqa: E402

TOOL_KID = "tool-key-1"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
AGS_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
AGS_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


@pytest.fixture(scope="session")
def platform_pem() -> bytes:
    return private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def tool_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_fetches() -> list[str]:
    return []


@pytest.fixture
def config(platform_pem: bytes, tool_key: rsa.RSAPrivateKey, jwks_fetches: list[str]) -> SimConfig:
    def fetch(url: str) -> dict[str, Any]:
        jwks_fetches.append(url)
        return {"keys": [public_jwk(tool_key, TOOL_KID)]}

    return SimConfig(private_key_pem=platform_pem, tool_jwks_fetcher=fetch)


@pytest.fixture
def platform(config: SimConfig) -> SimPlatform:
    return SimPlatform(config)


@pytest.fixture
def app(platform: SimPlatform) -> Flask:
    return create_sim_app(platform=platform)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


ClientAssertion = Callable[..., str]


@pytest.fixture
def client_assertion(tool_key: rsa.RSAPrivateKey, config: SimConfig) -> ClientAssertion:
    """Build a tool client assertion; keyword overrides replace claims (None removes one)."""

    def make(*, key: Any = None, kid: str = TOOL_KID, alg: str = "RS256", **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": config.client_id,
            "sub": config.client_id,
            "aud": config.token_url,
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key or tool_key, alg, headers={"kid": kid})

    return make


@pytest.fixture
def token_form(client_assertion: ClientAssertion) -> Callable[..., dict[str, str]]:
    def make(scope: str = NRPS_SCOPE, **assertion_overrides: Any) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion(**assertion_overrides),
            "scope": scope,
        }

    return make
