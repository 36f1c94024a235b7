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


@case("Lock acquire+release")
def lock_acquire_release(m):
    yield acquire_release(m.threading.Lock())


@case("Lock with-block")
def lock_with(m):
    lock = m.threading.Lock()

    def run(n):
        for _ in repeat(None, n):
            with lock:
                pass

    yield run


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
