"""Demo data for `make run`: the simulator registered as a platform, its course linked to the main programme,
one municipality, and a person for each role the tool records. Idempotent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.models import (
    CanvasInstance,
    CourseLink,
    IdentityKind,
    Meeting,
    MentorGroup,
    OrderSource,
    Organisation,
    Person,
    ProgrammeRoleKind,
    utcnow,
)
from kurspakke.programmes import Programme
from kurspakke.services.access import find_course_link
from kurspakke.services.people import add_identity, get_or_create_organisation, get_or_create_person, grant_role
from kurspakke.services.platforms import add_platform

DEMO_PROGRAMME = "lindrende-behandling"
DEMO_ORGANISATION = ("Oslo kommune", "958935420")
DEMO_SEATS = 20
# Which simulator user holds which of the tool's own roles.
DEMO_ROLES = {
    "deltaker": [ProgrammeRoleKind.PARTICIPANT],
    "mentor": [ProgrammeRoleKind.MENTOR],
    "lisensadministrator": [ProgrammeRoleKind.LICENCE_ADMIN],
}


@dataclass(frozen=True)
class DemoPlatform:
    issuer: str
    client_id: str
    deployment_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    frame_origin: str
    platform_instance: str
    context_id: str
    canvas_course_id: str
    course_title: str


@dataclass(frozen=True)
class DemoUser:
    key: str
    name: str
    email: str
    canvas_user_id: int
    sub: str


def load_demo(
    session: Session,
    platform: DemoPlatform,
    users: Iterable[DemoUser],
    *,
    canvas_api_url: str | None = None,
    canvas_token_encrypted: bytes | None = None,
) -> None:
    """Flushes; the caller commits. With ``canvas_api_url`` and the encrypted token, the simulator's REST half is
    registered as the Canvas people are provisioned into (as `kurspakke canvas add` would), the municipality has
    bought DEMO_SEATS seats, and the demo participant holds one (the worker enrols them in the municipality's
    section)."""
    add_platform(
        session,
        issuer=platform.issuer,
        client_id=platform.client_id,
        deployment_ids=[platform.deployment_id],
        auth_login_url=platform.auth_login_url,
        auth_token_url=platform.auth_token_url,
        key_set_url=platform.key_set_url,
        frame_origins=[platform.frame_origin],
    )
    if find_course_link(session, platform.platform_instance, platform.context_id) is None:
        session.add(
            CourseLink(
                programme_id=DEMO_PROGRAMME,
                platform_instance=platform.platform_instance,
                context_id=platform.context_id,
                canvas_course_id=platform.canvas_course_id,
                title=platform.course_title,
            )
        )
    org = get_or_create_organisation(session, name=DEMO_ORGANISATION[0], orgnr=DEMO_ORGANISATION[1])
    participants: list[Person] = []
    mentors: list[Person] = []
    for user in users:
        roles = DEMO_ROLES.get(user.key)
        if not roles:
            continue
        person = get_or_create_person(session, name=user.name, email=user.email)
        add_identity(session, person, IdentityKind.CANVAS_USER_ID, platform.platform_instance, str(user.canvas_user_id))
        for role in roles:
            grant_role(session, person, programme_id=DEMO_PROGRAMME, organisation=org, role=role)
        if ProgrammeRoleKind.PARTICIPANT in roles:
            participants.append(person)
        if ProgrammeRoleKind.MENTOR in roles:
            mentors.append(person)
    session.flush()
    if canvas_api_url and canvas_token_encrypted:
        _demo_licences(session, platform, org, participants, canvas_api_url, canvas_token_encrypted)
        _demo_group(session, org, participants, mentors)


def _demo_group(session: Session, org: Organisation, participants: list[Person], mentors: list[Person]) -> None:
    """A mentor group with the demo participant and mentor, its introduction in a week and its first session held
    yesterday, so the mentor can record attendance at once. Only when the organisation has no group yet."""
    from kurspakke.groups import services as groups
    from kurspakke.licences.seating import PersonInput, active_seat, appoint_mentor
    from kurspakke.meetings.services import Plan, schedule
    from kurspakke.programmes import load_programmes

    programme = load_programmes()[DEMO_PROGRAMME]
    if groups.groups_of(session, org, DEMO_PROGRAMME):
        return
    for mentor in mentors:
        if active_seat(session, org, DEMO_PROGRAMME, mentor) is None:
            appoint_mentor(session, org, programme, PersonInput(mentor.name, mentor.email, "sykehjem"), actor="demo")
    group = groups.create_group(session, org, DEMO_PROGRAMME, "Gruppe 1", actor="demo")
    seats = [seat for p in participants if (seat := active_seat(session, org, DEMO_PROGRAMME, p)) is not None]
    groups.add_members(session, group, seats, actor="demo")
    for mentor in mentors:
        groups.add_mentor(session, group, mentor, actor="demo")
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    held = schedule(
        session,
        programme,
        "samling-1",
        Plan(now - timedelta(days=1), 120, "physical", place="Møterom 2, Rådhuset"),
        group=group,
        actor="demo",
        now=now - timedelta(days=2),
    )
    schedule(
        session,
        programme,
        "intro",
        Plan(now + timedelta(days=7), 90, "digital", video_url="https://meet.example.invalid/intro"),
        group=group,
        actor="demo",
        now=now,
    )
    session.flush()
    _demo_stages(session, org, programme, group, held, mentors, now)
    _demo_certificate(session, org, programme, mentors, now)


# Colleagues of the demo participant at different stages: one module done, two, and one who has done nothing yet
# (behind the programme's pace), so the mentor's matrix and the administrator's funnel have something to show.
DEMO_COLLEAGUES = (
    ("Sindre Vik", "sindre.vik@demo.invalid", "Hjemmetjenesten", 1),
    ("Maria Haugen", "maria.haugen@demo.invalid", "Sykehjemmet", 2),
    ("Jonas Berg", "jonas.berg@demo.invalid", "Sykehjemmet", 0),
)


def _demo_stages(
    session: Session,
    org: Organisation,
    programme: Programme,
    group: MentorGroup,
    held: Meeting,
    mentors: list[Person],
    now: datetime,
) -> None:
    from kurspakke.groups import services as groups
    from kurspakke.licences.seating import PersonInput, assign_person
    from kurspakke.meetings.services import Mark, record_attendance
    from kurspakke.progress.models import SOURCE_CANVAS_SYNC, ModuleCompletion

    seats = []
    for name, email, workplace, done in DEMO_COLLEAGUES:
        seat = assign_person(session, org, programme, PersonInput(name, email, workplace), actor="demo")
        seat.assigned_at = now - timedelta(days=70)  # ten weeks in: behind unless two modules are done
        seats.append(seat)
        for n, module in enumerate(programme.modules[:done]):
            session.add(
                ModuleCompletion(
                    person_id=seat.person_id,
                    programme_id=programme.id,
                    module_id=module.id,
                    completed_at=now - timedelta(days=40 - 14 * n),
                    score=1.0,
                    source=SOURCE_CANVAS_SYNC,
                )
            )
    groups.add_members(session, group, seats, actor="demo")
    if mentors:
        marks = [Mark(seat, done > 0) for seat, (_, _, _, done) in zip(seats, DEMO_COLLEAGUES, strict=True)]
        record_attendance(session, held, marks, recorder=mentors[0], actor="demo", now=now)
    session.flush()


DEMO_GRADUATE = ("Åse Ødegård-Bjørnæs", "ase.odegard@demo.invalid")


def _demo_certificate(
    session: Session, org: Organisation, programme: Programme, mentors: list[Person], now: datetime
) -> None:
    """Last spring's group: a participant who did everything, with her course certificate (and the demo mentor's,
    who led that group's sessions), so the certificate pages and /verify have something to show."""
    from kurspakke.certificates import services as certificates
    from kurspakke.groups import services as groups
    from kurspakke.licences.seating import PersonInput, assign_person
    from kurspakke.meetings.services import Mark, Plan, record_attendance, schedule
    from kurspakke.progress.models import SOURCE_CANVAS_SYNC, ModuleCompletion

    if not mentors:
        return
    leader = mentors[0]
    seat = assign_person(session, org, programme, PersonInput(*DEMO_GRADUATE, "Hjemmetjenesten"), actor="demo")
    group = groups.create_group(session, org, programme.id, "Gruppe våren", actor="demo")
    groups.add_members(session, group, [seat], actor="demo")
    for mentor in mentors:
        groups.add_mentor(session, group, mentor, actor="demo")
    start = now - timedelta(days=200)
    for n, module in enumerate(programme.modules):
        session.add(
            ModuleCompletion(
                person_id=seat.person_id,
                programme_id=programme.id,
                module_id=module.id,
                completed_at=start + timedelta(days=21 * n + 20),
                score=1.0,
                source=SOURCE_CANVAS_SYNC,
            )
        )
    for n, required in enumerate(s for s in programme.sessions if s.required):
        when = start + timedelta(days=21 * n + 1)
        plan = Plan(when, 90, "physical", place="Møterom 2, Rådhuset")
        meeting = schedule(session, programme, required.id, plan, group=group, actor="demo", now=when)
        record_attendance(session, meeting, [Mark(seat, True)], recorder=leader, actor="demo", now=when)
    session.flush()
    certificates.evaluate(session, programme, [seat.person_id, leader.id], actor="demo")


