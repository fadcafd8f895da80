"""The progress pages (lti_tool/views/licence_admin_progress.py, lti_tool/views/owner_progress.py) through the Flask
client, on SQLite and PostgreSQL: who may see them, that the funnel and the tables show the data's numbers, the CSV
of DESIGN.md §6, and that a page of 1,000 participants costs the statements a page of 10 does.

Texts are asserted through the app's catalogue (``say``) or not at all (numbers, structure, statuses), so the tests
hold before and after the Bokmål translations of these pages are merged into it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bs4 import BeautifulSoup
from flask import g
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from kurspakke.db import transaction
from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.licences.models import OrderSource, Seat
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.meetings.models import Attendance
from kurspakke.models import CanvasInstance, Organisation, OrganisationKind, Person, ProgrammeRoleKind
from kurspakke.progress.models import ModuleCompletion
from kurspakke.services.magic_links import request_link
from kurspakke.services.people import get_or_create_organisation, get_or_create_person, grant_role
from lti_tool.i18n import gettext
from tests.conftest import SECRET, TOOL
from tests.support.factories import link_sim_course, person_for, sim_instance
from tests.support.lti import launch_token, open_page

PROGRAMME = "lindrende-behandling"
ADMIN = "kari.koordinator@oslo.kommune.no"
SAME_ORIGIN = {"Origin": TOOL, "Sec-Fetch-Site": "same-origin"}
UTF8_BOM = b"\xef\xbb\xbf"
CSV_HEADER = (
    "navn;e-post;organisasjon;arbeidssted;gruppe;emne-1;emne-2;emne-3;emne-4;"
    "intro;samling-1;samling-2;samling-3;samling-4;kursbevis"
)
REQUIRED_SESSIONS = ("intro", "samling-1", "samling-2", "samling-3", "samling-4")
NOW = datetime.now(UTC)


# --- data ---------------------------------------------------------------------------------------------------------


def factory(app):
    return app.extensions["kurspakke"].session_factory


def programme_of(app):
    return app.extensions["kurspakke"].programmes[PROGRAMME]


def say(app, message: str, **params: Any) -> str:
    """The text the pages show for ``message`` (Bokmål when the catalogue has it)."""
    with app.test_request_context("/"):
        g.locale = "nb"
        return gettext(message, **params)


def organisation_with_pool(s: Session, app, name: str, orgnr: str, seats: int) -> Organisation:
    org = get_or_create_organisation(s, name=name, orgnr=orgnr)
    order = create_order(
        s, organisation=org, programme=programme_of(app), quantity=seats, source=OrderSource.MANUAL, actor="test"
    )
    confirm_order(s, order, actor="test")
    return org


@dataclass(frozen=True)
class Expected:
    """What the pages must show for ``populate(n)`` (n a multiple of 10): the pattern repeats every 10 people."""

    n: int

    @property
    def funnel(self) -> dict[str, int]:
        k = self.n // 10
        return {
            "assigned": 10 * k,
            "started": 7 * k,
            "emne-1": 6 * k,
            "emne-2": 4 * k,
            "emne-3": 3 * k,
            "emne-4": 2 * k,
            "complete": 1 * k,
        }

    @property
    def behind(self) -> int:
        return 2 * self.n // 10


def populate(s: Session, org: Organisation, n: int, prefix: str) -> None:
    """n participants inserted in bulk (not through assign_person: 1,000 must be quick). By i % 10: 0 completes
    everything (four modules and the five required sessions); 1 has four modules, 2 three, 3 two, 4 and 5 one; 6
    attended the introduction only; 7 and 8 got their licence ten weeks ago and did nothing (behind: two modules
    expected); 9 did nothing. Group A holds 0–4 (sykehjem and hjemmetjeneste: mixed) with a mentor; group B is
    empty."""
    people = [Person(name=f"{prefix} {i:04d}", email=f"{prefix.lower()}-{i}@{org.orgnr}.example.no") for i in range(n)]
    s.add_all(people)
    s.flush()
    seats = [
        Seat(
            organisation_id=org.id,
            programme_id=PROGRAMME,
            person_id=p.id,
            workplace="sykehjem" if i % 2 == 0 else "hjemmetjeneste",
            assigned_at=NOW - timedelta(weeks=10) if i % 10 in (7, 8) else NOW - timedelta(days=1),
            valid_until=NOW + timedelta(days=365),
        )
        for i, p in enumerate(people)
    ]
    s.add_all(seats)
    s.flush()
    modules_done = {0: 4, 1: 4, 2: 3, 3: 2, 4: 1, 5: 1}
    rows: list[Any] = []
    for i, (person, seat) in enumerate(zip(people, seats, strict=True)):
        done = modules_done.get(i % 10, 0)
        rows += [
            ModuleCompletion(
                person_id=person.id,
                programme_id=PROGRAMME,
                module_id=f"emne-{m}",
                completed_at=NOW - timedelta(days=m),
            )
            for m in range(1, done + 1)
        ]
        sessions = REQUIRED_SESSIONS if i % 10 == 0 else ("intro",) if i % 10 == 6 else ()
        rows += [
            Attendance(seat_id=seat.id, programme_id=PROGRAMME, session_key=key, present=True, recorded_by="test")
            for key in sessions
        ]
    mentor = Person(name=f"{prefix} Mentor", email=f"{prefix.lower()}-mentor@{org.orgnr}.example.no")
    group_a = MentorGroup(organisation_id=org.id, programme_id=PROGRAMME, name=f"{prefix} gruppe A")
    group_b = MentorGroup(organisation_id=org.id, programme_id=PROGRAMME, name=f"{prefix} gruppe B")
    s.add_all([*rows, mentor, group_a, group_b])
    s.flush()
    s.add(GroupMentor(group_id=group_a.id, person_id=mentor.id))
    s.add_all(GroupMember(group_id=group_a.id, seat_id=seat.id) for i, seat in enumerate(seats) if i % 10 < 5)
    s.flush()


@contextmanager
def statements(app) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs inside the block."""
    seen: list[str] = []
    engine = app.extensions["kurspakke"].engine

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def soup_of(resp) -> BeautifulSoup:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def text_of(resp) -> str:
    return " ".join(soup_of(resp).get_text(" ").split())


