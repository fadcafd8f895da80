"""The simulator's REST half: Canvas's shapes, errors, pagination, throttle and injected faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from canvas_sim import SimConfig, SimPlatform, create_sim_app
from canvas_sim.rest import CanvasRest, FakeClock, SimConnectionDropped, rest_of

TOKEN = "sim-canvas-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
USERS = "/api/v1/accounts/1/users"
CREATE_USER = "POST /api/v1/accounts/:account_id/users"
NOT_FOUND = {"errors": [{"message": "The specified resource does not exist."}]}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rest(config: SimConfig, clock: FakeClock) -> CanvasRest:
    return CanvasRest(config, clock=clock)


@pytest.fixture
def sim(config: SimConfig, rest: CanvasRest) -> Flask:
    return create_sim_app(platform=SimPlatform(config), rest=rest)


@pytest.fixture
def api(sim: Flask, rest: CanvasRest) -> FlaskClient:
    assert rest_of(sim) is rest
    return sim.test_client()


def get(api: FlaskClient, url: str, query: Any = None) -> TestResponse:
    return api.get(url, query_string=query, headers=AUTH)


def create_user(
    api: FlaskClient, login: str, name: str = "Test Person", *, sis: str | None = None, email: str | None = None
) -> TestResponse:
    form = {"user[name]": name, "pseudonym[unique_id]": login, "pseudonym[send_confirmation]": "false"}
    if sis:
        form["pseudonym[sis_user_id]"] = sis
    if email:
        form |= {
            "communication_channel[type]": "email",
            "communication_channel[address]": email,
            "communication_channel[skip_confirmation]": "true",
        }
    return api.post(USERS, data=form, headers=AUTH)


def links(resp: TestResponse) -> dict[str, str]:
    return {r["rel"]: r["url"] for r in requests.utils.parse_header_links(resp.headers["Link"])}


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def walk(api: FlaskClient, url: str, query: Any = None) -> tuple[list[dict[str, Any]], int]:
    resp = get(api, url, query)
    items, pages = list(resp.json or []), 1
    while "next" in links(resp):
        resp = get(api, relative(links(resp)["next"]))
        assert resp.status_code == 200
        items += resp.json or []
        pages += 1
    return items, pages


# ------------------------------------------------------------------ auth, errors
def test_missing_or_bad_token_is_401_with_canvas_body(api: FlaskClient) -> None:
    resp = api.get("/api/v1/accounts/1")
    assert resp.status_code == 401
    assert resp.json == {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]}
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp = api.get("/api/v1/accounts/1", headers={"Authorization": "Bearer wrong"})
    assert resp.status_code == 401
    assert resp.json == {"errors": [{"message": "Invalid access token."}]}
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'
    assert "X-Rate-Limit-Remaining" in resp.headers and "X-Request-Cost" in resp.headers


def test_unknown_resources_are_404_with_canvas_body(api: FlaskClient) -> None:
    for url in ("/api/v1/users/424242/profile", "/api/v1/accounts/7", "/api/v1/courses/99/sections", "/api/v1/nope"):
        resp = get(api, url)
        assert resp.status_code == 404, url
        assert resp.json == NOT_FOUND


# ----------------------------------------------------------------------- accounts
def test_account_reveals_lti_guid_only_when_asked_with_includes(api: FlaskClient, config: SimConfig) -> None:
    plain = get(api, "/api/v1/accounts/self").json
    assert plain is not None and plain["id"] == 1 and "lti_guid" not in plain
    assert "lti_guid" not in (get(api, "/api/v1/accounts/1", {"include[]": "lti_guid"}).json or {})
    asked = get(api, "/api/v1/accounts/1", {"includes[]": "lti_guid"}).json
    assert asked is not None and asked["lti_guid"] == config.platform_guid


def test_course_is_the_configured_course(api: FlaskClient, config: SimConfig) -> None:
    course = get(api, f"/api/v1/courses/{config.course_id}").json
    assert course is not None
    assert (course["id"], course["name"], course["sis_course_id"]) == (
        config.course_id,
        config.course_title,
        config.course_sis_id,
    )
    assert get(api, f"/api/v1/courses/sis_course_id:{config.course_sis_id}").status_code == 200


# -------------------------------------------------------------------------- users
def test_create_user_profile_and_logins(api: FlaskClient) -> None:
    resp = create_user(api, "kari.login", "Kari Hansen", sis="NO-123", email="kari@kommune.no")
    assert resp.status_code == 200
    user = resp.json
    assert user is not None
    assert user["name"] == "Kari Hansen" and user["sortable_name"] == "Hansen, Kari"
    assert user["login_id"] == "kari.login" and user["sis_user_id"] == "NO-123"
    assert "email" not in user
    uid = user["id"]
    profile = get(api, f"/api/v1/users/{uid}/profile").json
    assert profile is not None and profile["primary_email"] == "kari@kommune.no" and profile["login_id"] == "kari.login"
    logins = get(api, f"/api/v1/users/{uid}/logins").json
    assert logins is not None and len(logins) == 1
    assert logins[0]["unique_id"] == "kari.login" and logins[0]["user_id"] == uid
    assert logins[0]["account_id"] == 1 and logins[0]["sis_user_id"] == "NO-123"
    assert get(api, "/api/v1/users/sis_user_id:NO-123").json["id"] == uid


def test_create_user_accepts_a_json_body(api: FlaskClient) -> None:
    body = {"user": {"name": "Ola Nordmann"}, "pseudonym": {"unique_id": "ola@x.no"}}
    resp = api.post(USERS, json=body, headers=AUTH)
    assert resp.status_code == 200
    # An e-mail login becomes the user's e-mail address.
    assert get(api, f"/api/v1/users/{resp.json['id']}/profile").json["primary_email"] == "ola@x.no"


def test_a_taken_login_or_sis_id_is_refused(api: FlaskClient, rest: CanvasRest) -> None:
    assert create_user(api, "per@x.no", sis="S1").status_code == 200
    before = len(rest.users)
    dup = create_user(api, "PER@X.NO")
    assert dup.status_code == 400
    assert dup.json["errors"]["pseudonym"]["unique_id"][0]["type"] == "taken"
    dup_sis = create_user(api, "other@x.no", sis="S1")
    assert dup_sis.status_code == 400
    assert dup_sis.json["errors"]["pseudonym"]["sis_user_id"][0]["type"] == "taken"
    assert len(rest.users) == before


def test_add_a_login_to_a_user(api: FlaskClient) -> None:
    uid = create_user(api, "first@x.no").json["id"]
    form = {"user[id]": str(uid), "login[unique_id]": "second@x.no"}
    resp = api.post("/api/v1/accounts/1/logins", data=form, headers=AUTH)
    assert resp.status_code == 200 and resp.json["unique_id"] == "second@x.no"
    assert [lg["unique_id"] for lg in get(api, f"/api/v1/users/{uid}/logins").json or []] == [
        "first@x.no",
        "second@x.no",
    ]
    assert api.post("/api/v1/accounts/1/logins", data=form, headers=AUTH).status_code == 400


def test_search_matches_login_name_email_and_sis_id(api: FlaskClient) -> None:
    uid = create_user(api, "tkl001", "Trude Kvam", sis="SIS-777", email="trude@helse.no").json["id"]
    create_user(api, "annen", "Annen Person", email="annen@helse.no")
    for term in ("tkl0", "kvam", "TRUDE@HELSE", "SIS-777", str(uid)):
        found = get(api, USERS, {"search_term": term}).json or []
        assert [u["id"] for u in found] == [uid], term
    both = get(api, USERS, {"search_term": "helse.no", "include[]": "email"}).json or []
    assert {u["email"] for u in both} == {"trude@helse.no", "annen@helse.no"}
    short = get(api, USERS, {"search_term": "tk"})
    assert short.status_code == 400 and short.json["errors"][0]["field"] == "search_term"


def test_update_user_name_and_email(api: FlaskClient) -> None:
    uid = create_user(api, "navn@x.no", "Feil Navn").json["id"]
    resp = api.put(f"/api/v1/users/{uid}", data={"user[name]": "Riktig Navn", "user[email]": "ny@x.no"}, headers=AUTH)
    assert resp.status_code == 200 and resp.json["name"] == "Riktig Navn"
    assert get(api, f"/api/v1/users/{uid}/profile").json["primary_email"] == "ny@x.no"


def test_demo_users_exist_under_their_launch_ids(api: FlaskClient, config: SimConfig) -> None:
    for u in config.users:
        assert get(api, f"/api/v1/users/{u.canvas_user_id}/profile").json["primary_email"] == u.email


# --------------------------------------------------------------------- pagination
def test_numbered_pages_with_canvas_rels(api: FlaskClient, rest: CanvasRest) -> None:
    made = {create_user(api, f"p{i:02d}@x.no", f"Person {i:02d}").json["id"] for i in range(25)}
    total = len(rest.users)
    first = get(api, USERS)
    assert len(first.json or []) == 10  # default per_page
    rels = links(first)
    assert set(rels) == {"current", "next", "first", "last"}
    assert parse_qs(urlsplit(rels["last"]).query)["page"] == [str(-(-total // 10))]
    assert first.headers["Link"].startswith("<http://localhost/api/v1/accounts/1/users?")
    items, pages = walk(api, USERS, {"per_page": 7})
    assert pages == -(-total // 7) and len(items) == total and made <= {u["id"] for u in items}
    assert len({u["id"] for u in items}) == total
    # per_page is capped at 100
    assert parse_qs(urlsplit(links(get(api, USERS, {"per_page": 500}))["current"]).query)["per_page"] == ["100"]
    second = get(api, USERS, {"page": 2})
    assert "prev" in links(second)


def test_bookmarked_enrollment_pages(api: FlaskClient, config: SimConfig) -> None:
    section = api.post(f"/api/v1/courses/{config.course_id}/sections", data={"course_section[name]": "B"}, headers=AUTH)
    sid = section.json["id"]
    for i in range(23):
        uid = create_user(api, f"b{i}@x.no").json["id"]
        assert _enroll(api, sid, uid, "StudentEnrollment").status_code == 200
    first = get(api, f"/api/v1/sections/{sid}/enrollments")
    rels = links(first)
    assert "last" not in rels and parse_qs(urlsplit(rels["next"]).query)["page"][0].startswith("bookmark:")
    items, pages = walk(api, f"/api/v1/sections/{sid}/enrollments")
    assert pages == 3 and len({e["id"] for e in items}) == 23
    assert get(api, f"/api/v1/sections/{sid}/enrollments", {"page": "bookmark:%%%"}).status_code == 400


# ------------------------------------------------------------ sections, enrolments
def test_sections_create_list_and_sis_uniqueness(api: FlaskClient, config: SimConfig) -> None:
    url = f"/api/v1/courses/{config.course_id}/sections"
    form = {"course_section[name]": "Bergen kommune", "course_section[sis_section_id]": "org-9"}
    made = api.post(url, data=form, headers=AUTH).json
    assert made is not None and made["name"] == "Bergen kommune" and made["course_id"] == config.course_id
    assert made["sis_section_id"] == "org-9"
    assert api.post(url, data=form, headers=AUTH).status_code == 400
    names = [s["name"] for s in get(api, url).json or []]
    assert names == [config.course_title, "Bergen kommune"]
    assert get(api, "/api/v1/sections/sis_section_id:org-9").json["id"] == made["id"]


def _section(api: FlaskClient, config: SimConfig, name: str = "Org") -> int:
    resp = api.post(f"/api/v1/courses/{config.course_id}/sections", data={"course_section[name]": name}, headers=AUTH)
    return int(resp.json["id"])


def _enroll(api: FlaskClient, section: int, user: int, kind: str, state: str | None = "active") -> TestResponse:
    form = {
        "enrollment[user_id]": str(user),
        "enrollment[type]": kind,
        "enrollment[limit_privileges_to_course_section]": "true",
        "enrollment[notify]": "false",
    }
    if state:
        form["enrollment[enrollment_state]"] = state
    return api.post(f"/api/v1/sections/{section}/enrollments", data=form, headers=AUTH)


def test_enrol_list_filter_and_conclude(api: FlaskClient, config: SimConfig, rest: CanvasRest) -> None:
    sid = _section(api, config)
    student = create_user(api, "s@x.no", sis="SIS-S").json["id"]
    mentor = create_user(api, "m@x.no").json["id"]
    e = _enroll(api, sid, student, "StudentEnrollment").json
    assert e is not None
    assert (e["type"], e["role"], e["enrollment_state"], e["course_section_id"]) == (
        "StudentEnrollment",
        "StudentEnrollment",
        "active",
        sid,
    )
    assert e["limit_privileges_to_course_section"] is True and e["course_id"] == config.course_id
    assert e["user"]["id"] == student and e["sis_user_id"] == "SIS-S" and e["last_activity_at"] is None
    assert _enroll(api, sid, mentor, "TaEnrollment").status_code == 200
    # Canvas re-uses the enrolment of the same user, type and section: no second one.
    assert _enroll(api, sid, student, "StudentEnrollment").json["id"] == e["id"]

    course_url = f"/api/v1/courses/{config.course_id}/enrollments"
    ta = get(api, course_url, {"type[]": "TaEnrollment", "per_page": 100}).json or []
    assert mentor in {x["user_id"] for x in ta} and all(x["type"] == "TaEnrollment" for x in ta)
    in_section = get(api, f"/api/v1/sections/{sid}/enrollments").json or []
    assert sorted(x["user_id"] for x in in_section) == sorted([student, mentor])

    rest.set_last_activity(e["id"], datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    mine = get(api, course_url, {"user_id": student}).json or []
    assert [x["last_activity_at"] for x in mine] == ["2026-03-01T12:00:00Z"]

    done = api.delete(f"{course_url}/{e['id']}", query_string={"task": "conclude"}, headers=AUTH)
    assert done.status_code == 200 and done.json["enrollment_state"] == "completed"
    assert student not in {x["user_id"] for x in get(api, f"/api/v1/sections/{sid}/enrollments").json or []}
    concluded = get(api, f"/api/v1/sections/{sid}/enrollments", {"state[]": "completed"}).json or []
    assert [x["user_id"] for x in concluded] == [student]
    assert api.delete(f"{course_url}/999999", headers=AUTH).json == NOT_FOUND


def test_enrolment_defaults_to_invited_and_checks_input(api: FlaskClient, config: SimConfig) -> None:
    sid = _section(api, config)
    uid = create_user(api, "i@x.no").json["id"]
    assert _enroll(api, sid, uid, "StudentEnrollment", state=None).json["enrollment_state"] == "invited"
    assert _enroll(api, sid, uid, "KingEnrollment").status_code == 400
    assert _enroll(api, sid, 999999, "StudentEnrollment").status_code == 404
    assert _enroll(api, 999999, uid, "StudentEnrollment").json == NOT_FOUND


# ----------------------------------------------------------------------- throttle
def test_throttle_refuses_above_high_water_and_recovers_as_it_leaks(
    api: FlaskClient, rest: CanvasRest, clock: FakeClock
) -> None:
    key = f"Bearer {TOKEN}"
    ok = get(api, "/api/v1/accounts/1")
    assert ok.status_code == 200 and float(ok.headers["X-Rate-Limit-Remaining"]) == 700.0
    rest.throttle.fill(key, 705)
    refused = get(api, "/api/v1/accounts/1")
    assert refused.status_code == 403
    assert refused.get_data(as_text=True).strip() == "403 Forbidden (Rate Limit Exceeded)"
    assert float(refused.headers["X-Rate-Limit-Remaining"]) == -5.0 and refused.headers["X-Request-Cost"] == "0"
    assert rest.refusals == 1
    clock.advance(1.0)  # leaks 10 units: 695 < 700
    back = get(api, "/api/v1/accounts/1")
    assert back.status_code == 200 and float(back.headers["X-Rate-Limit-Remaining"]) == 5.0


def test_in_flight_requests_hold_fifty_each(rest: CanvasRest) -> None:
    t = rest.throttle
    assert all(t.admit("k") for _ in range(14))  # 14 × 50 = 700
    assert not t.admit("k")
    t.complete("k", 0.5)  # refund 50, charge 0.5
    assert t.admit("k")
    assert t.level("k") == pytest.approx(700.5)


def test_cost_is_the_simulated_service_time(api: FlaskClient, rest: CanvasRest, clock: FakeClock) -> None:
    rest.set_latency(0.25, endpoint="GET /api/v1/accounts/:account_id")
    start = clock.now()
    resp = get(api, "/api/v1/accounts/1")
    assert resp.headers["X-Request-Cost"] == "0.25" and clock.now() - start == pytest.approx(0.25)
    # 0.25 charged, 0.25 s × 10/s leaked meanwhile
    assert float(resp.headers["X-Rate-Limit-Remaining"]) == pytest.approx(700.0)


def test_throttle_can_answer_429(config: SimConfig, clock: FakeClock) -> None:
    config.rest_throttle_status = 429
    rest = CanvasRest(config, clock=clock)
    api = create_sim_app(platform=SimPlatform(config), rest=rest).test_client()
    rest.throttle.fill(f"Bearer {TOKEN}", 700)
    resp = get(api, "/api/v1/accounts/1")
    assert resp.status_code == 429 and "Rate Limit Exceeded" in resp.get_data(as_text=True)


# ------------------------------------------------------------------------- faults
def test_5xx_faults_apply_nothing(api: FlaskClient, rest: CanvasRest) -> None:
    before = len(rest.users)
    rest.inject("status", status=500, endpoint=CREATE_USER)
    rest.inject("status", status=503, method="POST", path=r"/users$")
    first = create_user(api, "f@x.no")
    assert first.status_code == 500 and first.json["errors"][0]["message"] == "An error occurred."
    second = create_user(api, "f@x.no")
    assert second.status_code == 503 and second.mimetype == "text/html"
    assert len(rest.users) == before
    assert create_user(api, "f@x.no").status_code == 200  # each fault fired once
    assert rest.faults_fired["status"] == 2 and rest.count(CREATE_USER) == 3


def test_dropped_before_apply_leaves_nothing(api: FlaskClient, rest: CanvasRest) -> None:
    before = len(rest.users)
    rest.inject("drop_before", endpoint=CREATE_USER)
    with pytest.raises(SimConnectionDropped):
        create_user(api, "gone@x.no")
    assert len(rest.users) == before
    assert get(api, USERS, {"search_term": "gone@x.no"}).json == []


def test_dropped_after_apply_leaves_the_change_for_look_before_create(api: FlaskClient, rest: CanvasRest) -> None:
    rest.inject("drop_after", endpoint=CREATE_USER)
    with pytest.raises(SimConnectionDropped):
        create_user(api, "there@x.no", "Der Er")
    found = get(api, USERS, {"search_term": "there@x.no"}).json or []
    assert [u["login_id"] for u in found] == ["there@x.no"]
    assert create_user(api, "there@x.no").status_code == 400  # a blind retry would be refused as taken


def test_timeout_fault_hangs_then_applies(api: FlaskClient, rest: CanvasRest, clock: FakeClock) -> None:
    rest.inject("timeout", seconds=45, endpoint=CREATE_USER)
    start = clock.now()
    resp = create_user(api, "slow@x.no")
    assert clock.now() - start == pytest.approx(45) and resp.headers["X-Request-Cost"] == "45"
    assert get(api, USERS, {"search_term": "slow@x.no"}).json


def test_rate_faults_are_seeded_and_throttle_faults_answer_like_the_throttle(
    api: FlaskClient, rest: CanvasRest
) -> None:
    fault = rest.inject("throttle", times=None, rate=0.3, endpoint="GET /api/v1/accounts/:account_id")
    answers = [get(api, "/api/v1/accounts/1").status_code for _ in range(200)]
    assert set(answers) == {200, 403} and 30 < answers.count(403) < 90 and fault.fired == answers.count(403)
    rest.clear_faults()
    assert get(api, "/api/v1/accounts/1").status_code == 200
    assert rest.count("GET /api/v1/accounts/:account_id") == 201


# --------------------------------------------------------------- over a real socket
@pytest.fixture
def live(config: SimConfig) -> Iterator[tuple[str, CanvasRest]]:
    rest = CanvasRest(config)  # real clock
    server = make_server("127.0.0.1", 0, create_sim_app(platform=SimPlatform(config), rest=rest), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", rest
    rest.close()
    server.shutdown()
    server.server_close()
    thread.join()


def test_over_http_drop_after_and_timeout(live: tuple[str, CanvasRest]) -> None:
    base, rest = live
    form = {"pseudonym[unique_id]": "net@x.no", "user[name]": "Net Person"}
    rest.inject("drop_after", endpoint=CREATE_USER)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{base}{USERS}", data=form, headers=AUTH, timeout=5)
    assert any(lg.unique_id == "net@x.no" for lg in rest.logins.values())

    rest.inject("timeout", seconds=30, endpoint="GET /api/v1/accounts/:account_id")
    with pytest.raises(requests.Timeout):
        requests.get(f"{base}/api/v1/accounts/1", headers=AUTH, timeout=0.3)
    ok = requests.get(f"{base}/api/v1/accounts/1", headers=AUTH, timeout=5)
    assert ok.status_code == 200 and "X-Rate-Limit-Remaining" in ok.headers
    rest.close()  # wake the hung request


def test_over_http_parallel_requests_beyond_fourteen_are_refused(live: tuple[str, CanvasRest]) -> None:
    base, rest = live
    rest.set_latency(1.0)  # every request is in flight for a second, holding its 50 units
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def call() -> None:
        barrier.wait()
        resp = requests.get(f"{base}/api/v1/accounts/1", headers=AUTH, timeout=10)
        statuses.append(resp.status_code)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = statuses.count(200)
    # 14 × 50 = 700; the bucket leaks 10/s, so a 15th may slip in while the first ones are admitted.
    assert 14 <= ok <= 15 and statuses.count(403) == 20 - ok
    assert rest.refusals == 20 - ok and rest.max_in_flight == ok


# ------------------------------------------------------------- users: Canvas's details
def test_a_taken_login_gets_canvas_full_error_body(api: FlaskClient) -> None:
    assert create_user(api, "tatt@x.no").status_code == 200
    body = create_user(api, "tatt@x.no").json
    assert body is not None and set(body["errors"]) == {"user", "pseudonym", "observee", "pairing_code", "recaptcha"}
    assert body["errors"]["pseudonym"]["unique_id"] == [
        {
            "attribute": "unique_id",
            "type": "taken",
            "message": "ID already in use for this account and authentication provider",
        }
    ]


def test_users_list_sends_email_only_with_the_include(api: FlaskClient) -> None:
    create_user(api, "epost.login", "Epost Person", email="epost@x.no")
    plain = get(api, USERS, {"search_term": "epost.login"}).json or []
    assert len(plain) == 1 and "email" not in plain[0]
    asked = get(api, USERS, {"search_term": "epost.login", "include[]": "email"}).json or []
    assert asked[0]["email"] == "epost@x.no"


def test_update_user_answers_with_email_keeps_the_login_and_refuses_a_bad_address(api: FlaskClient) -> None:
    uid = create_user(api, "behold.login", "Gammelt Navn", email="gammel@x.no").json["id"]
    resp = api.put(f"/api/v1/users/{uid}", data={"user[email]": "ny@x.no"}, headers=AUTH)
    assert resp.json is not None and resp.json["email"] == "ny@x.no" and resp.json["login_id"] == "behold.login"
    assert resp.json["name"] == "Gammelt Navn"
    again = api.put(f"/api/v1/users/{uid}", data={"user[email]": "ny@x.no"}, headers=AUTH)  # safe to repeat
    assert again.status_code == 200 and again.json["email"] == "ny@x.no"
    bad = api.put(f"/api/v1/users/{uid}", data={"user[email]": "ikke en adresse"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json["errors"]["user"]["email"][0]["type"] == "invalid"
    assert api.put("/api/v1/users/999999", data={"user[name]": "X"}, headers=AUTH).json == NOT_FOUND


# -------------------------------------------------------- enrolments: repeats, concluding
def test_concluding_twice_answers_the_concluded_enrolment_and_a_deleted_one_is_gone(
    api: FlaskClient, config: SimConfig
) -> None:
    sid = _section(api, config)
    uid = create_user(api, "ferdig@x.no").json["id"]
    e = _enroll(api, sid, uid, "StudentEnrollment").json
    url = f"/api/v1/courses/{config.course_id}/enrollments/{e['id']}"
    first = api.delete(url, query_string={"task": "conclude"}, headers=AUTH)
    second = api.delete(url, query_string={"task": "conclude"}, headers=AUTH)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json["enrollment_state"] == second.json["enrollment_state"] == "completed"
    assert first.json["id"] == second.json["id"] == e["id"]
    # Enrolling again re-uses (and re-activates) the same enrolment, as Canvas does.
    back = _enroll(api, sid, uid, "StudentEnrollment").json
    assert back["id"] == e["id"] and back["enrollment_state"] == "active"
    # Another type in the same section is another enrolment.
    assert _enroll(api, sid, uid, "TaEnrollment").json["id"] != e["id"]
    assert api.delete(url, query_string={"task": "delete"}, headers=AUTH).status_code == 200
    assert api.delete(url, query_string={"task": "conclude"}, headers=AUTH).json == NOT_FOUND
    assert _enroll(api, sid, uid, "StudentEnrollment").json["id"] != e["id"]  # deleted: a new one


def test_enrolment_json_has_last_activity_and_section_limit(api: FlaskClient, config: SimConfig) -> None:
    sid = _section(api, config)
    uid = create_user(api, "grense@x.no").json["id"]
    form = {"enrollment[user_id]": str(uid), "enrollment[type]": "StudentEnrollment"}
    e = api.post(f"/api/v1/sections/{sid}/enrollments", data=form, headers=AUTH).json
    assert e is not None and e["limit_privileges_to_course_section"] is False and e["last_activity_at"] is None
    assert "last_activity_at" in e and "total_activity_time" in e


# ------------------------------------------------------------- assignments, submissions
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SUBMISSIONS_URL = "/api/v1/courses/1/students/submissions"


def _students(api: FlaskClient, config: SimConfig, n: int) -> list[int]:
    sid = _section(api, config, "Kommune")
    ids = []
    for i in range(n):
        uid = create_user(api, f"elev{i:03d}@x.no").json["id"]
        assert _enroll(api, sid, uid, "StudentEnrollment").status_code == 200
        ids.append(uid)
    return ids


def test_assignments_have_canvas_quiz_shapes(api: FlaskClient, rest: CanvasRest, config: SimConfig) -> None:
    classic = rest.add_assignment("Quiz 1", kind="classic_quiz", points_possible=10)
    new = rest.add_assignment("Quiz 2", kind="new_quiz", points_possible=7.5)
    plain = rest.add_assignment("Notat", kind="plain", published=False)
    items, _ = walk(api, f"/api/v1/courses/{config.course_id}/assignments")
    got = {a["id"]: a for a in items}
    assert [a["name"] for a in items] == ["Quiz 1", "Quiz 2", "Notat"]
    c, n, p = got[classic.id], got[new.id], got[plain.id]
    assert c["submission_types"] == ["online_quiz"] and c["quiz_id"] == classic.quiz_id
    assert c["is_quiz_assignment"] is True and c["is_quiz_lti_assignment"] is False and c["points_possible"] == 10
    assert n["submission_types"] == ["external_tool"] and "quiz_id" not in n
    assert n["is_quiz_lti_assignment"] is True and n["is_quiz_assignment"] is False and n["points_possible"] == 7.5
    assert n["external_tool_tag_attributes"]["content_type"] == "ContextExternalTool"
    assert p["published"] is False and p["workflow_state"] == "unpublished" and p["is_quiz_assignment"] is False
    assert all(a["course_id"] == config.course_id for a in items)
    assert get(api, "/api/v1/courses/99/assignments").json == NOT_FOUND


def test_assignments_are_paginated(api: FlaskClient, rest: CanvasRest) -> None:
    for i in range(12):
        rest.add_assignment(f"A{i}")
    first = get(api, "/api/v1/courses/1/assignments")
    assert len(first.json or []) == 10 and "next" in links(first) and "last" in links(first)
    items, pages = walk(api, "/api/v1/courses/1/assignments")
    assert pages == 2 and len(items) == 12


def test_submissions_for_all_students_include_unsubmitted_and_only_students(
    api: FlaskClient, rest: CanvasRest, config: SimConfig
) -> None:
    students = _students(api, config, 2)
    quiz = rest.add_assignment("Quiz")
    rest.add_assignment("Upublisert", published=False)
    mentor = create_user(api, "mentor@x.no").json["id"]
    _enroll(api, _section(api, config, "M"), mentor, "TaEnrollment")
    rest.record_submission(quiz.id, mentor, submitted_at=T0, score=3)
    done = rest.record_submission(quiz.id, students[0], submitted_at=T0, score=8.5, graded_at=T0)
    items, _ = walk(api, SUBMISSIONS_URL, {"student_ids[]": "all", "per_page": 100})
    assert {s["user_id"] for s in items} == rest.student_ids() and mentor not in {s["user_id"] for s in items}
    assert {s["assignment_id"] for s in items} == {quiz.id}  # the unpublished one has none
    mine = next(s for s in items if s["user_id"] == students[0])
    assert mine["id"] == done.id and mine["score"] == 8.5 and mine["grade"] == "8.5"
    assert (mine["submitted_at"], mine["graded_at"], mine["workflow_state"]) == (
        "2026-03-01T12:00:00Z",
        "2026-03-01T12:00:00Z",
        "graded",
    )
    assert mine["submission_type"] == "online_quiz" and mine["excused"] is None and mine["missing"] is False
    other = next(s for s in items if s["user_id"] == students[1])
    assert (other["workflow_state"], other["submitted_at"], other["score"]) == ("unsubmitted", None, None)
    # Canvas's submission is one row per student and assignment: the same id on the next read and after grading.
    again, _ = walk(api, SUBMISSIONS_URL, {"student_ids[]": "all", "per_page": 100})
    assert {s["id"] for s in again} == {s["id"] for s in items}
    assert rest.record_submission(quiz.id, students[1], submitted_at=T0).id == other["id"]


def test_submission_filters(api: FlaskClient, rest: CanvasRest, config: SimConfig) -> None:
    s0, s1, s2 = _students(api, config, 3)
    q1, q2 = rest.add_assignment("Q1"), rest.add_assignment("Q2", kind="new_quiz")
    rest.record_submission(q1.id, s0, submitted_at=T0, score=5, graded_at=T0 + timedelta(days=2))
    rest.record_submission(q1.id, s1, submitted_at=T0 + timedelta(days=1))
    rest.record_submission(q2.id, s2, submitted_at=T0 - timedelta(days=1), score=9, graded_at=T0)

    def users(query: dict[str, Any]) -> list[tuple[int, int]]:
        items, _ = walk(api, SUBMISSIONS_URL, {"student_ids[]": "all"} | query)
        return [(s["user_id"], s["assignment_id"]) for s in items]

    assert users({"submitted_since": "2026-03-01T12:00:00Z"}) == [(s1, q1.id)]  # strictly after
    assert users({"graded_since": "2026-03-01T12:00:00Z"}) == [(s0, q1.id)]
    both = {"submitted_since": "2026-03-01T11:00:00Z", "graded_since": "2026-03-01T11:00:00Z"}
    assert users(both) == [(s0, q1.id)]
    assert users({"submitted_since": "2026-03-01T13:00:00+01:00"}) == [(s1, q1.id)]
    assert users({"workflow_state": "graded"}) == [(s0, q1.id), (s2, q2.id)]
    assert sorted(users({"assignment_ids[]": str(q2.id), "workflow_state": "unsubmitted"})) == sorted(
        (u, q2.id) for u in rest.student_ids() if u != s2
    )
    explicit, _ = walk(api, SUBMISSIONS_URL, [("student_ids[]", str(s0)), ("student_ids[]", str(s1))])
    assert {s["user_id"] for s in explicit} == {s0, s1} and len(explicit) == 4
    bad = get(api, SUBMISSIONS_URL, {"student_ids[]": "all", "submitted_since": "i går"})
    assert bad.status_code == 400 and bad.json == {
        "errors": {"submitted_since": "Invalid datetime for submitted_since"}
    }


def test_submission_refusals_have_canvas_bodies(api: FlaskClient, rest: CanvasRest, config: SimConfig) -> None:
    (s0,) = _students(api, config, 1)
    quiz = rest.add_assignment("Q")
    hidden = rest.add_assignment("Skjult", published=False)
    outsider = create_user(api, "utenfor@x.no").json["id"]
    unauthorized = {"status": "unauthorized", "errors": [{"message": "user not authorized to perform that action"}]}
    for query in ({"student_ids[]": str(outsider)}, {}):
        resp = get(api, SUBMISSIONS_URL, query)
        assert resp.status_code == 401 and resp.json == unauthorized
        assert "WWW-Authenticate" not in resp.headers  # not a token problem
    for ids in ([str(hidden.id)], [str(quiz.id), "424242"], ["x"]):
        resp = get(api, SUBMISSIONS_URL, [("student_ids[]", "all")] + [("assignment_ids[]", i) for i in ids])
        assert resp.status_code == 403 and resp.json == {"error": "invalid assignment ids requested"}
    many = [("student_ids[]", str(s0))] * 101
    assert get(api, SUBMISSIONS_URL, many).json == {"error": "too many students"}
    assert get(api, "/api/v1/courses/99/students/submissions", {"student_ids[]": "all"}).json == NOT_FOUND


def test_submissions_use_bookmark_pages(api: FlaskClient, rest: CanvasRest, config: SimConfig) -> None:
    _students(api, config, 12)
    rest.add_assignment("Q1")
    rest.add_assignment("Q2")
    first = get(api, SUBMISSIONS_URL, {"student_ids[]": "all"})
    rels = links(first)
    assert "last" not in rels and parse_qs(urlsplit(rels["next"]).query)["page"][0].startswith("bookmark:")
    assert parse_qs(urlsplit(rels["next"]).query)["student_ids[]"] == ["all"]  # the query is kept
    items, pages = walk(api, SUBMISSIONS_URL, {"student_ids[]": "all"})
    total = 2 * len(rest.student_ids())
    assert len(items) == total and len({s["id"] for s in items}) == total and pages == -(-total // 10)
    assert [s["id"] for s in items] == sorted(s["id"] for s in items)


def test_record_submission_defaults_and_missing(api: FlaskClient, rest: CanvasRest, config: SimConfig) -> None:
    s0, s1 = _students(api, config, 2)
    due = rest.add_assignment("Med frist", due_at=T0 - timedelta(days=1))
    excused = rest.record_submission(due.id, s0, excused=True)
    assert excused.workflow_state == "graded" and excused.graded_at is not None
    assert rest.record_submission(due.id, s1, submitted_at=T0).workflow_state == "submitted"
    rest.record_submission(due.id, s1)  # back to nothing handed in
    items, _ = walk(api, SUBMISSIONS_URL, {"student_ids[]": "all", "assignment_ids[]": str(due.id)})
    got = {s["user_id"]: s for s in items}
    assert got[s0]["missing"] is False and got[s0]["excused"] is True
    assert got[s1]["missing"] is True and got[s1]["workflow_state"] == "unsubmitted"
    with pytest.raises(ValueError):
        rest.record_submission(due.id, s0, workflow_state="done")
    with pytest.raises(KeyError):
        rest.record_submission(424242, s0)
