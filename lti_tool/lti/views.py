"""LTI endpoints: /lti/login, /lti/launch, /lti/jwks, /lti/config.json and the deep-linking response."""

from __future__ import annotations

import functools
import secrets
import time
from typing import Any

import jwt
from flask import Blueprint, abort, jsonify, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from kurspakke.services.platforms import origin_of
from lti_tool.lti.errors import LtiRefusal
from lti_tool.lti.message_launch import CLAIM, ToolMessageLaunch
from lti_tool.lti.oidc_login import STATE_COOKIE_PREFIX, StateSigner, start_login, state_binding
from lti_tool.services import commit, services
from lti_tool.views.context import current_launch, land, start_launch

bp = Blueprint("lti", __name__, url_prefix="/lti")

DEEP_LINK_VIEWS = ("participant", "mentor", "licences")
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    params = request.form if request.method == "POST" else request.args
    svc = services()
    result = start_login(
        params.to_dict(), registrations=svc.registrations, signer=state_signer(), launch_url=svc.launch_url
    )
    if result.storage_target:
        response = make_response(
            render_template(
                "lti/storage_login.html",
                auth_url=result.auth_url,
                storage_target=result.storage_target,
                platform_origin=result.platform_origin,
                state=result.binding,
            )
        )
    else:
        response = make_response(redirect(result.auth_url, code=302))
    response.set_cookie(
        STATE_COOKIE_PREFIX + result.binding,
        result.binding,
        max_age=svc.settings.login_state_ttl_seconds,
        path="/lti/",
        secure=True,
        httponly=True,
        samesite="None",
        partitioned=True,
    )
    return response


def state_signer() -> StateSigner:
    settings = services().settings
    return _signer(settings.secret_key, settings.login_state_ttl_seconds)


@functools.lru_cache(maxsize=4)
def _signer(secret_key: str, ttl_seconds: int) -> StateSigner:
    return StateSigner(secret_key, ttl_seconds)


@bp.post("/launch")
def launch() -> ResponseReturnValue:
    svc = services()
    form = request.form
    id_token = form.get("id_token", "")
    state = form.get("state", "")
    if not id_token:
        raise LtiRefusal("missing_parameter", detail="id_token")
    if len(id_token) > svc.settings.max_id_token_bytes:
        raise LtiRefusal("token_too_large", status=413, detail="id_token")
    if not state or len(state) > 4096:
        raise LtiRefusal("state_invalid", detail="state missing")
    pending = state_signer().read(state)
    binding = state_binding(state)
    cookie_ok = secrets.compare_digest(request.cookies.get(STATE_COOKIE_PREFIX + binding, ""), binding)
    if not cookie_ok and not pending.storage_target:
        raise LtiRefusal("state_invalid", detail="state cookie missing or different")
    registration = svc.registrations.by_id(pending.registration_id)
    if registration is None:
        raise LtiRefusal("unknown_platform", detail="registration removed since the login")
    message = ToolMessageLaunch(
        form.to_dict(),
        pending=pending,
        registration=registration,
        jwks=svc.jwks,
        requests_session=svc.http,
        launch_url=svc.launch_url,
        leeway=svc.settings.jwt_leeway_seconds,
        secure=request.is_secure,
    ).validate()
    ctx = start_launch(message.claims, registration, nonce=pending.nonce)
    commit()  # release the write lock before rendering (SQLite queues writers on it)
    if not cookie_ok:
        # Bound through LTI Platform Storage: the page reveals the tool only after the script has read this
        # login's binding back from the platform's storage in this browser.
        return render_template(
            "lti/storage_check.html",
            storage_target=pending.storage_target,
            platform_origin=origin_of(registration.auth_login_url),
            state=binding,
            continue_url=url_for("app.home", lt=ctx.token),
        )
    response = make_response(land(ctx))
    response.delete_cookie(STATE_COOKIE_PREFIX + binding, path="/lti/", secure=True, samesite="None", partitioned=True)
    return response


@bp.get("/jwks")
def jwks() -> ResponseReturnValue:
    response = jsonify(services().keyring.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/config.json")
def config_json() -> ResponseReturnValue:
    """The Canvas developer-key JSON (paste into Developer Keys → LTI Key → Paste JSON)."""
    base = services().settings.base_url
    host = base.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return jsonify(
        {
            "title": "Kurspakke",
            "description": "Lisenser, mentorgrupper, fremdrift og kursbevis for opplæringspakker i Canvas.",
            "oidc_initiation_url": base + "/lti/login",
            "target_link_uri": base + "/lti/launch",
            "public_jwk_url": base + "/lti/jwks",
            "scopes": [
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
            ],
            "extensions": [
                {
                    "domain": host,
                    "tool_id": "kurspakke",
                    "platform": "canvas.instructure.com",
                    "privacy_level": "public",
                    "settings": {
                        "text": "Kurspakke",
                        "placements": [
                            {
                                "placement": "course_navigation",
                                "message_type": "LtiResourceLinkRequest",
                                "target_link_uri": base + "/lti/launch",
                                "text": "Kurspakke",
                                "default": "enabled",
                                "visibility": "public",
                            },
                            {
                                "placement": "link_selection",
                                "message_type": "LtiDeepLinkingRequest",
                                "target_link_uri": base + "/lti/launch",
                                "text": "Kurspakke",
                            },
                        ],
                    },
                }
            ],
            "custom_fields": {"canvas_user_id": "$Canvas.user.id", "canvas_course_id": "$Canvas.course.id"},
        }
    )


@bp.post("/deep-link")
def deep_link_response() -> ResponseReturnValue:
    """The course owner chose pages to place as links; sign an LtiDeepLinkingResponse and post it back."""
    ctx = current_launch()
    if ctx.data.get("message_type") != "LtiDeepLinkingRequest" or not ctx.course_owner:
        abort(403)
    chosen = [v for v in request.form.getlist("view") if v in DEEP_LINK_VIEWS]
    settings: dict[str, Any] = ctx.data.get("deep_linking_settings") or {}
    svc = services()
    from lti_tool.i18n import gettext
    from lti_tool.views.context import VIEW_TITLES

    items = [
        {
            "type": "ltiResourceLink",
            "title": gettext(VIEW_TITLES[view]),
            "url": svc.launch_url,
            "custom": {"kurspakke_view": view},
        }
        for view in chosen
    ]
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ctx.data["client_id"],
        "aud": [ctx.data["issuer"]],
        "iat": now,
        "exp": now + 600,
        "nonce": secrets.token_urlsafe(24),
        CLAIM + "deployment_id": ctx.data["deployment_id"],
        CLAIM + "message_type": "LtiDeepLinkingResponse",
        CLAIM + "version": "1.3.0",
        DL + "content_items": items,
    }
    if settings.get("data") is not None:
        payload[DL + "data"] = settings["data"]
    key = svc.keyring.signing_key()
    token = jwt.encode(payload, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    return render_template(
        "lti/deep_link_return.html", return_url=settings["deep_link_return_url"], jwt=token, count=len(items)
    )
