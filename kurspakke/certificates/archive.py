"""An organisation's certificates in one ZIP file, for its licence administrator: a PDF per valid certificate and an
index, ``kursbevis.csv``, of every certificate with its status.

``write_archive`` is the pure part (certificates in, ZIP bytes out); the page writes a small set straight into its
answer. A large set is built by the worker (step ``certificate.archive``, course_sync/certificate_archive.py) into
a file under the instance folder, and the page polls its progress. What the page and the worker share about such a
build lives in one ``ExpiringValue`` row per build, keyed by a random token: the organisation and programme it is
for, the step that builds it, ``done``/``total`` while it runs and the file once it is written. The row expires
with the file (``ARCHIVE_TTL``), and the hourly purge of expired state removes it; the worker removes old files
whenever it builds a new one.

Functions over a session flush; the caller commits. Nothing here knows Flask or Canvas.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kurspakke.certificates.codes import format_code
from kurspakke.certificates.documents import document_of
from kurspakke.certificates.models import Certificate, CertificateRole, status_of
from kurspakke.certificates.pdf import render_pdf
from kurspakke.licences.seating import neutralise
from kurspakke.models.base import utcnow
from kurspakke.models.lti import ExpiringValue
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.outbox.services import enqueue
from kurspakke.progress.overview import norwegian_key

CERTIFICATE_ARCHIVE = "certificate.archive"
OSLO = ZoneInfo("Europe/Oslo")

INDEX_NAME = "kursbevis.csv"
# Fixed, in Norwegian, like the progress export (kurspakke/progress/export.py): the file goes on as it is.
INDEX_COLUMNS = ("navn", "kode", "fullført", "status")
UTF8_BOM = "\ufeff"
CSV_SEPARATOR = ";"
STATUS_WORDS = {"valid": "gyldig", "revoked": "trukket tilbake", "superseded": "erstattet"}

# The PDFs are stored, not deflated. Measured on 50 certificates of lindrende-behandling (85 KB each): rendering
# takes ~11.5 ms a PDF; storing adds ~0.1 ms and gives 4.29 MB; deflating adds ~1.5 ms and gives 3.98 MB (-7 %,
# about the same at levels 1–9). Their fonts and page contents are Flate streams already, so deflate only finds the
# object dictionaries: 13 % more time for 7 % less. The CSV index is text and is deflated.
PDF_COMPRESSION = zipfile.ZIP_STORED
NAME_LIMIT = 60  # characters of the holder's name in an entry's name: the code keeps names unique anyway

# How long a built archive can be downloaded; the state row of a build expires with it.
ARCHIVE_TTL = timedelta(hours=24)
ARCHIVE_PREFIX = "kursbevis-"
ARCHIVE_SUFFIX = ".zip"
PART_SUFFIX = ".part"
STATE_PREFIX = "certificate-archive:"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")

# Letters NFKD does not take apart. Bokmål's own as the brief for file names wants them (æ→ae, ø→o, å→aa), the
# rest as usual.
_FOLD = str.maketrans(
    {
        "æ": "ae",
        "Æ": "Ae",
        "ø": "o",
        "Ø": "O",
        "å": "aa",
        "Å": "Aa",
        "ß": "ss",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "Th",
        "œ": "oe",
        "Œ": "Oe",
        "ı": "i",
    }
)
_SPACES = re.compile(r"\s+")
_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")
_HYPHENS = re.compile(r"-{2,}")

Progress = Callable[[int, int], None]


# --- names and statuses ---------------------------------------------------------------------------------------


def ascii_fold(text: str) -> str:
    """``text`` with Norwegian letters spelt out in ASCII (Ødegård → Odegaard) and accents dropped (é → e); what
    has no ASCII form is left as it is (the caller strips it)."""
    mapped = text.translate(_FOLD)
    if mapped.isascii():
        return mapped
    return "".join(c for c in unicodedata.normalize("NFKD", mapped) if not unicodedata.combining(c))


def safe_stem(name: str, limit: int = NAME_LIMIT) -> str:
    """A name as part of a file name every system accepts: ASCII letters, digits and single hyphens (spaces become
    hyphens, anything else is dropped), at most ``limit`` characters. Empty when nothing is left."""
    folded = _SPACES.sub("-", ascii_fold(name).strip())
    cleaned = _HYPHENS.sub("-", _UNSAFE.sub("", folded)).strip("-")
    return cleaned[:limit].rstrip("-")


def entry_name(cert: Certificate) -> str:
    """``kursbevis-<Name>-<CODE>.pdf`` (the code as printed, ``XXXX-XXXX-XXXX-XX``)."""
    stem = safe_stem(cert.name)
    code = format_code(cert.code)
    return f"kursbevis-{stem}-{code}.pdf" if stem else f"kursbevis-{code}.pdf"


def norwegian_day(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def _status_word(cert: Certificate) -> str:
    key, day = status_of(cert)
    word = STATUS_WORDS[key]
    return f"{word} {norwegian_day(day)}" if day is not None else word


def sort_key(cert: Certificate) -> tuple[str, date, int]:
    return norwegian_key(cert.name), cert.completed_on, cert.id or 0


# --- the archive ----------------------------------------------------------------------------------------------


def index_csv(certs: Sequence[Certificate]) -> bytes:
    """The index: one row per certificate given (valid or not) with its name as printed, its code as printed, the
    day completed and its status (``gyldig``, ``trukket tilbake dd.mm.yyyy``, ``erstattet dd.mm.yyyy``). UTF-8
    with BOM and ``;`` as Excel reads them here; a cell a spreadsheet would run as a formula gets a leading
    apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=CSV_SEPARATOR, lineterminator="\r\n")
    writer.writerow(INDEX_COLUMNS)
    for cert in certs:
        row = [cert.name, format_code(cert.code), norwegian_day(cert.completed_on), _status_word(cert)]
        writer.writerow([neutralise(cell) for cell in row])
    return (UTF8_BOM + out.getvalue()).encode("utf-8")


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    local = moment.astimezone(OSLO)
    return (max(local.year, 1980), local.month, local.day, local.hour, local.minute, local.second)


