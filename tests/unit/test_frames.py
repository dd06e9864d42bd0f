"""Stream frames and JSON message streams: known bytes, error cases and round-trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from berth.http.frames import (
    STDERR,
    STDIN,
    STDOUT,
    SYSTEMERR,
    FrameDecoder,
    JSONMessageError,
    JSONStreamDecoder,
    StreamFormatError,
    check_message,
    encode_frame,
    encode_json_message,
    iter_frames,
    iter_json_messages,
)


def test_encode_frame_header_layout() -> None:
    assert encode_frame(STDOUT, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert encode_frame(STDERR, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"
    assert encode_frame(STDIN, b"x" * 256)[:8] == b"\x00\x00\x00\x00\x00\x00\x01\x00"


def test_encode_frame_rejects_bad_stream() -> None:
    with pytest.raises(ValueError):
        encode_frame(4, b"x")


def test_decoder_handles_split_header_and_payload() -> None:
    data = encode_frame(STDOUT, b"hello") + encode_frame(STDERR, b"oops")
    decoder = FrameDecoder()
    out = []
    for i in range(len(data)):
        out += decoder.feed(data[i:i + 1])
    assert out == [(STDOUT, b"hello"), (STDERR, b"oops")]
    assert decoder.pending == 0
    decoder.close()


def test_decoder_several_frames_in_one_chunk() -> None:
    data = b"".join(encode_frame(s, p) for s, p in [(1, b"a"), (2, b"bb"), (1, b"")])
    assert FrameDecoder().feed(data) == [(1, b"a"), (2, b"bb"), (1, b"")]


def test_decoder_rejects_bad_header() -> None:
    with pytest.raises(StreamFormatError):
        FrameDecoder().feed(b"\x07\x00\x00\x00\x00\x00\x00\x01x")
    with pytest.raises(StreamFormatError):
        FrameDecoder().feed(b"\x01\x00\x01\x00\x00\x00\x00\x01x")
    # Raw TTY output fed to the frame decoder by mistake is caught, not misread.
    with pytest.raises(StreamFormatError):
        FrameDecoder().feed(b"hello world\n")


def test_decoder_close_with_partial_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(STDOUT, b"abcdef")[:10])
    assert decoder.pending == 10
    with pytest.raises(StreamFormatError, match="inside a frame"):
        decoder.close()


def test_systemerr_frames_pass_through() -> None:
    assert list(iter_frames([encode_frame(SYSTEMERR, b"log driver failed")])) == [
        (SYSTEMERR, b"log driver failed")]


frames_strategy = st.lists(st.tuples(st.sampled_from([STDIN, STDOUT, STDERR]),
                                     st.binary(max_size=300)), max_size=20)


@given(frames=frames_strategy, cuts=st.lists(st.integers(min_value=0, max_value=7000),
                                             max_size=10))
def test_frames_round_trip_any_split(frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    data = b"".join(encode_frame(s, p) for s, p in frames)
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert list(iter_frames(chunks)) == frames


# -- JSON message streams ---------------------------------------------------------------------

def test_json_stream_newline_separated() -> None:
    data = b'{"status":"Loading layer"}\r\n{"stream":"Loaded image: busybox:latest\\n"}\r\n'
    assert JSONStreamDecoder().feed(data) == [
        {"status": "Loading layer"}, {"stream": "Loaded image: busybox:latest\n"}]


def test_json_stream_concatenated_and_split() -> None:
    data = b'{"a":1}{"b":[1,2]}  {"c":"\xc3\xa9"}'
    decoder = JSONStreamDecoder()
    out = []
    for i in range(len(data)):
        out += decoder.feed(data[i:i + 1])
    out += decoder.close()
    assert out == [{"a": 1}, {"b": [1, 2]}, {"c": "é"}]


def test_json_stream_bare_number_waits_for_delimiter() -> None:
    decoder = JSONStreamDecoder()
    assert decoder.feed(b"12") == []
    assert decoder.feed(b"3 ") == [123]
    assert decoder.feed(b"4") == []
    assert decoder.close() == [4]


def test_json_stream_garbage_is_an_error() -> None:
    with pytest.raises(StreamFormatError):
        JSONStreamDecoder().feed(b"<html>")
    decoder = JSONStreamDecoder()
    decoder.feed(b'{"a": ')
    with pytest.raises(StreamFormatError, match="mid-message"):
        decoder.close()


def test_check_message_raises_error_detail() -> None:
    with pytest.raises(JSONMessageError) as info:
        check_message({"errorDetail": {"code": 1, "message": "manifest unknown"},
                       "error": "manifest unknown"})
    assert info.value.message == "manifest unknown"
    assert info.value.code == 1
    with pytest.raises(JSONMessageError, match="^plain$"):
        check_message({"error": "plain"})
    assert check_message({"status": "ok"}) == {"status": "ok"}


def test_iter_json_messages_stops_at_error() -> None:
    chunks = [encode_json_message({"status": "Pulling"}),
              encode_json_message({"errorDetail": {"message": "denied"}, "error": "denied"}),
              encode_json_message({"status": "never seen"})]
    seen = []
    with pytest.raises(JSONMessageError, match="denied"):
        for msg in iter_json_messages(chunks):
            seen.append(msg)
    assert seen == [{"status": "Pulling"}]
    assert len(list(iter_json_messages(chunks, check=False))) == 3


def test_encode_json_message_is_crlf_terminated() -> None:
    assert encode_json_message({"status": "x"}) == b'{"status":"x"}\r\n'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10)
messages_strategy = st.lists(st.dictionaries(st.text(max_size=10), json_values, max_size=5),
                             max_size=10)


@given(messages=messages_strategy, sep=st.sampled_from([b"", b"\n", b"\r\n", b" "]),
       size=st.integers(min_value=1, max_value=50))
def test_json_stream_round_trip(messages: list[dict[str, object]], sep: bytes,
                                size: int) -> None:
    data = sep.join(json.dumps(m, ensure_ascii=False).encode() for m in messages)
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    assert list(iter_json_messages(chunks, check=False)) == messages
