"""The ``mail.send`` outbox step: an e-mail whose text was written when the change it reports was committed (orders
received, to confirm, confirmed: kurspakke.licences.order_form). The step is done only once the SMTP server took
the message; a failed delivery is tried again like any step, a message that can never be sent is parked."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from course_sync.provisioning import StepContext
from kurspakke.db import transaction
from kurspakke.mail import InvalidMail, MailError
from kurspakke.outbox.services import StepPark, StepRetry

log = logging.getLogger("kurspakke.mail")
MAIL_SEND = "mail.send"


def send_payload(ctx: StepContext, payload: dict[str, Any], send: Callable[..., None] | None) -> None:
    """Send ``payload`` = ``{"to", "subject", "text"}`` (all non-empty strings) with ``send(to=, subject=, text=)``;
    without ``send`` the message is logged (development). Raises StepPark for a payload or address that can never
    be sent, StepRetry when the mail server could not take it now."""
    to, subject, text = payload.get("to"), payload.get("subject"), payload.get("text")
    if not all(isinstance(value, str) and value for value in (to, subject, text)):
        raise StepPark("the step's e-mail lacks a recipient, a subject or a text")
    if send is None:
        log.info("e-mail to %s: %s\n%s", to, subject, text)
    else:
        try:
            send(to=to, subject=subject, text=text)
        except InvalidMail as exc:
            raise StepPark(f"the e-mail cannot be sent: {exc}") from exc
        except MailError as exc:
            raise StepRetry(f"the e-mail could not be delivered: {exc}") from exc
    with transaction(ctx.sessions) as session:
        ctx.finish(session)


__all__ = ["MAIL_SEND", "send_payload"]
