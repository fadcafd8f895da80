"""The participant's "Min fremdrift" and the mentor's pages inside Canvas: what they show, scheduling, attendance,
make-ups, the group's export, refusals that write nothing, and statements per page that do not grow with the
group."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from sqlalchemy import event, func, insert, select

from canvas_sim import SimPlatform
from kurspakke.db import transaction
from kurspakke.groups import services as groups
from kurspakke.groups.models import GroupMember, MentorGroup
from kurspakke.licences.models import AuditEntry, OrderSource, Seat, SeatKind
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.meetings.models import Attendance, Meeting
from kurspakke.meetings.services import Plan, schedule
from kurspakke.models import IdentityKind, Person
from kurspakke.programmes import load_programmes
from kurspakke.progress.models import ModuleCompletion
from kurspakke.services.people import add_identity, get_or_create_organisation
from tests.support.factories import link_sim_course, sim_instance
from tests.support.lti import TOOL, launch_token

PROGRAMME = load_programmes()["lindrende-behandling"]
ACTOR = "test"


def _org(s: Any, name: str, orgnr: str, seats: int = 20) -> Any:
    org = get_or_create_organisation(s, name=name, orgnr=orgnr)
    order = create_order(
        s, organisation=org, programme=PROGRAMME, quantity=seats, source=OrderSource.MANUAL, actor=ACTOR
    )
    confirm_order(s, order, actor=ACTOR)
    return org


@pytest.fixture
def world(app: Flask, sim: SimPlatform) -> dict[str, int]:
    """Oslo: group A (Kari — the simulator's participant —, Ola from another workplace; mentor: the simulator's
    mentor), samling-1 held yesterday, intro in a week. Bergen: group C with Siri and mentor Berit."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        link_sim_course(s, sim)
        oslo = _org(s, "Oslo kommune", "958935420")
        bergen = _org(s, "Bergen kommune", "964338531")
        kari_user, mentor_user = sim.user("deltaker"), sim.user("mentor")
        kari = assign_person(s, oslo, PROGRAMME, PersonInput(kari_user.name, kari_user.email, "Sykehjem"), actor=ACTOR)
        ola = assign_person(s, oslo, PROGRAMME, PersonInput("Ola Hansen", "ola@oslo.no", "Hjemmetjeneste"), actor=ACTOR)
        mentor = appoint_mentor(s, oslo, PROGRAMME, PersonInput(mentor_user.name, mentor_user.email), actor=ACTOR)
        for seat, user in ((kari, kari_user), (mentor, mentor_user)):
            add_identity(s, seat.person, IdentityKind.CANVAS_USER_ID, sim_instance(sim), str(user.canvas_user_id))
        siri = assign_person(s, bergen, PROGRAMME, PersonInput("Siri Berg", "siri@bergen.no", "Sykehjem"), actor=ACTOR)
        berit = appoint_mentor(s, bergen, PROGRAMME, PersonInput("Berit", "berit@bergen.no"), actor=ACTOR)
        group_a = groups.create_group(s, oslo, PROGRAMME.id, "Gruppe A", actor=ACTOR)
        group_c = groups.create_group(s, bergen, PROGRAMME.id, "Gruppe C", actor=ACTOR)
        groups.add_members(s, group_a, [kari, ola], actor=ACTOR)
        groups.add_mentor(s, group_a, mentor.person, actor=ACTOR)
        groups.add_members(s, group_c, [siri], actor=ACTOR)
        groups.add_mentor(s, group_c, berit.person, actor=ACTOR)
        now = datetime.now(UTC)
        held = schedule(
            s,
            PROGRAMME,
            "samling-1",
            Plan(now - timedelta(days=1), 120, "physical", place="Møterom 2"),
            group=group_a,
            actor=ACTOR,
            now=now - timedelta(days=2),
        )
        soon = schedule(
            s,
            PROGRAMME,
            "intro",
            Plan(now + timedelta(days=7), 90, "digital", video_url="https://meet.example.no/intro"),
            group=group_a,
            actor=ACTOR,
            now=now,
        )
        s.add(
            ModuleCompletion(
                person_id=kari.person_id,
                programme_id=PROGRAMME.id,
                module_id="emne-1",
                completed_at=datetime(2026, 3, 10, 9, 0, tzinfo=UTC),
                score=8.0,
            )
        )
        s.flush()
        return {
            "a": group_a.id,
            "c": group_c.id,
            "kari": kari.id,
            "ola": ola.id,
            "siri": siri.id,
            "held": held.id,
            "soon": soon.id,
            "mentor": mentor.person_id,
        }


