"""One JSON log line per request, carrying the request id; times on screen in Europe/Oslo."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

from lti_tool.i18n import format_datetime
from lti_tool.logs import JsonFormatter


def test_each_request_logs_one_json_line_with_its_request_id(app, client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("kurspakke")
    logger.addHandler(handler)
    try:
        resp = client.get("/healthz?lt=secret-token", headers={"X-Request-ID": "req-12345678"})
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert resp.headers["X-Request-ID"] == "req-12345678"
    assert len(lines) == 1
    line = lines[0]
    assert line["msg"] == "request" and line["request_id"] == "req-12345678"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 200)
    assert isinstance(line["ms"], float) and line["level"] == "info"
    assert "secret-token" not in stream.getvalue()  # query strings (launch tokens) are never logged


def test_times_are_shown_in_oslo_time_winter_and_summer(app):
    with app.test_request_context("/"):
        assert format_datetime(datetime(2026, 1, 15, 11, 30, tzinfo=UTC), "HH:mm") == "12:30"  # CET, UTC+1
        assert format_datetime(datetime(2026, 7, 15, 11, 30, tzinfo=UTC), "HH:mm") == "13:30"  # CEST, UTC+2
        assert format_datetime(datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "HH:mm") == "01:59"  # before the switch
        assert format_datetime(datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "HH:mm") == "03:00"  # after it
