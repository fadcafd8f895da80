"""The launch context of a request: what a validated launch established, re-checked against the tool's own
records on every request (authority is never taken from the client)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import g, render_template, request, url_for

from kurspakke.models import ProgrammeRoleKind
from kurspakke.programmes import Programme
from kurspakke.services.access import (
    Access,
    CourseLinkInfo,
    Launcher,
    PersonInfo,
    is_course_owner_role,
    known_person,
    normalise_roles,
    person_query,
    record_ags_endpoint,
    resolve_access,
)
from kurspakke.services.lti_state import NonceReused
from kurspakke.services.platforms import RegistrationInfo
from kurspakke.services.platforms import platform_instance as platform_instance_of
from lti_tool.i18n import pick_locale
from lti_tool.i18n_marker import N_
from lti_tool.lti.errors import LtiRefusal
from lti_tool.lti.message_launch import AGS_CLAIM, CLAIM, DL_CLAIM, NRPS_CLAIM
from lti_tool.services import db, make_launch_token, read_launch_token, services, state_store

DL_SETTINGS = DL_CLAIM + "deep_linking_settings"
VIEW_TITLES = {
    "owner": N_("Course administration"),
    "mentor": N_("Mentor overview"),
    "licences": N_("Licences"),
    "participant": N_("My progress"),
}
VIEW_ORDER = ("owner", "mentor", "licences", "participant")
_ROLE_VIEW = {
    ProgrammeRoleKind.MENTOR: "mentor",
    ProgrammeRoleKind.LICENCE_ADMIN: "licences",
    ProgrammeRoleKind.PARTICIPANT: "participant",
}
TOKEN_HEADER = "X-Launch-Token"  # noqa: S105 - a header name
TOKEN_FIELD = "lt"  # noqa: S105 - a field name


@dataclass
class LaunchContext:
    launch_id: str
    token: str
    data: dict[str, Any]
    access: Access
    programme: Programme | None
    requested_view: str | None = None
    views: list[str] = field(default_factory=list)
    # The launch said course owner, but longer ago than owner_authority_seconds: a fresh launch must confirm it.
    owner_stale: bool = False

    @property
    def course_owner(self) -> bool:
        return self.access.course_owner

    @property
    def person(self) -> PersonInfo | None:
        return self.access.person

    @property
    def course_link(self) -> CourseLinkInfo | None:
        return self.access.course_link

    @property
    def default_view(self) -> str:
        """The deep-linked view if this person may open it, else their first; only asked when views is not empty."""
        if self.requested_view is not None and self.requested_view in self.views:
            return self.requested_view
        return self.views[0]

    def url_for_view(self, view: str) -> str:
        """The view's address. It never carries the launch token (an address is what people copy and proxies log):
        the page hands the token to launch.js, which keeps it in the frame's sessionStorage and posts it."""
        return url_for("app.page", view=view)


def _object(value: Any) -> dict[str, Any]:
    """An optional claim that is a JSON object when present (message_launch's CLAIM_TYPES refuses any other type);
    absent, it reads as empty."""
    return value if isinstance(value, dict) else {}


def _str(value: Any, limit: int = 255) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _canvas_id(value: Any) -> str | None:
    # An unsubstituted "$Canvas.user.id" means the platform did not fill it in.
    return value if isinstance(value, str) and value.isdigit() and len(value) <= 20 else None


def _http_url(value: Any, *, https_only: bool = False) -> str | None:
    if not isinstance(value, str) or len(value) > 2048:
        return None
    parts = urlsplit(value)
    if not parts.netloc or parts.scheme not in ({"https"} if https_only else {"http", "https"}):
        return None
    return value


def _deep_linking_settings(value: Any, *, https_only: bool) -> dict[str, Any]:
    """What the platform asked for in a deep-linking request. The return URL is where the browser posts a signed
    response, so it must be http(s) (https in production); never javascript: or the like. (A request whose
    accept_types lacks ltiResourceLink, the one type the tool returns, is refused by pylti1p3's deep-linking
    validator before this.) Raises LtiRefusal."""
    settings = _object(value)
    return_url = _http_url(settings.get("deep_link_return_url"), https_only=https_only)
    if return_url is None:
        raise LtiRefusal("claims_invalid", detail="deep_link_return_url")
    return {
        "deep_link_return_url": return_url,
        "data": settings.get("data") if isinstance(settings.get("data"), str) else None,
        # Absent means one item at most (the platform did not say it takes more).
        "accept_multiple": settings.get("accept_multiple") is True,
    }