def _launch(driver: Any, user: str) -> str:
    resp = driver.launch(user)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return launch_token(resp.get_data(as_text=True))


def _post(client: Any, path: str, token: str, **data: str) -> Any:
    return client.post(path, data={"lt": token, **data}, base_url=TOOL)


def _text(resp: Any) -> str:
    return " ".join(BeautifulSoup(resp.get_data(as_text=True), "html.parser").get_text(" ").split())


def _count(db_session: Any, model: type) -> int:
    return db_session.scalar(select(func.count()).select_from(model)) or 0


def test_min_fremdrift_shows_modules_sessions_next_session_group_and_what_remains(driver, world) -> None:
    resp = driver.launch("deltaker")
    assert resp.status_code == 200
    text = _text(resp)
    assert "Min fremdrift" in text
    assert "Gruppe A" in text and "Mentor" in text
    # Module 1 done on 10 March (Oslo), the others not.
    soup = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    modules = soup.find("section", attrs={"aria-labelledby": "modules-heading"})
    rows = [" ".join(tr.get_text(" ").split()) for tr in modules.find("tbody").find_all("tr")]
    assert "10.03.2026" in rows[0] and "10.03.2026" not in rows[1]
    # The next session is the introduction in a week, digital with its link.
    nxt = soup.find("section", attrs={"aria-labelledby": "next-heading"})
    assert "Om opplæringspakken" in nxt.get_text() and nxt.find("a")["href"] == "https://meet.example.no/intro"
    bar = soup.find("progress", id="certificate-heading-progress")
    assert (bar["max"], bar["value"]) == ("9", "1")  # four quizzes and five sessions; module 1 done
    assert soup.find(id=bar["aria-describedby"]).get_text() == "1 av 9"
    remaining = soup.find("section", attrs={"aria-labelledby": "certificate-heading"}).get_text(" ")
    assert PROGRAMME.modules[1].title in remaining and PROGRAMME.modules[0].title not in remaining
    assert "Samling 1" in remaining


def test_the_mentor_sees_the_matrix_with_symbols_and_text_and_the_confidentiality_reminder(driver, world) -> None:
    resp = driver.launch("mentor")
    assert resp.status_code == 200
    soup = BeautifulSoup(resp.get_data(as_text=True), "html.parser")
    table = soup.find("table")
    header = [th.get_text(" ", strip=True) for th in table.find("thead").find_all("th")]
    assert header[0] == "Deltaker" and len(header) == 1 + len(PROGRAMME.modules) + len(PROGRAMME.sessions)
    rows = {tr.th.get_text(" ", strip=True).split(" (")[0]: tr for tr in table.find("tbody").find_all("tr")}
    assert len(rows) == 2 and "Ola Hansen" in rows
    kari_row = next(tr for name, tr in rows.items() if name != "Ola Hansen")
    first = kari_row.find_all("td")[0]
    assert "✓" in first.get_text() and "10.03.2026" in first.get_text() and "fullført" in first.get_text()
    assert "taushetsplikt" in _text(resp)  # Sykehjem and Hjemmetjeneste in one group
    # Siri (Bergen) is nowhere on the Oslo mentor's page.
    assert "Siri" not in _text(resp)


def test_scheduling_a_session_saves_it_and_a_bad_plan_is_refused_with_nothing_written(
    client, driver, world, db_session
) -> None:
    token = _launch(driver, "mentor")
    path = f"/app/mentor/groups/{world['a']}/sessions/samling-2/schedule"
    form = _post(client, path, token)
    assert form.status_code == 200 and "Samling 2" in _text(form)
    before = (_count(db_session, Meeting), _count(db_session, AuditEntry))
    bad = _post(
        client, path, token, save="1", date="2026-13-01", time="10:00", duration="90", format="physical", place="Rom 1"
    )
    assert bad.status_code == 422 and "dd.mm.åååå" in _text(bad)
    negative = _post(
        client, path, token, save="1", date="2026-05-04", time="10:00", duration="-5", format="physical", place="Rom 1"
    )
    assert negative.status_code == 422
    marked = BeautifulSoup(negative.get_data(as_text=True), "html.parser").find(attrs={"aria-invalid": "true"})
    assert marked is not None and marked["name"] == "duration" and marked["aria-describedby"] == "form-error"
    assert (_count(db_session, Meeting), _count(db_session, AuditEntry)) == before
    saved = _post(
        client, path, token, save="1", date="2026-05-04", time="10:00", duration="90", format="physical", place="Rom 1"
    )
    assert saved.status_code == 200
    meeting = db_session.scalar(
        select(Meeting).where(Meeting.group_id == world["a"], Meeting.session_key == "samling-2")
    )
    assert meeting is not None and meeting.starts_at == datetime(2026, 5, 4, 8, 0, tzinfo=UTC)  # 10:00 in Oslo (CEST)
    assert meeting.place == "Rom 1"


