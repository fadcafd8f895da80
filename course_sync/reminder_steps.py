"""Notices and reminders by e-mail, as outbox steps and periodic jobs (the rules: kurspakke/reminders/services.py).

Steps:
- ``meeting.notify`` (written with every scheduling, move and cancellation): decides what changed since the last
  notice and writes one ``mail.notice`` per recipient — text and .ics composed now, in the recipient's language —
  in one transaction with the record of what was announced, so a run that dies halfway leaves nothing half-sent.
- ``mail.notice``: one composed e-mail with its attachments; done only once the SMTP server took it.
- ``reminder.send``: a day-before reminder or a nudge, composed when it is sent: the person's setting is read
  again (turned off since the job ran: nothing goes) and the one-click link to turn reminders off is signed.

Periodic jobs (each once per period however many workers run; what was sent is recorded, so a second run in a
period sends nothing either):
- ``reminder``: daily from 08:00 Oslo time, reminders of the meetings that start the next Oslo day;
- ``nudge``: daily from 09:00, participants behind the pacing who were not nudged in the last seven days;
- ``seat_expiry_notice``: daily from 07:30, licence administrators about seats that expire within 30 days (at most
  once a week each, names only).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlalchemy.orm import Session

from config.settings import Settings, SettingsError
from course_sync.provisioning import StepContext
from course_sync.worker import PeriodicJobSpec, StepKind
from kurspakke.db import transaction
from kurspakke.licences.invitations import MAIL_SEND
from kurspakke.licences.models import Seat
from kurspakke.mail import Attachment, InvalidMail, MailError, attachment_payload, attachments_from_payload
from kurspakke.meetings.models import Meeting
from kurspakke.models import Person, utcnow
from kurspakke.notices import Message
from kurspakke.outbox.services import LeaseLost, StepPark, StepRetry, enqueue
from kurspakke.programmes import Programme, programmes_once
from kurspakke.reminders import ics
from kurspakke.reminders.models import MeetingReminder, Nudge
from kurspakke.reminders.services import (
    MEETING_NOTIFY,
    NOTICE_MAIL,
    REMINDER_SEND,
    NoticePlan,
    Recipient,
    facts_of,
    group_name,
    mentor_names,
    plan_notice,
    record_expiry_notices,
    record_meeting_reminders,
    record_nudges,
    settings_of,
    unsubscribe_url,
    where_of,
)
from kurspakke.reminders.texts import (
    CANCELLED,
    meeting_notice_message,
    meeting_reminder_message,
    nudge_message,
    seat_expiry_message,
)

log = logging.getLogger("kurspakke.reminders")
OSLO = ZoneInfo("Europe/Oslo")
Send = Callable[..., None]
_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def daily_from(hour: int, minute: int = 0) -> Callable[[datetime], str | None]:
    """A period per Oslo day from ``hour:minute`` (course_sync.runtime.daily_after, to the minute)."""

    def period(now: datetime) -> str | None:
        local = now.astimezone(OSLO)
        return local.strftime("%Y-%m-%d") if (local.hour, local.minute) >= (hour, minute) else None

    return period


def _session_title(programme: Programme, key: str) -> str:
    return next((s.title for s in programme.sessions if s.id == key), key)


def _deliver(send: Send | None, message: Message, attachments: list[Attachment] | None = None) -> None:
    """Hand one message to the mail server. Raises StepPark for a message that can never be sent, StepRetry when
    the server could not take it now."""
    if send is None:  # development without a mail setting: logged, like the other e-mail steps
        log.info("e-mail to %s: %s\n%s", message.to, message.subject, message.text)
        return
    try:
        if attachments:
            send(to=message.to, subject=message.subject, text=message.text, attachments=attachments)
        else:
            send(to=message.to, subject=message.subject, text=message.text)
    except InvalidMail as exc:
        raise StepPark(f"the e-mail cannot be sent: {exc}") from exc
    except MailError as exc:
        raise StepRetry(f"the e-mail could not be delivered: {exc}") from exc


@dataclass
class ReminderSteps:
    """``send(to=, subject=, text=[, attachments=])`` delivers an e-mail (None: logged). ``base_url`` is the tool's
    address (the calendar UID's host, the one-click link). ``secret_key`` signs the one-click link: the web app's
    SECRET_KEY, which checks it; None reads it from the environment the first time a reminder is sent, as
    ``kurspakke worker`` reads its settings (the step kinds are composed without the settings object)."""

    send: Send | None
    base_url: str = ""
    secret_key: str | None = None

    def kinds(self) -> dict[str, StepKind]:
        return {
            MEETING_NOTIFY: StepKind(self.notify_meeting),
            NOTICE_MAIL: StepKind(self.send_notice),
            REMINDER_SEND: StepKind(self.send_reminder),
        }

    def _secret(self) -> str:
        if self.secret_key is None:
            try:
                self.secret_key = Settings.from_env().secret_key
            except SettingsError as exc:
                raise StepRetry(f"no SECRET_KEY to sign the link that turns reminders off: {exc}") from exc
        return self.secret_key

    # --- meeting.notify ------------------------------------------------------------------------------------------

    def notify_meeting(self, ctx: StepContext, payload: dict[str, Any]) -> None:
        """One notice per recipient of a meeting scheduled, moved or cancelled. Service messages: sent whatever
        the recipient's reminder setting, because without them nobody knows where to be."""
        now = utcnow()
        with transaction(ctx.sessions) as session:
            if not ctx.finish(session):
                raise LeaseLost("another worker has this notice step")
            try:
                plan = plan_notice(session, payload, now=now)
            except ValueError as exc:
                raise StepPark(str(exc)) from exc
            if plan is None:
                return
            programme = programmes_once().get(plan.where.programme_id)
            if programme is None:
                raise StepPark(f"notice of a meeting in unknown programme {plan.where.programme_id!r}")
            title = _session_title(programme, plan.where.session_key)
            group = group_name(session, plan.where)
            for recipient in plan.recipients:
                self._write_notice(ctx, session, plan, programme, title, group, recipient, now)
        log.info("meeting %s %s: %d notices", plan.meeting_id, plan.change, len(plan.recipients))

    def _write_notice(
        self,
        ctx: StepContext,
        session: Session,
        plan: NoticePlan,
        programme: Programme,
        title: str,
        group: str,
        recipient: Recipient,
        now: datetime,
    ) -> None:
        message = meeting_notice_message(
            change=plan.change,
            name=recipient.name,
            email=recipient.email,
            programme=programme,
            session_title=title,
            group_name=group,
            facts=plan.facts,
            before=plan.before,
            locale=recipient.locale,
        )
        method = ics.CANCEL if plan.change == CANCELLED else ics.REQUEST
        event = ics.CalendarEvent(
            uid=ics.meeting_uid(plan.meeting_id, self.base_url),
            sequence=plan.sequence,
            starts_at=plan.facts.starts_at,
            ends_at=plan.facts.ends_at,
            summary=f"{title} \u2013 {group}" if group else title,
            location=plan.facts.place if plan.facts.format != "digital" else "",
            url=plan.facts.video_url,
            description=plan.facts.video_url,
            organizer_email=programme.contact_email,
            organizer_name=programme.contact_name or programme.issuer,
            attendee_email=recipient.email,
            attendee_name=recipient.name,
        )
        try:
            calendar = ics.calendar(event, method=method, stamp=now)
        except ValueError as exc:
            raise StepPark(f"the calendar file cannot be written: {exc}") from exc
        filename = (_FILE_CHARS.sub("-", plan.where.session_key).strip("-.")[:60] or "samling") + ".ics"
        attachment = Attachment(filename, ics.CONTENT_TYPES[method], calendar)
        ctx.then(
            session,
            NOTICE_MAIL,
            # One subject per meeting and person: a notice still waiting for the mail server goes out before a
            # later one about the same meeting (the calendar's SEQUENCE would sort them anyway; the reader might not).
            f"mail:meeting:{plan.meeting_id}:{recipient.person_id}",
            {
                "to": message.to,
                "subject": message.subject,
                "text": message.text,
                "attachments": attachment_payload([attachment]),
            },
        )

    # --- mail.notice ---------------------------------------------------------------------------------------------

    def send_notice(self, ctx: StepContext, payload: dict[str, Any]) -> None:
        """Send ``{"to", "subject", "text", "attachments"}``; done once the SMTP server took it."""
        to, subject, text = payload.get("to"), payload.get("subject"), payload.get("text")
        if not (isinstance(to, str) and isinstance(subject, str) and isinstance(text, str) and to and subject and text):
            raise StepPark("the step's e-mail lacks a recipient, a subject or a text")
        try:
            attachments = attachments_from_payload(payload.get("attachments"))
        except InvalidMail as exc:
            raise StepPark(f"the e-mail cannot be sent: {exc}") from exc
        _deliver(self.send, Message(to=to, subject=subject, text=text), attachments)
        with transaction(ctx.sessions) as session:
            ctx.finish(session)

    # --- reminder.send -------------------------------------------------------------------------------------------

    def send_reminder(self, ctx: StepContext, payload: dict[str, Any]) -> None:
        """A day-before reminder (``reminder_id``) or a nudge (``nudge_id``), unless the person turned reminders
        off meanwhile, the meeting moved or went, or the seat is gone (then nothing is sent, and a nudge not sent
        is not recorded: the mentor's matrix shows only nudges that went out)."""
        reminder_id, nudge_id = payload.get("reminder_id"), payload.get("nudge_id")
        if not isinstance(reminder_id, int) and not isinstance(nudge_id, int):
            raise StepPark("the step names no reminder")
        with transaction(ctx.read()) as session:
            if isinstance(reminder_id, int):
                message = self._meeting_reminder(session, reminder_id)
            else:
                assert isinstance(nudge_id, int)
                message = self._nudge(session, nudge_id)
        if message is not None:
            _deliver(self.send, message)
        with transaction(ctx.sessions) as session:
            if not ctx.finish(session):
                session.rollback()
            elif message is None and isinstance(nudge_id, int):
                session.execute(delete(Nudge).where(Nudge.id == nudge_id))

    def _meeting_reminder(self, session: Session, reminder_id: int) -> Message | None:
        row = session.get(MeetingReminder, reminder_id)
        if row is None:  # the meeting was cancelled (its reminders go with it)
            return None
        meeting = session.get(Meeting, row.meeting_id)
        person = session.get(Person, row.person_id)
        if meeting is None or person is None or meeting.starts_at != row.starts_at or meeting.starts_at <= utcnow():
            return None  # moved (its notice said so; the new day is reminded of in its turn) or already begun
        setting = settings_of(session, [person.id])[person.id]
        programme = programmes_once().get(meeting.programme_id)
        if not setting.reminders_on or programme is None:
            return None
        where = where_of(meeting)
        return meeting_reminder_message(
            name=person.name,
            email=person.email,
            programme=programme,
            session_title=_session_title(programme, meeting.session_key),
            group_name=group_name(session, where),
            facts=facts_of(meeting),
            unsubscribe_url=unsubscribe_url(self.base_url, self._secret(), person.id),
            locale=setting.locale,
        )

    def _nudge(self, session: Session, nudge_id: int) -> Message | None:
        row = session.get(Nudge, nudge_id)
        seat = session.get(Seat, row.seat_id) if row is not None else None
        if row is None or seat is None or seat.revoked_at is not None:
            return None
        setting = settings_of(session, [row.person_id])[row.person_id]
        programme = programmes_once().get(row.programme_id)
        if not setting.reminders_on or programme is None:
            return None
        return nudge_message(
            name=seat.person.name,
            email=seat.person.email,
            programme=programme,
            done=row.modules_done,
            expected=row.modules_expected,
            mentors=mentor_names(session, [seat.id]).get(seat.id, []),
            unsubscribe_url=unsubscribe_url(self.base_url, self._secret(), seat.person_id),
            locale=setting.locale,
        )


def reminder_step_kinds(
    send: Send | None = None, *, base_url: str = "", secret_key: str | None = None
) -> dict[str, StepKind]:
    """meeting.notify, mail.notice and reminder.send (course_sync/steps.py registers them)."""
    return ReminderSteps(send, base_url, secret_key).kinds()


# --- periodic jobs -----------------------------------------------------------------------------------------------


def reminder_job(ctx: StepContext, now: datetime | None = None) -> dict[str, Any]:
    """Tomorrow's meetings: a ``reminder.send`` step per person with reminders on, written with the record."""
    with transaction(ctx.sessions) as session:
        rows = record_meeting_reminders(session, now=now or utcnow())
        for row in rows:
            enqueue(session, REMINDER_SEND, f"reminder:meeting:{row.id}", {"reminder_id": row.id})
        meetings = sorted({row.meeting_id for row in rows})
    return {"reminders": len(rows), "meetings": meetings}


def nudge_job(ctx: StepContext, now: datetime | None = None) -> dict[str, Any]:
    """Participants behind the pacing: a ``reminder.send`` step per nudge, written with the nudge log."""
    with transaction(ctx.sessions) as session:
        rows = record_nudges(session, programmes_once(), now=now or utcnow())
        for row in rows:
            enqueue(session, REMINDER_SEND, f"reminder:nudge:{row.id}", {"nudge_id": row.id})
        seats = [row.seat_id for row in rows]
    return {"nudged_seats": seats}


def seat_expiry_notice_job(ctx: StepContext, now: datetime | None = None) -> dict[str, Any]:
    """Seats expiring within 30 days: a composed e-mail (``mail.send``) to each licence administrator, listing the
    names of their own organisation's people only."""
    now = now or utcnow()
    sent: list[dict[str, Any]] = []
    with transaction(ctx.sessions) as session:
        for notice in record_expiry_notices(session, programmes_once(), now=now):
            message = seat_expiry_message(
                to=notice.email,
                organisation=notice.organisation,
                programme=notice.programme,
                seats=notice.seats,
                locale=notice.locale,
            )
            subject = (
                f"mail:seat-expiry:{notice.organisation_id}:{notice.programme.id}:{notice.person_id}:"
                f"{now.astimezone(OSLO).date().isoformat()}"
            )
            enqueue(session, MAIL_SEND, subject, {"to": message.to, "subject": message.subject, "text": message.text})
            sent.append(
                {"organisation": notice.organisation_id, "programme": notice.programme.id, "seats": len(notice.seats)}
            )
    return {"sent": sent}


REMINDER_JOB = PeriodicJobSpec("reminder", daily_from(8), reminder_job)
NUDGE_JOB = PeriodicJobSpec("nudge", daily_from(9), nudge_job)
SEAT_EXPIRY_NOTICE_JOB = PeriodicJobSpec("seat_expiry_notice", daily_from(7, 30), seat_expiry_notice_job)


__all__ = [
    "NUDGE_JOB",
    "REMINDER_JOB",
    "SEAT_EXPIRY_NOTICE_JOB",
    "ReminderSteps",
    "daily_from",
    "nudge_job",
    "reminder_job",
    "reminder_step_kinds",
    "seat_expiry_notice_job",
]
