"""``switchman render -f FILE... [-o DIR]``: the manifests the operator would apply, offline.

For GitOps pipelines and ``kubectl diff``: reads ModelPools and RoutingPolicies from YAML files
(multi-document, ``kind: List`` too; ``-`` is stdin, a directory means its *.yaml/*.yml/*.json
files), renders them with ``switchman.operator.render`` exactly as the operator does, and prints
one multi-document YAML stream, or writes one ``{kind}-{name}.yaml`` per object into DIR (under
``DIR/{namespace}/`` when the inputs span several namespaces). No cluster is contacted: Secrets
are not read, so the gateway's checksum annotation covers the Secrets' names only.

Owner references need the parent's uid, which only the API server assigns. An object whose
``metadata.uid`` is known (``kubectl get mp,rp -o yaml | switchman render -f -``) renders its
children with the same ownerReference the operator sets; without one the children carry none,
and the operator adopts them (adds the reference by server-side apply) once it reconciles the
parent. A placeholder uid would be worse: the garbage collector deletes children whose owner
uid does not exist.

Wired into ``switchman.cli.main``. Errors exit 2 with ``switchman render: FILE: what is wrong``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.representer import BaseRepresenter

from switchman.api.v1alpha1.spec import API_VERSION
from switchman.operator.render import InvalidSpec, render_policy, render_pool

KINDS = ("ModelPool", "RoutingPolicy")
SUFFIXES = (".yaml", ".yml", ".json")


class RenderError(Exception):
    """An input that cannot be rendered: ``source`` and what is wrong."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")


@dataclass(frozen=True, slots=True)
class Source:
    """One custom resource read from ``path``."""

    path: str
    obj: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str]:
        meta = self.obj["metadata"]
        return (self.obj["kind"], meta["namespace"], meta["name"])


def _literal_str(representer: BaseRepresenter, data: Any) -> yaml.Node:
    style = "|" if "\n" in data else None
    return representer.represent_scalar("tag:yaml.org,2002:str", data, style=style)


class _Dumper(yaml.SafeDumper):
    """Block-literal multi-line strings, so the ConfigMap's gateway.yaml stays readable."""

    yaml_representers = {**yaml.SafeDumper.yaml_representers, str: _literal_str}


