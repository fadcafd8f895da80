"""Structured logs: one JSON object a line, each with the request id (echoed in X-Request-ID).

Query strings are never logged: launch tokens may travel in them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
logger = logging.getLogger("kurspakke")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """One readable line for development's console: the message and its fields (``request GET /app/ 200 12.3ms``).
    Without the fields a request line said only "request"."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name} {record.getMessage()}"
        fields = getattr(record, "fields", {})
        if fields:
            line += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(json_lines: bool, level: int = logging.INFO) -> None:
    root = logging.getLogger("kurspakke")
    if any(getattr(h, "_kurspakke", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._kurspakke = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def log_event(msg: str, level: int = logging.INFO, **fields: Any) -> None:
    # makeRecord + handle instead of logger.log: no walk up the stack for a caller that no log line shows (it
    # runs on every request).
    if logger.isEnabledFor(level):
        logger.handle(logger.makeRecord(logger.name, level, __name__, 0, msg, (), None, extra={"fields": fields}))


def init_app(app: Flask) -> None:
    configure(app.extensions["kurspakke"].settings.log_json)

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _done(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if request.path.startswith("/static/"):
            return response
        log_event(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            ms=round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
        )
        return response
