"""Mentor groups and their meetings carried to Canvas by the outbox worker (group.sync, meeting.sync), against the
simulator's REST half over real HTTP, on SQLite and PostgreSQL: the group set "Mentorgrupper", one Canvas group per
mentor group with its participants and mentors, calendar events in the group's calendar; idempotent; Canvas's
refusals parked with a clear error."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from canvas_sim.groups import Group
from course_sync import group_sync
from course_sync.group_sync import GROUP_SYNC, MEETING_SYNC, group_step_kinds
from course_sync.provisioning import client_factory
from course_sync.steps import step_kinds
from course_sync.worker import EXIT_IDLE, EXIT_PARKED, StepKind, Worker
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.groups import services as groups
from kurspakke.groups.models import CanvasGroupSet, MentorGroup
from kurspakke.licences.models import Seat
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person, revoke_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.meetings.models import FORMAT_DIGITAL, FORMAT_PHYSICAL, Meeting
from kurspakke.models import OrderSource, Organisation, OutboxStep, StepStatus
from kurspakke.outbox.services import enqueue
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_organisation
from tests.support.canvas_live import FAST, LiveCanvas, register

PROGRAMME = load_programmes()["lindrende-behandling"]
SESSION_TITLES = {s.id: s.title for s in PROGRAMME.sessions}
ACTOR = "licence admin test"
ORG = "Hamar kommune"
CREATE_SET = "POST /api/v1/courses/:course_id/group_categories"
CREATE_GROUP = "POST /api/v1/group_categories/:group_category_id/groups"
CREATE_EVENT = "POST /api/v1/calendar_events"
START = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)


def worker(sessions: sessionmaker[Session], encryptor: Encryptor, kinds: dict[str, StepKind] | None = None) -> Worker:
    settings = {"timeout": 2.0, "max_tries": 3, "retry_base": 0.01, "retry_max": 0.05}
    every = step_kinds() | group_step_kinds()
    return Worker(sessions, client_factory(encryptor, **settings), every if kinds is None else kinds, FAST)


def run(sessions: sessionmaker[Session], encryptor: Encryptor) -> int:
    return worker(sessions, encryptor).run_until_idle(max_seconds=30)


@dataclasses.dataclass
class Org:
    id: int
    participants: list[int]  # seat ids
    mentor: int  # the mentor's seat id


def setup_org(
    sessions: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor, participants: int = 3, *, name: str = ORG
) -> Org:
    """A registered Canvas with the course linked, an organisation with participants and a mentor (not yet run)."""
    with transaction(sessions) as session:
        if name == ORG:
            register(session, canvas, encryptor)
        orgnr = "970540008" if name == ORG else "974725215"
        org = get_or_create_organisation(session, name=name, orgnr=orgnr)
        order = create_order(
            session,
            organisation=org,
            programme=PROGRAMME,
            quantity=participants,
            source=OrderSource.MANUAL,
            actor=ACTOR,
        )
        confirm_order(session, order, actor=ACTOR)
        domain = name.split()[0].lower()
        seats = [
            assign_person(
                session, org, PROGRAMME, PersonInput(f"Deltaker {n}", f"deltaker{n}@{domain}.kommune.no"), actor=ACTOR
            ).id
            for n in range(participants)
        ]
        mentor = appoint_mentor(
            session, org, PROGRAMME, PersonInput("Mona Mentor", f"mona@{domain}.kommune.no"), actor=ACTOR
        )
        return Org(org.id, seats, mentor.id)


def make_group(sessions: sessionmaker[Session], org: Org, name: str, seats: list[int], *, mentor: bool = True) -> int:
    with transaction(sessions) as session:
        organisation = session.get(Organisation, org.id)
        assert organisation is not None
        group = groups.create_group(session, organisation, PROGRAMME.id, name, actor=ACTOR)
        if seats:
            groups.add_members(session, group, [session.get(Seat, s) for s in seats], actor=ACTOR)  # type: ignore[misc]
        if mentor:
            mentor_seat = session.get(Seat, org.mentor)
            assert mentor_seat is not None
            groups.add_mentor(session, group, mentor_seat.person, actor=ACTOR)
        return group.id


def canvas_ids(sessions: sessionmaker[Session], seat_ids: list[int]) -> set[int]:
    with sessions() as session:
        ids = {int(session.get(Seat, s).canvas_user_id or 0) for s in seat_ids}  # type: ignore[union-attr]
    assert 0 not in ids
    return ids


def canvas_group_of(sessions: sessionmaker[Session], canvas: LiveCanvas, group_id: int) -> Group:
    with sessions() as session:
        group = session.get(MentorGroup, group_id)
        assert group is not None and group.canvas_group_id is not None
        found = canvas.rest.group_data.groups[int(group.canvas_group_id)]
    assert not found.deleted
    return found


def the_set(canvas: LiveCanvas) -> int:
    categories = canvas.rest.group_data.active_categories(canvas.config.course_id)
    assert [c.name for c in categories] == ["Mentorgrupper"]
    return categories[0].id


def sync_again(sessions: sessionmaker[Session], group_ids: list[int]) -> None:
    with transaction(sessions) as session:
        for group_id in group_ids:
            enqueue(session, GROUP_SYNC, f"group:{group_id}", {"group_id": group_id})


def add_meeting(
    sessions: sessionmaker[Session],
    session_key: str,
    *,
    group_id: int | None = None,
    organisation_id: int | None = None,
    starts_at: datetime = START,
    minutes: int = 120,
    format: str = FORMAT_PHYSICAL,
    place: str = "",
    video_url: str = "",
) -> int:
    """A meeting and its step, as kurspakke.meetings' services write them."""
    with transaction(sessions) as session:
        meeting = Meeting(
            programme_id=PROGRAMME.id,
            session_key=session_key,
            group_id=group_id,
            organisation_id=organisation_id,
            starts_at=starts_at,
            duration_minutes=minutes,
            format=format,
            place=place,
            video_url=video_url,
        )
        session.add(meeting)
        session.flush()
        subject = f"group:{group_id}" if group_id is not None else f"meeting:{meeting.id}"
        enqueue(session, MEETING_SYNC, subject, {"meeting_id": meeting.id})
        return meeting.id


