"""Mentor groups and their meetings mirrored to Canvas (outbox steps ``group.sync`` and ``meeting.sync``).

DESIGN.md §3 "Groups and sessions": each course a programme runs in gets one group set "Mentorgrupper"; each mentor
group is a Canvas group in it whose members are the group's participants and mentors; each meeting is an event in
the group's calendar (``group_<id>``), or in the course's (``course_<id>``) when it belongs to no group.

Like provisioning (course_sync.provisioning) the steps converge instead of replaying: a step carries only the group
or meeting id, reads the row as it is now and makes Canvas match it, looking before it creates, so a repeated,
reordered or interrupted run leaves one set, one group and one event. Canvas is called outside any database
transaction; what Canvas said is written with the step's completion.

**The group set** is made once per course and Canvas instance: the worker creating it holds a lease on its
``canvas_group_set`` row (as ``ensure_section`` does for sections), and looks for a set named "Mentorgrupper" before
it creates one (Canvas keeps set names unique in a course, so a lost answer is found again).

**The Canvas group** is named "<group> (<organisation>)": one course serves every municipality, and their groups
must not be confused ("Gruppe 1" is in every one of them). It is found by the id stored on the group, else by that
name in the set (only a Canvas group no other mentor group has recorded), else created; a rename renames it.

**Members** are set in one call (``members[]`` overwrites the membership): the Canvas user ids of the group's
unrevoked participant seats that are active in Canvas, and of its mentors' active seats (mentors are TAs of their
section). A person whose enrolment is still on its way (seat status pending: its ``seat.sync`` step has not run yet)
cannot be a member yet; the step sets the members it has and then waits for them — it is tried again shortly,
without using up its tries (``StepRetry(count=False)``), until their seat steps have run (enrolled, or parked: a
seat parked as failed is left out, and shown on the seat itself). Waiting instead of finishing matters because
nothing else would bring the group back to the worker when the enrolment lands. Canvas silently leaves out users who
are not in the course; when it left out anyone we asked for, the step is parked with their ids (an enrolment deleted
by hand in Canvas: a person has to look).

**A deleted group** (its row gone) is deleted in Canvas. The step's payload may carry ``canvas_group_id`` (and
``organisation_id`` / ``programme_id``); without it — kurspakke.groups.services.delete_group writes only the group
id — the group's name, organisation and programme come from its ``group.delete`` audit entry, and the Canvas group of
that name in the set is deleted unless another mentor group has recorded it.

**Meetings**: ``meeting.sync`` (payload ``{"meeting_id": id}``; a group's meeting is queued under the group's subject,
so it runs after the group's own step) makes one event: title "<session title> – <group>" (or "– <organisation>" for
an organisation's meeting; the session title alone for the programme's whole run), start and end from ``starts_at``
and ``duration_minutes``, location from ``place`` ("Digitalt" for a digital meeting without one), and a description
with the video link. A group meeting whose group has no Canvas id yet waits (``StepRetry``). The event is found by
its stored id, else by its title in the context (an event no other meeting has recorded: a create whose answer was
lost), else created; when the group was made again in Canvas the old event is deleted and a new one made in the new
group. A meeting row that is gone deletes the event named by ``canvas_event_id`` in the payload (with ``group_id`` or
``organisation_id`` and ``programme_id`` telling which Canvas; without them the one registered Canvas); without an
event id there is nothing the step can find, so it does nothing.
"""

from __future__ import annotations

import contextlib
import html
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from course_sync.canvas import CanvasClient, CanvasGroup, CanvasNotFound
from course_sync.provisioning import StepContext, course_for, instance_for
from course_sync.worker import StepKind
from kurspakke.db import transaction
from kurspakke.groups.models import CanvasGroupSet, GroupMember, GroupMentor, MentorGroup
from kurspakke.licences.models import AuditEntry, CanvasStatus, Seat, SeatKind
from kurspakke.meetings.models import FORMAT_DIGITAL, Meeting
from kurspakke.models import CanvasInstance, Organisation, utcnow
from kurspakke.outbox.services import StepPark, StepRetry, enqueue
from kurspakke.programmes import programmes_once

