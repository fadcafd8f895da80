"""The outbox step kinds the worker knows, and what each does when it is parked (composition of course_sync)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from course_sync.certificate_archive import CERTIFICATE_ARCHIVE, build_archive
from course_sync.certificate_steps import CertificateSteps, ConnectorFor
from course_sync.group_sync import group_step_kinds
from course_sync.notify import send_welcome
from course_sync.notify_orders import send_payload
from course_sync.progress_sync import sync_progress
from course_sync.provisioning import StepContext, mark_failed, sync_seat
from course_sync.reminder_steps import reminder_step_kinds
from course_sync.worker import StepKind
from kurspakke.db import transaction
from kurspakke.licences.invitations import MAIL_SEND
from kurspakke.licences.seating import SEAT_SYNC
from kurspakke.models import CanvasInstance, utcnow
from kurspakke.outbox.models import PeriodicJob
from kurspakke.outbox.services import StepPark, StepRetry
from kurspakke.programmes import programmes_once
from kurspakke.progress.requests import PROGRESS_SYNC

log = logging.getLogger("kurspakke.progress")

Send = Callable[..., None]

# The periodic progress sync's job name (course_sync/runtime.py periodic_jobs). While it runs, a requested sync
# waits for it: two syncs of one course at once would race to record the same completions.
PERIODIC_PROGRESS_JOB = "progress_sync"
PERIODIC_WAIT_SECONDS = 5.0


def _periodic_sync_running(ctx: StepContext, now: datetime) -> bool:
    with ctx.read()() as session:
        job = session.get(PeriodicJob, PERIODIC_PROGRESS_JOB)
        return job is not None and job.locked_by is not None and job.locked_until is not None and job.locked_until > now


def sync_programme_progress(ctx: StepContext, payload: dict[str, Any]) -> None:
    """Step ``progress.sync`` (kurspakke.progress.requests.request_sync): one progress sync of the programme,
    done when every linked course was read; otherwise StepRetry, so the outbox tries again after a backoff and
    parks the step (status ``failed`` for the page) after its tries. The watermark only advances for courses
    that were read, as in the periodic sync."""
    programme_id = payload.get("programme_id")
    if not isinstance(programme_id, str) or programme_id not in programmes_once():
        raise StepPark(f"progress sync of unknown programme {programme_id!r}")
    if _periodic_sync_running(ctx, utcnow()):
        raise StepRetry("waiting for the periodic progress sync to finish", delay=PERIODIC_WAIT_SECONDS, count=False)

    def client_for(instance: CanvasInstance) -> Any:
        ctx.keep_lease()  # between courses: a long sync keeps its step, or stops when another worker took it over
        return ctx.client_for(instance)

    report = sync_progress(ctx.sessions, client_for, programme_id, full=payload.get("full") is True)
    if not report.ok:
        errors = "; ".join(f"course {c.canvas_course_id}: {c.error}" for c in report.courses if c.error)
        raise StepRetry(f"progress sync of {programme_id} incomplete: {errors}")
    log.info("progress sync of %s done (%s)", programme_id, payload.get("reason", ""))
    with transaction(ctx.sessions) as session:
        ctx.finish(session)


def step_kinds(
    send: Send | None = None,
    *,
    base_url: str = "",
    connector_for: ConnectorFor | None = None,
    secret_key: str | None = None,
) -> dict[str, StepKind]:
    """``send(to=..., subject=..., text=...)`` delivers an e-mail (kurspakke.mail.send_mail bound to the settings);
    None logs e-mails instead of sending them. ``base_url`` is the tool's address (the verification page in
    certificate e-mails); ``connector_for`` makes LTI service connectors for AGS (None: gradebook posts wait);
    ``secret_key`` signs the one-click "reminders off" links (None: read from the environment when first needed)."""

    def welcome(ctx: StepContext, payload: dict[str, Any]) -> None:
        send_welcome(ctx, payload, send)

    def mail(ctx: StepContext, payload: dict[str, Any]) -> None:
        send_payload(ctx, payload, send)

    return {
        SEAT_SYNC: StepKind(sync_seat, mark_failed),
        "mail.welcome": StepKind(welcome),
        MAIL_SEND: StepKind(mail),  # a composed e-mail: invitations, order receipts and confirmations
        PROGRESS_SYNC: StepKind(sync_programme_progress),  # "Oppdater nå" and Canvas Live Events
        **group_step_kinds(),  # group.sync (group set "Mentorgrupper"), meeting.sync (calendar events)
        # certificate.evaluate, certificate.notify (e-mail), certificate.ags (Canvas's gradebook)
        **CertificateSteps(send, base_url, connector_for).kinds(),
        CERTIFICATE_ARCHIVE: StepKind(build_archive),  # the licence administrator's large ZIP of certificates
        # meeting.notify, mail.notice (with the .ics file), reminder.send
        **reminder_step_kinds(send, base_url=base_url, secret_key=secret_key),
    }


__all__ = ["PERIODIC_PROGRESS_JOB", "step_kinds", "sync_programme_progress"]
