"""Mentor groups: create, rename and delete groups, appoint their mentors, place participants by hand or
automatically ("fordel automatisk").

Plain functions over a session: they flush, the caller commits (or rolls back on an exception). Every change writes
an AuditEntry (entity_type "group") and a ``group.sync`` outbox step for the Canvas mirror ("Mentorgrupper") in the
same transaction. A refusal raises a GroupError before anything is written.

Every change of a group's members first locks the organisation's seat pool row (the same lock seat assignments
take), so two administrators distributing at once queue there and the second sees the first's placements instead of
both placing the same seats (the unique seat_id would refuse the loser with an IntegrityError otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.groups.planning import Slot, mixed, plan, workplace_key
from kurspakke.licences.models import Seat, SeatKind
from kurspakke.licences.services import LicenceError, _locked_pool, audit
from kurspakke.meetings.models import Attendance, Meeting
from kurspakke.models import Organisation, Person, ProgrammeRole, ProgrammeRoleKind, utcnow
from kurspakke.outbox.services import enqueue

GROUP_SYNC = "group.sync"
ENTITY = "group"
MAX_NAME = 255
MIN_SIZE = 1
MAX_SIZE = 50
# The name distribute gives a group it creates: the first free number in the organisation and programme.
AUTO_NAME = "Gruppe {number}"


class GroupError(LicenceError):
    """A refused group operation; ``key`` names the message in the translation catalogue, ``params`` fill it."""


# --- helpers -----------------------------------------------------------------------------------------------------


def _state(group: MentorGroup) -> dict[str, Any]:
    return {"organisation_id": group.organisation_id, "programme_id": group.programme_id, "name": group.name}


def _changed(
    session: Session,
    group_id: int,
    action: str,
    *,
    actor: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Every change of a group: its audit row and the step that mirrors the group to Canvas, in one transaction."""
    audit(session, actor=actor, action=action, entity_type=ENTITY, entity_id=group_id, before=before, after=after)
    _sync_later(session, group_id)


def _sync_later(session: Session, group_id: int) -> None:
    enqueue(session, GROUP_SYNC, f"group:{group_id}", {"group_id": group_id})


def sync_groups_of_seat(session: Session, seat: Seat) -> None:
    """The seat's Canvas enrolment changed (made active, or concluded): the groups it belongs to — as member, or
    the groups its holder mentors — are mirrored again, so Canvas's memberships follow. Writes steps only."""
    if seat.kind is SeatKind.MENTOR:
        group_ids = session.scalars(
            select(GroupMentor.group_id)
            .join(MentorGroup, MentorGroup.id == GroupMentor.group_id)
            .where(
                GroupMentor.person_id == seat.person_id,
                MentorGroup.organisation_id == seat.organisation_id,
                MentorGroup.programme_id == seat.programme_id,
            )
        ).all()
    else:
        group_ids = session.scalars(select(GroupMember.group_id).where(GroupMember.seat_id == seat.id)).all()
    for group_id in sorted(set(group_ids)):
        _sync_later(session, group_id)


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise GroupError("group_name_missing")
    if len(cleaned) > MAX_NAME:
        raise GroupError("group_name_too_long", maximum=MAX_NAME)
    return cleaned


def _name_taken(session: Session, organisation_id: int, programme_id: str, name: str, *, but: int | None) -> bool:
    # Compared case-insensitively: "Gruppe A" and "gruppe a" would be the same group to the people using them.
    query = select(MentorGroup.id).where(
        MentorGroup.organisation_id == organisation_id,
        MentorGroup.programme_id == programme_id,
        func.lower(MentorGroup.name) == name.lower(),
    )
    if but is not None:
        query = query.where(MentorGroup.id != but)
    return session.scalar(query.limit(1)) is not None


def _lock(session: Session, organisation_id: int, programme_id: str) -> None:
    _locked_pool(session, organisation_id, programme_id, create=False)


def member_count(session: Session, group: MentorGroup) -> int:
    return session.scalar(select(func.count(GroupMember.id)).where(GroupMember.group_id == group.id)) or 0


def members(session: Session, group: MentorGroup) -> list[Seat]:
    """The group's seats, in the order they joined."""
    return list(
        session.scalars(
            select(Seat)
            .join(GroupMember, GroupMember.seat_id == Seat.id)
            .where(GroupMember.group_id == group.id)
            .order_by(GroupMember.joined_at, GroupMember.id)
        )
    )


def mentors(session: Session, group: MentorGroup) -> list[Person]:
    return list(
        session.scalars(
            select(Person)
            .join(GroupMentor, GroupMentor.person_id == Person.id)
            .where(GroupMentor.group_id == group.id)
            .order_by(Person.name, Person.id)
        )
    )


