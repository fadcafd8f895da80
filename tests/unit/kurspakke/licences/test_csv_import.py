"""Seats from CSV (kurspakke.licences.csv_import): reading, preview and apply, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.licences import csv_import
from kurspakke.licences.csv_import import CsvFileError, SeatsMissing, apply, preview, read_csv
from kurspakke.licences.seating import PersonInput, assign_person, neutralise, revoke_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.models import (
    AuditEntry,
    OrderSource,
    Organisation,
    Person,
    ProgrammeRole,
    ProgrammeRoleKind,
    Seat,
    SeatPool,
)
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_organisation, get_or_create_person

PROGRAMME = load_programmes()["lindrende-behandling"]
ACTOR = "cli:test"
OWNER = "course owner test@example.no"
HEADER = "navn;e-post;arbeidssted\n"


def _org(session: Session, orgnr: str = "958935420", name: str = "Oslo kommune") -> Organisation:
    return get_or_create_organisation(session, name=name, orgnr=orgnr)


def _pool(session: Session, org: Organisation, quantity: int) -> None:
    order = create_order(
        session, organisation=org, programme=PROGRAMME, quantity=quantity, source=OrderSource.MANUAL, actor=OWNER
    )
    confirm_order(session, order, actor=OWNER)


@pytest.fixture
def org(session: Session) -> Organisation:
    org = _org(session)
    _pool(session, org, 5)
    session.commit()
    return org


def _counts(factory: sessionmaker[Session]) -> dict[str, int]:
    """What is committed, read in a fresh session."""
    with factory() as s:
        return {
            "people": s.scalar(select(func.count(Person.id))) or 0,
            "seats": s.scalar(select(func.count(Seat.id))) or 0,
            "roles": s.scalar(select(func.count(ProgrammeRole.id))) or 0,
            "audit": s.scalar(select(func.count(AuditEntry.id))) or 0,
            "steps": s.scalar(select(func.count(OutboxStep.id))) or 0,
            "assigned": s.scalar(select(func.coalesce(func.sum(SeatPool.assigned), 0))) or 0,
        }


def _csv(*rows: str, header: str = HEADER) -> bytes:
    return (header + "\n".join(rows) + "\n").encode()


# --- reading -----------------------------------------------------------------------------------------------------


def test_utf8_with_semicolons():
    parsed = read_csv("navn;e-post;arbeidssted\nÅse Ødegård;ase@example.no;sykehjem\n".encode())
    assert (parsed.encoding, parsed.separator) == ("UTF-8", ";")
    assert parsed.columns == ("name", "email", "workplace")
    [row] = parsed.rows
    assert row.row == 2
    assert row.person == PersonInput("Åse Ødegård", "ase@example.no", "sykehjem", None, None)


def test_utf8_with_bom_is_reported_and_the_bom_is_not_part_of_the_header():
    parsed = read_csv("\ufeffnavn;e-post;arbeidssted\r\nÆrlig Øyvind;oy@example.no;hjemmetjeneste\r\n".encode())
    assert parsed.encoding == "UTF-8 med BOM"
    assert parsed.rows[0].person.name == "Ærlig Øyvind"


def test_windows_1252_when_the_bytes_are_not_utf8():
    data = "navn;e-post;arbeidssted\nBjørn Håkonsen Ærø;bjorn@example.no;tjenester til utviklingshemmede\n"
    parsed = read_csv(data.encode("cp1252"))
    assert parsed.encoding == "Windows-1252"
    assert parsed.rows[0].person.name == "Bjørn Håkonsen Ærø"
    assert parsed.rows[0].person.workplace == "tjenester til utviklingshemmede"


def test_english_header_with_commas_and_optional_columns_in_any_order():
    data = b'Login_ID, Email ,SIS_ID,Name,Workplace\nkari.feide,Kari@Example.no,S-1,"Nordmann, Kari",sykehjem\n'
    parsed = read_csv(data)
    assert parsed.separator == ","
    assert parsed.columns == ("login_id", "email", "sis_id", "name", "workplace")
    assert parsed.rows[0].person == PersonInput("Nordmann, Kari", "Kari@Example.no", "sykehjem", "S-1", "kari.feide")


def test_empty_optional_cells_are_none_and_empty_lines_keep_the_row_numbers():
    parsed = read_csv(b"\nnavn;e-post;arbeidssted;sis_id\n\nA;a@example.no;x;\n  \nB;b@example.no;y; \n")
    assert [(r.row, r.person.sis_user_id) for r in parsed.rows] == [(4, None), (6, None)]


@pytest.mark.parametrize(
    ("header", "missing", "unknown", "duplicate"),
    [
        ("navn;epost;arbeidssted", "e-post", "epost", ""),
        ("navn;e-post", "arbeidssted", "", ""),
        ("navn;e-post;arbeidssted;personnummer", "", "personnummer", ""),
        ("navn;e-post;arbeidssted;name", "", "", "name"),
        ("first,last,mail", "navn, e-post, arbeidssted", "first, last, mail", ""),
    ],
)
def test_wrong_columns_are_a_file_error_naming_them(header, missing, unknown, duplicate):
    with pytest.raises(CsvFileError) as refused:
        read_csv(f"{header}\nKari;kari@example.no;sykehjem\n".encode())
    assert refused.value.key == "csv_header"
    assert refused.value.params == {
        "missing": missing,
        "unknown": unknown,
        "duplicate": duplicate,
        "expected": "navn;e-post;arbeidssted",
    }


@pytest.mark.parametrize(
    "data",
    [
        b"navn;e-post;arbeidssted\nKari \x81;kari@example.no;x\n",  # not UTF-8, and 0x81 is undefined in cp1252
        b"\xef\xbb\xbfnavn;e-post;arbeidssted\nK\xe5re;kare@example.no;x\n",  # a BOM, then not UTF-8
        "navn;e-post;arbeidssted\n".encode("utf-16"),  # Excel's "Unicode text"
        "navn;e-post;arbeidssted\n".encode("utf-16-le"),  # the same without a BOM: NUL bytes
    ],
    ids=["undefined-in-cp1252", "bom-then-latin1", "utf16", "utf16-no-bom"],
)
def test_undecodable_bytes_are_a_file_error(data):
    with pytest.raises(CsvFileError) as refused:
        read_csv(data)
    assert refused.value.key == "csv_encoding"


@pytest.mark.parametrize("data", [b"", b"\n \n", b"\xef\xbb\xbf", b"navn;e-post;arbeidssted\n\n;;\n"])
def test_a_file_without_people_is_a_file_error(data):
    with pytest.raises(CsvFileError) as refused:
        read_csv(data)
    assert refused.value.key == "csv_empty"


def test_a_file_over_the_size_cap_is_refused_before_decoding():
    with pytest.raises(CsvFileError) as refused:
        read_csv(HEADER.encode() + b"x" * csv_import.MAX_BYTES)
    assert refused.value.key == "csv_too_large"
    assert refused.value.params == {"maximum_mb": 5, "maximum_rows": 20_000}


def test_a_file_over_the_row_cap_is_refused(monkeypatch):
    monkeypatch.setattr(csv_import, "MAX_ROWS", 3)
    read_csv(_csv(*(f"P{n};p{n}@example.no;x" for n in range(3))))
    with pytest.raises(CsvFileError) as refused:
        read_csv(_csv(*(f"P{n};p{n}@example.no;x" for n in range(4))))
    assert refused.value.key == "csv_too_large"


def test_a_cell_beyond_the_csv_field_limit_is_a_file_error():
    with pytest.raises(CsvFileError) as refused:
        read_csv(_csv("A;a@example.no;x", '"' + "x" * 200_000 + '";b@example.no;y'))
    assert (refused.value.key, refused.value.params) == ("csv_malformed", {"row": 3})


# --- preview -----------------------------------------------------------------------------------------------------


def test_preview_classifies_rows_and_writes_nothing(session, session_factory, org):
    held = assign_person(
        session, org, PROGRAMME, PersonInput("Held Person", "held@example.no", "sykehjem"), actor=ACTOR
    )
    session.commit()
    before = _counts(session_factory)
    parsed = read_csv(
        _csv(
            "Kari Nordmann;kari@example.no;sykehjem",
            "Ola;not-an-address;hjemmetjeneste",
            ";noname@example.no;x",
            "Kari Again;KARI@example.no;sykehjem",
            "Held Person;Held@Example.no;hjemmetjeneste",
            "Too;many@example.no;cells;here",
            "Trailing;trailing@example.no;x;",
        )
    )
    shown = preview(session, org, PROGRAMME, parsed)
    assert [(r.row, r.status) for r in shown.rows] == [
        (2, "new"),
        (3, "refused"),
        (4, "refused"),
        (5, "refused"),
        (6, "unchanged"),
        (7, "refused"),
        (8, "new"),
    ]
    reasons = {r.row: (r.reason.key, r.reason.params) for r in shown.refused if r.reason}
    assert reasons == {
        3: ("email_invalid", {"email": "not-an-address"}),
        4: ("name_missing", {}),
        5: ("csv_duplicate", {"email": "kari@example.no", "first_row": 2}),
        7: ("csv_row_extra_cells", {"expected": 3}),
    }
    assert shown.unchanged[0].differs == ("workplace",)
    assert shown.unchanged[0].person.email == held.person.email
    assert (shown.free, len(shown.new), shown.missing) == (4, 2, 0)
    assert (shown.encoding, shown.separator) == ("UTF-8", ";")
    session.rollback()
    assert _counts(session_factory) == before


@pytest.mark.parametrize(
    ("row", "key"),
    [
        ("x" * 256 + ";long@example.no;x", "name_too_long"),
        ("Long Workplace;lw@example.no;" + "x" * 256, "workplace_too_long"),
    ],
)
def test_too_long_fields_are_refused_alone(session, org, row, key):
    shown = preview(session, org, PROGRAMME, read_csv(_csv(row, "Good;good@example.no;x")))
    assert [(r.status, r.reason.key if r.reason else None) for r in shown.rows] == [("refused", key), ("new", None)]


def test_preview_without_a_pool_has_no_free_seats(session):
    org = _org(session, "983544622", "Bergen kommune")
    shown = preview(session, org, PROGRAMME, read_csv(_csv("A;a@example.no;x")))
    assert (shown.free, shown.missing) == (0, 1)


# --- apply -------------------------------------------------------------------------------------------------------


def test_apply_assigns_good_rows_in_one_go_and_lists_refused_ones(session, session_factory, org):
    parsed = read_csv(
        _csv(
            "Kari Nordmann;Kari@Example.no;sykehjem",
            "Ola;not-an-address;hjemmetjeneste",
            "Per Hansen;per@example.no;hjemmetjeneste",
            "Kari igjen;kari@example.no;x",
            header="navn;e-post;arbeidssted;sis_id;login_id\n",
        ).replace(b"sykehjem", b"sykehjem;S-1;kari.feide")
    )
    before = _counts(session_factory)
    result = apply(session, org, PROGRAMME, parsed, actor=ACTOR)
    session.commit()
    assert result.assigned == 2 and len(result.seat_ids) == 2 and result.unchanged == 0
    assert [(r.row, r.reason.key if r.reason else None) for r in result.refused] == [
        (3, "email_invalid"),
        (5, "csv_duplicate"),
    ]
    after = _counts(session_factory)
    assert {k: after[k] - before[k] for k in after} == {
        "people": 2,
        "seats": 2,
        "roles": 2,
        "audit": 2,
        "steps": 2,
        "assigned": 2,
    }
    kari = session.scalars(select(Seat).join(Person).where(Person.email == "kari@example.no")).one()
    assert (kari.person.name, kari.workplace, kari.sis_user_id, kari.login_id) == (
        "Kari Nordmann",
        "sykehjem",
        "S-1",
        "kari.feide",
    )
    steps = session.scalars(select(OutboxStep).order_by(OutboxStep.id)).all()
    assert sorted(s.payload["seat_id"] for s in steps) == sorted(result.seat_ids)
    assert {s.subject for s in steps} == {f"seat:{i}" for i in result.seat_ids}
    audits = session.scalars(select(AuditEntry).where(AuditEntry.action == "seat.assign")).all()
    assert {(a.actor, a.entity_id) for a in audits} == {(ACTOR, str(i)) for i in result.seat_ids}


def test_more_people_than_free_seats_writes_nothing_and_says_how_many_are_missing(session, session_factory, org):
    assign_person(session, org, PROGRAMME, PersonInput("Held", "held@example.no"), actor=ACTOR)
    session.commit()  # 4 of 5 free
    before = _counts(session_factory)
    parsed = read_csv(_csv(*(f"P {n};p{n}@example.no;x" for n in range(7)), "Bad;bad;x"))
    assert preview(session, org, PROGRAMME, parsed).missing == 3
    with pytest.raises(SeatsMissing) as refused:
        apply(session, org, PROGRAMME, parsed, actor=ACTOR)
    assert (refused.value.key, refused.value.params) == ("seats_missing", {"missing": 3, "free": 4, "needed": 7})
    session.rollback()
    assert _counts(session_factory) == before


def test_apply_without_a_pool_is_seats_missing(session, session_factory):
    org = _org(session, "983544622", "Bergen kommune")
    session.commit()
    before = _counts(session_factory)
    with pytest.raises(SeatsMissing) as refused:
        apply(session, org, PROGRAMME, read_csv(_csv("A;a@example.no;x")), actor=ACTOR)
    assert refused.value.params == {"missing": 1, "free": 0, "needed": 1}
    session.rollback()
    assert _counts(session_factory) == before


def test_an_unchanged_reimport_changes_nothing(session, session_factory, org):
    data = _csv("Kari Nordmann;kari@example.no;sykehjem", "Per Hansen;per@example.no;hjemmetjeneste")
    apply(session, org, PROGRAMME, read_csv(data), actor=ACTOR)
    session.commit()
    before = _counts(session_factory)
    again = apply(session, org, PROGRAMME, read_csv(data.upper()), actor=ACTOR)  # e-mails compared case-insensitively
    session.commit()
    assert (again.assigned, again.unchanged, again.refused) == (0, 2, ())
    assert _counts(session_factory) == before


def test_a_reimport_adds_only_the_new_people(session, session_factory, org):
    apply(session, org, PROGRAMME, read_csv(_csv("Kari;kari@example.no;x")), actor=ACTOR)
    session.commit()
    before = _counts(session_factory)
    again = apply(
        session, org, PROGRAMME, read_csv(_csv("Kari;kari@example.no;x", "Per;per@example.no;y")), actor=ACTOR
    )
    session.commit()
    assert (again.assigned, again.unchanged) == (1, 1)
    assert _counts(session_factory)["seats"] == before["seats"] + 1


def test_formula_cells_are_stored_as_given_and_neutralised_on_export(session, org):
    formula = '"=HYPERLINK(""http://evil.example"";""klikk"")";formula@example.no;+47 sykehjem'
    parsed = read_csv(_csv(formula, "@SUM(1);at@example.no;-x"))
    apply(session, org, PROGRAMME, parsed, actor=ACTOR)
    session.commit()
    seats = {s.person.email: s for s in session.scalars(select(Seat))}
    hyper = seats["formula@example.no"]
    assert hyper.person.name == '=HYPERLINK("http://evil.example";"klikk")'
    assert hyper.workplace == "+47 sykehjem"
    assert (seats["at@example.no"].person.name, seats["at@example.no"].workplace) == ("@SUM(1)", "-x")
    assert neutralise(hyper.person.name) == '\'=HYPERLINK("http://evil.example";"klikk")'


def test_a_failure_mid_apply_writes_nothing(session, session_factory, org, monkeypatch):
    """The rows are flushed in the caller's transaction: a failure after some were written leaves nothing."""
    before = _counts(session_factory)
    calls = []

    def failing_audit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise IntegrityError("INSERT INTO audit_entry", {}, Exception("simulated constraint"))
        return real_audit(*args, **kwargs)

    real_audit = csv_import.audit
    monkeypatch.setattr(csv_import, "audit", failing_audit)
    parsed = read_csv(_csv("A;a@example.no;x", "B;b@example.no;y", "C;c@example.no;z"))
    with pytest.raises(IntegrityError):
        apply(session, org, PROGRAMME, parsed, actor=ACTOR)
    assert session.scalar(select(func.count(Seat.id))) == 3  # flushed inside the transaction …
    session.rollback()
    assert _counts(session_factory) == before  # … and gone with it


