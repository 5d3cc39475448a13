"""Relay: one upstream stream's reads turned into the client's bytes, before anything is sent.

Through a real ``OpenAIStream`` on an upstream body whose reads are given in advance:

- a read of whole plain events (the common one, decoded as a block) gives its bytes as they are,
  less the usage chunk the client did not ask for, and ends the answer at ``[DONE]``, in the
  first bytes taken without waiting (``first_ready``)
- the same stream in reads cut anywhere gives the same bytes and the same usage
- a credential the upstream echoes in a read is redacted, whether the read is one block or cut
  through the credential
- a read that is not the protocol (a chunk that is not an object, an in-band error event) is
  the attempt's failure, never relayed
"""

from __future__ import annotations

import pytest

from switchman.gateway.providers.exchange import Usage
from switchman.gateway.providers.openai_compat import OpenAIStream
from switchman.gateway.serve.deadlines import Deadlines
from switchman.gateway.serve.failures import Failure
from switchman.gateway.serve.relay import Relay
from switchman.gateway.upstreams.credentials import Redactor

KEY = "sk-live-0123456789abcdef"
CONTENT = (
    b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hel"},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"lo"},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
)
USAGE = b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\n'
STREAM = CONTENT + USAGE + b"data: [DONE]\n\n"


class Body:
    """An upstream body whose reads are all in hand already."""

    def __init__(self, reads: list[bytes]) -> None:
        self.reads = [*reads, b""]

    async def read(self) -> bytes:
        return self.reads.pop(0)

    def ready(self) -> bytes | None:
        return self.reads.pop(0) if self.reads else None


def relay(reads: list[bytes], redactor: Redactor | None = None) -> tuple[Relay, OpenAIStream]:
    decoder = OpenAIStream(wants_usage=False)
    pipe = Relay(
        Body(reads), decoder, idle=5, deadline=1e12, redactor=redactor, deadlines=Deadlines()
    )
    return pipe, decoder


async def relayed(pipe: Relay) -> bytes:
    """Everything the client would be sent before the end-of-stream tail."""
    out = await pipe.first("up")
    while not pipe.ended:
        out += await pipe.first("up")
    return out


async def test_a_whole_stream_in_one_read_is_its_bytes_less_usage_at_once() -> None:
    pipe, decoder = relay([STREAM])

    assert pipe.first_ready("up") == CONTENT
    assert pipe.ended
    assert decoder.usage == Usage(prompt_tokens=5, completion_tokens=2)
    assert (decoder.model, decoder.finish_reasons) == ("m", ["stop"])


@pytest.mark.parametrize("cut", range(1, len(STREAM), 7))
async def test_the_stream_cut_anywhere_gives_the_same_bytes_and_usage(cut: int) -> None:
    pipe, decoder = relay([STREAM[:cut], STREAM[cut:]])

    assert await relayed(pipe) == CONTENT
    assert decoder.usage == Usage(prompt_tokens=5, completion_tokens=2)
    assert decoder.finish_reasons == ["stop"]


@pytest.mark.parametrize("cut", [None, CONTENT.find(b"Hel") + 6], ids=["one_read", "cut_in_key"])
async def test_a_credential_echoed_in_the_stream_is_redacted(cut: int | None) -> None:
    echoed = STREAM.replace(b'"Hel"', f'"Hel {KEY}"'.encode())
    reads = [echoed] if cut is None else [echoed[:cut], echoed[cut:]]
    pipe, _ = relay(reads, Redactor([KEY]))

    out = await relayed(pipe)

    assert KEY.encode() not in out
    assert out == CONTENT.replace(b'"Hel"', b'"Hel [redacted]"')


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"data: [1]\n\n", "malformed_chunk"),
        (b'data: {"error":{"message":"overloaded"}}\n\n', "upstream_error"),
    ],
    ids=["not_an_object", "error_event"],
)
async def test_a_read_that_is_not_the_protocol_is_the_attempts_failure(
    bad: bytes, reason: str
) -> None:
    pipe, _ = relay([CONTENT[: CONTENT.find(b"data: ", 1)] + bad])

    with pytest.raises(Failure) as caught:
        pipe.first_ready("up")

    assert caught.value.reason == reason
