"""``python -m bench``: run every benchmark and write its results under bench/results/."""

from __future__ import annotations

import asyncio
import sys

from bench import (
    classifier,
    compare,
    inbound,
    inprocess,
    memory,
    otlp_encode,
    overhead,
    profile,
    replicas,
    routing_decision,
    stream_path,
    telemetry_overhead,
    tenancy_overhead,
)


def main() -> int:
    """``python -m bench [NAME] [args]``, NAME one of ``names`` below; with no name, run them
    all but ``profile`` and ``inprocess`` (``compare``, the side-by-side run, first)."""
    args = sys.argv[1:]
    names = (
        *("compare", "profile", "memory", "overhead", "telemetry", "classifier", "replicas"),
        *("routing", "tenancy", "inbound", "stream", "otlp", "inprocess"),
    )
    if args and args[0] not in names:
        # Anything else (a typo, --help) must not start the whole run (tens of minutes).
        print(f"usage: python -m bench [{'|'.join(names)}] [args]", file=sys.stderr)
        print(
            "with no name: every benchmark but profile and inprocess, compare first",
            file=sys.stderr,
        )
        return 0 if args[0] in ("-h", "--help") else 2
    which = args.pop(0) if args else None
    if which in (None, "compare"):
        asyncio.run(compare.main(args if which else []))
    if which == "profile":  # on demand: it needs py-spy and ptrace rights
        asyncio.run(profile.main(args))
    if which in (None, "memory"):
        asyncio.run(memory.main(args if which else []))
    if which in (None, "overhead"):
        asyncio.run(overhead.main(args))
    if which in (None, "telemetry"):
        asyncio.run(telemetry_overhead.main(args if which else []))
    if which in (None, "classifier"):
        classifier.main(args if which else [])
    if which in (None, "replicas"):
        asyncio.run(replicas.main(args if which else []))
    if which in (None, "routing"):
        routing_decision.main(args if which else [])
    if which in (None, "tenancy"):
        asyncio.run(tenancy_overhead.main(args if which else []))
    if which in (None, "inbound"):
        inbound.main(args if which else [])
    if which in (None, "stream"):
        stream_path.main(args if which else [])
    if which in (None, "otlp"):
        otlp_encode.main(args if which else [])
    if which == "inprocess":  # on demand: about 3.5 minutes, for A/B of the request path's CPU
        inprocess.main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