def _entry(name: str, moment: datetime, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_zip_time(moment))
    info.compress_type = compression
    info.external_attr = 0o644 << 16  # a plain readable file when unpacked on Unix
    return info


def write_archive(certs: Sequence[Certificate], base_url: str, out: BinaryIO, progress: Progress | None = None) -> int:
    """Write the ZIP of ``certs`` to ``out``: the index of them all first, then a PDF of each valid one (revoked and
    replaced certificates are only listed). Entry names are ASCII and unique. ``progress(done, total)`` is called
    with (0, total) before the first PDF and after each one, so its last call is (total, total). Returns the
    number of PDFs written. ``out`` need not be seekable (a response stream)."""
    valid = [c for c in certs if c.valid]
    total = len(valid)
    used: set[str] = set()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(_entry(INDEX_NAME, utcnow(), zipfile.ZIP_DEFLATED), index_csv(certs))
        used.add(INDEX_NAME)
        if progress is not None:
            progress(0, total)
        for done, cert in enumerate(valid, start=1):
            name = entry_name(cert)
            if name in used:  # the same certificate given twice: codes are unique in the database
                stem, n = name.removesuffix(".pdf"), 2
                while f"{stem}-{n}.pdf" in used:
                    n += 1
                name = f"{stem}-{n}.pdf"
            used.add(name)
            archive.writestr(_entry(name, cert.issued_at, PDF_COMPRESSION), render_pdf(document_of(cert, base_url)))
            if progress is not None:
                progress(done, total)
    return total


def organisation_certificates(session: Session, organisation_id: int, programme_id: str) -> list[Certificate]:
    """Every certificate of the organisation in the programme (valid, revoked, replaced), by name in Norwegian
    order. Only rows whose ``organisation_id`` is this organisation: another's are never read."""
    certs = session.scalars(
        select(Certificate).where(
            Certificate.organisation_id == organisation_id, Certificate.programme_id == programme_id
        )
    ).all()
    return sorted(certs, key=sort_key)


