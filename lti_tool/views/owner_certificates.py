"""The course owner's certificates (``/owner/certificates``): every certificate of the programme, of all
organisations, newest first, searchable by verification code, name or organisation; and one certificate
(``/owner/certificates/<id>``) with its whole history — the certificates it replaced and was replaced by included —
where the owner revokes it or re-issues it (a corrected name), and downloads its PDF.

As every owner page it lives inside Canvas: the launch token comes in a POST, a GET without it gets the resume page,
and business_launch() decides on every request who may see it. Revoking and re-issuing are the issuer's decisions,
so these pages are the seller's like orders and sales: an owner of the course on another Canvas sees none of it.
A certificate of another programme answers 404, as one that does not exist (an id proves nothing). A refusal
answers 422 (the form again, the message beside its field) or 409 (the certificate was revoked or replaced
meanwhile) and writes nothing: the services refuse before they change anything, and the request boundary rolls
back every answer >= 400."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Response, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import case, func, select

from kurspakke.certificates.codes import format_code, normalise
from kurspakke.certificates.documents import document_of, pdf_filename, verify_url
from kurspakke.certificates.models import REVOKED, SUPERSEDED, Certificate, CertificateRole, status_of
from kurspakke.certificates.pdf import render_pdf
from kurspakke.certificates.services import MAX_NAME, MAX_REASON, CertificateError, reissue, revoke
from kurspakke.licences.models import AuditEntry
from kurspakke.programmes import Programme
from lti_tool.i18n import gettext
from lti_tool.i18n_marker import N_
from lti_tool.services import commit, db, services
from lti_tool.views import _resume
from lti_tool.views.context import LaunchContext
from lti_tool.views.owner_pages import _actor, _page, bp, business_launch

PAGE_SIZE = 50
QUERY_MAX = 200
MAX_ID = 2**63 - 1  # larger ids cannot be in the table; asking the database would overflow (SQLite) or fail (PG)

ROLE_LABELS = {
    CertificateRole.PARTICIPANT: N_("Participant"),
    CertificateRole.MENTOR: N_("Mentor"),
}
# The form fields a refusal can point at (their ids in certificate.html), with the label the error summary uses.
FIELD_LABELS = {
    "revoke-reason": N_("Reason for revoking"),
    "revoke-confirm": N_("Confirmation"),
    "reissue-name": N_("Name on the new certificate"),
    "reissue-reason": N_("Reason for re-issuing"),
}
MESSAGES = {
    "reason_missing": N_("Write the reason."),
    "reason_too_long": N_("The reason is too long (at most %(maximum)s characters)."),
    "name_missing": N_("Write the name as it is to be printed on the certificate."),
    "name_too_long": N_("The name is too long (at most %(maximum)s characters)."),
    "name_invalid": N_("The name contains characters that cannot be printed. Write it again without them."),
    "confirm_missing": N_("Tick the box to confirm that the certificate is to be revoked."),
    "certificate_revoked": N_(
        "This certificate has been revoked, so it can be neither revoked again nor re-issued. Nothing was changed."
    ),
    "certificate_superseded": N_(
        "This certificate has been replaced by a newer one, so it cannot be changed any more. Nothing was changed: "
        "open the newer certificate instead."
    ),
    "certificate_not_found": N_("The certificate was not found."),
    "certificate_not_valid": N_("Only a valid certificate can be downloaded."),
}
STATUS = {
    "certificate_revoked": 409,
    "certificate_superseded": 409,
    "certificate_not_found": 404,
    "certificate_not_valid": 409,
}
# Which field of which form a service refusal belongs to.
REVOKE_FIELDS = {"reason_missing": "revoke-reason", "reason_too_long": "revoke-reason"}
REISSUE_FIELDS = {
    "reason_missing": "reissue-reason",
    "reason_too_long": "reissue-reason",
    "name_missing": "reissue-name",
    "name_too_long": "reissue-name",
    "name_invalid": "reissue-name",
}
PARAMS = {"reason_too_long": {"maximum": MAX_REASON}, "name_too_long": {"maximum": MAX_NAME}}


def _message(key: str) -> str:
    return gettext(MESSAGES[key], **PARAMS.get(key, {}))


def shown_code(code: str) -> str:
    """The printed form of a code; a stored code is always well formed, but a page never fails on one that is not."""
    try:
        return format_code(code)
    except ValueError:
        return code


def status_key(cert: Certificate) -> str:
    """The verification page's word for the certificate (kurspakke.certificates.models.status_of)."""
    return status_of(cert)[0]


