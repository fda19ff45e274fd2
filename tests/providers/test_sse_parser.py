"""The SSE parser gives the same events however the bytes are split, whether it takes its
fast path (LF only, one ``data:`` line per event) or goes line by line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from thrifty.providers.sse import SSEEvent, SSEParser


def reference(raw: bytes) -> list[SSEEvent]:
    """Line by line over the whole input at once: the rules the parser implements."""
    events: list[SSEEvent] = []
    event: str | None = None
    data: list[bytes] = []
    for line in [*raw.split(b"\n"), b""]:
        line = line.removesuffix(b"\r")
        if not line:
            if data:
                events.append(SSEEvent(event, b"\n".join(data)))
            event, data = None, []
        elif line.startswith(b":"):
            continue
        else:
            name, _, value = line.partition(b":")
            value = value.removeprefix(b" ")
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value.decode("utf-8", "replace")
    return events


def parse(pieces: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    out: list[SSEEvent] = []
    for piece in pieces:
        out += parser.feed(piece)
    return out + parser.flush()


payload = st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))
block = st.one_of(
    payload.map(lambda p: b"data: " + p),
    st.lists(payload, min_size=1, max_size=3).map(lambda ps: b"\n".join(b"data:" + p for p in ps)),
    st.tuples(payload, payload).map(lambda t: b"event: " + t[0] + b"\ndata: " + t[1]),
    payload.map(lambda p: b": keep-alive " + p),
)
stream = st.tuples(
    st.lists(st.tuples(block, st.sampled_from([b"\n\n", b"\r\n\r\n", b"\n\n\n"])), max_size=8),
    st.sampled_from([b"", b"data: tail", b"data: a\ndata: b", b"data: x\n"]),
).map(lambda t: b"".join(b + sep for b, sep in t[0]) + t[1])


@given(raw=stream, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_any_split_gives_the_reference_events(raw: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(raw)) for c in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert parse(pieces) == reference(raw)


def test_openai_stream_in_one_read_and_byte_by_byte() -> None:
    raw = b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    want = [SSEEvent(None, b'{"a":1}'), SSEEvent(None, b'{"b":2}'), SSEEvent(None, b"[DONE]")]
    assert parse([raw]) == want
    assert parse([raw[i:i + 1] for i in range(len(raw))]) == want
