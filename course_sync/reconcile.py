"""Nightly reconciliation of seats with Canvas's enrolments, seat expiry, and the daily digest of parked steps.

Reconciliation reads each linked course's enrolments in one paginated call series and compares them with the seats
the tool provisioned there:
- a held seat whose enrolment is gone or no longer active (someone removed it by hand) is repaired: its seat.sync
  step is written again, which enrols the person as before;
- a revoked seat whose enrolment is still active gets its seat.sync step again, which concludes it;
- an enrolment in one of the tool's sections that belongs to no seat (someone enrolled by hand) is only reported;
  enrolments the tool did not make (teachers, other sections, hand-made ones) are never touched;
- each seat learns its enrolment's last_activity_at, so the licence administrator sees who never signed in.
The report is stored with the job (periodic_job.last_report) and logged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from course_sync.provisioning import STUDENT, TA, StepContext, course_for
from kurspakke.db import transaction
from kurspakke.licences.admins import administrators
from kurspakke.licences.invitations import MAIL_SEND
from kurspakke.licences.models import CanvasSection, CanvasStatus, Seat
from kurspakke.licences.seating import sync_seat_later
from kurspakke.licences.services import expire_seats, lapse_unassigned_seats
from kurspakke.models import CanvasInstance, utcnow
from kurspakke.notices import expired_seats_message, parked_digest_message
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.outbox.services import enqueue
from kurspakke.programmes import programmes_once

log = logging.getLogger("kurspakke.reconcile")
OSLO = ZoneInfo("Europe/Oslo")


def reconcile_job(ctx: StepContext) -> dict[str, Any]:
    """Expire seats past their validity, then reconcile every linked course on every registered Canvas."""
    with transaction(ctx.sessions) as session:
        expired = []
        by_pool: dict[tuple[int, str], list[Seat]] = defaultdict(list)
        for seat in expire_seats(session, now=utcnow(), actor="worker"):
            sync_seat_later(session, seat)  # concludes the enrolment
            expired.append(seat.id)
            by_pool[(seat.organisation_id, seat.programme_id)].append(seat)
        for (organisation_id, programme_id), seats in by_pool.items():
            report_expired(session, organisation_id, programme_id, seats)
        lapsed = lapse_unassigned_seats(session, now=utcnow(), actor="worker")
    report: dict[str, Any] = {"expired_seats": expired, "lapsed_orders": lapsed, "courses": []}
    with transaction(ctx.sessions) as session:
        instances = list(session.scalars(select(CanvasInstance).order_by(CanvasInstance.id)))
        for instance in instances:
            session.expunge(instance)
    for instance in instances:
        for programme_id in programmes_once():
            with transaction(ctx.sessions) as session:
                link = course_for(session, instance, programme_id)
                course_id = link.canvas_course_id if link else None
            if course_id:
                report["courses"].append(reconcile_course(ctx, instance, programme_id, course_id))
    log.info("reconciliation: %s", report)
    return report


def report_expired(session: Any, organisation_id: int, programme_id: str, seats: list[Seat]) -> None:
    """Tell the organisation's licence administrators which seats expired (an e-mail each, as an outbox step)."""
    programme = programmes_once().get(programme_id)
    if programme is None:
        return
    names = sorted(seat.person.name for seat in seats)
    organisation = seats[0].organisation
    day = utcnow().date().isoformat()
    for admin in administrators(session, organisation_id, programme_id):
        message = expired_seats_message(
            to=admin.email, organisation=organisation.name, programme=programme, names=names
        )
        enqueue(
            session,
            MAIL_SEND,
            f"mail:expired:{organisation_id}:{programme_id}:{admin.person_id}:{day}",
            {"to": message.to, "subject": message.subject, "text": message.text},
        )


