"""The ``kurspakke`` command. This module is the composition root: it is the one place in kurspakke/ that may
import the web app (lti_tool) and the simulator, and only inside the commands that need them."""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

import click
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings, SettingsError
from kurspakke.crypto import Encryptor
from kurspakke.db import make_engine, make_session_factory, transaction, upgrade
from kurspakke.services import keys as key_service
from kurspakke.services.platforms import RegistrationError, add_platform

SIM_PORT_OFFSET = 1
CANVAS_ISSUER = "https://canvas.instructure.com"  # all hosted Canvas signs launches as this issuer
# An operator waits at the terminal: a few tries, not the outbox's patience.


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the configured database (one engine per command)."""
    return make_session_factory(make_engine(settings.database_url))


def _encryptor(settings: Settings) -> Encryptor:
    return Encryptor(secret_key=settings.secret_key, encryption_key=settings.encryption_key)


@click.group()
def main() -> None:
    """kurspakke: licences, mentor groups, progress and certificates for Canvas course packages."""


@main.group()
def db() -> None:
    """Database commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (Alembic) to DATABASE_URL."""
    settings = _settings()
    upgrade(make_engine(settings.database_url))
    click.echo("database is at the newest revision")


@main.group()
def keys() -> None:
    """The tool's signing keys."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key; the previous one stays in the JWKS for the grace period."""
    settings = _settings()
    with transaction(_sessions(settings)) as session:
        key = key_service.rotate(session, _encryptor(settings), grace_seconds=settings.key_grace_seconds)
        kid = key.kid
    click.echo(f"new signing key {kid}")


@main.group()
def platform() -> None:
    """LTI platform registrations."""


@platform.command("add")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--deployment-id", "deployment_ids", multiple=True, required=True)
@click.option("--auth-login-url", required=True)
@click.option("--auth-token-url", required=True)
@click.option("--key-set-url", required=True)
@click.option("--frame-origin", "frame_origins", multiple=True, help="Where users see Canvas (CSP frame-ancestors).")
@click.option("--auth-audience", default=None)
def platform_add(**opts: Any) -> None:
    """Register a platform client (e.g. a Canvas developer key) with its deployments."""
    settings = _settings()
    try:
        with transaction(_sessions(settings)) as session:
            reg = add_platform(session, require_https=settings.is_production, **opts)
            summary = f"{reg.issuer} client {reg.client_id}: {len(reg.deployments)} deployment(s)"
    except RegistrationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"registered {summary}")
    if urlsplit(opts["auth_login_url"]).hostname == "canvas.instructure.com":
        click.echo(
            "warning: hosted Canvas authorizes on https://sso.canvaslms.com/api/lti/authorize_redirect; with "
            "canvas.instructure.com, LTI Platform Storage (launches without third-party cookies) cannot work",
            err=True,
        )


@main.group()
def course() -> None:
    """Canvas courses linked to programmes (a course owner links one by launching from it)."""


@course.command("list")
def course_list() -> None:
    """Every linked course: link id, programme, Canvas instance, context id, title, when."""
    from kurspakke.models import CourseLink

    settings = _settings()
    with _sessions(settings)() as session:
        links = session.scalars(select(CourseLink).order_by(CourseLink.id)).all()
        for link in links:
            click.echo(
                f"{link.id}\t{link.programme_id}\t{link.platform_instance}\t{link.context_id}\t{link.title}\t"
                f"{link.created_at:%Y-%m-%d %H:%M} UTC\tby {link.linked_by_person_sub or '-'}"
            )
    if not links:
        click.echo("no linked courses")


@course.command("unlink")
@click.option("--id", "link_id", required=True, type=click.IntRange(min=1), help="Link id from `course list`.")
def course_unlink(link_id: int) -> None:
    """Remove a course's link to its programme, so the right course can be linked."""
    from kurspakke.services.access import LinkError, unlink_course

    settings = _settings()
    try:
        with transaction(_sessions(settings)) as session:
            link = unlink_course(session, link_id)
            summary = f"{link.context_id} ({link.title}) from {link.programme_id}"
    except LinkError as exc:
        raise click.ClickException(f"no linked course with id {link_id}") from exc
    click.echo(
        f"unlinked {summary}; web processes that cached the link stop using it within "
        f"{settings.registration_cache_seconds:g} s"
    )


