"""POST /api/canvas/live-events (course_sync/live_events.py, lti_tool/views/live_events.py) through the real app on
SQLite and PostgreSQL: a signed submission or grade event of a known person in a linked course asks for one
progress sync of the programme, bursts collapse into one waiting step, and every refusal (signature, algorithm,
key, lifetime, shape, size) answers with a JSON error and writes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy import select

from canvas_sim import SimPlatform
from canvas_sim.keys import private_pem
from config.settings import Settings, SettingsError
from course_sync.platform_keys import PlatformKeyError
from kurspakke.db import transaction
from kurspakke.models import (
    CanvasInstance,
    CourseLink,
    IdentityKind,
    OutboxStep,
    Person,
    PersonIdentity,
    ProgrammeRoleKind,
    StepStatus,
)
from kurspakke.progress.models import ModuleCompletion, QuizMapping
from kurspakke.progress.requests import PROGRESS_SYNC
from lti_tool import create_app
from tests.support.canvas_live import live_canvas, register, worker
from tests.support.factories import PROGRAMME, link_sim_course, person_for, sim_instance

URL = "/api/canvas/live-events"
KID = "live-events-2026-11"
QUIZ = "4711"
SHARD = 2107 * 10**13  # Canvas's global ids: shard × 10^13 + local id
SECRET = "test-secret-key-" * 4


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING_KEY = _rsa()
OTHER_KEY = _rsa()


def public_jwk(key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", **extra}


def key_set(*jwks: dict[str, Any]) -> str:
    return json.dumps({"keys": list(jwks)})


@pytest.fixture
def app_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    return {**app_settings, "live_events_jwks": key_set(public_jwk(SIGNING_KEY, KID, alg="RS256"))}


@pytest.fixture
def known(app: Flask, sim: SimPlatform) -> dict[str, Any]:
    """The simulator's course linked to the programme on a registered Canvas instance, its quiz mapped to the
    first module, and Kari ("deltaker") a participant whose Canvas user id the tool recorded."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        s.add(
            CanvasInstance(
                api_url="https://canvas.sim.test/api",
                account_id=1,
                token_encrypted=b"-",
                platform_instance=sim_instance(sim),
            )
        )
        link = link_sim_course(s, sim)
        s.add(QuizMapping(course_link_id=link.id, module_id="emne-1", assignment_id=QUIZ))
        person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT)
    return {
        "guid": sim.config.platform_guid,
        "course": str(sim.config.course_id),
        "user": str(sim.user("deltaker").canvas_user_id),
    }


def event(known: dict[str, Any], name: str = "grade_change", **changes: Any) -> dict[str, Any]:
    """An event as Canvas sends it (its documented example, trimmed): the grader in metadata, the student in body."""
    metadata = {
        "event_name": name,
        "event_time": "2026-11-30T02:00:00.000Z",
        "producer": "canvas",
        "root_account_id": "1",
        "root_account_lti_guid": known["guid"],
        "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs",
        "context_type": "Course",
        "context_id": known["course"],
        "context_role": "TeacherEnrollment",
        "user_id": "1",
        **changes.pop("metadata", {}),
    }
    body = {
        "assignment_id": QUIZ,
        "submission_id": "90210",
        "user_id": known["user"],
        "student_id": known["user"],
        "score": 9,
        "grade": "9",
        **changes.pop("body", {}),
    }
    return {"metadata": metadata, "body": body, **changes}


def sign(claims: dict[str, Any], key: Any = SIGNING_KEY, *, alg: str = "RS256", kid: str | None = KID) -> bytes:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims, key, algorithm=alg, headers=headers).encode()


def post(client, body: bytes) -> Any:
    return client.post(URL, data=body, headers={"Content-Type": "application/jwt"})


def outbox_rows(db_session) -> list[tuple[Any, ...]]:
    return [
        (s.id, s.kind, s.subject, s.status, json.dumps(s.payload, sort_keys=True), s.updated_at)
        for s in db_session.scalars(select(OutboxStep).order_by(OutboxStep.id))
    ]


