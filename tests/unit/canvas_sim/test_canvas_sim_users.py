"""The demo users other parts of the project (demo data, fixtures) rely on."""

from __future__ import annotations

from canvas_sim import DEMO_USERS, SimConfig

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


def test_demo_users() -> None:
    by_key = {u.key: u for u in DEMO_USERS}
    assert list(by_key) == ["deltaker", "mentor", "lisensadministrator", "kurseier"]
    assert by_key["deltaker"].roles == [LEARNER]
    # Canvas sends a TA the principal role and the sub-role; the sub-role is what keeps a TA from being an owner.
    assert by_key["mentor"].roles == [INSTRUCTOR, TA]
    assert by_key["lisensadministrator"].roles == [LEARNER]
    assert by_key["kurseier"].roles == [
        INSTRUCTOR,
        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor",
    ]
    assert [u.label_nb for u in DEMO_USERS] == [
        "Start som deltaker",
        "Start som mentor",
        "Start som lisensadministrator",
        "Start som kurseier",
    ]
    assert len({u.canvas_user_id for u in DEMO_USERS}) == 4
    assert len({u.sub for u in DEMO_USERS}) == 4
    assert all(u.email.endswith("@example.no") for u in DEMO_USERS)


def test_config_users_are_copies() -> None:
    cfg = SimConfig()
    cfg.users[0].roles.append("x")
    assert DEMO_USERS[0].roles == [LEARNER]
    assert SimConfig().users[0].roles == [LEARNER]
