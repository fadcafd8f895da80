"""The ZIP of an organisation's certificates (kurspakke.certificates.archive.write_archive): entry names that are ASCII,
safe and unique, the index, what is left out, progress, and the removal of old built files. No database: the
certificates are built in memory as the worker reads them."""

from __future__ import annotations

import csv
import io
import os
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

import kurspakke.models  # noqa: F401 - the models' package first (the certificate modules import it back)
from kurspakke.certificates.archive import (
    INDEX_NAME,
    archive_filename,
    archive_path,
    ascii_fold,
    entry_name,
    index_csv,
    purge_archives,
    safe_stem,
    write_archive,
)
from kurspakke.certificates.codes import format_code, new_code
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.certificates.services import printed_texts
from tests.support.certificates import PROGRAMME

BASE_URL = "https://kurspakke.test"
ISSUED = datetime(2026, 4, 1, 8, 30, tzinfo=UTC)
SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")


def cert(
    name: str,
    n: int,
    *,
    role: CertificateRole = CertificateRole.PARTICIPANT,
    revoked: datetime | None = None,
    superseded: bool = False,
) -> Certificate:
    return Certificate(
        id=n,
        code=new_code(),
        programme_id=PROGRAMME.id,
        person_id=n,
        organisation_id=1,
        role=role,
        name=name,
        organisation_name="Oslo kommune",
        mentor_names="Mona Mentor",
        completed_on=date(2026, 3, 31),
        printed=printed_texts(PROGRAMME, role),
        issued_at=ISSUED,
        issued_by="test",
        revoked_at=revoked,
        superseded_at=ISSUED + timedelta(days=1) if superseded else None,
    )


def unzip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def build(certs: list[Certificate]) -> tuple[zipfile.ZipFile, int, list[tuple[int, int]]]:
    out = io.BytesIO()
    calls: list[tuple[int, int]] = []
    written = write_archive(certs, BASE_URL, out, lambda done, total: calls.append((done, total)))
    return unzip(out.getvalue()), written, calls


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("Åse Ødegård-Bjørnæs", "Aase-Odegaard-Bjornaes"),
        ("ÆRLIG ØRN ÅS", "AeRLIG-ORN-AaS"),
        ("José  Ñúñez", "Jose-Nunez"),
        ("Ola O'Brien / Hansen", "Ola-OBrien-Hansen"),
        ("../../etc/passwd", "etcpasswd"),
        ('=HYPERLINK("x")', "HYPERLINKx"),
        ("李小龍", ""),
        ("  - Kari -- Nordmann -  ", "Kari-Nordmann"),
    ],
)
def test_names_become_ascii_letters_digits_and_single_hyphens(name: str, stem: str) -> None:
    assert safe_stem(name) == stem


def test_a_long_name_is_cut_and_never_ends_in_a_hyphen() -> None:
    stem = safe_stem("Anne-Marie " * 20)
    assert len(stem) <= 60 and not stem.endswith("-") and stem.startswith("Anne-Marie-Anne-Marie")


def test_ascii_fold_spells_out_the_norwegian_letters() -> None:
    assert ascii_fold("æøå ÆØÅ é ü") == "aeoaa AeOAa e u"


def test_one_pdf_per_valid_certificate_with_unique_safe_names_and_the_index() -> None:
    revoked_on = datetime(2026, 5, 4, 23, 30, tzinfo=UTC)  # 5 May in Oslo (summer time)
    certs = [
        cert("Åse Ødegård-Bjørnæs", 1),
        cert("Kari Nordmann", 2),
        cert("Kari Nordmann", 3),  # the same name twice: the codes keep the files apart
        cert("李小龍", 4),
        cert("Mona Mentor", 5, role=CertificateRole.MENTOR),
        cert("Ola Hansen", 6, revoked=revoked_on),
        cert("Per Pleier", 7, superseded=True),
        cert("=cmd|' /C calc'!A0", 8),
    ]
    archive, written, _ = build(certs)

    names = archive.namelist()
    pdfs = [n for n in names if n.endswith(".pdf")]
    assert written == 6 and len(pdfs) == 6
    assert names[0] == INDEX_NAME
    assert len(set(names)) == len(names)
    assert all(set(n) <= SAFE for n in names)
    assert f"kursbevis-Aase-Odegaard-Bjornaes-{format_code(certs[0].code)}.pdf" in pdfs
    assert f"kursbevis-{format_code(certs[3].code)}.pdf" in pdfs  # nothing ASCII in the name: the code alone
    # Revoked and replaced certificates are listed in the index, never given as a PDF.
    assert not any(format_code(c.code) in n for c in certs[5:7] for n in pdfs)
    for name in pdfs:
        info = archive.getinfo(name)
        assert info.compress_type == zipfile.ZIP_STORED  # already Flate-compressed inside
        assert archive.read(name).startswith(b"%PDF-")
    assert archive.getinfo(INDEX_NAME).compress_type == zipfile.ZIP_DEFLATED
    assert archive.testzip() is None


