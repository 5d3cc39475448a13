"""``switchman render``: custom resources in files, the operator's manifests out, no cluster.

Scenario matrix:
- every example directory renders, and every manifest is valid for the newest Kubernetes schema
  kubernetes-validate knows (strict: unknown fields fail);
- multi-document input with other kinds (skipped with a note) -> one multi-document stream on
  stdout, through the installed ``switchman`` script;
- ``kind: List`` on stdin (``kubectl get -o yaml``): uids known -> ownerReferences present;
  offline files without uids -> none;
- ``-o DIR``: one ``{kind}-{name}.yaml`` per object; inputs in several namespaces -> a folder each;
- unresolved references are reported on stderr, exit 0;
- errors exit 2 with ``switchman render: FILE: what is wrong``: not YAML, missing file, invalid
  spec (field named, value not echoed), wrong apiVersion, no metadata.name, an object defined twice.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from switchman.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())

POOL = """\
apiVersion: switchman.dev/v1alpha1
kind: ModelPool
metadata: {name: chat}
spec:
  models:
    - name: small
      vllm: {source: {huggingFace: {repo: Qwen/Qwen2.5-0.5B-Instruct}}}
"""
POLICY = """\
apiVersion: switchman.dev/v1alpha1
kind: RoutingPolicy
metadata: {name: chat}
spec:
  pools: [{name: chat}]
  routes: [{name: auto, candidates: [small]}]
