"""The kopf operator against kmock, shared by ``test_operator_kmock`` and
``test_operator_kmock_rollouts``: the emulated API server, the operator running in the test's
event loop, and the helpers both drive them with.

kmock keeps objects and serves list/watch; ``Cluster`` adds what a real API server does and the
operator relies on: server-side apply creates a missing object, every write bumps
``resourceVersion`` (kopf's consistency checks), and a DELETE's preconditions (``uid``,
``resourceVersion``) are checked against the object's own metadata, answering 409 like the API
server (kmock alone ignores them: that hid a prune that never deleted anything). It does no
garbage collection, label selection or schema validation (the e2e suite covers those), and no
Deployment controller: tests write a Deployment's status the way the controller does at each
step of a rollout (``rollout_status``). ``running_cluster`` checks, when it closes, that every
request was allowed by ``operator.rbac`` and that no DELETE was refused by its preconditions.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import aiohttp.web
import kmock
import kopf

from switchman.operator import rbac
from switchman.operator.handlers import register
from switchman.operator.kube import PLURALS, Kube
from switchman.operator.run import build_settings

NS = "team-a"
GROUP_VERSION = "switchman.dev/v1alpha1"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TIMEOUT = 20.0  # generous: a loaded 2-core CI box
VERBS = {"get", "list", "watch", "create", "patch", "delete"}
T = TypeVar("T")


class Cluster(kmock.KubernetesEmulator):
    """kmock plus what the API server does that the operator relies on.

    Server-side apply creates a missing object, every write bumps ``resourceVersion`` (kopf
    waits for its own patches to come back by it) and ``generateName`` names kopf's Events.
    """

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.version = 100
        self.created_by_apply: set[int] = set()
        self.refused: list[str] = []  # the messages of DELETEs refused by their preconditions

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        refused = self._precondition_failed(request)
        if refused is not None:
            return refused
        apply = "apply-patch" in request.headers.get("Content-Type", "")
        if apply and request.name and not request.subresource:
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                if key not in self.objects or self.objects[key].deleted:
                    return await self.create(request, key)
        elif isinstance(request.data, dict) and request.method.value in ("POST", "PATCH"):
            # The recorded request's data gets these too; tests read objects instead.
            self.version += 1
            meta = request.data.setdefault("metadata", {})
            meta["resourceVersion"] = str(self.version)
            if request.method.value == "POST" and "name" not in meta and "generateName" in meta:
                meta["name"] = f"{meta['generateName']}{self.version}"  # kopf's Events
        response: aiohttp.web.StreamResponse = await super()._handle(request)
        return response

    def _precondition_failed(self, request: Any) -> aiohttp.web.Response | None:
        """The API server's 409 for a DELETE whose preconditions do not match the object."""
        body = request.data if isinstance(request.data, dict) else {}
        wanted = body.get("preconditions") or {}
        if request.method.value != "DELETE" or not request.name or not wanted:
            return None
        try:
            live = self.objects[request.resource, request.namespace, request.name]
        except KeyError:
            return None  # kmock answers 404
        if live.deleted:
            return None
        meta = live.raw.get("metadata") or {}
        for field, name in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if field in wanted and wanted[field] != meta.get(field):
                message = (
                    f'Operation cannot be fulfilled on {request.resource.plural} "{request.name}": '
                    f"Precondition failed: {name} in precondition: {wanted[field]}, "
                    f"{name} in object meta: {meta.get(field)}"
                )
                self.refused.append(message)
                status = {"kind": "Status", "status": "Failure", "reason": "Conflict"}
                return aiohttp.web.json_response(
                    {**status, "message": message, "code": 409}, status=409
                )
        return None

    async def create(self, request: Any, key: tuple[Any, str, str]) -> aiohttp.web.Response:
        self.version += 1
        body = copy.deepcopy(request.data)
        body["metadata"].update(
            uid=f"uid-{request.name}-{self.version}",
            resourceVersion=str(self.version),
            generation=1,
        )
        if key in self.objects:
            self.objects[key].create(body)
        else:
            self.objects[key] = body
        self.created_by_apply.add(request.id)
        raw = self.objects[key].raw
        await self._buses[request.resource].put({"type": "ADDED", "object": raw})
        return aiohttp.web.json_response(raw, status=201)


def now() -> float:
    return NOW


def pool(name: str, *models: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ModelPool",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": {"models": list(models)},
    }


def vllm(name: str, **vllm: Any) -> dict[str, Any]:
    return {"name": name, "vllm": {"source": {"huggingFace": {"repo": f"org/{name}"}}, **vllm}}


def external(name: str, secret: str) -> dict[str, Any]:
    ref = {"name": secret, "key": "api-key"}
    return {"name": name, "external": {"provider": "openai", "credentialsSecret": ref}}


def policy(name: str, pool: str, candidates: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "RoutingPolicy",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": {"pools": [{"name": pool}], "routes": [{"name": "auto", "candidates": candidates}]},
    }


def url(api_version: str, plural: str, name: str | None = None) -> str:
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{root}/namespaces/{NS}/{plural}" + (f"/{name}" if name else "")


async def send(cluster: Cluster, method: str, path: str, body: Any = None) -> None:
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
    async with cluster.request(method, path, json=body, headers=headers) as response:
        assert response.status < 300, await response.text()