def steps(sessions: sessionmaker[Session], kind: str) -> list[OutboxStep]:
    with sessions() as session:
        return list(session.scalars(select(OutboxStep).where(OutboxStep.kind == kind).order_by(OutboxStep.id)))


# ------------------------------------------------------------------------ groups
def test_a_group_becomes_a_canvas_group_of_the_set_mentorgrupper_with_its_participants_and_mentors(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor)
    group_id = make_group(session_factory, org, "Gruppe 1", org.participants[:2])

    assert run(session_factory, encryptor) == EXIT_IDLE

    category_id = the_set(canvas)
    canvas_group = canvas_group_of(session_factory, canvas, group_id)
    assert canvas_group.name == f"Gruppe 1 ({ORG})"
    assert canvas_group.category_id == category_id
    assert set(canvas_group.members) == canvas_ids(session_factory, [*org.participants[:2], org.mentor])
    with session_factory() as session:
        row = session.scalars(select(CanvasGroupSet)).one()
        assert (row.group_category_id, row.locked_by) == (str(category_id), None)
    assert {s.status for s in steps(session_factory, GROUP_SYNC)} == {StepStatus.DONE}

    # Idempotent: the same step again (and again) makes no second set or group.
    for _ in range(2):
        sync_again(session_factory, [group_id])
        assert run(session_factory, encryptor) == EXIT_IDLE
    assert canvas.rest.count(CREATE_SET) == 1 and canvas.rest.count(CREATE_GROUP) == 1
    assert len(canvas.rest.group_data.active_groups()) == 1
    assert set(canvas_group_of(session_factory, canvas, group_id).members) == set(canvas_group.members)