EPILOG = """\
Reads ModelPools and RoutingPolicies (other kinds are skipped with a note on stderr) and renders
them exactly as the operator does; a RoutingPolicy sees the ModelPools given in the same run.
Without -o the manifests go to stdout as one multi-document YAML stream; with -o DIR each object
goes to DIR/{kind}-{name}.yaml (DIR/{namespace}/... when the inputs span several namespaces).

Offline differences: Secrets are not read, so the gateway's secrets-checksum annotation covers
their names only; and ownerReferences are emitted only for objects whose metadata.uid is given
(render from `kubectl get mp,rp -o yaml` for an exact `kubectl diff`). Children applied without
one are adopted by the operator (it adds the ownerReference by server-side apply).

Exit status: 0 rendered (unresolved references are reported on stderr), 2 an input is invalid.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="extend",
        nargs="+",
        required=True,
        metavar="FILE",
        help="YAML/JSON file, directory, or - for stdin (repeatable)",
    )
    parser.add_argument(
        "-o", "--output-dir", dest="output", metavar="DIR", help="write one file per object"
    )
    parser.add_argument(
        "-n",
        "--namespace",
        default="default",
        help="namespace of objects that name none (default: default)",
    )


def run(args: argparse.Namespace) -> int:
    """Entry point for ``switchman render``: the process exit status."""
    try:
        sources = list(_read_all(args.files, args.namespace))
        manifests = _render(sources)
        if args.output:
            written = _write(Path(args.output), manifests)
            print(f"switchman render: wrote {written} files to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(dump_all(manifests))
    except RenderError as exc:
        print(f"switchman render: {exc}", file=sys.stderr)
        return 2
    return 0


def dump_all(manifests: list[dict[str, Any]]) -> str:
    """A multi-document YAML stream, keys in render order."""
    return yaml.dump_all(manifests, Dumper=_Dumper, sort_keys=False, explicit_start=True)


def _read_all(paths: list[str], namespace: str) -> Iterator[Source]:
    seen: dict[tuple[str, str, str], str] = {}
    for path in _expand(paths):
        for source in _read(path, namespace):
            if source.key in seen:
                kind, ns, name = source.key
                raise RenderError(path, f"{kind} {ns}/{name} is also defined in {seen[source.key]}")
            seen[source.key] = path
            yield source


def _expand(paths: list[str]) -> Iterator[str]:
    for path in paths:
        if path != "-" and Path(path).is_dir():
            yield from sorted(str(p) for p in Path(path).iterdir() if p.suffix in SUFFIXES)
        else:
            yield path


def _read(path: str, namespace: str) -> Iterator[Source]:
    name = "<stdin>" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        documents = list(yaml.safe_load_all(text))
    except OSError as exc:
        raise RenderError(name, f"cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RenderError(name, f"not valid YAML: {exc}") from exc
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue  # an empty document, e.g. after a trailing ---
        listed = isinstance(document, dict) and document.get("kind") == "List"
        for obj in (document.get("items") or []) if listed else [document]:
            source = _resource(name, index, obj, namespace)
            if source is not None:
                yield source


def _resource(path: str, index: int, obj: Any, namespace: str) -> Source | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
        raise RenderError(path, f"document {index} is not a Kubernetes object (no kind)")
    kind = obj["kind"]
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise RenderError(path, f"document {index} ({kind}) has no metadata.name")
    if kind not in KINDS:
        print(
            f"switchman render: {path}: skipped {kind} {meta['name']} "
            f"(only {' and '.join(KINDS)} are rendered)",
            file=sys.stderr,
        )
        return None
    if obj.get("apiVersion") != API_VERSION:
        raise RenderError(
            path, f"{kind} {meta['name']}: apiVersion must be {API_VERSION}, not "
            f"{obj.get('apiVersion')!r}"
        )  # fmt: skip
    meta = {**meta, "namespace": meta.get("namespace") or namespace}
    return Source(path=path, obj={**obj, "metadata": meta})


def _render(sources: list[Source]) -> list[dict[str, Any]]:
    pools: dict[str, dict[str, dict[str, Any]]] = {}
    for source in sources:
        if source.obj["kind"] == "ModelPool":
            kind, namespace, name = source.key
            pools.setdefault(namespace, {})[name] = source.obj
    out: list[dict[str, Any]] = []
    for source in sources:
        kind, namespace, name = source.key
        try:
            if kind == "ModelPool":
                out += render_pool(source.obj)
                continue
            result = render_policy(source.obj, pools.get(namespace, {}))
        except InvalidSpec as exc:
            message = str(exc)
            prefix = f"{kind} {name}"
            raise RenderError(
                source.path, message if message.startswith(prefix) else f"{prefix}: {message}"
            ) from exc
        for problem in result.unresolved:
            print(
                f"switchman render: {source.path}: {kind} {name}: unresolved: {problem}",
                file=sys.stderr,
            )
        out += result.manifests
    return [_offline(m) for m in out]


def _offline(manifest: dict[str, Any]) -> dict[str, Any]:
    """Drop owner references whose uid is unknown (see the module docstring)."""
    meta = manifest["metadata"]
    refs = [ref for ref in meta.get("ownerReferences", []) if ref.get("uid")]
    meta = {k: v for k, v in meta.items() if k != "ownerReferences"}
    if refs:
        meta["ownerReferences"] = refs
    return {**manifest, "metadata": meta}


def _write(directory: Path, manifests: list[dict[str, Any]]) -> int:
    namespaces = {m["metadata"]["namespace"] for m in manifests}
    try:
        for manifest in manifests:
            meta = manifest["metadata"]
            folder = directory / meta["namespace"] if len(namespaces) > 1 else directory
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{manifest['kind'].lower()}-{meta['name']}.yaml"
            target.write_text(dump_all([manifest]))
    except OSError as exc:
        raise RenderError(str(directory), f"cannot write: {exc.strerror}") from exc
    return len(manifests)
