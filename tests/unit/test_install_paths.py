"""The install paths: container images, the Kustomize base, Argo CD, Flux and docs/install.md.

No Docker engine or cluster is needed: the Dockerfiles are checked statically, manifests with
kubernetes-validate (strict, Kubernetes 1.37) and Helm's own engine (helm-python-sdk), Kustomize
builds with ``kubectl kustomize`` where kubectl is installed.

Scenario matrix:

- images (operator, gateway): two stages, the builder makes wheels with ``pip wheel`` and the
  runtime installs them from a bind mount (no wheel layer); every base an exact
  ``python:3.11.N-slim-bookworm`` (optionally by digest), never ``latest``; final stage runs as
  numeric uid 10001, installs no packages or build tools, caches nothing, writes no bytecode;
  ENTRYPOINT is the ``switchman`` console script and CMD a command line the real CLI parser
  accepts (``switchman <sub> --help`` runs); EXPOSE, OCI labels, version = pyproject = chart
  appVersion = the operator's default gateway tag
- images as deployed: the gateway Deployment the operator renders runs the image's CMD with no
  command override, on the exposed port, as the image's uid; the chart's operator container runs
  ENTRYPOINT + CMD on the exposed liveness port as the image's uid
- build context: .dockerignore keeps the package folders, pyproject and README, drops .venv,
  .git, tests, caches; a wheel built from exactly that context holds every package and the
  classifier's data
- Kustomize base: ``generate.py --check`` passes, and fails (exit 1, "run ...") on an edited,
  missing or extra file; every file valid for Kubernetes 1.37 (CRDs too); CRDs byte-identical to
  the chart's (and so to ``crds/``); RBAC = ``rbac.rules(clusterwide=True, peering=False)``; no
  Helm bookkeeping labels; ``kubectl kustomize`` builds the base and the example overlay (image,
  patches applied, still valid)
- Argo CD / Flux: parse, point at ``charts/switchman``, values accepted by the chart's schema
  and rendered; ServerSideApply and CreateNamespace; no resources finalizer; CRDs CreateReplace
  on install and upgrade; HelmRelease's source is the GitRepository, which keeps the chart
- docs/install.md: every repository path it names exists, every ``--set`` key is a chart value,
  CRDs are applied before ``helm upgrade``, every path and the uninstall are covered, the
  documented ``switchman render`` command works
- no image reference anywhere in these files names a registry host
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from switchman.api.v1alpha1.routingpolicy import DEFAULT_GATEWAY_IMAGE
from switchman.cli.main import build_parser
from switchman.cli.main import main as cli_main
from switchman.operator import rbac
from switchman.operator.render import render_policy, render_pool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "switchman"
BASE = ROOT / "deploy" / "kustomize" / "base"
OVERLAY = ROOT / "deploy" / "kustomize" / "overlays" / "example"
INSTALL_DOC = ROOT / "docs" / "install.md"
KUBE_VERSION = "1.37"
UID = 10001
IMAGES = {"operator": ROOT / "docker" / "operator.Dockerfile"}
IMAGES["gateway"] = ROOT / "docker" / "gateway.Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
Manifest = dict[str, Any]


# --- a Dockerfile, read the way the builder reads it -----------------------------------------


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list), f"{self.keyword} must use the exec (JSON) form"
        return [str(item) for item in value]


@dataclass(slots=True)
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile: comments dropped, continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "a continuation line ends the file"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append(Instruction(keyword, args))
    return stages


def labels(stage: Stage) -> dict[str, str]:
    out: dict[str, str] = {}
    for label in stage.all("LABEL"):
        out.update(re.findall(r'([\w.-]+)="([^"]*)"', label.args))
    return out


def arg_default(stage: Stage, name: str) -> str:
    for arg in stage.all("ARG"):
        key, _, value = arg.args.partition("=")
        if key == name:
            return value
    raise AssertionError(f"no ARG {name}")


@pytest.fixture(params=sorted(IMAGES), scope="module")
def image(request: pytest.FixtureRequest) -> tuple[str, list[Stage]]:
    name: str = request.param
    return name, parse_dockerfile(IMAGES[name].read_text())


PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")


def test_images_build_in_two_stages_from_a_pinned_base(image: tuple[str, list[Stage]]) -> None:
    _, stages = image
    assert len(stages) >= 2
    builder, runtime = stages[0], stages[-1]
    assert builder.name == "builder"
    assert any(
        "pip wheel" in i.args and "--wheel-dir /wheels" in i.args for i in builder.all("RUN")
    )
    for stage in stages:
        assert PINNED_BASE.match(stage.base), f"{stage.base}: pin an exact python:3.11.N tag"
        assert "latest" not in stage.base
    assert len({stage.base for stage in stages}) == 1, "builder and runtime share one interpreter"
    assert labels(runtime)["org.opencontainers.image.base.name"] == runtime.base
    # The wheels reach the runtime through a bind mount, never as a layer of the image.
    installs = [i for i in runtime.all("RUN") if "pip" in i.args and "install" in i.args]
    assert len(installs) == 1
    assert "--mount=type=bind,from=builder,source=/wheels,target=/wheels" in installs[0].args
    assert "--no-index" in installs[0].args
    assert not runtime.all("COPY")
    assert not runtime.all("ADD")


def test_final_stage_runs_as_numeric_non_root_user(image: tuple[str, list[Stage]]) -> None:
    _, stages = image
    runtime = stages[-1]
    user = runtime.last("USER").args
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user}: numeric, so runAsNonRoot can check it"
    uid, _, gid = user.partition(":")
    assert int(uid) == UID
    assert int(gid or uid) == UID
    # Nothing after USER runs as root again.
    last_user = max(i for i, ins in enumerate(runtime.instructions) if ins.keyword == "USER")
    assert all(ins.keyword != "RUN" for ins in runtime.instructions[last_user:])


def test_final_stage_has_no_build_tools_or_caches(image: tuple[str, list[Stage]]) -> None:
    _, stages = image
    runtime = stages[-1]
    for run in runtime.all("RUN"):
        for tool in ("apt-get", "apt ", "apk ", "gcc", "build-essential", "curl", "wget"):
            assert tool not in run.args, f"the runtime stage installs {tool!r}"
        if "pip" in run.args and "install" in run.args:
            assert "--no-cache-dir" in run.args
        if "python -m venv" in run.args:
            assert "--without-pip" in run.args
    env = " ".join(i.args for i in runtime.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PATH=/opt/switchman/bin:" in env


def test_entrypoint_is_the_switchman_console_script(image: tuple[str, list[Stage]]) -> None:
    _, stages = image
    entrypoint = stages[-1].last("ENTRYPOINT").exec_form()
    assert entrypoint == ["switchman"]
    assert PYPROJECT["project"]["scripts"]["switchman"] == "switchman.cli.main:main"


def test_cmd_is_a_command_line_the_cli_accepts(image: tuple[str, list[Stage]]) -> None:
    name, stages = image
    cmd = stages[-1].last("CMD").exec_form()
    args = build_parser().parse_args(cmd)
    assert args.command == name
    script = Path(sys.executable).with_name("switchman")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "switchman.cli.main"]
    done = subprocess.run([*command, name, "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"usage: switchman {name}" in done.stdout


def test_images_carry_oci_labels_and_the_release_version(image: tuple[str, list[Stage]]) -> None:
    name, stages = image
    runtime = stages[-1]
    found = labels(runtime)
    assert found["org.opencontainers.image.title"] == f"switchman-{name}"
    assert found["org.opencontainers.image.description"]
    assert found["org.opencontainers.image.licenses"] == PYPROJECT["project"]["license"]
    assert found["org.opencontainers.image.version"] == "${VERSION}"
    assert arg_default(runtime, "VERSION") == PYPROJECT["project"]["version"]


def test_image_tags_follow_the_chart_app_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = PYPROJECT["project"]["version"]
    assert chart["appVersion"] == version
    assert f"switchman/gateway:{version}" == DEFAULT_GATEWAY_IMAGE
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["operator"]["image"]["repository"] == "switchman/operator"
    for name, path in IMAGES.items():
        assert f"-t switchman/{name}:{version} ." in path.read_text()


def exposed(stages: list[Stage]) -> set[int]:
    return {int(port.split("/")[0]) for i in stages[-1].all("EXPOSE") for port in i.args.split()}


def test_gateway_image_runs_what_the_operator_renders() -> None:
    stages = parse_dockerfile(IMAGES["gateway"].read_text())
    example = ROOT / "examples" / "01-single-vllm-pool"
    pool = yaml.safe_load((example / "modelpool.yaml").read_text())
    policy = yaml.safe_load((example / "routingpolicy.yaml").read_text())
    for obj in (pool, policy):
        obj["metadata"]["namespace"] = "demo"
    manifests = render_pool(pool) + render_policy(policy, {"chat": pool}).manifests
    deployment = next(
        m
        for m in manifests
        if m["kind"] == "Deployment" and m["metadata"]["name"] == "chat-gateway"
    )
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == DEFAULT_GATEWAY_IMAGE
    assert "command" not in container, "the image's ENTRYPOINT must stay in force"
    assert container["args"] == stages[-1].last("CMD").exec_form()
    assert {p["containerPort"] for p in container["ports"]} <= exposed(stages)
    assert container["securityContext"]["runAsUser"] == UID
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


# --- the chart, rendered once by Helm's engine ------------------------------------------------


@pytest.fixture(scope="module")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: helm_python.Chart, values: dict[str, Any] | None = None) -> list[Manifest]:
    chart.validate_schema(chart.merge_values(values))
    rendered = chart.render(values, name="switchman", namespace="switchman-system")
    return [
        doc
        for name, text in sorted(rendered.items())
        if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def test_operator_image_runs_what_the_chart_deploys(chart: helm_python.Chart) -> None:
    stages = parse_dockerfile(IMAGES["operator"].read_text())
    deployment = next(m for m in render(chart) if m["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"switchman/operator:{PYPROJECT['project']['version']}"
    entrypoint, cmd = stages[-1].last("ENTRYPOINT"), stages[-1].last("CMD")
    assert container["command"] == entrypoint.exec_form()
    assert container["args"][0] == cmd.exec_form()[0]
    assert build_parser().parse_args(container["args"]).command == "operator"
    liveness = next(a for a in container["args"] if a.startswith("--liveness="))
    port = int(liveness.rsplit(":", 1)[1].split("/")[0])
    assert {port} == {p["containerPort"] for p in container["ports"]} == exposed(stages)
    assert container["securityContext"]["runAsUser"] == UID


# --- the build context -------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes, regex) per .dockerignore line, in order: the last match wins, as in Docker."""
    out = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        out.append((not negated, re.compile(regex)))
    return out