def error_code(resp) -> str:
    body = resp.get_json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1, body
    assert set(body["errors"][0]) == {"field", "code", "message"}
    return str(body["errors"][0]["code"])


# --- accepted events --------------------------------------------------------------------------------------------


def test_a_grade_change_of_a_known_participant_asks_for_one_progress_sync(client, known, db_session):
    resp = post(client, sign(event(known)))
    assert resp.status_code == 202, resp.get_data(as_text=True)
    step = db_session.scalars(select(OutboxStep)).one()
    assert resp.get_json() == {"status": "queued", "steps": [step.id]}
    assert (step.kind, step.subject, step.status) == (PROGRESS_SYNC, f"progress:{PROGRAMME}", StepStatus.PENDING)
    assert step.payload == {
        "programme_id": PROGRAMME,
        "full": False,
        "reason": "canvas live event grade_change",
        "actor": "canvas live events",
    }


def test_a_burst_of_events_collapses_into_one_waiting_sync(client, known, db_session):
    names = ["submission_created", "submission_updated", "grade_change", "grade_change", "submission_updated"]
    now = int(time.time())
    answers = [post(client, sign({**event(known, name), "iat": now, "exp": now + 300})) for name in names]
    assert [a.status_code for a in answers] == [202] * 5
    (step,) = db_session.scalars(select(OutboxStep)).all()
    assert {tuple(a.get_json()["steps"]) for a in answers} == {(step.id,)}
    assert step.payload["reason"] == "canvas live event submission_created"  # the first one's


def test_global_ids_and_a_submission_without_a_course_context_find_the_course_by_its_mapped_quiz(
    client, known, db_session
):
    """submission_created carries no context (Canvas's own example); ids may be global (shard-prefixed)."""
    claims = event(
        known,
        "submission_created",
        metadata={"context_type": None, "context_id": None},
        body={"assignment_id": str(SHARD + int(QUIZ)), "user_id": str(SHARD + int(known["user"])), "student_id": None},
    )
    del claims["metadata"]["context_type"], claims["metadata"]["context_id"]
    resp = post(client, sign(claims))
    assert resp.status_code == 202 and resp.get_json()["status"] == "queued"
    assert len(db_session.scalars(select(OutboxStep)).all()) == 1


