"""The kurspakke command, run as a user would (a subprocess with the environment as its only input)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from kurspakke.models import CanvasInstance, Deployment, Registration, ToolKey


def base_env() -> dict[str, str]:
    """PATH, and coverage's own variables: `make test` measures these subprocesses too (coverage's
    `patch = ["subprocess"]` hands its configuration over in COVERAGE_PROCESS_CONFIG), and an environment built
    from scratch would drop it. Nothing else from the caller's environment leaks into the command."""
    return {"PATH": os.environ["PATH"], **{k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}}


@pytest.fixture
def run(database_url, tmp_path):
    env = {
        **base_env(),
        "KURSPAKKE_ENV": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "cli-secret-" * 4,
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path),
    }

    def _run(*args: str, extra: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "kurspakke", *args],
            env={**env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )

    return _run


HOSTED_CANVAS = "https://sso.canvaslms.com"


def platform_add(*extra: str, **options: str) -> tuple[str, ...]:
    """`kurspakke platform add` for hosted Canvas, with options replaced by keyword (auth_login_url=…)."""
    values = {
        "issuer": "https://canvas.instructure.com",
        "client_id": "170000000000123",
        "auth_login_url": HOSTED_CANVAS + "/api/lti/authorize_redirect",
        "auth_token_url": HOSTED_CANVAS + "/login/oauth2/token",
        "key_set_url": HOSTED_CANVAS + "/api/lti/security/jwks",
        **options,
    }
    args: list[str] = ["platform", "add"]
    for name, value in values.items():
        args += ["--" + name.replace("_", "-"), value]
    return (*args, *extra)


def test_platform_add_with_several_deployments(run, session):
    res = run(
        *platform_add(
            "--deployment-id", "1:a", "--deployment-id", "2:b", "--frame-origin", "https://hinn.instructure.com"
        )
    )
    assert res.returncode == 0, res.stderr
    reg = session.scalars(select(Registration)).one()
    assert reg.frame_origins == ["https://hinn.instructure.com"]
    assert sorted(d.deployment_id for d in reg.deployments) == ["1:a", "2:b"]


def test_platform_add_refuses_a_bad_url_and_writes_nothing(run, session):
    res = run(*platform_add("--deployment-id", "1", auth_login_url="javascript:alert(1)"))
    assert res.returncode != 0
    assert "not an http(s) URL" in res.stderr
    assert session.scalar(select(func.count()).select_from(Registration)) == 0
    assert session.scalar(select(func.count()).select_from(Deployment)) == 0


def test_keys_rotate(run, session):
    assert run("keys", "rotate").returncode == 0
    assert run("keys", "rotate").returncode == 0
    keys = session.scalars(select(ToolKey).order_by(ToolKey.id)).all()
    assert len(keys) == 2 and keys[0].retired_at is not None and keys[1].retired_at is None


