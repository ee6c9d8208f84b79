"""Who is asking, and what they may see: the one place that decides it.

A request is made by a :class:`Principal`: an admin (sees and manages everything) or an
advertiser (reads only its own advertiser's figures). Today a principal comes from an API token
(``Authorization: Bearer TOKEN``, made by ``adserver token create``) or from a signed-in user's
session (``sessions.SignedInUser.principal``); both map to the same two kinds, so route code asks
the principal, never the token or the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class Forbidden(Exception):
    """The principal is known but may not see what it asked for; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; ``advertiser_id`` None means an admin. ``user_id`` or
    ``token_id`` says who acted, for the change history."""

    name: str
    advertiser_id: int | None = None
    user_id: int | None = None
    token_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.advertiser_id is None

    @property
    def sees_delivery_counts(self) -> bool:
        """Requests and served belong to the publisher's slots, not to any advertiser."""
        return self.is_admin

    def advertiser_scope(self, requested: int | None) -> int | None:
        """The advertiser whose figures a query may read: ``requested`` for an admin (None for
        all), always the principal's own for an advertiser; asking for another is Forbidden."""
        if self.advertiser_id is None:
            return requested
        if requested is not None and requested != self.advertiser_id:
            raise Forbidden("this token may read only its own advertiser's statistics")
        return self.advertiser_id


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, or None."""
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
