"""``helm install`` of ``charts/switchman`` into a real cluster, then the operator scenarios of
``test_operator_cluster`` run through the operator the chart installed (its image, its
ServiceAccount and least-privilege Role, its NetworkPolicy) instead of a local subprocess.

Needs what the rest of ``e2e/cluster`` needs plus nodes that run pods and the operator image:
``SWITCHMAN_E2E_OPERATOR_IMAGE`` (e.g. ``switchman/operator:0.1.0`` loaded into the cluster with
``kind load docker-image``); unset, every test here is skipped with that reason. The release is
installed once per module, namespaced (``rbac.namespaced``) in a namespace of its own, with
Helm's own install (``helm-python-sdk``: CRDs from the chart's ``crds/``, then the templates,
waiting until the Deployment is ready).

    scenario                                      | asserts
    ----------------------------------------------|-------------------------------------------
    the release                                   | Deployment ready; pod restricted (uid
                                                  |   10001, read-only root, no privilege
                                                  |   escalation); Role rules = rbac.rules()
    every examples/NN-* applied                   | as test_example_is_reconciled
    drift, config follow, garbage collection,     | as the test_operator_cluster scenarios of
      missing pool; pruning, HPA removal, a       |   the same names (and test_operator_rollouts)
      stalled gateway                             |
    helm upgrade to 3 replicas                    | KopfPeering in the namespace; every replica
                                                  |   ready and in its status; a new pool still
                                                  |   reconciled (one replica acts)
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import helm_python
import pytest
import test_operator_cluster as scenarios
import test_operator_rollouts as rollouts
from cluster_checks import check_pool_children
from cluster_kube import Kube, delete_custom_resources
from cluster_operator import Operator
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from switchman.operator import rbac

IMAGE_ENV = "SWITCHMAN_E2E_OPERATOR_IMAGE"
CHART = Path(__file__).resolve().parents[2] / "charts" / "switchman"
RELEASE = "switchman-e2e"
OPERATOR = f"{RELEASE}-operator"  # the chart's Deployment, ServiceAccount and Role
POD_SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
PEERING_CRDS = ("kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev")
CRD_API = "apiextensions.k8s.io/v1"
INSTALL_TIMEOUT = int(180 * scenarios.FACTOR)  # image pull and the operator's first readiness
CLEANUP_TIMEOUT = 60.0
STUCK = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError"}


def image_values(image: str) -> dict[str, str]:
    """``repo[:tag]`` or ``repo@sha256:...`` as the chart's ``operator.image`` values."""
    if "@" in image:
        repository, digest = image.split("@", 1)
        return {"repository": repository, "digest": digest}
    repository, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:  # no tag, or the ':' was a registry port
        return {"repository": image}
    return {"repository": repository, "tag": tag}


@dataclass(frozen=True)
class InstalledOperator:
    """The chart's operator, with the two things the scenarios use of ``Operator``:
    ``namespace`` and ``ensure_running`` (fail at once, with the log, when its pod is stuck)."""

    namespace: str
    kube: Kube

    def pods(self) -> list[dict[str, Any]]:
        return self.kube.list("v1", "Pod", self.namespace, label_selector=POD_SELECTOR)

    def ensure_running(self) -> None:
        for pod in self.pods():
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (status.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in STUCK:
                    pytest.fail(
                        f"operator pod {pod['metadata']['name']}: {waiting.get('reason')}: "
                        f"{waiting.get('message')}\n{self.logs()}",
                        pytrace=False,
                    )

    def logs(self, lines: int = 80) -> str:
        core = client.CoreV1Api(self.kube.dynamic.client)
        out = []
        for pod in self.pods():
            name = pod["metadata"]["name"]
            try:
                text = core.read_namespaced_pod_log(name, self.namespace, tail_lines=lines)
            except ApiException as exc:
                text = f"(no log: {exc.reason})"
            out.append(f"--- operator pod {name} (last {lines} lines)\n{text}")
        return "\n".join(out) or "(no operator pods)"

    def as_operator(self) -> Operator:
        return cast(Operator, self)  # duck-typed: the scenarios use namespace + ensure_running


@dataclass(frozen=True)
class Release:
    """The installed chart: where it lives, and how to upgrade it."""

    namespace: str
    values: dict[str, Any]
    helm: helm_python.Config
    operator: InstalledOperator

    def upgrade(self, **changes: Any) -> None:
        values = {**self.values, "operator": {**self.values["operator"], **changes}}
        try:
            self.helm.upgrade(
                str(CHART),
                RELEASE,
                values,
                namespace=self.namespace,
                wait="watcher",
                timeout=INSTALL_TIMEOUT,
            )
        except helm_python.HelmError as exc:
            pytest.fail(f"helm upgrade failed: {exc}\n{self.operator.logs()}", pytrace=False)


@pytest.fixture(scope="module")
def operator_image(kube: Kube) -> str:
    """The operator image the cluster can run, or a skip saying so (before any install)."""
    image = os.environ.get(IMAGE_ENV, "")
    if not image:
        pytest.skip(f"{IMAGE_ENV} is not set: name an operator image the cluster can run")
    return image


@pytest.fixture(scope="module")
def release(kube: Kube, operator_image: str, crds: list[str]) -> Iterator[Release]:
    """The chart installed, namespaced, into a fresh namespace; uninstalled afterwards (with
    the kopf peering CRDs when this install brought them)."""
    namespace = f"switchman-e2e-helm-{secrets.token_hex(4)}"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"switchman.dev/e2e": "true"}},
        }
    )
    new_crds = [n for n in PEERING_CRDS if kube.get(CRD_API, "CustomResourceDefinition", n) is None]
    values = {
        "watchNamespace": namespace,
        "rbac": {"namespaced": True},
        "operator": {"image": image_values(operator_image), "verbose": True},
    }
    installed = InstalledOperator(namespace, kube)
    with helm_python.Config(kubeconfig_path=os.environ["KUBECONFIG"], namespace=namespace) as helm:
        try:
            try:
                helm.install(
                    str(CHART),
                    RELEASE,
                    values,
                    namespace=namespace,
                    wait="watcher",
                    timeout=INSTALL_TIMEOUT,
                )
            except helm_python.HelmError as exc:
                pytest.fail(f"helm install failed: {exc}\n{installed.logs()}", pytrace=False)
            yield Release(namespace, values, helm, installed)
        finally:
            helm.uninstall(RELEASE, ignore_not_found=True, wait="watcher", timeout=120)
            kube.delete("v1", "Namespace", namespace)
            for name in new_crds:
                kube.delete(CRD_API, "CustomResourceDefinition", name)


