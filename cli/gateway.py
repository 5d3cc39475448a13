"""``switchman gateway --config FILE``: serve the gateway on a GatewayConfig file.

Refuses to start on an invalid file (exit 2, with what to fix); once running, later invalid
versions are rejected while the last good config keeps serving. SIGTERM/SIGINT stop accepting
connections and let in-flight requests and streams finish within ``--shutdown-grace`` seconds.
Tracing is configured by the standard ``OTEL_*`` variables
(``switchman.gateway.telemetry.tracing``); the access log goes to stdout, the gateway's own log
to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from aiohttp import web

from switchman.api.gatewayconfig import ConfigError
from switchman.gateway.app import compose
from switchman.gateway.telemetry.tracing import TracingConfigError


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


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        app = compose(
            args.config, os.environ, access_log=args.access_log, watch_interval=args.watch_interval
        )
    except TracingConfigError as exc:
        print(f"switchman gateway: tracing: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"switchman gateway: invalid config: {exc}", file=sys.stderr)
        print("Fix the file (see docs/gatewayconfig.md) and start again.", file=sys.stderr)
        return 2
    print(f"switchman gateway listening on http://{args.host}:{args.port} (config {args.config})")
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        shutdown_timeout=args.shutdown_grace,
        access_log=None,
        print=None,
    )
    return 0
