"""``/v1/manage/sites``: a publisher's sites; a site's id in paths is its key."""

from __future__ import annotations

from adserver.services import sites
from adserver.services.common import Removal
from adserver.web.api.crud import AdminEntity, Wording, admin_operations

PATH = "/v1/manage/sites"

operations = admin_operations(
    AdminEntity(
        path=PATH, item="key", ident="key",
        query=sites.SiteQuery, create=sites.SiteCreate, update=sites.SiteUpdate,
        public=sites.SitePublic, removal=Removal,
        list_items=sites.list_sites, create_item=sites.create_site, get_item=sites.get_site,
        update_item=sites.update_site, delete_item=sites.delete_site,
        location=lambda site: site.key,
    ),
    Wording(
        names=("list_sites", "create_site", "get_site", "update_site", "delete_site"),
        summaries=(
            "List sites", "Create a site", "Read a site", "Change a site's named fields",
            "Delete a site, or archive one with statistics",
        ),
    ),
)  # fmt: skip
