"""Provisioning: make Canvas match a seat (outbox step ``seat.sync``).

A held seat becomes an active StudentEnrollment, limited to the organisation's section, of the person's Canvas
account; a revoked seat's enrolment is concluded. The step is written with every change of the seat and can run any
number of times: each run starts by finding what already exists (DESIGN.md §4, look before create), so a run cut
short — a worker killed, Canvas's answer lost — leaves nothing twice.

A run has three phases, so no database transaction stays open while Canvas is called (on SQLite an open write
transaction would hold up every other writer):
1. read what the seat needs (one short transaction);
2. talk to Canvas (no transaction; the organisation's section is created under a lease on its canvas_section row);
3. write what Canvas said, and mark the step done, in one transaction.

Finding the account (DESIGN.md §3): the seat's SIS id, else its login, else the e-mail address (a login or an
account e-mail equal to it, compared case-insensitively). Several accounts that fit are parked for a person to
resolve; nothing is guessed and nothing is created for them. An account the tool creates gets the login (the seat's
login, else the e-mail) and, where the instance signs people in through a provider such as Feide, that provider.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from course_sync.canvas import CanvasClient, CanvasNotFound, CanvasUser
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.groups.services import sync_groups_of_seat
from kurspakke.licences.models import CanvasSection, CanvasStatus, Seat, SeatKind
from kurspakke.licences.services import audit, decide_revoked_seat
from kurspakke.models import CanvasInstance, CourseLink, IdentityKind, PersonIdentity, utcnow
from kurspakke.outbox.services import StepPark, StepRetry, enqueue

STUDENT = "StudentEnrollment"
TA = "TaEnrollment"
WELCOME_MAIL = "mail.welcome"
SECTION_LEASE_SECONDS = 120.0
ACTOR = "worker"


@dataclass(frozen=True)
class StepContext:
    """What a step handler gets from the worker."""

    sessions: sessionmaker[Session]
    client_for: Callable[[CanvasInstance], CanvasClient]
    worker_id: str
    finish: Callable[[Session], bool]  # marks the step done in the given transaction; False when the lease was lost
    # Sessions that only read (on SQLite they take no write lock, so readers do not queue behind writers).
    reads: sessionmaker[Session] | None = None
    # Writes a follow-up step leased to this worker, which runs it next (see Worker.run_one); None: plain enqueue.
    follow_up: Callable[[Session, str, str, dict[str, object]], None] | None = None

    # Renews this step's lease when it has run a good part of it (None: nothing to renew); raises LeaseLost when
    # another worker has taken the step over, so a slow run never writes to Canvas beside its successor.
    renew: Callable[[], None] | None = None

    def keep_lease(self) -> None:
        if self.renew is not None:
            self.renew()

    def then(self, session: Session, kind: str, subject: str, payload: dict[str, object]) -> None:
        if self.follow_up is None:
            enqueue(session, kind, subject, payload)
        else:
            self.follow_up(session, kind, subject, payload)

    def read(self) -> sessionmaker[Session]:
        return self.reads or self.sessions


@dataclass(frozen=True)
class SeatPlan:
    seat_id: int
    enrolment_type: str
    revoked: bool
    decided: bool
    name: str
    email: str
    sis_user_id: str | None
    login_id: str | None
    organisation_id: int
    section_name: str
    instance: CanvasInstance
    scope: str
    course_id: str
    canvas_user_id: str | None
    created_by_tool: bool
    section_row_id: int | None
    section_id: str | None
    enrollment_id: str | None


def course_for(session: Session, instance: CanvasInstance, programme_id: str) -> CourseLink | None:
    if instance.platform_instance is None:
        return None
    return session.scalars(
        select(CourseLink).where(
            CourseLink.programme_id == programme_id, CourseLink.platform_instance == instance.platform_instance
        )
    ).one_or_none()


def instance_for(session: Session, organisation_id: int, current: int | None, programme_id: str) -> CanvasInstance:
    """The Canvas the organisation's people go to: the one it was provisioned into, else the only registered Canvas
    where the programme is linked to a course. Raises StepRetry while there is none (a course owner has not linked
    the course yet) and StepPark when there are several to choose from."""
    if current is not None:
        instance = session.get(CanvasInstance, current)
        if instance is not None:
            return instance
    candidates = [
        instance
        for instance in session.scalars(select(CanvasInstance).order_by(CanvasInstance.id))
        if course_for(session, instance, programme_id) is not None
    ]
    if not candidates:
        raise StepRetry("no registered Canvas has the programme's course linked yet (kurspakke canvas add, then link)")
    if len(candidates) > 1:
        raise StepPark("the programme is linked on several Canvas instances; choose the organisation's Canvas")
    return candidates[0]


def _plan(session: Session, seat_id: int) -> SeatPlan | None:
    seat = session.get(Seat, seat_id)
    if seat is None:
        return None
    organisation = seat.organisation
    instance = instance_for(
        session, organisation.id, seat.canvas_instance_id or organisation.canvas_instance_id, seat.programme_id
    )
    link = course_for(session, instance, seat.programme_id)
    if link is None or not link.canvas_course_id:
        raise StepRetry("the programme's course on this Canvas is not linked yet")
    assert instance.platform_instance is not None  # course_for found a link through it
    identity = session.scalars(
        select(PersonIdentity).where(
            PersonIdentity.person_id == seat.person_id,
            PersonIdentity.kind == IdentityKind.CANVAS_USER_ID,
            PersonIdentity.scope == instance.platform_instance,
        )
    ).first()
    section = session.scalars(
        select(CanvasSection).where(
            CanvasSection.canvas_instance_id == instance.id,
            CanvasSection.course_id == link.canvas_course_id,
            CanvasSection.organisation_id == organisation.id,
        )
    ).one_or_none()
    session.expunge(instance)
    return SeatPlan(
        seat_id=seat.id,
        enrolment_type=TA if seat.kind is SeatKind.MENTOR else STUDENT,
        revoked=seat.revoked_at is not None,
        decided=seat.revoke_decided_at is not None,
        name=seat.person.name,
        email=seat.person.email,
        sis_user_id=seat.sis_user_id,
        login_id=seat.login_id,
        organisation_id=organisation.id,
        section_name=f"{organisation.name} ({organisation.orgnr})",
        instance=instance,
        scope=instance.platform_instance,
        course_id=link.canvas_course_id,
        canvas_user_id=seat.canvas_user_id or (identity.value if identity else None),
        created_by_tool=bool(identity and identity.created_by_tool),
        section_row_id=section.id if section else None,
        section_id=section.section_id if section else None,
        enrollment_id=seat.canvas_enrollment_id,
    )


# --- finding the account -----------------------------------------------------------------------------------------


def find_account(client: CanvasClient, account_id: int, plan: SeatPlan) -> CanvasUser | None:
    """The one Canvas account that fits the seat, None when none does. Raises StepPark when several fit, or when the
    SIS id the administrator gave names nobody (the tool never creates SIS accounts)."""
    if plan.sis_user_id:
        found = [u for u in client.find_users(account_id, plan.sis_user_id) if u.sis_user_id == plan.sis_user_id]
        if not found:
            raise StepPark(f"no Canvas account has the SIS id {plan.sis_user_id}")
        return _one(found, f"SIS id {plan.sis_user_id}")
    if plan.login_id:
        login = plan.login_id.lower()
        found = [u for u in client.find_users(account_id, plan.login_id) if (u.login_id or "").lower() == login]
        return _one(found, f"login {plan.login_id}") if found else None
    email = plan.email.lower()
    found = [
        u
        for u in client.find_users(account_id, plan.email)
        if (u.login_id or "").lower() == email or (u.email or "").lower() == email
    ]
    return _one(found, f"e-mail {plan.email}") if found else None


def _one(users: list[CanvasUser], what: str) -> CanvasUser:
    ids = sorted({u.id for u in users})
    if len(ids) > 1:
        raise StepPark(f"several Canvas accounts fit the {what}: {', '.join(map(str, ids))}; resolve it in Canvas")
    return users[0]


# --- the section -------------------------------------------------------------------------------------------------


def ensure_section(ctx: StepContext, client: CanvasClient, plan: SeatPlan) -> str:
    """The organisation's section id, found or created once. The creator holds a lease on the canvas_section row;
    a step that finds the lease taken waits (its try does not count) instead of creating a second section."""
    if plan.section_id:
        return plan.section_id
    now = utcnow()
    with transaction(ctx.sessions) as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        session.execute(
            insert(CanvasSection)
            .values(
                canvas_instance_id=plan.instance.id,
                course_id=plan.course_id,
                organisation_id=plan.organisation_id,
                name=plan.section_name,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["canvas_instance_id", "course_id", "organisation_id"])
        )
        row = session.scalars(
            select(CanvasSection).where(
                CanvasSection.canvas_instance_id == plan.instance.id,
                CanvasSection.course_id == plan.course_id,
                CanvasSection.organisation_id == plan.organisation_id,
            )
        ).one()
        if row.section_id:
            return row.section_id
        taken = session.execute(
            update(CanvasSection)
            .where(
                CanvasSection.id == row.id,
                CanvasSection.section_id.is_(None),
                (CanvasSection.locked_until.is_(None)) | (CanvasSection.locked_until < now),
            )
            .values(locked_by=ctx.worker_id, locked_until=now + timedelta(seconds=SECTION_LEASE_SECONDS))
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        row_id = row.id
    if not taken:
        raise StepRetry("the organisation's section is being created by another worker", delay=0.5, count=False)
    try:
        # Look before create: a section of ours made by a run whose answer was lost has this exact name.
        existing = [s for s in client.sections(plan.course_id) if s.name == plan.section_name]
        section = existing[0] if existing else client.create_section(plan.course_id, plan.section_name)
    except BaseException:
        # Give the lease back at once: the next try (this step's or another's) looks again.
        with transaction(ctx.sessions) as session:
            session.execute(
                update(CanvasSection)
                .where(CanvasSection.id == row_id, CanvasSection.locked_by == ctx.worker_id)
                .values(locked_by=None, locked_until=None)
                .execution_options(synchronize_session=False)
            )
        raise
    with transaction(ctx.sessions) as session:
        session.execute(
            update(CanvasSection)
            .where(CanvasSection.id == row_id)
            .values(section_id=str(section.id), locked_by=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )
    return str(section.id)


def forget_section(ctx: StepContext, plan: SeatPlan) -> None:
    """Canvas no longer has the section (deleted by hand): the next run creates it again."""
    with transaction(ctx.sessions) as session:
        session.execute(
            update(CanvasSection)
            .where(
                CanvasSection.canvas_instance_id == plan.instance.id,
                CanvasSection.course_id == plan.course_id,
                CanvasSection.organisation_id == plan.organisation_id,
            )
            .values(section_id=None, locked_by=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )


# --- the step ----------------------------------------------------------------------------------------------------


def sync_seat(ctx: StepContext, payload: dict[str, object]) -> None:
    """Make Canvas match the seat; see the module's docstring."""
    seat_id = payload.get("seat_id")
    if not isinstance(seat_id, int):
        raise StepPark("the step names no seat")
    with transaction(ctx.read()) as session:
        plan = _plan(session, seat_id)
    if plan is None:  # the seat was deleted (a person's data erased): nothing left to do
        with transaction(ctx.sessions) as session:
            ctx.finish(session)
        return
    client = ctx.client_for(plan.instance)
    if plan.revoked:
        _conclude(ctx, client, plan)
    else:
        _enrol(ctx, client, plan, update_account=bool(payload.get("update_account")))


