"""Money: integer micro-units of the site's currency in storage, nano-units in statistics (so a
CPM price per impression stays exact), decimal strings in every answer."""

from __future__ import annotations

from decimal import Decimal


def money(nanos: int) -> str:
    """Nano-units as a decimal string in currency units: exact, at least two decimals."""
    whole, _, fraction = f"{Decimal(nanos).scaleb(-9):f}".partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"
