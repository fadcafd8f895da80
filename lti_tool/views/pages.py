"""One render function per role view. Views other issues fill (progress, groups, seats) say so plainly."""

from __future__ import annotations

from flask import render_template, url_for

from kurspakke.services.access import unlicensed_users
from kurspakke.services.magic_links import administered
from lti_tool.services import db
from lti_tool.views.context import VIEW_TITLES, LaunchContext


def render_view(ctx: LaunchContext, view: str) -> str:
    # progress_views' routes sit on the app blueprint, which imports this module: import it when rendering.
    from lti_tool.views.certificate_views import own_certificate
    from lti_tool.views.progress_views import SYMBOLS, cell_labels, mentor_groups, participant_page

    common = {"ctx": ctx, "view": view, "titles": VIEW_TITLES, "programme": ctx.programme}
    if view == "owner":
        assert ctx.course_link is not None
        return render_template("views/owner.html", unlicensed=unlicensed_users(db(), ctx.course_link), **common)
    if view == "licences":
        return render_template("views/licences.html", administered=_administered(ctx), **common)
    if view == "participant":
        return render_template(
            "views/participant.html",
            page=(page := participant_page(ctx)),
            own=own_certificate(ctx, page.progress),
            symbols=SYMBOLS,
            labels=cell_labels(),
            **common,
        )
    if view == "mentor":
        return render_template(
            "views/mentor.html",
            groups=mentor_groups(ctx),
            own=own_certificate(ctx, mentor=True),
            symbols=SYMBOLS,
            labels=cell_labels(),
            **common,
        )
    return render_template(f"views/{view}.html", organisations=ctx.access.organisations, **common)


def _administered(ctx: LaunchContext) -> list[dict[str, str]]:
    """The organisations whose licences this person administers in the launched course's programme, with the
    address of each one's licence pages (lti_tool/views/licence_admin.py re-checks it on every request)."""
    if ctx.person is None or ctx.course_link is None:
        return []
    programme_id = ctx.course_link.programme_id
    return [
        {
            "name": row.organisation_name,
            "orgnr": row.orgnr,
            "url": url_for("licence_admin.overview", org_id=row.organisation_id, programme_id=programme_id),
        }
        for row in administered(db(), ctx.person.id)
        if row.programme_id == programme_id
    ]
