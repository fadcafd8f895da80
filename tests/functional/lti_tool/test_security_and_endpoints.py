"""Headers, cookies, platform storage, the JWKS and developer-key JSON, health."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.models import LaunchRecord, ToolKey, utcnow
from kurspakke.services.keys import rotate
from kurspakke.services.platforms import add_platform
from lti_tool.lti.oidc_login import binding_proof, state_binding
from tests.conftest import SECRET, SIM, register_sim
from tests.support.lti import TOOL, form_fields, launch_token

# Production refuses to start without KURSPAKKE_ENCRYPTION_KEY; one made as the install guide says.
ENCRYPTION_KEY = Fernet.generate_key().decode()


def csp(resp) -> dict[str, str]:
    return {
        part.strip().split(" ", 1)[0]: part.strip().split(" ", 1)[1]
        for part in resp.headers["Content-Security-Policy"].split(";")
    }


def test_frame_ancestors_name_only_registered_frame_origins(driver, linked, app, sim):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        register_sim(
            s, sim, client_id="20000000000002", deployment_ids=["2:x"], frame_origins=["https://hinn.instructure.com"]
        )
    app.extensions["kurspakke"].invalidate_origins()
    resp = driver.launch("deltaker")
    policy = csp(resp)
    assert policy["frame-ancestors"].split() == ["'self'", SIM, "https://hinn.instructure.com"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["script-src"].startswith("'self' 'nonce-")
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Frame-Options" not in resp.headers  # would forbid the Canvas iframe
    assert "Strict-Transport-Security" not in resp.headers  # production only


def test_every_script_is_external_and_carries_the_nonce(driver, linked):
    resp = driver.launch("deltaker")
    nonce = csp(resp)["script-src"].split("'nonce-")[1].rstrip("'")
    scripts = BeautifulSoup(resp.get_data(as_text=True), "html.parser").find_all("script")
    assert scripts
    for script in scripts:
        assert script.get("src", "").startswith("/static/")
        assert script.get("nonce") == nonce
        assert not script.string


@pytest.mark.parametrize("env", ["production", None], ids=["explicit", "unset"])
def test_hsts_in_production(env, tmp_path, database_url):
    """Production's rules — HSTS among them — also when KURSPAKKE_ENV is not set at all (fail closed)."""
    from kurspakke.crypto import Encryptor
    from kurspakke.db import make_engine, make_session_factory
    from kurspakke.services.keys import ensure_key
    from lti_tool import create_app

    secret = "test-secret-key-" * 4
    engine = make_engine(database_url)
    with transaction(make_session_factory(engine)) as s:
        ensure_key(s, Encryptor(secret_key=secret, encryption_key=ENCRYPTION_KEY))
    engine.dispose()
    environ = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": secret,
        "KURSPAKKE_BASE_URL": "https://kurspakke.example",
        "KURSPAKKE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path),
    }
    if env is not None:
        environ["KURSPAKKE_ENV"] = env
    app = create_app({"environ": environ})
    try:
        assert app.extensions["kurspakke"].settings.is_production
        resp = app.test_client().get("/healthz", base_url="https://kurspakke.example")
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        assert app.test_client().get("/lti/jwks").get_json()["keys"]  # the stored key reads with the configured key
    finally:
        app.extensions["kurspakke"].engine.dispose()


def test_production_refuses_to_start_without_secrets(tmp_path):
    from config.settings import SettingsError
    from lti_tool import create_app

    database = tmp_path / "x.db"  # under tmp_path: a regression that gets as far as connecting litters nothing
    complete = {
        "KURSPAKKE_ENV": "production",
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": "s" * 40,
        "KURSPAKKE_BASE_URL": "https://k.example",
        "KURSPAKKE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    for missing, message in [
        ("SECRET_KEY", "SECRET_KEY must be set"),
        ("DATABASE_URL", "DATABASE_URL must be set"),
        ("KURSPAKKE_ENCRYPTION_KEY", "KURSPAKKE_ENCRYPTION_KEY must be set"),
    ]:
        environ = {k: v for k, v in complete.items() if k != missing}
        with pytest.raises(SettingsError, match=message):
            create_app({"environ": environ})
    assert not database.exists() and not (tmp_path / "instance").exists()  # refused before connecting or writing


