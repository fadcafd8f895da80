"""Who a launch is: the signed sub decides; a Canvas user id (a custom parameter any teacher can set on a link) and
an e-mail (a claim any registered platform can send) are hints that may tie a first launch to a person only where
the tool itself tied that person to the account's Canvas.

The takeover scenarios run with two registered Canvas instances under one issuer, as hosted Canvas has them: one
key set, one issuer, a client id and a tool_platform.guid per institution.
"""

from __future__ import annotations

import logging

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from kurspakke.db import transaction
from kurspakke.models import CanvasInstance, IdentityKind, PersonIdentity, ProgrammeRoleKind
from tests.conftest import register_sim
from tests.support.factories import link_sim_course, organisation, person_for, sim_instance
from tests.support.lti import TOOL, form_fields

OTHER_CLIENT = "20000000000002"
OTHER_DEPLOYMENT = "2:another-institution"
OTHER_GUID = "otherguid00000000000000000000000000000:canvas-lms"


def h1(resp) -> str:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser").h1.get_text(strip=True)


def factory(app):
    return app.extensions["kurspakke"].session_factory


def identities(db_session, person_id: int) -> list[tuple[str, str]]:
    rows = db_session.scalars(select(PersonIdentity).where(PersonIdentity.person_id == person_id)).all()
    return sorted((row.kind.value, row.value) for row in rows)


def provision_org_into_this_canvas(app, sim) -> None:
    """What provisioning records: the organisation's people are enrolled in this Canvas (tied by its lti_guid)."""
    with transaction(factory(app)) as s:
        canvas = CanvasInstance(
            api_url=sim.config.base_url, account_id=1, token_encrypted=b"x", platform_instance=sim_instance(sim)
        )
        s.add(canvas)
        s.flush()
        organisation(s).canvas_instance_id = canvas.id


def become_another_institution(app, sim) -> None:
    """A second Canvas under the same issuer and key set (another institution on hosted Canvas): its own client id,
    deployment and guid. Its launches are validly signed by the issuer."""
    with transaction(factory(app)) as s:
        register_sim(s, sim, client_id=OTHER_CLIENT, deployment_ids=[OTHER_DEPLOYMENT])
    sim.config.client_id, sim.config.deployment_id = OTHER_CLIENT, OTHER_DEPLOYMENT
    sim.config.platform_guid = OTHER_GUID


def link_own_course_as_owner(driver, client, sim) -> None:
    """A teacher of the other institution links a course of their own to the programme (any course owner on a
    registered Canvas can)."""
    sim.config.context_id = "other-institution-course"
    _, fields = form_fields(driver.launch("kurseier").get_data(as_text=True))
    resp = client.post("/app/link", data={**fields, "programme": "lindrende-behandling"}, base_url=TOOL)
    assert resp.status_code == 200


# --- the Canvas user id is a hint, the sub the authority -------------------------------------------------------


@pytest.fixture
def kari_provisioned(app, sim):
    """Kari holds a seat; provisioning recorded her Canvas user id on this Canvas. She has never launched."""
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
        return person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT).id


def test_a_teacher_set_canvas_user_id_does_not_open_another_persons_views(driver, sim, kari_provisioned, db_session):
    """A teacher sets custom canvas_user_id=<Kari's> on a link; Ingrid (her own account, her own e-mail) launches
    it. Today that opened Kari's views and tied Ingrid's account to Kari for good."""
    kari = sim.user("deltaker")
    resp = driver.launch("lisensadministrator", custom={"canvas_user_id": str(kari.canvas_user_id)})
    assert resp.status_code == 200
    assert h1(resp) == "Vi fant ingen lisens for deg"
    assert kari.name not in resp.get_data(as_text=True)
    assert identities(db_session, kari_provisioned) == [("canvas_user_id", str(kari.canvas_user_id))]
    # Kari herself still gets in, and only now is her sub recorded.
    assert h1(driver.launch("deltaker")) == "Min fremdrift"
    assert identities(db_session, kari_provisioned) == [
        ("canvas_user_id", str(kari.canvas_user_id)),
        ("lti_sub", kari.sub),
    ]


