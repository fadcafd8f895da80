from __future__ import annotations

import pytest
from sqlalchemy import select

from kurspakke.services.access import (
    LIS,
    ROLE_INSTRUCTOR,
    ROLE_LEARNER,
    ROLE_TEACHING_ASSISTANT,
    is_course_owner_role,
)
from kurspakke.services.people import InvalidOrgnr, get_or_create_organisation, valid_orgnr


@pytest.mark.parametrize(
    ("roles", "owner"),
    [
        ([ROLE_INSTRUCTOR], True),
        (["Instructor"], True),
        ([ROLE_TEACHING_ASSISTANT], False),
        ([ROLE_INSTRUCTOR, ROLE_TEACHING_ASSISTANT], False),  # a TA is never a course owner
        ([LIS + "membership#Administrator"], True),
        ([LIS + "institution/person#Administrator", ROLE_TEACHING_ASSISTANT], True),
        ([LIS + "institution/person#Instructor"], False),  # an institution role, not in this course
        ([ROLE_LEARNER], False),
        ([], False),
    ],
)
def test_course_owner_roles(roles, owner):
    assert is_course_owner_role(roles) is owner


@pytest.mark.parametrize("orgnr", ["983544622", "958935420", "964338531", "942110464"])
def test_valid_orgnr(orgnr):
    assert valid_orgnr(orgnr)


@pytest.mark.parametrize("orgnr", ["983544623", "12345678", "1234567890", "98354462a", "", "９８３５４４６２２"])
def test_invalid_orgnr(orgnr):
    assert not valid_orgnr(orgnr)


def test_check_digit_ten_is_invalid():
    base = "10000013"  # weights give remainder 1: check digit 10, which no number can carry
    remainder = sum(int(d) * w for d, w in zip(base, (3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11
    assert 11 - remainder == 10
    assert not any(valid_orgnr(base + str(d)) for d in range(10))


def test_invalid_orgnr_is_refused_and_not_written(session):
    from sqlalchemy import func, select

    from kurspakke.models import Organisation

    with pytest.raises(InvalidOrgnr):
        get_or_create_organisation(session, name="X", orgnr="983544623")
    assert session.scalar(select(func.count()).select_from(Organisation)) == 0


def test_an_identity_recorded_meanwhile_makes_the_launch_decide_again(session):
    """The launch's read (rows) saw no identity; before it could record the Canvas user id, someone else recorded
    it for another person record. The launch then decides from what is stored — as every later request will —
    instead of showing one person now and another on the next page."""
    from kurspakke.models import IdentityKind, PersonIdentity, ProgrammeRoleKind
    from kurspakke.services.access import Launcher, match_person
    from kurspakke.services.people import add_identity, get_or_create_person, grant_role

    org = get_or_create_organisation(session, name="Oslo kommune", orgnr="958935420")
    by_email = get_or_create_person(session, name="Kari (e-post)", email="kari@example.org")
    provisioned = get_or_create_person(session, name="Kari (Canvas)", email="kari.nordmann@example.org")
    add_identity(session, provisioned, IdentityKind.CANVAS_USER_ID, "iss|guid", "42")
    grant_role(session, provisioned, programme_id="p", organisation=org, role=ProgrammeRoleKind.PARTICIPANT)
    session.flush()
    launcher = Launcher(
        issuer="iss",
        sub="sub-1",
        platform_instance="iss|guid",
        roles=frozenset(),
        context_id="c",
        email="kari@example.org",
        canvas_user_id="42",
    )
    person, roles, _ = match_person(session, launcher, "p", rows=[])  # rows read before the identity existed
    assert person is not None and person.id == provisioned.id
    assert roles == [ProgrammeRoleKind.PARTICIPANT]
    assert by_email.id != provisioned.id
    # All or nothing: the e-mail match kept no half of the account (its sub would open the wrong person's
    # records on a later launch without a Canvas user id).
    kept = session.scalars(select(PersonIdentity.kind).where(PersonIdentity.person_id == by_email.id)).all()
    assert kept == []


def test_two_first_launches_with_one_email_cannot_both_claim_the_person(session_factory):
    """A person known only by e-mail; two accounts (say, on two platforms) launch at the same moment with that
    e-mail. The first to claim holds the person until it commits; the second then finds them taken."""
    import threading

    from kurspakke.models import PersonIdentity
    from kurspakke.services.access import Launcher, match_person
    from kurspakke.services.people import get_or_create_person

    with session_factory() as s:
        get_or_create_person(s, name="Kari", email="kari@example.org")
        s.commit()

    def launcher(sub: str) -> Launcher:
        return Launcher(
            issuer="iss-" + sub,
            sub=sub,
            platform_instance="i",
            roles=frozenset(),
            context_id="c",
            email="kari@example.org",
        )

    first = session_factory()
    found_first, _, _ = match_person(first, launcher("a"), "p")  # claims and holds the person, not committed yet
    assert found_first is not None
    second: list[object] = []

    def other_launch() -> None:
        with session_factory() as s:
            second.append(match_person(s, launcher("b"), "p")[0])
            s.commit()

    thread = threading.Thread(target=other_launch)
    thread.start()
    thread.join(0.5)
    first.commit()
    first.close()
    thread.join(10)
    assert second == [None]
    with session_factory() as s:
        assert [i.value for i in s.scalars(select(PersonIdentity))] == ["a"]


def test_a_cached_link_that_was_unlinked_never_names_the_next_courses_list(session):
    """A process cached course A's link; the operator unlinks A and course B is linked, which SQLite may give
    the freed id. Launches from A through the stale cache must not land on B's list of unlicensed people, and
    A's owner must not see B's list."""
    from kurspakke.models import CourseLink, UnlicensedLaunch
    from kurspakke.services.access import (
        CourseLinkCache,
        Launcher,
        record_unlicensed,
        unlicensed_users,
        unlink_course,
    )

    course_a = CourseLink(programme_id="p", platform_instance="i", context_id="A", title="A")
    session.add(course_a)
    session.flush()
    stale = CourseLinkCache(ttl_seconds=3600).get(session, "i", "A")
    assert stale is not None
    unlink_course(session, course_a.id)
    course_b = CourseLink(id=stale.id, programme_id="p", platform_instance="i", context_id="B", title="B")
    session.add(course_b)  # the freed id, as SQLite hands it out again
    session.flush()
    b_list = UnlicensedLaunch(course_link_id=course_b.id, issuer="iss", sub="b-person", name="B", email="b@b.no")
    session.add(b_list)
    session.flush()

    def launcher(sub: str) -> Launcher:
        return Launcher(issuer="iss", sub=sub, platform_instance="i", roles=frozenset(), context_id="A", name="Eva")

    record_unlicensed(session, stale, launcher("a-person"))  # a new name
    record_unlicensed(session, stale, launcher("b-person"))  # one already on B's list
    session.flush()
    rows = session.scalars(select(UnlicensedLaunch)).all()
    assert [(r.course_link_id, r.sub, r.name, r.launches) for r in rows] == [(course_b.id, "b-person", "B", 1)]
    assert unlicensed_users(session, stale) == []
    assert [u.sub for u in unlicensed_users(session, CourseLinkCache(3600).get(session, "i", "B"))] == ["b-person"]
