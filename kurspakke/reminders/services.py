"""Who gets which notice, each person's opt-out, and the record of what was sent.

Plain functions over a session: they flush, the caller (a request, the worker) commits. The worker's steps and jobs
(course_sync/reminder_steps.py) call these and send the e-mails:

- a meeting scheduled, moved or cancelled: ``notify_later`` / ``notify_cancelled_later`` write a ``meeting.notify``
  step in the scheduling transaction; the step decides with ``plan_notice`` what changed since the last notice.
  Service messages: sent whatever the person's reminder setting.
- the day before a meeting: ``record_meeting_reminders`` (reminders on only);
- a participant behind the pacing: ``record_nudges`` (reminders on, at most one a week);
- seats expiring within 30 days: ``record_expiry_notices`` (to licence administrators, at most one a week each).

Recipients of a meeting are its group's participants (unrevoked seats) and mentors; for an organisation's meeting
the organisation's participants and mentors, for a whole-run meeting the programme's — leaving out those whose
group (or organisation) holds the same session itself, as the pages do (kurspakke.progress.overview.meetings_for).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from kurspakke.certificates.models import Certificate
from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.licences.admins import administrators
from kurspakke.licences.models import CanvasStatus, Seat, SeatKind
from kurspakke.meetings.models import Meeting
from kurspakke.models import Organisation, Person, ProgrammeRole, ProgrammeRoleKind, utcnow
from kurspakke.outbox.services import enqueue
from kurspakke.programmes import Programme
from kurspakke.progress.overview import people_progress
from kurspakke.reminders.models import MeetingNotice, MeetingReminder, Nudge, ReminderPreference, SeatExpiryNotice
from kurspakke.reminders.texts import CANCELLED, MOVED, SCHEDULED, MeetingFacts

OSLO = ZoneInfo("Europe/Oslo")
MEETING_NOTIFY = "meeting.notify"  # a meeting scheduled, moved or cancelled: one notice per recipient
NOTICE_MAIL = "mail.notice"  # one composed e-mail with attachments (the .ics)
REMINDER_SEND = "reminder.send"  # a day-before reminder or a nudge, written when sent (opt-out, link)
UNSUBSCRIBE_SALT = "reminders-off"
# The one-click link's address on the web app (lti_tool/views/reminder_views.py; a test checks they agree). The
# domain knows no Flask, so the worker builds the link from the base URL and this path.
UNSUBSCRIBE_PATH = "/app/reminders/off/"
MAX_TOKEN_LENGTH = 200
NUDGE_EVERY = timedelta(days=7)
NUDGE_SHOWN_FOR = timedelta(days=14)  # how long the mentor's matrix marks a participant as reminded
EXPIRY_WITHIN = timedelta(days=30)
EXPIRY_NOTICE_EVERY = timedelta(days=7)
LOCALES = ("nb", "nn", "en")


# --- the person's choice ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    reminders_on: bool
    locale: str | None


def settings_of(session: Session, person_ids: Iterable[int]) -> dict[int, Setting]:
    """Every given person's setting (no row: reminders on, Bokmål). One statement."""
    ids = set(person_ids)
    found = {
        row.person_id: Setting(row.reminders_on, row.locale)
        for row in session.scalars(select(ReminderPreference).where(ReminderPreference.person_id.in_(ids)))
    }
    return {person_id: found.get(person_id, Setting(True, None)) for person_id in ids}


def reminders_on(session: Session, person_id: int) -> bool:
    return settings_of(session, [person_id])[person_id].reminders_on


def set_reminders(session: Session, person_id: int, on: bool, *, locale: str | None = None) -> ReminderPreference:
    """Turn a person's reminders on or off; ``locale`` (the page's language) becomes their e-mails' language."""
    row = session.get(ReminderPreference, person_id, with_for_update=True)
    if row is None:
        row = ReminderPreference(person_id=person_id)
        session.add(row)
    row.reminders_on = on
    if locale in LOCALES:
        row.locale = locale
    row.updated_at = utcnow()
    session.flush()
    return row


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(secret_key: str, person_id: int) -> str:
    """The one-click link's token: the person's id signed with SECRET_KEY. It does not expire (an old reminder's
    link still works) and can only turn reminders off."""
    return str(_serializer(secret_key).dumps(person_id))


