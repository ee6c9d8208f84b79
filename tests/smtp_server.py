"""A real SMTP server on 127.0.0.1 for tests: aiosmtpd with a test certificate and a login.

It keeps every message it accepted (parsed) and can be told to refuse: the next N DATA
commands with a temporary 451, or any recipient in ``refuse_permanently`` with a 550. It can
also hold the DATA of the next N report messages unanswered until ``release`` is set, as a
slow server does while its client is killed: such a message is never answered 250, never kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.waiting import free_port

USER = "mailer"
PASSWORD = "s3cret pass/word"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost), made with openssl."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class Recorder:
    """The handler: records accepted messages, refuses as told."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse_data: int = 0
    refuse_permanently: set[str] = field(default_factory=set)
    data_commands: int = 0
    hold_reports: int = 0
    held: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse_permanently:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._hold(envelope.content):
            while not self.release.is_set():
                await asyncio.sleep(0.02)
            return "451 4.3.0 not taken"
        with self.lock:
            self.data_commands += 1
            if self.refuse_data > 0:
                self.refuse_data -= 1
                return "451 4.3.0 try again later"
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self.messages.append(parsed)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK queued"

    def _hold(self, content: bytes) -> bool:
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        with self.lock:
            if self.hold_reports <= 0 or not str(parsed["Message-ID"]).startswith("<report-"):
                return False
            self.hold_reports -= 1
            self.held += 1
            return True


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login.decode() == USER
        and data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    recorder: Recorder
    port: int
    client_context: ssl.SSLContext
    security: str

    def url(self, *, login: bool = True) -> str:
        from urllib.parse import quote

        credentials = f"{USER}:{quote(PASSWORD, safe='')}@" if login else ""
        scheme = "smtps" if self.security == "ssl" else "smtp"
        query = "?starttls=1" if self.security == "starttls" else ""
        return f"{scheme}://{credentials}127.0.0.1:{self.port}{query}"


@contextlib.contextmanager
def smtp_server(directory: Path, *, security: str = "starttls") -> Iterator[SmtpServer]:
    """An SMTP server in a background thread: ``starttls`` (STARTTLS and login required),
    ``ssl`` (TLS from the first byte, login required) or ``plain`` (no TLS, no login)."""
    cert, key = make_certificate(directory)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    recorder = Recorder()
    port = free_port()
    options: dict[str, Any] = {}
    if security == "starttls":
        options = dict(
            tls_context=server_context,
            require_starttls=True,
            auth_required=True,
            authenticator=_authenticator,
        )
    elif security == "ssl":
        options = dict(
            ssl_context=server_context,
            auth_required=True,
            auth_require_tls=False,
            authenticator=_authenticator,
        )
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **options)
    if security == "ssl":
        # The readiness probe of aiosmtpd's controller speaks TLS only with a trusting context.
        controller.ssl_context = server_context
    controller.start()
    try:
        yield SmtpServer(recorder, port, client_context, security)
    finally:
        controller.stop()
