"""The participant's "Min fremdrift" and the mentor's pages inside Canvas: each group's matrix of participants ×
(modules, sessions), scheduling a session, recording attendance (keyboard only is enough: radio buttons in a
fieldset per participant), make-ups, and the group's spreadsheet export.

Routes sit on the ``app`` blueprint (lti_tool/views/__init__.py), so they share its launch handling: the token is
posted, a GET without it gets the resume page. Who is a mentor of which group is read from the database on every
request; a group the launching person does not lead answers 404, as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from sqlalchemy import select

from kurspakke.groups.models import GroupMentor, MentorGroup
from kurspakke.groups.planning import mixed
from kurspakke.groups.services import mentors as group_mentors
from kurspakke.licences.models import Seat
from kurspakke.meetings.models import FORMATS, Meeting
from kurspakke.meetings.services import Mark, MeetingError, Plan, record_attendance, record_makeup, schedule
from kurspakke.models import Person, utcnow
from kurspakke.programmes import Programme
from kurspakke.programmes import Session as ProgrammeSession
from kurspakke.progress.export import export_csv
from kurspakke.progress.overview import ABSENT, MAKEUP, PRESENT, PersonProgress, meetings_for, people_progress
from kurspakke.progress.requests import UnknownSyncRequest, request_sync, sync_state
from kurspakke.reminders.services import recent_nudges
from lti_tool.i18n import format_day, gettext
from lti_tool.i18n_marker import N_
from lti_tool.lti.errors import LtiRefusal
from lti_tool.services import commit, db
from lti_tool.views import _resume, bp
from lti_tool.views.context import VIEW_TITLES, LaunchContext, current_launch

OSLO = ZoneInfo("Europe/Oslo")
VIEW = "mentor"

MEETING_MESSAGES = {
    "session_unknown": N_("The programme has no such session."),
    "session_needs_group": N_("%(session)s is a group session: schedule it for a group."),
    "session_not_for_group": N_("%(session)s belongs to the whole programme, not to one group."),
    "group_other_programme": N_("The group belongs to another programme."),
    "meeting_time_invalid": N_("Write the date as dd.mm.yyyy and the time as hh:mm."),
    "meeting_too_far_ahead": N_("The date is more than two years ahead. Check the year."),
    "meeting_duration_invalid": N_("The duration must be between 1 and %(maximum)s minutes."),
    "meeting_duration_out_of_range": N_(
        "The programme sets this session to between %(minimum)s and %(maximum)s minutes."
    ),
    "meeting_format_invalid": N_("Choose physical or digital."),
    "meeting_format_not_allowed": N_("The programme holds this session only as %(format)s."),
    "meeting_place_missing": N_("Write where the session takes place."),
    "meeting_place_too_long": N_("The place is too long (at most %(maximum)s characters)."),
    "meeting_video_url_missing": N_("A digital session needs a video link."),
    "meeting_video_url_invalid": N_("The video link must be a full https:// address."),
    "meeting_has_attendance": N_(
        "Attendance has been recorded for this session, so it cannot be moved into the future or cancelled."
    ),
    "session_not_started": N_("Attendance can be recorded once the session has started."),
    "participant_not_in_group": N_("One of the participants is not in this group."),
    "not_mentor_of_group": N_("You are not a mentor of this participant's group."),
    "leader_not_mentor": N_("The leading mentor must be a mentor of the group."),
    "attendance_note_too_long": N_("A note can be at most %(maximum)s characters."),
    "attendance_note_invalid": N_("The note contains characters that are not allowed."),
    "attendance_note_missing": N_("Write what the participant did to make up the session."),
}
MEETING_STATUS = {
    "meeting_has_attendance": 409,
    "session_not_started": 409,
    "participant_not_in_group": 403,
    "not_mentor_of_group": 403,
}
# Which field of the schedule form a refusal is about (marked invalid, described by the message).
ERROR_FIELDS = {
    "meeting_time_invalid": "date",
    "meeting_too_far_ahead": "date",
    "meeting_duration_invalid": "duration",
    "meeting_duration_out_of_range": "duration",
    "meeting_format_invalid": "format",
    "meeting_format_not_allowed": "format",
    "meeting_place_missing": "place",
    "meeting_place_too_long": "place",
    "meeting_video_url_missing": "video_url",
    "meeting_video_url_invalid": "video_url",
}
FORMAT_LABELS = {"physical": N_("physical"), "digital": N_("digital"), "either": N_("physical or digital")}


def meeting_message(error: MeetingError) -> str:
    params = dict(error.params)
    if "format" in params:
        params["format"] = gettext(FORMAT_LABELS.get(str(params["format"]), N_("physical or digital")))
    return gettext(MEETING_MESSAGES.get(error.key, N_("The request was not understood.")), **params)


# --- the participant -------------------------------------------------------------------------------------------


@dataclass
class SessionLine:
    session: ProgrammeSession
    state: str | None  # PRESENT, MAKEUP, ABSENT or None
    meeting: Meeting | None


@dataclass
class ParticipantPage:
    progress: PersonProgress | None
    group: MentorGroup | None = None
    mentors: list[Person] = field(default_factory=list)
    sessions: list[SessionLine] = field(default_factory=list)
    next_meeting: SessionLine | None = None


def participant_page(ctx: LaunchContext) -> ParticipantPage:
    programme = ctx.programme
    if ctx.person is None or programme is None:
        return ParticipantPage(None)
    session = db()
    mine = people_progress(session, programme, person_id=ctx.person.id)
    if not mine:
        return ParticipantPage(None)
    progress = mine[0]
    page = ParticipantPage(progress)
    meetings: dict[str, Meeting] = {}
    if progress.group_id is not None:
        page.group = session.get(MentorGroup, progress.group_id)
        assert page.group is not None
        page.mentors = group_mentors(session, page.group)
        meetings = meetings_for(session, programme, page.group)
    else:
        meetings = _run_meetings(programme, progress.organisation_id)
    now = utcnow()
    for s in programme.sessions:
        line = SessionLine(s, progress.sessions.get(s.id), meetings.get(s.id))
        page.sessions.append(line)
        upcoming = line.meeting is not None and line.meeting.starts_at >= now and line.state is None
        if upcoming and (page.next_meeting is None or _starts(line) < _starts(page.next_meeting)):
            page.next_meeting = line
    return page


def _starts(line: SessionLine) -> datetime:
    assert line.meeting is not None
    return line.meeting.starts_at


def _run_meetings(programme: Programme, organisation_id: int) -> dict[str, Meeting]:
    """Meetings of a participant in no group: their organisation's, else the whole run's."""
    rows = db().scalars(
        select(Meeting).where(
            Meeting.programme_id == programme.id,
            Meeting.group_id.is_(None),
            (Meeting.organisation_id == organisation_id) | Meeting.organisation_id.is_(None),
        )
    )
    chosen: dict[str, Meeting] = {}
    for m in sorted(rows, key=lambda m: m.organisation_id is None):
        chosen.setdefault(m.session_key, m)
    return chosen


# --- the mentor ------------------------------------------------------------------------------------------------


@dataclass
class GroupPage:
    group: MentorGroup
    mentors: list[Person]
    people: list[PersonProgress]
    meetings: dict[str, Meeting]
    mixed: bool
    # Participant seats nudged by e-mail for falling behind in the last 14 days, with the latest nudge: the matrix
    # says so beside their name, so the mentor knows who has heard from the tool before following up.
    nudged: dict[int, datetime] = field(default_factory=dict)

    def nudged_on(self, seat_id: int) -> str | None:
        """The day (dd.mm, Oslo) of the seat's latest nudge, when there is one."""
        sent = self.nudged.get(seat_id)
        return sent.astimezone(OSLO).strftime("%d.%m") if sent is not None else None

    def started(self, key: str) -> bool:
        meeting = self.meetings.get(key)
        return meeting is not None and meeting.starts_at <= utcnow()

    def cells(self, programme: Programme, labels: dict[str, str]) -> list[tuple[PersonProgress, list[Markup]]]:
        """Each participant with the matrix's cells (modules, then sessions) as markup, built here rather than by a
        template macro per cell: a symbol hidden from screen readers, always beside its words."""
        rows = []
        for p in self.people:
            cells = [module_cell(p.modules.get(m.id), labels) for m in programme.modules]
            cells += [session_cell(p.sessions.get(s.id), labels) for s in programme.sessions]
            rows.append((p, cells))
        return rows


