"""Mentor groups, their mentors and their members (participants' seats)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kurspakke.licences.models import Seat
from kurspakke.models.base import Base, utcnow
from kurspakke.models.people import Person


class MentorGroup(Base):
    """A group inside one organisation and programme ("Mentorgrupper" in Canvas). Names are unique there."""

    __tablename__ = "mentor_group"
    __table_args__ = (UniqueConstraint("organisation_id", "programme_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="RESTRICT"))
    programme_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    # The group's mirror in Canvas (group set "Mentorgrupper" of the organisation's course): None until the worker
    # made it. The worker's group.sync step finds or creates it by name, so a lost id is found again.
    canvas_group_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CanvasGroupSet(Base):
    """The group set (Canvas group category) "Mentorgrupper" in one course of one Canvas instance. The worker
    creating it holds the row's lease, so two workers never make two sets."""

    __tablename__ = "canvas_group_set"
    __table_args__ = (UniqueConstraint("canvas_instance_id", "course_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    canvas_instance_id: Mapped[int] = mapped_column(ForeignKey("canvas_instance.id", ondelete="CASCADE"))
    course_id: Mapped[str] = mapped_column(String(64))
    group_category_id: Mapped[str | None] = mapped_column(String(64), default=None)
    locked_by: Mapped[str | None] = mapped_column(String(128), default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupMentor(Base):
    """A mentor leading a group; the person holds the MENTOR role of the group's organisation and programme."""

    __tablename__ = "group_mentor"
    __table_args__ = (UniqueConstraint("group_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("mentor_group.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person] = relationship()


class GroupMember(Base):
    """A participant's seat in a group. A seat belongs to one programme, so ``seat_id`` unique means a participant
    is in at most one group of the programme; moving them changes ``group_id`` (their history stays with the
    seat and the person, not with the group)."""

    __tablename__ = "group_member"
    __table_args__ = (UniqueConstraint("seat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("mentor_group.id", ondelete="CASCADE"), index=True)
    seat_id: Mapped[int] = mapped_column(ForeignKey("seat.id", ondelete="CASCADE"))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)

    seat: Mapped[Seat] = relationship()


__all__ = ["CanvasGroupSet", "GroupMember", "GroupMentor", "MentorGroup"]
