"""The relay as a socket cuts the bytes: a request's head and the first piece of its body in one
read, a head's blank line split across reads, a second request in the piece that ends the first
body, an answer's head in pieces after an interim answer. Each test checks every byte arrives on
both sides, with what the relay does besides relaying (the retry on a stale pooled connection,
100 Continue, chunked bodies, the gate's search for tool results)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

from lit.proxy.relay import Relay
from lit.scripted import wait_for

ANSWER = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)


def body_of(size: int, marker: bytes = b"") -> bytes:
    """A JSON body of `size` bytes, `marker` near its start."""
    start = b'{"messages": [' + marker + b'], "pad": "'
    return start + b"x" * (size - len(start) - 2) + b'"}'


def head_of(port: int, body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n%s\r\n" % (port, len(body), extra))


class Reader:
    """Reads HTTP messages off a socket, keeping what came after the last one."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer = sock, b""

    def _more(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError
        self.buffer += data

    def head(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head + b"\r\n\r\n"

    def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._more()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def message(self) -> tuple[bytes, bytes]:
        """A head and its body (Content-Length or chunked, kept as sent)."""
        head = self.head()
        lines = [ln.lower() for ln in head.split(b"\r\n")]
        if b"transfer-encoding: chunked" in lines:
            while b"\r\n0\r\n\r\n" not in b"\r\n" + self.buffer:
                self._more()
            end = (b"\r\n" + self.buffer).index(b"\r\n0\r\n\r\n") + 5
            return head, self.exactly(end)
        length = next((int(ln.split(b":")[1]) for ln in lines if ln.startswith(b"content-length:")), 0)
        return head, self.exactly(length)


class RawUpstream:
    """An upstream on a plain socket: `serve(reader, number)` runs for each connection it takes
    (numbered from 0) and keeps each request it reads in `requests`."""

    def __init__(self, serve: Callable[[Reader, int], None]):
        self.serve = serve
        self.requests: list[tuple[bytes, bytes]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        number = 0
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(sock, number), daemon=True).start()
            number += 1

    def _run(self, sock: socket.socket, number: int) -> None:
        with sock:
            try:
                self.serve(Reader(sock), number)
            except (EOFError, OSError):
                pass

    def read(self, reader: Reader) -> tuple[bytes, bytes]:
        message = reader.message()
        self.requests.append(message)
        return message

    def close(self) -> None:
        self.listener.close()


def answering() -> RawUpstream:
    """An upstream that answers OK to every request on every connection, keeping each request."""
    def serve(reader: Reader, number: int) -> None:
        while True:
            up.read(reader)
            reader.sock.sendall(OK)

    up = RawUpstream(serve)
    return up


def agent(relay: Relay) -> tuple[socket.socket, Reader]:
    sock = socket.create_connection(("127.0.0.1", relay.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, Reader(sock)


def send_cut(sock: socket.socket, message: bytes, cut: int) -> None:
    """`message` in two sends, 50 ms apart: the relay reads the bytes before `cut` on their own."""
    sock.sendall(message[:cut])
    time.sleep(0.05)
    sock.sendall(message[cut:])


def answered(reader: Reader) -> bytes:
    head, body = reader.message()
    assert head.startswith(b"HTTP/1.1 200 ") and body == ANSWER
    return head


def test_a_head_and_its_bodys_first_piece_in_one_read_reach_the_upstream_whole(sink):
    up = answering()
    bodies = [body_of(300_000), body_of(40_000), body_of(1_400_000)]
    with Relay(up.url, sink) as relay:
        sock, reader = agent(relay)
        for body in bodies:  # the first on a new upstream connection, the others on the pooled one
            sock.sendall(head_of(relay.port, body) + body)
            answered(reader)
        # The spool's records are written while the relay's loop runs: waited for before it stops.
        assert wait_for(lambda: len(sink.responses) == 3)
        sock.close()
    up.close()
    assert [b for _, b in up.requests] == bodies
    assert [e.request_body for e in sink.requests] == bodies


def test_a_heads_blank_line_split_across_two_reads(sink):
    up = answering()
    body = body_of(200_000)
    with Relay(up.url, sink) as relay:
        sock, reader = agent(relay)
        for _ in range(2):
            message = head_of(relay.port, body) + body
            send_cut(sock, message, message.index(b"\r\n\r\n") + 3)  # ...\r\n\r | \n and the body
            answered(reader)
        sock.close()
    up.close()
    assert [b for _, b in up.requests] == [body, body]


def test_a_second_request_in_the_piece_that_ends_the_first_ones_body(sink):
    """Pipelined: the end of one body and the next request (its head, its body) in one read, and a
    whole small request among the body bytes that came with the head before it."""
    up = answering()
    big, small, tiny = body_of(300_000), body_of(20_000), body_of(100)
    with Relay(up.url, sink) as relay:
        sock, reader = agent(relay)
        sock.sendall(head_of(relay.port, tiny) + tiny)  # an upstream connection in the pool
        answered(reader)
        first = head_of(relay.port, big) + big
        send_cut(sock, first + head_of(relay.port, small) + small, len(first) - 1000)
        answered(reader)
        answered(reader)
        # A head, a body of 20 KB and the next request whole, in one write.
        sock.sendall(head_of(relay.port, small) + small + head_of(relay.port, tiny) + tiny)
        answered(reader)
        answered(reader)
        # The spool's records are written while the relay's loop runs: waited for before it stops.
        assert wait_for(lambda: len(sink.responses) == 5)
        sock.close()
    up.close()
    assert [b for _, b in up.requests] == [tiny, big, small, small, tiny]


def test_a_pooled_connection_the_upstream_closed_is_retried_with_the_whole_body(sink):
    """The upstream's idle close can cross a call sent on the pooled connection: the call goes again
    on a new one, its body whole."""
    def serve(reader: Reader, number: int) -> None:
        up.read(reader)
        reader.sock.sendall(OK)
        if number == 0:
            up.read(reader)  # the second call: read, never answered, the connection closed
            reader.sock.shutdown(socket.SHUT_RDWR)
            return
        while True:
            up.read(reader)
            reader.sock.sendall(OK)

    up = RawUpstream(serve)
    first, second = body_of(100), body_of(600_000)
    with Relay(up.url, sink) as relay:
        sock, reader = agent(relay)
        sock.sendall(head_of(relay.port, first) + first)
        answered(reader)
        sock.sendall(head_of(relay.port, second) + second)
        answered(reader)
        # The spool's records are written while the relay's loop runs: waited for before it stops.
        assert wait_for(lambda: len(sink.responses) == 2)
        sock.close()
    up.close()
    assert [b for _, b in up.requests] == [first, second, second]
    assert [e.request_body for e in sink.requests] == [first, second]


def test_a_chunked_body_that_came_with_its_head(sink):
    up = answering()
    piece = body_of(50_000)
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(piece), piece, len(piece), piece)
    with Relay(up.url, sink) as relay:
        sock, reader = agent(relay)
        for _ in range(2):
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\ncontent-type: application/json\r\n"
                         b"transfer-encoding: chunked\r\n\r\n%s" % (relay.port, chunked))
            answered(reader)
        sock.close()
    up.close()
    assert [b for _, b in up.requests] == [chunked, chunked]


def test_expect_continue_with_the_body_sent_at_once(sink):
    up = answering()
    body = body_of(100_000)
    with Relay(up.url, sink) as relay:
        sock, reader = agent(relay)
        for _ in range(2):
            sock.sendall(head_of(relay.port, body, b"Expect: 100-continue\r\n") + body)
            assert reader.head() == b"HTTP/1.1 100 Continue\r\n\r\n"
            answered(reader)
        sock.close()
    up.close()
    assert [b for _, b in up.requests] == [body, body]
    assert all(b"expect" not in h.lower() for h, _ in up.requests)


class Snapshots:
    """A gate with nothing to wait for, which remembers which calls asked."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def open(self, seq: int) -> asyncio.Future | None:
        self.asked.append(seq)
        return None

    def sync(self, number: int) -> asyncio.Future | None:
        return None


def test_tool_results_open_the_gate_wherever_they_are_in_the_body(sink):
    """In the bytes that came with the head, far in the body, split across two reads, or as an
    OpenAI function call's output; a body without any never opens it."""
    up = answering()
    gate = Snapshots()
    result = b'{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}'
    output = b'{"type": "function_call_output", "call_id": "c", "output": "ok"}'
    far = body_of(900_000)
    far = far[:800_000] + result + far[800_000 + len(result):]
    bodies = [body_of(100), body_of(300_000, result), body_of(300_000), far, body_of(300_000, output)]
    split = body_of(300_000, b'{"type": "function_call_output"}')
    with Relay(up.url, sink, gate=gate) as relay:
        sock, reader = agent(relay)
        for body in bodies:
            sock.sendall(head_of(relay.port, body) + body)
            answered(reader)
        message = head_of(relay.port, split) + split
        send_cut(sock, message, message.index(b"function_call") + 4)  # "func" | "tion_call_output"
        answered(reader)
        sock.close()
    up.close()
    assert gate.asked == [2, 4, 5, 6]


def test_the_recorder_is_asked_for_the_snapshot_once_the_body_is_upstream_not_during_it(sink):
    """A tool result seen early in a body: the recorder is asked only once the body is all sent on,
    when the agent and lit wait for the answer (during the upload it would take a core from them)."""
    up = answering()
    gate = Snapshots()
    result = b'{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}'
    body = body_of(600_000, result)
    with Relay(up.url, sink, gate=gate) as relay:
        sock, reader = agent(relay)
        message = head_of(relay.port, body) + body
        sock.sendall(message[:300_000])  # the tool result and half the body
        time.sleep(0.2)
        assert gate.asked == []
        sock.sendall(message[300_000:])
        answered(reader)
        assert gate.asked == [1]
        sock.close()
    up.close()


def test_an_answers_head_split_across_reads_after_an_interim_answer(sink):
    """103 Early Hints goes to the agent as it came; the final head, cut in two, then the body."""
    def serve(reader: Reader, number: int) -> None:
        while True:
            up.read(reader)
            reader.sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
            time.sleep(0.02)
            reader.sock.sendall(OK[:30])
            time.sleep(0.05)
            reader.sock.sendall(OK[30:-5])
            time.sleep(0.02)
            reader.sock.sendall(OK[-5:])

    up = RawUpstream(serve)
    body = body_of(100_000)
    with Relay(up.url, sink) as relay:
        sock, reader = agent(relay)
        for _ in range(2):
            sock.sendall(head_of(relay.port, body) + body)
            assert reader.head() == b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            answered(reader)
        # The spool's records are written while the relay's loop runs: waited for before it stops.
        assert wait_for(lambda: len(sink.responses) == 2)
        sock.close()
    up.close()
    assert [e.response_body for e in sink.responses] == [ANSWER, ANSWER]
