"""``switchman gateway --config FILE``: serve the gateway on a GatewayConfig file.

Refuses to start on an invalid file or a port it cannot bind (exit 2, one line saying what to
fix; "listening" is printed only once the port is bound); once running, later invalid
versions are rejected while the last good config keeps serving. SIGTERM/SIGINT stop accepting
connections and let in-flight requests and streams finish within ``--shutdown-grace`` seconds.
Tracing is configured by the standard ``OTEL_*`` variables
(``switchman.gateway.telemetry.tracing``); the access log goes to stdout, the gateway's own log
to stderr. ``--workers N`` runs N gateway processes on the port (``cli.workers`` supervises).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys

from switchman.api.gatewayconfig import ConfigError
from switchman.cli import workers
from switchman.gateway import listener
from switchman.gateway.app import compose
from switchman.gateway.telemetry.tracing import TracingConfigError
from switchman.gateway.workers import Workers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="GatewayConfig file (YAML or JSON)")
    parser.add_argument("--host", default="0.0.0.0", help="listen address (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=30.0,
        help="seconds in-flight requests get to finish on SIGTERM (default 30)",
    )
    parser.add_argument(
        "--watch-interval", type=float, default=1.0, help="config file poll interval (s)"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--access-log",
        choices=("json", "text", "off"),
        default="json",
        help="one line per request on stdout (default json; never prompt text)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="gateway processes sharing the port (SO_REUSEPORT), one event loop each; "
        "about one per core (default 1; see docs/workers.md)",
    )


def _workers(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError("must be between 1 and 256")
    return value


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    identity = workers.worker_identity(os.environ)
    if args.workers > 1 and identity is None:
        return workers.supervise(args, getattr(args, "argv", sys.argv[1:]))
    pod = Workers(*identity) if identity is not None else None
    try:
        app = compose(
            args.config,
            os.environ,
            access_log=args.access_log,
            watch_interval=args.watch_interval,
            workers=pod,
        )
    except TracingConfigError as exc:
        print(f"switchman gateway: tracing: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"switchman gateway: invalid config: {exc}", file=sys.stderr)
        print("Fix the file (see docs/gatewayconfig.md) and start again.", file=sys.stderr)
        return 2

    def ready() -> None:
        where = f"http://{args.host}:{args.port}"
        who = f"worker {pod.index} " if pod is not None else ""
        if pod is not None:
            pod.listening()
        print(f"switchman gateway {who}listening on {where} (config {args.config})", flush=True)

    # What start-up built (config, routing tables, classifier weights, the OTel SDK, every
    # imported module) lives as long as the process: out of the collector's generations, so
    # that its full passes scan only what requests allocate. A request leaves few cycles, but
    # sampled spans waiting in the export queue kept the youngest generation's count up: at the
    # default threshold (700) one worker with 10% tracing spent ~120 ms of each 9 s of load in
    # 250-400 young collections; at 7,000, one collection and ~1 ms.
    gc.freeze()
    gc.set_threshold(7000, 10, 10)
    try:
        listener.run(
            listener.serve(
                app,
                args.host,
                args.port,
                shutdown_grace=args.shutdown_grace,
                ready=ready,
                reuse_port=pod is not None,
            )
        )
    except listener.ListenError as exc:
        print(f"switchman gateway: {exc}", file=sys.stderr)
        return 2
    return 0
