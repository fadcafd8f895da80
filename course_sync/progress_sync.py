"""Quiz progress read from Canvas in bulk (DESIGN.md §3 "Progress"), and mapping a module to a course's quiz.

Per linked course: a full sync is one paginated call series over /courses/:id/students/submissions with
student_ids[]=all and the mapped assignment_ids[]; an incremental sync is two (Canvas applies submitted_since and
graded_since together when both are given, so one series per filter), each from the stored watermark minus
OVERLAP, so a submission landing while a sync runs is read again by the next one. The watermark advances to the
sync's start only when every call of the course succeeded."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from course_sync.canvas import CanvasClient, CanvasError, CanvasSubmission
from course_sync.provisioning import StepContext
from kurspakke.db import transaction
from kurspakke.models import CanvasInstance, CourseLink
from kurspakke.models.base import utcnow
from kurspakke.programmes import Programme, programmes_once
from kurspakke.progress.models import ProgressWatermark, QuizMapping
from kurspakke.progress.services import QuizMappingError, apply_submissions, map_quiz, mappings, module_of

log = logging.getLogger("kurspakke.progress")

# Canvas stamps submitted_at / graded_at when it writes them, and the write may become visible after our call
# started: read back this far behind the last successful start.
OVERLAP = timedelta(minutes=5)
PERIOD_MINUTES = 10

ClientFor = Callable[[CanvasInstance], CanvasClient]


@dataclass
class CourseSync:
    course_link_id: int
    canvas_course_id: str
    mode: str = "full"  # "full", "incremental" or "skipped"
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "course_link_id": self.course_link_id,
            "canvas_course_id": self.canvas_course_id,
            "mode": self.mode,
            "error": self.error,
            **self.counts,
        }


@dataclass
class ProgressReport:
    programme_id: str
    courses: list[CourseSync] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.error is None for c in self.courses)

    def as_dict(self) -> dict[str, Any]:
        return {"programme_id": self.programme_id, "ok": self.ok, "courses": [c.as_dict() for c in self.courses]}


def ten_minute_slot(now: datetime) -> str:
    """The periodic job's period: the 10-minute slot in UTC ("2026-11-30T00:40Z")."""
    now = now.astimezone(UTC)
    return f"{now:%Y-%m-%dT%H}:{now.minute - now.minute % PERIOD_MINUTES:02d}Z"


def _linked_courses(session: Session, programme_id: str) -> list[tuple[int, str, CanvasInstance]]:
    """(course link id, Canvas course id, Canvas instance) of the programme's links on registered Canvas instances."""
    rows = session.execute(
        select(CourseLink.id, CourseLink.canvas_course_id, CanvasInstance)
        .join(CanvasInstance, CanvasInstance.platform_instance == CourseLink.platform_instance)
        .where(CourseLink.programme_id == programme_id, CourseLink.canvas_course_id.is_not(None))
        .order_by(CourseLink.id)
    ).all()
    for _, _, instance in rows:
        session.expunge(instance)
    return [(link_id, str(course_id), instance) for link_id, course_id, instance in rows]


def _read(
    client: CanvasClient, course_id: str, assignment_ids: list[str], watermark: ProgressWatermark | None
) -> tuple[str, list[CanvasSubmission]]:
    if watermark is None or watermark.submitted_since is None or watermark.graded_since is None:
        return "full", client.submissions(course_id, assignment_ids=assignment_ids)
    handed_in = client.submissions(
        course_id, assignment_ids=assignment_ids, submitted_since=watermark.submitted_since - OVERLAP
    )
    graded = client.submissions(course_id, assignment_ids=assignment_ids, graded_since=watermark.graded_since - OVERLAP)
    return "incremental", handed_in + graded