def test_the_index_lists_every_certificate_with_its_status_in_norwegian() -> None:
    revoked_on = datetime(2026, 5, 4, 23, 30, tzinfo=UTC)
    certs = [
        cert("Åse Ødegård-Bjørnæs", 1),
        cert("Ola Hansen", 2, revoked=revoked_on),
        cert("Per Pleier", 3, superseded=True),
        cert("=cmd|' /C calc'!A0", 4),
        cert('@Kari; "Nordmann"', 5),
    ]
    data = index_csv(certs)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["navn", "kode", "fullført", "status"]
    assert rows[1] == ["Åse Ødegård-Bjørnæs", format_code(certs[0].code), "31.03.2026", "gyldig"]
    assert rows[2][3] == "trukket tilbake 05.05.2026"  # the day in Oslo, not in UTC
    assert rows[3][3] == "erstattet 02.04.2026"
    # A cell a spreadsheet would run as a formula starts with an apostrophe; ; and quotes stay inside their cell.
    assert rows[4][0] == "'=cmd|' /C calc'!A0"
    assert rows[5][0] == '\'@Kari; "Nordmann"'
    assert len(rows) == 6 and all(len(row) == 4 for row in rows)
    assert b"\r\n" in data

    archive, _, _ = build(certs)
    assert archive.read(INDEX_NAME) == data


def test_progress_counts_every_pdf_and_ends_at_the_total() -> None:
    certs = [cert(f"Deltaker {i}", i) for i in range(1, 6)] + [cert("Trukket", 9, revoked=ISSUED)]
    _, written, calls = build(certs)
    assert written == 5
    assert calls == [(0, 5), (1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_nothing_valid_gives_only_the_index_and_one_progress_call() -> None:
    archive, written, calls = build([cert("Ola Hansen", 1, revoked=ISSUED)])
    assert written == 0 and archive.namelist() == [INDEX_NAME] and calls == [(0, 0)]


def test_the_same_certificate_twice_still_gives_unique_names() -> None:
    kari = cert("Kari Nordmann", 1)
    archive, written, _ = build([kari, kari])
    assert written == 2
    assert archive.namelist() == [
        INDEX_NAME,
        f"kursbevis-Kari-Nordmann-{format_code(kari.code)}.pdf",
        f"kursbevis-Kari-Nordmann-{format_code(kari.code)}-2.pdf",
    ]


class _Stream(io.RawIOBase):
    """An answer stream: it can be written, not sought."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[no-untyped-def, override]
        self.data += bytes(b)
        return len(b)

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("not seekable")


def test_the_archive_can_be_written_to_a_stream_that_cannot_seek() -> None:
    stream = _Stream()
    assert write_archive([cert("Kari Nordmann", 1)], BASE_URL, stream) == 1  # type: ignore[arg-type]
    assert len(unzip(bytes(stream.data)).namelist()) == 2


def test_entry_name_and_download_name() -> None:
    kari = cert("Kari Nordmann", 1)
    assert entry_name(kari) == f"kursbevis-Kari-Nordmann-{format_code(kari.code)}.pdf"
    assert archive_filename("958935420", "lindrende-behandling") == "kursbevis-lindrende-behandling-958935420.zip"


def test_archive_paths_accept_only_a_tokens_shape(tmp_path: Path) -> None:
    token = "A" * 32
    assert archive_path(tmp_path, token) == tmp_path / f"kursbevis-{token}.zip"
    for bad in ("../" + "A" * 29, "A" * 31, "A" * 32 + "/", "", "A" * 31 + "."):
        with pytest.raises(ValueError):
            archive_path(tmp_path, bad)


def test_purge_removes_old_archives_and_parts_only(tmp_path: Path) -> None:
    old = time.time() - 25 * 3600
    files = {
        "kursbevis-" + "A" * 32 + ".zip": old,
        "kursbevis-" + "B" * 32 + ".zip.1234abcd.part": old,
        "kursbevis-" + "C" * 32 + ".zip": time.time(),
        "other.zip": old,  # not ours
        "kursbevis-notes.txt": old,
    }
    for name, mtime in files.items():
        path = tmp_path / name
        path.write_bytes(b"x")
        os.utime(path, (mtime, mtime))

    assert purge_archives(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["kursbevis-" + "C" * 32 + ".zip", "other.zip", "kursbevis-notes.txt"]
    )
    assert purge_archives(tmp_path / "missing") == 0
