"""The kopf operator against kmock: handlers, server-side apply, status, Events, RBAC.

The operator runs in the test's event loop (``kopf.operator`` with the registry that
``handlers.register`` fills and the settings of ``run.build_settings``), logged in to a kmock
Kubernetes emulator. kmock keeps objects and serves list/watch; ``Cluster`` adds what a real API
server does and the operator relies on: server-side apply creates a missing object, and every
write bumps ``resourceVersion`` (kopf's consistency checks), and a DELETE's preconditions
(``uid``, ``resourceVersion``) are checked against the object's own metadata, answering 409
like the API server (kmock alone ignores them: that hid a prune that never deleted anything).
It does no garbage collection, label selection or schema validation (the e2e suite covers
those), and no Deployment controller: tests write a Deployment's status the way the controller
does at each step of a rollout. Every test's requests are also checked against
``operator.rbac``.

    scenario             | drive                             | expect
    ---------------------|-----------------------------------|-------------------------------
    pool applied         | create a ModelPool                | SSA PATCHes (content type,
                         |                                   | fieldManager, force, rendered
                         |                                   | body), status, Applied event
    pool updated         | replicas 1 -> 3                   | re-applied, desired 3
    child ready          | Deployment status: complete       | Ready True, Ready event
    mid-rollout          | 2 of 3 updated, 1 unavailable,    | Ready False, Progressing
                         | then complete                     | True; then Ready True
    stalled rollout      | ProgressDeadlineExceeded          | Degraded RolloutStalled
    child deleted/edited | DELETE / hand-edit the Deployment | applied again
    model removed        | drop a model from the pool        | its children deleted, each
                         |                                   | by its own uid (no 409)
    autoscaling          | autoscaling instead of replicas,  | HPA, no Deployment replicas;
                         | then back to replicas             | the HPA deleted
    policy before pool   | policy first, its pool later      | PoolNotFound + Warning, then
                         |                                   | ConfigMap, gateway applied
    invalid spec         | bad pool spec, then fixed         | InvalidSpec + Warning, nothing
                         |                                   | applied; applied once fixed
    pool deleted         | DELETE a pool a policy uses       | gone at once (no finalizer),
                         |                                   | children left to GC, policy
                         |                                   | PoolNotFound, gateway kept,
                         |                                   | its routes and rollout shown
    gateway stalls       | gateway ProgressDeadlineExceeded  | policy Degraded RolloutStalled
    credentials Secret   | missing, created, then changed    | SecretNotFound, Ready, the
                         |                                   | gateway's checksum changes
    settings, rbac       | build_settings; rules vs the code | peering, priorities; every
                         | and every request made            | request allowed, none extra
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
import pytest

from switchman.api.gatewayconfig import parse
from switchman.operator import rbac
from switchman.operator.handlers import CHILD_RESOURCES, register
from switchman.operator.kube import FIELD_MANAGER, PLURALS, Kube
from switchman.operator.render import render_pool
from switchman.operator.run import build_settings, priority_of

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
                    return await self._create(request, key)
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

    async def _create(self, request: Any, key: tuple[Any, str, str]) -> aiohttp.web.Response:
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


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
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
        denied = [request for request in emulator if not _allowed(emulator, request)]
        assert denied == [], "requests that operator.rbac does not allow"
        assert emulator.refused == [], "DELETEs whose preconditions did not match the object"


@pytest.fixture
async def operator(cluster: Cluster) -> AsyncIterator[None]:
    registry = kopf.OperatorRegistry()
    server = str(cluster.url)
    register(registry, Kube(), login=lambda **_: kopf.ConnectionInfo(server=server), clock=_now)
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


def _now() -> float:
    return NOW


# ----- helpers -----


def _pool(name: str, *models: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ModelPool",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": {"models": list(models)},
    }


def _vllm(name: str, **vllm: Any) -> dict[str, Any]:
    return {"name": name, "vllm": {"source": {"huggingFace": {"repo": f"org/{name}"}}, **vllm}}


def _external(name: str, secret: str) -> dict[str, Any]:
    ref = {"name": secret, "key": "api-key"}
    return {"name": name, "external": {"provider": "openai", "credentialsSecret": ref}}


def _policy(name: str, pool: str, candidates: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "RoutingPolicy",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": {"pools": [{"name": pool}], "routes": [{"name": "auto", "candidates": candidates}]},
    }


def _url(api_version: str, plural: str, name: str | None = None) -> str:
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{root}/namespaces/{NS}/{plural}" + (f"/{name}" if name else "")


async def _send(cluster: Cluster, method: str, path: str, body: Any = None) -> None:
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
    async with cluster.request(method, path, json=body, headers=headers) as response:
        assert response.status < 300, await response.text()


async def _create(cluster: Cluster, plural: str, obj: dict[str, Any]) -> None:
    obj["metadata"]["resourceVersion"] = "1"
    await _send(cluster, "POST", _url(obj["apiVersion"], plural), obj)


def _get(cluster: Cluster, api_version: str, plural: str, name: str) -> dict[str, Any] | None:
    try:
        obj = cluster.objects[f"{api_version}/{plural}", NS, name]
    except KeyError:
        return None
    return None if obj.deleted else copy.deepcopy(dict(obj.raw))


def _status(cluster: Cluster, plural: str, name: str) -> dict[str, Any]:
    obj = _get(cluster, GROUP_VERSION, plural, name)
    return dict((obj or {}).get("status") or {})


def _condition(status: dict[str, Any], type_: str) -> tuple[str, str] | None:
    found = [c for c in status.get("conditions", []) if c["type"] == type_]
    return (found[0]["status"], found[0]["reason"]) if found else None


def _applies(cluster: Cluster, plural: str, name: str) -> list[Any]:
    return [
        r
        for r in cluster
        if r.method.value == "PATCH"
        and "apply-patch" in r.headers.get("Content-Type", "")
        and r.url.path.endswith(f"/{plural}/{name}")
    ]


def _rollout_status(
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


async def _deployment_status(cluster: Cluster, name: str, status: dict[str, Any]) -> None:
    path = _url("apps/v1", "deployments", name) + "/status"
    await _send(cluster, "PATCH", path, {"status": status})


def _ready_message(cluster: Cluster, pool: str) -> str:
    found = [
        c
        for c in _status(cluster, "modelpools", pool).get("conditions", [])
        if c["type"] == "Ready"
    ]
    return str(found[0]["message"]) if found else ""


def _events(cluster: Cluster, reason: str) -> list[dict[str, Any]]:
    posted = [
        r.data for r in cluster if r.method.value == "POST" and r.url.path.endswith("/events")
    ]
    return [e for e in posted if e.get("reason") == reason]


async def _eventually(check: Callable[[], T | None], what: str) -> T:
    """Poll ``check`` until it returns something truthy (the operator works asynchronously)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _allowed(cluster: Cluster, request: Any) -> bool:
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


