"""The request id the app's front gives each request (``app._request_id``).

Scenario: a sane client ``x-request-id`` (letters, digits, ``._:-``, up to 128) is kept; a
missing, empty, too long or odd one is replaced by 32 lowercase hex digits (128 random bits),
and two replacements differ.
"""

from __future__ import annotations

import re

import pytest

from switchman.gateway.app import _request_id

HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("supplied", ["req-abc.123", "a:b_c-d.e", "x" * 128])
def test_a_sane_client_id_is_kept(supplied: str) -> None:
    assert _request_id(supplied) == supplied


@pytest.mark.parametrize("supplied", [None, "", "x" * 129, "has space", "semi;colon", "é"])
def test_a_missing_or_odd_id_is_replaced_by_128_random_bits(supplied: str | None) -> None:
    drawn = _request_id(supplied)
    assert HEX32.fullmatch(drawn)
    assert _request_id(supplied) != drawn


def test_the_id_is_the_draw_in_hex_zero_padded() -> None:
    assert _request_id(None, lambda bits: 0xABC) == "0" * 29 + "abc"
    assert _request_id(None, lambda bits: 2**bits - 1) == "f" * 32
