"""What every entity module of the service layer shares: who acts, strict input schemas (with
the field types of ``fields``), versions (ETag / If-Match), and the inventory bump every write
makes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Connection, CursorResult, Table, select, update

from adserver.accounts.principal import Principal
from adserver.core.db import bump_for_edit
from adserver.core.models import Event, HourlyStat, InvalidStat, table
from adserver.services.errors import NotFound, PreconditionFailed, ServiceError
from adserver.services.fields import (
    CURRENCIES,
    MAX_ID,
    Count,
    Currency,
    Email,
    Host,
    HttpsUrl,
    HttpUrl,
    Id,
    Money,
    Name,
    Size,
    Slug,
    TimeZone,
    is_slug,
    micros,
    money_string,
)

#: What this module offers, the shared field types of ``fields`` among it.
__all__ = [
    "CURRENCIES",
    "MAX_ID",
    "SYSTEM",
    "Actor",
    "Count",
    "Currency",
    "Email",
    "Host",
    "HttpUrl",
    "HttpsUrl",
    "Id",
    "M",
    "Money",
    "Name",
    "Public",
    "Removal",
    "Schema",
    "Size",
    "Slug",
    "TimeZone",
    "bump_inventory",
    "check_version",
    "etag",
    "expected_version",
    "fetch_row",
    "has_statistics",
    "history_view",
    "inserted_id",
    "is_slug",
    "micros",
    "money_string",
    "named",
    "parse",
    "valid_id",
    "write_version",
]

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
) -> Any:
    """Apply ``values`` to ``row`` if it is still at the version the caller read (compare and
    set in one statement, so two writers can never both win); the row as written, returned by
    the same statement, so that a caller need not read it again."""
    check_version(row, expected)
    written = connection.execute(
        update(table)
        .where(table.c.id == row.id, table.c.version == row.version)
        .values(**values, version=row.version + 1, updated_at=now)
        .returning(*table.c)
    ).first()
    if written is None:
        raise PreconditionFailed("this object changed while it was being written: try again")
    bump_inventory(connection)
    return written


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
