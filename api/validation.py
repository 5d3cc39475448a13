"""What every contract model shares: the strict base model and the one way validation errors become
text.

``Strict`` is the base of GatewayConfig's models (``gatewayconfig``, ``routes``, ``resilience``)
and, through ``v1alpha1.spec.Spec``, of the custom resources' specs: unknown fields are rejected
and parsed objects are frozen. ``problems`` is used by ``gatewayconfig.parse`` and by the
operator's render functions: one line per error, the path first, the message without pydantic's
``Value error, `` prefix, and never the offending input (it may hold a secret).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, ValidationError

Loc = tuple[int | str, ...]


class Strict(BaseModel):
    """Unknown fields rejected, instances immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def dotted(loc: Loc) -> str:
    """``upstreams.0.timeouts`` (GatewayConfig's YAML paths)."""
    return ".".join(str(part) for part in loc)


def bracketed(loc: Loc, root: str = "spec") -> str:
    """``spec.models[0].vllm`` (a custom resource's paths, as kubectl reports them)."""
    return root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def problems(exc: ValidationError, where: Callable[[Loc], str] = dotted) -> list[str]:
    """``path: message`` per error (the message alone where ``where`` gives no path), input
    values left out."""
    found = []
    for error in exc.errors(include_url=False, include_input=False):
        path, message = where(error["loc"]), error["msg"].removeprefix("Value error, ")
        found.append(f"{path}: {message}" if path else message)
    return found
