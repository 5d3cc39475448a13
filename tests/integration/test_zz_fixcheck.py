import asyncio
import pytest
from switchman.gateway import runtime as rtmod

@pytest.fixture(autouse=True)
def patched(monkeypatch):
    orig = rtmod.build
    def build(config, generation, previous, environ):
        rt = orig(config, generation, previous, environ)
        for c in rt.upstreams.values():
            c._holders = getattr(c, "_holders", 0) + 1
        return rt
    def _close_dropped(self):
        if self._closing is not None:
            return
        dropped = []
        for c in self.upstreams.values():
            c._holders -= 1
            if c._holders == 0:
                dropped.append(c)
        self._closing = asyncio.get_running_loop().create_task(rtmod._close_all(dropped))
    monkeypatch.setattr(rtmod, "build", build)
    monkeypatch.setattr(rtmod.Runtime, "_close_dropped", _close_dropped)

from test_config_reload import *  # noqa
