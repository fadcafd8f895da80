"""Machine-to-machine endpoints. ``POST /api/purchases``: an external shop's signed purchase (DESIGN.md §6).

Answers are JSON: 201 ``{"order": "<our id>", "status": "confirmed"}`` for a new order, 200 with the stored order's
current status for a repeat, 409 for a known order id with another body, 401 for a missing, malformed, wrong or
stale signature, 413 for a body over ``max_request_bytes``, 422 ``{"errors": [{"field", "code", "message"}]}`` for
an invalid body. Without KURSPAKKE_WEBHOOK_SECRET every delivery gets 503: the fault is ours, not the shop's, and
shops retry a 5xx later while they give up on (or alert about) a 4xx, so an unconfigured tool loses no paid order
once the secret is set. The signature is checked before the body is parsed. Any answer >= 400 rolls the request's
transaction back (``lti_tool/__init__.py``), so a refusal writes nothing. The logic is in
``kurspakke.licences.purchases``.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from kurspakke.licences.purchases import (
    SIGNATURE_HEADER,
    PurchaseConflict,
    PurchaseRefused,
    SignatureRefused,
    WebhookNotConfigured,
    parse_purchase,
    record_purchase,
    verify_signature,
)
from lti_tool.logs import log_event
from lti_tool.services import db, services

bp = Blueprint("api", __name__, url_prefix="/api")

_SIGNATURE_MESSAGES = {
    "signature_missing": f"The {SIGNATURE_HEADER} header is missing.",
    "signature_malformed": f"The {SIGNATURE_HEADER} header must be t=<unix time>,v1=<hex HMAC-SHA256>.",
    "signature_stale": "The signature's timestamp is more than the allowed tolerance away from now.",
    "signature_mismatch": "The signature does not match the body.",
}


def _errors(status: int, *errors: dict[str, str]) -> tuple[Response, int]:
    return jsonify({"errors": list(errors)}), status


@bp.post("/purchases")
def purchases() -> tuple[Response, int]:
    svc = services()
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _errors(413, {"field": "body", "code": "too_large", "message": "The body is too large."})
    try:
        verify_signature(
            svc.settings.webhook_secret,
            request.headers.get(SIGNATURE_HEADER),
            body,
            now=time.time(),
            tolerance_seconds=svc.settings.webhook_tolerance_seconds,
        )
    except WebhookNotConfigured:
        log_event("purchase refused", logging.ERROR, reason="KURSPAKKE_WEBHOOK_SECRET is not set")
        return _errors(
            503, {"field": "", "code": "not_configured", "message": "Purchases are not accepted: not configured."}
        )
    except SignatureRefused as exc:
        log_event("purchase refused", logging.WARNING, reason=exc.reason)
        return _errors(401, {"field": SIGNATURE_HEADER, "code": exc.reason, "message": _SIGNATURE_MESSAGES[exc.reason]})
    try:
        outcome = record_purchase(
            db(), parse_purchase(body), svc.programmes, signin_url=svc.settings.base_url.rstrip("/") + "/signin"
        )
    except PurchaseRefused as exc:
        log_event("purchase refused", logging.INFO, reason="invalid", fields=[e.field for e in exc.errors])
        return _errors(422, *(e.as_json() for e in exc.errors))
    except PurchaseConflict as exc:
        log_event("purchase refused", logging.WARNING, reason="conflict", order=exc.order.id)
        return _errors(
            409,
            {
                "field": "order_id",
                "code": "conflict",
                "message": "This order id is already recorded with a different body.",
            },
        )
    order = outcome.order
    log_event("purchase", order=order.id, created=outcome.created, status=order.status.value)
    return jsonify({"order": str(order.id), "status": order.status.value}), 201 if outcome.created else 200
