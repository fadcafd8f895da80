"""What the reminders remember: each person's choice, and what was sent (so nothing is sent twice).

- ``ReminderPreference``: whether a person wants reminders by e-mail (no row: yes) and the language they last used.
- ``MeetingNotice``: the last scheduling notice sent about a meeting — its time and place as announced and the
  iCalendar SEQUENCE — so the worker tells a move from a repeat, and a calendar program replaces the event.
- ``MeetingReminder``: a day-before reminder sent to a person for a meeting at a given time.
- ``Nudge``: a participant told they are behind the programme's pacing (at most one a week; the mentor sees it).
- ``SeatExpiryNotice``: a licence administrator told which of their organisation's seats expire soon.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kurspakke.models.base import Base, utcnow


class ReminderPreference(Base):
    """A person's reminder setting. The day-before reminders and the nudges obey it; notices that a meeting was
    scheduled, moved or cancelled are service messages and do not (the person needs them to turn up)."""

    __tablename__ = "reminder_preference"

    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    reminders_on: Mapped[bool] = mapped_column(default=True)
    # The language of the launch in which the person last saved the setting (the tool keeps no other): e-mails to
    # them are written in it. None: Bokmål.
    locale: Mapped[str | None] = mapped_column(String(8), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MeetingNotice(Base):
    """The meeting as last announced. No foreign key: the row outlives a cancelled meeting, so the cancellation
    carries a higher SEQUENCE, and a later meeting that gets the same id on SQLite (which may reuse the highest
    id) continues the sequence instead of being ignored by calendars that saw the cancellation."""

    __tablename__ = "meeting_notice"

    meeting_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    # Which meeting of that id was announced (see above).
    meeting_created_at: Mapped[datetime]
    sequence: Mapped[int] = mapped_column(default=0)
    starts_at: Mapped[datetime]
    duration_minutes: Mapped[int]
    format: Mapped[str] = mapped_column(String(16))
    place: Mapped[str] = mapped_column(String(255), default="")
    video_url: Mapped[str] = mapped_column(String(500), default="")
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    notified_at: Mapped[datetime] = mapped_column(default=utcnow)


class MeetingReminder(Base):
    """A day-before reminder of a meeting at ``starts_at`` to one person. A meeting moved to another day is
    reminded of again; a cancelled meeting takes its reminders with it."""

    __tablename__ = "meeting_reminder"
    __table_args__ = (UniqueConstraint("meeting_id", "person_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Nudge(Base):
    """A participant seat nudged for being behind the pacing: what they had done and what was expected."""

    __tablename__ = "nudge"
    __table_args__ = (Index("ix_nudge_seat_sent", "seat_id", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seat_id: Mapped[int] = mapped_column(ForeignKey("seat.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    programme_id: Mapped[str] = mapped_column(String(64))
    modules_done: Mapped[int]
    modules_expected: Mapped[int]
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class SeatExpiryNotice(Base):
    """A licence administrator told about an organisation's seats expiring soon (at most one a week)."""

    __tablename__ = "seat_expiry_notice"
    __table_args__ = (
        Index("ix_seat_expiry_notice_recipient", "person_id", "organisation_id", "programme_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    programme_id: Mapped[str] = mapped_column(String(64))
    seats: Mapped[int]
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["MeetingNotice", "MeetingReminder", "Nudge", "ReminderPreference", "SeatExpiryNotice"]
