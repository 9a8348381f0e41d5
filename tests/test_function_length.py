"""No function or method in cse_models, cse_serving, cse_assets or cse_demo is longer than 80 lines: past
that a function hides a name (STYLE.md), and the long ones we had were several steps that each deserved
one (the publication asset, create_app's lifespan, the model asset factories)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cse_models", "cse_serving", "cse_assets", "cse_demo")
MAX_LINES = 80


def long_functions(source: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_LINES:
                found.append(f"{where}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_over_80_lines() -> None:
    found = [
        hit
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for hit in long_functions(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not found, "functions over 80 lines:\n" + "\n".join(found)


def test_the_count_sees_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    assert long_functions(f"def f():\n{body}\n", "planted.py") == [f"planted.py:1 f ({MAX_LINES + 1} lines)"]
    assert long_functions("def g():\n    return 1\n", "short.py") == []
