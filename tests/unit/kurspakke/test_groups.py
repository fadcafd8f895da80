"""Mentor groups (kurspakke.groups.services), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.groups import services as groups
from kurspakke.groups.models import GroupMember, GroupMentor, MentorGroup
from kurspakke.licences.models import AuditEntry, OrderSource, Seat
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person, revoke_person
from kurspakke.licences.services import LicenceError, confirm_order, create_order
from kurspakke.models import Organisation, Person
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_organisation

PROGRAMME = load_programmes()["lindrende-behandling"]
ACTOR = "licence_admin:test"


def _org(session: Session, orgnr: str = "958935420", name: str = "Oslo kommune", seats: int = 60) -> Organisation:
    org = get_or_create_organisation(session, name=name, orgnr=orgnr)
    order = create_order(
        session, organisation=org, programme=PROGRAMME, quantity=seats, source=OrderSource.MANUAL, actor=ACTOR
    )
    confirm_order(session, order, actor=ACTOR)
    return org


def _bergen(session: Session) -> Organisation:
    return _org(session, "964338531", "Bergen kommune")


def _participant(session: Session, org: Organisation, name: str, workplace: str = "") -> Seat:
    email = f"{name.lower().replace(' ', '.')}@{org.orgnr}.no"
    return assign_person(session, org, PROGRAMME, PersonInput(name, email, workplace), actor=ACTOR)


def _mentor(session: Session, org: Organisation, name: str) -> Person:
    seat = appoint_mentor(session, org, PROGRAMME, PersonInput(name, f"{name.lower()}@{org.orgnr}.no"), actor=ACTOR)
    return seat.person


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _snapshot(session: Session) -> tuple[int, ...]:
    return tuple(_count(session, m) for m in (MentorGroup, GroupMentor, GroupMember, AuditEntry, OutboxStep))


def _group_steps(session: Session) -> list[tuple[str, dict[str, object]]]:
    steps = session.scalars(select(OutboxStep).where(OutboxStep.kind == groups.GROUP_SYNC).order_by(OutboxStep.id))
    return [(s.subject, s.payload) for s in steps]


def _group_audit(session: Session) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "group").order_by(AuditEntry.id)))


def _refused(session: Session, key: str, call: object, *args: object, **kwargs: object) -> LicenceError:
    """Run the call, expect the refusal ``key``, and assert that nothing was written (counted in the same
    transaction, so a flushed but uncommitted row would show)."""
    session.commit()
    before = _snapshot(session)
    with pytest.raises(groups.GroupError) as refused:
        call(*args, **kwargs)  # type: ignore[operator]
    assert refused.value.key == key
    assert isinstance(refused.value, LicenceError)
    assert _snapshot(session) == before
    session.rollback()
    assert _snapshot(session) == before
    return refused.value


def _members(session: Session, group: MentorGroup) -> list[int]:
    return sorted(seat.id for seat in groups.members(session, group))


# --- groups ------------------------------------------------------------------------------------------------------


def test_create_rename_delete_are_audited_and_written_as_steps(session: Session) -> None:
    org = _org(session)
    group = groups.create_group(session, org, PROGRAMME.id, "  Gruppe   A ", actor=ACTOR)
    assert (group.name, group.organisation_id, group.programme_id) == ("Gruppe A", org.id, PROGRAMME.id)
    groups.rename_group(session, group, "Gruppe A", actor=ACTOR)  # unchanged: nothing written
    groups.rename_group(session, group, "Sykehjemsgruppa", actor=ACTOR)
    session.commit()
    group_id = group.id
    groups.delete_group(session, group, actor=ACTOR)
    session.commit()
    assert _count(session, MentorGroup) == 0
    entries = _group_audit(session)
    assert [(e.action, e.entity_id, e.actor) for e in entries] == [
        ("group.create", str(group_id), ACTOR),
        ("group.rename", str(group_id), ACTOR),
        ("group.delete", str(group_id), ACTOR),
    ]
    assert entries[1].before["name"] == "Gruppe A" and entries[1].after["name"] == "Sykehjemsgruppa"
    assert entries[2].after is None
    # One waiting step per group however many changes: the step reads the group when it runs.
    assert _group_steps(session) == [(f"group:{group_id}", {"group_id": group_id})]


def test_group_names_are_unique_per_organisation_and_programme(session: Session) -> None:
    org, bergen = _org(session), _bergen(session)
    groups.create_group(session, org, PROGRAMME.id, "Gruppe A", actor=ACTOR)
    other = groups.create_group(session, org, PROGRAMME.id, "Gruppe B", actor=ACTOR)
    groups.create_group(session, bergen, PROGRAMME.id, "Gruppe A", actor=ACTOR)  # another organisation: fine
    groups.create_group(session, org, "another-programme", "Gruppe A", actor=ACTOR)  # another programme: fine
    error = _refused(
        session, "group_name_taken", groups.create_group, session, org, PROGRAMME.id, "gruppe a", actor=ACTOR
    )
    assert error.params == {"name": "gruppe a"}
    _refused(session, "group_name_taken", groups.rename_group, session, other, " GRUPPE A ", actor=ACTOR)
    _refused(session, "group_name_missing", groups.create_group, session, org, PROGRAMME.id, "   ", actor=ACTOR)
    _refused(session, "group_name_too_long", groups.create_group, session, org, PROGRAMME.id, "x" * 256, actor=ACTOR)
    assert session.get(MentorGroup, other.id).name == "Gruppe B"  # type: ignore[union-attr]


def test_a_group_with_members_is_not_deleted(session: Session) -> None:
    org = _org(session)
    group = groups.create_group(session, org, PROGRAMME.id, "Gruppe A", actor=ACTOR)
    seat = _participant(session, org, "Kari")
    groups.add_members(session, group, [seat], actor=ACTOR)
    error = _refused(session, "group_not_empty", groups.delete_group, session, group, actor=ACTOR)
    assert error.params == {"members": 1}
    groups.remove_member(session, group, seat, actor=ACTOR)
    groups.add_mentor(session, group, _mentor(session, org, "Mona"), actor=ACTOR)
    groups.delete_group(session, group, actor=ACTOR)
    session.commit()
    assert _count(session, MentorGroup) == _count(session, GroupMentor) == _count(session, GroupMember) == 0
    assert session.get(Seat, seat.id) is not None  # the participant's seat stays


# --- mentors -----------------------------------------------------------------------------------------------------


def test_add_and_remove_mentor(session: Session) -> None:
    org = _org(session)
    group = groups.create_group(session, org, PROGRAMME.id, "Gruppe A", actor=ACTOR)
    mona, nils = _mentor(session, org, "Mona"), _mentor(session, org, "Nils")
    groups.add_mentor(session, group, mona, actor=ACTOR)
    groups.add_mentor(session, group, nils, actor=ACTOR)
    groups.add_mentor(session, group, mona, actor=ACTOR)  # already there: nothing written
    assert [p.name for p in groups.mentors(session, group)] == ["Mona", "Nils"]
    groups.remove_mentor(session, group, nils, actor=ACTOR)
    session.commit()
    assert [p.name for p in groups.mentors(session, group)] == ["Mona"]
    actions = [(e.action, e.before, e.after) for e in _group_audit(session)][1:]
    assert actions == [
        ("group.mentor_add", None, {"person_id": mona.id}),
        ("group.mentor_add", None, {"person_id": nils.id}),
        ("group.mentor_remove", {"person_id": nils.id}, None),
    ]
    _refused(session, "mentor_not_in_group", groups.remove_mentor, session, group, nils, actor=ACTOR)


def test_a_mentor_of_another_organisation_or_no_mentor_is_refused(session: Session) -> None:
    org, bergen = _org(session), _bergen(session)
    group = groups.create_group(session, org, PROGRAMME.id, "Gruppe A", actor=ACTOR)
    bergen_mentor = _mentor(session, bergen, "Bjarte")
    participant = _participant(session, org, "Kari").person
    _refused(session, "mentor_other_organisation", groups.add_mentor, session, group, bergen_mentor, actor=ACTOR)
    _refused(session, "not_a_mentor", groups.add_mentor, session, group, participant, actor=ACTOR)


# --- members -----------------------------------------------------------------------------------------------------


def test_add_members_and_move_a_member_between_groups(session: Session) -> None:
    org = _org(session)
    a = groups.create_group(session, org, PROGRAMME.id, "Gruppe A", actor=ACTOR)
    b = groups.create_group(session, org, PROGRAMME.id, "Gruppe B", actor=ACTOR)
    kari, ola, per = (_participant(session, org, n, "Sykehjem") for n in ("Kari", "Ola", "Per"))
    assert groups.add_members(session, a, [kari, ola, kari], actor=ACTOR) == [kari, ola]
    assert groups.add_members(session, a, [kari], actor=ACTOR) == []  # already there: nothing written
    session.commit()
    membership_id = session.scalars(select(GroupMember.id).where(GroupMember.seat_id == kari.id)).one()
    assert groups.add_members(session, b, [kari, per], actor=ACTOR) == [kari, per]
    session.commit()
    assert _members(session, a) == [ola.id]
    assert _members(session, b) == sorted([kari.id, per.id])
    # The move changed the membership row, nothing else: the seat and person (and their history) are untouched.
    assert session.scalars(select(GroupMember.id).where(GroupMember.seat_id == kari.id)).one() == membership_id
    assert session.get(Seat, kari.id).revoked_at is None  # type: ignore[union-attr]
    moves = [e for e in _group_audit(session) if e.action == "group.member_move"]
    assert [(m.entity_id, m.before, m.after) for m in moves] == [
        (str(b.id), {"seat_id": kari.id, "group_id": a.id}, {"seat_id": kari.id, "group_id": b.id, "via": "hand"})
    ]
    adds = [e.after["seat_id"] for e in _group_audit(session) if e.action == "group.member_add"]
    assert adds == [kari.id, ola.id, per.id]
    # Both groups are synced: the one the participant left and the one they joined.
    assert {subject for subject, _ in _group_steps(session)} == {f"group:{a.id}", f"group:{b.id}"}
    assert all(s.status is StepStatus.PENDING for s in session.scalars(select(OutboxStep)))


def test_remove_member(session: Session) -> None:
    org = _org(session)
    group = groups.create_group(session, org, PROGRAMME.id, "Gruppe A", actor=ACTOR)
    kari = _participant(session, org, "Kari")
    groups.add_members(session, group, [kari], actor=ACTOR)
    groups.remove_member(session, group, kari, actor=ACTOR)
    session.commit()
    assert _members(session, group) == []
    assert _group_audit(session)[-1].action == "group.member_remove"
    _refused(session, "seat_not_in_group", groups.remove_member, session, group, kari, actor=ACTOR)


def test_seats_of_another_organisation_revoked_or_of_mentors_are_refused_and_nothing_is_written(
    session: Session,
) -> None:
    org, bergen = _org(session), _bergen(session)
    group = groups.create_group(session, org, PROGRAMME.id, "Gruppe A", actor=ACTOR)
    fine = _participant(session, org, "Kari")
    foreign = _participant(session, bergen, "Bjarte")
    revoked = revoke_person(session, _participant(session, org, "Ola"), actor=ACTOR)
    mentor_seat = appoint_mentor(session, org, PROGRAMME, PersonInput("Mona", "mona@oslo.no"), actor=ACTOR)
    other_programme = groups.create_group(session, org, "another-programme", "Gruppe A", actor=ACTOR)
    # The good seat comes first: it is not written either, as all seats are checked before any is placed.
    error = _refused(
        session, "seat_other_organisation", groups.add_members, session, group, [fine, foreign], actor=ACTOR
    )
    assert error.params == {"seat_id": foreign.id}
    _refused(session, "seat_revoked", groups.add_members, session, group, [fine, revoked], actor=ACTOR)
    _refused(session, "seat_not_participant", groups.add_members, session, group, [mentor_seat], actor=ACTOR)
    _refused(session, "seat_other_programme", groups.add_members, session, other_programme, [fine], actor=ACTOR)


def test_mixed_workplaces(session: Session) -> None:
    org = _org(session)
    group = groups.create_group(session, org, PROGRAMME.id, "Gruppe A", actor=ACTOR)
    assert not groups.mixed_workplaces(session, group)
    groups.add_members(
        session,
        group,
        [_participant(session, org, "Kari", "Sykehjem"), _participant(session, org, "Ola", " sykehjem ")],
        actor=ACTOR,
    )
    assert not groups.mixed_workplaces(session, group)
    groups.add_members(session, group, [_participant(session, org, "Per", "Hjemmetjeneste")], actor=ACTOR)
    assert groups.mixed_workplaces(session, group)
    other = groups.create_group(session, org, PROGRAMME.id, "Gruppe B", actor=ACTOR)
    groups.add_members(
        session, other, [_participant(session, org, "Siri", "Sykehjem"), _participant(session, org, "Tor")], actor=ACTOR
    )
    assert groups.mixed_workplaces(session, other)  # an unknown workplace may be another: remind


# --- distribute --------------------------------------------------------------------------------------------------


def _workplaces(session: Session, group: MentorGroup) -> Counter[str]:
    return Counter(seat.workplace for seat in groups.members(session, group))


@pytest.mark.parametrize("size", [0, 51, -1, True])
def test_distribute_refuses_a_size_out_of_range(session: Session, size: int) -> None:
    org = _org(session)
    _participant(session, org, "Kari")
    error = _refused(session, "size_out_of_range", groups.distribute, session, org, PROGRAMME.id, size, actor=ACTOR)
    assert error.params == {"minimum": 1, "maximum": 50}


def test_distribute_balances_and_keeps_workplaces_together(session: Session) -> None:
    org = _org(session)
    for i in range(6):
        _participant(session, org, f"Syk {i}", "Sykehjem")
    for i in range(4):
        _participant(session, org, f"Hjem {i}", "Hjemmetjeneste")
    made = groups.distribute(session, org, PROGRAMME.id, 5, actor=ACTOR)
    session.commit()
    assert [g.name for g in made] == ["Gruppe 1", "Gruppe 2"]
    assert [groups.member_count(session, g) for g in made] == [5, 5]
    # Sykehjem (6) cannot fit in one group of 5, so it is split; hjemmetjeneste is kept whole.
    assert [_workplaces(session, g) for g in made] == [
        Counter({"Sykehjem": 5}),
        Counter({"Hjemmetjeneste": 4, "Sykehjem": 1}),
    ]
    assert [groups.mixed_workplaces(session, g) for g in made] == [False, True]
    assert groups.unassigned_seats(session, org, PROGRAMME.id) == []
    assert {subject for subject, _ in _group_steps(session)} == {f"group:{g.id}" for g in made}
    audit = Counter((e.action, e.after.get("via")) for e in _group_audit(session) if e.after)
    assert audit == {("group.create", None): 2, ("group.member_add", "distribute"): 10}
    # Nobody left: a second run writes nothing.
    before = _snapshot(session)
    assert groups.distribute(session, org, PROGRAMME.id, 5, actor=ACTOR) == []
    assert _snapshot(session) == before


def test_distribute_keeps_every_workplace_whole_when_it_can(session: Session) -> None:
    org = _org(session)
    for workplace, n in (("A", 3), ("B", 2), ("C", 3), ("D", 2), ("", 1)):
        for i in range(n):
            _participant(session, org, f"{workplace or 'X'} {i}", workplace)
    made = groups.distribute(session, org, PROGRAMME.id, 4, actor=ACTOR)
    sizes = sorted(groups.member_count(session, g) for g in made)
    assert sizes == [3, 4, 4]  # 11 people, at most 4: three groups, differing by at most one
    seen: dict[str, set[int]] = {}
    for group in made:
        for seat in groups.members(session, group):
            seen.setdefault(seat.workplace, set()).add(group.id)
    assert all(len(ids) == 1 for workplace, ids in seen.items() if workplace)


def test_distribute_is_deterministic(session: Session) -> None:
    def run(orgnr: str, name: str) -> list[list[str]]:
        org = _org(session, orgnr, name)
        for i, workplace in enumerate(["B", "A", "C", "A", "B", "A", "", "C", "A", "B", "D", "D", "A"]):
            _participant(session, org, f"P{i}", workplace)
        made = groups.distribute(session, org, PROGRAMME.id, 4, actor=ACTOR)
        return [sorted(s.person.name for s in groups.members(session, g)) for g in made]

    first = run("958935420", "Oslo kommune")
    assert first == run("964338531", "Bergen kommune")
    assert [len(g) for g in first] == [4, 3, 3, 3]


def test_distribute_fills_existing_groups_and_leaves_placed_people_alone(session: Session) -> None:
    org = _org(session)
    bergen = _bergen(session)
    existing = groups.create_group(session, org, PROGRAMME.id, "Gruppe 1", actor=ACTOR)
    full = groups.create_group(session, org, PROGRAMME.id, "Full", actor=ACTOR)
    placed = _participant(session, org, "Kari", "Sykehjem")
    groups.add_members(session, existing, [placed], actor=ACTOR)
    groups.add_members(session, full, [_participant(session, org, f"F{i}", "Legevakt") for i in range(3)], actor=ACTOR)
    for i in range(4):
        _participant(session, org, f"S{i}", "Sykehjem")
    revoke_person(session, _participant(session, org, "Gone", "Sykehjem"), actor=ACTOR)
    _participant(session, bergen, "Bjarte", "Sykehjem")  # another organisation: never touched
    appoint_mentor(session, org, PROGRAMME, PersonInput("Mona", "mona@oslo.no", "Sykehjem"), actor=ACTOR)
    made = groups.distribute(session, org, PROGRAMME.id, 3, actor=ACTOR)
    session.commit()
    # 4 sykehjem to place; "Full" has no room; "Gruppe 1" has 2; one new group, named past the taken "Gruppe 1".
    assert [g.name for g in made] == ["Gruppe 1", "Gruppe 2"]
    assert [groups.member_count(session, g) for g in made] == [3, 2]
    assert groups.member_count(session, full) == 3
    assert placed.id in _members(session, existing)
    assert [s.person.name for s in groups.unassigned_seats(session, bergen, PROGRAMME.id)] == ["Bjarte"]
    assert groups.unassigned_seats(session, org, PROGRAMME.id) == []


def test_distribute_one_per_group_and_fifty(session: Session) -> None:
    org = _org(session)
    for i in range(3):
        _participant(session, org, f"P{i}", "A")
    assert [groups.member_count(session, g) for g in groups.distribute(session, org, PROGRAMME.id, 1, actor=ACTOR)] == [
        1,
        1,
        1,
    ]
    for i in range(3, 55):
        _participant(session, org, f"P{i}", "B" if i % 2 else "C")
    made = groups.distribute(session, org, PROGRAMME.id, 50, actor=ACTOR)
    # The three groups of one have room: they are filled level, no new group is needed.
    assert [groups.member_count(session, g) for g in made] == [19, 18, 18]


def test_two_distributions_at_once_place_each_person_once(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s, s.begin():
        org = _org(s)
        for i in range(12):
            _participant(s, org, f"P{i}", "AB"[i % 2])
        org_id = org.id
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def run() -> None:
        with session_factory() as s:
            barrier.wait()
            try:
                with s.begin():
                    made = groups.distribute(s, s.get(Organisation, org_id), PROGRAMME.id, 5, actor=ACTOR)  # type: ignore[arg-type]
                    outcomes.append(len(made))
            except Exception as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # The second waits on the pool's lock, then finds nobody unassigned.
    assert sorted(outcomes) == [0, 3]  # type: ignore[type-var]
    with session_factory() as s:
        assert _count(s, GroupMember) == 12
        assert sorted(groups.member_count(s, g) for g in s.scalars(select(MentorGroup))) == [4, 4, 4]
