"""E-mails the worker sends as outbox steps: a step is done only once the SMTP server took the message, and a
failed delivery is tried again like any step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from course_sync.provisioning import StepContext, course_for
from kurspakke.db import transaction
from kurspakke.licences.models import Seat
from kurspakke.mail import InvalidMail, MailError
from kurspakke.models import CanvasInstance, utcnow
from kurspakke.notices import Message, welcome_message
from kurspakke.outbox.services import StepPark, StepRetry
from kurspakke.programmes import programmes_once

log = logging.getLogger("kurspakke.mail")


def _welcome_of(session: Any, seat: Seat) -> Message:
    instance = session.get(CanvasInstance, seat.canvas_instance_id) if seat.canvas_instance_id else None
    programme = programmes_once()[seat.programme_id]
    link = course_for(session, instance, seat.programme_id) if instance else None
    course_url = f"{instance.api_url.rstrip('/')}/courses/{link.canvas_course_id}" if instance and link else ""
    return welcome_message(
        name=seat.person.name,
        email=seat.person.email,
        login=seat.login_id or seat.person.email,
        organisation=seat.organisation.name,
        programme=programme,
        course_url=course_url,
        provider_login=bool(instance and instance.auth_provider_id is not None),
    )


def send_welcome(ctx: StepContext, payload: dict[str, Any], send: Callable[..., None] | None) -> None:
    """The welcome e-mail of a seat that became active in Canvas: the course and exactly how to sign in."""
    seat_id = payload.get("seat_id")
    if not isinstance(seat_id, int):
        raise StepPark("the step names no seat")
    message = None
    with transaction(ctx.read()) as session:
        seat = session.get(Seat, seat_id)
        if seat is not None and seat.revoked_at is None:
            message = _welcome_of(session, seat)
    if message is None:  # the seat is gone or revoked: nobody to welcome
        with transaction(ctx.sessions) as session:
            ctx.finish(session)
        return
    if send is None:
        log.info("e-mail to %s: %s\n%s", message.to, message.subject, message.text)
    else:
        try:
            send(to=message.to, subject=message.subject, text=message.text)
        except InvalidMail as exc:
            raise StepPark(f"the e-mail cannot be sent: {exc}") from exc
        except MailError as exc:
            raise StepRetry(f"the e-mail could not be delivered: {exc}") from exc
    with transaction(ctx.sessions) as session:
        seat = session.get(Seat, seat_id)
        if seat is not None and ctx.finish(session):
            seat.welcomed_at = seat.welcomed_at or utcnow()