_SYMBOL = Markup('<span class="sym{css}" aria-hidden="true">{symbol}</span>')
_SHOWN = Markup(" <span>{text}</span>")
_HIDDEN = Markup('<span class="visually-hidden">{text}</span>')
_SESSION_CELLS = {
    PRESENT: (" sym-present", "✓", "attended"),
    MAKEUP: (" sym-present", "↺", "made up"),
    ABSENT: (" sym-absent", "✗", "absent"),
}


def module_cell(done_at: datetime | None, labels: dict[str, str]) -> Markup:
    if done_at is None:
        return _SYMBOL.format(css="", symbol="–") + _HIDDEN.format(text=labels["not completed"])
    day = format_day(done_at)
    return (
        _SYMBOL.format(css=" sym-done", symbol="✓")
        + _SHOWN.format(text=day)
        + _HIDDEN.format(text=" " + labels["completed"])
    )


def session_cell(state: str | None, labels: dict[str, str]) -> Markup:
    known = _SESSION_CELLS.get(state or "")
    if known is None:
        return _SYMBOL.format(css="", symbol="–") + _HIDDEN.format(text=labels["not recorded"])
    css, symbol, word = known
    return _SYMBOL.format(css=css, symbol=symbol) + _SHOWN.format(text=labels[word])


