"""The one error type of the service layer: a message, the fields at fault, and the HTTP status
the JSON API answers with (the pages and the command line show the same message and fields)."""

from __future__ import annotations

from collections.abc import Mapping


class ServiceError(Exception):
    """A request the service layer refuses; ``fields`` maps each bad field to why."""

    status = 422

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})

    def as_json(self) -> dict[str, object]:
        """The contract's error shape: ``{"error": ..., "fields": {...}}`` (fields if any)."""
        document: dict[str, object] = {"error": self.message}
        if self.fields:
            document["fields"] = self.fields
        return document


class NotFound(ServiceError):
    """No such entity, or one the caller may not see (the two answer alike)."""

    status = 404


class Forbidden(ServiceError):
    """The caller is known but may not do this at all (e.g. an advertiser creating a site)."""

    status = 403


class Conflict(ServiceError):
    """The write clashes with data already there (e.g. a site key in use)."""

    status = 409


class PreconditionFailed(ServiceError):
    """``If-Match`` named a version that is no longer current: someone else changed it."""

    status = 412


def invalid(field: str, why: str) -> ServiceError:
    """A 422 for one field, its message naming the field."""
    return ServiceError(f"{field}: {why}", {field: why})
