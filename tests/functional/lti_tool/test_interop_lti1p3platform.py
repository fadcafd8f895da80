"""Interoperability with an LTI 1.3 platform nobody here wrote: PyPI ``lti1p3platform`` (0.1.8).

The library plays the platform with its own RSA key, issuer, client id and deployment id: it builds the OIDC login
initiation, validates the tool's authorization request and signs the resource-link launch (id_token). The tool takes
each step over its real HTTP handlers (GET /lti/login, POST /lti/launch) and verifies the library's id_token with the
key set the library publishes. Only the library's core modules are used, not its framework adapters.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from bs4 import BeautifulSoup
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import MessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request, TRequest
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.models import (
    CourseLink,
    IdentityKind,
    LaunchRecord,
    PersonIdentity,
    ProgrammeRoleKind,
    UnlicensedLaunch,
)
from kurspakke.services.keys import ensure_key
from kurspakke.services.platforms import add_platform
from lti_tool import create_app
from lti_tool.lti.oidc_login import binding_name, binding_proof, state_binding
from tests.conftest import SECRET
from tests.support.factories import PROGRAMME, organisation

TOOL = "https://kurspakke.test"
TOOL_LOGIN_URL = TOOL + "/lti/login"
TOOL_LAUNCH_URL = TOOL + "/lti/launch"
TOOL_JWKS_URL = TOOL + "/lti/jwks"

LMS = "https://lms.interop.test"
ISSUER = LMS
CLIENT_ID = "interop-client-4711"
DEPLOYMENT_ID = "interop-deployment-1"
AUTH_URL = LMS + "/lti/authorize"
TOKEN_URL = LMS + "/lti/token"
KEY_SET_URL = LMS + "/jwks"

CONTEXT_ID = "interop-course-42"
CONTEXT_TITLE = "Lindrende behandling (interop)"
PLATFORM_GUID = "interop-lms-instance-7"

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
INSTRUCTOR = LIS + "membership#Instructor"
LEARNER = LIS + "membership#Learner"


@dataclass(frozen=True)
class LmsUser:
    user_id: str
    name: str
    email: str
    roles: tuple[str, ...]


INSTRUCTOR_USER = LmsUser("lms-user-100", "Ingrid Instruktør", "ingrid.instruktor@interop.test", (INSTRUCTOR,))
LEARNER_USER = LmsUser("lms-user-200", "Lars Lærling", "lars.laerling@interop.test", (LEARNER,))


# --- The platform, built from lti1p3platform's core classes ---------------------------------------------------------


class InteropPlatformConf(LTI1P3PlatformConfAbstract):
    """The platform's storage: one registration of the tool, holding the platform's own key pair."""

    def init_platform_config(self, **kwargs: Any) -> None:
        self._private_key_pem: str = kwargs["private_key_pem"]
        self._public_key_pem: str = kwargs["public_key_pem"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        return (
            Registration()
            .set_iss(ISSUER)
            .set_client_id(CLIENT_ID)
            .set_deployment_id(DEPLOYMENT_ID)
            .set_oidc_login_url(TOOL_LOGIN_URL)
            .set_launch_url(TOOL_LAUNCH_URL)
            .set_tool_key_set_url(TOOL_JWKS_URL)
            .set_platform_private_key(self._private_key_pem)
            .set_platform_public_key(self._public_key_pem)
        )


class InteropOIDCLogin(OIDCLoginAbstract):
    """Third-party initiated login: the preflight URL is what the platform's browser redirect would open."""

    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str) -> str:
        return url


class AuthorizationRequest(Request):
    """The browser's GET on the platform's authorize endpoint, as the library's request abstraction."""

    def build_metadata(self, request: Any) -> TRequest:
        parts = urlsplit(str(request))
        return {
            "method": "GET",
            "form_data": {},
            "get_data": dict(parse_qsl(parts.query, keep_blank_values=True)),
            "headers": {},
            "content_type": None,
            "path": parts.path,
            "json": None,
        }


@dataclass
class PendingLaunch:
    """What the platform meant to launch when it started the login (keyed by lti_message_hint)."""

    user: LmsUser
    tool_platform: bool = False
    resource_link: bool = True


