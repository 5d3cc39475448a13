"""SSEParser and encode: incremental Server-Sent Events as the relay sees them.

Scenario matrix:

- chunking: every two-way split, and byte-by-byte feeding, give the same events as one feed
  (for ``\\n``, ``\\r\\n`` and ``\\r`` line ends, multi-line data, named events, comments)
- line ends: ``\\r\\n`` and bare ``\\r`` end lines and events like ``\\n``
- fields: multi-line ``data`` joined with ``\\n``; ``event:`` names; no space after the colon;
  unknown fields (``id``, ``retry``) ignored
- comments / keep-alives: dispatch nothing, even between events
- ``[DONE]``: detected; ordinary data is not
- ``flush``: an unterminated final event is dispatched once; whitespace-only rest is not
- ``raw``: the original bytes for a single ``data:`` line; ``pending`` counts held-back bytes
- ``encode``: with and without an event name, re-parses to the same data; ``DONE`` is ``[DONE]``
- ``complete`` (a read's whole events as one block): the block is the events' bytes as they
  are and ``block_events`` gives what ``feed`` gives; what follows the last event is kept; no
  complete event, a CR, or three line ends at the block's end -> None with nothing taken; any
  stream in any pieces, each taken by ``complete`` or else ``feed``, gives ``feed``'s events
"""

from __future__ import annotations

import pytest

from switchman.gateway.providers.sse import DONE, Event, SSEParser, block_events, encode

OPENAI_STREAM = (
    b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
    b": keep-alive\n\n"
    b'data: {"choices":[{"delta":{"content":"lo"}}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":3}}\n\n'
    b"data: [DONE]\n\n"
)

ANTHROPIC_STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start"}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta",\n'
    b'data: "delta":{"text":"hi"}}\n\n'
)

MIXED_FIELDS = b": comment first\nid: 7\nretry: 1000\ndata:no-space\ndata:  two-spaces\n\ndata\n\n"

STREAMS = {
    "openai_lf": OPENAI_STREAM,
    "openai_crlf": OPENAI_STREAM.replace(b"\n", b"\r\n"),
    "openai_cr": OPENAI_STREAM.replace(b"\n", b"\r"),
    "anthropic_lf": ANTHROPIC_STREAM,
    "anthropic_crlf": ANTHROPIC_STREAM.replace(b"\n", b"\r\n"),
    "anthropic_cr": ANTHROPIC_STREAM.replace(b"\n", b"\r"),
    "mixed_fields_crlf": MIXED_FIELDS.replace(b"\n", b"\r\n"),
}


def summary(events: list[Event]) -> list[tuple[str | None, bytes]]:
    return [(e.event, e.data) for e in events]


def parse_whole(stream: bytes) -> list[Event]:
    parser = SSEParser()
    return parser.feed(stream) + parser.flush()


def parse_in_pieces(pieces: list[bytes]) -> list[Event]:
    parser = SSEParser()
    events: list[Event] = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.flush()


@pytest.mark.parametrize("stream", STREAMS.values(), ids=STREAMS.keys())
def test_byte_by_byte_feeding_gives_the_same_events_as_one_feed(stream: bytes) -> None:
    expected = summary(parse_whole(stream))

    got = summary(parse_in_pieces([stream[i : i + 1] for i in range(len(stream))]))

    assert got == expected


@pytest.mark.parametrize("stream", STREAMS.values(), ids=STREAMS.keys())
def test_every_split_point_gives_the_same_events_as_one_feed(stream: bytes) -> None:
    expected = summary(parse_whole(stream))

    for cut in range(len(stream) + 1):
        got = summary(parse_in_pieces([stream[:cut], stream[cut:]]))
        assert got == expected, f"split at byte {cut}: {stream[:cut][-12:]!r} | ..."


def test_openai_stream_yields_data_events_and_skips_keep_alives() -> None:
    events = parse_whole(OPENAI_STREAM)

    assert summary(events) == [
        (None, b'{"choices":[{"delta":{"content":"Hel"}}]}'),
        (None, b'{"choices":[{"delta":{"content":"lo"}}]}'),
        (None, b'{"choices":[],"usage":{"prompt_tokens":3}}'),
        (None, b"[DONE]"),
    ]
    assert [e.is_done for e in events] == [False, False, False, True]


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_crlf_and_cr_line_ends_parse_like_lf(newline: bytes) -> None:
    assert summary(parse_whole(OPENAI_STREAM.replace(b"\n", newline))) == summary(
        parse_whole(OPENAI_STREAM)
    )


def test_multi_line_data_is_joined_with_newlines_and_event_names_kept() -> None:
    events = parse_whole(ANTHROPIC_STREAM)

    assert summary(events) == [
        ("message_start", b'{"type":"message_start"}'),
        ("ping", b'{"type": "ping"}'),
        ("content_block_delta", b'{"type":"content_block_delta",\n"delta":{"text":"hi"}}'),
    ]


def test_crlf_split_between_two_data_lines_stays_one_event() -> None:
    parser = SSEParser()

    # The chunk boundary falls between the \r and \n of one line end.
    events = parser.feed(b"data: a\r") + parser.feed(b"\ndata: b\r\n\r\n")

    assert summary(events) == [(None, b"a\nb")]