def _led_groups(ctx: LaunchContext) -> list[MentorGroup]:
    if ctx.person is None or ctx.programme is None:
        return []
    return list(
        db().scalars(
            select(MentorGroup)
            .join(GroupMentor, GroupMentor.group_id == MentorGroup.id)
            .where(GroupMentor.person_id == ctx.person.id, MentorGroup.programme_id == ctx.programme.id)
            .order_by(MentorGroup.name, MentorGroup.id)
        )
    )


def group_page(programme: Programme, group: MentorGroup) -> GroupPage:
    session = db()
    people = people_progress(session, programme, group_id=group.id)
    return GroupPage(
        group=group,
        mentors=group_mentors(session, group),
        people=people,
        meetings=meetings_for(session, programme, group),
        mixed=mixed([p.workplace for p in people]),
        nudged=recent_nudges(session, group.id) if people else {},
    )


def mentor_groups(ctx: LaunchContext) -> list[GroupPage]:
    assert ctx.programme is not None
    return [group_page(ctx.programme, g) for g in _led_groups(ctx)]


def _mentor_launch(group_id: int) -> tuple[LaunchContext, Programme, MentorGroup, Person]:
    """The launch of this request, when its person leads the group. Raises LtiRefusal 403 (not a mentor view) or
    404 (not their group: another group, another organisation, or none)."""
    ctx = current_launch()
    if VIEW not in ctx.views or ctx.person is None or ctx.programme is None:
        raise LtiRefusal("forbidden", status=403)
    group = next((g for g in _led_groups(ctx) if g.id == group_id), None)
    if group is None:
        raise LtiRefusal("not_found", status=404)
    person = db().get(Person, ctx.person.id)
    assert person is not None
    return ctx, ctx.programme, group, person


def _actor(ctx: LaunchContext) -> str:
    assert ctx.person is not None
    return f"mentor:{ctx.person.id}"


def _programme_session(programme: Programme, key: str) -> ProgrammeSession:
    found = next((s for s in programme.sessions if s.id == key), None)
    if found is None:
        raise LtiRefusal("not_found", status=404)
    return found


def _render(template: str, ctx: LaunchContext, status: int = 200, **values: Any) -> ResponseReturnValue:
    page = render_template(
        template,
        ctx=ctx,
        view=VIEW,
        titles=VIEW_TITLES,
        programme=ctx.programme,
        symbols=SYMBOLS,
        labels=cell_labels(),
        **values,
    )
    return page, status


SYMBOLS = {PRESENT: "✓", MAKEUP: "↺", ABSENT: "✗", None: "–"}
CELL_LABELS = {
    "completed": N_("completed"),
    "not completed": N_("not completed"),
    "attended": N_("attended"),
    "made up": N_("made up"),
    "absent": N_("absent"),
    "not recorded": N_("not recorded"),
}


def cell_labels() -> dict[str, str]:
    """The matrix cells' words in the page's language, translated once per page."""
    return {key: gettext(text) for key, text in CELL_LABELS.items()}


def _overview(ctx: LaunchContext, *, notice: str | None = None) -> ResponseReturnValue:
    from lti_tool.views.certificate_views import own_certificate

    return _render(
        "views/mentor.html", ctx, groups=mentor_groups(ctx), notice=notice, own=own_certificate(ctx, mentor=True)
    )


# --- scheduling --------------------------------------------------------------------------------------------------


