"""The simulator's fault state and the command-line flags that seed it.

Scenario matrix:
- rate faults: same seed → same decisions; rates near their fractions; reseed restarts the
  sequence; no draw when both rates are 0
- merge: partial updates keep other fields; invalid values and unknown keys raise and change
  nothing; reset restores the start-up faults
- slow start: not ready until slow_start_s after start; setting it at run time restarts the clock
- CLI: defaults give default settings; latency flags in ms become seconds; fault flags land in
  ``settings.faults``; invalid values raise ``ValidationError``
"""

from __future__ import annotations

import argparse

import pytest
from pydantic import ValidationError

from switchman.sim.cli import add_arguments, settings_from_args
from switchman.sim.faults import Decision, Faults, FaultState
from switchman.sim.settings import SimSettings


def decisions(state: FaultState, count: int) -> list[Decision]:
    return [state.decide() for _ in range(count)]


def test_rate_faults_are_seeded_and_near_their_rates() -> None:
    faults = Faults(error_rate=0.2, rate_limit_rate=0.3)
    first = decisions(FaultState(faults, seed=7), 1000)
    assert first == decisions(FaultState(faults, seed=7), 1000)
    assert first != decisions(FaultState(faults, seed=8), 1000)
    assert 150 < first.count(Decision.ERROR) < 250
    assert 250 < first.count(Decision.RATE_LIMIT) < 350


def test_reseed_restarts_the_sequence() -> None:
    state = FaultState(Faults(error_rate=0.5), seed=1)
    first = decisions(state, 20)
    state.reseed(1)
    assert decisions(state, 20) == first


def test_no_faults_means_serve_without_drawing() -> None:
    state = FaultState(Faults(), seed=3)
    assert decisions(state, 5) == [Decision.SERVE] * 5
    state.merge({"error_rate": 1.0})
    assert state.decide() is Decision.ERROR


def test_merge_is_partial_validated_and_resettable() -> None:
    state = FaultState(Faults(retry_after_s=5))
    state.merge({"rate_limit_rate": 1.0})
    state.merge({"cut_after_tokens": 3})
    assert (state.current.rate_limit_rate, state.current.cut_after_tokens) == (1.0, 3)
    assert state.current.retry_after_s == 5
    for bad in ({"error_rate": 2}, {"no_such_fault": True}, {"down_mode": "explode"}):
        with pytest.raises(ValidationError):
            state.merge(bad)
    assert state.current.cut_after_tokens == 3
    assert state.reset() == Faults(retry_after_s=5)


def test_slow_start_window_and_restart() -> None:
    now = [100.0]
    state = FaultState(Faults(slow_start_s=2.0), clock=lambda: now[0])
    assert not state.ready()
    now[0] = 102.0
    assert state.ready()
    state.merge({"slow_start_s": 1.0})
    assert not state.ready()
    now[0] = 103.0
    assert state.ready()


def parse(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(flags))


def test_cli_defaults_match_settings_defaults() -> None:
    args = parse()
    assert settings_from_args(args) == SimSettings()
    assert (args.host, args.port) == ("127.0.0.1", 8000)


def test_cli_flags_become_settings() -> None:
    settings = settings_from_args(
        parse(
            "--model", "org/m", "--served-model-name", "m", "m-alias", "--max-model-len", "512",
            "--ttft-ms", "30", "--prefill-ms-per-token", "0.5", "--itl-ms", "2",
            "--max-num-seqs", "4", "--kv-cache-tokens", "1000", "--seed", "9",
            "--error-rate", "0.1", "--rate-limit-rate", "0.2", "--retry-after-s", "3",
            "--max-context", "100", "--cut-after-tokens", "5", "--stall", "--stall-s", "2",
            "--slow-start-s", "1.5", "--down", "--down-mode", "close",
        )
    )  # fmt: skip
    assert settings.served_names == ("m", "m-alias")
    assert settings.model == "org/m"
    assert settings.max_model_len == 512
    assert (settings.ttft_s, settings.prefill_s_per_token, settings.itl_s) == pytest.approx(
        (0.03, 0.0005, 0.002)
    )
    assert (settings.max_num_seqs, settings.kv_cache_tokens, settings.seed) == (4, 1000, 9)
    assert settings.faults == Faults(
        error_rate=0.1,
        rate_limit_rate=0.2,
        retry_after_s=3,
        max_context=100,
        cut_after_tokens=5,
        stall=True,
        stall_s=2.0,
        slow_start_s=1.5,
        down=True,
        down_mode="close",
    )


def test_cli_rejects_invalid_values() -> None:
    with pytest.raises(ValidationError):
        settings_from_args(parse("--error-rate", "1.5"))
    with pytest.raises(ValidationError):
        settings_from_args(parse("--max-num-seqs", "0"))
