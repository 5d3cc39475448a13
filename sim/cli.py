"""``switchman sim``: flags → ``SimSettings``, then serve until SIGINT or SIGTERM.

``switchman.cli`` adds these flags to its ``sim`` subcommand with ``add_arguments`` and calls
``run`` (or awaits ``serve`` inside its own loop). Latencies are given in milliseconds, fault
durations in seconds, as their names say. Every fault flag can be changed later at run time
through ``POST /admin/faults`` (``switchman.sim.admin``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from pydantic import ValidationError

from switchman.sim.faults import Faults
from switchman.sim.runner import start
from switchman.sim.settings import SimSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SimSettings()
    fault_defaults = Faults()
    serve = parser.add_argument_group("serving")
    serve.add_argument("--model", default=defaults.model, help="model name (path) to serve")
    serve.add_argument(
        "--served-model-name",
        nargs="+",
        default=[],
        metavar="NAME",
        help="names clients use instead of --model; the first labels metrics",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on; 0 = any free")
    serve.add_argument(
        "--max-model-len",
        type=int,
        default=defaults.max_model_len,
        help="context length in tokens (words)",
    )
    serve.add_argument(
        "--output-tokens",
        type=int,
        default=defaults.output_tokens,
        help="natural answer length in tokens when max_tokens does not cut it",
    )
    serve.add_argument("--embedding-dims", type=int, default=defaults.embedding_dims)
    serve.add_argument(
        "--record-requests",
        type=int,
        default=defaults.record_requests,
        help="received requests kept for GET /admin/requests; 0 disables",
    )
    serve.add_argument(
        "--legacy-kv-metric",
        action="store_true",
        help="expose vllm:gpu_cache_usage_perc (pre-0.9 name) instead of vllm:kv_cache_usage_perc",
    )
    serve.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the error/rate-limit random sequence",
    )

    engine = parser.add_argument_group("latency and capacity model")
    engine.add_argument(
        "--ttft-ms", type=float, default=defaults.ttft_s * 1000, help="base time to first token"
    )
    engine.add_argument(
        "--prefill-ms-per-token",
        type=float,
        default=defaults.prefill_s_per_token * 1000,
        help="added to TTFT per prompt token not found in the prefix cache",
    )
    engine.add_argument(
        "--itl-ms", type=float, default=defaults.itl_s * 1000, help="inter-token latency"
    )
    engine.add_argument(
        "--max-num-seqs",
        type=int,
        default=defaults.max_num_seqs,
        help="requests running at once; more wait in a FIFO queue",
    )
    engine.add_argument(
        "--kv-cache-tokens",
        type=int,
        default=defaults.kv_cache_tokens,
        help="KV-cache budget; a request waits until prompt + max_tokens fits",
    )
    engine.add_argument(
        "--block-size",
        type=int,
        default=defaults.block_size,
        help="prefix-cache block size in tokens",
    )
    engine.add_argument(
        "--prefix-cache-blocks",
        type=int,
        default=defaults.prefix_cache_blocks,
        help="blocks the prefix cache keeps (LRU); 0 disables prefix caching",
    )

    faults = parser.add_argument_group("faults (also settable at run time: POST /admin/faults)")
    faults.add_argument(
        "--error-rate",
        type=float,
        default=fault_defaults.error_rate,
        help="fraction of requests answered 500",
    )
    faults.add_argument(
        "--rate-limit-rate",
        type=float,
        default=fault_defaults.rate_limit_rate,
        help="fraction of requests answered 429",
    )
    faults.add_argument(
        "--retry-after-s",
        type=int,
        default=fault_defaults.retry_after_s,
        help="Retry-After on 429 answers",
    )
    faults.add_argument(
        "--max-context",
        type=int,
        default=None,
        help="context limit overriding --max-model-len (400 above it)",
    )
    faults.add_argument(
        "--cut-after-tokens",
        type=int,
        default=None,
        help="close the connection after this many content tokens",
    )
    faults.add_argument(
        "--stall",
        action="store_true",
        help="send the first chunk (non-streaming: nothing), then hold",
    )
    faults.add_argument(
        "--stall-after-tokens", type=int, default=None, help="hold after this many content tokens"
    )
    faults.add_argument(
        "--stall-s",
        type=float,
        default=fault_defaults.stall_s,
        help="how long a stall holds before the answer resumes",
    )
    faults.add_argument(
        "--slow-start-s",
        type=float,
        default=fault_defaults.slow_start_s,
        help="GET /health answers 503 for this long after start",
    )
    faults.add_argument(
        "--down", action="store_true", help="refuse everything but /admin (see --down-mode)"
    )
    faults.add_argument(
        "--down-mode",
        choices=("503", "close"),
        default=fault_defaults.down_mode,
        help="answer 503, or close the connection, while down",
    )


def settings_from_args(args: argparse.Namespace) -> SimSettings:
    """The settings the parsed flags describe; raises ``pydantic.ValidationError`` if invalid."""
    faults = Faults(
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        retry_after_s=args.retry_after_s,
        max_context=args.max_context,
        cut_after_tokens=args.cut_after_tokens,
        stall=args.stall,
        stall_after_tokens=args.stall_after_tokens,
        stall_s=args.stall_s,
        slow_start_s=args.slow_start_s,
        down=args.down,
        down_mode=args.down_mode,
    )
    return SimSettings(
        model=args.model,
        served_model_names=tuple(args.served_model_name),
        max_model_len=args.max_model_len,
        output_tokens=args.output_tokens,
        ttft_s=args.ttft_ms / 1000,
        prefill_s_per_token=args.prefill_ms_per_token / 1000,
        itl_s=args.itl_ms / 1000,
        max_num_seqs=args.max_num_seqs,
        kv_cache_tokens=args.kv_cache_tokens,
        block_size=args.block_size,
        prefix_cache_blocks=args.prefix_cache_blocks,
        embedding_dims=args.embedding_dims,
        record_requests=args.record_requests,
        legacy_kv_metric=args.legacy_kv_metric,
        seed=args.seed,
        faults=faults,
    )


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM, then stop accepting and let in-flight requests finish."""
    settings = settings_from_args(args)
    running = await start(settings, args.host, args.port, shutdown_timeout=10.0)
    names = ", ".join(settings.served_names)
    print(f"switchman sim: serving {names} on {running.url} (API at {running.url}/v1)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await running.close()


def run(args: argparse.Namespace) -> int:
    """Entry point for ``switchman sim``: the process exit status."""
    try:
        asyncio.run(serve(args))
    except ValidationError as exc:
        print(f"switchman sim: invalid settings: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"switchman sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
