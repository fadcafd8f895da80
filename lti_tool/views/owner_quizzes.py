"""The course owner's quiz page (``/owner/quizzes``): which quiz of the linked Canvas course completes each module of
the programme, chosen from the course's quizzes as Canvas lists them now (DESIGN.md §3 "Progress", the page's
counterpart of ``kurspakke course map-quiz``).

Only assignments that are quizzes can be chosen: graded Classic Quizzes and New Quizzes. Practice quizzes and
ungraded surveys are not assignments, so Canvas never lists them; other assignments are not offered, and one posted
by hand is refused. A quiz completes one module only. When the programme is linked in several courses on Canvas
instances the seller registered, the owner chooses the course first (the launched course by default).

As every owner page it lives inside Canvas: the launch token comes in a POST, a GET without it gets the resume page,
and business_launch() decides on every request who may see it. Canvas is read once per request, before anything is
written; when Canvas cannot be read or refuses, the page says so with 503 / 502 and writes nothing, and a refused
mapping answers 422 / 409 (the request boundary rolls back every answer >= 400)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from babel.numbers import format_decimal, format_percent
from flask import request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from course_sync.canvas import CanvasAssignment, CanvasError, CanvasNotFound, CanvasUnavailable
from course_sync.provisioning import client_factory
from kurspakke.models import CanvasInstance, CourseLink
from kurspakke.programmes import Module, Programme
from kurspakke.progress.models import QuizMapping
from kurspakke.progress.services import QuizMappingError, map_quiz, mappings
from lti_tool import logs
from lti_tool.i18n import current_locale, gettext
from lti_tool.i18n_marker import N_
from lti_tool.services import db, services
from lti_tool.views import _resume
from lti_tool.views.context import LaunchContext
from lti_tool.views.owner_pages import _actor, _page, bp, business_launch

# The owner waits for the page: fewer tries and a shorter timeout than the worker's.
WEB_MAX_TRIES = 2
WEB_TIMEOUT_SECONDS = 10.0
WEB_RETRY_MAX_SECONDS = 2.0
ID_MAX_DIGITS = 18

KIND_CLASSIC = N_("Classic Quiz")
KIND_NEW = N_("New Quiz")

MESSAGES = {
    "course_unknown": N_("The course was not found among the programme's courses. Choose a course from the list."),
    "no_course": N_(
        "The programme is not linked to a course with a known Canvas course id on a Canvas the seller has "
        "registered, so there are no quizzes to choose from."
    ),
    "module_unknown": N_("The module was not found in the programme. Choose a module on this page."),
    "no_choice": N_("Choose a quiz from the list before you save."),
    "not_in_course": N_(
        "Canvas has no assignment %(id)s in this course. Only graded Classic Quizzes and New Quizzes can be chosen: "
        "practice quizzes and ungraded surveys are not assignments in Canvas."
    ),
    "not_a_quiz": N_(
        "%(name)s is not a quiz, so it cannot complete a module. Choose a graded Classic Quiz or a New Quiz."
    ),
    "unpublished": N_(
        "The quiz %(name)s is not published in Canvas, so Canvas has no results of it yet. Publish it in Canvas first."
    ),
    "taken": N_(
        "The quiz %(name)s already completes %(module)s. A quiz can complete only one module: choose another quiz, "
        "or first give %(module)s another quiz."
    ),
    "conflict": N_("Someone changed the quizzes of this course at the same time. Check the page and try again."),
    "refused": N_("The quiz could not be chosen: %(reason)s"),
    "canvas_unavailable": N_(
        "Canvas does not answer just now, so the course's quizzes could not be read. Nothing was changed. "
        "Try again in a few minutes."
    ),
    "canvas_not_found": N_(
        "Canvas does not find the course %(id)s, so its quizzes could not be read. Nothing was changed. The course may "
        "have been deleted in Canvas, or the tool's Canvas access may not reach it: contact the operator."
    ),
    "canvas_refused": N_(
        "Canvas refused to list the course's quizzes (%(detail)s). Nothing was changed. The tool's Canvas access may "
        "have expired or lack a permission: contact the operator."
    ),
}
STATUS = {
    "course_unknown": 404,
    "module_unknown": 422,
    "no_choice": 422,
    "not_in_course": 422,
    "not_a_quiz": 422,
    "unpublished": 422,
    "taken": 409,
    "conflict": 409,
    "refused": 422,
}


@dataclass(frozen=True)
class LinkedCourse:
    """A course the programme is linked in, on a Canvas instance the seller registered."""

    id: int
    canvas_course_id: str
    title: str
    host: str
    instance: CanvasInstance


@dataclass(frozen=True)
class ModuleRow:
    module: Module
    mapping: QuizMapping | None
    quiz: CanvasAssignment | None  # the mapped quiz as Canvas lists it now (None: not read, or gone from Canvas)


class _Refused(Exception):
    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def _linked_courses(programme: Programme) -> list[LinkedCourse]:
    """The programme's course links that have a Canvas course id, on registered Canvas instances; one statement."""
    rows = (
        db()
        .execute(
            select(CourseLink.id, CourseLink.canvas_course_id, CourseLink.title, CanvasInstance)
            .join(CanvasInstance, CanvasInstance.platform_instance == CourseLink.platform_instance)
            .where(CourseLink.programme_id == programme.id, CourseLink.canvas_course_id.is_not(None))
            .order_by(CourseLink.id)
        )
        .all()
    )
    return [
        LinkedCourse(link_id, str(course_id), title or "", urlsplit(instance.api_url).hostname or "", instance)
        for link_id, course_id, title, instance in rows
    ]