def test_a_canvas_user_id_naming_someone_with_another_sub_opens_nothing_and_is_logged(
    driver, sim, kari_provisioned, db_session, caplog
):
    kari = sim.user("deltaker")
    assert h1(driver.launch("deltaker")) == "Min fremdrift"  # her sub is recorded now
    ingrid = sim.user("lisensadministrator")
    ingrid.email = kari.email  # even with her e-mail, a second account of the issuer never gets Kari
    with caplog.at_level(logging.WARNING, logger="kurspakke.identity"):
        resp = driver.launch("lisensadministrator", custom={"canvas_user_id": str(kari.canvas_user_id)})
    assert h1(resp) == "Vi fant ingen lisens for deg"
    assert kari.name not in resp.get_data(as_text=True)
    assert identities(db_session, kari_provisioned) == [
        ("canvas_user_id", str(kari.canvas_user_id)),
        ("lti_sub", kari.sub),
    ]
    mismatches = [r for r in caplog.records if r.name == "kurspakke.identity"]
    assert mismatches and "already has another sub" in mismatches[0].getMessage()
    assert mismatches[0].fields["sub"] == ingrid.sub  # type: ignore[attr-defined]


def test_the_sub_decides_even_when_the_canvas_user_id_names_someone_else(driver, sim, app, db_session, caplog):
    """Ingrid has launched before (her sub is recorded). A link that carries Kari's Canvas user id still opens
    Ingrid's own views, never Kari's, and the mismatch is logged."""
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
        person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT)
        person_for(s, sim, "lisensadministrator", ProgrammeRoleKind.LICENCE_ADMIN)
    assert h1(driver.launch("lisensadministrator")) == "Lisenser"
    kari = sim.user("deltaker")
    with caplog.at_level(logging.WARNING, logger="kurspakke.identity"):
        resp = driver.launch("lisensadministrator", custom={"canvas_user_id": str(kari.canvas_user_id)})
    assert h1(resp) == "Lisenser"
    assert kari.name not in resp.get_data(as_text=True)
    assert any("another person than the launch's sub" in r.getMessage() for r in caplog.records)


def test_a_canvas_user_id_attaches_a_sub_only_when_the_email_agrees(driver, sim, kari_provisioned, db_session):
    """Her own Canvas user id, but the launch's e-mail is not one the tool knows for her: no match (the account
    might be anyone's with that id set on a link)."""
    kari = sim.user("deltaker")
    kari.email = "someone.else@example.no"
    assert h1(driver.launch("deltaker")) == "Vi fant ingen lisens for deg"
    assert identities(db_session, kari_provisioned) == [("canvas_user_id", str(kari.canvas_user_id))]


def test_the_primary_email_canvas_reported_counts_as_hers(driver, sim, app, db_session):
    """Matched to an existing Canvas account whose primary address is another than her seat's: the address Canvas
    reported at provisioning agrees as well as the seat's."""
    kari = sim.user("deltaker")
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
        person = person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT, with_canvas_id=False)
        s.add(
            PersonIdentity(
                person_id=person.id,
                kind=IdentityKind.CANVAS_USER_ID,
                scope=sim_instance(sim),
                value=str(kari.canvas_user_id),
                email="k.nordmann@kommune.example.no",
            )
        )
        person_id = person.id
    kari.email = "K.Nordmann@kommune.example.no"  # compared case-insensitively
    assert h1(driver.launch("deltaker")) == "Min fremdrift"
    assert ("lti_sub", kari.sub) in identities(db_session, person_id)


# --- e-mail: only from the Canvas the tool tied the person to -----------------------------------------------------


