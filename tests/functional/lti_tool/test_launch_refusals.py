"""Every bad launch is refused with a clear 4xx page and writes nothing: no launch, no identity, no unlicensed
row, and the login's nonce is not consumed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.models import CourseLink, LaunchRecord, PersonIdentity, ProgrammeRoleKind, UnlicensedLaunch
from lti_tool.lti.message_launch import CLAIM
from lti_tool.lti.oidc_login import PendingLogin, StateSigner, binding_name, binding_proof, state_binding
from lti_tool.services import make_launch_token, read_launch_token
from tests.conftest import SECRET, register_sim
from tests.support.factories import link_sim_course, person_for
from tests.support.lti import TOOL, launch_token


@pytest.fixture(autouse=True)
def _linked(app, sim):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
        person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT, with_canvas_id=False)


def count(db_session, model) -> int:
    try:
        return db_session.scalar(select(func.count()).select_from(model))
    finally:
        db_session.rollback()  # end the read so the app's next write is not kept waiting


def assert_refused(resp, db_session, status: int, text: str) -> None:
    body = resp.get_data(as_text=True)
    assert resp.status_code == status, body[:400]
    assert text in body
    assert 'lang="nb"' in body
    assert "data-launch-token" not in body and "data-canonical-url" not in body and "lt=" not in body  # no token
    assert resp.headers.getlist("Set-Cookie") == []  # no cookie of any kind from a refusal
    assert count(db_session, LaunchRecord) == 0
    assert count(db_session, PersonIdentity) == 0
    assert count(db_session, UnlicensedLaunch) == 0


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def refusals(caplog) -> list[tuple[str, str]]:
    """(code, detail) of each refusal logged: the detail names the rule that refused, which the page does not."""
    return [(r.fields["code"], r.fields["detail"]) for r in caplog.records if r.getMessage() == "refused"]


SIGNATURE = "Innloggingsbeviset kunne ikke bekreftes"
NOT_VALID = "Innloggingsbeviset er ikke gyldig for dette verktøyet"
UNKNOWN_KEY = "signert med en nøkkel som læringsplattformen ikke publiserer"
MALFORMED = "Innloggingsbeviset fra læringsplattformen er ikke gyldig"
STATE = "Innloggingen kunne ikke bekreftes"
NONCE = "Denne innloggingen er allerede brukt eller er ukjent"
DEPLOYMENT = "Denne installasjonen av verktøyet i læringsplattformen er ikke registrert"
MESSAGE_TYPE = "Læringsplattformen sendte en type oppstart som verktøyet ikke støtter"
TARGET = "Lenken peker til en adresse som ikke hører til dette verktøyet"
EXPIRED = "Innloggingsbeviset er utløpt"


def test_the_happy_path_writes_a_launch(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login))
    assert resp.status_code == 200
    assert count(db_session, LaunchRecord) == 1


def test_signature_by_another_key_with_the_same_kid(driver, db_session):
    login = driver.login()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    resp = driver.post_launch(driver.crafted(login, key=other))
    assert_refused(resp, db_session, 400, SIGNATURE)


def test_no_kid(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, kid=None))
    assert_refused(resp, db_session, 400, UNKNOWN_KEY)


def test_unknown_kid_refetches_the_key_set_once(driver, db_session, app):
    jwks = app.extensions["kurspakke"].jwks
    driver.post_launch(driver.authorize(driver.login()))  # warm
    warm = jwks.fetches
    jwks.min_refetch = 0  # an unknown kid may mean the platform rotated its key: look again
    resp = driver.post_launch(driver.crafted(driver.login(), kid="no-such-kid"))
    assert resp.status_code == 400 and UNKNOWN_KEY in resp.get_data(as_text=True)
    assert count(db_session, LaunchRecord) == 1  # only the warm-up launch
    assert jwks.fetches == warm + 1
    jwks.min_refetch = 3600  # but a stream of forged kids does not turn into a stream of fetches
    driver.post_launch(driver.crafted(driver.login(), kid="another-unknown-kid"))
    assert jwks.fetches == warm + 1


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_alg_none_and_hs256(driver, db_session, sim, alg, caplog):
    login = driver.login()
    body = sim.claims_for(sim.user("deltaker"), nonce=login.nonce)
    if alg == "none":
        # A non-empty third part: "x.y." would be stopped by the three-parts check and never reach the alg check.
        junk = base64.urlsafe_b64encode(secrets.token_bytes(256)).rstrip(b"=").decode()
        token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': sim.kid})}.{b64(body)}.{junk}"
    else:
        # The classic confusion attack: HMAC keyed with the platform's public key, which anyone can fetch.
        signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': sim.kid})}.{b64(body)}"
        public_pem = sim.private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    resp = driver.post_launch({"id_token": token, "state": login.state})
    assert_refused(resp, db_session, 400, SIGNATURE)
    # Without the alg check PyJWT would still refuse (claims_invalid, "alg not allowed"): the code and detail prove
    # which rule answered.
    assert refusals(caplog) == [("signature_invalid", f"alg {alg!r} not allowed")]


def test_unknown_iss(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, claims={"iss": "https://evil.example"}))
    assert_refused(resp, db_session, 400, NOT_VALID)


def test_unknown_iss_at_login(client, sim, db_session):
    params = sim.login_initiation_params("deltaker")
    params["iss"] = "https://unknown.example"
    resp = client.get("/lti/login", query_string=params, base_url=TOOL)
    assert_refused(resp, db_session, 400, "Denne læringsplattformen er ikke registrert")


def test_login_deployment_id_hint(client, driver, sim, db_session):
    """lti_deployment_id is optional at login; when sent it must be a deployment registered for the platform."""
    params = sim.login_initiation_params("deltaker")
    assert params["lti_deployment_id"] == sim.config.deployment_id
    resp = client.get("/lti/login", query_string={**params, "lti_deployment_id": "9:unknown"}, base_url=TOOL)
    assert_refused(resp, db_session, 400, DEPLOYMENT)
    assert client.get("/lti/login", query_string=params, base_url=TOOL).status_code == 302  # the known one works
    assert driver.launch().status_code == 200  # and so does the whole launch through it
    params.pop("lti_deployment_id")
    assert client.get("/lti/login", query_string=params, base_url=TOOL).status_code == 302


def test_unknown_client_id_at_login(client, sim, db_session):
    params = sim.login_initiation_params("deltaker")
    params["client_id"] = "999"
    resp = client.get("/lti/login", query_string=params, base_url=TOOL)
    assert_refused(resp, db_session, 400, "Denne læringsplattformen er ikke registrert")


def test_login_without_client_id_works_for_one_client_and_is_refused_for_several(driver, client, app, sim, db_session):
    params = sim.login_initiation_params("deltaker")
    params.pop("client_id")
    assert client.get("/lti/login", query_string=params, base_url=TOOL).status_code == 302  # one client: found
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        register_sim(s, sim, client_id="20000000000002", deployment_ids=["2:other"])
    resp = client.get("/lti/login", query_string=params, base_url=TOOL)  # hosted Canvas: which developer key?
    assert_refused(resp, db_session, 400, "Denne læringsplattformen er ikke registrert")


def test_aud_not_ours(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, claims={"aud": "someone-else"}))
    assert_refused(resp, db_session, 400, NOT_VALID)


def test_aud_array_with_untrusted_extra_entry(driver, db_session, sim):
    login = driver.login()
    claims = {"aud": [sim.config.client_id, "untrusted-client"], "azp": sim.config.client_id}
    resp = driver.post_launch(driver.crafted(login, claims=claims))
    assert_refused(resp, db_session, 400, NOT_VALID)


def test_several_trusted_aud_need_azp(driver, db_session, sim, app):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        register_sim(s, sim, client_id="20000000000002", deployment_ids=["2:other"])
    login = driver.login()
    claims = {"aud": [sim.config.client_id, "20000000000002"]}
    resp = driver.post_launch(driver.crafted(login, claims=claims, drop=("azp",)))
    assert_refused(resp, db_session, 400, NOT_VALID)
    # The same audiences with azp naming us are fine.
    resp = driver.post_launch(driver.crafted(login, claims={**claims, "azp": sim.config.client_id}))
    assert resp.status_code == 200
    assert count(db_session, LaunchRecord) == 1


def test_azp_of_another_client(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, claims={"azp": "20000000000002"}))
    assert_refused(resp, db_session, 400, NOT_VALID)


def test_exp_in_the_past(driver, db_session):
    login = driver.login()
    now = int(time.time())
    resp = driver.post_launch(driver.crafted(login, claims={"iat": now - 600, "exp": now - 61}))
    assert_refused(resp, db_session, 400, EXPIRED)


def test_token_without_exp(driver, db_session, caplog):
    """exp is in jwt.decode's require list: without it PyJWT checks no expiry at all and the token lives for ever."""
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, drop=("exp",)))
    assert_refused(resp, db_session, 400, NOT_VALID)
    assert refusals(caplog) == [("claims_invalid", 'Token is missing the "exp" claim')]