STATUS_TEXTS = {SUPERSEDED: N_("replaced %(date)s"), REVOKED: N_("revoked %(date)s")}


def status_text(cert: Certificate) -> str:
    key, day = status_of(cert)
    if day is None:
        return gettext("valid")
    return gettext(STATUS_TEXTS[key], date=day.strftime("%d.%m.%Y"))


def _helpers() -> dict[str, Any]:
    return {
        "role_labels": ROLE_LABELS,
        "shown_code": shown_code,
        "status_key": status_key,
        "status_text": status_text,
    }


# --- the list ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    valid: int
    revoked: int
    replaced: int

    @property
    def total(self) -> int:
        return self.valid + self.revoked + self.replaced


def _counts(programme: Programme) -> Counts:
    """One statement. A revoked certificate is never replaced (reissue refuses it), so the three do not overlap."""
    replaced = Certificate.superseded_at.is_not(None)
    revoked = Certificate.revoked_at.is_not(None) & Certificate.superseded_at.is_(None)
    valid = Certificate.revoked_at.is_(None) & Certificate.superseded_at.is_(None)
    row = (
        db()
        .execute(
            select(
                func.sum(case((valid, 1), else_=0)),
                func.sum(case((revoked, 1), else_=0)),
                func.sum(case((replaced, 1), else_=0)),
            ).where(Certificate.programme_id == programme.id)
        )
        .one()
    )
    return Counts(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))


def _newest_first() -> tuple[Any, Any]:
    return Certificate.issued_at.desc(), Certificate.id.desc()


def _matching_ids(programme: Programme, q: str) -> list[int]:
    """The ids of the certificates ``q`` finds, newest first: the one whose code ``q`` is (typed in any form), and
    those whose printed name or organisation contains it. Compared in Python with casefold(): SQLite's lower() folds
    only ASCII, so "ødegård" would not find "Ødegård" there. Reads four narrow columns of the programme's
    certificates in one statement."""
    canonical = normalise(q)
    needle = q.casefold()
    rows = db().execute(
        select(Certificate.id, Certificate.code, Certificate.name, Certificate.organisation_name)
        .where(Certificate.programme_id == programme.id)
        .order_by(*_newest_first())
    )
    return [
        id_
        for id_, code, name, org in rows
        if code == canonical or needle in name.casefold() or needle in org.casefold()
    ]


def _page_number(last: int) -> int:
    raw = request.form.get("page", "").strip()
    # isascii(): str.isdigit() also accepts "²", which int() refuses.
    wanted = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 1
    return min(max(wanted, 1), last)


