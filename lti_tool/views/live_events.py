"""``POST /api/canvas/live-events``: Canvas Live Events (HTTPS delivery, signed payload), the progress sync's fast
path. The checks and what an event does are in course_sync/live_events.py.

Answers are JSON, in English like /api/purchases: 202 ``{"status": "queued", "steps": [...]}`` when a progress sync
was requested, 202 ``{"status": "ignored", "reason": ...}`` for a submission or grade event of a course or person
the tool does not know, 204 for other events (signed, but not ones the tool acts on), 400 for a body that is not a
JWT or claims of the wrong shape, 401 for a refused signature, algorithm, key or lifetime, 413 for a body over 64
KiB, 503 while the key set cannot be fetched (Canvas tries again later), and 404 when no key set is configured
(the feature is off). Errors are ``{"errors": [{"field", "code", "message"}]}``. Any answer >= 400 rolls the
request's transaction back (``lti_tool/__init__.py``), and every refusal happens before anything is written.

No launch token, cookie or CSRF check applies: the app has no session or CSRF layer, and the signature is the
authentication (as for /api/purchases).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from course_sync.live_events import (
    ACCEPTED_EVENTS,
    MAX_EVENT_BYTES,
    LiveEventKeys,
    LiveEventRefused,
    dispatch_event,
    parse_event,
    verify_event,
)
from lti_tool.logs import log_event
from lti_tool.services import db, services

bp = Blueprint("live_events", __name__)

EXTENSION = "kurspakke.live_events"


@bp.record_once
def _build_keys(state: BlueprintSetupState) -> None:
    """One key set per app, built when the blueprint is registered (after the app's services): the platform key
    sets' fetcher (hardened, replaceable by tests through create_app's ``jwks_fetcher``) fetches it."""
    svc = state.app.extensions["kurspakke"]
    state.app.extensions[EXTENSION] = LiveEventKeys.from_settings(svc.settings, fetcher=svc.jwks.fetcher)


def _error(status: int, code: str, message: str, field: str = "body") -> tuple[Response, int]:
    return jsonify({"errors": [{"field": field, "code": code, "message": message}]}), status


def _read_capped(limit: int) -> bytes:
    """The body, but no more than ``limit`` bytes of it. A read of the input stream may return less than asked
    (a chunked body arrives piece by piece), so it reads until the end or the limit."""
    body = bytearray()
    while len(body) < limit:
        chunk = request.stream.read(limit - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


@bp.post("/api/canvas/live-events")
def live_events() -> tuple[Response, int] | Response:
    keys: LiveEventKeys | None = current_app.extensions.get(EXTENSION)
    if keys is None:
        return _error(404, "not_configured", "Canvas Live Events are not accepted here: not configured.", "")
    too_large = _error(413, "too_large", f"The body is larger than {MAX_EVENT_BYTES} bytes.")
    if request.content_length is not None and request.content_length > MAX_EVENT_BYTES:
        log_event("live event refused", logging.WARNING, reason="too_large")
        return too_large
    try:
        raw = _read_capped(MAX_EVENT_BYTES + 1)
    except RequestEntityTooLarge:
        return too_large
    except ClientDisconnected:
        return _error(400, "incomplete", "The body ended before its declared length.")
    if len(raw) > MAX_EVENT_BYTES:
        log_event("live event refused", logging.WARNING, reason="too_large")
        return too_large
    svc = services()
    try:
        event = parse_event(verify_event(raw, keys, leeway=svc.settings.jwt_leeway_seconds))
    except LiveEventRefused as exc:
        level = logging.ERROR if exc.status >= 500 else logging.WARNING
        log_event("live event refused", level, reason=exc.code)
        return _error(exc.status, exc.code, exc.message)
    if event.name not in ACCEPTED_EVENTS:
        return Response(status=204)
    outcome = dispatch_event(db(), event, programmes=svc.programmes)
    log_event(
        "live event",
        event=event.name,
        status=outcome.status,
        reason=outcome.reason,
        programmes=outcome.programmes,
        steps=outcome.steps,
    )
    return jsonify(outcome.as_json()), 202
