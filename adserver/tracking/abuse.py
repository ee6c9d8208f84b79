"""Abuse rules: traffic no real reader produces is kept as invalid with its own reason.

Three rules, documented with their reasons in docs/invalid-traffic.md:

- ``too-fast`` (here, per event, on the hot path: a subtraction): a view sooner after its
  decision than the viewability rule allows (1 s in view, less a tolerance for clocks between
  machines), or a click sooner than a person can see an ad and click it.
- ``click-flood`` and ``burst`` (in the tally, over the stored events of every process, so they
  are exact however many processes serve): a reader's clicks beyond ``CLICK_FLOOD_LIMIT`` in
  ``CLICK_FLOOD_WINDOW`` seconds, and a reader's events of any kind beyond ``BURST_LIMIT`` in
  ``BURST_WINDOW`` seconds (far above a person's page views). Only the excess is invalid: the
  first events of a reader key count, so readers sharing one address and browser (an office,
  a mobile carrier's gateway) are not all thrown away.

A reader is told apart by a key: a hash of the address and user agent salted with the secret
key and the UTC day, so the stored events never hold an address, and keys cannot be linked from
one day to the next. A loopback address gets no key and none of the rules: it is a reverse proxy
that does not pass the reader's address (every reader would be one) or a local tool.
"""

from __future__ import annotations

import binascii
import hashlib
from typing import Final

from adserver.tracking.tokens import TokenClaims

#: A view is counted after 1 s in view; this much earlier is allowed for clocks between machines.
MIN_VIEW_SECONDS: Final = 0.8
#: A person needs longer than this to see an ad render and click it.
MIN_CLICK_SECONDS: Final = 0.5
#: More than this many clicks by one reader within the window (seconds): the rest are invalid.
CLICK_FLOOD_LIMIT: Final = 10
CLICK_FLOOD_WINDOW: Final = 600
#: More than this many events of any kind by one reader within the window (seconds): a person
#: reading a page a second on a page with ten slots makes 20 a second at most, briefly.
BURST_LIMIT: Final = 300
BURST_WINDOW: Final = 60
_LOOPBACK: Final = frozenset(("127.0.0.1", "::1", "localhost"))
#: How much of a user agent goes into the key (a client may send a megabyte).
_UA_CHARS: Final = 512
_DAY: Final = 86400


class ReaderKeys:
    """Reader keys: 16 URL-safe characters per (address, user agent, UTC day)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._day = -1
        self._hasher = hashlib.blake2b(digest_size=12)

    def _salted(self, day: int) -> hashlib.blake2b:
        if day != self._day:
            salt = hashlib.sha256(b"adserver-reader:%d:" % day + self._secret).digest()
            self._hasher = hashlib.blake2b(key=salt, digest_size=12)
            self._day = day
        return self._hasher

    def key(self, address: str | None, user_agent: str, now: float) -> str:
        """The reader's key, or "" for no address or a loopback one (no rules apply)."""
        if not address or address in _LOOPBACK or address.startswith("127."):
            return ""
        hasher = self._salted(int(now) // _DAY).copy()
        hasher.update(address.encode() + b"\0" + user_agent[:_UA_CHARS].encode("utf-8", "replace"))
        return binascii.b2a_base64(hasher.digest(), newline=False).decode()


def decided_at(claims: TokenClaims) -> float:
    """When the decision was made, to 1/256 s: from its id (which begins with the time), or
    the token's issue time in whole seconds when the id does not match it."""
    # The first 8 characters spell the first 6 bytes, of which the time is the first 5.
    spelled = claims.decision_id[:8].encode("ascii", "replace").translate(_FROM_URLSAFE)
    try:
        raw = binascii.a2b_base64(spelled)
    except (binascii.Error, ValueError):
        return float(claims.issued_at)
    precise = int.from_bytes(raw[:5], "big") / 256
    return precise if abs(precise - claims.issued_at) < 2 else float(claims.issued_at)


_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")


def too_fast(kind: str, claims: TokenClaims, now: float) -> bool:
    """Whether a view or click came sooner after its decision than a person makes one."""
    if kind == "view":
        return now - decided_at(claims) < MIN_VIEW_SECONDS
    if kind == "click":
        return now - decided_at(claims) < MIN_CLICK_SECONDS
    return False