def funnel_of(resp) -> dict[str, int]:
    """The funnel's numbers as the data table shows them; asserts the chart's bars say the same."""
    soup = soup_of(resp)
    table = {tr["data-step"]: int(tr.td["data-count"]) for tr in soup.select("#funnel-data tbody tr")}
    svg = soup.select_one("svg.funnel-chart")
    assert svg is not None
    bars = {group["data-step"]: int(group.select_one("text[data-count]")["data-count"]) for group in svg.select("g")}
    assert bars == table
    return table


def counts_of(resp) -> dict[str, int]:
    return {dd["data-count"]: int(dd.get_text()) for dd in soup_of(resp).select("dl.counts dd")}


def assert_chart_is_accessible(resp) -> None:
    soup = soup_of(resp)
    svg = soup.select_one("svg.funnel-chart")
    assert svg["role"] == "img"
    labelled = svg["aria-labelledby"].split()
    assert [soup.find(id=i).name for i in labelled] == ["title", "desc"]
    desc = soup.find(id=labelled[1]).get_text()
    for step in soup.select("#funnel-data tbody tr"):
        assert f": {step.td.get_text()} (" in desc  # the description reads every number
    # Every bar carries its label and its number as text, not only a length and a colour.
    for group in svg.select("g[data-step]"):
        texts = group.select("text")
        assert len(texts) == 2 and all(t.get_text().strip() for t in texts)
        assert group.rect is not None


# --- the licence administrator ------------------------------------------------------------------------------------


class AdminWorld:
    """Oslo (20 participants, Kari administers it), Bergen (10, Berit administers it)."""

    def __init__(self, app) -> None:
        with transaction(factory(app)) as s:
            oslo = organisation_with_pool(s, app, "Oslo kommune", "958935420", 20)
            bergen = organisation_with_pool(s, app, "Bergen kommune", "964338531", 10)
            populate(s, oslo, 20, "Oslo")
            populate(s, bergen, 10, "Bergen")
            kari = get_or_create_person(s, name="Kari Koordinator", email=ADMIN)
            grant_role(s, kari, programme_id=PROGRAMME, organisation=oslo, role=ProgrammeRoleKind.LICENCE_ADMIN)
            berit = get_or_create_person(s, name="Berit Bergen", email="berit@bergen.kommune.no")
            grant_role(s, berit, programme_id=PROGRAMME, organisation=bergen, role=ProgrammeRoleKind.LICENCE_ADMIN)
            # A revoked seat is no one's progress.
            gone = Person(name="Oslo Revokert", email="revokert@oslo.kommune.no")
            s.add(gone)
            s.flush()
            s.add(
                Seat(
                    organisation_id=oslo.id,
                    programme_id=PROGRAMME,
                    person_id=gone.id,
                    valid_until=NOW + timedelta(days=365),
                    revoked_at=NOW,
                )
            )
            self.oslo, self.bergen = oslo.id, bergen.id

    def path(self, tail: str = "progress", org: int | None = None) -> str:
        return f"/admin/{org or self.oslo}/{PROGRAMME}/{tail}"


