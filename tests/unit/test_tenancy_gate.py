"""``gate.authenticate``, the plain call the app makes for a ``/v1/*`` request (no middleware):

- keyless (no ``tenancy`` block): nothing is asked and nothing stored
- a known key in any of the three headers: its tenant, returned and stored for the proxy
- no key, or an unknown one: ``Unauthenticated`` (401), counted as a rejection
- a tenant dropped from the config: its key no longer authenticates
- a key seen in ``Authorization`` is known by that value next time, until the keys file changes
  (a revoked key is refused within the check interval); a malformed ``Authorization`` beside an
  ``api-key`` is never taken for the key
- ``protected``: only ``/v1/`` paths need a key
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from switchman.api.gatewayconfig import GatewayConfig
from switchman.gateway.errors import Unauthenticated
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.tenancy import gate
from switchman.gateway.tenancy.admission import Tenancy
from switchman.gateway.tenancy.keys import hash_key


def config(tmp_path: Path, tenants: tuple[str, ...] = ("t",)) -> GatewayConfig:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"tenant": "t", "sha256": hash_key("sk-t")}]}))
    return GatewayConfig.model_validate(
        {
            "version": 1,
            "upstreams": [{"name": "u", "base_url": "http://127.0.0.1:1/v1"}],
            "models": [{"name": "m", "upstream": "u"}],
            "tenancy": {"keys_file": str(keys), "tenants": [{"name": n} for n in tenants]},
        }
    )


def rejections(metrics: Metrics) -> float:
    return float(metrics.tenant_rejections.labels("none", "unauthenticated").value)


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer sk-t"}, {"api-key": "sk-t"}, {"x-api-key": " sk-t "}],
)
def test_a_known_key_gives_its_tenant(tmp_path: Path, headers: dict[str, str]) -> None:
    tenancy = Tenancy(Metrics(), {})
    settings = config(tmp_path).tenancy
    request = make_mocked_request("POST", "/v1/chat/completions", headers=CIMultiDict(headers))
    assert gate.authenticate(request, tenancy, settings) == "t"
    assert request[gate.TENANT] == "t"
    assert tenancy.settings is settings


def test_keyless_gateway_asks_nothing(tmp_path: Path) -> None:
    tenancy = Tenancy(Metrics(), {})
    request = make_mocked_request("POST", "/v1/chat/completions")
    assert gate.authenticate(request, tenancy, None) is None
    assert gate.TENANT not in request


def test_missing_or_unknown_key_is_a_401(tmp_path: Path) -> None:
    metrics = Metrics()
    tenancy = Tenancy(metrics, {})
    settings = config(tmp_path).tenancy
    for headers, words in (({}, "needs an API key"), ({"api-key": "sk-x"}, "not valid")):
        request = make_mocked_request("POST", "/v1/models", headers=CIMultiDict(headers))
        with pytest.raises(Unauthenticated, match=words) as raised:
            gate.authenticate(request, tenancy, settings)
        assert raised.value.status == 401
        assert gate.TENANT not in request
    assert rejections(metrics) == 2


def test_a_tenant_dropped_from_the_config_no_longer_authenticates(tmp_path: Path) -> None:
    tenancy = Tenancy(Metrics(), {})
    headers = CIMultiDict({"Authorization": "Bearer sk-t"})
    request = make_mocked_request("POST", "/v1/chat/completions", headers=headers)
    assert gate.authenticate(request, tenancy, config(tmp_path).tenancy) == "t"
    other = config(tmp_path, tenants=("u",)).tenancy
    with pytest.raises(Unauthenticated):
        gate.authenticate(request, tenancy, other)


def test_a_remembered_bearer_is_forgotten_when_the_keys_file_changes(tmp_path: Path) -> None:
    tenancy = Tenancy(Metrics(), {})
    settings = config(tmp_path).tenancy
    assert settings is not None
    headers = CIMultiDict({"Authorization": "Bearer  sk-t"})
    request = make_mocked_request("POST", "/v1/chat/completions", headers=headers)
    assert gate.authenticate(request, tenancy, settings) == "t"
    assert tenancy.bearer("Bearer  sk-t") == "t"  # the next request's: no parsing, no hashing
    keys = Path(settings.keys_file)
    keys.write_text(json.dumps({"keys": [{"tenant": "t", "sha256": hash_key("sk-new")}]}))
    assert tenancy.keys is not None
    tenancy.keys._checked -= tenancy.keys.check_every_s  # the check interval has passed
    assert tenancy.bearer("Bearer  sk-t") is None
    with pytest.raises(Unauthenticated, match="not valid"):
        gate.authenticate(request, tenancy, settings)
    odd = CIMultiDict({"Authorization": "Basic sk-new", "api-key": "sk-new"})
    request = make_mocked_request("POST", "/v1/chat/completions", headers=odd)
    assert gate.authenticate(request, tenancy, settings) == "t"
    assert tenancy.bearer("Basic sk-new") is None  # the key came in api-key


def test_only_v1_paths_need_a_key() -> None:
    assert gate.protected("/v1/chat/completions")
    assert gate.protected("/v1/models")
    assert not gate.protected("/healthz")
    assert not gate.protected("/metrics")
    assert not gate.protected("/v1")
