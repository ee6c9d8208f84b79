"""Creatives: the service functions for creatives (their images and landing URLs included)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from adserver.core.models import Creative, table

CREATIVES = table(Creative)


def landing_url(connection: Connection, creative_id: int) -> str | None:
    """The stored landing URL of a creative, whatever its status (a click on an ad shown before
    it was paused still lands), or None if there is no such creative."""
    url = connection.execute(
        select(CREATIVES.c.click_url).where(CREATIVES.c.id == creative_id)
    ).scalar()
    return str(url) if url else None


def image(connection: Connection, creative_id: int) -> Any | None:
    """The creative's image bytes and media type (``.image``, ``.image_type``), or None."""
    row = connection.execute(
        select(CREATIVES.c.image, CREATIVES.c.image_type).where(CREATIVES.c.id == creative_id)
    ).first()
    return None if row is None or row.image is None else row