def start_launch(claims: dict[str, Any], registration: RegistrationInfo, *, nonce: str) -> LaunchContext:
    """Record what later requests of this launch need (no name or e-mail), consuming the login's nonce, and
    resolve the launcher's access. Raises LtiRefusal(nonce_invalid) for a replay."""
    context = _object(claims.get(CLAIM + "context"))
    custom = _object(claims.get(CLAIM + "custom"))
    platform = _object(claims.get(CLAIM + "tool_platform"))
    presentation = _object(claims.get(CLAIM + "launch_presentation"))
    resource_link = _object(claims.get(CLAIM + "resource_link"))
    roles = sorted(normalise_roles(claims.get(CLAIM + "roles", [])))
    platform_instance = platform_instance_of(registration.issuer, _str(platform.get("guid")))
    settings = services().settings
    message_type = claims[CLAIM + "message_type"]
    dl_settings = None
    if message_type == "LtiDeepLinkingRequest":
        dl_settings = _deep_linking_settings(claims.get(DL_SETTINGS), https_only=settings.is_production)
    launcher = Launcher(
        issuer=registration.issuer,
        sub=str(claims["sub"])[:255],
        platform_instance=platform_instance,
        roles=frozenset(roles),
        context_id=_str(context.get("id")),
        name=_str(claims.get("name")) or "",
        email=_str(claims.get("email"), 320) or "",
        canvas_user_id=_canvas_id(custom.get("canvas_user_id")),
    )
    if message_type == "LtiDeepLinkingRequest" and not is_course_owner_role(roles):
        raise LtiRefusal("forbidden", status=403)  # only course owners place links
    session = db()
    link = services().course_links.get(session, platform_instance, launcher.context_id)
    view = custom.get("kurspakke_view")
    nrps = _object(claims.get(NRPS_CLAIM))
    # No person id: later requests find the person by the sub this launch matched or recorded, so the launch can be
    # recorded in the same statement that finds the person. No Canvas user id either: it is a hint for a first
    # launch only, and nothing later reads it.
    data: dict[str, Any] = {
        "registration_id": registration.id,
        "issuer": registration.issuer,
        "client_id": registration.client_id,
        "deployment_id": claims[CLAIM + "deployment_id"],
        "message_type": message_type,
        "sub": launcher.sub,
        "platform_instance": platform_instance,
        "context_id": launcher.context_id,
        "context_title": _str(context.get("title")),
        "canvas_course_id": _canvas_id(custom.get("canvas_course_id")),
        "resource_link_id": _str(resource_link.get("id")),
        "roles": roles,
        "locale": pick_locale(_str(claims.get("locale")) or _str(presentation.get("locale"))),
        "view": view if view in VIEW_TITLES else None,
        "nrps_url": _http_url(nrps.get("context_memberships_url")),
        "ags": claims.get(AGS_CLAIM) if isinstance(claims.get(AGS_CLAIM), dict) else None,
        "deep_linking_settings": dl_settings,
        "launched_at": int(time.time()),
    }
    if link is not None and data["ags"] is not None:
        ags = data["ags"]
        record_ags_endpoint(
            session,
            services().course_links,
            link,
            lineitems_url=_http_url(ags.get("lineitems")),
            scopes=[s for s in ags.get("scope") or [] if isinstance(s, str)],
            registration_id=registration.id,
        )
    launch_id = secrets.token_urlsafe(24)
    read = person_query(launcher, link.programme_id) if link is not None else None
    try:
        rows = state_store().record_launch(launch_id, nonce, data, settings.launch_token_ttl_seconds, read)
    except NonceReused as exc:
        raise LtiRefusal("nonce_invalid", detail="nonce already used: a replay") from exc
    access = resolve_access(session, launcher, link, rows)
    return _context(launch_id, make_launch_token(launch_id), data, access)


