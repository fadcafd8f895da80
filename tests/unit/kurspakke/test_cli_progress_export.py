"""`kurspakke progress export`, run as an operator would (a subprocess with the environment as its only input), on
SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.db import transaction
from kurspakke.licences.models import OrderSource
from kurspakke.licences.seating import PersonInput, assign_person
from kurspakke.licences.services import confirm_order, create_order
from kurspakke.programmes import load_programmes
from kurspakke.progress.models import ModuleCompletion
from kurspakke.services.people import get_or_create_organisation
from tests.unit.kurspakke.test_cli import base_env

PROGRAMME = load_programmes()["lindrende-behandling"]
ACTOR = "test"
BOM = b"\xef\xbb\xbf"
HEADER = (
    "navn;e-post;organisasjon;arbeidssted;gruppe;emne-1;emne-2;emne-3;emne-4;"
    "intro;samling-1;samling-2;samling-3;samling-4;kursbevis"
)


@pytest.fixture
def run(database_url, tmp_path):  # type: ignore[no-untyped-def]
    env = {
        **base_env(),
        "KURSPAKKE_ENV": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "cli-secret-" * 4,
        "KURSPAKKE_INSTANCE_PATH": str(tmp_path),
    }

    def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
        # Bytes, not text: the BOM and the encoding are part of what is tested.
        return subprocess.run([sys.executable, "-m", "kurspakke", *args], env=env, capture_output=True, timeout=60)

    return _run


@pytest.fixture
def people(session_factory: sessionmaker[Session]) -> None:
    with transaction(session_factory) as session:
        for name, orgnr, person, email in (
            ("Ås kommune", "964948798", "Åse Ås", "ase@example.no"),
            ("Bergen kommune", "964338531", "Bjarne Bergen", "bjarne@example.no"),
        ):
            org = get_or_create_organisation(session, name=name, orgnr=orgnr)
            order = create_order(
                session, organisation=org, programme=PROGRAMME, quantity=2, source=OrderSource.MANUAL, actor=ACTOR
            )
            confirm_order(session, order, actor=ACTOR)
            seat = assign_person(session, org, PROGRAMME, PersonInput(person, email, "=Sykehjem"), actor=ACTOR)
            session.add(
                ModuleCompletion(
                    person_id=seat.person_id,
                    programme_id=PROGRAMME.id,
                    module_id="emne-2",
                    completed_at=datetime(2026, 3, 31, 23, 30, tzinfo=UTC),
                )
            )


def lines(stdout: bytes) -> list[str]:
    assert stdout.startswith(BOM)
    return stdout[len(BOM) :].decode("utf-8").split("\r\n")


def test_export_writes_the_matrix_with_a_bom(run, people) -> None:  # type: ignore[no-untyped-def]
    result = run("progress", "export", "--programme", "lindrende-behandling")
    assert result.returncode == 0, result.stderr.decode()
    assert lines(result.stdout) == [
        HEADER,
        "Bjarne Bergen;bjarne@example.no;Bergen kommune;'=Sykehjem;;;2026-04-01;;;;;;;;",
        "Åse Ås;ase@example.no;Ås kommune;'=Sykehjem;;;2026-04-01;;;;;;;;",
        "",
    ]


def test_export_of_one_organisation(run, people) -> None:  # type: ignore[no-untyped-def]
    result = run("progress", "export", "--programme", "lindrende-behandling", "--orgnr", "964 948 798")
    assert result.returncode == 0, result.stderr.decode()
    assert lines(result.stdout) == [HEADER, "Åse Ås;ase@example.no;Ås kommune;'=Sykehjem;;;2026-04-01;;;;;;;;", ""]


def test_export_with_nobody_is_the_header(run) -> None:  # type: ignore[no-untyped-def]
    result = run("progress", "export", "--programme", "lindrende-behandling")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == BOM + (HEADER + "\r\n").encode()


def test_an_unknown_programme_is_refused(run) -> None:  # type: ignore[no-untyped-def]
    result = run("progress", "export", "--programme", "finnes-ikke")
    assert result.returncode == 1
    assert result.stdout == b""
    assert "no programme 'finnes-ikke'" in result.stderr.decode()


def test_an_unknown_organisation_is_refused(run, people) -> None:  # type: ignore[no-untyped-def]
    result = run("progress", "export", "--programme", "lindrende-behandling", "--orgnr", "958935420")
    assert result.returncode == 1
    assert result.stdout == b""
    assert "no organisation with organisasjonsnummer '958935420'" in result.stderr.decode()


def test_the_programme_is_required(run) -> None:  # type: ignore[no-untyped-def]
    result = run("progress", "export")
    assert result.returncode == 2
    assert result.stdout == b""
    assert "--programme" in result.stderr.decode()
