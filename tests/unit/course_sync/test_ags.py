"""AGS (course_sync.ags) against the Canvas simulator over real HTTP: the tool's key signs the client-credentials
grant, tokens live in the shared (database) cache, and every assertion reads what the simulator holds or answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from canvas_sim import SimConfig, SimPlatform, create_sim_app
from canvas_sim import services as sim_services
from canvas_sim.rest import CanvasRest
from course_sync.ags import (
    SCOPE_LINEITEM,
    SCOPE_SCORE,
    AgsRefused,
    AgsRetryable,
    _scores_url,
    _with_query,
    ags_available,
    ensure_line_item,
    post_completion,
)
from course_sync.lti_services import ToolServiceConnector
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.models import Registration
from kurspakke.services.cache import DatabaseCache
from kurspakke.services.keys import KeyRing
from tests.conftest import add_tool_key, rsa_pem

RESULT_RO = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
KURSBEVIS = {"label": "Kursbevis", "tag": "kursbevis", "resource_id": "kurspakke:lindrende-behandling"}
WHEN = datetime(2025, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Any]


@dataclass
class Live:
    url: str
    platform: SimPlatform
    rest: CanvasRest
    connector_for: Callable[[float], ToolServiceConnector]
    requests_seen: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, query)

    @property
    def connector(self) -> ToolServiceConnector:
        return self.connector_for(2.0)

    @property
    def lineitems(self) -> str:
        return f"{self.url}/api/lti/courses/{self.platform.config.course_id}/line_items"

    def student(self, key: str = "deltaker") -> str:
        user = self.platform.config.user(key)
        assert user is not None
        return user.sub

    def results(self, lineitem_url: str) -> list[dict[str, Any]]:
        """What Canvas reports for the line item, through the results service (a token of its own scope)."""
        token = self.connector.get_access_token([RESULT_RO])
        resp = requests.get(f"{lineitem_url}/results", headers={"Authorization": f"Bearer {token}"}, timeout=2)
        assert resp.status_code == 200, resp.text
        data: list[dict[str, Any]] = resp.json()
        return data


@pytest.fixture
def keyring(session_factory: sessionmaker[Session], encryptor: Encryptor) -> KeyRing:
    with transaction(session_factory) as s:
        add_tool_key(s, encryptor)
    return KeyRing(session_factory, encryptor, grace_seconds=3600)


@pytest.fixture
def start(
    session_factory: sessionmaker[Session], encryptor: Encryptor, keyring: KeyRing
) -> Iterator[Callable[..., Live]]:
    """Serve a fresh simulator on a free port (optionally behind a WSGI wrapper) and connect the tool to it."""
    with ExitStack() as stack:

        def serve(wrap: Callable[[Wsgi, Live], Wsgi] | None = None) -> Live:
            config = SimConfig(private_key_pem=rsa_pem("platform"), tool_jwks_fetcher=lambda url: keyring.jwks())
            platform = SimPlatform(config)
            rest = CanvasRest(config)
            app = create_sim_app(config, platform, rest=rest)
            server = make_server("127.0.0.1", 0, app, threaded=True)
            # The simulator's URLs (token audience, line item ids, Link headers) must name the port it got.
            config.base_url = f"http://127.0.0.1:{server.server_port}"
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            stack.callback(thread.join)
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
            stack.callback(rest.close)  # wakes any request an injected timeout keeps sleeping

            registration = Registration(
                issuer=config.effective_issuer,
                client_id=config.client_id,
                auth_login_url=config.auth_login_url,
                auth_token_url=config.token_url,
                key_set_url=f"{config.base}/api/lti/security/jwks",
            )
            cache = DatabaseCache(session_factory, encryptor)

            def connector_for(timeout: float) -> ToolServiceConnector:
                return ToolServiceConnector(registration, keyring=keyring, cache=cache, timeout=timeout)

            live = Live(config.base, platform, rest, connector_for)
            inner = app.wsgi_app

            def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
                live.requests_seen.append(
                    (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("QUERY_STRING", ""))
                )
                return inner(environ, start_response)

            app.wsgi_app = wrap(recording, live) if wrap else recording  # type: ignore[method-assign,assignment]
            return live

        yield serve


@pytest.fixture
def live(start: Callable[..., Live]) -> Live:
    return start()


def kursbevis(live: Live, **kw: Any) -> str:
    return ensure_line_item(live.connector, kw.pop("url", live.lineitems), **{**KURSBEVIS, **kw})


# ------------------------------------------------------------------ scopes and URLs
def test_ags_available_needs_both_lineitem_and_score_scopes() -> None:
    assert ags_available([SCOPE_LINEITEM, SCOPE_SCORE, RESULT_RO])
    assert not ags_available([SCOPE_LINEITEM, RESULT_RO])
    assert not ags_available([SCOPE_SCORE])
    assert not ags_available([])


def test_scores_url_goes_before_the_query_string_and_queries_keep_their_parameters() -> None:
    assert _scores_url("https://c.test/api/lti/courses/1/line_items/7") == (
        "https://c.test/api/lti/courses/1/line_items/7/scores"
    )
    assert _scores_url("https://c.test/li/7/?type_id=3") == "https://c.test/li/7/scores?type_id=3"
    query = _with_query("https://c.test/li?a=1&tag=old", {"tag": "ny", "limit": "100"})
    assert parse_qs(query.split("?", 1)[1]) == {"a": ["1"], "tag": ["ny"], "limit": ["100"]}


# ------------------------------------------------------------------ line items
def test_ensure_line_item_creates_one_line_item_and_finds_it_after(live: Live) -> None:
    first = kursbevis(live)
    second = kursbevis(live)
    assert first == second == f"{live.lineitems}/1"
    assert list(live.platform.line_items.values()) == [
        {
            "id": first,
            "label": "Kursbevis",
            "scoreMaximum": 1.0,
            "resourceId": KURSBEVIS["resource_id"],
            "tag": "kursbevis",
        }
    ]
    # One token for both calls, from the shared cache the second time.
    assert live.platform.token_requests == 1


def test_ensure_line_item_ignores_line_items_with_another_tag_or_resource(live: Live) -> None:
    other_tag = kursbevis(live, tag="modul-1")
    other_resource = kursbevis(live, resource_id="kurspakke:annet")
    mine = kursbevis(live)
    assert len({other_tag, other_resource, mine}) == 3
    assert kursbevis(live) == mine
    assert len(live.platform.line_items) == 3


def test_ensure_line_item_after_a_crash_between_post_and_answer_finds_the_one_it_made(live: Live) -> None:
    # Canvas creates the line item, then the connection drops before the answer: the worker sees no answer.
    live.rest.inject("drop_after", method="POST", path=r"/line_items$")
    with pytest.raises(AgsRetryable):
        kursbevis(live)
    assert len(live.platform.line_items) == 1
    # The retried worker looks first and finds it.
    assert kursbevis(live) == f"{live.lineitems}/1"
    assert len(live.platform.line_items) == 1


def _ignore_filters(app: Wsgi, live: Live) -> Wsgi:
    """A platform that does not filter line items: drop resource_id and tag from line item lists."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"].endswith("/line_items"):
            query = parse_qs(environ.get("QUERY_STRING", ""))
            kept = {k: v for k, v in query.items() if k not in ("resource_id", "tag")}
            environ["QUERY_STRING"] = "&".join(f"{k}={v[0]}" for k, v in kept.items())
        return app(environ, start_response)

    return wrapped


