"""Who is launching, and with what authority — decided from the tool's own records on every launch.

Participants, mentors and licence administrators come from ProgrammeRole rows. Course owners are the Instructors
(the plain membership role, never its TeachingAssistant sub-role) and Administrators of the linked course, as
the platform's signed roles claim says.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_, select
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
    by every process). A link removed by the operator (`kurspakke course unlink`) is still seen by a process
    that cached it, for up to ``ttl_seconds``."""

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


def unlink_course(session: Session, link_id: int) -> CourseLink:
    """Remove a course's link to its programme (the operator's remedy for a course linked by mistake, e.g. a
    teacher's sandbox that took the programme first); its unlicensed list goes with it. Web processes stop
    seeing the link within the course-link cache's lifetime. Raises LinkError when there is no such link."""
    link = session.get(CourseLink, link_id)
    if link is None:
        raise LinkError("course_link_unknown")
    session.delete(link)
    session.flush()
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


PersonMatch = tuple[PersonInfo | None, list[ProgrammeRoleKind], list[OrganisationInfo]]


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


def person_query(launcher: Launcher, programme_id: str) -> tuple[Select[Any], dict[str, Any]]:
    """The one query that finds the launcher by identity (the LTI sub, and the Canvas user id where the launch
    carries one), with the person's roles and organisations in the programme. Read-only: a launch runs it in the
    same round trip as recording itself (see kurspakke/services/lti_state.py)."""
    return _PERSON_BY_IDENTITY, {
        "issuer": launcher.issuer,
        "sub": launcher.sub,
        "instance": launcher.platform_instance,
        # A Canvas user id never matches when the launch carries none.
        "canvas_user_id": launcher.canvas_user_id or "",
        "programme_id": programme_id,
    }


def _matched(rows: Sequence[Any]) -> tuple[dict[IdentityKind, int], int | None]:
    """The identities found, and the person they name: the Canvas user id recorded at provisioning wins over
    the LTI sub of an earlier launch."""
    found = {row.kind: row.id for row in rows}
    return found, found.get(IdentityKind.CANVAS_USER_ID) or found.get(IdentityKind.LTI_SUB)


def _person_of(rows: Sequence[Any], person_id: int) -> PersonMatch:
    mine = [row for row in rows if row.id == person_id]
    return (PersonInfo(mine[0].id, mine[0].name, mine[0].email), *_roles_of(mine))


def known_person(session: Session, launcher: Launcher, programme_id: str) -> PersonMatch:
    """The person of an earlier launch, by the identities that launch recorded (reads only)."""
    rows = session.connection().execute(*person_query(launcher, programme_id)).all()
    _, person_id = _matched(rows)
    return (None, [], []) if person_id is None else _person_of(rows, person_id)


def match_person(
    session: Session, launcher: Launcher, programme_id: str, rows: Sequence[Any] | None = None
) -> PersonMatch:
    """The person launching, with their roles and organisations in ``programme_id``.

    Canvas user id recorded at provisioning, else the LTI sub from an earlier launch, else a unique e-mail of a
    person not yet tied to any account (see _unclaimed_by_email).
    ``rows`` are those of person_query, when the caller has run it already (the launch does, in the statement
    that records it). On a match, the identities this launch carries are recorded so the next launch, and every
    later request of this one, matches directly. An e-mail shared by several people matches no one (never
    guessed).
    """
    if rows is None:
        rows = session.connection().execute(*person_query(launcher, programme_id)).all()
    found, person_id = _matched(rows)
    if person_id is None and launcher.email:
        person_id = _unclaimed_by_email(session, launcher.email)
    if person_id is None:
        return None, [], []
    wanted = [(IdentityKind.LTI_SUB, launcher.issuer, launcher.sub)]
    if launcher.canvas_user_id:
        wanted.append((IdentityKind.CANVAS_USER_ID, launcher.platform_instance, launcher.canvas_user_id))
    missing = [(kind, scope, value) for kind, scope, value in wanted if kind not in found]
    if missing and not _remember(session, person_id, missing):
        # Someone recorded one of these identities meanwhile (a concurrent launch, or provisioning, perhaps for
        # another person record): nothing of this launch's was kept; decide again from what is stored now, as
        # every later request will.
        return known_person(session, launcher, programme_id)
    if person_id not in found.values():
        # Matched by e-mail: the identities just recorded name the person now.
        return known_person(session, launcher, programme_id)
    return _person_of(rows, person_id)


