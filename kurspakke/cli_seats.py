"""``kurspakke seats …``: the licence page's seat operations for operators and scripts (DESIGN.md §6).

Exit codes of ``seats import`` are part of the fixed interface: 0 every row good, 3 some rows refused, 2 the file
cannot be read at all or seats are missing (nothing written). Unknown programme or organisation: 2 as well.
"""

from __future__ import annotations

import getpass
from typing import Any, BinaryIO, NoReturn

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.licences import csv_import
from kurspakke.licences.services import LicenceError
from kurspakke.programmes import Programme

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNUSABLE = 2  # the file cannot be read, seats are missing, or the programme / organisation is unknown
EXIT_ROWS_REFUSED = 3

# Operator messages for the catalogue keys the import and revoke use (the pages show the translated catalogue).
MESSAGES = {
    "csv_encoding": "the file is not text in UTF-8 (with or without BOM) or Windows-1252; save it as 'CSV UTF-8'",
    "csv_header": "the header row must be {expected} (or name,email,workplace), optionally with sis_id and "
    "login_id; missing: {missing}; unknown: {unknown}; repeated: {duplicate}",
    "csv_empty": "the file has no rows of people",
    "csv_too_large": "the file is too large (at most {maximum_mb} MB and {maximum_rows} rows)",
    "csv_malformed": "row {row} cannot be read as CSV",
    "csv_duplicate": "{email} is already on row {first_row}",
    "csv_row_extra_cells": "more cells than the header's {expected} columns",
    "seats_missing": "{missing} seat(s) missing: {needed} new people need seats and the pool has {free} free; "
    "nothing was written",
    "name_missing": "the name is missing",
    "name_too_long": "the name is longer than {maximum} characters",
    "email_invalid": "invalid e-mail address {email!r}",
    "workplace_too_long": "the workplace is longer than {maximum} characters",
    "sis_id_invalid": "invalid sis_id (no spaces, at most 255 characters)",
    "login_id_invalid": "invalid login_id (no spaces, at most 255 characters)",
}
_FIELDS = {"name": "name", "workplace": "workplace"}


def message(key: str, params: dict[str, Any]) -> str:
    template = MESSAGES.get(key)
    if template is None:
        return key
    try:
        return template.format(**{k: ("-" if v == "" else v) for k, v in params.items()})
    except (KeyError, IndexError, ValueError):
        return key


