"""The control plane at scale: 200 ModelPools and 20 RoutingPolicies against a real API server.

Measures (issue 15 item 5; a measurement, so nothing here is judged against a time budget, only
bounded by generous timeouts):

- **convergence**: all 220 objects applied back to back, then the namespace listed every 0.25 s;
  an object has converged when its status reports ``observedGeneration`` equal to its
  generation with a Ready condition (and, for a policy, its gateway ConfigMap holds its route).
  Per-object time from its own apply, p50/p99/max, and the time until the last one;
- **propagation**: a gateway runs here on the ConfigMap of one policy, kept in a local file the
  way the kubelet projects a ConfigMap volume (an atomic swap whenever the ConfigMap changes,
  polled every 0.1 s); the policy gets a new route five times, and each time the test takes
  when the ConfigMap has it (the operator's share) and when the gateway answers a chat request
  on it (the file reload's share). The kubelet's own projection delay (its sync period, a
  minute by default) is not the gateway's and is left out; docs/performance.md says how to
  shorten it.

Every model is external (an OpenAI-compatible base URL: a simulator on this machine), so the
cluster needs no nodes or images; the 20 gateway Deployments never become available, which the
operator reports honestly (not Ready). With ``SWITCHMAN_E2E_RESULTS=DIR`` the figures are
written to ``DIR/control_plane.json`` and ``.md``; commit a run on a real cluster to
``bench/results`` (none is there yet: no API server could be run where this was written).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_examples import gateway_config_map
from cluster_kube import Kube, eventually
from cluster_operator import Operator
from terminal import stop_group

from switchman.api.v1alpha1 import API_VERSION
from switchman.operator.render.meta import CONFIG_KEY

FACTOR = float(os.environ.get("SWITCHMAN_E2E_TIMEOUT_FACTOR", "1"))
POOLS, POLICIES = 200, 20
PER_POLICY = POOLS // POLICIES
CONVERGE_TIMEOUT = 600.0 * FACTOR
PROPAGATE_TIMEOUT = 120.0 * FACTOR
PROPAGATIONS = 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, timeout: float, body: bytes | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
            request.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(request, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer 200 within {timeout:.0f} s")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[str]:
    """A simulated OpenAI-compatible model ``tiny`` on this machine: every pool's model."""
    port = _free_port()
    argv = [sys.executable, "-m", "switchman.cli.main", "sim", "--model", "tiny"]
    argv += ["--port", str(port), "--ttft-ms", "0", "--itl-ms", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", 30)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_group(proc, 10)


def _pool(index: int, namespace: str, base_url: str) -> dict[str, Any]:
    model = {
        "name": f"m{index:03d}",
        "external": {"provider": "openai-compatible", "baseURL": base_url, "model": "tiny"},
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelPool",
        "metadata": {"name": f"scale-p{index:03d}", "namespace": namespace},
        "spec": {"models": [model]},
    }


def _policy(index: int, namespace: str, extra_routes: int = 0) -> dict[str, Any]:
    first = index * PER_POLICY
    models = [f"m{i:03d}" for i in range(first, first + PER_POLICY)]
    routes = [{"name": f"r{index:02d}", "candidates": models, "strategy": "least-loaded"}]
    routes += [{"name": f"new{k}", "candidates": models[:1]} for k in range(extra_routes)]
    return {
        "apiVersion": API_VERSION,
        "kind": "RoutingPolicy",
        "metadata": {"name": f"scale-r{index:02d}", "namespace": namespace},
        "spec": {
            "pools": [{"name": f"scale-p{i:03d}"} for i in range(first, first + PER_POLICY)],
            "routes": routes,
            "gateway": {"replicas": 1},
        },
    }


def _converged(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    kinds = {c.get("type") for c in status.get("conditions") or []}
    return status.get("observedGeneration") == obj["metadata"]["generation"] and "Ready" in kinds


def _routes(kube: Kube, namespace: str, policy: str) -> set[str]:
    config_map = kube.get("v1", "ConfigMap", gateway_config_map(policy), namespace)
    if config_map is None:
        return set()
    return _route_names((config_map.get("data") or {}).get(CONFIG_KEY, ""))


def _route_names(text: str) -> set[str]:
    """Route names of a GatewayConfig document (JSON or YAML)."""
    document = yaml.safe_load(text) or {}
    return {route["name"] for route in document.get("routes") or []}


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_s": round(statistics.median(ordered), 3),
        "p99_s": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 3),
        "max_s": round(ordered[-1], 3),
    }


def _converge(kube: Kube, operator: Operator, base_url: str) -> dict[str, Any]:
    namespace = operator.namespace
    applied: dict[tuple[str, str], float] = {}
    started = time.monotonic()
    for index in range(POOLS):
        kube.apply(_pool(index, namespace, base_url))
        applied[("ModelPool", f"scale-p{index:03d}")] = time.monotonic()
    for index in range(POLICIES):
        kube.apply(_policy(index, namespace))
        applied[("RoutingPolicy", f"scale-r{index:02d}")] = time.monotonic()
    applying_s = time.monotonic() - started
    seen: dict[tuple[str, str], float] = {}
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while len(seen) < len(applied):
        operator.ensure_running()
        now = time.monotonic()
        for kind in ("ModelPool", "RoutingPolicy"):
            for obj in kube.list(API_VERSION, kind, namespace):
                key = (kind, obj["metadata"]["name"])
                if key in applied and key not in seen and _converged(obj):
                    seen[key] = now
        if now > deadline:
            missing = sorted(set(applied) - set(seen))[:10]
            pytest.fail(f"{len(applied) - len(seen)} objects never converged: {missing}")
        time.sleep(0.25)
    for index in range(POLICIES):  # converged means the config was written too
        name = f"scale-r{index:02d}"
        assert f"r{index:02d}" in _routes(kube, namespace, name), name
    times = [seen[key] - applied[key] for key in applied]
    return {
        "objects": len(applied),
        "applying_s": round(applying_s, 3),
        "all_converged_after_s": round(max(seen.values()) - started, 3),
        "per_object": _percentiles(times),
        "pools": _percentiles([seen[k] - applied[k] for k in applied if k[0] == "ModelPool"]),
        "policies": _percentiles(
            [seen[k] - applied[k] for k in applied if k[0] == "RoutingPolicy"]
        ),
    }


