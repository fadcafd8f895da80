"""``kurspakke seats import`` and ``kurspakke seats revoke``, run as an operator would (a subprocess), on SQLite and
PostgreSQL. The exit codes are the fixed interface of DESIGN.md §6."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.licences.seating import PersonInput, assign_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.models import AuditEntry, OrderSource, Organisation, Person, Seat, SeatPool
from kurspakke.outbox.models import OutboxStep
from kurspakke.programmes import load_programmes
from kurspakke.services.people import get_or_create_organisation

PROGRAMME = load_programmes()["lindrende-behandling"]
ORGNR = "958935420"
IMPORT = ("seats", "import", "--programme", PROGRAMME.id, "--orgnr", ORGNR)


def base_env() -> dict[str, str]:
    """PATH and coverage's variables only (see test_cli.base_env): coverage measures the subprocess too."""
    return {"PATH": os.environ["PATH"], **{k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}}


@pytest.fixture
def run(database_url, tmp_path):
    env = {
        **base_env(),
        "KURSPAKKE_ENV": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "cli-secret-" * 4,
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path),
        "USER": "operatør",
    }

    def _run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "kurspakke", *args], env=env, capture_output=True, text=True, timeout=60
        )

    return _run


@pytest.fixture
def org(session: Session) -> Organisation:
    org = get_or_create_organisation(session, name="Oslo kommune", orgnr=ORGNR)
    order = create_order(
        session, organisation=org, programme=PROGRAMME, quantity=3, source=OrderSource.MANUAL, actor="owner"
    )
    confirm_order(session, order, actor="owner")
    session.commit()
    return org


def _file(tmp_path: Path, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / "people.csv"
    path.write_bytes(text.encode(encoding))
    return str(path)


def _counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        return {
            "people": s.scalar(select(func.count(Person.id))) or 0,
            "seats": s.scalar(select(func.count(Seat.id))) or 0,
            "audit": s.scalar(select(func.count(AuditEntry.id))) or 0,
            "steps": s.scalar(select(func.count(OutboxStep.id))) or 0,
            "assigned": s.scalar(select(func.coalesce(func.sum(SeatPool.assigned), 0))) or 0,
        }


GOOD = "\ufeffnavn;e-post;arbeidssted\nKari Nordmann;kari@example.no;sykehjem\nPer Ås;per@example.no;hjemmetjeneste\n"


def test_preview_of_a_good_file_exits_0_and_writes_nothing(run, org, session_factory, tmp_path):
    before = _counts(session_factory)
    res = run(*IMPORT, _file(tmp_path, GOOD))
    assert res.returncode == 0, res.stderr
    assert "encoding UTF-8 med BOM, separator ';'" in res.stdout
    assert "row 2: new        Kari Nordmann <kari@example.no> sykehjem" in res.stdout
    assert "row 3: new        Per Ås <per@example.no> hjemmetjeneste" in res.stdout
    assert "2 new, 0 unchanged, 0 refused; 3 free seat(s)" in res.stdout
    assert "nothing written" in res.stdout
    assert _counts(session_factory) == before


def test_apply_writes_the_seats_with_the_operator_as_actor_and_a_reimport_changes_nothing(
    run, org, session_factory, tmp_path
):
    path = _file(tmp_path, GOOD.replace(";", ","), "utf-8")
    res = run(*IMPORT, path, "--apply")
    assert res.returncode == 0, res.stderr
    assert "separator ','" in res.stdout and "assigned 2 seat(s)" in res.stdout
    with session_factory() as s:
        seats = s.scalars(select(Seat).order_by(Seat.id)).all()
        assert [(x.person.email, x.workplace) for x in seats] == [
            ("kari@example.no", "sykehjem"),
            ("per@example.no", "hjemmetjeneste"),
        ]
        actors = set(s.scalars(select(AuditEntry.actor).where(AuditEntry.action == "seat.assign")))
        assert actors == {"cli:operatør"}
    after = _counts(session_factory)
    assert (after["seats"], after["steps"], after["assigned"]) == (2, 2, 2)
    again = run(*IMPORT, path, "--apply")
    assert again.returncode == 0, again.stderr
    assert "0 new, 2 unchanged, 0 refused" in again.stdout
    assert _counts(session_factory) == after
    moved = run(*IMPORT, _file(tmp_path, GOOD.replace("sykehjem", "legevakt")), "--apply")
    assert moved.returncode == 0, moved.stderr
    assert "row 2: unchanged  Kari Nordmann <kari@example.no>: already holds a seat (differs in workplace" in (
        moved.stdout
    )
    assert _counts(session_factory) == after


def test_refused_rows_exit_3_and_the_good_rows_are_applied(run, org, session_factory, tmp_path):
    text = "navn;e-post;arbeidssted\nKari;kari@example.no;x\nOla;ikke-en-adresse;y\nKari igjen;KARI@example.no;z\n"
    path = _file(tmp_path, text, "cp1252")
    preview = run(*IMPORT, path)
    assert preview.returncode == 3, preview.stderr
    assert "encoding UTF-8" in preview.stdout  # plain ASCII is valid UTF-8
    assert "row 3: refused    Ola <ikke-en-adresse>: invalid e-mail address 'ikke-en-adresse'" in preview.stdout
    assert "row 4: refused    Kari igjen <KARI@example.no>: kari@example.no is already on row 2" in preview.stdout
    assert _counts(session_factory)["seats"] == 0
    res = run(*IMPORT, path, "--apply")
    assert res.returncode == 3, res.stderr
    assert "assigned 1 seat(s)" in res.stdout and "2 row(s) refused" in res.stdout
    assert _counts(session_factory)["seats"] == 1


def test_windows_1252_file_is_read(run, org, session_factory, tmp_path):
    path = _file(tmp_path, "navn;e-post;arbeidssted\nBjørn Ærø;bjorn@example.no;sykehjem\n", "cp1252")
    res = run(*IMPORT, path, "--apply")
    assert res.returncode == 0, res.stderr
    assert "encoding Windows-1252" in res.stdout
    with session_factory() as s:
        assert s.scalars(select(Person.name)).all() == ["Bjørn Ærø"]


def test_missing_seats_exit_2_write_nothing_and_say_how_many(run, org, session_factory, tmp_path):
    rows = "".join(f"P{n};p{n}@example.no;x\n" for n in range(5))
    path = _file(tmp_path, "navn;e-post;arbeidssted\n" + rows)
    before = _counts(session_factory)
    for extra in ((), ("--apply",)):
        res = run(*IMPORT, path, *extra)
        assert res.returncode == 2, (extra, res.stdout, res.stderr)
        assert "2 seat(s) missing: 5 new people need seats and the pool has 3 free" in res.stderr
        assert "Traceback" not in res.stderr
    assert _counts(session_factory) == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"navn;epost;arbeidssted\nKari;kari@example.no;x\n", "missing: e-post; unknown: epost"),
        (b"navn;e-post;arbeidssted\nK\x81ri;kari@example.no;x\n", "not text in UTF-8"),
        (b"", "no rows of people"),
    ],
    ids=["header", "encoding", "empty"],
)
def test_an_unreadable_file_exits_2_and_writes_nothing(run, org, session_factory, tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    before = _counts(session_factory)
    res = run(*IMPORT, str(path), "--apply")
    assert res.returncode == 2
    assert expected in res.stderr and "Traceback" not in res.stderr
    assert _counts(session_factory) == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--programme", "ukjent", "--orgnr", ORGNR), "no programme with id 'ukjent'"),
        (("--programme", PROGRAMME.id, "--orgnr", "983544622"), "no organisation with organisasjonsnummer"),
    ],
)
def test_unknown_programme_or_organisation_exits_2(run, org, session_factory, tmp_path, args, expected):
    res = run("seats", "import", *args, _file(tmp_path, GOOD), "--apply")
    assert res.returncode == 2
    assert expected in res.stderr and "Traceback" not in res.stderr
    assert _counts(session_factory)["seats"] == 0


