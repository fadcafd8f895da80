"""Quiz mapping and module completion from Canvas's submissions (kurspakke/progress/services.py), on SQLite and
PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from course_sync.canvas import CanvasAssignment, CanvasSubmission
from kurspakke.models import AuditEntry, CourseLink, IdentityKind, Person, PersonIdentity
from kurspakke.programmes import load_programmes
from kurspakke.progress.models import ModuleCompletion, ProgressWatermark, QuizMapping
from kurspakke.progress.services import QuizMappingError, apply_submissions, completes, map_quiz

PROGRAMME = load_programmes()["lindrende-behandling"]
SCOPE = "https://canvas.test|guid-1"
ACTOR = "test"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def classic(aid: int, name: str = "Quiz", points: float | None = 10.0, published: bool = True) -> CanvasAssignment:
    return CanvasAssignment(aid, name, aid + 100, True, points, ("online_quiz",), published)


def new_quiz(aid: int) -> CanvasAssignment:
    return CanvasAssignment(aid, "Ny quiz", None, True, 10.0, ("external_tool",), True)


def plain(aid: int) -> CanvasAssignment:
    return CanvasAssignment(aid, "Refleksjonsnotat", None, False, 10.0, ("online_text_entry",), True)


ASSIGNMENTS = [classic(1, "Quiz emne 1"), new_quiz(2), plain(3), classic(4, "Upublisert", published=False)]


def sub(
    user: int,
    assignment: int,
    submitted_at: datetime | None = T0,
    score: float | None = None,
    excused: bool = False,
    sid: int = 1,
) -> CanvasSubmission:
    state = "graded" if score is not None else "submitted" if submitted_at else "unsubmitted"
    return CanvasSubmission(sid, user, assignment, submitted_at, None, score, state, excused, False)


@pytest.fixture
def link(session: Session) -> CourseLink:
    course_link = CourseLink(
        programme_id=PROGRAMME.id, platform_instance=SCOPE, context_id="ctx", canvas_course_id="1", title="Kurs"
    )
    session.add(course_link)
    session.flush()
    return course_link


def person(session: Session, canvas_user_id: int, scope: str = SCOPE) -> int:
    p = Person(name=f"Deltaker {canvas_user_id}", email=f"d{canvas_user_id}@example.no")
    p.identities.append(PersonIdentity(kind=IdentityKind.CANVAS_USER_ID, scope=scope, value=str(canvas_user_id)))
    session.add(p)
    session.flush()
    return p.id


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- map_quiz -----------------------------------------------------------------------------------------------------


def test_a_classic_quiz_and_a_new_quiz_can_be_mapped(session: Session, link: CourseLink) -> None:
    m1 = map_quiz(session, PROGRAMME, link, "emne-1", 1, ASSIGNMENTS, actor=ACTOR)
    m2 = map_quiz(session, PROGRAMME, link, "emne-2", "2", ASSIGNMENTS, actor=ACTOR)
    assert (m1.module_id, m1.assignment_id, m1.points_possible) == ("emne-1", "1", 10.0)
    assert (m2.module_id, m2.assignment_id) == ("emne-2", "2")
    assert count(session, QuizMapping) == 2
    assert session.scalar(select(func.count()).where(AuditEntry.action == "quiz_mapping.set")) == 2


@pytest.mark.parametrize(
    ("module", "assignment", "message"),
    [
        ("emne-9", 1, "programme 'lindrende-behandling' has no module 'emne-9' (its modules: emne-1, emne-2"),
        ("emne-1", 3, "assignment 3 (Refleksjonsnotat) is not a quiz: map a graded Classic Quiz or a New Quiz"),
        ("emne-1", 99, "the course has no assignment 99: only graded Classic Quizzes and New Quizzes can be mapped"),
        ("emne-1", 4, "quiz 4 (Upublisert) is not published"),
    ],
)
def test_bad_mappings_are_refused_and_nothing_is_written(
    session: Session, link: CourseLink, module: str, assignment: int, message: str
) -> None:
    with pytest.raises(QuizMappingError) as refused:
        map_quiz(session, PROGRAMME, link, module, assignment, ASSIGNMENTS, actor=ACTOR)
    assert message in str(refused.value)
    assert count(session, QuizMapping) == 0
    assert count(session, AuditEntry) == 0


def test_one_quiz_cannot_complete_two_modules(session: Session, link: CourseLink) -> None:
    map_quiz(session, PROGRAMME, link, "emne-1", 1, ASSIGNMENTS, actor=ACTOR)
    with pytest.raises(QuizMappingError, match="already mapped to module 'emne-1'"):
        map_quiz(session, PROGRAMME, link, "emne-2", 1, ASSIGNMENTS, actor=ACTOR)
    assert [m.module_id for m in session.scalars(select(QuizMapping))] == ["emne-1"]


def test_a_link_of_another_programme_is_refused(session: Session, link: CourseLink) -> None:
    link.programme_id = "laeringsnettverk-parorende"
    with pytest.raises(QuizMappingError, match="belongs to programme"):
        map_quiz(session, PROGRAMME, link, "emne-1", 1, ASSIGNMENTS, actor=ACTOR)
    assert count(session, QuizMapping) == 0


def test_remapping_a_module_replaces_its_quiz_and_drops_the_watermark(session: Session, link: CourseLink) -> None:
    map_quiz(session, PROGRAMME, link, "emne-1", 1, ASSIGNMENTS, actor=ACTOR)
    session.add(ProgressWatermark(course_link_id=link.id, submitted_since=T0, graded_since=T0))
    session.flush()
    map_quiz(session, PROGRAMME, link, "emne-1", 2, ASSIGNMENTS, actor=ACTOR)
    assert [(m.module_id, m.assignment_id) for m in session.scalars(select(QuizMapping))] == [("emne-1", "2")]
    assert session.get(ProgressWatermark, link.id) is None


# --- the completion rule ------------------------------------------------------------------------------------------


def test_completes_when_handed_in_and_the_share_is_met() -> None:
    module = PROGRAMME.modules[0]
    assert module.min_score_share == 0
    assert completes(module, sub(1, 1), 10.0)
    assert completes(module, sub(1, 1, score=0.0), 10.0)
    assert not completes(module, sub(1, 1, submitted_at=None, score=10.0), 10.0)
    assert not completes(module, sub(1, 1, submitted_at=None, excused=True), 10.0)
    strict = replace(module, min_score_share=0.8)
    assert completes(strict, sub(1, 1, score=8.0), 10.0)
    assert not completes(strict, sub(1, 1, score=7.9), 10.0)
    assert not completes(strict, sub(1, 1, score=None), 10.0)  # handed in, not graded yet
    assert not completes(strict, sub(1, 1, score=8.0), None)  # a share of no points cannot be checked


# --- apply_submissions --------------------------------------------------------------------------------------------


def completions(session: Session) -> list[tuple[int, str, datetime, float | None, str, str | None]]:
    rows = session.scalars(select(ModuleCompletion).order_by(ModuleCompletion.person_id, ModuleCompletion.module_id))
    return [(c.person_id, c.module_id, c.completed_at, c.score, c.source, c.assignment_id) for c in rows]


def test_a_handed_in_quiz_completes_its_module(session: Session, link: CourseLink) -> None:
    map_quiz(session, PROGRAMME, link, "emne-1", 1, ASSIGNMENTS, actor=ACTOR)
    map_quiz(session, PROGRAMME, link, "emne-2", 2, ASSIGNMENTS, actor=ACTOR)
    anne, bo = person(session, 501), person(session, 502)
    counts = apply_submissions(
        session,
        PROGRAMME,
        link,
        [sub(501, 1, score=7.0), sub(501, 2, submitted_at=None), sub(502, 2, T0 + timedelta(days=1)), sub(502, 3)],
    )
    assert completions(session) == [
        (anne, "emne-1", T0, 7.0, "canvas sync", "1"),
        (bo, "emne-2", T0 + timedelta(days=1), None, "canvas sync", "2"),
    ]
    assert (counts.completed, counts.unmapped, counts.unknown_users, counts.reversed) == (2, 1, 0, 0)
    # The same answer again changes nothing.
    again = apply_submissions(session, PROGRAMME, link, [sub(501, 1, score=7.0), sub(502, 2, T0 + timedelta(days=1))])
    assert (again.completed, again.updated, again.reversed) == (0, 0, 0)


def test_an_excused_quiz_with_nothing_handed_in_does_not_complete(session: Session, link: CourseLink) -> None:
    map_quiz(session, PROGRAMME, link, "emne-1", 1, ASSIGNMENTS, actor=ACTOR)
    person(session, 501)
    counts = apply_submissions(session, PROGRAMME, link, [sub(501, 1, submitted_at=None, excused=True)])
    assert completions(session) == []
    assert counts.completed == 0


def test_submissions_of_unknown_canvas_users_are_ignored_and_not_stored(session: Session, link: CourseLink) -> None:
    map_quiz(session, PROGRAMME, link, "emne-1", 1, ASSIGNMENTS, actor=ACTOR)
    person(session, 777, scope="https://other.canvas|guid-2")  # the same id on another Canvas is someone else
    people_before = count(session, Person)
    counts = apply_submissions(session, PROGRAMME, link, [sub(777, 1), sub(778, 1)])
    assert counts.unknown_users == 2
    assert completions(session) == []
    assert count(session, Person) == people_before
    assert count(session, PersonIdentity) == 1


def test_a_regrade_below_the_share_reverses_the_completion_and_is_audited(session: Session, link: CourseLink) -> None:
    programme = replace(PROGRAMME, modules=(replace(PROGRAMME.modules[0], min_score_share=0.8), *PROGRAMME.modules[1:]))
    map_quiz(session, programme, link, "emne-1", 1, ASSIGNMENTS, actor=ACTOR)
    anne = person(session, 501)
    assert apply_submissions(session, programme, link, [sub(501, 1, score=9.0)]).completed == 1
    completion_id = session.scalars(select(ModuleCompletion.id)).one()

    counts = apply_submissions(session, programme, link, [sub(501, 1, score=6.0)])

    assert counts.reversed == 1
    assert completions(session) == []
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "module_completion.reversed")).one()
    assert (entry.actor, entry.entity_type, entry.entity_id) == ("canvas sync", "module_completion", str(completion_id))
    assert entry.before is not None and entry.before["person_id"] == anne and entry.before["score"] == 9.0
    assert entry.after is not None and entry.after["score"] == 6.0
    # Graded up again: completes again.
    assert apply_submissions(session, programme, link, [sub(501, 1, score=8.0)]).completed == 1


def test_a_new_grade_above_the_share_updates_the_score(session: Session, link: CourseLink) -> None:
    map_quiz(session, PROGRAMME, link, "emne-1", 1, ASSIGNMENTS, actor=ACTOR)
    anne = person(session, 501)
    apply_submissions(session, PROGRAMME, link, [sub(501, 1)])
    counts = apply_submissions(session, PROGRAMME, link, [sub(501, 1, score=10.0)])
    assert counts.updated == 1
    assert completions(session) == [(anne, "emne-1", T0, 10.0, "canvas sync", "1")]


def test_the_last_of_repeated_submissions_counts(session: Session, link: CourseLink) -> None:
    """An incremental sync reads a submission in both call series; the later answer is the newer state."""
    programme = replace(PROGRAMME, modules=(replace(PROGRAMME.modules[0], min_score_share=0.5), *PROGRAMME.modules[1:]))
    map_quiz(session, programme, link, "emne-1", 1, ASSIGNMENTS, actor=ACTOR)
    person(session, 501)
    counts = apply_submissions(session, programme, link, [sub(501, 1, score=2.0), sub(501, 1, score=6.0)])
    assert counts.completed == 1
    assert [c[3] for c in completions(session)] == [6.0]
