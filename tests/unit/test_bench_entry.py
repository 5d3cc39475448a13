"""``python -m bench`` refuses a name it does not know instead of starting every benchmark."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_unknown_name_is_refused_with_the_names_it_knows() -> None:
    done = _bench("stram")
    assert done.returncode == 2
    assert "usage: python -m bench [compare|" in done.stderr
    assert "stream" in done.stderr
    assert done.stdout == ""  # nothing ran


def test_help_prints_the_usage_and_runs_nothing() -> None:
    done = _bench("--help")
    assert done.returncode == 0
    assert "with no name: every benchmark but profile" in done.stderr
    assert done.stdout == ""