def test_colon_without_space_and_unknown_fields() -> None:
    events = parse_whole(MIXED_FIELDS)

    # One leading space is stripped, no more; a bare "data" line is an empty data line.
    assert summary(events) == [(None, b"no-space\n two-spaces"), (None, b"")]


def test_a_single_data_line_loses_one_leading_space_only() -> None:
    [event] = SSEParser().feed(b"data:  two spaces \n\n")
    assert event.data == b" two spaces "
    assert event.raw == b"data:  two spaces \n\n"


def test_comment_only_blocks_dispatch_nothing() -> None:
    parser = SSEParser()

    assert parser.feed(b": ping\n\n:\n\n: a\n: b\n\n") == []
    assert parser.pending == 0
    assert parser.flush() == []


def test_done_is_only_the_exact_sentinel() -> None:
    [done, other] = parse_whole(b"data: [DONE]\n\ndata: [DONE] \n\n")

    assert done.is_done
    assert not other.is_done


def test_feed_holds_back_an_incomplete_event_until_its_blank_line() -> None:
    parser = SSEParser()

    assert parser.feed(b"data: {") == []
    assert parser.feed(b'"a":1}\n') == []
    assert parser.pending == len(b'data: {"a":1}\n')
    [event] = parser.feed(b"\n")
    assert event.data == b'{"a":1}'
    assert parser.pending == 0


def test_flush_dispatches_an_unterminated_final_event_once() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\n\ndata: tail\n") == [Event(b"data: one\n\n", None, b"one")]

    [tail] = parser.flush()

    assert (tail.event, tail.data) == (None, b"tail")
    assert parser.flush() == []
    assert parser.pending == 0


def test_flush_of_a_line_without_any_newline() -> None:
    parser = SSEParser()
    parser.feed(b"event: done\ndata: x")

    assert summary(parser.flush()) == [("done", b"x")]


def test_flush_ignores_whitespace_only_rest() -> None:
    parser = SSEParser()
    parser.feed(b"data: a\n\n\n")

    assert parser.flush() == []


def test_raw_is_the_original_bytes_of_a_single_data_line_event() -> None:
    block = b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n'

    [event] = SSEParser().feed(block)

    assert event.raw == block
    assert event.data == block[6:-2]


def test_raw_of_a_multi_line_event_is_the_whole_block() -> None:
    block = b"event: content_block_delta\ndata: a\ndata: b\n\n"

    [event] = SSEParser().feed(block)

    assert event.raw == block


def test_concatenated_raw_reproduces_an_lf_stream_without_comments() -> None:
    stream = OPENAI_STREAM.replace(b": keep-alive\n\n", b"") + ANTHROPIC_STREAM

    assert b"".join(e.raw for e in parse_whole(stream)) == stream


@pytest.mark.parametrize("name", [None, "message_delta"])
def test_encode_output_re_parses_to_the_same_event(name: str | None) -> None:
    data = b'{"type":"message_delta","usage":{"output_tokens":5}}'

    encoded = encode(data, name)
    [event] = SSEParser().feed(encoded)

    assert (event.event, event.data, event.raw) == (name, data, encoded)


def test_done_constant_is_the_openai_sentinel() -> None:
    assert DONE == b"data: [DONE]\n\n"
    [event] = SSEParser().feed(DONE)
    assert event.is_done


# complete


def parse_with_complete(pieces: list[bytes]) -> list[Event]:
    """As the relay reads with a block decoder: ``complete`` first, ``feed`` when it says None."""
    parser = SSEParser()
    events: list[Event] = []
    for piece in pieces:
        block = parser.complete(piece)
        events += parser.feed(piece) if block is None else block_events(block)
    return events + parser.flush()


def test_complete_returns_the_whole_events_as_they_are_and_keeps_the_rest() -> None:
    parser = SSEParser()
    events = b'data: {"a":1}\n\ndata: {"b":2}\n\n'

    assert parser.complete(events + b"data: {") == events
    assert parser.pending == len(b"data: {")
    assert parser.complete(b'"c":3}\n\n') == b'data: {"c":3}\n\n'
    assert parser.pending == 0
    assert summary(block_events(events)) == [(None, b'{"a":1}'), (None, b'{"b":2}')]


@pytest.mark.parametrize(
    "chunk",
    [b'data: {"a":1}\n', b'data: {"a":1}\r\n\r\n', b'data: {"a":1}\n\n\n', b"\n\n"],
    ids=["no_complete_event", "crlf", "three_line_ends", "blank_line_only"],
)
def test_complete_leaves_a_read_it_cannot_take_to_feed(chunk: bytes) -> None:
    parser = SSEParser()

    assert parser.complete(chunk) is None
    assert parser.pending == 0  # nothing taken: feed gets the same chunk
    assert summary(parser.feed(chunk) + parser.flush()) == summary(parse_whole(chunk))


@pytest.mark.parametrize("stream", STREAMS.values(), ids=STREAMS.keys())
def test_every_split_point_with_complete_gives_the_same_events_as_feed(stream: bytes) -> None:
    expected = parse_whole(stream)
    for cut in range(len(stream) + 1):
        got = parse_with_complete([stream[:cut], stream[cut:]])
        assert summary(got) == summary(expected), cut
        assert b"".join(e.raw for e in got) == b"".join(e.raw for e in expected), cut