@main.group()
def canvas() -> None:
    """Canvas REST API connections."""


@canvas.command("add")
@click.option("--api-url", required=True)
@click.option("--account-id", required=True, type=click.IntRange(min=1))
@click.option("--token-env", required=True, help="Name of the environment variable holding the API token.")
@click.option("--auth-provider-id", type=click.IntRange(min=1), default=None)
@click.option(
    "--issuer",
    default=CANVAS_ISSUER,
    show_default=True,
    help="The LTI issuer this Canvas signs launches with (self-hosted Canvas: its own URL).",
)
def canvas_add(api_url: str, account_id: int, token_env: str, auth_provider_id: int | None, issuer: str) -> None:
    """Store a Canvas API connection; the token is read from the named variable and stored encrypted.

    Reads the root account's lti_guid with the token, which ties this API connection to the Canvas's LTI
    platform instance; a Canvas that cannot be reached or refuses the token stores nothing."""
    from course_sync.instances import CanvasRegistrationError, register_canvas

    settings = _settings()
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise click.ClickException(f"environment variable {token_env} is empty or not set")
    try:
        done = register_canvas(
            _sessions(settings),
            settings,
            _encryptor(settings),
            api_url=api_url,
            account_id=account_id,
            token=token,
            auth_provider_id=auth_provider_id,
            issuer=issuer,
        )
    except CanvasRegistrationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"stored Canvas connection {done.api_url} (account {done.account_id}, {done.account_name}) as {done.scope}"
    )