def test_exp_within_leeway_is_accepted(driver, db_session):
    login = driver.login()
    now = int(time.time())
    resp = driver.post_launch(driver.crafted(login, claims={"iat": now - 600, "exp": now - 30}))
    assert resp.status_code == 200


def test_iat_in_the_future_beyond_leeway(driver, db_session):
    login = driver.login()
    now = int(time.time())
    resp = driver.post_launch(driver.crafted(login, claims={"iat": now + 120, "exp": now + 600}))
    assert_refused(resp, db_session, 400, NOT_VALID)


def test_nonce_missing(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, drop=("nonce",)))
    assert_refused(resp, db_session, 400, NOT_VALID)


def test_nonce_forged(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, claims={"nonce": "forged-nonce"}))
    assert_refused(resp, db_session, 400, NONCE)


@pytest.mark.parametrize("nonce", ["ikke-én-nonce", "\ud800"], ids=["non-ascii", "lone-surrogate"])
def test_nonce_that_is_not_ascii(driver, db_session, nonce):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, claims={"nonce": nonce}))
    assert_refused(resp, db_session, 400, NONCE)


def test_nonce_of_another_login(driver, db_session):
    first, second = driver.login(), driver.login()
    fields = driver.crafted(first)
    # first's id_token (its nonce) presented with second's state and cookie
    resp = driver.post_launch({"id_token": fields["id_token"], "state": second.state})
    assert_refused(resp, db_session, 400, NONCE)


