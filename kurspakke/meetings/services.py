"""Scheduling a programme's sessions and recording who attended (DESIGN.md §2 "completion rule", §3 "Groups and
sessions").

Plain functions over a session: they flush, the caller commits. Every change writes an AuditEntry (entity_type
"meeting" or "attendance"); scheduling also writes a ``meeting.sync`` outbox step, in the same transaction, that
creates or moves the Canvas calendar event. A refusal raises MeetingError before anything is written.

Who may record attendance at a meeting:
- a group meeting: a mentor of that group, for the group's participants;
- an organisation's meeting (its whole run, e.g. the introduction): a mentor of the organisation, for its
  participants;
- a meeting of the programme's whole run (the learning network's dated sessions): a mentor of the participant's
  organisation.
The course owner may record for anyone (``as_owner``). Attendance is recorded only once the meeting has started.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.certificates.requests import request_evaluation
from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.licences.models import Seat, SeatKind
from kurspakke.licences.services import LicenceError, audit
from kurspakke.meetings.models import FORMAT_DIGITAL, FORMAT_PHYSICAL, FORMATS, Attendance, Meeting
from kurspakke.models import Organisation, Person, ProgrammeRole, ProgrammeRoleKind, utcnow
from kurspakke.outbox.services import enqueue
from kurspakke.programmes import Programme
from kurspakke.programmes import Session as ProgrammeSession
from kurspakke.reminders.services import notify_cancelled_later, notify_later, where_of

MEETING_SYNC = "meeting.sync"
MAX_DURATION = 600
MAX_PLACE = 255
MAX_URL = 500
MAX_NOTE = 500
# How far ahead a meeting may be put: beyond this a date is more likely a typing error than a plan.
MAX_AHEAD = timedelta(days=2 * 366)


class MeetingError(LicenceError):
    """A refused scheduling or attendance change; ``key`` names the message in the catalogue, ``params`` fill it."""


def _session_of(programme: Programme, key: str) -> ProgrammeSession:
    for s in programme.sessions:
        if s.id == key:
            return s
    raise MeetingError("session_unknown", session=key)


def meeting_state(meeting: Meeting) -> dict[str, Any]:
    return {
        "programme_id": meeting.programme_id,
        "session_key": meeting.session_key,
        "group_id": meeting.group_id,
        "organisation_id": meeting.organisation_id,
        "starts_at": meeting.starts_at.isoformat(),
        "duration_minutes": meeting.duration_minutes,
        "format": meeting.format,
        "place": meeting.place,
        "video_url": meeting.video_url,
    }


def _sync_later(session: Session, meeting: Meeting, **extra: Any) -> None:
    # Ordered behind the group's own mirror: the calendar event lives in the Canvas group.
    subject = f"group:{meeting.group_id}" if meeting.group_id is not None else f"meeting:{meeting.id}"
    enqueue(session, MEETING_SYNC, subject, {"meeting_id": meeting.id, **extra})


@dataclass(frozen=True)
class Plan:
    """What a scheduler asks for; checked by ``schedule``."""

    starts_at: datetime
    duration_minutes: int | None
    format: str
    place: str = ""
    video_url: str = ""


def _clean_plan(plan: Plan, programme_session: ProgrammeSession, now: datetime) -> Plan:
    if plan.starts_at.tzinfo is None:
        raise MeetingError("meeting_time_invalid")
    if plan.starts_at > now + MAX_AHEAD:
        raise MeetingError("meeting_too_far_ahead")
    duration = plan.duration_minutes if plan.duration_minutes is not None else programme_session.duration_minutes
    if duration is None or not 1 <= duration <= MAX_DURATION:
        raise MeetingError("meeting_duration_invalid", maximum=MAX_DURATION)
    low = programme_session.duration_min_minutes or 1
    high = programme_session.duration_max_minutes or MAX_DURATION
    if not low <= duration <= high:
        # The programme's frame, e.g. 1.5–2 hours for the group sessions after each module.
        raise MeetingError("meeting_duration_out_of_range", minimum=low, maximum=high)
    if plan.format not in FORMATS:
        raise MeetingError("meeting_format_invalid")
    if programme_session.format not in ("either", plan.format):
        raise MeetingError("meeting_format_not_allowed", format=programme_session.format)
    place = " ".join(plan.place.split())
    video_url = plan.video_url.strip()
    if len(place) > MAX_PLACE:
        raise MeetingError("meeting_place_too_long", maximum=MAX_PLACE)
    if plan.format == FORMAT_PHYSICAL and not place:
        raise MeetingError("meeting_place_missing")
    if video_url:
        parts = urlsplit(video_url)
        if (
            parts.scheme != "https"
            or not parts.netloc
            or len(video_url) > MAX_URL
            or any(c.isspace() for c in video_url)
        ):
            raise MeetingError("meeting_video_url_invalid")
    if plan.format == FORMAT_DIGITAL and not video_url:
        raise MeetingError("meeting_video_url_missing")
    return Plan(plan.starts_at.astimezone(UTC), duration, plan.format, place, video_url)


def _find(
    session: Session, programme_id: str, key: str, group: MentorGroup | None, organisation_id: int | None
) -> Meeting | None:
    query = select(Meeting).where(Meeting.programme_id == programme_id, Meeting.session_key == key)
    if group is not None:
        query = query.where(Meeting.group_id == group.id)
    else:
        query = query.where(Meeting.group_id.is_(None))
        query = query.where(
            Meeting.organisation_id.is_(None) if organisation_id is None else Meeting.organisation_id == organisation_id
        )
    return session.scalars(query).one_or_none()


def schedule(
    session: Session,
    programme: Programme,
    session_key: str,
    plan: Plan,
    *,
    group: MentorGroup | None = None,
    organisation: Organisation | None = None,
    actor: str,
    now: datetime | None = None,
) -> Meeting:
    """Put a session of the programme at a time and place, or move it: one meeting per group and session (group
    sessions), per organisation and session, or per programme and session (the whole run's sessions). Writes the
    ``meeting.sync`` step that creates or moves the Canvas calendar event.

    Raises MeetingError: session_unknown, session_needs_group (a group session without a group),
    session_not_for_group (a network session given a group), group_other_programme, and the plan's own checks
    (meeting_time_invalid, meeting_too_far_ahead, meeting_duration_invalid, meeting_duration_out_of_range,
    meeting_format_invalid,
    meeting_format_not_allowed, meeting_place_missing, meeting_place_too_long, meeting_video_url_missing,
    meeting_video_url_invalid), and meeting_has_attendance when a meeting with recorded attendance would move into
    the future. Nothing is written when it raises."""
    now = now or utcnow()
    programme_session = _session_of(programme, session_key)
    if group is not None and group.programme_id != programme.id:
        raise MeetingError("group_other_programme")
    if programme_session.kind == "group" and group is None:
        raise MeetingError("session_needs_group", session=programme_session.title)
    if programme_session.kind == "network" and group is not None:
        raise MeetingError("session_not_for_group", session=programme_session.title)
    organisation_id = group.organisation_id if group is not None else (organisation.id if organisation else None)
    clean = _clean_plan(plan, programme_session, now)
    meeting = _find(session, programme.id, session_key, group, organisation_id)
    if meeting is None:
        meeting = Meeting(
            programme_id=programme.id,
            session_key=session_key,
            group_id=group.id if group is not None else None,
            organisation_id=organisation_id,
            starts_at=clean.starts_at,
            duration_minutes=clean.duration_minutes,
            format=clean.format,
            place=clean.place,
            video_url=clean.video_url,
        )
        session.add(meeting)
        session.flush()
        before = None
        action = "meeting.schedule"
    else:
        before = meeting_state(meeting)
        if clean.starts_at > now and has_attendance(session, meeting):
            raise MeetingError("meeting_has_attendance")
        meeting.starts_at = clean.starts_at
        meeting.duration_minutes = clean.duration_minutes or meeting.duration_minutes
        meeting.format, meeting.place, meeting.video_url = clean.format, clean.place, clean.video_url
        after = meeting_state(meeting)
        if after == before:
            return meeting
        session.flush()
        action = "meeting.reschedule"
    audit(
        session,
        actor=actor,
        action=action,
        entity_type="meeting",
        entity_id=meeting.id,
        before=before,
        after=meeting_state(meeting),
    )
    _sync_later(session, meeting)
    notify_later(session, meeting)  # the e-mail with the .ics to the meeting's people (course_sync/reminder_steps.py)
    session.flush()
    return meeting


def has_attendance(session: Session, meeting: Meeting) -> bool:
    return session.scalar(select(Attendance.id).where(Attendance.meeting_id == meeting.id).limit(1)) is not None


def cancel(session: Session, meeting: Meeting, *, actor: str) -> None:
    """Take a meeting off the schedule (and its calendar event off Canvas). A meeting with recorded attendance is
    refused (meeting_has_attendance): what happened stays. Nothing is written when it raises."""
    if has_attendance(session, meeting):
        raise MeetingError("meeting_has_attendance")
    before = meeting_state(meeting)
    meeting_id, event_id, context = meeting.id, meeting.canvas_event_id, meeting.canvas_context
    created_at, where = meeting.created_at, where_of(meeting)
    subject = f"group:{meeting.group_id}" if meeting.group_id is not None else f"meeting:{meeting.id}"
    session.delete(meeting)
    session.flush()
    audit(
        session,
        actor=actor,
        action="meeting.cancel",
        entity_type="meeting",
        entity_id=meeting_id,
        before=before,
        after=None,
    )
    enqueue(
        session,
        MEETING_SYNC,
        subject,
        {
            "meeting_id": meeting_id,
            "canvas_event_id": event_id,
            "canvas_context": context,
            # Which Canvas the event is on, once the meeting row is gone.
            "group_id": before["group_id"],
            "organisation_id": before["organisation_id"],
            "programme_id": before["programme_id"],
        },
    )
    notify_cancelled_later(session, meeting_id, created_at, where)
    session.flush()


# --- attendance --------------------------------------------------------------------------------------------------


def _is_group_mentor(session: Session, group_id: int, person_id: int) -> bool:
    found = session.scalar(
        select(GroupMentor.id).where(GroupMentor.group_id == group_id, GroupMentor.person_id == person_id)
    )
    return found is not None


def _is_organisation_mentor(session: Session, organisation_id: int, programme_id: str, person_id: int) -> bool:
    found = session.scalar(
        select(ProgrammeRole.id).where(
            ProgrammeRole.person_id == person_id,
            ProgrammeRole.organisation_id == organisation_id,
            ProgrammeRole.programme_id == programme_id,
            ProgrammeRole.role == ProgrammeRoleKind.MENTOR,
        )
    )
    return found is not None


def _check_participant(session: Session, meeting: Meeting, seat: Seat) -> None:
    if (
        seat.programme_id != meeting.programme_id
        or seat.kind is not SeatKind.PARTICIPANT
        or seat.revoked_at is not None
    ):
        raise MeetingError("participant_not_in_group", seat_id=seat.id)
    if meeting.group_id is not None:
        member = session.scalar(
            select(GroupMember.id).where(GroupMember.group_id == meeting.group_id, GroupMember.seat_id == seat.id)
        )
        if member is None:
            raise MeetingError("participant_not_in_group", seat_id=seat.id)
    elif meeting.organisation_id is not None and seat.organisation_id != meeting.organisation_id:
        raise MeetingError("participant_not_in_group", seat_id=seat.id)


def _check_recorder(session: Session, meeting: Meeting, seat: Seat, recorder: Person, as_owner: bool) -> None:
    if as_owner:
        return
    if meeting.group_id is not None:
        allowed = _is_group_mentor(session, meeting.group_id, recorder.id)
    else:
        allowed = _is_organisation_mentor(session, seat.organisation_id, meeting.programme_id, recorder.id)
    if not allowed:
        raise MeetingError("not_mentor_of_group")


def _check_leader(session: Session, meeting: Meeting, seat: Seat, leader: Person) -> None:
    if meeting.group_id is not None:
        if not _is_group_mentor(session, meeting.group_id, leader.id):
            raise MeetingError("leader_not_mentor")
    elif not _is_organisation_mentor(session, seat.organisation_id, meeting.programme_id, leader.id):
        raise MeetingError("leader_not_mentor")


def _attendance_state(row: Attendance) -> dict[str, Any]:
    return {
        "seat_id": row.seat_id,
        "session_key": row.session_key,
        "meeting_id": row.meeting_id,
        "present": row.present,
        "makeup": row.makeup,
        "note": row.note,
        "led_by_person_id": row.led_by_person_id,
    }


def _clean_note(note: str) -> str:
    cleaned = note.strip()
    if len(cleaned) > MAX_NOTE:
        raise MeetingError("attendance_note_too_long", maximum=MAX_NOTE)
    if any(ord(c) < 32 and c not in "\n\t" for c in cleaned):
        raise MeetingError("attendance_note_invalid")
    return cleaned


@dataclass(frozen=True)
class Mark:
    """One participant's line on the attendance form."""

    seat: Seat
    present: bool
    note: str = ""


def record_attendance(
    session: Session,
    meeting: Meeting,
    marks: list[Mark],
    *,
    recorder: Person,
    led_by: Person | None = None,
    as_owner: bool = False,
    actor: str,
    now: datetime | None = None,
) -> list[Attendance]:
    """Record present / absent (with an optional note) for participants of a meeting that has started, naming the
    mentor who led it (``led_by``, default the recorder). A participant already recorded is corrected in place and
    the correction audited with before and after; an unchanged mark writes nothing.

    Raises MeetingError: session_not_started (the meeting's start is after ``now``), not_mentor_of_group (the
    recorder is no mentor of the group, or of the organisation for a meeting without a group),
    participant_not_in_group (param seat_id), leader_not_mentor, attendance_note_too_long, attendance_note_invalid.
    All marks are checked first: nothing is written when it raises."""
    now = now or utcnow()
    if meeting.starts_at > now:
        raise MeetingError("session_not_started")
    leader = led_by or recorder
    notes: list[str] = []
    for mark in marks:
        _check_participant(session, meeting, mark.seat)
        _check_recorder(session, meeting, mark.seat, recorder, as_owner)
        _check_leader(session, meeting, mark.seat, leader)
        notes.append(_clean_note(mark.note))
    existing = {
        row.seat_id: row
        for row in session.scalars(
            select(Attendance).where(
                Attendance.meeting_id == meeting.id, Attendance.seat_id.in_([m.seat.id for m in marks])
            )
        )
    }
    written: list[Attendance] = []
    for mark, note in zip(marks, notes, strict=True):
        row = existing.get(mark.seat.id)
        before = _attendance_state(row) if row is not None else None
        if row is None:
            row = Attendance(
                seat_id=mark.seat.id,
                programme_id=meeting.programme_id,
                session_key=meeting.session_key,
                meeting_id=meeting.id,
                present=mark.present,
                note=note,
                led_by_person_id=leader.id,
                recorded_by=actor,
            )
            session.add(row)
            existing[mark.seat.id] = row
        else:
            row.present, row.note, row.led_by_person_id = mark.present, note, leader.id
            if _attendance_state(row) == before:
                continue
            row.recorded_by = actor
        session.flush()
        audit(
            session,
            actor=actor,
            action="attendance.record" if before is None else "attendance.correct",
            entity_type="attendance",
            entity_id=row.id,
            before=before,
            after=_attendance_state(row),
        )
        written.append(row)
    session.flush()
    if written:  # what a certificate depends on changed: the participants' and the leader's (worker)
        request_evaluation(session, meeting.programme_id, [m.seat.person_id for m in marks] + [leader.id])
    return written


def record_makeup(
    session: Session,
    programme: Programme,
    seat: Seat,
    session_key: str,
    *,
    recorder: Person,
    note: str,
    as_owner: bool = False,
    actor: str,
) -> Attendance:
    """A make-up the mentor records: the participant attended the session with another group, or made it up as
    agreed. Counts as attended. The recorder must be a mentor of the participant's current group (or of their
    organisation when they are in none); the note says what was done.

    Raises MeetingError session_unknown, participant_not_in_group, not_mentor_of_group, attendance_note_missing,
    attendance_note_too_long, attendance_note_invalid. Nothing is written when it raises."""
    _session_of(programme, session_key)
    if seat.programme_id != programme.id or seat.kind is not SeatKind.PARTICIPANT or seat.revoked_at is not None:
        raise MeetingError("participant_not_in_group", seat_id=seat.id)
    cleaned = _clean_note(note)
    if not cleaned:
        raise MeetingError("attendance_note_missing")
    if not as_owner:
        group_id = session.scalar(select(GroupMember.group_id).where(GroupMember.seat_id == seat.id))
        allowed = (
            _is_group_mentor(session, group_id, recorder.id)
            if group_id is not None
            else _is_organisation_mentor(session, seat.organisation_id, programme.id, recorder.id)
        )
        if not allowed:
            raise MeetingError("not_mentor_of_group")
    row = session.scalars(
        select(Attendance).where(
            Attendance.seat_id == seat.id,
            Attendance.session_key == session_key,
            Attendance.meeting_id.is_(None),
        )
    ).one_or_none()
    before = _attendance_state(row) if row is not None else None
    if row is None:
        row = Attendance(
            seat_id=seat.id,
            programme_id=programme.id,
            session_key=session_key,
            meeting_id=None,
            present=True,
            makeup=True,
            note=cleaned,
            led_by_person_id=recorder.id,
            recorded_by=actor,
        )
        session.add(row)
    else:
        row.note, row.led_by_person_id, row.recorded_by = cleaned, recorder.id, actor
    session.flush()
    audit(
        session,
        actor=actor,
        action="attendance.makeup",
        entity_type="attendance",
        entity_id=row.id,
        before=before,
        after=_attendance_state(row),
    )
    session.flush()
    request_evaluation(session, programme.id, [seat.person_id])
    return row


__all__ = [
    "MEETING_SYNC",
    "Mark",
    "MeetingError",
    "Plan",
    "cancel",
    "has_attendance",
    "meeting_state",
    "record_attendance",
    "record_makeup",
    "schedule",
]
