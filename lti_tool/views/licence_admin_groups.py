"""The licence administrator's pages for mentors and mentor groups, on the licence_admin blueprint: appoint mentors,
create, rename and delete groups, choose their mentors, place participants by hand or "fordel automatisk".

Everything here goes through ``_pool`` (the organisation and programme of the address, checked against what the
database says this person administers, on every request), and every group is looked up inside that pool: a group of
another organisation is "not found" (404), never shown. Changes are POSTs with the token and an ``action``; a refusal
(a GroupError or LicenceError raised before anything is written) answers with the page, its message and a 4xx, and
the request boundary rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kurspakke.groups import services as groups
from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.groups.planning import mixed, workplace_key
from kurspakke.licences.models import Seat, SeatKind
from kurspakke.licences.seating import PersonInput, appoint_mentor, status_of
from kurspakke.licences.services import LicenceError
from kurspakke.models import Person, ProgrammeRole, ProgrammeRoleKind
from lti_tool.i18n import gettext, ngettext
from lti_tool.i18n_marker import N_
from lti_tool.lti.errors import LtiRefusal
from lti_tool.services import db
from lti_tool.views.licence_admin import (
    PAGE,
    Pool,
    _action,
    _error,
    _int,
    _Params,
    _pool,
    _render,
    bp,
)

# GroupError keys (kurspakke.groups.services, and group_has_attendance of deleting a group with recorded sessions)
# -> (English msgid, HTTP status). Another organisation's mentor reads as "not a mentor of the organisation", so a
# refusal never tells whether someone is a mentor elsewhere.
GROUP_MESSAGES: dict[str, tuple[str, int]] = {
    "group_name_missing": (N_("Enter the group's name."), 422),
    "group_name_too_long": (N_("The group's name is too long (at most %(maximum)s characters)."), 422),
    "group_name_taken": (N_("The organisation already has a group called “%(name)s”. Choose another name."), 409),
    "group_not_empty": (
        N_("The group still has participants (%(members)s). Move them to another group or remove them first."),
        409,
    ),
    "group_has_attendance": (
        N_("Attendance is recorded for the group's sessions, so the group cannot be deleted."),
        409,
    ),
    "not_a_mentor": (N_("That person is not a mentor of the organisation. Appoint them as mentor first."), 422),
    "mentor_other_organisation": (
        N_("That person is not a mentor of the organisation. Appoint them as mentor first."),
        422,
    ),
    "mentor_not_in_group": (N_("That person is not a mentor of this group."), 409),
    "seat_other_organisation": (N_("That participant does not hold a licence of the organisation."), 422),
    "seat_other_programme": (N_("That participant's licence is for another course package."), 422),
    "seat_not_participant": (N_("Only participants can be placed in a group; mentors are added as mentors."), 422),
    "seat_revoked": (N_("That participant's licence is revoked."), 409),
    "seat_not_in_group": (N_("That participant is not in this group."), 409),
    "size_out_of_range": (N_("Choose a group size from %(minimum)s to %(maximum)s."), 422),
    # The page's own checks of a form before it calls a service.
    "mentor_missing": (N_("Choose a mentor."), 422),
    "members_missing": (N_("Choose at least one participant."), 422),
    "move_target_missing": (N_("Choose the group to move the participant to."), 422),
}

# The form field a refusal points at (its id is "f-" + this), for aria-invalid and the error summary's link.
GROUP_FIELDS = {
    "group_name_missing": "name",
    "group_name_too_long": "name",
    "group_name_taken": "name",
    "size_out_of_range": "size",
    "not_a_mentor": "mentor",
    "mentor_other_organisation": "mentor",
    "mentor_missing": "mentor",
    "members_missing": "seats",
}

DEFAULT_SIZE = 8


def group_error(exc: LicenceError) -> tuple[dict[str, str], int]:
    """A refusal as the page shows it: its message in the user's language, the field it concerns, its status."""
    if exc.key not in GROUP_MESSAGES:
        return _error(exc)
    message, status = GROUP_MESSAGES[exc.key]
    text = gettext(message)
    if "%(" in text:
        text = text % _Params(exc.params)
    return {"message": text, "field": GROUP_FIELDS.get(exc.key, "")}, status


# --- read models -------------------------------------------------------------------------------------------------


@dataclass
class MentorRow:
    person_id: int
    name: str
    email: str
    workplace: str = ""
    status: str | None = None  # seating.status_of of their mentor seat; None when they hold none (yet)
    canvas_error: str | None = None
    groups: list[str] = field(default_factory=list)


@dataclass
class GroupRow:
    id: int
    name: str
    members: int = 0
    mentors: list[str] = field(default_factory=list)
    workplaces: set[str] = field(default_factory=set)

    @property
    def mixed(self) -> bool:
        return mixed(self.workplaces)


