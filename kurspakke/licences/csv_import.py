"""Seats from a CSV file: the licence page's import and ``kurspakke seats import`` (DESIGN.md §6).

``read_csv`` turns the bytes into rows (encoding and separator detected, header checked); ``preview`` classifies
every row as new, unchanged (the person already holds a seat of this pool) or refused (with the reason) and writes
nothing; ``apply`` gives a seat to every new row in the caller's one transaction, or to none when the pool has too
few free seats. A refused row never stops the others.

Cells are stored as given: a cell starting with =, +, - or @ is text, never evaluated here; every export writes
it through ``seating.neutralise``.

Speed: a file of thousands of rows is classified with a handful of queries (people by e-mail, the pool's seats,
the participant roles) and written in batched INSERTs, not the per-row round trips of ``seating.assign_person``.
The rows written are the same (tests/unit/kurspakke/licences/test_csv_import.py compares them).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from kurspakke.licences.models import Seat
from kurspakke.licences.seating import SEAT_SYNC, InvalidPerson, PersonInput, check_person
from kurspakke.licences.services import (
    LicenceError,
    _locked_pool,
    _seat_state,
    add_months,
    audit,
    seat_pool,
)
from kurspakke.models import Organisation, Person, ProgrammeRole, ProgrammeRoleKind, utcnow
from kurspakke.outbox.models import OutboxStep
from kurspakke.programmes import Programme

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
UTF8 = "UTF-8"
UTF8_BOM = "UTF-8 med BOM"
WINDOWS_1252 = "Windows-1252"
SEPARATORS = (";", ",")
# Header names (lower-cased, trimmed) → the column they mean. Norwegian and English names may be mixed.
COLUMNS = {
    "navn": "name",
    "name": "name",
    "e-post": "email",
    "email": "email",
    "arbeidssted": "workplace",
    "workplace": "workplace",
    "sis_id": "sis_id",
    "login_id": "login_id",
}
REQUIRED = ("name", "email", "workplace")
EXPECTED_HEADER = "navn;e-post;arbeidssted"
# SQLite allows 32,766 bound parameters per statement (older builds 999); stay well below both backends' limits.
_IN_CHUNK = 900
NEW, UNCHANGED, REFUSED = "new", "unchanged", "refused"


class CsvFileError(LicenceError):
    """The file cannot be read at all: key csv_encoding, csv_header (params missing, unknown, duplicate,
    expected), csv_empty, csv_too_large (params maximum_mb, maximum_rows) or csv_malformed (param row). Nothing
    is imported."""


class SeatsMissing(LicenceError):
    """The new rows need more seats than the pool has free: key seats_missing, params missing, free, needed."""


@dataclass(frozen=True)
class CsvRow:
    """One data row as given (cells trimmed of surrounding whitespace only); ``row`` is its row in the file, the
    header being row 1. ``extra`` holds cells beyond the header's columns that are not blank."""

    row: int
    person: PersonInput
    extra: int = 0


@dataclass(frozen=True)
class Parsed:
    encoding: str  # UTF8, UTF8_BOM or WINDOWS_1252
    separator: str  # ";" or ","
    columns: tuple[str, ...]  # the header's columns as canonical names (name, email, workplace, sis_id, login_id)
    rows: tuple[CsvRow, ...]