def sync_course(
    sessions: sessionmaker[Session],
    client_for: ClientFor,
    programme: Programme,
    course_link_id: int,
    canvas_course_id: str,
    instance: CanvasInstance,
    *,
    full: bool = False,
    now: Callable[[], datetime] = utcnow,
) -> CourseSync:
    """Sync one linked course. Canvas errors (after the client's retries) end up in the result, not raised; the
    watermark then stays where it was."""
    result = CourseSync(course_link_id, canvas_course_id)
    with transaction(sessions) as session:
        assignment_ids = [m.assignment_id for m in mappings(session, course_link_id)]
        watermark = None if full else session.get(ProgressWatermark, course_link_id)
        if watermark is not None:
            session.expunge(watermark)
    if not assignment_ids:
        result.mode, result.error = "skipped", None
        result.counts = {"mapped_quizzes": 0}
        return result
    started = now()
    try:
        result.mode, submissions = _read(client_for(instance), canvas_course_id, assignment_ids, watermark)
    except CanvasError as exc:
        result.mode = "full" if watermark is None else "incremental"
        result.error = str(exc)
        log.warning("progress sync of course link %s failed: %s", course_link_id, exc)
        return result
    with transaction(sessions) as session:
        link = session.get(CourseLink, course_link_id)
        if link is None:  # unlinked while we read
            result.mode, result.error = "skipped", None
            return result
        counts = apply_submissions(session, programme, link, submissions)
        mark = session.get(ProgressWatermark, course_link_id)
        if mark is None:
            mark = ProgressWatermark(course_link_id=course_link_id)
            session.add(mark)
        mark.submitted_since = mark.graded_since = started
        if result.mode == "full":
            mark.last_full_at = started
    result.counts = {"mapped_quizzes": len(assignment_ids), **counts.as_dict()}
    return result


def sync_progress(
    sessions: sessionmaker[Session],
    client_for: ClientFor,
    programme_id: str,
    *,
    full: bool = False,
    programmes: Mapping[str, Programme] | None = None,
    now: Callable[[], datetime] = utcnow,
) -> ProgressReport:
    """One progress sync of every course the programme is linked to on a registered Canvas instance. ``full``
    reads everything (also when a course has no watermark yet). Raises KeyError for an unknown programme; Canvas
    errors are reported per course (``report.ok`` False), never raised."""
    programme = (programmes if programmes is not None else programmes_once())[programme_id]
    report = ProgressReport(programme_id)
    with transaction(sessions) as session:
        courses = _linked_courses(session, programme_id)
    for link_id, course_id, instance in courses:
        report.courses.append(
            sync_course(sessions, client_for, programme, link_id, course_id, instance, full=full, now=now)
        )
    return report


def progress_job(ctx: StepContext) -> dict[str, Any]:
    """The worker's periodic progress sync (every 10 minutes: period ``ten_minute_slot``) of every programme."""
    reports = [sync_progress(ctx.sessions, ctx.client_for, pid).as_dict() for pid in sorted(programmes_once())]
    for r in reports:
        if not r["ok"]:
            log.warning("progress sync of %s incomplete: %s", r["programme_id"], r)
    return {"programmes": reports}


def map_quiz_from_canvas(
    sessions: sessionmaker[Session],
    client_for: ClientFor,
    programme: Programme,
    module_id: str,
    assignment_id: int,
    *,
    course_link_id: int | None = None,
    actor: str,
) -> QuizMapping:
    """Map a module to a quiz of the programme's linked course, checked against the course's assignments as Canvas
    lists them. ``course_link_id`` is needed when the programme is linked in several courses.

    Raises QuizMappingError for a module the programme lacks, a missing or ambiguous course link, an unregistered
    Canvas instance, or an assignment that cannot be mapped (see ``map_quiz``); CanvasError when Canvas cannot be
    read."""
    module_of(programme, module_id)
    with transaction(sessions) as session:
        courses = _linked_courses(session, programme.id)
        links = session.scalars(
            select(CourseLink.id).where(CourseLink.programme_id == programme.id).order_by(CourseLink.id)
        ).all()
    if course_link_id is None:
        if not links:
            raise QuizMappingError(f"programme {programme.id!r} is not linked to any course")
        if len(links) > 1:
            ids = ", ".join(str(i) for i in links)
            raise QuizMappingError(
                f"programme {programme.id!r} is linked in several courses ({ids}): choose one with --course-link"
            )
        course_link_id = links[0]
    elif course_link_id not in links:
        raise QuizMappingError(f"course link {course_link_id} is not a course of programme {programme.id!r}")
    chosen = next((c for c in courses if c[0] == course_link_id), None)
    if chosen is None:
        raise QuizMappingError(
            f"course link {course_link_id} has no Canvas course id or its Canvas instance is not registered "
            "(kurspakke canvas add)"
        )
    _, course_id, instance = chosen
    assignments = client_for(instance).assignments(course_id)
    with transaction(sessions) as session:
        link = session.get(CourseLink, course_link_id)
        if link is None:
            raise QuizMappingError(f"course link {course_link_id} was unlinked meanwhile")
        mapping = map_quiz(session, programme, link, module_id, assignment_id, assignments, actor=actor)
        session.flush()
        session.expunge(mapping)
    return mapping


__all__ = [
    "OVERLAP",
    "CourseSync",
    "ProgressReport",
    "map_quiz_from_canvas",
    "progress_job",
    "sync_course",
    "sync_progress",
    "ten_minute_slot",
]
