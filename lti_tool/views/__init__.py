"""Pages inside Canvas after a launch. Every request carries the launch token (header, form field or query) and
its authority is re-checked from the database."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, request, url_for
from flask.typing import ResponseReturnValue

from kurspakke.services.access import LinkError, link_course
from lti_tool.lti.errors import LtiRefusal
from lti_tool.services import db, services
from lti_tool.views.context import VIEW_TITLES, current_launch, land
from lti_tool.views.pages import render_view

bp = Blueprint("app", __name__, url_prefix="/app")


@bp.get("/")
def home() -> ResponseReturnValue:
    return land(current_launch())


@bp.get("/<view>")
def page(view: str) -> ResponseReturnValue:
    if view not in VIEW_TITLES:
        abort(404)
    ctx = current_launch()
    if view not in ctx.views:
        raise LtiRefusal("forbidden", status=403)
    return render_view(ctx, view)


@bp.post("/link")
def link() -> ResponseReturnValue:
    """A course owner launching from a course not yet linked picks the programme it sells."""
    ctx = current_launch()
    if not ctx.course_owner or not ctx.data.get("context_id"):
        raise LtiRefusal("forbidden", status=403)
    programme = services().programmes.get(request.form.get("programme", ""))
    if programme is None:
        raise LtiRefusal("bad_request", status=422, detail="unknown programme")
    try:
        link_course(
            db(),
            programme,
            platform_instance=ctx.data["platform_instance"],
            context_id=ctx.data["context_id"],
            canvas_course_id=ctx.data.get("canvas_course_id"),
            title=ctx.data.get("context_title") or programme.title,
            linked_by_sub=ctx.data["sub"],
        )
    except LinkError as exc:
        raise LtiRefusal(str(exc), status=409) from exc
    return redirect(url_for("app.home", lt=ctx.token), code=303)
