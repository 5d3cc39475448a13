"""Dependencies follow use: each plane's extra covers exactly what that plane imports.

Scenarios:
- the bare install (``dependencies``) is the union of the ``gateway`` and ``operator`` extras, so
  ``pip install switchman`` runs every subcommand;
- every third-party module imported anywhere in ``switchman.gateway`` (or ``switchman.api``, which
  it loads) comes from a distribution in the ``gateway`` extra; likewise for the operator;
- the gateway extra carries neither kopf nor the Kubernetes client (the gateway image is built
  from it).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    return {_normal(re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0]) for req in requirements}


def _imported_distributions(*folders: str) -> set[str]:
    """Distributions that provide the third-party top-level modules these folders import."""
    modules: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"switchman", "__future__"}
    providers = packages_distributions()
    missing = sorted(m for m in third_party if m not in providers)
    assert not missing, f"modules no installed distribution provides: {missing}"
    return {_normal(dist) for module in third_party for dist in providers[module]}


EXTRAS = PROJECT["optional-dependencies"]


def test_bare_install_is_the_union_of_the_plane_extras() -> None:
    assert _names(PROJECT["dependencies"]) == _names(EXTRAS["gateway"]) | _names(EXTRAS["operator"])


def test_gateway_extra_covers_every_gateway_import_and_no_kubernetes_client() -> None:
    needed = _imported_distributions("gateway", "api")
    declared = _names(EXTRAS["gateway"])
    # opentelemetry-* distributions all provide the ``opentelemetry`` namespace package.
    otel = {d for d in needed if d.startswith("opentelemetry")}
    assert otel & declared
    assert needed - otel <= declared, f"missing from [gateway]: {sorted(needed - otel - declared)}"
    assert not {"kopf", "kubernetes"} & declared


def test_operator_extra_covers_every_operator_import() -> None:
    needed = _imported_distributions("operator", "api")
    declared = _names(EXTRAS["operator"])
    assert needed <= declared, f"missing from [operator]: {sorted(needed - declared)}"
    assert {"kopf", "kubernetes"} <= declared
