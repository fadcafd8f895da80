"""Who is launching, and with what authority — decided from the tool's own records on every launch.

Participants, mentors and licence administrators come from ProgrammeRole rows. Course owners are the Instructors
(the plain membership role, never its TeachingAssistant sub-role) and Administrators of the linked course, as
the platform's signed roles claim says.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kurspakke.models import (
    CourseLink,
    IdentityKind,
    Organisation,
    Person,
    PersonIdentity,
    ProgrammeRole,
    ProgrammeRoleKind,
    UnlicensedLaunch,
    utcnow,
)
from kurspakke.programmes import Programme

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
ROLE_INSTRUCTOR = LIS + "membership#Instructor"
ROLE_TEACHING_ASSISTANT = LIS + "membership/Instructor#TeachingAssistant"
ROLE_LEARNER = LIS + "membership#Learner"
OWNER_ADMIN_ROLES = frozenset(
    {LIS + "membership#Administrator", LIS + "institution/person#Administrator", LIS + "system/person#Administrator"}
)
# LTI 1.3 still permits the short context role names of LTI 1.1.
_SHORT_ROLES = {
    "Instructor": ROLE_INSTRUCTOR,
    "Learner": ROLE_LEARNER,
    "Administrator": LIS + "membership#Administrator",
}


def normalise_roles(roles: Iterable[str]) -> frozenset[str]:
    return frozenset(_SHORT_ROLES.get(r, r) for r in roles)


def is_course_owner_role(roles: Iterable[str]) -> bool:
    """Instructor without the TeachingAssistant sub-role, or an Administrator."""
    found = normalise_roles(roles)
    if found & OWNER_ADMIN_ROLES:
        return True
    return ROLE_INSTRUCTOR in found and ROLE_TEACHING_ASSISTANT not in found


@dataclass(frozen=True)
class Launcher:
    """The validated facts of a launch that identify a person (from a signed id_token)."""

    issuer: str
    sub: str
    platform_instance: str
    roles: frozenset[str]
    context_id: str | None
    name: str = ""
    email: str = ""
    canvas_user_id: str | None = None


@dataclass
class Access:
    course_link: CourseLinkInfo | None
    course_owner: bool
    person: PersonInfo | None
    roles: list[ProgrammeRoleKind] = field(default_factory=list)
    organisations: list[OrganisationInfo] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return self.course_owner or bool(self.roles)


class LinkError(ValueError):
    """The course cannot be linked to that programme; the message says why."""


def find_course_link(session: Session, platform_instance: str, context_id: str | None) -> CourseLink | None:
    if not context_id:
        return None
    return session.scalars(
        select(CourseLink).where(CourseLink.platform_instance == platform_instance, CourseLink.context_id == context_id)
    ).one_or_none()


@dataclass(frozen=True)
class CourseLinkInfo:
    """A course link as launches need it, detached from any session (safe to share between requests)."""

    id: int
    programme_id: str
    platform_instance: str
    context_id: str
    canvas_course_id: str | None
    title: str
    created_at: datetime


class CourseLinkCache:
    """Per-process cache of course links found (never of links missing, so a newly linked course is seen at once
    by every process). Links are only ever added, so a cached link cannot go stale within ``ttl_seconds``."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[tuple[str, str], tuple[float, CourseLinkInfo]] = {}

    def get(self, session: Session, platform_instance: str, context_id: str | None) -> CourseLinkInfo | None:
        if not context_id:
            return None
        key = (platform_instance, context_id)
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        row = find_course_link(session, platform_instance, context_id)
        if row is None:
            return None
        info = CourseLinkInfo(
            row.id,
            row.programme_id,
            row.platform_instance,
            row.context_id,
            row.canvas_course_id,
            row.title,
            row.created_at,
        )
        self._entries[key] = (time.monotonic(), info)
        return info


