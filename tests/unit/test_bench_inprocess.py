"""``bench.inprocess`` measures answers it has checked: a run reports CPU per request of real,
whole answers, a wrong answer from the upstream stops it, and the benchmark writes its table
with the access log's lines counted. Tiny runs: no timing is asserted."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def inprocess(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``bench.inprocess`` (the repository root appended to the path: ``bench`` is not
    installed, and first on the path its ``operator/`` would shadow the standard library's)."""
    monkeypatch.setattr(sys, "path", [*sys.path, str(ROOT)])
    return importlib.import_module("bench.inprocess")


@pytest.mark.parametrize(
    ("variant", "shape"), [("off", "whole"), ("off", "stream"), ("harness", "stream")]
)
async def test_a_run_reports_cpu_per_request_of_the_answers_it_checked(
    inprocess: ModuleType, tmp_path: Path, variant: str, shape: str
) -> None:
    run = inprocess.Run(shape, variant, str(tmp_path), requests=32, batches=2, warm=1)
    result = await inprocess.measure(run)
    assert result["requests"] == run.total == 16 * (1 + 2 * 2)
    assert len(result["samples"]) == 2
    for cpu, main in result["samples"]:
        assert cpu > 0
        assert main > 0


async def test_an_upstream_error_stops_the_run(inprocess: ModuleType, tmp_path: Path) -> None:
    broken = inprocess.upstream_answer('{"error": "down"}', "application/json", "500 Oops")
    run = inprocess.Run("whole", "off", str(tmp_path), requests=16, batches=1, warm=1)
    with pytest.raises(inprocess.WrongAnswer, match="whole"):
        await inprocess.measure(run, {"whole": broken})


async def test_a_stream_with_other_text_stops_the_run(
    inprocess: ModuleType, tmp_path: Path
) -> None:
    other = inprocess.fake_upstream.stream().replace('"content":" help"', '"content":" harm"')
    answer = inprocess.upstream_answer(other, "text/event-stream")
    run = inprocess.Run("stream", "off", str(tmp_path), requests=16, batches=1, warm=1)
    with pytest.raises(inprocess.WrongAnswer, match="harm"):
        await inprocess.measure(run, {"stream": answer})


def test_a_chunked_stream_is_read_whole_and_needs_its_done(inprocess: ModuleType) -> None:
    body = inprocess.fake_upstream.stream().encode()
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
    framed = head + b"\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    found = inprocess.parse_response(framed + b"HTTP/1.1")
    assert found == (head, body, len(framed))
    assert inprocess.parse_response(framed[:-3]) is None  # the last chunk not in yet
    inprocess.check("stream", head, body, full=True, tenancy=False)
    with pytest.raises(inprocess.WrongAnswer, match="DONE"):
        inprocess.check("stream", head, body[: -len("data: [DONE]\n\n")], full=True, tenancy=False)


def test_the_benchmark_writes_its_table_from_fresh_processes(
    inprocess: ModuleType, tmp_path: Path
) -> None:
    argv = ["--rounds", "1", "--requests", "32", "--batches", "1", "--warm", "1"]
    inprocess.main([*argv, "--variants", "off", "log", "--shapes", "whole", "--out", str(tmp_path)])
    results = json.loads((tmp_path / "inprocess.json").read_text())
    rows = {row["variant"]: row for row in results["rows"]}
    assert rows["off"]["min_us"] > 0
    assert rows["log"]["vs_off_min_us"] == round(rows["log"]["min_us"] - rows["off"]["min_us"], 1)
    runs = results["runs"]
    assert runs["log whole"][0]["log_lines"] == 16 * (1 + 2) == runs["log whole"][0]["requests"]
    assert runs["off whole"][0]["log_lines"] == 0
    assert runs["log whole"][0]["pid"] != runs["off whole"][0]["pid"]
    assert "| log | " in (tmp_path / "inprocess.md").read_text()