def mentor_rows(session: Session, pool: Pool) -> list[MentorRow]:
    """The organisation's mentors in the programme (people holding its MENTOR role), by name, with the workplace
    and Canvas status of their seat and the groups they lead. Three queries, whatever the number of mentors."""
    org_id, programme_id = pool.organisation.id, pool.programme.id
    people = session.execute(
        select(Person.id, Person.name, Person.email)
        .join(ProgrammeRole, ProgrammeRole.person_id == Person.id)
        .where(
            ProgrammeRole.organisation_id == org_id,
            ProgrammeRole.programme_id == programme_id,
            ProgrammeRole.role == ProgrammeRoleKind.MENTOR,
        )
        .order_by(Person.name, Person.email, Person.id)
    ).tuples()
    rows = {person_id: MentorRow(person_id, name, email) for person_id, name, email in people}
    if not rows:
        return []
    seats = session.scalars(
        select(Seat).where(
            Seat.organisation_id == org_id,
            Seat.programme_id == programme_id,
            Seat.kind == SeatKind.MENTOR,
            Seat.revoked_at.is_(None),
            Seat.person_id.in_(rows),
        )
    )
    for seat in seats:
        row = rows[seat.person_id]
        row.workplace, row.status, row.canvas_error = seat.workplace, status_of(seat), seat.canvas_error
    led = session.execute(
        select(GroupMentor.person_id, MentorGroup.name)
        .join(MentorGroup, MentorGroup.id == GroupMentor.group_id)
        .where(MentorGroup.organisation_id == org_id, MentorGroup.programme_id == programme_id)
        .order_by(MentorGroup.name, MentorGroup.id)
    ).tuples()
    for person_id, group_name in led:
        if person_id in rows:
            rows[person_id].groups.append(group_name)
    return list(rows.values())


def group_rows(session: Session, pool: Pool) -> list[GroupRow]:
    """The organisation's groups with their mentors, member counts and workplaces: four queries, not four per group."""
    rows = {g.id: GroupRow(g.id, g.name) for g in groups.groups_of(session, pool.organisation, pool.programme.id)}
    if not rows:
        return []
    counts = session.execute(
        select(GroupMember.group_id, func.count(GroupMember.id))
        .where(GroupMember.group_id.in_(rows))
        .group_by(GroupMember.group_id)
    ).tuples()
    for group_id, count in counts:
        rows[group_id].members = count
    named = session.execute(
        select(GroupMentor.group_id, Person.name)
        .join(Person, Person.id == GroupMentor.person_id)
        .where(GroupMentor.group_id.in_(rows))
        .order_by(Person.name, Person.id)
    ).tuples()
    for group_id, name in named:
        rows[group_id].mentors.append(name)
    workplaces = session.execute(
        select(GroupMember.group_id, Seat.workplace)
        .join(Seat, Seat.id == GroupMember.seat_id)
        .where(GroupMember.group_id.in_(rows))
        .distinct()
    ).tuples()
    for group_id, workplace in workplaces:
        rows[group_id].workplaces.add(workplace_key(workplace))
    return list(rows.values())


def _group(pool: Pool, group_id: int) -> MentorGroup:
    """Raises LtiRefusal(404) for a group of another organisation or programme (a guessed id) or none at all."""
    group = (
        db()
        .scalars(
            select(MentorGroup).where(
                MentorGroup.id == group_id,
                MentorGroup.organisation_id == pool.organisation.id,
                MentorGroup.programme_id == pool.programme.id,
            )
        )
        .one_or_none()
    )
    if group is None:
        raise LtiRefusal("not_found", status=404)
    return group


def _seats(pool: Pool, ids: list[int]) -> list[Seat]:
    """The pool's seats with these ids. Raises LtiRefusal(404) when one is not the pool's (a guessed id of another
    organisation's participant): its existence is not confirmed."""
    wanted = set(ids)
    found = list(
        db().scalars(
            select(Seat)
            .where(
                Seat.id.in_(wanted),
                Seat.organisation_id == pool.organisation.id,
                Seat.programme_id == pool.programme.id,
            )
            .order_by(Seat.id)
        )
    )
    if len(found) != len(wanted):
        raise LtiRefusal("not_found", status=404)
    return found


def _seat_ids() -> list[int]:
    return [n for n in (_int(v) for v in request.form.getlist("seat")[:1000]) if n]


# --- mentors -----------------------------------------------------------------------------------------------------


