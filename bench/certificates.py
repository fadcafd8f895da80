#!/usr/bin/env python
"""Certificates: tagged PDFs per second per core, and the licence administrator's ZIP of 1,000 certificates.

1. PDFs: `kurspakke.certificates.pdf.render_pdf` of --pdfs documents, each with another name (long names with
   æ ø å among them), in one thread — one core. The font subset is made once per process before timing (it is in
   the service too); its one-off cost is printed. Target: ≥ 30 PDFs per second.
   Baseline in the same run: the same documents' text through zlib (level 6) alone — what any PDF of this text
   must at least cost — so the ratio says how much the layout, tagging and file structure add on this machine.
2. ZIP: --certificates certificates in the database (a temporary SQLite file, or a database of its own on the
   PostgreSQL server of --database-url), then `kurspakke.certificates.archive.write_archive` of all of them
   (read from the database as the worker does, every PDF rendered, the index written) into a file. Target: ≤ 40 s.
   Baseline in the same run: writing the same number of PDF-sized random entries into a ZIP (the archive's own
   I/O and CRC cost).

Medians of --repeat runs are printed.

    .venv/bin/python bench/certificates.py
    .venv/bin/python bench/certificates.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import io
import os
import platform as py_platform
import statistics
import sys
import tempfile
import time
import zipfile
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bench._database import Database  # noqa: E402
from kurspakke.certificates.archive import organisation_certificates, write_archive  # noqa: E402
from kurspakke.certificates.codes import format_code, new_code  # noqa: E402
from kurspakke.certificates.models import Certificate, CertificateRole  # noqa: E402
from kurspakke.certificates.pdf import CertificateDocument, render_pdf  # noqa: E402
from kurspakke.certificates.services import printed_texts  # noqa: E402
from kurspakke.db import make_engine, make_session_factory, transaction, upgrade  # noqa: E402
from kurspakke.models import Organisation  # noqa: E402
from kurspakke.programmes import load_programmes  # noqa: E402

PROGRAMME = load_programmes()["lindrende-behandling"]
BASE = "https://kurs.example.no"
FIRST = ["Åse", "Øystein", "Kari", "Ola", "Bjørn", "Ingrid", "Marie-Louise", "Håkon", "Sølvi", "Zoë"]
LAST = ["Ødegård-Bjørnæs", "Nordmann", "Aas", "Berg", "Kristiansen-Løvås", "Næss", "Vik", "Strømsæther"]


def name(n: int) -> str:
    base = f"{FIRST[n % len(FIRST)]} {LAST[(n // len(FIRST)) % len(LAST)]}"
    # Every seventh name is a long one (shrunk or wrapped on the page).
    return base + " Eriksen-Haugland von Wright-Sandvik" if n % 7 == 0 else base


def document(n: int) -> CertificateDocument:
    printed = printed_texts(PROGRAMME, CertificateRole.PARTICIPANT)
    code = new_code()
    return CertificateDocument(
        title=printed["title"],
        name=name(n),
        statement=printed["statement"],
        programme_title=printed["programme_title"],
        organisation="Bodø kommune",
        completed_on=date(2026, 11, 30),
        issuer=printed["issuer"],
        code=format_code(code),
        verify_url=f"{BASE}/verify/{code}",
        learning_goals_heading=printed["learning_goals_heading"],
        learning_goals=tuple(printed["learning_goals"]),
        modules_heading=printed["modules_heading"],
        module_titles=tuple(printed["module_titles"]),
        mentor="Mona Mentor",
        signatories=tuple(printed["signatories"]),
        note=printed["note"],
    )


def text_of(doc: CertificateDocument) -> bytes:
    parts = [doc.title, doc.name, doc.statement, doc.programme_title, doc.organisation, doc.issuer, doc.code]
    parts += [*doc.learning_goals, *doc.module_titles, *doc.signatories, doc.note, doc.verify_url]
    return "\n".join(parts).encode()


def bench_pdfs(count: int, repeat: int) -> tuple[float, float, int]:
    docs = [document(n) for n in range(count)]
    started = time.perf_counter()
    render_pdf(docs[0])  # the font subset, once per process
    first = time.perf_counter() - started
    rates, baselines = [], []
    size = 0
    for _ in range(repeat):
        t = time.perf_counter()
        for doc in docs:
            size = len(render_pdf(doc))
        rates.append(count / (time.perf_counter() - t))
        t = time.perf_counter()
        for doc in docs:
            zlib.compress(text_of(doc), 6)
        baselines.append(count / (time.perf_counter() - t))
    rate, baseline = statistics.median(rates), statistics.median(baselines)
    print(f"font subset and first PDF: {first * 1000:.0f} ms (once per process)")
    print(f"PDFs per second, one core: {rate:.1f} (median of {repeat} × {count}); one PDF {size / 1024:.0f} KiB")
    print(f"baseline (the text through zlib): {baseline:.0f}/s — the PDF costs {baseline / rate:.0f}× that")
    return rate, baseline, size


def seed(url: str, count: int) -> int:
    engine = make_engine(url)
    upgrade(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as s:
        org = Organisation(name="Bodø kommune", orgnr="972418013")
        s.add(org)
        s.flush()
        printed = printed_texts(PROGRAMME, CertificateRole.PARTICIPANT)
        issued = datetime(2026, 11, 30, 12, tzinfo=UTC)
        rows = [
            {
                "code": new_code(),
                "programme_id": PROGRAMME.id,
                "person_id": None,
                "organisation_id": org.id,
                "role": CertificateRole.PARTICIPANT,
                "name": name(n),
                "organisation_name": org.name,
                "mentor_names": "Mona Mentor",
                "completed_on": date(2026, 11, 1) + timedelta(days=n % 28),
                "printed": printed,
                "issued_at": issued,
                "issued_by": "bench",
                "revoked_reason": "",
                "revoked_by": "",
            }
            for n in range(count)
        ]
        s.execute(insert(Certificate), rows)
        org_id = org.id
    engine.dispose()
    return org_id


def bench_zip(url: str, org_id: int, count: int, repeat: int, pdf_size: int) -> tuple[float, float]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    times, baselines = [], []
    with tempfile.TemporaryDirectory(prefix="bench-zip-") as tmp:
        out = Path(tmp) / "kursbevis.zip"
        for _ in range(repeat):
            t = time.perf_counter()
            with factory() as s, out.open("wb") as fh:
                certs = organisation_certificates(s, org_id, PROGRAMME.id)
                written = write_archive(certs, BASE, fh)
            times.append(time.perf_counter() - t)
            assert written == count, (written, count)
            with zipfile.ZipFile(out) as zf:
                assert len([n for n in zf.namelist() if n.endswith(".pdf")]) == count
            size = out.stat().st_size
            blob = os.urandom(pdf_size)
            t = time.perf_counter()
            with zipfile.ZipFile(io.BytesIO(), "w", zipfile.ZIP_STORED) as zf:
                for n in range(count):
                    zf.writestr(f"{n}.pdf", blob)
            baselines.append(time.perf_counter() - t)
    engine.dispose()
    seconds, baseline = statistics.median(times), statistics.median(baselines)
    print(f"ZIP of {count} certificates: {seconds:.1f} s (median of {repeat}), {size / 1024 / 1024:.0f} MiB")
    print(f"baseline (the same number of PDF-sized entries, no rendering): {baseline:.2f} s")
    return seconds, baseline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pdfs", type=int, default=300)
    parser.add_argument("--certificates", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(f"python {py_platform.python_version()} on {py_platform.machine()}, {os.cpu_count()} CPUs")
    rate, _baseline, size = bench_pdfs(args.pdfs, args.repeat)
    db = Database(args.database_url, "certificates")
    try:
        print(f"database: {db.backend}")
        org_id = seed(db.url, args.certificates)
        seconds, _ = bench_zip(db.url, org_id, args.certificates, args.repeat, size)
    finally:
        db.drop()
    ok = rate >= 30 and seconds <= 40
    print("targets: ≥ 30 PDFs/s per core, ZIP of 1,000 ≤ 40 s:", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
