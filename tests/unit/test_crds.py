"""The generated CRDs: current, structural, and rejecting what the pydantic models reject.

Scenario matrix:

- freshness: ``crds/`` equals a fresh render; ``--check`` passes on it, fails (exit 1, "run
  `make crds`") on a missing, edited or extra file; the module runs as ``python -m``
- CRD shape: valid CustomResourceDefinition for the current Kubernetes (kubernetes-validate,
  strict); group, version, scope, names, short names, category, status subresource, printer
  columns whose JSONPaths exist in the schema
- structural schema, every node: a type; only keywords Kubernetes takes (no $ref, anyOf, title,
  additionalProperties false, uniqueItems...); exclusive bounds as booleans; list-map keys are
  required scalars of their items; set items are scalars; defaults valid where they sit; patterns
  RE2-safe; every CEL rule compiles, what it reads (strings, lists, maps, enclosing lists) is
  bounded for the cost estimator, and a field it reads without has() is required or defaulted
- defaults: the API server fills in what the models default to
- every ModelPool / RoutingPolicy in examples/ accepted by the CRD tier and by pydantic
- valid objects (like the README's examples: small + large vLLM with complexity routing, an
  external OpenAI / Anthropic / Azure pool, failover and a canary): accepted by the CRD tier
  (defaults applied, strict field validation, list-map semantics, JSON Schema, CEL) and by
  pydantic; a pydantic dump of each is accepted too
- invalid objects: rejected by the CRD tier with the message a user sees (after a blocking
  error such as a bad enum, the API server's "some validation rules were not checked" note
  instead of CEL), and by pydantic; every CEL rule of both CRDs is exercised by one of them
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import kubernetes_validate
import pytest
import yaml
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError
from pydantic import BaseModel, ValidationError

from switchman.api.v1alpha1 import ModelPoolSpec, RoutingPolicySpec, crdgen

CRDS = Path(__file__).resolve().parents[2] / "crds"
Node = dict[str, Any]


def load_crd(plural: str) -> Node:
    crd: Node = yaml.safe_load((CRDS / f"switchman.dev_{plural}.yaml").read_text())
    return crd


def root_schema(plural: str) -> Node:
    schema: Node = load_crd(plural)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def spec_schema(kind: str) -> Node:
    spec: Node = root_schema(PLURALS[kind])["properties"]["spec"]
    return spec


PLURALS = {"ModelPool": "modelpools", "RoutingPolicy": "routingpolicies"}
MODELS: dict[str, type[BaseModel]] = {
    "ModelPool": ModelPoolSpec,
    "RoutingPolicy": RoutingPolicySpec,
}


# --- the CRD tier: what the API server does with a custom resource on `kubectl apply` ----------


def schema_nodes(schema: Node, path: str = "") -> Iterator[tuple[Node, str, list[Node]]]:
    """Every schema node with its path and its ancestors (outermost first)."""

    def walk(node: Node, at: str, up: list[Node]) -> Iterator[tuple[Node, str, list[Node]]]:
        yield node, at, up
        for name, sub in node.get("properties", {}).items():
            yield from walk(sub, f"{at}.{name}", [*up, node])
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from walk(node[key], f"{at}[*]", [*up, node])

    yield from walk(schema, path, [])


def value_nodes(schema: Node, value: Any, path: str) -> Iterator[tuple[Node, Any, str]]:
    """Every value in ``value`` with the schema node that governs it and its field path."""
    yield schema, value, path
    props, extra = schema.get("properties", {}), schema.get("additionalProperties")
    if isinstance(value, dict):
        for key, sub in value.items():
            if key in props:
                yield from value_nodes(props[key], sub, f"{path}.{key}")
            elif isinstance(extra, dict):
                yield from value_nodes(extra, sub, f"{path}[{key}]")
    elif isinstance(value, list) and "items" in schema:
        for i, sub in enumerate(value):
            yield from value_nodes(schema["items"], sub, f"{path}[{i}]")


def defaulted(schema: Node, value: Any) -> Any:
    """Nulls pruned and schema defaults applied, as the API server does before validating."""
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        out = {k: v for k, v in value.items() if v is not None}
        for name, sub in props.items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
        for key, sub in out.items():
            governing = props.get(key, extra)
            if isinstance(governing, dict):
                out[key] = defaulted(governing, sub)
        return out
    if isinstance(value, list) and "items" in schema:
        return [defaulted(schema["items"], v) for v in value]
    return value


def strict_jsonschema(node: Node) -> Node:
    """Plain Draft 4 JSON Schema: x-kubernetes-* dropped; unknown fields rejected, as
    ``kubectl apply``'s strict field validation does (unless preserve-unknown-fields)."""
    out = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in node:
        out["properties"] = {k: strict_jsonschema(v) for k, v in node["properties"].items()}
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            out[key] = strict_jsonschema(node[key])
    return out