def test_a_real_constraint_mid_apply_writes_nothing(session, session_factory, org, monkeypatch):
    """The pool's CHECK (assigned <= bought) refuses an oversold pool at the final flush, after the seats, roles,
    audit rows and steps were flushed: nothing of it stays."""
    before = _counts(session_factory)
    real = csv_import._assign_all

    def oversell(session, organisation, programme, people, *, actor):
        seats = real(session, organisation, programme, people, actor=actor)
        pool = session.scalars(select(SeatPool)).one()
        pool.assigned = pool.bought  # the pool's count is raised by len(seats) next: beyond bought
        return seats

    monkeypatch.setattr(csv_import, "_assign_all", oversell)
    with pytest.raises(IntegrityError):
        apply(session, org, PROGRAMME, read_csv(_csv("A;a@example.no;x", "B;b@example.no;y")), actor=ACTOR)
    session.rollback()
    assert _counts(session_factory) == before


def _state(session: Session, org: Organisation) -> list[dict]:
    """Everything the import writes for an organisation's seats, without ids, times and e-mail prefixes."""
    out = []
    for seat in session.scalars(
        select(Seat).where(Seat.organisation_id == org.id, Seat.revoked_at.is_(None)).order_by(Seat.workplace)
    ):
        roles = session.scalars(
            select(ProgrammeRole).where(
                ProgrammeRole.person_id == seat.person_id, ProgrammeRole.organisation_id == org.id
            )
        ).all()
        audits = session.scalars(
            select(AuditEntry).where(AuditEntry.entity_type == "seat", AuditEntry.entity_id == str(seat.id))
        ).all()
        steps = session.scalars(select(OutboxStep).where(OutboxStep.subject == f"seat:{seat.id}")).all()
        assert len(audits) == 1 and len(steps) == 1
        assert steps[0].payload == {"seat_id": seat.id}
        after = dict(audits[0].after or {})
        assert after.pop("person_id") == seat.person_id and after.pop("organisation_id") == org.id
        assert after.pop("assigned_at") == seat.assigned_at.isoformat()
        assert after.pop("valid_until") == seat.valid_until.isoformat()
        assert (after.pop("sis_user_id"), after.pop("login_id")) == (seat.sis_user_id, seat.login_id)
        out.append(
            {
                "name": seat.person.name,
                "email": seat.person.email.split("-", 1)[1],
                "workplace": seat.workplace,
                "sis": seat.sis_user_id,
                "login": seat.login_id,
                "validity": seat.valid_until - seat.assigned_at,
                "canvas_status": seat.canvas_status,
                "unset": (seat.revoked_at, seat.returned_at, seat.canvas_user_id, seat.canvas_enrollment_id),
                "roles": sorted((r.programme_id, r.role.value) for r in roles),
                "audit": (audits[0].actor, audits[0].action, audits[0].before, after),
                "step": (steps[0].kind, steps[0].status, steps[0].attempts, steps[0].locked_by),
            }
        )
    return out


