"""A well-behaved ``misbehaving.Misbehaving`` backend in a process of its own, to be killed.

Run by ``test_chaos`` for the kill -9 scenario: ``python tests/chaos/backend.py PORT TOKENS DELAY``
serves the deterministic answer on 127.0.0.1:PORT, prints ``ready`` once it listens, and runs
until it is killed (then restarted on the same port).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from misbehaving import Behaviour, Misbehaving


async def main(port: int, tokens: int, delay: float) -> None:
    server = Misbehaving(Behaviour(tokens=tokens, delay=delay), port=port)
    await server.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
