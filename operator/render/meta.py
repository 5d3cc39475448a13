"""Names, labels, owner references and the spec error shared by the render functions.

Used by ``modelpool`` and ``policy`` (and read by the operator's handlers for ``InvalidSpec``).
Pure: no Kubernetes API access.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from switchman.api.v1alpha1.spec import API_VERSION

MANAGED_BY = "switchman-operator"
VLLM_PORT = 8000
GATEWAY_PORT = 8080
SECRETS_DIR = "/var/run/switchman/secrets"
CONFIG_DIR = "/etc/switchman"
CONFIG_KEY = "gateway.yaml"
CHECKSUM_ANNOTATION = "switchman.dev/secrets-checksum"

_INVALID = re.compile(r"[^a-z0-9-]+")


class InvalidSpec(ValueError):
    """A custom resource the operator cannot render; the message says what to fix."""


def dns_name(*parts: str, limit: int = 63) -> str:
    """A DNS-1123 label from ``parts`` joined by '-'; a hash suffix keeps truncated ones unique."""
    raw = "-".join(parts).lower()
    name = _INVALID.sub("-", raw).strip("-")
    name = re.sub("-{2,}", "-", name) or "x"
    if len(name) <= limit and name == raw:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    if len(name) + 9 <= limit and name != raw:
        return f"{name}-{digest}"
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def model_child(pool: str, model: str) -> str:
    """Name of a vLLM model's Deployment, headless Service, PDB and HPA."""
    return dns_name(pool, model)


def gateway_child(policy: str) -> str:
    """Name of a policy's gateway Deployment and Service."""
    return dns_name(policy, "gateway")


def service_host(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def labels(instance: str, component: str, **switchman: str) -> dict[str, str]:
    """The standard labels plus ``switchman.dev/<key>`` ones."""
    name = "vllm" if component == "model-server" else "switchman-gateway"
    out = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "switchman",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    out.update({f"switchman.dev/{key}": value for key, value in switchman.items()})
    return out


def selector(instance: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": instance}


def owner_reference(parent: Mapping[str, Any]) -> dict[str, Any]:
    """The single controller ownerReference of a child of ``parent``."""
    meta = parent.get("metadata", {})
    return {
        "apiVersion": parent.get("apiVersion", API_VERSION),
        "kind": parent["kind"],
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(
    name: str, parent: Mapping[str, Any], child_labels: Mapping[str, str]
) -> dict[str, Any]:
    """A child's metadata: name, the parent's namespace, labels and the owner reference."""
    return {
        "name": name,
        "namespace": parent["metadata"].get("namespace", "default"),
        "labels": dict(child_labels),
        "ownerReferences": [owner_reference(parent)],
    }


def secrets_checksum(secret_versions: Mapping[str, str], names: list[str]) -> str:
    """sha256 over the referenced Secrets' versions (or their names when rendered offline)."""
    digest = hashlib.sha256()
    for name in sorted(set(names)):
        digest.update(f"{name}={secret_versions.get(name, '')}\n".encode())
    return digest.hexdigest()
