"""The reminder setting on "Min fremdrift" and the mentor's page, the one-click link of a reminder e-mail (a page
with a button; only the POST changes anything), the mentor's "reminded dd.mm" mark, and bad input refused with
nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from sqlalchemy import func, select

from canvas_sim import SimPlatform
from kurspakke.db import transaction
from kurspakke.groups import services as groups
from kurspakke.licences.models import OrderSource
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.models import IdentityKind, Person
from kurspakke.programmes import load_programmes
from kurspakke.reminders.models import Nudge, ReminderPreference
from kurspakke.reminders.services import UNSUBSCRIBE_PATH, unsubscribe_token
from kurspakke.services.people import add_identity, get_or_create_organisation
from tests.conftest import SECRET
from tests.support.factories import link_sim_course, sim_instance
from tests.support.lti import TOOL, launch_token

PROGRAMME = load_programmes()["lindrende-behandling"]
ACTOR = "test"
OSLO = ZoneInfo("Europe/Oslo")


@pytest.fixture
def world(app: Flask, sim: SimPlatform) -> dict[str, int]:
    """Oslo, group A: Kari (the simulator's participant) and Ola, mentor: the simulator's mentor."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
        oslo = get_or_create_organisation(s, name="Oslo kommune", orgnr="958935420")
        order = create_order(
            s, organisation=oslo, programme=PROGRAMME, quantity=5, source=OrderSource.MANUAL, actor=ACTOR
        )
        confirm_order(s, order, actor=ACTOR)
        kari_user, mentor_user = sim.user("deltaker"), sim.user("mentor")
        kari = assign_person(s, oslo, PROGRAMME, PersonInput(kari_user.name, kari_user.email, "Sykehjem"), actor=ACTOR)
        ola = assign_person(s, oslo, PROGRAMME, PersonInput("Ola Hansen", "ola@oslo.no", "Sykehjem"), actor=ACTOR)
        mentor = appoint_mentor(s, oslo, PROGRAMME, PersonInput(mentor_user.name, mentor_user.email), actor=ACTOR)
        for seat, user in ((kari, kari_user), (mentor, mentor_user)):
            add_identity(s, seat.person, IdentityKind.CANVAS_USER_ID, sim_instance(sim), str(user.canvas_user_id))
        group = groups.create_group(s, oslo, PROGRAMME.id, "Gruppe A", actor=ACTOR)
        groups.add_members(s, group, [kari, ola], actor=ACTOR)
        groups.add_mentor(s, group, mentor.person, actor=ACTOR)
        s.flush()
        return {
            "kari": kari.person_id,
            "kari_seat": kari.id,
            "ola": ola.person_id,
            "ola_seat": ola.id,
            "mentor": mentor.person_id,
        }


def _token(driver: Any, user: str) -> str:
    resp = driver.launch(user)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return launch_token(resp.get_data(as_text=True))


def _soup(resp: Any) -> BeautifulSoup:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def _preferences(db_session: Any) -> int:
    return db_session.scalar(select(func.count()).select_from(ReminderPreference)) or 0


def _checkbox(resp: Any) -> Any:
    box = _soup(resp).find("input", attrs={"name": "reminders"})
    assert box is not None and box["type"] == "checkbox"
    label = _soup(resp).find("label", attrs={"for": box["id"]})
    assert label is not None  # a checkbox with its label
    return box


def test_min_fremdrift_has_the_setting_on_by_default_and_saving_turns_it_off(client, driver, world, db_session) -> None:
    landing = driver.launch("deltaker")
    box = _checkbox(landing)
    assert box.has_attr("checked")
    form = box.find_parent("form")
    fields = {i["name"]: i.get("value", "") for i in form.find_all("input") if i["type"] == "hidden"}
    assert fields["person"] == str(world["kari"]) and fields["view"] == "participant"
    token = launch_token(landing.get_data(as_text=True))
    saved = client.post(
        form["action"], data={"lt": token, "person": fields["person"], "view": "participant"}, base_url=TOOL
    )
    assert saved.status_code == 200
    assert not _checkbox(saved).has_attr("checked")
    assert _soup(saved).find(attrs={"role": "status"}) is not None  # says it was saved, on the same page
    row = db_session.scalars(select(ReminderPreference)).one()
    assert (row.person_id, row.reminders_on, row.locale) == (world["kari"], False, "nb")
    again = client.post(
        form["action"],
        data={"lt": token, "person": fields["person"], "view": "participant", "reminders": "on"},
        base_url=TOOL,
    )
    assert again.status_code == 200 and _checkbox(again).has_attr("checked")
    assert db_session.scalars(select(ReminderPreference)).one().reminders_on is True
    # A forged "view" never renders another page than one that carries the form (the participant's own here).
    forged_view = client.post(
        form["action"],
        data={"lt": token, "person": fields["person"], "view": "owner", "reminders": "on"},
        base_url=TOOL,
    )
    assert forged_view.status_code == 200 and _soup(forged_view).find("h1").get_text() == "Min fremdrift"


def test_another_persons_setting_or_no_launch_is_refused_and_nothing_is_written(
    client, driver, world, db_session
) -> None:
    token = _token(driver, "deltaker")
    other = client.post(
        "/app/reminders", data={"lt": token, "person": str(world["ola"]), "view": "participant"}, base_url=TOOL
    )
    assert other.status_code == 403
    missing = client.post("/app/reminders", data={"lt": token, "view": "participant"}, base_url=TOOL)
    assert missing.status_code == 403
    no_launch = client.post("/app/reminders", data={"person": str(world["kari"])}, base_url=TOOL)
    assert no_launch.status_code == 401
    forged = client.post("/app/reminders", data={"lt": token + "x", "person": str(world["kari"])}, base_url=TOOL)
    assert forged.status_code == 401
    assert _preferences(db_session) == 0


def test_the_mentor_page_has_the_setting_and_marks_who_was_nudged_in_the_last_two_weeks(
    app, client, driver, world, db_session
) -> None:
    now = datetime.now(UTC)
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        for seat, person, days in ((world["kari_seat"], world["kari"], 3), (world["ola_seat"], world["ola"], 20)):
            s.add(
                Nudge(
                    seat_id=seat,
                    person_id=person,
                    programme_id=PROGRAMME.id,
                    modules_done=0,
                    modules_expected=2,
                    sent_at=now - timedelta(days=days),
                )
            )
    resp = driver.launch("mentor")
    assert resp.status_code == 200
    soup = _soup(resp)
    rows = {" ".join(tr.th.get_text(" ").split()): tr for tr in soup.find("table").find("tbody").find_all("tr")}
    kari_row = next(name for name in rows if name.startswith(_name(db_session, world["kari"])))
    ola_row = next(name for name in rows if name.startswith("Ola Hansen"))
    day = (now - timedelta(days=3)).astimezone(OSLO).strftime("%d.%m")
    mark = rows[kari_row].find(class_="nudged")
    assert mark is not None and day in mark.get_text()  # text beside the name, not a colour
    assert rows[ola_row].find(class_="nudged") is None  # 20 days ago: no longer marked
    box = _checkbox(resp)
    assert box.find_parent("form").find("input", attrs={"name": "view"})["value"] == "mentor"
    token = launch_token(resp.get_data(as_text=True))
    saved = client.post(
        "/app/reminders", data={"lt": token, "person": str(world["mentor"]), "view": "mentor"}, base_url=TOOL
    )
    assert saved.status_code == 200 and not _checkbox(saved).has_attr("checked")
    assert _soup(saved).find("h1").get_text() == _soup(resp).find("h1").get_text()  # back on the mentor's page


def _name(db_session: Any, person_id: int) -> str:
    return db_session.scalar(select(Person.name).where(Person.id == person_id))


# --- the one-click link --------------------------------------------------------------------------------------------


def test_the_link_shows_a_button_and_only_its_post_turns_reminders_off(client, world, db_session) -> None:
    path = UNSUBSCRIBE_PATH + unsubscribe_token(SECRET, world["kari"])
    page = client.get(path, base_url=TOOL)
    assert page.status_code == 200
    form = _soup(page).find("form")
    assert form["method"] == "post" and form["action"] == path and form.find("button") is not None
    assert _preferences(db_session) == 0  # opening the link (a mail scanner does) changes nothing
    done = client.post(path, base_url=TOOL, headers={"Sec-Fetch-Site": "same-origin", "Origin": TOOL})
    assert done.status_code == 200 and _soup(done).find(attrs={"role": "status"}) is not None
    row = db_session.scalars(select(ReminderPreference)).one()
    assert (row.person_id, row.reminders_on) == (world["kari"], False)
    assert client.post(path, base_url=TOOL).status_code == 200  # twice is harmless


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_or_foreign_link_is_refused_and_writes_nothing(client, world, db_session, method: str) -> None:
    good = unsubscribe_token(SECRET, world["kari"])
    refusals = {
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"): 400,  # altered signature
        unsubscribe_token("a different secret key of some length", world["kari"]): 400,  # not signed by this tool
        "kari": 400,
        unsubscribe_token(SECRET, 987654): 404,  # signed, but nobody
    }
    for token, status in refusals.items():
        resp = getattr(client, method)(UNSUBSCRIBE_PATH + token, base_url=TOOL)
        assert resp.status_code == status, token
        assert _soup(resp).find(attrs={"role": "alert"}) is not None
    assert _preferences(db_session) == 0


def test_a_post_from_another_site_is_refused_and_writes_nothing(client, world, db_session) -> None:
    path = UNSUBSCRIBE_PATH + unsubscribe_token(SECRET, world["kari"])
    assert client.post(path, base_url=TOOL, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.post(path, base_url=TOOL, headers={"Origin": "https://evil.example"}).status_code == 403
    assert _preferences(db_session) == 0


def test_the_link_the_worker_writes_is_the_route_the_app_answers(app) -> None:
    with app.test_request_context(base_url=TOOL):
        from flask import url_for

        assert url_for("app.reminders_off", token="abc") == UNSUBSCRIBE_PATH + "abc"