def test_ensure_line_item_follows_link_next_to_find_its_line_item_on_a_later_page(start: Callable[..., Live]) -> None:
    live = start(_ignore_filters)
    course = live.platform.config.course_id
    for i in range(150):
        sim_services.create_line_item(
            live.platform, course, {"label": f"Modul {i}", "scoreMaximum": 10, "tag": "modul", "resourceId": f"m{i}"}
        )
    mine = kursbevis(live)  # not on the two pages it read: created as number 151
    assert mine == f"{live.lineitems}/151"
    live.requests_seen.clear()
    assert kursbevis(live) == mine
    assert len(live.platform.line_items) == 151
    pages = [parse_qs(q).get("page", ["1"])[0] for m, p, q in live.requests_seen if p.endswith("/line_items")]
    assert pages == ["1", "2"]  # 100 a page (limit=100), found on the second


def test_ensure_line_item_keeps_the_query_string_of_the_line_items_url(live: Live) -> None:
    mine = kursbevis(live, url=f"{live.lineitems}?include[]=launch_url")
    assert kursbevis(live, url=f"{live.lineitems}?include[]=launch_url") == mine
    gets = [parse_qs(q) for m, p, q in live.requests_seen if m == "GET" and p.endswith("/line_items")]
    assert gets[-1] == {
        "include[]": ["launch_url"],
        "resource_id": [KURSBEVIS["resource_id"]],
        "tag": ["kursbevis"],
        "limit": ["100"],
    }
    assert len(live.platform.line_items) == 1


