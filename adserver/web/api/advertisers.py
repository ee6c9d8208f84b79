"""``/v1/manage/advertisers``: an advertiser token reads only its own advertiser."""

from __future__ import annotations

from adserver.services import advertisers
from adserver.services.common import Removal
from adserver.web.api.crud import AdminEntity, Wording, admin_operations

PATH = "/v1/manage/advertisers"

operations = admin_operations(
    AdminEntity(
        path=PATH, item="id:int", ident="advertiser_id", scoped=True,
        query=advertisers.AdvertiserQuery, create=advertisers.AdvertiserCreate,
        update=advertisers.AdvertiserUpdate, public=advertisers.AdvertiserPublic,
        removal=Removal,
        list_items=advertisers.list_advertisers, create_item=advertisers.create_advertiser,
        get_item=advertisers.get_advertiser, update_item=advertisers.update_advertiser,
        delete_item=advertisers.delete_advertiser,
        location=lambda advertiser: advertiser.id,
    ),
    Wording(
        names=(
            "list_advertisers", "create_advertiser", "get_advertiser", "update_advertiser",
            "delete_advertiser",
        ),
        summaries=(
            "List advertisers (an advertiser token: its own)",
            "Create an advertiser",
            "Read an advertiser",
            "Change an advertiser's named fields",
            "Delete an advertiser, or archive one with campaigns, users or tokens (and its "
            "campaigns)",
        ),
        update_errors=(401, 403, 404, 409, 412, 422),
    ),
)  # fmt: skip
