"""Fixtures for ``e2e/test_prometheus.py``: a real Prometheus scraping a gateway over two sims.

Loaded by that module's ``pytest_plugins``, so ``e2e/conftest.py`` (the vLLM fixtures) stays as
it is and nothing here starts vLLM. ``prometheus_binaries`` finds ``prometheus`` and ``promtool``
on PATH (``e2e/prometheus/setup.sh`` installs them) or fails saying so; ``prometheus_stack``
starts, each a subprocess in its own process group on a free port of 127.0.0.1 with its log in
pytest's temporary directory:

- Prometheus, with a temporary TSDB and a generated config scraping the gateway every second;
- ``switchman sim`` twice (models ``a`` and ``b``, no latency);
- ``switchman gateway`` with route ``auto`` = [a, b] and the ``PRICES`` below;

and hands back a ``Stack`` that runs PromQL instant queries, waits for fresh scrapes, sets a
simulator's faults and reads the gateway's exposition. ``prometheus_progress`` prints progress
lines the way the vLLM fixtures do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from terminal import Say, free_port, progress, tail

SKIP_ENV = "SWITCHMAN_SKIP_PROMETHEUS"
SETUP_HINT = (
    "run `bash e2e/prometheus/setup.sh` (as root it installs Debian's prometheus package; "
    f"`make test-e2e` runs it), or set {SKIP_ENV}=1 to skip this test on purpose"
)
START_TIMEOUT = 30.0
SCRAPE_TIMEOUT = 20.0
SWITCHMAN = [sys.executable, "-m", "switchman.cli.main"]
PRICES = {"a": (1.0, 2.0), "b": (3.0, 6.0)}  # model: USD per million input, output tokens


@dataclass(frozen=True)
class Binaries:
    prometheus: str
    promtool: str


@dataclass(frozen=True)
class Process:
    """A subprocess serving HTTP on 127.0.0.1 (its own process group), logging to ``log``."""

    name: str
    argv: list[str]
    url: str
    log: Path
    popen: subprocess.Popen[bytes]


@dataclass(frozen=True)
class Stack:
    """The running processes, and PromQL against the Prometheus among them."""

    sim_a: Process
    sim_b: Process
    gateway: Process
    prometheus: Process
    prices: dict[str, tuple[float, float]]  # model: USD per million input, output tokens

    def set_faults(self, sim: Process, **faults: Any) -> None:
        """Change a simulator's faults (``POST /admin/faults``), e.g. ``down=True``."""
        request = urllib.request.Request(
            f"{sim.url}/admin/faults",
            data=json.dumps(faults).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def exposition(self) -> bytes:
        """The gateway's ``/metrics`` body."""
        status, body = _get(f"{self.gateway.url}/metrics")
        assert status == 200, f"GET /metrics: HTTP {status}"
        return body

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant query: (labels, value) per series of the result vector."""
        url = f"{self.prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        status, body = _get(url)
        assert status == 200, f"{promql}: HTTP {status}: {body[:300]!r}"
        data = json.loads(body)["data"]
        assert data["resultType"] == "vector", data
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def scalar(self, promql: str) -> float:
        """The value of a query that must return exactly one series."""
        result = self.query(promql)
        assert len(result) == 1, f"{promql}: expected one series, got {result}"
        return result[0][1]

    def by(self, promql: str, *labels: str) -> dict[tuple[str, ...], float]:
        """The result keyed by the values of ``labels``."""
        return {tuple(m.get(k, "") for k in labels): v for m, v in self.query(promql)}

    def wait_for_scrape(self, say: Say, what: str) -> None:
        """Until Prometheus holds a good scrape of the gateway begun after everything sent so far.

        Prometheus may move a scrape's timestamp by up to 2 ms to align it; 50 ms of margin keeps
        an earlier scrape from passing for a later one.
        """
        after = time.time() + 0.05
        started = time.monotonic()
        while time.monotonic() - started < SCRAPE_TIMEOUT:
            # timestamp() of a selector (not of an expression, which gives the evaluation time).
            result = self.query(
                'timestamp(up{job="switchman"}) and on () (up{job="switchman"} == 1)'
            )
            if result and result[0][1] > after:
                say(f"e2e: {what}: scraped after {time.monotonic() - started:.1f} s")
                return
            time.sleep(0.2)
        targets = _get(f"{self.prometheus.url}/api/v1/targets")[1][:500]
        pytest.fail(
            f"Prometheus did not scrape the gateway within {SCRAPE_TIMEOUT:.0f} s after {what}; "
            f"targets: {targets!r}\nlog {self.prometheus.log}:\n{tail(self.prometheus.log)}",
            pytrace=False,
        )


def _get(url: str, timeout: float = 5.0) -> tuple[int | None, bytes]:
    """GET: status (None if nothing answered) and body."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return None, b""


def _spawn(name: str, argv: list[str], workdir: Path, port: int) -> Process:
    log = workdir / f"{name}.log"
    with log.open("wb") as sink:
        popen = subprocess.Popen(
            argv,
            cwd=workdir,  # not the repo root: its `operator/` shadows the stdlib for `python -m`
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, argv, f"http://127.0.0.1:{port}", log, popen)


def _wait_ready(process: Process, probe: str, say: Say, started: float) -> None:
    """Until ``GET probe`` answers 200; else fail with the log's tail (the caller stops all)."""
    while _get(process.url + probe, timeout=2)[0] != 200:
        elapsed = time.monotonic() - started
        if process.popen.poll() is not None or elapsed > START_TIMEOUT:
            why = (
                f"exited with code {process.popen.returncode}"
                if process.popen.poll() is not None
                else f"not ready after {START_TIMEOUT:.0f} s"
            )
            pytest.fail(
                f"{process.name} {why}; command: {' '.join(process.argv)}\n"
                f"log {process.log}, last lines:\n{tail(process.log)}",
                pytrace=False,
            )
        time.sleep(0.1)
    say(f"e2e: {process.name} ready at {process.url} after {time.monotonic() - started:.1f} s")


def _stop(process: Process) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.popen.pid, sig)
            process.popen.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def gateway_config(sim_a: str, sim_b: str) -> dict[str, Any]:
    """Upstreams sim-a and sim-b serving models a and b (priced), route auto = [a, b]."""
    return {
        "version": 1,
        "upstreams": [
            {"name": "sim-a", "base_url": f"{sim_a}/v1"},
            {"name": "sim-b", "base_url": f"{sim_b}/v1"},
        ],
        "models": [
            {
                "name": name,
                "upstream": f"sim-{name}",
                "price": {"input_per_mtok": prices[0], "output_per_mtok": prices[1]},
            }
            for name, prices in PRICES.items()
        ],
        "routes": [{"name": "auto", "candidates": ["a", "b"]}],
    }


