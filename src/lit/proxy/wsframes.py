"""WebSocket messages out of the bytes the relay copied after a 101 (RFC 6455), decompressed when
the connection agreed on permessage-deflate (RFC 7692). The relay moves bytes only; this reads a
copy of them, one direction at a time, fed in whatever pieces they came in.

Nothing here raises on bad input: bytes that are not frames end the reading of that direction.
"""

from __future__ import annotations

import struct
import zlib

TEXT, BINARY, CLOSE = 0x1, 0x2, 0x8
_TAIL = b"\x00\x00\xff\xff"  # what a deflating sender strips from the end of each message


def deflate_settings(response_headers: dict[str, str], from_client: bool) -> tuple[bool, bool]:
    """(compressed, no context takeover) for one direction, from the 101's Sec-WebSocket-Extensions."""
    value = next((v for k, v in response_headers.items() if k.lower() == "sec-websocket-extensions"), "")
    for extension in value.split(","):
        params = [p.strip().lower() for p in extension.split(";")]
        if params and params[0] == "permessage-deflate":
            side = "client" if from_client else "server"
            return True, f"{side}_no_context_takeover" in params
    return False, False


class MessageReader:
    """Feed one direction's bytes; get back its complete messages as (opcode, payload)."""

    def __init__(self, *, deflate: bool = False, no_context_takeover: bool = False, limit: int = 256 * 1024**2):
        self._buffer = bytearray()
        self._parts: list[bytes] = []
        self._opcode = 0
        self._compressed = False
        self._deflate, self._fresh = deflate, no_context_takeover
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS) if deflate else None
        self._limit = limit
        self.broken: str | None = None  # why this direction can no longer be read

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self.broken:
            return []
        self._buffer += data
        out: list[tuple[int, bytes]] = []
        while True:
            frame = self._frame()
            if frame is None:
                return out
            fin, rsv1, opcode, payload = frame
            if opcode >= 0x8:  # ping, pong, close: may come between the fragments of a message
                if opcode == CLOSE:
                    out.append((CLOSE, payload))
                continue
            if opcode:
                self._opcode, self._compressed, self._parts = opcode, bool(rsv1) and self._deflate, []
            self._parts.append(payload)
            if sum(len(p) for p in self._parts) > self._limit:
                self.broken = "a message over the size limit"
                return out
            if fin:
                message = b"".join(self._parts)
                self._parts = []
                if self._compressed:
                    try:
                        message = self._inflate(message)
                    except zlib.error as e:
                        self.broken = f"cannot inflate a message ({e})"
                        return out
                out.append((self._opcode, message))

    def _inflate(self, message: bytes) -> bytes:
        assert self._inflater is not None
        data = self._inflater.decompress(message + _TAIL)
        if self._fresh:
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        return data

    def _frame(self) -> tuple[bool, bool, int, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        length, pos = b1 & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, pos = struct.unpack_from(">H", buf, 2)[0], 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, pos = struct.unpack_from(">Q", buf, 2)[0], 10
        masked = bool(b1 & 0x80)
        key = bytes(buf[pos:pos + 4]) if masked else b""
        pos += 4 if masked else 0
        if len(buf) < pos + length:
            if length > self._limit:
                self.broken = "a frame over the size limit"
            return None
        payload = bytes(buf[pos:pos + length])
        del buf[:pos + length]
        if masked and length:
            payload = _unmask(payload, key)
        return bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, payload


def _unmask(data: bytes, key: bytes) -> bytes:
    # One big-integer XOR instead of a Python loop over each byte.
    n = len(data)
    mask = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
