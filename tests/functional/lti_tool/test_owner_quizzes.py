"""The course owner's quiz page (/owner/quizzes): each module mapped to a quiz of the linked course, chosen from the
quizzes the Canvas simulator's REST half lists (served over HTTP in a thread), on SQLite and PostgreSQL.

Messages are compared with the app's own catalogue (``say``), so the assertions hold before and after the Bokmål
translations of this page are merged into it; the rest is checked on the page's structure and the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from canvas_sim import SimPlatform
from canvas_sim.rest import CanvasRest, rest_of
from kurspakke.crypto import Encryptor
from kurspakke.db import transaction
from kurspakke.licences.models import AuditEntry
from kurspakke.models import CanvasInstance, CourseLink, ProgrammeRoleKind
from kurspakke.programmes import load_programmes
from kurspakke.progress.models import ProgressWatermark, QuizMapping
from lti_tool.views.owner_quizzes import KIND_CLASSIC, KIND_NEW, MESSAGES
from tests.functional.lti_tool.test_owner_pages import factory, say, text_of
from tests.support.canvas_live import TOKEN
from tests.support.factories import PROGRAMME, link_sim_course, person_for, sim_instance
from tests.support.lti import TOOL, launch_token, open_page

PATH = "/owner/quizzes"
ASSIGNMENTS = "GET /api/v1/courses/:course_id/assignments"
MODULES = [m.id for m in load_programmes()[PROGRAMME].modules]


@pytest.fixture
def app_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    """Canvas retried briefly, so the fault tests stay fast."""
    return {**app_settings, "retry_base_seconds": 0.01, "retry_max_tries": 2, "canvas_timeout_seconds": 5.0}


@pytest.fixture
def canvas_url(sim_app: Flask) -> Iterator[str]:
    """The simulator (its REST half included) served over HTTP, as the tool's Canvas client needs it."""
    server = make_server("127.0.0.1", 0, sim_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def rest(sim_app: Flask) -> CanvasRest:
    return rest_of(sim_app)


@pytest.fixture
def seller(app: Flask, sim: SimPlatform, canvas_url: str, encryptor: Encryptor) -> int:
    """The programme linked in the simulator's course, on a Canvas the seller registered (`kurspakke canvas add`)
    with a working API token. Returns the course link's id."""
    with transaction(factory(app)) as s:
        link = link_sim_course(s, sim)
        s.add(
            CanvasInstance(
                api_url=canvas_url,
                account_id=1,
                token_encrypted=encryptor.encrypt(TOKEN.encode()),
                platform_instance=sim_instance(sim),
            )
        )
        return link.id


@pytest.fixture
def owner(driver, seller: int) -> str:
    """A launch token of the course owner (Teacher) of the linked course."""
    resp = driver.launch("kurseier")
    assert resp.status_code == 200
    return launch_token(resp.get_data(as_text=True))


@pytest.fixture
def quizzes(rest: CanvasRest) -> dict[str, int]:
    """A Classic Quiz, a New Quiz, a plain assignment and an unpublished quiz in the course."""
    return {
        "classic": rest.add_assignment("Quiz emne 1", points_possible=10.0).id,
        "new": rest.add_assignment("Quiz emne 2 (ny)", kind="new_quiz", points_possible=7.5).id,
        "plain": rest.add_assignment("Refleksjonsnotat", kind="plain").id,
        "draft": rest.add_assignment("Utkast til quiz", published=False).id,
    }


def soup_of(resp) -> BeautifulSoup:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def map_quiz(client, token: str, module: str, assignment: int | str, **extra: str):
    data = {"lt": token, "action": "map", "module": module, "assignment": str(assignment), **extra}
    return client.post(PATH, data=data, base_url=TOOL)


def written(db_session) -> dict[str, Any]:
    """Everything the page may write."""
    return {
        "mappings": sorted(
            (m.course_link_id, m.module_id, m.assignment_id, m.assignment_name, m.points_possible, m.mapped_by)
            for m in db_session.scalars(select(QuizMapping))
        ),
        "audit": db_session.scalar(select(func.count()).select_from(AuditEntry)),
        "watermarks": db_session.scalar(select(func.count()).select_from(ProgressWatermark)),
    }


def options(soup: BeautifulSoup, module: str) -> dict[str, Any]:
    select_ = soup.select_one(f"section[data-module='{module}'] select[name=assignment]")
    assert select_ is not None, module
    return {str(o["value"]): o for o in select_.find_all("option") if o["value"]}


def course_shown(resp) -> str:
    """The id of the course link the page shows."""
    shown = soup_of(resp).select_one("#quiz-course-name")
    assert shown is not None
    return str(shown["data-course-link"])


def fact(soup: BeautifulSoup, module: str, field: str) -> str:
    dd = soup.select_one(f"section[data-module='{module}'] dd[data-field='{field}']")
    assert dd is not None, (module, field)
    return " ".join(dd.get_text(" ").split())


# --- what the page shows ----------------------------------------------------------------------------------------


def test_the_page_offers_only_the_courses_quizzes_for_each_module(app, client, owner, quizzes, rest):
    calls = rest.count(ASSIGNMENTS)
    resp = open_page(client, PATH, owner)
    assert resp.status_code == 200, text_of(resp)
    assert rest.count(ASSIGNMENTS) == calls + 1  # read live, once per page
    soup = soup_of(resp)
    assert soup.h1 is not None
    assert [s["data-module"] for s in soup.select("section[data-module]")] == MODULES
    for module in MODULES:
        offered = options(soup, module)
        assert set(offered) == {str(quizzes["classic"]), str(quizzes["new"]), str(quizzes["draft"])}
        assert offered[str(quizzes["new"])]["data-kind"] == "new"
        assert offered[str(quizzes["classic"])]["data-kind"] == "classic"
        assert say(app, KIND_NEW) in offered[str(quizzes["new"])].get_text()
        assert offered[str(quizzes["draft"])].has_attr("disabled")  # not published: cannot be chosen
        assert not offered[str(quizzes["classic"])].has_attr("disabled")
        assert fact(soup, module, "quiz") == say(app, "No quiz chosen yet")
    assert "Refleksjonsnotat" not in resp.get_data(as_text=True)
    for control in soup.select("select"):
        assert soup.select_one(f"label[for='{control['id']}']") is not None, control["id"]
    for form in soup.select("form.map-quiz"):
        assert form["action"] == PATH and form["method"] == "post"
        assert {i["name"] for i in form.select("input[type=hidden]")} == {"lt", "course_link", "module", "action"}
    assert soup.select_one("#choose-course") is None  # one linked course: nothing to choose


def test_a_get_without_token_gets_the_resume_page_and_asks_canvas_nothing(client, owner, quizzes, rest):
    calls = rest.count(ASSIGNMENTS)
    resp = client.get(PATH, base_url=TOOL)
    assert resp.status_code == 200
    assert "data-resume" in resp.get_data(as_text=True)
    assert "Quiz emne 1" not in resp.get_data(as_text=True)
    assert rest.count(ASSIGNMENTS) == calls


def test_a_course_without_quizzes_says_so(app, client, owner, rest):
    rest.add_assignment("Refleksjonsnotat", kind="plain")
    resp = open_page(client, PATH, owner)
    assert resp.status_code == 200
    soup = soup_of(resp)
    assert soup.select_one("#no-quizzes") is not None
    assert soup.select("form.map-quiz") == []


# --- mapping ----------------------------------------------------------------------------------------------------


def test_mapping_a_new_quiz_saves_it_audited_and_shows_it(app, client, owner, quizzes, seller, db_session):
    with transaction(factory(app)) as s:  # an earlier sync's watermark: the new quiz must be read in full
        s.add(ProgressWatermark(course_link_id=seller))
    resp = map_quiz(client, owner, "emne-2", quizzes["new"])
    assert resp.status_code == 200, text_of(resp)
    soup = soup_of(resp)
    notice = soup.select_one("[role=status]")
    assert notice is not None and "Quiz emne 2 (ny)" in notice.get_text()
    assert soup.select_one("[role=alert]") is None

    mapping = db_session.scalars(select(QuizMapping)).one()
    assert (mapping.course_link_id, mapping.module_id, mapping.assignment_id) == (seller, "emne-2", str(quizzes["new"]))
    assert (mapping.assignment_name, mapping.points_possible) == ("Quiz emne 2 (ny)", 7.5)
    assert mapping.mapped_by.startswith("course-owner:")
    entry = db_session.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.entity_type, entry.actor) == ("quiz_mapping.set", "quiz_mapping", mapping.mapped_by)
    assert db_session.scalar(select(func.count()).select_from(ProgressWatermark)) == 0

    assert fact(soup, "emne-2", "quiz") == "Quiz emne 2 (ny)"
    assert fact(soup, "emne-2", "kind") == say(app, KIND_NEW)
    assert fact(soup, "emne-2", "points") in {"7,5", "7.5"}
    assert say(app, "A course owner, on this page") in fact(soup, "emne-2", "mapped-by")
    assert options(soup, "emne-2")[str(quizzes["new"])].has_attr("selected")
    # Another module cannot take it: the option is disabled, and says which module has it.
    taken = options(soup, "emne-1")[str(quizzes["new"])]
    assert taken.has_attr("disabled") and not taken.has_attr("selected")

    # Opening the page again shows the same.
    again = soup_of(open_page(client, PATH, owner))
    assert fact(again, "emne-2", "quiz") == "Quiz emne 2 (ny)"
    assert fact(again, "emne-1", "quiz") == say(app, "No quiz chosen yet")


