"""Asking for a certificate evaluation: an outbox step written in the transaction that changed what a certificate
depends on (a module completion, an attendance record), so the worker evaluates once the change is committed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy.orm import Session

from kurspakke.outbox.services import enqueue

CERTIFICATE_EVALUATE = "certificate.evaluate"
# People per step: one step's evaluation reads a bounded number of rows.
BATCH = 500


def request_evaluation(session: Session, programme_id: str, person_ids: Iterable[int]) -> None:
    """One ``certificate.evaluate`` step per batch of people; a step already waiting for the same people takes it.
    Flushes; the caller commits."""
    ids = sorted(set(person_ids))
    for i in range(0, len(ids), BATCH):
        chunk = ids[i : i + BATCH]
        if len(chunk) == 1:
            subject = f"certificate:{programme_id}:person:{chunk[0]}"
        else:
            digest = hashlib.sha256(",".join(map(str, chunk)).encode()).hexdigest()[:16]
            subject = f"certificate:{programme_id}:people:{digest}"
        enqueue(session, CERTIFICATE_EVALUATE, subject, {"programme_id": programme_id, "person_ids": chunk})


__all__ = ["CERTIFICATE_EVALUATE", "request_evaluation"]
