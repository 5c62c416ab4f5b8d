"""A streamed media response lets go of the object when it ends, however it ends."""

from __future__ import annotations

import threading

import anyio
import pytest

from agentos_sessions.handlers.media import _StreamedObject
from agentos_sessions.persistence.media import StoredObject


@pytest.fixture
def anyio_backend():
    return "asyncio"


class SlowObject(StoredObject):
    """Two chunks: one at once, then one that takes until ``release`` is set."""

    def __init__(self):
        self.size, self.start, self.end, self.partial = 2, 0, 1, False
        self.release = threading.Event()
        self.reads, self.closed = 0, False

    def read(self) -> bytes:
        self.reads += 1
        if self.reads == 1:
            return b"a"
        if self.reads == 2:
            self.release.wait(10)
            return b"b"
        return b""

    def close(self) -> None:
        self.closed = True


SCOPE = {"type": "http", "asgi": {"spec_version": "2.3"}}


async def _never_disconnects():
    await anyio.sleep_forever()


@pytest.mark.anyio
async def test_a_response_sent_whole_closes_the_object():
    stored = SlowObject()
    stored.release.set()
    sent = []

    async def send(message):
        sent.append(message)

    await _StreamedObject(stored, status_code=200, headers={"Content-Length": "2"})(SCOPE, _never_disconnects, send)
    assert [message.get("body") for message in sent] == [None, b"a", b"b", b""]
    assert stored.closed


@pytest.mark.anyio
async def test_a_client_that_goes_away_mid_object_has_the_object_closed():
    stored = SlowObject()
    threading.Timer(0.5, stored.release.set).start()
    sent = []

    async def send(message):
        sent.append(message)

    async def disconnects():
        await anyio.sleep(0.05)
        return {"type": "http.disconnect"}

    await _StreamedObject(stored, status_code=200, headers={"Content-Length": "2"})(SCOPE, disconnects, send)
    # The read under way ends (a thread is not interrupted) and its chunk goes, but the response
    # stops there, unfinished; the object is closed all the same.
    assert ([message.get("body") for message in sent], stored.closed) == ([None, b"a", b"b"], True)


@pytest.mark.anyio
async def test_a_cancelled_response_closes_the_object():
    stored = SlowObject()
    threading.Timer(0.5, stored.release.set).start()

    async def send(message):
        pass

    with anyio.move_on_after(0.05):
        await _StreamedObject(stored, status_code=200, headers={})(SCOPE, _never_disconnects, send)
    assert stored.closed
