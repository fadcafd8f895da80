"""Pages outside Canvas that anyone may open: the tool's start page (what it is, where each role goes, and in
development the Canvas simulator), the accessibility statement (tilgjengelighetserklæring) public bodies must
publish, and the favicon."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, render_template
from flask.typing import ResponseReturnValue

from lti_tool.services import services

bp = Blueprint("public", __name__)

# The simulator's port beside the tool's in development (kurspakke.cli SIM_PORT_OFFSET).
SIM_PORT_OFFSET = 1
# When the accessibility statement was last checked against the pages (WCAG 2.1 AA, axe-core in every CI run).
STATEMENT_DATE = "2026-11-30"


def _simulator_url() -> str | None:
    settings = services().settings
    if settings.env != "development":
        return None
    base = urlsplit(settings.base_url)
    port = base.port or (443 if base.scheme == "https" else 80)
    return f"{base.scheme}://{base.hostname}:{port + SIM_PORT_OFFSET}/"


@bp.get("/")
def start() -> ResponseReturnValue:
    programmes = sorted(services().programmes.values(), key=lambda p: p.title)
    return render_template("public/start.html", simulator_url=_simulator_url(), programmes=programmes)


@bp.get("/accessibility")
def accessibility() -> ResponseReturnValue:
    contacts = sorted({(p.contact_name, p.contact_email) for p in services().programmes.values()})
    return render_template("public/accessibility.html", contacts=contacts, statement_date=STATEMENT_DATE)


@bp.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    """Browsers ask for /favicon.ico whatever the page links: the same icon as static/favicon.svg."""
    static = current_app.static_folder
    assert static is not None
    icon = (Path(static) / "favicon.svg").read_bytes()
    return Response(icon, mimetype="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


__all__ = ["bp"]
