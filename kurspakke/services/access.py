"""Who is launching, and with what authority — decided from the tool's own records on every launch.

Participants, mentors and licence administrators come from ProgrammeRole rows. Course owners are the Instructors
(the plain membership role, never its TeachingAssistant sub-role) and Administrators of the linked course, as
the platform's signed roles claim says.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kurspakke.models import (
    CanvasInstance,
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
# Context (membership) roles only: an institution or system role says what someone is elsewhere in Canvas (a
# sub-account administrator launching as a student carries institution/person#Administrator), not in this course.
OWNER_ADMIN_ROLES = frozenset({LIS + "membership#Administrator"})
# LTI 1.3 still permits the short context role names of LTI 1.1.
_SHORT_ROLES = {
    "Instructor": ROLE_INSTRUCTOR,
    "Learner": ROLE_LEARNER,
    "Administrator": LIS + "membership#Administrator",
}


def normalise_roles(roles: Iterable[str]) -> frozenset[str]:
    return frozenset(_SHORT_ROLES.get(r, r) for r in roles)


def is_course_owner_role(roles: Iterable[str]) -> bool:
    """A context-level Instructor without the TeachingAssistant sub-role (Canvas sends a TA both), or a
    context-level Administrator."""
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
    ags: tuple[str | None, tuple[str, ...], int | None] = (None, (), None)  # line-items URL, scopes, registration


AGS_SCOPES_KEPT = 8  # a platform grants a handful of AGS scopes; more is nonsense and is not stored


def record_ags_endpoint(
    session: Session,
    cache: CourseLinkCache,
    link: CourseLinkInfo,
    *,
    lineitems_url: str | None,
    scopes: list[str],
    registration_id: int,
) -> None:
    """Keep the AGS line-items URL and scopes of the latest launch on the course link (DESIGN.md §3), so the worker
    posts completion without a live launch. Writes only when they changed, so launches stay read-only. Flushes."""
    if not lineitems_url:
        return
    wanted = (lineitems_url[:1024], tuple(sorted({s[:255] for s in scopes})[:AGS_SCOPES_KEPT]), registration_id)
    if link.ags == wanted:
        return
    row = session.get(CourseLink, link.id)
    if row is None:
        return
    stored = (row.ags_lineitems_url, tuple(row.ags_scopes or ()), row.ags_registration_id)
    if stored != wanted:
        if row.ags_lineitems_url != wanted[0]:
            row.ags_lineitem_url = None  # another course's (a copied course): the worker looks for it again
        row.ags_lineitems_url, row.ags_scopes, row.ags_registration_id = wanted[0], list(wanted[1]), wanted[2]
        session.flush()
    # The cached link now carries them, so the next launch neither writes nor reads the link again.
    cache.put(replace(link, ags=wanted))


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
            (row.ags_lineitems_url, tuple(row.ags_scopes or ()), row.ags_registration_id),
        )
        self._entries[key] = (time.monotonic(), info)
        return info

    def put(self, info: CourseLinkInfo) -> None:
        self._entries[(info.platform_instance, info.context_id)] = (time.monotonic(), info)


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
    select(
        PersonIdentity.kind,
        PersonIdentity.email.label("identity_email"),
        Person.id,
        Person.name,
        Person.email,
        *_ROLE_COLUMNS,
    )
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
NOBODY: PersonMatch = (None, [], [])


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


def _person_of(rows: Sequence[Any], person_id: int) -> PersonMatch:
    mine = [row for row in rows if row.id == person_id]
    return (PersonInfo(mine[0].id, mine[0].name, mine[0].email), *_roles_of(mine))


def _by_kind(rows: Sequence[Any], kind: IdentityKind) -> int | None:
    return next((row.id for row in rows if row.kind == kind), None)


def known_person(session: Session, launcher: Launcher, programme_id: str) -> PersonMatch:
    """The person of an earlier launch, by the LTI sub that launch matched and recorded (reads only). The signed
    sub is the authority: a Canvas user id never opens anyone here."""
    rows = session.connection().execute(*person_query(launcher, programme_id)).all()
    person_id = _by_kind(rows, IdentityKind.LTI_SUB)
    return NOBODY if person_id is None else _person_of(rows, person_id)


def match_person(
    session: Session, launcher: Launcher, programme_id: str, rows: Sequence[Any] | None = None
) -> PersonMatch:
    """The person launching, with their roles and organisations in ``programme_id``.

    The signed LTI sub recorded at an earlier launch decides. A first launch (no person holds the sub yet) may
    attach the sub to a person by one of two hints, never guessed:

    - the Canvas user id (a custom parameter, which teachers can set per link, so a hint only): only a Canvas user
      id the tool itself recorded for the person on this Canvas instance, only while the person has no sub of this
      issuer, and only when the launch's e-mail agrees with an e-mail the tool knows for them (the seat's, or the
      primary one Canvas reported at provisioning) — see _claim_by_canvas_user_id;
    - else the e-mail alone, only from the Canvas instance the person's organisation is provisioned into — see
      _claim_by_email.

    ``rows`` are those of person_query, when the caller has run it already (the launch does, in the statement
    that records it). Only the sub is ever recorded from a launch. A Canvas user id that names another person
    than the sub's, or a person who already has another sub, opens nothing of that person and is logged.
    """
    if rows is None:
        rows = session.connection().execute(*person_query(launcher, programme_id)).all()
    by_sub = _by_kind(rows, IdentityKind.LTI_SUB)
    by_canvas_id = _by_kind(rows, IdentityKind.CANVAS_USER_ID)
    if by_sub is not None:
        if by_canvas_id is not None and by_canvas_id != by_sub:
            _mismatch("canvas user id names another person than the launch's sub", launcher, by_canvas_id)
        return _person_of(rows, by_sub)
    person_id = None
    if by_canvas_id is not None:
        if _has_sub(session, by_canvas_id, launcher.issuer):
            # The Canvas user id names someone tied to another account of this issuer: the launch is suspect and
            # opens nothing at all (not even another person its e-mail might name).
            _mismatch("canvas user id of a person who already has another sub", launcher, by_canvas_id)
            return NOBODY
        person_id = _claim_by_canvas_user_id(launcher, [row for row in rows if row.id == by_canvas_id])
    if person_id is None and launcher.email:
        person_id = _claim_by_email(session, launcher, programme_id)
    if person_id is None:
        return NOBODY
    # When someone recorded this sub meanwhile, or the person got another sub of this issuer from a concurrent
    # launch, nothing of this launch's is kept; either way decide from what is stored now, as later requests will.
    _remember_sub(session, person_id, launcher)
    return known_person(session, launcher, programme_id)


_log = logging.getLogger("kurspakke.identity")


def _mismatch(reason: str, launcher: Launcher, person_id: int) -> None:
    """For the operator: a launch pointed at a person it may not open (a forged or mistaken hint)."""
    _log.warning(
        "identity mismatch: %s",
        reason,
        extra={
            "fields": {
                "issuer": launcher.issuer,
                "sub": launcher.sub,
                "platform_instance": launcher.platform_instance,
                "canvas_user_id": launcher.canvas_user_id,
                "person_id": person_id,
            }
        },
    )


def _has_sub(session: Session, person_id: int, issuer: str) -> bool:
    return (
        session.scalar(
            select(PersonIdentity.id)
            .where(
                PersonIdentity.person_id == person_id,
                PersonIdentity.kind == IdentityKind.LTI_SUB,
                PersonIdentity.scope == issuer,
            )
            .limit(1)
        )
        is not None
    )


def _same_email(a: str | None, b: str | None) -> bool:
    return bool(a and b) and a.strip().lower() == b.strip().lower()  # type: ignore[union-attr]


def _claim_by_canvas_user_id(launcher: Launcher, rows: Sequence[Any]) -> int | None:
    """The person the tool recorded this Canvas user id for on this instance (``rows``: theirs; they have no sub of
    this issuer yet), if the launch's e-mail agrees with the seat's or the one Canvas reported."""
    person_id = rows[0].id
    if not any(
        _same_email(launcher.email, row.email) or _same_email(launcher.email, row.identity_email) for row in rows
    ):
        _mismatch("canvas user id whose e-mail does not agree with the launch's", launcher, person_id)
        return None
    return person_id


def _claim_by_email(session: Session, launcher: Launcher, programme_id: str) -> int | None:
    """The one person with the launch's e-mail (the seat's, or the primary one Canvas reported for their account on
    this instance) who has no sub of this issuer yet, when this launch comes from the Canvas their organisation is
    provisioned into.

    E-mail is the weakest match (a platform's claim, often unverified, and any registered platform can send any
    address), so another registered Canvas — even under the same issuer — never ties anyone by e-mail. A person
    the tool recorded a Canvas user id for on this instance is not tied to another account of it. Several people
    with one address match no one (never guessed)."""
    email = launcher.email.strip().lower()
    # Locked until this launch commits, so two first launches with one e-mail cannot both claim the person: the
    # second waits, then finds the first one's identity. (SQLite serialises writers anyway.)
    # E-mails are stored lower-cased (the models' validators), so these compare on their indexes.
    reported = select(PersonIdentity.person_id).where(
        PersonIdentity.email == email,
        PersonIdentity.kind == IdentityKind.CANVAS_USER_ID,
        PersonIdentity.scope == launcher.platform_instance,
    )
    candidates = session.scalars(
        select(Person.id).where(or_(Person.email == email, Person.id.in_(reported))).limit(2).with_for_update()
    ).all()
    if len(candidates) != 1:
        return None
    person_id = candidates[0]
    if _has_sub(session, person_id, launcher.issuer):
        return None
    if not _provisioned_from(session, person_id, programme_id, launcher.platform_instance):
        return None
    provisioned_here = session.scalar(
        select(PersonIdentity.id)
        .where(
            PersonIdentity.person_id == person_id,
            PersonIdentity.kind == IdentityKind.CANVAS_USER_ID,
            PersonIdentity.scope == launcher.platform_instance,
        )
        .limit(1)
    )
    if provisioned_here is not None:
        # The tool knows her account on this Canvas; a launch that did not find her by its Canvas user id is
        # another account (or one whose id a teacher blanked or replaced on the link): never tied by e-mail.
        _mismatch("e-mail of a person provisioned with another canvas account", launcher, person_id)
        return None
    return person_id


def _provisioned_from(session: Session, person_id: int, programme_id: str, platform_instance: str) -> bool:
    """Whether ``platform_instance`` is a Canvas the tool tied this person to: the one an organisation of theirs
    in the programme is provisioned into — or, for an organisation not provisioned anywhere yet, the one Canvas
    the programme's course is linked on (when the programme is linked on several, none: ambiguous)."""
    rows = session.execute(
        select(Organisation.canvas_instance_id, CanvasInstance.platform_instance)
        .join(ProgrammeRole, ProgrammeRole.organisation_id == Organisation.id)
        .outerjoin(CanvasInstance, CanvasInstance.id == Organisation.canvas_instance_id)
        .where(ProgrammeRole.person_id == person_id, ProgrammeRole.programme_id == programme_id)
    ).all()
    if any(row.platform_instance == platform_instance for row in rows):
        return True
    if not any(row.canvas_instance_id is None for row in rows):
        return False
    linked_on = session.scalars(
        select(CourseLink.platform_instance).where(CourseLink.programme_id == programme_id).distinct().limit(2)
    ).all()
    return linked_on == [platform_instance]


def _remember_sub(session: Session, person_id: int, launcher: Launcher) -> None:
    """Record the launch's sub for the person; nothing is kept when it, or another sub of this issuer for this
    person (one sub per person and issuer: a unique index), was recorded concurrently."""
    with contextlib.suppress(IntegrityError), session.begin_nested():
        session.add(
            PersonIdentity(person_id=person_id, kind=IdentityKind.LTI_SUB, scope=launcher.issuer, value=launcher.sub)
        )
        session.flush()


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