def test_an_es256_signed_event_is_accepted(app_settings, sim, known) -> None:
    """Needs its own app: the key set is read when the app is built."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    app = create_app(
        {
            "settings": {**app_settings, "live_events_jwks": key_set(public_jwk(ec_key, "ec-1", alg="ES256"))},
            "environ": {},
        }
    )
    try:
        resp = post(app.test_client(), sign(event(known), ec_key, alg="ES256", kid="ec-1"))
        assert resp.status_code == 202 and resp.get_json()["status"] == "queued"
        # An RS256 header naming the EC key is refused (the key decides the algorithm, not the token).
        resp = post(app.test_client(), sign(event(known), SIGNING_KEY, alg="RS256", kid="ec-1"))
        assert resp.status_code == 401 and error_code(resp) == "algorithm_refused"
    finally:
        app.extensions["kurspakke"].engine.dispose()


# --- ignored events: 204 / 202 and nothing written ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "status", "reason"),
    [
        pytest.param(lambda k: event(k, "asset_accessed"), 204, None, id="event-not-handled"),
        pytest.param(lambda k: event(k, "quiz_submitted", body={"user_id": "x"}), 204, None, id="other-event-unread"),
        pytest.param(lambda k: event(k, body={"user_id": "99999", "student_id": "99999"}), 202, "unknown_user", id="u"),
        pytest.param(lambda k: event(k, body={"user_id": None, "student_id": None}), 202, "unknown_user", id="no-user"),
        pytest.param(lambda k: event(k, metadata={"context_id": "777"}), 202, "unknown_course", id="other-course"),
        pytest.param(
            lambda k: event(k, body={"assignment_id": "1234"}), 202, "unmapped_assignment", id="unmapped-quiz"
        ),
        pytest.param(
            lambda k: event(k, metadata={"root_account_lti_guid": "another-customer:canvas-lms"}),
            202,
            "unknown_course",
            id="another-canvas",
        ),
        pytest.param(
            lambda k: event(k, metadata={"root_account_lti_guid": None}), 202, "unknown_course", id="no-instance"
        ),
    ],
)
def test_events_the_tool_does_not_act_on_write_nothing(client, known, db_session, claims, status, reason):
    resp = post(client, sign(claims(known)))
    assert resp.status_code == status, resp.get_data(as_text=True)
    if reason is not None:
        assert resp.get_json() == {"status": "ignored", "reason": reason}
    assert outbox_rows(db_session) == []


def test_a_course_linked_on_an_unregistered_canvas_is_not_synced(app, client, sim, db_session):
    """The progress sync reads only registered Canvas instances: without one, the event has nothing to hasten."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link = link_sim_course(s, sim)
        s.add(QuizMapping(course_link_id=link.id, module_id="emne-1", assignment_id=QUIZ))
        person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT)
    k = {"guid": sim.config.platform_guid, "course": str(sim.config.course_id)}
    k["user"] = str(sim.user("deltaker").canvas_user_id)
    resp = post(client, sign(event(k)))
    assert resp.status_code == 202 and resp.get_json() == {"status": "ignored", "reason": "unknown_course"}
    assert outbox_rows(db_session) == []


# --- refusals: 4xx, a JSON error, nothing written ---------------------------------------------------------------


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> bytes:
    return b".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)])


def _hs256_with_public_key(claims: dict[str, Any]) -> bytes:
    """The classic confusion attack: HMAC keyed with the verifier's public key (PyJWT itself refuses to make it)."""
    pem = SIGNING_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": KID}
    unsigned = _unsigned(header, claims).rsplit(b".", 1)[0]
    return unsigned + b"." + _b64(hmac.new(pem, unsigned, hashlib.sha256).digest())


