"""The kurspakke command, run as a user would (a subprocess with the environment as its only input)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from kurspakke.models import CanvasInstance, Deployment, Registration, ToolKey


@pytest.fixture
def run(database_url, tmp_path):
    env = {
        "PATH": os.environ["PATH"],
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


def test_platform_add_with_several_deployments(run, session):
    res = run(
        "platform",
        "add",
        "--issuer",
        "https://canvas.instructure.com",
        "--client-id",
        "170000000000123",
        "--deployment-id",
        "1:a",
        "--deployment-id",
        "2:b",
        "--auth-login-url",
        "https://sso.canvaslms.com/api/lti/authorize_redirect",
        "--auth-token-url",
        "https://sso.canvaslms.com/login/oauth2/token",
        "--key-set-url",
        "https://sso.canvaslms.com/api/lti/security/jwks",
        "--frame-origin",
        "https://hinn.instructure.com",
    )
    assert res.returncode == 0, res.stderr
    reg = session.scalars(select(Registration)).one()
    assert reg.frame_origins == ["https://hinn.instructure.com"]
    assert sorted(d.deployment_id for d in reg.deployments) == ["1:a", "2:b"]


def test_platform_add_refuses_a_bad_url_and_writes_nothing(run, session):
    res = run(
        "platform",
        "add",
        "--issuer",
        "https://x",
        "--client-id",
        "1",
        "--deployment-id",
        "1",
        "--auth-login-url",
        "javascript:alert(1)",
        "--auth-token-url",
        "https://x/t",
        "--key-set-url",
        "https://x/k",
    )
    assert res.returncode != 0
    assert "not an http(s) URL" in res.stderr
    assert session.scalar(select(func.count()).select_from(Registration)) == 0
    assert session.scalar(select(func.count()).select_from(Deployment)) == 0


def test_keys_rotate(run, session):
    assert run("keys", "rotate").returncode == 0
    assert run("keys", "rotate").returncode == 0
    keys = session.scalars(select(ToolKey).order_by(ToolKey.id)).all()
    assert len(keys) == 2 and keys[0].retired_at is not None and keys[1].retired_at is None


def test_canvas_add_stores_the_token_encrypted(run, session):
    res = run(
        "canvas",
        "add",
        "--api-url",
        "https://hinn.instructure.com",
        "--account-id",
        "1",
        "--token-env",
        "MY_TOKEN",
        extra={"MY_TOKEN": "7~secret-token"},
    )
    assert res.returncode == 0, res.stderr
    row = session.scalars(select(CanvasInstance)).one()
    assert b"secret-token" not in row.token_encrypted


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
