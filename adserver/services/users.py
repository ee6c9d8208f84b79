"""Users: the people who sign in to the pages, admins or one advertiser's staff.

A user is created without a password: it sets one through an invitation link (or the operator
gives one on the command line). Answers never carry the password hash, only whether one is set.
Disabling a user, deleting it or giving it a new password ends all of its sessions at once. A
user the change history names as having acted is disabled, never deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import Connection, delete, func, insert, select, update

from adserver.accounts import links
from adserver.accounts.passwords import WeakPassword, hash_password, verify_password
from adserver.accounts.sessions import end_user_sessions
from adserver.core.models import Advertiser, User, table
from adserver.services import history
from adserver.services.common import (
    Actor,
    Email,
    Public,
    Schema,
    check_version,
    fetch_row,
    history_view,
    inserted_id,
    named,
)
from adserver.services.errors import Conflict, PreconditionFailed, ServiceError, invalid
from adserver.services.paging import Page, PageQuery, fetch_page

USERS = table(User)
ADVERTISERS = table(Advertiser)
ENTITY = "user"

Role = Literal["admin", "advertiser"]
#: At most one reset link a minute per user.
RESET_EVERY = timedelta(minutes=1)


#: A password is never read or written through these schemas (invitations and the command line
#: set it), nor is the hash ever shown.
_READ_ONLY = Schema.read_only | {"has_password", "password", "password_hash"}


class UserCreate(Schema):
    read_only = _READ_ONLY
    nullable = frozenset({"advertiser"})

    email: Email = Field(max_length=254)
    role: Role
    #: The advertiser an advertiser user works for (required for that role, refused for admins).
    advertiser: int | None = Field(default=None, ge=1)
    active: bool = True


class UserUpdate(Schema):
    read_only = _READ_ONLY
    nullable = frozenset({"advertiser"})

    email: Email | None = Field(default=None, max_length=254)
    role: Role | None = None
    advertiser: int | None = Field(default=None, ge=1)
    active: bool | None = None


class UserPublic(Public):
    id: int
    email: str
    role: str
    advertiser: int | None
    active: bool
    #: Whether the user has set a password (the hash itself is never shown).
    has_password: bool
    version: int
    created_at: datetime
    updated_at: datetime


class UserRemoval(Public):
    """The answer to deleting a user: ``disabled`` when the change history names it."""

    entity: Literal["user"] = "user"
    id: str
    outcome: Literal["deleted", "disabled"]


class UserQuery(PageQuery):
    role: Role | None = None
    advertiser: int | None = Field(default=None, ge=1)
    status: Literal["active", "disabled"] | None = None


def _check_role(role: str, advertiser: int | None) -> None:
    if role == "advertiser" and advertiser is None:
        raise invalid("advertiser", "an advertiser user needs an advertiser")
    if role == "admin" and advertiser is not None:
        raise invalid("advertiser", "an admin belongs to no advertiser")


def public(row: Any) -> UserPublic:
    return UserPublic(
        id=row.id,
        email=row.email,
        role=row.role,
        advertiser=row.advertiser_id,
        active=row.active,
        has_password=bool(row.password_hash),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def list_users(connection: Connection, *, query: UserQuery) -> Page[UserPublic]:
    statement = select(USERS)
    if query.role is not None:
        statement = statement.where(USERS.c.role == query.role)
    if query.advertiser is not None:
        statement = statement.where(USERS.c.advertiser_id == query.advertiser)
    if query.status is not None:
        statement = statement.where(USERS.c.active == (query.status == "active"))
    return fetch_page(
        connection, statement, USERS.c.id, limit=query.limit, after=query.after, build=public
    )


def get_user(connection: Connection, *, user_id: int) -> UserPublic:
    return public(fetch_row(connection, USERS, ENTITY, id=user_id))


def find_user(connection: Connection, *, email: str) -> UserPublic | None:
    """The user with this e-mail address (any case), or None."""
    row = connection.execute(
        select(USERS).where(func.lower(USERS.c.email) == email.strip().lower())
    ).first()
    return None if row is None else public(row)


def _require_advertiser(connection: Connection, advertiser_id: int | None) -> None:
    if advertiser_id is None:
        return
    found = connection.execute(
        select(ADVERTISERS.c.id).where(ADVERTISERS.c.id == advertiser_id)
    ).first()
    if found is None:
        raise invalid("advertiser", "no such advertiser")


def _email_free(connection: Connection, email: str, user_id: int | None = None) -> None:
    taken = find_user(connection, email=email)
    if taken is not None and taken.id != user_id:
        raise Conflict(f"a user {email!r} exists already", {"email": "is already in use"})


def create_user(
    connection: Connection,
    *,
    data: UserCreate,
    actor: Actor,
    now: datetime,
    password: str | None = None,
) -> UserPublic:
    """Add a user, without a password unless the operator gives one (``password``)."""
    email = data.email.lower()
    _check_role(data.role, data.advertiser)
    _email_free(connection, email)
    _require_advertiser(connection, data.advertiser)
    password_hash = _hash_or_422(password) if password is not None else ""
    user_id = inserted_id(
        connection.execute(
            insert(USERS).values(
                email=email,
                role=data.role,
                advertiser_id=data.advertiser,
                active=data.active,
                password_hash=password_hash,
                created_at=now,
                updated_at=now,
            )
        )
    )
    user = get_user(connection, user_id=user_id)
    _record(connection, actor, user_id, "create", None, history_view(user), now)
    return user


def update_user(
    connection: Connection,
    *,
    user_id: int,
    data: UserUpdate,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
) -> UserPublic:
    """Change the named fields; a user disabled or moved to another role or advertiser is
    signed out everywhere."""
    row = fetch_row(connection, USERS, ENTITY, id=user_id)
    values = named(data)
    if "advertiser" in values:
        values["advertiser_id"] = values.pop("advertiser")
    if "email" in values:
        values["email"] = values["email"].lower()
        _email_free(connection, values["email"], user_id)
    role = values.get("role", row.role)
    advertiser = values.get("advertiser_id", row.advertiser_id)
    if role == "admin" and "role" in values and "advertiser_id" not in values:
        advertiser = values["advertiser_id"] = None
    _check_role(role, advertiser)
    _require_advertiser(connection, advertiser)
    _write(connection, row, values, expected_version, now)
    user = get_user(connection, user_id=user_id)
    if not user.active or (role, advertiser) != (row.role, row.advertiser_id):
        end_user_sessions(connection, user_id=user_id)
        if not user.active:
            links.void_links(connection, user_id=user_id)
    _record(
        connection, actor, user_id, "update", history_view(public(row)), history_view(user), now
    )
    return user


def delete_user(
    connection: Connection,
    *,
    user_id: int,
    expected_version: int | None,
    actor: Actor,
    now: datetime,
) -> UserRemoval:
    """Delete a user nothing names; disable one the change history names as having acted."""
    row = fetch_row(connection, USERS, ENTITY, id=user_id)
    check_version(row, expected_version)
    before = history_view(public(row))
    end_user_sessions(connection, user_id=user_id)
    links.void_links(connection, user_id=user_id)
    if history.names_actor(connection, kind="user", actor_id=user_id):
        if row.active:
            _write(connection, row, {"active": False}, expected_version, now)
        outcome: Literal["deleted", "disabled"] = "disabled"
        after: dict[str, Any] | None = history_view(get_user(connection, user_id=user_id))
    else:
        connection.execute(delete(USERS).where(USERS.c.id == user_id))
        outcome, after = "deleted", None
    action = "archive" if outcome == "disabled" else "delete"
    _record(connection, actor, user_id, action, before, after, now)
    return UserRemoval(id=str(user_id), outcome=outcome)


def set_password(
    connection: Connection, *, user_id: int, password: str, actor: Actor, now: datetime
) -> UserPublic:
    """Give a user a new password (checked for strength: a 422 on ``password``), ending every
    session it had and voiding its outstanding links."""
    row = fetch_row(connection, USERS, ENTITY, id=user_id)
    return _store_password(connection, row, _hash_or_422(password), actor, now)


def change_password(
    connection: Connection, *, user_id: int, current: str, new: str, now: datetime
) -> UserPublic:
    """A signed-in user's own change: the current password must match (a 422 on
    ``current_password`` otherwise). Every session of the user ends, this one included."""
    row = fetch_row(connection, USERS, ENTITY, id=user_id)
    if not verify_password(row.password_hash or None, current):
        raise invalid("current_password", "is not your current password")
    if current == new:
        raise invalid("password", "choose a password different from the current one")
    return _store_password(
        connection, row, _hash_or_422(new), Actor("user", row.id, row.email), now
    )


def _store_password(
    connection: Connection, row: Any, password_hash: str, actor: Actor, now: datetime
) -> UserPublic:
    _write(connection, row, {"password_hash": password_hash}, None, now)
    end_user_sessions(connection, user_id=row.id)
    links.void_links(connection, user_id=row.id)
    before = {"password": "set" if row.password_hash else "none"}
    _record(connection, actor, row.id, "update", before, {"password": "changed"}, now)
    return get_user(connection, user_id=row.id)


def issue_link(
    connection: Connection, *, user_id: int, purpose: links.Purpose, now: datetime
) -> str:
    """A single-use link token for an active user to set a password (invitation or reset)."""
    row = fetch_row(connection, USERS, ENTITY, id=user_id)
    if not row.active:
        raise ServiceError("this user is disabled; enable it before inviting it again")
    return links.issue_link(connection, user_id=user_id, purpose=purpose, now=now)


def invite_user(
    connection: Connection, *, data: UserCreate, actor: Actor, now: datetime
) -> tuple[UserPublic, str]:
    """Add a user without a password, with a single-use invitation link token to set one."""
    user = create_user(connection, data=data, actor=actor, now=now)
    return user, links.issue_link(connection, user_id=user.id, purpose="invite", now=now)


def request_reset(
    connection: Connection, *, email: str, now: datetime
) -> tuple[UserPublic, str] | None:
    """A password-reset link token for the active user with this e-mail address; None when
    there is no such user, or one was made for it within the last minute (so the form cannot
    be used to flood a mailbox). The caller answers the same either way."""
    user = find_user(connection, email=email)
    if user is None or not user.active:
        return None
    since = now - RESET_EVERY
    if links.issued_since(connection, user_id=user.id, purpose="reset", since=since):
        return None
    return user, links.issue_link(connection, user_id=user.id, purpose="reset", now=now)


def redeem_link(
    connection: Connection,
    *,
    token: str,
    purpose: links.Purpose,
    password: str,
    now: datetime,
) -> UserPublic | None:
    """Set the password of the user a usable link is for, using the link up; None when the
    link is unknown, expired or used (nothing changes then). A weak password is a 422 and
    leaves the link usable."""
    user_id = links.link_user(connection, token=token, purpose=purpose, now=now)
    if user_id is None:
        return None
    password_hash = _hash_or_422(password)
    if links.redeem_link(connection, token=token, purpose=purpose, now=now) != user_id:
        return None
    row = fetch_row(connection, USERS, ENTITY, id=user_id)
    if not row.active:
        return None
    return _store_password(connection, row, password_hash, Actor("user", row.id, row.email), now)


def _hash_or_422(password: str) -> str:
    try:
        return hash_password(password)
    except WeakPassword as exc:
        raise invalid("password", str(exc)) from exc


def _write(
    connection: Connection,
    row: Any,
    values: dict[str, Any],
    expected: int | None,
    now: datetime,
) -> None:
    """Compare and set on the version read, so of two concurrent writers one gets a 412."""
    check_version(row, expected)
    done = connection.execute(
        update(USERS)
        .where(USERS.c.id == row.id, USERS.c.version == row.version)
        .values(**values, version=row.version + 1, updated_at=now)
    ).rowcount
    if done != 1:
        raise PreconditionFailed("this user changed while it was being written: try again")


def _record(
    connection: Connection,
    actor: Actor,
    user_id: int,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    history.record(
        connection,
        actor=actor,
        entity=ENTITY,
        entity_id=user_id,
        action=action,
        before=before,
        after=after,
        now=now,
    )
