"""A meeting as an iCalendar invitation (RFC 5545 content, RFC 5546 methods) that calendar programs import.

Written by hand (a few dozen lines) rather than with a library: the tool needs one kind of event, and the rules
that matter are few — CRLF line ends, lines folded at 75 octets without splitting a UTF-8 character, TEXT values
escaped (backslash, semicolon, comma, line breaks), times in UTC.

An update replaces the event in the calendar because the UID stays the same for a meeting (``meeting-<id>@<host>``)
and SEQUENCE grows with every change; a cancellation is METHOD:CANCEL with STATUS:CANCELLED and a higher SEQUENCE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

REQUEST = "REQUEST"
CANCEL = "CANCEL"
PRODID = "-//Kurspakke//Samlinger//NO"
MAX_LINE_OCTETS = 75
CONTENT_TYPES = {
    REQUEST: "text/calendar; method=REQUEST; charset=UTF-8",
    CANCEL: "text/calendar; method=CANCEL; charset=UTF-8",
}


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    sequence: int
    starts_at: datetime
    ends_at: datetime
    summary: str
    location: str = ""
    url: str = ""  # the video link of a digital meeting
    description: str = ""
    # RFC 5546 wants an organiser and the attendee in a REQUEST; the attendee is the one recipient of the e-mail
    # (never anyone else: one invitation per person), the organiser the programme's contact.
    organizer_email: str = ""
    organizer_name: str = ""
    attendee_email: str = ""
    attendee_name: str = ""


def meeting_uid(meeting_id: int, base_url: str) -> str:
    """Stable per meeting, so a moved or cancelled meeting replaces the event already in people's calendars."""
    return f"meeting-{meeting_id}@{urlsplit(base_url).hostname or 'kurspakke.invalid'}"


def utc_stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a calendar time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 §3.3.11): backslash first, then ; and , and every kind of line break as \\n."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def _param(value: str) -> str:
    """A parameter value (a name in CN=): quoted, without the characters a quoted value cannot hold."""
    cleaned = "".join(c for c in value if c not in '"\r\n' and (c == "\t" or ord(c) >= 32))
    return f'"{cleaned}"'


def _uri(value: str) -> str:
    """A URI value (a link, a mailto: address) is written as it is, so it must hold no space or control character:
    one would end the line and start a property of its own."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("a calendar link or address contains a space or a control character")
    return value


def fold(line: str) -> str:
    """One content line, folded so no physical line passes 75 octets (the CRLF not counted); a continuation
    starts with a space, and a UTF-8 character is never cut in two."""
    pieces: list[str] = []
    current, size, limit = "", 0, MAX_LINE_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            pieces.append(current)
            current, size, limit = "", 0, MAX_LINE_OCTETS - 1  # the leading space of a continuation counts
        current += char
        size += width
    pieces.append(current)
    return "\r\n ".join(pieces) + "\r\n"


def calendar(event: CalendarEvent, *, method: str, stamp: datetime) -> str:
    """The VCALENDAR text of ``event`` for ``method`` (REQUEST: scheduled or moved; CANCEL: cancelled)."""
    if method not in (REQUEST, CANCEL):
        raise ValueError(f"unknown method {method!r}")
    lines = [
        "BEGIN:VCALENDAR",
        f"PRODID:{PRODID}",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{event.uid}",
        f"SEQUENCE:{event.sequence}",
        f"DTSTAMP:{utc_stamp(stamp)}",
        f"DTSTART:{utc_stamp(event.starts_at)}",
        f"DTEND:{utc_stamp(event.ends_at)}",
        f"SUMMARY:{escape_text(event.summary)}",
    ]
    if event.location:
        lines.append(f"LOCATION:{escape_text(event.location)}")
    if event.url:
        lines.append(f"URL:{_uri(event.url)}")  # a URI value: not TEXT-escaped (a link may hold commas)
    if event.description:
        lines.append(f"DESCRIPTION:{escape_text(event.description)}")
    if event.organizer_email:
        lines.append(f"ORGANIZER;CN={_param(event.organizer_name)}:mailto:{_uri(event.organizer_email)}")
    if event.attendee_email:
        lines.append(f"ATTENDEE;CN={_param(event.attendee_name)};RSVP=FALSE:mailto:{_uri(event.attendee_email)}")
    lines += [f"STATUS:{'CANCELLED' if method == CANCEL else 'CONFIRMED'}", "END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) for line in lines)


__all__ = ["CANCEL", "CONTENT_TYPES", "REQUEST", "CalendarEvent", "calendar", "escape_text", "fold", "meeting_uid"]