@pytest.fixture
def ingrid_by_email(app, sim):
    """Ingrid, licence administrator, known by e-mail only (no account tied yet); her organisation is provisioned
    into this Canvas."""
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
        person_id = person_for(s, sim, "lisensadministrator", ProgrammeRoleKind.LICENCE_ADMIN, with_canvas_id=False).id
    provision_org_into_this_canvas(app, sim)
    return person_id


def test_another_institution_under_the_same_issuer_cannot_take_an_account_by_email(
    driver, client, app, sim, ingrid_by_email, db_session
):
    """Another institution's Canvas (same issuer, same keys) links a course of its own and launches someone whose
    e-mail claim is Ingrid's before she ever logged in. Today that took her account and locked her out."""
    home = (sim.config.client_id, sim.config.deployment_id, sim.config.platform_guid, sim.config.context_id)
    ingrid = sim.user("lisensadministrator")
    become_another_institution(app, sim)
    link_own_course_as_owner(driver, client, sim)
    attacker = sim.user("deltaker")
    attacker.email, attacker.name = ingrid.email, "Angriper"
    resp = driver.launch("deltaker")
    assert h1(resp) == "Vi fant ingen lisens for deg"
    assert ingrid.name not in resp.get_data(as_text=True)
    assert identities(db_session, ingrid_by_email) == []
    # Ingrid, launching from her own Canvas, still gets in.
    sim.config.client_id, sim.config.deployment_id, sim.config.platform_guid, sim.config.context_id = home
    assert h1(driver.launch("lisensadministrator")) == "Lisenser"
    assert identities(db_session, ingrid_by_email) == [("lti_sub", ingrid.sub)]


def test_without_provisioning_only_the_one_canvas_the_programme_is_linked_on_ties_by_email(
    driver, client, app, sim, db_session
):
    """Before provisioning exists: the Canvas where the programme's course is linked ties by e-mail; a second
    institution that links the programme too makes it ambiguous, so nobody is tied by e-mail any more (never
    guessed) — and never from the second one."""
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
        mentor = person_for(s, sim, "mentor", ProgrammeRoleKind.MENTOR, with_canvas_id=False).id
        admin = person_for(s, sim, "lisensadministrator", ProgrammeRoleKind.LICENCE_ADMIN, with_canvas_id=False).id
    assert h1(driver.launch("mentor")) == "Mentoroversikt"  # the one linked Canvas: tied by e-mail
    assert [kind for kind, _ in identities(db_session, mentor)] == ["lti_sub"]
    ingrid = sim.user("lisensadministrator")
    home = (sim.config.client_id, sim.config.deployment_id, sim.config.platform_guid, sim.config.context_id)
    become_another_institution(app, sim)
    link_own_course_as_owner(driver, client, sim)
    attacker = sim.user("deltaker")
    attacker.email = ingrid.email
    assert h1(driver.launch("deltaker")) == "Vi fant ingen lisens for deg"
    assert identities(db_session, admin) == []
    # Now that two Canvases have linked the programme, the first one no longer ties by e-mail either.
    sim.config.client_id, sim.config.deployment_id, sim.config.platform_guid, sim.config.context_id = home
    assert h1(driver.launch("lisensadministrator")) == "Vi fant ingen lisens for deg"
    assert identities(db_session, admin) == []


def test_an_email_shared_by_several_people_matches_no_one(driver, app, sim, db_session):
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
        first = person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT, with_canvas_id=False)
        second = person_for(s, sim, "mentor", ProgrammeRoleKind.MENTOR, with_canvas_id=False)
        second.email = first.email.upper()  # the same address, compared case-insensitively
        ids = (first.id, second.id)
    assert h1(driver.launch("deltaker")) == "Vi fant ingen lisens for deg"
    assert [identities(db_session, person_id) for person_id in ids] == [[], []]