def test_without_kurspakke_env_the_app_refuses_to_start(tmp_path):
    """A web process started without KURSPAKKE_ENV (and no env override) gets production's rules: no secrets, no
    start — instead of serving as development with a SECRET_KEY generated into its container."""
    from config.settings import SettingsError
    from lti_tool import create_app

    instance = tmp_path / "instance"
    with pytest.raises(SettingsError) as refused:
        create_app({"environ": {}, "settings": {"instance_path": instance}})
    for variable in ("DATABASE_URL", "SECRET_KEY", "KURSPAKKE_BASE_URL", "KURSPAKKE_ENCRYPTION_KEY"):
        assert f"{variable} must be" in str(refused.value)
    assert not instance.exists()  # no generated secret_key, no SQLite file


def test_production_refuses_to_start_without_a_signing_key(tmp_path, database_url):
    from config.settings import SettingsError
    from lti_tool import create_app

    environ = {
        "KURSPAKKE_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "s" * 40,
        "KURSPAKKE_BASE_URL": "https://k.example",
        "KURSPAKKE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path),
    }
    with pytest.raises(SettingsError, match="signing key"):
        create_app({"environ": environ})


def test_state_cookie_is_secure_httponly_samesite_none_partitioned(driver):
    login = driver.login()
    cookie = login.response.headers["Set-Cookie"]
    # The documented construction (docs/ARCHITECTURE.md, LTI launch step 1), written out here rather than taken
    # from lti_tool.lti.oidc_login, so that a change to how the product names or proves the binding is caught:
    # name = kp_state_ + the first 32 hex digits of SHA-256(state); value = HMAC-SHA256(SECRET_KEY,
    # "kurspakke-login-binding|" + that binding), url-safe base64 without padding.
    binding = hashlib.sha256(login.state.encode()).hexdigest()[:32]
    digest = hmac.new(SECRET.encode(), b"kurspakke-login-binding|" + binding.encode(), hashlib.sha256).digest()
    proof = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert len(proof) == 43 and binding not in proof  # a MAC under SECRET_KEY, not the state's hash
    assert cookie.startswith(f"kp_state_{binding}={proof};")
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Partitioned", "Path=/lti/"):
        assert attribute in cookie


