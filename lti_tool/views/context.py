"""The launch context of a request: what a validated launch established, re-checked against the tool's own
records on every request (authority is never taken from the client)."""

from __future__ import annotations

import secrets
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
    resolve_access,
)
from kurspakke.services.lti_state import NonceReused
from kurspakke.services.platforms import RegistrationInfo
from kurspakke.services.platforms import platform_instance as platform_instance_of
from lti_tool.i18n import pick_locale
from lti_tool.i18n_marker import N_
from lti_tool.lti.errors import LtiRefusal
from lti_tool.lti.message_launch import CLAIM
from lti_tool.services import db, make_launch_token, read_launch_token, services, state_store

NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
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
        return url_for("app.page", view=view, lt=self.token)


def _object(value: Any) -> dict[str, Any]:
    """A claim that should be a JSON object; anything else counts as absent (never an AttributeError)."""
    return value if isinstance(value, dict) else {}


def _str(value: Any, limit: int = 255) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _canvas_id(value: Any) -> str | None:
    # An unsubstituted "$Canvas.user.id" means the platform did not fill it in.
    return value if isinstance(value, str) and value.isdigit() and len(value) <= 20 else None


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 2048:
        return None
    return value if urlsplit(value).scheme in {"http", "https"} else None


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
    dl_settings = claims.get(DL_SETTINGS) if isinstance(claims.get(DL_SETTINGS), dict) else None
    if dl_settings is not None:
        return_url = _http_url(dl_settings.get("deep_link_return_url"))
        if return_url is None:
            raise LtiRefusal("claims_invalid", detail="deep_link_return_url")
        dl_settings = {"deep_link_return_url": return_url, "data": dl_settings.get("data")}
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
    message_type = claims[CLAIM + "message_type"]
    if message_type == "LtiDeepLinkingRequest" and not is_course_owner_role(roles):
        raise LtiRefusal("forbidden", status=403)  # only course owners place links
    session = db()
    link = services().course_links.get(session, platform_instance, launcher.context_id)
    view = custom.get("kurspakke_view")
    nrps = _object(claims.get(NRPS))
    # No person id: later requests find the person by the identities this launch matched or recorded, so the
    # launch can be recorded in the same statement that finds the person.
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
        "canvas_user_id": launcher.canvas_user_id,
        "resource_link_id": _str(resource_link.get("id")),
        "roles": roles,
        "locale": pick_locale(_str(claims.get("locale")) or _str(presentation.get("locale"))),
        "view": view if view in VIEW_TITLES else None,
        "nrps_url": _http_url(nrps.get("context_memberships_url")),
        "ags": claims.get(AGS) if isinstance(claims.get(AGS), dict) else None,
        "deep_linking_settings": dl_settings,
    }
    launch_id = secrets.token_urlsafe(24)
    read = person_query(launcher, link.programme_id) if link is not None else None
    try:
        rows = state_store().record_launch(launch_id, nonce, data, services().settings.launch_token_ttl_seconds, read)
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


def current_launch() -> LaunchContext:
    """The launch of this request, from the signed token in the header, form or query. Access is recomputed from
    the database each time. Raises LtiRefusal (401) when the token is missing, invalid or expired."""
    if "launch" in g:
        return g.launch
    token = request.headers.get(TOKEN_HEADER) or request.form.get(TOKEN_FIELD) or request.args.get(TOKEN_FIELD) or ""
    launch_id = read_launch_token(token)
    data = state_store().get_launch(launch_id) if launch_id else None
    if launch_id is None or data is None:
        raise LtiRefusal("launch_token_invalid", status=401)
    session = db()
    link = services().course_links.get(session, data["platform_instance"], data.get("context_id"))
    roles = data.get("roles", [])
    access = Access(course_link=link, course_owner=is_course_owner_role(roles), person=None)
    if link is not None:
        launcher = Launcher(
            issuer=data["issuer"],
            sub=data["sub"],
            platform_instance=data["platform_instance"],
            roles=frozenset(roles),
            context_id=data.get("context_id"),
            canvas_user_id=data.get("canvas_user_id"),
        )
        access.person, access.roles, access.organisations = known_person(session, launcher, link.programme_id)
    return _context(launch_id, token, data, access)


def land(ctx: LaunchContext) -> str:
    """The page a fresh launch lands on, rendered in the launch response itself."""
    if ctx.course_link is None:
        if ctx.course_owner:
            return render_template(
                "link_course.html", ctx=ctx, programmes=sorted(services().programmes.values(), key=lambda p: p.title)
            )
        return render_template("not_set_up.html", ctx=ctx)
    if ctx.data.get("message_type") == "LtiDeepLinkingRequest":  # only owners get here (start_launch)
        return render_template("lti/deep_link_select.html", ctx=ctx)
    if not ctx.views:
        return render_template("unknown_user.html", ctx=ctx, programme=ctx.programme)
    from lti_tool.views.pages import render_view

    return render_view(ctx, ctx.default_view)
