"""GatewayConfig parsing and validation: the contract between the operator and the gateway.

Scenario matrix:

- valid minimal document, as YAML and as JSON: parses, defaults filled in
- version: missing, wrong number, string, boolean -> ConfigError naming the supported version
- names: duplicate upstream / model / route; a name used by both a model and a route
- references: model -> unknown upstream; route -> unknown model; empty or repeated candidates
- upstream kinds: azure-openai without ``azure``; ``azure`` / ``anthropic`` on another kind
- credentials: a ref with both env and file, or neither; secret headers in ``headers``;
  user or password in ``base_url``; no error message echoes an input value (it may be a secret)
- headers: CR/LF, NUL or another control character in a value, a non-token name, surrounding
  whitespace, every hop-by-hop and credential-bearing header (Cookie, Proxy-Authorization, ...)
  -> ConfigError with ``upstreams.N.headers`` and the header's name, never its value; the same
  for settings that become headers or URL parts (anthropic.version, azure.deployment)
- unknowns: no ``price`` is None (unknown, not free); no ``context_window`` is None (not 8192)
- shape: unknown field at top level and nested (extra=forbid); non-mapping YAML; invalid YAML;
  empty text
- ``load``: reads a file; a missing file says it cannot read it
- ``dump``: output parses back to an equal config
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from switchman.api.gatewayconfig import (
    CONFIG_VERSION,
    ConfigError,
    CredentialRef,
    GatewayConfig,
    dump,
    load,
    parse,
)

MINIMAL_YAML = """\
version: 1
upstreams:
  - name: vllm
    base_url: http://vllm:8000/v1
models:
  - name: llama
    upstream: vllm
