"""Validation of an LTI 1.3 resource-link or deep-linking launch (the id_token POST).

Built on pylti1p3's MessageLaunch, with the steps reordered and hardened: nothing from the token is trusted or
stored before its signature is verified with a key parsed once (JWKS cached per URL); RS256 only; strict aud/azp;
60 s leeway; the nonce is consumed atomically so a replay fails even when raced; target_link_uri must be ours and
the one the login was for.

A hostile token gets a 4xx, never a 500: header and body deeper than MAX_JSON_DEPTH are refused (as is whatever the
JSON parser refuses, RecursionError included), every claim the tool or the library reads has its JSON type checked
(CLAIM_TYPES) before any validator sees it, and whatever a library validator raises is a refusal.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import jwt
import requests
from pylti1p3.cookie import CookieService
from pylti1p3.exception import LtiException
from pylti1p3.message_launch import MessageLaunch
from pylti1p3.message_validators import get_validators
from pylti1p3.registration import Registration as LibRegistration
from pylti1p3.request import Request
from pylti1p3.session import SessionService
from pylti1p3.tool_config import ToolConfAbstract

from course_sync.platform_keys import JWKSCache, PlatformKeyError, UnknownKid
from kurspakke.services.platforms import RegistrationInfo
from lti_tool.lti.errors import LtiRefusal

if TYPE_CHECKING:
    from lti_tool.lti.oidc_login import PendingLogin

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = CLAIM + "message_type"
SUPPORTED_MESSAGE_TYPES = {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "nonce"]
# A launch nests three or four levels deep (body → claim → object → list; Canvas's lti1p1 claim has an object in an
# object); 32 leaves extensions room. Deeper than Python's recursion limit, json.loads raises RecursionError (a
# header of 20,000 "[" was a 500): that is a refusal too, and whatever parses is walked iteratively for its depth.
MAX_JSON_DEPTH = 32
# Nothing a launch stores may hold NUL (PostgreSQL text and jsonb refuse it) or a lone surrogate (not UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"


class JsonType(NamedTuple):
    name: str
    check: Callable[[Any], bool]


STRING = JsonType("a string", lambda v: isinstance(v, str))
# bool is an int in Python, not a number in JSON
NUMBER = JsonType("a number", lambda v: isinstance(v, int | float) and not isinstance(v, bool))
STRINGS = JsonType("a list of strings", lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v))
AUDIENCE = JsonType("a string or a list of strings", lambda v: STRING.check(v) or STRINGS.check(v))


class ObjectClaim(NamedTuple):
    """A claim that must be a JSON object; ``fields`` are those of its members that must have a type when present."""

    fields: Mapping[str, JsonType]


# Every claim the tool or pylti1p3 reads, with the JSON type it must have when present (null is not a value of any
# of them: OIDC says to leave a claim out, not send it as null). Whether a claim must be present is checked where it
# is used (jwt.decode's require list, validate_deployment, validate_message), with its own refusal code. Claims not
# listed are neither read nor stored. Descriptive members nobody reads (titles, labels, descriptions) are not
# listed: platforms fill them loosely and a launch must not fail over them.
CLAIM_TYPES: dict[str, JsonType | ObjectClaim] = {
    "iss": STRING,
    "sub": STRING,
    "aud": AUDIENCE,
    "azp": STRING,
    "exp": NUMBER,  # PyJWT would take "exp": "9999999999" (it calls int())
    "iat": NUMBER,
    "nbf": NUMBER,
    "nonce": STRING,
    "jti": STRING,
    "name": STRING,
    "given_name": STRING,
    "family_name": STRING,
    "middle_name": STRING,
    "email": STRING,
    "locale": STRING,
    "picture": STRING,
    MESSAGE_TYPE: STRING,
    CLAIM + "version": STRING,
    CLAIM + "deployment_id": STRING,
    CLAIM + "target_link_uri": STRING,
    CLAIM + "roles": STRINGS,
    CLAIM + "role_scope_mentor": STRINGS,
    CLAIM + "lti11_legacy_user_id": STRING,
    CLAIM + "context": ObjectClaim({"id": STRING, "type": STRINGS}),
    CLAIM + "resource_link": ObjectClaim({"id": STRING}),
    CLAIM + "tool_platform": ObjectClaim({"guid": STRING}),
    CLAIM + "launch_presentation": ObjectClaim(
        {"document_target": STRING, "return_url": STRING, "locale": STRING, "width": NUMBER, "height": NUMBER}
    ),
    CLAIM + "custom": ObjectClaim({"kurspakke_view": STRING}),  # other custom values are the platform's business
    CLAIM + "lis": ObjectClaim({}),
    CLAIM + "for_user": ObjectClaim({"user_id": STRING}),
    AGS_CLAIM: ObjectClaim({"scope": STRINGS, "lineitems": STRING, "lineitem": STRING}),
    NRPS_CLAIM: ObjectClaim({"context_memberships_url": STRING, "service_versions": STRINGS}),
    DL_CLAIM + "deep_linking_settings": ObjectClaim(
        {
            "deep_link_return_url": STRING,
            "accept_types": STRINGS,
            "accept_presentation_document_targets": STRINGS,
            "data": STRING,
        }
    ),
}


class ParamsRequest(Request):
    """pylti1p3's request interface over a plain mapping of form fields."""

    def __init__(self, params: Mapping[str, str], secure: bool) -> None:
        self._params = params
        self._secure = secure

    @property
    def session(self) -> dict[str, Any]:
        return {}

    def is_secure(self) -> bool:
        return self._secure

    def get_param(self, key: str) -> str:
        return self._params.get(key, "")


