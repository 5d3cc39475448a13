"""Render a RoutingPolicy (and the ModelPools it references) into its gateway's manifests (pure).

Called by the operator's RoutingPolicy handler (which applies the manifests and writes status
from the rest of ``PolicyRender``) and by ``switchman render``. The GatewayConfig mapping lives
in ``gatewayconfig``; this module validates the custom resources and builds the ConfigMap, the
gateway Deployment, its Service and the NetworkPolicy that lets only this gateway reach the
referenced pools' vLLM pods. Config changes never touch the pod template (the gateway hot-reloads
the mounted directory); Secret changes do, through the checksum annotation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from switchman.api.gatewayconfig import GatewayConfig, dump
from switchman.api.v1alpha1.routingpolicy import Gateway, RoutingPolicySpec
from switchman.api.validation import bracketed, problems
from switchman.operator.render.gatewayconfig import Pool, to_gateway_config
from switchman.operator.render.meta import (
    CHECKSUM_ANNOTATION,
    CONFIG_DIR,
    CONFIG_KEY,
    GATEWAY_PORT,
    SECRETS_DIR,
    VLLM_PORT,
    InvalidSpec,
    dns_name,
    gateway_child,
    labels,
    metadata,
    secrets_checksum,
    selector,
)
from switchman.operator.render.modelpool import label_value
from switchman.operator.render.modelpool import parse_spec as parse_pool_spec

GATEWAY_UID = 10001
# The gateway drains for 30 s (its --shutdown-grace default) after a 5 s preStop pause that lets
# Service endpoints drop the pod first; the rest is margin.
TERMINATION_GRACE_S = 45
PRESTOP_SLEEP_S = 5


@dataclass(frozen=True)
class PolicyRender:
    """Everything the operator needs from one RoutingPolicy."""

    manifests: list[dict[str, Any]]  # ConfigMap, Deployment, Service, NetworkPolicy
    config: GatewayConfig  # what went into the ConfigMap
    routes: list[dict[str, Any]]  # status.routes: {name, strategy, candidates}
    unresolved: list[str]  # e.g. "pool chat-pools not found", "model gpt-5 not in any pool"
    secrets: list[str]  # Secret names the gateway mounts (status and checksum)


def parse_spec(policy: Mapping[str, Any]) -> RoutingPolicySpec:
    """The validated spec; InvalidSpec names every bad field, never its value."""
    what = f"RoutingPolicy {policy.get('metadata', {}).get('name', '?')}"
    try:
        return RoutingPolicySpec.model_validate(policy.get("spec"), by_alias=True)
    except ValidationError as exc:
        found = "; ".join(problems(exc, bracketed))
        raise InvalidSpec(f"{what}: invalid spec: {found}") from None


def render_policy(
    policy: Mapping[str, Any],
    pools: Mapping[str, Mapping[str, Any]],
    secret_versions: Mapping[str, str] | None = None,
) -> PolicyRender:
    """The gateway of ``policy`` over ``pools`` (ModelPool objects by name, same namespace).

    ``secret_versions`` maps the existing Secrets' names to their resourceVersions; ``None``
    (offline) checksums the names only. Referenced Secrets missing from it are listed as
    unresolved: their volumes are optional, so the gateway starts and marks those upstreams
    unusable until the Secret appears (which changes the checksum and rolls the pods).
    """
    spec = parse_spec(policy)
    meta = policy.get("metadata", {})
    name = str(meta["name"])
    namespace = str(meta.get("namespace") or "default")
    resolved: list[Pool] = []
    unresolved: list[str] = []
    for ref in spec.pools:
        obj = pools.get(ref.name)
        if obj is None:
            unresolved.append(f"pool {ref.name} not found")
            continue
        try:
            pool_spec = parse_pool_spec(obj)
        except InvalidSpec:
            # The pool reports its own error; this policy keeps serving the other pools.
            unresolved.append(f"pool {ref.name} has an invalid spec (see its conditions)")
            continue
        pool_ns = str(obj.get("metadata", {}).get("namespace") or namespace)
        resolved.append(Pool(name=ref.name, namespace=pool_ns, spec=pool_spec))
    mapped = to_gateway_config(spec, resolved, unresolved)
    missing = (
        [] if secret_versions is None else [s for s in mapped.secrets if s not in secret_versions]
    )
    checksum = secrets_checksum(secret_versions or {}, mapped.secrets)
    gateway = gateway_child(name)
    pod_labels = labels(gateway, "gateway", policy=label_value(name))
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(dns_name(name, "gateway", "config"), policy, pod_labels),
        "data": {CONFIG_KEY: dump(mapped.config)},
    }
    manifests = [
        config_map,
        _deployment(policy, spec.gateway, pod_labels, config_map, mapped.secrets, checksum),
        _service(policy, spec.gateway, pod_labels),
        _network_policy(policy, pod_labels, [ref.name for ref in spec.pools]),
    ]
    return PolicyRender(
        manifests=manifests,
        config=mapped.config,
        routes=mapped.routes,
        unresolved=mapped.unresolved + [f"secret {s} not found" for s in missing],
        secrets=mapped.secrets,
    )


def _deployment(
    policy: Mapping[str, Any],
    gateway: Gateway,
    pod_labels: dict[str, str],
    config_map: Mapping[str, Any],
    secrets: list[str],
    checksum: str,
) -> dict[str, Any]:
    instance = pod_labels["app.kubernetes.io/instance"]
    mounts: list[dict[str, Any]] = [
        # A directory, never subPath: ConfigMap updates then reach the file (hot reload).
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": config_map["metadata"]["name"]}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    for secret in secrets:
        volume = dns_name("secret", secret)
        mounts.append({"name": volume, "mountPath": f"{SECRETS_DIR}/{secret}", "readOnly": True})
        volumes.append(
            {
                "name": volume,
                "secret": {"secretName": secret, "defaultMode": 0o440, "optional": True},
            }
        )
    container = {
        "name": "gateway",
        "image": gateway.image,
        "args": _args(gateway.workers),
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"}],
        "resources": dict(gateway.resources),
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=2),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_S}}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": GATEWAY_UID,
            "runAsGroup": GATEWAY_UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(instance, policy, pod_labels),
        "spec": {
            "replicas": gateway.replicas,
            "selector": {"matchLabels": selector(instance)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": dict(pod_labels),
                    "annotations": {CHECKSUM_ANNOTATION: checksum},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": GATEWAY_UID,
                        "runAsGroup": GATEWAY_UID,
                        "fsGroup": GATEWAY_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector(instance)},
                        }
                    ],
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _args(workers: int) -> list[str]:
    config = f"{CONFIG_DIR}/{CONFIG_KEY}"
    args = ["gateway", "--config", config, "--host", "0.0.0.0", "--port", str(GATEWAY_PORT)]
    return [*args, "--workers", str(workers)] if workers > 1 else args


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _service(
    policy: Mapping[str, Any], gateway: Gateway, pod_labels: dict[str, str]
) -> dict[str, Any]:
    instance = pod_labels["app.kubernetes.io/instance"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(instance, policy, pod_labels),
        "spec": {
            "type": gateway.service_type,
            "selector": selector(instance),
            "ports": [
                {"name": "http", "port": GATEWAY_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def _network_policy(
    policy: Mapping[str, Any], pod_labels: dict[str, str], pools: list[str]
) -> dict[str, Any]:
    instance = pod_labels["app.kubernetes.io/instance"]
    name = str(policy["metadata"]["name"])
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(dns_name(name, "gateway", "to", "models"), policy, pod_labels),
        "spec": {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/name": "vllm"},
                "matchExpressions": [
                    {
                        "key": "switchman.dev/pool",
                        "operator": "In",
                        "values": sorted({label_value(pool) for pool in pools}),
                    }
                ],
            },
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": selector(instance)}}],
                    "ports": [{"protocol": "TCP", "port": VLLM_PORT}],
                }
            ],
        },
    }
