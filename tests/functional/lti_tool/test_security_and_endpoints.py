"""Headers, cookies, platform storage, the JWKS and developer-key JSON, health."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.models import LaunchRecord, ProgrammeRoleKind, ToolKey, utcnow
from kurspakke.services.keys import rotate
from lti_tool.lti.oidc_login import state_binding
from tests.conftest import SIM, register_sim
from tests.support.factories import link_sim_course, person_for
from tests.support.lti import TOOL, form_fields


@pytest.fixture
def linked(app, sim):
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
        person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT)


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


def test_hsts_in_production(tmp_path, database_url, encryptor):
    from kurspakke.db import make_engine, make_session_factory
    from kurspakke.services.keys import ensure_key
    from lti_tool import create_app

    engine = make_engine(database_url)
    with transaction(make_session_factory(engine)) as s:
        ensure_key(s, encryptor)
    engine.dispose()
    environ = {
        "KURSPAKKE_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-" * 4,
        "KURSPAKKE_BASE_URL": "https://kurspakke.example",
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path),
    }
    app = create_app({"environ": environ})
    try:
        resp = app.test_client().get("/healthz", base_url="https://kurspakke.example")
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        app.extensions["kurspakke"].engine.dispose()


def test_production_refuses_to_start_without_secrets(tmp_path):
    from config.settings import SettingsError
    from lti_tool import create_app

    with pytest.raises(SettingsError, match="SECRET_KEY"):
        create_app(
            {
                "environ": {
                    "KURSPAKKE_ENV": "production",
                    "DATABASE_URL": "sqlite:///x.db",
                    "KURSPAKKE_BASE_URL": "https://k.example",
                }
            }
        )
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        create_app(
            {
                "environ": {
                    "KURSPAKKE_ENV": "production",
                    "SECRET_KEY": "s" * 40,
                    "KURSPAKKE_BASE_URL": "https://k.example",
                }
            }
        )


def test_production_refuses_to_start_without_a_signing_key(tmp_path, database_url):
    from config.settings import SettingsError
    from lti_tool import create_app

    environ = {
        "KURSPAKKE_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "s" * 40,
        "KURSPAKKE_BASE_URL": "https://k.example",
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path),
    }
    with pytest.raises(SettingsError, match="signing key"):
        create_app({"environ": environ})


def test_state_cookie_is_secure_httponly_samesite_none_partitioned(driver):
    login = driver.login()
    cookie = login.response.headers["Set-Cookie"]
    assert cookie.startswith(f"kp_state_{state_binding(login.state)}={state_binding(login.state)};")
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Partitioned", "Path=/lti/"):
        assert attribute in cookie


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
        assert body["data-state"] == state_binding(state)

    def test_cookieless_launch_waits_for_the_platform_storage_check(
        self, client, storage_sim, sim_client, linked, db_session
    ):
        resp = client.get("/lti/login", query_string=storage_sim.login_initiation_params("deltaker"), base_url=TOOL)
        auth_url = BeautifulSoup(resp.get_data(as_text=True), "html.parser").body["data-next"]
        client._cookies.clear()  # the browser dropped the third-party cookie
        page = sim_client.get(auth_url[len(SIM) :])
        _, fields = form_fields(page.get_data(as_text=True))
        launch = client.post("/lti/launch", data=fields, base_url=TOOL)
        assert launch.status_code == 200
        body = BeautifulSoup(launch.get_data(as_text=True), "html.parser").body
        assert body["data-storage-mode"] == "check"
        assert body["data-state"] == state_binding(fields["state"])
        assert "Min fremdrift" not in launch.get_data(as_text=True)  # nothing shown before the check
        assert body["data-next"].startswith("/app/?lt=")
        landing = client.get(body["data-next"], base_url=TOOL)  # where the script goes once the check passes
        assert "Min fremdrift" in landing.get_data(as_text=True)
        assert db_session.scalar(select(func.count()).select_from(LaunchRecord)) == 1

    def test_cookieless_launch_without_storage_is_refused(self, driver, client, linked, db_session):
        login = driver.login()
        client._cookies.clear()
        resp = driver.post_launch(driver.authorize(login))
        assert resp.status_code == 400
        assert db_session.scalar(select(func.count()).select_from(LaunchRecord)) == 0


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
    cfg = client.get("/lti/config.json").get_json()
    assert cfg["oidc_initiation_url"] == TOOL + "/lti/login"
    assert cfg["target_link_uri"] == TOOL + "/lti/launch"
    assert cfg["public_jwk_url"] == TOOL + "/lti/jwks"
    ext = cfg["extensions"][0]
    assert ext["privacy_level"] == "public"
    placements = {p["placement"]: p["message_type"] for p in ext["settings"]["placements"]}
    assert placements == {"course_navigation": "LtiResourceLinkRequest", "link_selection": "LtiDeepLinkingRequest"}
    assert cfg["custom_fields"] == {"canvas_user_id": "$Canvas.user.id", "canvas_course_id": "$Canvas.course.id"}
    assert "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly" in cfg["scopes"]
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in cfg["scopes"]


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
    app.extensions["kurspakke"].origins_ttl = 0
    app.extensions["kurspakke"]._origins = (float("inf"), [], [])  # do not reach the database for headers
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["database"] == "unreachable"


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