def groups_of(session: Session, organisation: Organisation, programme_id: str) -> list[MentorGroup]:
    return list(
        session.scalars(
            select(MentorGroup)
            .where(MentorGroup.organisation_id == organisation.id, MentorGroup.programme_id == programme_id)
            .order_by(MentorGroup.id)
        )
    )


# --- groups ------------------------------------------------------------------------------------------------------


def create_group(
    session: Session, organisation: Organisation, programme_id: str, name: str, *, actor: str
) -> MentorGroup:
    """A new, empty group. Raises GroupError group_name_missing, group_name_too_long or group_name_taken (names
    are unique per organisation and programme, compared case-insensitively). Nothing is written when it raises."""
    cleaned = _clean_name(name)
    if _name_taken(session, organisation.id, programme_id, cleaned, but=None):
        raise GroupError("group_name_taken", name=cleaned)
    group = MentorGroup(organisation_id=organisation.id, programme_id=programme_id, name=cleaned)
    session.add(group)
    session.flush()
    _changed(session, group.id, "group.create", actor=actor, before=None, after=_state(group))
    session.flush()
    return group


def rename_group(session: Session, group: MentorGroup, name: str, *, actor: str) -> MentorGroup:
    """Rename the group; the same name again changes nothing. Raises GroupError group_name_missing,
    group_name_too_long or group_name_taken. Nothing is written when it raises."""
    cleaned = _clean_name(name)
    if cleaned == group.name:
        return group
    if _name_taken(session, group.organisation_id, group.programme_id, cleaned, but=group.id):
        raise GroupError("group_name_taken", name=cleaned)
    before = _state(group)
    group.name = cleaned
    session.flush()
    _changed(session, group.id, "group.rename", actor=actor, before=before, after=_state(group))
    session.flush()
    return group


def delete_group(session: Session, group: MentorGroup, *, actor: str) -> None:
    """Delete an empty group (its mentor appointments go with it). A group with members is refused, so nobody
    loses their group by one click: the administrator moves or removes the members first.

    Its scheduled meetings go too (their calendar events with the group in Canvas); a group whose meetings have
    recorded attendance is refused, so what happened stays.

    Raises GroupError("group_not_empty", members=n) or GroupError("group_has_attendance"). Nothing is written when
    it raises. The ``group.sync`` step finds no group and removes it from Canvas (by the id in its payload)."""
    _lock(session, group.organisation_id, group.programme_id)
    count = member_count(session, group)
    if count:
        raise GroupError("group_not_empty", members=count)
    meeting_ids = list(session.scalars(select(Meeting.id).where(Meeting.group_id == group.id)))
    if meeting_ids and session.scalar(select(Attendance.id).where(Attendance.meeting_id.in_(meeting_ids)).limit(1)):
        raise GroupError("group_has_attendance")
    before = _state(group) | {"mentor_ids": [p.id for p in mentors(session, group)]}
    group_id, canvas_group_id = group.id, group.canvas_group_id
    if meeting_ids:
        before["meeting_ids"] = meeting_ids
        # The calendar events live in the Canvas group, which the group.sync step deletes with them.
        session.execute(delete(Meeting).where(Meeting.id.in_(meeting_ids)))
    session.execute(delete(GroupMentor).where(GroupMentor.group_id == group_id))
    session.delete(group)
    session.flush()
    audit(
        session, actor=actor, action="group.delete", entity_type=ENTITY, entity_id=group_id, before=before, after=None
    )
    payload: dict[str, Any] = {"group_id": group_id}
    if canvas_group_id is not None:
        payload["canvas_group_id"] = canvas_group_id
    enqueue(session, GROUP_SYNC, f"group:{group_id}", payload)
    session.flush()


# --- mentors -----------------------------------------------------------------------------------------------------


def add_mentor(session: Session, group: MentorGroup, person: Person, *, actor: str) -> GroupMentor:
    """Make the person a mentor of the group; a mentor already there changes nothing. The person must hold the
    MENTOR role of the group's organisation and programme.

    Raises GroupError("mentor_other_organisation") when their MENTOR role is of another organisation only, and
    GroupError("not_a_mentor") when they hold none in the programme. Nothing is written when it raises."""
    organisations = set(
        session.scalars(
            select(ProgrammeRole.organisation_id).where(
                ProgrammeRole.person_id == person.id,
                ProgrammeRole.programme_id == group.programme_id,
                ProgrammeRole.role == ProgrammeRoleKind.MENTOR,
            )
        )
    )
    if group.organisation_id not in organisations:
        raise GroupError("mentor_other_organisation" if organisations else "not_a_mentor")
    existing = session.scalars(
        select(GroupMentor).where(GroupMentor.group_id == group.id, GroupMentor.person_id == person.id)
    ).one_or_none()
    if existing is not None:
        return existing
    link = GroupMentor(group_id=group.id, person_id=person.id)
    session.add(link)
    session.flush()
    _changed(session, group.id, "group.mentor_add", actor=actor, before=None, after={"person_id": person.id})
    session.flush()
    return link