class _NoCookies(CookieService):
    """Browser binding is checked by the view (cookie or platform storage), never by the library."""

    def get_cookie(self, name: str) -> str | None:
        return None

    def set_cookie(self, name: str, value: str | int, exp: int | None = 3600) -> None:
        raise NotImplementedError


class _DatabaseToolConf(ToolConfAbstract[ParamsRequest]):
    """Registrations come from our own table; the login already fixed which one applies."""

    def __init__(self, registration: RegistrationInfo) -> None:
        self._reg = registration

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def _lib_registration(self) -> LibRegistration:
        return (
            LibRegistration()
            .set_issuer(self._reg.issuer)
            .set_client_id(self._reg.client_id)
            .set_auth_login_url(self._reg.auth_login_url)
            .set_auth_token_url(self._reg.auth_token_url)
            .set_key_set_url(self._reg.key_set_url)
        )

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> LibRegistration:
        raise LtiRefusal("unknown_platform")

    def find_registration_by_params(self, iss: str, client_id: str, *args: Any, **kwargs: Any) -> LibRegistration:
        if iss != self._reg.issuer or client_id != self._reg.client_id:
            raise LtiRefusal("claims_invalid", detail="iss/client does not match the login")
        return self._lib_registration()

    def find_deployment(self, iss: str, deployment_id: str) -> Any:
        return None

    def find_deployment_by_params(self, iss: str, deployment_id: str, client_id: str) -> Any:
        return deployment_id if deployment_id in self._reg.deployment_ids else None


def _check_nesting(value: Any) -> None:
    """Refuse parsed JSON nested deeper than MAX_JSON_DEPTH (iterative: a deep value cannot exhaust the stack here;
    deeper than Python's recursion limit, json.loads itself refuses it with RecursionError)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_JSON_DEPTH:
            raise LtiRefusal("token_malformed", detail=f"JSON nested deeper than {MAX_JSON_DEPTH}")
        stack.extend((child, depth + 1) for child in children)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(number: str) -> float:
    value = float(number)
    if not math.isfinite(value):  # 1e999: an infinity no database column or JSON encoder takes back
        raise ValueError("number out of range")
    return value


def _b64url_json(part: str) -> Any:
    if not _B64URL.match(part):
        raise LtiRefusal("token_malformed", detail="not base64url")
    try:
        # UTF-8 only (RFC 7515); json.loads would also guess UTF-16/32 from bytes, which the depth scan cannot read.
        text = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise LtiRefusal("token_malformed", detail="undecodable part") from exc
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError as exc:  # the C parser's own guard, far deeper than MAX_JSON_DEPTH
        raise LtiRefusal("token_malformed", detail=f"JSON nested deeper than {MAX_JSON_DEPTH}") from exc
    except ValueError as exc:
        raise LtiRefusal("token_malformed", detail="not JSON") from exc
    _check_nesting(value)
    return value


def _type_error(body: Mapping[str, Any]) -> str | None:
    """What is wrong with the claims' JSON types (CLAIM_TYPES), or None."""
    for claim, expected in CLAIM_TYPES.items():
        if claim not in body:
            continue
        value = body[claim]
        if isinstance(expected, JsonType):
            if not expected.check(value):
                return f"{claim} must be {expected.name}"
            continue
        if not isinstance(value, dict):
            return f"{claim} must be an object"
        for field, field_type in expected.fields.items():
            if field in value and not field_type.check(value[field]):
                return f"{claim}.{field} must be {field_type.name}"
    return None


