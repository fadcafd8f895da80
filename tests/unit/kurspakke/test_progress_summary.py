"""The overviews' numbers counted in SQL (kurspakke/progress/summary.py) agree with the per-participant read model
(kurspakke/progress/overview.py) on varied data — on SQLite and PostgreSQL — and cost a fixed number of statements."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from kurspakke.groups.models import GroupMember, MentorGroup
from kurspakke.licences.models import Seat, SeatKind
from kurspakke.meetings.models import Attendance, Meeting
from kurspakke.models import Organisation, Person
from kurspakke.programmes import load_programmes
from kurspakke.progress.models import ModuleCompletion
from kurspakke.progress.overview import funnel, people_progress
from kurspakke.progress.summary import summarise
from kurspakke.services.people import get_or_create_organisation

PROGRAMME = load_programmes()["lindrende-behandling"]
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ORGS = (("Oslo kommune", "958935420"), ("Bergen kommune", "964338531"), ("Askøy kommune", "964338442"))


def _world(session: Session, seed: int, people: int = 120) -> list[Organisation]:
    rng = random.Random(seed)
    orgs = [get_or_create_organisation(session, name=n, orgnr=o) for n, o in ORGS]
    start = session.scalar(select(Person.id).order_by(Person.id.desc()).limit(1)) or 0
    session.execute(
        insert(Person), [{"name": f"Person {start + i}", "email": f"s{seed}-{i}@x.no"} for i in range(people)]
    )
    person_ids = session.scalars(select(Person.id).where(Person.id > start).order_by(Person.id)).all()
    groups: list[MentorGroup] = []
    for org in orgs:
        for g in range(2):
            group = MentorGroup(organisation_id=org.id, programme_id=PROGRAMME.id, name=f"G{seed}-{g}")
            session.add(group)
            groups.append(group)
    session.flush()
    for group in groups:  # some groups had their introduction (some in the future), with pacing from it
        if rng.random() < 0.6:
            when = NOW - timedelta(weeks=rng.randint(-2, 20))
            session.add(
                Meeting(
                    programme_id=PROGRAMME.id,
                    session_key="intro",
                    group_id=group.id,
                    organisation_id=group.organisation_id,
                    starts_at=when,
                    duration_minutes=90,
                    format="digital",
                    video_url="https://m.example.no/x",
                )
            )
    session.flush()
    seats = []
    for pid in person_ids:
        org = rng.choice(orgs)
        revoked = NOW if rng.random() < 0.05 else None
        kind = SeatKind.MENTOR if rng.random() < 0.05 else SeatKind.PARTICIPANT
        seats.append(
            Seat(
                organisation_id=org.id,
                programme_id=PROGRAMME.id,
                person_id=pid,
                kind=kind,
                workplace=rng.choice(["Sykehjem", "Hjemmetjeneste", ""]),
                assigned_at=NOW - timedelta(weeks=rng.randint(0, 30)),
                valid_until=NOW + timedelta(days=300),
                revoked_at=revoked,
            )
        )
    session.add_all(seats)
    session.flush()
    for seat in seats:
        mine = [g for g in groups if g.organisation_id == seat.organisation_id]
        if rng.random() < 0.8:
            session.add(GroupMember(group_id=rng.choice(mine).id, seat_id=seat.id))
        diligent = rng.random() < 0.15  # everything done: the completion rule holds
        for module in PROGRAMME.modules:
            if diligent or rng.random() < 0.55:
                session.add(
                    ModuleCompletion(
                        person_id=seat.person_id,
                        programme_id=PROGRAMME.id,
                        module_id=module.id,
                        completed_at=NOW - timedelta(days=3),
                    )
                )
        for s in PROGRAMME.sessions:
            roll = 0.5 if diligent else rng.random()
            if roll < 0.6:
                session.add(
                    Attendance(
                        seat_id=seat.id,
                        programme_id=PROGRAMME.id,
                        session_key=s.id,
                        present=True,
                        makeup=roll < 0.1,
                        recorded_by="t",
                        note="x" if roll < 0.1 else "",
                    )
                )
            elif roll < 0.75:
                session.add(
                    Attendance(
                        seat_id=seat.id, programme_id=PROGRAMME.id, session_key=s.id, present=False, recorded_by="t"
                    )
                )
    session.flush()
    return orgs


def test_the_sql_summary_counts_what_the_read_model_counts(session: Session) -> None:
    orgs = _world(session, seed=7)
    session.commit()
    people = people_progress(session, PROGRAMME, now=NOW)
    summary = summarise(session, PROGRAMME, with_behind=True, now=NOW)
    for org in orgs:
        mine = [p for p in people if p.organisation_id == org.id]
        assert summary.by_organisation[org.id] == funnel(PROGRAMME, mine), org.name
    assert summary.total(PROGRAMME) == funnel(PROGRAMME, people)
    expected_behind = sorted((p.seat_id, len(p.modules), p.expected_modules) for p in people if p.behind)
    assert sorted((b.seat_id, b.done, b.expected) for b in summary.behind) == expected_behind
    assert expected_behind and any(p.complete for p in people)  # the data exercises both
    one = summarise(session, PROGRAMME, organisation_ids=[orgs[1].id], now=NOW)
    assert list(one.by_organisation) == [orgs[1].id]


def test_the_summary_costs_the_same_statements_for_few_and_many(session: Session) -> None:
    engine = session.get_bind()
    counts = []
    for seed, people in ((1, 10), (2, 400)):
        _world(session, seed, people)
        session.commit()
        seen: list[str] = []

        def count(conn, cursor, statement, parameters, context, executemany, seen=seen):  # type: ignore[no-untyped-def]
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            summarise(session, PROGRAMME, with_behind=True, now=NOW)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        counts.append(len(seen))
    assert counts[0] == counts[1] <= 4  # three counts and the names of those behind