def person_of_token(secret_key: str, token: str) -> int | None:
    """The person a token names, or None for anything not signed by us (forged, altered, truncated)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        value = _serializer(secret_key).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def unsubscribe_url(base_url: str, secret_key: str, person_id: int) -> str:
    return f"{base_url.rstrip('/')}{UNSUBSCRIBE_PATH}{unsubscribe_token(secret_key, person_id)}"


# --- who a meeting concerns ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    person_id: int
    name: str
    email: str
    reminders_on: bool
    locale: str | None


@dataclass(frozen=True)
class Where:
    """A meeting's place in the programme: enough to find its people once the meeting row is gone."""

    programme_id: str
    session_key: str
    group_id: int | None
    organisation_id: int | None


def where_of(meeting: Meeting) -> Where:
    return Where(meeting.programme_id, meeting.session_key, meeting.group_id, meeting.organisation_id)


def meeting_recipients(session: Session, where: Where) -> list[Recipient]:
    """The people a meeting concerns, each once, by name. Three statements."""
    participant = [
        Seat.revoked_at.is_(None),
        Seat.kind == SeatKind.PARTICIPANT,
        Seat.programme_id == where.programme_id,
    ]
    people = select(Person.id, Person.name, Person.email).join(Seat, Seat.person_id == Person.id)
    if where.group_id is not None:
        participants = people.join(GroupMember, GroupMember.seat_id == Seat.id).where(
            GroupMember.group_id == where.group_id, *participant
        )
        mentors = (
            select(Person.id, Person.name, Person.email)
            .join(GroupMentor, GroupMentor.person_id == Person.id)
            .where(GroupMentor.group_id == where.group_id)
        )
    else:
        same_session = [Meeting.programme_id == where.programme_id, Meeting.session_key == where.session_key]
        in_own_group = (
            select(GroupMember.seat_id)
            .join(Meeting, Meeting.group_id == GroupMember.group_id)
            .where(*same_session)
            .scalar_subquery()
        )
        scope: list[ColumnElement[bool]] = []
        role_scope: list[ColumnElement[bool]] = []
        if where.organisation_id is not None:
            scope.append(Seat.organisation_id == where.organisation_id)
            role_scope.append(ProgrammeRole.organisation_id == where.organisation_id)
        else:
            own_meeting = select(Meeting.organisation_id).where(
                *same_session, Meeting.group_id.is_(None), Meeting.organisation_id.is_not(None)
            )
            scope.append(Seat.organisation_id.not_in(own_meeting.scalar_subquery()))
            role_scope.append(ProgrammeRole.organisation_id.not_in(own_meeting.scalar_subquery()))
        participants = people.where(*participant, *scope, Seat.id.not_in(in_own_group))
        mentors = (
            select(Person.id, Person.name, Person.email)
            .join(ProgrammeRole, ProgrammeRole.person_id == Person.id)
            .where(
                ProgrammeRole.programme_id == where.programme_id,
                ProgrammeRole.role == ProgrammeRoleKind.MENTOR,
                *role_scope,
            )
        )
    found: dict[int, tuple[str, str]] = {}
    for query in (participants, mentors):
        for person_id, name, email in session.execute(query):
            found.setdefault(person_id, (name, email))
    settings = settings_of(session, found)
    return sorted(
        (
            Recipient(pid, name, email, settings[pid].reminders_on, settings[pid].locale)
            for pid, (name, email) in found.items()
        ),
        key=lambda r: r.person_id,
    )


def group_name(session: Session, where: Where) -> str:
    """What a notice says the meeting is for: the group, else the organisation, else nothing (the whole run)."""
    if where.group_id is not None:
        return session.scalar(select(MentorGroup.name).where(MentorGroup.id == where.group_id)) or ""
    if where.organisation_id is not None:
        return session.scalar(select(Organisation.name).where(Organisation.id == where.organisation_id)) or ""
    return ""


