"""The course owner's sessions of the whole run (``/owner/sessions``): the sessions the programme holds for everyone
at once — the learning network's dated gatherings — put at a time and place, then attended by the teams (their
leaders, the organisations' mentors, record attendance from their own pages). Group sessions are the mentors' to
schedule and are not listed here.

As every owner page it lives inside Canvas (the launch token in a POST, business_launch() on every request); a
refused plan answers 422 with the message beside the form, nothing written."""

from __future__ import annotations

from flask import request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from kurspakke.meetings.models import FORMATS, Meeting
from kurspakke.meetings.services import MeetingError, schedule
from kurspakke.programmes import Programme
from lti_tool.i18n import gettext
from lti_tool.services import commit, db
from lti_tool.views import _resume
from lti_tool.views.context import LaunchContext
from lti_tool.views.owner_pages import _page, bp, business_launch
from lti_tool.views.progress_views import (
    ERROR_FIELDS,
    FORMAT_LABELS,
    MEETING_STATUS,
    OSLO,
    meeting_message,
    parse_plan,
    plan_values,
)

WHOLE_RUN = ("network",)


def _run_meetings(programme: Programme) -> dict[str, Meeting]:
    """The programme's whole-run meetings (no group, no organisation), by session key. One statement."""
    rows = db().scalars(
        select(Meeting).where(
            Meeting.programme_id == programme.id, Meeting.group_id.is_(None), Meeting.organisation_id.is_(None)
        )
    )
    return {m.session_key: m for m in rows}


def _sessions_page(
    ctx: LaunchContext,
    programme: Programme,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    failed: str | None = None,
    error_field: str | None = None,
    posted: dict[str, str] | None = None,
) -> ResponseReturnValue:
    meetings = _run_meetings(programme)
    sessions = [
        {
            "session": s,
            "meeting": meetings.get(s.id),
            "plan": posted if posted is not None and failed == s.id else plan_values(meetings.get(s.id), s),
            "formats": [f for f in FORMATS if s.format in ("either", f)],
        }
        for s in programme.sessions
        if s.kind in WHOLE_RUN
    ]
    html = _page(
        "owner/sessions.html",
        ctx,
        programme,
        url_for("owner_pages.sessions"),
        sessions=sessions,
        format_labels=FORMAT_LABELS,
        notice=notice,
        error=error,
        failed=failed,
        error_field=error_field,
    )
    return html, status


@bp.route("/sessions", methods=["GET", "POST"])
def sessions() -> ResponseReturnValue:
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme = business_launch()
    key = request.form.get("session", "")
    if not request.form.get("save"):
        return _sessions_page(ctx, programme)
    programme_session = next((s for s in programme.sessions if s.id == key and s.kind in WHOLE_RUN), None)
    if programme_session is None:
        return _sessions_page(ctx, programme, status=404, error=gettext("The programme has no such session."))
    fields = ("date", "time", "duration", "format", "place", "video_url")
    posted = {name: request.form.get(name, "")[:600] for name in fields}
    actor = f"course-owner:{ctx.data.get('issuer', '')}|{ctx.data.get('sub', '')}"
    try:
        saved = schedule(db(), programme, key, parse_plan(posted), actor=actor)
    except MeetingError as exc:
        return _sessions_page(
            ctx,
            programme,
            status=MEETING_STATUS.get(exc.key, 422),
            error=meeting_message(exc),
            failed=key,
            error_field=ERROR_FIELDS.get(exc.key),
            posted=posted,
        )
    commit()
    notice = gettext(
        "%(session)s is scheduled for %(when)s. It appears in the course calendar in Canvas shortly.",
        session=programme_session.title,
        when=saved.starts_at.astimezone(OSLO).strftime("%d.%m.%Y %H:%M"),
    )
    return _sessions_page(ctx, programme, notice=notice)


__all__ = ["sessions"]