def _tampered(claims: dict[str, Any]) -> bytes:
    header, _, signature = sign(claims).split(b".")
    forged = {**claims, "body": {**claims["body"], "user_id": "424242"}}
    return b".".join([header, _b64(json.dumps(forged).encode()), signature])


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        pytest.param(lambda c: sign(c, OTHER_KEY), 401, "signature_mismatch", id="bad-signature"),
        pytest.param(_tampered, 401, "signature_mismatch", id="tampered-claims"),
        pytest.param(lambda c: _unsigned({"alg": "none", "kid": KID}, c), 401, "algorithm_refused", id="alg-none"),
        pytest.param(_hs256_with_public_key, 401, "algorithm_refused", id="hs256-public-key-as-secret"),
        pytest.param(lambda c: sign(c, OTHER_KEY, alg="RS512"), 401, "algorithm_refused", id="rs512"),
        pytest.param(lambda c: sign(c, kid=None), 401, "kid_missing", id="no-kid"),
        pytest.param(lambda c: sign(c, kid="someone-elses"), 401, "unknown_key", id="unknown-kid"),
        pytest.param(lambda c: sign({**c, "exp": int(time.time()) - 3600}), 401, "expired", id="expired"),
        pytest.param(
            lambda c: sign({**c, "iat": int(time.time()) + 3600}), 401, "not_yet_valid", id="issued-in-the-future"
        ),
        pytest.param(lambda c: sign({**c, "exp": "soon"}), 400, "malformed", id="exp-not-a-number"),
        pytest.param(lambda c: json.dumps(c).encode(), 400, "malformed", id="unsigned-json"),
        pytest.param(lambda c: b"", 400, "malformed", id="empty"),
        pytest.param(lambda c: b"not.a.jwt!", 400, "malformed", id="garbage"),
        pytest.param(lambda c: b"\xff\xfe.\x00.x", 400, "malformed", id="binary"),
        pytest.param(lambda c: b".".join([_b64(b"not json"), _b64(b"{}"), b"x"]), 400, "malformed", id="header-text"),
        pytest.param(lambda c: b".".join([_b64(b"[1]"), _b64(b"{}"), b"x"]), 400, "malformed", id="header-array"),
        pytest.param(lambda c: sign({"event": c}), 400, "malformed", id="no-metadata-or-body"),
        pytest.param(lambda c: sign({**c, "body": ["x"]}), 400, "malformed", id="body-not-an-object"),
        pytest.param(
            lambda c: sign({**c, "metadata": {**c["metadata"], "event_name": 7}}), 400, "malformed", id="name-type"
        ),
        pytest.param(
            lambda c: sign({**c, "body": {**c["body"], "user_id": {"$ne": None}}}), 400, "malformed", id="id-type"
        ),
        pytest.param(
            lambda c: sign({**c, "body": {**c["body"], "user_id": "1 OR 1=1"}}), 400, "malformed", id="id-text"
        ),
        pytest.param(
            lambda c: sign({**c, "metadata": {**c["metadata"], "context_id": True}}), 400, "malformed", id="ctx-bool"
        ),
        pytest.param(lambda c: sign({**c, "padding": "x" * 70_000}), 413, "too_large", id="oversized"),
    ],
)
def test_refused_events_answer_a_json_error_and_write_nothing(client, known, db_session, make, status, code):
    assert post(client, sign(event(known))).status_code == 202  # something there to stay unchanged
    before = outbox_rows(db_session)
    assert len(before) == 1

    resp = post(client, make(event(known)))
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    assert error_code(resp) == code
    assert outbox_rows(db_session) == before


def test_a_refused_event_writes_nothing_into_an_empty_outbox(client, known, db_session):
    for body in (sign(event(known), OTHER_KEY), _hs256_with_public_key(event(known)), b"x" * 70_000):
        assert post(client, body).status_code in (401, 413)
    assert outbox_rows(db_session) == []