def mentor_names(session: Session, seat_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each seat's group mentors by name (a nudge names them; never their addresses)."""
    names: dict[int, list[str]] = defaultdict(list)
    for seat_id, name in session.execute(
        select(GroupMember.seat_id, Person.name)
        .join(GroupMentor, GroupMentor.group_id == GroupMember.group_id)
        .join(Person, Person.id == GroupMentor.person_id)
        .where(GroupMember.seat_id.in_(list(seat_ids)))
        .order_by(Person.name)
    ):
        names[seat_id].append(name)
    return names


# --- notices of a scheduled, moved or cancelled meeting ----------------------------------------------------------


def _subject(meeting_id: int) -> str:
    return f"meeting-notice:{meeting_id}"


def notify_later(session: Session, meeting: Meeting) -> None:
    """Write the ``meeting.notify`` step in the caller's transaction. The step carries only the meeting, and reads
    it when it runs: a meeting moved twice before the worker gets to it is announced once, at its latest time
    (enqueue collapses a waiting step with the same payload)."""
    payload = {"meeting_id": meeting.id, "created": meeting.created_at.isoformat()}
    enqueue(session, MEETING_NOTIFY, _subject(meeting.id), payload)


def notify_cancelled_later(session: Session, meeting_id: int, created_at: datetime, where: Where) -> None:
    """The cancellation's step: the meeting row is gone, so the payload says whose meeting it was."""
    payload: dict[str, Any] = {
        "meeting_id": meeting_id,
        "created": created_at.isoformat(),
        "cancelled": True,
        "programme_id": where.programme_id,
        "session_key": where.session_key,
        "group_id": where.group_id,
        "organisation_id": where.organisation_id,
    }
    enqueue(session, MEETING_NOTIFY, _subject(meeting_id), payload)


def facts_of(row: Meeting | MeetingNotice) -> MeetingFacts:
    return MeetingFacts(row.starts_at, row.duration_minutes, row.format, row.place, row.video_url)


@dataclass(frozen=True)
class NoticePlan:
    """What one ``meeting.notify`` step sends: the change, the meeting as it is (as it was, when cancelled), the
    calendar SEQUENCE, and to whom."""

    meeting_id: int
    change: str
    where: Where
    facts: MeetingFacts
    before: MeetingFacts | None
    sequence: int
    recipients: list[Recipient]


def _created(payload: dict[str, Any]) -> datetime | None:
    value = payload.get("created")
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def plan_notice(session: Session, payload: dict[str, Any], *, now: datetime) -> NoticePlan | None:
    """Decide what a ``meeting.notify`` step announces and record it as announced; None when there is nothing to
    say: the meeting is gone (its cancellation step follows), unchanged since the last notice, in the past, or a
    cancellation of a meeting never announced. Raises ValueError for a payload that names no meeting."""
    meeting_id, created = payload.get("meeting_id"), _created(payload)
    if not isinstance(meeting_id, int) or created is None:
        raise ValueError("the step names no meeting")
    notice = session.get(MeetingNotice, meeting_id, with_for_update=True)
    if payload.get("cancelled") is True:
        return _plan_cancellation(session, payload, notice, meeting_id, created, now)
    meeting = session.get(Meeting, meeting_id)
    if meeting is None or meeting.created_at != created:
        return None
    facts = facts_of(meeting)
    if meeting.starts_at <= now:
        return None  # nobody can come to a meeting that has started; a date put in after the fact is no news
    before: MeetingFacts | None = None
    if notice is None:
        change, sequence = SCHEDULED, 0
        notice = MeetingNotice(meeting_id=meeting_id, meeting_created_at=created, sequence=0, **_columns(facts))
        session.add(notice)
    elif notice.cancelled_at is not None or notice.meeting_created_at != created:
        change, sequence = SCHEDULED, notice.sequence + 1
    elif facts_of(notice) == facts:
        return None
    else:
        change, sequence, before = MOVED, notice.sequence + 1, facts_of(notice)
    for key, value in _columns(facts).items():
        setattr(notice, key, value)
    notice.meeting_created_at, notice.sequence, notice.cancelled_at, notice.notified_at = created, sequence, None, now
    session.flush()
    where = where_of(meeting)
    return NoticePlan(meeting_id, change, where, facts, before, sequence, meeting_recipients(session, where))


def _plan_cancellation(
    session: Session,
    payload: dict[str, Any],
    notice: MeetingNotice | None,
    meeting_id: int,
    created: datetime,
    now: datetime,
) -> NoticePlan | None:
    if notice is None or notice.cancelled_at is not None or notice.meeting_created_at != created:
        return None  # never announced (or already cancelled): nobody has it in their calendar
    notice.cancelled_at, notice.notified_at = now, now
    notice.sequence += 1
    session.flush()
    if notice.starts_at <= now:
        return None
    programme_id, key = payload.get("programme_id"), payload.get("session_key")
    group_id, organisation_id = payload.get("group_id"), payload.get("organisation_id")
    if not isinstance(programme_id, str) or not isinstance(key, str):
        raise ValueError("the cancellation names no programme session")
    where = Where(
        programme_id,
        key,
        group_id if isinstance(group_id, int) else None,
        organisation_id if isinstance(organisation_id, int) else None,
    )
    facts = facts_of(notice)
    return NoticePlan(meeting_id, CANCELLED, where, facts, None, notice.sequence, meeting_recipients(session, where))


def _columns(facts: MeetingFacts) -> dict[str, Any]:
    return {
        "starts_at": facts.starts_at,
        "duration_minutes": facts.duration_minutes,
        "format": facts.format,
        "place": facts.place,
        "video_url": facts.video_url,
    }


# --- the day before ----------------------------------------------------------------------------------------------


def tomorrow(now: datetime) -> tuple[datetime, datetime]:
    """The next Oslo day as [start, end) in UTC — 23 or 25 hours when the clocks change. (In UTC: Python subtracts
    and compares two times of one zone object by their wall clocks.)"""
    day = now.astimezone(OSLO).date() + timedelta(days=1)
    start = datetime.combine(day, time(0), tzinfo=OSLO).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=OSLO).astimezone(UTC)
    return start, end


