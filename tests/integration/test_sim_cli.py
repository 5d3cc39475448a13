"""``switchman sim`` as a process: flags in, one line saying where it listens, clean SIGTERM.

Scenario matrix:
- started with --port 0 and fault flags: prints its URL, serves /health and /v1/models with the
  served names, applies the start-up faults (visible at /admin/faults)
- SIGTERM: exits with status 0
- invalid flag values: exit status 2 with a message, no traceback
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import processes

# The lead wires these into ``switchman sim``; the test drives the same two calls directly.
ENTRY = (
    "import argparse, sys\n"
    "from switchman.sim import cli\n"
    "parser = argparse.ArgumentParser()\n"
    "cli.add_arguments(parser)\n"
    "sys.exit(cli.run(parser.parse_args(sys.argv[1:])))\n"
)


async def test_serves_until_sigterm() -> None:
    async with processes.running(
        sys.executable, "-c", ENTRY, "--model", "org/m", "--served-model-name", "m", "m2",
        "--port", "0", "--ttft-ms", "0", "--itl-ms", "0", "--rate-limit-rate", "0.5",
        stdout=processes.PIPE,
        stderr=processes.PIPE,
    ) as process:  # fmt: skip
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=20)).decode()
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match, line
        url = match.group(0)
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/health") as response:
                assert response.status == 200
            async with http.get(url + "/v1/models") as response:
                assert [card["id"] for card in (await response.json())["data"]] == ["m", "m2"]
            async with http.get(url + "/admin/faults") as response:
                assert (await response.json())["rate_limit_rate"] == 0.5
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_invalid_flags_exit_2() -> None:
    async with processes.running(
        sys.executable, "-c", ENTRY, "--port", "0", "--error-rate", "7",
        stdout=processes.PIPE,
        stderr=processes.PIPE,
    ) as process:  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 2
    assert b"invalid settings" in stderr
    assert b"Traceback" not in stderr