def test_form_action_names_the_registered_platforms_origins_and_nothing_else(app, client):
    """The login's redirect and the launch page's auto-submitting forms go to the platform: CSP form-action must
    name every registered platform's issuer origin, OIDC login URL origin and frame origins — and nothing else
    (not the token or key-set URLs, which no form posts to, and no origin that is not registered)."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        # Hosted Canvas: three different origins for one registration.
        add_platform(
            s,
            issuer="https://canvas.instructure.com",
            client_id="170000000000123",
            deployment_ids=["1:a"],
            auth_login_url="https://sso.canvaslms.com/api/lti/authorize_redirect",
            auth_token_url="https://token.canvas.example/login/oauth2/token",
            key_set_url="https://keys.canvas.example/api/lti/security/jwks",
            frame_origins=["https://hinn.instructure.com", "https://canvas.hinn.no"],
        )
        # A self-hosted Canvas with a port, an issuer with a path and a login URL on the issuer's own origin.
        add_platform(
            s,
            issuer="https://lms.example.org:8443/canvas",
            client_id="10000000000042",
            deployment_ids=["2:b"],
            auth_login_url="https://lms.example.org:8443/api/lti/authorize_redirect",
            auth_token_url="https://lms.example.org:8443/login/oauth2/token",
            key_set_url="https://lms.example.org:8443/api/lti/security/jwks",
        )
    app.extensions["kurspakke"].invalidate_origins()
    for path in ("/healthz", "/lti/jwks", "/no/such/page"):
        form_action = csp(client.get(path))["form-action"].split()
        assert form_action[0] == "'self'"
        assert len(form_action) == len(set(form_action))
        assert set(form_action[1:]) == {
            SIM,  # the simulator's registration (tests/conftest.py): issuer, login URL and frame on one origin
            "https://canvas.instructure.com",  # issuer
            "https://sso.canvaslms.com",  # OIDC login URL
            "https://hinn.instructure.com",  # frame origins
            "https://canvas.hinn.no",
            "https://lms.example.org:8443",  # issuer, login URL and (by default) frame origin
        }, path


def test_login_redirects_with_every_oidc_parameter(driver, sim):
    login = driver.login()
    p = login.auth_params
    assert login.response.headers["Location"].startswith(SIM + "/api/lti/authorize_redirect?")
    assert (p["scope"], p["response_type"], p["response_mode"], p["prompt"]) == (
        "openid",
        "id_token",
        "form_post",
        "none",
    )
    assert p["client_id"] == sim.config.client_id
    assert p["redirect_uri"] == TOOL + "/lti/launch"
    assert p["login_hint"] == "deltaker"
    assert p["lti_message_hint"]
    assert len(p["state"]) >= 32 and len(p["nonce"]) >= 32


def test_login_by_post_works_too(client, sim):
    resp = client.post("/lti/login", data=sim.login_initiation_params("deltaker"), base_url=TOOL)
    assert resp.status_code == 302
    assert "state=" in resp.headers["Location"] and "nonce=" in resp.headers["Location"]


class TestPlatformStorage:
    @pytest.fixture
    def storage_sim(self, sim):
        sim.config.storage_target = "post_message_forwarding"
        return sim

    def test_login_offers_the_storage_page_and_still_sets_the_cookie(self, client, storage_sim, db_session):
        resp = client.get("/lti/login", query_string=storage_sim.login_initiation_params("deltaker"), base_url=TOOL)
        assert resp.status_code == 200
        body = BeautifulSoup(resp.get_data(as_text=True), "html.parser").body
        assert body["data-storage-mode"] == "login"
        assert body["data-target"] == "post_message_forwarding"
        assert body["data-platform-origin"] == SIM
        assert body["data-next"].startswith(SIM + "/api/lti/authorize_redirect?")
        assert "Partitioned" in resp.headers["Set-Cookie"]
        state = parse_qs(urlsplit(body["data-next"]).query)["state"][0]
        assert body["data-key"] == "kp_state_" + state_binding(state)
        # What goes into the platform's storage (and the cookie) is a MAC only the tool can make, not the state.
        proof = binding_proof(SECRET, state_binding(state))
        assert body["data-value"] == proof and state_binding(state) not in proof
        assert f"kp_state_{state_binding(state)}={proof};" in resp.headers["Set-Cookie"]

    def test_a_cookie_bound_launch_clears_the_key_the_login_stored(
        self, client, storage_sim, sim_client, linked, driver
    ):
        resp = client.get("/lti/login", query_string=storage_sim.login_initiation_params("deltaker"), base_url=TOOL)
        auth_url = BeautifulSoup(resp.get_data(as_text=True), "html.parser").body["data-next"]
        _, fields = form_fields(sim_client.get(auth_url[len(SIM) :]).get_data(as_text=True))
        landing = client.post("/lti/launch", data=fields, base_url=TOOL)  # the cookie came back: bound by it
        page = BeautifulSoup(landing.get_data(as_text=True), "html.parser")
        assert page.h1.get_text() == "Min fremdrift"
        clear = page.find(id="kp-storage-clear")
        assert clear is not None and clear.has_attr("hidden")
        assert clear["data-key"] == "kp_state_" + state_binding(fields["state"])
        assert (clear["data-target"], clear["data-platform-origin"]) == ("post_message_forwarding", SIM)
        storage_sim.config.storage_target = None  # a login without platform storage leaves nothing to clear
        plain = BeautifulSoup(driver.launch("deltaker").get_data(as_text=True), "html.parser")
        assert plain.find(id="kp-storage-clear") is None

    def cookieless_launch(self, client, storage_sim, sim_client):
        resp = client.get("/lti/login", query_string=storage_sim.login_initiation_params("deltaker"), base_url=TOOL)
        auth_url = BeautifulSoup(resp.get_data(as_text=True), "html.parser").body["data-next"]
        client._cookies.clear()  # the browser dropped the third-party cookie
        page = sim_client.get(auth_url[len(SIM) :])
        _, fields = form_fields(page.get_data(as_text=True))
        return fields, client.post("/lti/launch", data=fields, base_url=TOOL)

    def test_cookieless_launch_opens_only_with_the_proof_from_platform_storage(
        self, client, storage_sim, sim_client, linked, db_session
    ):
        fields, launch = self.cookieless_launch(client, storage_sim, sim_client)
        assert launch.status_code == 200
        html = launch.get_data(as_text=True)
        body = BeautifulSoup(html, "html.parser").body
        assert body["data-storage-mode"] == "check"
        binding = state_binding(fields["state"])
        assert body["data-key"] == "kp_state_" + binding
        assert "Min fremdrift" not in html and "lt=" not in html  # nothing shown, no token before the check
        proof = binding_proof(SECRET, binding)
        assert proof not in html  # the page cannot confirm itself: the proof must come from the storage
        action, confirm = form_fields(html, "#storage-confirm")
        assert action == "/lti/storage-confirm" and confirm["proof"] == ""
        wrong = client.post(action, data={**confirm, "proof": binding}, base_url=TOOL)  # the guessable value
        assert wrong.status_code == 400 and "lt=" not in wrong.get_data(as_text=True)
        assert "Location" not in wrong.headers
        opened = client.post(action, data={**confirm, "proof": proof}, base_url=TOOL)
        # The landing page itself, its launch token in the page for launch.js, never in an address.
        assert opened.status_code == 200 and "Location" not in opened.headers
        assert "Min fremdrift" in opened.get_data(as_text=True)
        assert launch_token(opened.get_data(as_text=True)) and "lt=" not in opened.get_data(as_text=True)
        assert db_session.scalar(select(func.count()).select_from(LaunchRecord)) == 1

    def test_storage_confirm_refuses_another_logins_proof_and_a_get(
        self, client, storage_sim, sim_client, linked, db_session
    ):
        _, launch = self.cookieless_launch(client, storage_sim, sim_client)
        action, confirm = form_fields(launch.get_data(as_text=True), "#storage-confirm")
        other_login = binding_proof(SECRET, state_binding("some other login's state"))  # a valid proof, not ours
        resp = client.post(action, data={**confirm, "proof": other_login}, base_url=TOOL)
        assert resp.status_code == 400 and "Location" not in resp.headers
        assert client.get(action, query_string=confirm, base_url=TOOL).status_code == 405

    @pytest.mark.parametrize("ticket", ["", "forged"], ids=["missing", "forged"])
    def test_storage_confirm_refuses_a_bad_ticket(self, client, ticket):
        resp = client.post("/lti/storage-confirm", data={"ticket": ticket, "proof": "p"}, base_url=TOOL)
        assert resp.status_code == 400
        assert "Innloggingen kunne ikke bekreftes" in resp.get_data(as_text=True)
        assert "Location" not in resp.headers

    def test_storage_confirm_refuses_an_oversized_ticket_even_when_it_is_signed(self, client, app):
        import secrets

        from lti_tool.lti.oidc_login import StorageConfirmSigner

        launch_id = secrets.token_urlsafe(900)  # random: the signer compresses repetition away
        ticket = StorageConfirmSigner(app.extensions["kurspakke"].settings.secret_key, 60).sign(launch_id, "b" * 32)
        assert len(ticket) > 1024
        resp = client.post(
            "/lti/storage-confirm", data={"ticket": ticket, "proof": binding_proof(SECRET, "b" * 32)}, base_url=TOOL
        )
        assert resp.status_code == 400 and "Location" not in resp.headers

    def test_storage_confirm_refuses_an_expired_ticket(self, client, app):
        from dataclasses import replace

        from lti_tool.lti.oidc_login import StorageConfirmSigner

        svc = app.extensions["kurspakke"]
        ticket = StorageConfirmSigner(svc.settings.secret_key, 60).sign("some-launch", "b" * 32)
        svc.settings = replace(svc.settings, login_state_ttl_seconds=-1)  # every ticket is past its lifetime
        resp = client.post(
            "/lti/storage-confirm", data={"ticket": ticket, "proof": binding_proof(SECRET, "b" * 32)}, base_url=TOOL
        )
        assert resp.status_code == 400 and "Location" not in resp.headers


def test_bad_storage_target_is_refused(client, sim, db_session):
    params = sim.login_initiation_params("deltaker")
    params["lti_storage_target"] = "<script>"
    resp = client.get("/lti/login", query_string=params, base_url=TOOL)
    assert resp.status_code == 400
    assert "Set-Cookie" not in resp.headers


def test_jwks_keeps_the_old_key_for_the_grace_period(app, client, encryptor):
    svc = app.extensions["kurspakke"]
    before = {k["kid"] for k in client.get("/lti/jwks").get_json()["keys"]}
    with transaction(svc.session_factory) as s:
        new_kid = rotate(s, encryptor, grace_seconds=3600).kid
    svc.keyring.invalidate()
    keys = client.get("/lti/jwks").get_json()["keys"]
    assert {k["kid"] for k in keys} == before | {new_kid}
    assert all(set(k) == {"kty", "n", "e", "kid", "alg", "use"} for k in keys)  # no private parts
    assert svc.keyring.signing_key().kid == new_kid
    # Once the grace period has passed since it retired, the old key leaves the key set.
    with transaction(svc.session_factory) as s:
        for key in s.scalars(select(ToolKey).where(ToolKey.retired_at.is_not(None))):
            key.retired_at = utcnow() - timedelta(seconds=svc.settings.key_grace_seconds + 1)
    svc.keyring.invalidate()
    assert {k["kid"] for k in client.get("/lti/jwks").get_json()["keys"]} == {new_kid}


def test_developer_key_json(client):
    """The whole developer key, as Canvas's Paste JSON reads it."""
    launch = TOOL + "/lti/launch"
    assert client.get("/lti/config.json").get_json() == {
        "title": "Kurspakke",
        "description": "Lisenser, mentorgrupper, fremdrift og kursbevis for opplæringspakker i Canvas.",
        "oidc_initiation_url": TOOL + "/lti/login",
        "target_link_uri": launch,
        "public_jwk_url": TOOL + "/lti/jwks",
        "scopes": [
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
            "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
        ],
        "extensions": [
            {
                "domain": urlsplit(TOOL).hostname,
                "tool_id": "kurspakke",
                "platform": "canvas.instructure.com",
                "privacy_level": "public",
                "settings": {
                    "text": "Kurspakke",
                    "placements": [
                        {
                            "placement": "course_navigation",
                            "message_type": "LtiResourceLinkRequest",
                            "target_link_uri": launch,
                            "text": "Kurspakke",
                            "default": "enabled",
                            "visibility": "public",
                        },
                        {
                            "placement": "link_selection",
                            "message_type": "LtiDeepLinkingRequest",
                            "target_link_uri": launch,
                            "text": "Kurspakke",
                        },
                    ],
                },
            }
        ],
        "custom_fields": {"canvas_user_id": "$Canvas.user.id", "canvas_course_id": "$Canvas.course.id"},
    }