def field_path(schema: Node, segments: Any, prefix: str) -> str:
    path = prefix
    for seg in segments:
        if isinstance(seg, int):
            path, schema = f"{path}[{seg}]", schema["items"]
        elif seg in schema.get("properties", {}):
            path, schema = f"{path}.{seg}", schema["properties"][seg]
        else:
            path, schema = f"{path}[{seg}]", schema["additionalProperties"]
    return path


def schema_message(error: jsonschema.ValidationError, schema: Node, prefix: str) -> list[str]:
    """A JSON Schema error worded as the API server words it."""
    at = field_path(schema, error.absolute_path, prefix)
    kind, bound, got, node = error.validator, error.validator_value, error.instance, error.schema
    body = f"{at}: Invalid value: {json.dumps(got)}: {at} in body should"
    if kind == "required":
        return [f"{at}.{name}: Required value" for name in bound if name not in got]
    if kind == "additionalProperties":
        return [f'unknown field "{at}.{k}"' for k in got if k not in node.get("properties", {})]
    if kind == "enum":
        values = ", ".join(json.dumps(v) for v in bound)
        return [f"{at}: Unsupported value: {json.dumps(got)}: supported values: {values}"]
    if kind in ("minimum", "maximum"):
        word = "greater" if kind == "minimum" else "less"
        exclusive = node.get(f"exclusiveM{kind[1:]}")
        return [f"{body} be {word} than{'' if exclusive else ' or equal to'} {bound}"]
    if kind == "pattern":
        return [f"{body} match '{bound}'"]
    if kind in ("minItems", "minProperties"):
        noun = "items" if kind == "minItems" else "properties"
        return [
            f"{at}: Invalid value: {len(got)}: {at} in body should have at least {bound} {noun}"
        ]
    if kind in ("maxItems", "maxProperties"):
        return [f"{at}: Too many: {len(got)}: must have at most {bound} items"]
    if kind == "maxLength":
        return [f"{at}: Too long: may not be more than {bound} bytes"]
    if kind == "minLength":
        return [f"{body} be at least {bound} chars long"]
    if kind == "type":
        return [f"{at}: Invalid value: {json.dumps(got)}: {at} in body must be of type {bound}"]
    return [f"{at}: {error.message}"]


def to_cel(schema: Node, value: Any) -> Any:
    """``value`` as CEL sees it under ``schema`` (a number field holding 50 is the double 50.0)."""
    kind = schema.get("type")
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        return celtypes.MapType(
            {celtypes.StringType(k): to_cel(props[k], v) for k, v in value.items() if k in props}
        )
    if isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        sub = schema["additionalProperties"]
        return celtypes.MapType({celtypes.StringType(k): to_cel(sub, v) for k, v in value.items()})
    if isinstance(value, list) and "items" in schema:
        return celtypes.ListType([to_cel(schema["items"], v) for v in value])
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return celtypes.DoubleType(float(value))
    return json_to_cel(value)


def cel_program(rule: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(rule))


# Errors after which the API server skips CEL (Required, NotSupported, TooLong, TooMany, type).
BLOCKING = {"required", "enum", "maxLength", "maxItems", "maxProperties", "type"}
SKIPPED = (
    '<nil>: Invalid value: "null": some validation rules were not checked because the object '
    "was invalid; correct the existing errors to complete validation"
)


def crd_errors(kind: str, spec: Any) -> list[str]:
    """What ``kubectl apply`` would answer for ``spec``: [] when accepted."""
    schema = spec_schema(kind)
    spec = defaulted(schema, spec)
    found = list(jsonschema.Draft4Validator(strict_jsonschema(schema)).iter_errors(spec))
    unknown = [e for e in found if e.validator == "additionalProperties"]
    if unknown:  # strict decoding fails before anything is validated
        return [m for e in unknown for m in schema_message(e, schema, "spec")]
    errors = [m for e in found for m in schema_message(e, schema, "spec")]
    blocked = any(e.validator in BLOCKING for e in found)
    for node, value, at in value_nodes(schema, spec, "spec"):
        list_type = node.get("x-kubernetes-list-type")
        if list_type in ("map", "set") and isinstance(value, list):
            keys = node.get("x-kubernetes-list-map-keys", [])
            seen: list[Any] = []
            for i, item in enumerate(value):
                key = {k: item.get(k) for k in keys} if list_type == "map" else item
                if key in seen:
                    errors.append(f"{at}[{i}]: Duplicate value: {json.dumps(key)}")
                seen.append(key)
        for rule in [] if blocked else node.get("x-kubernetes-validations", []):
            try:
                result = cel_program(rule["rule"]).evaluate({"self": to_cel(node, value)})
            except CELEvalError as exc:
                errors.append(f"{at}: rule {rule['rule']!r} failed to evaluate: {exc}")
                continue
            if not (isinstance(result, celtypes.BoolType) and bool(result)):
                errors.append(f'{at}: Invalid value: "{node["type"]}": {rule["message"]}')
    return [*errors, SKIPPED] if blocked else errors


