"""Mapping a module to a quiz of a linked course, and applying Canvas's submissions to module completions.

Knows nothing of HTTP: course_sync/progress_sync.py reads Canvas and hands the answers in (any objects with the
attributes of the Protocols below, e.g. course_sync.canvas.CanvasAssignment / CanvasSubmission)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kurspakke.certificates.requests import request_evaluation
from kurspakke.licences.services import audit
from kurspakke.models.people import CourseLink, IdentityKind, PersonIdentity
from kurspakke.programmes import Module, Programme
from kurspakke.progress.models import SOURCE_CANVAS_SYNC, ModuleCompletion, ProgressWatermark, QuizMapping

# Bound parameters per IN (...) list: well under SQLite's and PostgreSQL's limits.
IN_CHUNK = 500
SYNC_ACTOR = "canvas sync"


class QuizMappingError(ValueError):
    """A module cannot be mapped to that assignment; the message says why, for the person who asked."""


class AssignmentLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def quiz_id(self) -> int | None: ...
    @property
    def is_quiz_assignment(self) -> bool: ...
    @property
    def points_possible(self) -> float | None: ...
    @property
    def published(self) -> bool: ...


class SubmissionLike(Protocol):
    @property
    def user_id(self) -> int: ...
    @property
    def assignment_id(self) -> int: ...
    @property
    def submitted_at(self) -> datetime | None: ...
    @property
    def score(self) -> float | None: ...
    @property
    def excused(self) -> bool: ...


@dataclass
class ApplyCounts:
    submissions: int = 0
    completed: int = 0  # new completions
    updated: int = 0  # completions whose date or score changed
    reversed: int = 0  # completions taken back (a regrade below the share)
    unknown_users: int = 0  # submissions of Canvas users the tool does not know: ignored, not stored
    unmapped: int = 0  # submissions of assignments no module is mapped to

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def module_of(programme: Programme, module_id: str) -> Module:
    """The programme's module. Raises QuizMappingError naming the modules there are."""
    for module in programme.modules:
        if module.id == module_id:
            return module
    known = ", ".join(m.id for m in programme.modules) or "none"
    raise QuizMappingError(f"programme {programme.id!r} has no module {module_id!r} (its modules: {known})")


def mappings(session: Session, course_link_id: int) -> list[QuizMapping]:
    return list(
        session.scalars(
            select(QuizMapping).where(QuizMapping.course_link_id == course_link_id).order_by(QuizMapping.module_id)
        )
    )


def map_quiz(
    session: Session,
    programme: Programme,
    course_link: CourseLink,
    module_id: str,
    assignment_id: int | str,
    assignments: Iterable[AssignmentLike],
    *,
    actor: str,
) -> QuizMapping:
    """Map ``module_id`` to the course's assignment ``assignment_id`` (``assignments``: the course's assignments as
    Canvas lists them). Replaces the module's earlier quiz, and drops the course's watermark so the next sync reads
    every submission of the new quiz.

    Raises QuizMappingError when the course link is not the programme's, the module is not the programme's, the
    assignment is not in the course, is not a quiz (a plain assignment; practice quizzes and ungraded surveys are
    not assignments at all, so Canvas never lists them), is unpublished, or is already mapped to another module."""
    if course_link.programme_id != programme.id:
        raise QuizMappingError(f"course link {course_link.id} belongs to programme {course_link.programme_id!r}")
    module = module_of(programme, module_id)
    wanted = str(assignment_id)
    found = next((a for a in assignments if str(a.id) == wanted), None)
    if found is None:
        raise QuizMappingError(
            f"the course has no assignment {wanted}: only graded Classic Quizzes and New Quizzes can be mapped "
            "(practice quizzes and ungraded surveys are not assignments)"
        )
    if not found.is_quiz_assignment:
        raise QuizMappingError(
            f"assignment {wanted} ({found.name}) is not a quiz: map a graded Classic Quiz or a New Quiz"
        )
    if not found.published:
        raise QuizMappingError(
            f"quiz {wanted} ({found.name}) is not published: Canvas lists no submissions of it; publish it first"
        )
    taken = session.scalars(
        select(QuizMapping).where(
            QuizMapping.course_link_id == course_link.id,
            QuizMapping.assignment_id == wanted,
            QuizMapping.module_id != module.id,
        )
    ).one_or_none()
    if taken is not None:
        raise QuizMappingError(f"quiz {wanted} ({found.name}) is already mapped to module {taken.module_id!r}")
    mapping = session.scalars(
        select(QuizMapping).where(QuizMapping.course_link_id == course_link.id, QuizMapping.module_id == module.id)
    ).one_or_none()
    before = _mapping_state(mapping) if mapping is not None else None
    if mapping is None:
        mapping = QuizMapping(course_link_id=course_link.id, module_id=module.id, assignment_id=wanted)
        session.add(mapping)
    mapping.assignment_id = wanted
    mapping.assignment_name = found.name[:255]
    mapping.points_possible = found.points_possible
    mapping.mapped_by = actor[:255]
    session.execute(delete(ProgressWatermark).where(ProgressWatermark.course_link_id == course_link.id))
    session.flush()
    audit(
        session,
        actor=actor,
        action="quiz_mapping.set",
        entity_type="quiz_mapping",
        entity_id=mapping.id,
        before=before,
        after=_mapping_state(mapping),
    )
    return mapping