@pytest.fixture
def canvas_api():
    """The Canvas simulator's REST half served over HTTP in this process, for the command to call."""
    import threading

    from werkzeug.serving import make_server

    from canvas_sim import SimConfig, SimPlatform, create_sim_app
    from canvas_sim.rest import CanvasRest

    config = SimConfig()
    rest = CanvasRest(config)
    server = make_server("127.0.0.1", 0, create_sim_app(platform=SimPlatform(config), rest=rest), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", config
    rest.close()
    server.shutdown()
    server.server_close()
    thread.join()


def canvas_add(api_url: str, *extra: str) -> tuple[str, ...]:
    return ("canvas", "add", "--api-url", api_url, "--account-id", "1", "--token-env", "MY_TOKEN", *extra)


def test_canvas_add_stores_the_token_encrypted_and_the_platform_instance(run, session, canvas_api):
    url, config = canvas_api
    res = run(*canvas_add(url), extra={"MY_TOKEN": "sim-canvas-api-token"})
    assert res.returncode == 0, res.stderr
    row = session.scalars(select(CanvasInstance)).one()
    assert b"sim-canvas-api-token" not in row.token_encrypted
    assert row.platform_instance == f"https://canvas.instructure.com|{config.platform_guid}"


def test_canvas_add_with_an_issuer_scopes_the_platform_instance_by_it(run, session, canvas_api):
    url, config = canvas_api
    res = run(*canvas_add(url, "--issuer", "https://canvas.hvl.example"), extra={"MY_TOKEN": "sim-canvas-api-token"})
    assert res.returncode == 0, res.stderr
    row = session.scalars(select(CanvasInstance)).one()
    assert row.platform_instance == f"https://canvas.hvl.example|{config.platform_guid}"


def test_canvas_add_refuses_a_second_address_of_a_canvas_already_stored(run, session, canvas_api):
    """One Canvas, one REST connection: the same Canvas (the same root account lti_guid) under another address
    would provision the same people twice."""
    url, _ = canvas_api
    assert run(*canvas_add(url), extra={"MY_TOKEN": "sim-canvas-api-token"}).returncode == 0
    other = url.replace("127.0.0.1", "localhost")
    res = run(*canvas_add(other), extra={"MY_TOKEN": "sim-canvas-api-token"})
    assert res.returncode != 0
    assert f"is already stored as {url}" in res.stderr and "Traceback" not in res.stderr
    again = run(*canvas_add(url), extra={"MY_TOKEN": "sim-canvas-api-token"})  # the same address: an update
    assert again.returncode == 0, again.stderr
    assert session.scalars(select(CanvasInstance.api_url)).all() == [url]


def test_canvas_add_with_a_refused_token_stores_nothing(run, session, canvas_api):
    url, _ = canvas_api
    res = run(*canvas_add(url), extra={"MY_TOKEN": "7~not-a-token"})
    assert res.returncode != 0
    assert "refused the API token" in res.stderr and "Traceback" not in res.stderr
    assert session.scalar(select(func.count()).select_from(CanvasInstance)) == 0


def test_canvas_add_of_an_unreachable_canvas_stores_nothing(run, session):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    res = run(*canvas_add(f"http://127.0.0.1:{port}"), extra={"MY_TOKEN": "sim-canvas-api-token"})
    assert res.returncode != 0
    assert "lost its connection" in res.stderr and "Traceback" not in res.stderr
    assert session.scalar(select(func.count()).select_from(CanvasInstance)) == 0


def test_canvas_add_without_the_token_variable_writes_nothing(run, session):
    res = run(
        "canvas",
        "add",
        "--api-url",
        "https://hinn.instructure.com",
        "--account-id",
        "1",
        "--token-env",
        "MISSING_TOKEN",
    )
    assert res.returncode != 0 and "MISSING_TOKEN" in res.stderr
    assert session.scalar(select(func.count()).select_from(CanvasInstance)) == 0


def test_worker_once_purges_expired_launches(run, session):
    from datetime import timedelta

    from kurspakke.models import LaunchRecord, utcnow

    session.add_all(
        [
            LaunchRecord(id="old", nonce="n-old", data={}, expires_at=utcnow() - timedelta(seconds=1)),
            LaunchRecord(id="live", nonce="n-live", data={}, expires_at=utcnow() + timedelta(hours=1)),
        ]
    )
    session.commit()
    res = run("worker", "--once")
    assert res.returncode == 0 and "purged 1" in res.stdout, res.stderr
    session.expire_all()
    assert [r.id for r in session.scalars(select(LaunchRecord))] == ["live"]
    session.rollback()


def _dev_run(instance, *args):
    """kurspakke as `make run` calls it: development, no DATABASE_URL and no SECRET_KEY in the environment."""
    env = {**base_env(), "KURSPAKKE_ENV": "development", "KURSPAKKE_INSTANCE_PATH": str(instance)}
    return subprocess.run(
        [sys.executable, "-m", "kurspakke", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("args", [("worker", "--once"), ("db", "upgrade")], ids=["worker", "db-upgrade"])
def test_without_kurspakke_env_and_secrets_the_command_refuses_and_writes_nothing(args, tmp_path):
    """A worker or release step started on a host that lacks KURSPAKKE_ENV gets production's rules (fail closed),
    not a development instance with a freshly generated SECRET_KEY and a SQLite file of its own."""
    instance = tmp_path / "instance"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    res = subprocess.run(
        [sys.executable, "-m", "kurspakke", *args],
        env={**base_env(), "KURSPAKKE_INSTANCE_PATH": str(instance)},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0
    for variable in ("DATABASE_URL", "SECRET_KEY", "KURSPAKKE_BASE_URL", "KURSPAKKE_ENCRYPTION_KEY"):
        assert f"{variable} must be" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr  # a clear message, not a crash
    assert not instance.exists()  # no instance/secret_key, no kurspakke.sqlite3
    assert list(workdir.iterdir()) == []  # nor anything relative to the working directory


def test_a_fresh_development_instance_makes_its_own_secret_key_and_database(tmp_path):
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    instance = tmp_path / "instance"
    for args in (("db", "upgrade"), ("db", "upgrade"), ("demo",), ("demo",)):  # twice each: both idempotent
        res = _dev_run(instance, *args)
        assert res.returncode == 0, (args, res.stderr)
    secret = (instance / "secret_key").read_text().strip()
    assert len(secret) >= 32
    assert (instance / "secret_key").stat().st_mode & 0o077 == 0  # readable by its owner only
    engine = create_engine(f"sqlite:///{instance / 'kurspakke.sqlite3'}")
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(ToolKey).where(ToolKey.retired_at.is_(None))) == 1
        regs = s.scalars(select(Registration)).all()
        assert [(r.issuer, len(r.deployments)) for r in regs] == [("http://127.0.0.1:5001", 1)]
        # Last spring's graduate and her mentor hold certificates (once, however often the demo is loaded).
        from kurspakke.models import Certificate

        holders = {role.value: name for name, role in s.execute(select(Certificate.name, Certificate.role))}
        assert len(holders) == 2 and holders["participant"] == "Åse Ødegård-Bjørnæs"
        assert s.scalar(select(func.count(Certificate.id))) == 2
        # Colleagues at different stages: one module, two, none (and Åse with all four).
        from kurspakke.models import ModuleCompletion

        done = dict(
            s.execute(select(ModuleCompletion.person_id, func.count()).group_by(ModuleCompletion.person_id)).all()
        )
        assert sorted(done.values()) == [1, 2, 4]
    engine.dispose()
    again = _dev_run(instance, "demo")
    assert again.returncode == 0 and (instance / "secret_key").read_text().strip() == secret  # kept, not remade


def test_platform_add_again_adds_a_deployment_and_frames_from_the_issuer_by_default(run, session):
    hvl = "https://canvas.hvl.example"
    common = platform_add(
        issuer=hvl,
        client_id="10000000000042",
        auth_login_url=hvl + "/api/lti/authorize_redirect",
        auth_token_url=hvl + "/login/oauth2/token",
        key_set_url=hvl + "/api/lti/security/jwks",
    )
    assert run(*common, "--deployment-id", "1:a").returncode == 0
    res = run(*common, "--deployment-id", "2:b")
    assert res.returncode == 0, res.stderr
    reg = session.scalars(select(Registration)).one()
    assert sorted(d.deployment_id for d in reg.deployments) == ["1:a", "2:b"]
    assert reg.frame_origins == ["https://canvas.hvl.example"]


def test_course_list_and_unlink_free_a_programme_for_the_right_course(run, session):
    """A teacher's sandbox took the programme first: the operator lists the links and unlinks it."""
    from kurspakke.models import CourseLink, UnlicensedLaunch

    assert run("course", "list").stdout.strip() == "no linked courses"
    sandbox = CourseLink(
        programme_id="lindrende-behandling", platform_instance="iss|guid", context_id="sandbox", title="Sandkasse"
    )
    session.add(sandbox)
    session.flush()
    session.add(UnlicensedLaunch(course_link_id=sandbox.id, issuer="iss", sub="s", name="N", email="n@example.org"))
    session.commit()
    listed = run("course", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split("\t")[:5] == [
        str(sandbox.id),
        "lindrende-behandling",
        "iss|guid",
        "sandbox",
        "Sandkasse",
    ]
    res = run("course", "unlink", "--id", str(sandbox.id))
    assert res.returncode == 0, res.stderr
    assert "unlinked sandbox (Sandkasse) from lindrende-behandling" in res.stdout
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(CourseLink)) == 0
    assert session.scalar(select(func.count()).select_from(UnlicensedLaunch)) == 0


def test_course_unlink_of_an_unknown_link_is_a_clear_error(run, session):
    res = run("course", "unlink", "--id", "999")
    assert res.returncode != 0 and "no linked course with id 999" in res.stderr
    bad = run("course", "unlink", "--id", "zero")
    assert bad.returncode != 0 and "Invalid value for '--id'" in bad.stderr


def test_platform_add_warns_about_the_legacy_canvas_authorize_url(run, session):
    legacy = "https://canvas.instructure.com/api/lti/authorize_redirect"
    res = run(*platform_add("--deployment-id", "1:a", client_id="170000000000124", auth_login_url=legacy))
    assert res.returncode == 0, res.stderr
    assert "sso.canvaslms.com/api/lti/authorize_redirect" in res.stderr and "Platform Storage" in res.stderr


def test_the_worker_stores_the_default_canvas_from_the_environment_once(run, session, canvas_api):
    """CANVAS_API_URL, CANVAS_API_TOKEN and CANVAS_ACCOUNT_ID: the one-instance case, stored as `canvas add` would."""
    url, config = canvas_api
    env = {"CANVAS_API_URL": url, "CANVAS_API_TOKEN": "sim-canvas-api-token", "CANVAS_ACCOUNT_ID": "1"}
    first = run("worker", "--until-idle", "--max-seconds", "5", extra=env)
    assert first.returncode == 0, first.stderr
    assert "stored the default Canvas connection" in first.stdout
    again = run("worker", "--until-idle", "--max-seconds", "5", extra=env)
    assert again.returncode == 0 and "stored the default" not in again.stdout
    row = session.scalars(select(CanvasInstance)).one()
    assert row.platform_instance == f"https://canvas.instructure.com|{config.platform_guid}"
    assert b"sim-canvas-api-token" not in row.token_encrypted


def test_a_default_canvas_that_refuses_the_token_stops_the_worker_with_a_message(run, session, canvas_api):
    url, _ = canvas_api
    env = {"CANVAS_API_URL": url, "CANVAS_API_TOKEN": "wrong", "CANVAS_ACCOUNT_ID": "1"}
    res = run("worker", "--until-idle", extra=env)
    assert res.returncode == 1 and "the default Canvas (CANVAS_API_URL)" in res.stderr
    assert "Traceback" not in res.stderr
    assert session.scalar(select(func.count()).select_from(CanvasInstance)) == 0