def test_healthz_reports_the_database(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "database": "ok"}
    assert resp.headers["X-Request-ID"]


def test_healthz_reports_an_unreachable_database(tmp_path):
    from lti_tool import create_app

    app = create_app(
        {
            "settings": {
                "env": "test",
                "database_url": "postgresql://nobody@127.0.0.1:1/none",
                "instance_path": tmp_path,
                "secret_key": "s" * 40,
            },
            "environ": {},
        }
    )
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "error", "database": "unreachable"}
    # The security headers do not need the database: with no origins known, frames only from the tool itself.
    assert csp(resp)["frame-ancestors"] == "'self'"


def test_security_headers_keep_the_last_known_origins_while_the_database_is_away(app, client, monkeypatch):
    from sqlalchemy.exc import OperationalError

    svc = app.extensions["kurspakke"]
    assert csp(client.get("/healthz"))["frame-ancestors"] == f"'self' {SIM}"

    attempts: list[int] = []

    def unreachable():
        attempts.append(1)
        raise OperationalError("connect", {}, Exception("connection refused"))

    monkeypatch.setattr(svc, "origins_ttl", 0.0)
    monkeypatch.setattr(svc, "readonly_session_factory", unreachable)
    assert csp(client.get("/lti/jwks"))["frame-ancestors"] == f"'self' {SIM}"
    assert attempts, "the origins were not read again: the fallback was never needed"


