"""The worker as `kurspakke worker` runs it: its steps, its periodic jobs and its Canvas clients, from the settings."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from course_sync.certificate_steps import ConnectorFor, sweep_job
from course_sync.lti_services import ToolServiceConnector
from course_sync.progress_sync import progress_job, ten_minute_slot
from course_sync.provisioning import StepContext, client_factory
from course_sync.reconcile import digest_job, reconcile_job
from course_sync.reminder_steps import NUDGE_JOB, REMINDER_JOB, SEAT_EXPIRY_NOTICE_JOB
from course_sync.steps import step_kinds
from course_sync.worker import PeriodicJobSpec, Worker, WorkerOptions
from kurspakke.certificates.archive import EXPORTS_FOLDER, purge_archives
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.mail import send_mail
from kurspakke.models import Registration
from kurspakke.services.cache import DatabaseCache, RedisCache, SharedCache
from kurspakke.services.keys import KeyRing
from kurspakke.services.lti_state import DatabaseStateStore

OSLO = ZoneInfo("Europe/Oslo")


def hourly(now: datetime) -> str:
    return now.astimezone(OSLO).strftime("%Y-%m-%dT%H")


def daily_after(hour: int) -> Any:
    """A period per Oslo day, starting at ``hour`` o'clock (before that the day's run is not due yet)."""

    def period(now: datetime) -> str | None:
        local = now.astimezone(OSLO)
        return local.strftime("%Y-%m-%d") if local.hour >= hour else None

    return period


def purge_expired_state(ctx: StepContext, exports: Path | None = None) -> dict[str, Any]:
    """Expired launch state and shared values; with ``exports``, certificate archives past their download time."""
    with transaction(ctx.sessions) as session:
        report: dict[str, Any] = {"purged": DatabaseStateStore(session).purge_expired()}
    if exports is not None:
        report["archives"] = purge_archives(exports)
    return report


def options_from(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        lease_seconds=settings.outbox_lease_seconds,
        max_attempts=settings.outbox_max_attempts,
        retry_base=settings.retry_base_seconds,
        retry_cap=max(settings.retry_base_seconds, 900.0 if settings.retry_base_seconds >= 0.5 else 5.0),
        poll_seconds=settings.outbox_poll_seconds,
    )


def periodic_jobs(send: Any = None, exports: Path | None = None) -> tuple[PeriodicJobSpec, ...]:
    """The purge of expired launch state (hourly), reconciliation with seat expiry (nightly, from 02:00 Oslo time),
    the certificate sweep (nightly, from 03:00), the digest of parked steps (daily, from 07:00) and the quiz progress
    sync (every 10 minutes)."""
    return (
        PeriodicJobSpec("purge_expired_state", hourly, partial(purge_expired_state, exports=exports)),
        PeriodicJobSpec("reconcile_enrolments", daily_after(2), reconcile_job),
        PeriodicJobSpec("certificate_sweep", daily_after(3), sweep_job),
        PeriodicJobSpec("parked_digest", daily_after(7), digest_job),
        PeriodicJobSpec("progress_sync", ten_minute_slot, progress_job),
        SEAT_EXPIRY_NOTICE_JOB,  # daily from 07:30: seats expiring within 30 days, to licence administrators
        REMINDER_JOB,  # daily from 08:00: the day-before reminders of tomorrow's meetings
        NUDGE_JOB,  # daily from 09:00: participants behind the pacing, at most one nudge a week each
    )


def connectors(settings: Settings, sessions: sessionmaker[Session], encryptor: Encryptor) -> ConnectorFor:
    """LTI service connectors for the worker's AGS posts: the tool's keys through one key ring per process, access
    tokens in the shared cache (Redis when configured, else the database)."""
    keyring = KeyRing(sessions, encryptor, grace_seconds=settings.key_grace_seconds)
    cache: SharedCache
    if settings.redis_url:
        import redis

        cache = RedisCache(
            redis.Redis.from_url(settings.redis_url, socket_timeout=settings.http_timeout_seconds), encryptor
        )
    else:
        cache = DatabaseCache(sessions, encryptor)

    def connector_for(registration: Registration) -> ToolServiceConnector:
        return ToolServiceConnector(registration, keyring=keyring, cache=cache, timeout=settings.http_timeout_seconds)

    return connector_for


def make_workers(
    settings: Settings, sessions: sessionmaker[Session], encryptor: Encryptor, count: int | None = None
) -> list[Worker]:
    """``count`` (default ``worker_threads``) workers of one process, sharing its Canvas clients, so at most
    ``canvas_max_in_flight`` Canvas calls of the process are in flight however many workers run."""
    clients = client_factory(
        encryptor,
        timeout=settings.canvas_timeout_seconds,
        max_tries=settings.retry_max_tries,
        retry_base=settings.retry_base_seconds,
        max_in_flight=settings.canvas_max_in_flight,
    )
    send = partial(send_mail, settings)
    kinds = step_kinds(
        send,
        base_url=settings.base_url,
        connector_for=connectors(settings, sessions, encryptor),
        secret_key=settings.secret_key,
    )
    jobs = periodic_jobs(exports=settings.instance_path / EXPORTS_FOLDER)
    return [
        Worker(sessions, clients, kinds, options_from(settings), jobs=jobs)
        for _ in range(count or settings.worker_threads)
    ]


def make_worker(settings: Settings, sessions: sessionmaker[Session], encryptor: Encryptor) -> Worker:
    return make_workers(settings, sessions, encryptor, 1)[0]


__all__ = ["daily_after", "hourly", "make_worker", "make_workers", "options_from", "periodic_jobs"]