def sign_in(client, app, email: str = ADMIN, **headers: str) -> str:
    with transaction(factory(app)) as s:
        found = request_link(s, email, secret_key=SECRET)
    assert found is not None
    home = client.post(f"/signin/link/{found[1]}", headers={**SAME_ORIGIN, **headers}, base_url=TOOL)
    assert home.status_code == 200, text_of(home)
    return launch_token(home.get_data(as_text=True))


@pytest.fixture
def admin_world(app) -> AdminWorld:
    return AdminWorld(app)


def test_the_administrators_page_shows_the_organisations_numbers(client, app, admin_world):
    token = sign_in(client, app)
    resp = open_page(client, admin_world.path(), token)
    assert resp.status_code == 200, text_of(resp)
    expected = Expected(20)
    assert funnel_of(resp) == expected.funnel
    assert counts_of(resp) == {
        "assigned": 20,
        "started": expected.funnel["started"],
        "complete": expected.funnel["complete"],
        "behind": expected.behind,
        "certified": 0,  # the world's participants hold no certificates (evaluation is the worker's)
    }
    assert_chart_is_accessible(resp)
    soup = soup_of(resp)
    assert soup.h1.get_text() == say(app, "Progress")
    # Groups and their mentors.
    groups = {
        tr.th.get_text(): [td.get_text(" ", strip=True) for td in tr.find_all("td")]
        for tr in soup.select("#groups tbody tr")
    }
    assert groups == {
        "Oslo gruppe A": ["Oslo Mentor", "10", say(app, "Mixed: the mentor is reminded of confidentiality")],
        "Oslo gruppe B": [say(app, "No mentor yet"), "0", "–"],
    }
    # Behind schedule: who, where, which group, modules done of those expected.
    behind = {
        tr.th.get_text(): [td.get_text(" ", strip=True) for td in tr.find_all("td")]
        for tr in soup.select("#behind tbody tr")
    }
    assert sorted(behind) == ["Oslo 0007", "Oslo 0008", "Oslo 0017", "Oslo 0018"]
    assert behind["Oslo 0007"] == [
        "hjemmetjeneste",
        say(app, "No group"),
        say(app, "%(done)s of %(total)s", done=0, total=4),
        "2",
    ]
    assert behind["Oslo 0008"][0] == "sykehjem"
    # None of Bergen's people, and not the revoked seat.
    page = resp.get_data(as_text=True)
    assert "Bergen" not in page and "Revokert" not in page


def test_the_navigation_links_the_progress_page_and_the_groups_page_when_it_is_there(client, app, admin_world):
    token = sign_in(client, app)
    soup = soup_of(open_page(client, admin_world.path(""), token))
    links = {a["href"]: a for a in soup.select("nav a[data-app-link]")}
    assert links[admin_world.path()].get_text() == say(app, "Progress")
    groups = admin_world.path("groups")
    assert (groups in links) == ("licence_admin.groups" in app.view_functions)
    current = soup_of(open_page(client, admin_world.path(), token)).select_one("nav a[aria-current=page]")
    assert current["href"] == admin_world.path()


def test_english_pages_say_it_in_english(client, app, admin_world):
    token = sign_in(client, app, **{"Accept-Language": "en-GB"})
    resp = open_page(client, admin_world.path(), token)
    soup = soup_of(resp)
    assert soup.h1.get_text() == "Progress"
    assert [tr.th.contents[0] for tr in soup.select("#funnel-data tbody tr")] == [
        "Assigned",
        "Started",
        "Module 1",
        "Module 2",
        "Module 3",
        "Module 4",
        "Completed",
    ]
    assert soup.select_one("svg.funnel-chart title").get_text() == "Completion funnel"
    assert "70%" in soup.select_one("#funnel-data tr[data-step=started]").get_text()


