"""The .ics invitation (kurspakke/reminders/ics.py), read back by a strict RFC 5545 reader written here, and its trip
as an e-mail attachment through a real SMTP server (kurspakke/mail.py), which must keep every byte."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import Settings
from kurspakke.mail import (
    Attachment,
    InvalidMail,
    attachment_payload,
    attachments_from_payload,
    send_mail,
)
from kurspakke.reminders import ics
from tests.support import smtp
from tests.support.smtp import SmtpServer

smtp_server = smtp.smtp_server

START = datetime(2027, 1, 12, 9, 0, tzinfo=UTC)
STAMP = datetime(2026, 12, 1, 7, 0, 5, tzinfo=UTC)
_NAME = re.compile(r"[A-Z][A-Z0-9-]*")
_UTC = re.compile(r"\d{8}T\d{6}Z")


@dataclass
class Component:
    name: str
    properties: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def one(self, name: str) -> str:
        values = [value for prop, _, value in self.properties if prop == name]
        assert len(values) == 1, f"{name}: {values}"
        return values[0]

    def params(self, name: str) -> dict[str, str]:
        return next(params for prop, params, _ in self.properties if prop == name)


def unescape(value: str) -> str:
    """A TEXT value, strictly: only \\\\ \\; \\, \\n \\N escapes, and no bare ; or , (they separate list values)."""
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            nxt = value[i + 1]
            assert nxt in "\\;,nN", f"bad escape \\{nxt}"
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
            continue
        assert c not in ";,", f"unescaped {c!r} in {value!r}"
        out.append(c)
        i += 1
    return "".join(out)


def _split_params(head: str) -> tuple[str, dict[str, str]]:
    name, *rest = re.split(r';(?=(?:[^"]*"[^"]*")*[^"]*$)', head)
    params = {}
    for param in rest:
        key, _, value = param.partition("=")
        if value.startswith('"'):
            assert value.endswith('"') and '"' not in value[1:-1]
            value = value[1:-1]
        params[key] = value
    return name, params


def parse_calendar(data: str | bytes) -> Component:
    """Read an iCalendar stream the way a strict calendar program would; fails on anything RFC 5545 forbids here."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    assert text.endswith("\r\n"), "content lines end with CRLF"
    physical = text[:-2].split("\r\n")
    for line in physical:
        assert "\r" not in line and "\n" not in line, "a bare CR or LF"
        assert len(line.encode("utf-8")) <= 75, f"line longer than 75 octets: {line!r}"
    logical: list[str] = []
    for line in physical:
        if line[:1] in (" ", "\t"):
            logical[-1] += line[1:]
        else:
            logical.append(line)
    stack: list[Component] = []
    root: Component | None = None
    for line in logical:
        # The value starts at the first colon outside a quoted parameter value.
        match = re.match(r'((?:[^:"]|"[^"]*")*):(.*)', line)
        assert match, line
        name, params = _split_params(match.group(1))
        assert _NAME.fullmatch(name), name
        value = match.group(2)
        if name == "BEGIN":
            component = Component(value)
            if stack:
                stack[-1].children.append(component)
            else:
                assert root is None, "one VCALENDAR"
                root = component
            stack.append(component)
        elif name == "END":
            assert stack and stack.pop().name == value, f"END:{value} does not close"
        else:
            stack[-1].properties.append((name, params, value))
    assert not stack and root is not None and root.name == "VCALENDAR"
    assert root.one("VERSION") == "2.0" and root.one("PRODID")
    [event] = root.children
    assert event.name == "VEVENT"
    for prop in ("DTSTAMP", "DTSTART", "DTEND"):
        assert _UTC.fullmatch(event.one(prop)), prop
    assert event.one("UID") and event.one("SEQUENCE").isdigit()
    return root


