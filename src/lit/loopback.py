"""Answer only this machine: the Host and Origin rule of lit's local servers (`lit serve`).

A server on 127.0.0.1 is still reachable from any web page the user opens: by DNS rebinding (a name
the attacker controls resolves to 127.0.0.1, so the browser sends `Host: evil.example`) or by a
cross-site request (`fetch` from another origin). So a request is answered only when its `Host`
is a loopback name with the server's port, and, when it carries an `Origin` (or the browser's
`Sec-Fetch-Site` says another site asked outside a navigation), only when that is the server's own
origin. Refused requests get a one-line 403 and reach nothing behind the guard.

A server asked to listen on another address (`--host 0.0.0.0`) is meant to be reached by other
names: the Host rule is off there (the caller says so once), the Origin rule stays.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    """Is `host` (an address or a name to listen on) this machine only?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(port: int, listen: str = "127.0.0.1") -> set[str]:
    listen = f"[{listen}]" if ":" in listen and not listen.startswith("[") else listen
    names = (*LOOPBACK_NAMES, listen.lower())
    # On port 80 a browser names no port.
    return {f"{name}:{port}" for name in names} | (set(names) if port == 80 else set())


def refusal(headers: dict[str, str], port: int, *, listen: str = "127.0.0.1", any_host: bool = False) -> str | None:
    """Why a request with these (lower-cased) headers is refused, or None to answer it."""
    host = headers.get("host", "").lower()
    if not any_host and host not in allowed_hosts(port, listen):
        return f"Host {host or '(none)'} is not this machine (answers 127.0.0.1, localhost and [::1] on port {port})"
    origin = headers.get("origin")
    if origin is not None and origin.lower() != f"http://{host}":
        return f"a request from another site ({origin})"
    site, mode = headers.get("sec-fetch-site"), headers.get("sec-fetch-mode")
    if site in ("cross-site", "same-site") and mode != "navigate":
        return "a request from another site"
    return None


def guard(app: ASGIApp, port: int, listen: str = "127.0.0.1") -> ASGIApp:
    """`app` behind the Host and Origin rule, for a server listening on `listen`:`port` (the Host
    rule is off when `listen` is not a loopback address: see the module's docstring)."""
    any_host = not is_loopback(listen)

    async def guarded(scope: Scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        why = refusal(headers, port, listen=listen, any_host=any_host)
        if why is None:
            await app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = f"lit: refused: {why}\n".encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return guarded
