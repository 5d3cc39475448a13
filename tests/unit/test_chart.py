"""The Helm chart ``charts/switchman``, rendered by the real Helm engine (``helm-python-sdk``).

Values cases: the defaults and every file in ``tests/unit/chart_values/`` (all toggles on,
namespaced, minimal, peering cluster-wide and namespaced). Scenario matrix:

- Chart.yaml: v2, version and appVersion 0.1.0 (the project's version, the gateway image's tag),
  kubeVersion; ``helm lint --strict`` clean for every case
- every rendered manifest: valid for kubernetes-validate (strict, Kubernetes 1.37), except the
  CRD-typed kinds in ``CRD_TYPED``, each checked against its CRD's schema where we ship it
  (ModelPool / RoutingPolicy: crds/ plus pydantic; KopfPeering: kopf's CRD) or skipped
  (ServiceMonitor / PrometheusRule: prometheus-operator's, not shipped); standard labels on
  every object; images without a registry host
- which objects each case renders; the Deployment: image (tag, digest), the real CLI parser
  reads its args (``--namespace`` only namespaced, ``--peering`` only with replicas > 1,
  ``--liveness`` = the operator's), probes on the liveness port, restricted securityContext,
  strategy, topology spread on its own pods
- RBAC: the (Cluster)Role's rules equal ``rbac.rules(clusterwide, peering)`` for the four
  combinations, no wildcard; bindings to the ServiceAccount; ``files/rbac-rules.yaml`` is the
  generated copy of ``rbac.RULES`` (``SWITCHMAN_UPDATE_GOLDEN=1`` rewrites it)
- peering object (Cluster/Kopf) named as ``--peering``, PDB; NetworkPolicy: ingress only to
  8081, egress only to the API server ports and DNS
- ServiceMonitor selects the Service the operator renders for a gateway (labels, port http);
  dashboards and alerts loaded verbatim (their ``{{ }}`` untouched), no ``tpl`` in templates
- CRDs: chart crds/ = top-level crds/ byte for byte + kopf's peering CRDs
- values.schema.json: every object closed (additionalProperties false) or a typed map, every
  property described; bad values rejected by Helm with the path and the constraint
- NOTES.txt: next steps for the served namespace
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

from switchman.api.v1alpha1 import ModelPoolSpec, RoutingPolicySpec
from switchman.api.v1alpha1.routingpolicy import DEFAULT_GATEWAY_IMAGE
from switchman.cli.operator import add_arguments
from switchman.operator import rbac
from switchman.operator.render.policy import render_policy
from switchman.operator.run import LIVENESS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "switchman"
VALUES_DIR = Path(__file__).parent / "chart_values"
CASES = ["default", *sorted(p.stem for p in VALUES_DIR.glob("*.yaml"))]
RELEASE, NAMESPACE = "switchman", "switchman-system"
K8S_VERSION = "1.37"
UPDATE_ENV = "SWITCHMAN_UPDATE_GOLDEN"
RULES_FILE = CHART / "files" / "rbac-rules.yaml"
PEERING_CRDS = "kopf.dev_peerings.yaml"
# Kinds kubernetes-validate has no schema for (custom resources), and how each is checked.
CRD_TYPED = {
    "ModelPool": "crds/switchman.dev_modelpools.yaml and ModelPoolSpec",
    "RoutingPolicy": "crds/switchman.dev_routingpolicies.yaml and RoutingPolicySpec",
    "KopfPeering": f"crds/{PEERING_CRDS}",
    "ClusterKopfPeering": f"crds/{PEERING_CRDS}",
    "ServiceMonitor": "skipped: prometheus-operator's CRD is not shipped",
    "PrometheusRule": "skipped: prometheus-operator's CRD is not shipped",
}
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


def case_values(case: str) -> Obj:
    if case == "default":
        return {}
    values: Obj = yaml.safe_load((VALUES_DIR / f"{case}.yaml").read_text())
    return values


def render(chart: helm_python.Chart, values: Obj) -> dict[str, str]:
    rendered: dict[str, str] = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    return rendered


def objects(chart: helm_python.Chart, values: Obj) -> list[Obj]:
    docs = [
        doc
        for path, text in sorted(render(chart, values).items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
    ]
    return [doc for doc in docs if doc]


def one(objs: list[Obj], kind: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def operator_args(deployment: Obj) -> argparse.Namespace:
    """The container's args, read by the real ``switchman operator`` parser."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["switchman"]
    assert container["args"][0] == "operator"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(container["args"][1:])


# --- the chart as a whole ---------------------------------------------------------------------


