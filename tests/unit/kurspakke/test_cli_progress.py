"""`kurspakke course map-quiz` and `kurspakke sync progress`, run as an operator would (a subprocess) against the
Canvas simulator over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from canvas_sim.keys import private_pem
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.models import AuditEntry, CourseLink, IdentityKind, Person, PersonIdentity
from kurspakke.progress.models import ModuleCompletion, ProgressWatermark, QuizMapping
from tests.support.canvas_live import LiveCanvas, live_canvas, register
from tests.unit.kurspakke.test_cli import base_env

SECRET = "cli-secret-" * 4
SUBMISSIONS = "GET /api/v1/courses/:course_id/students/submissions"


@pytest.fixture(scope="module")
def platform_pem() -> bytes:
    return private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def canvas(platform_pem: bytes) -> Iterator[LiveCanvas]:
    with live_canvas(platform_pem) as live:
        yield live


@pytest.fixture
def run(database_url, tmp_path):  # type: ignore[no-untyped-def]
    env = {
        **base_env(),
        "KURSPAKKE_ENV": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path),
        "KURSPAKKE_RETRY_BASE_SECONDS": "0.01",
        "KURSPAKKE_RETRY_MAX_TRIES": "2",
        "KURSPAKKE_CANVAS_TIMEOUT_SECONDS": "5",
    }

    def _run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kurspakke", *args], env=env, capture_output=True, text=True, timeout=60
        )

    return _run


@pytest.fixture
def course(session_factory: sessionmaker[Session], canvas: LiveCanvas) -> int:
    with transaction(session_factory) as session:
        register(session, canvas, Encryptor(secret_key=SECRET))
        return session.scalars(select(CourseLink.id)).one()


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def map_args(module: str, assignment: int, *extra: str) -> tuple[str, ...]:
    return (
        "course",
        "map-quiz",
        "--programme",
        "lindrende-behandling",
        "--module",
        module,
        "--assignment-id",
        str(assignment),
        *extra,
    )


def test_map_a_quiz_then_sync(run, session_factory: sessionmaker[Session], canvas: LiveCanvas, course: int) -> None:  # type: ignore[no-untyped-def]
    quiz = canvas.rest.add_assignment("Quiz emne 1")
    new_quiz = canvas.rest.add_assignment("Quiz emne 2", kind="new_quiz")
    result = run(*map_args("emne-1", quiz.id))
    assert result.returncode == 0, result.stderr
    assert f"module emne-1 of lindrende-behandling mapped to quiz {quiz.id} (Quiz emne 1)" in result.stdout
    assert run(*map_args("emne-2", new_quiz.id)).returncode == 0
    with session_factory() as session:
        assert sorted(session.execute(select(QuizMapping.module_id, QuizMapping.assignment_id)).tuples()) == [
            ("emne-1", str(quiz.id)),
            ("emne-2", str(new_quiz.id)),
        ]

    student = min(canvas.rest.student_ids())
    with transaction(session_factory) as session:
        p = Person(name="Deltaker", email="d@example.no")
        p.identities.append(PersonIdentity(kind=IdentityKind.CANVAS_USER_ID, scope=canvas.scope, value=str(student)))
        session.add(p)
    canvas.rest.record_submission(quiz.id, student, submitted_at=datetime.now(UTC), score=8.0)

    result = run("sync", "progress", "--programme", "lindrende-behandling", "--full")
    assert result.returncode == 0, result.stderr
    assert f"course link {course} (Canvas course {canvas.config.course_id}): full: " in result.stdout
    assert "completed 1" in result.stdout
    assert count(session_factory, ModuleCompletion) == 1

    calls = canvas.rest.count(SUBMISSIONS)
    result = run("sync", "progress", "--programme", "lindrende-behandling")
    assert result.returncode == 0, result.stderr
    assert ": incremental: " in result.stdout
    assert canvas.rest.count(SUBMISSIONS) - calls == 2


@pytest.mark.parametrize(
    ("module", "kind", "message"),
    [
        ("emne-9", "classic_quiz", "programme 'lindrende-behandling' has no module 'emne-9'"),
        ("emne-1", "plain", "is not a quiz: map a graded Classic Quiz or a New Quiz"),
        ("emne-1", "missing", "the course has no assignment 99"),
    ],
)
def test_map_quiz_refusals_write_nothing(  # type: ignore[no-untyped-def]
    run, session_factory: sessionmaker[Session], canvas: LiveCanvas, course: int, module: str, kind: str, message: str
) -> None:
    assignment = 99 if kind == "missing" else canvas.rest.add_assignment("Oppgave", kind=kind).id  # type: ignore[arg-type]
    result = run(*map_args(module, assignment))
    assert result.returncode == 1
    assert message in result.stderr
    assert count(session_factory, QuizMapping) == 0
    assert count(session_factory, AuditEntry) == 0


def test_map_quiz_needs_a_course_link_when_linked_in_several_courses(  # type: ignore[no-untyped-def]
    run, session_factory: sessionmaker[Session], canvas: LiveCanvas, course: int
) -> None:
    quiz = canvas.rest.add_assignment("Quiz")
    with transaction(session_factory) as session:
        other = CourseLink(
            programme_id="lindrende-behandling", platform_instance="https://other|guid", context_id="c2", title="Kurs 2"
        )
        session.add(other)
        session.flush()
        other_id = other.id
    result = run(*map_args("emne-1", quiz.id))
    assert result.returncode == 1
    assert f"is linked in several courses ({course}, {other_id}): choose one with --course-link" in result.stderr
    result = run(*map_args("emne-1", quiz.id, "--course-link", str(other_id)))
    assert result.returncode == 1 and "its Canvas instance is not registered" in result.stderr
    result = run(*map_args("emne-1", quiz.id, "--course-link", "999"))
    assert result.returncode == 1 and "course link 999 is not a course of programme" in result.stderr
    assert count(session_factory, QuizMapping) == 0

    result = run(*map_args("emne-1", quiz.id, "--course-link", str(course)))
    assert result.returncode == 0, result.stderr
    assert count(session_factory, QuizMapping) == 1


def test_sync_exits_non_zero_when_canvas_cannot_be_read(  # type: ignore[no-untyped-def]
    run, session_factory: sessionmaker[Session], canvas: LiveCanvas, course: int
) -> None:
    quiz = canvas.rest.add_assignment("Quiz")
    assert run(*map_args("emne-1", quiz.id)).returncode == 0
    canvas.rest.inject("status", status=500, times=None, endpoint=SUBMISSIONS)
    result = run("sync", "progress", "--programme", "lindrende-behandling")
    assert result.returncode == 1
    assert "FAILED" in result.stderr and "500" in result.stderr
    assert count(session_factory, ProgressWatermark) == 0

    canvas.rest.clear_faults()
    assert run("sync", "progress", "--programme", "lindrende-behandling").returncode == 0
    assert count(session_factory, ProgressWatermark) == 1


def test_sync_refuses_an_unknown_programme(run) -> None:  # type: ignore[no-untyped-def]
    result = run("sync", "progress", "--programme", "finnes-ikke")
    assert result.returncode == 1
    assert "no programme 'finnes-ikke'" in result.stderr


def test_sync_of_a_programme_linked_nowhere_completes(run) -> None:  # type: ignore[no-untyped-def]
    result = run("sync", "progress", "--programme", "lindrende-behandling")
    assert result.returncode == 0, result.stderr
    assert "not linked to a course on a registered Canvas instance" in result.stdout
