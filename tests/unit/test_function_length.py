"""Every function in the gateway fits on a screen: a reader can hold it (STYLE.md).

Scenario: each function or method under ``gateway/`` (nested ones included) spans at most
``LIMIT`` lines from its ``def`` to its last line; declarative tables belong in data, not in a
function body. The test lists every offender with its place.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIMIT = 60
GATEWAY = Path(__file__).resolve().parents[2] / "gateway"


def _long_functions(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LIMIT:
                    where = path.relative_to(root.parent)
                    found.append(f"{where}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (tmp_path / "m.py").write_text(f"def long():\n{body}\n\n\ndef short():\n    return 1\n")
    assert _long_functions(tmp_path) == [f"{tmp_path.name}/m.py:1 long ({LIMIT + 1} lines)"]


def test_no_gateway_function_is_longer_than_the_limit() -> None:
    assert _long_functions(GATEWAY) == []
