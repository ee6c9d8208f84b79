"""SECURITY.md stays true: every test it names exists, and so does every file it points to."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")
NAMED_MODULE = re.compile(
    r"`((?:accounts|core|delivery|reporting|services|tracking|web)/[\w/]+\.py)`"
)


def test_every_test_and_module_security_md_names_exists() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    named = NAMED_TEST.findall(text)
    assert len(named) > 15
    for path, name in named:
        source = ROOT / path
        assert source.exists(), path
        if name:
            functions = {
                node.name
                for node in ast.walk(ast.parse(source.read_text()))
                if isinstance(node, ast.FunctionDef)
            }
            assert name in functions, f"{path}::{name}"
    for module in NAMED_MODULE.findall(text):
        assert (ROOT / "adserver" / module).exists(), module
