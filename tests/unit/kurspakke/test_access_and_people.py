from __future__ import annotations

import pytest

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
