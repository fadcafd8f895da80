"""Writing, claiming and settling outbox steps; taking periodic jobs once per period.

Plain functions over a session: they flush, the caller commits. The worker loop that runs the steps' handlers lives
in course_sync.worker (it knows Canvas); this module knows neither Canvas nor Flask.

Claiming: the oldest due step whose subject has no older pending step, not leased (or its lease ran out), read with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so several workers each take a different row without waiting; SQLite's
write transactions are serialised (BEGIN IMMEDIATE), which gives the same result. Because only the oldest pending
step of a subject can be claimed, the steps of one seat run one at a time and in the order they were written.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kurspakke.models.base import utcnow
from kurspakke.outbox.models import OutboxStep, PeriodicJob, StepStatus

MAX_ERROR = 2000


class StepRetry(Exception):
    """A step that may succeed later (Canvas unavailable, throttled, its answer lost): try again after a backoff,
    parked when its tries are used up. ``delay`` overrides the backoff (seconds); ``count`` False when the try
    should not count (waiting for another step's work, such as a section being created)."""

    def __init__(self, message: str, *, delay: float | None = None, count: bool = True) -> None:
        super().__init__(message)
        self.delay = delay
        self.count = count


class LeaseLost(Exception):
    """Another worker has taken the step over (this worker's lease ran out): stop without writing anything."""


class StepPark(Exception):
    """A step that cannot succeed by trying again (Canvas refused it, several accounts match): parked at once, its
    message shown to the administrator, who resolves the cause and retries."""


def enqueue(session: Session, kind: str, subject: str, payload: dict[str, Any] | None = None) -> OutboxStep | None:
    """Write a step in the caller's transaction. When a step of the same kind and subject is already waiting and not
    yet claimed, it will see this change when it runs, so nothing is added (returns None).

    The waiting step is read with FOR UPDATE: a worker that is claiming it at this moment either finishes the claim
    first (then the step is leased and a new one is written) or waits for this transaction."""
    waiting = session.scalars(
        select(OutboxStep)
        .where(
            OutboxStep.kind == kind,
            OutboxStep.subject == subject,
            OutboxStep.status == StepStatus.PENDING,
            OutboxStep.locked_by.is_(None),
        )
        .with_for_update()
        .limit(1)
    ).first()
    if waiting is not None and (waiting.payload or {}) == (payload or {}):
        return None
    step = OutboxStep(kind=kind, subject=subject, payload=payload or {}, next_attempt_at=utcnow())
    session.add(step)
    session.flush()
    return step


def enqueue_claimed(
    session: Session,
    kind: str,
    subject: str,
    payload: dict[str, Any],
    worker_id: str,
    *,
    lease_seconds: float,
    now: datetime | None = None,
) -> OutboxStep:
    """Write a step already leased to ``worker_id`` (a follow-up it runs next, without claiming it): one write
    transaction less per follow-up. If the worker dies first, the lease runs out and another worker runs it."""
    now = now or utcnow()
    step = OutboxStep(
        kind=kind,
        subject=subject,
        payload=payload,
        next_attempt_at=now,
        locked_by=worker_id,
        locked_until=now + timedelta(seconds=lease_seconds),
        attempts=1,
        created_at=now,
        updated_at=now,
    )
    session.add(step)
    session.flush()
    return step


CLAIM_WINDOW = 8
CLAIM_WINDOWS = 20


def claim(
    session: Session,
    worker_id: str,
    *,
    lease_seconds: float,
    now: datetime | None = None,
    kinds: tuple[str, ...] = (),
    max_attempts: int | None = None,
) -> OutboxStep | None:
    """Lease the next due step to ``worker_id`` and count the try; None when nothing is due. Commit right after, so
    the lease is seen by other workers before the step runs.

    Due steps are read a window at a time, oldest first, with FOR UPDATE SKIP LOCKED; the first whose subject has no
    older pending step is taken. (One query with a correlated NOT EXISTS said the same, but PostgreSQL's planner
    ran it as a nested loop over the whole queue when the table's statistics were young: half a second a claim.)"""
    now = now or utcnow()
    for window in range(CLAIM_WINDOWS):
        query = (
            select(OutboxStep)
            .where(
                OutboxStep.status == StepStatus.PENDING,
                OutboxStep.next_attempt_at <= now,
                or_(OutboxStep.locked_until.is_(None), OutboxStep.locked_until < now),
            )
            .order_by(OutboxStep.next_attempt_at, OutboxStep.id)
            .offset(window * CLAIM_WINDOW)
            .limit(CLAIM_WINDOW)
            .with_for_update(skip_locked=True)
        )
        if kinds:
            query = query.where(OutboxStep.kind.in_(kinds))
        candidates = session.scalars(query.execution_options(populate_existing=True)).all()
        for step in candidates:
            step_id, subject = step.id, step.subject
            older = session.scalar(
                select(OutboxStep.id)
                .where(OutboxStep.subject == subject, OutboxStep.status == StepStatus.PENDING, OutboxStep.id < step_id)
                .limit(1)
            )
            if older is not None:
                continue  # the subject's older step runs first
            if max_attempts is not None and step.locked_by is not None and step.attempts >= max_attempts:
                # Its tries all ended with the lease running out (a worker killed or hung every time): parked, so a
                # step that kills its worker cannot do so forever.
                step.status, step.locked_by, step.locked_until, step.updated_at = StepStatus.PARKED, None, None, now
                step.last_error = (step.last_error or "") + " (the worker running it stopped; its lease ran out)"
                session.flush()
                continue
            step.locked_by = worker_id
            step.locked_until = now + timedelta(seconds=lease_seconds)
            step.attempts += 1
            step.updated_at = now
            session.flush()
            return step
        if len(candidates) < CLAIM_WINDOW:
            return None
    return None


def renew(session: Session, step_id: int, worker_id: str, *, lease_seconds: float, now: datetime | None = None) -> bool:
    """Extend this worker's lease on a step it is still running; False when another worker has it now."""
    now = now or utcnow()
    result = session.execute(
        update(OutboxStep)
        .where(OutboxStep.id == step_id, OutboxStep.locked_by == worker_id, OutboxStep.status == StepStatus.PENDING)
        .values(locked_until=now + timedelta(seconds=lease_seconds), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _leased(session: Session, step_id: int, worker_id: str) -> OutboxStep | None:
    """The step, locked, when ``worker_id`` still holds its lease; None when another worker took it over."""
    return session.scalars(
        select(OutboxStep)
        .where(OutboxStep.id == step_id, OutboxStep.locked_by == worker_id, OutboxStep.status == StepStatus.PENDING)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def finish(session: Session, step_id: int, worker_id: str, *, now: datetime | None = None) -> bool:
    """Mark the step done in the caller's transaction (the one that wrote the step's result). False when this
    worker's lease was lost: another worker runs (or ran) it, and the caller should roll back."""
    step = _leased(session, step_id, worker_id)
    if step is None:
        return False
    now = now or utcnow()
    step.status, step.done_at, step.updated_at = StepStatus.DONE, now, now
    step.locked_by, step.locked_until, step.last_error = None, None, None
    session.flush()
    return True


def backoff_seconds(attempts: int, *, base: float, cap: float) -> float:
    """Jittered exponential backoff before try ``attempts + 1``: base × 2^(attempts-1), capped, times 0.5–1."""
    return min(cap, base * 2 ** max(0, attempts - 1)) * (0.5 + random.random() / 2)


def fail(
    session: Session,
    step_id: int,
    worker_id: str,
    error: str,
    *,
    park: bool,
    max_attempts: int,
    base: float,
    cap: float,
    delay: float | None = None,
    count: bool = True,
    now: datetime | None = None,
) -> StepStatus | None:
    """Settle a failed try: parked when ``park`` or when the tries are used up, else back to pending after a backoff.
    Returns the new status, or None when the lease was lost (another worker has the step now)."""
    step = _leased(session, step_id, worker_id)
    if step is None:
        return None
    now = now or utcnow()
    if not count:
        step.attempts = max(0, step.attempts - 1)
    step.last_error = error[:MAX_ERROR]
    step.locked_by, step.locked_until, step.updated_at = None, None, now
    if park or step.attempts >= max_attempts:
        step.status = StepStatus.PARKED
    else:
        wait = delay if delay is not None else backoff_seconds(step.attempts, base=base, cap=cap)
        step.next_attempt_at = now + timedelta(seconds=wait)
    session.flush()
    return step.status


def retry(session: Session, step_id: int) -> OutboxStep | None:
    """Give a parked step a fresh set of tries (the administrator's retry button); None when it is not parked."""
    step = session.scalars(
        select(OutboxStep).where(OutboxStep.id == step_id, OutboxStep.status == StepStatus.PARKED).with_for_update()
    ).one_or_none()
    if step is None:
        return None
    now = utcnow()
    step.status, step.attempts, step.next_attempt_at, step.updated_at = StepStatus.PENDING, 0, now, now
    session.flush()
    return step


def pending_count(session: Session, kinds: tuple[str, ...] = ()) -> int:
    """Pending steps (of ``kinds`` when given: a worker waits only for steps it can run)."""
    query = select(func.count(OutboxStep.id)).where(OutboxStep.status == StepStatus.PENDING)
    if kinds:
        query = query.where(OutboxStep.kind.in_(kinds))
    return session.scalar(query) or 0


def parked_count(session: Session) -> int:
    return session.scalar(select(func.count(OutboxStep.id)).where(OutboxStep.status == StepStatus.PARKED)) or 0


def parked_steps(session: Session, *, subjects: list[str] | None = None) -> list[OutboxStep]:
    query = select(OutboxStep).where(OutboxStep.status == StepStatus.PARKED).order_by(OutboxStep.id)
    if subjects is not None:
        query = query.where(OutboxStep.subject.in_(subjects))
    return list(session.scalars(query))


def next_due(session: Session, kinds: tuple[str, ...] = ()) -> datetime | None:
    """When the next pending step is due (its lease's end when it is leased), for a worker deciding how long to wait."""
    query = select(OutboxStep.next_attempt_at, OutboxStep.locked_until).where(OutboxStep.status == StepStatus.PENDING)
    if kinds:
        query = query.where(OutboxStep.kind.in_(kinds))
    steps = session.execute(query).all()
    moments = [max(at, until) if until else at for at, until in steps]
    return min(moments) if moments else None


# --- periodic jobs -----------------------------------------------------------------------------------------------


def take_period(
    session: Session, name: str, period: str, worker_id: str, *, lease_seconds: float, now: datetime | None = None
) -> bool:
    """Take job ``name`` for ``period`` (e.g. "2026-11-30"): True for exactly one worker until the period is done
    or that worker's lease runs out. One conditional UPDATE, so two workers cannot both take it."""
    now = now or utcnow()
    insert_missing(session, name)
    result = session.execute(
        update(PeriodicJob)
        .where(
            PeriodicJob.name == name,
            or_(PeriodicJob.done_period.is_(None), PeriodicJob.done_period != period),
            or_(PeriodicJob.locked_until.is_(None), PeriodicJob.locked_until < now),
        )
        .values(locked_by=worker_id, locked_until=now + timedelta(seconds=lease_seconds), last_started_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def insert_missing(session: Session, name: str) -> None:
    """The job's row, made once (an insert that does nothing when another worker made it first)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(PeriodicJob).values(name=name).on_conflict_do_nothing(index_elements=["name"]))


def complete_period(
    session: Session, name: str, period: str, worker_id: str, report: dict[str, Any], *, now: datetime | None = None
) -> bool:
    """Record the period as done (False when this worker's lease was lost and another took the job over)."""
    now = now or utcnow()
    result = session.execute(
        update(PeriodicJob)
        .where(PeriodicJob.name == name, PeriodicJob.locked_by == worker_id)
        .values(
            done_period=period, locked_by=None, locked_until=None, last_done_at=now, last_error=None, last_report=report
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_period(
    session: Session, name: str, worker_id: str, error: str, *, retry_after_seconds: float = 0.0
) -> None:
    """Give the period back after a failure: it is tried again (by any worker) after ``retry_after_seconds``, so a
    job that keeps failing does not run again every poll."""
    until = utcnow() + timedelta(seconds=retry_after_seconds) if retry_after_seconds > 0 else None
    session.execute(
        update(PeriodicJob)
        .where(PeriodicJob.name == name, PeriodicJob.locked_by == worker_id)
        .values(locked_by=None, locked_until=until, last_error=error[:MAX_ERROR])
        .execution_options(synchronize_session=False)
    )


__all__ = [
    "LeaseLost",
    "StepPark",
    "StepRetry",
    "backoff_seconds",
    "claim",
    "complete_period",
    "enqueue",
    "enqueue_claimed",
    "fail",
    "finish",
    "next_due",
    "parked_count",
    "parked_steps",
    "pending_count",
    "release_period",
    "renew",
    "retry",
    "take_period",
]