class InteropMessageLaunch(MessageLaunchAbstract):
    """Answers the tool's authorization request with a signed LtiResourceLinkRequest."""

    def __init__(
        self, request: AuthorizationRequest, conf: InteropPlatformConf, pending: dict[str, PendingLaunch]
    ) -> None:
        super().__init__(request, conf)
        self.conf = conf
        self.pending = pending

    def prepare_launch(self, preflight_response: dict[str, Any]) -> None:
        # What an OIDC provider checks beyond the library's own validation (nonce, state, client_id present).
        assert preflight_response.get("scope") == "openid"
        assert preflight_response.get("response_type") == "id_token"
        assert preflight_response.get("response_mode") == "form_post"
        assert preflight_response.get("prompt") == "none"
        assert preflight_response.get("redirect_uri") == self.conf.get_registration().get_launch_url()
        launch = self.pending.pop(preflight_response["lti_message_hint"])
        assert preflight_response.get("login_hint") == launch.user.user_id
        self.set_user_data(
            launch.user.user_id,
            list(launch.user.roles),
            full_name=launch.user.name,
            email_address=launch.user.email,
        )
        if launch.resource_link:  # the library leaves this claim, required by the spec, to its caller
            self.set_resource_link_claim("interop-link-1", title="Kurspakke")
        self.set_launch_context_claim(
            CONTEXT_ID,
            context_types=[LIS + "course#CourseOffering"],
            context_title=CONTEXT_TITLE,
            context_label="LINDRENDE-INTEROP",
        )
        self.set_launch_presentation_claim(document_target="iframe", return_url=LMS + "/courses/42")
        if launch.tool_platform:
            self.set_extra_claims(
                {
                    "https://purl.imsglobal.org/spec/lti/claim/tool_platform": {
                        "guid": PLATFORM_GUID,
                        "name": "Interop LMS",
                        "product_family_code": "lti1p3platform",
                    }
                }
            )

    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return launch_data  # {"id_token", "state", "launch_url"}: what the auto-submitting form would post


