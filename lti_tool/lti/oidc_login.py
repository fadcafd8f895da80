"""The OIDC third-party-initiated login (step 1 of an LTI launch).

pylti1p3's OIDCLogin keeps state in a cookie or the Flask session and its cookie-check page ships without a
template. Here the state parameter is itself signed (itsdangerous, SECRET_KEY) and carries the nonce, the
registration, the target_link_uri and the storage target, valid for ``login_state_ttl_seconds``: any web process
on any host can take the launch, and an unauthenticated login request writes nothing anywhere (no table to fill
by calling /lti/login in a loop). The nonce is consumed when the launch is recorded. The browser is bound to the
login by a Partitioned cookie and, when the platform offers it, LTI Platform Storage.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from kurspakke.crypto import mac
from kurspakke.services.platforms import RegistrationCache, RegistrationInfo, UnknownPlatform, origin_of
from lti_tool.lti.errors import LtiRefusal
from lti_tool.lti.message_launch import is_our_launch_url

MAX_PARAM_CHARS = 4096
_STORAGE_TARGET = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
STATE_COOKIE_PREFIX = "kp_state_"


@dataclass(frozen=True)
class PendingLogin:
    """What a login promised, read back from its signed state."""

    nonce: str
    registration_id: int
    target_link_uri: str
    storage_target: str | None


@dataclass(frozen=True)
class LoginRedirect:
    auth_url: str
    state: str
    storage_target: str | None
    platform_origin: str

    @property
    def binding(self) -> str:
        return state_binding(self.state)


def state_binding(state: str) -> str:
    """A short name for a state, for the cookie and the platform-storage key that bind it to one browser."""
    return hashlib.sha256(state.encode()).hexdigest()[:32]


def binding_name(binding: str) -> str:
    """The name of the login's cookie, and of its key in the platform's storage."""
    return STATE_COOKIE_PREFIX + binding


def binding_proof(secret_key: str, binding: str) -> str:
    """What the browser must hold for a login — the value of its state cookie, or of its platform-storage key: a
    MAC of the binding under SECRET_KEY, so that knowing the state (which travels in URLs and forms) is not
    enough to forge it."""
    return mac(secret_key.encode(), b"kurspakke-login-binding|" + binding.encode())


class _TimedSigner:
    """A signed, timestamped token (itsdangerous, SECRET_KEY) with its own salt; read() refuses a forged,
    altered or expired one with LtiRefusal(state_invalid)."""

    SALT = ""
    WHAT = ""

    def __init__(self, secret_key: str, ttl_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=self.SALT)
        self._ttl = ttl_seconds

    def _dumps(self, value: list[Any]) -> str:
        return self._serializer.dumps(value)

    def _loads(self, token: str) -> Any:
        try:
            return self._serializer.loads(token, max_age=self._ttl)
        except SignatureExpired as exc:
            raise LtiRefusal("state_invalid", detail=f"{self.WHAT} expired") from exc
        except BadSignature as exc:
            raise LtiRefusal("state_invalid", detail=f"{self.WHAT} not issued by this tool") from exc


class StateSigner(_TimedSigner):
    SALT = "kurspakke-lti-login-state"
    WHAT = "state"

    def sign(self, login: PendingLogin) -> str:
        return self._dumps([login.nonce, login.registration_id, login.target_link_uri, login.storage_target])

    def read(self, state: str) -> PendingLogin:
        """Raises LtiRefusal(state_invalid) for a forged, altered or expired state."""
        try:
            nonce, registration_id, target, storage = self._loads(state)
        except (ValueError, TypeError) as exc:
            raise LtiRefusal("state_invalid", detail="state not issued by this tool") from exc
        return PendingLogin(nonce, registration_id, target, storage)


class StorageConfirmSigner(_TimedSigner):
    """The check page's ticket after a cookieless launch: which launch, bound to which login. The launch token is
    handed out only when the page comes back with the proof it read from the platform's storage."""

    SALT = "kurspakke-storage-confirm"
    WHAT = "storage check"

    def sign(self, launch_id: str, binding: str) -> str:
        return self._dumps([launch_id, binding])

    def read(self, ticket: str) -> tuple[str, str]:
        """(launch id, binding). Raises LtiRefusal(state_invalid) for a forged, altered or expired ticket."""
        try:
            launch_id, binding = self._loads(ticket)
        except (ValueError, TypeError) as exc:
            raise LtiRefusal("state_invalid", detail="storage check malformed") from exc
        if not isinstance(launch_id, str) or not isinstance(binding, str):
            raise LtiRefusal("state_invalid", detail="storage check malformed")
        return launch_id, binding


def _param(params: Mapping[str, str], key: str, *, required: bool) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        if required:
            raise LtiRefusal("missing_parameter", detail=key)
        return None
    if len(value) > MAX_PARAM_CHARS:
        raise LtiRefusal("token_too_large", status=413, detail=key)
    return value


def start_login(
    params: Mapping[str, str],
    *,
    registrations: RegistrationCache,
    signer: StateSigner,
    launch_url: str,
) -> LoginRedirect:
    """Validate a login initiation and sign its state. Raises LtiRefusal on any bad input."""
    iss = _param(params, "iss", required=True)
    login_hint = _param(params, "login_hint", required=True)
    target = _param(params, "target_link_uri", required=True)
    client_id = _param(params, "client_id", required=False)
    message_hint = _param(params, "lti_message_hint", required=False)
    deployment_id = _param(params, "lti_deployment_id", required=False)
    storage_target = _param(params, "lti_storage_target", required=False)
    assert iss is not None and login_hint is not None and target is not None
    if storage_target is not None and not _STORAGE_TARGET.match(storage_target):
        raise LtiRefusal("bad_request", detail="lti_storage_target")
    try:
        registration: RegistrationInfo = registrations.get(iss, client_id)
    except UnknownPlatform as exc:
        raise LtiRefusal("unknown_platform", detail=str(exc)) from exc
    if deployment_id is not None and deployment_id not in registration.deployment_ids:
        raise LtiRefusal("deployment_unknown", detail="lti_deployment_id")
    if not is_our_launch_url(target, launch_url):
        raise LtiRefusal("bad_target", detail="target_link_uri")

    nonce = secrets.token_urlsafe(32)
    state = signer.sign(PendingLogin(nonce, registration.id, target, storage_target))
    query = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": registration.client_id,
        "redirect_uri": launch_url,
        "state": state,
        "nonce": nonce,
        "login_hint": login_hint,
    }
    if message_hint:
        query["lti_message_hint"] = message_hint
    sep = "&" if "?" in registration.auth_login_url else "?"
    return LoginRedirect(
        auth_url=registration.auth_login_url + sep + urlencode(query),
        state=state,
        storage_target=storage_target,
        platform_origin=origin_of(registration.auth_login_url),
    )
