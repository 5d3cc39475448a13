"""Print one extra's requirements from pyproject.toml, one per line: what an image installs.

The image builders run ``python docker/extra_requirements.py gateway > /wheels/requirements.txt``;
the runtime stage installs the switchman wheel with ``--no-deps`` and then exactly these, so the
gateway image carries neither kopf nor the Kubernetes client (the bare ``pip install switchman``
keeps both planes' dependencies for the CLI).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def requirements(extra: str, pyproject: Path = PYPROJECT) -> list[str]:
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    if extra not in extras:
        raise SystemExit(f"no extra {extra!r} in {pyproject}; choose one of {sorted(extras)}")
    return list(extras[extra])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python docker/extra_requirements.py EXTRA")
    print("\n".join(requirements(sys.argv[1])))