# ----- ModelPool -----


async def test_pool_is_applied_server_side_and_reports_its_progress(
    cluster: Cluster, operator: None
) -> None:
    pool = _pool("chat", _vllm("qwen"))
    await _create(cluster, "modelpools", pool)
    status = await _eventually(lambda: _status(cluster, "modelpools", "chat"), "pool status")

    rendered = {(m["kind"], m["metadata"]["name"]): m for m in render_pool(pool)}
    assert set(rendered) == {
        ("Deployment", "chat-qwen"),
        ("Service", "chat-qwen"),
        ("PodDisruptionBudget", "chat-qwen"),
    }
    for (kind, name), manifest in rendered.items():
        plural = PLURALS[(manifest["apiVersion"], kind)]
        request = _applies(cluster, plural, name)[0]
        assert request.headers["Content-Type"] == "application/apply-patch+yaml"
        assert request.params == {"fieldManager": FIELD_MANAGER, "force": "true"}
        assert request.data == manifest
        assert _get(cluster, manifest["apiVersion"], plural, name) is not None

    assert status["observedGeneration"] == 1
    assert _condition(status, "Ready") == ("False", "ModelsNotReady")
    assert _condition(status, "Progressing") == ("True", "RollingOut")
    assert _condition(status, "Degraded") == ("False", "AsExpected")
    assert {c["lastTransitionTime"] for c in status["conditions"]} == {"2026-01-01T00:00:00Z"}
    assert status["models"] == [
        {
            "name": "qwen",
            "kind": "vllm",
            "readyReplicas": 0,
            "desiredReplicas": 1,
            "endpoint": "http://chat-qwen.team-a.svc.cluster.local:8000/v1",
        }
    ]
    applied = await _eventually(lambda: _events(cluster, "Applied"), "an Applied event")
    assert applied[0]["type"] == "Normal"
    assert applied[0]["involvedObject"]["name"] == "chat"


