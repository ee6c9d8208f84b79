"""The field types every entity's schemas share: slugs, sizes, zones, currencies, hosts,
e-mail addresses, http(s) URLs, money as decimal strings, ids that fit their columns. Each
refuses a bad value with a message that says what a good one looks like."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from pydantic import AfterValidator, Field

from adserver.services.errors import ServiceError

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SIZE = re.compile(r"^[1-9][0-9]{0,3}x[1-9][0-9]{0,3}$")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MONEY = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,6})?$")

#: ISO 4217 currency codes in use (2026).
CURRENCIES = frozenset(
    [
        "AED",
        "AFN",
        "ALL",
        "AMD",
        "ANG",
        "AOA",
        "ARS",
        "AUD",
        "AWG",
        "AZN",
        "BAM",
        "BBD",
        "BDT",
        "BGN",
        "BHD",
        "BIF",
        "BMD",
        "BND",
        "BOB",
        "BRL",
        "BSD",
        "BTN",
        "BWP",
        "BYN",
        "BZD",
        "CAD",
        "CDF",
        "CHF",
        "CLP",
        "CNY",
        "COP",
        "CRC",
        "CUP",
        "CVE",
        "CZK",
        "DJF",
        "DKK",
        "DOP",
        "DZD",
        "EGP",
        "ERN",
        "ETB",
        "EUR",
        "FJD",
        "FKP",
        "GBP",
        "GEL",
        "GHS",
        "GIP",
        "GMD",
        "GNF",
        "GTQ",
        "GYD",
        "HKD",
        "HNL",
        "HTG",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "IQD",
        "IRR",
        "ISK",
        "JMD",
        "JOD",
        "JPY",
        "KES",
        "KGS",
        "KHR",
        "KMF",
        "KPW",
        "KRW",
        "KWD",
        "KYD",
        "KZT",
        "LAK",
        "LBP",
        "LKR",
        "LRD",
        "LSL",
        "LYD",
        "MAD",
        "MDL",
        "MGA",
        "MKD",
        "MMK",
        "MNT",
        "MOP",
        "MRU",
        "MUR",
        "MVR",
        "MWK",
        "MXN",
        "MYR",
        "MZN",
        "NAD",
        "NGN",
        "NIO",
        "NOK",
        "NPR",
        "NZD",
        "OMR",
        "PAB",
        "PEN",
        "PGK",
        "PHP",
        "PKR",
        "PLN",
        "PYG",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "RWF",
        "SAR",
        "SBD",
        "SCR",
        "SDG",
        "SEK",
        "SGD",
        "SHP",
        "SLE",
        "SOS",
        "SRD",
        "SSP",
        "STN",
        "SVC",
        "SYP",
        "SZL",
        "THB",
        "TJS",
        "TMT",
        "TND",
        "TOP",
        "TRY",
        "TTD",
        "TWD",
        "TZS",
        "UAH",
        "UGX",
        "USD",
        "UYU",
        "UZS",
        "VES",
        "VND",
        "VUV",
        "WST",
        "XAF",
        "XCD",
        "XCG",
        "XOF",
        "XPF",
        "YER",
        "ZAR",
        "ZMW",
        "ZWG",
    ]
)


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_slug(value: str) -> bool:
    return bool(_SLUG.fullmatch(value))


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError("must be a URL-safe slug: a-z, 0-9, '-' or '_', at most 64 characters")
    return value


def _size(value: str) -> str:
    if value != "fluid" and not _SIZE.fullmatch(value):
        raise ValueError("must be WIDTHxHEIGHT (e.g. 728x90) or 'fluid'")
    return value


def _zone(value: str) -> str:
    if value not in _zones():
        raise ValueError("must be an IANA time zone such as Europe/Paris")
    return value


def _currency(value: str) -> str:
    if value not in CURRENCIES:
        raise ValueError("must be an ISO 4217 currency code such as USD")
    return value


def _host(value: str) -> str:
    value = value.lower()
    if not _HOST.fullmatch(value) or len(value) > 253:
        raise ValueError("must be a host name such as example.com")
    return value


def _email(value: str) -> str:
    if (value and not _EMAIL.fullmatch(value)) or len(value) > 254:
        raise ValueError("must be an e-mail address (or empty)")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    spaced = any(c.isspace() for c in value)
    if parts.scheme not in ("http", "https") or not parts.hostname or spaced:
        raise ValueError("must be an http(s) URL")
    return value


def _https_url(value: str) -> str:
    if urlsplit(_http_url(value)).scheme != "https":
        raise ValueError("must be an https URL")
    return value


def _money(value: str) -> str:
    if not _MONEY.fullmatch(value):
        raise ValueError('must be a decimal string such as "2.50" (at most 6 decimals)')
    return value


#: The largest id a table holds (PostgreSQL's integer); a bigger one names nothing.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
#: A count stored in an integer column.
Count = Annotated[int, Field(ge=1, le=MAX_ID)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Slug = Annotated[str, AfterValidator(_slug)]
Size = Annotated[str, AfterValidator(_size)]
TimeZone = Annotated[str, AfterValidator(_zone)]
Currency = Annotated[str, AfterValidator(_currency)]
Host = Annotated[str, AfterValidator(_host)]
Email = Annotated[str, AfterValidator(_email)]
HttpUrl = Annotated[str, Field(max_length=2048), AfterValidator(_http_url)]
HttpsUrl = Annotated[str, Field(max_length=2048), AfterValidator(_https_url)]
Money = Annotated[str, AfterValidator(_money)]


def micros(value: str) -> int:
    """A checked decimal string (``Money``) in integer micro-units."""
    try:
        return int(Decimal(value).scaleb(6))
    except InvalidOperation as exc:  # unreachable after _money, kept for direct callers
        raise ServiceError(f"not a decimal amount: {value!r}") from exc


def money_string(micro_units: int) -> str:
    """Micro-units as a decimal string with at least two decimals (``"2.50"``)."""
    whole, _, fraction = f"{Decimal(micro_units).scaleb(-6):f}".partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"
