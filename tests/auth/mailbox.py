"""A real SMTP server in this process (aiosmtpd, in a thread of its own) that keeps what it
receives, for the tests to read the links in the messages."""

import asyncio
import email
import queue
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

_LINK = re.compile(r"https?://\S+/admin/set-password\?token=\S+")


@dataclass
class Mailbox:
    """The messages the server accepted, in order."""

    host: str
    port: int
    received: "queue.Queue[EmailMessage]" = field(default_factory=queue.Queue)
    # While cleared, the server holds every message before accepting it (a slow SMTP server).
    gate: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if not self.gate.is_set():
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait)
        message = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.received.put(message)
        return "250 Message accepted for delivery"

    def next(self, timeout: float = 10.0) -> EmailMessage:
        """The next message received (waiting for it up to `timeout` seconds)."""
        return self.received.get(timeout=timeout)

    def empty(self) -> bool:
        return self.received.empty()


def link_in(message: EmailMessage) -> str:
    """The set-password link in a message's text."""
    body = message.get_body(("plain",))
    assert body is not None
    found = _LINK.search(body.get_content())
    assert found is not None, f"no set-password link in: {body.get_content()!r}"
    return found.group(0)


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """An SMTP server on a free local port until the block ends."""
    mailbox = Mailbox("127.0.0.1", _free_port())
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def smtp_settings(mailbox: Mailbox) -> dict[str, Any]:
    """The settings that send mail to `mailbox` (no TLS: a local test server)."""
    return {
        "smtp_host": mailbox.host,
        "smtp_port": mailbox.port,
        "smtp_starttls": False,
        "smtp_from": "Tablestack <noreply@example.com>",
        "public_base_url": "http://admin.example.com",
    }