def _context(launch_id: str, token: str, data: dict[str, Any], access: Access) -> LaunchContext:
    g.locale = data.get("locale") or "nb"
    programme = services().programmes.get(access.course_link.programme_id) if access.course_link else None
    views: list[str] = []
    if access.course_owner and access.course_link is not None:
        views.append("owner")
    for role in access.roles:
        views.append(_ROLE_VIEW[role])
    views.sort(key=VIEW_ORDER.index)
    ctx = LaunchContext(launch_id, token, data, access, programme, data.get("view"), views)
    g.launch = ctx
    return ctx


def launch_token_of_request() -> str:
    """The launch token a request carries: the X-Launch-Token header or the ``lt`` form field — never the query
    string, so it stays out of addresses, histories and proxy logs."""
    return request.headers.get(TOKEN_HEADER) or request.form.get(TOKEN_FIELD) or ""


def current_launch() -> LaunchContext:
    """The launch of this request, from the signed token in the header or form. Access is recomputed from the
    database each time. Raises LtiRefusal (401) when the token is missing, invalid or expired."""
    if "launch" in g:
        return g.launch
    token = launch_token_of_request()
    launch_id = read_launch_token(token)
    if launch_id is None:
        raise LtiRefusal("launch_token_invalid", status=401)
    return open_launch(launch_id, token)


def open_launch(launch_id: str, token: str) -> LaunchContext:
    """The context of a recorded launch, with access re-checked from the tool's records. Course-owner authority
    comes from the platform's roles claim, so it is only trusted for ``owner_authority_seconds`` after the
    launch: a teacher removed from the course loses it within that time (a fresh launch confirms it again).
    Raises LtiRefusal (401) when the launch has expired or is unknown."""
    data = state_store().get_launch(launch_id)
    if data is None:
        raise LtiRefusal("launch_token_invalid", status=401)
    session = db()
    link = services().course_links.get(session, data["platform_instance"], data.get("context_id"))
    roles = data.get("roles", [])
    age = time.time() - float(data.get("launched_at") or 0)
    owner_role = is_course_owner_role(roles)
    fresh = 0 <= age < services().settings.owner_authority_seconds
    access = Access(course_link=link, course_owner=owner_role and fresh, person=None)
    if link is not None:
        launcher = Launcher(
            issuer=data["issuer"],
            sub=data["sub"],
            platform_instance=data["platform_instance"],
            roles=frozenset(roles),
            context_id=data.get("context_id"),
        )
        access.person, access.roles, access.organisations = known_person(session, launcher, link.programme_id)
    ctx = _context(launch_id, token, data, access)
    ctx.owner_stale = owner_role and not fresh
    return ctx


def require_owner(ctx: LaunchContext) -> None:
    """Raises LtiRefusal unless the launch is a course owner's, confirmed recently enough."""
    if ctx.owner_stale:
        raise LtiRefusal("owner_launch_stale", status=401)
    if not ctx.course_owner:
        raise LtiRefusal("forbidden", status=403)


def land(ctx: LaunchContext) -> str:
    """The page a fresh launch lands on, rendered in the launch response itself."""
    if ctx.owner_stale and (ctx.course_link is None or not ctx.views):
        raise LtiRefusal("owner_launch_stale", status=401)
    if ctx.course_link is None:
        if ctx.course_owner:
            return render_template(
                "link_course.html", ctx=ctx, programmes=sorted(services().programmes.values(), key=lambda p: p.title)
            )
        return render_template("not_set_up.html", ctx=ctx)
    if ctx.data.get("message_type") == "LtiDeepLinkingRequest":  # only owners' launches get here (start_launch)
        require_owner(ctx)  # and only while their authority is fresh (a reload an hour on)
        return render_template("lti/deep_link_select.html", ctx=ctx)
    if not ctx.views:
        return render_template("unknown_user.html", ctx=ctx, programme=ctx.programme)
    from lti_tool.views.pages import render_view

    return render_view(ctx, ctx.default_view)
