"""The licence administrator's mentor and group pages through the Flask client, on SQLite and PostgreSQL.

Signed in with an English browser, the pages speak English msgids, so the texts asserted here hold before and after
the Bokmål catalogue has them. Every refusal asserts its status, its message and that nothing was written; one
organisation's administrator never reaches another's groups or people."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.groups import services as groups
from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.licences.models import AuditEntry, OrderSource, Seat, SeatKind, SeatPool
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person, revoke_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.meetings.models import Attendance, Meeting
from kurspakke.models import Person, ProgrammeRole, ProgrammeRoleKind, utcnow
from kurspakke.outbox.models import OutboxStep
from kurspakke.services.magic_links import request_link
from kurspakke.services.people import get_or_create_organisation, get_or_create_person, grant_role
from lti_tool.views.licence_admin_groups import GROUP_MESSAGES
from tests.conftest import SECRET, TOOL
from tests.support.lti import launch_token, open_page

PROGRAMME = "lindrende-behandling"
ADMIN = "kari.koordinator@oslo.kommune.no"
SAME_ORIGIN = {"Origin": TOOL, "Sec-Fetch-Site": "same-origin"}
ROOT = Path(__file__).resolve().parents[3]


def soup_of(resp) -> BeautifulSoup:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def text_of(resp) -> str:
    return " ".join(soup_of(resp).get_text(" ").split())


def alert_of(resp) -> str:
    found = soup_of(resp).find(attrs={"role": "alert"})
    assert found is not None, text_of(resp)
    return " ".join(found.get_text(" ").split())


def status_of(resp) -> str:
    found = soup_of(resp).find(attrs={"role": "status"})
    assert found is not None, text_of(resp)
    return " ".join(found.get_text(" ").split())


class World:
    """Oslo (Kari administers it: 6 seats; Per and Anne from a sykehjem, Ola from hjemmetjenesten; Mona a mentor)
    and Bergen (Berit administers it; Bjørn a participant, Bodil a mentor, and the group "Bergen-gruppa")."""

    def __init__(self, app) -> None:
        self.factory = app.extensions["kurspakke"].session_factory
        programme = app.extensions["kurspakke"].programmes[PROGRAMME]
        with transaction(self.factory) as s:
            oslo = get_or_create_organisation(s, name="Oslo kommune", orgnr="958935420")
            bergen = get_or_create_organisation(s, name="Bergen kommune", orgnr="964338531")
            kari = get_or_create_person(s, name="Kari Koordinator", email=ADMIN)
            grant_role(s, kari, programme_id=PROGRAMME, organisation=oslo, role=ProgrammeRoleKind.LICENCE_ADMIN)
            berit = get_or_create_person(s, name="Berit Bergen", email="berit@bergen.kommune.no")
            grant_role(s, berit, programme_id=PROGRAMME, organisation=bergen, role=ProgrammeRoleKind.LICENCE_ADMIN)
            for org, quantity in ((oslo, 6), (bergen, 2)):
                order = create_order(
                    s, organisation=org, programme=programme, quantity=quantity, source=OrderSource.MANUAL, actor="t"
                )
                confirm_order(s, order, actor="t")

            def seat(org, name: str, email: str, workplace: str) -> int:
                return assign_person(s, org, programme, PersonInput(name, email, workplace), actor="t").id

            self.per = seat(oslo, "Per Pleier", "per@oslo.kommune.no", "sykehjem")
            self.anne = seat(oslo, "Anne Annesen", "anne@oslo.kommune.no", "Sykehjem")
            self.ola = seat(oslo, "Ola Olsen", "ola@oslo.kommune.no", "hjemmetjeneste")
            self.bjorn = seat(bergen, "Bjørn Bergen", "bjorn@bergen.kommune.no", "sykehjem")
            mona = appoint_mentor(s, oslo, programme, PersonInput("Mona Mentor", "mona@oslo.kommune.no"), actor="t")
            bodil = appoint_mentor(
                s, bergen, programme, PersonInput("Bodil Bergen", "bodil@bergen.kommune.no"), actor="t"
            )
            bergen_group = groups.create_group(s, bergen, PROGRAMME, "Bergen-gruppa", actor="t")
            groups.add_mentor(s, bergen_group, bodil.person, actor="t")
            groups.add_members(s, bergen_group, [s.get(Seat, self.bjorn)], actor="t")
            self.oslo, self.bergen, self.kari = oslo.id, bergen.id, kari.id
            self.mona, self.mona_seat, self.bodil = mona.person_id, mona.id, bodil.person_id
            self.per_person = s.get(Seat, self.per).person_id
            self.bergen_group = bergen_group.id

    def path(self, tail: str = "", org: int | None = None) -> str:
        return f"/admin/{org or self.oslo}/{PROGRAMME}/{tail}"

    def group(self, name: str = "Gruppe A") -> int:
        """An Oslo group made through the service (the pages' own creation is tested on its own)."""
        with transaction(self.factory) as s:
            from kurspakke.models import Organisation

            return groups.create_group(s, s.get(Organisation, self.oslo), PROGRAMME, name, actor="t").id

    def place(self, group_id: int, *seat_ids: int) -> None:
        with transaction(self.factory) as s:
            groups.add_members(s, s.get(MentorGroup, group_id), [s.get(Seat, i) for i in seat_ids], actor="t")


@pytest.fixture
def world(app) -> World:
    return World(app)


def sign_in(client, world: World, email: str = ADMIN, language: str = "en-GB") -> str:
    """The magic-link flow with a browser in ``language``; the session's pages speak it."""
    with transaction(world.factory) as s:
        found = request_link(s, email, secret_key=SECRET)
    assert found is not None
    headers = {**SAME_ORIGIN, "Accept-Language": language}
    home = client.post(f"/signin/link/{found[1]}", headers=headers, base_url=TOOL)
    assert home.status_code == 200, text_of(home)
    return launch_token(home.get_data(as_text=True))


@pytest.fixture
def token(client, world) -> str:
    return sign_in(client, world)


def post(client, path: str, token: str, **form: Any):
    return client.post(path, data={"lt": token, **form}, base_url=TOOL)


def counts(db_session) -> dict[str, int]:
    def n(model) -> int:
        return db_session.scalar(select(func.count()).select_from(model))

    return {
        "groups": n(MentorGroup),
        "mentors": n(GroupMentor),
        "members": n(GroupMember),
        "seats": n(Seat),
        "people": n(Person),
        "roles": n(ProgrammeRole),
        "audit": n(AuditEntry),
        "steps": n(OutboxStep),
        "meetings": n(Meeting),
    }


def memberships(db_session) -> dict[int, int]:
    """seat id -> group id, all organisations."""
    return {m.seat_id: m.group_id for m in db_session.scalars(select(GroupMember)).all()}


def assert_field_marked(resp, name: str) -> None:
    control = soup_of(resp).find(attrs={"name": name, "aria-invalid": "true"}) or soup_of(resp).find(
        id=f"f-{name}", attrs={"aria-invalid": "true"}
    )
    assert control is not None, f"{name} is not marked invalid"
    assert "form-error" in control["aria-describedby"]
    link = soup_of(resp).find(attrs={"role": "alert"}).find("a")
    assert link is not None and link["href"] == f"#{control['id']}"


# --- the messages -------------------------------------------------------------------------------------------------


def test_every_group_error_key_has_a_message():
    source = (ROOT / "kurspakke" / "groups" / "services.py").read_text(encoding="utf-8")
    keys = set(re.findall(r'GroupError\(\s*"([a-z_]+)"', source))
    keys |= set(re.findall(r'GroupError\("([a-z_]+)" if \w+ else "([a-z_]+)"\)', source)[0])
    assert {"group_name_missing", "group_not_empty", "group_has_attendance", "size_out_of_range"} <= keys
    assert keys <= set(GROUP_MESSAGES), keys - set(GROUP_MESSAGES)
    for message, status in GROUP_MESSAGES.values():
        assert message and status in (409, 422)


# --- who may open what --------------------------------------------------------------------------------------------


def test_the_pages_open_without_changing_anything(client, token, world, db_session):
    group_id = world.group()
    before = counts(db_session)
    for tail in ("groups", "mentors", f"groups/{group_id}"):
        resp = open_page(client, world.path(tail), token)
        assert resp.status_code == 200, tail
        assert soup_of(resp).body["data-canonical-url"] == world.path(tail).rstrip("/")
    assert counts(db_session) == before


def test_bokmaal_pages_open_with_the_same_structure(client, world):
    token = sign_in(client, world, language="nb-NO")
    group_id = world.group()
    page = open_page(client, world.path("groups"), token)
    assert page.status_code == 200
    soup = soup_of(page)
    assert soup.html["lang"] == "nb"
    assert [th.get_text(strip=True) for th in soup.tbody.find_all("th", scope="row")] == ["Gruppe A"]
    assert open_page(client, world.path(f"groups/{group_id}"), token).status_code == 200
    assert open_page(client, world.path("mentors"), token).status_code == 200


def test_another_organisations_groups_and_people_are_never_shown(client, token, world, db_session):
    group_id = world.group()
    world.place(group_id, world.per)
    for tail in ("groups", "mentors", f"groups/{group_id}"):
        page = text_of(open_page(client, world.path(tail), token))
        for other in ("Bergen-gruppa", "Bjørn", "Bodil", "bergen.kommune.no"):
            assert other not in page, (tail, other)
    # Bergen's pages: Kari does not administer Bergen.
    for tail in ("groups", "mentors", f"groups/{world.bergen_group}"):
        resp = open_page(client, world.path(tail, org=world.bergen), token)
        assert resp.status_code == 403, tail
        assert "Bergen-gruppa" not in text_of(resp) and "Bjørn" not in text_of(resp)


def test_a_group_of_another_organisation_is_not_found_and_nothing_is_written(client, token, world, db_session):
    own = world.group()
    world.place(own, world.per)
    before, placed = counts(db_session), memberships(db_session)
    bergen = f"groups/{world.bergen_group}"
    attempts = [
        {},
        {"action": "rename", "name": "Overtatt"},
        {"action": "delete"},
        {"action": "add_mentor", "mentor": str(world.mona)},
        {"action": "remove_mentor", "person": str(world.bodil)},
        {"action": "add_members", "seat": str(world.ola)},
        {"action": "remove_member", "seat": str(world.bjorn)},
    ]
    for form in attempts:
        resp = post(client, world.path(bergen), token, **form)
        assert resp.status_code == 404, form
        assert "The page was not found." in alert_of(resp)
        assert "Bergen-gruppa" not in text_of(resp)
        assert post(client, world.path(bergen, org=world.bergen), token, **form).status_code == 403
    # Moving Per from Oslo's group into Bergen's, and Bergen's participant into Oslo's group.
    move = post(
        client, world.path(f"groups/{own}"), token, action="move_member", seat=world.per, target=world.bergen_group
    )
    assert move.status_code == 404
    taken = post(client, world.path(f"groups/{own}"), token, action="add_members", seat=[world.ola, world.bjorn])
    assert taken.status_code == 404 and "Bjørn" not in text_of(taken)
    gone = post(client, world.path(f"groups/{own}"), token, action="remove_member", seat=world.bjorn)
    assert gone.status_code == 404
    assert counts(db_session) == before and memberships(db_session) == placed
    name = db_session.scalars(select(MentorGroup.name).where(MentorGroup.id == world.bergen_group)).one()
    assert name == "Bergen-gruppa"


def test_without_a_token_or_with_a_forged_one_nothing_is_done(client, token, world, db_session):
    before = counts(db_session)
    resume = client.get(world.path("groups"), base_url=TOOL)
    assert resume.status_code == 200 and soup_of(resume).body.has_attr("data-resume")
    create = {"action": "create", "name": "Snik"}
    assert client.post(world.path("groups"), data=create, base_url=TOOL).status_code == 401
    assert post(client, world.path("groups"), "forged.token", **create).status_code == 401
    # Another site's form cannot know the token; an address with it ends the session.
    assert client.get(world.path("groups") + f"?lt={token}", base_url=TOOL).status_code == 400
    assert post(client, world.path("groups"), token, **create).status_code == 401
    assert counts(db_session) == before


def test_a_removed_administrator_loses_the_group_pages_at_the_next_request(client, token, world, db_session):
    assert open_page(client, world.path("groups"), token).status_code == 200
    with transaction(world.factory) as s:
        s.execute(ProgrammeRole.__table__.delete().where(ProgrammeRole.person_id == world.kari))
    before = counts(db_session)
    assert post(client, world.path("groups"), token, action="create", name="Sent").status_code == 403
    assert counts(db_session) == before


# --- mentors ------------------------------------------------------------------------------------------------------


def test_appointing_a_mentor_writes_the_seat_the_role_the_step_and_the_audit(client, token, world, db_session):
    pool_before = db_session.scalars(select(SeatPool).where(SeatPool.organisation_id == world.oslo)).one().assigned
    resp = post(
        client,
        world.path("mentors"),
        token,
        action="appoint",
        name=" Mette  Mentor ",
        email="Mette@Oslo.Kommune.no",
        workplace="hjemmetjeneste",
    )
    assert resp.status_code == 200, text_of(resp)
    assert status_of(resp) == "Mette Mentor is now a mentor. The Canvas enrolment is on its way."
    seat = db_session.scalars(select(Seat).join(Person).where(Person.email == "mette@oslo.kommune.no")).one()
    assert (seat.kind, seat.counted, seat.organisation_id, seat.workplace) == (
        SeatKind.MENTOR,
        False,  # the programme's mentor_uses_seat is false: no paid seat
        world.oslo,
        "hjemmetjeneste",
    )
    role = db_session.scalars(select(ProgrammeRole).where(ProgrammeRole.person_id == seat.person_id)).one()
    assert (role.role, role.organisation_id) == (ProgrammeRoleKind.MENTOR, world.oslo)
    assert db_session.scalars(select(OutboxStep).where(OutboxStep.subject == f"seat:{seat.id}")).one()
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.entity_id == str(seat.id))).one()
    assert entry.action == "seat.assign" and entry.actor == f"licence_admin:{world.kari}:{ADMIN}"
    assert db_session.scalars(select(SeatPool).where(SeatPool.organisation_id == world.oslo)).one().assigned == (
        pool_before
    )
    rows = {
        tr.th.get_text(strip=True): [td.get_text(strip=True) for td in tr.find_all("td")]
        for tr in soup_of(resp).tbody.find_all("tr")
    }
    assert rows == {
        "Mette Mentor": ["mette@oslo.kommune.no", "hjemmetjeneste", "waiting", "no group yet"],
        "Mona Mentor": ["mona@oslo.kommune.no", "–", "waiting", "no group yet"],
    }
    assert soup_of(resp).find("input", attrs={"name": "name"}).get("value", "") == ""  # the form is emptied