def remove_mentor(session: Session, group: MentorGroup, person: Person, *, actor: str) -> None:
    """Take the person off the group's mentors. Raises GroupError("mentor_not_in_group"); nothing written then."""
    link = session.scalars(
        select(GroupMentor).where(GroupMentor.group_id == group.id, GroupMentor.person_id == person.id)
    ).one_or_none()
    if link is None:
        raise GroupError("mentor_not_in_group")
    session.delete(link)
    session.flush()
    _changed(session, group.id, "group.mentor_remove", actor=actor, before={"person_id": person.id}, after=None)
    session.flush()


# --- members -----------------------------------------------------------------------------------------------------


def _check_seat(group: MentorGroup, seat: Seat) -> None:
    if seat.organisation_id != group.organisation_id:
        raise GroupError("seat_other_organisation", seat_id=seat.id)
    if seat.programme_id != group.programme_id:
        raise GroupError("seat_other_programme", seat_id=seat.id)
    if seat.kind is not SeatKind.PARTICIPANT:
        raise GroupError("seat_not_participant", seat_id=seat.id)
    if seat.revoked_at is not None:
        raise GroupError("seat_revoked", seat_id=seat.id)


def _place(
    session: Session, group: MentorGroup, seat: Seat, current: GroupMember | None, *, actor: str, via: str
) -> int | None:
    """Put the seat in the group; returns the group it left (a move), else None. Only the membership row changes:
    attendance and progress belong to the seat and the person, so a moved participant keeps them."""
    before: dict[str, Any] | None = None
    left: int | None = None
    if current is None:
        session.add(GroupMember(group_id=group.id, seat_id=seat.id))
        action = "group.member_add"
    else:
        left = current.group_id
        before = {"seat_id": seat.id, "group_id": left}
        current.group_id, current.joined_at = group.id, utcnow()
        action = "group.member_move"
    audit(
        session,
        actor=actor,
        action=action,
        entity_type=ENTITY,
        entity_id=group.id,
        before=before,
        after={"seat_id": seat.id, "group_id": group.id, "via": via},
    )
    return left


def add_members(session: Session, group: MentorGroup, seats: Iterable[Seat], *, actor: str) -> list[Seat]:
    """Put the seats in the group. A seat already in it is left alone; a seat in another group of the programme is
    moved here (audited as group.member_move, and both groups are synced). Returns the seats that joined or moved.

    Each seat must be an unrevoked participant seat of the group's organisation and programme, else GroupError
    seat_other_organisation, seat_other_programme, seat_not_participant or seat_revoked (param seat_id). All seats
    are checked first: nothing is written when it raises."""
    unique = list({seat.id: seat for seat in seats}.values())
    for seat in unique:
        _check_seat(group, seat)
    _lock(session, group.organisation_id, group.programme_id)
    current = {
        m.seat_id: m
        for m in session.scalars(select(GroupMember).where(GroupMember.seat_id.in_([s.id for s in unique])))
    }
    placed: list[Seat] = []
    touched = {group.id}
    for seat in unique:
        membership = current.get(seat.id)
        if membership is not None and membership.group_id == group.id:
            continue
        left = _place(session, group, seat, membership, actor=actor, via="hand")
        if left is not None:
            touched.add(left)
        placed.append(seat)
    if placed:
        session.flush()
        for group_id in sorted(touched):
            _sync_later(session, group_id)
        session.flush()
    return placed


def remove_member(session: Session, group: MentorGroup, seat: Seat, *, actor: str) -> None:
    """Take the seat out of the group (the participant keeps their history). Raises GroupError
    ("seat_not_in_group"); nothing is written then."""
    _lock(session, group.organisation_id, group.programme_id)
    membership = session.scalars(
        select(GroupMember).where(GroupMember.group_id == group.id, GroupMember.seat_id == seat.id)
    ).one_or_none()
    if membership is None:
        raise GroupError("seat_not_in_group", seat_id=seat.id)
    session.delete(membership)
    session.flush()
    _changed(
        session,
        group.id,
        "group.member_remove",
        actor=actor,
        before={"seat_id": seat.id, "group_id": group.id},
        after=None,
    )
    session.flush()


