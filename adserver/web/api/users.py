"""``/v1/manage/users``: the people who sign in (admin tokens only). Never a password hash."""

from __future__ import annotations

from adserver.services import users
from adserver.web.api.crud import AdminEntity, Wording, admin_operations

PATH = "/v1/manage/users"

operations = admin_operations(
    AdminEntity(
        path=PATH, item="id:int", ident="user_id",
        query=users.UserQuery, create=users.UserCreate, update=users.UserUpdate,
        public=users.UserPublic, removal=users.UserRemoval,
        list_items=users.list_users, create_item=users.create_user, get_item=users.get_user,
        update_item=users.update_user, delete_item=users.delete_user,
        location=lambda user: user.id,
    ),
    Wording(
        names=("list_users", "create_user", "get_user", "update_user", "delete_user"),
        summaries=(
            "List users",
            "Create a user (without a password: it sets one through an invitation)",
            "Read a user",
            "Change a user's named fields (disabling it ends its sessions)",
            "Delete a user, or disable one the change history names",
        ),
        update_errors=(401, 403, 404, 409, 412, 422),
    ),
)  # fmt: skip
