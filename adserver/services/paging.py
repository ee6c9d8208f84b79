"""Lists ordered by id, a page at a time: ``?limit=`` (default 100, at most 1,000) and
``?after=ID``, with where the next page starts while more remain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import Field
from sqlalchemy import Column, Connection, Select

from adserver.services.common import Schema

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class PageQuery(Schema):
    """The paging part of every list query (a query has no read-only fields)."""

    read_only = frozenset()

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: int | None = Field(default=None, ge=0, le=2**31 - 1)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``next_after`` is the ``after`` of the next page, None at the end."""

    items: list[T]
    next_after: str | None


def fetch_page(
    connection: Connection,
    query: Select[Any],
    id_column: Column[Any],
    *,
    limit: int,
    after: int | None,
    build: Callable[[Any], T],
    cursor: Callable[[Any], str] = lambda row: str(row.id),
) -> Page[T]:
    """Run ``query`` ordered by ``id_column`` after ``after``, one row more than the page to
    know whether another page follows."""
    if after is not None:
        query = query.where(id_column > after)
    rows = connection.execute(query.order_by(id_column).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([build(row) for row in rows], cursor(rows[-1]) if more and rows else None)
