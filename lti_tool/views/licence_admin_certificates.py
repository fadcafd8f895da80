"""The licence administrator's certificates page (``/admin/<organisation id>/<programme id>/certificates``): the
organisation's certificates with their status, a PDF of each valid one, and all valid ones as one ZIP.

Everything goes through ``_pool`` (the organisation and programme of the address, checked against what the database
says this person administers, on every request), and every certificate is looked up by its ``organisation_id`` and
``programme_id``: one of another organisation is "not found" (404), never shown, whatever id is guessed. Downloads
are POSTs carrying the token, like the CSV exports.

The ZIP of up to ``DIRECT_ARCHIVE_MAX`` certificates is written into the answer (about 12 ms a PDF: well under a
second). A larger set is built by the worker (step ``certificate.archive``, course_sync/certificate_archive.py)
under ``<instance>/exports``; the page then shows a status page whose indicator archive.js keeps up to date, and the
download button once the file is there. A build is named by a random token; its status and its file are given only
to an administrator of the organisation it was built for, checked again on every request, and a token of another
organisation, an expired one or a forged one are all 404.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from flask import Response, send_file
from flask.typing import ResponseReturnValue
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from kurspakke.certificates.archive import (
    EXPORTS_FOLDER,
    ArchiveState,
    archive_filename,
    archive_path,
    archive_state,
    norwegian_day,
    organisation_certificates,
    request_archive,
    status_of,
    write_archive,
)
from kurspakke.certificates.codes import format_code
from kurspakke.certificates.documents import document_of, pdf_filename
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.certificates.pdf import render_pdf
from kurspakke.licences.models import Seat, SeatKind
from lti_tool.i18n import gettext
from lti_tool.i18n_marker import N_
from lti_tool.lti.errors import LtiRefusal
from lti_tool.services import commit, db, services
from lti_tool.views.licence_admin import PAGE, Pool, _pool, _render, bp

# A ZIP of at most this many valid certificates is written into the answer; more are built by the worker.
DIRECT_ARCHIVE_MAX = 50

ROLE_LABELS = {CertificateRole.PARTICIPANT: N_("Participant"), CertificateRole.MENTOR: N_("Mentor")}
STATUS_LABELS = {
    "valid": N_("valid"),
    "revoked": N_("revoked %(date)s"),
    "superseded": N_("replaced %(date)s"),
}
ARCHIVE_MESSAGES = {
    "pending": N_("The ZIP file is queued. It is made in the background, usually within a minute or two."),
    "running": N_("The ZIP file is being made."),
    "done": N_("The ZIP file is ready."),
    "failed": N_("The ZIP file could not be made. Try again in a while."),
}


@dataclass(frozen=True)
class CertificateRow:
    """One row of the table, in the user's language."""

    id: int
    name: str
    role: str
    completed: str
    code: str
    state: str  # valid, revoked, superseded
    state_label: str

    @property
    def valid(self) -> bool:
        return self.state == "valid"


def certificate_rows(certs: list[Certificate]) -> list[CertificateRow]:
    rows = []
    for cert in certs:
        state, day = status_of(cert)
        label = gettext(STATUS_LABELS[state], date=norwegian_day(day)) if day else gettext(STATUS_LABELS[state])
        rows.append(
            CertificateRow(
                id=cert.id,
                name=cert.name,
                role=gettext(ROLE_LABELS[cert.role]),
                completed=norwegian_day(cert.completed_on),
                code=format_code(cert.code),
                state=state,
                state_label=label,
            )
        )
    return rows


def participants_without_certificate(session: Session, organisation_id: int, programme_id: str) -> int:
    """People holding an unrevoked participant licence of the organisation who have no current certificate of the
    programme (a revoked one counts as current: no second one is issued behind it)."""
    has_one = exists().where(
        Certificate.person_id == Seat.person_id,
        Certificate.programme_id == programme_id,
        Certificate.superseded_at.is_(None),
    )
    query = select(func.count(func.distinct(Seat.person_id))).where(
        Seat.organisation_id == organisation_id,
        Seat.programme_id == programme_id,
        Seat.kind == SeatKind.PARTICIPANT,
        Seat.revoked_at.is_(None),
        ~has_one,
    )
    return session.scalar(query) or 0


def _exports() -> Path:
    return services().settings.instance_path / EXPORTS_FOLDER


def _page(pool: Pool, status: int = 200, error: str | None = None) -> ResponseReturnValue:
    session = db()
    rows = certificate_rows(organisation_certificates(session, pool.organisation.id, pool.programme.id))
    return _render(
        pool,
        "certificates.html",
        status,
        rows=rows,
        valid_count=sum(1 for row in rows if row.valid),
        without=participants_without_certificate(session, pool.organisation.id, pool.programme.id),
        direct_max=DIRECT_ARCHIVE_MAX,
        error=error,
    )


