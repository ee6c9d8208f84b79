"""The JSON API for programs, behind bearer tokens: one module per resource."""

from __future__ import annotations

from adserver.web.api import stats

routes = [*stats.routes]
