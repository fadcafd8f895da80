"""client_credentials token endpoint with a JWT client assertion (LTI Advantage security)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from canvas_sim import SimAuthError, SimPlatform

NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"

TokenForm = Callable[..., dict[str, str]]


def test_accepts_valid_assertion(platform: SimPlatform, token_form: TokenForm, jwks_fetches: list[str]) -> None:
    result = platform.issue_access_token(token_form(scope=f"{NRPS} {SCORE}"))
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3600
    assert result["scope"] == f"{NRPS} {SCORE}"
    assert result["access_token"]
    assert platform.token_requests == 1
    assert jwks_fetches == ["http://127.0.0.1:5000/lti/jwks"]
    tok = platform.check_bearer(f"Bearer {result['access_token']}", NRPS)
    assert tok.client_id == "10000000000001"


def test_aud_may_be_a_list(platform: SimPlatform, token_form: TokenForm) -> None:
    form = token_form(aud=["http://other.example", "http://127.0.0.1:5001/login/oauth2/token"])
    assert platform.issue_access_token(form)["access_token"]


def test_http_endpoint_success_and_counter(client: FlaskClient, platform: SimPlatform, token_form: TokenForm) -> None:
    resp = client.post("/login/oauth2/token", data=token_form())
    assert resp.status_code == 200
    assert resp.json is not None and resp.json["scope"] == NRPS
    assert resp.headers["Cache-Control"] == "no-store"
    resp2 = client.post("/login/oauth2/token", data=token_form())
    assert resp2.status_code == 200
    assert platform.token_requests == 2


BAD_ASSERTIONS: list[tuple[str, dict[str, Any]]] = [
    ("wrong aud", {"aud": "http://127.0.0.1:5001/wrong"}),
    ("wrong iss", {"iss": "other-client"}),
    ("wrong sub", {"sub": "other-client"}),
    # Times as offsets from the moment the test runs (collection may be many minutes earlier in a long run).
    ("expired", {"exp": -10, "iat": -400}),
    ("iat in future", {"iat": 600, "exp": 900}),
    ("missing jti", {"jti": None}),
    ("missing exp", {"exp": None}),
    ("unknown kid", {"kid": "no-such-kid"}),
]


@pytest.mark.parametrize(("case", "overrides"), BAD_ASSERTIONS, ids=[b[0] for b in BAD_ASSERTIONS])
def test_refuses_bad_assertion(
    client: FlaskClient, platform: SimPlatform, token_form: TokenForm, case: str, overrides: dict[str, Any]
) -> None:
    now = int(time.time())
    overrides = {k: now + v if k in ("exp", "iat") and isinstance(v, int) else v for k, v in overrides.items()}
    with pytest.raises(SimAuthError) as exc:
        platform.issue_access_token(token_form(**overrides))
    assert exc.value.error == "invalid_grant"
    resp = client.post("/login/oauth2/token", data=token_form(**overrides))
    assert resp.status_code == 400
    assert resp.json is not None and resp.json["error"] == "invalid_grant"
    assert resp.json["error_description"]
    assert platform.token_requests == 0
    assert not platform.access_tokens


def test_refuses_signature_by_other_key(platform: SimPlatform, token_form: TokenForm, other_key: Any) -> None:
    with pytest.raises(SimAuthError, match="ugyldig JWT"):
        platform.issue_access_token(token_form(key=other_key))


def test_refuses_hs256(platform: SimPlatform, token_form: TokenForm) -> None:
    with pytest.raises(SimAuthError, match="RS256"):
        platform.issue_access_token(token_form(key="x" * 32, alg="HS256"))


def test_refuses_reused_jti(platform: SimPlatform, token_form: TokenForm) -> None:
    form = token_form(jti="same-jti")
    platform.issue_access_token(form)
    with pytest.raises(SimAuthError, match="jti"):
        platform.issue_access_token(token_form(jti="same-jti"))
    assert platform.token_requests == 1


@pytest.mark.parametrize(
    ("scope", "error"),
    [
        ("", "invalid_scope"),
        ("openid", "invalid_scope"),
        (f"{NRPS} https://purl.imsglobal.org/spec/lti-ags/scope/everything", "invalid_scope"),
    ],
)
def test_refuses_bad_scope(client: FlaskClient, token_form: TokenForm, scope: str, error: str) -> None:
    resp = client.post("/login/oauth2/token", data=token_form(scope=scope))
    assert resp.status_code == 400
    assert resp.json is not None and resp.json["error"] == error


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("grant_type", "authorization_code", "unsupported_grant_type"),
        ("client_assertion_type", "urn:other", "invalid_request"),
        ("client_assertion", "", "invalid_request"),
    ],
)
def test_refuses_bad_form(client: FlaskClient, token_form: TokenForm, field: str, value: str, error: str) -> None:
    form = token_form()
    form[field] = value
    resp = client.post("/login/oauth2/token", data=form)
    assert resp.status_code == 400
    assert resp.json is not None and resp.json["error"] == error


def test_jwks_fetch_failure_is_invalid_grant(platform: SimPlatform, token_form: TokenForm) -> None:
    def broken(url: str) -> dict[str, Any]:
        raise ConnectionError("tool down")

    platform.config.tool_jwks_fetcher = broken
    with pytest.raises(SimAuthError, match="JWKS") as exc:
        platform.issue_access_token(token_form())
    assert exc.value.error == "invalid_grant"


def test_bearer_checks(platform: SimPlatform, token_form: TokenForm) -> None:
    token = platform.issue_access_token(token_form(scope=SCORE))["access_token"]
    with pytest.raises(SimAuthError):
        platform.check_bearer(f"Bearer {token}", NRPS)  # wrong scope
    with pytest.raises(SimAuthError):
        platform.check_bearer("Bearer nope", SCORE)
    with pytest.raises(SimAuthError):
        platform.check_bearer(token, SCORE)  # no scheme
    assert platform.check_bearer(f"Bearer {token}", SCORE, LINEITEM).token == token


def test_access_token_expires(platform: SimPlatform, token_form: TokenForm) -> None:
    now = [time.time()]
    platform.clock = lambda: now[0]
    token = platform.issue_access_token(token_form())["access_token"]
    now[0] += 3601
    with pytest.raises(SimAuthError, match="utløpt"):
        platform.check_bearer(f"Bearer {token}", NRPS)
