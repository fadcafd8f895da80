"""Our Canvas client against the simulator's REST half over real HTTP: pagination, errors, retries, throttling."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server

from canvas_sim import SimConfig, SimPlatform, create_sim_app
from canvas_sim.keys import private_pem
from canvas_sim.rest import CanvasRest
from course_sync.canvas import (
    CanvasAuthError,
    CanvasClient,
    CanvasNotFound,
    CanvasOutcomeUnknown,
    CanvasThrottled,
    CanvasUnavailable,
)

TOKEN = "sim-canvas-api-token"
KEY = f"Bearer {TOKEN}"  # the simulator's throttle bucket for this token
CREATE_USER = "POST /api/v1/accounts/:account_id/users"
LIST_USERS = "GET /api/v1/accounts/:account_id/users"
ACCOUNT = "GET /api/v1/accounts/:account_id"


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
    assert again == first and live.rest.count(CREATE_USER) == 1


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