def _chosen_course(ctx: LaunchContext, courses: list[LinkedCourse]) -> LinkedCourse | None:
    """The course asked for (form field ``course_link``), else the launched one, else the first. Raises _Refused
    for an id that is not one of ``courses``."""
    raw = request.form.get("course_link", "").strip()
    if raw:
        found = next((c for c in courses if raw.isdigit() and len(raw) <= ID_MAX_DIGITS and c.id == int(raw)), None)
        if found is None:
            raise _Refused("course_unknown")
        return found
    return _launched_course(ctx, courses)


def _launched_course(ctx: LaunchContext, courses: list[LinkedCourse]) -> LinkedCourse | None:
    launched = ctx.course_link.id if ctx.course_link is not None else None
    return next((c for c in courses if c.id == launched), courses[0] if courses else None)


def _read_quizzes(course: LinkedCourse) -> list[CanvasAssignment]:
    """The course's assignments as Canvas lists them now. Raises CanvasError."""
    settings = services().settings
    client_for = client_factory(
        services().encryptor,
        timeout=min(settings.canvas_timeout_seconds, WEB_TIMEOUT_SECONDS),
        max_tries=min(settings.retry_max_tries, WEB_MAX_TRIES),
        retry_base=settings.retry_base_seconds,
        retry_max=WEB_RETRY_MAX_SECONDS,
    )
    return client_for(course.instance).assignments(course.canvas_course_id)


def _message(key: str, params: dict[str, object]) -> str:
    return gettext(MESSAGES[key], **params)


def _points(value: float | None) -> str:
    if value is None:
        return ""
    return format_decimal(value, format="#,##0.##", locale=current_locale())


def _percent(share: float) -> str:
    return format_percent(share, locale=current_locale())


def _kind(quiz: CanvasAssignment) -> str:
    return gettext(KIND_NEW if quiz.is_new_quiz else KIND_CLASSIC)


def _who(mapped_by: str) -> str:
    """Who mapped a quiz, for the page: a course owner on this page, the operator with the command, else as
    recorded."""
    if mapped_by.startswith("course-owner:"):
        return gettext("A course owner, on this page")
    if mapped_by.startswith("operator"):
        return gettext("The operator, with the command kurspakke course map-quiz")
    return mapped_by


def _check(
    programme: Programme,
    course: LinkedCourse,
    module_id: str,
    raw_assignment: str,
    assignments: list[CanvasAssignment],
) -> CanvasAssignment:
    """What map_quiz refuses, with the page's own words, before it is asked. Raises _Refused."""
    if not any(m.id == module_id for m in programme.modules):
        raise _Refused("module_unknown")
    if not raw_assignment:
        raise _Refused("no_choice")
    found = next((a for a in assignments if str(a.id) == raw_assignment), None)
    if found is None:
        raise _Refused("not_in_course", id=raw_assignment[: ID_MAX_DIGITS + 2])
    if not found.is_quiz_assignment:
        raise _Refused("not_a_quiz", name=found.name)
    if not found.published:
        raise _Refused("unpublished", name=found.name)
    taken = (
        db()
        .scalars(
            select(QuizMapping).where(
                QuizMapping.course_link_id == course.id,
                QuizMapping.assignment_id == str(found.id),
                QuizMapping.module_id != module_id,
            )
        )
        .first()
    )
    if taken is not None:
        raise _Refused("taken", name=found.name, module=_module_label(programme, taken.module_id))
    return found


