"""Outbox steps and periodic jobs (kurspakke.outbox.services) on SQLite and PostgreSQL: claiming, order per
subject, leases that run out, bounded tries, parking and retry, one run per period."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.db import transaction
from kurspakke.models import OutboxStep, PeriodicJob, StepStatus, utcnow
from kurspakke.outbox import services as outbox


def _enqueue(factory: sessionmaker[Session], kind: str, subject: str, payload: dict | None = None) -> int | None:
    with transaction(factory) as session:
        step = outbox.enqueue(session, kind, subject, payload)
        return step.id if step else None


def _claim(factory: sessionmaker[Session], worker: str, *, lease: float = 60.0, now=None) -> int | None:
    with transaction(factory) as session:
        step = outbox.claim(session, worker, lease_seconds=lease, now=now)
        return step.id if step else None


def test_steps_of_one_subject_run_one_at_a_time_in_order(session_factory):
    first = _enqueue(session_factory, "seat.sync", "seat:1", {"seat_id": 1, "n": 1})
    second = _enqueue(session_factory, "seat.sync", "seat:1", {"seat_id": 1, "n": 2})
    other = _enqueue(session_factory, "seat.sync", "seat:2", {"seat_id": 2})
    assert None not in (first, second, other)

    assert _claim(session_factory, "w1") == first
    assert _claim(session_factory, "w2") == other  # seat:1's second step waits for its first
    assert _claim(session_factory, "w3") is None
    with transaction(session_factory) as session:
        assert outbox.finish(session, first, "w1")
    assert _claim(session_factory, "w3") == second


def test_a_waiting_step_takes_in_a_repeated_change_instead_of_a_second_row(session_factory):
    first = _enqueue(session_factory, "seat.sync", "seat:1", {"seat_id": 1})
    assert _enqueue(session_factory, "seat.sync", "seat:1", {"seat_id": 1}) is None
    # Once claimed, the running step may have read the seat already: a new change gets its own row.
    assert _claim(session_factory, "w1") == first
    assert _enqueue(session_factory, "seat.sync", "seat:1", {"seat_id": 1}) is not None
    with session_factory() as session:
        assert len(list(session.scalars(select(OutboxStep)))) == 2


def test_a_dead_workers_lease_runs_out_and_another_finishes_the_step(session_factory):
    step_id = _enqueue(session_factory, "seat.sync", "seat:1")
    assert _claim(session_factory, "dead", lease=5) == step_id
    assert _claim(session_factory, "alive") is None  # leased
    later = utcnow() + timedelta(seconds=6)
    assert _claim(session_factory, "alive", now=later) == step_id
    with transaction(session_factory) as session:
        assert outbox.finish(session, step_id, "dead") is False  # the dead one lost it
        assert outbox.finish(session, step_id, "alive") is True
    with session_factory() as session:
        step = session.get(OutboxStep, step_id)
        assert step.status is StepStatus.DONE and step.attempts == 2 and step.locked_by is None


def test_a_failing_step_backs_off_and_is_parked_after_its_tries_then_retried_by_a_person(session_factory):
    step_id = _enqueue(session_factory, "seat.sync", "seat:1")
    now = utcnow()
    for attempt in range(1, 4):
        assert _claim(session_factory, "w", now=now) == step_id
        with transaction(session_factory) as session:
            status = outbox.fail(
                session, step_id, "w", f"503 #{attempt}", park=False, max_attempts=3, base=1.0, cap=10.0, now=now
            )
        if attempt < 3:
            assert status is StepStatus.PENDING
            assert _claim(session_factory, "w", now=now) is None  # not due during its backoff
            now += timedelta(seconds=11)
    assert status is StepStatus.PARKED
    with session_factory() as session:
        step = session.get(OutboxStep, step_id)
        assert step.last_error == "503 #3" and outbox.parked_count(session) == 1
    assert _claim(session_factory, "w", now=now + timedelta(days=1)) is None
    with transaction(session_factory) as session:
        assert outbox.retry(session, step_id) is not None
        assert outbox.retry(session, step_id) is None  # not parked any more
    assert _claim(session_factory, "w") == step_id


def test_a_refusal_parks_at_once_and_a_wait_that_does_not_count_keeps_the_tries(session_factory):
    step_id = _enqueue(session_factory, "seat.sync", "seat:1")
    assert _claim(session_factory, "w") == step_id
    with transaction(session_factory) as session:
        outbox.fail(session, step_id, "w", "waiting", park=False, max_attempts=1, base=1, cap=1, delay=0, count=False)
    with session_factory() as session:
        step = session.get(OutboxStep, step_id)
        assert step.status is StepStatus.PENDING and step.attempts == 0
    assert _claim(session_factory, "w") == step_id
    with transaction(session_factory) as session:
        assert outbox.fail(session, step_id, "w", "400", park=True, max_attempts=9, base=1, cap=1) is StepStatus.PARKED


def test_backoff_grows_and_is_capped():
    assert 0.5 <= outbox.backoff_seconds(1, base=1.0, cap=100.0) <= 1.0
    assert 4.0 <= outbox.backoff_seconds(4, base=1.0, cap=100.0) <= 8.0
    assert outbox.backoff_seconds(30, base=1.0, cap=100.0) <= 100.0


def test_concurrent_workers_never_claim_the_same_step(session_factory):
    for n in range(40):
        _enqueue(session_factory, "seat.sync", f"seat:{n}")
    claimed: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (step_id := _claim(session_factory, name)) is not None:
            with lock:
                claimed.append(step_id)
            with transaction(session_factory) as session:
                assert outbox.finish(session, step_id, name)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 40


def test_a_periodic_job_runs_once_per_period_and_a_dead_workers_period_is_taken_over(session_factory):
    now = utcnow()

    def take(worker: str, period: str, at=now) -> bool:
        with transaction(session_factory) as session:
            return outbox.take_period(session, "reconcile", period, worker, lease_seconds=60, now=at)

    assert take("w1", "2026-11-30")
    assert not take("w2", "2026-11-30")  # w1 holds it
    # w1 dies; after its lease another worker takes the period over and completes it.
    assert take("w2", "2026-11-30", at=now + timedelta(seconds=61))
    with transaction(session_factory) as session:
        assert not outbox.complete_period(session, "reconcile", "2026-11-30", "w1", {})
        assert outbox.complete_period(session, "reconcile", "2026-11-30", "w2", {"checked": 3})
    assert not take("w3", "2026-11-30", at=now + timedelta(hours=2))  # done for this period
    assert take("w3", "2026-12-01")
    with transaction(session_factory) as session:
        outbox.release_period(session, "reconcile", "w3", "Canvas unavailable")
    with session_factory() as session:
        job = session.get(PeriodicJob, "reconcile")
        assert job.done_period == "2026-11-30" and job.last_report == {"checked": 3}
        assert job.last_error == "Canvas unavailable" and job.locked_by is None
    assert take("w4", "2026-12-01")  # released: tried again


def test_many_workers_racing_for_one_period_take_it_once(session_factory):
    winners: list[str] = []

    def race(name: str) -> None:
        with transaction(session_factory) as session:
            if outbox.take_period(session, "digest", "2026-11-30", name, lease_seconds=60):
                winners.append(name)

    threads = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_a_follow_up_leased_to_a_worker_that_died_is_run_by_another_after_the_lease(session_factory):
    with transaction(session_factory) as session:
        step = outbox.enqueue_claimed(session, "mail.welcome", "mail:seat:1", {"seat_id": 1}, "dead", lease_seconds=5)
        step_id = step.id
    assert _claim(session_factory, "alive") is None  # leased to the worker that wrote it
    assert _claim(session_factory, "alive", now=utcnow() + timedelta(seconds=6)) == step_id
    with session_factory() as session:
        assert session.get(OutboxStep, step_id).attempts == 2


def test_a_step_whose_worker_keeps_dying_is_parked_after_its_tries(session_factory):
    step_id = _enqueue(session_factory, "seat.sync", "seat:1")
    now = utcnow()
    for attempt in range(2):  # claimed and never settled: the worker died each time
        with transaction(session_factory) as session:
            assert outbox.claim(session, f"w{attempt}", lease_seconds=5, now=now, max_attempts=2).id == step_id
        now += timedelta(seconds=6)
    with transaction(session_factory) as session:
        assert outbox.claim(session, "w9", lease_seconds=5, now=now, max_attempts=2) is None
    with session_factory() as session:
        step = session.get(OutboxStep, step_id)
        assert step.status is StepStatus.PARKED and "lease ran out" in step.last_error


def test_a_lease_is_renewed_by_its_holder_only(session_factory):
    step_id = _enqueue(session_factory, "seat.sync", "seat:1")
    now = utcnow()
    assert _claim(session_factory, "slow", lease=5, now=now) == step_id
    with transaction(session_factory) as session:
        assert outbox.renew(session, step_id, "slow", lease_seconds=60, now=now + timedelta(seconds=4))
    assert _claim(session_factory, "other", now=now + timedelta(seconds=6)) is None  # renewed: still the slow one's
    assert _claim(session_factory, "other", now=now + timedelta(seconds=70)) == step_id
    with transaction(session_factory) as session:
        assert not outbox.renew(session, step_id, "slow", lease_seconds=60)


def test_a_failed_period_waits_before_it_is_tried_again(session_factory):
    now = utcnow()
    with transaction(session_factory) as session:
        assert outbox.take_period(session, "digest", "2026-11-30", "w1", lease_seconds=60, now=now)
        outbox.release_period(session, "digest", "w1", "SMTP down", retry_after_seconds=900)
    with transaction(session_factory) as session:
        assert not outbox.take_period(session, "digest", "2026-11-30", "w2", lease_seconds=60)
        later = utcnow() + timedelta(seconds=901)
        assert outbox.take_period(session, "digest", "2026-11-30", "w2", lease_seconds=60, now=later)