@pytest.mark.parametrize("tail", ["progress", "progress.csv"])
def test_an_administrator_of_another_organisation_is_refused_and_sees_no_one(client, app, admin_world, tail):
    token = sign_in(client, app, email="berit@bergen.kommune.no")
    resp = open_page(client, admin_world.path(tail), token)
    assert resp.status_code == 403
    body = resp.get_data(as_text=True)
    assert "Oslo 00" not in body and "Oslo kommune" not in body and "navn;e-post" not in body
    # Her own organisation's page shows hers only.
    own = open_page(client, admin_world.path("progress", org=admin_world.bergen), token)
    assert own.status_code == 200
    assert funnel_of(own) == Expected(10).funnel
    assert "Oslo" not in own.get_data(as_text=True)


def test_without_a_session_there_is_nothing(client, admin_world):
    assert client.post(admin_world.path(), data={"lt": "forged"}, base_url=TOOL).status_code == 401
    reload = client.get(admin_world.path(), base_url=TOOL)  # a reload without the token: the resume page
    assert "Oslo 00" not in reload.get_data(as_text=True)


def test_the_administrators_csv_is_the_organisations_progress_matrix(client, app, admin_world):
    token = sign_in(client, app)
    resp = client.post(admin_world.path("progress.csv"), data={"lt": token}, base_url=TOOL)
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and PROGRAMME in disposition and "958935420" in disposition
    body = resp.get_data()
    assert body.startswith(UTF8_BOM)
    lines = body[len(UTF8_BOM) :].decode("utf-8").split("\r\n")
    assert lines[0] == CSV_HEADER
    rows = [line.split(";") for line in lines[1:] if line]
    assert len(rows) == 20
    assert {row[2] for row in rows} == {"Oslo kommune"}
    first = rows[0]  # Oslo 0000: everything done
    assert first[:5] == ["Oslo 0000", "oslo-0@958935420.example.no", "Oslo kommune", "sykehjem", "Oslo gruppe A"]
    assert all(first[5:9]) and first[9:14] == ["møtt"] * 5


def test_the_administrators_page_costs_the_same_statements_for_10_and_1000_people(client, app):
    with transaction(factory(app)) as s:
        small = organisation_with_pool(s, app, "Liten kommune", "958935420", 10)
        big = organisation_with_pool(s, app, "Stor kommune", "964338531", 1000)
        populate(s, small, 10, "Liten")
        populate(s, big, 1000, "Stor")
        kari = get_or_create_person(s, name="Kari Koordinator", email=ADMIN)
        for org in (small, big):
            grant_role(s, kari, programme_id=PROGRAMME, organisation=org, role=ProgrammeRoleKind.LICENCE_ADMIN)
        ids = small.id, big.id
    token = sign_in(client, app)
    seen: list[int] = []
    for org_id, n in zip(ids, (10, 1000), strict=True):
        open_page(client, f"/admin/{org_id}/{PROGRAMME}/progress", token)  # warm: first-request caches
        with statements(app) as run:
            resp = open_page(client, f"/admin/{org_id}/{PROGRAMME}/progress", token)
        assert resp.status_code == 200
        assert funnel_of(resp) == Expected(n).funnel
        assert len(soup_of(resp).select("#behind tbody tr")) == Expected(n).behind
        seen.append(len(run))
    assert 0 < seen[0] == seen[1], seen


# --- the course owner ---------------------------------------------------------------------------------------------


@pytest.fixture
def seller(app, sim) -> None:
    """The programme linked on the simulator's Canvas, which the seller registered for provisioning."""
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
        s.add(
            CanvasInstance(
                api_url=sim.config.base_url, account_id=1, token_encrypted=b"x", platform_instance=sim_instance(sim)
            )
        )


@pytest.fixture
def owner(driver, seller) -> str:
    """A launch token of the course owner (Teacher) on the seller's Canvas."""
    resp = driver.launch("kurseier")
    assert resp.status_code == 200
    return launch_token(resp.get_data(as_text=True))


