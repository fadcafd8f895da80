"""The outbox step kinds the worker knows, and what each does when it is parked (composition of course_sync)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from course_sync.notify import send_welcome
from course_sync.notify_orders import send_payload
from course_sync.provisioning import StepContext, mark_failed, sync_seat
from course_sync.worker import StepKind
from kurspakke.licences.invitations import MAIL_SEND
from kurspakke.licences.seating import SEAT_SYNC

Send = Callable[..., None]


def step_kinds(send: Send | None = None) -> dict[str, StepKind]:
    """``send(to=..., subject=..., text=...)`` delivers an e-mail (kurspakke.mail.send_mail bound to the settings);
    None logs e-mails instead of sending them."""

    def welcome(ctx: StepContext, payload: dict[str, Any]) -> None:
        send_welcome(ctx, payload, send)

    def mail(ctx: StepContext, payload: dict[str, Any]) -> None:
        send_payload(ctx, payload, send)

    return {
        SEAT_SYNC: StepKind(sync_seat, mark_failed),
        "mail.welcome": StepKind(welcome),
        MAIL_SEND: StepKind(mail),  # a composed e-mail: invitations, order receipts and confirmations
    }


__all__ = ["step_kinds"]