def test_replayed_id_token(driver, db_session, client):
    login = driver.login()
    fields = driver.authorize(login)
    assert driver.post_launch(fields).status_code == 200
    replay = driver.post_launch(fields)  # the launch cleared the state cookie
    assert replay.status_code == 400 and STATE in replay.get_data(as_text=True)
    binding = state_binding(login.state)
    client.set_cookie("kp_state_" + binding, binding_proof(SECRET, binding), domain="kurspakke.test", path="/lti/")
    replay = driver.post_launch(fields)  # even with the cookie back, the nonce is used up
    assert replay.status_code == 400 and NONCE in replay.get_data(as_text=True)
    assert count(db_session, LaunchRecord) == 1


def test_a_refused_launch_does_not_use_up_the_login(driver, db_session):
    login = driver.login()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert driver.post_launch(driver.crafted(login, key=other)).status_code == 400
    assert driver.post_launch(driver.crafted(login)).status_code == 200  # the genuine token still works
    assert count(db_session, LaunchRecord) == 1


def test_replays_raced_from_many_clients_record_one_launch(app, driver, db_session):
    import threading

    fields = driver.authorize(driver.login())
    cookies = {c.key: c.value for c in driver.client._cookies.values()}
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def post() -> None:
        c = app.test_client()
        for key, value in cookies.items():
            c.set_cookie(key, value, domain="kurspakke.test", path="/lti/")
        barrier.wait()
        statuses.append(c.post("/lti/launch", data=fields, base_url=TOOL).status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 400, 400, 400, 400, 400]
    assert count(db_session, LaunchRecord) == 1