def _unclaimed_by_email(session: Session, email: str) -> int | None:
    """The one person with this e-mail, if nobody has launched as them and they hold no Canvas user id yet.

    E-mail is the weakest match (a platform's claim, often unverified, and any registered platform can send any
    address), so it only ever finds a person the tool has not tied to an account: once a person has an identity
    (a sub from a launch, a Canvas user id from provisioning), only that identity opens their records. Several
    people with one address match no one (never guessed)."""
    # Locked until this launch commits, so two first launches with one e-mail cannot both claim the person: the
    # second waits, then finds the first one's identity. (SQLite serialises writers anyway.)
    candidates = session.scalars(
        select(Person.id).where(func.lower(Person.email) == email.strip().lower()).limit(2).with_for_update()
    ).all()
    if len(candidates) != 1:
        return None
    claimed = session.scalar(select(PersonIdentity.id).where(PersonIdentity.person_id == candidates[0]).limit(1))
    return None if claimed is not None else candidates[0]


def _remember(session: Session, person_id: int, identities: Sequence[tuple[IdentityKind, str, str]]) -> bool:
    """Record the person's identities, all or none; False when one was recorded concurrently (by whomever), so
    that a person is never left holding half of an account."""
    try:
        with session.begin_nested():
            session.add_all(
                PersonIdentity(person_id=person_id, kind=kind, scope=scope, value=value)
                for kind, scope, value in identities
            )
            session.flush()
    except IntegrityError:
        return False
    return True


def resolve_access(
    session: Session, launcher: Launcher, link: CourseLinkInfo | None, rows: Sequence[Any] | None = None
) -> Access:
    """Decide what the launcher may do in the course ``link`` (None: not linked). ``rows`` as for match_person.
    Flushes (identities, unlicensed list); the caller commits."""
    owner = is_course_owner_role(launcher.roles)
    if link is None:
        return Access(course_link=None, course_owner=owner, person=None)
    person, roles, orgs = match_person(session, launcher, link.programme_id, rows)
    access = Access(course_link=link, course_owner=owner, person=person, roles=roles, organisations=orgs)
    if not access.known:
        record_unlicensed(session, link, launcher)
    return access


def _still_linked(link: CourseLinkInfo) -> Select[Any]:
    """The id of this very link if it still exists. A cached CourseLinkInfo can outlive its link (`course
    unlink`), and SQLite may give the next link the freed id: the id alone could then name another course."""
    return select(CourseLink.id).where(
        CourseLink.id == link.id,
        CourseLink.platform_instance == link.platform_instance,
        CourseLink.context_id == link.context_id,
    )


def record_unlicensed(session: Session, link: CourseLinkInfo, launcher: Launcher) -> None:
    row = session.scalars(
        select(UnlicensedLaunch).where(
            UnlicensedLaunch.course_link_id.in_(_still_linked(link)),
            UnlicensedLaunch.issuer == launcher.issuer,
            UnlicensedLaunch.sub == launcher.sub,
        )
    ).one_or_none()
    if row is None:
        if session.scalar(_still_linked(link)) is None:
            return  # unlinked since the link was cached: there is no list to put them on
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
            .where(UnlicensedLaunch.course_link_id.in_(_still_linked(link)))
            .order_by(UnlicensedLaunch.last_seen.desc())
        )
    )
