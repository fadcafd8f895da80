"""Demo data for `make run`: the simulator registered as a platform, its course linked to the main programme,
one municipality, and a person for each role the tool records. Idempotent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from kurspakke.models import CourseLink, IdentityKind, ProgrammeRoleKind
from kurspakke.services.access import find_course_link
from kurspakke.services.people import add_identity, get_or_create_organisation, get_or_create_person, grant_role
from kurspakke.services.platforms import add_platform

DEMO_PROGRAMME = "lindrende-behandling"
DEMO_ORGANISATION = ("Oslo kommune", "958935420")
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


def load_demo(session: Session, platform: DemoPlatform, users: Iterable[DemoUser]) -> None:
    """Flushes; the caller commits."""
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
    for user in users:
        roles = DEMO_ROLES.get(user.key)
        if not roles:
            continue
        person = get_or_create_person(session, name=user.name, email=user.email)
        add_identity(session, person, IdentityKind.CANVAS_USER_ID, platform.platform_instance, str(user.canvas_user_id))
        for role in roles:
            grant_role(session, person, programme_id=DEMO_PROGRAMME, organisation=org, role=role)
    session.flush()
