"""One typed settings object, read from the environment.

Tests and tools pass overrides to ``Settings.from_env(overrides=...)`` or to ``create_app``; nothing else reads
``os.environ`` for configuration.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_PATH = PROJECT_ROOT / "instance"
ENVIRONMENTS = ("development", "test", "production")
# Fail closed: a process started without KURSPAKKE_ENV (a forgotten variable on a new host, a worker started by
# hand) gets production's rules and refuses to start without its secrets, instead of quietly running as
# development with a per-container SECRET_KEY, no HSTS and http platforms. Development and tests ask explicitly.
DEFAULT_ENV = "production"
GENERATE_ENCRYPTION_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


class SettingsError(RuntimeError):
    """The environment does not describe a service that can start."""


# Numeric settings read from the environment: (field, variable, type).
_NUMBERS: tuple[tuple[str, str, type[float] | type[int]], ...] = (
    ("canvas_timeout_seconds", "KURSPAKKE_CANVAS_TIMEOUT_SECONDS", float),
    ("retry_base_seconds", "KURSPAKKE_RETRY_BASE_SECONDS", float),
    ("retry_max_tries", "KURSPAKKE_RETRY_MAX_TRIES", int),
    ("outbox_max_attempts", "KURSPAKKE_OUTBOX_MAX_ATTEMPTS", int),
    ("outbox_lease_seconds", "KURSPAKKE_OUTBOX_LEASE_SECONDS", float),
    ("outbox_poll_seconds", "KURSPAKKE_OUTBOX_POLL_SECONDS", float),
    ("canvas_max_in_flight", "KURSPAKKE_CANVAS_MAX_IN_FLIGHT", int),
    ("worker_threads", "KURSPAKKE_WORKER_THREADS", int),
)


def _as_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    env: str = DEFAULT_ENV
    base_url: str = "http://127.0.0.1:5000"
    database_url: str = ""
    secret_key: str = ""
    encryption_key: str | None = None
    redis_url: str | None = None
    smtp_url: str | None = None
    # The proxies in front of the tool (gunicorn's FORWARDED_ALLOW_IPS, the same variable): a request from one of
    # them is counted by the client address it puts last in X-Forwarded-For (the verification page's throttle).
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1",)
    # The sender of the tool's e-mail (kurspakke/mail.py); SMTP_URL says where it goes. The default's .invalid
    # domain (RFC 2606) is for development's console; production sets its own.
    mail_from: str = "kurspakke@kurspakke.invalid"
    webhook_secret: str | None = None
    canvas_api_url: str | None = None
    canvas_api_token: str | None = None
    canvas_account_id: str | None = None
    instance_path: Path = DEFAULT_INSTANCE_PATH
    # Timeouts, lifetimes and backoff are settings so tests can run them short.
    http_timeout_seconds: float = 10.0
    # Canvas REST (DESIGN.md §6: tests and checks set them short).
    canvas_timeout_seconds: float = 10.0
    retry_base_seconds: float = 0.5
    retry_max_tries: int = 5
    # The outbox worker (course_sync.worker): tries of a step before it is parked (each try is itself up to
    # retry_max_tries calls), how long a claimed step is a worker's before another may take it over (a killed
    # worker's step comes back after this), and how often an idle worker looks for work.
    outbox_max_attempts: int = 8
    outbox_lease_seconds: float = 120.0
    outbox_poll_seconds: float = 1.0
    # A worker process runs worker_threads outbox workers sharing one Canvas client per instance, with at most
    # canvas_max_in_flight calls in flight at once. Canvas admits about 14 requests in flight per token (700 units,
    # 50 up front each): keep processes × canvas_max_in_flight at or below 12.
    worker_threads: int = 4
    canvas_max_in_flight: int = 4
    jwt_leeway_seconds: int = 60
    login_state_ttl_seconds: int = 600
    launch_token_ttl_seconds: int = 10 * 3600  # a working day
    # Course-owner authority comes from the platform's roles claim at launch: trusted this long, then a fresh launch
    # must confirm it, so a teacher removed from the course loses it within the hour (lti_tool/views/context.py).
    owner_authority_seconds: int = 3600
    key_grace_seconds: int = 7 * 24 * 3600
    platform_jwks_ttl_seconds: int = 3600
    registration_cache_seconds: float = 30.0
    platform_jwks_min_refetch_seconds: float = 10.0
    max_id_token_bytes: int = 32 * 1024
    max_request_bytes: int = 256 * 1024
    # POST /api/purchases: how far the signature's timestamp may lie from now, either way (DESIGN.md §3).
    webhook_tolerance_seconds: int = 300
    # POST /api/canvas/live-events (Canvas Live Events, HTTPS delivery with signed payloads; course_sync/
    # live_events.py): the key set Canvas signs the events with — its URL (KURSPAKKE_LIVE_EVENTS_JWKS_URL;
    # Instructure publishes one for hosted Canvas, rotated monthly; https in production), fetched and cached as
    # platform key sets are, or the key set itself as JSON (KURSPAKKE_LIVE_EVENTS_JWKS; tests, small setups). One
    # of them, or neither: then the endpoint answers 404 (the feature is off).
    live_events_jwks_url: str | None = None
    live_events_jwks: str | None = None
    sqlite_busy_timeout_ms: int = 5000
    vat_rate_percent: int = 25
    log_json: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, overrides: dict[str, Any] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``) and apply ``overrides``.

        Without KURSPAKKE_ENV (or an ``env`` override) the rules are production's. Raises SettingsError when
        production is missing what it needs, naming every missing variable at once, before anything is written.
        In development and test a SECRET_KEY is generated once into instance/ so a fresh clone runs without any
        secret in git.
        """
        env_map = dict(os.environ if environ is None else environ)
        overrides = dict(overrides or {})
        instance_path = Path(
            overrides.pop("instance_path", None) or env_map.get("KURSPAKKE_INSTANCE_PATH") or DEFAULT_INSTANCE_PATH
        )
        # An empty KURSPAKKE_ENV counts as unset (an env file with `KURSPAKKE_ENV=`): production, not an error.
        env = overrides.pop("env", None) or env_map.get("KURSPAKKE_ENV") or DEFAULT_ENV
        if env not in ENVIRONMENTS:
            raise SettingsError(f"KURSPAKKE_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
        values: dict[str, Any] = {
            "env": env,
            "instance_path": instance_path,
            "base_url": env_map.get("KURSPAKKE_BASE_URL", cls.base_url).rstrip("/"),
            "database_url": env_map.get("DATABASE_URL", ""),
            "secret_key": env_map.get("SECRET_KEY", ""),
            # Stripped: a key pasted from a file often carries its newline, which the strict check would refuse.
            "encryption_key": env_map.get("KURSPAKKE_ENCRYPTION_KEY", "").strip() or None,
            "redis_url": env_map.get("REDIS_URL") or None,
            "smtp_url": env_map.get("SMTP_URL") or None,
            "forwarded_allow_ips": tuple(
                ip.strip() for ip in env_map.get("FORWARDED_ALLOW_IPS", "127.0.0.1").split(",") if ip.strip()
            ),
            "mail_from": env_map.get("KURSPAKKE_MAIL_FROM", "").strip() or cls.mail_from,
            "webhook_secret": env_map.get("KURSPAKKE_WEBHOOK_SECRET") or None,
            "canvas_api_url": env_map.get("CANVAS_API_URL") or None,
            "canvas_api_token": env_map.get("CANVAS_API_TOKEN") or None,
            "canvas_account_id": env_map.get("CANVAS_ACCOUNT_ID") or None,
            "live_events_jwks_url": env_map.get("KURSPAKKE_LIVE_EVENTS_JWKS_URL", "").strip() or None,
            "live_events_jwks": env_map.get("KURSPAKKE_LIVE_EVENTS_JWKS", "").strip() or None,
        }
        if "KURSPAKKE_LOG_JSON" in env_map:
            values["log_json"] = _as_bool(env_map["KURSPAKKE_LOG_JSON"])
        for key, variable, kind in _NUMBERS:
            raw = env_map.get(variable, "").strip()
            if raw:
                try:
                    number = kind(raw)
                except ValueError as exc:
                    raise SettingsError(f"{variable} must be a number, not {raw!r}") from exc
                if number <= 0:
                    raise SettingsError(f"{variable} must be greater than 0")
                values[key] = number
        known = {f.name for f in fields(cls)}
        for key, value in overrides.items():
            if key not in known:
                raise SettingsError(f"unknown setting {key!r}")
            values[key] = value
        settings = cls(**values)
        return settings._completed()

    def _completed(self) -> Settings:
        if self.encryption_key is not None and not _is_fernet_key(self.encryption_key):
            # Checked in every environment: a malformed key would otherwise surface as a cryptic ValueError from
            # the first encryption or decryption, long after start. The value itself is never echoed.
            raise SettingsError(
                "KURSPAKKE_ENCRYPTION_KEY is not a valid key (it must be 32 url-safe base64-encoded bytes, "
                f"44 characters); generate one with: {GENERATE_ENCRYPTION_KEY}"
            )
        self._check_live_events()
        if self.is_production:
            self._check_production()
            return self
        changes: dict[str, Any] = {}
        if not self.database_url:
            self.instance_path.mkdir(parents=True, exist_ok=True)
            changes["database_url"] = f"sqlite:///{self.instance_path / 'kurspakke.sqlite3'}"
        if not self.secret_key:
            changes["secret_key"] = _development_secret(self.instance_path)
        return replace(self, **changes) if changes else self

    def _check_live_events(self) -> None:
        """The Live Events key set, checked in every environment so a typo fails at start, not at the first event.
        Whether the keys in it are usable (RS256 or ES256) is checked when the app builds its verifier."""
        if self.live_events_jwks_url and self.live_events_jwks:
            raise SettingsError("set KURSPAKKE_LIVE_EVENTS_JWKS_URL or KURSPAKKE_LIVE_EVENTS_JWKS, not both")
        if self.live_events_jwks_url:
            parts = urlsplit(self.live_events_jwks_url)
            schemes = ("https",) if self.is_production else ("https", "http")
            if parts.scheme not in schemes or not parts.hostname:
                raise SettingsError(
                    "KURSPAKKE_LIVE_EVENTS_JWKS_URL must be an https:// URL"
                    + ("" if self.is_production else " (http:// outside production)")
                )
        if self.live_events_jwks:
            try:
                data = json.loads(self.live_events_jwks)
            except (ValueError, RecursionError):
                raise SettingsError("KURSPAKKE_LIVE_EVENTS_JWKS is not JSON") from None
            keys = data.get("keys") if isinstance(data, dict) else None
            if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
                raise SettingsError('KURSPAKKE_LIVE_EVENTS_JWKS must be a JSON key set: {"keys": [{...}, ...]}')

    def _check_production(self) -> None:
        """Refuse production settings that are incomplete. Every problem is listed at once so an operator fixes the
        environment in one go; nothing is written before (no instance/, no generated key)."""
        problems: list[str] = []
        if not self.database_url:
            problems.append("DATABASE_URL must be set in production")
        if not self.secret_key:
            problems.append("SECRET_KEY must be set in production")
        elif len(self.secret_key) < 32:
            problems.append("SECRET_KEY must be at least 32 characters in production")
        if not self.base_url.startswith("https://"):
            problems.append("KURSPAKKE_BASE_URL must be the tool's https:// URL in production")
        if self.encryption_key is None:
            # Not derived from SECRET_KEY in production: rotating SECRET_KEY would make every stored signing key
            # and Canvas token unreadable.
            problems.append(f"KURSPAKKE_ENCRYPTION_KEY must be set in production (generate: {GENERATE_ENCRYPTION_KEY})")
        if problems:
            # Say why production rules apply: after the switch to failing closed, a developer who forgot
            # KURSPAKKE_ENV meets this message and should see the way out.
            hint = "KURSPAKKE_ENV is unset or production; a local run sets KURSPAKKE_ENV=development"
            raise SettingsError(f"{'; '.join(problems)} ({hint})")


def _is_fernet_key(key: str) -> bool:
    """What cryptography's Fernet accepts and Fernet.generate_key() makes: 32 bytes in url-safe base64 with its
    padding. Decoded strictly, so a key with stray characters is refused here rather than silently shortened."""
    try:
        raw = base64.b64decode(key.encode("ascii"), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return False
    return len(raw) == 32


def _development_secret(instance_path: Path) -> str:
    """Read, or create on first run, instance/secret_key (never committed: instance/ is ignored)."""
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
