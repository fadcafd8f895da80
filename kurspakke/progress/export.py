"""The programme's progress matrix as a spreadsheet file (``kurspakke progress export``, DESIGN.md §6): one row per
person holding a participant seat, one column per module and per session of the programme file, and the
certificate. Reads only, with one query per table whatever the number of people."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.licences.models import Seat, SeatKind
from kurspakke.licences.seating import neutralise
from kurspakke.models import Organisation, Person
from kurspakke.programmes import Programme
from kurspakke.progress.models import ModuleCompletion

OSLO = ZoneInfo("Europe/Oslo")
UTF8_BOM = "\ufeff"
CSV_SEPARATOR = ";"
# Fixed by DESIGN.md §6, in Norwegian: the file goes to municipalities as it is.
PERSON_COLUMNS = ("navn", "e-post", "organisasjon", "arbeidssted", "gruppe")
CERTIFICATE_COLUMN = "kursbevis"
# Norwegian collation puts æ, ø, å after z, in that order; these three characters follow z in ASCII. ä and ö sort
# as æ and ø, as in Norwegian dictionaries.
_NORWEGIAN_LETTERS = str.maketrans({"æ": "{", "ä": "{", "ø": "|", "ö": "|", "å": "}"})


def norwegian_key(text: str) -> str:
    """A sort key for Norwegian collation without ICU: case-insensitive, æ ø å after z, other accents ignored
    (é sorts as e)."""
    mapped = text.casefold().translate(_NORWEGIAN_LETTERS)
    return "".join(c for c in unicodedata.normalize("NFKD", mapped) if not unicodedata.combining(c))


def header(programme: Programme) -> list[str]:
    """The header row: the person's columns, the module ids and session ids in the programme file's order, and the
    certificate."""
    return [
        *PERSON_COLUMNS,
        *(module.id for module in programme.modules),
        *(session.id for session in programme.sessions),
        CERTIFICATE_COLUMN,
    ]


def _day(value: datetime) -> str:
    return value.astimezone(OSLO).strftime("%Y-%m-%d")


def export_rows(session: Session, programme: Programme, organisation: Organisation | None = None) -> list[list[str]]:
    """The matrix's rows without the header, ordered by organisation name, then person name (Norwegian collation).
    One row per unrevoked participant seat of the programme, provisioned or not (mentors are not rows); only the
    organisation's seats when one is given. Cells are plain text, not yet neutralised. Raises nothing."""
    held = [
        Seat.programme_id == programme.id,
        Seat.kind == SeatKind.PARTICIPANT,
        Seat.revoked_at.is_(None),
    ]
    if organisation is not None:
        held.append(Seat.organisation_id == organisation.id)
    seats = (
        select(
            Seat.person_id,
            Person.name,
            Person.email,
            Organisation.name.label("organisation"),
            Seat.workplace,
        )
        .join(Person, Person.id == Seat.person_id)
        .join(Organisation, Organisation.id == Seat.organisation_id)
        .where(*held)
    )
    holders = list(session.execute(seats))
    if not holders:
        return []

    completed: dict[int, dict[str, str]] = defaultdict(dict)
    for person_id, module_id, completed_at in session.execute(
        select(ModuleCompletion.person_id, ModuleCompletion.module_id, ModuleCompletion.completed_at).where(
            ModuleCompletion.programme_id == programme.id,
            ModuleCompletion.person_id.in_(select(Seat.person_id).where(*held)),
        )
    ):
        completed[person_id][module_id] = _day(completed_at)

    holders.sort(key=lambda h: (norwegian_key(h.organisation), norwegian_key(h.name), h.email, h.person_id))
    rows: list[list[str]] = []
    for holder in holders:
        days = completed.get(holder.person_id, {})
        rows.append(
            [
                holder.name,
                holder.email,
                holder.organisation,
                holder.workplace,
                "",  # gruppe: mentor groups come with the groups and sessions work
                *(days.get(module.id, "") for module in programme.modules),
                # møtt / ikke møtt: the tool records no attendance yet; it comes with the sessions work.
                *("" for _ in programme.sessions),
                "",  # kursbevis: the certificate's verification code, once certificates are issued
            ]
        )
    return rows


def export_csv(session: Session, programme: Programme, organisation: Organisation | None = None) -> bytes:
    """The matrix as a spreadsheet file: UTF-8 with BOM (Excel reads æøå right), ``;``, the header row, then
    ``export_rows``; a cell a spreadsheet would run as a formula (=, +, -, @) gets a leading apostrophe. Raises
    nothing."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=CSV_SEPARATOR, lineterminator="\r\n")
    writer.writerow([neutralise(cell) for cell in header(programme)])
    for row in export_rows(session, programme, organisation):
        writer.writerow([neutralise(cell) for cell in row])
    return (UTF8_BOM + out.getvalue()).encode("utf-8")


__all__ = ["export_csv", "export_rows", "header", "norwegian_key"]
