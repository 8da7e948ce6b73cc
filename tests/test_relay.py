"""The relay between an agent and the Messages API: what the agent receives is what the upstream
sent, byte for byte, errors and resets included, while the sink gets a copy of each exchange."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import aiohttp
import anthropic
import pytest
from conftest import FAKE_KEY

from lit.proxy import spool
from lit.proxy.anthropic import message_to_sse
from lit.proxy.relay import Relay
from lit.scripted import ScriptedUpstream, text_message, tool_message, wait_for

MODEL = "claude-sonnet-4-6"
HI = [{"role": "user", "content": "hi"}]
JSON = {"content-type": "application/json"}


def raw(url: str, method: str = "POST", path: str = "/v1/messages", body: bytes | None = None,
        headers: dict | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request with a client that changes nothing: (status, headers, body bytes as received)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {"content-type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def lower(headers: dict) -> dict:
    return {k.lower(): v for k, v in headers.items()}


def client(relay: Relay) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=relay.url, api_key=FAKE_KEY, max_retries=0)


def message(text: str) -> dict:
    """A complete message with fixed ids, so two answers to it are the same bytes."""
    return {"id": "msg_01FIXED", "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 2}}


# --- the real SDK as the agent ------------------------------------------------------------------


def test_sdk_create_stream_and_helper_through_the_relay(upstream, relay, sink):
    upstream.replies = [text_message("plain answer"), text_message("streamed answer"),
                        tool_message("Write", {"file_path": "a.py", "content": "x = 1\n"}, thinking="a file")]
    c = client(relay)
    assert c.messages.create(model=MODEL, max_tokens=50, messages=HI).content[0].text == "plain answer"
    events = list(c.messages.create(model=MODEL, max_tokens=50, messages=HI, stream=True))
    assert [e.type for e in events][0::len(events) - 1] == ["message_start", "message_stop"]
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == "streamed answer"
    with c.messages.stream(model=MODEL, max_tokens=50, messages=HI) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    assert final.content[1].input == {"file_path": "a.py", "content": "x = 1\n"}

    assert wait_for(lambda: len(sink.responses) == 3)
    assert [e.id for e in sink.requests] == [f"{sink.session_id}.{n}" for n in (1, 2, 3)]
    assert [(e.status, e.complete, e.streamed, e.error) for e in sink.responses] == [
        (200, True, False, None), (200, True, True, None), (200, True, True, None)]
    assert all(e.ttfb_ms is not None and e.duration_ms >= e.ttfb_ms for e in sink.responses)
    # The sink's copy is what the agent got: the recorder parses the same bytes.
    assert b"streamed answer" in sink.responses[1].response_body
    assert json.loads(sink.requests[0].request_body)["messages"] == HI
    sent = lower(sink.requests[0].request_headers)
    assert FAKE_KEY in (sent.get("x-api-key"), sent.get("authorization", "").removeprefix("Bearer "))
    # (the relay hands the key on; the recorder is the one that drops it)


def test_async_sdk_through_the_relay(upstream, relay, sink):
    upstream.replies = [text_message("one"), text_message("two"), text_message("three")]

    async def agent() -> list[str]:
        c = anthropic.AsyncAnthropic(base_url=relay.url, api_key=FAKE_KEY, max_retries=0)
        first = await c.messages.create(model=MODEL, max_tokens=50, messages=HI)
        streamed = [e async for e in await c.messages.create(model=MODEL, max_tokens=50, messages=HI, stream=True)]
        async with c.messages.stream(model=MODEL, max_tokens=50, messages=HI) as s:
            third = await s.get_final_message()
        await c.close()
        return [first.content[0].text,
                "".join(e.delta.text for e in streamed if e.type == "content_block_delta"), third.content[0].text]

    assert asyncio.run(agent()) == ["one", "two", "three"]
    assert wait_for(lambda: len(sink.responses) == 3)
    assert all(e.complete for e in sink.responses)


def test_requests_reach_the_upstream_as_the_agent_sent_them(upstream, relay):
    upstream.replies = [text_message("ok")]
    client(relay).messages.create(model=MODEL, max_tokens=5, messages=HI, extra_query={"beta": "true"},
                                  extra_headers={"x-claude-code-session-id": "s-1", "x-api-key": FAKE_KEY})
    seen = upstream.requests[-1]
    assert seen["path"] == "/v1/messages" and seen["query"] == "beta=true"  # Claude Code's query string
    headers = lower(seen["headers"])
    assert headers["x-api-key"] == FAKE_KEY and headers["x-claude-code-session-id"] == "s-1"
    assert headers["host"] == f"127.0.0.1:{upstream.port}"  # the upstream's, not the relay's
    assert headers["user-agent"].startswith("Anthropic/Python")  # nothing of aiohttp's own
    assert json.loads(seen["body"])["messages"] == HI


# --- byte for byte ----------------------------------------------------------------------------------


def test_a_stream_arrives_byte_for_byte_as_the_upstream_sent_it(upstream, relay, sink):
    chunks = message_to_sse(message("every byte counts"))
    upstream.replies = [{"chunks": chunks, "headers": {"request-id": "req_01FIXED"}}]
    status, headers, body = raw(relay.url, body=b'{"stream": true}')
    assert status == 200 and body == b"".join(chunks)
    assert headers["content-type"] == "text/event-stream" and headers["request-id"] == "req_01FIXED"
    assert wait_for(lambda: sink.responses)
    assert sink.responses[0].response_body == body and sink.responses[0].streamed


def test_each_chunk_reaches_the_agent_before_the_upstream_sends_the_next(upstream, relay, sink):
    agent_has_first = threading.Event()
    waited: list[bool] = []

    def chunks():
        yield b"event: ping\ndata: {}\n\n"
        waited.append(agent_has_first.wait(10))  # nothing more until the agent holds the first chunk
        yield b"event: message_stop\ndata: {}\n\n"

    upstream.replies = [{"chunks": chunks()}]

    async def agent() -> bytes:
        async with aiohttp.ClientSession() as s, s.post(relay.url + "/v1/messages", data=b"{}", headers=JSON) as resp:
            first = await resp.content.readany()
            agent_has_first.set()
            return first + await resp.content.read()

    assert asyncio.run(agent()) == b"event: ping\ndata: {}\n\nevent: message_stop\ndata: {}\n\n"
    assert waited == [True]  # a relay that buffered would have kept the first chunk for 10 s


def test_direct_and_relayed_answers_are_the_same(upstream, relay):
    answer = {"status": 200, "body": json.dumps(message("same")).encode(),
              "headers": {"request-id": "req_01SAME", "content-type": "application/json",
                          "anthropic-organization-id": "org-1"}}
    upstream.replies = [answer, answer]
    direct, relayed = raw(upstream.url), raw(relay.url)
    assert relayed[0] == direct[0] and relayed[2] == direct[2]
    per_connection = {"date", "server", "connection", "keep-alive", "transfer-encoding"}
    assert ({k.lower(): v for k, v in relayed[1].items() if k.lower() not in per_connection}
            == {k.lower(): v for k, v in direct[1].items() if k.lower() not in per_connection})


def test_compressed_answers_pass_through_still_compressed(upstream, relay, sink):
    payload = gzip.compress(json.dumps(message("squeezed")).encode())
    upstream.replies = [{"status": 200, "body": payload,
                         "headers": {"content-encoding": "gzip", "content-type": "application/json"}}]
    status, headers, body = raw(relay.url, body=b"{}", headers={"accept-encoding": "gzip", **JSON})
    assert headers["content-encoding"] == "gzip" and body == payload
    assert lower(upstream.requests[-1]["headers"])["accept-encoding"] == "gzip"
    assert wait_for(lambda: sink.responses) and sink.responses[0].response_body == payload
    # The SDK (httpx) decompresses it as it would from the API.
    upstream.replies.append(upstream.replies[0])
    assert client(relay).messages.create(model=MODEL, max_tokens=5, messages=HI).content[0].text == "squeezed"


def test_malformed_json_non_utf8_and_malformed_sse_are_relayed_unchanged(upstream, relay, sink):
    bad_sse = [b"event: message_start\ndata: {not json\n\n", b"data: \xff\xfe\x00 raw\n\n", b"event: ping\n"]
    upstream.replies = [{"chunks": bad_sse}]
    request = b'{"model": "x", "messages": [\xff\xfe oops'
    status, _, body = raw(relay.url, body=request)
    assert status == 200 and body == b"".join(bad_sse)
    assert upstream.requests[-1]["body"] == request
    assert wait_for(lambda: sink.responses)
    assert sink.requests[0].request_body == request and sink.responses[0].complete


def test_twenty_megabytes_each_way(upstream, relay, sink):
    big_request = b'{"blob": "' + b"r" * (20 * 1024 * 1024) + b'"}'
    big_answer = [b"data: " + bytes([65 + i % 26]) * (1024 * 1024) + b"\n\n" for i in range(20)]
    upstream.replies = [{"chunks": big_answer}]
    status, _, body = raw(relay.url, body=big_request)
    assert status == 200 and body == b"".join(big_answer)
    assert upstream.requests[-1]["body"] == big_request
    assert wait_for(lambda: sink.responses) and len(sink.responses[0].response_body) == len(body)


def test_a_side_that_reads_slowly_slows_the_other_and_gets_every_byte(sink):
    """Neither side can make lit hold a whole body: while the agent does not read a 48 MB answer,
    the upstream cannot send it all (the relay stops reading it); while the upstream does not read a
    48 MB request, the agent cannot send it all. Each side then gets every byte, in order. (Socket
    buffers on loopback take about 12 MB each way here; without the relay's flow control, all.)"""
    size = 48 * 1024 * 1024
    answer = bytes(range(256)) * (size // 256)
    request = b'{"blob": "' + b"q" * (size - 12) + b'"}'
    sent = {"answer": 0}
    measured = threading.Event()
    got: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            body = bytearray(head.split(b"\r\n\r\n", 1)[1])
            measured.wait(30)  # not reading the request until the agent could send no more
            while len(body) < len(request):
                body += conn.recv(1024 * 1024)
            got.append(bytes(body))
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
            view = memoryview(answer)
            while sent["answer"] < size:
                sent["answer"] += conn.send(view[sent["answer"]:sent["answer"] + 1024 * 1024])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with Relay(f"http://127.0.0.1:{server.getsockname()[1]}", sink) as relay:
        agent = socket.create_connection(("127.0.0.1", relay.port))
        agent.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\ncontent-type: application/json\r\n"
                      b"content-length: %d\r\n\r\n" % (relay.port, len(request)))
        agent.setblocking(False)
        started, offered = time.monotonic(), 0
        while time.monotonic() - started < 1.0:  # the upstream reads nothing yet
            try:
                offered += agent.send(request[offered:offered + 1024 * 1024])
            except BlockingIOError:
                time.sleep(0.01)
        measured.set()
        assert offered < size // 2  # held back, not taken whole into lit's memory
        agent.setblocking(True)
        agent.sendall(request[offered:])
        time.sleep(1.0)  # the agent reads nothing of the answer yet
        assert sent["answer"] < size // 2
        received = bytearray()
        while b"\r\n\r\n" not in received:
            received += agent.recv(65536)
        start = received.index(b"\r\n\r\n") + 4
        while len(received) - start < size:
            data = agent.recv(1024 * 1024)
            assert data
            received += data
        agent.close()
    thread.join(10)
    server.close()
    assert got == [request] and received[start:] == answer


def test_an_https_upstream_gets_the_call_byte_for_byte(tmp_path, monkeypatch, sink):
    """The upstream an agent really has is HTTPS: bodies both ways go through TLS as they do in
    the clear (here an 8 MB chunked answer and 3 MB requests, on one kept connection), checked
    against a certificate the system trusts (SSL_CERT_FILE, as OpenSSL reads it)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    answer = os.urandom(8 * 1024 * 1024)
    ready: list[int] = []
    received: list[bytes] = []

    async def serve() -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                received.append(await reader.readexactly(length))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"transfer-encoding: chunked\r\n\r\n")
                for i in range(0, len(answer), 100_000):
                    writer.write(b"%x\r\n%s\r\n" % (len(answer[i:i + 100_000]), answer[i:i + 100_000]))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        ready.append(server.sockets[0].getsockname()[1])
        await asyncio.sleep(60)

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    assert wait_for(lambda: ready)
    requests = [os.urandom(3 * 1024 * 1024) for _ in range(2)]
    with Relay(f"https://127.0.0.1:{ready[0]}", sink) as relay:
        for body in requests:
            status, _, got = raw(relay.url, body=body)
            assert status == 200 and got == answer
    assert received == requests


def test_head_and_other_methods_and_paths(upstream, relay, sink):
    status, _, body = raw(relay.url, "HEAD", "/")
    assert (status, body) == (200, b"")
    status, _, body = raw(relay.url, "GET", "/v1/models?limit=5")
    assert status == 200 and json.loads(body)["data"][0]["id"] == MODEL
    assert upstream.requests[-1]["query"] == "limit=5"
    status, _, body = raw(relay.url, "POST", "/v1/messages/count_tokens", b'{"messages": []}')
    assert status == 200 and "input_tokens" in json.loads(body)
    assert wait_for(lambda: len(sink.responses) == 3)
    assert [(e.method, e.path, e.query, e.status) for e in sink.responses] == [
        ("HEAD", "/", "", 200), ("GET", "/v1/models", "limit=5", 200),
        ("POST", "/v1/messages/count_tokens", "", 200)]


# --- errors, as the upstream sent them -----------------------------------------------------------------


@pytest.mark.parametrize("status,kind,error_class,headers", [
    (400, "invalid_request_error", anthropic.BadRequestError, {}),
    (401, "authentication_error", anthropic.AuthenticationError, {}),
    (429, "rate_limit_error", anthropic.RateLimitError, {"retry-after": "17"}),
    (500, "api_error", anthropic.InternalServerError, {}),
    (529, "overloaded_error", anthropic.APIStatusError, {"x-should-retry": "true"}),
])
def test_upstream_errors_reach_the_agent_as_sent(upstream, relay, sink, status, kind, error_class, headers):
    body = {"type": "error", "error": {"type": kind, "message": f"scripted {status}"}}
    upstream.replies = [{"status": status, "body": body, "headers": {"request-id": "req_err", **headers}}] * 2
    with pytest.raises(error_class) as caught:
        client(relay).messages.create(model=MODEL, max_tokens=5, messages=HI)
    assert caught.value.status_code == status and caught.value.body == body
    assert caught.value.response.headers.get("request-id") == "req_err"
    for name, value in headers.items():
        assert caught.value.response.headers[name] == value
    got_status, got_headers, got_body = raw(relay.url, body=b"{}")
    assert (got_status, json.loads(got_body)) == (status, body)
    assert wait_for(lambda: len(sink.responses) == 2)
    assert sink.responses[0].status == status and sink.responses[0].complete


def test_a_reset_mid_stream_cuts_the_agent_too(upstream, relay, sink):
    chunks = message_to_sse(message("this answer is cut off"))
    upstream.replies = [{"chunks": chunks, "reset_after": 3}, {"chunks": chunks, "reset_after": 3}]
    # The SDK's stream ends with its HTTP client's error, as when the API's connection breaks.
    with pytest.raises(Exception, match="incomplete chunked read|peer closed"):
        for _ in client(relay).messages.create(model=MODEL, max_tokens=50, messages=HI, stream=True):
            pass
    # A raw client sees what arrived before the cut, then no clean end of the body.
    host, port = relay.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/v1/messages", body=b"{}", headers=JSON)
    resp = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead) as cut:
        resp.read()
    conn.close()
    assert b"".join(chunks).startswith(cut.value.partial) and b"".join(chunks[:3]) == cut.value.partial
    assert wait_for(lambda: len(sink.responses) == 2)
    ex = sink.responses[1]
    assert not ex.complete and "upstream cut" in ex.error and ex.response_body == b"".join(chunks[:3])


def test_unreachable_upstream_gives_a_502_naming_it(sink):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with Relay(dead, sink) as relay:
        with pytest.raises(anthropic.APIStatusError) as caught:
            client(relay).messages.create(model=MODEL, max_tokens=5, messages=HI)
    assert caught.value.status_code == 502
    assert caught.value.body["type"] == "error" and caught.value.body["error"]["type"] == "api_error"
    assert caught.value.body["error"]["message"].startswith(f"lit: upstream {dead} unreachable: ")
    assert wait_for(lambda: sink.responses)  # the spool is read by another thread, as by the recorder
    assert sink.responses[0].status == 502 and not sink.responses[0].complete


def test_when_the_agent_hangs_up_the_upstream_call_ends_with_it(upstream, relay, sink):
    chunks = [b"data: %d\n\n" % i for i in range(200)]
    upstream.replies = [{"chunks": chunks, "delay": 0.05}]  # 10 s if read to the end

    async def read_one_chunk_and_leave() -> bytes:
        async with aiohttp.ClientSession() as s:
            resp = await s.post(relay.url + "/v1/messages", data=b"{}", headers=JSON)
            first = await resp.content.readany()
            resp.close()
            return first

    started = time.monotonic()
    assert asyncio.run(read_one_chunk_and_leave()).startswith(b"data: 0")
    assert wait_for(lambda: sink.responses, timeout=5)
    assert time.monotonic() - started < 3
    ex = sink.responses[0]
    assert not ex.complete and "agent closed" in ex.error and len(ex.response_body) < sum(map(len, chunks))


# --- the sink cannot hurt the agent --------------------------------------------------------------


def test_the_spool_holds_a_call_until_it_ends_and_never_longer_than_hold():
    """The recorder reads a call after it, not during it: its time to first byte and its stream
    share the machine with nothing of lit's but the relay (benchmarks/bench_relay.py)."""
    read_end, write_end = spool.pipe()
    os.set_blocking(read_end, False)
    writer = spool.SpoolWriter(write_end)

    def readable() -> list[bytes]:
        try:
            data = os.read(read_end, 1 << 20)
        except BlockingIOError:
            return []
        kinds, at = [], 0
        while at < len(data):
            kind, _, _, length = spool.HEADER.unpack_from(data, at)
            kinds.append(kind)
            at += spool.HEADER.size + length
        return kinds

    async def session() -> tuple[list[bytes], ...]:
        writer.add(spool.REQUEST_HEAD, 1, b"POST /v1/messages HTTP/1.1\r\n\r\n")
        writer.add(spool.REQUEST_BODY, 1, b"{}")
        writer.add(spool.RESPONSE_HEAD, 1, b"HTTP/1.1 200 OK\r\n\r\n")
        writer.add(spool.RESPONSE_BODY, 1, b"event: ping")
        during = readable()
        writer.add(spool.END, 1, b'{"complete": true, "error": null}')
        ended = readable()
        writer.add(spool.REQUEST_HEAD, 2, b"POST /v1/messages HTTP/1.1\r\n\r\n")  # a call that stalls
        await asyncio.sleep(spool.HOLD * 3)
        return during, ended, readable()

    during, ended, stalled = asyncio.run(session())
    assert during == []
    assert ended == [spool.REQUEST_HEAD, spool.REQUEST_BODY, spool.RESPONSE_HEAD, spool.RESPONSE_BODY, spool.END]
    assert stalled == [spool.REQUEST_HEAD]
    writer.close(0)
    os.close(read_end)


def test_a_recorder_that_is_gone_never_reaches_the_agent(upstream):
    read_end, write_end = spool.pipe()
    os.close(read_end)  # the recorder died: every write to the spool fails
    gone = spool.SpoolWriter(write_end)
    upstream.replies = [text_message("still here"), text_message("and here")]
    with Relay(upstream.url, gone) as relay:
        c = client(relay)
        assert c.messages.create(model=MODEL, max_tokens=5, messages=HI).content[0].text == "still here"
        assert "and here" in "".join(str(e) for e in c.messages.create(model=MODEL, max_tokens=5, messages=HI,
                                                                        stream=True))
    assert relay.spool_lost == 2 and gone.broken.startswith("the recorder stopped reading: ")
    os.close(write_end)


# --- where it listens ----------------------------------------------------------------------------------


def test_listens_on_loopback_only_and_reports_a_taken_port(upstream, relay):
    assert [s.getsockname() for s in relay._server.sockets] == [("127.0.0.1", relay.port)]
    with pytest.raises(OSError), socket.create_connection(("127.0.0.2", relay.port), timeout=2):
        pass  # the same port on another loopback address: nobody there
    with pytest.raises(OSError):
        Relay(upstream.url, port=relay.port).start()


def test_concurrent_streams_each_get_their_own_answer(upstream, relay, sink):
    upstream.replies = lambda body: text_message(body["messages"][0]["content"] * 3)

    def one(i: int, out: dict) -> None:
        with client(relay).messages.stream(model=MODEL, max_tokens=5,
                                           messages=[{"role": "user", "content": f"<{i}>"}]) as s:
            out[i] = s.get_final_message().content[0].text

    out: dict[int, str] = {}
    threads = [threading.Thread(target=one, args=(i, out)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert out == {i: f"<{i}>" * 3 for i in range(16)}
    assert wait_for(lambda: len(sink.responses) == 16)
    assert len({e.id for e in sink.responses}) == 16


def test_an_upstream_with_a_path_prefix_keeps_it(sink):
    with ScriptedUpstream([text_message("prefixed")]) as up, Relay(up.url + "/gateway/", sink) as relay:
        assert client(relay).messages.create(model=MODEL, max_tokens=5, messages=HI).content[0].text == "prefixed"
    assert up.requests[-1]["path"] == "/gateway/v1/messages"


def test_stopping_with_a_call_in_flight_cuts_it_and_keeps_it_incomplete(upstream, sink):
    upstream.replies = [{"chunks": [b"data: x\n\n"] * 200, "delay": 0.05}]
    relay = Relay(upstream.url, sink)
    relay.start()
    outcome: list[str] = []

    def agent() -> None:
        try:
            raw(relay.url, body=b"{}")
            outcome.append("complete")
        except http.client.IncompleteRead:
            outcome.append("cut")

    thread = threading.Thread(target=agent)
    thread.start()
    assert wait_for(lambda: sink.requests)
    started = time.monotonic()
    relay.stop()
    thread.join(10)
    assert time.monotonic() - started < 4  # not the 10 s the stream would take
    assert outcome == ["cut"]
    assert wait_for(lambda: sink.responses)
    assert [(e.complete, e.error) for e in sink.responses] == [(False, "lit stopped during the call")]


def test_relays_only_to_its_upstream_never_to_a_url_the_agent_names(upstream, relay, sink):
    """An absolute-form request target must not turn lit into an open proxy."""
    import socket

    from lit.scripted import ScriptedUpstream, text_message

    upstream.replies = [text_message("ok")]
    with ScriptedUpstream([text_message("elsewhere")]) as other:
        s = socket.create_connection(("127.0.0.1", relay.port))
        s.sendall(f"POST http://127.0.0.1:{other.port}/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                  "Content-Type: application/json\r\nConnection: close\r\n\r\n{}".encode())
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
        s.close()
        assert other.requests == []
    assert answer.startswith(b"HTTP/1.1 400") and b"absolute URLs" in answer


# --- only a local agent may write into a thread --------------------------------------------------


def send(port: int, head: str, body: bytes = b"") -> bytes:
    """A request written byte by byte (so Host, Origin and the lengths are exactly as given)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}", "LOCALHOST:{port}"])
def test_a_loopback_host_with_the_relays_port_is_answered(upstream, relay, sink, host):
    upstream.replies = [text_message("local")]
    answer = send(relay.port, f"POST /v1/messages HTTP/1.1\nHost: {host.format(port=relay.port)}\n"
                              "Content-Type: application/json\nContent-Length: 2\nConnection: close\n", b"{}")
    assert answer.startswith(b"HTTP/1.1 200") and b"local" in answer
    assert wait_for(lambda: sink.responses)


@pytest.mark.parametrize("head,why", [
    # DNS rebinding: the page's own name (or another port) in Host.
    ("Host: evil.example:{port}\nContent-Type: application/json", b"answers only Host 127.0.0.1:"),
    ("Host: 127.0.0.1:1\nContent-Type: application/json", b"answers only Host 127.0.0.1:"),
    ("Content-Type: application/json", None),  # no Host at all: HTTP/1.1 requires it
    ("Host: 127.0.0.1:{port}\nHost: evil.example\nContent-Type: application/json", None),
    # A cross-site POST from a page: the browser adds Origin; a no-preflight body is text/plain.
    ("Host: 127.0.0.1:{port}\nOrigin: https://evil.example\nContent-Type: application/json", b"web pages"),
    ("Host: 127.0.0.1:{port}\nOrigin: null\nContent-Type: application/json", b"web pages"),
    ("Host: 127.0.0.1:{port}\nContent-Type: text/plain", b"JSON request bodies only, not text/plain"),
    ("Host: 127.0.0.1:{port}\nContent-Type: application/x-www-form-urlencoded", b"JSON request bodies only"),
    ("Host: 127.0.0.1:{port}\nContent-Type: multipart/form-data; boundary=x", b"JSON request bodies only"),
    ("Host: 127.0.0.1:{port}", b"JSON request bodies only"),
])
def test_a_request_a_web_page_could_send_is_refused_and_not_recorded(upstream, relay, sink, head, why):
    upstream.replies = [text_message("must not be asked")]
    prompt = b'{"model": "x", "messages": [{"role": "user", "content": "forged prompt"}]}'
    answer = send(relay.port, "POST /v1/messages HTTP/1.1\n" + head.format(port=relay.port)
                  + f"\nContent-Length: {len(prompt)}\nConnection: close\n", prompt)
    status, _, rest = answer.partition(b"\r\n")
    if why is None:  # malformed HTTP: refused before lit's own checks
        assert status in (b"HTTP/1.0 400 Bad Request", b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 403 Forbidden")
    else:
        assert status == b"HTTP/1.1 403 Forbidden" and why in rest
        assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]["type"] == "permission_error"
    time.sleep(0.2)
    assert upstream.requests == [] and sink.requests == [] and sink.responses == []


def test_a_body_past_the_cap_is_refused_before_it_is_read(upstream, relay, sink):
    upstream.replies = [text_message("must not be asked")]
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as s:
        # 1 GB announced, nothing sent: the answer comes at once, not after a gigabyte.
        s.sendall(f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{relay.port}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {1024**3}\r\n\r\n".encode())
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413") and b"64 MB" in answer
    assert upstream.requests == [] and sink.requests == []


def test_an_upstream_url_with_credentials_is_masked_in_what_lit_says(sink):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://gateway-user:hunter2-secret@127.0.0.1:{s.getsockname()[1]}"
    with Relay(dead, sink) as relay:
        status, _, body = raw(relay.url, body=b"{}")
    assert status == 502
    assert b"hunter2" not in body and b"gateway-user" not in body
    assert f"lit: upstream http://***@127.0.0.1:{dead.rsplit(':', 1)[1]} unreachable".encode() in body
    assert wait_for(lambda: sink.responses)
    assert "hunter2" not in sink.responses[0].error and "gateway-user" not in sink.responses[0].error


# --- WebSocket (Codex's Responses API over a WebSocket) -----------------------------------------


def test_a_websocket_upgrade_is_relayed_both_ways_and_spooled(sink):
    from aiohttp import WSMsgType, web

    async def responses(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(json.dumps({"type": "response.completed", "echo": json.loads(msg.data)}))
                if json.loads(msg.data).get("last"):
                    await ws.close()
        return ws

    async def scenario() -> list:
        app = web.Application()
        app.router.add_get("/v1/responses", responses)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        relay = Relay(f"http://127.0.0.1:{port}", sink)
        relay_port = await relay.start_async()
        got = []
        try:
            auth = {"authorization": "Bearer " + FAKE_KEY}
            async with aiohttp.ClientSession() as s, s.ws_connect(
                    f"http://127.0.0.1:{relay_port}/v1/responses", headers=auth) as ws:
                await ws.send_str(json.dumps({"type": "response.create", "n": 1}))
                got.append(json.loads((await ws.receive()).data))
                await ws.send_str(json.dumps({"type": "response.create", "n": 2, "last": True}))
                got.append(json.loads((await ws.receive()).data))
                assert (await ws.receive()).type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
        finally:
            await relay.stop_async()
            await runner.cleanup()
        return got

    got = asyncio.run(scenario())
    assert [g["echo"]["n"] for g in got] == [1, 2] and all(g["type"] == "response.completed" for g in got)
    assert wait_for(lambda: sink.responses)
    (ex,) = sink.responses
    assert (ex.method, ex.path, ex.status, ex.complete) == ("GET", "/v1/responses", 101, True)
    assert lower(ex.request_headers)["upgrade"].lower() == "websocket"
    sent = b"".join(data for direction, _, data in ex.frames if direction == "c")
    received = b"".join(data for direction, _, data in ex.frames if direction == "s")
    # The agent's frames are masked on the wire; the upstream's are not, so its text shows as is.
    assert b'"response.completed"' in received and b'"n": 2' in received
    assert len(sent) > 2 * len(b'{"type": "response.create", "n": 1}')


# --- the snapshot gate: only an answer's end waits for the turn's snapshot ----------------------


class SlowSnapshots:
    """A gate whose snapshot takes `seconds` (as the recorder process's would)."""

    def __init__(self, seconds: float):
        self.seconds, self.asked = seconds, []

    def open(self, seq: int) -> asyncio.Future:
        self.asked.append(seq)
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(self.seconds, future.set_result, None)
        return future


def test_a_tool_result_turn_holds_only_the_answers_end_until_its_snapshot(upstream, sink):
    chunks = message_to_sse(message("after the tools ran"))
    upstream.replies = [{"chunks": chunks}, {"chunks": chunks}]
    gate = SlowSnapshots(1.0)
    with Relay(upstream.url, sink, gate=gate) as relay:
        async def call(body: bytes) -> tuple[float, float, bytes]:
            t0 = time.monotonic()
            async with aiohttp.ClientSession() as s, s.post(relay.url + "/v1/messages", data=body,
                                                            headers=JSON) as resp:
                first = await resp.content.readany()
                t1 = time.monotonic()
                rest = await resp.content.read()
            return t1 - t0, time.monotonic() - t0, first + rest

        turn = json.dumps({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}]}).encode()
        first, end, body = asyncio.run(call(turn))
        assert body == b"".join(chunks) and gate.asked == [1]
        assert first < 0.5 and end >= 0.95  # the first bytes at once; the end once the snapshot is taken
        first, end, _ = asyncio.run(call(b'{"messages": [{"role": "user", "content": "no tools ran"}]}'))
        assert gate.asked == [1] and end < 0.5  # no tool results: nothing to wait for
    assert wait_for(lambda: len(sink.responses) == 2)
    assert [e.snapshot_asked for e in sink.requests] == [True, False]


def test_the_gate_holds_a_tool_calls_end_not_the_text_and_thinking_before_it(upstream, sink):
    """The agent can run a tool once the tool_use block ends: the thinking and text blocks before it
    (their ends included) reach it at once, the tool call's end once the snapshot is taken."""
    answer = {**message("unused"), "content": [
        {"type": "thinking", "thinking": "Write the file, then run the tests.", "signature": "sig-1"},
        {"type": "text", "text": "Writing app.py now."},
        {"type": "tool_use", "id": "toolu_01WRITE", "name": "Write", "input": {"file_path": "app.py"}}],
        "stop_reason": "tool_use"}
    chunks = message_to_sse(answer)
    upstream.replies = [{"chunks": chunks}]
    gate = SlowSnapshots(1.0)
    with Relay(upstream.url, sink, gate=gate) as relay:
        async def call(body: bytes) -> tuple[float, bytes, float, bytes]:
            t0 = time.monotonic()
            async with aiohttp.ClientSession() as s, s.post(relay.url + "/v1/messages", data=body,
                                                            headers=JSON) as resp:
                early = b""
                while b'"tool_use"' not in early:
                    early += await resp.content.readany()
                t1 = time.monotonic()
                rest = await resp.content.read()
            return t1 - t0, early, time.monotonic() - t0, rest

        turn = json.dumps({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}]}).encode()
        first, early, end, rest = asyncio.run(call(turn))
    assert early + rest == b"".join(chunks)
    assert first < 0.5 and end >= 0.95
    assert early.count(b"event: content_block_stop") == 2  # the thinking and the text ended at once
    # Held from the tool_use block's stop on (the bytes before its name went out: "event: ").
    assert rest.startswith(b'content_block_stop\ndata: {"type":"content_block_stop","index":2}')


def test_a_hooks_sync_is_answered_by_lit_never_relayed(upstream, sink):
    """/_lit/sync is the session's hooks asking the recorder to catch up: answered by the relay for
    its own session only, and never sent upstream (here no recorder is there to ask)."""
    with Relay(upstream.url, sink) as relay:
        relay.sync_session = "a0b1c2d3e4f5"
        status, _, body = raw(relay.url, path="/_lit/sync", headers={"Lit-Session": "a0b1c2d3e4f5"})
        assert (status, json.loads(body)) == (200, {"synced": False, "why": "the session's recorder stopped"})
        assert raw(relay.url, path="/_lit/sync", headers={"Lit-Session": "another"})[0] == 404
        assert raw(relay.url, path="/_lit/sync", headers={"Lit-Session": "a0b1c2d3e4f5",
                                                          "Origin": "https://example.com"})[0] == 403
    assert upstream.requests == [] and sink.requests == []
