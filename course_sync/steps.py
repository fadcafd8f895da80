"""The outbox step kinds the worker knows, and what each does when it is parked (composition of course_sync)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from course_sync.notify import send_welcome
from course_sync.provisioning import StepContext, mark_failed, sync_seat
from course_sync.worker import StepKind
from kurspakke.licences.seating import SEAT_SYNC

Send = Callable[..., None]


def step_kinds(send: Send | None = None) -> dict[str, StepKind]:
    """``send(to=..., subject=..., text=...)`` delivers an e-mail (kurspakke.mail.send_mail bound to the settings);
    None logs e-mails instead of sending them."""

    def welcome(ctx: StepContext, payload: dict[str, Any]) -> None:
        send_welcome(ctx, payload, send)

    return {
        SEAT_SYNC: StepKind(sync_seat, mark_failed),
        "mail.welcome": StepKind(welcome),
    }


__all__ = ["step_kinds"]
