"""Signed, expiring event tokens: what a beacon or click proves about its decision.

A token packs the decision id, a version, site, slot, campaign, creative and issue time into 33
bytes, followed by a 128-bit MAC of them: keyed BLAKE2b since version 2 (a third of HMAC-SHA256's
cost, and it is paid three times per decide request). The decision id comes first, so a token's
first 16 characters spell it. Version 1 tokens (version first, HMAC-SHA256) still verify until
they expire. Verifying needs the secret only, no database read. One token serves the
impression, view and click URLs of a decision: the kind is in the path.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import Enum

_VERSION = 2
_HMAC_VERSION = 1
_LAYOUT = struct.Struct(">12sBIIIII")
_HMAC_LAYOUT = struct.Struct(">B12sIIIII")
#: Where each layout keeps its version byte.
_VERSION_AT = 12
_HMAC_VERSION_AT = 0
_MAC_BYTES = 16
_TOKEN_BYTES = _LAYOUT.size + _MAC_BYTES
#: The characters of a token that spell its decision id (12 bytes, 16 base64 characters).
DECISION_CHARS = 16
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


class TokenState(Enum):
    VALID = "valid"
    EXPIRED = "expired"
    FORGED = "forged"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    decision_id: str
    site_id: int
    slot_id: int
    campaign_id: int
    creative_id: int
    issued_at: int


@dataclass(frozen=True, slots=True)
class Verified:
    """The outcome of a verification; ``claims`` is None only for a forged token."""

    state: TokenState
    claims: TokenClaims | None


class TokenSigner:
    def __init__(self, secret: str) -> None:
        key = hashlib.sha256(b"adserver-event-token:" + secret.encode()).digest()
        # Keyed once: a copy of the keyed state costs half of keying a new one per token.
        self._blake2b = hashlib.blake2b(key=key, digest_size=_MAC_BYTES)
        self._hmac = hmac.new(key, digestmod=hashlib.sha256)

    def _mac(self, version: int, payload: bytes) -> bytes:
        mac = self._hmac.copy() if version == _HMAC_VERSION else self._blake2b.copy()
        mac.update(payload)
        return mac.digest()[:_MAC_BYTES]

    def sign(self, claims: TokenClaims) -> str:
        return self.token(
            _decode(claims.decision_id.encode()),
            claims.site_id,
            claims.slot_id,
            claims.campaign_id,
            claims.creative_id,
            claims.issued_at,
        ).decode()

    def token(
        self, decision: bytes, site: int, slot: int, campaign: int, creative: int, issued: int
    ) -> bytes:
        """The token as ASCII bytes, from the decision's 12 raw id bytes: the decide path's
        form, spliced into answers already serialised (``_mac`` and ``urlsafe_b64`` written
        out, as this runs three times per decide request)."""
        payload = _LAYOUT.pack(decision, _VERSION, site, slot, campaign, creative, issued)
        mac = self._blake2b.copy()
        mac.update(payload)
        return binascii.b2a_base64(payload + mac.digest(), newline=False).translate(_TO_URLSAFE)

    def verify(self, token: str, *, now: int, ttl: int) -> Verified:
        """Check the signature in constant time, then the age against ``ttl`` seconds."""
        try:
            spelled = token.encode("ascii")
            raw = _decode(spelled)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            return Verified(TokenState.FORGED, None)
        # Only the one canonical spelling verifies: base64 decoding alone skips stray
        # characters, ignores what follows padding and the unused bits of the last character.
        if len(raw) != _TOKEN_BYTES or urlsafe_b64(raw) != spelled:
            return Verified(TokenState.FORGED, None)
        payload, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
        # A version 1 token may carry 2 where version 2 keeps its version: the MAC decides.
        if payload[_VERSION_AT] == _VERSION and hmac.compare_digest(
            mac, self._mac(_VERSION, payload)
        ):
            decision, _, site, slot, campaign, creative, issued = _LAYOUT.unpack(payload)
        elif payload[_HMAC_VERSION_AT] == _HMAC_VERSION and hmac.compare_digest(
            mac, self._mac(_HMAC_VERSION, payload)
        ):
            _, decision, site, slot, campaign, creative, issued = _HMAC_LAYOUT.unpack(payload)
        else:
            return Verified(TokenState.FORGED, None)
        claims = TokenClaims(urlsafe_b64(decision).decode(), site, slot, campaign, creative, issued)
        if issued > now + 60 or now - issued > ttl:
            return Verified(TokenState.EXPIRED, claims)
        return Verified(TokenState.VALID, claims)


def urlsafe_b64(raw: bytes) -> bytes:
    """URL-safe base64 (binascii directly: the ``base64`` module's wrappers cost as much)."""
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE)


def _decode(spelled: bytes) -> bytes:
    return binascii.a2b_base64(spelled.translate(_FROM_URLSAFE))


def raw_decision_id(now: float, random_56: int) -> bytes:
    """A decision's 12 id bytes: its issue time in 1/256 s (5 bytes, big-endian, good until
    2106), then 56 random bits. Ids issued together share a prefix, so the event store's unique
    index on ``decision:kind`` takes a group of beacons in a few pages at its recent end, where
    random ids dirtied a page of the whole index per event (SQLite's writer spent twice the
    time, and more as the table grew)."""
    return decision_id_prefix(now) + random_56.to_bytes(7, "big")


def decision_id_prefix(now: float) -> bytes:
    """The 5 time bytes of the ids issued at ``now``: worked out once for all of a page's
    decisions, each then adding its 7 random bytes."""
    return int(now * 256).to_bytes(5, "big")


def new_decision_id(raw: bytes) -> str:
    """A decision id's spelling: its 12 bytes as 16 URL-safe characters."""
    if len(raw) != 12:
        raise ValueError("a decision id takes 12 bytes")
    return urlsafe_b64(raw).decode()
