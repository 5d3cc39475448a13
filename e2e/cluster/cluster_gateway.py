"""What the cluster must hold for a RoutingPolicy: the gateway's ConfigMap (a valid
GatewayConfig covering the referenced pools), its Deployment and Service, the NetworkPolicy that
admits only the gateway to the pools' vLLM pods, and the policy's status.

Used by ``test_operator_cluster``. Assertions raise ``AssertionError`` with what they found, so
``eventually`` can retry them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cluster_checks import (
    assert_labelled,
    assert_owned,
    check_pool_children,
    check_status,
    flag,
    instance_selector,
    live,
    pod_labels,
)
from cluster_examples import (
    Child,
    gateway_config_map,
    gateway_secrets,
    policy_children,
    policy_spec,
    pool_spec,
    selects,
)
from cluster_kube import Kube

from switchman.api.gatewayconfig import GatewayConfig, parse
from switchman.api.v1alpha1 import API_VERSION
from switchman.operator.render.meta import gateway_child, model_child, service_host

SECRETS_DIR = "/var/run/switchman/secrets"


def check_gateway_config(
    kube: Kube, policy: Mapping[str, Any], pools: Mapping[str, Mapping[str, Any]]
) -> GatewayConfig:
    """The ConfigMap holds a valid GatewayConfig with every model of the referenced pools, the
    in-cluster ones at their headless Service's DNS name, keys as mounted files, every route."""
    namespace, name = policy["metadata"]["namespace"], policy["metadata"]["name"]
    config_map = live(kube, Child("v1", "ConfigMap", gateway_config_map(name)), namespace)
    assert_owned(config_map, policy)
    assert_labelled(config_map, "gateway", None, policy=name)
    text = (config_map.get("data") or {}).get("gateway.yaml")
    assert text, f"ConfigMap {gateway_config_map(name)} has no gateway.yaml"
    config = parse(text, source=f"ConfigMap {gateway_config_map(name)}")
    models = {m.name: m for m in config.models}
    upstreams = {u.name: u for u in config.upstreams}
    for ref in policy_spec(policy).pools:
        for model in pool_spec(pools[ref.name]).models:
            assert model.name in models, f"gateway.yaml lacks model {model.name}: {list(models)}"
            upstream = upstreams[models[model.name].upstream]
            if model.vllm is not None:
                host = service_host(model_child(ref.name, model.name), namespace)
                want = f"http://{host}:8000/v1"
                assert str(upstream.base_url).rstrip("/") == want, f"{model.name}: {upstream}"
            secret = model.external.credentials_secret if model.external else None
            if secret is not None:
                path = f"{SECRETS_DIR}/{secret.name}/{secret.key}"
                got = upstream.api_key.file if upstream.api_key else None
                assert got == path, f"{model.name}: api_key file {got}, want {path}"
    routes = sorted(r.name for r in config.routes)
    assert routes == sorted(r.name for r in policy_spec(policy).routes), f"routes {routes}"
    return config