def when(value: str) -> datetime:
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def event(**changes: object) -> ics.CalendarEvent:
    values: dict[str, object] = {
        "uid": ics.meeting_uid(7, "https://kurspakke.hinn.no"),
        "sequence": 0,
        "starts_at": START,
        "ends_at": START + timedelta(minutes=120),
        "summary": "Samling 2 – Gruppe A",
        "location": "Møterom 2, Fjellheimen sykehjem; 2. etasje",
        "organizer_email": "usht@inn.no",
        "organizer_name": "USHT Innlandet",
        "attendee_email": "kari@oslo.kommune.no",
        "attendee_name": 'Kari "K" Nordmann, sykepleier',
    }
    values.update(changes)
    return ics.CalendarEvent(**values)  # type: ignore[arg-type]


def test_an_invitation_reads_back_with_every_field_in_utc() -> None:
    cal = parse_calendar(ics.calendar(event(), method=ics.REQUEST, stamp=STAMP))
    assert cal.one("METHOD") == "REQUEST"
    [vevent] = cal.children
    assert vevent.one("UID") == "meeting-7@kurspakke.hinn.no"
    assert vevent.one("SEQUENCE") == "0"
    assert when(vevent.one("DTSTAMP")) == STAMP
    assert when(vevent.one("DTSTART")) == START and when(vevent.one("DTEND")) == START + timedelta(hours=2)
    assert unescape(vevent.one("SUMMARY")) == "Samling 2 – Gruppe A"
    assert unescape(vevent.one("LOCATION")) == "Møterom 2, Fjellheimen sykehjem; 2. etasje"
    assert vevent.one("STATUS") == "CONFIRMED"
    assert vevent.one("ORGANIZER") == "mailto:usht@inn.no"
    # The one recipient is the only attendee; a quote in a name cannot break out of its parameter.
    assert vevent.one("ATTENDEE") == "mailto:kari@oslo.kommune.no"
    assert vevent.params("ATTENDEE") == {"CN": "Kari K Nordmann, sykepleier", "RSVP": "FALSE"}


def test_text_is_escaped_and_long_lines_fold_at_75_octets_without_cutting_a_character() -> None:
    tricky = "Back\\slash; semi, comma\nnew line\r\nwindows line ✓ " + "æøå 🎓 " * 40
    out = ics.calendar(event(summary=tricky, description=tricky), method=ics.REQUEST, stamp=STAMP)
    [vevent] = parse_calendar(out).children  # every physical line ≤ 75 octets, CRLF only
    assert unescape(vevent.one("SUMMARY")) == tricky.replace("\r\n", "\n")
    assert unescape(vevent.one("DESCRIPTION")) == tricky.replace("\r\n", "\n")
    assert max(len(line.encode()) for line in out.split("\r\n")) == 75  # folded, and as late as allowed
    assert ics.fold("x" * 75) == "x" * 75 + "\r\n"
    assert ics.fold("x" * 76) == "x" * 75 + "\r\n x\r\n"
    assert ics.fold("x" * 74 + "æ") == "x" * 74 + "\r\n æ\r\n"  # 76 octets: æ moves down whole


def test_a_digital_meeting_has_its_link_as_url_unescaped() -> None:
    link = "https://meet.example.no/j/123?pwd=a,b;c"
    [vevent] = parse_calendar(ics.calendar(event(location="", url=link), method=ics.REQUEST, stamp=STAMP)).children
    assert vevent.one("URL") == link
    assert "LOCATION" not in [p for p, _, _ in vevent.properties]


def test_a_move_keeps_the_uid_and_raises_the_sequence_and_a_cancellation_cancels() -> None:
    moved = parse_calendar(ics.calendar(event(sequence=1), method=ics.REQUEST, stamp=STAMP)).children[0]
    cancelled_cal = parse_calendar(ics.calendar(event(sequence=2), method=ics.CANCEL, stamp=STAMP))
    cancelled = cancelled_cal.children[0]
    assert moved.one("UID") == cancelled.one("UID") == "meeting-7@kurspakke.hinn.no"
    assert (moved.one("SEQUENCE"), cancelled.one("SEQUENCE")) == ("1", "2")
    assert cancelled_cal.one("METHOD") == "CANCEL" and cancelled.one("STATUS") == "CANCELLED"
    assert ics.CONTENT_TYPES[ics.REQUEST] == "text/calendar; method=REQUEST; charset=UTF-8"
    assert ics.meeting_uid(7, "") == "meeting-7@kurspakke.invalid"


