"""``python -m bench``: run every benchmark and write its results under bench/results/."""

from __future__ import annotations

import asyncio
import sys

from bench import overhead


def main() -> int:
    asyncio.run(overhead.main(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
