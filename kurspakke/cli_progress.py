"""``kurspakke course map-quiz`` and ``kurspakke sync progress`` (DESIGN.md §6)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from course_sync.canvas import CanvasClient
    from kurspakke.models import CanvasInstance
    from kurspakke.programmes import Programme

OPERATOR = "operator (kurspakke course map-quiz)"


def _context() -> tuple[sessionmaker[Session], Callable[[CanvasInstance], CanvasClient]]:
    """Settings, sessions and Canvas clients as the command needs them (an operator waits: the configured tries)."""
    from course_sync.provisioning import client_factory
    from kurspakke.cli import _encryptor, _sessions, _settings

    settings = _settings()
    clients = client_factory(
        _encryptor(settings),
        timeout=settings.canvas_timeout_seconds,
        max_tries=settings.retry_max_tries,
        retry_base=settings.retry_base_seconds,
    )
    return _sessions(settings), clients


def _programme(programme_id: str) -> Programme:
    from kurspakke.programmes import ProgrammeError, load_programmes

    try:
        programmes = load_programmes()
    except ProgrammeError as exc:
        raise click.ClickException(str(exc)) from exc
    if programme_id not in programmes:
        raise click.ClickException(f"no programme {programme_id!r} (known: {', '.join(sorted(programmes))})")
    return programmes[programme_id]


@click.group()
def sync() -> None:
    """Syncs with Canvas run now."""


@sync.command("progress")
@click.option("--programme", "programme_id", required=True, help="Programme id (content/*.toml).")
@click.option("--full", is_flag=True, help="Read every submission of the mapped quizzes, not only what changed.")
def sync_progress_command(programme_id: str, full: bool) -> None:
    """One progress sync now. Exit 0 when it completed; 1 when Canvas could not be read after the retries (the
    watermark then stays where it was)."""
    from course_sync.progress_sync import sync_progress

    programme = _programme(programme_id)
    sessions, clients = _context()
    report = sync_progress(
        sessions,
        clients,
        programme_id,
        full=full,
        programmes={programme_id: programme},
    )
    if not report.courses:
        click.echo(f"{programme_id}: not linked to a course on a registered Canvas instance; nothing to sync")
    for course in report.courses:
        line = f"course link {course.course_link_id} (Canvas course {course.canvas_course_id}): {course.mode}"
        if course.error is not None:
            click.echo(f"{line}: FAILED: {course.error}", err=True)
        elif course.mode == "skipped":
            click.echo(f"{line}: no quiz mapped (kurspakke course map-quiz)")
        else:
            counts = ", ".join(f"{k} {v}" for k, v in course.counts.items())
            click.echo(f"{line}: {counts}")
    if not report.ok:
        sys.exit(1)


@click.command("map-quiz")
@click.option("--programme", "programme_id", required=True, help="Programme id (content/*.toml).")
@click.option("--module", "module_id", required=True, help="Module id of the programme.")
@click.option("--assignment-id", required=True, type=click.IntRange(min=1), help="Canvas assignment id of the quiz.")
@click.option(
    "--course-link",
    "course_link_id",
    type=click.IntRange(min=1),
    default=None,
    help="Link id from `kurspakke course list`; needed when the programme is linked in several courses.",
)
def map_quiz(programme_id: str, module_id: str, assignment_id: int, course_link_id: int | None) -> None:
    """Map a programme module to a quiz (an assignment) of a linked course."""
    from course_sync.canvas import CanvasError
    from course_sync.progress_sync import map_quiz_from_canvas
    from kurspakke.progress.services import QuizMappingError

    programme = _programme(programme_id)
    sessions, clients = _context()
    try:
        mapping = map_quiz_from_canvas(
            sessions,
            clients,
            programme,
            module_id,
            assignment_id,
            course_link_id=course_link_id,
            actor=OPERATOR,
        )
    except QuizMappingError as exc:
        raise click.ClickException(str(exc)) from exc
    except CanvasError as exc:
        raise click.ClickException(f"could not read the course's assignments from Canvas: {exc}") from exc
    click.echo(
        f"module {mapping.module_id} of {programme_id} mapped to quiz {mapping.assignment_id} "
        f"({mapping.assignment_name}) in course link {mapping.course_link_id}; the next sync reads it in full"
    )


@click.group()
def progress() -> None:
    """Participants' progress in a programme."""


@progress.command("export")
@click.option("--programme", "programme_id", required=True, help="Programme id (content/*.toml).")
@click.option("--orgnr", default=None, help="Only this organisation's participants (its organisation number).")
def progress_export(programme_id: str, orgnr: str | None) -> None:
    """The progress matrix as CSV on stdout (UTF-8 with BOM, `;`): one row per participant seat, one column per
    module and session of the programme, and the certificate."""
    from sqlalchemy import select

    from kurspakke.cli import _sessions, _settings
    from kurspakke.models import Organisation
    from kurspakke.progress.export import export_csv

    programme = _programme(programme_id)
    with _sessions(_settings())() as session:
        organisation = None
        if orgnr is not None:
            number = "".join(orgnr.split())
            organisation = session.scalar(select(Organisation).where(Organisation.orgnr == number))
            if organisation is None:
                raise click.ClickException(f"no organisation with organisasjonsnummer {orgnr!r}")
        data = export_csv(session, programme, organisation)
    stdout = click.get_binary_stream("stdout")
    stdout.write(data)
    stdout.flush()