def record_meeting_reminders(session: Session, *, now: datetime | None = None) -> list[MeetingReminder]:
    """A reminder for each person with reminders on, of each meeting that starts on the next Oslo day, unless
    they were reminded of it at that time already (a job run twice writes nothing twice)."""
    now = now or utcnow()
    start, end = tomorrow(now)
    written: list[MeetingReminder] = []
    meetings = session.scalars(
        select(Meeting).where(Meeting.starts_at >= start, Meeting.starts_at < end).order_by(Meeting.id)
    ).all()
    for meeting in meetings:
        done = set(
            session.scalars(
                select(MeetingReminder.person_id).where(
                    MeetingReminder.meeting_id == meeting.id, MeetingReminder.starts_at == meeting.starts_at
                )
            )
        )
        for recipient in meeting_recipients(session, where_of(meeting)):
            if recipient.reminders_on and recipient.person_id not in done:
                row = MeetingReminder(meeting_id=meeting.id, person_id=recipient.person_id, starts_at=meeting.starts_at)
                session.add(row)
                written.append(row)
    session.flush()
    return written


# --- nudges ------------------------------------------------------------------------------------------------------


def record_nudges(session: Session, programmes: Mapping[str, Programme], *, now: datetime | None = None) -> list[Nudge]:
    """A nudge for each participant behind their programme's pacing (kurspakke.progress.overview: the pages'
    "behind schedule") who has reminders on, is enrolled in Canvas (someone not yet in the course cannot catch
    up), and was not nudged in the last seven days."""
    now = now or utcnow()
    written: list[Nudge] = []
    for programme in programmes.values():
        if programme.pacing.weeks_per_module_max <= 0 or not programme.modules:
            continue
        behind = [p for p in people_progress(session, programme, now=now) if p.behind]
        if not behind:
            continue
        seat_ids = [p.seat_id for p in behind]
        enrolled = set(
            session.scalars(select(Seat.id).where(Seat.id.in_(seat_ids), Seat.canvas_status == CanvasStatus.ACTIVE))
        )
        recent = set(
            session.scalars(select(Nudge.seat_id).where(Nudge.seat_id.in_(seat_ids), Nudge.sent_at > now - NUDGE_EVERY))
        )
        settings = settings_of(session, [p.person_id for p in behind])
        for p in behind:
            if p.seat_id in enrolled and p.seat_id not in recent and settings[p.person_id].reminders_on:
                row = Nudge(
                    seat_id=p.seat_id,
                    person_id=p.person_id,
                    programme_id=programme.id,
                    modules_done=len(p.modules),
                    modules_expected=p.expected_modules,
                    sent_at=now,
                )
                session.add(row)
                written.append(row)
    session.flush()
    return written


