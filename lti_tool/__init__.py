"""The Flask app: LTI endpoints, views per role, templates and static files. WSGI entry: ``lti_tool:create_app()``."""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, Response, g, render_template, request
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from config.settings import Settings, SettingsError
from course_sync.lti_services import TimeoutSession
from course_sync.platform_keys import JWKSCache, http_fetch
from kurspakke.crypto import Encryptor
from kurspakke.db import make_engine, make_session_factory
from kurspakke.programmes import load_programmes
from kurspakke.services.access import CourseLinkCache
from kurspakke.services.keys import KeyRing
from kurspakke.services.platforms import RegistrationCache
from lti_tool import i18n, logs, security
from lti_tool.lti.errors import REFUSAL_MESSAGES, LtiRefusal
from lti_tool.services import ToolServices


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app. ``test_config`` may hold ``settings`` (overrides for Settings.from_env), ``environ`` (instead
    of os.environ), ``jwks_fetcher`` (how platform key sets are fetched) and ``redis`` (a client)."""
    test_config = dict(test_config or {})
    settings = Settings.from_env(test_config.get("environ"), test_config.get("settings"))
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_request_bytes,
        TESTING=settings.env == "test",
    )
    engine = make_engine(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    factory = make_session_factory(engine)
    readonly_factory = make_session_factory(engine, readonly=True)
    encryptor = Encryptor(secret_key=settings.secret_key, encryption_key=settings.encryption_key)
    redis_client = test_config.get("redis")
    if redis_client is None and settings.redis_url:
        import redis

        redis_client = redis.Redis.from_url(settings.redis_url, socket_timeout=settings.http_timeout_seconds)
    app.extensions["kurspakke"] = ToolServices(
        settings=settings,
        engine=engine,
        session_factory=factory,
        readonly_session_factory=readonly_factory,
        encryptor=encryptor,
        keyring=KeyRing(readonly_factory, encryptor, grace_seconds=settings.key_grace_seconds),
        jwks=JWKSCache(
            ttl_seconds=settings.platform_jwks_ttl_seconds,
            min_refetch_seconds=settings.platform_jwks_min_refetch_seconds,
            timeout=settings.http_timeout_seconds,
            fetcher=test_config.get("jwks_fetcher", http_fetch),
        ),
        programmes=load_programmes(),
        registrations=RegistrationCache(readonly_factory, settings.registration_cache_seconds),
        course_links=CourseLinkCache(settings.registration_cache_seconds),
        http=TimeoutSession(settings.http_timeout_seconds),
        redis=redis_client,
    )
    if settings.is_production:
        try:
            _require_signing_key(readonly_factory)
        finally:
            engine.dispose()  # the check's connection is not for the workers that fork later
    # The tool keeps no Flask session: state travels in signed tokens, so no session cookie is ever set, and any
    # accidental use of flask.session fails loudly (NullSession) instead of quietly creating a third-party cookie.
    app.session_interface = _NoSessions()
    logs.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    _init_request_session(app)
    _init_errors(app)

    from lti_tool.api import bp as api_bp
    from lti_tool.health import bp as health_bp
    from lti_tool.lti.views import bp as lti_bp
    from lti_tool.views import bp as app_bp
    from lti_tool.views.licence_admin import bp as licence_admin_bp
    from lti_tool.views.live_events import bp as live_events_bp
    from lti_tool.views.locale_switch import bp as locale_bp
    from lti_tool.views.owner_pages import bp as owner_pages_bp
    from lti_tool.views.owner_pages import order_bp
    from lti_tool.views.public import bp as public_bp
    from lti_tool.views.signin import bp as signin_bp
    from lti_tool.views.verify import bp as verify_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(live_events_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(lti_bp)
    app.register_blueprint(app_bp)
    app.register_blueprint(signin_bp)
    app.register_blueprint(licence_admin_bp)
    app.register_blueprint(owner_pages_bp)
    app.register_blueprint(order_bp)
    app.register_blueprint(verify_bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(locale_bp)
    return app


class _NoSessions(SessionInterface):
    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        return self.make_null_session(app)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


def _require_signing_key(factory: sessionmaker[Session]) -> None:
    from kurspakke.models import ToolKey

    with factory() as session:
        if session.scalars(select(ToolKey.id).where(ToolKey.retired_at.is_(None))).first() is None:
            raise SettingsError("no active signing key in the database; run `kurspakke keys rotate` first")


def _init_request_session(app: Flask) -> None:
    @app.after_request
    def _commit(response: Response) -> Response:
        session = g.pop("db", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.rollback()
            session.close()


def _refusal_page(code: str, status: int) -> tuple[str, int]:
    message = i18n.gettext(REFUSAL_MESSAGES.get(code, REFUSAL_MESSAGES["bad_request"]))
    return render_template("error.html", message=message, code=code, status=status), status


def _init_errors(app: Flask) -> None:
    @app.errorhandler(LtiRefusal)
    def _refused(exc: LtiRefusal) -> tuple[str, int]:
        logs.log_event("refused", code=exc.code, detail=exc.detail, path=request.path)
        return _refusal_page(exc.code, exc.status)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc: RequestEntityTooLarge) -> tuple[str, int]:
        return _refusal_page("token_too_large", 413)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[str, int] | HTTPException:
        codes = {404: "not_found", 403: "forbidden", 405: "method_not_allowed"}
        status = exc.code or 400
        if status >= 500:
            return exc
        return _refusal_page(codes.get(status, "bad_request"), status)
