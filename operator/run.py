"""Run the operator: kopf settings, a registry with ``handlers`` on it, and ``kopf.run``.

Called by ``switchman operator`` (``switchman.cli.operator``); the integration tests use
``build_settings`` and ``handlers.register`` to run the same operator against kmock. Choices:

- Peering (two replicas never both act): off (``standalone``) unless ``peering`` names a
  KopfPeering (namespaced) / ClusterKopfPeering (cluster-wide) object, which the chart creates.
  With peering every replica gets a distinct priority (from its pod name unless given): the
  highest live one works, the others pause and take over within ``PEERING_LIFETIME_S`` of its
  death. Same-priority peers would both work, which is why priorities are never left equal.
- No dynamic scanning of namespaces and CRDs: least privilege (no cluster-wide list/watch of
  them); the CRDs must exist before the operator starts, as the chart ensures.
- kopf keeps its progress and last-handled spec in ``switchman.dev/*`` annotations, never in
  ``status`` (the CRD's structural schema would prune it), and adds no finalizer.
- Children are watched through a server-side label selector (``managed-by``), so the watches
  carry only the operator's own objects.
"""

from __future__ import annotations

import hashlib
import socket

import kopf

from switchman.operator.handlers import CHILD_RESOURCES, MANAGED_BY_LABEL, register
from switchman.operator.kube import FIELD_MANAGER, Kube, missing_credentials
from switchman.operator.render.meta import MANAGED_BY

ANNOTATION_PREFIX = "switchman.dev"
PEERING_LIFETIME_S = 60
LIVENESS = "http://0.0.0.0:8081/healthz"  # what the chart passes as --liveness


class NoCredentials(Exception):
    """Neither in-cluster credentials nor a usable kubeconfig: nothing to run against."""


def priority_of(identity: str) -> int:
    """A stable peering priority in [1, 2**31 - 1] for a replica named ``identity``."""
    digest = hashlib.sha256(identity.encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1) + 1


def build_settings(
    *, peering: str | None = None, priority: int | None = None
) -> kopf.OperatorSettings:
    """The operator's kopf settings; ``peering`` names the peering object to join."""
    settings = kopf.OperatorSettings()
    settings.scanning.disabled = True
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.posting.reporting_component = FIELD_MANAGER
    settings.posting.reporting_instance = socket.gethostname()
    settings.peering.standalone = peering is None
    if peering is not None:
        settings.peering.name = peering
        settings.peering.mandatory = True
        settings.peering.lifetime = PEERING_LIFETIME_S
        settings.peering.priority = (
            priority if priority is not None else priority_of(socket.gethostname())
        )
    for group, _, plural in CHILD_RESOURCES:
        settings.watching.label_selectors[group, plural] = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
    return settings


def run(
    namespace: str | None = None,
    *,
    peering: str | None = None,
    priority: int | None = None,
    liveness: str | None = None,
) -> None:
    """Run until SIGINT/SIGTERM: cluster-wide, or in ``namespace`` only.

    ``NoCredentials`` when there is no cluster to log in to (checked once, before kopf starts).
    """
    problem = missing_credentials()
    if problem is not None:
        raise NoCredentials(problem)
    registry = kopf.OperatorRegistry()
    register(registry, Kube())
    kopf.run(
        registry=registry,
        settings=build_settings(peering=peering, priority=priority),
        clusterwide=namespace is None,
        namespaces=[namespace] if namespace else (),
        liveness_endpoint=liveness,
    )
