"""Each response leaves in one write: uvicorn's httptools protocol over a turn-buffered transport."""

from __future__ import annotations

import asyncio

from uvicorn.config import Config
from uvicorn.server import ServerState

from agentos_sessions.server import OneSendHttpToolsProtocol, TurnBufferedTransport


class RecordingTransport(asyncio.Transport):
    """A socket's transport that keeps what is written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 7777)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _turns(count: int = 2):
    """Let the event loop run ``count`` turns."""

    async def turns():
        for _ in range(count):
            await asyncio.sleep(0)

    return turns()


def test_writes_in_one_turn_leave_as_one_write_at_its_end():
    async def scenario():
        socket = RecordingTransport()
        transport = TurnBufferedTransport(socket, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"")
        transport.write(b'{"a":1}')
        held = list(socket.writes)
        await _turns()
        transport.write(b"next")
        await _turns()
        return held, socket.writes

    held, written = asyncio.run(scenario())
    assert held == []
    assert written == [b'HTTP/1.1 200 OK\r\n\r\n{"a":1}', b"next"]


def test_closing_sends_what_is_held_first_and_aborting_drops_it():
    async def scenario():
        loop = asyncio.get_running_loop()
        closed, aborted = RecordingTransport(), RecordingTransport()
        closing = TurnBufferedTransport(closed, loop)
        closing.write(b"last words")
        closing.close()
        dropping = TurnBufferedTransport(aborted, loop)
        dropping.write(b"never sent")
        dropping.abort()
        await _turns()
        return closed, aborted

    closed, aborted = asyncio.run(scenario())
    assert (closed.writes, closed.closed) == ([b"last words"], True)
    assert (aborted.writes, aborted.aborted) == ([], True)


def test_a_large_body_is_not_held_back():
    async def scenario():
        socket = RecordingTransport()
        transport = TurnBufferedTransport(socket, asyncio.get_running_loop())
        transport.write(b"h" * 100)
        transport.write(b"b" * 70_000)
        at_once = list(socket.writes)
        await _turns()
        return at_once, socket.writes

    at_once, written = asyncio.run(scenario())
    assert at_once == [b"h" * 100 + b"b" * 70_000]
    assert written == at_once


async def _app(scope, receive, send):
    await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"15")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})


def test_uvicorn_sends_a_response_in_one_write():
    async def scenario():
        config = Config(app=_app, loop="asyncio", log_config=None)
        config.load()
        protocol = OneSendHttpToolsProtocol(config, ServerState(), app_state={})
        socket = RecordingTransport()
        protocol.connection_made(socket)
        for _ in range(2):
            protocol.data_received(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
            await _turns(10)
        protocol.connection_lost(None)
        return socket.writes

    response = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{"status":"ok"}'
    assert asyncio.run(scenario()) == [response, response]