async def test_pool_update_is_applied_again(cluster: Cluster, operator: None) -> None:
    await _create(cluster, "modelpools", _pool("chat", _vllm("qwen")))
    await _eventually(lambda: _status(cluster, "modelpools", "chat"), "pool status")

    spec = _pool("chat", _vllm("qwen", replicas=3))["spec"]
    await _send(
        cluster, "PATCH", _url(GROUP_VERSION, "modelpools", "chat"),
        {"spec": spec, "metadata": {"generation": 2}},
    )  # fmt: skip

    def desired() -> bool:
        models = _status(cluster, "modelpools", "chat").get("models") or [{}]
        return bool(models[0].get("desiredReplicas") == 3)

    await _eventually(desired, "desiredReplicas 3")
    assert _applies(cluster, "deployments", "chat-qwen")[-1].data["spec"]["replicas"] == 3
    assert _status(cluster, "modelpools", "chat")["observedGeneration"] == 2


async def test_ready_deployment_makes_the_pool_ready(cluster: Cluster, operator: None) -> None:
    await _create(cluster, "modelpools", _pool("chat", _vllm("qwen")))
    await _eventually(lambda: _get(cluster, "apps/v1", "deployments", "chat-qwen"), "Deployment")

    await _deployment_status(
        cluster, "chat-qwen", _rollout_status(1, 1, 1, "NewReplicaSetAvailable")
    )

    def is_ready() -> dict[str, Any] | None:
        status = _status(cluster, "modelpools", "chat")
        return status if _condition(status, "Ready") == ("True", "Ready") else None

    status = await _eventually(is_ready, "Ready True")
    assert _condition(status, "Progressing") == ("False", "RolloutComplete")
    assert status["models"][0]["readyReplicas"] == 1
    event = (await _eventually(lambda: _events(cluster, "Ready"), "a Ready event"))[0]
    assert event["type"] == "Normal"
    assert event["message"] == "1 of 1 model ready"


async def test_deleted_deployment_is_applied_again(cluster: Cluster, operator: None) -> None:
    await _create(cluster, "modelpools", _pool("chat", _vllm("qwen")))
    await _eventually(lambda: _get(cluster, "apps/v1", "deployments", "chat-qwen"), "Deployment")

    await _send(cluster, "DELETE", _url("apps/v1", "deployments", "chat-qwen"))

    await _eventually(lambda: len(_applies(cluster, "deployments", "chat-qwen")) >= 2, "re-apply")
    await _eventually(lambda: _get(cluster, "apps/v1", "deployments", "chat-qwen"), "restored")


async def test_hand_edited_deployment_is_repaired(cluster: Cluster, operator: None) -> None:
    await _create(cluster, "modelpools", _pool("chat", _vllm("qwen")))
    await _eventually(lambda: _get(cluster, "apps/v1", "deployments", "chat-qwen"), "Deployment")
    before = len(_applies(cluster, "deployments", "chat-qwen"))

    path = _url("apps/v1", "deployments", "chat-qwen")
    await _send(cluster, "PATCH", path, {"spec": {"replicas": 7}})

    def repaired() -> bool:
        live = _get(cluster, "apps/v1", "deployments", "chat-qwen") or {}
        return len(_applies(cluster, "deployments", "chat-qwen")) > before and (
            live.get("spec", {}).get("replicas") == 1
        )

    await _eventually(repaired, "replicas back to 1")


PRUNED = (("apps/v1", "deployments"), ("v1", "services"), ("policy/v1", "poddisruptionbudgets"))


