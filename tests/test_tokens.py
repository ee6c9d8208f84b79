"""Specification of event tokens, ``adserver.tokens``: signed, expiring, never trusted blindly.

A token is verified with the secret alone. Anything that is not exactly a token this server
signed is FORGED (never an exception); a genuine token past its age is EXPIRED and still tells
which decision it was for, so the event can be recorded as invalid with its reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import string
import struct
from collections.abc import Callable

import pytest

from adserver.tracking.tokens import (
    TokenClaims,
    TokenSigner,
    TokenState,
    Verified,
    new_decision_id,
    raw_decision_id,
)

SECRET = "test-secret-key"
ISSUED = 1_796_083_200  # 2026-12-01 00:00 UTC
TTL = 3600
URL_SAFE = string.ascii_letters + string.digits + "-_"


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(SECRET)


def claims(**overrides: object) -> TokenClaims:
    values: dict[str, object] = {
        "decision_id": new_decision_id(random.Random(1).randbytes(12)),
        "site_id": 3,
        "slot_id": 14,
        "campaign_id": 159,
        "creative_id": 2653,
        "issued_at": ISSUED,
    }
    values.update(overrides)
    return TokenClaims(**values)  # type: ignore[arg-type]


def forged() -> Verified:
    return Verified(TokenState.FORGED, None)


# --- round trip -------------------------------------------------------------------------------


def test_a_signed_token_verifies_with_its_claims(signer: TokenSigner) -> None:
    token = signer.sign(claims())
    assert signer.verify(token, now=ISSUED, ttl=TTL) == Verified(TokenState.VALID, claims())


def test_a_token_round_trips_the_largest_ids(signer: TokenSigner) -> None:
    big = claims(site_id=2**32 - 1, slot_id=2**31, campaign_id=2**32 - 2, creative_id=2**30)
    assert signer.verify(signer.sign(big), now=ISSUED, ttl=TTL).claims == big


def test_a_token_is_url_safe(signer: TokenSigner) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]+=*", signer.sign(claims()))


def test_tokens_for_different_decisions_differ(signer: TokenSigner) -> None:
    other = claims(decision_id=new_decision_id(random.Random(2).randbytes(12)))
    assert signer.sign(claims()) != signer.sign(other)


def test_a_version_2_token_is_its_claims_then_their_keyed_blake2b(signer: TokenSigner) -> None:
    """The format tokens already in pages were signed in: a change here must not break them."""
    values = claims()
    decision, numbers = token_fields(values)
    payload = struct.pack(">12sBIIIII", decision, 2, *numbers)
    mac = hashlib.blake2b(payload, key=token_key(SECRET), digest_size=16).digest()
    assert signer.sign(values) == base64.urlsafe_b64encode(payload + mac).decode()


def token_key(secret: str) -> bytes:
    """The MAC key every token version derives from the secret."""
    return hashlib.sha256(b"adserver-event-token:" + secret.encode()).digest()


def token_fields(values: TokenClaims) -> tuple[bytes, tuple[int, ...]]:
    """The decision id's bytes, and the numbers a token packs after it (site, slot, campaign,
    creative, issue time), in layout order."""
    numbers = (
        values.site_id,
        values.slot_id,
        values.campaign_id,
        values.creative_id,
        values.issued_at,
    )
    return base64.urlsafe_b64decode(values.decision_id), numbers


def version_1_token(values: TokenClaims, secret: str = SECRET) -> str:
    """A token as adserver signed them before version 2: HMAC-SHA256, truncated to 16 bytes."""
    decision, numbers = token_fields(values)
    payload = struct.pack(">B12sIIIII", 1, decision, *numbers)
    mac = hmac.new(token_key(secret), payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(payload + mac).decode()


def test_a_token_signed_before_the_upgrade_to_version_2_still_verifies(
    signer: TokenSigner,
) -> None:
    # Beacons and clicks in flight across an upgrade keep counting until their tokens expire.
    token = version_1_token(claims())
    assert signer.verify(token, now=ISSUED, ttl=TTL) == Verified(TokenState.VALID, claims())


def test_a_version_1_token_that_looks_like_version_2_where_it_keeps_its_version_verifies(
    signer: TokenSigner,
) -> None:
    # Byte 12 of a version 1 token is the decision id's last byte; 2 there is no version 2.
    decision = new_decision_id(bytes(11) + b"\x02")
    token = version_1_token(claims(decision_id=decision))
    assert base64.urlsafe_b64decode(token)[12] == 2
    verified = signer.verify(token, now=ISSUED, ttl=TTL)
    assert verified == Verified(TokenState.VALID, claims(decision_id=decision))


def test_a_tokens_first_16_characters_spell_its_decision_id(signer: TokenSigner) -> None:
    for seed in range(50):
        decision = new_decision_id(random.Random(seed).randbytes(12))
        assert signer.sign(claims(decision_id=decision))[:16] == decision


def test_a_version_1_token_with_another_secret_is_forged(signer: TokenSigner) -> None:
    token = version_1_token(claims(), secret="another-secret")
    assert signer.verify(token, now=ISSUED, ttl=TTL) == forged()


def test_a_token_of_an_unknown_version_is_forged(signer: TokenSigner) -> None:
    raw = bytearray(base64.urlsafe_b64decode(signer.sign(claims())))
    raw[12] = 3  # where version 2 keeps its version
    token = base64.urlsafe_b64encode(bytes(raw)).decode()
    assert signer.verify(token, now=ISSUED, ttl=TTL) == forged()


# --- forgery ----------------------------------------------------------------------------------


def test_flipping_any_bit_of_a_token_makes_it_forged(signer: TokenSigner) -> None:
    raw = base64.urlsafe_b64decode(signer.sign(claims()))
    accepted = []
    for index in range(len(raw)):
        for bit in range(8):
            tampered = bytearray(raw)
            tampered[index] ^= 1 << bit
            token = base64.urlsafe_b64encode(bytes(tampered)).decode()
            if signer.verify(token, now=ISSUED, ttl=TTL) != forged():
                accepted.append((index, bit))
    assert accepted == []


def test_changing_any_character_of_a_token_makes_it_forged(signer: TokenSigner) -> None:
    token = signer.sign(claims())
    accepted = []
    for index, original in enumerate(token):
        for replacement in URL_SAFE + "+/=":
            if replacement == original:
                continue
            tampered = token[:index] + replacement + token[index + 1 :]
            if signer.verify(tampered, now=ISSUED, ttl=TTL) != forged():
                accepted.append(f"{index}:{original}->{replacement}")
    # Each accepted variant is a second spelling of the same token: base64 decoding that is
    # not strict ignores the unused low bits of the last character and takes "+/" for "-_".
    assert accepted == []


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda t: t + "A", id="appended-after-padding"),
        pytest.param(lambda t: t + "==", id="extra-padding"),
        pytest.param(lambda t: t[:10] + "!" + t[10:], id="inserted-non-alphabet-character"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: t + "\n", id="trailing-newline"),
        pytest.param(lambda t: t.rstrip("="), id="padding-removed"),
        pytest.param(lambda t: t[:-4], id="truncated"),
    ],
)
def test_a_token_with_characters_added_or_removed_is_forged(
    signer: TokenSigner, edit: Callable[[str], str]
) -> None:
    # Only the exact string the server signed is a token: lenient base64 decoding would also
    # accept it with stray characters skipped or data after the padding ignored.
    token = signer.sign(claims())
    assert signer.verify(edit(token), now=ISSUED, ttl=TTL) == forged()


def test_a_token_signed_with_another_secret_is_forged(signer: TokenSigner) -> None:
    token = TokenSigner("another-secret").sign(claims())
    assert signer.verify(token, now=ISSUED, ttl=TTL) == forged()


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "=",
        "not a token",
        "!!!!!!!!",
        "AAAA",
        "A" * 68,
        "A" * 10_000,
        "é-ünïcode",
        "\x00\x01\x02",
        "%%CLICK_URL%%",
        base64.urlsafe_b64encode(b"\x01" * 49).decode(),
        base64.urlsafe_b64encode(b"\x01" * 48).decode(),
    ],
)
def test_garbage_is_forged_and_never_raises(signer: TokenSigner, garbage: str) -> None:
    assert signer.verify(garbage, now=ISSUED, ttl=TTL) == forged()


# --- expiry -----------------------------------------------------------------------------------


def test_a_token_is_valid_up_to_its_time_to_live(signer: TokenSigner) -> None:
    token = signer.sign(claims())
    assert signer.verify(token, now=ISSUED + TTL, ttl=TTL).state is TokenState.VALID


def test_a_token_past_its_time_to_live_is_expired_with_its_claims(signer: TokenSigner) -> None:
    token = signer.sign(claims())
    assert signer.verify(token, now=ISSUED + TTL + 1, ttl=TTL) == Verified(
        TokenState.EXPIRED, claims()
    )


def test_a_token_tolerates_a_few_seconds_of_clock_skew(signer: TokenSigner) -> None:
    token = signer.sign(claims())
    assert signer.verify(token, now=ISSUED - 5, ttl=TTL).state is TokenState.VALID


def test_a_token_issued_far_in_the_future_is_expired(signer: TokenSigner) -> None:
    token = signer.sign(claims(issued_at=ISSUED + 86_400))
    verified = signer.verify(token, now=ISSUED, ttl=TTL)
    assert verified == Verified(TokenState.EXPIRED, claims(issued_at=ISSUED + 86_400))


# --- decision ids -----------------------------------------------------------------------------


def test_a_decision_id_is_16_url_safe_characters() -> None:
    rng = random.Random(5)
    for _ in range(200):
        assert re.fullmatch(r"[A-Za-z0-9_-]{16}", new_decision_id(rng.randbytes(12)))


@pytest.mark.parametrize("size", [0, 11, 13, 16])
def test_a_decision_id_takes_exactly_12_bytes(size: int) -> None:
    with pytest.raises(ValueError):
        new_decision_id(b"\x00" * size)


def test_a_decision_id_starts_with_its_issue_time_so_ids_issued_together_sort_together() -> None:
    rng = random.Random(6)
    now = 1_795_000_000.5
    first = raw_decision_id(now, rng.getrandbits(56))
    assert int.from_bytes(first[:5], "big") / 256 == now
    together = [new_decision_id(raw_decision_id(now, rng.getrandbits(56))) for _ in range(100)]
    assert {spelled[:6] for spelled in together} == {new_decision_id(first)[:6]}
    later = raw_decision_id(now + 1, rng.getrandbits(56))
    assert first < later
    assert new_decision_id(later)[:6] != new_decision_id(first)[:6]


def test_decision_ids_issued_at_the_same_instant_are_unique() -> None:
    rng = random.Random(7)
    ids = {raw_decision_id(1_795_000_000.0, rng.getrandbits(56)) for _ in range(100_000)}
    assert len(ids) == 100_000
