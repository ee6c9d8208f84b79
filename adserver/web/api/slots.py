"""``/v1/manage/slots``: the named places on a site's pages."""

from __future__ import annotations

from adserver.services import slots
from adserver.services.common import Removal
from adserver.web.api.crud import AdminEntity, Wording, admin_operations

PATH = "/v1/manage/slots"

operations = admin_operations(
    AdminEntity(
        path=PATH, item="id:int", ident="slot_id",
        query=slots.SlotQuery, create=slots.SlotCreate, update=slots.SlotUpdate,
        public=slots.SlotPublic, removal=Removal,
        list_items=slots.list_slots, create_item=slots.create_slot, get_item=slots.get_slot,
        update_item=slots.update_slot, delete_item=slots.delete_slot,
        location=lambda slot: slot.id,
    ),
    Wording(
        names=("list_slots", "create_slot", "get_slot", "update_slot", "delete_slot"),
        summaries=(
            "List slots", "Create a slot", "Read a slot", "Change a slot's named fields",
            "Delete a slot, or archive one with statistics",
        ),
    ),
)  # fmt: skip
