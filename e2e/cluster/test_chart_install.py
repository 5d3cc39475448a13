"""``charts/switchman`` installed on a real API server with Helm's own code (``helm-python-sdk``),
checked the way a platform engineer checks a release, with no runnable image needed.

The operator image is deliberately one no cluster can pull (a ``.invalid`` registry): its Pods
stay Pending or in ImagePullBackOff, so this release can never act on the namespaces the other
tests use, and nothing here waits for a Pod. What the API server holds is checked instead:

    step                           | asserts
    -------------------------------|----------------------------------------------------------
    helm install (defaults:        | the chart's CRDs (ModelPool, RoutingPolicy, kopf's peering
      cluster-wide, 1 replica)     |   CRDs) Established; ServiceAccount; ClusterRole rules =
                                   |   operator.rbac.rules(clusterwide, no peering), bound to
                                   |   the ServiceAccount; the operator Deployment: liveness and
                                   |   readiness probes on /healthz (port 8081), restricted pod
                                   |   and container securityContext, args; no peering object
    helm upgrade (3 replicas,      | revision 2; the ClusterKopfPeering and the operator's PDB;
      verbose, new resources)      |   --peering and --verbose; replicas 3; new resources; the
                                   |   ClusterRole now grants clusterkopfpeerings
    helm uninstall                 | every release object gone; the CRDs (and a ModelPool
                                   |   stored under them) left, as docs/operator.md says;
                                   |   removing them is the documented `kubectl delete crd`
                                   |   (done at the end for the CRDs this module brought)

``test_helm_install`` keeps the scenarios that need the image to run (skipped without
``SWITCHMAN_E2E_OPERATOR_IMAGE``).
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from cluster_kube import Kube, eventually

from switchman.api.v1alpha1 import API_VERSION
from switchman.operator import rbac

CHART = Path(__file__).resolve().parents[2] / "charts" / "switchman"
CRD_API = "apiextensions.k8s.io/v1"
RBAC_API = "rbac.authorization.k8s.io/v1"
UNPULLABLE = "registry.switchman.invalid/operator"  # no such host: the Pods never run
FACTOR = float(os.environ.get("SWITCHMAN_E2E_TIMEOUT_FACTOR", "1"))
WAIT = 60.0 * FACTOR
HELM_TIMEOUT = 120


def chart_crd_docs() -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in the chart's ``crds/``."""
    return [
        doc
        for path in sorted((CHART / "crds").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
    ]


def chart_crds() -> list[str]:
    """The names of the CRDs in the chart's ``crds/``."""
    return [doc["metadata"]["name"] for doc in chart_crd_docs()]


@dataclass
class Release:
    name: str
    namespace: str
    values: dict[str, Any]
    helm: helm_python.Config

    @property
    def operator(self) -> str:  # the chart's Deployment, ServiceAccount, ClusterRole, binding
        return f"{self.name}-operator"


@pytest.fixture(scope="module")
def release(kube: Kube) -> Iterator[Release]:
    """The chart installed cluster-wide into a fresh namespace (not waited for: the image never
    runs); uninstalled afterwards, and the CRDs it brought removed the documented way."""
    namespace = f"switchman-e2e-chart-{secrets.token_hex(4)}"
    name = f"switchman-{secrets.token_hex(3)}"  # holds "switchman": the fullname is the name
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"switchman.dev/e2e": "true"}},
        }
    )
    brought = [n for n in chart_crds() if kube.get(CRD_API, "CustomResourceDefinition", n) is None]
    values: dict[str, Any] = {"operator": {"image": {"repository": UNPULLABLE, "tag": "0"}}}
    with helm_python.Config(kubeconfig_path=os.environ["KUBECONFIG"], namespace=namespace) as helm:
        try:
            try:
                helm.install(str(CHART), name, values, namespace=namespace, timeout=HELM_TIMEOUT)
            except helm_python.HelmError as exc:
                pytest.fail(f"helm install failed: {exc}", pytrace=False)
            yield Release(name, namespace, values, helm)
        finally:
            helm.uninstall(name, ignore_not_found=True, timeout=HELM_TIMEOUT)
            kube.delete("v1", "Namespace", namespace)
            for crd in brought:  # the documented removal: kubectl delete crd NAME...
                kube.delete(CRD_API, "CustomResourceDefinition", crd)


def established(kube: Kube, name: str) -> None:
    crd = kube.get(CRD_API, "CustomResourceDefinition", name)
    assert crd is not None, f"CRD {name} does not exist"
    conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions", [])}
    assert conditions.get("Established") == "True", f"CRD {name}: {conditions}"
    assert conditions.get("NamesAccepted") == "True", f"CRD {name}: {conditions}"


def operator_deployment(kube: Kube, release: Release) -> dict[str, Any]:
    deployment = kube.get("apps/v1", "Deployment", release.operator, release.namespace)
    assert deployment is not None, f"no Deployment {release.operator}"
    return deployment