def plan_values(meeting: Meeting | None, programme_session: ProgrammeSession) -> dict[str, str]:
    """A schedule form's fields: the meeting's, else what the programme file fixes (date, time, place, duration)."""
    if meeting is None:
        return {
            "date": programme_session.date.isoformat() if programme_session.date else "",
            "time": programme_session.starts_at.strftime("%H:%M") if programme_session.starts_at else "",
            "duration": str(programme_session.duration_minutes or ""),
            "format": programme_session.format if programme_session.format != "either" else "physical",
            "place": programme_session.place or "",
            "video_url": "",
        }
    local = meeting.starts_at.astimezone(OSLO)
    return {
        "date": local.strftime("%Y-%m-%d"),
        "time": local.strftime("%H:%M"),
        "duration": str(meeting.duration_minutes),
        "format": meeting.format,
        "place": meeting.place,
        "video_url": meeting.video_url,
    }


def parse_plan(form: dict[str, str]) -> Plan:
    """The schedule form's fields as a Plan; the date and time are Oslo's. Raises MeetingError for what cannot be
    read (meeting_time_invalid, meeting_duration_invalid)."""
    try:
        day = date.fromisoformat(form.get("date", "").strip())
        clock = time.fromisoformat(form.get("time", "").strip())
    except ValueError as exc:
        raise MeetingError("meeting_time_invalid") from exc
    starts_at = datetime.combine(day, clock.replace(tzinfo=None)).replace(tzinfo=OSLO).astimezone(UTC)
    raw = form.get("duration", "").strip()
    if not raw.isdigit() or len(raw) > 4:
        raise MeetingError("meeting_duration_invalid", maximum=600)
    return Plan(
        starts_at=starts_at,
        duration_minutes=int(raw),
        format=form.get("format", ""),
        place=form.get("place", ""),
        video_url=form.get("video_url", ""),
    )


@bp.route("/mentor/groups/<int:group_id>/sessions/<key>/schedule", methods=["GET", "POST"])
def schedule_session(group_id: int, key: str) -> ResponseReturnValue:
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme, group, _ = _mentor_launch(group_id)
    programme_session = _programme_session(programme, key)
    page = group_page(programme, group)
    meeting = page.meetings.get(key)
    if meeting is not None and meeting.group_id != group.id:
        # The organisation's or the whole run's meeting: not the mentor's to move.
        raise LtiRefusal("forbidden", status=403)
    error: str | None = None
    error_field: str | None = None
    status = 200
    values = plan_values(meeting, programme_session)
    if request.form.get("save"):
        values = {k: request.form.get(k, "") for k in values}
        try:
            saved = schedule(db(), programme, key, parse_plan(values), group=group, actor=_actor(ctx))
        except MeetingError as exc:
            error, status = meeting_message(exc), MEETING_STATUS.get(exc.key, 422)
            error_field = ERROR_FIELDS.get(exc.key)
        else:
            commit()
            local = saved.starts_at.astimezone(OSLO)
            notice = gettext(
                "%(session)s for %(group)s is scheduled for %(when)s. The Canvas calendar is updated shortly.",
                session=programme_session.title,
                group=group.name,
                when=local.strftime("%d.%m.%Y %H:%M"),
            )
            return _overview(ctx, notice=notice)
    return _render(
        "views/mentor_schedule.html",
        ctx,
        status,
        page=page,
        session=programme_session,
        values=values,
        formats=[f for f in FORMATS if programme_session.format in ("either", f)],
        format_labels=FORMAT_LABELS,
        error=error,
        error_field=error_field,
    )


# --- attendance --------------------------------------------------------------------------------------------------