def test_the_bulk_path_writes_what_assign_person_writes(session, org):
    """The same people, one organisation through the import and another through assign_person one by one: the
    same seats, roles, audit rows and Canvas steps (the people differ only by an e-mail prefix)."""
    other = _org(session, "983544622", "Bergen kommune")
    _pool(session, other, 5)
    rows = [
        ("Kari Nordmann", "kari@example.no", "a sykehjem", "S-1", "kari.feide"),
        ("Per Hansen", "per@example.no", "b hjemmetjeneste", None, None),
        ("Kjent Person", "known@example.no", "c tjenester til utviklingshemmede", None, None),
        ("Tidligere Deltaker", "former@example.no", "d sykehjem", None, None),
    ]
    # Known to the tool already: one without any seat, one whose earlier seat of the pool was revoked (so they hold
    # the participant role already).
    for prefix, target in (("a-", org), ("b-", other)):
        get_or_create_person(session, name="Kjent Person", email=prefix + "known@example.no")
        former = assign_person(
            session, target, PROGRAMME, PersonInput("Tidligere Deltaker", prefix + "former@example.no"), actor=ACTOR
        )
        revoke_person(session, former, actor=ACTOR)
    session.flush()
    session.execute(AuditEntry.__table__.delete())
    session.execute(OutboxStep.__table__.delete())
    header = "navn;e-post;arbeidssted;sis_id;login_id\n"
    data = _csv(*(";".join([n, "a-" + e, w, s or "", lo or ""]) for n, e, w, s, lo in rows), header=header)
    apply(session, org, PROGRAMME, read_csv(data), actor=ACTOR)
    for n, e, w, s, lo in rows:
        assign_person(session, other, PROGRAMME, PersonInput(n, "b-" + e, w, s, lo), actor=ACTOR)
    session.flush()
    bulk, single = _state(session, org), _state(session, other)
    assert len(bulk) == 4
    assert bulk == single
    assert bulk[0]["validity"] > timedelta(days=364)
    assert session.get_one(SeatPool, 1).assigned == session.get_one(SeatPool, 2).assigned == 4
    people = session.scalar(select(func.count(Person.id)).where(Person.email.like("a-%")))
    assert people == 4  # the known people were reused, not made twice
    roles = session.scalar(
        select(func.count(ProgrammeRole.id)).where(
            ProgrammeRole.organisation_id == org.id, ProgrammeRole.role == ProgrammeRoleKind.PARTICIPANT
        )
    )
    assert roles == 4


