"""The upstream client's tests (a package, so its conftest is ``wire.conftest``, not ``conftest``)."""
