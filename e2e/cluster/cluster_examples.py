"""What the cluster e2e suite applies and expects: the numbered ``examples/`` read into custom
resources, the Secrets they reference, the children the operator must create for each custom
resource, and label-selector matching to check Services, PDBs and NetworkPolicies select the
right pods.

Used by ``test_operator_cluster``. Pure: no Kubernetes API access. Child names come from
``switchman.operator.render.meta`` (the one place the naming contract lives); everything else
is read from the specs with the ``switchman.api.v1alpha1`` models.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from switchman.api.v1alpha1 import API_VERSION, ModelPoolSpec, RoutingPolicySpec
from switchman.operator.render.meta import dns_name, gateway_child, model_child

REPO = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO / "examples"
PLACEHOLDER = "e2e-placeholder-not-a-real-credential"


@dataclass(frozen=True)
class Child:
    """A child object the operator must create, by API version, kind and name."""

    api_version: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass
class Example:
    """One example directory's documents, by kind; other kinds are listed, not applied."""

    name: str
    pools: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def example_dirs(root: Path = EXAMPLES_DIR) -> list[Path]:
    """The numbered example directories (``01-...``), in order."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name[:1].isdigit())


def load_example(directory: Path) -> Example:
    """Every YAML document of ``directory`` (``*.yaml``, ``*.yml``), sorted by file name."""
    example = Example(name=directory.name)
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict):
                continue
            kind = doc.get("kind")
            if kind == "ModelPool" and doc.get("apiVersion") == API_VERSION:
                example.pools.append(doc)
            elif kind == "RoutingPolicy" and doc.get("apiVersion") == API_VERSION:
                example.policies.append(doc)
            elif kind == "Secret" and doc.get("apiVersion") == "v1":
                example.secrets.append(doc)
            else:
                example.ignored.append(f"{path.name}: {kind}")
    return example


def into_namespace(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """A copy of ``obj`` for ``namespace``, without fields only the server may set."""
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    meta["namespace"] = namespace
    for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"):
        meta.pop(key, None)
    out.pop("status", None)
    return out


def pool_spec(pool: Mapping[str, Any]) -> ModelPoolSpec:
    return ModelPoolSpec.model_validate(pool["spec"])


def policy_spec(policy: Mapping[str, Any]) -> RoutingPolicySpec:
    return RoutingPolicySpec.model_validate(policy["spec"])


def referenced_secrets(
    pools: Iterable[Mapping[str, Any]], policies: Iterable[Mapping[str, Any]]
) -> dict[str, set[str]]:
    """Secret name -> the keys the specs read from it (credentials, HF tokens, client auth)."""
    refs: dict[str, set[str]] = {}
    for pool in pools:
        for model in pool_spec(pool).models:
            if model.vllm is not None and model.vllm.hf_token_secret is not None:
                ref = model.vllm.hf_token_secret
                refs.setdefault(ref.name, set()).add(ref.key)
    for name, keys in gateway_secrets(pools, policies).items():
        refs.setdefault(name, set()).update(keys)
    return refs


def gateway_secrets(
    pools: Iterable[Mapping[str, Any]], policies: Iterable[Mapping[str, Any]]
) -> dict[str, set[str]]:
    """The Secrets the gateway mounts: external models' credentials and the client-auth token
    (a vLLM model's HF token goes to its own pods, never to the gateway)."""
    refs: dict[str, set[str]] = {}
    for pool in pools:
        for model in pool_spec(pool).models:
            if model.external is not None and model.external.credentials_secret is not None:
                ref = model.external.credentials_secret
                refs.setdefault(ref.name, set()).add(ref.key)
    for policy in policies:
        auth = policy_spec(policy).gateway.client_auth_secret
        if auth is not None:
            refs.setdefault(auth.name, set()).add(auth.key)
    return refs


def placeholder_secret(name: str, keys: Iterable[str], namespace: str) -> dict[str, Any]:
    """A Secret holding a dummy value under each key (nothing here calls a real provider)."""
    value = base64.b64encode(PLACEHOLDER.encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"switchman.dev/e2e": "placeholder"},
        },
        "type": "Opaque",
        "data": {key: value for key in sorted(keys)},
    }


def pool_children(pool: Mapping[str, Any]) -> list[Child]:
    """Deployment, headless Service and PDB per vLLM model, plus an HPA when it autoscales."""
    name = pool["metadata"]["name"]
    children: list[Child] = []
    for model in pool_spec(pool).models:
        if model.vllm is None:
            continue
        child = model_child(name, model.name)
        children += [
            Child("apps/v1", "Deployment", child),
            Child("v1", "Service", child),
            Child("policy/v1", "PodDisruptionBudget", child),
        ]
        if model.vllm.autoscaling is not None:
            children.append(Child("autoscaling/v2", "HorizontalPodAutoscaler", child))
    return children


def gateway_config_map(policy_name: str) -> str:
    return dns_name(policy_name, "gateway", "config")


def network_policy(policy_name: str) -> str:
    return dns_name(policy_name, "gateway", "to", "models")


def policy_children(policy: Mapping[str, Any]) -> list[Child]:
    """The gateway's ConfigMap, Deployment, Service and NetworkPolicy."""
    name = policy["metadata"]["name"]
    return [
        Child("v1", "ConfigMap", gateway_config_map(name)),
        Child("apps/v1", "Deployment", gateway_child(name)),
        Child("v1", "Service", gateway_child(name)),
        Child("networking.k8s.io/v1", "NetworkPolicy", network_policy(name)),
    ]


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a ``LabelSelector`` (matchLabels and matchExpressions) matches ``labels``.

    An empty selector matches everything, as the API server reads it.
    """
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