class InteropLms:
    """Drives lti1p3platform against the tool's Flask test client."""

    def __init__(self, conf: InteropPlatformConf, client: FlaskClient) -> None:
        self.conf = conf
        self.client = client
        self.pending: dict[str, PendingLaunch] = {}
        self.launches = 0
        self.last_form: dict[str, str] = {}

    def login_initiation(self, user: LmsUser, **launch: bool) -> str:
        self.launches += 1
        hint = f"launch-{self.launches}-{user.user_id}"
        self.pending[hint] = PendingLaunch(user, **launch)
        login = InteropOIDCLogin(None, self.conf)
        login.set_lti_message_hint(hint=hint)
        return str(login.initiate_login(user.user_id))

    def launch(self, user: LmsUser, **launch: bool) -> TestResponse:
        preflight_url = self.login_initiation(user, **launch)
        parts = urlsplit(preflight_url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == TOOL_LOGIN_URL
        login_resp = self.client.get(parts.path, query_string=parts.query, base_url=TOOL)
        assert login_resp.status_code == 302, why(login_resp)
        auth_request = login_resp.headers["Location"]
        assert auth_request.startswith(AUTH_URL + "?"), auth_request

        message = InteropMessageLaunch(AuthorizationRequest(auth_request), self.conf, self.pending)
        form = message.lti_launch()
        assert form["launch_url"] == TOOL_LAUNCH_URL
        self.last_form = {"id_token": form["id_token"], "state": form["state"]}
        return self.client.post(urlsplit(form["launch_url"]).path, data=self.last_form, base_url=TOOL)


# --- Fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def platform_key_pems() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


@pytest.fixture
def platform_conf(platform_key_pems: tuple[str, str]) -> InteropPlatformConf:
    private_pem, public_pem = platform_key_pems
    conf = InteropPlatformConf(private_key_pem=private_pem, public_key_pem=public_pem)
    conf.get_registration()
    return conf


@pytest.fixture
def jwks_requests() -> list[str]:
    return []


@pytest.fixture
def app(
    app_settings: dict[str, Any],
    encryptor: Encryptor,
    platform_conf: InteropPlatformConf,
    jwks_requests: list[str],
) -> Iterator[Flask]:
    """The tool, with the interop platform registered and its key set served by lti1p3platform."""

    def fetch_platform_jwks(url: str, timeout: float) -> dict[str, Any]:
        jwks_requests.append(url)
        assert url == KEY_SET_URL, url
        # The key set as the platform would serve it: the library's JWKS, through a JSON round-trip.
        return json.loads(json.dumps(platform_conf.get_jwks()))  # type: ignore[no-any-return]

    flask_app = create_app({"settings": app_settings, "environ": {}, "jwks_fetcher": fetch_platform_jwks})
    with transaction(flask_app.extensions["kurspakke"].session_factory) as s:
        ensure_key(s, encryptor)
        add_platform(
            s,
            issuer=ISSUER,
            client_id=CLIENT_ID,
            deployment_ids=[DEPLOYMENT_ID],
            auth_login_url=AUTH_URL,
            auth_token_url=TOKEN_URL,
            key_set_url=KEY_SET_URL,
            require_https=True,
        )
    yield flask_app
    flask_app.extensions["kurspakke"].engine.dispose()


@pytest.fixture
def lms(platform_conf: InteropPlatformConf, client: FlaskClient) -> InteropLms:
    return InteropLms(platform_conf, client)


def link_course(app: Flask, platform_instance: str) -> None:
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        s.add(
            CourseLink(
                programme_id=PROGRAMME,
                platform_instance=platform_instance,
                context_id=CONTEXT_ID,
                canvas_course_id=None,
                title=CONTEXT_TITLE,
            )
        )


def enrol_participant(app: Flask, user: LmsUser) -> None:
    """A participant the tool knows by name and e-mail only (as provisioned from a licence, before any launch)."""
    from kurspakke.services.people import get_or_create_person, grant_role

    with transaction(app.extensions["kurspakke"].session_factory) as s:
        person = get_or_create_person(s, name=user.name, email=user.email)
        grant_role(s, person, programme_id=PROGRAMME, organisation=organisation(s), role=ProgrammeRoleKind.PARTICIPANT)


def why(resp: TestResponse) -> str:
    """The refusal page's text (it names the refusal code), for assertion messages."""
    soup = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    main = soup.find("main") or soup
    return " ".join(main.get_text(" ", strip=True).split())[:400]


def h1(resp: TestResponse) -> str:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser").h1.get_text(strip=True)


def count(app: Flask, model: Any) -> int:
    # A short-lived session: the app's SQLite sessions BEGIN IMMEDIATE, so a held one would block the next launch.
    with app.extensions["kurspakke"].session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


# --- Tests ---------------------------------------------------------------------------------------------------------


def test_library_key_set_and_token_header_fit_the_tool(platform_conf):
    """Sanity of the library's output the tool depends on: an RS256 signing key with a kid, and tokens naming it."""
    jwks = platform_conf.get_jwks()
    [key] = jwks["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert "d" not in key  # public half only
    assert key["kid"] == platform_conf.get_registration().get_kid()


def test_instructor_of_unlinked_course_is_offered_to_link_it(app, lms, jwks_requests):
    resp = lms.launch(INSTRUCTOR_USER)
    assert resp.status_code == 200, why(resp)
    assert h1(resp) == "Koble dette emnet til en opplæringspakke"
    assert jwks_requests == [KEY_SET_URL]
    assert count(app, LaunchRecord) == 1


@pytest.mark.parametrize(
    ("tool_platform", "platform_instance"),
    [(False, ISSUER), (True, f"{ISSUER}|{PLATFORM_GUID}")],
    ids=["by-issuer", "by-guid"],
)
def test_instructor_of_linked_course_lands_on_course_administration(app, lms, tool_platform, platform_instance):
    link_course(app, platform_instance)
    resp = lms.launch(INSTRUCTOR_USER, tool_platform=tool_platform)
    assert resp.status_code == 200, why(resp)
    assert h1(resp) == "Kursadministrasjon"
    assert count(app, UnlicensedLaunch) == 0


def test_known_learner_lands_on_own_progress_and_is_remembered_by_sub(app, lms, jwks_requests):
    link_course(app, ISSUER)
    enrol_participant(app, LEARNER_USER)

    first = lms.launch(LEARNER_USER)
    assert first.status_code == 200, why(first)
    assert h1(first) == "Min fremdrift"
    with app.extensions["kurspakke"].session_factory() as s:
        identities = s.execute(select(PersonIdentity.kind, PersonIdentity.scope, PersonIdentity.value)).all()
    assert [tuple(i) for i in identities] == [(IdentityKind.LTI_SUB, ISSUER, LEARNER_USER.user_id)]

    second = lms.launch(LEARNER_USER)  # a fresh login; the same platform key, now from the tool's JWKS cache
    assert second.status_code == 200, why(second)
    assert h1(second) == "Min fremdrift"
    assert count(app, LaunchRecord) == 2
    assert jwks_requests == [KEY_SET_URL]
    assert count(app, UnlicensedLaunch) == 0


def test_replayed_library_launch_is_refused(app, lms, client, caplog):
    """The library's signed launch, posted a second time from the same browser: the binding cookie is put back (the
    first launch cleared it), so the state and the browser check pass and only the consumed nonce refuses it."""
    first = lms.launch(INSTRUCTOR_USER)
    assert first.status_code == 200, why(first)
    header = json.loads(base64.urlsafe_b64decode(lms.last_form["id_token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256"
    assert header["kid"]
    binding = state_binding(lms.last_form["state"])
    client.set_cookie(binding_name(binding), binding_proof(SECRET, binding), domain="kurspakke.test", path="/lti/")
    replay = client.post("/lti/launch", data=lms.last_form, base_url=TOOL)
    assert replay.status_code == 400
    assert "nonce_invalid" in why(replay)
    refusals = [r.fields for r in caplog.records if r.getMessage() == "refused"]  # type: ignore[attr-defined]
    assert refusals == [{"code": "nonce_invalid", "detail": "nonce already used: a replay", "path": "/lti/launch"}]
    assert count(app, LaunchRecord) == 1


def test_launch_without_the_required_resource_link_claim_is_refused(app, lms, caplog):
    """lti1p3platform adds the resource_link claim only when its caller sets it; LTI 1.3 requires it (with an id)
    in every LtiResourceLinkRequest, and the tool rightly refuses a launch without it."""
    resp = lms.launch(INSTRUCTOR_USER, resource_link=False)
    assert resp.status_code == 400
    assert "claims_invalid" in why(resp)
    refusals = [r.fields for r in caplog.records if r.getMessage() == "refused"]  # type: ignore[attr-defined]
    assert refusals == [{"code": "claims_invalid", "detail": "Missing Resource Link Id", "path": "/lti/launch"}]
    assert count(app, LaunchRecord) == 0
