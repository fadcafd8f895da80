"""kurspakke.mail: a real SMTP round trip (aiosmtpd), refused header injection, the console, and failures."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest

from config.settings import Settings
from kurspakke.mail import InvalidMail, MailError, parse_smtp_url, send_mail
from tests.support import smtp
from tests.support.smtp import SmtpServer, free_port

smtp_server = smtp.smtp_server

TEXT = "Lindrende behandling – æøå\nLenken gjelder i 15 minutter."
HTML = "<p>Lindrende behandling – æøå</p>"


def settings(**changes: object) -> Settings:
    return replace(Settings(env="test", secret_key="x" * 40, mail_from="Kurspakke <kurspakke@hinn.test>"), **changes)


@pytest.fixture
def mail_log() -> Iterator[list[logging.LogRecord]]:
    """Records of the logger kurspakke.mail (the app's logging stops propagation at "kurspakke", so caplog's root
    handler may not see them)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.DEBUG)
    log = logging.getLogger("kurspakke.mail")
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield records
    log.removeHandler(handler)
    log.setLevel(old_level)


def test_a_message_goes_through_smtp_with_norwegian_text_and_html(smtp_server: SmtpServer):
    send_mail(
        settings(smtp_url=smtp_server.url),
        to="kari.nordmann@oslo.kommune.no",
        subject="Pålogging – Lindrende behandling",
        text=TEXT,
        html=HTML,
    )
    [received] = smtp_server.received
    assert received.rcpt_tos == ["kari.nordmann@oslo.kommune.no"]
    assert received.mail_from == "kurspakke@hinn.test"
    message = received.message
    assert message["To"] == "kari.nordmann@oslo.kommune.no"
    assert message["From"] == "Kurspakke <kurspakke@hinn.test>"
    assert message["Subject"] == "Pålogging – Lindrende behandling"
    assert message["Message-ID"] and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == TEXT
    assert html.get_content().strip() == HTML


def test_text_only_is_a_single_part(smtp_server: SmtpServer):
    send_mail(settings(smtp_url=smtp_server.url), to="a@b.no", subject="Hei", text="æøå")
    [message] = smtp_server.messages
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "æøå"


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("kari@oslo.kommune.no\r\nBcc: victim@example.com", "Hei"),
        ("kari@oslo.kommune.no\nBcc: victim@example.com", "Hei"),
        ("kari@oslo.kommune.no", "Hei\r\nBcc: victim@example.com"),
        ("kari@oslo.kommune.no", "Hei\nX-Injected: 1"),
        ("kari@oslo.kommune.no, victim@example.com", "Hei"),
        ("Kari <kari@oslo.kommune.no>", "Hei"),
        ("not-an-address", "Hei"),
        ("", "Hei"),
        ("kari@oslo.kommune.no", ""),
        ("a" * 320 + "@b.no", "Hei"),
    ],
)
def test_header_injection_and_bad_addresses_are_refused_and_nothing_is_sent(smtp_server: SmtpServer, to, subject):
    with pytest.raises(InvalidMail):
        send_mail(settings(smtp_url=smtp_server.url), to=to, subject=subject, text="x")
    assert smtp_server.received == []


def test_a_sender_with_a_line_break_is_refused(smtp_server: SmtpServer):
    with pytest.raises(InvalidMail, match="mail_from"):
        send_mail(
            settings(smtp_url=smtp_server.url, mail_from="a@b.no\r\nBcc: c@d.no"), to="x@y.no", subject="s", text="t"
        )
    assert smtp_server.received == []


def test_without_smtp_url_the_console_logs_the_whole_message(mail_log):
    send_mail(settings(smtp_url=None), to="kari@oslo.kommune.no", subject="Pålogging", text=TEXT, html=HTML)
    [record] = mail_log
    assert record.levelno == logging.INFO
    logged = record.getMessage()
    assert "To: kari@oslo.kommune.no" in logged
    assert "Subject: =?utf-8?" in logged  # the encoded subject: the message exactly as it would be sent
    assert "text/html" in logged and "text/plain" in logged


def test_production_without_smtp_url_refuses_instead_of_logging_links(mail_log):
    with pytest.raises(MailError, match="SMTP_URL"):
        send_mail(settings(env="production", smtp_url=None), to="kari@oslo.kommune.no", subject="s", text="t")
    assert mail_log == []


def test_an_unreachable_server_raises_mail_error():
    port = free_port()  # nobody listens there
    with pytest.raises(MailError, match=f"127.0.0.1:{port}"):
        send_mail(settings(smtp_url=f"smtp://127.0.0.1:{port}"), to="a@b.no", subject="s", text="t", timeout=2)


def test_required_starttls_that_the_server_does_not_offer_raises_and_sends_nothing(smtp_server: SmtpServer):
    with pytest.raises(MailError, match="STARTTLS"):
        send_mail(settings(smtp_url=smtp_server.url + "?starttls=1"), to="a@b.no", subject="s", text="t")
    assert smtp_server.received == []


def test_smtp_urls_are_parsed_as_documented():
    target = parse_smtp_url("smtp://user%40hinn.no:p%3Ass@mail.hinn.no:587?starttls=1")
    assert (target.scheme, target.host, target.port, target.starttls) == ("smtp", "mail.hinn.no", 587, True)
    assert (target.username, target.password) == ("user@hinn.no", "p:ss")
    assert parse_smtp_url("smtp://mail.hinn.no").port == 25
    secure = parse_smtp_url("smtps://mail.hinn.no")
    assert (secure.port, secure.starttls, secure.username) == (465, False, None)
    for bad in ("http://mail.hinn.no", "smtp://", "smtps://mail.hinn.no?starttls=1", "smtp://h:99999"):
        with pytest.raises(MailError):
            parse_smtp_url(bad)
