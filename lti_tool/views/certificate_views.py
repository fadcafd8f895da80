"""A holder's own certificate inside Canvas ("Min fremdrift" and the mentor's page): its state, what remains, and the
downloads — the PDF and the Open Badges 3.0 credential. Downloads are POST forms carrying the launch token, like
every other request of a launch."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Response
from flask.typing import ResponseReturnValue

from kurspakke.certificates.codes import format_code
from kurspakke.certificates.documents import badge_filename, document_of, ensure_badge, pdf_filename, verify_url
from kurspakke.certificates.eligibility import Standing, mentor_standings, sessions_a_mentor_leads
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.certificates.pdf import render_pdf
from kurspakke.certificates.services import current
from kurspakke.programmes import Programme
from kurspakke.progress.overview import ParticipantRule, PersonProgress
from lti_tool.lti.errors import LtiRefusal
from lti_tool.services import commit, db, services
from lti_tool.views import bp
from lti_tool.views.context import LaunchContext, current_launch


@dataclass
class OwnCertificate:
    """What the holder's page shows: the certificate (valid or revoked) or what remains for it."""

    certificate: Certificate | None = None
    code: str = ""
    verify_url: str = ""
    remaining_modules: list[str] = field(default_factory=list)  # module titles
    remaining_sessions: list[str] = field(default_factory=list)  # session titles
    earned: bool = False  # everything is done: the worker issues it within minutes
    offered: bool = True  # the programme has a certificate for this role
    mentor: bool = False  # the mentor's rule: sessions to lead rather than attend
    required: int = 0  # how many things the rule asks for in all (the progress bar's maximum)

    @property
    def done(self) -> int:
        return max(0, self.required - len(self.remaining_modules) - len(self.remaining_sessions))

    @property
    def valid(self) -> bool:
        return self.certificate is not None and self.certificate.valid


def own_certificate(
    ctx: LaunchContext, progress: PersonProgress | None = None, *, mentor: bool = False
) -> OwnCertificate:
    """The holder's certificate, or what remains for it: for a participant page from the progress it already read
    (``progress``: no second read of the same rows), for a mentor page by the mentor rule."""
    programme = ctx.programme
    if ctx.person is None or programme is None or programme.certificate is None:
        return OwnCertificate(offered=False)
    session = db()
    cert = current(session, programme.id, ctx.person.id)
    if cert is not None:
        base = services().settings.base_url
        return OwnCertificate(cert, format_code(cert.code), verify_url(base, cert.code))
    if mentor:
        standing = mentor_standings(session, programme, [ctx.person.id]).get(ctx.person.id)
        if standing is None:
            return OwnCertificate(offered=False)
        return _remaining(programme, standing, len(sessions_a_mentor_leads(programme)))
    if progress is None:
        return OwnCertificate(offered=False)
    rule = ParticipantRule(programme)
    return _remaining(
        programme,
        required=len(rule.modules) + len(rule.sessions),
        standing=Standing(
            person_id=progress.person_id,
            role=CertificateRole.PARTICIPANT,
            name=progress.name,
            organisation_id=progress.organisation_id,
            organisation=progress.organisation,
            missing_modules=rule.missing_modules(progress),
            missing_sessions=rule.missing_sessions(progress),
        ),
    )


def _remaining(programme: Programme, standing: Standing, required: int) -> OwnCertificate:
    modules = {m.id: m.title for m in programme.modules}
    sessions = {s.id: s.title for s in programme.sessions}
    return OwnCertificate(
        remaining_modules=[modules[m] for m in standing.missing_modules if m in modules],
        remaining_sessions=[sessions[k] for k in standing.missing_sessions if k in sessions],
        earned=not standing.missing_modules and not standing.missing_sessions,
        mentor=standing.role is CertificateRole.MENTOR,
        required=required,
    )


def _valid_own() -> tuple[LaunchContext, Certificate]:
    ctx = current_launch()
    programme = ctx.programme
    if ctx.person is None or programme is None:
        raise LtiRefusal("forbidden", status=403)
    cert = current(db(), programme.id, ctx.person.id)
    if cert is None or not cert.valid:
        raise LtiRefusal("not_found", status=404)
    return ctx, cert


@bp.post("/certificate.pdf")
def certificate_pdf() -> ResponseReturnValue:
    _ctx, cert = _valid_own()
    body = render_pdf(document_of(cert, services().settings.base_url))
    return Response(
        body,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{pdf_filename(cert)}"', "Cache-Control": "no-store"},
    )


@bp.post("/certificate.jwt")
def certificate_badge() -> ResponseReturnValue:
    """The Open Badges 3.0 credential as a VC-JWT (RFC 7519 media type), signed on the first download and kept."""
    ctx, cert = _valid_own()
    svc = services()
    programme = ctx.programme
    token = ensure_badge(
        db(),
        cert,
        keyring=svc.keyring,
        encryptor=svc.encryptor,
        base_url=svc.settings.base_url,
        email=ctx.person.email if ctx.person is not None else None,
        contact_email=programme.contact_email if programme is not None else None,
    )
    commit()
    return Response(
        token,
        mimetype="application/jwt",
        headers={"Content-Disposition": f'attachment; filename="{badge_filename(cert)}"', "Cache-Control": "no-store"},
    )


__all__ = ["OwnCertificate", "certificate_badge", "certificate_pdf", "own_certificate"]
