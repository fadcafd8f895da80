"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests, collecting what it receives.

Use it by importing the fixture into a test module (no conftest needed)::

    from tests.support import smtp

    smtp_server = smtp.smtp_server

and take ``smtp_server`` as an argument: ``smtp_server.url`` is the SMTP_URL, ``smtp_server.messages`` the parsed
messages (``email.message.EmailMessage``, policy default) in the order they arrived.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

HOST = "127.0.0.1"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SmtpServer:
    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        return [r.message for r in self.received]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        """The messages once ``count`` have arrived (the server stores a message before it answers 250, so a
        finished send_mail needs no waiting; this is for senders in other threads)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} messages, got {len(self.received)}")
                self._arrived.wait(left)
        return self.messages

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._arrived:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"


def free_port(host: str = HOST) -> int:
    """A port nobody listens on right now (aiosmtpd 1.4's Controller needs a real port, not 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(HOST, free_port())
    controller = Controller(server, hostname=HOST, port=server.port, ready_timeout=5.0)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
