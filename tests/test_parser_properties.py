"""Hostile input, by property: any chunking of a stream records the same message; no body, however
broken, crashes the parsers; blocks and fields from a newer API are kept."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lit.proxy import anthropic, openai

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
json_scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | text
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)
blocks = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, text),
    st.builds(lambda t, s: {"type": "thinking", "thinking": t, "signature": s}, text, st.text("abc123", min_size=1)),
    st.builds(lambda i, n, inp: {"type": "tool_use", "id": "toolu_" + i, "name": n, "input": inp},
              st.text("abcdef0123", min_size=1, max_size=8), st.text("abcXYZ_", min_size=1, max_size=10),
              st.dictionaries(st.text(max_size=8), json_scalars, max_size=4)),
    # A block type from a newer API, with fields lit has never seen.
    st.builds(lambda v: {"type": "hologram_v9", "payload": v, "shimmer": True}, json_values),
)
messages = st.builds(lambda content, stop: {"content": content, "stop_reason": stop,
                                            "usage": {"input_tokens": 3, "output_tokens": 5}},
                     st.lists(blocks, min_size=1, max_size=4), st.sampled_from(["end_turn", "tool_use", "future_stop"]))


def rechunk(data: bytes, cuts: list[int], crlf: bool) -> list[bytes]:
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.lists(st.integers(0, 10**6), max_size=30), st.booleans(), st.integers(1, 40))
def test_any_chunking_of_a_stream_records_the_same_message(message, cuts, crlf, width):
    stream = b"".join(anthropic.message_to_sse(message, chunk_chars=width))
    # Chunks cut anywhere (inside UTF-8 sequences, between \r and \n) are joined by the relay's
    # copy before parsing: what is recorded must not depend on where the network cut.
    joined = b"".join(rechunk(stream, cuts, crlf))
    assembled, error = anthropic.assemble_sse(joined)
    assert error is None
    assert assembled["content"] == message["content"]
    assert assembled["stop_reason"] == message["stop_reason"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_a_parser(body):
    for parse in (anthropic.parse_request, openai.parse_chat_request, openai.parse_responses_request):
        p = parse(body)
        assert p.request_ok or p.parse_error
    for ctype in ("text/event-stream", "application/json", ""):
        headers = {"content-type": ctype}
        anthropic.parse_response(body, headers, 200, anthropic.ParsedExchange())
        openai.parse_chat_response(body, headers, 200, anthropic.ParsedExchange(protocol="openai-chat"))
        openai.parse_responses_response(body, headers, 200, anthropic.ParsedExchange(protocol="openai-responses"))


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_arbitrary_json_bodies_never_crash_a_parser(value):
    body = json.dumps(value).encode()
    for parse in (anthropic.parse_request, openai.parse_chat_request, openai.parse_responses_request):
        parse(body)
    for ctype in ("application/json", "text/event-stream"):
        anthropic.parse_response(body, {"content-type": ctype}, 200, anthropic.ParsedExchange())
        openai.parse_chat_response(body, {"content-type": ctype}, 200, anthropic.ParsedExchange())
        openai.parse_responses_response(body, {"content-type": ctype}, 200, anthropic.ParsedExchange())


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text("abcdefgh_", min_size=1, max_size=10), json_scalars, max_size=4))
def test_unknown_request_fields_are_kept_as_params(extra):
    extra = {k: v for k, v in extra.items() if k not in ("messages", "system", "tools", "model", "stream")}
    body = {"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], **extra}
    p = anthropic.parse_request(json.dumps(body).encode())
    assert p.request_ok and all(p.params[k] == v for k, v in extra.items())
