"""``GET /v1/openapi.json``: the OpenAPI 3.1 document of every /v1 route, generated from the
route table (the management operations and ``described``) and their pydantic models; nothing
in it is written by hand.

Each operation gets its parameters (path, query, ``If-Match``), its body, its answers with
their headers (``ETag``, ``Location``, ``Link``), the contract's error shape for every error
status it may give, and its security: a bearer token (``adserver token create``) for the
management and statistics API, none for what pages and readers' browsers call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import Response

from adserver.web.api.manage import MAX_ID
from adserver.web.api.registry import Operation
from adserver.web.common import JSONBytes, app_of

VERSION = "1"
REF = "#/components/schemas/{model}"
#: Statuses any request may get before a route reads it (web.guard): a bad host or length,
#: a body, target or headers too large.
TRANSPORT_ERRORS = (400, 413, 414, 431)
STATUS_TEXT = {
    200: "OK", 201: "Created", 204: "No content", 302: "Redirect to the landing page",
    304: "Not modified", 400: "Bad request", 401: "No valid bearer token",
    403: "Not allowed for this token (or origin)", 404: "Not found (or not yours)",
    409: "Conflicts with stored data", 410: "Expired", 412: "Changed since the If-Match version",
    413: "Body too large", 414: "Target too long", 422: "Invalid fields, each named",
    429: "Too many requests", 431: "Headers too large", 503: "Unavailable for now",
}  # fmt: skip
BODYLESS = frozenset((204, 302, 304))
_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'The contract\'s error shape: {"error": message, "fields": {field: why}}.',
    "properties": {
        "error": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["error"],
}


def build_document(operations: Sequence[Operation], *, server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``."""
    schemas, refs = _schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        path, path_params = _path(operation.path)
        paths.setdefault(path, {})[operation.method.lower()] = _operation(
            operation, path_params, schemas, refs
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "adserver",
            "version": VERSION,
            "description": "Decide, beacons, the management API and statistics. "
            'Every error answer is JSON {"error": ...} (422s name each field) unless noted.',
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": {**schemas, "Error": ERROR_SCHEMA},
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `adserver token create` or "
                    "/v1/manage/tokens: an admin token manages everything, an advertiser "
                    "token reads its own advertiser's objects and statistics.",
                }
            },
        },
    }


def _models(operation: Operation) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    if operation.query is not None:
        found.append((operation.query, "validation"))
    if operation.body is not None:
        found.append((operation.body, "validation"))
    if operation.response is not None:
        found.append((operation.response, "serialization"))
    return found


def _schemas(
    operations: Sequence[Operation],
) -> tuple[dict[str, Any], dict[tuple[type[BaseModel], str], dict[str, Any]]]:
    wanted = list(dict.fromkeys(m for op in operations for m in _models(op)))
    refs, definitions = models_json_schema(wanted, ref_template=REF)
    return dict(definitions.get("$defs", {})), dict(refs)  # type: ignore[arg-type]


def _path(path: str) -> tuple[str, list[dict[str, Any]]]:
    """Starlette's path (``{id:int}``) as OpenAPI's (``{id}``), with its parameters."""
    params = []
    for name, convertor in _PARAM.findall(path):
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if convertor == "int":
            schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return _PARAM.sub(r"{\1}", path), params


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return schemas[ref.rsplit("/", 1)[1]] if ref else schema


def _query(
    operation: Operation, schemas: dict[str, Any], refs: dict[Any, Any]
) -> list[dict[str, Any]]:
    if operation.query is None:
        return []
    model = _resolve(refs[(operation.query, "validation")], schemas)
    required = set(model.get("required", ()))
    params = []
    for name, schema in model.get("properties", {}).items():
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in schema.items() if k not in ("title", "description")},
        }
        if "description" in schema:
            param["description"] = schema["description"]
        params.append(param)
    return params


def _error(status: int, media: str) -> dict[str, Any]:
    if media == "application/json":
        content = {media: {"schema": {"$ref": REF.format(model="Error")}}}
    else:
        content = {media: {"schema": {"type": "string"}}}
    return {"description": STATUS_TEXT.get(status, "Error"), "content": content}


