"""One render function per role view. Views other issues fill (progress, groups, seats) say so plainly."""

from __future__ import annotations

from flask import render_template

from kurspakke.services.access import unlicensed_users
from lti_tool.services import db
from lti_tool.views.context import VIEW_TITLES, LaunchContext


def render_view(ctx: LaunchContext, view: str) -> str:
    common = {"ctx": ctx, "view": view, "titles": VIEW_TITLES, "programme": ctx.programme}
    if view == "owner":
        assert ctx.course_link is not None
        return render_template("views/owner.html", unlicensed=unlicensed_users(db(), ctx.course_link), **common)
    return render_template(f"views/{view}.html", organisations=ctx.access.organisations, **common)