def valid_participant_certificates(session: Session, organisation_id: int, programme_id: str) -> int:
    """How many of the organisation's participants hold a valid certificate (the progress page's count)."""
    return (
        session.scalar(
            select(func.count(Certificate.id)).where(
                Certificate.organisation_id == organisation_id,
                Certificate.programme_id == programme_id,
                Certificate.role == CertificateRole.PARTICIPANT,
                Certificate.revoked_at.is_(None),
                Certificate.superseded_at.is_(None),
            )
        )
        or 0
    )


def archive_filename(orgnr: str, programme_id: str) -> str:
    """The name the ZIP is downloaded as."""
    return f"kursbevis-{safe_stem(programme_id)}-{safe_stem(orgnr)}.zip"


# --- a build by the worker --------------------------------------------------------------------------------------


def is_token(token: str) -> bool:
    return bool(_TOKEN.fullmatch(token))


def archive_path(directory: Path, token: str) -> Path:
    """The built file of ``token``. Raises ValueError for anything but a token's shape, so no address or payload
    can name another file."""
    if not is_token(token):
        raise ValueError("not an archive token")
    return directory / f"{ARCHIVE_PREFIX}{token}{ARCHIVE_SUFFIX}"


def subject_of(organisation_id: int, programme_id: str) -> str:
    """One organisation's builds run one at a time, in order."""
    return f"certificate-archive:{organisation_id}:{programme_id}"


@dataclass(frozen=True)
class ArchiveState:
    """Where a build is, for the page: ``status`` is ``pending`` (waiting for the worker), ``running``, ``done``
    (the file is written) or ``failed`` (the step is parked after its tries)."""

    token: str
    organisation_id: int
    programme_id: str
    status: str
    done: int
    total: int
    size: int | None
    expires_at: datetime


def _row(session: Session, token: str, *, lock: bool = False) -> ExpiringValue | None:
    if not is_token(token):
        return None
    query = select(ExpiringValue).where(ExpiringValue.key == STATE_PREFIX + token, ExpiringValue.expires_at > utcnow())
    if lock:
        query = query.with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).one_or_none()


def _value(row: ExpiringValue) -> dict[str, Any]:
    try:
        value = json.loads(row.value)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def request_archive(
    session: Session,
    organisation_id: int,
    programme_id: str,
    *,
    total: int,
    directory: Path,
    base_url: str,
    requested_by: int,
) -> str:
    """Ask the worker for a ZIP of the organisation's certificates; returns the build's token. While a build for
    the organisation is still waiting or running, its token is returned and nothing is written (a second press
    costs nothing). ``total`` is the number of valid certificates now, so the page shows "0 of N" before the
    worker starts. ``directory`` is where the worker writes the file; the page reads it from there."""
    waiting = session.scalars(
        select(OutboxStep)
        .where(
            OutboxStep.kind == CERTIFICATE_ARCHIVE,
            OutboxStep.subject == subject_of(organisation_id, programme_id),
            OutboxStep.status == StepStatus.PENDING,
        )
        .order_by(OutboxStep.id.desc())
        .limit(1)
    ).first()
    if waiting is not None:
        token = str((waiting.payload or {}).get("token", ""))
        if _row(session, token) is not None:
            return token
    token = secrets.token_urlsafe(24)  # 32 characters, 192 bits: the file's name cannot be guessed
    payload = {
        "token": token,
        "organisation_id": organisation_id,
        "programme_id": programme_id,
        "directory": str(directory),
        "base_url": base_url,
    }
    step = enqueue(session, CERTIFICATE_ARCHIVE, subject_of(organisation_id, programme_id), payload)
    if step is None:  # not reachable: the payload's token is new
        raise RuntimeError("enqueue collapsed a certificate archive request")
    value = {
        "step_id": step.id,
        "organisation_id": organisation_id,
        "programme_id": programme_id,
        "requested_by": requested_by,
        "done": 0,
        "total": total,
        "size": None,
        "built_at": None,
    }
    session.add(ExpiringValue(key=STATE_PREFIX + token, value=json.dumps(value), expires_at=utcnow() + ARCHIVE_TTL))
    session.flush()
    return token


