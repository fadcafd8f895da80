"""Licence administrators (kurspakke.licences.admins) and the read models of the licence pages
(kurspakke.licences.queries), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.licences import admins, queries
from kurspakke.licences.models import AuditEntry, CanvasStatus, OrderSource, Seat
from kurspakke.licences.seating import InvalidPerson, PersonInput, assign_person, revoke_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.models import Organisation, Person, ProgrammeRole, ProgrammeRoleKind
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_organisation, get_or_create_person, grant_role

PROGRAMME = load_programmes()["lindrende-behandling"]
ACTOR = "licence_admin:test"


def _org(session: Session, orgnr: str = "958935420", name: str = "Oslo kommune") -> Organisation:
    return get_or_create_organisation(session, name=name, orgnr=orgnr)


def _admin(session: Session, org: Organisation, email: str, name: str = "Admin") -> Person:
    person = get_or_create_person(session, name=name, email=email)
    grant_role(session, person, programme_id=PROGRAMME.id, organisation=org, role=ProgrammeRoleKind.LICENCE_ADMIN)
    return person


def _pool(session: Session, org: Organisation, quantity: int) -> None:
    order = create_order(
        session, organisation=org, programme=PROGRAMME, quantity=quantity, source=OrderSource.MANUAL, actor=ACTOR
    )
    confirm_order(session, order, actor=ACTOR)


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- administrators -----------------------------------------------------------------------------------------------


def test_add_administrator_makes_a_new_person_or_reuses_a_known_one_and_audits(session: Session) -> None:
    org = _org(session)
    _admin(session, org, "kari@oslo.kommune.no", "Kari")
    known = get_or_create_person(session, name="Ola", email="ola@oslo.kommune.no")
    added = admins.add_administrator(
        session, org, PROGRAMME.id, name="Ola Olsen", email=" OLA@Oslo.Kommune.no ", actor=ACTOR
    )
    assert added.id == known.id and added.name == "Ola"  # a known person's name is not changed here
    new = admins.add_administrator(session, org, PROGRAMME.id, name="Nina", email="nina@oslo.kommune.no", actor=ACTOR)
    assert [r.email for r in admins.administrators(session, org.id, PROGRAMME.id)] == [
        "kari@oslo.kommune.no",
        "nina@oslo.kommune.no",
        "ola@oslo.kommune.no",
    ]
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "role.grant").order_by(AuditEntry.id)).all()
    assert [(e.actor, e.after["person_id"], e.after["role"]) for e in entries] == [
        (ACTOR, known.id, "licence_admin"),
        (ACTOR, new.id, "licence_admin"),
    ]


@pytest.mark.parametrize(
    ("name", "email", "key"),
    [
        ("", "x@oslo.kommune.no", "name_missing"),
        ("X", "no-address", "email_invalid"),
        ("X", "kari@oslo.kommune.no", "admin_already"),
    ],
)
def test_add_administrator_refusals_write_nothing(session: Session, name: str, email: str, key: str) -> None:
    org = _org(session)
    _admin(session, org, "kari@oslo.kommune.no")
    session.commit()
    before = (_count(session, Person), _count(session, ProgrammeRole), _count(session, AuditEntry))
    with pytest.raises((admins.AdminError, InvalidPerson)) as refused:
        admins.add_administrator(session, org, PROGRAMME.id, name=name, email=email, actor=ACTOR)
    assert refused.value.key == key
    session.rollback()
    assert (_count(session, Person), _count(session, ProgrammeRole), _count(session, AuditEntry)) == before


def test_an_administrator_of_another_organisation_is_added_here_as_well(session: Session) -> None:
    oslo, bergen = _org(session), _org(session, "964338531", "Bergen kommune")
    kari = _admin(session, oslo, "kari@oslo.kommune.no")
    _admin(session, bergen, "berit@bergen.kommune.no")
    admins.add_administrator(session, bergen, PROGRAMME.id, name="Kari", email=kari.email, actor=ACTOR)
    assert admins.is_administrator(session, kari.id, bergen.id, PROGRAMME.id)
    assert admins.is_administrator(session, kari.id, oslo.id, PROGRAMME.id)


def test_remove_administrator_and_the_last_one_stays(session: Session) -> None:
    oslo, bergen = _org(session), _org(session, "964338531", "Bergen kommune")
    kari = _admin(session, oslo, "kari@oslo.kommune.no")
    ola = _admin(session, oslo, "ola@oslo.kommune.no")
    berit = _admin(session, bergen, "berit@bergen.kommune.no")
    admins.remove_administrator(session, oslo, PROGRAMME.id, ola.id, actor=ACTOR)
    assert [r.person_id for r in admins.administrators(session, oslo.id, PROGRAMME.id)] == [kari.id]
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "role.revoke")).one()
    assert entry.before is not None and entry.before["person_id"] == ola.id and entry.after is None
    session.commit()

    with pytest.raises(admins.AdminError) as last:
        admins.remove_administrator(session, oslo, PROGRAMME.id, kari.id, actor=ACTOR)
    assert last.value.key == "last_admin"
    # Bergen's administrator is not Oslo's: not found there (and so not removed from Bergen).
    with pytest.raises(admins.AdminError) as other:
        admins.remove_administrator(session, oslo, PROGRAMME.id, berit.id, actor=ACTOR)
    assert other.value.key == "admin_not_found"
    session.rollback()
    assert admins.is_administrator(session, kari.id, oslo.id, PROGRAMME.id)
    assert admins.is_administrator(session, berit.id, bergen.id, PROGRAMME.id)
    assert _count(session, AuditEntry) == 1


def test_two_administrators_removing_each_other_at_once_leave_one(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s, s.begin():
        org = _org(s)
        ids = [_admin(s, org, f"a{n}@oslo.kommune.no").id for n in range(2)]
        org_id = org.id
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def remove(other: int) -> None:
        with session_factory() as s:
            barrier.wait()
            try:
                with s.begin():
                    admins.remove_administrator(s, s.get(Organisation, org_id), PROGRAMME.id, other, actor=ACTOR)
                outcomes.append("removed")
            except admins.AdminError as exc:
                outcomes.append(exc.key)

    threads = [threading.Thread(target=remove, args=(ids[1 - n],)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["last_admin", "removed"]
    with session_factory() as s:
        assert len(admins.administrators(s, org_id, PROGRAMME.id)) == 1


# --- read models --------------------------------------------------------------------------------------------------


def _people(session: Session) -> tuple[Organisation, dict[str, Seat]]:
    org, bergen = _org(session), _org(session, "964338531", "Bergen kommune")
    _pool(session, org, 5)
    _pool(session, bergen, 1)
    seats = {
        key: assign_person(session, org, PROGRAMME, PersonInput(name, f"{key}@oslo.kommune.no", place), actor=ACTOR)
        for key, name, place in [
            ("active", "Aktiv Anne", "sykehjem"),
            ("never", "+Aldri Inne", "-hjemmetjeneste"),
            ("pending", "Venter Vera", "sykehjem"),
            ("gone", "Borte Bo", "sykehjem"),
        ]
    }
    assign_person(session, bergen, PROGRAMME, PersonInput("Bergen Bjørn", "bjorn@bergen.kommune.no"), actor=ACTOR)
    seats["active"].canvas_status = CanvasStatus.ACTIVE
    seats["active"].canvas_last_activity_at = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # 1 April in Oslo
    seats["never"].canvas_status = CanvasStatus.ACTIVE
    revoke_person(session, seats["gone"], actor=ACTOR)
    session.flush()
    return org, seats


def test_people_with_status_never_signed_in_and_no_other_organisation(session: Session) -> None:
    org, seats = _people(session)
    rows = queries.people(session, org.id, PROGRAMME.id)
    assert [(r.name, r.status) for r in rows] == [
        ("+Aldri Inne", "never_signed_in"),
        ("Aktiv Anne", "active"),
        ("Venter Vera", "pending"),
    ]
    everyone = queries.people(session, org.id, PROGRAMME.id, include_revoked=True)
    assert ("Borte Bo", "revoked") in [(r.name, r.status) for r in everyone]
    never = queries.people(session, org.id, PROGRAMME.id, never_signed_in=True)
    assert {r.seat_id for r in never} == {seats["never"].id, seats["pending"].id}


def test_seat_of_and_order_of_find_only_this_pools_rows(session: Session) -> None:
    org, seats = _people(session)
    bergen = _org(session, "964338531", "Bergen kommune")
    bergen_seat = session.scalars(select(Seat).where(Seat.organisation_id == bergen.id)).one()
    assert queries.seat_of(session, seats["active"].id, org.id, PROGRAMME.id) is seats["active"]
    assert queries.seat_of(session, bergen_seat.id, org.id, PROGRAMME.id) is None
    assert queries.seat_of(session, seats["active"].id, org.id, "laeringsnettverk-parorende") is None
    [bergen_order] = queries.orders(session, bergen.id, PROGRAMME.id)
    assert queries.order_of(session, bergen_order.id, org.id, PROGRAMME.id) is None
    assert queries.order_of(session, bergen_order.id, bergen.id, PROGRAMME.id) is bergen_order


def test_parked_steps_of_the_pool_only(session: Session) -> None:
    org, seats = _people(session)
    bergen = _org(session, "964338531", "Bergen kommune")
    bergen_seat = session.scalars(select(Seat).where(Seat.organisation_id == bergen.id)).one()
    for seat in (seats["pending"], bergen_seat):
        step = session.scalars(
            select(OutboxStep).where(OutboxStep.subject == f"seat:{seat.id}").order_by(OutboxStep.id)
        ).first()
        assert step is not None
        step.status, step.last_error = StepStatus.PARKED, f"failed for {seat.id}"
    session.add(OutboxStep(kind="mail.send", subject="mail:x", status=StepStatus.PARKED, last_error="smtp"))
    session.flush()
    [parked] = queries.parked_seat_steps(session, org.id, PROGRAMME.id)
    assert (parked.seat_id, parked.name, parked.error) == (
        seats["pending"].id,
        "Venter Vera",
        f"failed for {seats['pending'].id}",
    )
    assert queries.parked_step_of(session, parked.step_id, org.id, PROGRAMME.id) is not None
    assert queries.parked_step_of(session, parked.step_id, bergen.id, PROGRAMME.id) is None


def test_people_csv_is_utf8_bom_semicolons_oslo_days_and_neutralised(session: Session) -> None:
    org, _ = _people(session)
    rows = queries.people(session, org.id, PROGRAMME.id)
    body = queries.people_csv(
        rows, ["navn", "=e-post", *"abcdef"], lambda r: {"active": "aktiv"}.get(r.status, r.status)
    )
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8")[1:]
    assert "\r\n" in text
    parsed = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert parsed[0][:2] == ["navn", "'=e-post"]
    never, active = parsed[1], parsed[2]
    assert never[:4] == ["'+Aldri Inne", "never@oslo.kommune.no", "'-hjemmetjeneste", "never_signed_in"]
    assert active[3] == "aktiv" and active[5] == "2026-04-01"  # the day in Europe/Oslo, not UTC
    assert len(parsed) == 4