@pytest.mark.parametrize(
    ("form", "status", "message", "field"),
    [
        (
            {"name": "Mette", "email": "ikke-en-adresse"},
            422,
            "“ikke-en-adresse” is not a valid e-mail address.",
            "email",
        ),
        ({"name": " ", "email": "mette@oslo.kommune.no"}, 422, "Enter the person's name.", "name"),
        (
            {"name": "Per", "email": "per@oslo.kommune.no"},
            409,
            "This person already holds a licence of the organisation in this programme.",
            "email",
        ),
    ],
)
def test_a_refused_appointment_says_why_and_writes_nothing(
    client, token, world, db_session, form, status, message, field
):
    before = counts(db_session)
    resp = post(client, world.path("mentors"), token, action="appoint", **form)
    assert resp.status_code == status
    assert message in alert_of(resp)
    assert_field_marked(resp, field)
    assert soup_of(resp).find("input", attrs={"name": field})["value"] == form[field]
    assert counts(db_session) == before


# --- groups: create and distribute --------------------------------------------------------------------------------


def test_creating_a_group(client, token, world, db_session):
    resp = post(client, world.path("groups"), token, action="create", name="  Gruppe   Nord ")
    assert resp.status_code == 200, text_of(resp)
    assert status_of(resp) == "The group Gruppe Nord is created."
    group = db_session.scalars(select(MentorGroup).where(MentorGroup.organisation_id == world.oslo)).one()
    assert (group.name, group.programme_id) == ("Gruppe Nord", PROGRAMME)
    entry = db_session.scalars(
        select(AuditEntry).where(AuditEntry.entity_type == "group", AuditEntry.entity_id == str(group.id))
    ).one()
    assert entry.action == "group.create" and entry.actor == f"licence_admin:{world.kari}:{ADMIN}"
    assert db_session.scalars(select(OutboxStep).where(OutboxStep.subject == f"group:{group.id}")).one()
    link = soup_of(resp).find("a", string="Open the group Gruppe Nord")
    assert link["href"] == world.path(f"groups/{group.id}") and link.has_attr("data-app-link")
    row = soup_of(resp).find("tr", attrs={"data-group": str(group.id)})
    assert [c.get_text(strip=True) for c in row.find_all(["th", "td"])] == ["Gruppe Nord", "no mentor yet", "0", "–"]
    # Another organisation may use the same name.
    assert post(client, world.path("groups"), token, action="create", name="Bergen-gruppa").status_code == 200


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("gruppe a", 409, "The organisation already has a group called “gruppe a”. Choose another name."),
        ("   ", 422, "Enter the group's name."),
        ("x" * 256, 422, "The group's name is too long (at most 255 characters)."),
    ],
)
def test_a_refused_group_name_says_why_and_writes_nothing(client, token, world, db_session, name, status, message):
    world.group("Gruppe A")
    before = counts(db_session)
    resp = post(client, world.path("groups"), token, action="create", name=name)
    assert resp.status_code == status
    assert message in alert_of(resp)
    assert_field_marked(resp, "name")
    assert counts(db_session) == before


