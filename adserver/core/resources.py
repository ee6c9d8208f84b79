"""Finds the top-level folders (templates/, migrations/) from a checkout or an installed wheel."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def resource_dir(name: str) -> Path:
    """The wheel carries ``name`` inside the package as ``_name``; a checkout has it at the top."""
    for candidate in (PACKAGE_DIR / f"_{name}", PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"adserver cannot find its {name}/ folder next to {PACKAGE_DIR}")
