"""The OIDC third-party-initiated login (step 1 of an LTI launch).

pylti1p3's OIDCLogin keeps state in a cookie or the Flask session and its cookie-check page ships without a
template; here state and nonce go to the shared state store (database or Redis), so any web process can take the
launch, and the browser is bound by a Partitioned cookie and, when the platform offers it, LTI Platform Storage.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from kurspakke.models import utcnow
from kurspakke.services.lti_state import LtiStateStore, PendingLogin
from kurspakke.services.platforms import RegistrationCache, RegistrationInfo, UnknownPlatform, origin_of
from lti_tool.lti.errors import LtiRefusal
from lti_tool.lti.message_launch import is_our_launch_url

MAX_PARAM_CHARS = 4096
_STORAGE_TARGET = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
STATE_COOKIE_PREFIX = "kp_state_"


@dataclass(frozen=True)
class LoginRedirect:
    auth_url: str
    state: str
    nonce: str
    storage_target: str | None
    platform_origin: str


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
    store: LtiStateStore,
    launch_url: str,
    ttl_seconds: int,
) -> LoginRedirect:
    """Validate a login initiation and record the state. Raises LtiRefusal on any bad input (nothing stored)."""
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

    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    store.save_login(
        PendingLogin(
            state=state,
            nonce=nonce,
            registration_id=registration.id,
            target_link_uri=target,
            storage_target=storage_target,
            expires_at=utcnow() + timedelta(seconds=ttl_seconds),
        )
    )
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
        nonce=nonce,
        storage_target=storage_target,
        platform_origin=origin_of(registration.auth_login_url),
    )
