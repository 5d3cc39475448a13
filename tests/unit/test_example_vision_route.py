"""``examples/05-smol-and-mistral-vision``: each model's vLLM arguments, and the route's promise
(images only reach vision models, text falls back to the external provider), checked through the
operator's render and the gateway's own planner on the config the operator would write.

    check                         | input                                | expect
    ------------------------------|--------------------------------------|-----------------------
    engine arguments              | the rendered vLLM Deployments        | Mistral's three formats,
                                  |                                      | its tool parser, image
                                  |                                      | limits as JSON, windows
                                  |                                      | within the declared ones
    an image request              | routing.RoutingTable.plan            | smolvlm2 and mistral only
    an image, both vision down    | their upstreams unusable             | panic over those two,
                                  |                                      | never the provider
    a text request                | plan                                 | all four, the provider
                                  |                                      | last
    a tools request               | plan                                 | mistral, then provider
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from switchman.api.gatewayconfig import GatewayConfig, parse
from switchman.gateway.routing.features import features
from switchman.gateway.routing.table import RoutingTable
from switchman.operator.render import render_policy, render_pool

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "05-smol-and-mistral-vision"
NS = "team-a"
VISION = {"smolvlm2-2.2b", "mistral-small-3.1"}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def _docs() -> list[dict[str, Any]]:
    out = []
    for path in sorted(EXAMPLE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            doc["metadata"]["namespace"] = NS
            out.append(doc)
    return out


def _pools() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _docs() if d["kind"] == "ModelPool"}


def _config() -> GatewayConfig:
    (policy,) = [d for d in _docs() if d["kind"] == "RoutingPolicy"]
    render = render_policy(policy, _pools(), {"hf-token": "1", "openai-api-key": "1"})
    assert render.unresolved == []
    (config_map,) = [m for m in render.manifests if m["kind"] == "ConfigMap"]
    return parse(next(iter(config_map["data"].values())))


def _args() -> dict[str, list[str]]:
    """Served model name -> the vLLM container's arguments."""
    out = {}
    for pool in _pools().values():
        for manifest in render_pool(pool):
            if manifest["kind"] == "Deployment":
                (container,) = manifest["spec"]["template"]["spec"]["containers"]
                args = container["args"]
                out[args[args.index("--served-model-name") + 1]] = args
    return out


def _flag(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name:
            return args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else ""
    return None


def test_each_model_gets_the_engine_arguments_it_needs() -> None:
    args = _args()
    assert set(args) == {"smollm3-3b", "mistral-small-3.1", "smolvlm2-2.2b"}
    mistral = args["mistral-small-3.1"]
    for flag in ("--tokenizer-mode", "--config-format", "--load-format", "--tool-call-parser"):
        assert _flag(mistral, flag) == "mistral", (flag, mistral)
    assert _flag(mistral, "--enable-auto-tool-choice") == ""
    assert json.loads(_flag(mistral, "--limit-mm-per-prompt") or "") == {"image": 4}
    assert json.loads(_flag(args["smolvlm2-2.2b"], "--limit-mm-per-prompt") or "") == {"image": 2}
    assert _flag(args["smollm3-3b"], "--limit-mm-per-prompt") is None
    config = _config()
    windows = {m.name: m.capabilities.context_window for m in config.models}
    for name, model_args in args.items():
        assert int(_flag(model_args, "--max-model-len") or 0) == windows[name], name
    assert _flag(mistral, "--model") == "mistralai/Mistral-Small-3.1-24B-Instruct-2503"


class _Upstream:
    def __init__(self, down: bool = False) -> None:
        self.down = down

    def unusable(self, model: str | None = None) -> str | None:
        return "breaker open" if self.down else None

    def load(self) -> float:
        return 0.0

    def latency_estimate(self, output_tokens: int) -> float | None:
        return None


def _plan(body: Mapping[str, Any], down: frozenset[str] = frozenset()) -> list[str]:
    config = _config()
    table = RoutingTable(config)
    upstream_of = {m.name: m.upstream for m in config.models}
    views = {u.name: _Upstream() for u in config.upstreams}
    for model in down:
        views[upstream_of[model]] = _Upstream(down=True)
    supports = {u.name: True for u in config.upstreams}
    request = {"model": "assistant", **body}
    plan = table.plan("assistant", "chat", request, features("chat", request), views, supports)
    assert plan is not None
    return [m.name for m in plan.order]


def _user(*parts: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": list(parts)}]}


def test_an_image_only_reaches_vision_models() -> None:
    order = _plan(_user({"type": "text", "text": "What is in this picture?"}, IMAGE))
    assert set(order) == VISION


def test_an_image_never_falls_back_to_the_provider() -> None:
    body = _user({"type": "text", "text": "Describe it."}, IMAGE)
    order = _plan(body, down=frozenset(VISION))
    assert set(order) == VISION  # tried anyway (panic), never a text-only model


def test_text_falls_back_to_the_external_provider() -> None:
    order = _plan(_user({"type": "text", "text": "Say hello in French."}))
    assert set(order) == {"smollm3-3b", "smolvlm2-2.2b", "mistral-small-3.1", "gpt-4.1-mini"}
    in_cluster_down = frozenset({"smollm3-3b", "smolvlm2-2.2b", "mistral-small-3.1"})
    assert _plan(_user({"type": "text", "text": "Hello"}), down=in_cluster_down)[0] == (
        "gpt-4.1-mini"
    )


@pytest.mark.parametrize("text", ["Find the weather in Paris."])
def test_tools_reach_only_tool_models(text: str) -> None:
    tool = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    body = {**_user({"type": "text", "text": text}), "tools": [tool]}
    assert set(_plan(body)) == {"mistral-small-3.1", "gpt-4.1-mini"}