def open_app(client, token: str):
    """The landing page as launch.js opens it: the token in the X-Launch-Token header, never in the address."""
    return client.get("/app/", headers={"X-Launch-Token": token}, base_url=TOOL)


def test_launch_token_with_a_real_launch_id_and_a_wrong_signature(driver, client, db_session):
    """The id is that of a live launch and the token has the right shape: only the HMAC can refuse it."""
    resp = driver.post_launch(driver.crafted(driver.login()))
    assert resp.status_code == 200
    genuine = launch_token(resp.get_data(as_text=True))
    launch_id, signature = genuine.split(".")
    assert open_app(client, genuine).status_code == 200  # the id is live
    wrong_key = hmac.new(b"not-the-secret-key", launch_id.encode(), hashlib.sha256).digest()
    forged = launch_id + "." + base64.urlsafe_b64encode(wrong_key).rstrip(b"=").decode()
    assert len(forged) == len(genuine) and forged != genuine
    for token in (forged, f"{launch_id}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}"):
        refused = open_app(client, token)
        assert refused.status_code == 401, token
        assert "data-launch-token" not in refused.get_data(as_text=True)
    assert count(db_session, LaunchRecord) == 1


def test_correctly_signed_launch_token_for_no_launch(app, driver, client, db_session):
    """A token the tool could have signed, for an id no launch has (or one that expired): the store refuses it."""
    driver.post_launch(driver.crafted(driver.login()))  # a launch exists, just not this one
    launch_id = secrets.token_urlsafe(24)
    with app.app_context():
        token = make_launch_token(launch_id)
        assert read_launch_token(token) == launch_id  # the signature holds: what refuses it is the lookup
    assert open_app(client, token).status_code == 401
    assert count(db_session, LaunchRecord) == 1


def test_state_missing(driver, db_session):
    login = driver.login()
    fields = driver.crafted(login)
    resp = driver.post_launch({"id_token": fields["id_token"]})
    assert_refused(resp, db_session, 400, STATE)


def test_state_mismatched_with_cookie(driver, db_session, client):
    login = driver.login()
    fields = driver.crafted(login)
    client.delete_cookie("kp_state_" + state_binding(login.state), path="/lti/", domain="kurspakke.test")
    resp = driver.post_launch(fields)
    assert_refused(resp, db_session, 400, STATE)


def test_state_unknown(driver, db_session):
    login = driver.login()
    fields = driver.crafted(login)
    resp = driver.post_launch({**fields, "state": "made-up-state"})
    assert_refused(resp, db_session, 400, STATE)


def test_state_altered(driver, db_session):
    login = driver.login()
    fields = driver.crafted(login)
    tampered = login.state[:-2] + ("AA" if not login.state.endswith("AA") else "BB")
    resp = driver.post_launch({**fields, "state": tampered})
    assert_refused(resp, db_session, 400, STATE)


def test_state_expired(driver, db_session, app):
    login = driver.login()
    fields = driver.crafted(login)
    app.extensions["kurspakke"].settings = replace(app.extensions["kurspakke"].settings, login_state_ttl_seconds=-1)
    resp = driver.post_launch(fields)
    assert_refused(resp, db_session, 400, STATE)


@pytest.mark.parametrize("deployment", [None, "9:unknown"])
def test_deployment_id_missing_or_unknown(driver, db_session, deployment):
    login = driver.login()
    key = CLAIM + "deployment_id"
    fields = (
        driver.crafted(login, drop=(key,)) if deployment is None else driver.crafted(login, claims={key: deployment})
    )
    assert_refused(driver.post_launch(fields), db_session, 400, DEPLOYMENT)


