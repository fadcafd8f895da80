"""NRPS through the tool's service connector against the simulator's token endpoint and NRPS."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from course_sync.lti_services import NRPS_SCOPE, LtiServiceError, TimeoutSession, ToolServiceConnector, course_members
from kurspakke.db import transaction
from kurspakke.models import Registration
from kurspakke.services.cache import DatabaseCache
from kurspakke.services.platforms import add_platform
from tests.conftest import SIM, register_sim
from tests.support.wsgi_transport import WSGIAdapter


@pytest.fixture
def wired(app, sim, sim_app, client):
    sim.config.tool_jwks_fetcher = lambda url: client.get("/lti/jwks").get_json()
    svc = app.extensions["kurspakke"]
    adapter = WSGIAdapter(sim_app)

    def connector(client_id: str) -> ToolServiceConnector:
        with svc.session_factory() as s:
            reg = s.scalars(select(Registration).where(Registration.client_id == client_id)).one()
        session = TimeoutSession(2.0)
        session.mount(SIM, adapter)
        return ToolServiceConnector(
            reg,
            keyring=svc.keyring,
            cache=DatabaseCache(svc.session_factory, svc.encryptor),
            timeout=2.0,
            session=session,
        )

    return connector


def nrps_url(sim) -> str:
    return f"{SIM}/api/lti/courses/{sim.config.course_id}/names_and_roles"


def test_nrps_members_with_a_cached_token(wired, sim):
    connector = wired
    members = list(course_members(connector(sim.config.client_id), nrps_url(sim)))
    assert {m["email"] for m in members} == {u.email for u in sim.config.users}
    list(course_members(connector(sim.config.client_id), nrps_url(sim)))
    assert sim.token_requests == 1  # the second connector found the token in the shared cache


def test_token_cache_is_keyed_by_client_id(wired, sim, app):
    connector = wired
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        register_sim(s, sim, client_id="20000000000002", deployment_ids=["2:other"])
    first = connector(sim.config.client_id).get_access_token([NRPS_SCOPE])
    # Same issuer, same scopes, other developer key: must not get the first key's token.
    sim.config.client_id = "20000000000002"
    second = connector("20000000000002").get_access_token([NRPS_SCOPE])
    assert first != second
    assert sim.token_requests == 2


def test_refused_assertion_is_a_clear_error(wired, sim):
    connector = wired
    sim.config.tool_jwks_fetcher = lambda url: {"keys": []}  # the platform cannot verify our signature
    with pytest.raises(LtiServiceError):
        connector(sim.config.client_id).get_access_token([NRPS_SCOPE])


def test_token_and_nrps_calls_give_up_on_a_platform_that_never_answers(app, sim):
    """Every outbound call has a timeout: a platform that accepts the connection and never answers costs the
    timeout, not a worker thread forever."""
    import socket
    import time

    svc = app.extensions["kurspakke"]
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with transaction(svc.session_factory) as s:
            add_platform(
                s,
                issuer=sim.issuer,
                client_id="30000000000003",
                deployment_ids=["3:silent"],
                auth_login_url=SIM + "/api/lti/authorize_redirect",
                auth_token_url=silent_url + "/login/oauth2/token",
                key_set_url=SIM + "/api/lti/security/jwks",
            )
        with svc.session_factory() as s:
            reg = s.scalars(select(Registration).where(Registration.client_id == "30000000000003")).one()
        cache = DatabaseCache(svc.session_factory, svc.encryptor)
        connector = ToolServiceConnector(reg, keyring=svc.keyring, cache=cache, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(LtiServiceError, match="access token refused"):
            connector.get_access_token([NRPS_SCOPE])
        assert time.monotonic() - started < 3
        # With a token at hand, the NRPS request itself times out just the same.
        cache.set(connector._scope_key([NRPS_SCOPE]), "token-from-the-cache", 300)
        started = time.monotonic()
        with pytest.raises(LtiServiceError, match="NRPS request failed"):
            list(course_members(connector, silent_url + "/api/lti/courses/1/names_and_roles"))
        assert time.monotonic() - started < 3
