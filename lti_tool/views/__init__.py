"""Pages inside Canvas after a launch. Every request carries the launch token (header or form field, never the
address) and its authority is re-checked from the database.

A page's address carries no token, so a reload (a GET without one) answers with a small page whose script posts
the token the frame keeps in its sessionStorage back to the same address (lti_tool/static/js/launch.js)."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request
from flask.typing import ResponseReturnValue

from kurspakke.services.access import LinkError, link_course
from lti_tool.lti.errors import LtiRefusal
from lti_tool.services import commit, db, read_launch_token, services, state_store
from lti_tool.views.context import (
    TOKEN_FIELD,
    VIEW_TITLES,
    current_launch,
    land,
    launch_token_of_request,
    require_owner,
)
from lti_tool.views.pages import render_view

bp = Blueprint("app", __name__, url_prefix="/app")


def _resume() -> ResponseReturnValue | None:
    """For a GET without a token (a reload, a bookmarked or copied address): the page that posts the frame's token.
    An address that carries a token is refused: tokens never travel in addresses, and one that does has been
    exposed."""
    if TOKEN_FIELD in request.args:
        # Someone may have copied, shared or logged this address: the session it names ends here.
        launch_id = read_launch_token(request.args.get(TOKEN_FIELD, ""))
        if launch_id is not None and state_store().end_launch(launch_id):
            commit()
        raise LtiRefusal("launch_token_in_address", detail="launch token in the address")
    if request.method == "GET" and not launch_token_of_request():
        return render_template("resume.html")
    return None


@bp.route("/", methods=["GET", "POST"])
def home() -> ResponseReturnValue:
    return _resume() or land(current_launch())


@bp.route("/<view>", methods=["GET", "POST"])
def page(view: str) -> ResponseReturnValue:
    if view not in VIEW_TITLES:
        abort(404)
    resume = _resume()
    if resume is not None:
        return resume
    ctx = current_launch()
    if view == "owner":
        require_owner(ctx)
    if view not in ctx.views:
        raise LtiRefusal("forbidden", status=403)
    return render_view(ctx, view)


@bp.post("/link")
def link() -> ResponseReturnValue:
    """A course owner launching from a course not yet linked picks the programme it sells."""
    ctx = current_launch()
    require_owner(ctx)
    if not ctx.data.get("context_id"):
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
    # The course's landing page at once, with access decided again now that the course is linked.
    g.pop("launch", None)
    return land(current_launch())


# The participant's and the mentor's pages have routes on this blueprint; importing them registers the routes.
from lti_tool.views import certificate_views, progress_views, reminder_views  # noqa: E402, F401
