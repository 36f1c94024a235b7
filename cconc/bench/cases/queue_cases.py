"""Benchmark cases for cconc.queue."""
from itertools import repeat

from cconc.bench import case


def _put_get(make):
    def build(m):
        q = make(m.queue)

        def run(n):
            put, get = q.put, q.get
            for _ in repeat(None, n):
                put(1)
                get()

        yield run

    return build


case("Queue put+get")(_put_get(lambda queue: queue.Queue()))
case("LifoQueue put+get")(_put_get(lambda queue: queue.LifoQueue()))
case("SimpleQueue put+get")(_put_get(lambda queue: queue.SimpleQueue()))


@case("Queue(10) put_nowait+get_nowait")
def queue_nowait(m):
    q = m.queue.Queue(10)

    def run(n):
        put, get = q.put_nowait, q.get_nowait
        for _ in repeat(None, n):
            put(1)
            get()

    yield run


@case("Queue put+get+task_done")
def queue_task_done(m):
    q = m.queue.Queue()

    def run(n):
        put, get, done = q.put, q.get, q.task_done
        for _ in repeat(None, n):
            put(1)
            get()
            done()

    yield run


@case("PriorityQueue put+get, 100 queued")
def priority_put_get(m):
    q = m.queue.PriorityQueue()
    for i in range(100):
        q.put((i * 7919) % 100)

    def run(n):
        put, get = q.put, q.get
        for i in range(n):
            put(i % 100)
            get()

    yield run


def _ping_pong(make):
    def build(m):
        def run(n):
            ping, pong = make(m.queue), make(m.queue)

            def partner():
                get, put = ping.get, pong.put
                for _ in repeat(None, n):
                    put(get())

            t = m.threading.Thread(target=partner)
            t.start()
            put, get = ping.put, pong.get
            for _ in repeat(None, n):
                put(1)
                get()
            t.join()

        yield run

    return build


case("Queue ping-pong, 2 threads", unit="round trip")(_ping_pong(lambda queue: queue.Queue()))
case("SimpleQueue ping-pong, 2 threads", unit="round trip")(_ping_pong(lambda queue: queue.SimpleQueue()))


def _producers_consumers(nthreads):
    def build(m):
        def run(n):
            q = m.queue.Queue(1000)
            per = max(1, n // nthreads)

            def produce():
                put = q.put
                for _ in repeat(None, per):
                    put(1)

            def consume():
                get = q.get
                for _ in repeat(None, per):
                    get()

            threads = [m.threading.Thread(target=f) for f in (produce, consume) for _ in range(nthreads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        yield run

    return build


case("Queue(1000) 1 producer -> 1 consumer", unit="item")(_producers_consumers(1))
case("Queue(1000) 2 producers -> 2 consumers", unit="item")(_producers_consumers(2))
case("Queue(1000) 4 producers -> 4 consumers", unit="item")(_producers_consumers(4))


@case("Queue get_many(100) vs get loop, 100 items", unit="100 items")
def queue_get_many(m):
    q = m.queue.Queue()
    items = list(range(100))
    # The stdlib has no batch API: its side is the loop a program would write.
    get_many = getattr(q, "get_many", None)
    if get_many is None:
        def get_many(k):
            get = q.get
            return [get() for _ in range(min(k, q.qsize()))]

    def run(n):
        put = q.put
        for _ in repeat(None, n):
            for x in items:
                put(x)
            get_many(100)

    yield run
