"""What our Canvas client raises. Callers outside course_sync/ see these, never canvasapi's or requests' errors."""

from __future__ import annotations


class CanvasError(Exception):
    """Canvas refused or could not answer a call. `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CanvasNotFound(CanvasError):
    """404: the account, user, course, section or enrolment does not exist (or the token may not see it)."""


class CanvasAuthError(CanvasError):
    """401 (missing, bad or expired token) or 403 without throttling (the token's role lacks a permission)."""


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
