"""What our Canvas client raises. Callers outside course_sync/ see these, never canvasapi's or requests' errors."""

from __future__ import annotations

from typing import Any


class CanvasError(Exception):
    """Canvas refused or could not answer a call. `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        #: Canvas's parsed JSON error body when it sent one (e.g. {"errors": {"pseudonym": {...}}}), else None.
        self.body = body


class CanvasNotFound(CanvasError):
    """404: the account, user, course, section or enrolment does not exist (or the token may not see it)."""


class CanvasAuthError(CanvasError):
    """401 (missing, bad or expired token; or, without WWW-Authenticate, a permission the token's user lacks, e.g.
    submissions of someone who is not a student of the course) or 403 without throttling (the role lacks a
    permission, or Canvas refuses the request as such, e.g. assignment ids that are not the course's)."""


class CanvasThrottled(CanvasError):
    """403 "Rate Limit Exceeded" or 429, still refused after the bounded tries."""


class CanvasUnavailable(CanvasError):
    """5xx, a timeout or a dropped connection, still failing after the bounded tries."""


class CanvasOutcomeUnknown(CanvasUnavailable):
    """A non-idempotent call (a POST) timed out or lost its connection, so Canvas may or may not have applied it,
    and there is no way to look. Not retried here: the caller (the outbox) must look before it tries again."""


class CanvasBadResponse(CanvasError):
    """Canvas answered, but not with the shape we read (a missing field or one of the wrong type)."""


__all__ = [
    "CanvasAuthError",
    "CanvasBadResponse",
    "CanvasError",
    "CanvasNotFound",
    "CanvasOutcomeUnknown",
    "CanvasThrottled",
    "CanvasUnavailable",
]
