"""What every entity module of the service layer shares: who acts, strict input schemas and
their field checks, versions (ETag / If-Match), and the inventory bump every write makes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, CursorResult, Table, select, update

from adserver.accounts.principal import Principal
from adserver.core.db import bump_for_edit
from adserver.core.models import Event, HourlyStat, InvalidStat, table
from adserver.services.errors import NotFound, PreconditionFailed, ServiceError

M = TypeVar("M", bound="Schema")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, as the change history records it: a ``user``, a ``token`` or the
    ``system`` (the command line, the demo data)."""

    kind: str
    id: int | None
    name: str

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        """The signed-in user or the token behind a request."""
        if principal.user_id is not None:
            return cls("user", principal.user_id, principal.name)
        return cls("token", principal.token_id, principal.name)


SYSTEM = Actor("system", None, "adserver")


class Schema(BaseModel):
    """Base of every input schema: unknown fields refused, strings trimmed.

    ``read_only`` names fields an answer shows that a write may not set; ``immutable`` names
    fields set at creation that never change (an update naming them is a 422 saying so)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    read_only: ClassVar[frozenset[str]] = frozenset({"id", "version", "created_at", "updated_at"})
    immutable: ClassVar[frozenset[str]] = frozenset()
    #: Fields that may be given as null (the others, when named, need a value).
    nullable: ClassVar[frozenset[str]] = frozenset()


class Public(BaseModel):
    """Base of every answer schema; ``version`` is what the ETag carries."""

    model_config = ConfigDict(extra="forbid")


def parse(model: type[M], data: object) -> M:
    """``data`` (a decoded JSON body or form) checked against ``model``; every bad field is
    named in one 422, with read-only, immutable and unknown fields told apart."""
    if not isinstance(data, Mapping):
        raise ServiceError("the body must be a JSON object")
    fields: dict[str, str] = dict(_nul_characters(data))
    for name in data:
        key = str(name)
        if key in model.immutable:
            fields[key] = "cannot change after creation"
        elif key in model.read_only:
            fields[key] = "is read-only"
        elif key not in model.model_fields:
            fields[key] = "unknown field"
        elif data[name] is None and key not in model.nullable:
            fields[key] = "may not be null"
    try:
        parsed = model.model_validate(dict(data))
    except ValidationError as exc:
        for problem in exc.errors():
            # Union branches add parts such as "literal['']": the field's path is the rest.
            path = [str(p) for p in problem["loc"] if not _BRANCH.search(str(p))]
            key = ".".join(path) or "body"
            top = str(problem["loc"][0]) if problem["loc"] else key
            if top in fields or key in fields:
                continue
            fields.setdefault(key, _message(problem["msg"]))
        parsed = None
    if fields:
        raise ServiceError(_summary(fields), fields)
    assert parsed is not None
    return parsed


def _nul_characters(value: object, path: str = "") -> list[tuple[str, str]]:
    """Fields holding a NUL character: no database stores one in text, and no name needs it."""
    if isinstance(value, str):
        return [(path or "body", "may not contain NUL characters")] if "\x00" in value else []
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return []
    found = []
    for key, item in items:
        if "\x00" in key:
            found.append((path or "body", "may not contain NUL characters"))
        found += _nul_characters(item, f"{path}.{key}" if path else key)
    return found


def named(data: Schema) -> dict[str, Any]:
    """The fields an update names, with their values: PATCH replaces exactly those (``parse``
    has refused null where a field needs a value)."""
    return {name: getattr(data, name) for name in data.model_fields_set}


class Removal(Public):
    """The answer to a DELETE: what happened to the object."""

    entity: str
    id: str
    #: ``deleted`` (nothing referred to it) or ``archived`` (kept, with its statistics).
    outcome: Literal["deleted", "archived"]


def history_view(public: Public) -> dict[str, Any]:
    """An answer as the change history keeps it (without its own bookkeeping)."""
    return public.model_dump(mode="json", exclude={"version", "updated_at", "created_at"})


_BRANCH = re.compile(r"[\[(]")


def _message(text: str) -> str:
    return text.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _summary(fields: Mapping[str, str]) -> str:
    return (
        "invalid "
        + ", ".join(sorted(fields))
        + ": "
        + "; ".join(f"{k} {v}" for k, v in sorted(fields.items()))
    )


# Field checks, shared by the schemas of every entity.

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


# Versions: the ETag of an entity is its version, which every write bumps.


def etag(version: int) -> str:
    return f'"v{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header requires, or None when there is none (or ``*``).
    A value that cannot be ours is a version that does not match."""
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.split(",")[0].strip().removeprefix("W/").strip('"')
    if tag.startswith("v") and tag[1:].isdigit():
        return int(tag[1:])
    raise PreconditionFailed("If-Match does not name a version of this object")


def fetch_row(connection: Connection, table: Table, entity: str, **where: Any) -> Any:
    """The row matching ``where``, or NotFound naming the entity (an id no table can hold
    included)."""
    if not valid_id(where.get("id", 1)) or not is_slug(where.get("key", "x")):
        raise NotFound(f"no such {entity}")
    query = select(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    row = connection.execute(query).first()
    if row is None:
        raise NotFound(f"no such {entity}")
    return row


def valid_id(value: object) -> bool:
    return isinstance(value, int) and 1 <= value <= MAX_ID


def check_version(row: Any, expected: int | None) -> None:
    if expected is not None and row.version != expected:
        raise PreconditionFailed(
            f"this object changed since version {expected} (now {row.version}): "
            "read it again and reapply your change"
        )


def write_version(
    connection: Connection,
    table: Table,
    row: Any,
    values: Mapping[str, Any],
    *,
    expected: int | None,
    now: datetime,
) -> int:
    """Apply ``values`` to ``row`` if it is still at the version the caller read (compare and
    set in one statement, so two writers can never both win); the new version."""
    check_version(row, expected)
    result = connection.execute(
        update(table)
        .where(table.c.id == row.id, table.c.version == row.version)
        .values(**values, version=row.version + 1, updated_at=now)
    )
    if result.rowcount != 1:
        raise PreconditionFailed("this object changed while it was being written: try again")
    bump_inventory(connection)
    return int(row.version) + 1


def inserted_id(result: CursorResult[Any]) -> int:
    """The id an ``INSERT`` made."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def bump_inventory(connection: Connection) -> None:
    """Every management write tells all serving processes to rebuild (within ~1 s). Call it
    before recording the change: the counter's row lock then orders the history's ids as the
    transactions commit, which lets a process re-read only the entities named since its
    snapshot."""
    bump_for_edit(connection)


def has_statistics(connection: Connection, column: str, value: int) -> bool:
    """Whether any event or statistic names ``column`` = ``value`` (e.g. ``campaign_id``):
    such an entity is archived, never deleted, so it stays in every report under its name."""
    for model in (HourlyStat, InvalidStat, Event):
        rows = table(model)
        found = select(rows.c[column]).where(rows.c[column] == value).limit(1)
        if connection.execute(found).first():
            return True
    return False