# --- freshness and CLI --------------------------------------------------------------------------


def test_crds_directory_matches_a_fresh_render() -> None:
    files = crdgen.render()
    assert sorted(files) == sorted(p.name for p in CRDS.glob("*.yaml"))
    for name, text in files.items():
        assert (CRDS / name).read_text() == text, f"crds/{name} is stale: run make crds"
        assert text.startswith(crdgen.HEADER)


def test_render_is_deterministic() -> None:
    assert crdgen.render() == crdgen.render()


def test_check_fails_on_missing_edited_or_extra_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crdgen.main(["--check", str(tmp_path)]) == 1
    assert "run `make crds`" in capsys.readouterr().err
    assert crdgen.main([str(tmp_path)]) == 0
    assert crdgen.main(["--check", str(tmp_path)]) == 0
    target = tmp_path / "switchman.dev_modelpools.yaml"
    target.write_text(target.read_text().replace("maxItems: 64", "maxItems: 65"))
    assert crdgen.main(["--check", str(tmp_path)]) == 1
    assert "switchman.dev_modelpools.yaml" in capsys.readouterr().err
    assert crdgen.main([str(tmp_path)]) == 0
    (tmp_path / "switchman.dev_gone.yaml").write_text("old")
    assert crdgen.main(["--check", str(tmp_path)]) == 1
    assert crdgen.main([str(tmp_path)]) == 0
    assert not (tmp_path / "switchman.dev_gone.yaml").exists()


