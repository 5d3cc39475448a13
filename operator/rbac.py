"""The exact Kubernetes API permissions the operator uses: nothing more, each with its reason.

Read by the Helm chart's RBAC generation (issue 6) and by the integration tests, which check
that every request the running operator makes is allowed here and that every rule here is
used by the code (``kube.PLURALS``, ``handlers.CHILD_RESOURCES``, the watched kinds, kopf).
``rules(clusterwide=..., peering=...)`` gives the PolicyRule dicts for a Role (one namespace)
or a ClusterRole (all namespaces).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switchman.api.v1alpha1 import GROUP

CHILD_VERBS = ("list", "watch", "create", "patch", "delete")  # watch, apply (create), prune


@dataclass(frozen=True, slots=True)
class Rule:
    """One PolicyRule: API group, resources, verbs, and why the operator needs them."""

    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    peering: bool = False  # only with --peering
    cluster_scoped: bool = False  # a cluster-scoped resource: cluster-wide operators only

    def as_dict(self) -> dict[str, Any]:
        return {
            "apiGroups": [self.api_group],
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }


RULES: tuple[Rule, ...] = (
    Rule(
        GROUP,
        ("modelpools", "routingpolicies"),
        ("list", "watch", "patch"),
        "watch the custom resources; kopf patches its progress annotations on them",
    ),
    Rule(
        GROUP,
        ("modelpools/status", "routingpolicies/status"),
        ("patch",),
        "write conditions, per-model replicas, routes (kube.Kube.patch_status)",
    ),
    Rule(
        "apps",
        ("deployments",),
        CHILD_VERBS,
        "vLLM and gateway Deployments: server-side apply, watch for drift and readiness, prune",
    ),
    Rule(
        "",
        ("services", "configmaps"),
        CHILD_VERBS,
        "headless model Services, gateway Service, gateway ConfigMap: apply, watch, prune",
    ),
    Rule("policy", ("poddisruptionbudgets",), CHILD_VERBS, "one PDB per vLLM model"),
    Rule("autoscaling", ("horizontalpodautoscalers",), CHILD_VERBS, "HPA for autoscaled models"),
    Rule("networking.k8s.io", ("networkpolicies",), CHILD_VERBS, "gateway-to-models policy"),
    Rule(
        "",
        ("secrets",),
        ("list", "watch"),
        "report missing credentials; roll the gateway when one changes (resourceVersion only)",
    ),
    Rule("", ("events",), ("create",), "Events on the custom resources (kopf's poster)"),
    Rule(
        "kopf.dev",
        ("kopfpeerings",),
        ("get", "list", "watch", "patch"),
        "kopf peering in one namespace: only the highest-priority replica acts",
        peering=True,
    ),
    Rule(
        "kopf.dev",
        ("clusterkopfpeerings",),
        ("get", "list", "watch", "patch"),
        "kopf peering cluster-wide: only the highest-priority replica acts",
        peering=True,
        cluster_scoped=True,
    ),
)


def rules(*, clusterwide: bool, peering: bool) -> list[dict[str, Any]]:
    """PolicyRules for a ClusterRole (``clusterwide``) or a namespaced Role."""
    # Peering objects follow the operator's mode: ClusterKopfPeering when cluster-wide.
    return [
        rule.as_dict()
        for rule in RULES
        if not rule.peering or (peering and rule.cluster_scoped == clusterwide)
    ]


def allows(api_group: str, resource: str, verb: str) -> bool:
    """Whether some rule grants ``verb`` on ``resource`` (``plural`` or ``plural/sub``)."""
    return any(
        rule.api_group == api_group and resource in rule.resources and verb in rule.verbs
        for rule in RULES
    )
