"""Sending mail over SMTP, as ``ADSERVER_SMTP_URL`` says, or not at all when it is unset.

The whole API is :func:`compose` (an ``EmailMessage`` with a stable Message-ID) and
:meth:`Mailer.send` (a batch over one connection, each message's :class:`Outcome` returned).
Temporary failures (a 4xx reply, a dropped or refused connection) are retried with back-off on
a fresh connection; a permanent one (a 5xx reply) is reported at once and never retried. With no
SMTP configured every outcome is ``off``: the caller keeps its archive copy and nothing is sent.
"""

from __future__ import annotations

import smtplib
import ssl
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formatdate, getaddresses, make_msgid
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

Security = Literal["plain", "starttls", "ssl"]
Status = Literal["sent", "failed", "deferred", "off"]

_SCHEMES = {"smtp": 25, "smtps": 465}
_TRUE = {"1", "true", "yes", "on"}


class _Headers(HeaderRegistry):
    """The standard header classes, each made once: the stock registry builds a new class on
    every lookup, which was half the cost of composing and rendering a report's message."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


_HEADERS = _Headers()
#: The policies messages are built and rendered with (``email.policy.default`` and ``SMTP``,
#: with the registry above).
POLICY = policy.default.clone(header_factory=_HEADERS)
SMTP_POLICY = policy.SMTP.clone(header_factory=_HEADERS)


class MailConfigError(ValueError):
    """``ADSERVER_SMTP_URL`` is malformed; the message says how."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to hand mail over, parsed from ``smtp[s]://user:pass@host:port``."""

    host: str
    port: int
    security: Security = "plain"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        """``smtp://`` (``?starttls=1`` to upgrade), ``smtps://`` (TLS from the start)."""
        parts = urlsplit(url.strip())
        if parts.scheme not in _SCHEMES:
            raise MailConfigError(
                f"ADSERVER_SMTP_URL must start with smtp:// or smtps://, not {url!r}"
            )
        if not parts.hostname:
            raise MailConfigError(f"ADSERVER_SMTP_URL names no host: {url!r}")
        try:
            port = parts.port or _SCHEMES[parts.scheme]
        except ValueError:
            raise MailConfigError(f"ADSERVER_SMTP_URL has a bad port: {url!r}") from None
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls", "timeout"}
        if unknown:
            raise MailConfigError(
                f"ADSERVER_SMTP_URL: unknown option {sorted(unknown)[0]!r} "
                "(known: starttls, timeout)"
            )
        security: Security = "ssl" if parts.scheme == "smtps" else "plain"
        if query.get("starttls") in _TRUE:
            if security == "ssl":
                raise MailConfigError("ADSERVER_SMTP_URL: smtps:// is TLS already; drop starttls")
            security = "starttls"
        try:
            timeout = float(query.get("timeout", cls.timeout))
        except ValueError:
            raise MailConfigError(
                "ADSERVER_SMTP_URL: timeout must be a number of seconds"
            ) from None
        return cls(
            host=parts.hostname,
            port=port,
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
        )


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True)
class InlineImage:
    """An image the HTML part shows as ``<img src="cid:{cid}">`` (mail clients block SVG and
    most remote images; an inline PNG shows)."""

    cid: str
    content: bytes
    mime_type: str = "image/png"