def test_module_runs_as_a_command_against_the_repo() -> None:
    cmd = [sys.executable, "-m", "switchman.api.v1alpha1.crdgen", "--check", str(CRDS)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --- CRD shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plural", "kind", "short", "columns"),
    [
        ("modelpools", "ModelPool", "mp", ["Ready", "Reason", "Models", "Age"]),
        ("routingpolicies", "RoutingPolicy", "rp", ["Ready", "Reason", "Routes", "Pools", "Age"]),
    ],
)
def test_crd_names_version_and_columns(
    plural: str, kind: str, short: str, columns: list[str]
) -> None:
    crd = load_crd(plural)
    # The CRD manifest itself against the current Kubernetes API's schema (strict fields).
    kubernetes_validate.validate(crd, kubernetes_validate.latest_version(), strict=True)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.switchman.dev"
    spec = crd["spec"]
    assert (spec["group"], spec["scope"]) == ("switchman.dev", "Namespaced")
    assert spec["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
        "shortNames": [short],
        "categories": ["switchman"],
    }
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == columns
    root = version["schema"]["openAPIV3Schema"]
    assert root["required"] == ["spec"]
    assert root["properties"]["metadata"] == {"type": "object"}
    assert root["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
    for column in version["additionalPrinterColumns"]:
        node = root
        for seg in re.sub(r"\[[^\]]*\]", "", column["jsonPath"]).strip(".").split("."):
            node = node.get("items", node)
            if node is root["properties"]["metadata"]:
                break
            node = node["properties"][seg]  # KeyError: the column names a missing field


# --- structural schema --------------------------------------------------------------------------

ALLOWED = {
    "type", "description", "properties", "required", "items", "additionalProperties", "enum",
    "default", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minLength", "maxLength", "pattern", "minItems", "maxItems", "minProperties",
    "maxProperties", "x-kubernetes-validations", "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-preserve-unknown-fields",
}  # fmt: skip
SCALARS = {"string", "integer", "number", "boolean"}
ALL_NODES = [
    pytest.param(node, at, up, id=f"{plural}{at}")
    for plural in PLURALS.values()
    for node, at, up in schema_nodes(root_schema(plural))
]


@pytest.mark.parametrize(("node", "at", "up"), ALL_NODES)
def test_every_schema_node_is_structural(node: Node, at: str, up: list[Node]) -> None:
    assert node.get("type") in {"object", "array", *SCALARS}, at
    assert set(node) <= ALLOWED, f"{at}: {set(node) - ALLOWED}"
    assert not ("properties" in node and "additionalProperties" in node), at
    assert node.get("additionalProperties", {}) is not False, at
    for bound in ("exclusiveMinimum", "exclusiveMaximum"):
        if bound in node:
            assert node[bound] is True, at
            assert bound.replace("exclusiveM", "m") in node, at
    free_form = not {"properties", "additionalProperties"} & set(node)
    if node["type"] == "object" and free_form and at != ".metadata":  # the server's own schema
        assert node.get("x-kubernetes-preserve-unknown-fields") is True, at
    if "default" in node:
        jsonschema.Draft4Validator(strict_jsonschema(node)).validate(node["default"])
    if "pattern" in node:
        re.compile(node["pattern"])
        assert not re.search(r"\(\?[=!<]|\\[1-9]", node["pattern"]), f"{at}: not RE2"
    assert set(node.get("required", [])) <= set(node.get("properties", {})), at


@pytest.mark.parametrize(("node", "at", "up"), ALL_NODES)
def test_list_types_fit_their_items(node: Node, at: str, up: list[Node]) -> None:
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "set":
        assert node["items"]["type"] in SCALARS, at
    if list_type == "map":
        items = node["items"]
        assert node["x-kubernetes-list-map-keys"], at
        for key in node["x-kubernetes-list-map-keys"]:
            assert items["properties"][key]["type"] in SCALARS, at
            assert key in items.get("required", []) or "default" in items["properties"][key], at
    else:
        assert "x-kubernetes-list-map-keys" not in node, at


def bounded(node: Node) -> bool:
    kind = node["type"]
    if kind == "string":
        return "maxLength" in node
    if kind == "array":
        return "maxItems" in node
    if kind == "object" and "additionalProperties" in node:
        return "maxProperties" in node
    return True


RULE_NODES = [
    pytest.param(node, rule, up, id=f"{at}:{rule['message']}")
    for plural in PLURALS.values()
    for node, at, up in schema_nodes(root_schema(plural))
    for rule in node.get("x-kubernetes-validations", [])
]


@pytest.mark.parametrize(("node", "rule", "up"), RULE_NODES)
def test_cel_rules_compile_and_read_only_bounded_values(
    node: Node, rule: Node, up: list[Node]
) -> None:
    cel_program(rule["rule"])
    assert rule["message"]
    assert not rule["message"].endswith(".")
    # The cost estimate multiplies by every enclosing list's size: all must be bounded.
    assert all(bounded(a) for a in up if a["type"] == "array"), rule
    # has() costs nothing; every other field a rule reads must be bounded.
    unguarded = re.sub(r"has\([^)]*\)", "", rule["rule"])
    read = set(re.findall(r"\.([A-Za-z_]\w*)", unguarded))
    # A field read without has() must always be there (required or defaulted), or the rule
    # fails to evaluate ("no such key") instead of saying its message.
    guarded = set(re.findall(r"has\(self\.(\w+)\)", rule["rule"]))
    if node["type"] == "array":  # self.all(...), self.exists_one(...): macros, not fields
        return
    for name in set(re.findall(r"\bself\.([A-Za-z_]\w*)", unguarded)) - guarded:
        field = node["properties"][name]
        assert name in node.get("required", []) or "default" in field, (rule, name)
    for sub, at, _ in schema_nodes(node):
        if at and at.rsplit(".", 1)[-1] in read:
            assert bounded(sub), f"{rule['rule']!r} reads unbounded {at}"


# --- valid objects ------------------------------------------------------------------------------


def spec_of(manifest: str) -> Node:
    spec: Node = yaml.safe_load(manifest)["spec"]
    return spec


SMALL_LARGE_POOL = spec_of("""
apiVersion: switchman.dev/v1alpha1
kind: ModelPool
metadata: {name: chat}
spec:
  models:
    - name: qwen-small
      tier: small
      vllm:
        source: {huggingFace: {repo: Qwen/Qwen2.5-1.5B-Instruct}}
        replicas: 2
        gpu: {count: 1, type: NVIDIA-L4}
        engine:
          maxModelLen: 8192
          dtype: bfloat16
          tokenizerMode: mistral
          configFormat: mistral
          loadFormat: mistral
          toolCallParser: mistral
          limitMmPerPrompt: {image: 4}
        cache: {size: 20Gi}
      capabilities: {tools: true, contextWindow: 8192}
      price: {inputPerMTok: 0.02, outputPerMTok: 0.06}
    - name: llama-large
      tier: large
      vllm:
        source: {pvc: {claimName: weights, path: /llama-3.1-70b}}
        autoscaling: {maxReplicas: 4, targetQueueDepth: 8}
        gpu:
          count: 4
          type: NVIDIA-H100-80GB-HBM3
          nodeSelector: {pool: gpu}
          tolerations: [{key: dedicated, value: gpu, effect: NoSchedule}]
          runtimeClassName: nvidia
        resources: {requests: {cpu: "8", memory: 64Gi}}
        engine:
          gpuMemoryUtilization: 0.92
          quantization: fp8
          loraAdapters: [{name: llama-large-sql, source: org/sql-lora}]
          extraArgs: [--max-num-seqs=128]
        cache: {claimName: hf-cache}
        hfTokenSecret: {name: hf, key: token}
        env: [{name: VLLM_LOGGING_LEVEL, value: INFO}]
      capabilities: {tools: true, contextWindow: 131072}
      price: {inputPerMTok: 0.4, outputPerMTok: 0.8}
""")
EXTERNAL_POOL = spec_of("""
apiVersion: switchman.dev/v1alpha1
kind: ModelPool
metadata: {name: providers}
spec:
  models:
    - name: gpt-4o-mini
      tier: small
      external:
        provider: openai
        credentialsSecret: {name: openai, key: api-key}
      capabilities: {vision: true, tools: true, contextWindow: 128000}
      price: {inputPerMTok: 0.15, outputPerMTok: 0.6}
    - name: claude-sonnet
      tier: large
      external:
        provider: anthropic
        model: claude-sonnet-4-5
        credentialsSecret: {name: anthropic, key: api-key}
      price: {inputPerMTok: 3, outputPerMTok: 15}
    - name: gpt-4o
      tier: large
      external:
        provider: azure-openai
        baseURL: https://contoso.openai.azure.com
        azure: {deployment: gpt-4o-prod}
        credentialsSecret: {name: azure-openai, key: api-key}
""")
POLICY = spec_of("""
apiVersion: switchman.dev/v1alpha1
kind: RoutingPolicy
metadata: {name: assistants}
spec:
  pools: [{name: chat}, {name: providers}]
  routes:
    - name: auto
      candidates: [qwen-small, llama-large, gpt-4o]
      strategy: complexity
      complexity:
        tiers: [{tier: small, minComplexity: 0}, {tier: large, minComplexity: 0.6}]
      scorers: {latency: 0.2}
    - name: chat
      candidates: [llama-large, gpt-4o, claude-sonnet]
      retry: {maxAttempts: 4, backoffBaseSeconds: 0.05, backoffMaxSeconds: 2}
      shadow: {model: qwen-small, percent: 5}
      preference: {gpt-4o: 0.8}
      midStream: continue
    - name: canary
      candidates: [qwen-small, gpt-4o-mini]
      strategy: weighted
      split: {qwen-small: 90, gpt-4o-mini: 10}
  timeouts: {firstByteSeconds: 30}
  circuitBreaker: {consecutiveFailures: 3}
  gateway:
    replicas: 3
    serviceType: LoadBalancer
    clientAuthSecret: {name: switchman-admin, key: token}
""")
TENANCY_POLICY: Node = {
    **POLICY,
    "tenancy": {
        "keysSecret": {"name": "switchman-keys", "key": "keys.yaml"},
        "redis": {"url": "redis://redis:6379/0", "passwordSecret": {"name": "redis", "key": "pw"}},
        "onRedisDown": "closed",
        "tenants": [
            {"name": "team-a", "routes": ["auto"], "limits": {"requestsPerMinute": 60}},
            {"name": "team-b", "daily": {"hardUsd": 5, "softUsd": 4}, "monthly": {"hardUsd": 90}},
        ],
    },
}
MINIMAL_POLICY: Node = {
    "pools": [{"name": "chat"}],
    "routes": [{"name": "auto", "candidates": ["a"]}],
}
VALID = [
    pytest.param("ModelPool", SMALL_LARGE_POOL, id="small-large-vllm"),
    pytest.param("ModelPool", EXTERNAL_POOL, id="external-providers"),
    pytest.param("RoutingPolicy", POLICY, id="complexity-failover-canary"),
    pytest.param("RoutingPolicy", MINIMAL_POLICY, id="minimal-policy"),
    pytest.param("RoutingPolicy", TENANCY_POLICY, id="tenants"),
]


@pytest.mark.parametrize(("kind", "spec"), VALID)
def test_valid_objects_are_accepted_by_the_crd_and_the_models(kind: str, spec: Node) -> None:
    assert crd_errors(kind, spec) == []
    parsed = MODELS[kind].model_validate(spec)
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert crd_errors(kind, dumped) == []


EXAMPLES = [
    pytest.param(doc, id=f"{path.parent.name}/{doc['metadata']['name']}")
    for path in sorted((CRDS.parent / "examples").rglob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if isinstance(doc, dict) and doc.get("kind") in PLURALS
]


@pytest.mark.parametrize("manifest", EXAMPLES)
def test_every_example_custom_resource_is_accepted(manifest: Node) -> None:
    assert manifest["apiVersion"] == "switchman.dev/v1alpha1"
    assert crd_errors(manifest["kind"], manifest["spec"]) == []
    MODELS[manifest["kind"]].model_validate(manifest["spec"])


def test_the_api_server_fills_the_same_defaults_as_the_models() -> None:
    spec = defaulted(spec_schema("RoutingPolicy"), MINIMAL_POLICY | {"routes": POLICY["routes"]})
    parsed = RoutingPolicySpec.model_validate(spec)
    assert spec["routes"][0]["strategy"] == "complexity"
    assert spec["routes"][1]["strategy"] == parsed.routes[1].strategy == "priority"
    assert spec["routes"][1]["retry"]["perCandidate"] == parsed.routes[1].retry.per_candidate
    assert spec["routes"][1]["onContentFilter"] == "fail"


# --- invalid objects ----------------------------------------------------------------------------

Mutate = Callable[[Node], Any]


def m(spec: Node) -> Node:
    """The first model of a pool spec."""
    model: Node = spec["models"][0]
    return model


def r(spec: Node) -> Node:
    """The first route of a policy spec."""
    route: Node = spec["routes"][0]
    return route


def case(
    kind: str, base: Node, mutate: Mutate, crd: str | list[str], pydantic: str, id: str
) -> Any:
    """One invalid object: ``crd`` is what ``kubectl apply`` reports (plus the note that CEL
    rules were skipped, after a blocking error)."""
    crd_answer = [crd] if isinstance(crd, str) else crd
    blocking = ("Unsupported value", "Required value", "Too long", "Too many")
    if any(b in line for b in blocking for line in crd_answer):
        crd_answer = [*crd_answer, SKIPPED]
    return pytest.param(kind, base, mutate, crd_answer, pydantic, id=id)


MP, RP = "ModelPool", "RoutingPolicy"
CEL = 'Invalid value: "object": '
CEL_LIST = 'Invalid value: "array": '
PROVIDERS = '"openai", "azure-openai", "anthropic", "mistral", "hf-router", "openai-compatible"'
INVALID = [
    case(MP, SMALL_LARGE_POOL, lambda s: m(s).update(external={"provider": "openai"}),
         f"spec.models[0]: {CEL}set exactly one of vllm or external",
         "set exactly one of vllm or external", "vllm-and-external"),
    case(MP, SMALL_LARGE_POOL, lambda s: m(s).pop("vllm"),
         f"spec.models[0]: {CEL}set exactly one of vllm or external",
         "set exactly one of vllm or external", "neither-vllm-nor-external"),
    case(MP, SMALL_LARGE_POOL, lambda s: m(s)["vllm"]["source"].update(uri="s3://b/qwen"),
         f"spec.models[0].vllm.source: {CEL}set exactly one of huggingFace, pvc or uri",
         "set exactly one of huggingFace, pvc or uri", "two-model-sources"),
    case(MP, SMALL_LARGE_POOL, lambda s: m(s)["vllm"].update(source={}),
         f"spec.models[0].vllm.source: {CEL}set exactly one of huggingFace, pvc or uri",
         "set exactly one of huggingFace, pvc or uri", "no-model-source"),
    case(MP, SMALL_LARGE_POOL, lambda s: s["models"][1]["vllm"].update(replicas=2),
         f"spec.models[1].vllm: {CEL}set replicas or autoscaling, not both",
         "set replicas or autoscaling, not both", "autoscaling-with-replicas"),
    case(MP, SMALL_LARGE_POOL,
         lambda s: s["models"][1]["vllm"].update(autoscaling={"minReplicas": 5, "maxReplicas": 4}),
         f"spec.models[1].vllm.autoscaling: {CEL}minReplicas must be <= maxReplicas",
         "minReplicas must be <= maxReplicas", "min-above-max-replicas"),
    case(MP, SMALL_LARGE_POOL, lambda s: m(s)["vllm"]["cache"].update(claimName="c"),
         f"spec.models[0].vllm.cache: {CEL}set claimName or size, not both",
         "set claimName or size, not both", "cache-claim-and-size"),
    case(MP, EXTERNAL_POOL, lambda s: s["models"][2]["external"].pop("azure"),
         f"spec.models[2].external: {CEL}provider azure-openai needs azure.deployment",
         "provider azure-openai needs azure.deployment", "azure-without-deployment"),
    case(MP, EXTERNAL_POOL, lambda s: s["models"][2]["external"].pop("baseURL"),
         f"spec.models[2].external: {CEL}providers openai-compatible and azure-openai need baseURL",
         "providers openai-compatible and azure-openai need baseURL", "azure-without-base-url"),
    case(MP, EXTERNAL_POOL, lambda s: m(s)["external"].update(provider="openai-compatible"),
         f"spec.models[0].external: {CEL}providers openai-compatible and azure-openai need baseURL",
         "providers openai-compatible and azure-openai need baseURL", "compatible-without-url"),
    case(MP, EXTERNAL_POOL, lambda s: m(s)["external"].update(azure={"deployment": "d"}),
         f"spec.models[0].external: {CEL}azure is only for provider azure-openai",
         "azure is only for provider azure-openai", "azure-block-on-openai"),
    case(MP, EXTERNAL_POOL, lambda s: m(s)["external"].update(provider="gemini"),
         f'spec.models[0].external.provider: Unsupported value: "gemini": supported values: '
         f"{PROVIDERS}", "Input should be 'openai'", "bad-provider-enum"),
    case(MP, SMALL_LARGE_POOL, lambda s: m(s)["vllm"]["engine"].update(dtype="fp4"),
         'spec.models[0].vllm.engine.dtype: Unsupported value: "fp4": supported values: "auto", '
         '"half", "float16", "bfloat16", "float", "float32"', "Input should be 'auto'",
         "bad-dtype-enum"),
    case(MP, SMALL_LARGE_POOL, lambda s: m(s)["vllm"]["engine"].update(tokenizerMode="tekken"),
         'spec.models[0].vllm.engine.tokenizerMode: Unsupported value: "tekken": supported '
         'values: "auto", "slow", "mistral", "custom"', "Input should be 'auto'",
         "bad-tokenizer-mode"),
    case(MP, SMALL_LARGE_POOL,
         lambda s: m(s)["vllm"]["engine"].update(limitMmPerPrompt={"image": -1}),
         "spec.models[0].vllm.engine.limitMmPerPrompt.image: Invalid value: -1: "
         "spec.models[0].vllm.engine.limitMmPerPrompt.image in body should be greater than or "
         "equal to 0", "greater than or equal to 0", "negative-image-limit"),
    case(MP, SMALL_LARGE_POOL,
         lambda s: m(s)["vllm"]["engine"].update(limitMmPerPrompt={"images": 2}),
         'unknown field "spec.models[0].vllm.engine.limitMmPerPrompt.images"',
         "Extra inputs are not permitted", "unknown-modality"),
    case(MP, EXTERNAL_POOL, lambda s: m(s)["price"].update(inputPerMTok=-1),
         "spec.models[0].price.inputPerMTok: Invalid value: -1: spec.models[0].price.inputPerMTok "
         "in body should be greater than or equal to 0", "greater than or equal to 0",
         "negative-price"),
    case(MP, SMALL_LARGE_POOL, lambda s: s["models"][1].update(name="qwen-small"),
         f"spec.models: {CEL_LIST}model names must be unique within a pool",
         "model names must be unique within a pool", "duplicate-model-names"),
    case(MP, SMALL_LARGE_POOL, lambda s: m(s)["vllm"].update(replica=3),
         'unknown field "spec.models[0].vllm.replica"', "Extra inputs are not permitted",
         "unknown-field"),
    case(MP, EXTERNAL_POOL, lambda s: m(s)["external"].pop("provider"),
         "spec.models[0].external.provider: Required value", "Field required", "no-provider"),
    case(MP, EXTERNAL_POOL, lambda s: m(s)["external"].update(baseURL="https://k:s@api.x.com"),
         'spec.models[0].external.baseURL: Invalid value: "https://k:s@api.x.com": '
         "spec.models[0].external.baseURL in body should match '^https?://[^@/]+(/.*)?$'",
         "String should match pattern", "credentials-in-base-url"),
    case(MP, SMALL_LARGE_POOL, lambda s: m(s)["vllm"]["gpu"].update(count=17),
         "spec.models[0].vllm.gpu.count: Invalid value: 17: spec.models[0].vllm.gpu.count in body "
         "should be less than or equal to 16", "less than or equal to 16", "too-many-gpus"),
    case(MP, SMALL_LARGE_POOL, lambda s: s.update(models=[]),
         "spec.models: Invalid value: 0: spec.models in body should have at least 1 items",
         "at least 1 item", "no-models"),
    case(RP, POLICY, lambda s: s["routes"][2].pop("split"),
         f"spec.routes[2]: {CEL}strategy weighted needs split",
         "strategy weighted needs split", "weighted-without-split"),
    case(RP, POLICY, lambda s: s["routes"][2].update(strategy="priority"),
         f"spec.routes[2]: {CEL}split is only for weighted",
         "split is only for weighted", "split-on-priority-route"),
    case(RP, POLICY, lambda s: s["routes"][2]["split"].update({"gpt-4o": 5}),
         f"spec.routes[2]: {CEL}split names models that are not candidates",
         "split names models that are not candidates", "split-stranger"),
    case(RP, POLICY, lambda s: s["routes"][2].update(split={"qwen-small": 0}),
         f"spec.routes[2]: {CEL}split values must not all be 0",
         "split values must not all be 0", "split-all-zero"),
    case(RP, POLICY, lambda s: s["routes"][2].update(split={}),
         ["spec.routes[2].split: Invalid value: 0: spec.routes[2].split in body should have at "
          "least 1 properties", f"spec.routes[2]: {CEL}split values must not all be 0"],
         "at least 1 item", "split-empty"),
    case(RP, POLICY, lambda s: s["routes"][1].update(preference={"gpt-4o": 1.5}),
         "spec.routes[1].preference[gpt-4o]: Invalid value: 1.5: spec.routes[1].preference[gpt-4o] "
         "in body should be less than or equal to 1", "less than or equal to 1",
         "preference-above-1"),
    case(RP, POLICY, lambda s: s["routes"][1].update(preference={"qwen-small": 1}),
         f"spec.routes[1]: {CEL}preference names models that are not candidates",
         "preference names models that are not candidates", "preference-stranger"),
    case(RP, POLICY, lambda s: s["routes"][1]["shadow"].update(model="gpt-4o"),
         f"spec.routes[1]: {CEL}the shadow model must not be a candidate of the same route",
         "the shadow model must not be a candidate of the same route", "shadow-is-candidate"),
    case(RP, POLICY, lambda s: r(s)["complexity"]["tiers"][0].update(minComplexity=0.1),
         f"spec.routes[0].complexity: {CEL}the first tier must start at minComplexity 0",
         "the first tier must start at minComplexity 0", "tiers-not-from-0"),
    case(RP, POLICY, lambda s: r(s)["complexity"]["tiers"].append(
             {"tier": "huge", "minComplexity": 0.5}),
         f"spec.routes[0].complexity: {CEL}tiers must have strictly ascending minComplexity",
         "tiers must have strictly ascending minComplexity", "tiers-not-ascending"),
    case(RP, POLICY, lambda s: r(s)["complexity"]["tiers"].append(
             {"tier": "small", "minComplexity": 0.9}),
         f"spec.routes[0].complexity: {CEL}each tier may appear once",
         "each tier may appear once", "tier-twice"),
    case(RP, POLICY, lambda s: r(s)["complexity"].update(mode="cost"),
         f"spec.routes[0].complexity: {CEL}tiers are explicit thresholds: not with mode or "
         "maxLargePercent",
         "tiers are explicit thresholds: not with mode or maxLargePercent", "tiers-and-mode"),
    case(RP, POLICY, lambda s: s["routes"][1]["retry"].update(backoffBaseSeconds=3),
         f"spec.routes[1].retry: {CEL}backoffMaxSeconds must be at least backoffBaseSeconds",
         "backoffMaxSeconds must be at least backoffBaseSeconds", "backoff-base-above-max"),
    case(RP, POLICY, lambda s: r(s)["candidates"].append("gpt-4o"),
         f"spec.routes[0].candidates: {CEL_LIST}candidates must be unique",
         "candidates must be unique", "duplicate-candidates"),
    case(RP, POLICY, lambda s: s["routes"][1].update(name="auto"),
         f"spec.routes: {CEL_LIST}route names must be unique",
         "route names must be unique", "duplicate-route-names"),
    case(RP, POLICY, lambda s: s["pools"].append({"name": "chat"}),
         f"spec.pools: {CEL_LIST}pool names must be unique",
         "pool names must be unique", "duplicate-pool-names"),
    case(RP, POLICY, lambda s: s.update(routes=[]),
         "spec.routes: Invalid value: 0: spec.routes in body should have at least 1 items",
         "List should have at least 1 item", "no-routes"),
    case(RP, POLICY, lambda s: s.pop("routes"), "spec.routes: Required value", "Field required",
         "routes-missing"),
    case(RP, POLICY, lambda s: r(s).update(strategy="random"),
         'spec.routes[0].strategy: Unsupported value: "random": supported values: "priority", '
         '"cheapest", "fastest", "least-loaded", "complexity", "weighted"',
         "Input should be 'priority'", "bad-strategy-enum"),
    case(RP, POLICY, lambda s: s["pools"][0].update(name="Chat_Pool"),
         'spec.pools[0].name: Invalid value: "Chat_Pool": spec.pools[0].name in body should match '
         "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'", "String should match pattern", "pool-not-dns"),
    case(RP, POLICY, lambda s: s["gateway"].update(serviceType="ExternalName"),
         'spec.gateway.serviceType: Unsupported value: "ExternalName": supported values: '
         '"ClusterIP", "NodePort", "LoadBalancer"', "Input should be 'ClusterIP'",
         "bad-service-type"),
    case(RP, POLICY, lambda s: s.pop("pools"), "spec.pools: Required value", "Field required",
         "no-pools"),
    case(RP, TENANCY_POLICY,
         lambda s: s["tenancy"]["tenants"][1]["daily"].update(softUsd=6),
         f"spec.tenancy.tenants[1].daily: {CEL}softUsd must not exceed hardUsd",
         "softUsd must not exceed hardUsd", "tenant-soft-above-hard"),
    case(RP, TENANCY_POLICY,
         lambda s: s["tenancy"]["tenants"][1].update(name="team-a"),
         f"spec.tenancy.tenants: {CEL_LIST}tenant names must be unique",
         "tenant names must be unique", "duplicate-tenants"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "base", "mutate", "crd", "pydantic"), INVALID)
def test_invalid_objects_are_rejected_by_the_crd_and_the_models(
    kind: str, base: Node, mutate: Mutate, crd: list[str], pydantic: str
) -> None:
    spec = copy.deepcopy(base)
    mutate(spec)
    assert crd_errors(kind, spec) == crd
    with pytest.raises(ValidationError, match=re.escape(pydantic)):
        MODELS[kind].model_validate(spec)


def test_every_cel_rule_is_exercised_by_an_invalid_object() -> None:
    messages = {
        rule["message"]
        for plural in PLURALS.values()
        for node, _, _ in schema_nodes(root_schema(plural))
        for rule in node.get("x-kubernetes-validations", [])
    }
    answers = [line for p in INVALID for line in p.values[3]]
    exercised = {
        line.split(marker, 1)[-1]
        for line in answers
        for marker in (CEL, CEL_LIST)
        if marker in line
    }
    assert messages - exercised == set()
