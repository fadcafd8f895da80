"""Test data built through the same services the product uses."""

from __future__ import annotations

from sqlalchemy.orm import Session

from canvas_sim import SimPlatform
from kurspakke.models import CourseLink, IdentityKind, Organisation, Person, ProgrammeRoleKind
from kurspakke.services.people import add_identity, get_or_create_organisation, get_or_create_person, grant_role
from kurspakke.services.platforms import platform_instance

PROGRAMME = "lindrende-behandling"


def sim_instance(sim: SimPlatform) -> str:
    """The scope the tool stores the simulator's course links and Canvas user ids under."""
    return platform_instance(sim.issuer, sim.config.platform_guid)


def link_sim_course(session: Session, sim: SimPlatform, programme_id: str = PROGRAMME) -> CourseLink:
    link = CourseLink(
        programme_id=programme_id,
        platform_instance=sim_instance(sim),
        context_id=sim.config.context_id,
        canvas_course_id=str(sim.config.course_id),
        title=sim.config.course_title,
    )
    session.add(link)
    session.flush()
    return link


def organisation(session: Session, name: str = "Oslo kommune", orgnr: str = "958935420") -> Organisation:
    return get_or_create_organisation(session, name=name, orgnr=orgnr)


def person_for(
    session: Session,
    sim: SimPlatform,
    user_key: str,
    *roles: ProgrammeRoleKind,
    org: Organisation | None = None,
    with_canvas_id: bool = True,
) -> Person:
    user = sim.user(user_key)
    person = get_or_create_person(session, name=user.name, email=user.email)
    if with_canvas_id:
        add_identity(session, person, IdentityKind.CANVAS_USER_ID, sim_instance(sim), str(user.canvas_user_id))
    org = org or organisation(session)
    for role in roles:
        grant_role(session, person, programme_id=PROGRAMME, organisation=org, role=role)
    return person