async def test_removed_model_is_pruned(cluster: Cluster, operator: None) -> None:
    await _create(cluster, "modelpools", _pool("chat", _vllm("small"), _vllm("large")))
    await _eventually(lambda: _get(cluster, "policy/v1", "poddisruptionbudgets", "chat-large"), "")
    uids = {
        plural: (_get(cluster, api_version, plural, "chat-large") or {})["metadata"]["uid"]
        for api_version, plural in PRUNED
    }

    spec = _pool("chat", _vllm("small"))["spec"]
    await _send(
        cluster, "PATCH", _url(GROUP_VERSION, "modelpools", "chat"),
        {"spec": spec, "metadata": {"generation": 2}},
    )  # fmt: skip

    for api_version, plural in PRUNED:
        await _eventually(lambda: _get(cluster, api_version, plural, "chat-large") is None, plural)  # noqa: B023
        deletes = [
            r
            for r in cluster
            if r.method.value == "DELETE" and r.name == "chat-large" and r.resource.plural == plural
        ]
        # The child's own uid, never its owner's (the API server answers 409 to that).
        assert [r.data["preconditions"]["uid"] for r in deletes] == [uids[plural]]
    assert cluster.refused == []
    assert _get(cluster, "apps/v1", "deployments", "chat-small") is not None


async def test_autoscaled_model_gets_an_hpa(cluster: Cluster, operator: None) -> None:
    scaled = _vllm("qwen", autoscaling={"minReplicas": 2, "maxReplicas": 4})
    await _create(cluster, "modelpools", _pool("chat", scaled))

    hpa = await _eventually(
        lambda: _get(cluster, "autoscaling/v2", "horizontalpodautoscalers", "chat-qwen"), "HPA"
    )
    assert hpa["spec"]["minReplicas"] == 2
    deployment = _applies(cluster, "deployments", "chat-qwen")[0].data
    assert "replicas" not in deployment["spec"]  # the HPA owns it


async def test_autoscaling_turned_off_deletes_the_hpa(cluster: Cluster, operator: None) -> None:
    scaled = _vllm("qwen", autoscaling={"minReplicas": 2, "maxReplicas": 4})
    await _create(cluster, "modelpools", _pool("chat", scaled))
    hpa = await _eventually(
        lambda: _get(cluster, "autoscaling/v2", "horizontalpodautoscalers", "chat-qwen"), "HPA"
    )

    spec = _pool("chat", _vllm("qwen", replicas=2))["spec"]
    await _send(
        cluster, "PATCH", _url(GROUP_VERSION, "modelpools", "chat"),
        {"spec": spec, "metadata": {"generation": 2}},
    )  # fmt: skip

    def gone() -> bool:
        return _get(cluster, "autoscaling/v2", "horizontalpodautoscalers", "chat-qwen") is None

    await _eventually(gone, "the HPA deleted")
    (delete,) = [
        r for r in cluster if r.method.value == "DELETE" and r.url.path.endswith("/chat-qwen")
    ]
    assert delete.data["preconditions"]["uid"] == hpa["metadata"]["uid"]
    assert _applies(cluster, "deployments", "chat-qwen")[-1].data["spec"]["replicas"] == 2
    assert _get(cluster, "apps/v1", "deployments", "chat-qwen") is not None


async def test_a_pool_mid_rollout_is_not_ready_until_it_completes(
    cluster: Cluster, operator: None
) -> None:
    await _create(cluster, "modelpools", _pool("chat", _vllm("qwen", replicas=3)))
    await _eventually(lambda: _get(cluster, "apps/v1", "deployments", "chat-qwen"), "Deployment")

    def conditions() -> dict[str, tuple[str, str]]:
        status = _status(cluster, "modelpools", "chat")
        return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions", [])}

    # What a real cluster showed: 3 replicas, 2 updated and ready, 1 unavailable.
    await _deployment_status(cluster, "chat-qwen", _rollout_status(3, 2, 2, "ReplicaSetUpdated"))
    await _eventually(
        lambda: "updated" in _ready_message(cluster, "chat"), "the mid-rollout status"
    )
    assert conditions() == {
        "Ready": ("False", "ModelsNotReady"),
        "Progressing": ("True", "RollingOut"),
        "Degraded": ("False", "AsExpected"),
    }
    # All updated and ready, but an old pod still terminating: not complete either.
    await _deployment_status(
        cluster, "chat-qwen", _rollout_status(3, 3, 3, "ReplicaSetUpdated", total=4)
    )
    await _eventually(lambda: "old replica" in _ready_message(cluster, "chat"), "old pods status")
    assert conditions()["Ready"] == ("False", "ModelsNotReady")

    await _deployment_status(
        cluster, "chat-qwen", _rollout_status(3, 3, 3, "NewReplicaSetAvailable")
    )
    await _eventually(lambda: conditions()["Ready"] == ("True", "Ready"), "Ready True")
    assert conditions()["Progressing"] == ("False", "RolloutComplete")