def test_distributing_automatically_keeps_workplaces_together(client, token, world, db_session):
    page = soup_of(open_page(client, world.path("groups"), token))
    size = page.find("input", attrs={"name": "size"})
    assert (size["type"], size["min"], size["max"], size["value"]) == ("number", "1", "50", "8")
    assert page.find("label", attrs={"for": size["id"]}) is not None
    assert "3 participants have no group." in " ".join(page.get_text(" ").split())

    buttons = {b["value"] for b in size.find_parent("form").find_all("button", attrs={"name": "action"})}
    assert buttons == {"preview", "distribute"}

    # The preview shows what distributing would do and writes nothing (not even an audit row or a Canvas step).
    before = counts(db_session)
    preview = post(client, world.path("groups"), token, action="preview", size="2")
    assert preview.status_code == 200, text_of(preview)
    assert status_of(preview) == "A preview: nothing is changed until you distribute."
    planned = [
        [c.get_text(strip=True) for c in tr.find_all(["th", "td"])]
        for tr in soup_of(preview).find("table", id="preview").find_all("tr", attrs={"data-planned": True})
    ]
    assert planned == [
        ["Gruppe 1", "new group", "Anne Annesen, Per Pleier"],
        ["Gruppe 2", "new group", "Ola Olsen"],
    ]
    assert counts(db_session) == before
    assert soup_of(preview).find("input", attrs={"name": "size"})["value"] == "2"

    resp = post(client, world.path("groups"), token, action="distribute", size="2")
    assert resp.status_code == 200, text_of(resp)
    assert status_of(resp) == "The participants without a group are placed in: Gruppe 1, Gruppe 2."
    made = {
        g.name: g.id
        for g in db_session.scalars(select(MentorGroup).where(MentorGroup.organisation_id == world.oslo)).all()
    }
    assert set(made) == {"Gruppe 1", "Gruppe 2"}
    placed = memberships(db_session)
    assert placed[world.per] == placed[world.anne] != placed[world.ola]  # the sykehjem stays together
    assert placed[world.bjorn] == world.bergen_group  # Bergen's participant is not touched
    rows = soup_of(resp).tbody.find_all("tr")
    assert [r.find("td", attrs={"data-members": True}).get_text() for r in rows] == ["2", "1"]
    assert soup_of(resp).find(attrs={"data-mixed": True}) is None
    assert "Every participant is in a group." in text_of(resp)

    before = counts(db_session)
    again = post(client, world.path("groups"), token, action="distribute", size="2")
    assert again.status_code == 200 and status_of(again) == "Every participant is already in a group."
    assert counts(db_session) == before


