"""Fixtures for the real-cluster tier (``e2e/cluster``): the cluster, Switchman's CRDs, a scratch
namespace per test and the operator watching it.

- ``kube`` (session): the cluster ``$KUBECONFIG`` points at. No ``KUBECONFIG``, or an API server
  that does not answer ``GET /version`` within 5 s, skips every test here with that one reason
  (CI has no cluster); ``SWITCHMAN_SKIP_CLUSTER=1`` skips on purpose. Nothing here uses the vLLM
  fixtures of ``e2e/conftest.py`` (none of them is autouse).
- ``crds`` (session): server-side applies ``crds/*.yaml`` and waits until each is Established
  and served; at the end it deletes only the CRDs that did not exist before the session.
- ``namespace``: a fresh ``switchman-e2e-XXXXXXXX`` namespace, labelled ``switchman.dev/e2e``,
  deleted afterwards (custom resources left with finalizers are released first).
- ``operator``: ``switchman operator --namespace NS`` as a subprocess; afterwards the namespace's
  ModelPools and RoutingPolicies are deleted while it still runs, then it is stopped. A failed
  test's report gets the tail of its log.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_kube import (
    CUSTOM_KINDS,
    ApiException,
    Kube,
    api_message,
    connect,
    delete_custom_resources,
    eventually,
)
from cluster_operator import Operator, start_operator
from kubernetes.dynamic.exceptions import NotFoundError
from terminal import tail

from switchman.api.v1alpha1 import API_VERSION

SKIP_ENV = "SWITCHMAN_SKIP_CLUSTER"
CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
CRD_API = "apiextensions.k8s.io/v1"
CRD_TIMEOUT = 60.0
CLEANUP_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Kube:
    """The cluster under test, or a skip saying why there is none."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: the real-cluster e2e tier is skipped on purpose")
    found = connect(tmp_path_factory.mktemp("kube") / "discovery.json")
    if isinstance(found, str):
        pytest.skip(f"no reachable Kubernetes cluster: {found}")
    return found


@pytest.fixture(scope="session")
def crds(kube: Kube) -> Iterator[list[str]]:
    """Switchman's CRDs installed (server-side apply), Established and discoverable."""
    docs = [
        doc
        for path in sorted(CRD_DIR.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
    ]
    if not docs:
        pytest.fail(
            f"no CustomResourceDefinitions in {CRD_DIR}: generate them with "
            "`python -m switchman.api.v1alpha1.crdgen`",
            pytrace=False,
        )
    installed: list[str] = []
    try:
        for crd in docs:
            name = crd["metadata"]["name"]
            if kube.get(CRD_API, "CustomResourceDefinition", name) is None:
                installed.append(name)
            try:
                kube.apply(crd)
            except ApiException as exc:
                message = f"the API server rejected CRD {name}: {api_message(exc)}"
                pytest.fail(message, pytrace=False)
        for crd in docs:
            ready = functools.partial(_ready, kube, crd)
            eventually(f"CRD {crd['metadata']['name']} to be served", ready, CRD_TIMEOUT)
        yield [crd["metadata"]["name"] for crd in docs]
    finally:
        for name in installed:
            kube.delete(CRD_API, "CustomResourceDefinition", name)


def _ready(kube: Kube, crd: dict[str, Any]) -> None:
    """Established, listed by discovery, and answering a list request (a request right after
    Established can still meet a 404 while the API server starts serving the resource)."""
    name, spec = crd["metadata"]["name"], crd["spec"]
    live = kube.get(CRD_API, "CustomResourceDefinition", name)
    assert live is not None, f"CRD {name} is gone"
    conditions = {c["type"]: c for c in (live.get("status") or {}).get("conditions") or []}
    established = conditions.get("Established", {}).get("status")
    assert established == "True", f"CRD {name} not Established: {conditions}"
    version = next(v["name"] for v in spec["versions"] if v.get("served", True))
    try:
        kube.list(f"{spec['group']}/{version}", spec["names"]["kind"])
    except NotFoundError as exc:
        raise AssertionError(f"CRD {name} is not served yet: {api_message(exc)}") from exc


@pytest.fixture
def namespace(kube: Kube, crds: list[str]) -> Iterator[str]:
    """A namespace of its own for one test, deleted afterwards."""
    name = f"switchman-e2e-{secrets.token_hex(4)}"
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"switchman.dev/e2e": "true"}},
        }
    )
    yield name
    for kind in CUSTOM_KINDS:  # finalizers nobody will remove would keep the namespace forever
        for obj in kube.list(API_VERSION, kind, name):
            if obj["metadata"].get("finalizers"):
                kube.merge_patch(
                    API_VERSION,
                    kind,
                    obj["metadata"]["name"],
                    name,
                    {"metadata": {"finalizers": None}},
                    manager="switchman-e2e-cleanup",
                )
    kube.delete("v1", "Namespace", name)


@pytest.fixture
def operator(kube: Kube, namespace: str, tmp_path: Path) -> Iterator[Operator]:
    """The operator watching ``namespace``; the namespace's custom resources are deleted while
    it still runs (so any handler it has on deletion can run), then it is stopped."""
    running = start_operator(namespace, tmp_path)
    try:
        yield running
        delete_custom_resources(kube, namespace, CLEANUP_TIMEOUT)
    finally:
        running.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that ran the operator gets the tail of the operator's log in its report."""
    report = yield
    running = getattr(item, "funcargs", {}).get("operator")
    if report.failed and isinstance(running, Operator):
        report.sections.append((f"operator log {running.log} (last lines)", tail(running.log, 80)))
    return report