def link_course(
    session: Session,
    programme: Programme,
    *,
    platform_instance: str,
    context_id: str,
    canvas_course_id: str | None,
    title: str,
    linked_by_sub: str,
) -> CourseLink:
    """Link a course to a programme. Raises LinkError when the course is already linked, or the programme is
    already linked to another course of this Canvas instance. Flushes; the caller commits."""
    if find_course_link(session, platform_instance, context_id) is not None:
        raise LinkError("course_already_linked")
    taken = session.scalars(
        select(CourseLink).where(
            CourseLink.platform_instance == platform_instance, CourseLink.programme_id == programme.id
        )
    ).first()
    if taken is not None:
        raise LinkError("programme_linked_elsewhere")
    link = CourseLink(
        programme_id=programme.id,
        platform_instance=platform_instance,
        context_id=context_id,
        canvas_course_id=canvas_course_id,
        title=title[:255],
        linked_by_person_sub=linked_by_sub,
    )
    try:
        with session.begin_nested():
            session.add(link)
            session.flush()
    except IntegrityError as exc:  # a concurrent link won the race
        raise LinkError("course_already_linked") from exc
    return link


@dataclass(frozen=True)
class PersonInfo:
    id: int
    name: str
    email: str


@dataclass(frozen=True)
class OrganisationInfo:
    id: int
    name: str
    orgnr: str


_ROLE_COLUMNS = (
    ProgrammeRole.role,
    Organisation.id.label("org_id"),
    Organisation.name.label("org_name"),
    Organisation.orgnr.label("org_orgnr"),
)


def _with_roles(stmt: Any) -> Any:
    return stmt.outerjoin(
        ProgrammeRole,
        and_(ProgrammeRole.person_id == Person.id, ProgrammeRole.programme_id == bindparam("programme_id")),
    ).outerjoin(Organisation, Organisation.id == ProgrammeRole.organisation_id)


# Built once: a launch runs these on every request, and building a statement costs more than running it.
_PERSON_BY_IDENTITY = _with_roles(
    select(PersonIdentity.kind, Person.id, Person.name, Person.email, *_ROLE_COLUMNS)
    .join(Person, Person.id == PersonIdentity.person_id)
    .where(
        or_(
            and_(
                PersonIdentity.kind == IdentityKind.LTI_SUB,
                PersonIdentity.scope == bindparam("issuer"),
                PersonIdentity.value == bindparam("sub"),
            ),
            and_(
                PersonIdentity.kind == IdentityKind.CANVAS_USER_ID,
                PersonIdentity.scope == bindparam("instance"),
                PersonIdentity.value == bindparam("canvas_user_id"),
            ),
        )
    )
)
_PERSON_BY_ID = _with_roles(
    select(Person.id, Person.name, Person.email, *_ROLE_COLUMNS).where(Person.id == bindparam("person_id"))
)


def _roles_of(rows: Iterable[Any]) -> tuple[list[ProgrammeRoleKind], list[OrganisationInfo]]:
    roles: set[ProgrammeRoleKind] = set()
    organisations: dict[int, OrganisationInfo] = {}
    for row in rows:
        if row.role is None:
            continue
        roles.add(row.role)
        organisations[row.org_id] = OrganisationInfo(row.org_id, row.org_name, row.org_orgnr)
    order = list(ProgrammeRoleKind)
    return sorted(roles, key=order.index), [organisations[k] for k in sorted(organisations)]


def person_access(
    session: Session, person_id: int, programme_id: str
) -> tuple[PersonInfo | None, list[ProgrammeRoleKind], list[OrganisationInfo]]:
    """The person with this id and the roles and organisations they hold in the programme (one query)."""
    rows = session.connection().execute(_PERSON_BY_ID, {"person_id": person_id, "programme_id": programme_id}).all()
    if not rows:
        return None, [], []
    return (PersonInfo(rows[0].id, rows[0].name, rows[0].email), *_roles_of(rows))