@bp.route(PAGE + "/certificates", methods=["GET", "POST"])
def certificates(org_id: int, programme_id: str) -> ResponseReturnValue:
    """The organisation's certificates. Raises LtiRefusal(403) for an organisation or programme this person does
    not administer."""
    return _page(_pool(org_id, programme_id))


def _own_valid(pool: Pool, cert_id: int) -> Certificate:
    """Raises LtiRefusal(404) for a certificate of another organisation or programme, one that does not exist, and
    a revoked or replaced one (its PDF would read as valid on paper)."""
    cert = (
        db()
        .scalars(
            select(Certificate).where(
                Certificate.id == cert_id,
                Certificate.organisation_id == pool.organisation.id,
                Certificate.programme_id == pool.programme.id,
            )
        )
        .one_or_none()
    )
    if cert is None or not cert.valid:
        raise LtiRefusal("not_found", status=404)
    return cert


@bp.post(PAGE + "/certificates/<int:cert_id>/pdf")
def certificate_pdf(org_id: int, programme_id: str, cert_id: int) -> ResponseReturnValue:
    pool = _pool(org_id, programme_id)
    cert = _own_valid(pool, cert_id)
    body = render_pdf(document_of(cert, services().settings.base_url))
    return Response(
        body,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{pdf_filename(cert)}"', "Cache-Control": "no-store"},
    )


def _zip_headers(pool: Pool) -> dict[str, str]:
    filename = archive_filename(pool.organisation.orgnr, pool.programme.id)
    return {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}


@bp.post(PAGE + "/certificates/archive")
def certificate_archive(org_id: int, programme_id: str) -> ResponseReturnValue:
    """All valid certificates as one ZIP: in the answer for a small set, else built by the worker (the answer is
    then the status page)."""
    pool = _pool(org_id, programme_id)
    session = db()
    certs = organisation_certificates(session, pool.organisation.id, pool.programme.id)
    valid = sum(1 for cert in certs if cert.valid)
    if not valid:
        return _page(pool, 409, error=gettext("There are no valid certificates to download yet."))
    settings = services().settings
    if valid <= DIRECT_ARCHIVE_MAX:
        out = io.BytesIO()
        write_archive(certs, settings.base_url, out)
        return Response(out.getvalue(), mimetype="application/zip", headers=_zip_headers(pool))
    token = request_archive(
        session,
        pool.organisation.id,
        pool.programme.id,
        total=valid,
        directory=_exports(),
        base_url=settings.base_url,
        requested_by=pool.who.person_id,
    )
    commit()  # the worker may take the step before this page is sent
    return _status_page(pool, _state(pool, token), 202)


def _state(pool: Pool, token: str) -> ArchiveState:
    """Raises LtiRefusal(404) for a token that names no build of this organisation and programme (another's, an
    expired one, a forged one)."""
    state = archive_state(db(), token, pool.organisation.id, pool.programme.id)
    if state is None:
        raise LtiRefusal("not_found", status=404)
    return state


def _status_page(pool: Pool, state: ArchiveState, status: int = 200) -> ResponseReturnValue:
    return _render(
        pool,
        "certificates_archive.html",
        status,
        archive=state,
        message=gettext(ARCHIVE_MESSAGES[state.status]),
        counted=gettext("%(done)s of %(total)s", done=state.done, total=state.total),
    )


@bp.route(PAGE + "/certificates/archive/<token>", methods=["GET", "POST"])
def archive_page(org_id: int, programme_id: str, token: str) -> ResponseReturnValue:
    """The build's status page (also without scripts: its "Check again" button posts here)."""
    pool = _pool(org_id, programme_id)
    return _status_page(pool, _state(pool, token))


@bp.post(PAGE + "/certificates/archive/<token>/status")
def archive_status(org_id: int, programme_id: str, token: str) -> ResponseReturnValue:
    """The build's state as JSON for archive.js (the token in the X-Launch-Token header)."""
    pool = _pool(org_id, programme_id)
    state = _state(pool, token)
    return {
        "status": state.status,
        "done": state.done,
        "total": state.total,
        "message": gettext(ARCHIVE_MESSAGES[state.status]),
        "counted": gettext("%(done)s of %(total)s", done=state.done, total=state.total),
    }


@bp.post(PAGE + "/certificates/archive/<token>/download")
def archive_download(org_id: int, programme_id: str, token: str) -> ResponseReturnValue:
    """The built ZIP; 404 until it is built, after it expired, and for a token of another organisation."""
    pool = _pool(org_id, programme_id)
    state = _state(pool, token)
    path = archive_path(_exports(), token)
    if state.status != "done" or not path.is_file():
        raise LtiRefusal("not_found", status=404)
    response = send_file(
        path,
        mimetype="application/zip",
        as_attachment=True,
        download_name=archive_filename(pool.organisation.orgnr, pool.programme.id),
        conditional=False,
        etag=False,
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


__all__ = [
    "DIRECT_ARCHIVE_MAX",
    "CertificateRow",
    "certificate_rows",
    "participants_without_certificate",
]