@bp.route(PAGE + "/mentors", methods=["GET", "POST"])
def mentors(org_id: int, programme_id: str) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    session = db()
    values: dict[str, str] = {}
    notice: str | None = None
    error: dict[str, str] | None = None
    status = 200
    if _action() == "appoint":
        values = {k: request.form.get(k, "")[:1000] for k in ("name", "email", "workplace")}
        raw = PersonInput(values["name"], values["email"], values["workplace"])
        try:
            seat = appoint_mentor(session, pool.organisation, pool.programme, raw, actor=pool.who.actor)
        except LicenceError as exc:
            error, status = _error(exc)
        else:
            notice = gettext("%(name)s is now a mentor. The Canvas enrolment is on its way.", name=seat.person.name)
            values = {}
    return _render(
        pool, "mentors.html", status, rows=mentor_rows(session, pool), values=values, notice=notice, error=error
    )


# --- groups ------------------------------------------------------------------------------------------------------


def _groups_page(
    pool: Pool,
    status: int = 200,
    *,
    notice: str | None = None,
    error: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    created: MentorGroup | None = None,
    preview: list[PlannedGroup] | None = None,
) -> ResponseReturnValue:
    session = db()
    return _render(
        pool,
        "groups.html",
        status,
        rows=group_rows(session, pool),
        unassigned=len(groups.unassigned_seats(session, pool.organisation, pool.programme.id)),
        mentor_count=len(mentor_rows(session, pool)),
        values=values or {"size": str(DEFAULT_SIZE)},
        notice=notice,
        error=error,
        created=created,
        preview=preview,
        min_size=groups.MIN_SIZE,
        max_size=groups.MAX_SIZE,
    )


@bp.route(PAGE + "/groups", methods=["GET", "POST"], endpoint="groups")
def groups_page(org_id: int, programme_id: str) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    session, action, actor = db(), _action(), pool.who.actor
    values = {"size": request.form.get("size", str(DEFAULT_SIZE))[:20], "name": request.form.get("name", "")[:1000]}
    try:
        if action == "create":
            group = groups.create_group(session, pool.organisation, pool.programme.id, values["name"], actor=actor)
            notice = gettext("The group %(name)s is created.", name=group.name)
            return _groups_page(pool, notice=notice, created=group)
        if action == "preview":
            plan = _preview(session, pool, _int(values["size"].strip()))
            notice = gettext("A preview: nothing is changed until you distribute.")
            if not plan:
                notice = gettext("Every participant is already in a group.")
            return _groups_page(pool, notice=notice, values={"size": values["size"]}, preview=plan)
        if action == "distribute":
            size = _int(values["size"].strip())
            filled = groups.distribute(session, pool.organisation, pool.programme.id, size, actor=actor)
            if filled:
                notice = gettext(
                    "The participants without a group are placed in: %(groups)s.",
                    groups=", ".join(g.name for g in filled),
                )
            else:
                notice = gettext("Every participant is already in a group.")
            return _groups_page(pool, notice=notice, values={"size": values["size"]})
    except LicenceError as exc:
        error, status = group_error(exc)
        return _groups_page(pool, status, error=error, values=values)
    return _groups_page(pool)


@dataclass
class PlannedGroup:
    """A group as "fordel automatisk" would fill it: its name, whether it would be created, who would join it."""

    name: str
    new: bool
    joining: list[str]


def _preview(session: Session, pool: Pool, size: int) -> list[PlannedGroup]:
    """What distribute would do, found by doing it inside a savepoint that is then rolled back: the service itself
    decides (no second copy of its rules), and nothing stays written, not even its audit rows or Canvas steps. The
    same seats and groups give the same result, so distributing afterwards does what was shown unless someone
    changed the groups in between. Raises GroupError("size_out_of_range") as distribute does."""
    waiting = [seat.id for seat in groups.unassigned_seats(session, pool.organisation, pool.programme.id)]
    existing = {g.id for g in groups.groups_of(session, pool.organisation, pool.programme.id)}
    savepoint = session.begin_nested()
    try:
        filled = groups.distribute(session, pool.organisation, pool.programme.id, size, actor=pool.who.actor)
        joining = session.execute(
            select(GroupMember.group_id, Person.name)
            .join(Seat, Seat.id == GroupMember.seat_id)
            .join(Person, Person.id == Seat.person_id)
            .where(GroupMember.seat_id.in_(waiting))
            .order_by(Person.name, Seat.id)
        ).tuples()
        by_group: dict[int, list[str]] = {}
        for group_id, name in joining:
            by_group.setdefault(group_id, []).append(name)
        return [PlannedGroup(g.name, g.id not in existing, by_group.get(g.id, [])) for g in filled]
    finally:
        savepoint.rollback()


