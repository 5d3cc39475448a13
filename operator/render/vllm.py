"""The vLLM server's pod template: command line, environment, GPUs, volumes, probes, security.

Called by ``modelpool`` (one template per ``vllm`` model of a ModelPool); pure, no API access.
Choices made here, and why:

- Command: ``python3 -m vllm.entrypoints.openai.api_server --model ...`` set explicitly rather
  than relying on the image's ENTRYPOINT: it is ``vllm serve`` in current ``vllm/vllm-openai``
  images and was the module in older ones, and the module also runs CPU builds whose ``vllm``
  script is broken. The module exists in every release, so overriding ``image`` stays safe.
- Probes: vLLM's ``/health`` answers only once the weights are loaded, so the startupProbe
  allows 10 s x 180 = 30 min for download and load before liveness (15 s x 3) takes over;
  readiness (5 s) gates the headless Service's DNS, which is how the gateway finds replicas.
- Security: the official image runs as root and writes to ``~/.cache`` and ``/tmp`` (Triton,
  torch.compile and outlines caches), so ``runAsNonRoot`` and a read-only root filesystem are
  not forced; the rest of the restricted profile is (no privilege escalation, ALL capabilities
  dropped, seccomp RuntimeDefault). ``fsGroup`` (with ``OnRootMismatch``, so a large cache
  volume is not re-chowned on every start) keeps the cache writable for a non-root image too.
- ``/dev/shm`` is a memory emptyDir of 2Gi per GPU (at least 2Gi): NCCL's tensor-parallel
  buffers live there; it counts against the pod's memory, so the limit is a cap, not a reserve.
- ``enableServiceLinks: false``: a Service named ``vllm`` in the namespace would otherwise
  inject ``VLLM_PORT=tcp://...``, which vLLM reads as its own setting and fails on.
- A preStop sleep of 10 s lets the gateway's DNS refresh drop a terminating replica before the
  server stops taking requests.
"""

from __future__ import annotations

import copy
import json
import posixpath
from typing import Any

from switchman.api.v1alpha1.modelpool import VLLM
from switchman.operator.render.meta import VLLM_PORT

CONTAINER = "vllm"
COMMAND = ["python3", "-m", "vllm.entrypoints.openai.api_server"]
CACHE_DIR = "/models-cache"
SOURCE_DIR = "/models"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
FS_GROUP = 10001
STARTUP_PERIOD_S = 10
STARTUP_FAILURES = 180
PRESTOP_SLEEP_S = 10
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
MANAGED_FLAGS = ("--model", "--served-model-name", "--host", "--port")
# Flags the engine's typed fields set: extraArgs must not repeat them (vLLM's last one would win).
ENGINE_FLAGS = {
    "--tokenizer-mode": "tokenizerMode",
    "--config-format": "configFormat",
    "--load-format": "loadFormat",
    "--tool-call-parser": "toolCallParser",
    "--enable-auto-tool-choice": "toolCallParser",
    "--limit-mm-per-prompt": "limitMmPerPrompt",
}


def model_path(vllm: VLLM) -> str:
    """What vLLM loads: a Hub repo id, a directory of the mounted source claim, or the URI."""
    source = vllm.source
    if source.hugging_face is not None:
        return source.hugging_face.repo
    if source.pvc is not None:
        root = f"{SOURCE_DIR}/{source.pvc.claim_name}"
        return posixpath.normpath(posixpath.join(root, source.pvc.path.lstrip("/")))
    assert source.uri is not None  # ModelSource guarantees exactly one
    return source.uri


def server_args(name: str, vllm: VLLM) -> list[str]:
    """vLLM's arguments: the managed flags first, then the engine's, then ``extraArgs``."""
    engine = vllm.engine
    args = ["--model", model_path(vllm), "--served-model-name", name]
    args += ["--host", "0.0.0.0", "--port", str(VLLM_PORT)]
    if vllm.source.hugging_face is not None:
        args += ["--revision", vllm.source.hugging_face.revision]
    if vllm.gpu.count > 1:
        args += ["--tensor-parallel-size", str(vllm.gpu.count)]
    if engine.max_model_len is not None:
        args += ["--max-model-len", str(engine.max_model_len)]
    args += ["--dtype", engine.dtype]
    args += ["--gpu-memory-utilization", f"{engine.gpu_memory_utilization:g}"]
    prefix = "enable" if engine.enable_prefix_caching else "no-enable"
    args.append(f"--{prefix}-prefix-caching")
    if engine.quantization is not None:
        args += ["--quantization", engine.quantization]
    if engine.lora_adapters:
        args += ["--enable-lora", "--lora-modules"]
        args += [f"{lora.name}={lora.source}" for lora in engine.lora_adapters]
    for flag, value in (
        ("--tokenizer-mode", engine.tokenizer_mode),
        ("--config-format", engine.config_format),
        ("--load-format", engine.load_format),
    ):
        if value is not None:
            args += [flag, value]
    if engine.tool_call_parser is not None:
        args += ["--enable-auto-tool-choice", "--tool-call-parser", engine.tool_call_parser]
    limits = engine.limit_mm_per_prompt
    counts = limits.model_dump(exclude_none=True) if limits is not None else {}
    if counts:  # JSON, as vLLM parses it: {"image":4}
        args += ["--limit-mm-per-prompt", json.dumps(counts, separators=(",", ":"))]
    return args + list(engine.extra_args)


