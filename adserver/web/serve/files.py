"""Static-like answers: creative images and the tag script, both long-cacheable."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from adserver.services import creatives
from adserver.web.common import error, runtime


async def asset(request: Request) -> Response:
    """A creative's image; its URL carries a version, so browsers may keep it for a year."""
    svc = runtime(request)
    raw = request.path_params["creative_id"]
    # Ids are positive integers of the database's id columns (32 bits on PostgreSQL), spelled
    # in ASCII digits; anything else names no image.
    if not (raw.isascii() and raw.isdigit() and len(raw) < 11 and 0 < int(raw) < 2**31):
        return error(404, "no such image")
    creative_id = int(raw)
    row = await svc.run_db(lambda c: creatives.image(c, creative_id))
    if row is None:
        return error(404, "no such image")
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "ETag": f'"{creative_id}-{row.version}"',
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(
        row.image, media_type=row.image_type or "application/octet-stream", headers=headers
    )


async def tag_js(request: Request) -> Response:
    tag = runtime(request).tag
    if request.headers.get("if-none-match") == tag.etag:
        return Response(status_code=304, headers=tag.headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            tag.gzipped,
            media_type="application/javascript",
            headers={**tag.headers, "Content-Encoding": "gzip"},
        )
    return Response(tag.source, media_type="application/javascript", headers=tag.headers)