@bp.route("/mentor/groups/<int:group_id>/sessions/<key>/attendance", methods=["GET", "POST"])
def attendance(group_id: int, key: str) -> ResponseReturnValue:
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme, group, person = _mentor_launch(group_id)
    programme_session = _programme_session(programme, key)
    page = group_page(programme, group)
    meeting = page.meetings.get(key)
    error: str | None = None
    status = 200
    if request.form.get("save"):
        if meeting is None:
            raise LtiRefusal("not_found", status=404)
        seats = {s.id: s for s in db().scalars(select(Seat).where(Seat.id.in_([p.seat_id for p in page.people])))}
        marks: list[Mark] = []
        for p in page.people:
            choice = request.form.get(f"seat-{p.seat_id}", "")
            if choice in ("present", "absent"):
                marks.append(Mark(seats[p.seat_id], choice == "present", request.form.get(f"note-{p.seat_id}", "")))
        leader = person
        leader_id = request.form.get("led_by", "")
        if leader_id.isdigit() and int(leader_id) != person.id:
            leader = next((m for m in page.mentors if m.id == int(leader_id)), None)  # type: ignore[assignment]
            if leader is None:
                error, status = meeting_message(MeetingError("leader_not_mentor")), 422
        if error is None:
            try:
                record_attendance(db(), meeting, marks, recorder=person, led_by=leader, actor=_actor(ctx))
            except MeetingError as exc:
                error, status = meeting_message(exc), MEETING_STATUS.get(exc.key, 422)
            else:
                commit()
                notice = gettext(
                    "Attendance for %(session)s in %(group)s is saved.",
                    session=programme_session.title,
                    group=group.name,
                )
                return _overview(ctx, notice=notice)
    elif request.form.get("makeup"):
        seat_id = request.form.get("makeup_seat", "")
        seat = db().get(Seat, int(seat_id)) if seat_id.isdigit() else None
        if seat is None or seat.id not in {p.seat_id for p in page.people}:
            error, status = meeting_message(MeetingError("participant_not_in_group")), 403
        else:
            try:
                record_makeup(
                    db(),
                    programme,
                    seat,
                    key,
                    recorder=person,
                    note=request.form.get("makeup_note", ""),
                    actor=_actor(ctx),
                )
            except MeetingError as exc:
                error, status = meeting_message(exc), MEETING_STATUS.get(exc.key, 422)
            else:
                commit()
                return _overview(ctx, notice=gettext("The make-up is recorded."))
    return _render(
        "views/mentor_attendance.html",
        ctx,
        status,
        page=page,
        session=programme_session,
        meeting=meeting,
        started=meeting is not None and meeting.starts_at <= utcnow(),
        error=error,
        form=request.form,
        person=person,
    )


# --- "Oppdater nå" -----------------------------------------------------------------------------------------------


def _sync_launch() -> tuple[LaunchContext, Programme]:
    """A mentor or a course owner of the programme's course may ask for a sync now. Raises LtiRefusal 403."""
    ctx = current_launch()
    if ctx.programme is None or not (VIEW in ctx.views or ("owner" in ctx.views and not ctx.owner_stale)):
        raise LtiRefusal("forbidden", status=403)
    return ctx, ctx.programme


@bp.post("/progress/sync")
def request_progress_sync() -> ResponseReturnValue:
    """Ask the worker for a progress sync now; answers with a page whose indicator follows it (sync.js polls
    ``sync_status``; without scripts the page says to come back in a minute)."""
    ctx, programme = _sync_launch()
    actor = _actor(ctx) if ctx.person is not None else f"course-owner:{ctx.data.get('sub', '')}"
    step_id = request_sync(db(), programme.id, reason="button", actor=actor)
    commit()
    back = "mentor" if VIEW in ctx.views else "owner"
    return _render("views/sync_status.html", ctx, step_id=step_id, back=back, state=sync_state(db(), step_id))


@bp.post("/progress/sync/<int:step_id>")
def sync_status(step_id: int) -> ResponseReturnValue:
    """The requested sync's state as JSON, for the page's indicator (the token in the X-Launch-Token header)."""
    _ctx, programme = _sync_launch()
    try:
        state = sync_state(db(), step_id, programme_id=programme.id)
    except UnknownSyncRequest:
        raise LtiRefusal("not_found", status=404) from None
    labels = {
        "pending": N_("Waiting for the worker…"),
        "running": N_("Reading quiz results from Canvas…"),
        "done": N_("Done: the overview is up to date."),
        "failed": N_("Canvas could not be read. The regular update tries again within 10 minutes."),
    }
    return {"status": state["status"], "message": gettext(labels[state["status"]])}


# --- export ------------------------------------------------------------------------------------------------------


@bp.post("/mentor/groups/<int:group_id>/export.csv")
def group_export(group_id: int) -> ResponseReturnValue:
    _ctx, programme, group, _ = _mentor_launch(group_id)
    body = export_csv(db(), programme, group_id=group.id)
    safe = "".join(c if c.isascii() and c.isalnum() else "-" for c in group.name).strip("-")[:40] or "gruppe"
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{programme.id}-{safe}.csv"'},
    )


__all__ = ["mentor_groups", "participant_page"]
