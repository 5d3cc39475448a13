"""``python -m bench``: run every benchmark and write its results under bench/results/."""

from __future__ import annotations

import asyncio
import sys

from bench import overhead, telemetry_overhead


def main() -> int:
    """``python -m bench [overhead|telemetry] [args]``; with no name, run both."""
    args = sys.argv[1:]
    which = args.pop(0) if args and args[0] in ("overhead", "telemetry") else None
    if which in (None, "overhead"):
        asyncio.run(overhead.main(args))
    if which in (None, "telemetry"):
        asyncio.run(telemetry_overhead.main(args if which else []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