def test_choosing_another_quiz_for_a_module_replaces_it(app, client, owner, quizzes, db_session):
    assert map_quiz(client, owner, "emne-1", quizzes["classic"]).status_code == 200
    resp = map_quiz(client, owner, "emne-1", quizzes["new"])
    assert resp.status_code == 200, text_of(resp)
    rows = db_session.scalars(select(QuizMapping)).all()
    assert [(m.module_id, m.assignment_id) for m in rows] == [("emne-1", str(quizzes["new"]))]
    assert db_session.scalar(select(func.count()).select_from(AuditEntry)) == 2
    soup = soup_of(resp)
    assert fact(soup, "emne-1", "kind") == say(app, KIND_NEW)
    # The classic quiz is free again for the other modules.
    assert not options(soup, "emne-2")[str(quizzes["classic"])].has_attr("disabled")


def test_a_classic_quiz_is_shown_as_one(app, client, owner, quizzes):
    resp = map_quiz(client, owner, "emne-1", quizzes["classic"])
    assert resp.status_code == 200
    soup = soup_of(resp)
    assert fact(soup, "emne-1", "kind") == say(app, KIND_CLASSIC)
    assert fact(soup, "emne-1", "points") == "10"


# --- refusals: nothing written ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "key", "params"),
    [
        ("plain", "not_a_quiz", {"name": "Refleksjonsnotat"}),
        ("draft", "unpublished", {"name": "Utkast til quiz"}),
        ("missing", "not_in_course", {"id": "987654"}),
        ("", "no_choice", {}),
    ],
)
def test_an_assignment_that_is_not_a_mappable_quiz_is_refused_and_nothing_written(
    app, client, owner, quizzes, db_session, which, key, params
):
    assignment = {"missing": "987654", "": ""}[which] if which in {"missing", ""} else quizzes[which]
    before = written(db_session)
    resp = map_quiz(client, owner, "emne-1", assignment)
    assert resp.status_code == 422
    alert = soup_of(resp).select_one("[role=alert]")
    assert alert is not None
    assert " ".join(alert.get_text(" ").split()) == say(app, MESSAGES[key], **params)
    assert written(db_session) == before
    assert fact(soup_of(resp), "emne-1", "quiz") == say(app, "No quiz chosen yet")