def _enrol(ctx: StepContext, client: CanvasClient, plan: SeatPlan, *, update_account: bool) -> None:
    account_id = plan.instance.account_id
    created = False
    primary_email: str | None = None
    user_id = plan.canvas_user_id
    if user_id is None:
        user = find_account(client, account_id, plan)
        if user is None:
            if plan.instance.auth_provider_id is not None and not plan.login_id:
                raise StepPark(
                    "this Canvas signs people in through a login provider: the seat needs the person's login id"
                )
            ctx.keep_lease()
            user = client.create_user(
                account_id,
                plan.name,
                plan.login_id or plan.email,
                plan.email,
                auth_provider_id=plan.instance.auth_provider_id,
                look_first=False,
                # Canvas's own sign-in: its registration e-mail lets the person choose a password.
                send_registration=plan.instance.auth_provider_id is None,
            )
            created = True
            primary_email = plan.email
        else:
            primary_email = user.email
        user_id = str(user.id)
    elif update_account and plan.created_by_tool:
        # Name changes go to Canvas only for accounts the tool created; a matched account is never edited.
        client.update_user(user_id, name=plan.name, email=plan.email)
    section_id = ensure_section(ctx, client, plan)
    ctx.keep_lease()
    try:
        enrollment = client.enrol(section_id, user_id, plan.enrolment_type, limit_to_section=True)
    except CanvasNotFound:
        forget_section(ctx, plan)
        raise StepRetry("the organisation's section is gone from Canvas; it is created again", delay=0.0) from None
    with transaction(ctx.sessions) as session:
        seat = session.get(Seat, plan.seat_id)
        if seat is None or not ctx.finish(session):
            session.rollback()
            return
        _remember_account(session, seat.person_id, plan.scope, user_id, primary_email, created)
        before = _enrolment_state(seat)
        seat.canvas_instance_id = plan.instance.id
        seat.canvas_user_id = user_id
        seat.canvas_section_id = section_id
        seat.canvas_enrollment_id = str(enrollment.id)
        seat.canvas_status = CanvasStatus.ACTIVE
        seat.canvas_error = None
        seat.canvas_last_activity_at = enrollment.last_activity_at
        seat.canvas_synced_at = utcnow()
        _audit_enrolment(session, seat, "enrolment.active", before, account_created=created)
        if before["canvas_status"] != CanvasStatus.ACTIVE.value:
            sync_groups_of_seat(session, seat)  # a member who waited for the enrolment joins the Canvas group
        organisation = seat.organisation
        if organisation.canvas_instance_id is None:
            organisation.canvas_instance_id = plan.instance.id
        if seat.revoked_at is not None:
            # Revoked while this run enrolled: the revocation's own step (already written) concludes it.
            enqueue(session, "seat.sync", f"seat:{seat.id}", {"seat_id": seat.id})
        elif seat.welcomed_at is None:
            seat.welcomed_at = utcnow()
            ctx.then(session, WELCOME_MAIL, f"mail:seat:{seat.id}", {"seat_id": seat.id})