def test_chart_metadata_matches_the_project_and_the_gateway_image() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert project is not None
    assert meta["apiVersion"] == "v2"
    assert meta["version"] == meta["appVersion"] == project.group(1) == "0.1.0"
    assert meta["kubeVersion"] == ">=1.30.0-0"
    assert f"switchman/gateway:{meta['appVersion']}" == DEFAULT_GATEWAY_IMAGE


@pytest.mark.parametrize("case", CASES)
def test_lint_is_clean(case: str) -> None:
    report = helm_python.lint(CHART, case_values(case) or None, strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert not problems, problems
    assert not report["errors"], report["errors"]


@pytest.mark.parametrize("case", CASES)
def test_every_manifest_is_valid(chart: helm_python.Chart, case: str) -> None:
    for obj in objects(chart, case_values(case)):
        kind = obj["kind"]
        if kind in ("ModelPool", "RoutingPolicy"):
            check_switchman_resource(obj)
        elif kind in ("KopfPeering", "ClusterKopfPeering"):
            check_against_crd(obj, PEERING_CRDS)
        elif kind not in CRD_TYPED:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        labels = obj["metadata"]["labels"]
        assert labels["helm.sh/chart"] == "switchman-0.1.0", obj["metadata"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/part-of"] == "switchman"


def check_against_crd(obj: Obj, crd_file: str) -> None:
    """``obj`` against the openAPIV3Schema of its CRD (group, version, kind) in chart crds/."""
    group, _, version = obj["apiVersion"].partition("/")
    for crd in yaml.safe_load_all((CHART / "crds" / crd_file).read_text()):
        spec = crd["spec"]
        if spec["group"] == group and spec["names"]["kind"] == obj["kind"]:
            served = {v["name"]: v for v in spec["versions"] if v["served"]}
            assert version in served, f"{obj['apiVersion']} is not served"
            expected = "Namespaced" if "namespace" in obj["metadata"] else "Cluster"
            assert spec["scope"] == expected, obj["metadata"]
            root = strict_schema(served[version]["schema"]["openAPIV3Schema"])
            root["properties"] |= {"apiVersion": {}, "kind": {}, "metadata": {"type": "object"}}
            jsonschema.Draft4Validator(root).validate(obj)  # OpenAPI's exclusiveMinimum: bool
            return
    pytest.fail(f"no CRD for {obj['apiVersion']} {obj['kind']} in {crd_file}")


def strict_schema(node: Obj) -> Obj:
    """A CRD schema as Draft 4 JSON Schema rejecting unknown fields, as the API server's
    strict field validation does (except under x-kubernetes-preserve-unknown-fields)."""
    out = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in node:
        out["properties"] = {k: strict_schema(v) for k, v in node["properties"].items()}
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            out[key] = strict_schema(node[key])
    return out


def check_switchman_resource(obj: Obj) -> None:
    plural = "modelpools" if obj["kind"] == "ModelPool" else "routingpolicies"
    check_against_crd(obj, f"switchman.dev_{plural}.yaml")
    model = ModelPoolSpec if obj["kind"] == "ModelPool" else RoutingPolicySpec
    model.model_validate(obj["spec"])


def test_only_custom_resources_skip_kubernetes_validate(chart: helm_python.Chart) -> None:
    """CRD_TYPED is exact: each kind is rendered by some case and unknown to the validator."""
    kinds = {(o["apiVersion"], o["kind"]) for c in CASES for o in objects(chart, case_values(c))}
    assert {kind for _, kind in kinds} >= set(CRD_TYPED)
    for api_version, kind in kinds:
        if kind in CRD_TYPED:
            obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize("case", CASES)
def test_images_name_no_registry_host(chart: helm_python.Chart, case: str) -> None:
    for obj in objects(chart, case_values(case)):
        spec = obj.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        images = [c["image"] for c in pod.get("containers", [])]
        images += [spec["gateway"]["image"]] if obj["kind"] == "RoutingPolicy" else []
        for image in images:
            assert image.split("/")[0] == "switchman", f"{image}: a registry host"


@pytest.mark.parametrize(
    ("case", "kinds"),
    [
        ("default", ["ClusterRole", "ClusterRoleBinding", "Deployment", "NetworkPolicy"]),
        ("minimal", ["ClusterRole", "ClusterRoleBinding", "Deployment"]),
        ("peering", ["ClusterKopfPeering", "ClusterRole", "ClusterRoleBinding", "Deployment"]),
        ("namespaced", ["Deployment", "ModelPool", "NetworkPolicy", "Role", "RoleBinding"]),
        (
            "all-on",
            [
                *("ClusterKopfPeering", "ClusterRole", "ClusterRoleBinding", "ConfigMap"),
                *("Deployment", "ModelPool", "NetworkPolicy", "PrometheusRule", "RoutingPolicy"),
            ],
        ),
    ],
)
def test_case_renders_its_objects(chart: helm_python.Chart, case: str, kinds: list[str]) -> None:
    rendered = {o["kind"] for o in objects(chart, case_values(case))}
    assert set(kinds) <= rendered
    assert "ServiceAccount" in rendered
    optional = {
        "PodDisruptionBudget": "ClusterKopfPeering" in kinds or case == "namespaced-peering",
        "ServiceMonitor": case in ("all-on", "namespaced"),
        "PrometheusRule": case == "all-on",
        "ConfigMap": case == "all-on",
        "ModelPool": case in ("all-on", "namespaced"),
        "NetworkPolicy": case != "minimal",
    }
    for kind, expected in optional.items():
        assert (kind in rendered) == expected, kind


# --- the operator Deployment --------------------------------------------------------------------


def test_default_deployment_runs_one_restricted_cluster_wide_operator(
    chart: helm_python.Chart,
) -> None:
    deployment = one(objects(chart, {}), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "switchman/operator:0.1.0"
    args = operator_args(deployment)
    assert (args.namespace, args.peering, args.liveness) == (None, None, LIVENESS)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    port = int(LIVENESS.rsplit(":", 1)[1].split("/")[0])
    assert container["ports"] == [{"name": "healthz", "containerPort": port, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert container["resources"]["limits"]["memory"]
    assert container["resources"]["requests"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PYTHONUNBUFFERED"] == "1"
    (spread,) = pod["topologySpreadConstraints"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert spread["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert (
        pod["serviceAccountName"] == one(objects(chart, {}), "ServiceAccount")["metadata"]["name"]
    )


def test_all_on_deployment_carries_every_pod_setting(chart: helm_python.Chart) -> None:
    values = case_values("all-on")
    deployment = one(objects(chart, values), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "switchman/operator:0.1.0-rc.1"
    assert operator_args(deployment).verbose is True
    assert values["operator"]["env"] == [
        e for e in container["env"] if e["name"] in ("KOPF_EXTRA", "POD_NAME")
    ]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert pod[key] == values["operator"][key]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "inference"
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"


def test_digest_pins_the_image_over_the_tag(chart: helm_python.Chart) -> None:
    digest = "sha256:" + "ab" * 32
    values = {"operator": {"image": {"tag": "9.9.9", "digest": digest}}}
    container = one(objects(chart, values), "Deployment")["spec"]["template"]["spec"]
    assert container["containers"][0]["image"] == f"switchman/operator@{digest}"


@pytest.mark.parametrize(
    ("case", "namespace", "peering_kind"),
    [
        ("peering", None, "ClusterKopfPeering"),
        ("namespaced-peering", "models", "KopfPeering"),
        ("namespaced", "models", None),
    ],
)
def test_args_and_peering_object_follow_the_mode(
    chart: helm_python.Chart, case: str, namespace: str | None, peering_kind: str | None
) -> None:
    objs = objects(chart, case_values(case))
    args = operator_args(one(objs, "Deployment"))
    assert args.namespace == namespace
    peerings = [o for o in objs if o["kind"] in ("KopfPeering", "ClusterKopfPeering")]
    if peering_kind is None:
        assert args.peering is None
        assert not peerings
        return
    (peering,) = peerings
    assert peering["kind"] == peering_kind
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == args.peering
    assert peering["metadata"].get("namespace") == namespace
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"] == one(objs, "Deployment")["spec"]["selector"]


# --- RBAC -----------------------------------------------------------------------------------


@pytest.mark.parametrize("namespaced", [False, True])
@pytest.mark.parametrize("replicas", [1, 2])
def test_rbac_rules_are_exactly_the_operators(
    chart: helm_python.Chart, namespaced: bool, replicas: int
) -> None:
    values = {"rbac": {"namespaced": namespaced}, "operator": {"replicas": replicas}}
    values |= {"watchNamespace": "models"} if namespaced else {}
    objs = objects(chart, values)
    kind = "Role" if namespaced else "ClusterRole"
    role, binding = one(objs, kind), one(objs, f"{kind}Binding")
    expected = rbac.rules(clusterwide=not namespaced, peering=replicas > 1)
    assert role["rules"] == expected
    assert "*" not in json.dumps(role["rules"])
    assert role["metadata"].get("namespace") == ("models" if namespaced else None)
    assert binding["metadata"].get("namespace") == role["metadata"].get("namespace")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": kind,
        "name": role["metadata"]["name"],
    }
    account = one(objs, "ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": NAMESPACE}
    ]
    assert not [o for o in objs if o["kind"] in ("Role", "ClusterRole") and o is not role]


def rules_file_text() -> str:
    rules = [
        {
            "why": rule.why,
            "apiGroups": [rule.api_group],
            "resources": list(rule.resources),
            "verbs": list(rule.verbs),
            "peering": rule.peering,
            "clusterScoped": rule.cluster_scoped,
        }
        for rule in rbac.RULES
    ]
    header = (
        "# Generated from switchman.operator.rbac.RULES by tests/unit/test_chart.py: do not edit.\n"
        "# templates/_helpers.tpl (switchman.rbacRules) selects from it as rbac.rules() does. "
        "Regenerate:\n"
        f"# {UPDATE_ENV}=1 .venv/bin/pytest -q tests/unit/test_chart.py\n"
    )
    return header + yaml.safe_dump({"rules": rules}, sort_keys=False, width=100)


def test_rbac_rules_file_is_generated_from_the_operator() -> None:
    actual = rules_file_text()
    if os.environ.get(UPDATE_ENV) == "1":
        RULES_FILE.write_text(actual)
    expected = RULES_FILE.read_text()
    if actual != expected:
        diff = difflib.unified_diff(expected.splitlines(), actual.splitlines(), lineterm="")
        pytest.fail(
            f"{RULES_FILE} is stale; rerun with {UPDATE_ENV}=1:\n" + "\n".join(diff),
            pytrace=False,
        )


def test_rbac_and_service_account_can_be_left_to_the_user(chart: helm_python.Chart) -> None:
    values = {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "ops"}}
    objs = objects(chart, values)
    assert not {"ClusterRole", "ClusterRoleBinding", "ServiceAccount"} & {o["kind"] for o in objs}
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ops"
    with pytest.raises(helm_python.HelmError, match=r"serviceAccount\.name"):
        render(chart, {"serviceAccount": {"create": False}})


# --- NetworkPolicy and monitoring -------------------------------------------------------------


def test_network_policy_admits_only_the_api_server_dns_and_probes(
    chart: helm_python.Chart,
) -> None:
    objs = objects(chart, {})
    policy = one(objs, "NetworkPolicy")["spec"]
    pod_labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8081}]}]
    api, dns = policy["egress"]
    assert api == {"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}

    values = case_values("all-on") | {"networkPolicy": {"dns": {"to": []}}}
    values["networkPolicy"]["apiServer"] = {"cidrs": ["172.18.0.2/32"], "ports": [6443]}
    api, dns = one(objects(chart, values), "NetworkPolicy")["spec"]["egress"]
    assert api["to"] == [{"ipBlock": {"cidr": "172.18.0.2/32"}}]
    assert api["ports"] == [{"protocol": "TCP", "port": 6443}]
    assert "to" not in dns


@pytest.mark.parametrize(("case", "namespaces"), [("all-on", {"any": True}), ("namespaced", {})])
def test_service_monitor_selects_the_gateways_the_operator_renders(
    chart: helm_python.Chart, case: str, namespaces: Obj
) -> None:
    objs = objects(chart, case_values(case))
    monitor = one(objs, "ServiceMonitor")["spec"]
    expected = namespaces or {"matchNames": ["models"]}
    assert monitor["namespaceSelector"] == expected
    (endpoint,) = monitor["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    pool, policy = one(objs, "ModelPool"), one(objs, "RoutingPolicy")
    rendered = render_policy(policy, {pool["metadata"]["name"]: pool})
    assert not rendered.unresolved
    service = one(rendered.manifests, "Service")
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert "http" in [p["name"] for p in service["spec"]["ports"]]


def test_dashboards_and_alerts_are_loaded_verbatim(chart: helm_python.Chart) -> None:
    objs = objects(chart, case_values("all-on"))
    config_map = one(objs, "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "monitoring"
    dashboards = {p.name: p.read_text() for p in (CHART / "dashboards").glob("*.json")}
    assert dashboards
    assert config_map["data"] == dashboards
    assert any("{{" in text for text in dashboards.values())  # Grafana's, not Helm's
    alerts = (CHART / "alerts" / "switchman-gateway.rules.yaml").read_text()
    rule = one(objs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(alerts)
    assert "{{ $labels.route }}" in json.dumps(rule["spec"])
    for template in (CHART / "templates").iterdir():
        assert not re.search(r"(\{\{-?|\||\()\s*tpl\b", template.read_text()), template.name


# --- CRDs, schema, NOTES --------------------------------------------------------------------


def test_chart_crds_are_the_generated_crds_plus_kopf_peering() -> None:
    top = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    ours = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert top, "no CRDs in crds/"
    stale = sorted(n for n in top if ours.get(n) != top[n])
    assert not stale, f"charts/switchman/crds/ differs from crds/: {stale} (copy crds/*.yaml)"
    assert set(ours) == set(top) | {PEERING_CRDS}
    peering = list(yaml.safe_load_all(ours[PEERING_CRDS]))
    plurals = set()
    for crd in peering:
        kubernetes_validate.validate(crd, K8S_VERSION, strict=True)
        plurals.add(crd["spec"]["names"]["plural"])
    assert plurals == {r for rule in rbac.RULES if rule.peering for r in rule.resources}


def schema_nodes(node: Obj, path: str = "") -> Iterator[tuple[str, Obj]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        if isinstance(sub, dict):  # `false`: a property forbidden (env value with valueFrom)
            yield from schema_nodes(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties", "then"):
        if isinstance(node.get(key), dict):
            yield from schema_nodes(node[key], f"{path}[{key}]")
    for name, sub in node.get("definitions", {}).items():
        yield from schema_nodes(sub, f"#{name}")


# Objects whose contents are Kubernetes' or Helm's, passed through (the API server checks them).
FREE_FORM = {".global", ".operator.affinity.nodeAffinity", ".operator.affinity.podAffinity"}
FREE_FORM |= {".operator.affinity.podAntiAffinity"}


def test_values_schema_is_closed_and_described() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)
    for path, node in schema_nodes(schema):
        if "$ref" in node:
            continue
        assert node.get("description") or path.endswith("]"), f"{path}: no description"
        if node.get("type") != "object" or path in FREE_FORM:
            continue
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} is open"
        else:  # a map: typed values and checked keys
            assert isinstance(node.get("additionalProperties"), dict), f"{path} is open"
            assert "propertyNames" in node, path


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"operator": {"replicas": -1}}, "at '/operator/replicas': minimum: got -1, want 0"),
        ({"operator": {"replicas": "2"}}, "at '/operator/replicas': got string, want integer"),
        ({"operatr": {"replicas": 2}}, "additional properties 'operatr' not allowed"),
        ({"rbac": {"namespace": True}}, "at '/rbac': additional properties 'namespace'"),
        (
            {"operator": {"image": {"pullPolicy": "Sometimes"}}},
            "at '/operator/image/pullPolicy': value must be one of 'Always'",
        ),
        (
            {"monitoring": {"serviceMonitor": {"interval": "30"}}},
            "at '/monitoring/serviceMonitor/interval': '30' does not match pattern",
        ),
        ({"operator": {"podLabels": {"tier": 1}}}, "at '/operator/podLabels/tier': got number"),
        ({"watchNamespace": "Models"}, "at '/watchNamespace': 'Models' does not match pattern"),
        (
            {"operator": {"image": {"repository": "switchman/operator:1.0"}}},
            "at '/operator/image/repository'",
        ),
        (
            {"operator": {"env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {}}}]}},
            "at '/operator/env/0/value'",
        ),
    ],
    ids=[
        "negative-replicas",
        "string-replicas",
        "unknown-top-key",
        "unknown-nested-key",
        "bad-enum",
        "bad-duration",
        "number-label",
        "bad-namespace",
        "tag-in-repository",
        "value-and-valueFrom",
    ],
)
def test_schema_rejects_bad_values_saying_where_and_why(
    chart: helm_python.Chart, values: Obj, says: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError) as caught:
        chart.validate_schema(values)
    assert says in str(caught.value)
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(says)):
        render(chart, values)


@pytest.mark.parametrize(("case", "namespace"), [("default", NAMESPACE), ("namespaced", "models")])
def test_notes_give_the_next_steps(chart: helm_python.Chart, case: str, namespace: str) -> None:
    notes = render(chart, case_values(case))["switchman/templates/NOTES.txt"]
    assert f"kubectl -n {namespace} get mp,rp" in notes
    assert f"kubectl -n {namespace} port-forward service/<policy>-gateway 8080:8080" in notes
    assert f"rollout status deployment/{RELEASE}-operator" in notes
    applies_example = f"kubectl -n {namespace} apply -f examples/01-single-vllm-pool/" in notes
    assert applies_example == (case == "default")
    assert "helm upgrade" in notes
    assert "crds/" in notes