def test_a_quiz_already_mapped_to_another_module_is_refused(app, client, owner, quizzes, db_session):
    assert map_quiz(client, owner, "emne-1", quizzes["classic"]).status_code == 200
    before = written(db_session)
    resp = map_quiz(client, owner, "emne-2", quizzes["classic"])
    assert resp.status_code == 409
    alert = soup_of(resp).select_one("[role=alert]")
    assert alert is not None
    expected = say(app, MESSAGES["taken"], name="Quiz emne 1", module=say(app, "Module %(number)s", number=1))
    assert " ".join(alert.get_text(" ").split()) == expected
    assert written(db_session) == before
    assert [m.module_id for m in db_session.scalars(select(QuizMapping))] == ["emne-1"]


def test_an_unknown_module_is_refused(app, client, owner, quizzes, db_session):
    before = written(db_session)
    resp = map_quiz(client, owner, "emne-9", quizzes["classic"])
    assert resp.status_code == 422
    assert say(app, MESSAGES["module_unknown"]) in text_of(resp)
    assert written(db_session) == before


# --- Canvas failing ---------------------------------------------------------------------------------------------


def test_canvas_not_answering_is_said_clearly_and_nothing_is_written(app, client, owner, quizzes, rest, db_session):
    assert map_quiz(client, owner, "emne-1", quizzes["classic"]).status_code == 200
    before = written(db_session)
    rest.inject("status", endpoint=ASSIGNMENTS, status=503, times=None)

    resp = open_page(client, PATH, owner)
    assert resp.status_code == 503
    alert = soup_of(resp).select_one("[role=alert]")
    assert alert is not None and " ".join(alert.get_text(" ").split()) == say(app, MESSAGES["canvas_unavailable"])
    soup = soup_of(resp)
    assert soup.select("form.map-quiz") == []  # nothing to choose from
    assert fact(soup, "emne-1", "quiz") == "Quiz emne 1"  # what is mapped is still shown

    resp = map_quiz(client, owner, "emne-2", quizzes["new"])
    assert resp.status_code == 503
    assert say(app, MESSAGES["canvas_unavailable"]) in text_of(resp)
    assert written(db_session) == before

    rest.clear_faults()
    assert map_quiz(client, owner, "emne-2", quizzes["new"]).status_code == 200


