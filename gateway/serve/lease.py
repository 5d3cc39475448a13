"""A replica's admission held for one attempt: exactly one outcome per admission.

Used by ``failover`` around each attempt: ``with Lease(endpoint, model) as lease`` asks the
replica's circuit breakers (its own and the model's, ``replicas.replica``) to admit the attempt
(``lease.granted``); inside, the attempt's outcome is reported once with ``success()`` or
``failure(blame, hold_s)``, and leaving the block without one releases the admission (the
client went away, the retry budget was spent, an unexpected error). So "after an admission,
exactly one of success, failure or release" holds by construction, not by care at each call
site. ``force`` (panic mode) admits whatever the breakers say, as their probe.
"""

from __future__ import annotations

from types import TracebackType
from typing import Literal, Protocol

Blame = Literal["replica", "model", "none"]


class Admits(Protocol):
    """What a lease needs from a replica (``replicas.replica.Endpoint``)."""

    def admit(self, model: str, *, force: bool = False) -> bool: ...

    def succeeded(self, model: str) -> None: ...

    def failed(self, model: str, blame: Blame, hold_s: float | None = None) -> None: ...

    def release(self, model: str) -> None: ...


class Lease:
    """One admission of one model on one replica; see the module docstring."""

    __slots__ = ("_force", "_model", "_replica", "_settled", "granted")

    def __init__(self, replica: Admits, model: str, *, force: bool = False) -> None:
        self._replica = replica
        self._model = model
        self._force = force
        self.granted = False
        self._settled = True

    def __enter__(self) -> Lease:
        self.granted = self._replica.admit(self._model, force=self._force)
        self._settled = not self.granted  # nothing to report for a refused admission
        return self

    def success(self) -> None:
        """The replica answered (even if the answer was a failure of the request)."""
        if not self._settled:
            self._settled = True
            self._replica.succeeded(self._model)

    def failure(self, blame: Blame, hold_s: float | None = None) -> None:
        """The attempt failed; ``blame`` says whose breaker it counts against."""
        if not self._settled:
            self._settled = True
            self._replica.failed(self._model, blame, hold_s)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._settled:
            self._settled = True
            self._replica.release(self._model)
