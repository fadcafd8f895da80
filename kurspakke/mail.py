"""Sending e-mail through SMTP (stdlib only).

Where mail goes is one setting, SMTP_URL:

- ``smtp://[user:password@]host[:port]`` — plain SMTP (port 25 unless given). Add ``?starttls=1`` to require
  STARTTLS: the connection is upgraded before anything is sent, and a server that does not offer STARTTLS is a
  MailError (never a silent fallback to plain text, which would put the password and the message on the wire).
- ``smtps://[user:password@]host[:port]`` — implicit TLS from the first byte (port 465 unless given).

User name and password are percent-decoded. The sender is KURSPAKKE_MAIL_FROM (``Settings.mail_from``).

Without SMTP_URL, development and tests use the "console": the whole message is logged at INFO on the logger
``kurspakke.mail``, so nothing is silently dropped. Production refuses to send without SMTP_URL (MailError): a
console in production would write sign-in links into the logs.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from config.settings import Settings

logger = logging.getLogger("kurspakke.mail")

SMTP_TIMEOUT_SECONDS = 10.0
MAX_ADDRESS_LENGTH = 320
MAX_SUBJECT_LENGTH = 998  # RFC 5322's limit for one header line
_DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
# A plain ASCII address: local part, "@", a domain with at least one dot. No spaces, brackets, commas or quotes,
# so one field can never name a second recipient or smuggle a display name.
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")


class MailError(RuntimeError):
    """The message could not be handed to the mail server (unreachable, refused, TLS or login failed, or mail is
    not configured). Nothing was sent; the caller may try again later."""


class InvalidMail(ValueError):
    """The message itself is not acceptable (a bad address, a line break in a header): trying again won't help."""


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool


def parse_smtp_url(url: str) -> SmtpTarget:
    """Raises MailError when the URL is not one of the documented forms (the message never names the password)."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise MailError("SMTP_URL must be smtp://[user:password@]host[:port][?starttls=1] or smtps://…")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise MailError("SMTP_URL has an invalid port") from exc
    query = parse_qs(parts.query)
    starttls = query.get("starttls", ["0"])[-1].strip().lower() in {"1", "true", "yes", "on"}
    if starttls and parts.scheme == "smtps":
        raise MailError("SMTP_URL: starttls is for smtp://; smtps:// is TLS from the start")
    return SmtpTarget(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        starttls=starttls,
    )


def valid_address(address: str) -> bool:
    return len(address) <= MAX_ADDRESS_LENGTH and _ADDRESS.fullmatch(address) is not None


def build_message(settings: Settings, *, to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    """The message as it will be sent: plain text, with an HTML alternative when given. Raises InvalidMail."""
    for name, value in (("to", to), ("subject", subject), ("mail_from", settings.mail_from)):
        if "\r" in value or "\n" in value:
            raise InvalidMail(f"{name} contains a line break")
    if not valid_address(to):
        raise InvalidMail("to is not a valid e-mail address")
    if not valid_address(parseaddr(settings.mail_from)[1]):
        raise InvalidMail("KURSPAKKE_MAIL_FROM is not a valid e-mail address")
    if not subject.strip() or len(subject) > MAX_SUBJECT_LENGTH:
        raise InvalidMail("subject is empty or too long")
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=parseaddr(settings.mail_from)[1].rpartition("@")[2])
    # Quoted-printable: readable by every server, also those without 8BITMIME.
    message.set_content(text, cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def send_mail(
    settings: Settings,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    timeout: float = SMTP_TIMEOUT_SECONDS,
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """Send one message to one recipient. ``timeout`` bounds the connection and every reply of the server.
    Raises InvalidMail for a message that can never be sent, MailError when it was not sent this time."""
    message = build_message(settings, to=to, subject=subject, text=text, html=html)
    if settings.smtp_url is None:
        if settings.is_production:
            raise MailError("SMTP_URL is not set: production does not log mail to the console")
        logger.info("mail not sent (SMTP_URL is not set); the message:\n%s", message.as_string())
        return
    target = parse_smtp_url(settings.smtp_url)
    context = tls_context or ssl.create_default_context()
    try:
        client: smtplib.SMTP
        if target.scheme == "smtps":
            client = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(target.host, target.port, timeout=timeout)
        with client:
            client.ehlo()
            if target.starttls:
                if not client.has_extn("starttls"):
                    raise MailError(f"{target.host}:{target.port} does not offer STARTTLS, which SMTP_URL requires")
                client.starttls(context=context)
                client.ehlo()
            if target.username is not None:
                client.login(target.username, target.password or "")
            refused = client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"mail to the server {target.host}:{target.port} failed: {type(exc).__name__}: {exc}") from exc
    if refused:  # only with several recipients; one refused recipient raises SMTPRecipientsRefused above
        raise MailError(f"the server refused recipients: {sorted(refused)}")
    # "fields": the structured log's extra keys (lti_tool/logs.py); no address: personal data stays out of logs.
    logger.info("mail sent", extra={"fields": {"subject": subject, "server": f"{target.host}:{target.port}"}})