def compose(
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    images: Iterable[InlineImage] = (),
    attachments: Iterable[Attachment] = (),
    headers: Mapping[str, str] | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    """A message with a plain-text part, an optional HTML part (with its inline images) and
    attachments. ``message_id`` should be stable for the same logical message, so that a resend
    after a crash is recognisable as the same one; a fresh one is made when it is omitted."""
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = sender.rpartition("@")[2].strip(">") or "localhost"
    message["Message-ID"] = message_id or make_msgid(uuid.uuid4().hex[:16], domain=domain)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html", cte="base64")
        html_part = message.get_body(("html",))
        assert html_part is not None
        for image in images:
            maintype, _, subtype = image.mime_type.partition("/")
            html_part.add_related(
                image.content, maintype=maintype, subtype=subtype, cid=f"<{image.cid}>"
            )
    for attachment in attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


@dataclass(frozen=True)
class Envelope:
    """A message already rendered to bytes (``message.as_bytes(policy=SMTP)``), sent as is:
    what an outbox keeps, so sending does not parse and render it again."""

    sender: str
    recipients: list[str]
    data: bytes

    @classmethod
    def of(cls, data: bytes) -> Envelope:
        """Sender and recipients from the message's own From and To headers."""
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(data)
        (_, sender), *_ = getaddresses([str(headers.get("From", ""))]) or [("", "")]
        recipients = [a for _, a in getaddresses([str(h) for h in headers.get_all("To", [])]) if a]
        return cls(sender, recipients, data)


@dataclass(frozen=True)
class Outcome:
    """What became of one message: ``sent``; ``failed`` (refused for good, never retried);
    ``deferred`` (still failing temporarily after every attempt: try again later); ``off`` (no
    SMTP configured)."""

    status: Status
    detail: str = ""
    attempts: int = 0


class _Temporary(Exception):
    pass


class _Permanent(Exception):
    pass


class Mailer:
    """Hands batches of messages to the configured SMTP server.

    ``send`` opens one connection for a batch; after a temporary failure it waits
    ``backoff * 2**n`` seconds (``sleep`` is passed in so tests do not wait) and carries on with
    the messages not yet delivered on a new connection, up to ``attempts`` tries per message.
    """

    def __init__(
        self,
        config: SmtpConfig | None,
        *,
        attempts: int = 4,
        backoff: float = 2.0,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._ssl_context = ssl_context
        self._sleep = sleep

    @classmethod
    def from_url(cls, url: str | None, **kwargs: object) -> Mailer:
        """A mailer for ``ADSERVER_SMTP_URL`` (None or empty: mail is off)."""
        return cls(SmtpConfig.parse(url) if url else None, **kwargs)  # type: ignore[arg-type]

    @property
    def enabled(self) -> bool:
        return self.config is not None

    def send(
        self,
        messages: Sequence[EmailMessage | Envelope],
        *,
        on_settled: Callable[[int, Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Deliver ``messages``; one :class:`Outcome` per message, in order. Never raises for a
        delivery problem: each message's fate is in its outcome. ``on_settled(index, outcome)``
        is called the moment a message is sent or refused for good, before the next one goes,
        so a caller can record it at once (an outbox keeps its resend window one message
        wide)."""
        if self.config is None:
            return [Outcome("off", "SMTP is not configured (ADSERVER_SMTP_URL)")] * len(messages)
        settled = on_settled or (lambda index, outcome: None)
        outcomes: dict[int, Outcome] = {}
        tries = dict.fromkeys(range(len(messages)), 0)
        pending = list(range(len(messages)))
        attempt = 0
        while pending:
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            attempt += 1
            try:
                client = self._connect(self.config)
            except _Permanent as exc:  # e.g. the login was refused: no message can go
                for index in pending:
                    outcomes[index] = Outcome("failed", str(exc), tries[index] + 1)
                    settled(index, outcomes[index])
                break
            except (_Temporary, OSError, smtplib.SMTPException) as exc:
                for index in pending:
                    tries[index] += 1
                    outcomes[index] = Outcome("deferred", _describe(exc), tries[index])
                pending = [i for i in pending if tries[i] < self.attempts]
                continue
            retry: list[int] = []
            try:
                for position, index in enumerate(pending):
                    tries[index] += 1
                    try:
                        outcomes[index] = Outcome(
                            "sent", _deliver(client, messages[index]), tries[index]
                        )
                        settled(index, outcomes[index])
                    except _Permanent as exc:
                        outcomes[index] = Outcome("failed", str(exc), tries[index])
                        settled(index, outcomes[index])
                    except _Temporary as exc:
                        outcomes[index] = Outcome("deferred", str(exc), tries[index])
                        retry.append(index)
                    except (OSError, smtplib.SMTPException) as exc:
                        # The connection is gone: this and the rest go on the next one.
                        outcomes[index] = Outcome("deferred", _describe(exc), tries[index])
                        retry += pending[position:]
                        break
            finally:
                _quit(client)
            pending = [i for i in retry if tries[i] < self.attempts]
        return [outcomes[i] for i in range(len(messages))]

    def _connect(self, config: SmtpConfig) -> smtplib.SMTP:
        context = self._ssl_context or ssl.create_default_context()
        client: smtplib.SMTP
        if config.security == "ssl":
            client = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=context
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        try:
            client.ehlo()
            if config.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if config.username is not None:
                client.login(config.username, config.password or "")
        except smtplib.SMTPResponseException as exc:
            client.close()
            raise _classify(exc) from exc
        except smtplib.SMTPNotSupportedError as exc:
            client.close()
            raise _Permanent(f"the server does not support it: {exc}") from exc
        except BaseException:
            client.close()
            raise
        return client


def _deliver(client: smtplib.SMTP, message: EmailMessage | Envelope) -> str:
    """Send one message on an open connection; raises _Temporary or _Permanent."""
    try:
        if isinstance(message, Envelope):
            refused = client.sendmail(message.sender, message.recipients, message.data)
        else:
            refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        reasons = "; ".join(
            f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in exc.recipients.items()
        )
        if any(400 <= code < 500 for code in codes):
            raise _Temporary(f"recipients refused for now: {reasons}") from exc
        raise _Permanent(f"recipients refused: {reasons}") from exc
    except smtplib.SMTPResponseException as exc:  # smtplib has reset the transaction
        raise _classify(exc) from exc
    if refused:
        return "refused some recipients: " + "; ".join(
            f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in refused.items()
        )
    return ""


def _quit(client: smtplib.SMTP) -> None:
    """Say goodbye if the connection still stands; close it either way."""
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _classify(exc: smtplib.SMTPResponseException) -> Exception:
    detail = f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if 400 <= exc.smtp_code < 500:
        return _Temporary(detail)
    return _Permanent(detail)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
