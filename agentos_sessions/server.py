"""Serving: uvicorn with our options, worker processes on SO_REUSEPORT sockets, and each
response in one send.

uvicorn writes a response's status line and headers to the socket as soon as the app starts the
response, then its body: two sends, so two TCP segments (asyncio sets TCP_NODELAY), for a body of
a few hundred bytes. On loopback under load the kernel's work for each send was a fifth of the
server's CPU on the get of a session. Here a connection's writes made during one turn of the event
loop go out together, at the end of that turn: one send per response, the same bytes in the same
order. uvicorn takes the protocol class through its documented ``http`` option.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from agentos_sessions.observability import logging_config

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


def uvicorn_options(host: str, port: int, *, access_log: bool) -> dict[str, Any]:
    """uvicorn's options for serving on host:port."""
    return {
        "host": host,
        "port": port,
        # asyncio's own event loop, not uvloop: under load uvloop answered some connections
        # late (p99 6-10x p50 against 1.3x, same throughput).
        "loop": "asyncio",
        # Access lines are ours (middleware/observe.py, JSON); uvicorn's own are off. The logging
        # configuration goes to uvicorn so that every worker process applies it too.
        "access_log": False,
        "log_config": logging_config(access_log_enabled=access_log),
        # uvicorn's httptools protocol, sending each response in one write.
        "http": OneSendHttpToolsProtocol,
    }


def serve(app_factory: Callable[[], Any], *, host: str, port: int, workers: int = 1, access_log: bool = True) -> int:
    """Serve the app ``app_factory`` builds until stopped; the exit code.

    With several workers each process builds its own app: ``app_factory`` is pickled into it
    (a module-level function, or a ``functools.partial`` of one with its settings)."""
    import uvicorn

    served = uvicorn_options(host, port, access_log=access_log)
    if workers == 1:
        uvicorn.run(app_factory(), **served)
        return 0
    return serve_workers(app_factory, workers, served)


def listen_problem(host: str, port: int) -> str | None:
    """Why ``serve`` could not listen on host:port (None: it can), said before anything starts."""
    # "::" is every address, IPv4 ones too, as the server's own sockets bind it.
    dualstack = host == "::" and socket.has_dualstack_ipv6()
    try:
        with socket.create_server((host, port), family=_address_family(host), dualstack_ipv6=dualstack):
            return None
    except socket.gaierror:
        return f"cannot listen on {host!r}: no such address (use an IP address of this machine or a host name)"
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is already in use: stop what listens there or choose another --port"
        if error.errno == errno.EACCES:
            return f"not allowed to listen on port {port} (below 1024 needs privileges): choose another --port"
        if error.errno == errno.EADDRNOTAVAIL:
            return f"cannot listen on {host}: not an address of this machine"
        return f"cannot listen on {host}:{port}: {error.strerror}"


def serve_workers(app_factory: Callable[[], Any], workers: int, options: dict) -> int:
    """uvicorn's supervisor over ``workers`` processes, each accepting on a socket of its own.

    Workers accepting from one shared socket did not share the load: whichever was awake took a
    burst of new connections and kept them (29 of wrk's 32 keep-alive connections on one of two
    workers). Here each worker listens on its own socket bound with SO_REUSEPORT to the same
    address, and the kernel hashes every new connection to one of them. uvicorn's Multiprocess
    still starts the workers, restarts one that dies and handles the signals; each worker builds
    its app with ``app_factory`` and, started again, binds its socket again.
    """
    from uvicorn import Config
    from uvicorn.supervisors import Multiprocess

    config = Config(app_factory, factory=True, workers=workers, **options)
    try:
        reserved = ReusePortSocket.bound(config.host, config.port)
    except OSError as error:
        print(
            f"agentos-sessions: --workers {workers} cannot listen on {config.host}:{config.port} "
            f"with SO_REUSEPORT: {error.strerror}",
            file=sys.stderr,
        )
        return 1
    with reserved:
        # The line uvicorn's own bind logs; --port 0 says the port the kernel chose.
        host = f"[{config.host}]" if ":" in config.host else config.host
        port = reserved.getsockname()[1]
        logging.getLogger("uvicorn.error").info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", host, port)
        Multiprocess(config, sockets=[reserved]).run()
    return 0


class ReusePortSocket(socket.socket):
    """A TCP socket bound with SO_REUSEPORT and never listening, which a worker receives as its own.

    uvicorn's Multiprocess pickles its sockets into each worker it spawns; this one arrives there
    as a new socket bound to the same address, which the worker's server listens on: listening
    puts it in the port's SO_REUSEPORT group, over which the kernel spreads the connections. The
    parent's socket keeps the port ours while workers restart. It must not listen: a listening
    member of the group that nobody accepts on would be dealt its share of the connections, which
    would hang.
    """

    @classmethod
    def bound(cls, host: str, port: int) -> ReusePortSocket:
        return _reuse_port_socket(cls, _address_family(host), (host, port))

    def __reduce__(self):
        return _worker_socket, (self.family, self.getsockname())


def _address_family(host: str) -> socket.AddressFamily:
    """IPv6 for an IPv6 address (it has colons), IPv4 for any other address or host name."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _reuse_port_socket(kind: type[socket.socket], family: int, address: tuple) -> socket.socket:
    """A socket of ``kind`` bound to ``address`` with SO_REUSEPORT (and SO_REUSEADDR, as uvicorn's).

    Its protocol is TCP, not 0 (``socket(family)``, as uvicorn makes its own): asyncio sets
    TCP_NODELAY only on connections of a TCP socket, and without it every response (headers and
    body are two writes) waited ~40 ms for a delayed ACK, capping a worker near 700 requests/s.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError(errno.ENOPROTOOPT, "this system has no SO_REUSEPORT (Linux has)")
    sock = kind(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _worker_socket(family: int, address: tuple) -> socket.socket:
    """In a worker process, as it starts: its own socket beside the parent's (see ReusePortSocket)."""
    from uvicorn.config import STARTUP_FAILURE

    try:
        return _reuse_port_socket(socket.socket, family, address)
    except OSError as error:
        # Before the worker's logging is set up. This exit code stops the supervisor, which
        # would otherwise start the worker again, and again.
        print(f"agentos-sessions: a worker cannot listen on {address}: {error.strerror}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