@main.command()
@click.option("--once", is_flag=True, help="Run the due periodic jobs and the due outbox steps once, then exit.")
@click.option(
    "--until-idle",
    is_flag=True,
    help="Run outbox steps until none is pending (periodic jobs do not count), then exit: 0 when nothing is "
    "parked, 3 when steps are parked as failed, 4 when --max-seconds ran out first.",
)
@click.option("--max-seconds", type=click.FloatRange(min=0), default=None, help="With --until-idle: give up after.")
def worker(once: bool, until_idle: bool, max_seconds: float | None) -> None:
    """The outbox worker: carries seats to Canvas, sends e-mail, runs the periodic jobs (reconciliation, digest,
    purging expired launch state) once per period however many workers run."""
    from course_sync.instances import CanvasRegistrationError, ensure_default_canvas
    from course_sync.runtime import make_workers

    settings = _settings()
    sessions, encryptor = _sessions(settings), _encryptor(settings)
    try:
        stored = ensure_default_canvas(sessions, settings, encryptor)
    except CanvasRegistrationError as exc:
        raise click.ClickException(f"the default Canvas (CANVAS_API_URL): {exc}") from exc
    if stored:
        click.echo(stored)
    if until_idle:
        codes: list[int] = []
        runners = make_workers(settings, sessions, encryptor)
        threads = [threading.Thread(target=lambda r=r: codes.append(r.run_until_idle(max_seconds))) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        code = max(codes) if codes else 0
        click.echo({0: "idle: nothing pending", 3: "idle: steps are parked", 4: "time ran out: steps pending"}[code])
        sys.exit(code)
    if once:
        runner = make_workers(settings, sessions, encryptor, 1)[0]
        jobs = runner.run_jobs()
        steps = 0
        while runner.run_one():
            steps += 1
        for name, report in jobs.items():
            click.echo(f"{name}: " + ", ".join(f"{key} {value}" for key, value in report.items()))
        click.echo(f"ran {steps} outbox steps")
        return
    runners = make_workers(settings, sessions, encryptor)  # pragma: no cover - runs until the process is stopped
    click.echo(f"worker {runners[0].worker_id} and {len(runners) - 1} more threads started")  # pragma: no cover
    for runner in runners[1:]:  # pragma: no cover
        threading.Thread(target=runner.run_forever, daemon=True).start()
    runners[0].run_forever()  # pragma: no cover


@main.command()
@click.option("--sim-url", default=None, help="Base URL of the Canvas simulator (default: tool port + 1).")
def demo(sim_url: str | None) -> None:
    """Development only: migrate, create keys, register the Canvas simulator and load demo people."""
    from canvas_sim import SimConfig
    from canvas_sim.demo import demo_platform, demo_users
    from kurspakke.services.demo import load_demo

    settings = _settings()
    if settings.is_production:
        raise click.ClickException("demo data is for development only")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    sim = SimConfig(**_sim_config_kwargs(settings, sim_url))
    platform = demo_platform(sim)
    users = demo_users(sim)
    encryptor = _encryptor(settings)
    with transaction(make_session_factory(engine)) as session:
        key_service.ensure_key(session, encryptor)
        # The simulator's REST half is the Canvas people are provisioned into (`kurspakke canvas add` for real).
        load_demo(
            session,
            platform,
            users,
            canvas_api_url=sim.base_url,
            canvas_token_encrypted=encryptor.encrypt(sim.rest_api_tokens[0].encode()),
        )
    click.echo(f"demo data loaded; Canvas simulator at {sim.base_url}")


def _sim_config_kwargs(settings: Settings, sim_url: str | None) -> dict[str, Any]:
    from urllib.parse import urlsplit

    base = urlsplit(settings.base_url)
    port = (base.port or 80) + SIM_PORT_OFFSET
    sim_base = sim_url or f"{base.scheme}://{base.hostname}:{port}"
    return {
        "base_url": sim_base,
        "tool_login_url": settings.base_url + "/lti/login",
        "tool_launch_url": settings.base_url + "/lti/launch",
        "tool_jwks_url": settings.base_url + "/lti/jwks",
    }


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--with-simulator/--without-simulator", default=None, help="Default: on in development.")
def serve(host: str, port: int, with_simulator: bool | None) -> None:
    """Serve the tool (development server; production runs gunicorn, see Procfile)."""
    from werkzeug.serving import make_server, run_simple

    from lti_tool import create_app

    settings = _settings()
    if settings.env == "development":
        # First run on a fresh clone: schema and a signing key, so `kurspakke serve` just works.
        engine = make_engine(settings.database_url)
        upgrade(engine)
        with transaction(make_session_factory(engine)) as session:
            key_service.ensure_key(session, _encryptor(settings))
        engine.dispose()
    app = create_app()
    if with_simulator is None:
        with_simulator = settings.env == "development"
    if with_simulator:
        from canvas_sim import SimConfig, SimPlatform, create_sim_app

        sim_config = SimConfig(**_sim_config_kwargs(settings, None))
        sim_app = create_sim_app(sim_config, SimPlatform(sim_config))
        from urllib.parse import urlsplit

        sim_port = urlsplit(sim_config.base_url).port or port + SIM_PORT_OFFSET
        sim_server = make_server(host, sim_port, sim_app, threaded=True)
        threading.Thread(target=sim_server.serve_forever, daemon=True).start()
        click.echo(f"Canvas simulator: {sim_config.base_url}/  (open this to launch as each role)")
        # One outbox worker beside the development server, so seats reach the simulator as they would Canvas.
        from course_sync.runtime import make_worker

        runner = make_worker(settings, _sessions(settings), _encryptor(settings))
        threading.Thread(target=runner.run_forever, daemon=True, name="outbox-worker").start()
    click.echo(f"kurspakke: {settings.base_url}/")
    # The tool logs each request itself (method, path, status, time; never the query string, which may carry a
    # token): werkzeug's own access line would log every request a second time, query string included.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(host, port, app, threaded=True, use_reloader=False)


def _register_groups() -> None:
    from kurspakke.cli_progress import map_quiz, progress, sync
    from kurspakke.cli_seats import seats

    main.add_command(seats)
    main.add_command(sync)
    main.add_command(progress)
    course.add_command(map_quiz)


_register_groups()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