def test_attendance_is_recorded_by_keyboardable_radios_and_a_future_session_is_refused(
    client, driver, world, db_session
) -> None:
    token = _launch(driver, "mentor")
    future = _post(
        client,
        f"/app/mentor/groups/{world['a']}/sessions/intro/attendance",
        token,
        save="1",
        **{f"seat-{world['kari']}": "present"},
    )
    assert future.status_code == 409 and _count(db_session, Attendance) == 0
    path = f"/app/mentor/groups/{world['a']}/sessions/samling-1/attendance"
    form = BeautifulSoup(_post(client, path, token).get_data(as_text=True), "html.parser")
    fieldsets = form.find_all("fieldset")
    assert [fs.legend.get_text(strip=True) for fs in fieldsets] == ["Kari Nordmann", "Ola Hansen"]
    for fs in fieldsets:  # each radio has its label
        for radio in fs.find_all("input", attrs={"type": "radio"}):
            assert form.find("label", attrs={"for": radio["id"]}) is not None
    saved = _post(
        client,
        path,
        token,
        save="1",
        **{f"seat-{world['kari']}": "present", f"seat-{world['ola']}": "absent", f"note-{world['ola']}": "Syk"},
    )
    assert saved.status_code == 200
    rows = db_session.scalars(select(Attendance).order_by(Attendance.seat_id)).all()
    assert [(r.seat_id, r.present, r.note, r.led_by_person_id) for r in rows] == [
        (world["kari"], True, "", world["mentor"]),
        (world["ola"], False, "Syk", world["mentor"]),
    ]
    # A make-up for Ola; a forged seat of another organisation is refused and writes nothing.
    forged = _post(client, path, token, makeup="1", makeup_seat=str(world["siri"]), makeup_note="x")
    assert forged.status_code == 403 and _count(db_session, Attendance) == 2
    made_up = _post(client, path, token, makeup="1", makeup_seat=str(world["ola"]), makeup_note="Med gruppe B")
    assert made_up.status_code == 200 and _count(db_session, Attendance) == 3


def test_a_mentor_of_another_organisation_or_group_gets_404_and_writes_nothing(client, driver, world, db_session):
    token = _launch(driver, "mentor")
    before = (_count(db_session, Attendance), _count(db_session, Meeting))
    for path in (
        f"/app/mentor/groups/{world['c']}/sessions/samling-1/attendance",
        f"/app/mentor/groups/{world['c']}/sessions/samling-1/schedule",
        f"/app/mentor/groups/{world['c']}/export.csv",
    ):
        resp = _post(
            client,
            path,
            token,
            save="1",
            date="2026-05-04",
            time="10:00",
            duration="90",
            format="physical",
            place="Rom 1",
            **{f"seat-{world['siri']}": "present"},
        )
        assert resp.status_code == 404, path
        assert "Siri" not in resp.get_data(as_text=True)
    assert (_count(db_session, Attendance), _count(db_session, Meeting)) == before
    # A participant is no mentor: the mentor routes refuse them.
    participant = _launch(driver, "deltaker")
    assert _post(client, f"/app/mentor/groups/{world['a']}/export.csv", participant).status_code == 403


def test_the_groups_export_is_the_fixed_csv_with_the_groups_rows(client, driver, world) -> None:
    token = _launch(driver, "mentor")
    resp = _post(client, f"/app/mentor/groups/{world['a']}/export.csv", token)
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    body = resp.get_data()
    assert body.startswith("\ufeff".encode())
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("navn;e-post;organisasjon;arbeidssted;gruppe;emne-1")
    assert len(lines) == 3 and all(";Gruppe A;" in line for line in lines[1:])