@pytest.mark.parametrize("custom", [None, "$Canvas.user.id", ""], ids=["its-own-id", "unsubstituted", "blanked"])
def test_an_email_does_not_tie_a_person_provisioned_with_another_account(driver, app, sim, db_session, custom):
    """Kari was provisioned with Canvas account 101 on this Canvas. Another account of this Canvas (id 555) with
    her e-mail is a different account: not tied to her — also when the link carries no usable Canvas user id (a
    teacher blanked it, or the platform did not substitute it)."""
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
        kari_id = person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT).id
    provision_org_into_this_canvas(app, sim)
    other = sim.user("deltaker")
    other.sub, other.canvas_user_id = "another-account-of-kari", 555
    kwargs = {} if custom is None else {"custom": {"canvas_user_id": custom}}
    assert h1(driver.launch("deltaker", **kwargs)) == "Vi fant ingen lisens for deg"
    assert identities(db_session, kari_id) == [("canvas_user_id", "101")]


def test_a_canvas_user_id_of_someone_with_another_sub_opens_nobody_else_either(driver, app, sim, db_session):
    """Kari has launched (her sub is recorded). A launch from another account carries her Canvas user id and the
    e-mail of Ola, who has never launched: a launch that points at someone else's account is suspect and opens
    nothing — not Kari's views, and not Ola's by his e-mail."""
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
        kari_id = person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT).id
        ola_id = person_for(s, sim, "mentor", ProgrammeRoleKind.MENTOR, with_canvas_id=False).id
    assert h1(driver.launch("deltaker")) == "Min fremdrift"
    kari = sim.user("deltaker")
    stranger = sim.user("lisensadministrator")
    stranger.email = sim.user("mentor").email
    resp = driver.launch("lisensadministrator", custom={"canvas_user_id": str(kari.canvas_user_id)})
    assert h1(resp) == "Vi fant ingen lisens for deg"
    assert identities(db_session, ola_id) == []
    assert identities(db_session, kari_id) == [("canvas_user_id", str(kari.canvas_user_id)), ("lti_sub", kari.sub)]


def test_a_canvas_user_id_recorded_on_another_canvas_is_no_hint_here(driver, client, app, sim, db_session):
    """Kari's Canvas user id was recorded on her Canvas; the other institution's Canvas has a user with the same
    number (ids are per instance) and Kari's e-mail. Nothing of hers opens."""
    with transaction(factory(app)) as s:
        link_sim_course(s, sim)
        kari_id = person_for(s, sim, "deltaker", ProgrammeRoleKind.PARTICIPANT).id
    provision_org_into_this_canvas(app, sim)
    become_another_institution(app, sim)
    link_own_course_as_owner(driver, client, sim)
    other = sim.user("deltaker")
    other.sub = "other-institutions-101"
    assert h1(driver.launch("deltaker")) == "Vi fant ingen lisens for deg"
    assert ("lti_sub", "other-institutions-101") not in identities(db_session, kari_id)


# --- registrations ----------------------------------------------------------------------------------------------


def test_a_second_key_set_for_a_registered_issuer_is_refused(app, sim, db_session):
    from kurspakke.models import Registration
    from kurspakke.services.platforms import RegistrationError

    with pytest.raises(RegistrationError, match="already registered with the key set"), transaction(factory(app)) as s:
        register_sim(s, sim, client_id=OTHER_CLIENT, key_set_url="https://attacker.example/jwks")
    assert db_session.scalars(select(Registration.client_id)).all() == [sim.config.client_id]


def test_instructures_two_addresses_of_the_hosted_key_set_count_as_one(session):
    from kurspakke.services.platforms import add_platform

    hosted = "https://canvas.instructure.com"
    for client_id, key_set_url in [
        ("1", hosted + "/api/lti/security/jwks"),
        ("2", "https://sso.canvaslms.com/api/lti/security/jwks"),
    ]:
        add_platform(
            session,
            issuer=hosted,
            client_id=client_id,
            deployment_ids=["d"],
            auth_login_url="https://sso.canvaslms.com/api/lti/authorize_redirect",
            auth_token_url="https://sso.canvaslms.com/login/oauth2/token",
            key_set_url=key_set_url,
        )