def mixed_workplaces(session: Session, group: MentorGroup) -> bool:
    """Whether the group's participants come from more than one workplace, so the mentor is reminded of
    confidentiality (taushetsplikt) before each session. An unknown (empty) workplace counts as one more: the
    reminder is shown when in doubt."""
    workplaces = session.scalars(
        select(Seat.workplace)
        .join(GroupMember, GroupMember.seat_id == Seat.id)
        .where(GroupMember.group_id == group.id)
        .distinct()
    )
    return mixed(workplaces)


# --- distribute --------------------------------------------------------------------------------------------------


def unassigned_seats(session: Session, organisation: Organisation, programme_id: str) -> list[Seat]:
    """The organisation's unrevoked participant seats in the programme that are in no group, by seat id."""
    grouped = select(GroupMember.seat_id)
    return list(
        session.scalars(
            select(Seat)
            .where(
                Seat.organisation_id == organisation.id,
                Seat.programme_id == programme_id,
                Seat.kind == SeatKind.PARTICIPANT,
                Seat.revoked_at.is_(None),
                Seat.id.not_in(grouped),
            )
            .order_by(Seat.id)
        )
    )


def distribute(
    session: Session, organisation: Organisation, programme_id: str, size: int, *, actor: str
) -> list[MentorGroup]:
    """ "Fordel automatisk": place the organisation's unassigned participants in groups of at most ``size``.

    Existing groups with room are filled first-come as part of the levelling (their members stay); new groups
    ("Gruppe N", the first free numbers) are created only as many as needed. Group sizes are levelled (they differ
    by at most one when the existing groups allow it), and people of one workplace are kept in one group unless the
    workplace is larger than any group's room. The same seats and groups always give the same result. Returns the
    groups that received people, in order.

    Raises GroupError("size_out_of_range", minimum, maximum) unless 1 <= size <= 50. Nothing is written when it
    raises, nor when nobody is unassigned."""
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise GroupError("size_out_of_range", minimum=MIN_SIZE, maximum=MAX_SIZE)
    _lock(session, organisation.id, programme_id)
    seats = unassigned_seats(session, organisation, programme_id)
    if not seats:
        return []
    counts: dict[int, int] = {
        group_id: count
        for group_id, count in session.execute(
            select(GroupMember.group_id, func.count(GroupMember.id))
            .join(MentorGroup, MentorGroup.id == GroupMember.group_id)
            .where(MentorGroup.organisation_id == organisation.id, MentorGroup.programme_id == programme_id)
            .group_by(GroupMember.group_id)
        ).tuples()
    }
    slots = [
        Slot(order=i, group=g, count=counts.get(g.id, 0))
        for i, g in enumerate(g for g in groups_of(session, organisation, programme_id) if counts.get(g.id, 0) < size)
    ]
    total = len(seats) + sum(s.count for s in slots)
    for _ in range(max(math.ceil(total / size) - len(slots), 0)):
        slots.append(Slot(order=len(slots), group=None, count=0))
    # Levelling never fills a group past size: there are ceil(total / size) groups or more and none starts above.
    if slots:
        workplaces = session.execute(
            select(GroupMember.group_id, Seat.workplace)
            .join(Seat, Seat.id == GroupMember.seat_id)
            .where(GroupMember.group_id.in_([s.group.id for s in slots if s.group is not None]))
        ).tuples()
        by_id = {s.group.id: s for s in slots if s.group is not None}
        for group_id, workplace in workplaces:
            if workplace_key(workplace):
                by_id[group_id].workplaces.add(workplace_key(workplace))
    plan(slots, seats)
    filled: list[MentorGroup] = []
    number = 0
    for slot in slots:
        if not slot.seats:
            continue
        group = slot.group
        if group is None:
            number += 1
            while _name_taken(session, organisation.id, programme_id, AUTO_NAME.format(number=number), but=None):
                number += 1
            group = create_group(session, organisation, programme_id, AUTO_NAME.format(number=number), actor=actor)
        for seat in slot.seats:
            _place(session, group, seat, None, actor=actor, via="distribute")
        session.flush()
        _sync_later(session, group.id)
        filled.append(group)
    session.flush()
    return filled


__all__ = [
    "AUTO_NAME",
    "GROUP_SYNC",
    "MAX_SIZE",
    "MIN_SIZE",
    "GroupError",
    "add_members",
    "add_mentor",
    "create_group",
    "delete_group",
    "distribute",
    "groups_of",
    "member_count",
    "members",
    "mentors",
    "mixed_workplaces",
    "remove_member",
    "remove_mentor",
    "rename_group",
    "unassigned_seats",
]
