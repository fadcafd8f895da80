"""Our Canvas client's group sets, groups and calendar events, against the simulator's REST half over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server

from canvas_sim import SimConfig, SimPlatform, create_sim_app
from canvas_sim.keys import private_pem
from canvas_sim.rest import CanvasRest, User
from course_sync.canvas import (
    CanvasBadResponse,
    CanvasClient,
    CanvasNotFound,
    CanvasOutcomeUnknown,
)
from course_sync.canvas.client import MAX_CONTEXT_CODES, _calendar_event, _group, _group_category

TOKEN = "sim-canvas-api-token"
CREATE_SET = "POST /api/v1/courses/:course_id/group_categories"
LIST_SETS = "GET /api/v1/courses/:course_id/group_categories"
CREATE_GROUP = "POST /api/v1/group_categories/:group_category_id/groups"
UPDATE_GROUP = "PUT /api/v1/groups/:group_id"
CREATE_EVENT = "POST /api/v1/calendar_events"
UPDATE_EVENT = "PUT /api/v1/calendar_events/:event_id"
LIST_EVENTS = "GET /api/v1/calendar_events"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def platform_pem() -> bytes:
    return private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass
class Live:
    url: str
    rest: CanvasRest
    config: SimConfig
    sleeps: list[float] = field(default_factory=list)

    def client(self, **kw: float) -> CanvasClient:
        options: dict[str, float] = {"timeout": 2.0, "max_tries": 3, "retry_base": 0.01, "retry_max": 0.05} | kw
        return CanvasClient(self.url, TOKEN, sleep=self.sleeps.append, **options)  # type: ignore[arg-type]

    def enrolled(self) -> list[int]:
        return sorted({e.user_id for e in self.rest.enrollments.values()})


@pytest.fixture
def live(platform_pem: bytes) -> Iterator[Live]:
    config = SimConfig(private_key_pem=platform_pem)
    rest = CanvasRest(config)
    server = make_server("127.0.0.1", 0, create_sim_app(platform=SimPlatform(config), rest=rest), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(f"http://127.0.0.1:{server.server_port}", rest, config)
    rest.close()
    server.shutdown()
    server.server_close()
    thread.join()


# ------------------------------------------------------------------- group sets
def test_a_group_set_is_created_once_and_found_again_by_its_name(live: Live) -> None:
    client = live.client()
    course = live.config.course_id
    made = client.create_group_category(course, "Mentorgrupper")
    assert (made.name, made.course_id) == ("Mentorgrupper", course)
    # Canvas refuses the name as in use; the client answers with the set that has it.
    assert client.create_group_category(course, "Mentorgrupper") == made
    assert client.group_categories(course) == [made]
    assert client.group_category(made.id) == made
    assert len(live.rest.group_data.active_categories(course)) == 1


def test_a_group_set_whose_answer_was_lost_is_found_not_made_twice(live: Live) -> None:
    live.rest.inject("drop_after", endpoint=CREATE_SET, times=1)
    made = live.client().create_group_category(live.config.course_id, "Mentorgrupper")
    assert made.name == "Mentorgrupper"
    assert len(live.rest.group_data.active_categories(live.config.course_id)) == 1
    assert live.rest.count(CREATE_SET) == 1 and live.rest.count(LIST_SETS) == 1


def test_a_group_set_that_is_gone_is_not_found(live: Live) -> None:
    with pytest.raises(CanvasNotFound):
        live.client().group_category(4242)
    with pytest.raises(CanvasNotFound):
        live.client().groups_in_category(4242)
    with pytest.raises(CanvasNotFound):
        live.client().create_group(4242, "Gruppe 1")


# ---------------------------------------------------------------------- groups
def test_groups_are_listed_over_every_page(live: Live) -> None:
    client = live.client()
    category = client.create_group_category(live.config.course_id, "Mentorgrupper")
    for i in range(105):
        client.create_group(category.id, f"Gruppe {i}")
    groups = client.groups_in_category(category.id)
    assert [g.name for g in groups] == [f"Gruppe {i}" for i in range(105)]
    assert all(g.group_category_id == category.id and g.user_ids is None for g in groups)


def test_members_overwrite_the_group_and_people_outside_the_course_are_left_out(live: Live) -> None:
    client = live.client()
    category = client.create_group_category(live.config.course_id, "Mentorgrupper")
    group = client.create_group(category.id, "Gruppe 1")
    assert group.user_ids == () and group.members_count == 0
    a, b, *_ = live.enrolled()
    with live.rest.lock:
        live.rest.users[777] = User(777, "Ikke Med", "Ikke Med", "Med, Ikke", live.rest.now())

    updated = client.update_group(group.id, members=[a, b, 777])
    assert updated.user_ids == (a, b)  # Canvas leaves out, silently, who is not in the course
    assert {u.id for u in client.group_members(group.id)} == {a, b}

    renamed = client.update_group(group.id, name="Gruppe 1 (Hamar kommune)", members=[b])
    assert (renamed.name, renamed.user_ids) == ("Gruppe 1 (Hamar kommune)", (b,))
    assert client.update_group(group.id, members=[]).user_ids == ()
    assert client.group(group.id).members_count == 0
    with pytest.raises(ValueError):
        client.update_group(group.id)


def test_an_update_is_retried_after_a_5xx_but_a_create_is_not(live: Live) -> None:
    client = live.client()
    category = client.create_group_category(live.config.course_id, "Mentorgrupper")
    group = client.create_group(category.id, "Gruppe 1")
    live.rest.inject("status", endpoint=UPDATE_GROUP, status=503, times=1)
    assert client.update_group(group.id, members=[live.enrolled()[0]]).user_ids == (live.enrolled()[0],)
    assert live.rest.count(UPDATE_GROUP) == 2

    live.rest.inject("drop_after", endpoint=CREATE_GROUP, times=1)
    with pytest.raises(CanvasOutcomeUnknown):
        client.create_group(category.id, "Gruppe 2")
    # Canvas made it; the caller looks before it creates again.
    assert [g.name for g in client.groups_in_category(category.id)] == ["Gruppe 1", "Gruppe 2"]
    assert live.rest.count(CREATE_GROUP) == 2


def test_a_deleted_group_is_not_found_again(live: Live) -> None:
    client = live.client()
    category = client.create_group_category(live.config.course_id, "Mentorgrupper")
    group = client.create_group(category.id, "Gruppe 1")
    assert client.delete_group(group.id).id == group.id
    with pytest.raises(CanvasNotFound):
        client.delete_group(group.id)
    with pytest.raises(CanvasNotFound):
        client.group(group.id)
    with pytest.raises(CanvasNotFound):
        client.update_group(group.id, members=[])
    assert client.groups_in_category(category.id) == []


# -------------------------------------------------------------- calendar events
def test_calendar_events_are_created_changed_listed_and_deleted(live: Live) -> None:
    client = live.client()
    category = client.create_group_category(live.config.course_id, "Mentorgrupper")
    group = client.create_group(category.id, "Gruppe 1")
    event = client.create_calendar_event(
        f"group_{group.id}",
        "Samling 1 – Gruppe 1",
        START,
        START + timedelta(minutes=90),
        location_name="Rådhuset",
        description="<p>Sted: Rådhuset</p>",
    )
    assert (event.context_code, event.title, event.start_at, event.end_at, event.location_name) == (
        f"group_{group.id}",
        "Samling 1 – Gruppe 1",
        START,
        START + timedelta(minutes=90),
        "Rådhuset",
    )
    assert event.workflow_state == "active"

    later = START + timedelta(days=7)
    moved = client.update_calendar_event(event.id, start_at=later, end_at=later + timedelta(hours=2))
    assert (moved.start_at, moved.end_at, moved.title) == (later, later + timedelta(hours=2), event.title)
    cleared = client.update_calendar_event(event.id, location_name="")
    assert cleared.location_name is None

    assert [e.id for e in client.calendar_events([f"group_{group.id}"])] == [event.id]
    assert client.calendar_events([f"group_{group.id}"], START, START + timedelta(days=1)) == []
    assert [e.id for e in client.calendar_events([f"group_{group.id}"], later, later + timedelta(days=1))] == [event.id]
    assert client.delete_calendar_event(event.id).workflow_state == "deleted"
    with pytest.raises(CanvasNotFound):
        client.delete_calendar_event(event.id)
    with pytest.raises(CanvasNotFound):
        client.update_calendar_event(event.id, title="x")
    assert client.calendar_events([f"group_{group.id}"]) == []


def test_many_contexts_are_asked_for_a_few_at_a_time(live: Live) -> None:
    client = live.client()
    category = client.create_group_category(live.config.course_id, "Mentorgrupper")
    groups = [client.create_group(category.id, f"Gruppe {i}") for i in range(MAX_CONTEXT_CODES + 2)]
    for g in groups:
        client.create_calendar_event(f"group_{g.id}", f"Møte {g.id}", START, START + timedelta(hours=1))
    events = client.calendar_events([f"group_{g.id}" for g in groups])
    assert sorted(e.title for e in events) == sorted(f"Møte {g.id}" for g in groups)
    assert live.rest.count(LIST_EVENTS) == 2


def test_an_event_in_a_context_that_is_gone_is_refused(live: Live) -> None:
    with pytest.raises(CanvasNotFound):
        live.client().create_calendar_event("group_4242", "x", START, START + timedelta(hours=1))


def test_an_event_create_whose_answer_was_lost_is_not_repeated(live: Live) -> None:
    live.rest.inject("drop_after", endpoint=CREATE_EVENT, times=1)
    context = f"course_{live.config.course_id}"
    with pytest.raises(CanvasOutcomeUnknown):
        live.client().create_calendar_event(context, "Oppstart", START, START + timedelta(hours=1))
    assert live.rest.count(CREATE_EVENT) == 1
    assert [e.title for e in live.client().calendar_events([context])] == ["Oppstart"]


def test_bad_times_are_refused_before_calling_canvas(live: Live) -> None:
    client = live.client()
    context = f"course_{live.config.course_id}"
    with pytest.raises(ValueError):
        client.create_calendar_event(context, "x", START, START - timedelta(minutes=1))
    with pytest.raises(ValueError):
        client.create_calendar_event(context, "x", START.replace(tzinfo=None), START)
    with pytest.raises(ValueError):
        client.update_calendar_event(1)
    assert live.rest.count(CREATE_EVENT) == 0


# ---------------------------------------------------------------------- shapes
@pytest.mark.parametrize(
    ("parse", "data"),
    [
        (_group_category, {"name": "Mentorgrupper"}),
        (_group_category, {"id": "1", "name": "Mentorgrupper"}),
        (_group, {"id": 1, "name": None}),
        (_group, {"id": 1, "name": "G", "users": [{"name": "no id"}]}),
        (_group, {"id": 1, "name": "G", "members_count": True}),
        (_calendar_event, {"id": 1, "title": "x", "workflow_state": "active"}),
        (_calendar_event, {"id": 1, "context_code": "course_1", "workflow_state": "active", "start_at": "tomorrow"}),
        (_calendar_event, {"id": 1, "context_code": "course_1", "workflow_state": "active", "end_at": "2026-12-01"}),
    ],
)
def test_answers_of_the_wrong_shape_are_refused(parse: object, data: object) -> None:
    with pytest.raises(CanvasBadResponse):
        parse(data)  # type: ignore[operator]
