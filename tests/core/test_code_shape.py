"""Modules a person can read (issue 16): no module over 400 lines, no function over 60.

Complexity is ruff's job (`C90`, max 12, in pyproject.toml); sizes are checked here because ruff has
no rule for a module's length. The command grammar and templates are exempt: they read top to bottom
as tables. So are the functions of Alembic's generated revisions (an `upgrade` is a list of tables),
though not their modules.

Tests and benchmarks are held to the module rule too, with no exemption. The function rule stays on
bot/: a few test scenarios and benchmark mains read best as one story (tests/postmortem/seed.py's
seed_full is a 196-line table of rows), and splitting them would hide the story, not shorten it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
MODULE_LINES = 400
FUNCTION_LINES = 60
EXEMPT = {"incidents/grammar.py"}


def _modules(*, revisions: bool = True) -> list[Path]:
    return [
        path
        for path in sorted(BOT.rglob("*.py"))
        if path.relative_to(BOT).as_posix() not in EXEMPT
        and (revisions or "migrations/versions" not in path.as_posix())
    ]


def _test_modules() -> list[Path]:
    return [path for folder in ("tests", "benchmarks") for path in sorted((ROOT / folder).rglob("*.py"))]


def test_the_checks_see_the_code() -> None:
    assert len(_modules()) > 150
    assert len(_test_modules()) > 150


def test_no_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(BOT)): n for path in _modules() if (n := len(path.read_text().splitlines())) > MODULE_LINES
    }
    assert long == {}


def test_no_test_or_benchmark_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in _test_modules()
        if (n := len(path.read_text().splitlines())) > MODULE_LINES
    }
    assert long == {}


def test_no_function_over_60_lines() -> None:
    long: dict[str, int] = {}
    for path in [*_modules(revisions=False), BOT / "incidents/grammar.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                # From the `def` line (decorators aside) to the last line of the body.
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    long[f"{path.relative_to(BOT)}:{node.lineno} {node.name}"] = length
    assert long == {}