def archive_state(
    session: Session, token: str, organisation_id: int, programme_id: str, *, now: datetime | None = None
) -> ArchiveState | None:
    """The build's state, or None when there is no such build, it has expired, or it is another organisation's or
    programme's (a page asks only about its own): the caller answers 404 the same way in every case."""
    row = _row(session, token)
    if row is None:
        return None
    value = _value(row)
    if value.get("organisation_id") != organisation_id or value.get("programme_id") != programme_id:
        return None
    now = now or utcnow()
    if value.get("built_at"):
        status = "done"
    else:
        step = session.get(OutboxStep, value.get("step_id") or 0, populate_existing=True)
        # Parked after its tries, or done without a file (the request had expired when it ran): nothing will come.
        if step is None or step.kind != CERTIFICATE_ARCHIVE or step.status is not StepStatus.PENDING:
            status = "failed"
        elif step.locked_by is not None and step.locked_until is not None and step.locked_until > now:
            status = "running"
        else:
            status = "pending"
    return ArchiveState(
        token=token,
        organisation_id=organisation_id,
        programme_id=programme_id,
        status=status,
        done=int(value.get("done") or 0),
        total=int(value.get("total") or 0),
        size=value.get("size"),
        expires_at=row.expires_at,
    )


def build_wanted(session: Session, token: str) -> bool:
    """Whether the build's state row is still there (not expired): without it no page can fetch the file."""
    return _row(session, token) is not None


def record_progress(session: Session, token: str, done: int, total: int) -> None:
    """The worker's progress, for the page's indicator."""
    row = _row(session, token, lock=True)
    if row is not None:
        row.value = json.dumps({**_value(row), "done": done, "total": total})
        session.flush()


def record_built(session: Session, token: str, total: int, size: int, *, now: datetime | None = None) -> None:
    """The file is written: done is total, and the build can be downloaded for ``ARCHIVE_TTL`` from now."""
    row = _row(session, token, lock=True)
    if row is None:
        return
    now = now or utcnow()
    row.value = json.dumps({**_value(row), "done": total, "total": total, "size": size, "built_at": now.isoformat()})
    row.expires_at = now + ARCHIVE_TTL
    session.flush()


# Where built archives wait for their download: a folder of the instance path (shared by the web and worker
# processes of one host).
EXPORTS_FOLDER = "exports"


def purge_archives(directory: Path, *, now: datetime | None = None, ttl: timedelta = ARCHIVE_TTL) -> int:
    """Remove archives (and parts a killed worker left) older than ``ttl``; returns how many files went. Only this
    module's own files are touched."""
    if not directory.is_dir():
        return 0
    limit = (now or utcnow()).timestamp() - ttl.total_seconds()
    removed = 0
    for path in directory.glob(f"{ARCHIVE_PREFIX}*"):
        if not (path.name.endswith(ARCHIVE_SUFFIX) or path.name.endswith(PART_SUFFIX)):
            continue
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another worker removed it a moment ago
            continue
    return removed


__all__ = [
    "ARCHIVE_TTL",
    "CERTIFICATE_ARCHIVE",
    "INDEX_COLUMNS",
    "INDEX_NAME",
    "PDF_COMPRESSION",
    "ArchiveState",
    "archive_filename",
    "archive_path",
    "archive_state",
    "ascii_fold",
    "build_wanted",
    "entry_name",
    "index_csv",
    "is_token",
    "norwegian_day",
    "organisation_certificates",
    "purge_archives",
    "record_built",
    "record_progress",
    "request_archive",
    "safe_stem",
    "status_of",
    "subject_of",
    "write_archive",
]
