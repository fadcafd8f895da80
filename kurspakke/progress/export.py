"""The programme's progress matrix as a spreadsheet file (``kurspakke progress export``, DESIGN.md §6): one row per
person holding a participant seat, one column per module and per session of the programme file, and the
certificate. Reads only, with one query per table whatever the number of people."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.certificates.codes import format_code
from kurspakke.certificates.models import Certificate
from kurspakke.licences.seating import neutralise
from kurspakke.models import Organisation
from kurspakke.programmes import Programme
from kurspakke.progress.overview import ABSENT, norwegian_key, people_progress

OSLO = ZoneInfo("Europe/Oslo")
UTF8_BOM = "\ufeff"
CSV_SEPARATOR = ";"
# Fixed by DESIGN.md §6, in Norwegian: the file goes to municipalities as it is.
PERSON_COLUMNS = ("navn", "e-post", "organisasjon", "arbeidssted", "gruppe")
CERTIFICATE_COLUMN = "kursbevis"
ATTENDED = "møtt"
NOT_ATTENDED = "ikke møtt"


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


def export_rows(
    session: Session, programme: Programme, organisation: Organisation | None = None, *, group_id: int | None = None
) -> list[list[str]]:
    """The matrix's rows without the header, ordered by organisation name, then person name (Norwegian collation).
    One row per unrevoked participant seat of the programme, provisioned or not (mentors are not rows); only the
    organisation's seats when one is given, only the group's with ``group_id`` (a mentor's export). Cells are plain
    text, not yet neutralised. Raises nothing."""
    organisation_ids = None if organisation is None else [organisation.id]
    people = people_progress(session, programme, organisation_ids=organisation_ids, group_id=group_id)
    codes = _valid_codes(session, programme, organisation) if people else {}
    rows: list[list[str]] = []
    for p in people:
        rows.append(
            [
                p.name,
                p.email,
                p.organisation,
                p.workplace,
                p.group,
                *(_day(p.modules[m.id]) if m.id in p.modules else "" for m in programme.modules),
                # A make-up counts as attended; "ikke møtt" only when nothing attended was recorded.
                *(
                    ATTENDED if p.attended(s.id) else (NOT_ATTENDED if p.sessions.get(s.id) == ABSENT else "")
                    for s in programme.sessions
                ),
                codes.get(p.person_id, ""),  # kursbevis: the valid certificate's code as printed
            ]
        )
    return rows


def _valid_codes(session: Session, programme: Programme, organisation: Organisation | None) -> dict[int, str]:
    """Each person's valid certificate's code, as printed (a revoked or replaced one is no certificate). One
    statement: the programme's (or the organisation's) certificates, whatever the number of people."""
    query = select(Certificate.person_id, Certificate.code).where(
        Certificate.programme_id == programme.id,
        Certificate.person_id.is_not(None),
        Certificate.revoked_at.is_(None),
        Certificate.superseded_at.is_(None),
    )
    if organisation is not None:
        query = query.where(Certificate.organisation_id == organisation.id)
    return {person_id: format_code(code) for person_id, code in session.execute(query) if person_id is not None}


def export_csv(
    session: Session, programme: Programme, organisation: Organisation | None = None, *, group_id: int | None = None
) -> bytes:
    """The matrix as a spreadsheet file: UTF-8 with BOM (Excel reads æøå right), ``;``, the header row, then
    ``export_rows``; a cell a spreadsheet would run as a formula (=, +, -, @) gets a leading apostrophe. Raises
    nothing."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=CSV_SEPARATOR, lineterminator="\r\n")
    writer.writerow([neutralise(cell) for cell in header(programme)])
    for row in export_rows(session, programme, organisation, group_id=group_id):
        writer.writerow([neutralise(cell) for cell in row])
    return (UTF8_BOM + out.getvalue()).encode("utf-8")


__all__ = ["export_csv", "export_rows", "header", "norwegian_key"]