@contextmanager
def _statements(app: Flask) -> Iterator[list[str]]:
    engine = app.extensions["kurspakke"].engine
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _grow_group(app: Flask, group_id: int, total: int) -> None:
    """Bulk rows (no services: 1,000 people through assign_person would take a minute): people with seats in the
    group, half of them with module 1 done and samling-1 recorded."""
    with transaction(app.extensions["kurspakke"].session_factory) as s:
        group = s.get(MentorGroup, group_id)
        have = s.scalar(select(func.count()).select_from(GroupMember).where(GroupMember.group_id == group_id)) or 0
        start = s.scalar(select(func.max(Person.id))) or 0
        now = datetime.now(UTC)
        n = total - have
        s.execute(insert(Person), [{"name": f"Person {start + i}", "email": f"p{start + i}@oslo.no"} for i in range(n)])
        people = s.scalars(select(Person.id).where(Person.id > start).order_by(Person.id)).all()
        s.execute(
            insert(Seat),
            [
                {
                    "organisation_id": group.organisation_id,
                    "programme_id": PROGRAMME.id,
                    "person_id": pid,
                    "kind": SeatKind.PARTICIPANT,
                    "workplace": "Sykehjem",
                    "assigned_at": now,
                    "valid_until": now + timedelta(days=365),
                }
                for pid in people
            ],
        )
        seats = s.scalars(select(Seat.id).where(Seat.person_id.in_(people))).all()
        s.execute(insert(GroupMember), [{"group_id": group_id, "seat_id": sid, "joined_at": now} for sid in seats])
        s.execute(
            insert(ModuleCompletion),
            [
                {"person_id": pid, "programme_id": PROGRAMME.id, "module_id": "emne-1", "completed_at": now}
                for pid in people[::2]
            ],
        )
        held = s.scalar(select(Meeting.id).where(Meeting.group_id == group_id, Meeting.session_key == "samling-1"))
        s.execute(
            insert(Attendance),
            [
                {
                    "seat_id": sid,
                    "programme_id": PROGRAMME.id,
                    "session_key": "samling-1",
                    "meeting_id": held,
                    "present": True,
                    "recorded_by": "bulk",
                }
                for sid in seats[::2]
            ],
        )


def test_the_mentor_and_participant_pages_cost_the_same_statements_for_10_and_1000(app, client, driver, world):
    counts: dict[str, list[int]] = {"mentor": [], "participant": []}
    users = {"mentor": "mentor", "participant": "deltaker"}
    for size in (10, 1000):
        _grow_group(app, world["a"], size)
        for user in counts:
            token = _launch(driver, users[user])
            with _statements(app) as seen:
                resp = _post(client, f"/app/{user}", token)
            assert resp.status_code == 200
            counts[user].append(len(seen))
        if size == 1000:
            assert resp.get_data(as_text=True).count("<tr>") >= 4  # the participant page still renders
    assert counts["mentor"][0] == counts["mentor"][1], counts
    assert counts["participant"][0] == counts["participant"][1], counts


def test_update_now_requests_one_sync_and_its_state_can_be_followed(client, driver, world, db_session) -> None:
    from kurspakke.outbox.models import OutboxStep

    token = _launch(driver, "mentor")
    first = _post(client, "/app/progress/sync", token)
    again = _post(client, "/app/progress/sync", token)
    assert first.status_code == again.status_code == 200
    steps = db_session.scalars(select(OutboxStep).where(OutboxStep.kind == "progress.sync")).all()
    assert len(steps) == 1 and steps[0].payload["programme_id"] == PROGRAMME.id  # repeated presses collapse
    soup = BeautifulSoup(first.get_data(as_text=True), "html.parser")
    status_url = soup.find(id="sync")["data-status-url"]
    assert soup.find(id="sync-message")["role"] == "status"
    state = client.post(status_url, headers={"X-Launch-Token": token}, base_url=TOOL)
    assert state.status_code == 200 and state.get_json()["status"] == "pending"
    assert client.post("/app/progress/sync/999999", headers={"X-Launch-Token": token}, base_url=TOOL).status_code == 404
    # A participant cannot start syncs.
    participant = _launch(driver, "deltaker")
    assert _post(client, "/app/progress/sync", participant).status_code == 403
    assert len(db_session.scalars(select(OutboxStep).where(OutboxStep.kind == "progress.sync")).all()) == 1
