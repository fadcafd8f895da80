"""Our Canvas REST client (canvasapi underneath) and its exceptions."""

from course_sync.canvas.client import (
    CanvasAccount,
    CanvasAssignment,
    CanvasCalendarEvent,
    CanvasClient,
    CanvasEnrollment,
    CanvasGroup,
    CanvasGroupCategory,
    CanvasProfile,
    CanvasSection,
    CanvasSubmission,
    CanvasUser,
)
from course_sync.canvas.errors import (
    CanvasAuthError,
    CanvasBadResponse,
    CanvasError,
    CanvasNotFound,
    CanvasOutcomeUnknown,
    CanvasThrottled,
    CanvasUnavailable,
)

__all__ = [
    "CanvasAccount",
    "CanvasAssignment",
    "CanvasAuthError",
    "CanvasBadResponse",
    "CanvasCalendarEvent",
    "CanvasClient",
    "CanvasEnrollment",
    "CanvasError",
    "CanvasGroup",
    "CanvasGroupCategory",
    "CanvasNotFound",
    "CanvasOutcomeUnknown",
    "CanvasProfile",
    "CanvasSection",
    "CanvasSubmission",
    "CanvasThrottled",
    "CanvasUnavailable",
    "CanvasUser",
]
