"""The simulator's group sets, groups, memberships and calendar events: Canvas's shapes, errors and behaviour."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from canvas_sim import SimConfig, SimPlatform, create_sim_app
from canvas_sim.rest import CanvasRest, FakeClock, rest_of

TOKEN = "sim-canvas-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOT_FOUND = {"errors": [{"message": "The specified resource does not exist."}]}


@pytest.fixture
def rest(config: SimConfig) -> CanvasRest:
    return CanvasRest(config, clock=FakeClock())


@pytest.fixture
def api(config: SimConfig, rest: CanvasRest) -> FlaskClient:
    sim: Flask = create_sim_app(platform=SimPlatform(config), rest=rest)
    assert rest_of(sim) is rest
    return sim.test_client()


def get(api: FlaskClient, url: str, query: Any = None) -> TestResponse:
    return api.get(url, query_string=query, headers=AUTH)


def post(api: FlaskClient, url: str, data: Any) -> TestResponse:
    return api.post(url, data=data, headers=AUTH)


def put(api: FlaskClient, url: str, data: Any) -> TestResponse:
    return api.put(url, data=data, headers=AUTH)


def delete(api: FlaskClient, url: str) -> TestResponse:
    return api.delete(url, headers=AUTH)


def enrolled(rest: CanvasRest) -> list[int]:
    """The demo users, who are enrolled in the course."""
    return sorted({e.user_id for e in rest.enrollments.values()})


def new_set(api: FlaskClient, config: SimConfig, name: str = "Mentorgrupper") -> dict[str, Any]:
    resp = post(api, f"/api/v1/courses/{config.course_id}/group_categories", {"name": name})
    assert resp.status_code == 200, resp.json
    assert resp.json is not None
    return resp.json


def new_group(api: FlaskClient, category_id: int, name: str) -> dict[str, Any]:
    resp = post(api, f"/api/v1/group_categories/{category_id}/groups", {"name": name})
    assert resp.status_code == 200, resp.json
    assert resp.json is not None
    return resp.json


# ------------------------------------------------------------------- group sets
def test_a_group_set_has_canvas_shape_and_its_name_is_unique_in_the_course(api: FlaskClient, config: SimConfig) -> None:
    made = new_set(api, config)
    assert made["name"] == "Mentorgrupper" and made["context_type"] == "Course"
    assert made["course_id"] == config.course_id and made["self_signup"] is None and made["role"] is None
    assert get(api, f"/api/v1/group_categories/{made['id']}").json == made
    listed = get(api, f"/api/v1/courses/{config.course_id}/group_categories").json
    assert listed == [made]

    again = post(api, f"/api/v1/courses/{config.course_id}/group_categories", {"name": "Mentorgrupper"})
    assert again.status_code == 400
    assert again.json is not None
    assert again.json["errors"]["name"][0]["message"] == "Mentorgrupper is already in use."
    blank = post(api, f"/api/v1/courses/{config.course_id}/group_categories", {"name": " "})
    assert blank.status_code == 400 and blank.json is not None and "name" in blank.json["errors"]


def test_unknown_courses_sets_groups_and_events_are_404(api: FlaskClient, config: SimConfig) -> None:
    for url in (
        "/api/v1/courses/999/group_categories",
        "/api/v1/group_categories/999",
        "/api/v1/group_categories/999/groups",
        "/api/v1/groups/999",
        "/api/v1/groups/999/users",
        "/api/v1/calendar_events/999",
    ):
        resp = get(api, url)
        assert (resp.status_code, resp.json) == (404, NOT_FOUND), url


# ---------------------------------------------------------------------- groups
def test_groups_of_a_set_are_listed_with_link_pagination(api: FlaskClient, config: SimConfig) -> None:
    category = new_set(api, config)
    for i in range(12):
        new_group(api, category["id"], f"Gruppe {i}")
    first = get(api, f"/api/v1/group_categories/{category['id']}/groups")
    assert len(first.json or []) == 10  # Canvas's default page size
    links = {r["rel"]: r["url"] for r in requests.utils.parse_header_links(first.headers["Link"])}
    assert "next" in links
    every = get(api, f"/api/v1/group_categories/{category['id']}/groups", {"per_page": 100}).json or []
    assert [g["name"] for g in every] == [f"Gruppe {i}" for i in range(12)]
    assert all(g["group_category_id"] == category["id"] and g["members_count"] == 0 for g in every)


def test_members_overwrite_the_membership_and_leave_out_people_outside_the_course(
    api: FlaskClient, config: SimConfig, rest: CanvasRest
) -> None:
    category = new_set(api, config)
    group = new_group(api, category["id"], "Gruppe 1")
    a, b, *_ = enrolled(rest)
    stranger = 424242
    with rest.lock:  # an account with no enrolment in the course
        from canvas_sim.rest import User

        rest.users[stranger] = User(stranger, "Not Enrolled", "Not Enrolled", "Enrolled, Not", rest.now())

    resp = put(api, f"/api/v1/groups/{group['id']}", {"members[]": [str(a), str(b), str(stranger)]})
    assert resp.status_code == 200
    assert resp.json is not None
    assert [u["id"] for u in resp.json["users"]] == [a, b]  # the stranger is left out without an error
    assert resp.json["members_count"] == 2

    resp = put(api, f"/api/v1/groups/{group['id']}", {"members[]": [str(b)], "name": "Gruppe 1 (ny)"})
    assert resp.json is not None and [u["id"] for u in resp.json["users"]] == [b]
    assert resp.json["name"] == "Gruppe 1 (ny)"
    users = get(api, f"/api/v1/groups/{group['id']}/users").json or []
    assert [u["id"] for u in users] == [b]

    emptied = put(api, f"/api/v1/groups/{group['id']}", {"members[]": ""})
    assert emptied.json is not None and emptied.json["users"] == [] and emptied.json["members_count"] == 0


def test_a_person_is_in_one_group_of_a_set_at_a_time(api: FlaskClient, config: SimConfig, rest: CanvasRest) -> None:
    category = new_set(api, config)
    one, two = (new_group(api, category["id"], n) for n in ("En", "To"))
    other_set = new_set(api, config, "Prosjektgrupper")
    elsewhere = new_group(api, other_set["id"], "Prosjekt")
    a = enrolled(rest)[0]
    for group in (one, elsewhere, two):
        put(api, f"/api/v1/groups/{group['id']}", {"members[]": str(a)})
    data = rest.group_data
    assert data.groups[one["id"]].members == []  # moved to "To" in the same set
    assert data.groups[two["id"]].members == [a]
    assert data.groups[elsewhere["id"]].members == [a]  # another set is independent


def test_a_deleted_group_is_gone(api: FlaskClient, config: SimConfig, rest: CanvasRest) -> None:
    category = new_set(api, config)
    group = new_group(api, category["id"], "Gruppe 1")
    put(api, f"/api/v1/groups/{group['id']}", {"members[]": str(enrolled(rest)[0])})
    assert delete(api, f"/api/v1/groups/{group['id']}").status_code == 200
    for resp in (
        get(api, f"/api/v1/groups/{group['id']}"),
        put(api, f"/api/v1/groups/{group['id']}", {"name": "x"}),
        delete(api, f"/api/v1/groups/{group['id']}"),
    ):
        assert (resp.status_code, resp.json) == (404, NOT_FOUND)
    assert get(api, f"/api/v1/group_categories/{category['id']}/groups").json == []


# -------------------------------------------------------------- calendar events
def test_calendar_events_in_a_group_and_the_course(api: FlaskClient, config: SimConfig) -> None:
    category = new_set(api, config)
    group = new_group(api, category["id"], "Gruppe 1")
    made = post(
        api,
        "/api/v1/calendar_events",
        {
            "calendar_event[context_code]": f"group_{group['id']}",
            "calendar_event[title]": "Samling 1",
            "calendar_event[start_at]": "2026-12-01T10:00:00Z",
            "calendar_event[end_at]": "2026-12-01T11:30:00Z",
            "calendar_event[location_name]": "Rådhuset",
            "calendar_event[description]": "<p>Ta med kaffe</p>",
        },
    )
    assert made.status_code == 200
    event = made.json
    assert event is not None
    assert (event["context_code"], event["title"], event["start_at"], event["end_at"]) == (
        f"group_{group['id']}",
        "Samling 1",
        "2026-12-01T10:00:00Z",
        "2026-12-01T11:30:00Z",
    )
    assert event["location_name"] == "Rådhuset" and event["workflow_state"] == "active"
    assert event["context_name"] == "Gruppe 1"
    course_event = post(
        api,
        "/api/v1/calendar_events",
        {
            "calendar_event[context_code]": f"course_{config.course_id}",
            "calendar_event[title]": "Oppstart",
            "calendar_event[start_at]": "2026-12-03T10:00:00+01:00",
            "calendar_event[end_at]": "2026-12-03T11:00:00+01:00",
        },
    ).json
    assert course_event is not None and course_event["start_at"] == "2026-12-03T09:00:00Z"

    codes = {"context_codes[]": [f"group_{group['id']}", f"course_{config.course_id}"]}
    listed = get(api, "/api/v1/calendar_events", {**codes, "all_events": "true"}).json or []
    assert [e["id"] for e in listed] == [event["id"], course_event["id"]]
    window = get(api, "/api/v1/calendar_events", {**codes, "start_date": "2026-12-02", "end_date": "2026-12-03"}).json
    assert [e["id"] for e in window or []] == [course_event["id"]]
    only_group = get(api, "/api/v1/calendar_events", {"context_codes[]": f"group_{group['id']}", "all_events": "1"})
    assert [e["id"] for e in only_group.json or []] == [event["id"]]

    moved = put(
        api,
        f"/api/v1/calendar_events/{event['id']}",
        {"calendar_event[start_at]": "2026-12-08T10:00:00Z", "calendar_event[end_at]": "2026-12-08T12:00:00Z"},
    ).json
    assert moved is not None and (moved["start_at"], moved["end_at"]) == (
        "2026-12-08T10:00:00Z",
        "2026-12-08T12:00:00Z",
    )
    assert moved["title"] == "Samling 1"  # fields not sent stay

    gone = delete(api, f"/api/v1/calendar_events/{event['id']}")
    assert gone.status_code == 200 and gone.json is not None and gone.json["workflow_state"] == "deleted"
    assert (get(api, f"/api/v1/calendar_events/{event['id']}").status_code) == 404
    assert delete(api, f"/api/v1/calendar_events/{event['id']}").status_code == 404
    left = get(api, "/api/v1/calendar_events", {**codes, "all_events": "true"}).json or []
    assert [e["id"] for e in left] == [course_event["id"]]


def test_an_event_needs_a_context_that_exists(api: FlaskClient, config: SimConfig) -> None:
    missing = post(api, "/api/v1/calendar_events", {"calendar_event[title]": "x"})
    assert missing.status_code == 400
    for code in ("group_999", "course_999", "user_1x"):
        resp = post(
            api, "/api/v1/calendar_events", {"calendar_event[context_code]": code, "calendar_event[title]": "x"}
        )
        assert (resp.status_code, resp.json) == (404, NOT_FOUND), code
    bad_time = post(
        api,
        "/api/v1/calendar_events",
        {"calendar_event[context_code]": f"course_{config.course_id}", "calendar_event[start_at]": "i morgen"},
    )
    assert bad_time.status_code == 400


def test_an_event_never_ends_before_it_starts(api: FlaskClient, config: SimConfig) -> None:
    event = post(
        api,
        "/api/v1/calendar_events",
        {
            "calendar_event[context_code]": f"course_{config.course_id}",
            "calendar_event[start_at]": "2026-12-01T10:00:00Z",
            "calendar_event[end_at]": "2026-12-01T09:00:00Z",
        },
    ).json
    assert event is not None and event["end_at"] == event["start_at"] == "2026-12-01T10:00:00Z"