def _answer_post_with(body: dict[str, Any]) -> Callable[[Wsgi, Live], Wsgi]:
    def wrap(app: Wsgi, live: Live) -> Wsgi:
        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith("/line_items"):
                start_response("201 Created", [("Content-Type", "application/vnd.ims.lis.v2.lineitem+json")])
                return [json.dumps(body).encode()]
            return app(environ, start_response)

        return wrapped

    return wrap


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": "https://elsewhere.example/api/lti/courses/1/line_items/1", "label": "Kursbevis"}, "host"),
        ({"id": "javascript:alert(1)"}, "not an absolute http"),
        ({"label": "Kursbevis"}, "no id URL"),
    ],
)
def test_ensure_line_item_refuses_a_line_item_it_could_not_use(
    start: Callable[..., Live], body: dict[str, Any], message: str
) -> None:
    live = start(_answer_post_with(body))
    with pytest.raises(AgsRefused, match=message):
        kursbevis(live)


def test_a_line_item_container_that_is_not_a_list_is_refused(live: Live) -> None:
    with pytest.raises(AgsRefused, match="not a JSON array"):
        kursbevis(live, url=f"{live.url}/api/lti/security/jwks")


# ------------------------------------------------------------------ scores
def test_post_completion_records_full_score_for_the_student(live: Live) -> None:
    item = kursbevis(live)
    post_completion(live.connector, item, user_id=live.student(), timestamp=WHEN, comment="Kursbevis utstedt")
    assert live.results(item) == [
        {
            "id": f"{item}/results/{live.student()}",
            "scoreOf": item,
            "userId": live.student(),
            "resultScore": 1,
            "resultMaximum": 1.0,
            "comment": "Kursbevis utstedt",
        }
    ]
    [score] = live.platform.scores[1]
    assert score["timestamp"] == "2025-03-14T09:26:53.589Z"
    assert (score["activityProgress"], score["gradingProgress"]) == ("Completed", "FullyGraded")


def test_post_completion_takes_an_offset_timestamp_as_the_same_instant(live: Live) -> None:
    item = kursbevis(live)
    oslo = WHEN.astimezone(timezone(timedelta(hours=1)))
    post_completion(live.connector, item, user_id=live.student(), timestamp=oslo)
    assert live.platform.scores[1][0]["timestamp"] == "2025-03-14T09:26:53.589Z"


def test_repeating_a_completion_with_the_same_timestamp_is_done(live: Live) -> None:
    item = kursbevis(live)
    post_completion(live.connector, item, user_id=live.student(), timestamp=WHEN)
    post_completion(live.connector, item, user_id=live.student(), timestamp=WHEN)  # a retried worker
    results = live.results(item)
    assert [(r["userId"], r["resultScore"]) for r in results] == [(live.student(), 1)]


