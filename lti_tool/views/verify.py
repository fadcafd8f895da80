"""The public verification page, ``/verify/<code>`` (DESIGN.md §6): anyone — an employer years later — checks a
certificate's code. HTML by default, JSON with ``Accept: application/json``. It shows only the name as printed,
the programme, the date and the issuer, and tells apart a valid, revoked, replaced, unknown and mistyped code.

Guessing is throttled per client address: every lookup counts towards a window, and lookups that find nothing
(unknown, mistyped or malformed codes) count towards a much smaller one; past either, the answer is 429 with
Retry-After, without looking the code up."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from kurspakke.certificates.codes import CodeShape, classify, format_code, normalise
from kurspakke.certificates.models import REVOKED, SUPERSEDED, Certificate, status_of
from kurspakke.certificates.services import by_code
from kurspakke.services.ratelimit import RateLimiter
from lti_tool.services import commit, db, services

bp = Blueprint("verify", __name__)

LOOKUPS_PER_WINDOW = 60
MISSES_PER_WINDOW = 10
WINDOW_SECONDS = 600
MAX_CODE_TEXT = 64

UNKNOWN = "unknown"
MISTYPED = "mistyped"
MALFORMED = "malformed"


def _limiter() -> RateLimiter:
    limiter = current_app.extensions.get("kurspakke_ratelimit")
    if limiter is None:
        svc = services()
        limiter = current_app.extensions["kurspakke_ratelimit"] = RateLimiter(svc.session_factory, svc.redis)
    return limiter


def _client() -> str:
    """The address a lookup is counted by: the peer's, or — when the peer is a proxy the settings trust — the
    address that proxy saw (the last one in X-Forwarded-For: anything before it the client could have written)."""
    peer = request.remote_addr or "unknown"
    trusted = services().settings.forwarded_allow_ips
    if "*" in trusted or peer in trusted:
        hops = [h.strip() for h in ",".join(request.headers.getlist("X-Forwarded-For")).split(",") if h.strip()]
        if hops:
            return hops[-1][:64]
    return peer


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _answer(status: str, cert: Certificate | None, shown: str) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "code": shown}
    if cert is not None:
        body.update(
            name=cert.name,
            programme=cert.printed.get("programme_title", ""),
            completed_on=cert.completed_on.isoformat(),
            issuer=cert.printed.get("issuer", ""),
        )
        if status == REVOKED and cert.revoked_at is not None:
            body["revoked_on"] = cert.revoked_at.date().isoformat()
        if status == SUPERSEDED and cert.superseded_at is not None:
            body["superseded_on"] = cert.superseded_at.date().isoformat()
    return body


def _look_up(text: str) -> tuple[str, Certificate | None, str]:
    shape = classify(text)
    if shape is CodeShape.MALFORMED:
        return MALFORMED, None, ""
    canonical = normalise(text)
    assert canonical is not None
    if shape is CodeShape.MISTYPED:
        return MISTYPED, None, canonical
    cert = by_code(db(), canonical)
    if cert is None:
        return UNKNOWN, None, format_code(canonical)
    return status_of(cert)[0], cert, format_code(canonical)


def _throttled(wants_json: bool) -> ResponseReturnValue | None:
    limiter, client, session = _limiter(), _client(), db()
    misses = limiter.peek(f"verify-miss:{client}", WINDOW_SECONDS, session)
    lookups = limiter.hit(f"verify:{client}", WINDOW_SECONDS, session)
    commit()  # counted also when the answer is an error (the request boundary rolls errors back)
    if misses.count < MISSES_PER_WINDOW and lookups.count <= LOOKUPS_PER_WINDOW:
        return None
    retry = max(misses.retry_after, lookups.retry_after) if misses.count >= MISSES_PER_WINDOW else lookups.retry_after
    headers = {"Retry-After": str(retry), "Vary": "Accept"}
    if wants_json:
        return jsonify({"status": "throttled", "retry_after": retry}), 429, headers
    minutes = max(1, (retry + 59) // 60)
    return render_template("verify/throttled.html", minutes=minutes), 429, headers


@bp.get("/verify")
def verify_form() -> ResponseReturnValue:
    """The form where a code is typed; a typed code goes to its own address."""
    text = request.args.get("code", "")[:MAX_CODE_TEXT]
    if text.strip():
        canonical = normalise(text)
        return redirect(url_for("verify.verify", code=canonical or text.strip()), code=303)
    return render_template("verify/form.html")


@bp.get("/verify/<code>")
def verify(code: str) -> ResponseReturnValue:
    wants_json = _wants_json()
    throttled = _throttled(wants_json)
    if throttled is not None:
        return throttled
    status, cert, shown = _look_up(code[:MAX_CODE_TEXT])
    if status in (UNKNOWN, MISTYPED, MALFORMED):
        _limiter().hit(f"verify-miss:{_client()}", WINDOW_SECONDS, db())
        commit()
    answer = _answer(status, cert, shown)
    # An unknown code is a 404 to machines; people get the page with its explanation either way.
    http_status = 404 if status in (UNKNOWN, MISTYPED, MALFORMED) else 200
    headers = {"Vary": "Accept", "Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
    if wants_json:
        return jsonify(answer), http_status, headers
    html = render_template(
        "verify/result.html",
        answer=answer,
        completed_on=cert.completed_on.strftime("%d.%m.%Y") if cert is not None else "",
        typed=code[:MAX_CODE_TEXT],
    )
    return html, http_status, headers


@bp.get("/badges/issuers/<programme_id>")
def badge_issuer(programme_id: str) -> ResponseReturnValue:
    """The issuer Profile that a programme's Open Badges credentials name as their ``issuer.id``."""
    programme = services().programmes.get(programme_id)
    if programme is None or programme.certificate is None:
        return jsonify({"error": "not_found"}), 404
    base = services().settings.base_url
    return jsonify(
        {
            "@context": [
                "https://www.w3.org/ns/credentials/v2",
                "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
            ],
            "id": f"{base}/badges/issuers/{programme.id}",
            "type": ["Profile"],
            "name": programme.certificate.issuer,
            "email": programme.contact_email,
        }
    )


__all__ = ["bp"]
