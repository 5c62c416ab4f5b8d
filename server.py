"""How responses leave the server: uvicorn's httptools protocol, each response in one send.

uvicorn writes a response's status line and headers to the socket as soon as the app starts the
response, then its body: two sends, so two TCP segments (asyncio sets TCP_NODELAY), for a body of
a few hundred bytes. On loopback under load the kernel's work for each send was a fifth of the
server's CPU on the get of a session. Here a connection's writes made during one turn of the event
loop go out together, at the end of that turn: one send per response, the same bytes in the same
order. uvicorn takes the protocol class through its documented ``http`` option.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Past this many bytes held, a turn's writes go out at once (a large body is not held back).
_HOLD_AT_MOST = 64 * 1024


class TurnBufferedTransport:
    """A connection's transport whose writes in one turn of the event loop go out as one write.

    Everything but writing and closing is the transport's own; closing sends what is held first.
    """

    __slots__ = ("_held", "_held_size", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_size = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(data)
        self._held_size += len(data)
        if self._held_size > _HOLD_AT_MOST:
            self._flush()

    def writelines(self, lines) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if not self._held:
            return
        held = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held = []
        self._held_size = 0
        if not self._transport.is_closing():
            self._transport.write(held)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_size

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._held_size = 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneSendHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`TurnBufferedTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(TurnBufferedTransport(transport, self.loop))  # type: ignore[arg-type]
