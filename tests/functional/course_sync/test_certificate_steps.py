"""The worker's certificate steps against the Canvas simulator over real HTTP: attendance recorded → the worker
evaluates and issues → the holder's e-mail → completion on the "Kursbevis" line item (AGS, client credentials with
the tool's key, no live launch), retried through Canvas faults, never twice; and the nightly sweep."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from course_sync.ags import SCOPE_LINEITEM, SCOPE_SCORE
from course_sync.certificate_steps import sweep_job
from course_sync.steps import step_kinds
from course_sync.worker import EXIT_IDLE, Worker
from kurspakke.certificates.codes import format_code
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.certificates.requests import CERTIFICATE_EVALUATE
from kurspakke.db import transaction
from kurspakke.models import CourseLink, IdentityKind, Registration
from kurspakke.outbox.models import OutboxStep, StepStatus
from kurspakke.services.people import add_identity
from tests.support.canvas_live import FAST
from tests.support.certificates import PROGRAMME, complete_modules, hold_sessions, run
from tests.unit.course_sync.test_ags import Live, keyring, start  # noqa: F401 - fixtures

BASE = "https://kurs.example.no"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def canvas(start: Callable[..., Live]) -> Live:  # noqa: F811 - the imported fixture
    """A simulator served on a free port, the tool connected to it for AGS."""
    return start()


class Outbox:
    """E-mails the worker sent (the send callable the SMTP sender stands behind)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    def __call__(self, **message: str) -> None:
        self.sent.append(message)


def _setup(sessions: sessionmaker[Session], canvas: Live, *, ags: bool = True) -> dict[str, int]:
    config = canvas.platform.config
    with transaction(sessions) as s:
        registration = Registration(
            issuer=config.effective_issuer,
            client_id=config.client_id,
            auth_login_url=config.auth_login_url,
            auth_token_url=config.token_url,
            key_set_url=f"{config.base}/api/lti/security/jwks",
        )
        s.add(registration)
        s.flush()
        s.add(
            CourseLink(
                programme_id=PROGRAMME.id,
                platform_instance=config.effective_issuer,
                context_id=config.context_id,
                canvas_course_id=str(config.course_id),
                ags_lineitems_url=canvas.lineitems if ags else None,
                ags_scopes=[SCOPE_LINEITEM, SCOPE_SCORE] if ags else [],
                ags_registration_id=registration.id if ags else None,
            )
        )
        r = run(s, ["Kari Nordmann"])
        kari = r.seats[0]
        add_identity(s, kari.person, IdentityKind.LTI_SUB, config.effective_issuer, canvas.student("deltaker"))
        complete_modules(s, kari)
        hold_sessions(s, r)  # writes certificate.evaluate steps for Kari and the mentor
        return {"kari": kari.person_id, "mentor": r.mentor.id}


def _worker(sessions: sessionmaker[Session], canvas: Live, mail: Outbox) -> Worker:
    kinds = step_kinds(mail, base_url=BASE, connector_for=lambda _registration: canvas.connector_for(2.0))
    # Only the certificate steps: the seats', groups' and meetings' steps need a registered Canvas REST API, which
    # these tests do not set up (they stay pending, untouched).
    mine = {kind: step for kind, step in kinds.items() if kind.startswith("certificate.")}
    return Worker(sessions, lambda _instance: None, mine, FAST)


def _scores(canvas: Live) -> list[dict[str, Any]]:
    return [score for scores in canvas.platform.scores.values() for score in scores]