@pytest.mark.parametrize("size", ["0", "51", "tre", "", "-1", "2.5"])
def test_a_group_size_out_of_range_is_refused_and_nothing_is_written(client, token, world, db_session, size):
    before = counts(db_session)
    for action in ("distribute", "preview"):
        resp = post(client, world.path("groups"), token, action=action, size=size)
        assert resp.status_code == 422
        assert "Choose a group size from 1 to 50." in alert_of(resp)
        assert_field_marked(resp, "size")
        assert soup_of(resp).find("input", attrs={"name": "size"})["value"] == size
        assert counts(db_session) == before


# --- one group: mentors ---------------------------------------------------------------------------------------------


def test_adding_and_removing_a_mentor(client, token, world, db_session):
    group_id = world.group()
    page = soup_of(open_page(client, world.path(f"groups/{group_id}"), token))
    choice = page.find("select", attrs={"name": "mentor"})
    assert page.find("label", attrs={"for": choice["id"]}).get_text(strip=True) == "Add a mentor to the group"
    options = {o["value"]: o.get_text() for o in choice.find_all("option") if o["value"]}
    assert options == {str(world.mona): "Mona Mentor (mona@oslo.kommune.no)"}  # Oslo's mentors only

    resp = post(client, world.path(f"groups/{group_id}"), token, action="add_mentor", mentor=str(world.mona))
    assert resp.status_code == 200, text_of(resp)
    assert status_of(resp) == "Mona Mentor is a mentor of the group."
    links = db_session.scalars(select(GroupMentor).where(GroupMentor.group_id == group_id)).all()
    assert [link.person_id for link in links] == [world.mona]
    actions = db_session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity_type == "group", AuditEntry.entity_id == str(group_id))
    ).all()
    assert "group.mentor_add" in actions
    assert soup_of(resp).find("tr", attrs={"data-mentor": str(world.mona)}) is not None
    assert soup_of(resp).find("select", attrs={"name": "mentor"}) is None  # no other mentor to choose
    listed = soup_of(open_page(client, world.path("groups"), token)).find("tr", attrs={"data-group": str(group_id)})
    assert "Mona Mentor" in listed.get_text()
    mentors_page = soup_of(open_page(client, world.path("mentors"), token))
    assert "Gruppe A" in mentors_page.find("tr", attrs={"data-mentor": str(world.mona)}).get_text()

    button = soup_of(resp).find("tr", attrs={"data-mentor": str(world.mona)}).find("button")
    assert " ".join(button.get_text(" ").split()) == "Remove (Mona Mentor)"  # the name for screen readers
    removed = post(client, world.path(f"groups/{group_id}"), token, action="remove_mentor", person=str(world.mona))
    assert removed.status_code == 200 and status_of(removed) == "Mona Mentor is no longer a mentor of the group."
    assert db_session.scalars(select(GroupMentor).where(GroupMentor.group_id == group_id)).all() == []

    before = counts(db_session)
    again = post(client, world.path(f"groups/{group_id}"), token, action="remove_mentor", person=str(world.mona))
    assert again.status_code == 409 and "That person is not a mentor of this group." in alert_of(again)
    assert counts(db_session) == before