def _success(
    operation: Operation, refs: dict[Any, Any], status: int, *, primary: bool
) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": STATUS_TEXT.get(status, "OK")}
    headers: dict[str, Any] = {}
    if status not in BODYLESS:
        content: dict[str, Any] = {}
        if operation.response is not None and primary:
            schema = refs[(operation.response, "serialization")]
            if operation.many:
                schema = {"type": "array", "items": schema}
            content["application/json"] = {"schema": schema}
        for media in operation.media:
            binary = media.startswith("image/")
            content[media] = {
                "schema": {"type": "string", **({"format": "binary"} if binary else {})}
            }
        if content:
            answer["content"] = content
        if operation.etag and primary:
            headers["ETag"] = {"schema": {"type": "string"}, "description": "The version read."}
        if operation.many:
            headers["Link"] = {
                "schema": {"type": "string"},
                "description": 'rel="next": the next page, while more remain.',
            }
    if status == 201:
        headers["Location"] = {"schema": {"type": "string"}, "description": "The new object."}
    if status == 302:
        headers["Location"] = {"schema": {"type": "string"}, "description": "Where to go."}
    if headers:
        answer["headers"] = headers
    return answer


def _operation(
    operation: Operation,
    path_params: list[dict[str, Any]],
    schemas: dict[str, Any],
    refs: dict[Any, Any],
) -> dict[str, Any]:
    parameters = [*path_params, *_query(operation, schemas, refs)]
    if operation.etag and operation.method in ("PATCH", "DELETE"):
        parameters.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "description": "The ETag read: the write fails with 412 if the object changed.",
                "schema": {"type": "string", "pattern": '^"v[0-9]+"$'},
            }
        )
    statuses = [operation.status, *operation.also]
    primary = next((s for s in statuses if s not in BODYLESS), operation.status)
    responses: dict[str, Any] = {
        str(status): _success(operation, refs, status, primary=status == primary)
        for status in statuses
    }
    errors = set(operation.errors) | set(TRANSPORT_ERRORS)
    if path_params:
        errors.add(404)
    if operation.auth != "none":
        errors.add(401)
    for status in sorted(errors):
        responses[str(status)] = _error(status, operation.error_media)
    document: dict[str, Any] = {
        "operationId": operation.name,
        "summary": operation.summary,
        "tags": [_tag(operation.path)],
        "parameters": parameters,
        "responses": responses,
    }
    if operation.body is not None:
        schema = refs[(operation.body, "validation")]
        content = {"application/json": {"schema": schema}}
        if operation.multipart:
            content["multipart/form-data"] = {"schema": schema}
        document["requestBody"] = {"required": True, "content": content}
    if operation.auth == "none":
        document["security"] = [{}, {"bearerAuth": []}] if operation.optional_auth else []
    else:
        document["security"] = [{"bearerAuth": []}]
        if operation.auth == "admin":
            document["description"] = "Needs an admin token."
    return document


def _tag(path: str) -> str:
    parts = path.split("/")
    if len(parts) > 3 and parts[2] == "manage":
        return parts[3]
    return {
        "decide": "serving", "imp": "serving", "view": "serving", "click": "serving",
        "slot": "serving", "asset": "serving",
    }.get(parts[2], parts[2])  # fmt: skip


@lru_cache(maxsize=4)
def document_bytes(server_url: str) -> bytes:
    """The document for one public address, built once per process."""
    from adserver.web.api import documented  # the table that lists this module too

    return orjson.dumps(build_document(documented, server_url=server_url))


async def openapi_json(request: Request) -> Response:
    body = document_bytes(app_of(request).settings.base_url)
    return JSONBytes(
        body,
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


class Document(BaseModel):
    """An OpenAPI 3.1 document (described by the OpenAPI specification itself)."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


operations = [
    Operation(
        "GET", "/v1/openapi.json", "openapi", "This document", openapi_json, auth="none",
        response=Document,
    ),
]  # fmt: skip
