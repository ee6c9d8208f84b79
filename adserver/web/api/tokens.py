"""``/v1/manage/tokens``: API tokens (admin tokens only); the secret only in the creation's
answer, and DELETE revokes."""

from __future__ import annotations

from adserver.services import tokens
from adserver.web.api.crud import AdminEntity, Wording, admin_operations

PATH = "/v1/manage/tokens"

operations = admin_operations(
    AdminEntity(
        path=PATH, item="id:int", ident="token_id",
        query=tokens.TokenQuery, create=tokens.TokenCreate, update=tokens.TokenUpdate,
        public=tokens.TokenPublic, removal=tokens.TokenRemoval, created=tokens.TokenCreated,
        list_items=tokens.list_tokens, create_item=tokens.create_token,
        get_item=tokens.get_token, update_item=tokens.update_token,
        delete_item=tokens.revoke_token,
        location=lambda token: token.id,
    ),
    Wording(
        names=("list_tokens", "create_token", "get_token", "update_token", "revoke_token"),
        summaries=(
            "List API tokens (never their secrets)",
            "Create an API token: its secret is in this answer only",
            "Read an API token",
            "Rename an API token",
            "Revoke an API token, at once in every process",
        ),
        create_errors=(401, 403, 422),
    ),
)  # fmt: skip
