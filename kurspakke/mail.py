"""Sending e-mail through SMTP (stdlib only).

Where mail goes is one setting, SMTP_URL:

- ``smtp://[user:password@]host[:port]`` — plain SMTP (port 25 unless given). Add ``?starttls=1`` to require
  STARTTLS: the connection is upgraded before anything is sent, and a server that does not offer STARTTLS is a
  MailError (never a silent fallback to plain text, which would put the password and the message on the wire).
- ``smtps://[user:password@]host[:port]`` — implicit TLS from the first byte (port 465 unless given).

User name and password are percent-decoded. The sender is KURSPAKKE_MAIL_FROM (``Settings.mail_from``).

A message may carry text attachments (a meeting's .ics invitation): each is a file name, a ``text/*`` content type
and its text, sent as UTF-8 in base64 so the bytes arrive exactly as written (iCalendar needs its CRLF line ends,
which a text part's transfer encoding would rewrite). An outbox payload carries them as a list of
``{"filename", "content_type", "content"}`` objects (``attachments_from_payload``); a payload without the key has
none.

Without SMTP_URL, development and tests use the "console": the whole message is logged at INFO on the logger
``kurspakke.mail``, so nothing is silently dropped. Production refuses to send without SMTP_URL (MailError): a
console in production would write sign-in links into the logs.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from collections.abc import Sequence
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
MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 256 * 1024  # an invitation is a few kB; a bigger "attachment" is a bug, not a calendar
# A plain file name: no path, no quotes, nothing a mail program could read as a second header parameter.
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# "text/calendar; method=REQUEST; charset=UTF-8": RFC 2045 tokens only, so no value needs quoting or escaping.
_MIME_WORD = r"[A-Za-z0-9!#$&^_.+-]+"
_CONTENT_TYPE = re.compile(rf"text/({_MIME_WORD})((?:\s*;\s*{_MIME_WORD}={_MIME_WORD})*)")
_PARAMETER = re.compile(rf"({_MIME_WORD})=({_MIME_WORD})")
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


@dataclass(frozen=True)
class Attachment:
    """A text file sent with a message, e.g. ``Attachment("samling.ics", "text/calendar; method=REQUEST;
    charset=UTF-8", ics)``. The text goes as UTF-8 whatever the content type says (a charset other than UTF-8 is
    refused)."""

    filename: str
    content_type: str
    content: str


def _checked_attachment(attachment: Attachment) -> tuple[str, dict[str, str], bytes]:
    """(subtype, parameters, bytes) of an attachment that can be sent; raises InvalidMail."""
    if _FILENAME.fullmatch(attachment.filename) is None:
        raise InvalidMail("an attachment's file name is not a plain file name")
    match = _CONTENT_TYPE.fullmatch(attachment.content_type.strip())
    if match is None:
        raise InvalidMail("an attachment's content type is not text/<subtype> with simple parameters")
    params = {key.lower(): value for key, value in _PARAMETER.findall(match.group(2))}
    if params.get("charset", "utf-8").lower() not in {"utf-8", "utf8"}:
        raise InvalidMail("an attachment's text is sent as UTF-8 only")
    params.pop("charset", None)
    data = attachment.content.encode("utf-8")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise InvalidMail("an attachment is too large")
    return match.group(1).lower(), params, data


def attachments_from_payload(value: object) -> list[Attachment]:
    """The attachments an outbox step's payload carries (its ``attachments`` value): absent (None) means none.
    Raises InvalidMail when it is not a list of ``{"filename", "content_type", "content"}`` strings — a payload
    that can never be sent as it is."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ATTACHMENTS:
        raise InvalidMail(f"attachments must be a list of at most {MAX_ATTACHMENTS}")
    found: list[Attachment] = []
    for item in value:
        fields = (item.get("filename"), item.get("content_type"), item.get("content")) if isinstance(item, dict) else ()
        if len(fields) != 3 or not all(isinstance(f, str) for f in fields):
            raise InvalidMail("an attachment needs a filename, a content_type and a content, all text")
        found.append(Attachment(*fields))  # type: ignore[arg-type]
    return found


def attachment_payload(attachments: Sequence[Attachment]) -> list[dict[str, str]]:
    """The form ``attachments_from_payload`` reads back, for a step's JSON payload."""
    return [{"filename": a.filename, "content_type": a.content_type, "content": a.content} for a in attachments]


def build_message(
    settings: Settings,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """The message as it will be sent: plain text, with an HTML alternative when given, and the attachments.
    Raises InvalidMail."""
    for name, value in (("to", to), ("subject", subject), ("mail_from", settings.mail_from)):
        if "\r" in value or "\n" in value:
            raise InvalidMail(f"{name} contains a line break")
    if not valid_address(to):
        raise InvalidMail("to is not a valid e-mail address")
    if not valid_address(parseaddr(settings.mail_from)[1]):
        raise InvalidMail("KURSPAKKE_MAIL_FROM is not a valid e-mail address")
    if not subject.strip() or len(subject) > MAX_SUBJECT_LENGTH:
        raise InvalidMail("subject is empty or too long")
    if len(attachments) > MAX_ATTACHMENTS:
        raise InvalidMail(f"at most {MAX_ATTACHMENTS} attachments")
    files = [(a.filename, *_checked_attachment(a)) for a in attachments]
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
    for filename, subtype, params, data in files:
        # Bytes, so base64 keeps them exactly (a str part would have its line ends rewritten); the charset is a
        # parameter like any other, so calendar programs read the UTF-8 text right.
        message.add_attachment(
            data, maintype="text", subtype=subtype, filename=filename, params={**params, "charset": "UTF-8"}
        )
    return message


def send_mail(
    settings: Settings,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    timeout: float = SMTP_TIMEOUT_SECONDS,
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """Send one message to one recipient. ``timeout`` bounds the connection and every reply of the server.
    Raises InvalidMail for a message that can never be sent, MailError when it was not sent this time."""
    message = build_message(settings, to=to, subject=subject, text=text, html=html, attachments=attachments)
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
