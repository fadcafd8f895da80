"""Asking for a progress sync now: the "Oppdater nå" button and Canvas Live Events (DESIGN.md §3 "Progress").

A request is an outbox step of kind ``progress.sync`` (subject ``progress:<programme id>``, so the syncs of one
programme run one at a time, in order); the worker runs it (course_sync/steps.py). Requests collapse: while a
step for the programme is waiting and not yet claimed, a new request returns that step instead of writing
another, so repeated presses and bursts of live events cost one sync. A request that arrives while a sync runs
gets a new step: the running sync may have read Canvas before the change it announces.

The periodic sync (every 10 minutes) stays the source of truth; a request only makes the next read sooner.

Plain functions over a session: they flush, the caller commits. Nothing here knows Canvas or Flask.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from kurspakke.models.base import utcnow
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.outbox.services import enqueue
from kurspakke.programmes import Programme, programmes_once

PROGRESS_SYNC = "progress.sync"
MAX_REASON = 200
MAX_ACTOR = 255


class UnknownSyncRequest(LookupError):
    """No progress sync request with this id (for this programme)."""


def subject_of(programme_id: str) -> str:
    return f"progress:{programme_id}"


def _serialise(session: Session, subject: str) -> None:
    """Requests for one programme one at a time, until the caller's transaction ends. FOR UPDATE locks only a row
    that exists: without it two requests at once (a burst of live events reaching two web processes) could each
    find no waiting step and write one. PostgreSQL: a transaction-level advisory lock on the subject; SQLite's
    write transactions (BEGIN IMMEDIATE) are serialised already."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"kurspakke:{subject}".encode()).digest()
        session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": int.from_bytes(digest[:8], "big", signed=True)}
        )


def request_sync(
    session: Session,
    programme_id: str,
    *,
    reason: str,
    actor: str,
    full: bool = False,
    programmes: Mapping[str, Programme] | None = None,
) -> int:
    """Ask for a progress sync of ``programme_id`` now; returns the id of the outbox step that will run it.

    When a step for the programme is already waiting and not yet claimed, that step's id is returned and nothing
    is written (a request for a ``full`` sync turns the waiting step into a full one). The waiting step is read
    with FOR UPDATE, so a worker claiming it at this moment either claims it first (then a new step is written)
    or waits for this transaction; concurrent requests for one programme queue (``_serialise``). Raises
    ValueError for a programme the content directory does not have."""
    known = programmes if programmes is not None else programmes_once()
    if programme_id not in known:
        raise ValueError(f"unknown programme {programme_id!r}")
    subject = subject_of(programme_id)
    _serialise(session, subject)
    waiting = session.scalars(
        select(OutboxStep)
        .where(
            OutboxStep.kind == PROGRESS_SYNC,
            OutboxStep.subject == subject,
            OutboxStep.status == StepStatus.PENDING,
            OutboxStep.locked_by.is_(None),
            # A step waiting for its next try after a failure has claims behind it; it still reads everything
            # anew when it runs, so it takes this request in as well.
        )
        .order_by(OutboxStep.id)
        .with_for_update()
        .limit(1)
    ).first()
    if waiting is not None:
        if full and not (waiting.payload or {}).get("full"):
            waiting.payload = {**(waiting.payload or {}), "full": True}  # a new dict: the JSON column sees it
            waiting.updated_at = utcnow()
            session.flush()
        return waiting.id
    payload: dict[str, Any] = {
        "programme_id": programme_id,
        "full": bool(full),
        "reason": reason[:MAX_REASON],
        "actor": actor[:MAX_ACTOR],
    }
    step = enqueue(session, PROGRESS_SYNC, subject, payload)
    if step is None:  # not reachable: nothing of this kind and subject is waiting (read above, locked)
        raise RuntimeError("enqueue collapsed a progress.sync request that had nothing to collapse into")
    return step.id


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def sync_state(
    session: Session, step_id: int, *, programme_id: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Where a requested sync is, for a page polling its progress indicator:

    ``{"id", "programme_id", "status", "requested_at", "finished_at", "attempts", "error"}`` with ``status`` one
    of ``pending`` (waiting to run, also when waiting for another try after a failure: ``error`` then says why
    the last one failed), ``running`` (a worker holds it), ``done`` or ``failed`` (parked after its tries;
    ``error`` says why). ``finished_at`` is set for done and failed.

    Raises UnknownSyncRequest when there is no progress sync step with this id, or it is another programme's
    (``programme_id`` given: a page asks only about its own programme)."""
    step = session.get(OutboxStep, step_id, populate_existing=True)
    if step is None or step.kind != PROGRESS_SYNC:
        raise UnknownSyncRequest(step_id)
    owner = (step.payload or {}).get("programme_id")
    if programme_id is not None and owner != programme_id:
        raise UnknownSyncRequest(step_id)
    now = now or utcnow()
    finished_at: datetime | None = None
    if step.status is StepStatus.DONE:
        status, finished_at = "done", step.done_at or step.updated_at
    elif step.status is StepStatus.PARKED:
        status, finished_at = "failed", step.updated_at
    elif step.locked_by is not None and step.locked_until is not None and step.locked_until > now:
        status = "running"
    else:  # waiting, waiting for another try, or its worker's lease ran out (another worker takes it over)
        status = "pending"
    return {
        "id": step.id,
        "programme_id": owner,
        "status": status,
        "requested_at": _iso(step.created_at),
        "finished_at": _iso(finished_at),
        "attempts": step.attempts,
        "error": step.last_error if status != "done" else None,
    }


__all__ = ["PROGRESS_SYNC", "UnknownSyncRequest", "request_sync", "subject_of", "sync_state"]