@pytest.mark.parametrize(
    "changes",
    [
        {"url": "https://meet.example.no/x\r\nATTENDEE:mailto:evil@example.com"},
        {"attendee_email": "kari@oslo.no\nX:1"},
        {"starts_at": datetime(2027, 1, 12, 9, 0)},  # naive: no zone, no UTC
    ],
)
def test_a_link_or_address_with_a_line_break_or_a_naive_time_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ics.calendar(event(**changes), method=ics.REQUEST, stamp=STAMP)
    with pytest.raises(ValueError):
        ics.calendar(event(), method="PUBLISH", stamp=STAMP)


# --- as an e-mail attachment ---------------------------------------------------------------------------------------


def _settings(server: SmtpServer) -> Settings:
    return Settings(env="test", smtp_url=server.url, mail_from="kurspakke@hinn.test")


def test_the_invitation_arrives_as_text_calendar_with_its_bytes_and_crlf_intact(smtp_server: SmtpServer) -> None:
    body = ics.calendar(event(), method=ics.REQUEST, stamp=STAMP)
    send_mail(
        _settings(smtp_server),
        to="kari@oslo.kommune.no",
        subject="Samling 2",
        text="Hei Kari",
        attachments=[Attachment("samling-2.ics", ics.CONTENT_TYPES[ics.REQUEST], body)],
    )
    [received] = smtp_server.received
    assert received.rcpt_tos == ["kari@oslo.kommune.no"]
    message = received.message
    assert message["To"] == "kari@oslo.kommune.no" and message["Cc"] is None and message["Bcc"] is None
    assert message.get_body(("plain",)).get_content().strip() == "Hei Kari"
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == "text/calendar"
    assert part.get_param("method") == "REQUEST" and part.get_param("charset").upper() == "UTF-8"
    assert part.get_filename() == "samling-2.ics"
    raw = part.get_payload(decode=True)
    assert raw == body.encode("utf-8")
    assert parse_calendar(raw).one("METHOD") == "REQUEST"


@pytest.mark.parametrize(
    "attachment",
    [
        Attachment("../../etc/passwd", "text/plain", "x"),
        Attachment('a"; name="b.ics', "text/calendar", "x"),
        Attachment("a.ics", "text/calendar\r\nBcc: victim@example.com", "x"),
        Attachment("a.ics", "application/octet-stream", "x"),
        Attachment("a.ics", "text/calendar; charset=ISO-8859-1", "x"),
        Attachment("a.ics", 'text/calendar; method="REQUEST"', "x"),
        Attachment("a.ics", "text/calendar", "x" * 300_000),
    ],
)
def test_a_bad_attachment_is_refused_and_nothing_is_sent(smtp_server: SmtpServer, attachment: Attachment) -> None:
    with pytest.raises(InvalidMail):
        send_mail(_settings(smtp_server), to="kari@oslo.no", subject="Hei", text="x", attachments=[attachment])
    assert smtp_server.received == []


def test_a_payload_carries_attachments_and_one_without_has_none() -> None:
    files = [Attachment("samling.ics", ics.CONTENT_TYPES[ics.CANCEL], "BEGIN:VCALENDAR\r\n")]
    assert attachments_from_payload(attachment_payload(files)) == files
    assert attachments_from_payload(None) == []
    for bad in ("x", [{"filename": "a.ics"}], [["a.ics", "text/plain", "x"]], [{}] * 6):
        with pytest.raises(InvalidMail):
            attachments_from_payload(bad)