@dataclass(frozen=True)
class Reason:
    """Why a row was refused: a catalogue key and its params."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowOutcome:
    row: int
    status: str  # NEW, UNCHANGED or REFUSED
    person: PersonInput  # cleaned (check_person) when good; as given when refused
    reason: Reason | None = None  # REFUSED only
    # UNCHANGED only: fields of the row that differ from what the tool holds (name, workplace); not applied by an
    # import (an edit on the licence page changes them), shown so the administrator knows.
    differs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preview:
    encoding: str
    separator: str
    rows: tuple[RowOutcome, ...]
    free: int  # free seats in the pool now

    @property
    def new(self) -> tuple[RowOutcome, ...]:
        return tuple(r for r in self.rows if r.status == NEW)

    @property
    def unchanged(self) -> tuple[RowOutcome, ...]:
        return tuple(r for r in self.rows if r.status == UNCHANGED)

    @property
    def refused(self) -> tuple[RowOutcome, ...]:
        return tuple(r for r in self.rows if r.status == REFUSED)

    @property
    def missing(self) -> int:
        """Seats the pool lacks for the new rows (0 when there are enough)."""
        return max(0, len(self.new) - self.free)


@dataclass(frozen=True)
class Result:
    preview: Preview  # the rows as classified under the pool's lock, which is what was applied
    assigned: int
    seat_ids: tuple[int, ...]

    @property
    def unchanged(self) -> int:
        return len(self.preview.unchanged)

    @property
    def refused(self) -> tuple[RowOutcome, ...]:
        return self.preview.refused


# --- reading -----------------------------------------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        # Excel's "Unicode text" is UTF-16; it would decode as Windows-1252 gibberish, so say what is wrong.
        raise CsvFileError("csv_encoding")
    try:
        if data.startswith(codecs.BOM_UTF8):
            text, encoding = data[len(codecs.BOM_UTF8) :].decode("utf-8"), UTF8_BOM
        else:
            text, encoding = data.decode("utf-8"), UTF8
    except UnicodeDecodeError:
        if data.startswith(codecs.BOM_UTF8):
            raise CsvFileError("csv_encoding") from None  # a BOM promises UTF-8: no second guess
        try:
            # Only bytes that are not UTF-8 get here; Windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90, 0x9D undefined.
            text, encoding = data.decode("cp1252"), WINDOWS_1252
        except UnicodeDecodeError:
            raise CsvFileError("csv_encoding") from None
    if "\x00" in text:  # UTF-16 without a BOM, or a binary file
        raise CsvFileError("csv_encoding")
    return text, encoding


def _blank(cells: Sequence[str]) -> bool:
    return all(not c.strip() for c in cells)


def _header(cells: Sequence[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The canonical columns, or the problems (missing, unknown, duplicate) keyed for the catalogue."""
    columns: list[str] = []
    unknown: list[str] = []
    duplicate: list[str] = []
    for cell in cells:
        name = cell.strip().lower()
        column = COLUMNS.get(name)
        if column is None:
            unknown.append(cell.strip()[:40] or '""')
        elif column in columns:
            duplicate.append(cell.strip()[:40])
        else:
            columns.append(column)
    missing = [c for c in REQUIRED if c not in columns]
    problems = {}
    if missing or unknown or duplicate:
        names = {"name": "navn", "email": "e-post", "workplace": "arbeidssted"}
        problems = {
            "missing": ", ".join(names[c] for c in missing),
            "unknown": ", ".join(unknown),
            "duplicate": ", ".join(duplicate),
        }
    return tuple(columns), problems


