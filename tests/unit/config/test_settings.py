from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config.settings import Settings, SettingsError
from kurspakke.crypto import Encryptor

# A key made the way the docs tell operators to make one (Fernet.generate_key), not by the code under test.
ENCRYPTION_KEY = Fernet.generate_key().decode()


def production(tmp_path: Path, **changes: str | None) -> dict[str, str]:
    """A complete production environment without KURSPAKKE_ENV, with ``changes`` applied (None removes)."""
    environ: dict[str, str | None] = {
        "DATABASE_URL": "postgresql://db.example/kurspakke",
        "SECRET_KEY": "s" * 40,
        "KURSPAKKE_BASE_URL": "https://kurspakke.example",
        "KURSPAKKE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path / "instance"),
        **changes,
    }
    return {k: v for k, v in environ.items() if v is not None}


def test_development_defaults_generate_a_secret_once(tmp_path):
    first = Settings.from_env({"KURSPAKKE_ENV": "development"}, {"instance_path": tmp_path})
    second = Settings.from_env({"KURSPAKKE_ENV": "development"}, {"instance_path": tmp_path})
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 48
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert first.database_url == f"sqlite:///{tmp_path / 'kurspakke.sqlite3'}"
    assert first.env == "development" and not first.is_production
    assert first.encryption_key is None  # development derives it from SECRET_KEY (kurspakke/crypto.py)


def test_environment_is_read(tmp_path):
    s = Settings.from_env(
        {
            "KURSPAKKE_ENV": "test",
            "DATABASE_URL": "postgresql://x/y",
            "SECRET_KEY": "k",
            "REDIS_URL": "redis://r",
            "KURSPAKKE_BASE_URL": "https://a.example/",
            "KURSPAKKE_INSTANCE_PATH": str(tmp_path),
        }
    )
    assert (s.env, s.database_url, s.secret_key, s.redis_url, s.base_url) == (
        "test",
        "postgresql://x/y",
        "k",
        "redis://r",
        "https://a.example",
    )


@pytest.mark.parametrize("env", [None, ""], ids=["unset", "empty"])
def test_without_kurspakke_env_the_rules_are_production(env, tmp_path):
    """Fail closed: a forgotten KURSPAKKE_ENV must not quietly mean a generated SECRET_KEY, no HSTS, http."""
    environ = {} if env is None else {"KURSPAKKE_ENV": env}
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ, {"instance_path": tmp_path / "instance"})
    message = str(refused.value)
    for variable in ("DATABASE_URL", "SECRET_KEY", "KURSPAKKE_BASE_URL", "KURSPAKKE_ENCRYPTION_KEY"):
        assert f"{variable} must be" in message  # every missing variable named at once
    assert "KURSPAKKE_ENV=development" in message  # the way out for a developer who forgot it
    assert not (tmp_path / "instance").exists()  # refused before anything was written: no secret_key, no SQLite

    complete = Settings.from_env(production(tmp_path, KURSPAKKE_ENV=env))
    assert complete.env == "production" and complete.is_production
    assert complete.encryption_key == ENCRYPTION_KEY


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY must be set"),
        ({"DATABASE_URL": None}, "DATABASE_URL must be set"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 32 characters"),
        ({"KURSPAKKE_BASE_URL": "http://a"}, "KURSPAKKE_BASE_URL must be the tool's https://"),
        ({"KURSPAKKE_BASE_URL": None}, "KURSPAKKE_BASE_URL must be the tool's https://"),
        ({"KURSPAKKE_ENCRYPTION_KEY": None}, "KURSPAKKE_ENCRYPTION_KEY must be set in production"),
        ({"KURSPAKKE_ENCRYPTION_KEY": ""}, "KURSPAKKE_ENCRYPTION_KEY must be set in production"),
    ],
    ids=["no-secret", "no-database", "short-secret", "http", "no-base-url", "no-encryption-key", "empty-key"],
)
@pytest.mark.parametrize("env", ["production", None], ids=["explicit", "unset"])
def test_production_refuses_incomplete_settings(changes, message, env, tmp_path):
    with pytest.raises(SettingsError, match=message) as refused:
        Settings.from_env(production(tmp_path, KURSPAKKE_ENV=env, **changes))
    assert str(refused.value).count(" must ") == 1  # only what is wrong is named
    assert not (tmp_path / "instance").exists()


