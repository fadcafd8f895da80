from __future__ import annotations

import pytest

from config.settings import Settings, SettingsError


def test_development_defaults_generate_a_secret_once(tmp_path):
    first = Settings.from_env({}, {"instance_path": tmp_path})
    second = Settings.from_env({}, {"instance_path": tmp_path})
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 48
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert first.database_url == f"sqlite:///{tmp_path / 'kurspakke.sqlite3'}"
    assert first.env == "development"


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


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DATABASE_URL": "sqlite:///x", "KURSPAKKE_BASE_URL": "https://a"}, "SECRET_KEY"),
        ({"SECRET_KEY": "s" * 40, "KURSPAKKE_BASE_URL": "https://a"}, "DATABASE_URL"),
        ({"SECRET_KEY": "short", "DATABASE_URL": "sqlite:///x", "KURSPAKKE_BASE_URL": "https://a"}, "32"),
        ({"SECRET_KEY": "s" * 40, "DATABASE_URL": "sqlite:///x", "KURSPAKKE_BASE_URL": "http://a"}, "https"),
    ],
)
def test_production_refuses_incomplete_settings(environ, message, tmp_path):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"KURSPAKKE_ENV": "production", "KURSPAKKE_INSTANCE_PATH": str(tmp_path), **environ})
    assert not (tmp_path / "secret_key").exists()


def test_unknown_environment_and_setting_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="KURSPAKKE_ENV"):
        Settings.from_env({"KURSPAKKE_ENV": "staging"})
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings.from_env({}, {"instance_path": tmp_path, "no_such": 1})
