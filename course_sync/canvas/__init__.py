"""Our Canvas REST client (canvasapi underneath) and its exceptions."""

from course_sync.canvas.client import (
    CanvasAccount,
    CanvasClient,
    CanvasEnrollment,
    CanvasProfile,
    CanvasSection,
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
    "CanvasAuthError",
    "CanvasBadResponse",
    "CanvasClient",
    "CanvasEnrollment",
    "CanvasError",
    "CanvasNotFound",
    "CanvasOutcomeUnknown",
    "CanvasProfile",
    "CanvasSection",
    "CanvasThrottled",
    "CanvasUnavailable",
    "CanvasUser",
]