def _shown(text: str) -> str:
    """A cell as it may reach a terminal: control characters (escape sequences) replaced, never interpreted."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _fail(text: str, code: int = EXIT_UNUSABLE) -> NoReturn:
    click.echo(f"error: {text}", err=True)
    raise SystemExit(code)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (containers)
        user = "unknown"
    return f"cli:{user}"


def _programme(programme_id: str) -> Programme:
    from kurspakke.programmes import load_programmes

    programme = load_programmes().get(programme_id)
    if programme is None:
        _fail(f"no programme with id {programme_id!r}")
    return programme


def _organisation(session: Session, orgnr: str) -> Any:
    from kurspakke.models import Organisation

    number = "".join(orgnr.split())
    org = session.scalars(select(Organisation).where(Organisation.orgnr == number)).one_or_none()
    if org is None:
        _fail(f"no organisation with organisasjonsnummer {orgnr!r}")
    return org


def _print_rows(result: csv_import.Preview) -> None:
    for row in result.rows:
        person = row.person
        who = f"{_shown(person.name) or '(no name)'} <{_shown(person.email)}>"
        if row.status == csv_import.REFUSED:
            assert row.reason is not None
            click.echo(f"row {row.row}: refused    {who}: {message(row.reason.key, row.reason.params)}")
        elif row.status == csv_import.UNCHANGED:
            note = "already holds a seat"
            if row.differs:
                note += f" (differs in {', '.join(row.differs)}: not changed by an import)"
            click.echo(f"row {row.row}: unchanged  {who}: {note}")
        else:
            click.echo(f"row {row.row}: new        {who} {_shown(person.workplace)}".rstrip())


@click.group()
def seats() -> None:
    """Seats: import people from CSV, revoke a seat."""


@seats.command("import")
@click.option("--programme", "programme_id", required=True, help="Programme id, e.g. lindrende-behandling.")
@click.option("--orgnr", required=True, help="The organisation's organisasjonsnummer (9 digits).")
@click.option("--apply", "do_apply", is_flag=True, help="Assign the seats (without it: a preview that writes nothing).")
@click.argument("file", type=click.File("rb"))
def seats_import(programme_id: str, orgnr: str, do_apply: bool, file: BinaryIO) -> None:
    """Give seats to the people in FILE (CSV: navn;e-post;arbeidssted[;sis_id][;login_id]).

    Exit 0 when every row was good, 3 when some were refused, 2 when the file cannot be read or seats are missing
    (nothing is written then)."""
    from kurspakke.cli import _sessions, _settings
    from kurspakke.db import transaction

    programme = _programme(programme_id)
    data = file.read(csv_import.MAX_BYTES + 1)
    try:
        parsed = csv_import.read_csv(data)
    except csv_import.CsvFileError as exc:
        _fail(f"{file.name}: {message(exc.key, exc.params)}")
    click.echo(f"{file.name}: encoding {parsed.encoding}, separator {parsed.separator!r}, {len(parsed.rows)} rows")
    factory = _sessions(_settings())
    try:
        if do_apply:
            with transaction(factory) as session:
                org = _organisation(session, orgnr)
                result = csv_import.apply(session, org, programme, parsed, actor=_actor())
                shown, org_name = result.preview, org.name
        else:
            with factory() as session:
                org = _organisation(session, orgnr)
                shown, org_name = csv_import.preview(session, org, programme, parsed), org.name
    except csv_import.SeatsMissing as exc:
        _fail(message(exc.key, exc.params))
    _print_rows(shown)
    click.echo(
        f"{org_name}, {programme.id}: {len(shown.new)} new, {len(shown.unchanged)} unchanged, "
        f"{len(shown.refused)} refused; {shown.free} free seat(s) before the import"
    )
    if shown.missing:
        _fail(message("seats_missing", {"missing": shown.missing, "free": shown.free, "needed": len(shown.new)}))
    if do_apply:
        click.echo(f"assigned {len(shown.new)} seat(s); the Canvas enrolments follow through the worker")
    else:
        click.echo(f"preview only, nothing written; run again with --apply to assign {len(shown.new)} seat(s)")
    if shown.refused:
        click.echo(f"{len(shown.refused)} row(s) refused (listed above); correct them and import the file again")
        raise SystemExit(EXIT_ROWS_REFUSED)


@seats.command("revoke")
@click.option("--programme", "programme_id", required=True, help="Programme id, e.g. lindrende-behandling.")
@click.option("--orgnr", required=True, help="The organisation's organisasjonsnummer (9 digits).")
@click.option("--email", required=True, help="The seat holder's e-mail address.")
def seats_revoke(programme_id: str, orgnr: str, email: str) -> None:
    """Revoke the seat of the person with this e-mail; the Canvas enrolment is concluded by the worker."""
    from kurspakke.cli import _sessions, _settings
    from kurspakke.db import transaction
    from kurspakke.licences.models import Seat
    from kurspakke.licences.seating import revoke_person
    from kurspakke.models import Person

    programme = _programme(programme_id)
    address = email.strip().lower()
    try:
        with transaction(_sessions(_settings())) as session:
            org = _organisation(session, orgnr)
            seat = session.scalars(
                select(Seat)
                .join(Person, Person.id == Seat.person_id)
                .where(
                    Seat.organisation_id == org.id,
                    Seat.programme_id == programme.id,
                    Seat.revoked_at.is_(None),
                    Person.email == address,
                )
            ).one_or_none()
            if seat is None:
                _fail(f"{_shown(address)} holds no seat of {programme.id} in {org.name}", EXIT_REFUSED)
            seat = revoke_person(session, seat, actor=_actor())
            returned, decided = seat.returned_at is not None, seat.revoke_decided_at is not None
            summary = f"revoked the seat of {_shown(address)} in {org.name} ({programme.id})"
    except LicenceError as exc:
        _fail(message(exc.key, exc.params), EXIT_REFUSED)
    click.echo(summary)
    if returned:
        click.echo("the seat is back in the pool: nothing had reached Canvas yet")
    elif decided:
        click.echo("the seat stays used: the person had started")
    else:
        click.echo(
            "the worker concludes the Canvas enrolment and then decides: the seat returns to the pool only if the "
            "person had not started (no quiz submission, attendance or Canvas activity)"
        )