def _list_page(
    ctx: LaunchContext, programme: Programme, *, status: int = 200, error: str | None = None
) -> ResponseReturnValue:
    # The query comes in the POST (never in the address: it may be a person's name).
    q = " ".join(request.form.get("q", "").split())[:QUERY_MAX]
    counts = _counts(programme)
    session = db()
    if q:
        ids = _matching_ids(programme, q)
        total = len(ids)
        last = max(1, -(-total // PAGE_SIZE))
        page = _page_number(last)
        shown_ids = ids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        by_id = {c.id: c for c in session.scalars(select(Certificate).where(Certificate.id.in_(shown_ids)))}
        rows = [by_id[i] for i in shown_ids if i in by_id]
    else:
        total = counts.total
        last = max(1, -(-total // PAGE_SIZE))
        page = _page_number(last)
        rows = list(
            session.scalars(
                select(Certificate)
                .where(Certificate.programme_id == programme.id)
                .order_by(*_newest_first())
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            )
        )
    html = _page(
        "owner/certificates.html",
        ctx,
        programme,
        url_for("owner_pages.certificates"),
        counts=counts,
        rows=rows,
        q=q,
        total=total,
        page=page,
        last=last,
        first_shown=(page - 1) * PAGE_SIZE + 1 if rows else 0,
        last_shown=(page - 1) * PAGE_SIZE + len(rows),
        error=error,
        **_helpers(),
    )
    return html, status


@bp.route("/certificates", methods=["GET", "POST"])
def certificates() -> ResponseReturnValue:
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme = business_launch()
    return _list_page(ctx, programme)


# --- one certificate ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    action: str  # issued, revoked, reissued, or the audit row's own action for any other
    who: str
    code: str  # the printed code of the certificate the line is about
    reason: str = ""
    name: str = ""  # issued: the name printed; reissued: the old name
    new_name: str = ""
    new_code: str = ""


def _certificate_of(programme: Programme, cert_id: int) -> Certificate | None:
    if cert_id > MAX_ID:
        return None
    cert = db().get(Certificate, cert_id)
    return cert if cert is not None and cert.programme_id == programme.id else None


def _chain(cert: Certificate) -> list[Certificate]:
    """The certificate with those it replaced and those that replaced it, oldest first. Re-issues are rare, so a
    statement per link is fine; ``seen`` stops at a loop a hand-edited database might hold."""
    session = db()
    older: list[Certificate] = []
    seen = {cert.id}
    current = cert
    while True:
        previous = session.scalars(
            select(Certificate)
            .where(Certificate.superseded_by_id == current.id, Certificate.programme_id == cert.programme_id)
            .order_by(Certificate.id)
            .limit(1)
        ).first()
        if previous is None or previous.id in seen:
            break
        seen.add(previous.id)
        older.append(previous)
        current = previous
    newer: list[Certificate] = []
    current = cert
    while current.superseded_by_id is not None and current.superseded_by_id not in seen:
        following = session.get(Certificate, current.superseded_by_id)
        if following is None or following.programme_id != cert.programme_id:
            break
        seen.add(following.id)
        newer.append(following)
        current = following
    return [*reversed(older), cert, *newer]


def _who(actor: str, ctx: LaunchContext) -> str:
    """The audit row's actor as the page says it; the raw identifier stays visible after a known role, because
    the history is what the seller answers questions from."""
    if actor == _actor(ctx):
        return gettext("You (course owner)")
    if actor.startswith("course-owner:"):
        return gettext("Course owner (%(id)s)", id=actor.removeprefix("course-owner:"))
    if actor.startswith("kurspakke"):
        return gettext("Kurspakke, automatically when the requirements were met")
    return actor


def _history(chain: list[Certificate], ctx: LaunchContext) -> list[HistoryLine]:
    entries = db().scalars(
        select(AuditEntry)
        .where(AuditEntry.entity_type == "certificate", AuditEntry.entity_id.in_([str(c.id) for c in chain]))
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    codes = {str(c.id): c.code for c in chain}
    lines = []
    for entry in entries:
        before: dict[str, Any] = entry.before or {}
        after: dict[str, Any] = entry.after or {}
        code = shown_code(str(after.get("code") or before.get("code") or codes.get(entry.entity_id, "")))
        who = _who(entry.actor, ctx)
        if entry.action == "certificate.issued":
            lines.append(HistoryLine(entry.at, "issued", who, code, name=str(after.get("name", ""))))
        elif entry.action == "certificate.revoked":
            lines.append(HistoryLine(entry.at, "revoked", who, code, reason=str(after.get("revoked_reason", ""))))
        elif entry.action == "certificate.reissued":
            replacement: dict[str, Any] = after.get("replacement") or {}
            lines.append(
                HistoryLine(
                    entry.at,
                    "reissued",
                    who,
                    code,
                    reason=str(after.get("reason", "")),
                    name=str(before.get("name", "")),
                    new_name=str(replacement.get("name", "")),
                    new_code=shown_code(str(replacement.get("code", ""))),
                )
            )
        else:
            lines.append(HistoryLine(entry.at, entry.action, who, code))
    return lines


def _certificate_page(
    ctx: LaunchContext,
    programme: Programme,
    cert: Certificate,
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    failed: str | None = None,
    problems: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> ResponseReturnValue:
    chain = _chain(cert)
    at = chain.index(cert)
    html = _page(
        "owner/certificate.html",
        ctx,
        programme,
        url_for("owner_pages.certificate", cert_id=cert.id),
        cert=cert,
        replaces=chain[at - 1] if at > 0 else None,
        replaced_by=chain[at + 1] if at + 1 < len(chain) else None,
        history=_history(chain, ctx),
        verify_address=verify_url(services().settings.base_url, cert.code),
        notice=notice,
        error=error,
        failed=failed,
        problems=problems or {},
        values={"reissue-name": cert.name, **(values or {})},
        field_labels=FIELD_LABELS,
        max_reason=MAX_REASON,
        max_name=MAX_NAME,
        **_helpers(),
    )
    return html, status


def _not_found(ctx: LaunchContext, programme: Programme) -> ResponseReturnValue:
    return _list_page(ctx, programme, status=404, error=_message("certificate_not_found"))


def _state_refusal(cert: Certificate) -> str | None:
    """Checked before the fields: the forms are not shown for a revoked or replaced certificate, so a message beside
    a field would point at nothing."""
    if cert.superseded_at is not None:
        return "certificate_superseded"
    if cert.revoked_at is not None:
        return "certificate_revoked"
    return None


@bp.route("/certificates/<int:cert_id>", methods=["GET", "POST"])
def certificate(cert_id: int) -> ResponseReturnValue:
    resume = _resume()
    if resume is not None:
        return resume
    ctx, programme = business_launch()
    cert = _certificate_of(programme, cert_id)
    if cert is None:
        return _not_found(ctx, programme)
    return _certificate_page(ctx, programme, cert)


def _changeable(cert_id: int) -> tuple[LaunchContext, Programme, Certificate] | ResponseReturnValue:
    """The owner's certificate to revoke or re-issue, or the answer that refuses it: 404 for one not of this
    programme, 409 for one already revoked or replaced (its page shows no forms then)."""
    ctx, programme = business_launch()
    cert = _certificate_of(programme, cert_id)
    if cert is None:
        return _not_found(ctx, programme)
    refusal = _state_refusal(cert)
    if refusal is not None:
        return _certificate_page(ctx, programme, cert, status=STATUS[refusal], error=_message(refusal))
    return ctx, programme, cert


@bp.post("/certificates/<int:cert_id>/revoke")
def revoke_certificate(cert_id: int) -> ResponseReturnValue:
    found = _changeable(cert_id)
    if not isinstance(found, tuple) or not isinstance(found[0], LaunchContext):
        return found
    ctx, programme, cert = found
    reason = request.form.get("reason", "")[: MAX_REASON * 4]
    values = {"revoke-reason": reason}
    problems: dict[str, str] = {}
    if request.form.get("confirm") != "yes":
        # Without the confirmation the service is not asked; a blank reason is said at once all the same, rather
        # than one refusal per try. In the form's order: the reason first (the error summary lists them so).
        if not reason.strip():
            problems["revoke-reason"] = _message("reason_missing")
        problems["revoke-confirm"] = _message("confirm_missing")
    else:
        try:
            revoke(db(), cert, reason=reason, actor=_actor(ctx))
        except CertificateError as exc:
            if exc.key not in REVOKE_FIELDS:
                return _certificate_page(ctx, programme, cert, status=STATUS.get(exc.key, 409), error=_message(exc.key))
            problems[REVOKE_FIELDS[exc.key]] = _message(exc.key)
    if problems:
        return _certificate_page(ctx, programme, cert, status=422, failed="revoke", problems=problems, values=values)
    commit()
    notice = gettext(
        "The certificate is revoked. Its code %(code)s now answers “revoked” on the verification page.",
        code=shown_code(cert.code),
    )
    return _certificate_page(ctx, programme, cert, notice=notice)


@bp.post("/certificates/<int:cert_id>/reissue")
def reissue_certificate(cert_id: int) -> ResponseReturnValue:
    found = _changeable(cert_id)
    if not isinstance(found, tuple) or not isinstance(found[0], LaunchContext):
        return found
    ctx, programme, cert = found
    name = request.form.get("name", "")[: MAX_NAME * 4]
    reason = request.form.get("reason", "")[: MAX_REASON * 4]
    try:
        replacement = reissue(db(), cert, reason=reason, actor=_actor(ctx), name=name)
    except CertificateError as exc:
        if exc.key not in REISSUE_FIELDS:
            return _certificate_page(ctx, programme, cert, status=STATUS.get(exc.key, 409), error=_message(exc.key))
        return _certificate_page(
            ctx,
            programme,
            cert,
            status=422,
            failed="reissue",
            problems={REISSUE_FIELDS[exc.key]: _message(exc.key)},
            values={"reissue-name": name, "reissue-reason": reason},
        )
    old_code = shown_code(cert.code)
    commit()
    notice = gettext(
        "The certificate is re-issued with the new code %(new)s. The old code %(old)s now answers “replaced” on the "
        "verification page.",
        new=shown_code(replacement.code),
        old=old_code,
    )
    return _certificate_page(ctx, programme, replacement, notice=notice)


@bp.post("/certificates/<int:cert_id>.pdf")
def certificate_pdf(cert_id: int) -> ResponseReturnValue:
    ctx, programme = business_launch()
    cert = _certificate_of(programme, cert_id)
    if cert is None:
        return _not_found(ctx, programme)
    if not cert.valid:
        # A revoked or replaced certificate is not handed out again: the verification page would contradict it.
        return _certificate_page(ctx, programme, cert, status=409, error=_message("certificate_not_valid"))
    body = render_pdf(document_of(cert, services().settings.base_url))
    return Response(
        body,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{pdf_filename(cert)}"', "Cache-Control": "no-store"},
    )


__all__ = ["Counts", "HistoryLine", "certificate", "certificate_pdf", "certificates"]
