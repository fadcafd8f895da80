"""Inviting a licence administrator by e-mail: an outbox step (``mail.send``) written with the role's grant, so the
invitation goes out once the change is committed and is tried again until the SMTP server takes it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from kurspakke.models import Organisation, Person
from kurspakke.notices import invitation_message
from kurspakke.outbox.services import enqueue
from kurspakke.programmes import Programme

MAIL_SEND = "mail.send"


def invite_licence_admin(
    session: Session, person: Person, organisation: Organisation, programme: Programme, signin_url: str
) -> None:
    message = invitation_message(
        name=person.name,
        email=person.email,
        organisation=organisation.name,
        programme=programme,
        signin_url=signin_url,
    )
    enqueue(
        session,
        MAIL_SEND,
        f"mail:invite:{person.id}:{organisation.id}:{programme.id}",
        {"to": message.to, "subject": message.subject, "text": message.text},
    )


__all__ = ["MAIL_SEND", "invite_licence_admin"]