class OwnerWorld:
    """Oslo kommune (20), Bergen kommune (10), Sykehuset Innlandet (a health trust, 10)."""

    def __init__(self, app) -> None:
        with transaction(factory(app)) as s:
            oslo = organisation_with_pool(s, app, "Oslo kommune", "958935420", 20)
            bergen = organisation_with_pool(s, app, "Bergen kommune", "964338531", 10)
            trust = organisation_with_pool(s, app, "Sykehuset Innlandet HF", "983971768", 10)
            oslo.kind = bergen.kind = OrganisationKind.KOMMUNE
            trust.kind = OrganisationKind.HELSEFORETAK
            populate(s, oslo, 20, "Oslo")
            populate(s, bergen, 10, "Bergen")
            populate(s, trust, 10, "Innlandet")
            self.ids = {"oslo": oslo.id, "bergen": bergen.id, "trust": trust.id}


def table_of(resp) -> dict[str, dict[str, int]]:
    """The per-organisation table: organisation name → step → number."""
    return {
        tr.th.a.get_text(): {td["data-step"]: int(td.get_text()) for td in tr.select("td[data-step]")}
        for tr in soup_of(resp).select("#organisation-progress tbody tr")
    }


def row(n: int) -> dict[str, int]:
    expected = Expected(n)
    return {**expected.funnel, "behind": expected.behind}


def post(client, path: str, token: str, **form: str):
    return client.post(path, data={"lt": token, **form}, base_url=TOOL)


def test_the_owner_sees_every_organisation_and_the_funnel_across_them(client, app, owner):
    OwnerWorld(app)
    resp = open_page(client, "/owner/progress", owner)
    assert resp.status_code == 200, text_of(resp)
    assert funnel_of(resp) == Expected(40).funnel
    assert_chart_is_accessible(resp)
    assert table_of(resp) == {"Bergen kommune": row(10), "Oslo kommune": row(20), "Sykehuset Innlandet HF": row(10)}
    assert counts_of(resp)["organisations"] == 3
    # The owner's landing page links here, beside the other business pages.
    landing = open_page(client, "/app/owner", owner)
    assert "/owner/progress" in {a["href"] for a in soup_of(landing).select("a[data-app-link]")}


def test_the_owner_filters_by_name_and_by_kind(client, app, owner):
    OwnerWorld(app)
    by_name = post(client, "/owner/progress", owner, q="  bergen ")
    assert list(table_of(by_name)) == ["Bergen kommune"]
    assert funnel_of(by_name) == Expected(10).funnel
    assert soup_of(by_name).select_one("#progress-q")["value"] == "bergen"
    by_kind = post(client, "/owner/progress", owner, kind="helseforetak")
    assert list(table_of(by_kind)) == ["Sykehuset Innlandet HF"]
    assert soup_of(by_kind).select_one("#progress-kind option[selected]")["value"] == "helseforetak"
    both = post(client, "/owner/progress", owner, q="kommune", kind="kommune")
    assert list(table_of(both)) == ["Bergen kommune", "Oslo kommune"]
    assert funnel_of(both) == Expected(30).funnel
    by_orgnr = post(client, "/owner/progress", owner, q="958935420")
    assert list(table_of(by_orgnr)) == ["Oslo kommune"]
    nothing = post(client, "/owner/progress", owner, q="Tromsø")
    assert nothing.status_code == 200 and table_of(nothing) == {}
    assert say(app, "No organisation matches the filter.") in text_of(nothing)
    unknown_kind = post(client, "/owner/progress", owner, kind="<script>")
    assert len(table_of(unknown_kind)) == 3  # an unknown kind is no filter


