"""The outbox worker: claims steps, runs their handlers, settles them; and runs the periodic jobs once per period.

Several workers may run on one PostgreSQL (claims use SKIP LOCKED, see kurspakke.outbox.services). A worker killed
mid-step loses nothing: the step's lease runs out and another worker (or the same one restarted) runs it again; the
handlers are idempotent. Errors from Canvas decide what happens to the step:

- throttled, unavailable, timed out, connection lost, answer lost, an answer of the wrong shape: tried again after
  a jittered backoff, parked after ``max_attempts`` tries;
- refused (4xx), the token refused, a resource gone, several accounts fitting: parked at once with the message;
- anything else (a bug): tried again like a transient error, so it is parked with its error after the tries.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from course_sync.canvas import CanvasBadResponse, CanvasError, CanvasThrottled, CanvasUnavailable
from course_sync.provisioning import StepContext
from kurspakke.db import make_session_factory, transaction
from kurspakke.models import CanvasInstance, utcnow
from kurspakke.outbox import services as outbox
from kurspakke.outbox.services import LeaseLost, StepPark, StepRetry

log = logging.getLogger("kurspakke.worker")

Handler = Callable[[StepContext, dict[str, Any]], None]
OnPark = Callable[[Session, dict[str, Any], str], None]

EXIT_IDLE = 0
EXIT_PARKED = 3
EXIT_TIMED_OUT = 4


@dataclass(frozen=True)
class StepKind:
    run: Handler
    on_park: OnPark | None = None


@dataclass(frozen=True)
class PeriodicJobSpec:
    """A job that runs once per period: ``period(now)`` names the current period ("2026-11-30"), or None while it is
    not yet time (e.g. before 02:00 Oslo time); ``run`` returns a report stored with the job."""

    name: str
    period: Callable[[datetime], str | None]
    run: Callable[[StepContext], dict[str, Any]]


@dataclass
class WorkerOptions:
    lease_seconds: float = 120.0
    max_attempts: int = 8
    retry_base: float = 0.5
    retry_cap: float = 900.0
    poll_seconds: float = 1.0
    job_lease_seconds: float = 1800.0
    job_retry_seconds: float = 900.0  # a failed periodic job is tried again after this


@dataclass
class Worker:
    sessions: sessionmaker[Session]
    client_for: Callable[[CanvasInstance], Any]
    kinds: Mapping[str, StepKind]
    options: WorkerOptions = field(default_factory=WorkerOptions)
    jobs: tuple[PeriodicJobSpec, ...] = ()
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        bind = self.sessions.kw.get("bind")
        self._reads = make_session_factory(bind, readonly=True) if bind is not None else None

    def _context(
        self, step_id: int | None, follow_ups: list[tuple[int, str, dict[str, Any]]] | None = None
    ) -> StepContext:
        def finish(session: Session) -> bool:
            return step_id is None or outbox.finish(session, step_id, self.worker_id)

        claimed_at = self.monotonic()

        def renew() -> None:
            nonlocal claimed_at
            if step_id is None or self.monotonic() - claimed_at < self.options.lease_seconds / 3:
                return
            with transaction(self.sessions) as session:
                if not outbox.renew(session, step_id, self.worker_id, lease_seconds=self.options.lease_seconds):
                    raise LeaseLost(f"step {step_id} was taken over by another worker")
            claimed_at = self.monotonic()

        def follow_up(session: Session, kind: str, subject: str, payload: dict[str, Any]) -> None:
            assert follow_ups is not None
            step = outbox.enqueue_claimed(
                session, kind, subject, payload, self.worker_id, lease_seconds=self.options.lease_seconds
            )
            follow_ups.append((step.id, kind, payload))

        return StepContext(
            self.sessions,
            self.client_for,
            self.worker_id,
            finish,
            self._reads,
            follow_up if follow_ups is not None and self.kinds else None,
            renew,
        )

    # ---------------------------------------------------------------- steps
    def run_one(self) -> bool:
        """Claim and run one due step, then the follow-ups it wrote for this worker; False when none was due."""
        with transaction(self.sessions) as session:
            step = outbox.claim(
                session,
                self.worker_id,
                lease_seconds=self.options.lease_seconds,
                kinds=tuple(self.kinds),
                max_attempts=self.options.max_attempts,
            )
            if step is None:
                return False
            queue = [(step.id, step.kind, dict(step.payload or {}))]
        while queue:
            step_id, kind, payload = queue.pop(0)
            follow_ups: list[tuple[int, str, dict[str, Any]]] = []
            if self._execute(step_id, kind, payload, follow_ups):
                # The handler returned, so every transaction it opened committed: its follow-ups exist and are
                # leased to this worker; they run here at once. (When it raised, a follow-up it had committed
                # runs after its lease, by any worker.)
                queue.extend(f for f in follow_ups if f[1] in self.kinds)
        return True

    def _execute(
        self, step_id: int, kind: str, payload: dict[str, Any], follow_ups: list[tuple[int, str, dict[str, Any]]]
    ) -> bool:
        """Run the step's handler and settle a failure; True when the handler returned."""
        spec = self.kinds[kind]
        try:
            spec.run(self._context(step_id, follow_ups), payload)
            return True
        except LeaseLost as exc:  # the step is another worker's now: it runs it; nothing to settle here
            log.warning("outbox step %s: %s", step_id, exc)
        except StepPark as exc:
            self._settle(step_id, spec, payload, str(exc), park=True)
        except StepRetry as exc:
            self._settle(step_id, spec, payload, str(exc), park=False, delay=exc.delay, count=exc.count)
        except (CanvasThrottled, CanvasUnavailable, CanvasBadResponse) as exc:
            self._settle(step_id, spec, payload, str(exc), park=False)
        except CanvasError as exc:
            self._settle(step_id, spec, payload, str(exc), park=True)
        except Exception as exc:  # a bug or the database: tried again, parked with its error after the tries
            log.exception("outbox step %s (%s) failed", step_id, kind)
            self._settle(step_id, spec, payload, f"{type(exc).__name__}: {exc}", park=False)
        return False

    def _settle(
        self,
        step_id: int,
        spec: StepKind,
        payload: dict[str, Any],
        error: str,
        *,
        park: bool,
        delay: float | None = None,
        count: bool = True,
    ) -> None:
        with transaction(self.sessions) as session:
            status = outbox.fail(
                session,
                step_id,
                self.worker_id,
                error,
                park=park,
                max_attempts=self.options.max_attempts,
                base=self.options.retry_base,
                cap=self.options.retry_cap,
                delay=delay,
                count=count,
            )
            if status is outbox.StepStatus.PARKED:
                log.warning("outbox step %s parked: %s", step_id, error)
                if spec.on_park is not None:
                    spec.on_park(session, payload, error)

    def run_until_idle(self, max_seconds: float | None = None) -> int:
        """Run steps until none is pending (steps waiting for a retry are waited for; periodic jobs do not count).
        Exit code: 0 when nothing is parked, 3 when steps are parked, 4 when ``max_seconds`` ran out first."""
        deadline = None if max_seconds is None else self.monotonic() + max_seconds
        while True:
            if self.run_one():
                continue
            with transaction(self.sessions) as session:
                # Only the kinds this worker runs: a step of a kind it does not know (written for a handler still to
                # come) is no work it could wait for.
                pending = outbox.pending_count(session, tuple(self.kinds))
                parked = outbox.parked_count(session)
                due = outbox.next_due(session, tuple(self.kinds)) if pending else None
            if not pending:
                return EXIT_PARKED if parked else EXIT_IDLE
            if deadline is not None and self.monotonic() >= deadline:
                return EXIT_TIMED_OUT
            wait = self.options.poll_seconds
            if due is not None:
                wait = min(wait, max(0.01, (due - utcnow()).total_seconds()))
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - self.monotonic()))
            self.sleep(wait)

    # ---------------------------------------------------------- periodic jobs
    def run_jobs(self, now: datetime | None = None) -> dict[str, dict[str, Any]]:
        """Run each periodic job whose period this worker can take; returns the reports of the jobs it completed."""
        now = now or utcnow()
        completed: dict[str, dict[str, Any]] = {}
        for job in self.jobs:
            period = job.period(now)
            if period is None:
                continue
            with transaction(self.sessions) as session:
                taken = outbox.take_period(
                    session, job.name, period, self.worker_id, lease_seconds=self.options.job_lease_seconds, now=now
                )
            if not taken:
                continue
            try:
                report = job.run(self._context(None))
            except Exception as exc:
                log.exception("periodic job %s failed", job.name)
                with transaction(self.sessions) as session:
                    outbox.release_period(
                        session,
                        job.name,
                        self.worker_id,
                        f"{type(exc).__name__}: {exc}",
                        retry_after_seconds=self.options.job_retry_seconds,
                    )
                continue
            with transaction(self.sessions) as session:
                if outbox.complete_period(session, job.name, period, self.worker_id, report):
                    completed[job.name] = report
        return completed

    def run_forever(self, *, stop: Callable[[], bool] = lambda: False) -> None:
        """Jobs and steps until ``stop()``; an error of the database or a bug is logged and the loop goes on (a
        worker thread that died silently would leave its process working short-handed)."""
        while not stop():
            worked = False
            try:
                self.run_jobs()
                while self.run_one():
                    worked = True
                    if stop():
                        return
            except Exception:
                log.exception("worker %s: a round failed; going on", self.worker_id)
            if not worked:
                self.sleep(self.options.poll_seconds)


__all__ = [
    "EXIT_IDLE",
    "EXIT_PARKED",
    "EXIT_TIMED_OUT",
    "PeriodicJobSpec",
    "StepKind",
    "Worker",
    "WorkerOptions",
]