def test_production_does_not_derive_the_encryption_key_from_secret_key(tmp_path):
    """Derived, a SECRET_KEY rotation would make every stored signing key and Canvas token unreadable."""
    with pytest.raises(SettingsError, match="KURSPAKKE_ENCRYPTION_KEY") as refused:
        Settings.from_env(production(tmp_path, KURSPAKKE_ENCRYPTION_KEY=None))
    assert "Fernet.generate_key()" in str(refused.value)  # says how to make one


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    "bad_key",
    [
        "not-a-key",
        _b64(b"k" * 31),  # too short for Fernet (it needs 32 bytes)
        _b64(b"k" * 33),
        ENCRYPTION_KEY[:-1],  # padding lost: cryptography refuses it
        ENCRYPTION_KEY[:20] + "*" + ENCRYPTION_KEY[21:],  # not base64
        # Characters inside a good key: a lenient decoder (Fernet's own) drops them and reads a key; refused as the
        # sign of a mangled copy rather than guessed at.
        ENCRYPTION_KEY[:20] + " " + ENCRYPTION_KEY[20:],
        ENCRYPTION_KEY[:20] + "*" + ENCRYPTION_KEY[20:],
        "ÆØÅ" + ENCRYPTION_KEY[3:],
        "s" * 64,  # a SECRET_KEY pasted into the wrong variable
    ],
    ids=[
        "words",
        "31-bytes",
        "33-bytes",
        "unpadded",
        "bad-char",
        "inner-space",
        "inner-star",
        "non-ascii",
        "secret-key",
    ],
)
@pytest.mark.parametrize("env", ["production", "development"])
def test_a_malformed_encryption_key_is_refused_naming_the_variable(bad_key, env, tmp_path):
    """Checked at start in every environment: otherwise the first encryption fails long after start."""
    with pytest.raises(SettingsError, match="KURSPAKKE_ENCRYPTION_KEY is not a valid key") as refused:
        Settings.from_env(production(tmp_path, KURSPAKKE_ENV=env, KURSPAKKE_ENCRYPTION_KEY=bad_key))
    assert bad_key not in str(refused.value)  # a secret is never echoed into logs
    assert not (tmp_path / "instance").exists()


def test_a_valid_encryption_key_is_what_the_encryptor_uses(tmp_path):
    """The check accepts exactly what Encryptor (Fernet) accepts: a key it lets through must encrypt."""
    standard_alphabet = base64.b64encode(b"\xfb\xff" * 16).decode()  # '+' and '/': Fernet reads these too
    for key in (ENCRYPTION_KEY, ENCRYPTION_KEY + "\n", standard_alphabet):
        settings = Settings.from_env(production(tmp_path, KURSPAKKE_ENCRYPTION_KEY=key))
        assert settings.encryption_key == key.strip()
        encryptor = Encryptor(secret_key=settings.secret_key, encryption_key=settings.encryption_key)
        assert encryptor.decrypt(encryptor.encrypt(b"token")) == b"token"
        assert Fernet(key.strip().encode()).decrypt(encryptor.encrypt(b"x")) == b"x"  # the configured key, not derived


def test_unknown_environment_and_setting_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="KURSPAKKE_ENV"):
        Settings.from_env({"KURSPAKKE_ENV": "staging"})
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings.from_env({"KURSPAKKE_ENV": "test"}, {"instance_path": tmp_path, "no_such": 1})


def test_canvas_timeouts_and_retries_come_from_the_environment(tmp_path):
    environ = {
        "KURSPAKKE_ENV": "test",
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path),
        "KURSPAKKE_CANVAS_TIMEOUT_SECONDS": "0.5",
        "KURSPAKKE_RETRY_BASE_SECONDS": "0.01",
        "KURSPAKKE_RETRY_MAX_TRIES": "2",
    }
    settings = Settings.from_env(environ)
    assert (settings.canvas_timeout_seconds, settings.retry_base_seconds, settings.retry_max_tries) == (0.5, 0.01, 2)
    defaults = Settings.from_env({"KURSPAKKE_ENV": "test", "KURSPAKKE_INSTANCE_PATH": str(tmp_path)})
    assert (defaults.canvas_timeout_seconds, defaults.retry_base_seconds, defaults.retry_max_tries) == (10.0, 0.5, 5)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KURSPAKKE_RETRY_MAX_TRIES", "many"),
        ("KURSPAKKE_RETRY_MAX_TRIES", "1.5"),
        ("KURSPAKKE_CANVAS_TIMEOUT_SECONDS", "0"),
    ],
)
def test_a_bad_canvas_number_is_refused_naming_the_variable(tmp_path, variable, value):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({"KURSPAKKE_ENV": "test", "KURSPAKKE_INSTANCE_PATH": str(tmp_path), variable: value})


def test_the_mail_sender_comes_from_the_environment(tmp_path):
    base = {"KURSPAKKE_ENV": "test", "KURSPAKKE_INSTANCE_PATH": str(tmp_path)}
    assert Settings.from_env(base).mail_from == "kurspakke@kurspakke.invalid"
    assert Settings.from_env({**base, "KURSPAKKE_MAIL_FROM": "  "}).mail_from == "kurspakke@kurspakke.invalid"
    sender = "Kurspakke <kurspakke@hinn.no>"
    assert Settings.from_env({**base, "KURSPAKKE_MAIL_FROM": sender}).mail_from == sender