def test_request_id_is_echoed_when_well_formed(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abcdef123456"}).headers["X-Request-ID"] == "abcdef123456"
    assert client.get("/healthz", headers={"X-Request-ID": "bad id<>"}).headers["X-Request-ID"] != "bad id<>"


def test_unknown_page_is_a_clear_404(client):
    resp = client.get("/no/such/page")
    assert resp.status_code == 404
    assert "Siden finnes ikke" in resp.get_data(as_text=True)


def test_every_statement_of_a_launch_uses_the_compiled_cache(driver, linked, caplog):
    """A statement SQLAlchemy cannot cache is compiled on every launch; that once cost a fifth of the launch."""
    import logging

    driver.launch("deltaker")  # warm the cache
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine.Engine"):
        assert driver.launch("deltaker").status_code == 200
    compiled = [r.getMessage() for r in caplog.records if r.name == "sqlalchemy.engine.Engine"]
    assert any("cached since" in m for m in compiled)
    assert not [m for m in compiled if m.startswith(("[no key", "[generated"))]


def test_the_tool_sets_no_session_cookie(driver, linked, client):
    login = driver.login()
    assert [c for c in login.response.headers.getlist("Set-Cookie") if not c.startswith("kp_state_")] == []
    resp = driver.post_launch(driver.authorize(login))
    assert resp.status_code == 200
    assert all(c.startswith("kp_state_") for c in resp.headers.getlist("Set-Cookie"))  # only the state's removal


def test_flask_sessions_are_off(app):
    """Nothing can quietly start a session cookie: writing to flask.session fails."""
    from flask import session

    with app.test_request_context("/"), pytest.raises(RuntimeError, match="session is unavailable"):
        session["x"] = 1