@pytest.mark.parametrize(
    ("who", "status", "message"),
    [
        ("bodil", 422, "That person is not a mentor of the organisation. Appoint them as mentor first."),
        ("per_person", 422, "That person is not a mentor of the organisation. Appoint them as mentor first."),
        ("nobody", 422, "That person is not a mentor of the organisation. Appoint them as mentor first."),
        ("", 422, "Choose a mentor."),
    ],
)
def test_a_refused_mentor_says_why_and_writes_nothing(client, token, world, db_session, who, status, message):
    group_id = world.group()
    before = counts(db_session)
    chosen = {"bodil": str(world.bodil), "per_person": str(world.per_person), "nobody": "999999", "": ""}[who]
    resp = post(client, world.path(f"groups/{group_id}"), token, action="add_mentor", mentor=chosen)
    assert resp.status_code == status
    assert message in alert_of(resp)
    assert "Bodil" not in text_of(resp)  # another organisation's mentor is not named, not even in the refusal
    assert_field_marked(resp, "mentor")
    assert counts(db_session) == before


# --- one group: participants ----------------------------------------------------------------------------------------


def test_adding_moving_and_removing_participants(client, token, world, db_session):
    first, second = world.group("Gruppe A"), world.group("Gruppe B")
    page = soup_of(open_page(client, world.path(f"groups/{first}"), token))
    fieldset = page.find("fieldset", id="f-seats")
    assert fieldset.legend.get_text(strip=True) == "Participants without a group"
    boxes = fieldset.find_all("input", attrs={"type": "checkbox"})
    labels = {b["value"]: page.find("label", attrs={"for": b["id"]}).get_text(strip=True) for b in boxes}
    assert labels == {
        str(world.per): "Per Pleier (sykehjem)",
        str(world.anne): "Anne Annesen (Sykehjem)",
        str(world.ola): "Ola Olsen (hjemmetjeneste)",
    }

    resp = post(client, world.path(f"groups/{first}"), token, action="add_members", seat=[world.per, world.ola])
    assert resp.status_code == 200, text_of(resp)
    assert status_of(resp) == "2 participants are added to the group."
    placed = memberships(db_session)
    assert (placed[world.per], placed[world.ola]) == (first, first) and world.anne not in placed
    assert soup_of(resp).find("p", attrs={"data-mixed": True}) is not None  # sykehjem and hjemmetjeneste
    listed = soup_of(open_page(client, world.path("groups"), token)).find("tr", attrs={"data-group": str(first)})
    assert listed.find(attrs={"data-mixed": True}).get_text() == "mixed workplaces"
    assert listed.find("td", attrs={"data-members": True}).get_text() == "2"

    row = soup_of(resp).find("tr", attrs={"data-seat": str(world.per)})
    target = row.find("select", attrs={"name": "target"})
    assert row.find("label", attrs={"for": target["id"]}).get_text() == "Move Per Pleier to"
    assert [o["value"] for o in target.find_all("option")] == [str(second)]
    moved = post(client, world.path(f"groups/{first}"), token, action="move_member", seat=world.per, target=str(second))
    assert moved.status_code == 200 and status_of(moved) == "Per Pleier is moved to Gruppe B."
    assert memberships(db_session)[world.per] == second
    assert soup_of(moved).find("p", attrs={"data-mixed": True}) is None  # Ola alone now
    audit = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "group.member_move")).one()
    assert audit.entity_id == str(second)

    removed = post(client, world.path(f"groups/{first}"), token, action="remove_member", seat=world.ola)
    assert removed.status_code == 200 and status_of(removed) == "Ola Olsen is no longer in the group."
    assert world.ola not in memberships(db_session)

    before = counts(db_session)
    again = post(client, world.path(f"groups/{first}"), token, action="remove_member", seat=world.ola)
    assert again.status_code == 409 and "That participant is not in this group." in alert_of(again)
    assert counts(db_session) == before


