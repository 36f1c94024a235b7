"""Benchmark cases for cconc.selectors (DefaultSelector: epoll on Linux)."""
import asyncio
import socket
from itertools import repeat

from cconc.bench import SkipCase, case


@case("selectors select(0), 1000 fds / 100 ready")
def select_1000_100_ready(m):
    selectors = m.selectors
    sel = selectors.DefaultSelector()
    pairs = [socket.socketpair() for _ in range(500)]
    for i, (a, b) in enumerate(pairs):
        sel.register(a, selectors.EVENT_READ, i)
        sel.register(b, selectors.EVENT_READ, i)
    for a, b in pairs[:100]:
        b.send(b"x")  # a becomes readable

    def run(n):
        select = sel.select
        for _ in repeat(None, n):
            select(0)

    assert len(sel.select(0)) == 100
    yield run
    sel.close()
    for a, b in pairs:
        a.close()
        b.close()


@case("selectors register+unregister")
def register_unregister(m):
    selectors = m.selectors
    sel = selectors.DefaultSelector()
    a, b = socket.socketpair()
    data = object()

    def run(n):
        register, unregister, R = sel.register, sel.unregister, selectors.EVENT_READ
        for _ in repeat(None, n):
            register(a, R, data)
            unregister(a)

    yield run
    sel.close()
    a.close()
    b.close()


@case("selectors modify (events change)")
def modify_events(m):
    selectors = m.selectors
    sel = selectors.DefaultSelector()
    a, b = socket.socketpair()
    sel.register(a, selectors.EVENT_READ)

    def run(n):
        modify, R, W = sel.modify, selectors.EVENT_READ, selectors.EVENT_WRITE
        for _ in repeat(None, n // 2):
            modify(a, W)
            modify(a, R)
        if n % 2:
            modify(a, sel.get_key(a).events ^ (R | W))

    yield run
    sel.close()
    a.close()
    b.close()


@case("selectors modify (data only)")
def modify_data(m):
    selectors = m.selectors
    sel = selectors.DefaultSelector()
    a, b = socket.socketpair()
    sel.register(a, selectors.EVENT_READ)
    d1, d2 = object(), object()

    def run(n):
        modify, R = sel.modify, selectors.EVENT_READ
        for _ in repeat(None, n // 2):
            modify(a, R, d1)
            modify(a, R, d2)
        if n % 2:
            modify(a, R, None)

    yield run
    sel.close()
    a.close()
    b.close()


ECHO_CLIENTS = 100
ECHO_SIZE = 1024


class _EchoServer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class _EchoClient(asyncio.Protocol):
    """Sends ECHO_SIZE bytes, waits for all of them to come back, repeats `left` times."""

    def __init__(self):
        self.left = 0
        self.pending = 0
        self.done = None

    def connection_made(self, transport):
        self.transport = transport

    def start(self, count, done):
        self.left, self.done = count, done
        self._next()

    def _next(self):
        if self.left == 0:
            self.done(self)
            return
        self.left -= 1
        self.pending = ECHO_SIZE
        self.transport.write(ECHO_PAYLOAD)

    def data_received(self, data):
        self.pending -= len(data)
        if self.pending == 0:
            self._next()


ECHO_PAYLOAD = b"x" * ECHO_SIZE


@case("asyncio echo 1 KiB, 100 connections", unit="request", extra=("uvloop",))
def asyncio_echo(m):
    """One op = one 1 KiB request/response; 100 connections in flight at once.

    Protocol callbacks rather than streams, so that the event loop and its
    selector are a larger share of what is measured."""
    if m.name == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise SkipCase("uvloop is not installed") from None
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.SelectorEventLoop(m.selectors.DefaultSelector())

    async def setup():
        server = await loop.create_server(_EchoServer, "127.0.0.1", 0, backlog=ECHO_CLIENTS)
        port = server.sockets[0].getsockname()[1]
        clients = []
        for _ in range(ECHO_CLIENTS):
            transport, proto = await loop.create_connection(_EchoClient, "127.0.0.1", port)
            clients.append(proto)
        return server, clients

    server, clients = loop.run_until_complete(setup())

    async def many(n):
        per, extra = divmod(n, ECHO_CLIENTS)
        finished = loop.create_future()
        active = [c for i, c in enumerate(clients) if per + (i < extra)]
        remaining = [len(active)]

        def done(_client):
            remaining[0] -= 1
            if remaining[0] == 0:
                finished.set_result(None)

        for i, c in enumerate(active):
            c.start(per + (i < extra), done)
        await finished

    def run(n):
        loop.run_until_complete(many(n))

    yield run

    async def teardown():
        for c in clients:
            c.transport.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)

    loop.run_until_complete(teardown())
    loop.close()


@case("selectors get_key(fd)")
def get_key_fd(m):
    """What asyncio's add_reader/remove_reader ask first."""
    selectors = m.selectors
    sel = selectors.DefaultSelector()
    a, b = socket.socketpair()
    sel.register(a, selectors.EVENT_READ)
    fd = a.fileno()

    def run(n):
        get_key = sel.get_key
        for _ in repeat(None, n):
            get_key(fd)

    yield run
    sel.close()
    a.close()
    b.close()