def test_the_bulk_audit_row_records_the_canvas_references(session, org):
    header = "navn;e-post;arbeidssted;sis_id;login_id\n"
    result = apply(
        session, org, PROGRAMME, read_csv(_csv("Kari;kari@example.no;x;S-1;kari.feide", header=header)), actor=ACTOR
    )
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.entity_type == "seat", AuditEntry.entity_id == str(result.seat_ids[0]))
    ).one()
    assert entry.after is not None
    assert (entry.after["sis_user_id"], entry.after["login_id"]) == ("S-1", "kari.feide")


def test_apply_reuses_the_earliest_person_with_the_address(session, org):
    first = Person(name="Først", email="same@example.no")
    session.add(first)
    session.flush()
    session.add(Person(name="Senere", email="same@example.no"))
    session.flush()
    result = apply(session, org, PROGRAMME, read_csv(_csv("Ny Navn;same@example.no;x")), actor=ACTOR)
    seat = session.get_one(Seat, result.seat_ids[0])
    assert seat.person_id == first.id and seat.person.name == "Først"  # an import never renames a known person


def test_steps_are_pending_for_the_worker(session, org):
    result = apply(session, org, PROGRAMME, read_csv(_csv("A;a@example.no;x")), actor=ACTOR)
    step = session.scalars(select(OutboxStep)).one()
    assert (step.kind, step.status, step.payload) == ("seat.sync", StepStatus.PENDING, {"seat_id": result.seat_ids[0]})
