"""Quiz mappings per linked course, module completions and the watermark of each course's incremental sync."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kurspakke.models.base import Base, utcnow

SOURCE_CANVAS_SYNC = "canvas sync"


class QuizMapping(Base):
    """The Canvas assignment (a graded Classic Quiz or a New Quiz) whose submission completes a module in one
    linked course. One quiz per module and course; one module per quiz."""

    __tablename__ = "quiz_mapping"
    __table_args__ = (
        UniqueConstraint("course_link_id", "module_id"),
        UniqueConstraint("course_link_id", "assignment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_link_id: Mapped[int] = mapped_column(ForeignKey("course_link.id", ondelete="CASCADE"))
    module_id: Mapped[str] = mapped_column(String(64))
    assignment_id: Mapped[str] = mapped_column(String(64))  # Canvas's assignment id
    assignment_name: Mapped[str] = mapped_column(String(255), default="")
    # The quiz's points when it was mapped: a module's min_score_share is a share of these.
    points_possible: Mapped[float | None] = mapped_column(Float, default=None)
    mapped_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ModuleCompletion(Base):
    """A person completed a module: when the completing quiz was handed in (Canvas's submitted_at), its score then,
    and where it came from. Deleted (and audited) when a regrade takes the score below the module's share."""

    __tablename__ = "module_completion"
    __table_args__ = (UniqueConstraint("person_id", "programme_id", "module_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    programme_id: Mapped[str] = mapped_column(String(64), index=True)
    module_id: Mapped[str] = mapped_column(String(64))
    completed_at: Mapped[datetime]
    score: Mapped[float | None] = mapped_column(Float, default=None)
    source: Mapped[str] = mapped_column(String(32), default=SOURCE_CANVAS_SYNC)
    assignment_id: Mapped[str | None] = mapped_column(String(64), default=None)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProgressWatermark(Base):
    """Where a course's next incremental sync starts: the start time of the last successful sync, for Canvas's
    submitted_since and graded_since filters. No row: the next sync reads everything."""

    __tablename__ = "progress_watermark"

    course_link_id: Mapped[int] = mapped_column(ForeignKey("course_link.id", ondelete="CASCADE"), primary_key=True)
    submitted_since: Mapped[datetime | None] = mapped_column(default=None)
    graded_since: Mapped[datetime | None] = mapped_column(default=None)
    last_full_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


__all__ = ["SOURCE_CANVAS_SYNC", "ModuleCompletion", "ProgressWatermark", "QuizMapping"]