def test_a_missing_file_exits_2(run, org, tmp_path):
    res = run(*IMPORT, str(tmp_path / "nowhere.csv"))
    assert res.returncode == 2 and "No such file or directory" in res.stderr


def test_revoke_returns_an_unprovisioned_seat_to_the_pool(run, org, session, session_factory):
    assign_person(session, org, PROGRAMME, PersonInput("Kari", "kari@example.no"), actor="admin")
    session.commit()
    res = run("seats", "revoke", "--programme", PROGRAMME.id, "--orgnr", ORGNR, "--email", " Kari@Example.no ")
    assert res.returncode == 0, res.stderr
    assert "revoked the seat of kari@example.no in Oslo kommune" in res.stdout
    assert "back in the pool" in res.stdout
    with session_factory() as s:
        seat = s.scalars(select(Seat)).one()
        assert seat.revoked_at is not None and seat.returned_at is not None
        assert s.scalars(select(SeatPool.assigned)).one() == 0
        assert s.scalars(select(AuditEntry.actor).where(AuditEntry.action == "seat.revoke_returned")).one() == (
            "cli:operatør"
        )


def test_revoke_of_a_provisioned_seat_waits_for_canvas(run, org, session, session_factory):
    seat = assign_person(session, org, PROGRAMME, PersonInput("Kari", "kari@example.no"), actor="admin")
    seat.canvas_user_id, seat.canvas_enrollment_id = "101", "9001"
    session.commit()
    res = run("seats", "revoke", "--programme", PROGRAMME.id, "--orgnr", ORGNR, "--email", "kari@example.no")
    assert res.returncode == 0, res.stderr
    assert "the worker concludes the Canvas enrolment" in res.stdout
    with session_factory() as s:
        seat = s.scalars(select(Seat)).one()
        assert seat.revoked_at is not None and seat.returned_at is None and seat.revoke_decided_at is None
        assert s.scalars(select(SeatPool.assigned)).one() == 1
        assert s.scalar(select(func.count(OutboxStep.id)).where(OutboxStep.subject == f"seat:{seat.id}")) >= 1


def test_revoke_without_such_a_seat_is_a_clear_error(run, org, session_factory):
    before = _counts(session_factory)
    res = run("seats", "revoke", "--programme", PROGRAMME.id, "--orgnr", ORGNR, "--email", "nobody@example.no")
    assert res.returncode == 1
    assert "nobody@example.no holds no seat of lindrende-behandling in Oslo kommune" in res.stderr
    assert "Traceback" not in res.stderr
    assert _counts(session_factory) == before