class _Projection:
    """A policy's ConfigMap kept in a local file as the kubelet keeps a ConfigMap volume."""

    def __init__(self, kube: Kube, namespace: str, policy: str, path: Path) -> None:
        self.kube, self.namespace, self.policy, self.path = kube, namespace, policy, path
        self.changes: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sync(self) -> None:
        name = gateway_config_map(self.policy)
        config_map = self.kube.get("v1", "ConfigMap", name, self.namespace) or {}
        text = (config_map.get("data") or {}).get(CONFIG_KEY)
        if text and (not self.path.exists() or self.path.read_text() != text):
            staged = self.path.with_suffix(".new")
            staged.write_text(text)
            staged.replace(self.path)  # atomic, as the kubelet's symlink swap
            self.changes.append((time.monotonic(), text))

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a transient API error: the next poll retries
                self.sync()
            self._stop.wait(0.1)

    def __enter__(self) -> _Projection:
        self.sync()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _propagate(kube: Kube, operator: Operator, tmp_path: Path) -> dict[str, Any]:
    namespace, policy = operator.namespace, "scale-r00"
    config = tmp_path / "gateway.yaml"
    port = _free_port()
    rounds: list[dict[str, float]] = []
    with _Projection(kube, namespace, policy, config) as projection:
        argv = [sys.executable, "-m", "switchman.cli.main", "gateway", "--config", str(config)]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--watch-interval", "0.2"]
        argv += ["--access-log", "off"]
        gateway = subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_http(f"http://127.0.0.1:{port}/readyz", 60)
            for k in range(PROPAGATIONS):
                route = f"new{k}"
                changed = time.monotonic()
                kube.apply(_policy(0, namespace, extra_routes=k + 1))
                written = eventually(
                    f"route {route} in the ConfigMap's projection",
                    lambda route=route: _when_projected(projection, route),
                    PROPAGATE_TIMEOUT,
                    interval=0.05,
                    guard=operator.ensure_running,
                )
                body = json.dumps(
                    {"model": route, "messages": [{"role": "user", "content": "hi"}]}
                ).encode()
                _wait_http(f"http://127.0.0.1:{port}/v1/chat/completions", PROPAGATE_TIMEOUT, body)
                served = time.monotonic()
                rounds.append(
                    {
                        "operator_s": written - changed,
                        "gateway_s": served - written,
                        "total_s": served - changed,
                    }
                )
        finally:
            stop_group(gateway, 10)
    return {
        "rounds": len(rounds),
        **{
            part: _percentiles([r[part] for r in rounds])
            for part in ("operator_s", "gateway_s", "total_s")
        },
    }


def _when_projected(projection: _Projection, route: str) -> float:
    for at, text in projection.changes:
        if route in _route_names(text):
            return at
    raise AssertionError(f"no projected config names route {route} yet")


def test_200_pools_and_20_policies_converge_and_propagate(
    kube: Kube, operator: Operator, sim: str, tmp_path: Path
) -> None:
    convergence = _converge(kube, operator, sim)
    propagation = _propagate(kube, operator, tmp_path)
    results = {"pools": POOLS, "policies": POLICIES, "convergence": convergence}
    results["propagation"] = propagation
    print(json.dumps(results, indent=2))
    out = os.environ.get("SWITCHMAN_E2E_RESULTS")
    if out:
        _write(Path(out), results)


def _write(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "control_plane.json").write_text(json.dumps(results, indent=2) + "\n")
    c, p = results["convergence"], results["propagation"]
    lines = [
        "# Control plane at scale (e2e/cluster/test_control_plane_scale.py)",
        "",
        f"{results['pools']} ModelPools (one external model each) and {results['policies']} "
        f"RoutingPolicies ({PER_POLICY} pools and one route each), applied back to back in "
        f"{c['applying_s']} s; all converged {c['all_converged_after_s']} s after the first "
        "apply.",
        "",
        "| measure | p50 s | p99 s | max s |",
        "|---|---|---|---|",
    ]
    for label, row in (
        ("convergence, every object (from its apply)", c["per_object"]),
        ("convergence, ModelPools", c["pools"]),
        ("convergence, RoutingPolicies", c["policies"]),
        ("propagation: policy changed -> ConfigMap has the route", p["operator_s"]),
        ("propagation: file changed -> gateway serves the route", p["gateway_s"]),
        ("propagation: total (without the kubelet's projection delay)", p["total_s"]),
    ):
        lines.append(f"| {label} | {row['p50_s']} | {row['p99_s']} | {row['max_s']} |")
    (out / "control_plane.md").write_text("\n".join(lines) + "\n")
