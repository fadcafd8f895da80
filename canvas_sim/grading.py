"""The simulator's assignments and submissions: records and Canvas's JSON for them.

Canvas keeps one submission per student and published assignment, also before anything is handed in
(workflow_state "unsubmitted"); `rest.CanvasRest` makes those on demand and serves them through
GET /api/v1/courses/:course_id/assignments and GET /api/v1/courses/:course_id/students/submissions.
Written from Canvas's public API documentation (Assignment and Submission objects), not its source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

AssignmentKind = Literal["classic_quiz", "new_quiz", "plain"]
SUBMISSION_STATES = ("submitted", "unsubmitted", "graded", "pending_review")
# What a student hands in for each kind of assignment (Submission.submission_type).
_SUBMISSION_TYPE = {"classic_quiz": "online_quiz", "new_quiz": "basic_lti_launch", "plain": "online_text_entry"}
_SUBMISSION_TYPES = {"classic_quiz": ["online_quiz"], "new_quiz": ["external_tool"], "plain": ["online_text_entry"]}


def _iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


@dataclass
class Assignment:
    id: int
    course_id: int
    name: str
    kind: AssignmentKind
    points_possible: float | None
    published: bool
    position: int
    quiz_id: int | None
    due_at: datetime | None
    created_at: datetime

    @property
    def submission_types(self) -> list[str]:
        return list(_SUBMISSION_TYPES[self.kind])


@dataclass
class Submission:
    id: int
    assignment_id: int
    user_id: int
    workflow_state: str = "unsubmitted"
    submitted_at: datetime | None = None
    graded_at: datetime | None = None
    score: float | None = None
    excused: bool | None = None  # Canvas sends null until a teacher sets it
    attempt: int | None = None


def _number(value: float | None) -> float | int | None:
    """Canvas writes whole scores as integers (8, not 8.0)."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def assignment_json(a: Assignment, base: str, *, has_submissions: bool) -> dict[str, Any]:
    url = f"{base}/courses/{a.course_id}/assignments/{a.id}"
    out: dict[str, Any] = {
        "id": a.id,
        "name": a.name,
        "description": None,
        "created_at": _iso(a.created_at),
        "updated_at": _iso(a.created_at),
        "due_at": _iso(a.due_at),
        "lock_at": None,
        "unlock_at": None,
        "has_overrides": False,
        "course_id": a.course_id,
        "html_url": url,
        "submissions_download_url": f"{url}/submissions?zip=1",
        "assignment_group_id": 1,
        "due_date_required": False,
        "allowed_extensions": [],
        "max_name_length": 255,
        "turnitin_enabled": False,
        "vericite_enabled": False,
        "grade_group_students_individually": False,
        "group_category_id": None,
        "peer_reviews": False,
        "automatic_peer_reviews": False,
        "needs_grading_count": 0,
        "position": a.position,
        "post_to_sis": False,
        "integration_id": None,
        "integration_data": {},
        "points_possible": _number(a.points_possible),
        "submission_types": a.submission_types,
        "has_submitted_submissions": has_submissions,
        "grading_type": "points",
        "grading_standard_id": None,
        "published": a.published,
        "unpublishable": not has_submissions,
        "only_visible_to_overrides": False,
        "locked_for_user": False,
        "moderated_grading": False,
        "omit_from_final_grade": False,
        "hide_in_gradebook": False,
        "anonymous_grading": False,
        "allowed_attempts": -1,
        "workflow_state": "published" if a.published else "unpublished",
        "is_quiz_assignment": a.kind == "classic_quiz",
        "is_quiz_lti_assignment": a.kind == "new_quiz",
        "can_duplicate": True,
        "graded_submissions_exist": has_submissions,
        "grades_published": True,
        "in_closed_grading_period": False,
        "restrict_quantitative_data": False,
    }
    if a.kind == "classic_quiz":
        out["quiz_id"] = a.quiz_id
        out["anonymous_submissions"] = False
    if a.kind == "new_quiz":
        out["external_tool_tag_attributes"] = {
            "url": f"{base}/api/quizzes/lti/launch",
            "new_tab": False,
            "resource_link_id": hashlib.sha256(f"assignment-{a.id}".encode()).hexdigest(),
            "external_data": "",
            "content_type": "ContextExternalTool",
            "content_id": 1,
        }
    return out


def is_missing(s: Submission, a: Assignment, now: datetime) -> bool:
    """Canvas's `missing`: past due and nothing handed in (an excused one is never missing)."""
    return a.due_at is not None and now > a.due_at and s.submitted_at is None and not s.excused


def submission_json(s: Submission, a: Assignment, base: str, now: datetime) -> dict[str, Any]:
    grade = None if s.score is None else str(_number(s.score))
    handed_in = s.submitted_at is not None
    return {
        "id": s.id,
        "body": None,
        "url": None,
        "grade": grade,
        "score": _number(s.score),
        "submitted_at": _iso(s.submitted_at),
        "assignment_id": s.assignment_id,
        "user_id": s.user_id,
        "submission_type": _SUBMISSION_TYPE[a.kind] if handed_in else None,
        "workflow_state": s.workflow_state,
        "grade_matches_current_submission": True,
        "graded_at": _iso(s.graded_at),
        "grader_id": (-(a.quiz_id or 0) if a.kind == "classic_quiz" and s.graded_at else None),
        "attempt": s.attempt,
        "cached_due_date": _iso(a.due_at),
        "excused": s.excused,
        "late_policy_status": None,
        "points_deducted": None,
        "grading_period_id": None,
        "extra_attempts": None,
        "posted_at": _iso(s.graded_at),
        "redo_request": False,
        "custom_grade_status_id": None,
        "sticker": None,
        "late": False,
        "missing": is_missing(s, a, now),
        "seconds_late": 0,
        "entered_grade": grade,
        "entered_score": _number(s.score),
        "preview_url": f"{base}/courses/{a.course_id}/assignments/{a.id}/submissions/{s.user_id}?preview=1",
        "anonymous_id": hashlib.sha256(f"{s.assignment_id}:{s.user_id}".encode()).hexdigest()[:5],
    }