@pytest.mark.parametrize("message_type", [None, "LtiSubmissionReviewRequest", "Bogus"])
def test_message_type_missing_or_unknown(driver, db_session, message_type):
    login = driver.login()
    key = CLAIM + "message_type"
    fields = (
        driver.crafted(login, drop=(key,))
        if message_type is None
        else driver.crafted(login, claims={key: message_type})
    )
    assert_refused(driver.post_launch(fields), db_session, 400, MESSAGE_TYPE)


def test_version_not_1_3_0(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, claims={CLAIM + "version": "1.1"}))
    assert_refused(resp, db_session, 400, NOT_VALID)


def test_roles_claim_missing(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, drop=(CLAIM + "roles",)))
    assert_refused(resp, db_session, 400, NOT_VALID)


def test_roles_claim_empty_is_allowed(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, claims={CLAIM + "roles": []}))
    assert resp.status_code == 200
    assert "Min fremdrift" in resp.get_data(as_text=True)  # known by e-mail, a participant


def test_resource_link_id_missing(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(driver.crafted(login, claims={CLAIM + "resource_link": {"title": "x"}}))
    assert_refused(resp, db_session, 400, NOT_VALID)


def test_target_link_uri_not_ours(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(
        driver.crafted(login, claims={CLAIM + "target_link_uri": "https://evil.example/lti/launch"})
    )
    assert_refused(resp, db_session, 400, TARGET)


def test_target_link_uri_differs_from_the_login(driver, db_session):
    login = driver.login()
    resp = driver.post_launch(
        driver.crafted(login, claims={CLAIM + "target_link_uri": TOOL + "/lti/launch?view=other"})
    )
    assert_refused(resp, db_session, 400, TARGET)


def test_target_link_uri_not_ours_at_login(client, sim, db_session):
    params = sim.login_initiation_params("deltaker", target_link_uri="https://evil.example/lti/launch")
    resp = client.get("/lti/login", query_string=params, base_url=TOOL)
    assert_refused(resp, db_session, 400, TARGET)


def test_target_link_uri_on_our_host_but_another_path_at_login(client, sim, db_session):
    params = sim.login_initiation_params("deltaker", target_link_uri=TOOL + "/app/")
    resp = client.get("/lti/login", query_string=params, base_url=TOOL)
    assert_refused(resp, db_session, 400, TARGET)


@pytest.mark.parametrize(("path", "refused"), [("/lti/launch", False), ("/app/", True), ("/lti/launchx", True)])
def test_target_link_uri_on_our_host_but_another_path_at_launch(app, client, sim, db_session, caplog, path, refused):
    """The launch checks target_link_uri itself, not only through the login: here the (signed) login names the same
    other path as the token, as if the login's check had let it through, so only the launch's own rule can refuse.
    The launch endpoint's own path, signed the same way, is the control: the forged login itself is sound."""
    target = TOOL + path
    registration = app.extensions["kurspakke"].registrations.get(sim.issuer, sim.config.client_id)
    nonce = secrets.token_urlsafe(32)
    state = StateSigner(SECRET, 600).sign(PendingLogin(nonce, registration.id, target, None))
    binding = state_binding(state)
    client.set_cookie(binding_name(binding), binding_proof(SECRET, binding), domain="kurspakke.test", path="/lti/")
    body = sim.claims_for(sim.user("deltaker"), nonce=nonce, target_link_uri=target)
    resp = client.post("/lti/launch", data={"id_token": sim.sign(body), "state": state}, base_url=TOOL)
    if not refused:
        assert resp.status_code == 200
        return
    assert_refused(resp, db_session, 400, TARGET)
    assert refusals(caplog) == [("bad_target", "target_link_uri is not this tool")]


@pytest.mark.parametrize("token", ["abc", "a.b", "a.b.c.d", "!!!.###.$$$", "eyJhbGciOiJSUzI1NiJ9..sig", "a.b.c"])
def test_token_not_three_base64url_parts(driver, db_session, token):
    login = driver.login()
    resp = driver.post_launch({"id_token": token, "state": login.state})
    assert_refused(resp, db_session, 400, MALFORMED)


def test_oversized_form_field(driver, db_session):
    login = driver.login()
    resp = driver.post_launch({"id_token": "a" * 300_000, "state": login.state})
    assert_refused(resp, db_session, 413, "Forespørselen er for stor")


def test_oversized_id_token_under_the_request_limit(driver, db_session):
    login = driver.login()
    resp = driver.post_launch({"id_token": "a" * 40_000, "state": login.state})
    assert_refused(resp, db_session, 413, "Forespørselen er for stor")


def test_missing_login_parameters(client, db_session):
    resp = client.get("/lti/login", query_string={"iss": "https://canvas.sim.test"}, base_url=TOOL)
    assert_refused(resp, db_session, 400, "mangler en påkrevd verdi")


def test_refusal_in_english_when_the_browser_asks(client, db_session):
    resp = client.get(
        "/lti/login", query_string={"iss": "x"}, base_url=TOOL, headers={"Accept-Language": "en-GB,en;q=0.8"}
    )
    assert resp.status_code == 400
    assert "missing a required value" in resp.get_data(as_text=True)
    assert 'lang="en"' in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    ("send", "writes"),
    [
        (lambda client, token: open_app(client, token.encode().decode("latin-1")), 0),
        (lambda client, token: client.post("/app/", data={"lt": token}, base_url=TOOL), 0),
        (
            lambda client, token: client.post(
                "/app/link", data={"lt": token, "programme": "laeringsnettverk-parorende"}, base_url=TOOL
            ),
            1,
        ),
    ],
    ids=["header", "form", "form-link"],
)
def test_a_launch_token_that_is_not_ascii_is_a_clean_401(driver, client, db_session, send, writes):
    """A real course owner's launch from a course not yet linked: its token, with one character made non-ASCII, is a
    clean 401 (no 500 from comparing a non-ASCII signature) and writes nothing; the genuine token, in the very same
    request, gets through — and on POST /app/link writes the course link the altered one did not."""
    claims = {CLAIM + "context": {"id": "unlinked-course", "title": "Ikke koblet"}}
    resp = driver.post_launch(driver.crafted(driver.login("kurseier"), "kurseier", claims=claims))
    assert resp.status_code == 200
    assert count(db_session, LaunchRecord) == 1
    genuine = launch_token(resp.get_data(as_text=True))
    links = count(db_session, CourseLink)
    launch_id, signature = genuine.split(".")
    for token in (f"{launch_id}.{signature[:-1]}\u00e9", f"{launch_id[:-1]}\u00e9.{signature}"):
        assert send(client, token).status_code == 401
    assert count(db_session, CourseLink) == links
    assert send(client, genuine).status_code == 200
    assert count(db_session, CourseLink) == links + writes
    assert count(db_session, LaunchRecord) == 1


def test_a_state_cookie_that_is_not_ascii_is_a_clean_refusal(driver, client, db_session):
    login = driver.login()
    fields = driver.authorize(login)
    client.set_cookie("kp_state_" + state_binding(login.state), "\u00e9", domain="kurspakke.test", path="/lti/")
    resp = driver.post_launch(fields)
    assert_refused(resp, db_session, 400, STATE)


@pytest.mark.parametrize("value", [["x"], "x", 7, None, True], ids=["list", "string", "int", "null", "bool"])
@pytest.mark.parametrize("claim", ["context", "custom", "resource_link", "tool_platform", "launch_presentation"])
def test_object_claims_that_are_not_objects(driver, db_session, caplog, claim, value):
    """These claims are JSON objects (LTI 1.3 core); anything else is refused before the library or the tool reads
    them (a resource_link list used to be an AttributeError in pylti1p3's validator: a 500)."""
    resp = driver.post_launch(driver.crafted(driver.login(), claims={CLAIM + claim: value}))
    assert_refused(resp, db_session, 400, NOT_VALID)
    assert refusals(caplog) == [("claims_invalid", f"{CLAIM}{claim} must be an object")]