def test_recorded_attendance_leads_to_a_certificate_an_email_and_a_score_in_canvas(
    session_factory: sessionmaker[Session], canvas: Live
) -> None:
    people = _setup(session_factory, canvas)
    with session_factory() as s:
        assert s.scalar(select(func.count(OutboxStep.id)).where(OutboxStep.kind == CERTIFICATE_EVALUATE)) >= 1
    mail = Outbox()

    assert _worker(session_factory, canvas, mail).run_until_idle(max_seconds=60) == EXIT_IDLE

    with session_factory() as s:
        certs = {c.person_id: c for c in s.scalars(select(Certificate))}
        link = s.scalars(select(CourseLink)).one()
        assert set(certs) == {people["kari"], people["mentor"]}
        kari = certs[people["kari"]]
        assert kari.role is CertificateRole.PARTICIPANT and kari.ags_posted_at is not None
        assert certs[people["mentor"]].ags_posted_at is None  # a mentor is a TA in Canvas: no grade
        assert link.ags_lineitem_url == f"{canvas.lineitems}/1"
    # The e-mails: one to each holder, with the code as printed and the verification address.
    to_kari = [m for m in mail.sent if m["to"] == "person0.958935420@example.no"]
    assert len(mail.sent) == 2 and len(to_kari) == 1
    assert format_code(kari.code) in to_kari[0]["text"] and f"{BASE}/verify/{kari.code}" in to_kari[0]["text"]
    assert PROGRAMME.title in to_kari[0]["subject"]
    # Canvas has one "Kursbevis" line item and Kari's completion on it, timed at the issue.
    items = list(canvas.platform.line_items.values())
    assert [(i["label"], i["tag"], i["scoreMaximum"]) for i in items] == [("Kursbevis", "kursbevis", 1.0)]
    scores = _scores(canvas)
    assert [(sc["userId"], sc["scoreGiven"], sc["activityProgress"], sc["gradingProgress"]) for sc in scores] == [
        (canvas.student("deltaker"), 1, "Completed", "FullyGraded")
    ]
    sent_at = datetime.fromisoformat(scores[0]["timestamp"].replace("Z", "+00:00"))
    assert sent_at == kari.issued_at.astimezone(UTC).replace(microsecond=kari.issued_at.microsecond // 1000 * 1000)

    # The nightly sweep finds nobody left to evaluate and nothing left to post.
    worker = _worker(session_factory, canvas, mail)
    ctx = worker._context("sweep", lambda: None)
    assert sweep_job(ctx) == {"asked": 0, "gradebook": 0}


def test_canvas_faults_delay_the_score_but_never_lose_or_double_it(
    session_factory: sessionmaker[Session], canvas: Live
) -> None:
    _setup(session_factory, canvas)
    faults = [
        canvas.rest.inject("status", status=503, path=r"/line_items$", times=2),
        canvas.rest.inject("drop_after", method="POST", path=r"/scores$", times=1),  # Canvas took it; answer lost
        canvas.rest.inject("throttle", path=r"/scores$", times=1),
    ]

    assert _worker(session_factory, canvas, Outbox()).run_until_idle(max_seconds=60) == EXIT_IDLE

    assert [f.fired for f in faults] == [2, 1, 1]
    assert len(canvas.platform.line_items) == 1
    # A repeat of the same completion (same timestamp) is the same score: Canvas keeps the latest, one result.
    assert {sc["userId"] for sc in _scores(canvas)} == {canvas.student("deltaker")}
    with session_factory() as s:
        assert s.scalar(select(func.count(OutboxStep.id)).where(OutboxStep.status == StepStatus.PARKED)) == 0


def test_without_ags_scopes_the_certificate_is_issued_and_nothing_goes_to_canvas(
    session_factory: sessionmaker[Session], canvas: Live
) -> None:
    people = _setup(session_factory, canvas, ags=False)

    assert _worker(session_factory, canvas, Outbox()).run_until_idle(max_seconds=60) == EXIT_IDLE

    assert canvas.platform.line_items == {} and _scores(canvas) == []
    with session_factory() as s:
        cert = s.scalars(select(Certificate).where(Certificate.person_id == people["kari"])).one()
        assert cert.valid and cert.ags_posted_at is None


def test_a_step_naming_no_people_or_an_unknown_programme_is_parked(
    session_factory: sessionmaker[Session], canvas: Live
) -> None:
    from kurspakke.outbox.services import enqueue

    with transaction(session_factory) as s:
        enqueue(s, CERTIFICATE_EVALUATE, "bad:1", {"programme_id": "nope", "person_ids": [1]})
        enqueue(s, CERTIFICATE_EVALUATE, "bad:2", {"programme_id": PROGRAMME.id, "person_ids": "1"})
    worker: Callable[[], int] = _worker(session_factory, canvas, Outbox()).run_until_idle
    assert worker() == 3  # parked
    with session_factory() as s:
        assert s.scalar(select(func.count(Certificate.id))) == 0


def test_the_hourly_purge_removes_archives_past_their_download_time(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    import os
    import time

    from course_sync.runtime import periodic_jobs
    from kurspakke.certificates.archive import ARCHIVE_PREFIX, ARCHIVE_SUFFIX

    old, new = (tmp_path / f"{ARCHIVE_PREFIX}{name}{ARCHIVE_SUFFIX}" for name in ("old", "new"))
    for path in (old, new):
        path.write_bytes(b"PK")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    job = next(j for j in periodic_jobs(exports=tmp_path) if j.name == "purge_expired_state")
    worker = Worker(session_factory, lambda _instance: None, {}, FAST)

    report = job.run(worker._context(None))

    assert report["archives"] == 1 and not old.exists() and new.exists()
