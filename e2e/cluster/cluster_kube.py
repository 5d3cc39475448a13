"""The Kubernetes API as the cluster e2e suite uses it: connect (or say why not), server-side
apply, get, list, merge-patch and delete plain dicts, and ``eventually`` for polling with a
deadline.

Used by ``conftest`` (CRDs, namespaces) and ``test_operator_cluster``. A thin layer over the
official client's ``DynamicClient``: every object in and out is a plain dict, every write is
server-side apply under the field manager ``switchman-e2e`` unless a test means to act like a
person editing by hand.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
from kubernetes.dynamic.resource import Resource

from switchman.api.v1alpha1 import API_VERSION

FIELD_MANAGER = "switchman-e2e"
REQUEST_TIMEOUT = 30.0
T = TypeVar("T")

__all__ = ["FIELD_MANAGER", "ApiException", "Kube", "api_message", "connect", "eventually"]


class Kube:
    """One cluster, reached through a ``DynamicClient`` (discovery cached in ``cache_file``)."""

    def __init__(self, api: client.ApiClient, cache_file: Path) -> None:
        self.dynamic = DynamicClient(api, cache_file=str(cache_file))  # type: ignore[no-untyped-call]

    def resource(self, api_version: str, kind: str) -> Resource:
        """The API resource for a kind; ``ResourceNotFoundError`` until discovery lists it."""
        found: Resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
        return found

    def apply(self, obj: Mapping[str, Any], *, manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply ``obj`` (force: this suite owns what it applies); the live object."""
        resource = self.resource(obj["apiVersion"], obj["kind"])
        live = resource.server_side_apply(
            body=dict(obj),
            field_manager=manager,
            force_conflicts=True,
            _request_timeout=REQUEST_TIMEOUT,
        )
        return _plain(live)

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        try:
            live = self.resource(api_version, kind).get(
                name=name, namespace=namespace, _request_timeout=REQUEST_TIMEOUT
            )
        except NotFoundError:
            return None
        return _plain(live)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        listed = self.resource(api_version, kind).get(
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            _request_timeout=REQUEST_TIMEOUT,
        )
        items: list[dict[str, Any]] = _plain(listed).get("items") or []
        return items

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Mapping[str, Any],
        *,
        manager: str,
    ) -> dict[str, Any]:
        """A JSON merge patch, as ``kubectl edit``/``kubectl patch --type merge`` would send."""
        live = self.resource(api_version, kind).patch(
            body=dict(patch),
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
            field_manager=manager,
            _request_timeout=REQUEST_TIMEOUT,
        )
        return _plain(live)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete with background propagation (the garbage collector removes dependents);
        False when it was already gone."""
        try:
            self.resource(api_version, kind).delete(
                name=name,
                namespace=namespace,
                propagation_policy="Background",
                _request_timeout=REQUEST_TIMEOUT,
            )
        except NotFoundError:
            return False
        return True


def _plain(instance: Any) -> dict[str, Any]:
    """A ``ResourceInstance`` (or the raw JSON the client hands back) as a plain dict."""
    if isinstance(instance, dict):
        return instance
    if isinstance(instance, str):
        parsed: dict[str, Any] = json.loads(instance)
        return parsed
    plain: dict[str, Any] = instance.to_dict()
    return plain


def api_message(exc: ApiException) -> str:
    """The ``message`` of a Kubernetes ``Status`` error body (the text ``kubectl`` prints)."""
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return str(exc.body or exc.reason)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(exc.body)


def connect(cache_file: Path, timeout: float = 5.0) -> Kube | str:
    """A ``Kube`` for the cluster ``$KUBECONFIG`` points at, or why there is none.

    The probe (``GET /version``) gets one attempt of ``timeout`` seconds, no retries, so an
    unreachable server costs at most that. 401 and 403 count as reachable (a cluster that is
    there but refuses us must fail the tests, not skip them); any other error status means
    something that is not a Kubernetes API server answered (a proxy, a web server): no cluster.
    """
    kubeconfig = os.environ.get("KUBECONFIG", "")
    if not kubeconfig:
        return "KUBECONFIG is not set"
    try:
        probe_config = _configuration(kubeconfig)
    except (config.ConfigException, OSError, ValueError, KeyError) as exc:
        return f"KUBECONFIG={kubeconfig} cannot be loaded: {exc}"
    probe_config.retries = 0
    where = f"{probe_config.host} (KUBECONFIG={kubeconfig})"
    with client.ApiClient(probe_config) as probe:
        try:
            client.VersionApi(probe).get_code(_request_timeout=(timeout, timeout))
        except ApiException as exc:
            if exc.status not in (401, 403):  # e.g. a proxy's 502 for a host it cannot reach
                return f"{where} answered GET /version with {exc.status} {exc.reason}"
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # connection, TLS, timeout
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return f"the API server {where} is unreachable ({timeout:.0f} s limit): {reason}"
        except ValueError:  # pydantic's ValidationError: the body is not a version document
            return f"{where} answered GET /version with something other than a Kubernetes version"
    return Kube(client.ApiClient(_configuration(kubeconfig)), cache_file)


def _configuration(kubeconfig: str) -> client.Configuration:
    configuration = client.Configuration()
    # persist_config=False: refreshed tokens are never written back into the user's kubeconfig.
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration, persist_config=False
    )
    return configuration


def eventually(
    what: str,
    check: Callable[[], T],
    timeout: float,
    *,
    interval: float = 1.0,
    guard: Callable[[], None] = lambda: None,
) -> T:
    """Call ``check`` until it returns without raising ``AssertionError`` (or the dynamic
    client's ``ResourceNotFoundError`` while discovery catches up) and return its result.

    On timeout the test fails with the last assertion's message, so the report says what the
    cluster looked like, not only that time ran out. ``guard`` runs first on every round (the
    operator fixture's liveness check: an exited operator fails at once, with its log).
    """
    deadline = time.monotonic() + timeout
    while True:
        guard()
        try:
            return check()
        except (AssertionError, ResourceNotFoundError) as exc:
            last = str(exc) or type(exc).__name__
        if time.monotonic() >= deadline:
            pytest.fail(
                f"timed out after {timeout:.0f} s waiting for {what}: {last}", pytrace=False
            )
        time.sleep(interval)


CUSTOM_KINDS = ("RoutingPolicy", "ModelPool")


def delete_custom_resources(kube: Kube, namespace: str, timeout: float) -> None:
    """Delete the namespace's ModelPools and RoutingPolicies and wait until they are gone."""
    for kind in CUSTOM_KINDS:
        for obj in kube.list(API_VERSION, kind, namespace):
            kube.delete(API_VERSION, kind, obj["metadata"]["name"], namespace)

    def gone() -> None:
        left = [
            o["metadata"]["name"]
            for k in CUSTOM_KINDS
            for o in kube.list(API_VERSION, k, namespace)
        ]
        assert not left, f"still there: {left}"

    eventually("the custom resources to be deleted", gone, timeout)