def test_canvas_refusing_the_token_is_said_clearly_and_nothing_is_written(
    app, client, owner, quizzes, encryptor, db_session
):
    with transaction(factory(app)) as s:
        s.execute(update(CanvasInstance).values(token_encrypted=encryptor.encrypt(b"expired-token")))
    before = written(db_session)
    resp = map_quiz(client, owner, "emne-1", quizzes["classic"])
    assert resp.status_code == 502
    assert say(app, MESSAGES["canvas_refused"], detail="HTTP 401") in text_of(resp)
    assert written(db_session) == before


# --- several courses --------------------------------------------------------------------------------------------


def test_with_several_linked_courses_the_launched_one_is_the_default_and_another_can_be_chosen(
    app, client, owner, quizzes, seller, canvas_url, encryptor, db_session
):
    """The programme is also linked in a course on another Canvas the seller registered (here the same simulator
    under another address, which has no such course); and in one on a Canvas never registered, which is not
    offered."""
    other_canvas = "https://other-canvas.example|guid-2"
    with transaction(factory(app)) as s:
        s.add(
            CanvasInstance(
                api_url=canvas_url + "/",
                account_id=1,
                token_encrypted=encryptor.encrypt(TOKEN.encode()),
                platform_instance=other_canvas,
            )
        )
        other = CourseLink(
            programme_id=PROGRAMME,
            platform_instance=other_canvas,
            context_id="another-context",
            canvas_course_id="424242",
            title="Lindrende behandling, kull 2",
        )
        unregistered = CourseLink(
            programme_id=PROGRAMME, platform_instance="https://third|guid-3", context_id="c3", canvas_course_id="5"
        )
        s.add_all([other, unregistered])
        s.flush()
        other_id, unregistered_id = other.id, unregistered.id
    resp = open_page(client, PATH, owner)
    soup = soup_of(resp)
    chooser = soup.select_one("#choose-course select[name=course_link]")
    assert chooser is not None and soup.select_one(f"label[for='{chooser['id']}']") is not None
    assert [o["value"] for o in chooser.find_all("option")] == [str(seller), str(other_id)]
    assert course_shown(resp) == str(seller)

    # The simulator has no course 424242: Canvas answers 404, and the page says so.
    resp = client.post(PATH, data={"lt": owner, "course_link": str(other_id)}, base_url=TOOL)
    assert resp.status_code == 502
    assert course_shown(resp) == str(other_id)
    assert say(app, MESSAGES["canvas_not_found"], id="424242") in text_of(resp)

    # Mapping in the launched course names it, and writes only there.
    resp = map_quiz(client, owner, "emne-1", quizzes["classic"], course_link=str(seller))
    assert resp.status_code == 200
    assert [(m.course_link_id, m.module_id) for m in db_session.scalars(select(QuizMapping))] == [(seller, "emne-1")]

    resp = map_quiz(client, owner, "emne-1", quizzes["new"], course_link=str(unregistered_id))
    assert resp.status_code == 404
    assert say(app, MESSAGES["course_unknown"]) in text_of(resp)


