"""Where one gateway worker spends its CPU under load, as ``bench.compare`` runs it.

``python -m bench profile [--seconds S] [--concurrency C] [--out DIR]`` starts the fake upstream,
the OTLP collector and ``switchman-1`` exactly as ``bench.compare`` does (every production
feature on), drives it with wrk, and samples the worker with ``py-spy`` (a sampling profiler
outside the process: the gateway runs at full speed). The collapsed stacks are summarised per
kind into ``bench/results/profile-<kind>.txt``: the share of samples under each gateway
function (inclusive) and the functions where samples land (self), so the request path's cost
can be read by room (serve, telemetry, aiohttp, the event loop). py-spy is in the ``bench``
extra.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

from bench import compare, wrk

RESULTS = Path(__file__).parent / "results"


def summarise(collapsed: str, top: int = 40) -> str:
    """Inclusive and self shares of a py-spy ``--format raw`` (collapsed stacks) recording."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"samples: {total}", "", f"inclusive (top {top}):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", f"self (top {top}):"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` as ``module.py:func``, site-packages trimmed."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    keep = parts[-2:] if len(parts) >= 2 else parts
    return f"{'/'.join(keep)}:{name}"


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench profile")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--top", type=int, default=40, help="functions listed per table")
    parser.add_argument("--raw", type=Path, help="also keep the collapsed stacks here")
    parser.add_argument("--tenancy", choices=("redis", "local", "off"), default="redis")
    parser.add_argument("--native", action="store_true", help="C frames too (py-spy --native)")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(compare.sys.executable).parent / "py-spy")
    settings = compare._parser().parse_args(["--targets", "switchman-1", "--tenancy", args.tenancy])
    workdir = Path(tempfile.mkdtemp(prefix="switchman-profile-"))
    upstream, chosen = compare.build(settings, workdir)
    upstream.start()
    for target in chosen:
        target.start()
    try:
        for target in chosen:
            await compare._ready(target)
        (gateway,) = [t for t in chosen if t.name == "switchman-1"]
        for kind in ("chat", "chat-stream"):
            body = compare.BODIES[kind]
            wrk.run(gateway.url(kind), body, concurrency=8, seconds=1, headers=gateway.headers)
            out = workdir / f"{kind}.txt"
            record = [py_spy, "record", "--format", "raw", "--rate", "250"]
            record.append("--native" if args.native else "--nonblocking")
            record += ["--pid", str(gateway.pid(kind)), "--duration", f"{args.seconds:.0f}"]
            record += ["--output", str(out)]
            spy = threading.Thread(target=subprocess.run, args=(record,), kwargs={"check": True})
            spy.start()
            result = wrk.run(
                gateway.url(kind),
                body,
                concurrency=args.concurrency,
                seconds=args.seconds + 1,
                headers=gateway.headers,
            )
            spy.join()
            head = (
                f"# bench.profile: switchman-1 (tenancy {args.tenancy}), {kind}, "
                f"c={args.concurrency}, "
                f"{result['rps']:.0f} rps under py-spy, {result['errors']} errors\n"
            )
            args.out.mkdir(parents=True, exist_ok=True)
            text = head + summarise(out.read_text(), args.top)
            if args.raw is not None:
                args.raw.mkdir(parents=True, exist_ok=True)
                shutil.copy(out, args.raw / f"profile-{kind}.collapsed")
            (args.out / f"profile-{kind}.txt").write_text(text)
            print(text)
    finally:
        for target in chosen:
            target.stop()
        if upstream.process is not None:
            upstream.process.terminate()
            upstream.process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    import sys

    asyncio.run(main(sys.argv[1:]))
