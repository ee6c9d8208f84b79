"""The demo pages: a local-news article carrying the three demo slots, and the ads' landing page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from adserver.demo.data import ADVERTISERS, SITE_KEY, SITE_NAME
from adserver.web.common import app_of


async def demo_article(request: Request) -> Response:
    """The article as a Blogger post would carry it: the tag once, an <ins> per slot."""
    context = {
        "base_url": app_of(request).settings.base_url,
        "site_key": SITE_KEY,
        "site_name": SITE_NAME,
    }
    return app_of(request).templates.TemplateResponse(request, "demo/article.html", context)


async def demo_redirect(request: Request) -> Response:
    return RedirectResponse(request.url_for("demo_article").path, status_code=308)


async def demo_landing(request: Request) -> Response:
    """Where a demo ad's click lands; names only advertisers it knows, never echoes the query."""
    advertiser = ADVERTISERS.get(request.query_params.get("ad", ""))
    context = {"advertiser": advertiser, "site_name": SITE_NAME}
    return app_of(request).templates.TemplateResponse(request, "demo/landing.html", context)


routes = [
    Route("/demo", demo_redirect, methods=["GET"], name="demo_redirect"),
    Route("/demo/", demo_article, methods=["GET"], name="demo_article"),
    Route("/demo/landing", demo_landing, methods=["GET"], name="demo_landing"),
]
