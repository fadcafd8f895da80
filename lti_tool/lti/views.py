"""LTI endpoints: /lti/login, /lti/launch, /lti/jwks, /lti/config.json and the deep-linking response."""

from __future__ import annotations

import functools
import secrets
import time
from typing import Any, TypeVar

import jwt
from flask import Blueprint, abort, g, jsonify, make_response, redirect, render_template, request
from flask.typing import ResponseReturnValue

from config.developer_key import developer_key
from kurspakke.services.platforms import origin_of
from lti_tool.lti.errors import LtiRefusal
from lti_tool.lti.message_launch import CLAIM, DL_CLAIM, ToolMessageLaunch
from lti_tool.lti.oidc_login import (
    StateSigner,
    StorageConfirmSigner,
    binding_name,
    binding_proof,
    start_login,
    state_binding,
)
from lti_tool.services import commit, make_launch_token, services, state_store
from lti_tool.views.context import current_launch, land, open_launch, require_owner, start_launch

bp = Blueprint("lti", __name__, url_prefix="/lti")

_S = TypeVar("_S", StateSigner, StorageConfirmSigner)
DEEP_LINK_VIEWS = ("participant", "mentor", "licences")
PROBE_SUFFIX = "_probe"  # the login's probe cookie: <state cookie name>_probe


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    params = request.form if request.method == "POST" else request.args
    svc = services()
    result = start_login(
        params.to_dict(), registrations=svc.registrations, signer=state_signer(), launch_url=svc.launch_url
    )
    proof = binding_proof(svc.settings.secret_key, result.binding)
    name = binding_name(result.binding)
    if result.storage_target:
        response = make_response(
            render_template(
                "lti/storage_login.html",
                auth_url=result.auth_url,
                storage_target=result.storage_target,
                platform_origin=result.platform_origin,
                key=name,
                proof=proof,
                probe=name + PROBE_SUFFIX,
            )
        )
    else:
        response = make_response(redirect(result.auth_url, code=302))
    # The state cookie first: the one that binds the login.
    response.set_cookie(name, proof, httponly=True, **_login_cookie(svc.settings.login_state_ttl_seconds))
    if result.storage_target:
        # Whether this frame keeps cookies at all (a cross-site frame whose browser blocks third-party cookies
        # does not): the page's script looks for this probe, with the state cookie's attributes but readable by
        # scripts and carrying nothing, and skips waiting on the platform's storage when it is there. Without
        # it the page waits for a platform that may never answer (Canvas's mobile apps name a storage target
        # but do not answer postMessages). Only that page reads it, at once, and deletes it: a short lifetime.
        response.set_cookie(name + PROBE_SUFFIX, "1", httponly=False, **_login_cookie(60))
    return response


def _login_cookie(max_age: int | None) -> dict[str, Any]:
    """The attributes of the login's cookies: sent back on the platform's cross-site POST to /lti/launch
    (Secure, SameSite=None), kept in the platform's partition of the browser's cookie jar (Partitioned). Without a
    max_age: the attributes that name the cookie for deleting it."""
    attributes: dict[str, Any] = {"path": "/lti/", "secure": True, "samesite": "None", "partitioned": True}
    if max_age is not None:
        attributes["max_age"] = max_age
    return attributes


def state_signer() -> StateSigner:
    settings = services().settings
    return _signer(StateSigner, settings.secret_key, settings.login_state_ttl_seconds)


def confirm_signer() -> StorageConfirmSigner:
    settings = services().settings
    return _signer(StorageConfirmSigner, settings.secret_key, settings.login_state_ttl_seconds)


