"""``GET /v1/docs``: the OpenAPI document as a readable page, rendered on the server from the
same document (no script, nothing from a CDN): each operation with its parameters, body,
answers and who may call it, then every schema with its fields."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from adserver.web.api.openapi import document_bytes
from adserver.web.api.registry import Operation
from adserver.web.common import app_of

METHODS = ("get", "post", "put", "patch", "delete", "options")


def schema_text(schema: dict[str, Any]) -> str:
    """A schema in a few words: ``integer``, ``string (date-time)``, ``list of Site``..."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    if "anyOf" in schema:
        return " or ".join(schema_text(option) for option in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(orjson.dumps(value).decode() for value in schema["enum"])
    if "const" in schema:
        return orjson.dumps(schema["const"]).decode()
    kind = schema.get("type", "any")
    if kind == "array":
        return "list of " + schema_text(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "object of " + schema_text(schema["additionalProperties"])
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def limits(schema: dict[str, Any]) -> str:
    """The bounds a schema sets, for the reader of the docs."""
    words = []
    for key, label in (
        ("minimum", "at least"), ("maximum", "at most"), ("minLength", "at least"),
        ("maxLength", "at most"), ("minItems", "at least"), ("maxItems", "at most"),
        ("pattern", "matching"),
    ):  # fmt: skip
        if key in schema:
            unit = " characters" if "Length" in key else " items" if "Items" in key else ""
            words.append(f"{label} {schema[key]}{unit}")
    if "default" in schema and schema["default"] is not None:
        words.append(f"default {orjson.dumps(schema['default']).decode()}")
    return ", ".join(words)


def _groups(document: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                entry = {"method": method.upper(), "path": path, **operation}
                groups.setdefault(operation["tags"][0], []).append(entry)
    return list(groups.items())


async def docs_page(request: Request) -> Response:
    app = app_of(request)
    document = orjson.loads(document_bytes(app.settings.base_url))
    context = {
        "document": document,
        "groups": _groups(document),
        "schemas": sorted(document["components"]["schemas"].items()),
        "schema_text": schema_text,
        "limits": limits,
    }
    return app.templates.TemplateResponse(
        request, "apidocs/index.html", context, headers={"Cache-Control": "public, max-age=300"}
    )


operations = [
    Operation(
        "GET", "/v1/docs", "docs", "The API reference as a page", docs_page, auth="none",
        media=("text/html",),
    ),
]  # fmt: skip