def test_refused_participants_say_why_and_write_nothing(client, app, token, world, db_session):
    group_id = world.group()
    programme = app.extensions["kurspakke"].programmes[PROGRAMME]
    with transaction(world.factory) as s:
        revoke_person(s, s.get(Seat, world.anne), actor="t")
    before, placed = counts(db_session), memberships(db_session)
    path = world.path(f"groups/{group_id}")

    nothing = post(client, path, token, action="add_members")
    assert nothing.status_code == 422 and "Choose at least one participant." in alert_of(nothing)
    assert_field_marked(nothing, "seats")
    revoked = post(client, path, token, action="add_members", seat=[world.per, world.anne])
    assert revoked.status_code == 409 and "That participant's licence is revoked." in alert_of(revoked)
    mentor = post(client, path, token, action="add_members", seat=world.mona_seat)
    assert mentor.status_code == 422
    assert "Only participants can be placed in a group; mentors are added as mentors." in alert_of(mentor)
    unknown = post(client, path, token, action="add_members", seat="999999")
    assert unknown.status_code == 404
    elsewhere = post(client, path, token, action="move_member", seat=world.per, target=str(group_id))
    assert elsewhere.status_code == 409 and "That participant is not in this group." in alert_of(elsewhere)
    world.place(group_id, world.per)
    before, placed = counts(db_session), memberships(db_session)
    no_target = post(client, path, token, action="move_member", seat=world.per, target="")
    assert no_target.status_code == 422 and "Choose the group to move the participant to." in alert_of(no_target)
    assert counts(db_session) == before and memberships(db_session) == placed
    assert programme.mentor_uses_seat is False


