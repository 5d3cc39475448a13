"""The OpenAI-compatible provider: request rewriting, stream relay, usage and error bodies.

Scenario matrix:

- ``upstream_body``: model rewritten; streams force ``include_usage`` and keep other
  ``stream_options`` keys; a non-object ``stream_options`` replaced; non-streams untouched;
  unknown fields and non-ASCII text passed through; the caller's dict not mutated
- ``OpenAIStream``: content chunks relayed as their raw bytes; the usage-only chunk dropped when the
  client did not ask for usage, kept when it did; usage recorded either way; usage carried on a
  content chunk kept; ``"usage": null`` ignored; ``[DONE]`` marks done and emits nothing;
  ``finish`` emits ``[DONE]``; a chunk that is not a JSON object raises ValueError and an in-band
  ``{"error": ...}`` event raises UpstreamUnavailable without the upstream's text (never relayed);
  content quoting the word "error" is relayed; content quoting a usage object is not usage; a
  usage chunk orjson refuses (an integer past 64 bits, NaN) still read; finish reasons written
  with or without spaces recorded, null ones not
- ``OpenAIStream.feed_block`` (a read's whole events at once) against ``feed`` on each of its
  events, for the bench's stream read whole and in two reads, usage asked or not, ``"usage":
  null`` in every chunk, finish reasons with spaces and several choices, usage on a content
  chunk, a model that runs into the next event, ``[DONE]`` alone or before more events, comments,
  named events and multi-line data (fed event by event), an error event and a chunk that is not
  an object (the same exception): the same bytes out, the same done, model, finish reasons and
  usage
- ``summarize``: usage present; absent / null / malformed usage -> None; a body that is not a JSON
  object (HTML, truncated, array, empty) -> ValueError; ``decode`` relays the bytes unchanged
- ``error_body``: OpenAI-shaped passed through; top-level ``message``; non-JSON and empty payloads
- ``OpenAICompatible``: paths per operation, bearer header only with a secret
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman.gateway.errors import UpstreamUnavailable
from switchman.gateway.providers.exchange import Usage
from switchman.gateway.providers.openai_compat import (
    OpenAICompatible,
    OpenAIStream,
    error_body,
    summarize,
    upstream_body,
)
from switchman.gateway.providers.sse import Event, SSEParser, block_events, encode


def event(data: dict[str, Any] | str) -> Event:
    payload = data.encode() if isinstance(data, str) else json.dumps(data).encode()
    [parsed] = SSEParser().feed(encode(payload))
    return parsed


CONTENT = {"id": "c1", "choices": [{"index": 0, "delta": {"content": "hi"}}], "usage": None}
FINISH = {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
USAGE_ONLY = {
    "id": "c1",
    "choices": [],
    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
}


# upstream_body


def test_upstream_body_rewrites_the_model_and_keeps_everything_else() -> None:
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "héllo ✓"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "top_k": 5,
    }

    out = json.loads(upstream_body(body, "meta-llama/Llama-3.1-8B", stream=False))

    assert out == {**body, "model": "meta-llama/Llama-3.1-8B"}
    assert body["model"] == "auto"  # the client's body is not mutated
    assert "héllo ✓".encode() in upstream_body(body, "m", stream=False)  # no \\u escapes


def test_unstreamed_body_leaves_stream_options_alone() -> None:
    body = {"model": "auto", "prompt": "x", "stream_options": {"include_usage": False}}

    out = json.loads(upstream_body(body, "m", stream=False))

    assert out["stream_options"] == {"include_usage": False}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (None, {"include_usage": True}),
        ({"include_usage": False}, {"include_usage": True}),
        (
            {"include_usage": False, "continuous_usage_stats": True},
            {"include_usage": True, "continuous_usage_stats": True},
        ),
        ("bogus", {"include_usage": True}),
    ],
    ids=["absent", "false", "other_keys_kept", "not_an_object"],
)
def test_streams_always_ask_upstream_for_usage(options: Any, expected: dict[str, Any]) -> None:
    body: dict[str, Any] = {"model": "auto", "messages": [], "stream": True}
    if options is not None:
        body["stream_options"] = options
    before = json.dumps(body)

    out = json.loads(upstream_body(body, "m", stream=True))

    assert out["stream_options"] == expected
    assert out["stream"] is True
    assert json.dumps(body) == before  # nested stream_options not mutated either


# OpenAIStream


def test_stream_relays_content_chunks_as_their_raw_bytes() -> None:
    stream = OpenAIStream(wants_usage=False)
    chunk = event(CONTENT)

    assert stream.feed(chunk) == chunk.raw
    assert stream.usage is None
    assert not stream.done


def test_usage_only_chunk_is_dropped_when_the_client_did_not_ask() -> None:
    stream = OpenAIStream(wants_usage=False)

    out = [stream.feed(event(e)) for e in (CONTENT, FINISH, USAGE_ONLY)]

    assert out[2] == b""
    assert out[:2] == [event(CONTENT).raw, event(FINISH).raw]
    assert stream.usage == Usage(prompt_tokens=11, completion_tokens=7)


def test_usage_only_chunk_is_kept_when_the_client_asked() -> None:
    stream = OpenAIStream(wants_usage=True)
    chunk = event(USAGE_ONLY)

    assert stream.feed(chunk) == chunk.raw
    assert stream.usage == Usage(prompt_tokens=11, completion_tokens=7)


def test_usage_on_a_content_chunk_is_kept_and_recorded() -> None:
    # vLLM's continuous_usage_stats puts usage on every chunk that also has choices.
    data = {**CONTENT, "usage": {"prompt_tokens": 2, "completion_tokens": 1}}
    stream = OpenAIStream(wants_usage=False)
    chunk = event(data)

    assert stream.feed(chunk) == chunk.raw
    assert stream.usage == Usage(prompt_tokens=2, completion_tokens=1)


def test_later_usage_replaces_earlier_and_malformed_usage_keeps_the_last_good() -> None:
    stream = OpenAIStream(wants_usage=True)
    stream.feed(event({**CONTENT, "usage": {"prompt_tokens": 2, "completion_tokens": 1}}))
    stream.feed(event(USAGE_ONLY))

    stream.feed(event({"choices": [], "usage": {"prompt_tokens": "many"}}))

    assert stream.usage == Usage(prompt_tokens=11, completion_tokens=7)


def test_done_marks_the_stream_finished_and_emits_nothing() -> None:
    stream = OpenAIStream(wants_usage=False)

    assert stream.feed(event("[DONE]")) == b""
    assert stream.done
    assert stream.finish() == b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    "data",
    ['{"usage": {"prompt_tokens": 1, ', '{"choices": [{"delta": {"content": "oops', "<html>502"],
    ids=["truncated_usage", "truncated_content", "html"],
)
def test_a_chunk_that_is_not_a_json_object_is_refused_not_relayed(data: str) -> None:
    # The relay turns this into the attempt's failure; the client's SDK never parses it.
    stream = OpenAIStream(wants_usage=False)

    with pytest.raises(ValueError, match="not a JSON object"):
        stream.feed(event(data))
    assert stream.usage is None


def test_an_in_band_error_event_is_refused_without_its_text() -> None:
    stream = OpenAIStream(wants_usage=True)
    assert stream.feed(event(json.dumps(CONTENT))) != b""

    with pytest.raises(UpstreamUnavailable) as caught:
        stream.feed(event('{"error": {"message": "key sk-secret failed", "type": "server_error"}}'))
    assert "sk-secret" not in caught.value.message


def test_content_that_mentions_error_is_relayed() -> None:
    stream = OpenAIStream(wants_usage=False)
    chunk = event(json.dumps({"choices": [{"index": 0, "delta": {"content": '"error"'}}]}))

    assert stream.feed(chunk) == chunk.raw


def test_content_quoting_a_usage_object_is_not_usage() -> None:
    stream = OpenAIStream(wants_usage=False)
    quoted = '"usage": {"prompt_tokens": 99, "completion_tokens": 99}'
    chunk = event({"choices": [{"index": 0, "delta": {"content": quoted}}]})

    assert stream.feed(chunk) == chunk.raw
    assert stream.usage is None


@pytest.mark.parametrize("extra", [f'"created":{2**70}', '"score":NaN'])
def test_a_usage_chunk_orjson_refuses_is_still_read(extra: str) -> None:
    stream = OpenAIStream(wants_usage=False)
    usage = '"usage":{"prompt_tokens":5,"completion_tokens":2}'
    data = '{"id":"c1",' + extra + ',"choices":[],' + usage + "}"

    assert stream.feed(event(data)) == b""
    assert stream.usage == Usage(prompt_tokens=5, completion_tokens=2)


def test_finish_reasons_with_and_without_spaces_are_recorded_and_null_ones_not() -> None:
    stream = OpenAIStream(wants_usage=False)
    for data in (
        '{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}',
        '{"choices":[{"index":0,"delta":{},"finish_reason" : "length"}]}',
        '{"choices":[{"index":1,"delta":{},"finish_reason":"stop"}]}',
        '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}',
    ):
        stream.feed(event(data))

    assert stream.finish_reasons == ["length", "stop"]


# summarize


def test_summarize_reads_usage_of_a_whole_response() -> None:
    payload = json.dumps({"id": "x", "choices": [], "usage": USAGE_ONLY["usage"]}).encode()

    assert summarize(payload).usage == Usage(prompt_tokens=11, completion_tokens=7)


@pytest.mark.parametrize(
    "payload",
    [b'{"id": "x", "choices": []}', b'{"usage": null}', b'{"usage": {"prompt_tokens": "3"}}'],
    ids=["absent", "null", "malformed"],
)
def test_summarize_usage_is_none_when_the_response_has_no_usable_usage(payload: bytes) -> None:
    assert summarize(payload).usage is None


@pytest.mark.parametrize(
    "payload",
    [b"<html>502 Bad Gateway</html>", b'{"usage": {"prompt', b'[{"usage": {}}]', b""],
    ids=["html", "truncated", "not_an_object", "empty"],
)
def test_summarize_refuses_a_body_that_is_not_a_json_object(payload: bytes) -> None:
    # The proxy turns this into a failed attempt instead of relaying garbage as a 200.
    with pytest.raises(ValueError, match=r"Expecting value|Unterminated|not a JSON object"):
        summarize(payload)


def test_decode_relays_the_payload_unchanged_with_its_usage() -> None:
    payload = json.dumps({"id": "x", "choices": [], "usage": USAGE_ONLY["usage"]}).encode()

    body, info = OpenAICompatible({}).decode("chat", payload)

    assert body is payload
    assert info.usage == Usage(prompt_tokens=11, completion_tokens=7)


# error_body


def test_openai_shaped_error_is_passed_through() -> None:
    body = {"error": {"message": "context too long", "type": "BadRequestError", "code": 400}}

    assert error_body(400, json.dumps(body).encode()) == body


def test_top_level_message_is_wrapped_in_the_openai_envelope() -> None:
    payload = json.dumps({"object": "error", "message": "model not loaded"}).encode()

    assert error_body(404, payload) == {
        "error": {
            "message": "model not loaded",
            "type": "invalid_request_error",
            "param": None,
            "code": "404",
        }
    }


def test_non_json_error_quotes_an_excerpt() -> None:
    payload = b"<html>502 Bad Gateway</html>" + b"x" * 500

    body = error_body(502, payload)

    assert body["error"]["type"] == "api_error"
    assert body["error"]["code"] == "502"
    message = body["error"]["message"]
    assert message.startswith("upstream returned HTTP 502: <html>502 Bad Gateway</html>")
    assert len(message) < 260  # bounded excerpt, not the whole page


def test_empty_error_payload_names_the_status() -> None:
    assert error_body(503, b"  ")["error"]["message"] == "upstream returned 503"


# OpenAICompatible


@pytest.mark.parametrize(
    ("op", "path"),
    [("chat", "/chat/completions"), ("completions", "/completions"), ("embeddings", "/embeddings")],
)
def test_prepare_targets_the_operation_path_with_bearer_auth(op: Any, path: str) -> None:
    provider = OpenAICompatible(OpenAICompatible.bearer("sk-1"))

    call = provider.prepare(op, {"model": "auto", "input": "x"}, "m", stream=False)

    assert call.path == path
    assert call.headers == {"Authorization": "Bearer sk-1"}
    assert json.loads(call.body)["model"] == "m"


def test_no_secret_means_no_authorization_header() -> None:
    assert OpenAICompatible.bearer(None) == {}
    assert OpenAICompatible.bearer("") == {}


def test_summarize_reads_model_and_finish_reasons() -> None:
    payload = json.dumps(
        {
            "model": "tiny",
            "choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": "length"}],
        }
    ).encode()
    info = summarize(payload)
    assert info.model == "tiny"
    assert info.finish_reasons == ["length"]


def test_stream_records_model_and_finish_reason_without_altering_bytes() -> None:
    stream = OpenAIStream(wants_usage=False)
    first = Event(
        raw=b"x", event=None, data=b'{"model":"tiny","choices":[{"delta":{},"finish_reason":null}]}'
    )
    last = Event(
        raw=b"y",
        event=None,
        data=b'{"model":"tiny","choices":[{"delta":{},"finish_reason":"stop"}]}',
    )
    assert stream.feed(first) == b"x"
    assert stream.feed(last) == b"y"
    assert stream.model == "tiny"
    assert stream.finish_reasons == ["stop"]


# feed_block


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> str:
    choice = {"index": 0 + index, "delta": delta, "logprobs": None, "finish_reason": finish}
    body = {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}
    return json.dumps(body, separators=(",", ":"))


USAGE_CHUNK = '{"id":"c1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3}}'
CONTENT_CHUNKS = "".join(
    f"data: {chunk({'content': word})}\n\n" for word in ("Hel", "lo", " there")
)
BENCH = CONTENT_CHUNKS + f"data: {chunk({}, 'stop')}\n\ndata: {USAGE_CHUNK}\n\ndata: [DONE]\n\n"
BLOCKS = {
    "bench": [BENCH],
    "bench_in_two_reads": [CONTENT_CHUNKS, BENCH[len(CONTENT_CHUNKS) :]],
    "done_alone": [CONTENT_CHUNKS, "data: [DONE]\n\n"],
    "done_before_more": ["data: [DONE]\n\n" + CONTENT_CHUNKS],
    "usage_null_everywhere": [CONTENT_CHUNKS.replace('"model"', '"usage":null,"model"')],
    "finish_with_spaces": ["data: " + chunk({}, "stop").replace(':"stop', ' : "stop') + "\n\n"],
    "null_finish_with_a_space": [CONTENT_CHUNKS.replace(":null}", ": null}")],
    "several_choices": [
        f"data: {chunk({}, 'length', 1)}\n\ndata: {chunk({'content': 'x'})}\n\n"
        f"data: {chunk({}, 'stop')}\n\n"
    ],
    "finish_beside_a_null_one": [
        'data: {"choices":[{"finish_reason":null},{"finish_reason":"stop"}]}\n\n'
    ],
    "usage_on_a_content_chunk": [
        "data: " + chunk({"content": "x"}, "stop")[:-1] + ',"usage":{"prompt_tokens":2}}\n\n'
    ],
    "usage_quoted_in_content": ["data: " + chunk({"content": '"usage": {}'}) + "\n\n"],
    "model_running_into_the_next_event": ['data: {"model":"ab}\n\ndata: {"model":"c"}\n\n'],
    "model_later": [f"data: {{}}\n\ndata: {chunk({'content': 'x'})}\n\n"],
    "comment_and_named_event": [f": ping\n\nevent: x\ndata: {chunk({'content': 'y'})}\n\n"],
    "multi_line_data": ['data: {"a":\ndata: "finish_reason":"stop"}\n\n'],
    "usage_orjson_refuses": ['data: {"n":NaN,"choices":[],"usage":{"prompt_tokens":4}}\n\n'],
    "usage_not_json": ['data: {"choices":[],"usage":{"prompt_tokens":4}\n\n'],
    "error_event": [CONTENT_CHUNKS + 'data: {"error":{"message":"sk-secret"}}\n\n'],
    "not_an_object": [CONTENT_CHUNKS + "data: [1]\n\n"],
    "padded_object": ['data:  {"choices":[{"finish_reason":"stop"}]} \n\n'],
}


def state(stream: OpenAIStream) -> tuple[Any, ...]:
    return stream.done, stream.model, stream.finish_reasons, stream.usage


def outcome(feed: Any, block: bytes) -> bytes | type[Exception]:
    try:
        out: bytes = feed(block)
    except (ValueError, UpstreamUnavailable) as exc:
        return type(exc)
    return out


@pytest.mark.parametrize("reads", BLOCKS.values(), ids=BLOCKS.keys())
@pytest.mark.parametrize("wants_usage", [False, True])
def test_feed_block_gives_what_feed_gives_on_each_event(
    reads: list[str], wants_usage: bool
) -> None:
    whole, each = OpenAIStream(wants_usage), OpenAIStream(wants_usage)
    for read in reads:
        block = read.encode()

        got = outcome(whole.feed_block, block)
        expected = outcome(lambda b: b"".join(each.feed(e) for e in block_events(b)), block)

        assert got == expected
        assert state(whole) == state(each)


def test_feed_block_of_the_bench_stream_relays_its_bytes_less_usage_and_done() -> None:
    stream = OpenAIStream(wants_usage=False)

    out = stream.feed_block(BENCH.encode())

    assert out == (CONTENT_CHUNKS + f"data: {chunk({}, 'stop')}\n\n").encode()
    assert state(stream) == (True, "m", ["stop"], Usage(prompt_tokens=9, completion_tokens=3))