def read_csv(data: bytes) -> Parsed:
    """The rows of an import file. Raises CsvFileError (csv_too_large, csv_encoding, csv_empty, csv_header) when
    the file cannot be read at all."""
    if len(data) > MAX_BYTES:
        raise CsvFileError("csv_too_large", maximum_mb=MAX_BYTES // (1024 * 1024), maximum_rows=MAX_ROWS)
    text, encoding = _decode(data)
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise CsvFileError("csv_empty")
    # The separator is the one that makes the header a valid one; else the commoner one, for the error message.
    candidates = []
    for sep in SEPARATORS:
        cells = next(csv.reader([lines[first]], delimiter=sep))
        columns, problems = _header(cells)
        candidates.append((bool(problems), -lines[first].count(sep), sep, columns, problems))
    _, _, separator, columns, problems = min(candidates)
    if problems:
        raise CsvFileError("csv_header", expected=EXPECTED_HEADER, **problems)
    rows: list[CsvRow] = []
    number = 0
    # Row numbers as a spreadsheet shows them: empty lines count, a quoted cell's line breaks do not.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        for number, cells in enumerate(reader, start=1):
            if number <= first + 1 or _blank(cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise CsvFileError("csv_too_large", maximum_mb=MAX_BYTES // (1024 * 1024), maximum_rows=MAX_ROWS)
            values = dict(zip(columns, (c.strip() for c in cells), strict=False))
            rows.append(
                CsvRow(
                    row=number,
                    person=PersonInput(
                        name=values.get("name", ""),
                        email=values.get("email", ""),
                        workplace=values.get("workplace", ""),
                        sis_user_id=values.get("sis_id") or None,
                        login_id=values.get("login_id") or None,
                    ),
                    extra=sum(1 for c in cells[len(columns) :] if c.strip()),
                )
            )
    except csv.Error:
        # A cell beyond the csv module's field limit (128 KiB): no spreadsheet of people makes one.
        raise CsvFileError("csv_malformed", row=number + 1) from None
    if not rows:
        raise CsvFileError("csv_empty")
    return Parsed(encoding=encoding, separator=separator, columns=columns, rows=tuple(rows))


# --- classifying -------------------------------------------------------------------------------------------------


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _people_by_email(session: Session, emails: Sequence[str]) -> dict[str, Person]:
    """The earliest person per address, as ``seating.person_by_email`` chooses."""
    found: dict[str, Person] = {}
    for chunk in _chunks(emails):
        for person in session.scalars(select(Person).where(Person.email.in_(chunk)).order_by(Person.id)):
            found.setdefault(person.email, person)
    return found


def _held(session: Session, organisation: Organisation, programme_id: str) -> dict[str, tuple[str, str]]:
    """E-mail → (name, workplace) of everyone holding an unrevoked seat of the pool."""
    rows = session.execute(
        select(Person.email, Person.name, Seat.workplace)
        .join(Seat, Seat.person_id == Person.id)
        .where(
            Seat.organisation_id == organisation.id,
            Seat.programme_id == programme_id,
            Seat.revoked_at.is_(None),
        )
    )
    return {email: (name, workplace) for email, name, workplace in rows}


def _classify(session: Session, organisation: Organisation, programme: Programme, parsed: Parsed, free: int) -> Preview:
    held = _held(session, organisation, programme.id)
    first_row: dict[str, int] = {}
    outcomes: list[RowOutcome] = []
    for row in parsed.rows:
        if row.extra:
            reason = Reason("csv_row_extra_cells", {"expected": len(parsed.columns)})
            outcomes.append(RowOutcome(row.row, REFUSED, row.person, reason))
            continue
        try:
            data = check_person(row.person)
        except InvalidPerson as exc:
            outcomes.append(RowOutcome(row.row, REFUSED, row.person, Reason(exc.key, dict(exc.params))))
            continue
        if data.email in first_row:
            reason = Reason("csv_duplicate", {"email": data.email, "first_row": first_row[data.email]})
            outcomes.append(RowOutcome(row.row, REFUSED, row.person, reason))
            continue
        first_row[data.email] = row.row
        if data.email in held:
            name, workplace = held[data.email]
            differs = tuple(
                f
                for f, ours, theirs in (("name", name, data.name), ("workplace", workplace, data.workplace))
                if ours != theirs
            )
            outcomes.append(RowOutcome(row.row, UNCHANGED, data, differs=differs))
        else:
            outcomes.append(RowOutcome(row.row, NEW, data))
    return Preview(parsed.encoding, parsed.separator, tuple(outcomes), free)


def preview(session: Session, organisation: Organisation, programme: Programme, parsed: Parsed) -> Preview:
    """What ``apply`` would do now: each row new, unchanged or refused, and the pool's free seats. Writes nothing."""
    pool = seat_pool(session, organisation, programme.id)
    return _classify(session, organisation, programme, parsed, pool.free if pool is not None else 0)


# --- applying ----------------------------------------------------------------------------------------------------


def apply(session: Session, organisation: Organisation, programme: Programme, parsed: Parsed, *, actor: str) -> Result:
    """Give a seat to every new row, in the caller's transaction (it commits once). The rows are classified again
    under the pool's row lock, so what is applied is what the pool holds at this moment.

    Raises SeatsMissing (params missing, free, needed) when the new rows need more seats than are free; nothing is
    written then. Refused rows are returned in the result, never applied.
    """
    # Lock first, then classify: a concurrent assignment to this pool waits here until we commit.
    pool = _locked_pool(session, organisation.id, programme.id, create=False)
    free = pool.free if pool is not None else 0
    outcome = _classify(session, organisation, programme, parsed, free)
    new = outcome.new
    if outcome.missing:
        raise SeatsMissing("seats_missing", missing=outcome.missing, free=free, needed=len(new))
    if not new:
        return Result(outcome, 0, ())
    assert pool is not None  # new rows and no missing seats: the pool has free seats
    seats = _assign_all(session, organisation, programme, [r.person for r in new], actor=actor)
    pool.assigned += len(seats)
    session.flush()
    return Result(outcome, len(seats), tuple(s.id for s in seats))


def _assign_all(
    session: Session, organisation: Organisation, programme: Programme, people: Sequence[PersonInput], *, actor: str
) -> list[Seat]:
    """What ``seating.assign_person`` writes per person (Person when new, Seat, PARTICIPANT role, audit row, Canvas
    step), for many people in batched statements. The caller holds the pool's lock and has checked the free seats
    and that none of them holds a seat of the pool."""
    known = _people_by_email(session, [p.email for p in people])
    fresh = [Person(name=p.name, email=p.email) for p in people if p.email not in known]
    session.add_all(fresh)
    session.flush()
    known.update((p.email, p) for p in fresh)
    person_ids = [known[p.email].id for p in people]
    with_role = set(
        session.scalars(
            select(ProgrammeRole.person_id).where(
                ProgrammeRole.programme_id == programme.id,
                ProgrammeRole.organisation_id == organisation.id,
                ProgrammeRole.role == ProgrammeRoleKind.PARTICIPANT,
            )
        )
    )
    now = utcnow()
    valid_until = add_months(now, programme.seat_valid_months)
    seats = [
        Seat(
            organisation_id=organisation.id,
            programme_id=programme.id,
            person_id=person_id,
            workplace=p.workplace,
            sis_user_id=p.sis_user_id,
            login_id=p.login_id,
            assigned_at=now,
            valid_until=valid_until,
        )
        for person_id, p in zip(person_ids, people, strict=True)
    ]
    session.add_all(seats)
    session.add_all(
        ProgrammeRole(
            person_id=person_id,
            programme_id=programme.id,
            organisation_id=organisation.id,
            role=ProgrammeRoleKind.PARTICIPANT,
        )
        for person_id in dict.fromkeys(person_ids)
        if person_id not in with_role
    )
    session.flush()
    for seat in seats:
        audit(
            session,
            actor=actor,
            action="seat.assign",
            entity_type="seat",
            entity_id=seat.id,
            before=None,
            after=_seat_state(seat),
        )
    # seating.sync_seat_later's step, without enqueue's look for a waiting step of the same subject (one SELECT per
    # seat, most of the time of a large import): a seat made in this transaction has no step yet. One executemany
    # (no ids needed back), which PostgreSQL's driver pipelines.
    session.flush()
    session.execute(
        insert(OutboxStep),
        [
            {"kind": SEAT_SYNC, "subject": f"seat:{seat.id}", "payload": {"seat_id": seat.id}, "next_attempt_at": now}
            for seat in seats
        ],
    )
    return seats


__all__ = [
    "MAX_BYTES",
    "MAX_ROWS",
    "CsvFileError",
    "CsvRow",
    "Parsed",
    "Preview",
    "Reason",
    "Result",
    "RowOutcome",
    "SeatsMissing",
    "apply",
    "preview",
    "read_csv",
]
