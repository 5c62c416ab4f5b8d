"""The PostgreSQL connection pool: sized as configured, a request waits for a connection in turn,
overflow and broken connections are closed on return. psycopg comes with tox -e pg."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.pg


class FakeConnection:
    """What the pool reads of a psycopg connection."""

    def __init__(self, number: int) -> None:
        from psycopg.pq import TransactionStatus

        self.number = number
        self.closed = False
        self.broken = False
        self.info = SimpleNamespace(transaction_status=TransactionStatus.IDLE)

    async def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"<connection {self.number}>"


@pytest.fixture
def pool_of():
    """A pool of FakeConnections; ``pool.opened`` lists every connection it opened."""
    from agentos_sessions.persistence.postgres import ConnectionPool

    def pool_of(size: int, overflow: int = 0, wait: float = 1.0):
        opened: list[FakeConnection] = []

        async def connect():
            opened.append(FakeConnection(len(opened)))
            return opened[-1]

        pool = ConnectionPool(connect, size=size, overflow=overflow, wait=wait)
        pool.opened = opened
        return pool

    return pool_of


def test_an_idle_connection_is_reused_before_another_is_opened(pool_of):
    pool = pool_of(size=2)

    async def scenario():
        first = await pool.get()
        pool.put(first)
        again = await pool.get()
        second = await pool.get()
        return first, again, second

    first, again, second = asyncio.run(scenario())
    assert again is first
    assert pool.opened == [first, second]


def test_with_every_connection_in_use_requests_wait_in_turn(pool_of):
    pool = pool_of(size=1)
    served: list[str] = []

    async def scenario():
        held = await pool.get()

        async def request(name):
            connection = await pool.get()
            served.append(name)
            pool.put(connection)

        waiting = [asyncio.create_task(request(name)) for name in ("a", "b", "c")]
        await asyncio.sleep(0.01)
        assert served == []
        pool.put(held)
        await asyncio.gather(*waiting)

    asyncio.run(scenario())
    assert served == ["a", "b", "c"]
    assert len(pool.opened) == 1


def test_a_request_that_waits_too_long_gives_up_and_the_next_is_served(pool_of):
    pool = pool_of(size=1, wait=0.05)

    async def scenario():
        held = await pool.get()
        with pytest.raises(TimeoutError):
            await pool.get()
        later = asyncio.create_task(pool.get())
        await asyncio.sleep(0)
        pool.put(held)
        return held, await later

    held, later = asyncio.run(scenario())
    assert later is held


def test_overflow_and_broken_connections_are_closed_on_return(pool_of):
    from psycopg.pq import TransactionStatus

    pool = pool_of(size=1, overflow=2)

    async def scenario():
        kept, overflow, broken = [await pool.get() for _ in range(3)]
        broken.broken = True
        for connection in (kept, overflow, broken):
            pool.put(connection)
        in_transaction = await pool.get()
        in_transaction.info.transaction_status = TransactionStatus.INTRANS
        pool.put(in_transaction)
        await asyncio.sleep(0)
        return kept, overflow, broken

    kept, overflow, broken = asyncio.run(scenario())
    assert (kept.closed, overflow.closed, broken.closed) == (True, True, True)
    assert len(pool.opened) == 3


def test_a_connection_that_cannot_be_opened_frees_its_place(pool_of):
    from agentos_sessions.persistence.postgres import ConnectionPool

    attempts = []

    async def refused():
        attempts.append(1)
        raise OSError("connection refused")

    pool = ConnectionPool(refused, size=1, overflow=0, wait=0.05)

    async def scenario():
        for _ in range(3):
            with pytest.raises(OSError):
                await pool.get()

    asyncio.run(scenario())
    assert len(attempts) == 3  # each request tried anew, none waited for a place never freed


def test_dropping_the_idle_connections_closes_them_and_the_next_request_opens_one(pool_of):
    pool = pool_of(size=2)

    async def scenario():
        first, second = await pool.get(), await pool.get()
        pool.put(first)
        pool.put(second)
        pool.drop_idle()
        fresh = await pool.get()
        await asyncio.sleep(0)
        return first, second, fresh

    first, second, fresh = asyncio.run(scenario())
    assert (first.closed, second.closed) == (True, True)
    assert fresh not in (first, second) and not fresh.closed


def test_closing_the_pool_closes_idle_connections_and_those_that_come_back(pool_of):
    pool = pool_of(size=2)

    async def scenario():
        idle, in_use = await pool.get(), await pool.get()
        pool.put(idle)
        await pool.close()
        pool.put(in_use)
        await asyncio.sleep(0)
        return idle, in_use

    idle, in_use = asyncio.run(scenario())
    assert (idle.closed, in_use.closed) == (True, True)


def test_a_returned_connection_goes_to_the_first_in_line_not_to_a_newcomer(pool_of):
    pool = pool_of(size=1)
    served: list[str] = []

    async def in_line():
        connection = await pool.get()
        served.append("in line")
        pool.put(connection)

    async def scenario():
        held = await pool.get()
        waiting = asyncio.create_task(in_line())
        await asyncio.sleep(0)
        pool.put(held)
        # A request that arrives in the same turn, before the one in line has resumed.
        connection = await pool.get()
        served.append("newcomer")
        pool.put(connection)
        await waiting

    asyncio.run(scenario())
    assert served == ["in line", "newcomer"]


def test_a_connection_handed_to_a_request_that_gave_up_goes_to_the_next_in_line(pool_of):
    pool = pool_of(size=1)

    async def scenario():
        held = await pool.get()
        giving_up = asyncio.create_task(pool.get())
        patient = asyncio.create_task(pool.get())
        await asyncio.sleep(0)
        pool.put(held)  # handed to giving_up, which is cancelled before it resumes
        giving_up.cancel()
        return held, await patient, giving_up

    held, got, giving_up = asyncio.run(scenario())
    assert giving_up.cancelled()
    assert got is held
