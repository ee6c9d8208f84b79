"""Mail over a real SMTP server on 127.0.0.1: STARTTLS with login, TLS from the start, plain;
one connection per batch, retries with back-off, permanent refusals reported, mail off."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from adserver.notify.mail import (
    Attachment,
    InlineImage,
    MailConfigError,
    Mailer,
    SmtpConfig,
    compose,
)
from tests.smtp_server import PASSWORD, USER, smtp_server

SENDER = "Reports <reports@publisher.example>"


def _message(to: str = "ann@advertiser.example", n: int = 1) -> EmailMessage:
    return compose(
        sender=SENDER,
        to=[to],
        subject=f"Your report {n}",
        text=f"Impressions: {n}",
        html=f'<p>Impressions: {n}</p><img src="cid:chart" alt="chart">',
        images=[InlineImage("chart", b"\x89PNG\r\n\x1a\nnot really")],
        attachments=[Attachment("daily.csv", b"day,impressions\r\n2026-12-01,1\r\n", "text/csv")],
        headers={"List-Unsubscribe": "<https://ads.example/u/abc>"},
        message_id=f"<report-{n}@publisher.example>",
    )


def test_parse_smtp_urls() -> None:
    config = SmtpConfig.parse("smtp://me%40x.org:p%2Fw@mail.example:587?starttls=1")
    assert (config.host, config.port, config.security) == ("mail.example", 587, "starttls")
    assert (config.username, config.password) == ("me@x.org", "p/w")
    assert SmtpConfig.parse("smtps://mail.example").port == 465
    assert SmtpConfig.parse("smtp://mail.example").security == "plain"
    for bad in ("http://mail.example", "smtp://", "smtps://h?starttls=1", "smtp://h?tls=1"):
        with pytest.raises(MailConfigError):
            SmtpConfig.parse(bad)


def test_starttls_login_batch_on_one_connection(tmp_path: Path) -> None:
    with smtp_server(tmp_path, security="starttls") as server:
        mailer = Mailer.from_url(server.url(), ssl_context=server.client_context)
        outcomes = mailer.send([_message(n=1), _message(n=2), _message(n=3)])
        assert [o.status for o in outcomes] == ["sent"] * 3
        received = server.recorder.messages
    assert [m["Subject"] for m in received] == ["Your report 1", "Your report 2", "Your report 3"]
    first = received[0]
    assert first["Message-ID"] == "<report-1@publisher.example>"
    assert first["List-Unsubscribe"] == "<https://ads.example/u/abc>"
    body = first.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Impressions: 1"
    html = first.get_body(("html",))
    assert html is not None and "cid:chart" in html.get_content()
    images = [p for p in first.walk() if p.get("Content-ID") == "<chart>"]
    assert images and images[0].get_content_type() == "image/png"
    (csv,) = list(first.iter_attachments())
    assert csv.get_filename() == "daily.csv"
    assert csv.get_content().startswith("day,impressions")


def test_one_connection_for_a_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import smtplib

    connections: list[object] = []
    original = smtplib.SMTP.connect

    def counting(self: smtplib.SMTP, *args: object, **kwargs: object) -> object:
        connections.append(self)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(smtplib.SMTP, "connect", counting)
    with smtp_server(tmp_path, security="plain") as server:
        outcomes = Mailer.from_url(server.url(login=False)).send([_message(n=n) for n in range(5)])
        assert len(server.recorder.messages) == 5
    assert all(o.status == "sent" for o in outcomes)
    assert len(connections) == 1


# aiosmtpd cannot tell that a connection which began with TLS is encrypted: its warning about
# login without TLS is wrong here.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtps_with_login(tmp_path: Path) -> None:
    with smtp_server(tmp_path, security="ssl") as server:
        mailer = Mailer.from_url(server.url(), ssl_context=server.client_context)
        (outcome,) = mailer.send([_message()])
        assert outcome.status == "sent", outcome.detail
        (envelope,) = server.recorder.envelopes
        assert envelope == ("reports@publisher.example", ["ann@advertiser.example"])


def test_temporary_refusal_is_retried_with_back_off(tmp_path: Path) -> None:
    waits: list[float] = []
    with smtp_server(tmp_path) as server:
        server.recorder.refuse_data = 2
        mailer = Mailer.from_url(
            server.url(), ssl_context=server.client_context, backoff=0.5, sleep=waits.append
        )
        (outcome,) = mailer.send([_message()])
        assert server.recorder.data_commands == 3
        assert len(server.recorder.messages) == 1
    assert (outcome.status, outcome.attempts) == ("sent", 3)
    assert waits == [0.5, 1.0]


def test_temporary_refusal_that_lasts_is_deferred(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as server:
        server.recorder.refuse_data = 100
        mailer = Mailer.from_url(
            server.url(), ssl_context=server.client_context, attempts=3, sleep=lambda s: None
        )
        (outcome,) = mailer.send([_message()])
    assert (outcome.status, outcome.attempts) == ("deferred", 3)
    assert "451" in outcome.detail


def test_permanent_refusal_is_reported_once_and_others_still_go(tmp_path: Path) -> None:
    waits: list[float] = []
    with smtp_server(tmp_path) as server:
        server.recorder.refuse_permanently = {"gone@advertiser.example"}
        mailer = Mailer.from_url(
            server.url(), ssl_context=server.client_context, sleep=waits.append
        )
        outcomes = mailer.send(
            [_message("gone@advertiser.example", 1), _message("ann@advertiser.example", 2)]
        )
        assert [m["Subject"] for m in server.recorder.messages] == ["Your report 2"]
    assert [o.status for o in outcomes] == ["failed", "sent"]
    assert "550" in outcomes[0].detail and outcomes[0].attempts == 1
    assert waits == []


def test_wrong_password_fails_every_message_without_retry(tmp_path: Path) -> None:
    waits: list[float] = []
    with smtp_server(tmp_path) as server:
        url = server.url().replace(PASSWORD.replace(" ", "%20").replace("/", "%2F"), "wrong")
        assert f"{USER}:wrong@" in url
        mailer = Mailer.from_url(url, ssl_context=server.client_context, sleep=waits.append)
        outcomes = mailer.send([_message(n=1), _message(n=2)])
        assert server.recorder.messages == []
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert "535" in outcomes[0].detail
    assert waits == []


def test_unreachable_server_is_deferred(tmp_path: Path) -> None:
    from tests.waiting import free_port

    mailer = Mailer.from_url(f"smtp://127.0.0.1:{free_port()}", attempts=2, sleep=lambda s: None)
    (outcome,) = mailer.send([_message()])
    assert (outcome.status, outcome.attempts) == ("deferred", 2)
    assert "ConnectionRefused" in outcome.detail


def test_mail_off_without_smtp() -> None:
    mailer = Mailer.from_url(None)
    assert not mailer.enabled
    (outcome,) = mailer.send([_message()])
    assert outcome.status == "off"


def test_a_malformed_smtp_url_is_refused_at_start() -> None:
    from adserver.config import Settings, SettingsError

    with pytest.raises(SettingsError, match="must start with smtp:// or smtps://"):
        Settings.from_env({"ADSERVER_SMTP_URL": "mail.example.com:25"})
    settings = Settings.from_env({"ADSERVER_SMTP_URL": "smtps://u:p@mail.example.com"})
    assert settings.smtp_url == "smtps://u:p@mail.example.com"