def _names(session: Session, seats: list[Seat]) -> dict[int, str]:
    """Person id -> name for the seats' holders, in one query (seat.person would load them one by one)."""
    ids = {seat.person_id for seat in seats}
    if not ids:
        return {}
    return dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(ids))).tuples().all())


def _group_page(
    pool: Pool,
    group: MentorGroup,
    status: int = 200,
    *,
    notice: str | None = None,
    error: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> ResponseReturnValue:
    session = db()
    leading = groups.mentors(session, group)
    leading_ids = {p.id for p in leading}
    members = groups.members(session, group)
    unassigned = groups.unassigned_seats(session, pool.organisation, pool.programme.id)
    return _render(
        pool,
        "group.html",
        status,
        group=group,
        leading=leading,
        candidates=[m for m in mentor_rows(session, pool) if m.person_id not in leading_ids],
        members=members,
        unassigned=unassigned,
        names=_names(session, members + unassigned),
        others=[g for g in groups.groups_of(session, pool.organisation, pool.programme.id) if g.id != group.id],
        mixed=groups.mixed_workplaces(session, group),
        values=values or {"name": group.name},
        notice=notice,
        error=error,
    )


@bp.route(PAGE + "/groups/<int:group_id>", methods=["GET", "POST"])
def group(org_id: int, programme_id: str, group_id: int) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    mentor_group = _group(pool, group_id)
    session, action, actor = db(), _action(), pool.who.actor
    values: dict[str, str] | None = None
    try:
        if action == "rename":
            values = {"name": request.form.get("name", "")[:1000]}
            groups.rename_group(session, mentor_group, values["name"], actor=actor)
            return _group_page(pool, mentor_group, notice=gettext("The group's name is saved."))
        if action == "delete":
            name = mentor_group.name
            groups.delete_group(session, mentor_group, actor=actor)
            return _groups_page(pool, notice=gettext("The group %(name)s is deleted.", name=name))
        if action == "add_mentor":
            person = _mentor_choice()
            groups.add_mentor(session, mentor_group, person, actor=actor)
            notice = gettext("%(name)s is a mentor of the group.", name=person.name)
            return _group_page(pool, mentor_group, notice=notice)
        if action == "remove_mentor":
            leaving = session.get(Person, _int(request.form.get("person")))
            if leaving is None:
                raise groups.GroupError("mentor_not_in_group")
            groups.remove_mentor(session, mentor_group, leaving, actor=actor)
            notice = gettext("%(name)s is no longer a mentor of the group.", name=leaving.name)
            return _group_page(pool, mentor_group, notice=notice)
        if action == "add_members":
            ids = _seat_ids()
            if not ids:
                raise groups.GroupError("members_missing")
            placed = groups.add_members(session, mentor_group, _seats(pool, ids), actor=actor)
            notice = _placed_notice(len(placed))
            return _group_page(pool, mentor_group, notice=notice)
        if action == "move_member":
            [seat] = _seats(pool, _seat_ids()[:1] or [-1])
            if seat.id not in {m.id for m in groups.members(session, mentor_group)}:
                raise groups.GroupError("seat_not_in_group", seat_id=seat.id)
            target_id = _int(request.form.get("target"))
            if not target_id:
                raise groups.GroupError("move_target_missing")
            target = _group(pool, target_id)
            groups.add_members(session, target, [seat], actor=actor)
            name = _names(session, [seat])[seat.person_id]
            notice = gettext("%(name)s is moved to %(group)s.", name=name, group=target.name)
            return _group_page(pool, mentor_group, notice=notice)
        if action == "remove_member":
            [seat] = _seats(pool, _seat_ids()[:1] or [-1])
            groups.remove_member(session, mentor_group, seat, actor=actor)
            name = _names(session, [seat])[seat.person_id]
            notice = gettext("%(name)s is no longer in the group.", name=name)
            return _group_page(pool, mentor_group, notice=notice)
    except LicenceError as exc:
        error, status = group_error(exc)
        return _group_page(pool, mentor_group, status, error=error, values=values)
    return _group_page(pool, mentor_group)


def _mentor_choice() -> Person:
    """The person chosen in the mentor list. Raises GroupError mentor_missing when none was chosen, not_a_mentor
    for an id nobody has (the service refuses someone who is not the organisation's mentor)."""
    chosen = _int(request.form.get("mentor"))
    if not chosen:
        raise groups.GroupError("mentor_missing")
    person = db().get(Person, chosen)
    if person is None:
        raise groups.GroupError("not_a_mentor")
    return person


def _placed_notice(count: int) -> str:
    if count == 0:
        return gettext("The participants were already in the group.")
    return ngettext("%(num)d participant is added to the group.", "%(num)d participants are added to the group.", count)