def cluster_role_rules(kube: Kube, release: Release) -> list[dict[str, Any]]:
    role = kube.get(RBAC_API, "ClusterRole", release.operator)
    assert role is not None, f"no ClusterRole {release.operator}"
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def test_install_creates_crds_rbac_and_a_restricted_operator(kube: Kube, release: Release) -> None:
    for crd in chart_crd_docs():
        name, spec = crd["metadata"]["name"], crd["spec"]
        eventually(f"CRD {name} Established", lambda name=name: established(kube, name), WAIT)
        api_version = f"{spec['group']}/{spec['versions'][0]['name']}"
        served = functools.partial(kube.resource, api_version, spec["names"]["kind"])
        eventually(f"CRD {name} served (discovery)", served, WAIT)

    account = kube.get("v1", "ServiceAccount", release.operator, release.namespace)
    assert account is not None, "no ServiceAccount"
    policy = kube.get("networking.k8s.io/v1", "NetworkPolicy", release.operator, release.namespace)
    assert policy is not None, "no NetworkPolicy for the operator's pods"
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}, policy["spec"]
    assert cluster_role_rules(kube, release) == rbac.rules(clusterwide=True, peering=False)
    binding = kube.get(RBAC_API, "ClusterRoleBinding", release.operator)
    assert binding is not None, "no ClusterRoleBinding"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": release.operator,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": release.operator, "namespace": release.namespace}
    ]

    deployment = operator_deployment(kube, release)
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == release.operator
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == f"{UNPULLABLE}:0"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"healthz": 8081}
    for probe in ("livenessProbe", "readinessProbe"):
        check = container[probe]["httpGet"]
        assert (check["path"], check["port"]) == ("/healthz", "healthz"), (probe, check)
    args = container["args"]
    assert args[0] == "operator"
    assert "--liveness=http://0.0.0.0:8081/healthz" in args
    assert not [a for a in args if a.startswith(("--peering", "--namespace", "--verbose"))], args
    assert kube.get("kopf.dev/v1", "ClusterKopfPeering", release.name) is None


def test_upgrade_with_changed_values(kube: Kube, release: Release) -> None:
    before = operator_deployment(kube, release)["metadata"]["generation"]
    operator = {
        **release.values["operator"],
        "replicas": 3,
        "verbose": True,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    }
    release.values = {**release.values, "operator": operator}
    try:
        release.helm.upgrade(
            str(CHART), release.name, release.values, namespace=release.namespace,
            timeout=HELM_TIMEOUT,
        )  # fmt: skip
    except helm_python.HelmError as exc:
        pytest.fail(f"helm upgrade failed: {exc}", pytrace=False)
    revisions = release.helm.history(release.name)
    assert len(revisions) == 2, f"helm history: {[r.get('info') for r in revisions]}"

    deployment = operator_deployment(kube, release)
    assert deployment["metadata"]["generation"] > before
    assert deployment["spec"]["replicas"] == 3
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert f"--peering={release.name}" in container["args"]
    assert "--verbose" in container["args"]
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert kube.get("kopf.dev/v1", "ClusterKopfPeering", release.name) is not None
    pdb = kube.get("policy/v1", "PodDisruptionBudget", release.operator, release.namespace)
    assert pdb is not None, "no PodDisruptionBudget for the peered replicas"
    assert cluster_role_rules(kube, release) == rbac.rules(clusterwide=True, peering=True)


def test_uninstall_leaves_the_crds_and_the_custom_resources(kube: Kube, release: Release) -> None:
    """Last: it removes the release."""
    pool = {
        "apiVersion": API_VERSION,
        "kind": "ModelPool",
        "metadata": {"name": "kept", "namespace": release.namespace},
        "spec": {"models": [{"name": "m", "external": {"provider": "openai"}}]},
    }
    kube.apply(pool)
    release.helm.uninstall(release.name, timeout=HELM_TIMEOUT)

    def release_gone() -> None:
        left = [
            kind
            for api_version, kind, namespace in (
                ("apps/v1", "Deployment", release.namespace),
                ("v1", "ServiceAccount", release.namespace),
                ("policy/v1", "PodDisruptionBudget", release.namespace),
                ("networking.k8s.io/v1", "NetworkPolicy", release.namespace),
                (RBAC_API, "ClusterRole", None),
                (RBAC_API, "ClusterRoleBinding", None),
            )
            if kube.get(api_version, kind, release.operator, namespace) is not None
        ]
        if kube.get("kopf.dev/v1", "ClusterKopfPeering", release.name) is not None:
            left.append("ClusterKopfPeering")
        assert not left, f"left after helm uninstall: {left}"

    eventually("the release's objects to be deleted", release_gone, WAIT)
    for crd in chart_crds():
        established(kube, crd)  # helm uninstall never deletes CRDs
    assert kube.get(API_VERSION, "ModelPool", "kept", release.namespace) is not None
