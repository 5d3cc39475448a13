"""ModelPool rendering (``switchman.operator.render.modelpool``): golden files and rules.

Regenerate the golden files with ``SWITCHMAN_UPDATE_GOLDEN=1 pytest
tests/unit/test_render_modelpool.py`` and review the diff. Every manifest rendered here is
validated, strictly, against the newest Kubernetes schema ``kubernetes-validate`` ships.

    scenario            | input                                  | expect
    --------------------|----------------------------------------|-----------------------------
    golden single       | one small HF model                     | Deployment, Service, PDB
    golden small-large  | HF token, LoRA, PVC source and cache,  | both models' objects; the
                        | GPU placement, resources, an external  | external renders nothing
    golden autoscaling  | autoscaling 1..4 on 2.5, uri source    | + HPA; no Deployment replicas
    external only       | only external models                   | []
    owners and labels   | every fixture                          | one controller ref, labels
    names               | long / odd pool and model names        | DNS-1123, <= 63, hashed
    invalid specs       | schema errors, managed flags, GPUs in  | InvalidSpec naming paths,
                        | resources, colliding names, no spec    | never values
    idempotence         | same input twice; output mutated       | identical; input untouched
    pod details         | GPUs 0/1/4, env override, caching      | the right args and fields
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from switchman.operator.render.meta import InvalidSpec
from switchman.operator.render.modelpool import label_value, quantity, render_pool

GOLDEN_DIR = Path(__file__).parent / "golden" / "render"
UPDATE_ENV = "SWITCHMAN_UPDATE_GOLDEN"
K8S_VERSION = latest_version()
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def pool(name: str, *models: dict[str, Any], namespace: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "ModelPool",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 3},
        "spec": {"models": list(models)},
    }


def hf(name: str, repo: str, **vllm: Any) -> dict[str, Any]:
    return {"name": name, "vllm": {"source": {"huggingFace": {"repo": repo}}, **vllm}}


SINGLE = pool("chat", hf("qwen-small", "Qwen/Qwen2.5-0.5B-Instruct"))

SMALL_LARGE = pool(
    "tiered",
    {
        "name": "small",
        "tier": "small",
        "vllm": {
            "source": {
                "huggingFace": {"repo": "meta-llama/Llama-3.1-8B-Instruct", "revision": "0e9e39f"}
            },
            "replicas": 2,
            "gpu": {"count": 1, "type": "NVIDIA-L4"},
            "engine": {
                "maxModelLen": 8192,
                "dtype": "bfloat16",
                "loraAdapters": [
                    {"name": "sql", "source": "org/llama-sql-lora"},
                    {"name": "support", "source": "/models-cache/loras/support"},
                ],
            },
            "cache": {"claimName": "hf-cache"},
            "hfTokenSecret": {"name": "hf-token", "key": "token"},
            "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}],
            "resources": {"requests": {"cpu": "4", "memory": "24Gi"}, "limits": {"memory": "32Gi"}},
        },
    },
    {
        "name": "large",
        "tier": "large",
        "vllm": {
            "source": {"pvc": {"claimName": "weights", "path": "/llama-3.1-70b-awq"}},
            "image": "vllm/vllm-openai:v0.11.0",
            "gpu": {
                "count": 4,
                "type": "NVIDIA-H100-80GB-HBM3",
                "nodeSelector": {"pool.example.com/gpu": "h100"},
                "tolerations": [
                    {
                        "key": "dedicated",
                        "operator": "Equal",
                        "value": "llm",
                        "effect": "NoSchedule",
                    }
                ],
                "affinity": {
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 100,
                                "podAffinityTerm": {
                                    "topologyKey": "kubernetes.io/hostname",
                                    "labelSelector": {
                                        "matchLabels": {
                                            "app.kubernetes.io/instance": "tiered-large"
                                        }
                                    },
                                },
                            }
                        ]
                    }
                },
                "runtimeClassName": "nvidia",
            },
            "engine": {
                "quantization": "awq",
                "enablePrefixCaching": False,
                "gpuMemoryUtilization": 0.95,
                "extraArgs": ["--max-num-seqs", "128", "--enable-chunked-prefill"],
            },
            "cache": {"size": "200Gi"},
            "hfTokenSecret": {"name": "hf-token", "key": "token"},
        },
    },
    {
        "name": "gpt-4o",
        "external": {"provider": "openai", "credentialsSecret": {"name": "openai", "key": "key"}},
    },
)

AUTOSCALING = pool(
    "burst",
    {
        "name": "mistral",
        "vllm": {
            "source": {"uri": "s3://models/mistral-7b-instruct"},
            "autoscaling": {"minReplicas": 1, "maxReplicas": 4, "targetQueueDepth": 2.5},
            "gpu": {"count": 1},
            "cache": {"size": "50Gi"},
        },
    },
)

GOLDEN = {"single": SINGLE, "small-large": SMALL_LARGE, "autoscaling": AUTOSCALING}


def vllm_model(name: str = "m", **vllm: Any) -> dict[str, Any]:
    return hf(name, "org/model", **vllm)


def container(manifests: list[dict[str, Any]], index: int = 0) -> dict[str, Any]:
    deployments = [m for m in manifests if m["kind"] == "Deployment"]
    result: dict[str, Any] = deployments[index]["spec"]["template"]["spec"]["containers"][0]
    return result


def invalid(*models: dict[str, Any]) -> str:
    with pytest.raises(InvalidSpec) as caught:
        render_pool(pool("p", *models))
    return str(caught.value)


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_render_matches_golden_file(case: str) -> None:
    actual = yaml.safe_dump_all(render_pool(GOLDEN[case]), sort_keys=False)
    path = GOLDEN_DIR / f"modelpool-{case}.yaml"
    if os.environ.get(UPDATE_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    if not path.exists():
        pytest.fail(f"{path} is missing: run with {UPDATE_ENV}=1 to write it", pytrace=False)
    expected = path.read_text()
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "golden", "actual", lineterm=""
        )
        pytest.fail(
            f"{path.name} differs; if on purpose rerun with {UPDATE_ENV}=1:\n" + "\n".join(diff),
            pytrace=False,
        )


VARIANTS = {
    **GOLDEN,
    "cpu": pool("cpu", vllm_model(gpu={"count": 0}, replicas=0)),
    "pvc-root": pool(
        "p", hf("x", "r"), {"name": "y", "vllm": {"source": {"pvc": {"claimName": "w"}}}}
    ),
}


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_every_manifest_is_valid_kubernetes(case: str) -> None:
    manifests = render_pool(VARIANTS[case])
    assert manifests
    for manifest in manifests:
        assert kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_validator_rejects_a_broken_manifest() -> None:
    """Guards the test above: strict validation does catch an unknown field."""
    deployment = render_pool(SINGLE)[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["commandd"] = ["x"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_objects_come_per_model_in_spec_order_and_externals_render_nothing() -> None:
    kinds = [(m["kind"], m["metadata"]["name"]) for m in render_pool(SMALL_LARGE)]
    per_model = ["Deployment", "Service", "PodDisruptionBudget"]
    assert kinds == [(k, "tiered-small") for k in per_model] + [
        (k, "tiered-large") for k in per_model
    ]
    assert [m["kind"] for m in render_pool(AUTOSCALING)] == [*per_model, "HorizontalPodAutoscaler"]


def test_external_only_pool_renders_nothing() -> None:
    external = {"name": "claude", "external": {"provider": "anthropic"}}
    assert render_pool(pool("ext", external)) == []


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_every_child_is_owned_by_the_pool_and_labelled(case: str) -> None:
    parent = VARIANTS[case]
    for manifest in render_pool(parent):
        meta = manifest["metadata"]
        assert meta["namespace"] == "ml"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "switchman.dev/v1alpha1",
                "kind": "ModelPool",
                "name": parent["metadata"]["name"],
                "uid": parent["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert meta["labels"]["app.kubernetes.io/instance"] == meta["name"]
        assert meta["labels"]["app.kubernetes.io/component"] == "model-server"
        assert meta["labels"]["switchman.dev/pool"] == parent["metadata"]["name"]
        if manifest["kind"] == "Deployment":
            template_labels = manifest["spec"]["template"]["metadata"]["labels"]
            assert template_labels == meta["labels"]
            assert manifest["spec"]["selector"] == {
                "matchLabels": {"app.kubernetes.io/instance": meta["name"]}
            }


def test_names_are_dns_labels_truncated_with_a_hash() -> None:
    long_pool = pool("p" * 60, vllm_model("meta-llama/Llama-3.1-8B"), vllm_model("q" * 63))
    names = {m["metadata"]["name"] for m in render_pool(long_pool)}
    assert len(names) == 2
    for name in names:
        assert len(name) <= 63
        assert DNS_LABEL.match(name)
        assert re.search(r"-[0-9a-f]{8}$", name)
    odd = render_pool(pool("chat", vllm_model("meta-llama/Llama-3.1-8B")))
    name = odd[0]["metadata"]["name"]
    assert name.startswith("chat-meta-llama-llama-3-1-8b-")
    assert DNS_LABEL.match(name)
    model_label = odd[0]["metadata"]["labels"]["switchman.dev/model"]
    assert LABEL_VALUE.match(model_label)
    assert model_label != label_value("meta-llama/Llama-3.1-9B")
    assert container(odd)["args"][3] == "meta-llama/Llama-3.1-8B"  # served name unchanged


def test_label_value_keeps_valid_values_and_fixes_invalid_ones() -> None:
    assert label_value("Llama-3.1_8B") == "Llama-3.1_8B"
    for raw in ("org/model", "x" * 64, "-bad-", "@@"):
        fixed = label_value(raw)
        assert fixed != raw
        assert len(fixed) <= 63
        assert LABEL_VALUE.match(fixed)


def test_schema_errors_name_each_path_and_never_echo_values() -> None:
    leak = "sk-do-not-echo-7f3a"
    message = invalid(
        vllm_model("a", engine={"dtype": leak}),
        {"name": "b", "vllm": {"source": {"uri": "s3://x", "huggingFace": {"repo": "r"}}}},
        vllm_model("c", replicas=2, autoscaling={"maxReplicas": 3}),
        vllm_model("d", gpu={"count": leak}),
    )
    assert "spec.models[0].vllm.engine.dtype: Input should be 'auto'" in message
    assert "spec.models[1].vllm.source: set exactly one of huggingFace, pvc or uri" in message
    assert "spec.models[2].vllm: set replicas or autoscaling, not both" in message
    assert "spec.models[3].vllm.gpu.count" in message
    assert leak not in message
    assert message.startswith("ModelPool p: invalid spec: ")


def test_missing_spec_and_unknown_fields_are_invalid() -> None:
    with pytest.raises(InvalidSpec, match=r"spec: Input should be a valid dictionary"):
        render_pool({"kind": "ModelPool", "metadata": {"name": "p"}})
    assert "spec.models[0].vllm.replica: Extra inputs are not permitted" in invalid(
        vllm_model(replica=2)
    )


@pytest.mark.parametrize("flag", ["--port", "--port=9000", "--served-model-name", "--model"])
def test_extra_args_may_not_set_managed_flags(flag: str) -> None:
    message = invalid(vllm_model(engine={"extraArgs": ["--max-num-seqs", "8", flag, "x"]}))
    flag_name = flag.split("=")[0]
    assert f"spec.models[0].vllm.engine.extraArgs: {flag_name} is set by the operator" in message
    assert message.endswith("set by the operator; remove it")


def test_typed_engine_fields_become_vllm_flags() -> None:
    engine = {
        "tokenizerMode": "mistral",
        "configFormat": "mistral",
        "loadFormat": "mistral",
        "toolCallParser": "mistral",
        "limitMmPerPrompt": {"image": 4, "video": 0},
    }
    args = container(render_pool(pool("p", vllm_model(engine=engine))))["args"]
    tail = args[args.index("--enable-prefix-caching") + 1 :]
    assert tail == [
        "--tokenizer-mode", "mistral", "--config-format", "mistral", "--load-format", "mistral",
        "--enable-auto-tool-choice", "--tool-call-parser", "mistral",
        "--limit-mm-per-prompt", '{"image":4,"video":0}',
    ]  # fmt: skip
    plain = container(render_pool(pool("p", vllm_model())))["args"]
    assert not {"--tokenizer-mode", "--tool-call-parser", "--limit-mm-per-prompt"} & set(plain)


@pytest.mark.parametrize(
    ("flag", "field"),
    [("--tokenizer-mode=slow", "tokenizerMode"), ("--enable-auto-tool-choice", "toolCallParser")],
)
def test_extra_args_may_not_repeat_a_typed_engine_field(flag: str, field: str) -> None:
    engine = {"tokenizerMode": "mistral", "toolCallParser": "mistral", "extraArgs": [flag]}
    message = invalid(vllm_model(engine=engine))
    name = flag.split("=")[0]
    assert f"spec.models[0].vllm.engine.extraArgs: {name} repeats engine.{field}" in message
    alone = vllm_model(engine={"extraArgs": [flag]})  # without the typed field: passed through
    assert flag in container(render_pool(pool("p", alone)))["args"]


def test_gpus_are_set_with_gpu_count_not_resources() -> None:
    message = invalid(vllm_model(resources={"limits": {"nvidia.com/gpu": "2"}, "requestz": {}}))
    assert "spec.models[0].vllm.resources.limits: set GPUs with gpu.count" in message
    assert "spec.models[0].vllm.resources: unknown keys ['requestz']" in message


def test_model_names_differing_only_in_case_collide() -> None:
    message = invalid(vllm_model("Llama"), vllm_model("llama"))
    assert (
        "spec.models[1].name: model names 'Llama' and 'llama' give the same object name" in message
    )


def test_rendering_is_idempotent_and_leaves_the_input_alone() -> None:
    before = copy.deepcopy(SMALL_LARGE)
    first = render_pool(SMALL_LARGE)
    container(first, 1)["args"].append("--mutated")
    first[0]["spec"]["template"]["spec"]["tolerations"].clear()
    assert before == SMALL_LARGE
    second, third = render_pool(SMALL_LARGE), render_pool(SMALL_LARGE)
    assert second == third
    assert yaml.safe_dump_all(second) == yaml.safe_dump_all(third)
    assert "--mutated" not in container(second, 1)["args"]
    assert second[0]["spec"]["template"]["spec"]["tolerations"]


def test_small_and_large_engine_args_and_placement() -> None:
    manifests = render_pool(SMALL_LARGE)
    small, large = container(manifests, 0), container(manifests, 1)
    assert small["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert small["args"][:8] == [
        "--model", "meta-llama/Llama-3.1-8B-Instruct", "--served-model-name", "small",
        "--host", "0.0.0.0", "--port", "8000",
    ]  # fmt: skip
    assert "--tensor-parallel-size" not in small["args"]
    assert small["args"][-5:] == [
        "--enable-prefix-caching", "--enable-lora", "--lora-modules",
        "sql=org/llama-sql-lora", "support=/models-cache/loras/support",
    ]  # fmt: skip
    assert {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}},
    } in small["env"]
    assert small["resources"]["requests"] == {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": "1"}
    assert large["args"][1] == "/models/weights/llama-3.1-70b-awq"
    assert "--revision" not in large["args"]
    tp = large["args"].index("--tensor-parallel-size")
    assert large["args"][tp + 1] == "4"
    assert "--no-enable-prefix-caching" in large["args"]
    assert large["args"][-3:] == ["--max-num-seqs", "128", "--enable-chunked-prefill"]
    assert {"name": "model-source", "mountPath": "/models/weights", "readOnly": True} in large[
        "volumeMounts"
    ]
    large_pod = manifests[3]["spec"]["template"]["spec"]
    assert large_pod["nodeSelector"] == {
        "pool.example.com/gpu": "h100",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    }
    assert [t["key"] for t in large_pod["tolerations"]] == ["dedicated", "nvidia.com/gpu"]
    assert large_pod["runtimeClassName"] == "nvidia"
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in large_pod[
        "volumes"
    ]
    assert {"name": "model-cache", "emptyDir": {"sizeLimit": "200Gi"}} in large_pod["volumes"]


def test_cpu_model_asks_for_no_gpu() -> None:
    manifests = render_pool(VARIANTS["cpu"])
    pod_spec = manifests[0]["spec"]["template"]["spec"]
    assert manifests[0]["spec"]["replicas"] == 0
    assert "tolerations" not in pod_spec
    assert "nodeSelector" not in pod_spec
    assert container(manifests)["resources"] == {}


def test_user_env_replaces_the_operators_defaults() -> None:
    env = container(render_pool(pool("p", vllm_model(env=[{"name": "HF_HOME", "value": "/x"}]))))[
        "env"
    ]
    assert env == [{"name": "HF_HOME", "value": "/x"}]


def test_autoscaling_hands_replicas_to_the_hpa() -> None:
    deployment, _, _, hpa = render_pool(AUTOSCALING)
    assert "replicas" not in deployment["spec"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "burst-mistral",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 4)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "vllm_num_requests_waiting"},
                "target": {"type": "AverageValue", "averageValue": "2500m"},
            },
        }
    ]
    assert container([deployment])["args"][1] == "s3://models/mistral-7b-instruct"


def test_probes_allow_thirty_minutes_to_start_and_rollouts_wait_longer() -> None:
    deployment = render_pool(SINGLE)[0]
    probe = container([deployment])["startupProbe"]
    budget = probe["periodSeconds"] * probe["failureThreshold"]
    assert budget >= 30 * 60
    assert deployment["spec"]["progressDeadlineSeconds"] > budget
    assert container([deployment])["readinessProbe"]["httpGet"] == {
        "path": "/health",
        "port": "http",
    }


def test_service_is_headless_and_pdb_allows_one_disruption() -> None:
    _, service, pdb = render_pool(SINGLE)
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is False
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]


@pytest.mark.parametrize(
    ("value", "expected"), [(4.0, "4"), (2.5, "2500m"), (0.0001, "1m"), (10, "10")]
)
def test_quantity(value: float, expected: str) -> None:
    assert quantity(value) == expected