async def test_a_stalled_rollout_degrades_the_pool(cluster: Cluster, operator: None) -> None:
    await _create(cluster, "modelpools", _pool("chat", _vllm("qwen")))
    await _eventually(lambda: _get(cluster, "apps/v1", "deployments", "chat-qwen"), "Deployment")

    stalled = _rollout_status(1, 1, 0, "ProgressDeadlineExceeded")
    await _deployment_status(cluster, "chat-qwen", stalled)

    def degraded() -> bool:
        status = _status(cluster, "modelpools", "chat")
        return _condition(status, "Degraded") == ("True", "RolloutStalled")

    await _eventually(degraded, "Degraded RolloutStalled")
    warning = (await _eventually(lambda: _events(cluster, "RolloutStalled"), "a Warning"))[0]
    assert "progress deadline" in warning["message"]


async def test_invalid_spec_is_reported_and_waits_for_a_fix(
    cluster: Cluster, operator: None
) -> None:
    bad = _pool("chat", {"name": "qwen", "vllm": {"source": {}}})
    await _create(cluster, "modelpools", bad)

    def invalid() -> dict[str, Any] | None:
        status = _status(cluster, "modelpools", "chat")
        return status if _condition(status, "Degraded") == ("True", "InvalidSpec") else None

    status = await _eventually(invalid, "InvalidSpec")
    assert _condition(status, "Ready") == ("False", "InvalidSpec")
    event = (await _eventually(lambda: _events(cluster, "InvalidSpec"), "a Warning"))[0]
    assert event["type"] == "Warning"
    assert "spec.models[0].vllm.source" in event["message"]
    assert _applies(cluster, "deployments", "chat-qwen") == []

    fixed = _pool("chat", _vllm("qwen"))["spec"]
    await _send(
        cluster, "PATCH", _url(GROUP_VERSION, "modelpools", "chat"),
        {"spec": fixed, "metadata": {"generation": 2}},
    )  # fmt: skip
    await _eventually(lambda: _get(cluster, "apps/v1", "deployments", "chat-qwen"), "applied")

    def recovered() -> bool:
        return _condition(_status(cluster, "modelpools", "chat"), "Degraded") == (
            "False",
            "AsExpected",
        )

    await _eventually(recovered, "Degraded False")


async def test_deleting_a_pool_is_not_blocked_and_leaves_children_to_gc(
    cluster: Cluster, operator: None
) -> None:
    await _create(cluster, "modelpools", _pool("chat", _vllm("qwen")))
    await _create(cluster, "routingpolicies", _policy("front", "chat", ["qwen"]))
    await _eventually(lambda: _get(cluster, "v1", "configmaps", "front-gateway-config"), "gateway")
    pool = _get(cluster, GROUP_VERSION, "modelpools", "chat") or {}
    assert not pool["metadata"].get("finalizers")

    await _send(cluster, "DELETE", _url(GROUP_VERSION, "modelpools", "chat"))
    assert _get(cluster, GROUP_VERSION, "modelpools", "chat") is None  # nothing held it

    def pool_gone() -> bool:  # the operator has seen the deletion
        status = _status(cluster, "routingpolicies", "front")
        return _condition(status, "Degraded") == ("True", "PoolNotFound")

    await _eventually(pool_gone, "the policy to lose its pool")
    status = _status(cluster, "routingpolicies", "front")
    # The gateway still serves the last applied config: its routes, and its rollout's state.
    assert status["routes"] == [{"name": "auto", "strategy": "priority", "candidates": ["qwen"]}]
    messages = " ".join(c["message"] for c in status["conditions"])
    assert "not observed" not in messages
    assert "keeps serving its last applied configuration" in messages
    assert [r for r in cluster if r.method.value == "DELETE" and r.name == "chat-qwen"] == []
    assert _get(cluster, "apps/v1", "deployments", "chat-qwen") is not None  # GC's job
    assert _get(cluster, "v1", "configmaps", "front-gateway-config") is not None  # last good