@functools.lru_cache(maxsize=8)
def _signer(kind: type[_S], secret_key: str, ttl_seconds: int) -> _S:
    """Built once per process (and per settings, which tests replace), not per request."""
    return kind(secret_key, ttl_seconds)


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
    cookie = request.cookies.get(binding_name(binding), "")
    proof = binding_proof(svc.settings.secret_key, binding)
    cookie_ok = secrets.compare_digest(cookie.encode("utf-8", "replace"), proof.encode())
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
        # Bound through LTI Platform Storage: the page reads this login's proof back from the platform's storage
        # in this browser and posts it to /lti/storage-confirm; only then is the launch token handed out.
        return render_template(
            "lti/storage_check.html",
            storage_target=pending.storage_target,
            platform_origin=origin_of(registration.auth_login_url),
            key=binding_name(binding),
            ticket=confirm_signer().sign(ctx.launch_id, binding),
        )
    if pending.storage_target:
        # The cookie bound this login, but the login page stored its proof in the platform's storage as well:
        # the landing page's script clears it (the platform's storage per tool is small).
        g.storage_clear = {
            "target": pending.storage_target,
            "origin": origin_of(registration.auth_login_url),
            "key": binding_name(binding),
        }
    response = make_response(land(ctx))
    response.delete_cookie(binding_name(binding), **_login_cookie(None))
    return response


@bp.post("/storage-confirm")
def storage_confirm() -> ResponseReturnValue:
    """The cookieless launch's second half: the proof read back from the platform's storage opens the launch."""
    _refuse_cross_site()
    ticket = request.form.get("ticket", "")
    proof = request.form.get("proof", "")
    if not ticket or len(ticket) > 1024 or len(proof) > 128:
        raise LtiRefusal("state_invalid", detail="storage check missing")
    launch_id, binding = confirm_signer().read(ticket)
    expected = binding_proof(services().settings.secret_key, binding)
    if not secrets.compare_digest(proof.encode("utf-8", "replace"), expected.encode()):
        raise LtiRefusal("state_invalid", detail="platform storage did not hold this login's proof")
    # The landing page itself, as a cookie-bound launch answers: the token goes to launch.js, never into an
    # address (a redirect would have to carry it there).
    return land(open_launch(launch_id, make_launch_token(launch_id)))


def _refuse_cross_site() -> None:
    """The check page posts the confirmation from the tool's own frame. A post from another site would let a page
    that holds a ticket and proof of its own launch sign a visitor in as someone else (login CSRF): refuse it when
    the browser says so. Sec-Fetch-Site and Origin are set by the browser; scripts cannot forge them. A request
    carrying neither (an old browser, or no browser) still needs the ticket and this login's proof."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        raise LtiRefusal("state_invalid", status=403, detail=f"storage check posted from another site ({site})")
    sender = request.headers.get("Origin")
    if sender is not None and sender != origin_of(services().settings.base_url):
        # storage_check.html sets the referrer policy same-origin, so a browser posting it names our origin here
        # (under no-referrer it would send "null"); "null" from elsewhere is a sandboxed or opaque sender.
        raise LtiRefusal("state_invalid", status=403, detail=f"storage check posted from {sender[:100]!r}")


@bp.get("/jwks")
def jwks() -> ResponseReturnValue:
    response = jsonify(services().keyring.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/config.json")
def config_json() -> ResponseReturnValue:
    """The Canvas developer-key JSON (paste into Developer Keys → LTI Key → Paste JSON); see config/developer_key.py."""
    return jsonify(developer_key(services().settings.base_url))


@bp.post("/deep-link")
def deep_link_response() -> ResponseReturnValue:
    """The course owner chose pages to place as links; sign an LtiDeepLinkingResponse and post it back."""
    ctx = current_launch()
    if ctx.data.get("message_type") != "LtiDeepLinkingRequest":
        abort(403)
    require_owner(ctx)
    settings: dict[str, Any] = ctx.data.get("deep_linking_settings") or {}
    chosen = [v for v in request.form.getlist("view") if v in DEEP_LINK_VIEWS]
    # More than one link only when the platform said it takes several.
    if len(chosen) > 1 and not settings.get("accept_multiple"):
        raise LtiRefusal("deep_link_one_only", status=422)
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
        DL_CLAIM + "content_items": items,
    }
    if settings.get("data") is not None:
        payload[DL_CLAIM + "data"] = settings["data"]
    # One response per deep-linking request (the platform asks anew): use the launch up before signing, so of
    # two racing requests only one signs.
    if not state_store().end_launch(ctx.launch_id):
        raise LtiRefusal("launch_token_invalid", status=401)
    commit()
    key = svc.keyring.signing_key()
    token = jwt.encode(payload, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    return render_template(
        "lti/deep_link_return.html", return_url=settings["deep_link_return_url"], jwt=token, count=len(items)
    )