GROUP_SYNC = "group.sync"
MEETING_SYNC = "meeting.sync"
GROUP_SET_NAME = "Mentorgrupper"
SET_LEASE_SECONDS = 120.0
# How soon a group step whose members' enrolments are still on their way looks again (the try does not count).
WAIT_FOR_SEATS_SECONDS = 2.0
MAX_NAME = 255


def canvas_group_name(group_name: str, organisation_name: str) -> str:
    """The Canvas group's name: the group's, with its organisation (one course serves every municipality)."""
    return f"{group_name} ({organisation_name})"[:MAX_NAME]


# --- the group set -----------------------------------------------------------------------------------------------


def ensure_group_set(ctx: StepContext, client: CanvasClient, instance_id: int, course_id: str) -> str:
    """The course's group set "Mentorgrupper" (its Canvas id), found or created once however many workers run: the
    creator holds a lease on the ``canvas_group_set`` row; a step that finds the lease taken waits (its try does not
    count) instead of making a second set."""
    now = utcnow()
    with transaction(ctx.sessions) as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        session.execute(
            insert(CanvasGroupSet)
            .values(canvas_instance_id=instance_id, course_id=course_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["canvas_instance_id", "course_id"])
        )
        row = session.scalars(
            select(CanvasGroupSet).where(
                CanvasGroupSet.canvas_instance_id == instance_id, CanvasGroupSet.course_id == course_id
            )
        ).one()
        if row.group_category_id:
            return row.group_category_id
        taken = session.execute(
            update(CanvasGroupSet)
            .where(
                CanvasGroupSet.id == row.id,
                CanvasGroupSet.group_category_id.is_(None),
                (CanvasGroupSet.locked_until.is_(None)) | (CanvasGroupSet.locked_until < now),
            )
            .values(locked_by=ctx.worker_id, locked_until=now + timedelta(seconds=SET_LEASE_SECONDS))
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        row_id = row.id
    if not taken:
        raise StepRetry("the course's group set is being created by another worker", delay=0.5, count=False)
    try:
        ctx.keep_lease()
        # Look before create: a set made by hand, or by a run whose answer was lost, has this exact name.
        existing = [c for c in client.group_categories(course_id) if c.name == GROUP_SET_NAME]
        category = existing[0] if existing else client.create_group_category(course_id, GROUP_SET_NAME)
    except BaseException:
        with transaction(ctx.sessions) as session:  # give the lease back at once: the next try looks again
            session.execute(
                update(CanvasGroupSet)
                .where(CanvasGroupSet.id == row_id, CanvasGroupSet.locked_by == ctx.worker_id)
                .values(locked_by=None, locked_until=None)
                .execution_options(synchronize_session=False)
            )
        raise
    with transaction(ctx.sessions) as session:
        session.execute(
            update(CanvasGroupSet)
            .where(CanvasGroupSet.id == row_id)
            .values(group_category_id=str(category.id), locked_by=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )
    return str(category.id)


def forget_group_set(ctx: StepContext, instance_id: int, course_id: str) -> None:
    """Canvas no longer has the set (deleted by hand): the next run looks for it again or makes it anew."""
    with transaction(ctx.sessions) as session:
        session.execute(
            update(CanvasGroupSet)
            .where(CanvasGroupSet.canvas_instance_id == instance_id, CanvasGroupSet.course_id == course_id)
            .values(group_category_id=None, locked_by=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )


# --- group.sync --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupPlan:
    group_id: int
    name: str  # the Canvas group's name
    instance: CanvasInstance
    course_id: str
    canvas_group_id: str | None
    member_ids: tuple[str, ...]  # Canvas user ids of the participants and mentors who are enrolled
    waiting: int  # people whose enrolment is still on its way
    taken: frozenset[str]  # Canvas group ids other mentor groups have recorded


@dataclass(frozen=True)
class GonePlan:
    """What is known of a deleted group's Canvas mirror."""

    instance: CanvasInstance
    course_id: str
    category_id: str | None
    canvas_group_id: str | None
    name: str | None
    taken: frozenset[str]


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _recorded_groups(session: Session, but: int | None) -> frozenset[str]:
    query = select(MentorGroup.canvas_group_id).where(MentorGroup.canvas_group_id.is_not(None))
    if but is not None:
        query = query.where(MentorGroup.id != but)
    return frozenset(v for v in session.scalars(query) if v)


def _where(
    session: Session, organisation_id: int | None, current: int | None, programme_id: str
) -> tuple[CanvasInstance, str]:
    """The Canvas instance and course id (raises StepRetry while the course is not linked)."""
    instance = instance_for(session, organisation_id or 0, current, programme_id)
    link = course_for(session, instance, programme_id)
    if link is None or not link.canvas_course_id:
        raise StepRetry("the programme's course on this Canvas is not linked yet")
    session.expunge(instance)
    return instance, link.canvas_course_id


def _seat_state(seat: Seat | None, instance_id: int) -> str | None:
    """The seat's Canvas user id when it is enrolled in this Canvas; "" while its enrolment is on its way; None when
    it will not be (none, revoked, expired, parked as failed, or in another Canvas)."""
    if seat is None or seat.revoked_at is not None:
        return None
    if seat.canvas_instance_id not in (None, instance_id):
        return None
    if seat.canvas_status is CanvasStatus.ACTIVE and seat.canvas_user_id:
        return seat.canvas_user_id
    if seat.canvas_status is CanvasStatus.PENDING:
        return ""
    return None


def _group_plan(session: Session, group: MentorGroup) -> GroupPlan:
    organisation = session.get(Organisation, group.organisation_id)
    assert organisation is not None  # a group's organisation cannot be deleted (RESTRICT)
    instance, course_id = _where(session, organisation.id, organisation.canvas_instance_id, group.programme_id)
    states: list[str | None] = []
    seats = session.scalars(
        select(Seat)
        .join(GroupMember, GroupMember.seat_id == Seat.id)
        .where(GroupMember.group_id == group.id)
        .order_by(GroupMember.joined_at, GroupMember.id)
    )
    states += [_seat_state(seat, instance.id) for seat in seats]
    mentor_ids = list(session.scalars(select(GroupMentor.person_id).where(GroupMentor.group_id == group.id)))
    if mentor_ids:
        # A mentor's own seat (a TA enrolment); a mentor who also holds a participant seat is enrolled through it.
        held: dict[int, Seat] = {}
        for seat in session.scalars(
            select(Seat).where(
                Seat.person_id.in_(mentor_ids),
                Seat.organisation_id == group.organisation_id,
                Seat.programme_id == group.programme_id,
                Seat.revoked_at.is_(None),
            )
        ):
            if seat.person_id not in held or seat.kind is SeatKind.MENTOR:
                held[seat.person_id] = seat
        states += [_seat_state(held.get(person_id), instance.id) for person_id in mentor_ids]
    members = tuple(dict.fromkeys(s for s in states if s))
    return GroupPlan(
        group_id=group.id,
        name=canvas_group_name(group.name, organisation.name),
        instance=instance,
        course_id=course_id,
        canvas_group_id=group.canvas_group_id,
        member_ids=members,
        waiting=sum(1 for s in states if s == ""),
        taken=_recorded_groups(session, but=group.id),
    )


def _gone_plan(session: Session, group_id: int, payload: dict[str, Any]) -> GonePlan | None:
    """The deleted group's Canvas mirror, or None when nothing of it can have reached Canvas."""
    canvas_group_id = payload.get("canvas_group_id")
    organisation_id = _int(payload.get("organisation_id"))
    programme_id = payload.get("programme_id") if isinstance(payload.get("programme_id"), str) else None
    name: str | None = None
    entry = session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.entity_type == "group",
            AuditEntry.entity_id == str(group_id),
            AuditEntry.action == "group.delete",
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).first()
    before = entry.before if entry is not None and isinstance(entry.before, dict) else {}
    organisation_id = organisation_id or _int(before.get("organisation_id"))
    if programme_id is None and isinstance(before.get("programme_id"), str):
        programme_id = before["programme_id"]
    organisation = session.get(Organisation, organisation_id) if organisation_id else None
    if organisation is not None and isinstance(before.get("name"), str):
        name = canvas_group_name(before["name"], organisation.name)
    if canvas_group_id is None and name is None:
        return None
    if programme_id is None:
        raise StepPark("a deleted group's step names no programme; cannot tell which Canvas holds its group")
    try:
        instance, course_id = _where(
            session, organisation_id, organisation.canvas_instance_id if organisation else None, programme_id
        )
    except StepRetry:
        return None  # no course linked anywhere: nothing can have been made in Canvas
    row = session.scalars(
        select(CanvasGroupSet).where(
            CanvasGroupSet.canvas_instance_id == instance.id, CanvasGroupSet.course_id == course_id
        )
    ).one_or_none()
    return GonePlan(
        instance=instance,
        course_id=course_id,
        category_id=row.group_category_id if row else None,
        canvas_group_id=str(canvas_group_id) if canvas_group_id is not None else None,
        name=name,
        taken=_recorded_groups(session, but=None),
    )


def _finish(ctx: StepContext) -> None:
    with transaction(ctx.sessions) as session:
        if not ctx.finish(session):
            session.rollback()


def _remove_group(ctx: StepContext, plan: GonePlan | None) -> None:
    if plan is not None:
        client = ctx.client_for(plan.instance)
        doomed: list[str] = []
        if plan.canvas_group_id:
            doomed.append(plan.canvas_group_id)
        elif plan.name and plan.category_id:
            try:
                doomed = [
                    str(g.id)
                    for g in client.groups_in_category(plan.category_id)
                    if g.name == plan.name and str(g.id) not in plan.taken
                ]
            except CanvasNotFound:  # the whole set is gone, and the group with it
                doomed = []
        ctx.keep_lease()
        for group_id in doomed:
            with contextlib.suppress(CanvasNotFound):  # already gone (a repeated run, or deleted by hand)
                client.delete_group(group_id)
    _finish(ctx)


def _find_group(client: CanvasClient, plan: GroupPlan, category_id: str) -> CanvasGroup | None:
    """The group's Canvas group in the set: by its stored id, else by name (one no other mentor group has)."""
    if plan.canvas_group_id:
        try:
            found = client.group(plan.canvas_group_id)
        except CanvasNotFound:
            found = None
        if found is not None and str(found.group_category_id) == category_id:
            return found
    for candidate in client.groups_in_category(category_id):
        if candidate.name == plan.name and str(candidate.id) not in plan.taken:
            return candidate
    return None


def _record_group(ctx: StepContext, group_id: int, canvas_group_id: str | None) -> None:
    with transaction(ctx.sessions) as session:
        session.execute(
            update(MentorGroup)
            .where(MentorGroup.id == group_id)
            .values(canvas_group_id=canvas_group_id)
            .execution_options(synchronize_session=False)
        )


def sync_group(ctx: StepContext, payload: dict[str, Any]) -> None:
    """Make Canvas match the mentor group; see the module's docstring."""
    group_id = _int(payload.get("group_id"))
    if group_id is None:
        raise StepPark("the step names no group")
    with transaction(ctx.read()) as session:
        group = session.get(MentorGroup, group_id)
        plan = _group_plan(session, group) if group is not None else None
        gone = _gone_plan(session, group_id, payload) if group is None else None
    if plan is None:
        _remove_group(ctx, gone)
        return
    client = ctx.client_for(plan.instance)
    category_id = ensure_group_set(ctx, client, plan.instance.id, plan.course_id)
    try:
        canvas_group = _find_group(client, plan, category_id)
        if canvas_group is None:
            ctx.keep_lease()
            canvas_group = client.create_group(category_id, plan.name)
            # Recorded at once: a run that fails after this finds the group by its id, not only by name.
            _record_group(ctx, plan.group_id, str(canvas_group.id))
    except CanvasNotFound:
        forget_group_set(ctx, plan.instance.id, plan.course_id)
        raise StepRetry("the group set is gone from Canvas; it is made again", delay=0.0) from None
    ctx.keep_lease()
    try:
        updated = client.update_group(
            canvas_group.id,
            name=plan.name if canvas_group.name != plan.name else None,
            members=plan.member_ids,
        )
    except CanvasNotFound:
        _record_group(ctx, plan.group_id, None)
        raise StepRetry("the group is gone from Canvas; it is made again", delay=0.0) from None
    in_group = updated.user_ids
    if in_group is None:  # an answer without its users: ask for them
        in_group = tuple(u.id for u in client.group_members(updated.id))
    left_out = [m for m in plan.member_ids if int(m) not in in_group]
    with transaction(ctx.sessions) as session:
        group = session.get(MentorGroup, plan.group_id)
        if group is None:  # deleted meanwhile: its own step (queued after this one) removes it from Canvas
            ctx.finish(session)
            return
        moved = plan.canvas_group_id is not None and plan.canvas_group_id != str(updated.id)
        renamed = canvas_group.name != plan.name
        group.canvas_group_id = str(updated.id)
        done = not left_out and not plan.waiting
        if done and not ctx.finish(session):
            session.rollback()
            return
        if moved or renamed:
            # The meetings' events carry the group's name, and live in the group's calendar; their steps run after
            # this one (the same subject).
            for meeting_id in session.scalars(select(Meeting.id).where(Meeting.group_id == plan.group_id)):
                enqueue(session, MEETING_SYNC, f"group:{plan.group_id}", {"meeting_id": meeting_id})
    if left_out:
        raise StepPark(
            f"Canvas left Canvas users {', '.join(left_out)} out of the group {plan.name!r}: they are not in the "
            "course in Canvas (an enrolment deleted there?)"
        )
    if plan.waiting:
        raise StepRetry(
            f"{plan.waiting} of the group's people are not enrolled in Canvas yet; they are added when they are",
            delay=WAIT_FOR_SEATS_SECONDS,
            count=False,
        )


# --- meeting.sync ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeetingPlan:
    meeting_id: int
    group_id: int | None
    instance: CanvasInstance
    context: str
    title: str
    start_at: datetime
    end_at: datetime
    location_name: str
    description: str
    event_id: str | None
    event_context: str | None
    taken: frozenset[str]  # event ids other meetings have recorded


def _session_title(programme_id: str, session_key: str) -> str:
    programme = programmes_once().get(programme_id)
    if programme is None:
        raise StepPark(f"the meeting's programme {programme_id!r} is not in the content files")
    found = next((s for s in programme.sessions if s.id == session_key), None)
    return found.title if found is not None else session_key


def _meeting_plan(session: Session, meeting: Meeting) -> MeetingPlan:
    title = _session_title(meeting.programme_id, meeting.session_key)
    if meeting.group_id is not None:
        group = session.get(MentorGroup, meeting.group_id)
        assert group is not None  # a group with meetings cannot be deleted (RESTRICT)
        organisation = session.get(Organisation, group.organisation_id)
        assert organisation is not None
        instance, _ = _where(session, organisation.id, organisation.canvas_instance_id, meeting.programme_id)
        if not group.canvas_group_id:
            raise StepRetry("the meeting's group is not in Canvas yet (its group.sync makes it first)")
        context = f"group_{group.canvas_group_id}"
        title = f"{title} – {group.name}"
    else:
        organisation = session.get(Organisation, meeting.organisation_id) if meeting.organisation_id else None
        instance, course_id = _where(
            session,
            organisation.id if organisation else None,
            organisation.canvas_instance_id if organisation else None,
            meeting.programme_id,
        )
        context = f"course_{course_id}"
        if organisation is not None:
            title = f"{title} – {organisation.name}"
    parts: list[str] = []
    if meeting.format == FORMAT_DIGITAL and meeting.video_url:
        url = html.escape(meeting.video_url, quote=True)
        parts.append(f'<p>Digitalt møte: <a href="{url}">{url}</a></p>')
    if meeting.place:
        parts.append(f"<p>Sted: {html.escape(meeting.place)}</p>")
    location = meeting.place or ("Digitalt" if meeting.format == FORMAT_DIGITAL else "")
    taken = frozenset(
        v
        for v in session.scalars(
            select(Meeting.canvas_event_id).where(
                Meeting.id != meeting.id, Meeting.canvas_event_id.is_not(None), Meeting.canvas_context == context
            )
        )
        if v
    )
    return MeetingPlan(
        meeting_id=meeting.id,
        group_id=meeting.group_id,
        instance=instance,
        context=context,
        title=title[:MAX_NAME],
        start_at=meeting.starts_at,
        end_at=meeting.starts_at + timedelta(minutes=meeting.duration_minutes),
        location_name=location,
        description="".join(parts),
        event_id=meeting.canvas_event_id,
        event_context=meeting.canvas_context,
        taken=taken,
    )


def _instance_of_gone_meeting(session: Session, payload: dict[str, Any]) -> CanvasInstance:
    programme_id = payload.get("programme_id")
    group = session.get(MentorGroup, _int(payload.get("group_id")) or 0)
    organisation_id = group.organisation_id if group is not None else _int(payload.get("organisation_id"))
    if group is not None:
        programme_id = group.programme_id
    if isinstance(programme_id, str):
        organisation = session.get(Organisation, organisation_id) if organisation_id else None
        instance, _ = _where(
            session, organisation_id, organisation.canvas_instance_id if organisation else None, programme_id
        )
        return instance
    instances = list(session.scalars(select(CanvasInstance)))
    if len(instances) != 1:
        raise StepPark("a deleted meeting's step names no programme; cannot tell which Canvas holds its event")
    session.expunge(instances[0])
    return instances[0]


def sync_meeting(ctx: StepContext, payload: dict[str, Any]) -> None:
    """Make the meeting's Canvas calendar event match it; see the module's docstring."""
    meeting_id = _int(payload.get("meeting_id"))
    if meeting_id is None:
        raise StepPark("the step names no meeting")
    with transaction(ctx.read()) as session:
        meeting = session.get(Meeting, meeting_id)
        plan = _meeting_plan(session, meeting) if meeting is not None else None
        gone_event = _int(payload.get("canvas_event_id")) if meeting is None else None
        gone_instance = _instance_of_gone_meeting(session, payload) if gone_event is not None else None
    if plan is None:
        if gone_event is not None and gone_instance is not None:
            with contextlib.suppress(CanvasNotFound):  # already gone
                ctx.client_for(gone_instance).delete_calendar_event(gone_event)
        _finish(ctx)
        return
    client = ctx.client_for(plan.instance)
    fields: dict[str, Any] = {
        "title": plan.title,
        "start_at": plan.start_at,
        "end_at": plan.end_at,
        "location_name": plan.location_name,
        "description": plan.description,
    }
    event = None
    if plan.event_id and plan.event_context == plan.context:
        try:
            event = client.update_calendar_event(plan.event_id, **fields)
        except CanvasNotFound:
            event = None  # deleted in Canvas: made again below
    elif plan.event_id:
        # The group was made again in Canvas (a new id): the event moves to the new group's calendar.
        with contextlib.suppress(CanvasNotFound):
            client.delete_calendar_event(plan.event_id)
    if event is None:
        # Look before create: an event of ours whose answer was lost has this title and no meeting recorded it.
        lost = [
            e for e in client.calendar_events([plan.context]) if e.title == plan.title and str(e.id) not in plan.taken
        ]
        ctx.keep_lease()
        try:
            if lost:
                event = client.update_calendar_event(lost[0].id, **fields)
            else:
                event = client.create_calendar_event(plan.context, **fields)
        except CanvasNotFound:
            if plan.group_id is None:
                raise
            # The group is gone from Canvas: its group.sync makes it again, then this meeting follows it.
            with transaction(ctx.sessions) as session:
                if not ctx.finish(session):
                    session.rollback()
                    return
                subject = f"group:{plan.group_id}"
                ctx.then(session, GROUP_SYNC, subject, {"group_id": plan.group_id})
                ctx.then(session, MEETING_SYNC, subject, {"meeting_id": plan.meeting_id})
            return
    with transaction(ctx.sessions) as session:
        if not ctx.finish(session):
            session.rollback()
            return
        session.execute(
            update(Meeting)
            .where(Meeting.id == plan.meeting_id)
            # updated_at stays the time a person changed the meeting
            .values(canvas_event_id=str(event.id), canvas_context=plan.context, updated_at=Meeting.updated_at)
            .execution_options(synchronize_session=False)
        )


def group_step_kinds() -> dict[str, StepKind]:
    """The step kinds of this module, for course_sync.steps.step_kinds to add to the worker's."""
    return {GROUP_SYNC: StepKind(sync_group), MEETING_SYNC: StepKind(sync_meeting)}


__all__ = [
    "GROUP_SET_NAME",
    "GROUP_SYNC",
    "MEETING_SYNC",
    "canvas_group_name",
    "ensure_group_set",
    "forget_group_set",
    "group_step_kinds",
    "sync_group",
    "sync_meeting",
]