def _module_label(programme: Programme, module_id: str) -> str:
    """ "Module 2" (Bokmål "Emne 2"), as the programme numbers its modules; the id for one the file no longer has."""
    module = next((m for m in programme.modules if m.id == module_id), None)
    return gettext("Module %(number)s", number=module.number) if module is not None else module_id


def _quizzes_page(
    ctx: LaunchContext,
    programme: Programme,
    courses: list[LinkedCourse],
    course: LinkedCourse | None,
    assignments: list[CanvasAssignment] | None,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
) -> ResponseReturnValue:
    current = {m.module_id: m for m in mappings(db(), course.id)} if course is not None else {}
    listed = {str(a.id): a for a in assignments} if assignments is not None else {}
    rows = [
        ModuleRow(m, current.get(m.id), listed.get(current[m.id].assignment_id) if m.id in current else None)
        for m in programme.modules
    ]
    used_by = {mapping.assignment_id: mapping.module_id for mapping in current.values()}
    quizzes = [a for a in assignments or [] if a.is_quiz_assignment]
    html = _page(
        "owner/quizzes.html",
        ctx,
        programme,
        url_for("owner_pages.quizzes"),
        courses=courses,
        course=course,
        rows=rows,
        quizzes=quizzes,
        canvas_read=assignments is not None,
        used_by=used_by,
        module_labels={m.id: _module_label(programme, m.id) for m in programme.modules},
        points=_points,
        percent=_percent,
        kind=_kind,
        who=_who,
        notice=notice,
        error=error,
    )
    return html, status


@bp.route("/quizzes", methods=["GET", "POST"])
def quizzes() -> ResponseReturnValue:
    """Show the modules and the course's quizzes; with ``action=map``, map ``module`` to ``assignment``."""
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme = business_launch()
    courses = _linked_courses(programme)
    try:
        course = _chosen_course(ctx, courses)
    except _Refused as exc:
        course = _launched_course(ctx, courses)
        return _quizzes_page(
            ctx, programme, courses, course, None, status=STATUS[exc.key], error=_message(exc.key, exc.params)
        )
    if course is None:
        return _quizzes_page(ctx, programme, courses, None, None, notice=_message("no_course", {}))
    try:
        assignments = _read_quizzes(course)
    except CanvasError as exc:
        logs.log_event(
            "canvas unavailable for the quiz page",
            logging.WARNING,
            course_link_id=course.id,
            error=type(exc).__name__,
            status=exc.status,
        )
        if isinstance(exc, CanvasUnavailable):
            status, error = 503, _message("canvas_unavailable", {})
        elif isinstance(exc, CanvasNotFound):
            status, error = 502, _message("canvas_not_found", {"id": course.canvas_course_id})
        else:
            detail = f"HTTP {exc.status}" if exc.status else type(exc).__name__
            status, error = 502, _message("canvas_refused", {"detail": detail})
        return _quizzes_page(ctx, programme, courses, course, None, status=status, error=error)
    if request.method != "POST" or request.form.get("action") != "map":
        return _quizzes_page(ctx, programme, courses, course, assignments)
    module_id = request.form.get("module", "").strip()[:64]
    raw_assignment = request.form.get("assignment", "").strip()[:64]
    try:
        _check(programme, course, module_id, raw_assignment, assignments)
        link = db().get(CourseLink, course.id)
        if link is None:  # unlinked meanwhile
            raise _Refused("course_unknown")
        mapping = map_quiz(db(), programme, link, module_id, raw_assignment, assignments, actor=_actor(ctx))
    except _Refused as exc:
        return _quizzes_page(
            ctx,
            programme,
            courses,
            course,
            assignments,
            status=STATUS[exc.key],
            error=_message(exc.key, exc.params),
        )
    except QuizMappingError as exc:  # a reason _check does not know of
        status = 409 if "already mapped" in str(exc) else 422
        error = _message("refused", {"reason": str(exc)})
        db().rollback()
        return _quizzes_page(ctx, programme, courses, course, assignments, status=status, error=error)
    except IntegrityError:  # another request mapped the same module or quiz between our check and our write
        db().rollback()
        return _quizzes_page(ctx, programme, courses, course, assignments, status=409, error=_message("conflict", {}))
    notice = gettext(
        "%(module)s is now completed by the quiz %(name)s. The next progress sync reads its results.",
        module=_module_label(programme, mapping.module_id),
        name=mapping.assignment_name,
    )
    return _quizzes_page(ctx, programme, courses, course, assignments, notice=notice)


__all__ = ["LinkedCourse", "ModuleRow"]