def _demo_licences(
    session: Session,
    platform: DemoPlatform,
    org: Organisation,
    participants: list[Person],
    api_url: str,
    token_encrypted: bytes,
) -> None:
    from kurspakke.licences.seating import PersonInput, active_seat, assign_person
    from kurspakke.licences.services import confirm_order, create_order, seat_pool
    from kurspakke.programmes import load_programmes

    if session.scalars(select(CanvasInstance).where(CanvasInstance.api_url == api_url)).first() is None:
        session.add(
            CanvasInstance(
                api_url=api_url,
                account_id=1,
                token_encrypted=token_encrypted,
                platform_instance=platform.platform_instance,
            )
        )
    programme = load_programmes()[DEMO_PROGRAMME]
    if seat_pool(session, org, DEMO_PROGRAMME) is None:
        order = create_order(
            session,
            organisation=org,
            programme=programme,
            quantity=DEMO_SEATS,
            source=OrderSource.MANUAL,
            actor="demo",
            invoice_reference="DEMO-1",
        )
        confirm_order(session, order, actor="demo")
    for participant in participants:
        if active_seat(session, org, DEMO_PROGRAMME, participant) is None:
            raw = PersonInput(participant.name, participant.email, "sykehjem")
            assign_person(session, org, programme, raw, actor="demo")
    session.flush()
