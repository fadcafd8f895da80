"""The worker's step ``certificate.archive``: an organisation's certificates as one ZIP file, for a set too large to
build while the licence administrator's request waits (lti_tool/views/licence_admin_certificates.py).

It reads the certificates, writes the ZIP to a part file beside its final place and renames it when complete, so a
download never sees half a file; meanwhile it reports done/total on the build's state row
(kurspakke.certificates.archive) at most every ``PROGRESS_SECONDS``, and keeps its lease. Run again after a crash,
it builds the file again from the start. Files older than a day are removed whenever a build starts."""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from course_sync.provisioning import StepContext
from kurspakke.certificates.archive import (
    CERTIFICATE_ARCHIVE,
    PART_SUFFIX,
    archive_path,
    build_wanted,
    is_token,
    organisation_certificates,
    purge_archives,
    record_built,
    record_progress,
    write_archive,
)
from kurspakke.db import transaction
from kurspakke.outbox.services import LeaseLost, StepPark

log = logging.getLogger("kurspakke.certificates")

# Progress is written at most this often (one short write transaction each): the page polls every two seconds, and
# a write per PDF (~12 ms of work each) would make the database, not the PDFs, the cost of a build.
PROGRESS_SECONDS = 1.0


def _payload(payload: dict[str, Any]) -> tuple[str, int, str, Path, str]:
    token = payload.get("token")
    organisation_id = payload.get("organisation_id")
    programme_id = payload.get("programme_id")
    directory = payload.get("directory")
    base_url = payload.get("base_url")
    if not isinstance(token, str) or not is_token(token):
        raise StepPark("the step names no archive token")
    if not isinstance(organisation_id, int) or not isinstance(programme_id, str):
        raise StepPark("the step names no organisation and programme")
    if not isinstance(directory, str) or not directory or not isinstance(base_url, str):
        raise StepPark("the step names no directory or address")
    return token, organisation_id, programme_id, Path(directory), base_url


def build_archive(ctx: StepContext, payload: dict[str, Any]) -> None:
    """Step ``certificate.archive`` (kurspakke.certificates.archive.request_archive)."""
    token, organisation_id, programme_id, directory, base_url = _payload(payload)
    with transaction(ctx.read()) as session:
        wanted = build_wanted(session, token)
        # Loaded completely and detached when the session closes (expire_on_commit is off): the PDFs are rendered
        # without a database transaction held open.
        certs = organisation_certificates(session, organisation_id, programme_id) if wanted else []
    if not wanted:  # the request expired before a worker got to it: no page can fetch the file any more
        log.info("certificate archive %s… no longer wanted", token[:6])
        with transaction(ctx.sessions) as session:
            ctx.finish(session)
        return

    directory.mkdir(parents=True, exist_ok=True)
    purge_archives(directory)
    final = archive_path(directory, token)
    # A name of this try's own: a worker that lost its lease and one that took the step over never share a file.
    part = final.with_name(f"{final.name}.{uuid.uuid4().hex[:8]}{PART_SUFFIX}")
    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done not in (0, total) and now - last < PROGRESS_SECONDS:
            return
        last = now
        ctx.keep_lease()  # raises LeaseLost when another worker has the step now: stop writing
        with transaction(ctx.sessions) as session:
            record_progress(session, token, done, total)

    started = time.monotonic()
    try:
        with part.open("wb") as out:
            count = write_archive(certs, base_url, out, progress)
            out.flush()
            os.fsync(out.fileno())  # on disk before the rename makes it the archive
        size = part.stat().st_size
        os.replace(part, final)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    with transaction(ctx.sessions) as session:
        record_built(session, token, count, size)
        if not ctx.finish(session):
            raise LeaseLost("the archive step was taken over by another worker")
    log.info(
        "certificate archive of organisation %s (%s): %d PDFs, %d bytes in %.1f s",
        organisation_id,
        programme_id,
        count,
        size,
        time.monotonic() - started,
    )


__all__ = ["CERTIFICATE_ARCHIVE", "PROGRESS_SECONDS", "build_archive"]