def test_a_course_that_is_not_the_programmes_is_refused(app, client, owner, quizzes, db_session):
    before = written(db_session)
    for course_link in ("999999", "abc", "1" * 40):
        resp = map_quiz(client, owner, "emne-1", quizzes["classic"], course_link=course_link)
        assert resp.status_code == 404, course_link
        assert say(app, MESSAGES["course_unknown"]) in text_of(resp)
    assert written(db_session) == before


# --- who may --------------------------------------------------------------------------------------------------------


def test_someone_who_is_not_a_course_owner_gets_403_and_changes_nothing(
    app, client, driver, sim, seller, quizzes, rest, db_session
):
    with transaction(factory(app)) as s:
        person_for(s, sim, "lisensadministrator", ProgrammeRoleKind.LICENCE_ADMIN)
    token = launch_token(driver.launch("lisensadministrator").get_data(as_text=True))
    calls = rest.count(ASSIGNMENTS)
    before = written(db_session)
    assert open_page(client, PATH, token).status_code == 403
    resp = map_quiz(client, token, "emne-1", quizzes["classic"])
    assert resp.status_code == 403
    assert "Quiz emne 1" not in resp.get_data(as_text=True)
    assert written(db_session) == before
    assert rest.count(ASSIGNMENTS) == calls  # Canvas is not even asked


def test_an_owner_whose_canvas_was_never_registered_gets_403(app, client, driver, sim, quizzes, db_session):
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
    token = launch_token(driver.launch("kurseier").get_data(as_text=True))
    assert open_page(client, PATH, token).status_code == 403
    assert map_quiz(client, token, "emne-1", quizzes["classic"]).status_code == 403
    assert written(db_session)["mappings"] == []


# --- refusals the page's own checks do not foresee ----------------------------------------------------------------


def test_a_refusal_only_map_quiz_knows_is_shown_and_nothing_written(
    app, client, owner, quizzes, db_session, monkeypatch
):
    """map_quiz checks again what the page checked; were the page's check to miss a case, its refusal still shows
    (409 for a quiz taken by another module) and nothing is written."""
    from lti_tool.views import owner_quizzes

    assert map_quiz(client, owner, "emne-1", quizzes["classic"]).status_code == 200
    before = written(db_session)
    monkeypatch.setattr(owner_quizzes, "_check", lambda *args: None)
    resp = map_quiz(client, owner, "emne-2", quizzes["classic"])
    assert resp.status_code == 409
    alert = soup_of(resp).select_one("[role=alert]")
    assert alert is not None and "already mapped to module 'emne-1'" in alert.get_text()
    assert written(db_session) == before


def test_a_mapping_written_by_another_request_meanwhile_gives_409_and_nothing_written(
    app, client, owner, quizzes, db_session, monkeypatch
):
    """The unique constraints decide a race between two owners: the loser's flush fails, its work is rolled back,
    and the page asks them to look again."""
    from sqlalchemy.exc import IntegrityError

    from lti_tool.views import owner_quizzes

    real = owner_quizzes.map_quiz

    def racing(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # flushed: the mapping and its audit entry are in the request's transaction
        raise IntegrityError("INSERT INTO quiz_mapping", {}, Exception("unique constraint"))

    before = written(db_session)
    monkeypatch.setattr(owner_quizzes, "map_quiz", racing)
    resp = map_quiz(client, owner, "emne-1", quizzes["classic"])
    assert resp.status_code == 409
    assert say(app, MESSAGES["conflict"]) in text_of(resp)
    assert written(db_session) == before
    assert fact(soup_of(resp), "emne-1", "quiz") == say(app, "No quiz chosen yet")
