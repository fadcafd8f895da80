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
        # Institution and system roles say what someone is elsewhere in Canvas, not in this course: a sub-account
        # administrator launching as a student, or a TA, is no course owner.
        ([LIS + "institution/person#Administrator", ROLE_LEARNER], False),
        ([LIS + "institution/person#Administrator", ROLE_INSTRUCTOR, ROLE_TEACHING_ASSISTANT], False),
        ([LIS + "system/person#Administrator"], False),
        ([LIS + "institution/person#Instructor"], False),
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


def _programme_on_instance(session, instance: str = "iss|guid"):
    """Programme "p" linked on ``instance`` (its organisations not provisioned anywhere yet), and one organisation."""
    from kurspakke.models import CourseLink

    session.add(CourseLink(programme_id="p", platform_instance=instance, context_id="c", title="C"))
    return get_or_create_organisation(session, name="Oslo kommune", orgnr="958935420")


def test_an_identity_recorded_meanwhile_makes_the_launch_decide_again(session):
    """The launch's read (rows) found no one by its sub, and the e-mail names a person; before the launch could
    record its sub, a concurrent launch of the same account recorded that sub for another person record. The
    launch then decides from what is stored — as every later request will — instead of showing one person now
    and another on the next page, and the e-mail person keeps nothing of the account."""
    from kurspakke.models import IdentityKind, PersonIdentity, ProgrammeRoleKind
    from kurspakke.services.access import Launcher, match_person
    from kurspakke.services.people import add_identity, get_or_create_person, grant_role

    org = _programme_on_instance(session)
    by_email = get_or_create_person(session, name="Kari (e-post)", email="kari@example.org")
    grant_role(session, by_email, programme_id="p", organisation=org, role=ProgrammeRoleKind.MENTOR)
    other = get_or_create_person(session, name="Kari (annen)", email="kari.nordmann@example.org")
    grant_role(session, other, programme_id="p", organisation=org, role=ProgrammeRoleKind.PARTICIPANT)
    add_identity(session, other, IdentityKind.LTI_SUB, "iss", "sub-1")  # the concurrent launch's, committed first
    session.flush()
    launcher = Launcher(
        issuer="iss",
        sub="sub-1",
        platform_instance="iss|guid",
        roles=frozenset(),
        context_id="c",
        email="kari@example.org",
    )
    person, roles, _ = match_person(session, launcher, "p", rows=[])  # rows read before the sub existed
    assert person is not None and person.id == other.id
    assert roles == [ProgrammeRoleKind.PARTICIPANT]
    kept = session.scalars(select(PersonIdentity.kind).where(PersonIdentity.person_id == by_email.id)).all()
    assert kept == []


def test_two_first_launches_with_one_email_cannot_both_claim_the_person(session_factory):
    """A person known only by e-mail; two accounts of her Canvas launch at the same moment with that e-mail. The
    first to claim holds the person until it commits; the second then finds her taken."""
    import threading

    from kurspakke.models import PersonIdentity, ProgrammeRoleKind
    from kurspakke.services.access import Launcher, match_person
    from kurspakke.services.people import get_or_create_person, grant_role

    with session_factory() as s:
        org = _programme_on_instance(s, "i")
        kari = get_or_create_person(s, name="Kari", email="kari@example.org")
        grant_role(s, kari, programme_id="p", organisation=org, role=ProgrammeRoleKind.PARTICIPANT)
        s.commit()

    def launcher(sub: str) -> Launcher:
        return Launcher(
            issuer="iss", sub=sub, platform_instance="i", roles=frozenset(), context_id="c", email="kari@example.org"
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


def test_one_person_holds_one_account_per_issuer(session):
    """The unique index behind 'a Canvas user id may attach a sub only while the person has none of this issuer':
    however two launches race, a person never ends up with two accounts of one issuer."""
    from sqlalchemy.exc import IntegrityError

    from kurspakke.models import IdentityKind, PersonIdentity
    from kurspakke.services.people import get_or_create_person

    kari = get_or_create_person(session, name="Kari", email="kari@example.org")
    session.add(PersonIdentity(person_id=kari.id, kind=IdentityKind.LTI_SUB, scope="iss", value="a"))
    session.add(PersonIdentity(person_id=kari.id, kind=IdentityKind.LTI_SUB, scope="other-iss", value="a"))
    session.add(PersonIdentity(person_id=kari.id, kind=IdentityKind.CANVAS_USER_ID, scope="iss|g", value="1"))
    session.add(PersonIdentity(person_id=kari.id, kind=IdentityKind.CANVAS_USER_ID, scope="iss|g", value="2"))
    session.flush()
    session.add(PersonIdentity(person_id=kari.id, kind=IdentityKind.LTI_SUB, scope="iss", value="b"))
    with pytest.raises(IntegrityError):
        session.flush()


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


def test_emails_are_stored_lower_cased_so_they_compare_on_their_index(session):
    from kurspakke.models import IdentityKind, Person, PersonIdentity

    kari = Person(name="Kari", email="  Kari.Nordmann@Example.NO ")
    session.add(kari)
    session.flush()
    identity = PersonIdentity(
        person_id=kari.id, kind=IdentityKind.CANVAS_USER_ID, scope="i", value="1", email="K.N@Kommune.NO"
    )
    session.add(identity)
    session.flush()
    session.expire_all()
    assert session.scalar(select(Person.email)) == "kari.nordmann@example.no"
    assert session.scalar(select(PersonIdentity.email)) == "k.n@kommune.no"