def _env(vllm: VLLM) -> list[dict[str, Any]]:
    own = {var.name for var in vllm.env}  # a variable the user sets replaces ours
    env: list[dict[str, Any]] = [{"name": "HF_HOME", "value": CACHE_DIR}]
    if vllm.hf_token_secret is not None:
        ref = {"name": vllm.hf_token_secret.name, "key": vllm.hf_token_secret.key}
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": ref}})
    env = [var for var in env if var["name"] not in own]
    return env + [{"name": var.name, "value": var.value} for var in vllm.env]


def _resources(vllm: VLLM) -> dict[str, Any]:
    out: dict[str, Any] = copy.deepcopy(vllm.resources)
    if vllm.gpu.count > 0:
        for key in ("requests", "limits"):
            out.setdefault(key, {})[GPU_RESOURCE] = str(vllm.gpu.count)
    return out


def _probe(path: str, period: int, failures: int, timeout: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _volumes(vllm: VLLM) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    shm = {"medium": "Memory", "sizeLimit": f"{2 * max(1, vllm.gpu.count)}Gi"}
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": shm}]
    mounts: list[dict[str, Any]] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    cache = vllm.cache
    if cache.claim_name is not None:
        source: dict[str, Any] = {"persistentVolumeClaim": {"claimName": cache.claim_name}}
    else:
        source = {"emptyDir": {"sizeLimit": cache.size} if cache.size else {}}
    volumes.append({"name": "model-cache", **source})
    mounts.append({"name": "model-cache", "mountPath": CACHE_DIR})
    if vllm.source.pvc is not None:
        claim = vllm.source.pvc.claim_name
        pvc = {"claimName": claim, "readOnly": True}
        volumes.append({"name": "model-source", "persistentVolumeClaim": pvc})
        mount = {"name": "model-source", "mountPath": f"{SOURCE_DIR}/{claim}", "readOnly": True}
        mounts.append(mount)
    return volumes, mounts


def _container(name: str, vllm: VLLM, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": CONTAINER,
        "image": vllm.image,
        "command": list(COMMAND),
        "args": server_args(name, vllm),
        "ports": [{"name": "http", "containerPort": VLLM_PORT, "protocol": "TCP"}],
        "env": _env(vllm),
        "resources": _resources(vllm),
        "volumeMounts": mounts,
        "startupProbe": _probe("/health", STARTUP_PERIOD_S, STARTUP_FAILURES, 5),
        "readinessProbe": _probe("/health", 5, 3, 3),
        "livenessProbe": _probe("/health", 15, 3, 5),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SLEEP_S)]}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _placement(vllm: VLLM) -> dict[str, Any]:
    gpu = vllm.gpu
    node_selector = dict(gpu.node_selector)
    if gpu.type is not None:
        node_selector[GPU_PRODUCT_LABEL] = gpu.type
    tolerations = copy.deepcopy(gpu.tolerations)
    if gpu.count > 0 and GPU_TOLERATION not in tolerations:
        tolerations.append(dict(GPU_TOLERATION))
    out: dict[str, Any] = {}
    if node_selector:
        out["nodeSelector"] = node_selector
    if tolerations:
        out["tolerations"] = tolerations
    if gpu.affinity is not None:
        out["affinity"] = copy.deepcopy(gpu.affinity)
    if gpu.runtime_class_name is not None:
        out["runtimeClassName"] = gpu.runtime_class_name
    return out


def pod_template(name: str, vllm: VLLM, pod_labels: dict[str, str]) -> dict[str, Any]:
    """The Deployment's ``spec.template`` serving model ``name`` (its served-model-name)."""
    volumes, mounts = _volumes(vllm)
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "fsGroup": FS_GROUP,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(name, vllm, mounts)],
        "volumes": volumes,
    }
    spec.update(_placement(vllm))
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(VLLM_PORT),
        "prometheus.io/path": "/metrics",
    }
    return {"metadata": {"labels": dict(pod_labels), "annotations": annotations}, "spec": spec}
