"""Benchmark cases for cconc.threading."""
from itertools import repeat

from cconc.bench import case


def acquire_release(lock):
    """run(n): n uncontended acquire() + release() pairs."""

    def run(n):
        acquire, release = lock.acquire, lock.release
        for _ in repeat(None, n):
            acquire()
            release()

    return run


def with_block(lock):
    """run(n): n empty `with lock:` blocks."""

    def run(n):
        for _ in repeat(None, n):
            with lock:
                pass

    return run


@case("Lock acquire+release")
def lock_acquire_release(m):
    yield acquire_release(m.threading.Lock())


@case("Lock with-block")
def lock_with(m):
    yield with_block(m.threading.Lock())


@case("RLock acquire+release")
def rlock_acquire_release(m):
    yield acquire_release(m.threading.RLock())


@case("Event wait when set")
def event_wait_set(m):
    event = m.threading.Event()
    event.set()

    def run(n):
        wait = event.wait
        for _ in repeat(None, n):
            wait()

    yield run


@case("Event set+clear")
def event_set_clear(m):
    event = m.threading.Event()

    def run(n):
        set_, clear = event.set, event.clear
        for _ in repeat(None, n):
            set_()
            clear()

    yield run


@case("Event ping-pong, 2 threads", unit="round trip")
def event_ping_pong(m):
    threading = m.threading

    def run(n):
        ping, pong = threading.Event(), threading.Event()

        def partner():
            for _ in repeat(None, n):
                ping.wait()
                ping.clear()
                pong.set()

        t = threading.Thread(target=partner)
        t.start()
        for _ in repeat(None, n):
            ping.set()
            pong.wait()
            pong.clear()
        t.join()

    yield run


@case("Semaphore acquire+release")
def semaphore_acquire_release(m):
    yield acquire_release(m.threading.Semaphore())


@case("BoundedSemaphore acquire+release")
def bounded_semaphore_acquire_release(m):
    yield acquire_release(m.threading.BoundedSemaphore())


@case("Condition with-block")
def condition_with(m):
    yield with_block(m.threading.Condition())


@case("Condition notify, no waiter")
def condition_notify_no_waiter(m):
    cond = m.threading.Condition()

    def run(n):
        notify = cond.notify
        with cond:
            for _ in repeat(None, n):
                notify()

    yield run


@case("Condition ping-pong, 2 threads", unit="round trip")
def condition_ping_pong(m):
    threading = m.threading

    def run(n):
        cond = threading.Condition()
        turn = [0]  # whose move: 0 this thread, 1 the partner

        def partner():
            with cond:
                for _ in repeat(None, n):
                    while turn[0] != 1:
                        cond.wait()
                    turn[0] = 0
                    cond.notify()

        t = threading.Thread(target=partner)
        t.start()
        with cond:
            for _ in repeat(None, n):
                turn[0] = 1
                cond.notify()
                while turn[0] != 0:
                    cond.wait()
        t.join()

    yield run


@case("Condition notify_all, 8 waiters", unit="round")
def condition_notify_all_herd(m):
    """Each round wakes 8 threads at once with notify_all(); each then takes the
    lock in turn (the wake-up herd that wait morphing serializes)."""
    threading = m.threading
    waiters = 8

    def run(n):
        cond = threading.Condition()
        generation, arrived = [0], [0]

        def waiter():
            seen = 0
            for _ in repeat(None, n):
                with cond:
                    while generation[0] == seen:
                        cond.wait()
                    seen = generation[0]
                    arrived[0] += 1
                    cond.notify_all()

        threads = [threading.Thread(target=waiter) for _ in range(waiters)]
        for t in threads:
            t.start()
        for r in range(n):
            with cond:
                generation[0] += 1
                cond.notify_all()
                while arrived[0] < (r + 1) * waiters:
                    cond.wait()
        for t in threads:
            t.join()

    yield run


@case("Barrier(2), 2 threads", unit="round")
def barrier_two_threads(m):
    threading = m.threading

    def run(n):
        barrier = threading.Barrier(2)

        def partner():
            wait = barrier.wait
            for _ in repeat(None, n):
                wait()

        t = threading.Thread(target=partner)
        t.start()
        wait = barrier.wait
        for _ in repeat(None, n):
            wait()
        t.join()

    yield run


@case("Thread start+join")
def thread_start_join(m):
    Thread = m.threading.Thread

    def target():
        pass

    def run(n):
        for _ in repeat(None, n):
            t = Thread(target=target)
            t.start()
            t.join()

    yield run


def _contended(make, nthreads):
    """n acquire+release pairs split over nthreads threads on one object: where
    a free-threaded build runs them truly in parallel."""

    def build(m):
        def run(n):
            obj = make(m.threading)
            per = max(1, n // nthreads)

            def work():
                acquire, release = obj.acquire, obj.release
                for _ in repeat(None, per):
                    acquire()
                    release()

            threads = [m.threading.Thread(target=work) for _ in range(nthreads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        yield run

    return build


case("Lock contended, 2 threads", unit="acquire+release")(_contended(lambda t: t.Lock(), 2))
case("Lock contended, 4 threads", unit="acquire+release")(_contended(lambda t: t.Lock(), 4))
case("Semaphore(2) contended, 4 threads", unit="acquire+release")(_contended(lambda t: t.Semaphore(2), 4))
