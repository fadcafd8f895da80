"""Who may see the seller's business: orders, all organisations, sales (DESIGN.md §5, issue 7).

Course owners are the Teachers of a programme's linked course on *any* registered Canvas, and any teacher on any
registered Canvas can link a course of their own to a programme. The business belongs to the seller, so it is shown
only where the seller decided it runs: a course on a Canvas the seller registered for provisioning
(`kurspakke canvas add`, a CanvasInstance tied to the LTI platform instance by the root account's lti_guid). An
Instructor who links the programme in a course on another Canvas gets that course's own view and nothing more.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.models import CanvasInstance


class NotSellersCanvas(Exception):
    """The launch is not a course owner's on a Canvas the seller registered for provisioning."""


def is_provisioning_canvas(session: Session, platform_instance: str | None) -> bool:
    """True when ``platform_instance`` (``<issuer>|<guid>``) is a Canvas the seller added with `kurspakke canvas
    add` and tied to its LTI platform instance."""
    if not platform_instance:
        return False
    found = session.scalar(
        select(CanvasInstance.id).where(CanvasInstance.platform_instance == platform_instance).limit(1)
    )
    return found is not None


def may_see_business(session: Session, *, course_owner: bool, course_platform_instance: str | None) -> bool:
    """The rule: a (fresh) course owner of the programme's linked course, and that course lives on a Canvas the
    seller registered for provisioning. ``course_platform_instance`` is the course link's platform instance (None:
    the launch's course is not linked)."""
    return course_owner and is_provisioning_canvas(session, course_platform_instance)


def require_business_access(session: Session, *, course_owner: bool, course_platform_instance: str | None) -> None:
    """Raises NotSellersCanvas unless ``may_see_business``."""
    if not may_see_business(session, course_owner=course_owner, course_platform_instance=course_platform_instance):
        raise NotSellersCanvas()


__all__ = ["NotSellersCanvas", "is_provisioning_canvas", "may_see_business", "require_business_access"]
