"""``switchman operator``: run the kopf operator that reconciles ModelPools and RoutingPolicies.

Cluster-wide by default, or one namespace with ``--namespace``. Credentials come from the
in-cluster service account or the current kubeconfig context. ``--peering NAME`` joins kopf
peering (the chart's KopfPeering / ClusterKopfPeering object) so that only one replica acts;
``--liveness URL`` serves kopf's health endpoint for a livenessProbe (off by default, so that
several operators, one per namespace, can share a host in tests). Without any credentials it
prints one line saying what to set and exits 2.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", help="serve only this namespace (default: all)")
    parser.add_argument(
        "--peering",
        metavar="NAME",
        help="join kopf peering NAME (KopfPeering with --namespace, else ClusterKopfPeering); "
        "without it the operator runs standalone",
    )
    parser.add_argument(
        "--priority",
        type=int,
        help="peering priority (default: derived from the pod name, distinct per replica)",
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        help="serve kopf's liveness endpoint, e.g. http://0.0.0.0:8081/healthz",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def run(args: argparse.Namespace) -> int:
    # Imported here: the gateway and the other subcommands never load kopf.
    import kopf

    from switchman.operator import run as operator

    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.PLAIN)
    try:
        operator.run(
            args.namespace, peering=args.peering, priority=args.priority, liveness=args.liveness
        )
    except operator.NoCredentials as exc:  # one line, exit 2: never kopf's retry tracebacks
        print(f"switchman operator: {exc}", file=sys.stderr)
        return 2
    return 0