def test_two_organisations_share_the_set_but_never_a_group(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    hamar = setup_org(session_factory, canvas, encryptor, 1)
    elverum = setup_org(session_factory, canvas, encryptor, 1, name="Elverum kommune")
    ours = make_group(session_factory, hamar, "Gruppe 1", hamar.participants)
    theirs = make_group(session_factory, elverum, "Gruppe 1", elverum.participants)

    assert run(session_factory, encryptor) == EXIT_IDLE

    the_set(canvas)
    a, b = (canvas_group_of(session_factory, canvas, g) for g in (ours, theirs))
    assert (a.name, b.name) == (f"Gruppe 1 ({ORG})", "Gruppe 1 (Elverum kommune)")
    assert set(a.members) == canvas_ids(session_factory, [*hamar.participants, hamar.mentor])
    assert set(b.members) == canvas_ids(session_factory, [*elverum.participants, elverum.mentor])


def test_one_group_set_per_course_however_many_workers(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    import threading

    org = setup_org(session_factory, canvas, encryptor, 6)
    assert run(session_factory, encryptor) == EXIT_IDLE
    group_ids = [
        make_group(session_factory, org, f"Gruppe {n}", [seat], mentor=False) for n, seat in enumerate(org.participants)
    ]
    canvas.rest.set_latency(0.02)
    workers = [worker(session_factory, encryptor) for _ in range(3)]
    codes: list[int] = []
    threads = [threading.Thread(target=lambda w=w: codes.append(w.run_until_idle(max_seconds=60))) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert codes == [EXIT_IDLE] * 3
    assert canvas.rest.count(CREATE_SET) == 1
    category_id = the_set(canvas)
    assert canvas.rest.count(CREATE_GROUP) == 6
    for group_id, seat in zip(group_ids, org.participants, strict=True):
        canvas_group = canvas_group_of(session_factory, canvas, group_id)
        assert canvas_group.category_id == category_id
        assert set(canvas_group.members) == canvas_ids(session_factory, [seat])


def test_a_renamed_group_and_a_moved_member_reach_canvas(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor, 4)
    first = make_group(session_factory, org, "Gruppe 1", org.participants[:2])
    second = make_group(session_factory, org, "Gruppe 2", org.participants[2:], mentor=False)
    assert run(session_factory, encryptor) == EXIT_IDLE
    canvas_first = canvas_group_of(session_factory, canvas, first).id

    moved = org.participants[0]
    with transaction(session_factory) as session:
        group = session.get(MentorGroup, first)
        target = session.get(MentorGroup, second)
        seat = session.get(Seat, moved)
        assert group is not None and target is not None and seat is not None
        groups.rename_group(session, group, "Sykehjemsgruppa", actor=ACTOR)
        groups.add_members(session, target, [seat], actor=ACTOR)  # a move
    assert run(session_factory, encryptor) == EXIT_IDLE

    renamed = canvas_group_of(session_factory, canvas, first)
    assert renamed.id == canvas_first and renamed.name == f"Sykehjemsgruppa ({ORG})"
    assert set(renamed.members) == canvas_ids(session_factory, [org.participants[1], org.mentor])
    assert set(canvas_group_of(session_factory, canvas, second).members) == canvas_ids(
        session_factory, [moved, *org.participants[2:]]
    )
    assert canvas.rest.count(CREATE_GROUP) == 2


def test_a_revoked_participant_leaves_the_canvas_group(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor, 2)
    group_id = make_group(session_factory, org, "Gruppe 1", org.participants, mentor=False)
    assert run(session_factory, encryptor) == EXIT_IDLE
    with transaction(session_factory) as session:
        seat = session.get(Seat, org.participants[0])
        assert seat is not None
        revoke_person(session, seat, actor=ACTOR)
    sync_again(session_factory, [group_id])
    assert run(session_factory, encryptor) == EXIT_IDLE
    assert set(canvas_group_of(session_factory, canvas, group_id).members) == canvas_ids(
        session_factory, [org.participants[1]]
    )


def test_people_not_yet_enrolled_are_added_once_their_enrolment_is_done(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(group_sync, "WAIT_FOR_SEATS_SECONDS", 0.05)
    org = setup_org(session_factory, canvas, encryptor, 2)
    group_id = make_group(session_factory, org, "Gruppe 1", org.participants)

    # A worker that runs only group steps: the seats are still on their way.
    assert worker(session_factory, encryptor, group_step_kinds()).run_one()
    group_alone = canvas_group_of(session_factory, canvas, group_id)
    assert group_alone.members == []
    [step] = steps(session_factory, GROUP_SYNC)
    assert step.status is StepStatus.PENDING and step.attempts == 0  # waiting does not use up tries
    assert "not enrolled in Canvas yet" in (step.last_error or "")

    assert run(session_factory, encryptor) == EXIT_IDLE
    assert set(canvas_group_of(session_factory, canvas, group_id).members) == canvas_ids(
        session_factory, [*org.participants, org.mentor]
    )
    assert canvas.rest.count(CREATE_GROUP) == 1


def test_a_deleted_group_is_deleted_in_canvas(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor, 1)
    keep = make_group(session_factory, org, "Gruppe 1", org.participants)
    doomed = make_group(session_factory, org, "Gruppe 2", [])
    assert run(session_factory, encryptor) == EXIT_IDLE
    doomed_canvas = canvas_group_of(session_factory, canvas, doomed).id
    with transaction(session_factory) as session:
        group = session.get(MentorGroup, doomed)
        assert group is not None
        groups.delete_group(session, group, actor=ACTOR)
    assert run(session_factory, encryptor) == EXIT_IDLE

    assert canvas.rest.group_data.groups[doomed_canvas].deleted
    assert [g.id for g in canvas.rest.group_data.active_groups()] == [canvas_group_of(session_factory, canvas, keep).id]
    # The deletion again (a repeated step) finds nothing left to delete and is done.
    sync_again(session_factory, [doomed])
    assert run(session_factory, encryptor) == EXIT_IDLE


def test_a_group_set_deleted_by_hand_in_canvas_is_made_again(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor, 1)
    group_id = make_group(session_factory, org, "Gruppe 1", org.participants)
    assert run(session_factory, encryptor) == EXIT_IDLE
    data = canvas.rest.group_data
    with canvas.rest.lock:
        for category in data.categories.values():
            category.deleted = True
        for group in data.groups.values():
            group.deleted = True
    sync_again(session_factory, [group_id])
    assert run(session_factory, encryptor) == EXIT_IDLE
    new_set = the_set(canvas)
    again = canvas_group_of(session_factory, canvas, group_id)
    assert again.category_id == new_set
    assert set(again.members) == canvas_ids(session_factory, [*org.participants, org.mentor])


# --------------------------------------------------------------------- refusals
def test_a_member_whose_enrolment_was_deleted_in_canvas_is_parked_with_a_clear_error(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor, 2)
    assert run(session_factory, encryptor) == EXIT_IDLE  # everyone enrolled
    gone = canvas_ids(session_factory, [org.participants[0]]).pop()
    with canvas.rest.lock:
        for enrolment in canvas.rest.enrollments.values():
            if enrolment.user_id == gone:
                enrolment.state = "deleted"
    group_id = make_group(session_factory, org, "Gruppe 1", org.participants)

    assert run(session_factory, encryptor) == EXIT_PARKED

    [step] = steps(session_factory, GROUP_SYNC)
    assert step.status is StepStatus.PARKED and step.attempts == 1
    assert f"Canvas left Canvas users {gone} out" in (step.last_error or "")
    assert "not in the course" in (step.last_error or "")
    # The others are in the group; the group's id is kept for the retry.
    assert set(canvas_group_of(session_factory, canvas, group_id).members) == canvas_ids(
        session_factory, [org.participants[1], org.mentor]
    )


def test_a_token_canvas_refuses_parks_the_step_at_once(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor, 1)
    assert run(session_factory, encryptor) == EXIT_IDLE
    canvas.rest.config = dataclasses.replace(canvas.rest.config, rest_api_tokens=("another-token",))
    make_group(session_factory, org, "Gruppe 1", org.participants)

    assert run(session_factory, encryptor) == EXIT_PARKED

    [step] = steps(session_factory, GROUP_SYNC)
    assert step.status is StepStatus.PARKED and step.attempts == 1
    assert "Canvas refused the API token" in (step.last_error or "")
    assert canvas.rest.group_data.categories == {}
    with session_factory() as session:  # the set's lease was given back for the retry
        assert session.scalars(select(CanvasGroupSet.locked_by)).all() == [None]


# ---------------------------------------------------------------------- meetings
def test_a_group_meeting_becomes_an_event_of_the_group_and_follows_its_changes(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor, 1)
    group_id = make_group(session_factory, org, "Gruppe 1", org.participants)
    meeting_id = add_meeting(
        session_factory,
        "samling-1",
        group_id=group_id,
        format=FORMAT_DIGITAL,
        video_url="https://meet.example/abc?x=1&y=2",
    )

    assert run(session_factory, encryptor) == EXIT_IDLE

    canvas_group = canvas_group_of(session_factory, canvas, group_id)
    [event] = canvas.rest.group_data.active_events()
    assert event.context_code == f"group_{canvas_group.id}"
    assert event.title == f"{SESSION_TITLES['samling-1']} – Gruppe 1"
    assert (event.start_at, event.end_at) == (START, START + timedelta(minutes=120))
    assert event.location_name == "Digitalt"
    assert 'href="https://meet.example/abc?x=1&amp;y=2"' in (event.description or "")
    with session_factory() as session:
        meeting = session.get(Meeting, meeting_id)
        assert meeting is not None
        assert (meeting.canvas_event_id, meeting.canvas_context) == (str(event.id), f"group_{canvas_group.id}")

    # Rescheduled and moved to a room: the same event changes.
    later = START + timedelta(days=7, hours=1)
    with transaction(session_factory) as session:
        session.execute(
            update(Meeting)
            .where(Meeting.id == meeting_id)
            .values(starts_at=later, duration_minutes=90, format=FORMAT_PHYSICAL, place="Rådhuset, møterom 2")
        )
        enqueue(session, MEETING_SYNC, f"group:{group_id}", {"meeting_id": meeting_id})
    assert run(session_factory, encryptor) == EXIT_IDLE
    [moved] = canvas.rest.group_data.active_events()
    assert moved.id == event.id
    assert (moved.start_at, moved.end_at, moved.location_name) == (
        later,
        later + timedelta(minutes=90),
        "Rådhuset, møterom 2",
    )
    assert "meet.example" not in (moved.description or "")

    # Renaming the group renames its events (the group's step queues its meetings' steps).
    with transaction(session_factory) as session:
        group = session.get(MentorGroup, group_id)
        assert group is not None
        groups.rename_group(session, group, "Hjemmetjenesten", actor=ACTOR)
    assert run(session_factory, encryptor) == EXIT_IDLE
    [renamed] = canvas.rest.group_data.active_events()
    assert renamed.id == event.id and renamed.title == f"{SESSION_TITLES['samling-1']} – Hjemmetjenesten"

    # Idempotent: the step again makes no second event.
    with transaction(session_factory) as session:
        enqueue(session, MEETING_SYNC, f"group:{group_id}", {"meeting_id": meeting_id})
    assert run(session_factory, encryptor) == EXIT_IDLE
    assert len(canvas.rest.group_data.active_events()) == 1
    assert canvas.rest.count(CREATE_EVENT) == 1


def test_an_organisation_meeting_is_an_event_of_the_course(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor, 1)
    meeting_id = add_meeting(session_factory, "intro", organisation_id=org.id, place="Kulturhuset", minutes=60)
    assert run(session_factory, encryptor) == EXIT_IDLE
    [event] = canvas.rest.group_data.active_events()
    assert event.context_code == f"course_{canvas.config.course_id}"
    assert event.title == f"{SESSION_TITLES['intro']} – {ORG}"
    assert event.location_name == "Kulturhuset" and "Kulturhuset" in (event.description or "")
    assert steps(session_factory, MEETING_SYNC)[0].subject == f"meeting:{meeting_id}"


def test_an_event_whose_create_answer_was_lost_is_found_not_made_twice(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor, 1)
    group_id = make_group(session_factory, org, "Gruppe 1", org.participants)
    assert run(session_factory, encryptor) == EXIT_IDLE
    canvas.rest.inject("drop_after", endpoint=CREATE_EVENT, times=1)
    meeting_id = add_meeting(session_factory, "samling-2", group_id=group_id, place="Rådhuset")

    assert run(session_factory, encryptor) == EXIT_IDLE

    [event] = canvas.rest.group_data.active_events()
    assert canvas.rest.count(CREATE_EVENT) == 1
    with session_factory() as session:
        meeting = session.get(Meeting, meeting_id)
        assert meeting is not None and meeting.canvas_event_id == str(event.id)


def test_an_event_deleted_by_hand_is_made_again_and_a_deleted_meeting_deletes_its_event(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor, 1)
    group_id = make_group(session_factory, org, "Gruppe 1", org.participants)
    meeting_id = add_meeting(session_factory, "samling-3", group_id=group_id, place="Rådhuset")
    assert run(session_factory, encryptor) == EXIT_IDLE
    [first] = canvas.rest.group_data.active_events()
    with canvas.rest.lock:
        first.deleted = True
    with transaction(session_factory) as session:
        enqueue(session, MEETING_SYNC, f"group:{group_id}", {"meeting_id": meeting_id})
    assert run(session_factory, encryptor) == EXIT_IDLE
    [second] = canvas.rest.group_data.active_events()
    assert second.id != first.id

    with transaction(session_factory) as session:
        meeting = session.get(Meeting, meeting_id)
        assert meeting is not None
        event_id = meeting.canvas_event_id
        session.delete(meeting)
        payload = {"meeting_id": meeting_id, "canvas_event_id": event_id, "group_id": group_id}
        enqueue(session, MEETING_SYNC, f"group:{group_id}", payload)
    assert run(session_factory, encryptor) == EXIT_IDLE
    assert canvas.rest.group_data.active_events() == []


def test_a_meeting_of_a_group_canvas_lost_waits_for_the_group_to_be_made_again(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    org = setup_org(session_factory, canvas, encryptor, 1)
    group_id = make_group(session_factory, org, "Gruppe 1", org.participants)
    meeting_id = add_meeting(session_factory, "samling-4", group_id=group_id)
    assert run(session_factory, encryptor) == EXIT_IDLE
    lost = canvas_group_of(session_factory, canvas, group_id)
    with canvas.rest.lock:  # deleted by hand in Canvas, events and all
        lost.deleted = True
        for event in canvas.rest.group_data.events.values():
            event.deleted = True
    with transaction(session_factory) as session:
        session.execute(update(Meeting).where(Meeting.id == meeting_id).values(canvas_event_id=None))
        enqueue(session, MEETING_SYNC, f"group:{group_id}", {"meeting_id": meeting_id})

    assert run(session_factory, encryptor) == EXIT_IDLE

    made_again = canvas_group_of(session_factory, canvas, group_id)
    assert made_again.id != lost.id
    [event] = canvas.rest.group_data.active_events()
    assert event.context_code == f"group_{made_again.id}"


def test_a_canvas_group_holds_only_the_groups_own_people(
    session_factory: sessionmaker[Session], canvas: LiveCanvas, encryptor: Encryptor
) -> None:
    """Other people of the course (the simulator's demo users, another group's participants) never join it."""
    org = setup_org(session_factory, canvas, encryptor, 2)
    group_id = make_group(session_factory, org, "Gruppe 1", org.participants[:1], mentor=False)
    assert run(session_factory, encryptor) == EXIT_IDLE
    members = set(canvas_group_of(session_factory, canvas, group_id).members)
    assert members == canvas_ids(session_factory, org.participants[:1])
    assert not {u.canvas_user_id for u in canvas.config.users} & members
