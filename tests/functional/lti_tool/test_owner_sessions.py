"""The course owner schedules the learning network's sessions for the whole run; refusals write nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.meetings.models import Meeting
from kurspakke.models import CanvasInstance
from kurspakke.outbox.models import OutboxStep
from tests.support.factories import link_sim_course, sim_instance
from tests.support.lti import TOOL, launch_token, open_page

NETWORK = "laeringsnettverk-parorende"


def _seller(app, sim, programme_id: str) -> None:
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim, programme_id)
        s.add(
            CanvasInstance(
                api_url=sim.config.base_url, account_id=1, token_encrypted=b"x", platform_instance=sim_instance(sim)
            )
        )


@pytest.fixture
def owner(app, sim, driver) -> str:
    _seller(app, sim, NETWORK)
    resp = driver.launch("kurseier")
    assert resp.status_code == 200
    return launch_token(resp.get_data(as_text=True))


def _post(client, token: str, **form: str):
    return client.post("/owner/sessions", data={"lt": token, **form}, base_url=TOOL)


def _count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model)) or 0


def test_the_network_sessions_are_listed_with_the_files_dates_and_places(client, owner) -> None:
    resp = open_page(client, "/owner/sessions", owner)
    assert resp.status_code == 200
    soup = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    forms = soup.select("form input[name=session]")
    assert [f["value"] for f in forms] == [f"samling-{n}" for n in range(1, 7)]
    first = soup.find("section", attrs={"aria-labelledby": "session-samling-1"})
    assert first.find("input", attrs={"name": "date"})["value"] == "2023-09-27"
    assert "Scandic" in first.find("input", attrs={"name": "place"})["value"]
    # A physical session offers only "physical"; a digital one only "digital".
    assert [r["value"] for r in first.select("input[name=format]")] == ["physical"]
    second = soup.find("section", attrs={"aria-labelledby": "session-samling-2"})
    assert [r["value"] for r in second.select("input[name=format]")] == ["digital"]


def test_scheduling_writes_the_meeting_and_its_calendar_step_and_a_bad_plan_writes_nothing(
    client, owner, db_session
) -> None:
    bad = _post(
        client,
        owner,
        save="1",
        session="samling-2",
        date="2027-01-12",
        time="10:00",
        duration="120",
        format="digital",
        video_url="http://insecure.example.no/x",
    )
    assert bad.status_code == 422
    soup = BeautifulSoup(bad.get_data(as_text=True), "html.parser")
    assert soup.find(id="error-samling-2") is not None
    assert soup.find(attrs={"aria-invalid": "true"})["name"] == "video_url"
    unknown = _post(
        client,
        owner,
        save="1",
        session="samling-9",
        date="2027-01-12",
        time="10:00",
        duration="120",
        format="digital",
        video_url="https://meet.example.no/x",
    )
    assert unknown.status_code == 404
    assert (_count(db_session, Meeting), _count(db_session, OutboxStep)) == (0, 0)
    ok = _post(
        client,
        owner,
        save="1",
        session="samling-1",
        date="2027-01-12",
        time="10:00",
        duration="300",
        format="physical",
        place="Scandic Bergen City Hotell, Bergen",
    )
    assert ok.status_code == 200
    meeting = db_session.scalars(select(Meeting)).one()
    assert (meeting.group_id, meeting.organisation_id, meeting.session_key) == (None, None, "samling-1")
    assert meeting.starts_at == datetime(2027, 1, 12, 9, 0, tzinfo=UTC)
    steps = db_session.scalars(select(OutboxStep)).all()
    # The Canvas calendar event, and the notice with an .ics to the run's participants (course_sync/reminder_steps.py).
    assert [(s.kind, s.subject) for s in steps] == [
        ("meeting.sync", f"meeting:{meeting.id}"),
        ("meeting.notify", f"meeting-notice:{meeting.id}"),
    ]


def test_a_programme_with_group_sessions_only_says_the_mentors_schedule_them(client, app, sim, driver) -> None:
    _seller(app, sim, "lindrende-behandling")
    token = launch_token(driver.launch("kurseier").get_data(as_text=True))
    resp = open_page(client, "/owner/sessions", token)
    assert resp.status_code == 200 and not BeautifulSoup(resp.get_data(as_text=True), "html.parser").select(
        "form input[name=session]"
    )


def test_a_forged_launch_is_refused_and_writes_nothing(client, app, sim, db_session) -> None:
    _seller(app, sim, NETWORK)
    resp = client.post(
        "/owner/sessions",
        data={
            "lt": "forged",
            "save": "1",
            "session": "samling-1",
            "date": "2027-01-12",
            "time": "10:00",
            "duration": "300",
            "format": "physical",
            "place": "Hotellet",
        },
        base_url=TOOL,
    )
    assert resp.status_code == 401
    assert _count(db_session, Meeting) == 0