def recent_nudges(session: Session, group_id: int, *, now: datetime | None = None) -> dict[int, datetime]:
    """The group's participant seats nudged in the last 14 days, with the latest nudge. One statement."""
    now = now or utcnow()
    rows = session.execute(
        select(Nudge.seat_id, func.max(Nudge.sent_at))
        .join(GroupMember, GroupMember.seat_id == Nudge.seat_id)
        .where(GroupMember.group_id == group_id, Nudge.sent_at >= now - NUDGE_SHOWN_FOR)
        .group_by(Nudge.seat_id)
    )
    return {seat_id: sent_at for seat_id, sent_at in rows}


# --- seats about to expire ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryNotice:
    """One e-mail to one licence administrator about their organisation's seats (names and days only)."""

    person_id: int
    email: str
    locale: str | None
    organisation_id: int
    organisation: str
    programme: Programme
    seats: list[tuple[str, datetime]]


def record_expiry_notices(
    session: Session, programmes: Mapping[str, Programme], *, now: datetime | None = None
) -> list[ExpiryNotice]:
    """For each organisation and programme with unrevoked seats that expire within 30 days and whose holders have
    no certificate yet: a notice to each of its licence administrators not told in the last seven days."""
    now = now or utcnow()
    finished = exists(
        select(Certificate.id).where(
            Certificate.person_id == Seat.person_id,
            Certificate.programme_id == Seat.programme_id,
            Certificate.superseded_at.is_(None),
            Certificate.revoked_at.is_(None),
        )
    )
    rows = session.execute(
        select(Seat.organisation_id, Seat.programme_id, Organisation.name, Person.name, Seat.valid_until)
        .join(Person, Person.id == Seat.person_id)
        .join(Organisation, Organisation.id == Seat.organisation_id)
        .where(
            Seat.revoked_at.is_(None),
            Seat.valid_until > now,
            Seat.valid_until <= now + EXPIRY_WITHIN,
            ~finished,
        )
    ).all()
    expiring: dict[tuple[int, str], list[tuple[str, datetime]]] = defaultdict(list)
    organisation_names: dict[int, str] = {}
    for organisation_id, programme_id, organisation_name, name, valid_until in rows:
        expiring[(organisation_id, programme_id)].append((name, valid_until))
        organisation_names[organisation_id] = organisation_name
    notices: list[ExpiryNotice] = []
    for (organisation_id, programme_id), seats in sorted(expiring.items()):
        programme = programmes.get(programme_id)
        if programme is None:
            continue
        seats.sort(key=lambda seat: (seat[1], seat[0]))
        admins = administrators(session, organisation_id, programme_id)
        told = set(
            session.scalars(
                select(SeatExpiryNotice.person_id).where(
                    SeatExpiryNotice.organisation_id == organisation_id,
                    SeatExpiryNotice.programme_id == programme_id,
                    SeatExpiryNotice.sent_at > now - EXPIRY_NOTICE_EVERY,
                )
            )
        )
        settings = settings_of(session, [a.person_id for a in admins])
        for admin in admins:
            if admin.person_id in told:
                continue
            session.add(
                SeatExpiryNotice(
                    person_id=admin.person_id,
                    organisation_id=organisation_id,
                    programme_id=programme_id,
                    seats=len(seats),
                    sent_at=now,
                )
            )
            notices.append(
                ExpiryNotice(
                    admin.person_id,
                    admin.email,
                    settings[admin.person_id].locale,
                    organisation_id,
                    organisation_names[organisation_id],
                    programme,
                    list(seats),
                )
            )
    session.flush()
    return notices


__all__ = [
    "MEETING_NOTIFY",
    "NOTICE_MAIL",
    "REMINDER_SEND",
    "UNSUBSCRIBE_PATH",
    "UNSUBSCRIBE_SALT",
    "ExpiryNotice",
    "NoticePlan",
    "Recipient",
    "Setting",
    "Where",
    "facts_of",
    "group_name",
    "meeting_recipients",
    "mentor_names",
    "notify_cancelled_later",
    "notify_later",
    "person_of_token",
    "plan_notice",
    "recent_nudges",
    "record_expiry_notices",
    "record_meeting_reminders",
    "record_nudges",
    "reminders_on",
    "set_reminders",
    "settings_of",
    "unsubscribe_token",
    "unsubscribe_url",
    "where_of",
]