def test_a_body_over_the_cap_without_a_declared_length_is_refused(client, known, db_session):
    """Chunked transfer: no Content-Length, so the cap holds while reading."""
    resp = client.post(
        URL,
        input_stream=io.BytesIO(b"A" * 100 * 1024),
        headers={"Content-Type": "application/jwt"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert resp.status_code == 413 and error_code(resp) == "too_large"
    assert outbox_rows(db_session) == []


def test_the_endpoint_is_off_without_a_key_set(app_settings, sim) -> None:
    settings = {k: v for k, v in app_settings.items() if k != "live_events_jwks"}
    app = create_app({"settings": settings, "environ": {}})
    try:
        resp = post(app.test_client(), sign({"metadata": {"event_name": "grade_change"}, "body": {}}))
        assert resp.status_code == 404 and error_code(resp) == "not_configured"
        with app.extensions["kurspakke"].session_factory() as session:
            assert session.scalars(select(OutboxStep)).all() == []
    finally:
        app.extensions["kurspakke"].engine.dispose()


def test_only_post_is_answered(client, known):
    assert client.get(URL).status_code == 405


# --- a key set fetched from its URL ------------------------------------------------------------------------------


class KeyHost:
    """Serves the key set at KEYS_URL to the app's fetcher; counts fetches; can fail."""

    url = "https://keys.live-events.test/main/jwks"

    def __init__(self, *jwks: dict[str, Any]) -> None:
        self.keys = list(jwks)
        self.fetches = 0
        self.down = False

    def __call__(self, url: str, timeout: float) -> dict[str, Any]:
        assert url == self.url and timeout > 0
        self.fetches += 1
        if self.down:
            raise PlatformKeyError(f"cannot fetch key set {url}: HTTP 503")
        return {"keys": self.keys}


def _app_with_url(app_settings: dict[str, Any], host: KeyHost, **settings: Any) -> Flask:
    base = {k: v for k, v in app_settings.items() if k != "live_events_jwks"}
    return create_app(
        {"settings": {**base, "live_events_jwks_url": host.url, **settings}, "environ": {}, "jwks_fetcher": host}
    )


def test_a_key_set_url_is_fetched_once_and_refetched_for_a_new_key_at_most_every_few_seconds(app_settings, sim, known):
    host = KeyHost(public_jwk(SIGNING_KEY, KID))
    app = _app_with_url(app_settings, host, platform_jwks_min_refetch_seconds=3600)
    try:
        client = app.test_client()
        assert post(client, sign(event(known))).status_code == 202
        assert post(client, sign(event(known, "submission_updated"))).status_code == 202
        assert host.fetches == 1  # parsed once, then cached

        # Forged kids cannot make the tool hammer the key host: within min_refetch of the last fetch, none.
        for i in range(5):
            resp = post(client, sign(event(known), OTHER_KEY, kid=f"forged-{i}"))
            assert resp.status_code == 401 and error_code(resp) == "unknown_key"
        assert host.fetches == 1
    finally:
        app.extensions["kurspakke"].engine.dispose()


def test_a_rotated_key_is_fetched_and_a_key_host_that_is_down_gives_503_and_writes_nothing(app_settings, sim, known):
    host = KeyHost(public_jwk(SIGNING_KEY, KID))
    app = _app_with_url(app_settings, host, platform_jwks_min_refetch_seconds=0.0)
    try:
        client = app.test_client()
        assert post(client, sign(event(known))).status_code == 202
        host.keys.append(public_jwk(OTHER_KEY, "next-month"))  # Canvas publishes next month's key
        assert post(client, sign(event(known), OTHER_KEY, kid="next-month")).status_code == 202
        assert host.fetches == 2

        with app.extensions["kurspakke"].session_factory() as session:
            before = [(s.id, s.updated_at) for s in session.scalars(select(OutboxStep))]
        host.down = True
        resp = post(client, sign(event(known), _rsa(), kid="unseen"))
        assert resp.status_code == 503 and error_code(resp) == "keys_unavailable"
        # A known key still verifies while the host is down.
        assert post(client, sign(event(known))).status_code == 202
        with app.extensions["kurspakke"].session_factory() as session:
            assert [(s.id, s.updated_at) for s in session.scalars(select(OutboxStep))] == before
    finally:
        app.extensions["kurspakke"].engine.dispose()


# --- settings ------------------------------------------------------------------------------------------------------


def test_the_settings_are_read_from_the_environment_and_checked(tmp_path):
    base = {"KURSPAKKE_ENV": "test", "KURSPAKKE_INSTANCE_PATH": str(tmp_path), "SECRET_KEY": SECRET}
    inline = key_set(public_jwk(SIGNING_KEY, KID))
    settings = Settings.from_env({**base, "KURSPAKKE_LIVE_EVENTS_JWKS": inline})
    assert settings.live_events_jwks == inline and settings.live_events_jwks_url is None
    url = "https://8axpcl50e4.execute-api.us-east-1.amazonaws.com/main/jwks"
    assert Settings.from_env({**base, "KURSPAKKE_LIVE_EVENTS_JWKS_URL": url}).live_events_jwks_url == url
    assert Settings.from_env(base).live_events_jwks is None

    refused = [
        {"KURSPAKKE_LIVE_EVENTS_JWKS_URL": url, "KURSPAKKE_LIVE_EVENTS_JWKS": inline},
        {"KURSPAKKE_LIVE_EVENTS_JWKS_URL": "ftp://keys.example/jwks"},
        {"KURSPAKKE_LIVE_EVENTS_JWKS_URL": "https://"},
        {"KURSPAKKE_LIVE_EVENTS_JWKS": "{not json"},
        {"KURSPAKKE_LIVE_EVENTS_JWKS": '{"keys": []}'},
        {"KURSPAKKE_LIVE_EVENTS_JWKS": "[1, 2]"},
    ]
    for extra in refused:
        with pytest.raises(SettingsError, match="LIVE_EVENTS"):
            Settings.from_env({**base, **extra})
    production = {
        "DATABASE_URL": "postgresql+psycopg://db/kurspakke",
        "SECRET_KEY": SECRET,
        "KURSPAKKE_BASE_URL": "https://kurspakke.example",
        "KURSPAKKE_ENCRYPTION_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
    }
    with pytest.raises(SettingsError, match="https"):
        Settings.from_env({**production, "KURSPAKKE_LIVE_EVENTS_JWKS_URL": "http://keys.example/jwks"})


@pytest.mark.parametrize(
    "jwks",
    [
        pytest.param({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"}, id="hmac-secret"),
        pytest.param(
            {**public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024), "short")},  # noqa: S505 (refused)
            id="rsa-1024",
        ),
        pytest.param({**public_jwk(SIGNING_KEY, KID), "alg": "RS512"}, id="other-alg"),
        pytest.param({k: v for k, v in public_jwk(SIGNING_KEY, KID).items() if k != "kid"}, id="no-kid"),
        pytest.param({**public_jwk(SIGNING_KEY, KID), "use": "enc"}, id="encryption-key"),
    ],
)
def test_an_inline_key_set_without_a_usable_key_stops_the_app_at_start(app_settings, jwks):
    with pytest.raises(SettingsError, match="no usable key"):
        create_app({"settings": {**app_settings, "live_events_jwks": key_set(jwks)}, "environ": {}})


# --- the whole path ------------------------------------------------------------------------------------------------


def test_an_event_makes_the_worker_read_canvas_now_and_record_the_completion(app, client, encryptor, db_session):
    """Event → one progress.sync step → the worker's sync reads the Canvas simulator over HTTP → the module is
    completed, without waiting for the periodic sync."""
    factory = app.extensions["kurspakke"].session_factory
    with live_canvas(private_pem(_rsa())) as canvas:
        quiz = canvas.rest.add_assignment("Quiz 1").id
        uid = next(iter(sorted(canvas.rest.student_ids())))
        with transaction(factory) as s:
            register(s, canvas, encryptor)
            link = s.scalars(select(CourseLink)).one()
            s.add(QuizMapping(course_link_id=link.id, module_id="emne-1", assignment_id=str(quiz)))
            person = Person(name="Kari Nordmann", email="kari.live@example.no")
            person.identities.append(
                PersonIdentity(kind=IdentityKind.CANVAS_USER_ID, scope=canvas.scope, value=str(uid))
            )
            s.add(person)
            s.flush()
            person_id = person.id
        canvas.rest.record_submission(quiz, uid, submitted_at=datetime.now(UTC) - timedelta(minutes=2), score=10.0)
        known = {"guid": canvas.config.platform_guid, "course": str(canvas.config.course_id), "user": str(uid)}
        claims = event(known, body={"assignment_id": str(quiz)})

        resp = post(client, sign(claims))
        assert resp.status_code == 202 and resp.get_json()["status"] == "queued"
        assert worker(factory, encryptor).run_until_idle(max_seconds=30) == 0

    step = db_session.scalars(select(OutboxStep).where(OutboxStep.kind == PROGRESS_SYNC)).one()
    assert step.status is StepStatus.DONE
    done = db_session.scalars(select(ModuleCompletion)).one()
    # The new completion asked for a certificate evaluation (not yet eligible: nothing issued).
    evaluated = db_session.scalars(select(OutboxStep).where(OutboxStep.kind == "certificate.evaluate")).one()
    assert evaluated.payload["person_ids"] == [person_id] and evaluated.status is StepStatus.DONE
    assert (done.person_id, done.programme_id, done.module_id) == (person_id, PROGRAMME, "emne-1")
