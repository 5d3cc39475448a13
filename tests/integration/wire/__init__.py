"""The upstream client's tests: a package, so its conftest is not imported as ``conftest``."""
