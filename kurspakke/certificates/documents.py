"""A certificate as its holder downloads it: the PDF's document, and the Open Badges 3.0 credential, signed once with
the badge key and kept (the same credential on every download)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from kurspakke.certificates.badge import BadgeFacts, build_credential, sign_credential
from kurspakke.certificates.codes import format_code
from kurspakke.certificates.models import Certificate, CertificateRole
from kurspakke.certificates.pdf import CertificateDocument
from kurspakke.crypto import Encryptor
from kurspakke.models.lti import KEY_PURPOSE_BADGE
from kurspakke.services.keys import KeyRing, ensure_key


def verify_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/verify/{code}"


def document_of(cert: Certificate, base_url: str) -> CertificateDocument:
    """The PDF's content, from what the certificate keeps (not from today's programme file)."""
    printed: dict[str, Any] = cert.printed
    return CertificateDocument(
        title=printed.get("title") or "Kursbevis",
        name=cert.name,
        statement=printed.get("statement", ""),
        programme_title=printed.get("programme_title", ""),
        organisation=cert.organisation_name,
        completed_on=cert.completed_on,
        issuer=printed.get("issuer", ""),
        code=format_code(cert.code),
        verify_url=verify_url(base_url, cert.code),
        learning_goals_heading=printed.get("learning_goals_heading", ""),
        learning_goals=tuple(printed.get("learning_goals", ())),
        modules_heading=printed.get("modules_heading", ""),
        module_titles=tuple(printed.get("module_titles", ())),
        mentor=cert.mentor_names if cert.role is CertificateRole.PARTICIPANT else "",
        signatories=tuple(printed.get("signatories", ())),
        note=printed.get("note", ""),
    )


def pdf_filename(cert: Certificate) -> str:
    return f"kursbevis-{cert.code}.pdf"


def badge_facts(cert: Certificate, base_url: str, email: str | None, contact_email: str | None = None) -> BadgeFacts:
    printed: dict[str, Any] = cert.printed
    statement = printed.get("statement", "")
    programme_title = printed.get("programme_title", "")
    return BadgeFacts(
        base_url=base_url.rstrip("/"),
        code=cert.code,
        holder_name=cert.name,
        holder_email=email,
        programme_id=cert.programme_id,
        programme_title=programme_title,
        achievement_description=f"{statement} \u00ab{programme_title}\u00bb.".strip(),
        criteria=printed.get("requirements", ""),
        learning_goals=tuple(printed.get("learning_goals", ())),
        module_titles=tuple(printed.get("module_titles", ())),
        issuer_name=printed.get("issuer", ""),
        issuer_url=None,
        issuer_email=contact_email,
        valid_from=cert.issued_at,
        role=cert.role.value,
        achievement_name=printed.get("title") or "Kursbevis",
    )


def ensure_badge(
    session: Session,
    cert: Certificate,
    *,
    keyring: KeyRing,
    encryptor: Encryptor,
    base_url: str,
    email: str | None,
    contact_email: str | None = None,
) -> str:
    """The certificate's Open Badges credential (VC-JWT), signed now with the badge key on its first download and
    kept. The badge key's public half is in /lti/jwks for as long as a valid certificate names it. Flushes; the
    caller commits."""
    if cert.badge_jwt is not None:
        return cert.badge_jwt
    key = keyring.badge_key()
    if key is None:
        ensure_key(session, encryptor, KEY_PURPOSE_BADGE)
        session.flush()
        session.commit()  # published before anything it signs leaves the tool
        keyring.invalidate()
        key = keyring.badge_key()
        if key is None:  # pragma: no cover - the ring reads the row just committed
            raise RuntimeError("the badge key could not be loaded")
    credential = build_credential(badge_facts(cert, base_url, email, contact_email))
    cert.badge_jwt = sign_credential(credential, key.private_key, key.kid)
    cert.badge_kid = key.kid
    session.flush()
    return cert.badge_jwt


def badge_filename(cert: Certificate) -> str:
    return f"kursbevis-{cert.code}.jwt"


__all__ = ["badge_facts", "badge_filename", "document_of", "ensure_badge", "pdf_filename", "verify_url"]