# --- one group: rename and delete -----------------------------------------------------------------------------------


def test_renaming_a_group(client, token, world, db_session):
    first, _second = world.group("Gruppe A"), world.group("Gruppe B")
    path = world.path(f"groups/{first}")
    resp = post(client, path, token, action="rename", name="Gruppe Sør")
    assert resp.status_code == 200 and status_of(resp) == "The group's name is saved."
    assert soup_of(resp).h1.get_text() == "Gruppe Sør"
    assert db_session.scalars(select(MentorGroup.name).where(MentorGroup.id == first)).one() == "Gruppe Sør"
    assert db_session.scalars(select(AuditEntry).where(AuditEntry.action == "group.rename")).one()

    before = counts(db_session)
    for name, status, message in (
        ("GRUPPE B", 409, "The organisation already has a group called “GRUPPE B”."),
        ("", 422, "Enter the group's name."),
    ):
        bad = post(client, path, token, action="rename", name=name)
        assert bad.status_code == status and message in alert_of(bad)
        assert_field_marked(bad, "name")
        assert soup_of(bad).find("input", attrs={"name": "name"})["value"] == name  # what was typed stays
    assert counts(db_session) == before
    assert db_session.scalars(select(MentorGroup.name).where(MentorGroup.id == first)).one() == "Gruppe Sør"