def match_person(
    session: Session, launcher: Launcher, programme_id: str
) -> tuple[PersonInfo | None, list[ProgrammeRoleKind], list[OrganisationInfo]]:
    """The person launching, with their roles and organisations in ``programme_id``.

    Canvas user id recorded at provisioning, else the LTI sub from an earlier launch, else a unique e-mail. The
    usual case is one query: both identities, the person, and their roles joined. On a match, the identities this
    launch carries are recorded so the next launch matches directly. An e-mail shared by several people matches
    no one (never guessed).
    """
    rows = (
        session.connection()
        .execute(
            _PERSON_BY_IDENTITY,
            {
                "issuer": launcher.issuer,
                "sub": launcher.sub,
                "instance": launcher.platform_instance,
                # A Canvas user id never matches when the launch carries none.
                "canvas_user_id": launcher.canvas_user_id or "",
                "programme_id": programme_id,
            },
        )
        .all()
    )
    found = {row.kind: row.id for row in rows}
    person_id = found.get(IdentityKind.CANVAS_USER_ID) or found.get(IdentityKind.LTI_SUB)
    if person_id is None and launcher.email:
        candidates = session.scalars(
            select(Person.id).where(func.lower(Person.email) == launcher.email.strip().lower()).limit(2)
        ).all()
        person_id = candidates[0] if len(candidates) == 1 else None
    if person_id is None:
        return None, [], []
    wanted = [(IdentityKind.LTI_SUB, launcher.issuer, launcher.sub)]
    if launcher.canvas_user_id:
        wanted.append((IdentityKind.CANVAS_USER_ID, launcher.platform_instance, launcher.canvas_user_id))
    for kind, scope, value in wanted:
        if kind not in found:
            _remember(session, person_id, kind, scope, value)
    mine = [row for row in rows if row.id == person_id]
    if not mine:  # matched by e-mail
        return person_access(session, person_id, programme_id)
    return (PersonInfo(mine[0].id, mine[0].name, mine[0].email), *_roles_of(mine))


def _remember(session: Session, person_id: int, kind: IdentityKind, scope: str, value: str) -> None:
    try:
        with session.begin_nested():
            session.add(PersonIdentity(person_id=person_id, kind=kind, scope=scope, value=value))
            session.flush()
    except IntegrityError:
        pass  # recorded by a concurrent launch of the same person


def resolve_access(session: Session, launcher: Launcher, links: CourseLinkCache) -> Access:
    """Decide what the launcher may do in this course. Flushes (identities, unlicensed list); the caller commits."""
    link = links.get(session, launcher.platform_instance, launcher.context_id)
    owner = is_course_owner_role(launcher.roles)
    if link is None:
        return Access(course_link=None, course_owner=owner, person=None)
    person, roles, orgs = match_person(session, launcher, link.programme_id)
    access = Access(course_link=link, course_owner=owner, person=person, roles=roles, organisations=orgs)
    if not access.known:
        record_unlicensed(session, link, launcher)
    return access


def record_unlicensed(session: Session, link: CourseLinkInfo, launcher: Launcher) -> None:
    row = session.scalars(
        select(UnlicensedLaunch).where(
            UnlicensedLaunch.course_link_id == link.id,
            UnlicensedLaunch.issuer == launcher.issuer,
            UnlicensedLaunch.sub == launcher.sub,
        )
    ).one_or_none()
    if row is None:
        try:
            with session.begin_nested():
                session.add(
                    UnlicensedLaunch(
                        course_link_id=link.id,
                        issuer=launcher.issuer,
                        sub=launcher.sub,
                        name=launcher.name[:255],
                        email=launcher.email[:320],
                        canvas_user_id=launcher.canvas_user_id,
                    )
                )
                session.flush()
        except IntegrityError:
            pass
        return
    row.last_seen = utcnow()
    row.launches += 1
    row.name = launcher.name[:255] or row.name
    row.email = launcher.email[:320] or row.email


def unlicensed_users(session: Session, link: CourseLinkInfo) -> list[UnlicensedLaunch]:
    return list(
        session.scalars(
            select(UnlicensedLaunch)
            .where(UnlicensedLaunch.course_link_id == link.id)
            .order_by(UnlicensedLaunch.last_seen.desc())
        )
    )