def _remember_account(
    session: Session, person_id: int, scope: str, user_id: str, email: str | None, created: bool
) -> None:
    """Record the person's Canvas user id under the scope their launches use (DESIGN.md §5), with the primary
    e-mail Canvas reported. An account already recorded for someone else is parked, never shared."""
    holder = session.scalars(
        select(PersonIdentity).where(
            PersonIdentity.kind == IdentityKind.CANVAS_USER_ID,
            PersonIdentity.scope == scope,
            PersonIdentity.value == user_id,
        )
    ).one_or_none()
    if holder is not None:
        if holder.person_id != person_id:
            raise StepPark(f"Canvas account {user_id} already belongs to another person in kurspakke")
        return
    session.add(
        PersonIdentity(
            person_id=person_id,
            kind=IdentityKind.CANVAS_USER_ID,
            scope=scope,
            value=user_id,
            email=email,
            created_by_tool=created,
        )
    )
    session.flush()


def _conclude(ctx: StepContext, client: CanvasClient, plan: SeatPlan) -> None:
    """Conclude the revoked seat's enrolment and, when the revocation waits for it, decide whether the person had
    started (any Canvas activity or a submission) — then the seat stays taken; else it returns to the pool."""
    user_id = plan.canvas_user_id
    if user_id is None:
        # Nothing recorded; a run whose answer was lost may still have made the account and enrolment.
        try:
            user = find_account(client, plan.instance.account_id, plan)
        except StepPark:  # no account, or several: none of them is one the tool enrolled
            user = None
        user_id = str(user.id) if user else None
    started = False
    ours = []
    if user_id is not None:
        mine = [
            e
            for e in client.enrollments(plan.course_id, user_id=user_id, states=("active", "invited", "completed"))
            if e.type == plan.enrolment_type and (plan.section_id is None or str(e.section_id) == plan.section_id)
        ]
        ours = [e for e in mine if e.state in ("active", "invited")]
        started = any(e.last_activity_at is not None for e in mine)
        if ours and not plan.decided and not started and plan.enrolment_type == STUDENT:
            # Read while the person is still a student of the course: Canvas answers 401 for anyone else.
            started = any(s.submitted_at is not None for s in client.submissions(plan.course_id, student_ids=[user_id]))
    if not plan.decided:
        # Decided before anything is concluded: a run that concluded but lost its answer must not find, on its
        # retry, an enrolment with no activity left to read and return a used seat to the pool.
        with transaction(ctx.sessions) as session:
            decide_revoked_seat(session, plan.seat_id, started=started, actor=ACTOR)
    ctx.keep_lease()
    for enrollment in ours:
        client.conclude(plan.course_id, enrollment.id)
    with transaction(ctx.sessions) as session:
        seat = session.get(Seat, plan.seat_id)
        if seat is None or not ctx.finish(session):
            session.rollback()
            return
        before = _enrolment_state(seat)
        seat.canvas_status = CanvasStatus.CONCLUDED
        seat.canvas_error = None
        seat.canvas_synced_at = utcnow()
        _audit_enrolment(session, seat, "enrolment.conclude", before, concluded=[e.id for e in ours])
        sync_groups_of_seat(session, seat)