# ----- RoutingPolicy -----


async def test_policy_waits_for_its_pool_then_renders_the_gateway(
    cluster: Cluster, operator: None
) -> None:
    await _create(cluster, "routingpolicies", _policy("front", "chat", ["qwen"]))

    def missing() -> dict[str, Any] | None:
        status = _status(cluster, "routingpolicies", "front")
        return status if _condition(status, "Degraded") == ("True", "PoolNotFound") else None

    status = await _eventually(missing, "PoolNotFound")
    assert status["unresolved"] == ["pool chat not found"]
    assert _condition(status, "Ready") == ("False", "PoolNotFound")
    warning = (await _eventually(lambda: _events(cluster, "PoolNotFound"), "a Warning"))[0]
    assert warning["type"] == "Warning"
    assert _applies(cluster, "configmaps", "front-gateway-config") == []

    await _create(cluster, "modelpools", _pool("chat", _vllm("qwen")))

    config_map = await _eventually(
        lambda: _get(cluster, "v1", "configmaps", "front-gateway-config"), "gateway ConfigMap"
    )
    config = parse(config_map["data"]["gateway.yaml"])
    assert [str(u.base_url) for u in config.upstreams] == [
        "http://chat-qwen.team-a.svc.cluster.local:8000/v1"
    ]

    def resolved() -> dict[str, Any] | None:
        status = _status(cluster, "routingpolicies", "front")
        return status if _condition(status, "Degraded") == ("False", "AsExpected") else None

    status = await _eventually(resolved, "the policy resolved")
    assert status["unresolved"] == []
    assert status["routes"] == [{"name": "auto", "strategy": "priority", "candidates": ["qwen"]}]
    assert _condition(status, "Ready") == ("False", "GatewayNotReady")
    for plural, name in (("deployments", "front-gateway"), ("services", "front-gateway")):
        assert _applies(cluster, plural, name), plural
    assert _applies(cluster, "networkpolicies", "front-gateway-to-models")


async def test_a_stalled_gateway_degrades_the_policy(cluster: Cluster, operator: None) -> None:
    await _create(cluster, "modelpools", _pool("chat", _vllm("qwen")))
    await _create(cluster, "routingpolicies", _policy("front", "chat", ["qwen"]))
    await _eventually(lambda: _get(cluster, "apps/v1", "deployments", "front-gateway"), "gateway")

    def reasons() -> tuple[Any, ...]:
        status = _status(cluster, "routingpolicies", "front")
        return tuple(_condition(status, t) for t in ("Ready", "Progressing", "Degraded"))

    await _deployment_status(
        cluster, "front-gateway", _rollout_status(2, 1, 1, "ReplicaSetUpdated")
    )
    rolling = (("False", "GatewayNotReady"), ("True", "RollingOut"), ("False", "AsExpected"))
    await _eventually(lambda: reasons() == rolling, "the gateway rolling out")

    await _deployment_status(
        cluster, "front-gateway", _rollout_status(2, 1, 1, "ProgressDeadlineExceeded")
    )
    stalled = (("False", "RolloutStalled"), ("False", "RolloutStalled"), ("True", "RolloutStalled"))
    await _eventually(lambda: reasons() == stalled, "the policy Degraded")
    warning = (await _eventually(lambda: _events(cluster, "RolloutStalled"), "a Warning"))[0]
    assert warning["message"].startswith("gateway: rollout exceeded its progress deadline")