def test_a_group_with_members_or_attendance_is_not_deleted(client, token, world, db_session):
    group_id = world.group()
    world.place(group_id, world.per)
    before = counts(db_session)
    page = soup_of(open_page(client, world.path(f"groups/{group_id}"), token))
    assert page.find("input", attrs={"name": "action", "value": "delete"}) is None  # no button while it has members
    full = post(client, world.path(f"groups/{group_id}"), token, action="delete")
    assert full.status_code == 409
    assert "The group still has participants (1). Move them to another group or remove them first." in alert_of(full)
    assert counts(db_session) == before

    # Emptied, but a session of the group has recorded attendance: what happened stays.
    with transaction(world.factory) as s:
        meeting = Meeting(
            programme_id=PROGRAMME,
            session_key="modul-1",
            group_id=group_id,
            organisation_id=world.oslo,
            starts_at=utcnow(),
            duration_minutes=90,
            format="physical",
            place="Rådhuset",
        )
        s.add(meeting)
        s.flush()
        s.add(
            Attendance(
                seat_id=world.per,
                programme_id=PROGRAMME,
                session_key="modul-1",
                meeting_id=meeting.id,
                present=True,
                recorded_by="t",
            )
        )
        groups.remove_member(s, s.get(MentorGroup, group_id), s.get(Seat, world.per), actor="t")
    before = counts(db_session)
    kept = post(client, world.path(f"groups/{group_id}"), token, action="delete")
    assert kept.status_code == 409
    assert "Attendance is recorded for the group's sessions, so the group cannot be deleted." in alert_of(kept)
    assert counts(db_session) == before


def test_deleting_an_empty_group(client, token, world, db_session):
    group_id = world.group()
    post(client, world.path(f"groups/{group_id}"), token, action="add_mentor", mentor=str(world.mona))
    resp = post(client, world.path(f"groups/{group_id}"), token, action="delete")
    assert resp.status_code == 200, text_of(resp)
    assert status_of(resp) == "The group Gruppe A is deleted."
    assert soup_of(resp).body["data-canonical-url"] == world.path("groups")  # a reload shows the list
    assert db_session.scalars(select(MentorGroup).where(MentorGroup.id == group_id)).all() == []
    assert db_session.scalars(select(GroupMentor).where(GroupMentor.group_id == group_id)).all() == []
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "group.delete")).one()
    assert entry.entity_id == str(group_id)
    assert open_page(client, world.path(f"groups/{group_id}"), token).status_code == 404