def _enrolment_state(seat: Seat) -> dict[str, object]:
    return {
        "canvas_status": seat.canvas_status.value,
        "canvas_user_id": seat.canvas_user_id,
        "canvas_section_id": seat.canvas_section_id,
        "canvas_enrollment_id": seat.canvas_enrollment_id,
        "canvas_error": seat.canvas_error,
    }


def _audit_enrolment(session: Session, seat: Seat, action: str, before: dict[str, object], **extra: object) -> None:
    """The enrolment's change in the audit log (DESIGN.md §3: every change is audited); skipped when a run found
    everything as it was."""
    after = _enrolment_state(seat)
    if after != before:
        audit(
            session,
            actor=ACTOR,
            action=action,
            entity_type="seat",
            entity_id=seat.id,
            before=before,
            after=after | extra,
        )


def mark_failed(session: Session, payload: dict[str, object], error: str) -> None:
    """A parked seat step: the seat shows "feilet: …" to its administrator."""
    seat_id = payload.get("seat_id")
    seat = session.get(Seat, seat_id) if isinstance(seat_id, int) else None
    if seat is not None:
        before = _enrolment_state(seat)
        seat.canvas_status = CanvasStatus.FAILED
        seat.canvas_error = error[:2000]
        _audit_enrolment(session, seat, "enrolment.fail", before)


def client_factory(encryptor: Encryptor, **options: float) -> Callable[[CanvasInstance], CanvasClient]:
    """Clients per Canvas instance, made once per worker (each keeps its own view of Canvas's rate limit)."""
    clients: dict[int, CanvasClient] = {}
    lock = threading.Lock()

    def client_for(instance: CanvasInstance) -> CanvasClient:
        with lock:  # worker threads share the clients (and each client's limit of calls in flight)
            client = clients.get(instance.id)
            if client is None:
                token = encryptor.decrypt(instance.token_encrypted).decode()
                client = clients[instance.id] = CanvasClient(instance.api_url, token, **options)  # type: ignore[arg-type]
            return client

    return client_for


__all__ = [
    "StepContext",
    "client_factory",
    "course_for",
    "ensure_section",
    "find_account",
    "instance_for",
    "mark_failed",
    "sync_seat",
]