def in_context(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for excludes, regex in patterns:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = excludes
    return not excluded


def test_docker_context_keeps_only_what_the_wheel_needs() -> None:
    patterns = dockerignore_patterns()
    folders = set(PYPROJECT["tool"]["setuptools"]["package-dir"].values())
    for needed in ["pyproject.toml", PYPROJECT["project"]["readme"], *sorted(folders)]:
        assert in_context(f"{needed}/x.py" if needed in folders else needed, patterns), needed
    assert in_context("gateway/routing/classifier/model.json", patterns)
    for dropped in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/unit/test_x.py",
        "e2e/conftest.py",
        "build/lib/x.py",
        "charts/switchman/Chart.yaml",
        "api/__pycache__/x.pyc",
        "gateway/providers/__pycache__/x.cpython-311.pyc",
        "sim/stale.pyc",
        ".env",
    ):
        assert not in_context(dropped, patterns), dropped


def test_wheel_builds_from_the_docker_context(tmp_path: Path) -> None:
    patterns = dockerignore_patterns()
    context = tmp_path / "context"
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT).as_posix()
        top = relative.split("/")[0]
        if top.startswith(".venv") or top == ".git" or not path.is_file():
            continue
        if in_context(relative, patterns):
            (context / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, context / relative)
    # Build isolation, as in the image's builder: it fetches the build backend pyproject names.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            str(context),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if "Could not find a version that satisfies the requirement setuptools" in done.stderr:
        pytest.skip("no package index reachable for the build backend")
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "wheels").glob("switchman-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PYPROJECT["tool"]["setuptools"]["packages"]:
        assert f"{package.replace('.', '/')}/__init__.py" in names, package
    assert any(
        n.startswith("switchman/gateway/routing/classifier/") and n.endswith(".json") for n in names
    )
    assert not any("__pycache__" in n for n in names)


# --- the Kustomize base ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    path = ROOT / "deploy" / "kustomize" / "generate.py"
    spec = importlib.util.spec_from_file_location("switchman_kustomize_generate", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def base_resources(folder: Path = BASE) -> list[Path]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return [folder / name for name in kustomization["resources"]]


def base_objects() -> list[Manifest]:
    return [doc for path in base_resources() for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_kustomize_base_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "kustomize" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("damage", ["edit", "remove", "extra"])
def test_check_fails_on_a_stale_base(
    generator: ModuleType, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base"
    shutil.copytree(BASE, base)
    assert generator.main(["--check", "--base", str(base)]) == 0
    target = base / "operator" / "deployment.yaml"
    if damage == "edit":
        target.write_text(target.read_text().replace("replicas: 1", "replicas: 3"))
    elif damage == "remove":
        target.unlink()
    else:
        target = base / "operator" / "stray.yaml"
        target.write_text("kind: ConfigMap\n")
    assert generator.main(["--check", "--base", str(base)]) == 1
    err = capsys.readouterr().err
    assert str(target.relative_to(base)) in err
    assert "run `python deploy/kustomize/generate.py`" in err
    assert generator.main(["--base", str(base)]) == 0
    assert generator.main(["--check", "--base", str(base)]) == 0


def test_base_lists_every_file_and_every_file_is_valid() -> None:
    listed = {path.resolve() for path in base_resources()}
    assert listed == {path.resolve() for path in BASE.rglob("*.yaml")} - {
        (BASE / "kustomization.yaml").resolve()
    }
    objects = base_objects()
    for obj in objects:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    kinds = {obj["kind"] for obj in objects}
    assert kinds >= {
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "NetworkPolicy",
    }


def test_base_crds_are_the_charts_and_the_repositorys() -> None:
    chart_crds = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    base_crds = {p.name: p.read_bytes() for p in (BASE / "crds").glob("*.yaml")}
    assert base_crds == chart_crds
    for path in (ROOT / "crds").glob("*.yaml"):
        assert base_crds[path.name] == path.read_bytes()


def unlabelled(spec: Any) -> Any:
    """``spec`` without its pod template's labels (Helm's and Kustomize's bookkeeping differ)."""
    if not isinstance(spec, dict) or "template" not in spec:
        return spec
    metadata = {k: v for k, v in spec["template"]["metadata"].items() if k != "labels"}
    return {**spec, "template": {**spec["template"], "metadata": metadata}}


def test_base_is_the_charts_default_install(chart: helm_python.Chart) -> None:
    objects = base_objects()
    by_kind = {obj["kind"]: obj for obj in objects if obj["kind"] != "CustomResourceDefinition"}
    assert by_kind["Namespace"]["metadata"]["name"] == "switchman-system"
    assert by_kind["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )
    assert by_kind["ClusterRole"]["rules"] == rbac.rules(clusterwide=True, peering=False)
    (subject,) = by_kind["ClusterRoleBinding"]["subjects"]
    assert subject["name"] == by_kind["ServiceAccount"]["metadata"]["name"]
    assert subject["namespace"] == "switchman-system"
    rendered = {obj["kind"]: obj for obj in render(chart)}
    assert set(by_kind) - {"Namespace"} == set(rendered)
    for kind, obj in rendered.items():
        ours = by_kind[kind]
        assert ours["metadata"]["name"] == obj["metadata"]["name"]
        for part in ("spec", "rules", "roleRef", "subjects"):
            assert unlabelled(ours.get(part)) == unlabelled(obj.get(part)), f"{kind}.{part}"
    for obj in objects:
        for meta in (obj["metadata"], obj.get("spec", {}).get("template", {}).get("metadata", {})):
            labels = meta.get("labels", {})
            assert "helm.sh/chart" not in labels
            assert labels.get("app.kubernetes.io/managed-by", "kustomize") == "kustomize"


kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (kustomize)")


def kustomize(folder: Path) -> list[Manifest]:
    done = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def identity(obj: Manifest) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


@kubectl
def test_kubectl_kustomize_builds_the_base() -> None:
    built = kustomize(BASE)
    assert sorted(built, key=identity) == sorted(base_objects(), key=identity)


@kubectl
def test_example_overlay_changes_image_resources_and_args() -> None:
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    base_images = {
        c["image"].rsplit(":", 1)[0]
        for o in base_objects()
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert {entry["name"] for entry in kustomization["images"]} <= base_images
    built = kustomize(OVERLAY)
    for obj in built:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    deployment = next(o for o in built if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][-1] == "--verbose"
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    (entry,) = kustomization["images"]
    assert container["image"] == f"{entry['newName']}:{entry['newTag']}"


# --- Argo CD and Flux --------------------------------------------------------------------------


def load_all(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def assert_renders(chart: helm_python.Chart, values: dict[str, Any]) -> None:
    objects = render(chart, values)
    assert any(obj["kind"] == "Deployment" for obj in objects)
    for obj in objects:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_argocd_application_installs_the_chart(chart: helm_python.Chart) -> None:
    (app,) = load_all(ROOT / "deploy" / "argocd" / "application.yaml")
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    assert "finalizers" not in app["metadata"], "deleting the Application must not delete CRDs"
    source = app["spec"]["source"]
    assert (ROOT / source["path"] / "Chart.yaml").is_file()
    assert source["path"] == "charts/switchman"
    assert source["helm"]["releaseName"] == "switchman"
    assert app["spec"]["destination"]["namespace"] == "switchman-system"
    options = app["spec"]["syncPolicy"]["syncOptions"]
    assert {"ServerSideApply=true", "CreateNamespace=true"} <= set(options)
    assert_renders(chart, source["helm"]["valuesObject"])


def test_flux_helmrelease_installs_the_chart_from_the_gitrepository(
    chart: helm_python.Chart,
) -> None:
    folder = ROOT / "deploy" / "flux"
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    objects = [doc for name in kustomization["resources"] for doc in load_all(folder / name)]
    by_kind = {obj["kind"]: obj for obj in objects}
    repo, release = by_kind["GitRepository"], by_kind["HelmRelease"]
    assert repo["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    spec = release["spec"]
    chart_spec = spec["chart"]["spec"]
    assert (ROOT / chart_spec["chart"] / "Chart.yaml").is_file()
    assert chart_spec["sourceRef"] == {"kind": "GitRepository", "name": repo["metadata"]["name"]}
    assert release["metadata"]["namespace"] == repo["metadata"]["namespace"]
    assert spec["install"]["crds"] == "CreateReplace"
    assert spec["upgrade"]["crds"] == "CreateReplace"
    assert spec["targetNamespace"] == "switchman-system"
    kept = [line for line in repo["spec"]["ignore"].splitlines() if line.startswith("!")]
    assert kept == ["!/charts/switchman/"]
    assert_renders(chart, spec["values"])


def test_a_value_the_schema_rejects_fails_the_gitops_check(chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmValuesError, match="replicas"):
        render(chart, {"operator": {"replicas": "two"}})


# --- docs/install.md ---------------------------------------------------------------------------


def code_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", INSTALL_DOC.read_text(), flags=re.DOTALL)


REPO_PATH = re.compile(
    r"(?<![\w/.$-])((?:crds|charts|deploy|docker|examples|docs|operator|api)"
    r"/[\w./-]*)"
)


def test_install_doc_names_only_existing_files() -> None:
    text = INSTALL_DOC.read_text()
    found = set(REPO_PATH.findall(text))
    assert {
        "crds/",
        "deploy/kustomize/base",
        "charts/switchman/crds/",
        "deploy/argocd/application.yaml",
        "deploy/flux",
    } <= found
    missing = [p for p in sorted(found) if not (ROOT / p.rstrip(".")).exists()]
    assert not missing


def test_install_doc_sets_only_chart_values(chart: helm_python.Chart) -> None:
    keys = re.findall(r"--set ([\w.]+)=", INSTALL_DOC.read_text())
    keys += re.findall(r"`([a-z][\w]*(?:\.[\w]+)+)=", INSTALL_DOC.read_text())
    assert "operator.image.repository" in keys
    values = chart.values
    for key in keys:
        node: Any = values
        for part in key.split("."):
            assert isinstance(node, dict), f"--set {key}: {part} is not a map in the chart"
            assert part in node, f"--set {key}: no such chart value"
            node = node[part]


def test_install_doc_applies_crds_before_helm_upgrade() -> None:
    upgrades = [block for block in code_blocks() if "helm upgrade" in block]
    assert upgrades
    for block in upgrades:
        lines = block.splitlines()
        upgrade = next(i for i, line in enumerate(lines) if "helm upgrade" in line)
        assert any(
            "kubectl apply --server-side" in line and "charts/switchman/crds/" in line
            for line in lines[:upgrade]
        )
    text = INSTALL_DOC.read_text()
    assert "never upgrades or deletes" in text.replace("**", "").replace("\n", " ")


def test_install_doc_covers_every_path_and_how_to_undo_it() -> None:
    headings = " ".join(re.findall(r"^#+ (.*)$", INSTALL_DOC.read_text(), flags=re.MULTILINE))
    for topic in (
        "Images",
        "Kustomize",
        "Helm",
        "Argo CD",
        "Flux",
        "switchman render",
        "Verify",
        "Uninstall",
    ):
        assert topic in headings
    commands = "\n".join(code_blocks())
    for command in (
        "kubectl apply --server-side -f crds/",
        "kubectl apply --server-side -k deploy/kustomize/base",
        "helm install",
        "helm upgrade",
        "kubectl apply -n argocd -f deploy/argocd/application.yaml",
        "kubectl apply -k deploy/flux",
        "switchman render",
        "helm uninstall",
        "docker build -f docker/operator.Dockerfile",
        "docker build -f docker/gateway.Dockerfile",
    ):
        assert command in commands, command


def test_documented_render_command_works(tmp_path: Path) -> None:
    (line,) = [
        line
        for block in code_blocks()
        for line in block.splitlines()
        if line.startswith("switchman render -f examples/")
    ]
    argv = line.split()[1:]
    argv[argv.index("-o") + 1] = str(tmp_path)
    argv[argv.index("-f") + 1] = str(ROOT / argv[argv.index("-f") + 1])
    assert cli_main(argv) == 0
    written = list(tmp_path.glob("*.yaml"))
    assert any(p.name.startswith("deployment-") for p in written)


# --- no registry host --------------------------------------------------------------------------


IMAGE_IN_TEXT = re.compile(
    r"(?:^FROM |image\.base\.name=\"|-t |docker (?:tag|push) |docker-image |repository=|image: )"
    r"([\w$.:@/-]+)",
    flags=re.MULTILINE,
)


def images_in_yaml(node: Any, parent: str = "") -> Iterator[str]:
    """Values of ``image``, ``newName`` and ``image.repository`` anywhere in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            named = key in ("image", "newName") or (key == "repository" and parent == "image")
            if named and isinstance(value, str):
                yield value
            yield from images_in_yaml(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from images_in_yaml(item, parent)


def image_references() -> Iterator[tuple[Path, str]]:
    for path in [*IMAGES.values(), INSTALL_DOC]:
        for reference in IMAGE_IN_TEXT.findall(path.read_text()):
            yield path, reference
    for path in sorted((ROOT / "deploy").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            for reference in images_in_yaml(document):
                yield path, reference


def test_no_image_reference_names_a_registry_host() -> None:
    references = list(image_references())
    for path, reference in references:
        if reference.startswith("$REGISTRY/"):
            continue  # the user's registry, which the user names
        first = reference.split("/")[0]
        host = "/" in reference and ("." in first or ":" in first or first == "localhost")
        assert not host, f"{path.relative_to(ROOT)}: {reference} names a registry host"
    found = {reference for _, reference in references}
    assert {"switchman/operator:0.1.0", "switchman/gateway:0.1.0", "switchman/operator"} <= found
    assert "python:3.11.14-slim-bookworm" in found


@pytest.mark.parametrize("plane", ["gateway", "operator"])
def test_each_image_installs_only_its_planes_extra(plane: str) -> None:
    """The wheel goes in without dependencies, then exactly the plane's extra: no kopf or
    Kubernetes client in the gateway image."""
    stages = parse_dockerfile(IMAGES[plane].read_text())
    builder, runtime = stages[0], stages[-1]
    assert any(
        f"python docker/extra_requirements.py {plane} > /wheels/requirements.txt" in run.args
        for run in builder.all("RUN")
    )
    (install,) = [i for i in runtime.all("RUN") if "pip" in i.args and "install" in i.args]
    assert "--no-deps switchman" in install.args
    assert "-r /wheels/requirements.txt" in install.args
    assert in_context("docker/extra_requirements.py", dockerignore_patterns())
    script = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "extra_requirements.py"), plane],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    names = {re.split(r"[<>=!~]", req)[0] for req in script}
    assert "aiohttp" in names
    if plane == "gateway":
        assert not {"kopf", "kubernetes"} & names
    else:
        assert {"kopf", "kubernetes"} <= names