@pytest.fixture
def installed(kube: Kube, release: Release) -> Iterator[Operator]:
    """The installed operator for one scenario; the scenario's custom resources are deleted
    afterwards while it runs, so the next scenario starts from an empty namespace."""
    yield release.operator.as_operator()
    delete_custom_resources(kube, release.namespace, CLEANUP_TIMEOUT)


def with_logs(release: Release, scenario: Callable[[], object]) -> None:
    """Run ``scenario``; a failure carries the operator pods' logs."""
    try:
        scenario()
    except (AssertionError, pytest.fail.Exception) as exc:
        pytest.fail(f"{exc}\n{release.operator.logs()}", pytrace=False)


def test_release_runs_a_restricted_operator_with_exactly_its_rules(
    kube: Kube, release: Release
) -> None:
    deployment = kube.get("apps/v1", "Deployment", OPERATOR, release.namespace)
    assert deployment is not None
    status = deployment.get("status") or {}
    assert status.get("readyReplicas") == deployment["spec"]["replicas"] == 1, status
    (pod,) = release.operator.pods()
    pod_security = pod["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == 10001
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert f"--namespace={release.namespace}" in container["args"]
    role = kube.get("rbac.authorization.k8s.io/v1", "Role", OPERATOR, release.namespace)
    assert role is not None
    assert role["rules"] == rbac.rules(clusterwide=False, peering=False)
    assert kube.get("v1", "ServiceAccount", OPERATOR, release.namespace) is not None


@pytest.mark.parametrize(
    "example",
    scenarios.EXAMPLES or [None],
    ids=[p.name for p in scenarios.EXAMPLES] or ["no-examples"],
)
def test_example_is_reconciled_by_the_installed_operator(
    example: Path | None, kube: Kube, release: Release, installed: Operator
) -> None:
    with_logs(release, lambda: scenarios.test_example_is_reconciled(example, kube, installed))


SCENARIOS = [
    rollouts.test_removed_model_is_pruned,  # the chart's RBAC must allow the deletes
    rollouts.test_autoscaling_turned_off_deletes_the_hpa,
    rollouts.test_a_stalled_gateway_degrades_its_policy,
    scenarios.test_deleted_child_service_is_recreated,
    scenarios.test_hand_edited_replicas_are_restored,
    scenarios.test_gateway_config_follows_pool_change,
    scenarios.test_deleting_a_pool_garbage_collects_its_children,
    scenarios.test_policy_with_a_missing_pool_is_degraded_until_the_pool_appears,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__[5:] for s in SCENARIOS])
def test_scenario_through_the_installed_operator(
    scenario: Callable[[Kube, Operator], None], kube: Kube, release: Release, installed: Operator
) -> None:
    with_logs(release, lambda: scenario(kube, installed))


def test_upgrade_to_three_replicas_peers_them(
    kube: Kube, release: Release, installed: Operator
) -> None:
    """Last: it leaves the release with three replicas."""
    release.upgrade(replicas=3)
    namespace = release.namespace
    peering = kube.get("kopf.dev/v1", "KopfPeering", RELEASE, namespace)
    assert peering is not None, "no KopfPeering named after the release"

    def all_peers_live() -> None:
        pods = [p for p in release.operator.pods() if not p["metadata"].get("deletionTimestamp")]
        assert len(pods) == 3, f"{len(pods)} operator pods"
        current = kube.get("kopf.dev/v1", "KopfPeering", RELEASE, namespace) or {}
        peers = current.get("status") or {}
        assert len(peers) >= 3, f"peers in the KopfPeering's status: {sorted(peers)}"

    with_logs(release, lambda: scenarios.wait(installed, "three peers", all_peers_live))
    pool = kube.apply(
        scenarios.model_pool("peered", namespace, scenarios.vllm_model("small")),
    )
    with_logs(
        release,
        lambda: scenarios.wait(installed, "the pool's children", check_pool_children, kube, pool),
    )
