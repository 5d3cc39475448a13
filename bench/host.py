"""The machine a benchmark ran on, for its results: CPU, cores, memory, kernel, the versions it
names (Python and the commit always), and the load average at the start."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def host(versions: dict[str, str]) -> dict[str, Any]:
    """The machine, with ``versions`` (what the benchmark ran beside Python and the commit)."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 2**20, 1),
        "kernel": platform.release(),
        "versions": {
            "python": platform.python_version(),
            **versions,
            "switchman commit": done.stdout.strip() or "unknown",
        },
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