def test_the_owners_csv_of_the_programme_and_of_one_organisation(client, app, owner):
    world = OwnerWorld(app)
    everyone = post(client, "/owner/progress.csv", owner)
    assert everyone.status_code == 200 and everyone.mimetype == "text/csv"
    assert "attachment;" in everyone.headers["Content-Disposition"]
    assert PROGRAMME in everyone.headers["Content-Disposition"]
    body = everyone.get_data()
    assert body.startswith(UTF8_BOM)
    lines = [line for line in body[len(UTF8_BOM) :].decode("utf-8").split("\r\n") if line]
    assert lines[0] == CSV_HEADER and len(lines) == 1 + 40
    # Ordered by organisation, then name.
    assert [line.split(";")[2] for line in lines[1:]] == ["Bergen kommune"] * 10 + ["Oslo kommune"] * 20 + [
        "Sykehuset Innlandet HF"
    ] * 10

    one = post(client, "/owner/progress.csv", owner, organisation=str(world.ids["trust"]))
    assert one.status_code == 200
    assert "983971768" in one.headers["Content-Disposition"]
    lines = [line for line in one.get_data()[len(UTF8_BOM) :].decode("utf-8").split("\r\n") if line]
    assert lines[0] == CSV_HEADER and {line.split(";")[2] for line in lines[1:]} == {"Sykehuset Innlandet HF"}

    for bad in ("999999", "abc"):
        refused = post(client, "/owner/progress.csv", owner, organisation=bad)
        assert refused.status_code == 404
        from lti_tool.views.owner_pages import REFUSAL_MESSAGES

        assert say(app, REFUSAL_MESSAGES["organisation_not_found"]) in text_of(refused)


def test_an_organisation_with_seats_but_no_pool_is_still_a_row(client, app, owner):
    """Seats come from a pool, but the table must add up to the funnel even for data that came another way."""
    with transaction(factory(app)) as s:
        populate(s, get_or_create_organisation(s, name="Uten pulje", orgnr="958935420"), 10, "Uten")
    resp = open_page(client, "/owner/progress", owner)
    assert table_of(resp) == {"Uten pulje": row(10)}
    assert funnel_of(resp) == Expected(10).funnel


def test_someone_who_is_not_a_course_owner_is_refused(client, app, driver, seller, sim):
    OwnerWorld(app)
    with transaction(factory(app)) as s:
        person_for(s, sim, "lisensadministrator", ProgrammeRoleKind.LICENCE_ADMIN)
    token = launch_token(driver.launch("lisensadministrator").get_data(as_text=True))
    for path in ("/owner/progress", "/owner/progress.csv"):
        resp = open_page(client, path, token)
        assert resp.status_code == 403, path
        assert "Oslo 00" not in resp.get_data(as_text=True)


def test_an_instructor_on_another_registered_canvas_sees_none_of_it(client, app, driver, sim, seller):
    from tests.functional.lti_tool.test_identity_takeover import (
        become_another_institution,
        link_own_course_as_owner,
    )

    OwnerWorld(app)
    become_another_institution(app, sim)
    link_own_course_as_owner(driver, client, sim)
    landing = driver.launch("kurseier")
    assert "/owner/progress" not in landing.get_data(as_text=True)
    token = launch_token(landing.get_data(as_text=True))
    for path in ("/owner/progress", "/owner/progress.csv"):
        resp = open_page(client, path, token)
        assert resp.status_code == 403, path
        assert "Oslo 00" not in resp.get_data(as_text=True) and "navn;e-post" not in resp.get_data(as_text=True)


def test_the_owners_page_costs_the_same_statements_for_10_and_1000_people(client, app, owner):
    seen: list[int] = []
    for name, orgnr, n, total in (("Liten kommune", "958935420", 10, 10), ("Stor kommune", "964338531", 1000, 1010)):
        with transaction(factory(app)) as s:
            populate(s, organisation_with_pool(s, app, name, orgnr, n), n, name.split()[0])
        open_page(client, "/owner/progress", owner)  # warm: first-request caches
        with statements(app) as run:
            resp = open_page(client, "/owner/progress", owner)
        assert resp.status_code == 200
        assert funnel_of(resp) == Expected(total).funnel
        seen.append(len(run))
    assert 0 < seen[0] == seen[1], seen


def test_the_owner_can_ask_for_a_progress_sync_now(client, app, owner):
    from kurspakke.outbox.models import OutboxStep

    OwnerWorld(app)
    page = open_page(client, "/owner/progress", owner)
    form = soup_of(page).find("form", attrs={"action": "/app/progress/sync"})
    assert form is not None and form.find("button")
    resp = post(client, "/app/progress/sync", owner)
    assert resp.status_code == 200
    with transaction(factory(app)) as s:
        steps = s.scalars(select(OutboxStep).where(OutboxStep.kind == "progress.sync")).all()
        assert [st.payload["programme_id"] for st in steps] == ["lindrende-behandling"]
