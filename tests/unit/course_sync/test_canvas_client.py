"""Our Canvas client against the simulator's REST half over real HTTP: pagination, errors, retries, throttling."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server

from canvas_sim import SimConfig, SimPlatform, create_sim_app
from canvas_sim.keys import private_pem
from canvas_sim.rest import CanvasRest
from course_sync.canvas import (
    CanvasAuthError,
    CanvasBadResponse,
    CanvasClient,
    CanvasError,
    CanvasNotFound,
    CanvasOutcomeUnknown,
    CanvasThrottled,
    CanvasUnavailable,
)
from course_sync.canvas.client import _assignment, _submission

TOKEN = "sim-canvas-api-token"
KEY = f"Bearer {TOKEN}"  # the simulator's throttle bucket for this token
CREATE_USER = "POST /api/v1/accounts/:account_id/users"
LIST_USERS = "GET /api/v1/accounts/:account_id/users"
ACCOUNT = "GET /api/v1/accounts/:account_id"
SUBMISSIONS = "GET /api/v1/courses/:course_id/students/submissions"


@pytest.fixture(scope="module")
def platform_pem() -> bytes:
    return private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass
class Live:
    url: str
    rest: CanvasRest
    config: SimConfig
    sleeps: list[float] = field(default_factory=list)

    def client(self, token: str = TOKEN, **kw: float) -> CanvasClient:
        options: dict[str, float] = {"timeout": 2.0, "max_tries": 3, "retry_base": 0.01, "retry_max": 0.05} | kw
        return CanvasClient(self.url, token, sleep=self.sleeps.append, **options)  # type: ignore[arg-type]


@pytest.fixture
def live(platform_pem: bytes) -> Iterator[Live]:
    config = SimConfig(private_key_pem=platform_pem)
    rest = CanvasRest(config)  # real clock: the throttle leaks in real time
    server = make_server("127.0.0.1", 0, create_sim_app(platform=SimPlatform(config), rest=rest), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(f"http://127.0.0.1:{server.server_port}", rest, config)
    rest.close()
    server.shutdown()
    server.server_close()
    thread.join()


def test_account_reads_the_lti_guid(live: Live) -> None:
    account = live.client().account(1)
    assert (account.id, account.lti_guid) == (1, live.config.platform_guid)
    assert live.client().account("self", with_lti_guid=False).lti_guid is None


def test_lists_follow_link_next_at_100_per_page(live: Live) -> None:
    client = live.client()
    for i in range(205):
        live.rest._new_section(f"Gruppe {i:03d}", None, None)
    sections = client.sections(live.config.course_id)
    assert len(sections) == 206  # the default section and ours
    assert len({s.id for s in sections}) == 206
    assert live.rest.count("GET /api/v1/courses/:course_id/sections") == 3  # 100 + 100 + 6


def test_enrolments_follow_bookmark_pages(live: Live) -> None:
    client = live.client()
    section = client.create_section(live.config.course_id, "Stor gruppe")
    for i in range(120):
        user = client.create_user(1, f"Person {i}", f"person{i:03d}@kommune.no", f"person{i:03d}@kommune.no")
        client.enrol(section.id, user.id, "StudentEnrollment")
    mine = [e for e in client.enrollments(live.config.course_id) if e.section_id == section.id]
    assert len(mine) == 120 and {e.state for e in mine} == {"active"}
    assert live.rest.count("GET /api/v1/courses/:course_id/enrollments") == 2
    teachers = client.enrollments(live.config.course_id, types=["TeacherEnrollment"])
    assert teachers and {e.type for e in teachers} == {"TeacherEnrollment"}


def test_bad_token_is_an_auth_error_and_not_retried(live: Live) -> None:
    with pytest.raises(CanvasAuthError) as caught:
        live.client(token="wrong").account(1)
    assert caught.value.status == 401
    assert live.rest.count(ACCOUNT) == 1 and live.sleeps == []


def test_unknown_resource_is_not_found(live: Live) -> None:
    with pytest.raises(CanvasNotFound):
        live.client().user_profile(424242)
    with pytest.raises(CanvasNotFound):
        live.client().sections(99)
    assert live.sleeps == []


def test_5xx_is_retried_then_succeeds(live: Live) -> None:
    live.rest.inject("status", endpoint=ACCOUNT, status=503, times=1)
    live.rest.inject("status", endpoint=ACCOUNT, status=500, times=1)
    assert live.client().account(1).id == 1
    assert live.rest.count(ACCOUNT) == 3 and len(live.sleeps) == 2


def test_5xx_beyond_the_tries_is_unavailable(live: Live) -> None:
    live.rest.inject("status", endpoint=ACCOUNT, status=502, times=None)
    with pytest.raises(CanvasUnavailable) as caught:
        live.client(max_tries=3).account(1)
    assert caught.value.status == 502
    assert live.rest.count(ACCOUNT) == 3


@pytest.mark.parametrize("status", [403, 429])
def test_throttle_refusals_are_backed_off_then_succeed(live: Live, status: int) -> None:
    live.rest.throttle_status = status
    live.rest.inject("throttle", endpoint=ACCOUNT, times=2)
    assert live.client().account(1).id == 1
    assert live.rest.count(ACCOUNT) == 3 and len(live.sleeps) == 2


def test_throttle_refusals_beyond_the_tries_are_throttled(live: Live) -> None:
    live.rest.throttle_status = 429
    live.rest.inject("throttle", endpoint=ACCOUNT, times=None)
    with pytest.raises(CanvasThrottled) as caught:
        live.client().account(1)
    assert caught.value.status == 429


def test_a_throttle_refused_post_is_retried(live: Live) -> None:
    live.rest.inject("throttle", endpoint=CREATE_USER, times=1)
    user = live.client().create_user(1, "Kari Hansen", "kari@kommune.no", "kari@kommune.no")
    assert user.login_id == "kari@kommune.no" and live.rest.count(CREATE_USER) == 2


def test_low_rate_limit_remaining_makes_the_client_wait(live: Live) -> None:
    client = live.client(low_water=150.0, low_water_pause=1.0)
    client.account(1)
    assert live.sleeps == []  # a full bucket: no pause
    live.rest.throttle.fill(KEY, 600.0)
    client.account(1)  # admitted, but Canvas now says under 150 left
    assert client.rate_limit_remaining is not None and client.rate_limit_remaining < 150
    assert live.sleeps == []
    client.account(1)
    assert len(live.sleeps) == 1 and 0.0 < live.sleeps[0] <= 1.0
    assert live.rest.refusals == 0


def test_a_timeout_is_retried_for_reads(live: Live) -> None:
    live.rest.inject("timeout", endpoint=ACCOUNT, seconds=3.0, times=1)
    assert live.client(timeout=0.3).account(1).id == 1
    assert live.rest.count(ACCOUNT) == 2 and len(live.sleeps) == 1


def test_a_timeout_beyond_the_tries_is_unavailable(live: Live) -> None:
    live.rest.inject("timeout", endpoint=ACCOUNT, seconds=3.0, times=None)
    with pytest.raises(CanvasUnavailable, match="timed out"):
        live.client(timeout=0.2, max_tries=2).account(1)


def test_a_dropped_connection_is_retried_for_reads(live: Live) -> None:
    live.rest.inject("drop_before", endpoint=ACCOUNT, times=1)
    assert live.client().account(1).id == 1
    assert live.rest.count(ACCOUNT) == 2


def test_create_user_after_a_drop_after_makes_no_second_user(live: Live) -> None:
    live.rest.inject("drop_after", endpoint=CREATE_USER, times=1)
    user = live.client().create_user(1, "Ola Nordmann", "ola@kommune.no", "ola@kommune.no", sis_user_id="NO-1")
    assert user.login_id == "ola@kommune.no" and user.sis_user_id == "NO-1"
    assert live.rest.count(CREATE_USER) == 1  # applied once; the client looked instead of posting again
    assert [u.id for u in live.rest.users.values() if u.name == "Ola Nordmann"] == [user.id]


def test_create_user_after_a_drop_before_posts_again(live: Live) -> None:
    live.rest.inject("drop_before", endpoint=CREATE_USER, times=1)
    user = live.client().create_user(1, "Per Hansen", "per@kommune.no", "per@kommune.no")
    assert live.rest.count(CREATE_USER) == 2
    assert [u.id for u in live.rest.users.values() if u.name == "Per Hansen"] == [user.id]


def test_create_user_returns_an_existing_login_without_posting(live: Live) -> None:
    client = live.client()
    first = client.create_user(1, "Liv Berg", "liv@kommune.no", "liv@kommune.no")
    again = client.create_user(1, "Liv Berg", "liv@kommune.no", "liv@kommune.no")
    assert (again.id, again.login_id) == (first.id, first.login_id) and live.rest.count(CREATE_USER) == 1
    assert again.email == "liv@kommune.no"  # the look asks for e-mail addresses (include[]=email)


def test_create_section_without_sis_id_after_a_timeout_is_outcome_unknown(live: Live) -> None:
    live.rest.inject("drop_after", endpoint="POST /api/v1/courses/:course_id/sections", times=1)
    with pytest.raises(CanvasOutcomeUnknown):
        live.client().create_section(live.config.course_id, "Gruppe A")
    assert live.rest.count("POST /api/v1/courses/:course_id/sections") == 1  # not blindly posted again


def test_create_section_with_sis_id_looks_before_create(live: Live) -> None:
    client = live.client()
    live.rest.inject("drop_after", endpoint="POST /api/v1/courses/:course_id/sections", times=1)
    with pytest.raises(CanvasOutcomeUnknown):
        client.create_section(live.config.course_id, "Gruppe B", sis_section_id="KP-B")
    again = client.create_section(live.config.course_id, "Gruppe B", sis_section_id="KP-B")
    assert again.sis_section_id == "KP-B"
    assert [s.id for s in live.rest.sections.values() if s.sis_section_id == "KP-B"] == [again.id]


def test_enrol_profile_and_conclude(live: Live) -> None:
    client = live.client()
    user = client.create_user(1, "Kari Hansen", "kari@kommune.no", "kari@kommune.no")
    assert client.user_profile(user.id).primary_email == "kari@kommune.no"
    section = client.create_section(live.config.course_id, "Gruppe C")
    live.rest.inject("drop_after", endpoint="POST /api/v1/sections/:section_id/enrollments", times=1)
    enrolment = client.enrol(section.id, user.id, "StudentEnrollment")  # safe to repeat: retried
    assert (enrolment.section_id, enrolment.state) == (section.id, "active")
    assert len([e for e in live.rest.enrollments.values() if e.user_id == user.id]) == 1
    concluded = client.conclude(live.config.course_id, enrolment.id)
    assert concluded.state == "completed"
    assert client.enrollments(live.config.course_id, user_id=user.id) == []


# ------------------------------------------------------------------ users: e-mail, look_first, taken, update
def test_find_users_reads_the_email_canvas_sends_only_when_asked(live: Live) -> None:
    client = live.client()
    made = client.create_user(1, "Eva Lie", "eva.login", "eva@kommune.no")
    assert made.email is None  # Canvas's answer to the POST has no e-mail address
    (found,) = client.find_users(1, "eva.login")
    assert (found.id, found.email) == (made.id, "eva@kommune.no")
    live.rest.users[made.id].emails.clear()
    assert client.find_users(1, "eva.login")[0].email is None


def test_create_user_without_look_first_posts_at_once(live: Live) -> None:
    user = live.client().create_user(1, "Siri Dahl", "siri@kommune.no", "siri@kommune.no", look_first=False)
    assert user.login_id == "siri@kommune.no"
    assert live.rest.count(LIST_USERS) == 0 and live.rest.count(CREATE_USER) == 1


def test_create_user_without_look_first_still_looks_after_a_lost_answer(live: Live) -> None:
    live.rest.inject("drop_after", endpoint=CREATE_USER, times=1)
    user = live.client().create_user(1, "Tor Vik", "tor@kommune.no", "tor@kommune.no", look_first=False)
    assert user.login_id == "tor@kommune.no"
    assert live.rest.count(CREATE_USER) == 1 and live.rest.count(LIST_USERS) == 1
    assert [u.id for u in live.rest.users.values() if u.name == "Tor Vik"] == [user.id]


def test_create_user_returns_the_winner_when_canvas_says_the_login_is_taken(live: Live) -> None:
    client = live.client()
    winner = client.create_user(1, "Ane Moe", "ane@kommune.no", "ane@kommune.no")  # a concurrent creator
    before = len(live.rest.users)
    again = client.create_user(1, "Ane Moe", "ane@kommune.no", "ane@kommune.no", look_first=False)
    assert again.id == winner.id and len(live.rest.users) == before
    assert live.rest.count(CREATE_USER) == 2 and live.rest.count(LIST_USERS) == 2  # refused, then looked


def test_create_user_with_a_taken_sis_id_is_refused_with_canvas_body(live: Live) -> None:
    client = live.client()
    client.create_user(1, "Bo Ek", "bo@kommune.no", "bo@kommune.no", sis_user_id="NO-9")
    with pytest.raises(CanvasError) as caught:
        client.create_user(1, "Bo Ek", "bo2@kommune.no", "bo2@kommune.no", sis_user_id="NO-9")
    assert caught.value.status == 400 and not isinstance(caught.value, CanvasAuthError)
    assert caught.value.body["errors"]["pseudonym"]["sis_user_id"][0]["type"] == "taken"
    assert live.rest.count(CREATE_USER) == 2  # a refusal is not retried


def test_update_user_changes_name_and_email_and_is_retried(live: Live) -> None:
    client = live.client()
    made = client.create_user(1, "Feil Navn", "navn.login", "gammel@kommune.no")
    live.rest.inject("drop_after", endpoint="PUT /api/v1/users/:user_id", times=1)
    updated = client.update_user(made.id, name="Riktig Navn", email="ny@kommune.no")  # safe to repeat
    assert (updated.id, updated.name, updated.email, updated.login_id) == (
        made.id,
        "Riktig Navn",
        "ny@kommune.no",
        "navn.login",
    )
    assert live.rest.count("PUT /api/v1/users/:user_id") == 2
    assert client.user_profile(made.id).primary_email == "ny@kommune.no"
    assert client.update_user(made.id, name="Bare Navn").email == "ny@kommune.no"
    with pytest.raises(ValueError):
        client.update_user(made.id)
    with pytest.raises(CanvasError) as caught:
        client.update_user(made.id, email="not an address")
    assert caught.value.status == 400


# ------------------------------------------------------------------ enrolments: activity, section limit
def test_enrollment_reads_last_activity_and_the_section_limit(live: Live) -> None:
    client = live.client()
    user = client.create_user(1, "Aktiv Person", "aktiv@kommune.no", "aktiv@kommune.no")
    section = client.create_section(live.config.course_id, "Gruppe D")
    limited = client.enrol(section.id, user.id, "StudentEnrollment")
    assert limited.limit_privileges_to_course_section is True and limited.last_activity_at is None
    live.rest.set_last_activity(limited.id, datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))))
    (read,) = client.enrollments(live.config.course_id, user_id=user.id)
    assert read.last_activity_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert read.last_activity_at.tzinfo is not None and read.last_activity_at.utcoffset() == timedelta(0)
    mentor = client.create_user(1, "Mentor Person", "mentor@kommune.no", "mentor@kommune.no")
    open_ta = client.enrol(section.id, mentor.id, "TaEnrollment", limit_to_section=False)
    assert open_ta.limit_privileges_to_course_section is False


# ------------------------------------------------------------------ assignments and submissions
@dataclass
class Course:
    quiz: int
    new_quiz: int
    essay: int
    hidden: int
    students: list[int]
    mentor: int


def _course(live: Live, students: int = 3) -> Course:
    client, rest = live.client(), live.rest
    section = client.create_section(live.config.course_id, "Kommune A")
    ids = []
    for i in range(students):
        user = client.create_user(1, f"Deltaker {i}", f"d{i:03d}@kommune.no", f"d{i:03d}@kommune.no")
        client.enrol(section.id, user.id, "StudentEnrollment")
        ids.append(user.id)
    mentor = client.create_user(1, "Mentor", "mentor@kommune.no", "mentor@kommune.no")
    client.enrol(section.id, mentor.id, "TaEnrollment")
    quiz = rest.add_assignment("Quiz modul 1", kind="classic_quiz", points_possible=10)
    new_quiz = rest.add_assignment("Quiz modul 2", kind="new_quiz", points_possible=12.5)
    essay = rest.add_assignment("Refleksjonsnotat", kind="plain", points_possible=None)
    hidden = rest.add_assignment("Quiz modul 3", kind="classic_quiz", published=False)
    return Course(quiz.id, new_quiz.id, essay.id, hidden.id, ids, mentor.id)


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_assignments_tell_classic_and_new_quizzes_from_the_rest(live: Live) -> None:
    course = _course(live, students=0)
    got = {a.id: a for a in live.client().assignments(live.config.course_id)}
    quiz, new_quiz, essay, hidden = (got[i] for i in (course.quiz, course.new_quiz, course.essay, course.hidden))
    assert quiz.is_quiz_assignment and quiz.quiz_id is not None and not quiz.is_new_quiz
    assert quiz.submission_types == ("online_quiz",) and quiz.points_possible == 10.0 and quiz.published
    assert new_quiz.is_quiz_assignment and new_quiz.quiz_id is None and new_quiz.is_new_quiz
    assert new_quiz.submission_types == ("external_tool",) and new_quiz.points_possible == 12.5
    assert not essay.is_quiz_assignment and essay.points_possible is None
    assert hidden.published is False
    assert [a.name for a in got.values()] == ["Quiz modul 1", "Quiz modul 2", "Refleksjonsnotat", "Quiz modul 3"]


def test_submissions_of_all_students_in_one_call_series(live: Live) -> None:
    course = _course(live)
    rest = live.rest
    s0, s1, _ = course.students
    rest.record_submission(course.quiz, s0, submitted_at=T0, score=8, graded_at=T0 + timedelta(minutes=1))
    rest.record_submission(course.new_quiz, s1, submitted_at=T0 + timedelta(hours=1))
    rest.record_submission(course.quiz, course.mentor, submitted_at=T0, score=10)  # a TA: not a student
    got = live.client().submissions(live.config.course_id, assignment_ids=[course.quiz, course.new_quiz])
    assert live.rest.count(SUBMISSIONS) == 1
    students = live.rest.student_ids()  # ours and the demo's participants; never the mentor
    assert set(course.students) <= students and course.mentor not in students
    assert {(s.user_id, s.assignment_id) for s in got} == {
        (u, a) for u in students for a in (course.quiz, course.new_quiz)
    }
    by_key = {(s.user_id, s.assignment_id): s for s in got}
    graded = by_key[(s0, course.quiz)]
    assert (graded.submitted_at, graded.graded_at, graded.score, graded.workflow_state) == (
        T0,
        T0 + timedelta(minutes=1),
        8.0,
        "graded",
    )
    assert graded.excused is False and graded.missing is False
    handed_in = by_key[(s1, course.new_quiz)]
    assert (handed_in.workflow_state, handed_in.score, handed_in.graded_at) == ("submitted", None, None)
    nothing = by_key[(s0, course.new_quiz)]
    assert (nothing.workflow_state, nothing.submitted_at) == ("unsubmitted", None)
    everything = live.client().submissions(live.config.course_id)  # no assignment_ids: every published one
    assert {s.assignment_id for s in everything} == {course.quiz, course.new_quiz, course.essay}


def test_submissions_follow_bookmark_pages(live: Live) -> None:
    course = _course(live, students=40)
    got = live.client().submissions(live.config.course_id)  # (40 + the demo's) students × 3 published assignments
    students = live.rest.student_ids()
    assert len(students) >= 40 and len(got) == 3 * len(students) > 100
    assert len({s.id for s in got}) == len(got)
    assert live.rest.count(SUBMISSIONS) == 2
    assert {s.user_id for s in got} == students >= set(course.students)


def test_submitted_since_and_graded_since_are_strict_and_applied_together(live: Live) -> None:
    course = _course(live)
    rest, client, cid = live.rest, live.client(), live.config.course_id
    s0, s1, s2 = course.students
    rest.record_submission(course.quiz, s0, submitted_at=T0, score=5, graded_at=T0 + timedelta(days=2))
    rest.record_submission(course.quiz, s1, submitted_at=T0 + timedelta(days=1))
    rest.record_submission(course.quiz, s2, submitted_at=T0 - timedelta(days=1), score=9, graded_at=T0)
    submitted = client.submissions(cid, submitted_since=T0)
    assert [s.user_id for s in submitted] == [s1]  # strictly after: s0's submitted_at == T0 is out
    graded = client.submissions(cid, graded_since=T0)
    assert [s.user_id for s in graded] == [s0]
    both = client.submissions(cid, submitted_since=T0 - timedelta(hours=1), graded_since=T0 - timedelta(hours=1))
    assert [s.user_id for s in both] == [s0]  # s1 is not graded, s2 was handed in before
    oslo = timezone(timedelta(hours=1))
    assert [s.user_id for s in client.submissions(cid, submitted_since=T0.astimezone(oslo))] == [s1]
    assert [s.user_id for s in client.submissions(cid, workflow_state="graded")] == [s0, s2]
    with pytest.raises(ValueError, match="timezone"):
        client.submissions(cid, submitted_since=datetime(2026, 3, 1))
    with pytest.raises(ValueError):
        client.submissions(cid, workflow_state="done")


def test_submissions_of_given_students(live: Live) -> None:
    course = _course(live)
    client, cid = live.client(), live.config.course_id
    s0, s1, _ = course.students
    got = client.submissions(cid, student_ids=[s0, str(s1)], assignment_ids=[course.quiz])
    assert sorted(s.user_id for s in got) == sorted([s0, s1])
    assert client.submissions(cid, student_ids=[]) == [] and live.rest.count(SUBMISSIONS) == 1
    with pytest.raises(ValueError):
        client.submissions(cid, student_ids=range(101))
    with pytest.raises(CanvasAuthError) as not_a_student:
        client.submissions(cid, student_ids=[course.mentor])
    assert not_a_student.value.status == 401
    with pytest.raises(CanvasAuthError) as not_the_course_s:
        client.submissions(cid, assignment_ids=[course.hidden])  # unpublished: not listable
    assert not_the_course_s.value.status == 403
    assert not_the_course_s.value.body == {"error": "invalid assignment ids requested"}


def test_submissions_read_excused_and_missing(live: Live) -> None:
    course = _course(live, students=2)
    rest, cid = live.rest, live.config.course_id
    s0, s1 = course.students
    late = rest.add_assignment("Quiz med frist", due_at=T0)
    rest.record_submission(late.id, s0, excused=True)
    got = {s.user_id: s for s in live.client().submissions(cid, assignment_ids=[late.id])}
    assert got[s0].excused is True and got[s0].missing is False and got[s0].submitted_at is None
    assert got[s1].excused is False and got[s1].missing is True  # Canvas sends excused null: read as False


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"submitted_at": "2026-03-01T12:00:00"}, "offset"),
        ({"submitted_at": "yesterday"}, "ISO 8601"),
        ({"score": True}, "number"),
        ({"score": "8"}, "number"),
        ({"user_id": "7"}, "user_id"),
        ({"excused": "no"}, "excused"),
    ],
)
def test_a_submission_of_the_wrong_shape_is_a_bad_response(row: dict[str, object], message: str) -> None:
    good = {
        "id": 1,
        "user_id": 7,
        "assignment_id": 3,
        "submitted_at": "2026-03-01T12:00:00Z",
        "graded_at": None,
        "score": 8,
        "workflow_state": "submitted",
        "excused": None,
        "missing": False,
    }
    assert _submission(good).submitted_at == T0
    with pytest.raises(CanvasBadResponse, match=message):
        _submission(good | row)


def test_an_assignment_of_the_wrong_shape_is_a_bad_response() -> None:
    good = {"id": 1, "name": "Quiz", "submission_types": ["online_quiz"], "published": True, "quiz_id": 4}
    assert _assignment(good).is_quiz_assignment
    for bad in ({"submission_types": "online_quiz"}, {"submission_types": [1]}, {"published": None}):
        with pytest.raises(CanvasBadResponse):
            _assignment(good | bad)


def test_a_client_shared_by_threads_keeps_its_calls_in_flight_under_its_cap(live: Live) -> None:
    """Worker threads of one process share a client; Canvas admits about 14 requests in flight per token."""
    from concurrent.futures import ThreadPoolExecutor

    live.rest.set_latency(0.05)
    client = live.client(max_in_flight=2)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: client.sections(live.config.course_id), range(16)))
    assert live.rest.max_in_flight == 2
    assert live.rest.count("GET /api/v1/courses/:course_id/sections") == 16