def check_gateway(
    kube: Kube, policy: Mapping[str, Any], pools: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The gateway Deployment, its Service and the NetworkPolicy; the Deployment."""
    namespace, name = policy["metadata"]["namespace"], policy["metadata"]["name"]
    spec, gateway = policy_spec(policy), gateway_child(name)
    children = {c.kind: live(kube, c, namespace) for c in policy_children(policy)}
    for obj in children.values():
        assert_owned(obj, policy)
    deployment, service = children["Deployment"], children["Service"]
    assert_labelled(deployment, "gateway", gateway, policy=name)
    assert_labelled(service, "gateway", gateway, policy=name)
    assert deployment["spec"]["selector"] == instance_selector(gateway)
    assert deployment["spec"].get("replicas") == spec.gateway.replicas
    template = deployment["spec"]["template"]
    annotations = template["metadata"].get("annotations") or {}
    assert "switchman.dev/secrets-checksum" in annotations, f"annotations {annotations}"
    pod = template["spec"]
    args = [a for c in pod["containers"] for a in c.get("args") or []]
    assert flag(args, "--config") == "/etc/switchman/gateway.yaml", f"gateway args {args}"
    mounts = {m["name"]: m for c in pod["containers"] for m in c.get("volumeMounts") or []}
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    config_volume = [
        n
        for n, v in volumes.items()
        if v.get("configMap", {}).get("name") == gateway_config_map(name)
    ]
    assert config_volume, f"no volume from ConfigMap {gateway_config_map(name)}: {volumes}"
    mount = mounts.get(config_volume[0], {})
    got = (mount.get("mountPath"), mount.get("subPath"))
    assert got == ("/etc/switchman", None), f"config mount {mount}: a directory, for hot reload"
    wanted = gateway_secrets([pools[r.name] for r in spec.pools if r.name in pools], [policy])
    for secret in wanted:
        volume = [n for n, v in volumes.items() if v.get("secret", {}).get("secretName") == secret]
        assert volume, f"Secret {secret} is not mounted: {volumes}"
        mount = mounts.get(volume[0], {})
        want = (f"{SECRETS_DIR}/{secret}", True)
        got = (mount.get("mountPath", "").rstrip("/"), mount.get("readOnly"))
        assert got == want, f"Secret {secret} mounted as {mount}"
    ports = {(p.get("name"), p["port"]) for p in service["spec"]["ports"]}
    assert ("http", 8080) in ports, f"gateway Service ports {ports}"
    assert service["spec"]["selector"] == {"app.kubernetes.io/instance": gateway}
    assert service["spec"].get("type", "ClusterIP") == spec.gateway.service_type
    covered = [pools[ref.name] for ref in spec.pools]
    check_network_policy(kube, children["NetworkPolicy"], deployment, covered)
    return deployment


def check_network_policy(
    kube: Kube,
    netpol: Mapping[str, Any],
    gateway: Mapping[str, Any],
    pools: Iterable[Mapping[str, Any]],
) -> None:
    """It covers every vLLM pod of the referenced pools and admits the gateway's pods only."""
    namespace = netpol["metadata"]["namespace"]
    spec = netpol["spec"]
    assert "Ingress" in spec.get("policyTypes", ["Ingress"]), f"policyTypes {spec}"
    for pool in pools:
        for deployment in check_pool_children(kube, pool):
            assert selects(spec["podSelector"], pod_labels(deployment)), (
                f"the NetworkPolicy does not cover {deployment['metadata']['name']}"
            )
    stranger = {"app.kubernetes.io/instance": "someone-else"}
    admits = []
    for rule in spec.get("ingress") or []:
        peers = rule.get("from") or []
        assert peers, f"an ingress rule without 'from' admits everyone: {rule}"
        for peer in peers:
            assert "podSelector" in peer, f"peer {peer} is not a pod selector"
            assert "ipBlock" not in peer, f"peer {peer} admits addresses"
            assert not selects(peer["podSelector"], stranger), f"peer {peer} admits any pod"
            if selects(peer["podSelector"], pod_labels(gateway)):
                admits += [p.get("port") for p in rule.get("ports") or []]
    assert 8000 in admits, f"the gateway is not admitted on port 8000 in {namespace}: {spec}"


def policy_status(
    kube: Kube, policy: Mapping[str, Any], pools: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    namespace, name = policy["metadata"]["namespace"], policy["metadata"]["name"]
    current = live(kube, Child(API_VERSION, "RoutingPolicy", name), namespace)
    status = check_status(current, [check_gateway(kube, current, pools)])
    assert not status.get("unresolved"), f"{name}: unresolved {status.get('unresolved')}"
    routes = sorted(r.get("name") for r in status.get("routes") or [])
    assert routes == sorted(r.name for r in policy_spec(current).routes), f"{name}: {status}"
    return status
