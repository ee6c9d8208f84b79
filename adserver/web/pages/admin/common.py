"""What every /admin page shares: the signed-in admin, reads and writes through the service
layer, forms that keep what was typed, flash messages and the post/redirect/get answer."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from sqlalchemy import Connection
from sqlalchemy.exc import DataError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from adserver.accounts.sessions import SignedInUser
from adserver.services.common import Actor, Removal, parse
from adserver.services.errors import NotFound, ServiceError
from adserver.services.paging import Page, PageQuery
from adserver.web.common import app_of, runtime
from adserver.web.pages.auth import require_user
from adserver.web.pages.flash import add_flash, clear_flashes, read_flashes

T = TypeVar("T")
Endpoint = Callable[[Request], Awaitable[Response]]
_ADMIN = "adserver.admin"

#: The sections of the admin's menu: (section, label, path).
SECTIONS = (
    ("overview", "Overview", "/admin"),
    ("sites", "Sites", "/admin/sites"),
    ("slots", "Slots", "/admin/slots"),
    ("advertisers", "Advertisers", "/admin/advertisers"),
    ("campaigns", "Campaigns", "/admin/campaigns"),
    ("creatives", "Creatives", "/admin/creatives"),
    ("users", "Users", "/admin/users"),
    ("tokens", "API tokens", "/admin/tokens"),
    ("reports", "Reports", "/admin/reports"),
)
#: Admin lists show this many rows a page.
PAGE_SIZE = 50


def now() -> datetime:
    return datetime.now(UTC)


#: What a number typed into a URL or a form may not exceed: the databases' integer columns
#: refuse more (SQLite with OverflowError, PostgreSQL with "out of range").
OUT_OF_RANGE = (OverflowError, DataError)


async def read(request: Request, work: Callable[[Connection], T]) -> T:
    """A read through the service layer, in a worker thread. NotFound is the caller's to
    answer; any other refusal (a list asked to start after an unknown key) is a 4xx page."""
    try:
        return await runtime(request).run_db(work)
    except OUT_OF_RANGE as exc:
        raise HTTPException(400, "a number in this address is too large") from exc
    except NotFound:
        raise
    except ServiceError as exc:
        raise HTTPException(exc.status, exc.message) from exc


async def write(request: Request, work: Callable[[Connection], T]) -> T:
    """A write through the service layer in one transaction (committed when ``work`` returns,
    rolled back when it raises), in a worker thread."""
    engine = runtime(request).engine

    def run() -> T:
        with engine.begin() as connection:
            return work(connection)

    try:
        return await asyncio.to_thread(run)
    except OUT_OF_RANGE as exc:
        raise HTTPException(400, "a number in this form is too large") from exc


def not_found(exc: NotFound) -> HTTPException:
    return HTTPException(404, exc.message)


@dataclass(frozen=True)
class Form:
    """A form's state: what was typed (or stored), and why the service layer refused it."""

    values: Mapping[str, Any]
    errors: Mapping[str, str]
    message: str | None = None
    #: The page's status: 422 for refused fields, 409 or 412 for a clash with stored data.
    status: int = 200

    def __getitem__(self, key: str) -> Any:
        return {"values": self.values, "errors": self.errors}[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.message if key == "message" else default


def blank_form(values: Mapping[str, Any] | None = None) -> Form:
    return Form(dict(values or {}), {})


#: The schema's generic words, said as a person filling a form would put them.
_PLAIN = (
    (re.compile(r"^String should have at least 1 character$"), "must not be empty"),
    (re.compile(r"^Input should be a valid integer.*"), "must be a whole number"),
    (re.compile(r"^Input should be greater than or equal to (\S+)$"), r"must be at least \1"),
    (re.compile(r"^Input should be less than or equal to (\S+)$"), r"must be at most \1"),
    (re.compile(r"^Field required$"), "is required"),
)


def plain(why: str) -> str:
    """The reason in plain words where the schema gave its generic ones."""
    for pattern, words in _PLAIN:
        if pattern.match(why):
            return pattern.sub(words, why)
    return why


def refused(
    values: Mapping[str, Any],
    exc: ServiceError,
    fields: Iterable[str],
    aliases: Mapping[str, str] | None = None,
) -> Form:
    """``values`` again with each of the service layer's field errors placed on the form field
    it concerns: ``goal.total`` on ``goal_total``, ``domains.2`` on ``domains``, a whole
    object's error on the field ``aliases`` names (``goal`` -> ``goal_kind``); an error no field
    shows goes above the form."""
    known = set(fields)
    errors: dict[str, str] = {}
    loose: list[str] = []
    for key, reason in exc.fields.items():
        why = plain(reason)
        if aliases and key in aliases:
            errors.setdefault(aliases[key], why)
            continue
        parts = key.split(".")
        for end in range(len(parts), 0, -1):
            name = "_".join(parts[:end])
            if name in known:
                errors.setdefault(name, why)
                break
        else:
            loose.append(f"{key}: {why}")
    if loose or not exc.fields:
        errors["_form"] = "; ".join(loose) if loose else exc.message
    status = exc.status if exc.status in {409, 412} else 422
    return Form(dict(values), errors, None if exc.fields else exc.message, status)


async def attempt(
    request: Request,
    values: Mapping[str, Any],
    fields: Iterable[str],
    work: Callable[[], Callable[[Connection], T]],
    aliases: Mapping[str, str] | None = None,
) -> T | Form:
    """Check and apply a form: ``work`` parses the payload (raising the service layer's error)
    and gives the write to run in one transaction. The write's result, or the form refused."""
    try:
        return await write(request, work())
    except NotFound as exc:
        raise not_found(exc) from exc
    except ServiceError as exc:
        return refused(values, exc, fields, aliases)


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    """A field left blank means "none"; the schema checks and converts what was typed."""
    return text(form, name) or None


def many(form: FormData, name: str) -> list[str]:
    """Every value of a repeated field (checkboxes, a multiple select)."""
    return [value for value in form.getlist(name) if isinstance(value, str) and value]


def lines(value: str) -> list[str]:
    """A list typed one per line or separated by commas."""
    return [item.strip() for item in value.replace(",", "\n").splitlines() if item.strip()]


def version_of(form: FormData) -> int | None:
    """The version the form was opened at (hidden field), for the service's If-Match check."""
    raw = text(form, "version")
    return int(raw) if raw.isdigit() else None


async def remove(
    request: Request,
    work: Callable[[Connection], Removal],
    *,
    here: str,
    listing: str,
    noun: str,
) -> Response:
    """Archive or delete through the service layer, which decides which (what has statistics
    is archived and stays in every report); back to the object, or to the list once deleted."""
    try:
        removal = await write(request, work)
    except NotFound as exc:
        raise not_found(exc) from exc
    except ServiceError as exc:
        return done(request, here, exc.message, level="error")
    if removal.outcome == "archived":
        return done(request, here, f"{noun} archived: it has statistics, which stay in reports.")
    return done(request, listing, f"{noun} deleted.")


def page_links(request: Request, page: Page[Any]) -> dict[str, str | None]:
    """The pager's links, keeping the list's filters."""
    params = {k: v for k, v in request.query_params.items() if k != "after" and v}
    first = request.url.path + (f"?{urlencode(params)}" if params else "")
    following = None
    if page.next_after is not None:
        following = request.url.path + "?" + urlencode({**params, "after": page.next_after})
    return {
        "first_url": first if request.query_params.get("after") else None,
        "next_url": following,
    }


Q = TypeVar("Q", bound=PageQuery)


def list_query(request: Request, model: type[Q], *names: str) -> tuple[Q, dict[str, str]]:
    """A list's query from the filters ``names`` in the query string (and ``after``), a page of
    ``PAGE_SIZE``; a filter the service layer refuses is a 400 page saying why."""
    chosen = filters(request, *names, "after")
    try:
        return parse(model, {"limit": PAGE_SIZE, **chosen}), chosen
    except ServiceError as exc:
        raise HTTPException(400, exc.message) from exc


def filters(request: Request, *names: str) -> dict[str, str]:
    """The list filters present in the query string, blank ones left out."""
    return {name: value for name in names if (value := request.query_params.get(name, ""))}


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    section: str,
    status_code: int = 200,
) -> Response:
    """An admin page in the layout, with its menu and any flash message waiting for it (the
    CSRF token and the signed-in user come from the templates' context processor)."""
    settings = app_of(request).settings
    flashes = read_flashes(request, secret=settings.secret_key)
    page_context = {"sections": SECTIONS, "section": section, "flashes": flashes, **context}
    response = app_of(request).templates.TemplateResponse(
        request,
        template,
        page_context,
        status_code=status_code,
        headers={"Cache-Control": "private, no-store"},
    )
    if flashes:
        clear_flashes(response)
    return response


def done(request: Request, url: str, message: str, *, level: str = "success") -> Response:
    """After a form succeeds: see the result at ``url`` (303), with ``message`` shown there."""
    settings = app_of(request).settings
    response = RedirectResponse(url, status_code=303)
    add_flash(
        response,
        secret=settings.secret_key,
        level=level,
        text=message,
        secure=settings.base_url.startswith("https://"),
    )
    return response


def admin_only(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` for signed-in admins only: anyone else is sent to /login, or gets a 403
    when signed in with another role (``auth.require_user``). The CSRF token of every POST is
    checked before any route runs (``web.security.PageGuard``)."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        request.scope[_ADMIN] = await require_user(request, role="admin")
        return await endpoint(request)

    return guarded


def actor(request: Request) -> Actor:
    """The signed-in admin, as the change history records who acted."""
    user: SignedInUser = request.scope[_ADMIN]
    return Actor("user", user.user_id, user.email)
