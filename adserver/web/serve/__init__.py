"""The hot lane: decides, beacons, clicks, the iframe slot, creative images and the tag.

Its speed tricks (the fast lane, pre-rendered answers, header scans) live here and nowhere else.
"""

from __future__ import annotations

from starlette.routing import Route

from adserver.web.serve.decide import decide_endpoint, decide_preflight
from adserver.web.serve.events import beacon_endpoint, click_endpoint
from adserver.web.serve.files import asset, tag_js
from adserver.web.serve.frame import slot_frame

routes = [
    Route("/v1/decide", decide_endpoint, methods=["GET", "POST"], name="decide"),
    Route("/v1/decide", decide_preflight, methods=["OPTIONS"], name="decide_preflight"),
    Route("/v1/imp/{token}", beacon_endpoint, methods=["GET", "POST"], name="impression"),
    Route("/v1/view/{token}", beacon_endpoint, methods=["GET", "POST"], name="view"),
    Route("/v1/click/{token}", click_endpoint, methods=["GET"], name="click"),
    Route("/v1/slot/{site}/{slot}.html", slot_frame, methods=["GET"], name="slot_frame"),
    Route("/v1/asset/{creative_id}", asset, methods=["GET"], name="asset"),
    Route("/tag.js", tag_js, methods=["GET"], name="tag"),
]
