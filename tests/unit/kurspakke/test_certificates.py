"""Issuing certificates exactly once, what remains for those not yet eligible, revocation and re-issue
(kurspakke.certificates), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from kurspakke.certificates import services as certificates
from kurspakke.certificates.codes import CodeShape, classify
from kurspakke.certificates.eligibility import standings
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.certificates.requests import CERTIFICATE_EVALUATE
from kurspakke.certificates.services import CertificateError
from kurspakke.licences.models import AuditEntry, Seat
from kurspakke.models import Person
from kurspakke.outbox.models import OutboxStep
from kurspakke.progress.models import ModuleCompletion
from tests.support.certificates import PROGRAMME, complete_modules, hold_sessions, run

pytestmark = pytest.mark.timeout(120)


def _certificates(session: Session) -> list[Certificate]:
    return list(session.scalars(select(Certificate).order_by(Certificate.id)))


def _steps(session: Session, kind: str) -> list[OutboxStep]:
    return list(session.scalars(select(OutboxStep).where(OutboxStep.kind == kind).order_by(OutboxStep.id)))


def test_a_participant_not_yet_eligible_gets_nothing_and_is_told_exactly_what_remains(session: Session) -> None:
    r = run(session, ["Kari Nordmann"])
    kari = r.seats[0]
    complete_modules(session, kari, ["emne-1", "emne-3"])
    hold_sessions(session, r, ["intro", "samling-1", "samling-2"])
    session.commit()

    result = certificates.evaluate(session, PROGRAMME, [kari.person_id])
    session.commit()

    assert (result.issued, result.not_yet) == (0, 1)
    assert _certificates(session) == []
    standing = standings(session, PROGRAMME, [kari.person_id])[kari.person_id]
    assert standing.missing_modules == ["emne-2", "emne-4"]
    assert standing.missing_sessions == ["samling-3", "samling-4"]
    assert not standing.eligible and standing.completed_on is None


def test_an_eligible_participant_gets_one_certificate_with_the_printed_facts(session: Session) -> None:
    r = run(session, ["Åse Ødegård-Bjørnæs"])
    seat = r.seats[0]
    complete_modules(session, seat)
    hold_sessions(session, r)
    session.commit()

    first = certificates.evaluate(session, PROGRAMME, [seat.person_id, r.mentor.id])
    session.commit()
    again = certificates.evaluate(session, PROGRAMME)
    session.commit()

    # The participant and the mentor (who led every group session) each get one; evaluating again issues none.
    assert (first.issued, again.issued, again.already) == (2, 0, 2)
    participant, mentor = sorted(_certificates(session), key=lambda c: c.role.value, reverse=True)
    assert participant.role is CertificateRole.PARTICIPANT and mentor.role is CertificateRole.MENTOR
    assert participant.name == "Åse Ødegård-Bjørnæs" and participant.organisation_name == "Oslo kommune"
    assert participant.mentor_names == "Mona Mentor"
    assert participant.printed["module_titles"] == [m.title for m in PROGRAMME.modules]
    assert participant.printed["statement"] == PROGRAMME.certificate.participant_text
    assert mentor.printed["statement"] == PROGRAMME.certificate.mentor_text
    # Completed on the day the last requirement was met: samling-4, the fifth session, 4 weeks and a day after the
    # start (the last quiz was handed in a week before).
    assert participant.completed_on == date(2026, 3, 31)
    assert classify(participant.code) is CodeShape.WELL_FORMED and participant.code != mentor.code
    audits = session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "certificate")).all()
    assert sorted(audits) == ["certificate.issued", "certificate.issued"]
    notify = {s.payload["certificate_id"] for s in _steps(session, certificates.CERTIFICATE_NOTIFY)}
    assert notify == {participant.id, mentor.id}
    # Only a participant's completion goes to Canvas's gradebook (a mentor is a TA there).
    assert [s.payload["certificate_id"] for s in _steps(session, certificates.CERTIFICATE_AGS)] == [participant.id]


def test_a_makeup_counts_and_changes_ask_the_worker_to_evaluate(session: Session) -> None:
    r = run(session, ["Kari Nordmann", "Ola Hansen"])
    kari, ola = r.seats
    complete_modules(session, kari)
    hold_sessions(session, r, present=[ola])  # Kari missed every session
    session.commit()
    asked = _steps(session, CERTIFICATE_EVALUATE)
    assert asked and all(kari.person_id in s.payload["person_ids"] for s in asked)
    assert certificates.evaluate(session, PROGRAMME, [kari.person_id]).issued == 0

    from kurspakke.meetings import services as meetings

    for s in PROGRAMME.sessions:
        meetings.record_makeup(session, PROGRAMME, kari, s.id, recorder=r.mentor, note="Tatt igjen", actor="test")
    session.commit()

    assert certificates.evaluate(session, PROGRAMME, [kari.person_id]).issued == 1


def test_a_mentor_who_did_not_lead_every_group_session_is_told_what_remains(session: Session) -> None:
    r = run(session, ["Kari Nordmann"])
    hold_sessions(session, r, ["intro", "samling-1", "samling-2"])
    session.commit()
    standing = standings(session, PROGRAMME, [r.mentor.id])[r.mentor.id]
    assert standing.role is CertificateRole.MENTOR
    # The mentor rule asks for the group sessions ("ledet gruppesamlingene"), not the introduction.
    assert standing.missing_sessions == ["samling-3", "samling-4"]
    assert certificates.evaluate(session, PROGRAMME, [r.mentor.id]).issued == 0


def _evaluate_concurrently(factory: sessionmaker[Session], person_id: int, n: int) -> list[str]:
    barrier = threading.Barrier(n)
    outcomes: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        with factory() as s:
            try:
                result = certificates.evaluate(s, PROGRAMME, [person_id])
                s.commit()
                outcome = f"issued={result.issued}"
            except Exception as exc:  # any other outcome is recorded by name and fails the test
                s.rollback()
                outcome = repr(exc)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return outcomes


def test_twenty_parallel_evaluations_of_one_person_issue_one_certificate(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    r = run(session, ["Kari Nordmann"])
    complete_modules(session, r.seats[0])
    hold_sessions(session, r)
    session.commit()

    outcomes = _evaluate_concurrently(session_factory, r.seats[0].person_id, 20)

    assert len(outcomes) == 20
    assert outcomes.count("issued=1") == 1, outcomes
    assert outcomes.count("issued=0") == 19, outcomes
    with session_factory() as s:
        count = s.scalar(select(func.count(Certificate.id)).where(Certificate.person_id == r.seats[0].person_id))
        steps = s.scalar(select(func.count(OutboxStep.id)).where(OutboxStep.kind == certificates.CERTIFICATE_NOTIFY))
    assert count == 1
    assert steps == 1  # the losers wrote nothing: their savepoint was rolled back


def test_the_database_refuses_a_second_current_certificate(session: Session) -> None:
    r = run(session, ["Kari Nordmann"])
    complete_modules(session, r.seats[0])
    hold_sessions(session, r)
    certificates.evaluate(session, PROGRAMME, [r.seats[0].person_id])
    session.commit()
    original = _certificates(session)[0]
    # Not luck: a second row for the same person and programme is refused by the unique index itself.
    from sqlalchemy.exc import IntegrityError

    twin = Certificate(
        code="0" * 14,
        programme_id=PROGRAMME.id,
        person_id=original.person_id,
        organisation_id=original.organisation_id,
        role=original.role,
        name=original.name,
        organisation_name=original.organisation_name,
        completed_on=original.completed_on,
        printed=original.printed,
        issued_by="test",
    )
    session.add(twin)
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    assert len(_certificates(session)) == 1


def _issued(session: Session, name: str = "Kari Nordmann") -> Certificate:
    r = run(session, [name])
    complete_modules(session, r.seats[0])
    hold_sessions(session, r)
    certificates.evaluate(session, PROGRAMME, [r.seats[0].person_id])
    session.commit()
    return next(c for c in _certificates(session) if c.role is CertificateRole.PARTICIPANT)


def _snapshot(session: Session) -> tuple[object, ...]:
    rows = session.execute(
        select(Certificate.id, Certificate.revoked_at, Certificate.superseded_at, Certificate.name)
    ).all()
    audits = session.scalar(select(func.count(AuditEntry.id)))
    return tuple(rows), audits


@pytest.mark.parametrize(
    ("reason", "key"), [("", "reason_missing"), ("   \n ", "reason_missing"), ("x" * 501, "reason_too_long")]
)
def test_revoking_needs_a_reason_and_writes_nothing_without_one(session: Session, reason: str, key: str) -> None:
    cert = _issued(session)
    before = _snapshot(session)
    with pytest.raises(CertificateError) as refused:
        certificates.revoke(session, cert, reason=reason, actor="owner:test")
    assert refused.value.key == key
    session.rollback()
    assert _snapshot(session) == before


def test_a_revoked_certificate_stays_revoked_and_is_never_issued_again(session: Session) -> None:
    cert = _issued(session)
    certificates.revoke(session, cert, reason="Utstedt ved en feil", actor="owner:test")
    session.commit()
    assert cert.revoked_at is not None and cert.revoked_reason == "Utstedt ved en feil"
    with pytest.raises(CertificateError) as twice:
        certificates.revoke(session, cert, reason="igjen", actor="owner:test")
    assert twice.value.key == "certificate_revoked"
    with pytest.raises(CertificateError) as reissue:
        certificates.reissue(session, cert, reason="navn", actor="owner:test", name="Kari N.")
    assert reissue.value.key == "certificate_revoked"
    session.rollback()
    # The nightly sweep does not hand out a new one behind the revocation.
    assert cert.person_id not in certificates.people_without_certificates(session, PROGRAMME)
    assert certificates.evaluate(session, PROGRAMME, [cert.person_id or 0]).issued == 0
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "certificate.revoked")).one()
    assert entry.before is not None and entry.before["revoked_at"] is None
    assert entry.after is not None and entry.after["revoked_reason"] == "Utstedt ved en feil"


def test_reissue_with_a_corrected_name_supersedes_the_old_code_and_keeps_history(session: Session) -> None:
    cert = _issued(session, "Kari Nordman")
    old_code = cert.code
    new = certificates.reissue(session, cert, reason="Feilstavet navn", actor="owner:test", name="  Kari   Nordmann ")
    session.commit()

    assert new.code != old_code and new.name == "Kari Nordmann" and new.valid
    assert cert.superseded_at is not None and cert.superseded_by_id == new.id and not cert.valid
    assert certificates.current(session, PROGRAMME.id, new.person_id or 0) == new
    assert certificates.by_code(session, old_code) == cert  # the old code still answers: "replaced"
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "certificate.reissued")).one()
    assert entry.after is not None and entry.after["reason"] == "Feilstavet navn"
    assert entry.after["replacement"]["name"] == "Kari Nordmann"
    with pytest.raises(CertificateError) as again:
        certificates.reissue(session, cert, reason="igjen", actor="owner:test")
    assert again.value.key == "certificate_superseded"


@pytest.mark.parametrize(
    ("name", "key"), [("   ", "name_missing"), ("x" * 256, "name_too_long"), ("Kari\x00", "name_invalid")]
)
def test_reissue_refuses_a_bad_name_and_writes_nothing(session: Session, name: str, key: str) -> None:
    cert = _issued(session)
    before = _snapshot(session)
    with pytest.raises(CertificateError) as refused:
        certificates.reissue(session, cert, reason="navn", actor="owner:test", name=name)
    assert refused.value.key == key
    session.rollback()
    assert _snapshot(session) == before


def test_a_certificate_stays_verifiable_after_the_person_is_deleted(session: Session) -> None:
    cert = _issued(session, "Åse Ødegård")
    person_id = cert.person_id
    code = cert.code
    # The person's data goes (their seat, completions and the person row); the certificate keeps what it printed.
    session.execute(delete(ModuleCompletion).where(ModuleCompletion.person_id == person_id))
    session.execute(delete(Seat).where(Seat.person_id == person_id))
    session.execute(delete(Person).where(Person.id == person_id))
    session.commit()
    session.expire_all()

    kept = certificates.by_code(session, code)
    assert kept is not None and kept.person_id is None
    assert (kept.name, kept.printed["programme_title"], kept.valid) == ("Åse Ødegård", PROGRAMME.title, True)
