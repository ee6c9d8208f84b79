"""Mailing a set-password link (an invitation or a reset), or saying it could not be mailed.

With mail off (no ``ADSERVER_SMTP_URL``) or a refusal, the caller gets the URL back with
``mailed`` False: an admin inviting someone is shown the link to pass on; a visitor asking for
a reset is never shown it (the link is the account).
"""

from __future__ import annotations

from dataclasses import dataclass

from adserver.accounts.links import LIFETIMES, Purpose, link_url
from adserver.config import Settings
from adserver.notify.mail import Mailer, compose

SUBJECTS = {"invite": "You are invited to adserver", "reset": "Set a new adserver password"}
INTROS = {
    "invite": "You have been invited to adserver at {base}. Choose a password here:",
    "reset": "Someone (we hope you) asked to set a new adserver password. Choose one here:",
}
OUTROS = {
    "invite": "",
    "reset": "If it was not you, ignore this message: your password stays as it is.\n",
}


@dataclass(frozen=True, slots=True)
class LinkDelivery:
    url: str
    #: False when mail is off or the message was not accepted (``detail`` says why).
    mailed: bool
    detail: str = ""


def _lifetime(purpose: Purpose) -> str:
    hours = int(LIFETIMES[purpose].total_seconds() // 3600)
    return f"{hours // 24} days" if hours >= 48 else f"{hours} hour{'s' if hours != 1 else ''}"


def deliver_link(settings: Settings, *, to: str, purpose: Purpose, token: str) -> LinkDelivery:
    """Mail the link (a blocking SMTP exchange: call it from a worker thread)."""
    url = link_url(settings.base_url, purpose, token)
    mailer = Mailer.from_url(settings.smtp_url, attempts=2, backoff=0.5)
    if not mailer.enabled:
        return LinkDelivery(url, False, "mail is off on this server (ADSERVER_SMTP_URL)")
    text = (
        INTROS[purpose].format(base=settings.base_url)
        + f"\n\n{url}\n\n"
        + f"The link works once, for {_lifetime(purpose)}.\n"
        + OUTROS[purpose]
    )
    message = compose(sender=settings.mail_from, to=[to], subject=SUBJECTS[purpose], text=text)
    outcome = mailer.send([message])[0]
    return LinkDelivery(url, outcome.status == "sent", outcome.detail)