def _has_unstorable_text(value: Any) -> bool:
    """Any string (or key) anywhere in the claims with NUL or a lone surrogate. Iterative; the depth is capped."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def is_our_launch_url(url: str, launch_url: str) -> bool:
    """Ours means same scheme, host, port and path as our launch endpoint (query and fragment ignored)."""
    a, b = urlsplit(url), urlsplit(launch_url)
    return (a.scheme, a.netloc.lower(), a.path) == (b.scheme, b.netloc.lower(), b.path)


class ToolMessageLaunch(MessageLaunch[ParamsRequest, _DatabaseToolConf, SessionService, _NoCookies]):
    def __init__(
        self,
        params: Mapping[str, str],
        *,
        pending: PendingLogin,
        registration: RegistrationInfo,
        jwks: JWKSCache,
        requests_session: requests.Session,
        launch_url: str,
        leeway: int,
        secure: bool,
    ) -> None:
        request = ParamsRequest(params, secure)
        super().__init__(
            request,
            _DatabaseToolConf(registration),
            session_service=SessionService(request),
            cookie_service=_NoCookies(),
            requests_session=requests_session,  # the library would build a requests.Session per launch
        )
        self._pending = pending
        self._reg = registration
        self._jwks = jwks
        self._launch_url = launch_url
        self._leeway = leeway

    def _get_request_param(self, key: str) -> str:
        return self._request.get_param(key)

    def validate(self) -> ToolMessageLaunch:
        """Raises LtiRefusal naming the first failed check. Verifies the signature before trusting any claim. The
        nonce is consumed later, when the launch is recorded (start_launch)."""
        self._validated = True
        try:
            self.validate_jwt_format()
            self.validate_jwt_signature()
            self.validate_registration()
            self.validate_nonce()
            self.validate_claim_types()
            self.validate_deployment()
            self.validate_message()
        except LtiException as exc:
            self._validated = False
            raise LtiRefusal("claims_invalid", detail=str(exc)) from exc
        except Exception:
            self._validated = False
            raise
        return self

    def validate_jwt_format(self) -> ToolMessageLaunch:
        parts = self._get_request_param("id_token").split(".")
        if len(parts) != 3 or not all(parts):
            raise LtiRefusal("token_malformed", detail="a JWT has three parts")
        header, body = _b64url_json(parts[0]), _b64url_json(parts[1])
        if not isinstance(header, dict) or not isinstance(body, dict):
            raise LtiRefusal("token_malformed", detail="header and body must be JSON objects")
        if header.get("alg") != "RS256":
            raise LtiRefusal("signature_invalid", detail=f"alg {header.get('alg')!r} not allowed")
        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise LtiRefusal("key_unknown", detail="no kid")
        self._jwt = {"header": header, "body": body}  # type: ignore[typeddict-item]
        return self

    def validate_jwt_signature(self) -> ToolMessageLaunch:
        kid = self._jwt["header"]["kid"]
        try:
            key = self._jwks.get_key(self._reg.key_set_url, kid)
        except UnknownKid as exc:
            raise LtiRefusal("key_unknown", detail=str(exc)) from exc
        except PlatformKeyError as exc:
            raise LtiRefusal("platform_keys_unavailable", detail=str(exc)) from exc
        try:
            verified = jwt.decode(
                self._get_request_param("id_token"),
                key,
                algorithms=["RS256"],
                audience=self._reg.client_id,
                issuer=self._reg.issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS, "verify_iat": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise LtiRefusal("token_expired", detail=str(exc)) from exc
        except jwt.InvalidSignatureError as exc:
            raise LtiRefusal("signature_invalid", detail=str(exc)) from exc
        except jwt.PyJWTError as exc:
            raise LtiRefusal("claims_invalid", detail=str(exc)) from exc
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
            # A signed token whose claims PyJWT itself chokes on is still only a bad token.
            raise LtiRefusal("claims_invalid", detail=f"claims rejected: {type(exc).__name__}") from exc
        self._jwt["body"] = verified  # type: ignore[typeddict-item]
        return self

    def validate_registration(self) -> ToolMessageLaunch:
        """aud may list several audiences only if every one is a client we trust, and then azp must be ours."""
        body: dict[str, Any] = dict(self._jwt["body"])
        aud = body["aud"]
        audiences = aud if isinstance(aud, list) else [aud]
        if not all(isinstance(a, str) for a in audiences):
            raise LtiRefusal("claims_invalid", detail="aud must be strings")
        if len(audiences) > 1:
            if not set(audiences) <= self._reg.issuer_client_ids:
                raise LtiRefusal("claims_invalid", detail="aud lists an untrusted audience")
            if body.get("azp") != self._reg.client_id:
                raise LtiRefusal("claims_invalid", detail="azp must name this tool when aud has several entries")
        elif "azp" in body and body["azp"] != self._reg.client_id:
            raise LtiRefusal("claims_invalid", detail="azp is not this tool")
        self._registration = self._tool_config.find_registration_by_params(self._reg.issuer, self._reg.client_id)
        return self

    def validate_nonce(self) -> ToolMessageLaunch:
        """The token's nonce must be the one this login sent. It is consumed when the launch is recorded."""
        nonce = self._jwt["body"].get("nonce")
        if (
            not isinstance(nonce, str)
            or not nonce.isascii()
            or not secrets.compare_digest(nonce.encode(), self._pending.nonce.encode())
        ):
            raise LtiRefusal("nonce_invalid", detail="nonce does not belong to this login")
        return self

    def validate_claim_types(self) -> ToolMessageLaunch:
        """Every claim the tool or the library reads has its JSON type (CLAIM_TYPES), and no string holds what a
        database cannot store. Runs on verified claims, before the library's validators and start_launch read them:
        those assume the types (a resource_link list was an AttributeError, a custom.kurspakke_view list a
        TypeError)."""
        body: dict[str, Any] = dict(self._jwt["body"])
        problem = _type_error(body)
        if problem is not None:
            raise LtiRefusal("claims_invalid", detail=problem)
        if _has_unstorable_text(body):
            raise LtiRefusal("claims_invalid", detail="a claim holds NUL or a lone surrogate")
        return self

    def validate_deployment(self) -> ToolMessageLaunch:
        deployment_id = dict(self._jwt["body"]).get(CLAIM + "deployment_id")
        if not isinstance(deployment_id, str) or not deployment_id:
            raise LtiRefusal("deployment_unknown", detail="deployment_id missing")
        if not self._tool_config.find_deployment_by_params(self._reg.issuer, deployment_id, self._reg.client_id):
            raise LtiRefusal("deployment_unknown", detail="deployment_id not registered")
        return self

    def validate_message(self) -> ToolMessageLaunch:
        body: dict[str, Any] = dict(self._jwt["body"])
        message_type = body.get(MESSAGE_TYPE)
        if message_type not in SUPPORTED_MESSAGE_TYPES:
            raise LtiRefusal("message_type_unknown", detail=f"message_type {message_type!r}")
        roles = body.get(CLAIM + "roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise LtiRefusal("claims_invalid", detail="roles claim missing or not a list of strings")
        if not isinstance(body.get("sub"), str) or not body["sub"]:
            raise LtiRefusal("claims_invalid", detail="sub missing")
        self._run_library_validators(body)
        target = body.get(CLAIM + "target_link_uri")
        if not isinstance(target, str) or not is_our_launch_url(target, self._launch_url):
            raise LtiRefusal("bad_target", detail="target_link_uri is not this tool")
        if target != self._pending.target_link_uri:
            raise LtiRefusal("bad_target", detail="target_link_uri differs from the login's")
        return self

    @staticmethod
    def _run_library_validators(body: dict[str, Any]) -> None:
        """pylti1p3's message validators (resource link id, deep-linking settings, ...). They read claims without
        checking types; validate_claim_types runs first, and whatever they still raise — not only LtiException —
        is a refusal, never a 500."""
        for validator in get_validators():
            try:
                if validator.can_validate(body):
                    validator.validate(body)
            except LtiException as exc:
                raise LtiRefusal("claims_invalid", detail=str(exc)) from exc
            except Exception as exc:
                raise LtiRefusal("claims_invalid", detail=f"{type(validator).__name__}: {type(exc).__name__}") from exc

    @property
    def claims(self) -> dict[str, Any]:
        return dict(self._jwt["body"])