async def create(cluster: Cluster, plural: str, obj: dict[str, Any]) -> None:
    obj["metadata"]["resourceVersion"] = "1"
    await send(cluster, "POST", url(obj["apiVersion"], plural), obj)


def get(cluster: Cluster, api_version: str, plural: str, name: str) -> dict[str, Any] | None:
    try:
        obj = cluster.objects[f"{api_version}/{plural}", NS, name]
    except KeyError:
        return None
    return None if obj.deleted else copy.deepcopy(dict(obj.raw))


def status(cluster: Cluster, plural: str, name: str) -> dict[str, Any]:
    obj = get(cluster, GROUP_VERSION, plural, name)
    return dict((obj or {}).get("status") or {})


def condition(status: dict[str, Any], type_: str) -> tuple[str, str] | None:
    found = [c for c in status.get("conditions", []) if c["type"] == type_]
    return (found[0]["status"], found[0]["reason"]) if found else None


def applies(cluster: Cluster, plural: str, name: str) -> list[Any]:
    return [
        r
        for r in cluster
        if r.method.value == "PATCH"
        and "apply-patch" in r.headers.get("Content-Type", "")
        and r.url.path.endswith(f"/{plural}/{name}")
    ]


def rollout_status(
    replicas: int, updated: int, available: int, reason: str, *, total: int | None = None
) -> dict[str, Any]:
    """A Deployment's status as the Deployment controller writes it at one step of a rollout."""
    progressing = {
        "type": "Progressing",
        "status": "False" if reason == "ProgressDeadlineExceeded" else "True",
        "reason": reason,
        "message": f"{reason} (written by the test as the controller would)",
    }
    return {
        "observedGeneration": 1,
        "replicas": replicas if total is None else total,
        "updatedReplicas": updated,
        "readyReplicas": available,
        "availableReplicas": available,
        "unavailableReplicas": max((replicas if total is None else total) - available, 0),
        "conditions": [progressing],
    }


async def deployment_status(cluster: Cluster, name: str, status: dict[str, Any]) -> None:
    path = url("apps/v1", "deployments", name) + "/status"
    await send(cluster, "PATCH", path, {"status": status})


def ready_message(cluster: Cluster, pool: str) -> str:
    found = [
        c for c in status(cluster, "modelpools", pool).get("conditions", []) if c["type"] == "Ready"
    ]
    return str(found[0]["message"]) if found else ""


def events(cluster: Cluster, reason: str) -> list[dict[str, Any]]:
    posted = [
        r.data for r in cluster if r.method.value == "POST" and r.url.path.endswith("/events")
    ]
    return [e for e in posted if e.get("reason") == reason]


async def eventually(check: Callable[[], T | None], what: str) -> T:
    """Poll ``check`` until it returns something truthy (the operator works asynchronously)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def allowed(cluster: Cluster, request: Any) -> bool:
    """Whether ``operator.rbac`` grants what the operator (or kopf) asked for."""
    if request.headers.get("User-Agent", "").startswith("kmock"):
        return True  # the test's own requests
    resource = request.resource
    if resource is None or not resource.plural or request.action is None:
        return True  # discovery (/api, /apis/group/version) needs no rule
    plural = resource.plural + (f"/{request.subresource}" if request.subresource else "")
    verb = {"LIST": "list", "WATCH": "watch", "FETCH": "get"}.get(request.action.name)
    verb = verb or {"POST": "create", "PATCH": "patch", "DELETE": "delete"}[request.method.value]
    if request.id in cluster.created_by_apply and not rbac.allows(resource.group, plural, "create"):
        return False  # server-side apply of a missing object needs create too
    return rbac.allows(resource.group, plural, verb)


@contextlib.asynccontextmanager
async def running_cluster() -> AsyncIterator[Cluster]:
    """The emulated API server; on exit, every request allowed and no DELETE refused."""
    async with Cluster() as emulator, kmock.Server(emulator):
        info = kmock.ResourceInfo
        emulator.resources["v1/namespaces"] = info(kind="Namespace", namespaced=False, verbs=VERBS)
        emulator.resources["v1/events"] = info(kind="Event", namespaced=True, verbs=VERBS)
        emulator.resources["v1/secrets"] = info(kind="Secret", namespaced=True, verbs=VERBS)
        for (api_version, kind), plural in PLURALS.items():
            emulator.resources[f"{api_version}/{plural}"] = info(
                kind=kind, namespaced=True, verbs=VERBS, subresources={"status"}
            )
        yield emulator
        denied = [request for request in emulator if not allowed(emulator, request)]
        assert denied == [], "requests that operator.rbac does not allow"
        assert emulator.refused == [], "DELETEs whose preconditions did not match the object"


@contextlib.asynccontextmanager
async def running_operator(cluster: Cluster) -> AsyncIterator[None]:
    """The operator (``handlers.register`` + ``run.build_settings``) logged in to ``cluster``."""
    registry = kopf.OperatorRegistry()
    server = str(cluster.url)
    register(registry, Kube(), login=lambda **_: kopf.ConnectionInfo(server=server), clock=now)
    settings = build_settings()
    ready = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(registry=registry, settings=settings, namespaces=[NS], ready_flag=ready)
    )
    await asyncio.wait_for(ready.wait(), TIMEOUT)
    yield
    assert not task.done(), "the operator stopped on its own"
    task.cancel()  # the stop flag would wait 5 s for kmock's open watch streams
    with contextlib.suppress(asyncio.CancelledError):
        await task