def reconcile_course(ctx: StepContext, instance: CanvasInstance, programme_id: str, course_id: str) -> dict[str, Any]:
    client = ctx.client_for(instance)
    enrolments = client.enrollments(course_id, types=(STUDENT, TA), states=("active", "invited", "completed"))
    by_id = {str(e.id): e for e in enrolments}
    active_by_user: dict[str, list[Any]] = defaultdict(list)
    for e in enrolments:
        if e.state in ("active", "invited"):
            active_by_user[str(e.user_id)].append(e)
    removed: list[int] = []
    concluded: list[int] = []
    with transaction(ctx.sessions) as session:
        our_sections = set(
            session.scalars(
                select(CanvasSection.section_id).where(
                    CanvasSection.canvas_instance_id == instance.id,
                    CanvasSection.course_id == course_id,
                    CanvasSection.section_id.is_not(None),
                )
            )
        )
        seats = list(
            session.scalars(
                select(Seat).where(Seat.canvas_instance_id == instance.id, Seat.programme_id == programme_id)
            )
        )
        seat_enrolments = {s.canvas_enrollment_id for s in seats if s.canvas_enrollment_id}
        for seat in seats:
            enrolment = by_id.get(seat.canvas_enrollment_id or "")
            if enrolment is not None:
                seat.canvas_last_activity_at = enrolment.last_activity_at
            if seat.revoked_at is None and seat.canvas_status is CanvasStatus.ACTIVE:
                if enrolment is None or enrolment.state not in ("active", "invited"):
                    removed.append(seat.id)
                    seat.canvas_status = CanvasStatus.PENDING
                    sync_seat_later(session, seat)
            elif seat.revoked_at is not None and seat.canvas_user_id:
                still = [
                    e
                    for e in active_by_user.get(seat.canvas_user_id, [])
                    if str(e.section_id) == seat.canvas_section_id
                ]
                if still:
                    concluded.append(seat.id)
                    sync_seat_later(session, seat)
    by_hand = sorted(
        e.user_id
        for e in enrolments
        if str(e.section_id) in our_sections and str(e.id) not in seat_enrolments and e.state in ("active", "invited")
    )
    return {
        "canvas": instance.api_url,
        "programme": programme_id,
        "course": course_id,
        "enrolments": len(enrolments),
        "removed_by_hand_repaired": removed,
        "revoked_still_active_concluded": concluded,
        "enrolled_by_hand_reported": by_hand,
    }


def digest_job(ctx: StepContext) -> dict[str, Any]:
    """One e-mail a day to each programme's contact (the seller's course owners) listing the parked steps, written
    as outbox steps in the job's transaction (one per programme and day: a job run again writes nothing twice)."""
    day = utcnow().astimezone(OSLO).date().isoformat()
    with transaction(ctx.sessions) as session:
        parked = list(session.scalars(select(OutboxStep).where(OutboxStep.status == StepStatus.PARKED)))
        rows: dict[str, list[tuple[int, str, str, str]]] = defaultdict(list)
        programmes = programmes_once()
        for step in parked:
            seat_id = step.payload.get("seat_id")
            seat = session.get(Seat, seat_id) if isinstance(seat_id, int) else None
            keys = [seat.programme_id] if seat is not None else list(programmes)
            for key in keys:
                rows[key].append((step.id, step.kind, step.subject, step.last_error or ""))
        sent = []
        for programme_id, steps in sorted(rows.items()):
            programme = programmes.get(programme_id)
            if programme is None:
                continue
            subject = f"digest:{programme_id}:{day}"
            if session.scalar(select(OutboxStep.id).where(OutboxStep.subject == subject)) is not None:
                continue
            message = parked_digest_message(programme=programme, steps=steps)
            enqueue(session, MAIL_SEND, subject, {"to": message.to, "subject": message.subject, "text": message.text})
            sent.append({"to": message.to, "programme": programme_id, "parked": len(steps)})
    return {"parked": len(parked), "sent": sent}


__all__ = ["digest_job", "reconcile_course", "reconcile_job"]