"""
SECRET = """\
apiVersion: v1
kind: Secret
metadata: {name: openai}
stringData: {api-key: sk-test}
"""


def _render(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["render", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _names(manifests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["kind"], m["metadata"]["name"]) for m in manifests]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_renders_to_valid_manifests(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _render(capsys, "-f", str(example))
    assert code == 0, err
    manifests = list(yaml.safe_load_all(out))
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "Service", "ConfigMap", "NetworkPolicy"} <= kinds
    for manifest in manifests:
        kubernetes_validate.validate(manifest, latest_version(), strict=True)
    assert (example / "README.md").is_file()


def test_multi_document_file_renders_through_the_installed_script(tmp_path: Path) -> None:
    source = tmp_path / "all.yaml"
    source.write_text("---\n".join([SECRET, POOL, POLICY]) + "---\n")
    script = Path(sys.executable).with_name("switchman")
    done = subprocess.run(
        [str(script), "render", "-f", str(source), "--namespace", "ml"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    manifests = list(yaml.safe_load_all(done.stdout))
    assert _names(manifests) == [
        ("Deployment", "chat-small"),
        ("Service", "chat-small"),
        ("PodDisruptionBudget", "chat-small"),
        ("ConfigMap", "chat-gateway-config"),
        ("Deployment", "chat-gateway"),
        ("Service", "chat-gateway"),
        ("NetworkPolicy", "chat-gateway-to-models"),
    ]
    assert {m["metadata"]["namespace"] for m in manifests} == {"ml"}
    # No uid offline: no ownerReference (a made-up one would get the children collected).
    assert all("ownerReferences" not in m["metadata"] for m in manifests)
    assert f"{source}: skipped Secret openai" in done.stderr
    assert "sk-test" not in done.stdout + done.stderr
    # The ConfigMap's config is a readable block, not an escaped one-line string.
    assert "gateway.yaml: |\n" in done.stdout


def test_kubectl_list_on_stdin_keeps_owner_references(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [yaml.safe_load(POOL), yaml.safe_load(POLICY)]
    items[0]["metadata"] |= {"namespace": "ml", "uid": "pool-uid", "resourceVersion": "7"}
    items[1]["metadata"] |= {"namespace": "ml", "uid": "policy-uid"}
    listing = {"apiVersion": "v1", "kind": "List", "items": items}
    monkeypatch.setattr(sys, "stdin", io.StringIO(yaml.safe_dump(listing)))
    code, out, err = _render(capsys, "-f", "-")
    assert code == 0, err
    owners = {
        (m["kind"], m["metadata"]["name"]): m["metadata"]["ownerReferences"][0]
        for m in yaml.safe_load_all(out)
    }
    assert owners[("Deployment", "chat-small")]["uid"] == "pool-uid"
    assert owners[("Deployment", "chat-gateway")]["uid"] == "policy-uid"
    assert owners[("Deployment", "chat-gateway")]["kind"] == "RoutingPolicy"


def test_output_dir_gets_one_file_per_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pool.yaml").write_text(POOL)
    (tmp_path / "policy.yaml").write_text(POLICY)
    out_dir = tmp_path / "out"
    code, out, err = _render(
        capsys, "-f", str(tmp_path / "pool.yaml"), "-f", str(tmp_path / "policy.yaml"),
        "-o", str(out_dir),
    )  # fmt: skip
    assert code == 0, err
    assert out == ""
    files = sorted(p.name for p in out_dir.iterdir())
    assert files == [
        "configmap-chat-gateway-config.yaml",
        "deployment-chat-gateway.yaml",
        "deployment-chat-small.yaml",
        "networkpolicy-chat-gateway-to-models.yaml",
        "poddisruptionbudget-chat-small.yaml",
        "service-chat-gateway.yaml",
        "service-chat-small.yaml",
    ]
    (deployment,) = yaml.safe_load_all((out_dir / "deployment-chat-gateway.yaml").read_text())
    assert _names([deployment]) == [("Deployment", "chat-gateway")]
    assert "wrote 7 files" in err


def test_output_dir_splits_namespaces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = POOL.replace("metadata: {name: chat}", "metadata: {name: chat, namespace: team-b}")
    (tmp_path / "in.yaml").write_text(f"{POOL}---\n{other}")
    code, _, err = _render(capsys, "-f", str(tmp_path / "in.yaml"), "-o", str(tmp_path / "out"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["default", "team-b"]
    assert (tmp_path / "out" / "team-b" / "deployment-chat-small.yaml").is_file()


def test_unresolved_references_are_reported_and_rendered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = POLICY.replace("pools: [{name: chat}]", "pools: [{name: chat}, {name: gone}]")
    policy = policy.replace("candidates: [small]", "candidates: [small, gpt-5]")
    (tmp_path / "in.yaml").write_text(f"{POOL}---\n{policy}")
    code, out, err = _render(capsys, "-f", str(tmp_path / "in.yaml"))
    assert code == 0, err
    assert "RoutingPolicy chat: unresolved: pool gone not found" in err
    assert "RoutingPolicy chat: unresolved: model gpt-5 not in any pool" in err
    assert ("ConfigMap", "chat-gateway-config") in _names(list(yaml.safe_load_all(out)))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("kind: [unclosed", "not valid YAML"),
        (
            POOL.replace("huggingFace: {repo: Qwen/Qwen2.5-0.5B-Instruct}", "uri: sk-secret"),
            "ModelPool chat: invalid spec: spec.models[0].vllm.source.uri",
        ),
        (
            POLICY.replace("switchman.dev/v1alpha1", "switchman.dev/v1"),
            "RoutingPolicy chat: apiVersion must be switchman.dev/v1alpha1",
        ),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "document 1 (ConfigMap) has no"),
        ("- just a list\n", "document 1 is not a Kubernetes object"),
        (f"{POOL}---\n{POOL}", "ModelPool default/chat is also defined in"),
        (POLICY, "RoutingPolicy chat: no model resolved: pool chat not found"),
    ],
)
def test_bad_input_exits_2_with_the_file_and_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    source = tmp_path / "bad.yaml"
    source.write_text(content)
    code, out, err = _render(capsys, "-f", str(source))
    assert code == 2
    assert out == ""
    assert err.startswith(f"switchman render: {source}: ")
    assert expected in err
    assert "sk-secret" not in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _render(capsys, "-f", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert (
        err
        == f"switchman render: {tmp_path / 'nope.yaml'}: cannot read: No such file or directory\n"
    )
