"""Passwords: argon2 hashes, checked in constant work whether or not the account exists."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: Shorter passwords are refused everywhere a password is set.
MIN_LENGTH = 8
#: argon2 hashes what it is given; a megabyte "password" would be a cheap way to burn CPU.
MAX_LENGTH = 200

_hasher = PasswordHasher()


class WeakPassword(ValueError):
    """The password cannot be used; the message says why, in words for the person typing it."""


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"use at most {MAX_LENGTH} characters")
    if not password.strip():
        raise WeakPassword("a password cannot be only spaces")


def hash_password(password: str) -> str:
    """An argon2id hash of a password that passed :func:`check_strength`."""
    check_strength(password)
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return _hasher.hash("a decoy that no account has")


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; an account without a password (or no account: pass None)
    costs the same argon2 work, so timing does not tell which e-mail addresses exist."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash or _decoy_hash(), password) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False