async def test_credentials_secret_missing_created_and_changed(
    cluster: Cluster, operator: None
) -> None:
    await _create(cluster, "modelpools", _pool("cloud", _external("gpt", "openai-key")))
    await _create(cluster, "routingpolicies", _policy("front", "cloud", ["gpt"]))

    def pool_condition(expected: tuple[str, str]) -> Callable[[], bool]:
        return lambda: _condition(_status(cluster, "modelpools", "cloud"), "Degraded") == expected

    await _eventually(pool_condition(("True", "SecretNotFound")), "SecretNotFound")
    warning = (await _eventually(lambda: _events(cluster, "SecretNotFound"), "a Warning"))[0]
    assert "openai-key" in warning["message"]

    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "openai-key", "namespace": NS, "uid": "uid-secret"},
        "data": {"api-key": "c2VjcmV0"},
    }
    await _create(cluster, "secrets", secret)
    await _eventually(pool_condition(("False", "AsExpected")), "the Secret found")
    assert _condition(_status(cluster, "modelpools", "cloud"), "Ready") == ("True", "Ready")

    def resolved() -> bool:
        return _status(cluster, "routingpolicies", "front").get("unresolved") == []

    def checksum() -> str:
        template = _applies(cluster, "deployments", "front-gateway")[-1].data["spec"]["template"]
        return str(template["metadata"]["annotations"]["switchman.dev/secrets-checksum"])

    await _eventually(resolved, "the policy to find the Secret")
    first = checksum()
    changed = {"data": {"api-key": "bmV3"}}
    await _send(cluster, "PATCH", _url("v1", "secrets", "openai-key"), changed)
    await _eventually(lambda: checksum() != first, "a new checksum")


# ----- settings and RBAC -----


def test_settings_run_standalone_unless_peering_is_named() -> None:
    standalone = build_settings()
    assert standalone.peering.standalone is True
    peered = build_settings(peering="switchman", priority=7)
    assert (peered.peering.standalone, peered.peering.mandatory) == (False, True)
    assert (peered.peering.name, peered.peering.priority) == ("switchman", 7)
    assert standalone.scanning.disabled is True
    assert standalone.posting.reporting_component == FIELD_MANAGER


def test_replicas_get_distinct_stable_priorities() -> None:
    first, second = (
        priority_of("switchman-operator-7d9f-abcde"),
        priority_of("switchman-operator-7d9f-xyz12"),
    )
    assert first != second
    assert first == priority_of("switchman-operator-7d9f-abcde")
    assert min(first, second) >= 1
    assert max(first, second) < 2**31


def test_rbac_rules_are_exactly_what_the_code_uses() -> None:
    needed: dict[tuple[str, str], set[str]] = {}

    def need(api_group: str, resource: str, *verbs: str) -> None:
        needed.setdefault((api_group, resource), set()).update(verbs)

    for group, _, plural in CHILD_RESOURCES:  # watched, applied, pruned
        need(group, plural, "list", "watch", "create", "patch", "delete")
    for (api_version, _), plural in PLURALS.items():
        group = api_version.rpartition("/")[0]
        if group == "switchman.dev":
            need(group, plural, "list", "watch", "patch")  # watched; kopf's annotations
            need(group, f"{plural}/status", "patch")  # Kube.patch_status
        else:
            need(group, plural, "create", "patch")  # Kube.apply
    need("", "secrets", "list", "watch")
    need("", "events", "create")
    for peering in ("kopfpeerings", "clusterkopfpeerings"):
        need("kopf.dev", peering, "get", "list", "watch", "patch")

    granted: dict[tuple[str, str], set[str]] = {}
    for rule in rbac.RULES:
        for resource in rule.resources:
            granted.setdefault((rule.api_group, resource), set()).update(rule.verbs)
    assert granted == needed


def test_rbac_roles_follow_the_operator_mode() -> None:
    def resources(rules: list[dict[str, Any]]) -> set[str]:
        return {r for rule in rules for r in rule["resources"]}

    assert "clusterkopfpeerings" in resources(rbac.rules(clusterwide=True, peering=True))
    assert "kopfpeerings" not in resources(rbac.rules(clusterwide=True, peering=True))
    assert "kopfpeerings" in resources(rbac.rules(clusterwide=False, peering=True))
    assert not resources(rbac.rules(clusterwide=False, peering=False)) & {
        "kopfpeerings",
        "clusterkopfpeerings",
    }
    assert rbac.allows("apps", "deployments", "patch")
    assert not rbac.allows("apps", "deployments", "update")
    assert not rbac.allows("", "secrets", "get")