def prometheus_config(target: str) -> dict[str, Any]:
    """One job, ``switchman``, scraping ``target``'s /metrics every second."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "switchman", "static_configs": [{"targets": [target]}]}],
    }


@pytest.fixture(scope="module")
def prometheus_progress(pytestconfig: pytest.Config) -> Say:
    """``say(line)``: a progress line on the terminal, even while output is captured."""
    return progress(pytestconfig)


@pytest.fixture(scope="module")
def prometheus_binaries() -> Binaries:
    """``prometheus`` and ``promtool`` from PATH; fail without them unless skipped on purpose."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus and promtool:
        return Binaries(prometheus, promtool)
    missing = " and ".join(
        n for n, p in (("prometheus", prometheus), ("promtool", promtool)) if not p
    )
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1 and {missing} not on PATH: the Prometheus e2e test is skipped")
    pytest.fail(f"{missing} not on PATH: {SETUP_HINT}", pytrace=False)


@pytest.fixture(scope="module")
def prometheus_stack(
    prometheus_binaries: Binaries,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Iterator[Stack]:
    """Prometheus, both simulators and the gateway, all started at once, each ready.

    Prometheus goes first: it takes about 5 s to scrape a new target (its discovery and scrape
    managers sync every 5 s), time the others spend starting.
    """
    say = progress(pytestconfig)
    workdir = tmp_path_factory.mktemp("prometheus")
    ports = {name: free_port() for name in ("prometheus", "sim-a", "sim-b", "gateway")}
    sim_url = {name: f"http://127.0.0.1:{ports[name]}" for name in ("sim-a", "sim-b")}
    gateway_yaml = workdir / "gateway.yaml"
    gateway_yaml.write_text(yaml.safe_dump(gateway_config(sim_url["sim-a"], sim_url["sim-b"])))
    prometheus_yml = workdir / "prometheus.yml"
    prometheus_yml.write_text(yaml.safe_dump(prometheus_config(f"127.0.0.1:{ports['gateway']}")))
    argvs = {
        "prometheus": [
            prometheus_binaries.prometheus,
            f"--config.file={prometheus_yml}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
        ],
        **{
            f"sim-{model}": [
                *SWITCHMAN,
                *("sim", "--model", model, "--port", str(ports[f"sim-{model}"])),
                *("--ttft-ms", "0", "--itl-ms", "0", "--prefill-ms-per-token", "0"),
            ]
            for model in ("a", "b")
        },
        "gateway": [
            *SWITCHMAN,
            *("gateway", "--config", str(gateway_yaml), "--host", "127.0.0.1"),
            *("--port", str(ports["gateway"]), "--shutdown-grace", "2"),
        ],
    }
    probes = {
        "prometheus": "/-/ready",
        "sim-a": "/health",
        "sim-b": "/health",
        "gateway": "/readyz",
    }
    say(
        f"e2e: starting Prometheus on port {ports['prometheus']} (scraping the gateway on port "
        f"{ports['gateway']} every 1 s), two simulators and the gateway; logs in {workdir}"
    )
    started = time.monotonic()
    processes: dict[str, Process] = {}
    try:
        for name, argv in argvs.items():
            processes[name] = _spawn(name, argv, workdir, ports[name])
        for name, process in processes.items():
            _wait_ready(process, probes[name], say, started)
        yield Stack(
            processes["sim-a"],
            processes["sim-b"],
            processes["gateway"],
            processes["prometheus"],
            PRICES,
        )
    finally:
        for process in reversed(processes.values()):
            _stop(process)
