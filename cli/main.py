"""``switchman`` command line entry point: parses the subcommand and dispatches.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``; nothing runs at
import time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from switchman.cli import classifier, demo, gateway, keys, operator, render, usage
from switchman.sim import cli as sim


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchman",
        description="Kubernetes-native inference gateway: one OpenAI-compatible endpoint over "
        "in-cluster vLLM and external providers.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module, text in (
        ("gateway", gateway, "run the gateway on a GatewayConfig file"),
        ("sim", sim, "run a vLLM-compatible simulator"),
        ("demo", demo, "run the gateway with two simulated backends (no cluster, no keys)"),
        ("classifier", classifier, "evaluate the prompt complexity classifier or score a prompt"),
        ("operator", operator, "run the Kubernetes operator (ModelPool, RoutingPolicy)"),
        ("render", render, "print the manifests the operator would apply (offline, for GitOps)"),
        ("usage", usage, "spend per tenant, route and model, and the saving (Redis or access log)"),
        ("keys", keys, "make a client key and its keys-file entry (the key's hash)"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]  # for gateway --workers
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