def _mapping_state(mapping: QuizMapping) -> dict[str, object]:
    return {
        "course_link_id": mapping.course_link_id,
        "module_id": mapping.module_id,
        "assignment_id": mapping.assignment_id,
        "points_possible": mapping.points_possible,
    }


def completes(module: Module, submission: SubmissionLike, points_possible: float | None) -> bool:
    """DESIGN.md §2: handed in (submitted_at set; an excused quiz with nothing handed in is not), and, when the
    module sets a share, scored at least that share of the quiz's points."""
    if submission.submitted_at is None:
        return False
    if module.min_score_share <= 0:
        return True
    if submission.score is None or not points_possible:
        return False
    return submission.score >= module.min_score_share * points_possible


def canvas_people(session: Session, scope: str, user_ids: Iterable[int | str]) -> dict[str, int]:
    """Canvas user id → person id, for the users the tool recorded on this Canvas instance (``scope``)."""
    ids = sorted({str(u) for u in user_ids})
    found: dict[str, int] = {}
    for i in range(0, len(ids), IN_CHUNK):
        rows = session.execute(
            select(PersonIdentity.value, PersonIdentity.person_id).where(
                PersonIdentity.kind == IdentityKind.CANVAS_USER_ID,
                PersonIdentity.scope == scope,
                PersonIdentity.value.in_(ids[i : i + IN_CHUNK]),
            )
        )
        found.update({value: person_id for value, person_id in rows})
    return found


def apply_submissions(
    session: Session,
    programme: Programme,
    course_link: CourseLink,
    submissions: Sequence[SubmissionLike],
    *,
    actor: str = SYNC_ACTOR,
) -> ApplyCounts:
    """Bring the module completions of the course's people in line with ``submissions`` (Canvas's current state of
    each one; when a submission appears twice, the last one counts). A submission of a mapped quiz that completes
    its module records (or updates) the completion; one that no longer does (a regrade below the share) removes it,
    with an audit entry. Submissions of Canvas users without a Canvas user id of this instance in the tool are
    ignored and not stored. Flushes; the caller commits."""
    counts = ApplyCounts(submissions=len(submissions))
    by_assignment = {m.assignment_id: m for m in mappings(session, course_link.id)}
    modules = {m.id: m for m in programme.modules}
    latest: dict[tuple[str, str], SubmissionLike] = {}
    for s in submissions:
        if str(s.assignment_id) not in by_assignment:
            counts.unmapped += 1
            continue
        latest[(str(s.user_id), str(s.assignment_id))] = s
    people = canvas_people(session, course_link.platform_instance, (user for user, _ in latest))
    person_ids = sorted(set(people.values()))
    existing: dict[tuple[int, str], ModuleCompletion] = {}
    for i in range(0, len(person_ids), IN_CHUNK):
        for c in session.scalars(
            select(ModuleCompletion).where(
                ModuleCompletion.programme_id == programme.id,
                ModuleCompletion.person_id.in_(person_ids[i : i + IN_CHUNK]),
            )
        ):
            existing[(c.person_id, c.module_id)] = c
    touched: set[int] = set()  # people whose completions changed: their certificate is evaluated (worker)
    for (user_id, assignment_id), s in latest.items():
        person_id = people.get(user_id)
        if person_id is None:
            counts.unknown_users += 1
            continue
        mapping = by_assignment[assignment_id]
        module = modules.get(mapping.module_id)
        if module is None:  # the programme file no longer has the module
            continue
        done = existing.get((person_id, module.id))
        if completes(module, s, mapping.points_possible):
            assert s.submitted_at is not None
            if done is None:
                session.add(
                    ModuleCompletion(
                        person_id=person_id,
                        programme_id=programme.id,
                        module_id=module.id,
                        completed_at=s.submitted_at,
                        score=s.score,
                        source=SOURCE_CANVAS_SYNC,
                        assignment_id=assignment_id,
                    )
                )
                counts.completed += 1
                touched.add(person_id)
            elif (done.completed_at, done.score, done.assignment_id) != (s.submitted_at, s.score, assignment_id):
                done.completed_at, done.score, done.assignment_id = s.submitted_at, s.score, assignment_id
                counts.updated += 1
                touched.add(person_id)
        elif done is not None:
            audit(
                session,
                actor=actor,
                action="module_completion.reversed",
                entity_type="module_completion",
                entity_id=done.id,
                before=_completion_state(done),
                after={
                    "assignment_id": assignment_id,
                    "submitted_at": s.submitted_at.isoformat() if s.submitted_at else None,
                    "score": s.score,
                    "excused": s.excused,
                    "min_score_share": module.min_score_share,
                    "points_possible": mapping.points_possible,
                },
            )
            session.delete(done)
            counts.reversed += 1
    session.flush()
    if touched:
        request_evaluation(session, programme.id, touched)
    return counts


def _completion_state(c: ModuleCompletion) -> dict[str, object]:
    return {
        "person_id": c.person_id,
        "programme_id": c.programme_id,
        "module_id": c.module_id,
        "completed_at": c.completed_at.isoformat(),
        "score": c.score,
        "source": c.source,
        "assignment_id": c.assignment_id,
    }


__all__ = [
    "ApplyCounts",
    "QuizMappingError",
    "apply_submissions",
    "canvas_people",
    "completes",
    "map_quiz",
    "mappings",
    "module_of",
]
