"""Magic links (kurspakke/services/magic_links.py): 15 minutes, signed, single use — also when two sessions race —
and only for licence administrators. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kurspakke.db import transaction
from kurspakke.models import ExpiringValue, ProgrammeRoleKind
from kurspakke.services.magic_links import (
    LINK_TTL,
    MagicLinkExpired,
    MagicLinkInvalid,
    MagicLinkUsed,
    administered,
    check,
    read_token,
    redeem,
    request_link,
)
from kurspakke.services.people import get_or_create_organisation, get_or_create_person, grant_role

SECRET = "magic-link-test-secret-" * 3
PROGRAMME = "lindrende-behandling"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def people(session_factory):
    """Kari administers licences for Oslo; Per is only a participant; both addresses are known."""
    with transaction(session_factory) as s:
        oslo = get_or_create_organisation(s, name="Oslo kommune", orgnr="958935420")
        kari = get_or_create_person(s, name="Kari Koordinator", email="Kari.Koordinator@oslo.kommune.no")
        grant_role(s, kari, programme_id=PROGRAMME, organisation=oslo, role=ProgrammeRoleKind.LICENCE_ADMIN)
        grant_role(s, kari, programme_id=PROGRAMME, organisation=oslo, role=ProgrammeRoleKind.MENTOR)
        per = get_or_create_person(s, name="Per Deltaker", email="per@oslo.kommune.no")
        grant_role(s, per, programme_id=PROGRAMME, organisation=oslo, role=ProgrammeRoleKind.PARTICIPANT)
        return {"kari": kari.id, "per": per.id}


def link_for(session_factory, email="kari.koordinator@oslo.kommune.no", now=T0) -> str:
    with transaction(session_factory) as s:
        found = request_link(s, email, secret_key=SECRET, now=now)
    assert found is not None
    return found[1]


def used_rows(session_factory) -> int:
    with session_factory() as s:
        return s.scalar(select(func.count()).select_from(ExpiringValue)) or 0


def test_a_licence_administrator_gets_a_link_by_address_in_any_case(session_factory, people):
    with transaction(session_factory) as s:
        found = request_link(s, "  KARI.Koordinator@Oslo.Kommune.NO ", secret_key=SECRET, now=T0)
        assert found is not None
        person, token = found
        assert person.id == people["kari"]
    claims = read_token(SECRET, token, now=T0)
    assert (claims.person_id, claims.issued_at) == (people["kari"], T0)
    assert used_rows(session_factory) == 0  # asking for a link writes nothing


@pytest.mark.parametrize("email", ["per@oslo.kommune.no", "ukjent@oslo.kommune.no", "", "   "])
def test_unknown_and_non_admin_addresses_get_no_link(session_factory, people, email):
    with transaction(session_factory) as s:
        assert request_link(s, email, secret_key=SECRET, now=T0) is None
    assert used_rows(session_factory) == 0


def test_an_address_two_administrators_share_gets_no_link(session_factory, people):
    with transaction(session_factory) as s:
        bergen = get_or_create_organisation(s, name="Bergen kommune", orgnr="964338531")
        from kurspakke.models import Person

        twin = Person(name="Kari To", email="kari.koordinator@oslo.kommune.no")
        s.add(twin)
        s.flush()
        grant_role(s, twin, programme_id=PROGRAMME, organisation=bergen, role=ProgrammeRoleKind.LICENCE_ADMIN)
    with transaction(session_factory) as s:
        assert request_link(s, "kari.koordinator@oslo.kommune.no", secret_key=SECRET, now=T0) is None


def test_a_link_lives_fifteen_minutes(session_factory, people):
    token = link_for(session_factory)
    last = T0 + LINK_TTL - timedelta(seconds=1)
    with transaction(session_factory) as s:
        assert check(s, token, secret_key=SECRET, now=last).id == people["kari"]
    with transaction(session_factory) as s, pytest.raises(MagicLinkExpired) as refused:
        redeem(s, token, secret_key=SECRET, now=T0 + LINK_TTL)
    assert refused.value.code == "magic_link_expired"
    with transaction(session_factory) as s, pytest.raises(MagicLinkExpired):
        check(s, token, secret_key=SECRET, now=T0 + LINK_TTL)
    assert used_rows(session_factory) == 0
    with transaction(session_factory) as s:
        assert redeem(s, token, secret_key=SECRET, now=last).id == people["kari"]


def tampered(token: str) -> list[str]:
    person_id, issued, jti, signature = token.split(".")
    flip = "A" if signature[0] != "A" else "B"
    return [
        f"{int(person_id) + 1}.{issued}.{jti}.{signature}",  # someone else
        f"{person_id}.{int(issued) + 3600}.{jti}.{signature}",  # a later issue time: longer life
        f"{person_id}.{issued}.{'A' * 22}.{signature}",  # another jti: a second use
        f"{person_id}.{issued}.{jti}.{flip}{signature[1:]}",
        f"{person_id}.{issued}.{jti}",
        token + "x",
        token + "." + signature,
        "",
        "a" * 500,
        "1.2.3.4",
    ]


def test_a_tampered_or_foreign_token_is_refused_and_writes_nothing(session_factory, people):
    token = link_for(session_factory)
    for bad in [*tampered(token), link_for(session_factory).replace(".", "-", 1)]:
        with transaction(session_factory) as s, pytest.raises(MagicLinkInvalid) as refused:
            redeem(s, bad, secret_key=SECRET, now=T0)
        assert refused.value.code == "magic_link_invalid"
    with transaction(session_factory) as s, pytest.raises(MagicLinkInvalid):
        redeem(s, token, secret_key="another-secret-" * 4, now=T0)
    assert used_rows(session_factory) == 0


def test_a_token_issued_in_the_future_is_refused(session_factory, people):
    token = link_for(session_factory, now=T0 + timedelta(minutes=5))
    with transaction(session_factory) as s, pytest.raises(MagicLinkInvalid):
        check(s, token, secret_key=SECRET, now=T0)


def test_a_link_is_used_once(session_factory, people):
    token = link_for(session_factory)
    with transaction(session_factory) as s:
        assert check(s, token, secret_key=SECRET, now=T0).id == people["kari"]
        assert check(s, token, secret_key=SECRET, now=T0).id == people["kari"]  # looking uses nothing up
    with transaction(session_factory) as s:
        assert redeem(s, token, secret_key=SECRET, now=T0).id == people["kari"]
    for use in (check, redeem):
        with transaction(session_factory) as s, pytest.raises(MagicLinkUsed) as refused:
            use(s, token, secret_key=SECRET, now=T0 + timedelta(minutes=1))
        assert refused.value.code == "magic_link_used"
    assert used_rows(session_factory) == 1
    # Another link of the same person is a new link.
    with transaction(session_factory) as s:
        assert redeem(s, link_for(session_factory), secret_key=SECRET, now=T0).id == people["kari"]


def test_a_redemption_rolled_back_leaves_the_link_unused(session_factory, people):
    token = link_for(session_factory)
    with session_factory() as s:
        redeem(s, token, secret_key=SECRET, now=T0)
        s.rollback()
    with transaction(session_factory) as s:
        assert redeem(s, token, secret_key=SECRET, now=T0).id == people["kari"]


def redeem_twice_at_once(session_factory, token: str) -> list[str]:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            with transaction(session_factory) as s:
                redeem(s, token, secret_key=SECRET, now=T0)
            outcomes.append("signed in")
        except MagicLinkUsed:
            outcomes.append("used")
        except Exception as exc:  # a database error would be a failure of the rule, not a refusal
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return sorted(outcomes)


def test_two_sessions_redeeming_at_once_sign_in_once(session_factory, people):
    for _ in range(3):
        assert redeem_twice_at_once(session_factory, link_for(session_factory)) == ["signed in", "used"]
    assert used_rows(session_factory) == 3


def test_a_link_opens_nothing_once_the_role_is_gone(session_factory, people):
    token = link_for(session_factory)
    from kurspakke.models import ProgrammeRole

    with transaction(session_factory) as s:
        for row in s.scalars(select(ProgrammeRole).where(ProgrammeRole.person_id == people["kari"])):
            if row.role == ProgrammeRoleKind.LICENCE_ADMIN:
                s.delete(row)
    with transaction(session_factory) as s, pytest.raises(MagicLinkInvalid):
        redeem(s, token, secret_key=SECRET, now=T0)
    assert used_rows(session_factory) == 0


def test_administered_lists_organisations_and_programmes(session_factory, people):
    with transaction(session_factory) as s:
        assert [(a.organisation_name, a.orgnr, a.programme_id) for a in administered(s, people["kari"])] == [
            ("Oslo kommune", "958935420", PROGRAMME)
        ]
        assert administered(s, people["per"]) == []
