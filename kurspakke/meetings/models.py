"""Meetings (a programme session held at a time and place) and attendance records.

A programme file's session (``session_key``) is held as a meeting: for a group (the group sessions, or a group's own
introduction), for an organisation's whole run (``group_id`` None, ``organisation_id`` set), or for the programme's
whole run across organisations (both None: the learning network's dated sessions).

Attendance belongs to a participant's seat and a session key, not to a group: a participant moved between groups
keeps what was recorded. A record without a meeting is a make-up the mentor recorded ("tatt igjen")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kurspakke.models.base import Base, utcnow

FORMAT_PHYSICAL = "physical"
FORMAT_DIGITAL = "digital"
FORMATS = (FORMAT_PHYSICAL, FORMAT_DIGITAL)


class Meeting(Base):
    """One session of the programme file as it is held. ``canvas_event_id`` is the Canvas calendar event the worker
    made for it (None until then); ``canvas_context`` the context code it lives in (group_N, course_N)."""

    __tablename__ = "meeting"
    __table_args__ = (
        UniqueConstraint("group_id", "session_key"),
        Index("ix_meeting_programme_session", "programme_id", "session_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_id: Mapped[str] = mapped_column(String(64))
    session_key: Mapped[str] = mapped_column(String(64))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("mentor_group.id", ondelete="RESTRICT"), default=None)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="RESTRICT"), default=None, index=True
    )
    starts_at: Mapped[datetime]
    duration_minutes: Mapped[int]
    format: Mapped[str] = mapped_column(String(16))
    place: Mapped[str] = mapped_column(String(255), default="")
    video_url: Mapped[str] = mapped_column(String(500), default="")
    canvas_event_id: Mapped[str | None] = mapped_column(String(64), default=None)
    canvas_context: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Attendance(Base):
    """A participant at a session: present or absent, an optional note, and the mentor who led the session.
    ``meeting_id`` None: a make-up the mentor recorded (attended with another group, or an agreed make-up)."""

    __tablename__ = "attendance"
    __table_args__ = (
        UniqueConstraint("meeting_id", "seat_id"),
        Index("ix_attendance_seat_session", "seat_id", "session_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seat_id: Mapped[int] = mapped_column(ForeignKey("seat.id", ondelete="CASCADE"))
    programme_id: Mapped[str] = mapped_column(String(64), index=True)
    session_key: Mapped[str] = mapped_column(String(64))
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meeting.id", ondelete="RESTRICT"), default=None)
    present: Mapped[bool]
    makeup: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str] = mapped_column(String(500), default="")
    led_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"), default=None)
    recorded_by: Mapped[str] = mapped_column(String(255))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


__all__ = ["FORMATS", "FORMAT_DIGITAL", "FORMAT_PHYSICAL", "Attendance", "Meeting"]
