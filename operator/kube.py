"""The only Kubernetes API code of the operator: server-side apply, prune, and status patches.

Called by ``reconcile`` (apply the rendered children, delete the ones no longer rendered, write
a custom resource's status subresource). Reading happens through kopf's watches and indexes
(``handlers``), Events through ``kopf.event``; kopf itself patches its progress annotations.
``rbac`` lists every verb this module and kopf use; a test keeps the two in agreement.

Credentials are the ones kopf logs in with: the ``@kopf.on.login`` handler hands the same
``kopf.ConnectionInfo`` to ``Kube.login`` (kopf logs in again on a 401, which refreshes it).
``missing_credentials`` is the start-up check ``run`` makes first: without any credentials kopf
would log a traceback every minute forever, so the operator says why once and exits instead.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import kopf

logger = logging.getLogger(__name__)

FIELD_MANAGER = "switchman-operator"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_CONTENT_TYPE = "application/merge-patch+json"

# (apiVersion, kind) -> plural, for every kind the operator writes.
PLURALS: dict[tuple[str, str], str] = {
    ("apps/v1", "Deployment"): "deployments",
    ("v1", "Service"): "services",
    ("v1", "ConfigMap"): "configmaps",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("switchman.dev/v1alpha1", "ModelPool"): "modelpools",
    ("switchman.dev/v1alpha1", "RoutingPolicy"): "routingpolicies",
}


SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def missing_credentials(token: Path = SERVICE_ACCOUNT_TOKEN) -> str | None:
    """Why no cluster can be logged in to, or None when credentials exist.

    The same two sources, in the same order, as kopf's ``login_via_client``: the Pod's service
    account (``KUBERNETES_SERVICE_HOST`` and its token), else the kubeconfig (``$KUBECONFIG``, or
    ``~/.kube/config``) and its current context. Whether the server answers is not checked here:
    kopf reports that, and retries, as it does for any outage.
    """
    if os.environ.get("KUBERNETES_SERVICE_HOST") and token.is_file():
        return None
    from kubernetes import client, config  # the operator's extra; imported only to start

    where = os.environ.get("KUBECONFIG") or "~/.kube/config"
    files = [Path(os.path.expanduser(f)) for f in where.split(os.pathsep) if f]
    try:
        if not any(f.is_file() for f in files):
            raise FileNotFoundError(
                "no such file"
            )  # the file named now (the client reads $KUBECONFIG once, when it is imported)
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.path.expanduser(where),
            client_configuration=client.Configuration(),
            persist_config=False,
        )
    except (config.ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return (
            "no Kubernetes credentials: not in a Pod with a service account "
            f"(KUBERNETES_SERVICE_HOST unset or no token), and kubeconfig {where} cannot be "
            f"used ({reason}). Set KUBECONFIG to a kubeconfig whose current context reaches "
            "the cluster (kubectl config current-context), or run the operator in the cluster "
            "(charts/switchman)."
        )
    return None


class KubeError(Exception):
    """A failed API call: the HTTP status and the API server's message (never a body we sent)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


def object_path(api_version: str, kind: str, namespace: str, name: str) -> str:
    """The URL path of a namespaced object, e.g. ``/apis/apps/v1/namespaces/ns/deployments/x``."""
    try:
        plural = PLURALS[(api_version, kind)]
    except KeyError:
        raise KubeError(0, f"the operator does not write {kind} ({api_version})") from None
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{root}/namespaces/{namespace}/{plural}/{name}"


class Kube:
    """An aiohttp client for the few writes the operator makes; one session per login."""

    def __init__(self, *, field_manager: str = FIELD_MANAGER, timeout: float = 30.0) -> None:
        self._field_manager = field_manager
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._info: kopf.ConnectionInfo | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stale: list[aiohttp.ClientSession] = []

    def login(self, info: kopf.ConnectionInfo) -> None:
        """Use ``info`` from now on (kopf's login handler calls this on every (re)login).

        The previous session stays open until ``close``: requests may still be using it, and
        kopf logs in again only after a 401, so there are few.
        """
        self._info = info
        if self._session is not None:
            self._stale.append(self._session)
            self._session = None

    async def close(self) -> None:
        for session in [*self._stale, *([self._session] if self._session else [])]:
            await session.close()
        self._stale.clear()
        self._session = None

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply ``manifest`` (force: the operator owns every field it renders)."""
        meta = manifest["metadata"]
        path = object_path(
            manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"]
        )
        params = {"fieldManager": self._field_manager, "force": "true"}
        # JSON is YAML: the apply content type accepts it and nothing is re-encoded.
        return await self._request("PATCH", path, manifest, APPLY_CONTENT_TYPE, params)

    async def delete(
        self, api_version: str, kind: str, namespace: str, name: str, *, uid: str
    ) -> None:
        """Delete one object if it is still the one seen: ``uid`` is the object's own uid (the
        API server checks it as a precondition). Gone is fine; a 409 means the object of that
        name now has another uid (it was replaced since it was seen): it is left alone, logged,
        and pruned by a later pass if it is still not rendered then."""
        path = object_path(api_version, kind, namespace, name)
        body = {"propagationPolicy": "Background", "preconditions": {"uid": uid}}
        try:
            await self._request("DELETE", path, body, "application/json", {})
        except KubeError as exc:
            if exc.status == 409:
                logger.info("%s %s/%s not deleted: %s", kind, namespace, name, exc.message)
            elif exc.status != 404:
                raise

    async def patch_status(
        self, obj: Mapping[str, Any], status: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the status subresource of a custom resource with ``status``."""
        meta = obj["metadata"]
        path = object_path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        body = {"status": dict(status)}
        return await self._request("PATCH", f"{path}/status", body, MERGE_CONTENT_TYPE, {})

    async def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any],
        content_type: str,
        params: Mapping[str, str],
    ) -> dict[str, Any]:
        session, server = self._connect()
        data = json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        url = server.rstrip("/") + path
        try:
            async with session.request(
                method, url, data=data, headers=headers, params=params, timeout=self._timeout
            ) as response:
                text = await response.text()
                if response.status >= 400:
                    raise KubeError(response.status, _message(text))
                result: dict[str, Any] = json.loads(text) if text else {}
                return result
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(0, f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    def _connect(self) -> tuple[aiohttp.ClientSession, str]:
        info = self._info
        if info is None:
            raise KubeError(0, "not logged in yet")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=info.as_ssl_context()),
                headers={**info.as_http_headers(), "User-Agent": FIELD_MANAGER},
                trust_env=info.trust_env,
            )
        return self._session, info.server


def _message(text: str) -> str:
    """The ``message`` of a Kubernetes Status body, else the (truncated) text."""
    try:
        status = json.loads(text)
    except ValueError:
        return text[:500]
    message = status.get("message") if isinstance(status, dict) else None
    if isinstance(message, str):
        return message
    return text[:500]
