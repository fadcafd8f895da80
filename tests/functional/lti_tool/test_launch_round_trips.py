"""What a launch costs the database: on PostgreSQL one statement after the pool's ping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event


@pytest.fixture
def app_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    return {**app_settings, "registration_cache_seconds": 30}  # as in production: registrations and links cached


@dataclass
class Executed:
    sql: str  # whitespace collapsed
    autocommit: bool | None  # the driver connection's, when the statement ran
    checked_out: int  # pooled connections in use at that moment


def launch_recording_statements(driver, engine) -> list[Executed]:
    """Launch as Kari and record every statement the tool sends while it does."""
    executed: list[Executed] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        autocommit = getattr(conn.connection.dbapi_connection, "autocommit", None)
        executed.append(Executed(" ".join(statement.split()), autocommit, engine.pool.checkedout()))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        resp = driver.launch("deltaker")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert resp.status_code == 200 and "Kari Nordmann" in resp.get_data(as_text=True)
    return executed


def test_a_launch_on_postgresql_is_one_statement_outside_a_transaction(driver, linked, app):
    """The launch record and the person lookup share one statement (a data-modifying CTE) in its own implicit
    transaction: one round trip after the pool's ping, where BEGIN, SELECT, INSERT and COMMIT took four."""
    engine = app.extensions["kurspakke"].engine
    driver.launch("deltaker")  # the first launch records the LTI sub beside the Canvas user id
    executed = launch_recording_statements(driver, engine)
    # After the launch's own statements the landing page ("Min fremdrift") reads the participant's progress: reads
    # only, a fixed number (kurspakke/progress/overview.py).
    if engine.dialect.name == "postgresql":
        launch, page = executed[:1], executed[1:]
        assert launch[0].sql.startswith("WITH launch AS (INSERT INTO lti_launch") and launch[0].autocommit is True
    else:  # SQLite: BEGIN IMMEDIATE, the INSERT, the SELECT, in the request's transaction
        launch, page = executed[:3], executed[3:]
        assert [e.sql.split(" ", 1)[0] for e in launch] == ["BEGIN", "INSERT", "SELECT"], executed
    reads = [e for e in page if not e.sql.startswith("BEGIN")]  # SQLite opens the page's own transaction
    assert all(e.sql.startswith("SELECT") for e in reads) and len(reads) <= 4 and len(page) - len(reads) <= 1, page


def test_a_launch_into_a_course_not_yet_cached_uses_one_connection(driver, linked, app):
    """The first launch reads the course link (not cached yet), so the launch statement runs in the
    request's own transaction: never a second pooled connection per request."""
    engine = app.extensions["kurspakke"].engine
    executed = launch_recording_statements(driver, engine)
    assert any(e.sql.startswith("SELECT course_link.") for e in executed)
    if engine.dialect.name == "postgresql":
        assert max(e.checked_out for e in executed) == 1, executed
        assert any(e.sql.startswith("WITH launch AS (INSERT INTO lti_launch") for e in executed)
