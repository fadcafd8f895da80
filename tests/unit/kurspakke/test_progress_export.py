"""The progress matrix (kurspakke/progress/export.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import event
from sqlalchemy.orm import Session

from kurspakke.licences.models import OrderSource, Seat
from kurspakke.licences.seating import PersonInput, appoint_mentor, assign_person, revoke_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.models import Organisation
from kurspakke.programmes import load_programmes
from kurspakke.progress.export import export_csv, export_rows, header, norwegian_key
from kurspakke.progress.models import ModuleCompletion
from kurspakke.services.people import get_or_create_organisation

PROGRAMME = load_programmes()["lindrende-behandling"]
ACTOR = "test"
HEADER = [
    "navn",
    "e-post",
    "organisasjon",
    "arbeidssted",
    "gruppe",
    "emne-1",
    "emne-2",
    "emne-3",
    "emne-4",
    "intro",
    "samling-1",
    "samling-2",
    "samling-3",
    "samling-4",
    "kursbevis",
]


def organisation(
    session: Session, name: str = "Oslo kommune", orgnr: str = "958935420", seats: int = 20
) -> Organisation:
    org = get_or_create_organisation(session, name=name, orgnr=orgnr)
    order = create_order(
        session, organisation=org, programme=PROGRAMME, quantity=seats, source=OrderSource.MANUAL, actor=ACTOR
    )
    confirm_order(session, order, actor=ACTOR)
    return org


def participant(session: Session, org: Organisation, name: str, email: str, workplace: str = "") -> Seat:
    return assign_person(session, org, PROGRAMME, PersonInput(name, email, workplace), actor=ACTOR)


def complete(session: Session, seat: Seat, module_id: str, at: datetime) -> None:
    session.add(
        ModuleCompletion(person_id=seat.person_id, programme_id=PROGRAMME.id, module_id=module_id, completed_at=at)
    )
    session.flush()


def test_the_header_has_the_modules_then_the_sessions_in_the_files_order() -> None:
    assert header(PROGRAMME) == HEADER
    assert HEADER[5:9] == [m.id for m in PROGRAMME.modules]
    assert HEADER[9:14] == [s.id for s in PROGRAMME.sessions]


def test_a_row_has_the_days_modules_were_completed_in_oslo(session: Session) -> None:
    org = organisation(session)
    seat = participant(session, org, "Kari Nordmann", "kari@example.no", "Sykehjem")
    complete(session, seat, "emne-3", datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    complete(session, seat, "emne-1", datetime(2026, 3, 31, 23, 30, tzinfo=UTC))  # 01:30 on 1 April in Oslo
    complete(session, seat, "emne-2", datetime(2026, 1, 15, 22, 59, tzinfo=UTC))  # 23:59 in Oslo: the same day
    other = participant(session, org, "Ola Nordmann", "ola@example.no")
    session.add(
        ModuleCompletion(
            person_id=other.person_id,
            programme_id="laeringsnettverk-parorende",
            module_id="emne-4",
            completed_at=datetime(2026, 2, 1, tzinfo=UTC),
        )
    )
    session.flush()

    assert export_rows(session, PROGRAMME) == [
        [
            "Kari Nordmann",
            "kari@example.no",
            "Oslo kommune",
            "Sykehjem",
            "",
            "2026-04-01",
            "2026-01-15",
            "2026-03-10",
            "",
            *[""] * 5,
            "",
        ],
        ["Ola Nordmann", "ola@example.no", "Oslo kommune", "", "", *[""] * 4, *[""] * 5, ""],
    ]


def test_revoked_seats_and_mentors_are_not_rows(session: Session) -> None:
    org = organisation(session)
    participant(session, org, "Kari Nordmann", "kari@example.no")
    revoke_person(session, participant(session, org, "Revokert Person", "revoked@example.no"), actor=ACTOR)
    appoint_mentor(session, org, PROGRAMME, PersonInput("Mentor Person", "mentor@example.no"), actor=ACTOR)
    session.flush()

    assert [row[0] for row in export_rows(session, PROGRAMME)] == ["Kari Nordmann"]


def test_rows_are_in_norwegian_order_by_organisation_then_name(session: Session) -> None:
    oslo = organisation(session, "Oslo kommune", "958935420")
    as_ = organisation(session, "Ås kommune", "964948798")
    bodo = organisation(session, "bodø kommune", "972418013")
    for name in ("Åse Ås", "Zorro Zeta", "Ørjan Ø", "Ærle Æ", "anne Aa", "Bjørn B"):
        participant(session, oslo, name, name.split()[0].casefold().replace("å", "aa") + "@example.no")
    participant(session, as_, "Berit Ås", "berit@example.no")
    participant(session, bodo, "Per Bodø", "per@example.no")

    rows = export_rows(session, PROGRAMME)

    assert [(row[2], row[0]) for row in rows] == [
        ("bodø kommune", "Per Bodø"),
        ("Oslo kommune", "anne Aa"),
        ("Oslo kommune", "Bjørn B"),
        ("Oslo kommune", "Zorro Zeta"),
        ("Oslo kommune", "Ærle Æ"),
        ("Oslo kommune", "Ørjan Ø"),
        ("Oslo kommune", "Åse Ås"),
        ("Ås kommune", "Berit Ås"),
    ]


def test_norwegian_key() -> None:
    names = ["Åse", "Zorro", "Ørjan", "Ærlig", "élise", "Eva", "åsmund", "Øystein", "Anne"]
    assert sorted(names, key=norwegian_key) == [
        "Anne",
        "élise",
        "Eva",
        "Zorro",
        "Ærlig",
        "Ørjan",
        "Øystein",
        "Åse",
        "åsmund",
    ]


def test_one_organisation_only_when_given(session: Session) -> None:
    oslo = organisation(session, "Oslo kommune", "958935420")
    bergen = organisation(session, "Bergen kommune", "964338531")
    participant(session, oslo, "Kari Oslo", "kari@example.no")
    participant(session, bergen, "Bjarne Bergen", "bjarne@example.no")

    assert [row[0] for row in export_rows(session, PROGRAMME, bergen)] == ["Bjarne Bergen"]
    assert [row[0] for row in export_rows(session, PROGRAMME, oslo)] == ["Kari Oslo"]
    assert [row[0] for row in export_rows(session, PROGRAMME)] == ["Bjarne Bergen", "Kari Oslo"]


def test_the_file_has_a_bom_the_header_and_neutralised_cells(session: Session) -> None:
    org = organisation(session, "=Kommune", "958935420")
    seat = participant(session, org, "-Minus Person", "+plus@example.no", "@arbeidssted")
    complete(session, seat, "emne-2", datetime(2026, 5, 5, 10, 0, tzinfo=UTC))

    data = export_csv(session, PROGRAMME)

    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.splitlines()[0] == ";".join(HEADER)
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[1][:6] == ["'-Minus Person", "'+plus@example.no", "'=Kommune", "'@arbeidssted", "", ""]
    assert rows[1][6] == "2026-05-05"
    assert len(rows) == 2 and len(rows[1]) == len(HEADER)


def test_an_empty_programme_is_the_header_only(session: Session) -> None:
    assert export_csv(session, PROGRAMME) == ("\ufeff" + ";".join(HEADER) + "\r\n").encode("utf-8")


@contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = session.get_bind()

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_number_of_statements_does_not_grow_with_the_people(session: Session) -> None:
    counts = []
    for orgnr, people in (("958935420", 10), ("964338531", 100)):
        org = organisation(session, f"Kommune {people}", orgnr, seats=people)
        for n in range(people):
            seat = participant(session, org, f"Person {n}", f"p{people}-{n}@example.no")
            complete(session, seat, "emne-1", datetime(2026, 3, 1, tzinfo=UTC))
        session.commit()
        with statements(session) as seen:
            rows = export_rows(session, PROGRAMME, org)
        assert len(rows) == people and all(row[5] == "2026-03-01" for row in rows)
        counts.append(len(seen))
    # seats, completions, attendance, certificates (and the pacing starts with groups)
    assert counts[0] == counts[1] <= 5


def test_the_kursbevis_column_has_the_valid_certificates_code_as_printed(session: Session) -> None:
    from kurspakke.certificates import services as certificates
    from kurspakke.certificates.codes import format_code
    from tests.support.certificates import complete_modules, hold_sessions, run

    r = run(session, ["Kari Nordmann", "Ola Hansen"])
    kari, ola = r.seats
    complete_modules(session, kari)
    complete_modules(session, ola)
    hold_sessions(session, r)
    certificates.evaluate(session, PROGRAMME, [kari.person_id, ola.person_id])
    session.flush()
    kari_cert = certificates.current(session, PROGRAMME.id, kari.person_id)
    ola_cert = certificates.current(session, PROGRAMME.id, ola.person_id)
    assert kari_cert is not None and ola_cert is not None
    certificates.revoke(session, ola_cert, reason="Feil person", actor=ACTOR)
    session.flush()

    cells = {row[0]: row[-1] for row in export_rows(session, PROGRAMME)}

    assert cells == {"Kari Nordmann": format_code(kari_cert.code), "Ola Hansen": ""}  # a revoked one is no certificate