def test_a_completion_older_than_the_score_canvas_holds_is_done_and_changes_nothing(live: Live) -> None:
    item = kursbevis(live)
    post_completion(live.connector, item, user_id=live.student(), timestamp=WHEN, comment="ny")
    # Canvas answers 400 "Provided timestamp of … before last updated timestamp of …": the newer score stays.
    post_completion(live.connector, item, user_id=live.student(), timestamp=WHEN - timedelta(days=1), comment="gml")
    assert [r["comment"] for r in live.results(item)] == ["ny"]
    assert len(live.platform.scores[1]) == 1


@pytest.mark.parametrize("user", ["not-in-this-course", "mentor"])
def test_a_user_who_is_not_a_student_of_the_course_is_refused_with_canvas_message(live: Live, user: str) -> None:
    item = kursbevis(live)
    user_id = live.student(user) if user == "mentor" else user
    with pytest.raises(AgsRefused, match="User not found in course or is not a student") as caught:
        post_completion(live.connector, item, user_id=user_id, timestamp=WHEN)
    assert caught.value.status == 422
    assert live.results(item) == []


def test_a_line_item_that_is_gone_is_refused_with_404(live: Live) -> None:
    kursbevis(live)
    with pytest.raises(AgsRefused, match="The specified resource does not exist") as caught:
        post_completion(live.connector, f"{live.lineitems}/99", user_id=live.student(), timestamp=WHEN)
    assert caught.value.status == 404


def test_a_503_is_retryable_and_the_retry_records_the_score(live: Live) -> None:
    item = kursbevis(live)
    live.rest.inject("status", status=503, path=r"/scores$")
    with pytest.raises(AgsRetryable) as caught:
        post_completion(live.connector, item, user_id=live.student(), timestamp=WHEN)
    assert caught.value.status == 503
    assert live.results(item) == []
    post_completion(live.connector, item, user_id=live.student(), timestamp=WHEN)
    assert [r["resultScore"] for r in live.results(item)] == [1]


def test_canvas_throttle_is_retryable(live: Live) -> None:
    item = kursbevis(live)
    live.rest.inject("throttle", path=r"/scores$")  # Canvas's 403 "Rate Limit Exceeded"
    with pytest.raises(AgsRetryable, match="Rate Limit Exceeded"):
        post_completion(live.connector, item, user_id=live.student(), timestamp=WHEN)


def test_a_platform_that_does_not_answer_in_time_is_retryable(live: Live) -> None:
    item = kursbevis(live)
    live.rest.inject("timeout", seconds=5.0, path=r"/scores$")
    with pytest.raises(AgsRetryable, match="no answer from Canvas"):
        post_completion(live.connector_for(0.3), item, user_id=live.student(), timestamp=WHEN)


def test_an_expired_token_is_fetched_again_once_and_the_score_is_recorded(live: Live) -> None:
    item = kursbevis(live)
    assert live.platform.token_requests == 1
    for token in live.platform.access_tokens.values():
        token.expires_at = 0  # Canvas forgot the token our shared cache still holds
    post_completion(live.connector, item, user_id=live.student(), timestamp=WHEN)
    assert live.platform.token_requests == 2
    assert [r["userId"] for r in live.results(item)] == [live.student()]


def test_a_second_401_is_refused_after_one_fresh_token(live: Live) -> None:
    item = kursbevis(live)
    live.rest.inject("status", status=401, path=r"/scores$", times=None)
    with pytest.raises(AgsRefused) as caught:
        post_completion(live.connector, item, user_id=live.student(), timestamp=WHEN)
    assert caught.value.status == 401
    assert live.platform.token_requests == 2  # the cached token, then exactly one fresh one


def test_a_token_endpoint_that_refuses_our_key_is_refused(live: Live) -> None:
    live.platform.config.tool_jwks_fetcher = lambda url: {"keys": []}  # Canvas cannot verify our assertion
    with pytest.raises(AgsRefused, match="no AGS access token") as caught:
        kursbevis(live)
    assert caught.value.status == 400
    assert live.platform.line_items == {}


def test_post_completion_wants_a_timezone_aware_timestamp(live: Live) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        post_completion(live.connector, f"{live.lineitems}/1", user_id=live.student(), timestamp=datetime(2025, 1, 1))
