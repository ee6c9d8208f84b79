"""Targeting as stored (JSON lists) compiled for the engine, and checked when it is written."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Any

from adserver.delivery.decide import Targeting


def compile_targeting(raw: dict[str, Any]) -> Targeting:
    """Targeting as stored (lists) compiled to sets and one regex per path list."""
    return Targeting(
        paths=_path_pattern(raw.get("paths")),
        exclude_paths=_path_pattern(raw.get("exclude_paths")),
        keywords=_lower_set(raw.get("keywords")),
        exclude_keywords=_lower_set(raw.get("exclude_keywords")),
        devices=_lower_set(raw.get("devices")),
        countries=frozenset(str(c).upper() for c in raw.get("countries") or ()),
        days=frozenset(int(d) for d in raw.get("days") or ()),
        hours=frozenset(int(h) for h in raw.get("hours") or ()),
    )


def _path_pattern(patterns: Iterable[str] | None) -> re.Pattern[str] | None:
    """Shell-style path patterns (``/sport/*``) as one anchored regex."""
    patterns = list(patterns or ())
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def _lower_set(values: Iterable[str] | None) -> frozenset[str]:
    return frozenset(str(v).strip().lower() for v in values or () if str(v).strip())
