"""``/v1/manage/campaigns``: an advertiser token reads only its own advertiser's campaigns."""

from __future__ import annotations

from adserver.services import campaigns
from adserver.services.common import Removal
from adserver.web.api.crud import AdminEntity, Wording, admin_operations

PATH = "/v1/manage/campaigns"

operations = admin_operations(
    AdminEntity(
        path=PATH, item="id:int", ident="campaign_id", scoped=True,
        query=campaigns.CampaignQuery, create=campaigns.CampaignCreate,
        update=campaigns.CampaignUpdate, public=campaigns.CampaignPublic, removal=Removal,
        list_items=campaigns.list_campaigns, create_item=campaigns.create_campaign,
        get_item=campaigns.get_campaign, update_item=campaigns.update_campaign,
        delete_item=campaigns.delete_campaign,
        location=lambda campaign: campaign.id,
    ),
    Wording(
        names=(
            "list_campaigns", "create_campaign", "get_campaign", "update_campaign",
            "delete_campaign",
        ),
        summaries=(
            "List campaigns (an advertiser token: its own)",
            "Create a campaign",
            "Read a campaign",
            "Change a campaign's named fields (goal, targeting, frequency_cap replaced whole)",
            "Delete a campaign that never delivered, or archive one with statistics",
        ),
        create_errors=(401, 403, 422),
    ),
)  # fmt: skip