"""


def minimal() -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [{"name": "vllm", "base_url": "http://vllm:8000/v1"}],
        "models": [{"name": "llama", "upstream": "vllm"}],
    }


def with_changes(**changes: Any) -> dict[str, Any]:
    doc = minimal()
    doc.update(changes)
    return doc


def upstream(**fields: Any) -> dict[str, Any]:
    return {"name": "vllm", "base_url": "http://vllm:8000/v1", **fields}


def rejected(doc: dict[str, Any] | str) -> str:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(ConfigError) as info:
        parse(text, source="cm.yaml")
    message = str(info.value)
    assert message.startswith("cm.yaml: "), message
    return message


def test_minimal_yaml_parses_with_defaults_filled_in() -> None:
    config = parse(MINIMAL_YAML)

    assert config.version == CONFIG_VERSION
    [up] = config.upstreams
    assert up.kind == "openai"
    assert str(up.base_url) == "http://vllm:8000/v1"
    assert up.api_key is None
    assert up.headers == {}
    assert (up.timeouts.connect_s, up.timeouts.first_byte_s, up.timeouts.idle_s) == (
        5.0,
        60.0,
        30.0,
    )
    assert up.timeouts.total_s == 600.0
    assert up.max_connections == 256
    [model] = config.models
    assert model.target == "llama"  # upstream_model defaults to the client-facing name
    assert model.tier == "default"
    assert model.capabilities.context_window is None  # unknown, not 8192
    assert model.price is None  # unknown, not free
    assert up.tls.ca_file is None  # verified against the system trust store
    assert config.server.edge.upstream_address == "local"
    assert config.routes == []
    assert config.server.retry.max_attempts == 3
    assert config.server.max_body_bytes == 10 * 1024 * 1024


def test_json_text_and_bytes_parse_to_the_same_config_as_yaml() -> None:
    from_yaml = parse(MINIMAL_YAML)

    assert parse(json.dumps(minimal())) == from_yaml
    assert parse(json.dumps(minimal()).encode()) == from_yaml


def test_upstream_model_overrides_the_target_sent_upstream() -> None:
    doc = minimal()
    doc["models"][0]["upstream_model"] = "meta-llama/Llama-3.1-8B-Instruct"

    assert parse(json.dumps(doc)).models[0].target == "meta-llama/Llama-3.1-8B-Instruct"


def test_missing_version_names_the_supported_version() -> None:
    doc = minimal()
    del doc["version"]

    message = rejected(doc)

    assert "unsupported version None" in message
    assert f"reads version {CONFIG_VERSION}" in message


@pytest.mark.parametrize("version", [2, 0, "1", True], ids=["two", "zero", "string", "bool"])
def test_wrong_version_names_the_supported_version(version: Any) -> None:
    message = rejected(with_changes(version=version))

    assert "unsupported version" in message
    assert f"reads version {CONFIG_VERSION}" in message


@pytest.mark.parametrize(
    ("section", "entries", "expected"),
    [
        (
            "upstreams",
            [upstream(), upstream(base_url="http://other:8000/v1")],
            "duplicate upstream name 'vllm'",
        ),
        (
            "models",
            [{"name": "llama", "upstream": "vllm"}, {"name": "llama", "upstream": "vllm"}],
            "duplicate model name 'llama'",
        ),
        (
            "routes",
            [{"name": "auto", "candidates": ["llama"]}, {"name": "auto", "candidates": ["llama"]}],
            "duplicate route name 'auto'",
        ),
    ],
    ids=["upstream", "model", "route"],
)
def test_duplicate_names_are_rejected(
    section: str, entries: list[dict[str, Any]], expected: str
) -> None:
    assert expected in rejected(with_changes(**{section: entries}))


def test_model_naming_an_unknown_upstream_is_rejected() -> None:
    doc = with_changes(models=[{"name": "llama", "upstream": "nowhere"}])

    assert "model 'llama': unknown upstream 'nowhere'" in rejected(doc)


def test_route_naming_an_unknown_model_is_rejected() -> None:
    doc = with_changes(routes=[{"name": "auto", "candidates": ["llama", "ghost"]}])

    assert "route 'auto': unknown models ['ghost']" in rejected(doc)


def test_name_used_by_both_a_model_and_a_route_is_rejected() -> None:
    doc = with_changes(routes=[{"name": "llama", "candidates": ["llama"]}])

    assert "names used by both a model and a route: ['llama']" in rejected(doc)


def test_route_with_no_candidates_is_rejected() -> None:
    message = rejected(with_changes(routes=[{"name": "auto", "candidates": []}]))

    assert "candidates" in message
    assert "at least 1" in message


def test_route_with_repeated_candidates_is_rejected() -> None:
    doc = with_changes(routes=[{"name": "auto", "candidates": ["llama", "llama"]}])

    assert "candidates must be unique" in rejected(doc)


def test_azure_kind_without_azure_block_is_rejected() -> None:
    doc = with_changes(upstreams=[upstream(kind="azure-openai")])

    assert "kind 'azure-openai' needs an 'azure' block" in rejected(doc)


def test_azure_kind_with_azure_block_is_accepted() -> None:
    doc = with_changes(upstreams=[upstream(kind="azure-openai", azure={"deployment": "gpt4o"})])

    azure = parse(json.dumps(doc)).upstreams[0].azure
    assert azure is not None
    assert azure.deployment == "gpt4o"
    assert azure.api_version == "2024-10-21"


def test_azure_block_on_a_non_azure_kind_is_rejected() -> None:
    doc = with_changes(upstreams=[upstream(kind="openai", azure={"deployment": "gpt4o"})])

    assert "'azure' is only valid with kind 'azure-openai'" in rejected(doc)


def test_anthropic_block_on_a_non_anthropic_kind_is_rejected() -> None:
    doc = with_changes(upstreams=[upstream(anthropic={"version": "2023-06-01"})])

    assert "'anthropic' is only valid with kind 'anthropic'" in rejected(doc)


@pytest.mark.parametrize(
    "api_key",
    [{"env": "KEY", "file": "/secrets/key"}, {}],
    ids=["both", "neither"],
)
def test_credential_ref_needs_exactly_one_of_env_or_file(api_key: dict[str, str]) -> None:
    doc = with_changes(upstreams=[upstream(api_key=api_key)])

    assert "set exactly one of 'env' or 'file'" in rejected(doc)


@pytest.mark.parametrize(
    ("ref", "described"),
    [({"env": "OPENAI_KEY"}, "env:OPENAI_KEY"), ({"file": "/s/key"}, "file:/s/key")],
)
def test_credential_ref_describes_itself_by_reference(ref: dict[str, str], described: str) -> None:
    doc = with_changes(upstreams=[upstream(api_key=ref)])

    key = parse(json.dumps(doc)).upstreams[0].api_key
    assert isinstance(key, CredentialRef)
    assert key.describe() == described


@pytest.mark.parametrize("header", ["Authorization", "api-key", "X-Api-Key"])
def test_secret_headers_are_rejected_in_favour_of_api_key(header: str) -> None:
    doc = with_changes(upstreams=[upstream(headers={header: "Bearer sk-123", "X-Org": "a"})])

    message = rejected(doc)

    assert "credentials go in 'api_key'" in message
    assert header in message


@pytest.mark.parametrize(
    "url", ["http://admin:sk-hunter2@vllm:8000/v1", "https://sk-hunter2@api.example.com/v1"]
)
def test_userinfo_in_base_url_is_rejected_without_echoing_it(url: str) -> None:
    message = rejected(with_changes(upstreams=[upstream(base_url=url)]))

    assert "base_url must not carry a user or password" in message
    assert "sk-hunter2" not in message


def test_validation_errors_never_echo_input_values() -> None:
    doc = with_changes(upstreams=[upstream(headers={"Authorization": "Bearer sk-hunter2"})])
    doc["models"] = [{"name": "llama", "upstream": "vllm", "tier": {"key": "sk-hunter3"}}]

    message = rejected(doc)

    assert "upstreams.0.headers" in message
    assert "models.0.tier" in message  # every problem is listed, by location
    assert "sk-hunter" not in message


def test_non_secret_headers_are_accepted() -> None:
    doc = with_changes(upstreams=[upstream(headers={"X-Org": "research"})])

    assert parse(json.dumps(doc)).upstreams[0].headers == {"X-Org": "research"}


def test_unknown_top_level_field_is_rejected() -> None:
    message = rejected(with_changes(upstream=[upstream()]))

    assert "upstream" in message
    assert "Extra inputs are not permitted" in message


def test_unknown_nested_field_is_rejected() -> None:
    message = rejected(with_changes(upstreams=[upstream(timeout=3)]))

    assert "timeout" in message
    assert "Extra inputs are not permitted" in message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n", ""])
def test_non_mapping_document_is_rejected(text: str) -> None:
    assert "expected a mapping at the top level" in rejected(text)


def test_invalid_yaml_is_rejected() -> None:
    assert "not valid YAML/JSON" in rejected("version: 1\nupstreams: [unclosed\n")


def test_load_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(MINIMAL_YAML)

    assert load(path) == parse(MINIMAL_YAML)


def test_load_names_the_file_in_validation_errors(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(MINIMAL_YAML.replace("version: 1", "version: 7"))

    with pytest.raises(ConfigError, match=r"gateway\.yaml: unsupported version 7"):
        load(path)


def test_load_of_a_missing_file_says_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as info:
        load(path)

    assert str(info.value) == f"{path}: cannot read: No such file or directory"


def test_dump_round_trips_through_parse() -> None:
    doc = minimal()
    doc["upstreams"] = [
        upstream(api_key={"env": "VLLM_KEY"}, headers={"X-Org": "a"}, timeouts={"idle_s": 7}),
        {
            "name": "azure",
            "kind": "azure-openai",
            "base_url": "https://res.openai.azure.com",
            "azure": {"deployment": "gpt4o"},
            "api_key": {"file": "/secrets/azure"},
        },
        {"name": "claude", "kind": "anthropic", "base_url": "https://api.anthropic.com"},
    ]
    doc["models"] = [
        {"name": "llama", "upstream": "vllm", "capabilities": {"tools": True}},
        {"name": "gpt-4o", "upstream": "azure", "price": {"input_per_mtok": 2.5}},
        {"name": "sonnet", "upstream": "claude", "upstream_model": "claude-sonnet-4"},
    ]
    doc["routes"] = [{"name": "auto", "candidates": ["llama", "gpt-4o", "sonnet"]}]
    doc["server"] = {"retry": {"max_attempts": 2}}
    config = parse(json.dumps(doc))

    text = dump(config)

    assert isinstance(config, GatewayConfig)
    assert parse(text) == config
    assert dump(parse(text)) == text  # stable output: no spurious ConfigMap diffs
    assert json.loads(text)["upstreams"][0]["timeouts"]["first_byte_s"] == 60.0  # defaults written


@pytest.mark.parametrize(
    ("name", "value", "cue"),
    [
        ("X-Org", "a\r\nX-Injected: 1", "control character"),
        ("X-Org", "a\nb", "control character"),
        ("X-Org", "a\x00b", "control character"),
        ("X-Org", " padded", "whitespace"),
        ("X Org", "v-secret-1", "not a token"),
        ("X-Org:", "v-secret-2", "not a token"),
        ("Cookie", "session=sk-hunter2", "may not be configured"),
        ("Proxy-Authorization", "Basic sk-hunter2", "may not be configured"),
        ("Set-Cookie", "a=b", "may not be configured"),
        ("Connection", "close", "may not be configured"),
        ("Transfer-Encoding", "chunked", "may not be configured"),
        ("Host", "evil.example", "may not be configured"),
        ("x-goog-api-key", "sk-hunter2", "may not be configured"),
    ],
)
def test_unsendable_or_denied_headers_are_refused_with_their_path(
    name: str, value: str, cue: str
) -> None:
    message = rejected(with_changes(upstreams=[upstream(headers={name: value})]))

    assert "upstreams.0.headers" in message
    assert cue in message
    assert value.strip() not in message


def test_header_valued_settings_refuse_control_characters() -> None:
    doc = with_changes(
        upstreams=[
            upstream(kind="anthropic", anthropic={"version": "2023-06-01\r\nX-A: 1"}),
        ]
    )

    message = rejected(doc)

    assert "upstreams.0.anthropic.version" in message
    assert "control character" in message


def test_explicit_price_and_window_are_kept() -> None:
    doc = with_changes(
        models=[
            {
                "name": "llama",
                "upstream": "vllm",
                "price": {"input_per_mtok": 0.0, "output_per_mtok": 0.0},
                "capabilities": {"context_window": 4096},
            }
        ]
    )

    [model] = parse(json.dumps(doc)).models
    assert model.price is not None
    assert model.price.input_per_mtok == 0.0  # explicitly free is free
    assert model.capabilities.context_window == 4096
