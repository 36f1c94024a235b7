"""cconc.selectors against the stdlib's selectors: every test body runs on both
(the `selectors_mod` fixture) and on each selector class both of them have."""
import asyncio
import collections.abc
import errno
import gc
import itertools
import os
import resource
import select
import selectors as std_selectors
import signal
import socket
import sys
import threading
import time

import pytest

import cconc.selectors as cc_selectors
from helpers import assert_no_memory_growth, interrupt_main_after, run_in_fork, start_threads

CLASS_NAMES = [n for n in ("SelectSelector", "PollSelector", "EpollSelector", "KqueueSelector", "DefaultSelector")
               if hasattr(std_selectors, n) and hasattr(cc_selectors, n)]
POLL_LIKE = [n for n in ("PollSelector", "EpollSelector") if n in CLASS_NAMES]

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=CLASS_NAMES)
def cls_name(request):
    return request.param


@pytest.fixture
def sel_cls(selectors_mod, cls_name):
    return getattr(selectors_mod, cls_name)


@pytest.fixture
def sel(sel_cls):
    s = sel_cls()
    yield s
    s.close()


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def backend(sel_cls):
    """The stdlib class this one mirrors, by name (DefaultSelector resolved)."""
    std = getattr(std_selectors, sel_cls.__name__)
    return std.__name__


# ---------------------------------------------------------------- basics


def test_module_namespace(selectors_mod):
    public = {n for n in dir(std_selectors) if not n.startswith("_")}
    assert public <= set(dir(selectors_mod))
    assert selectors_mod.EVENT_READ is std_selectors.EVENT_READ
    assert selectors_mod.EVENT_WRITE is std_selectors.EVENT_WRITE
    assert selectors_mod.SelectorKey is std_selectors.SelectorKey
    assert selectors_mod.BaseSelector is std_selectors.BaseSelector
    assert selectors_mod._fileobj_to_fd is std_selectors._fileobj_to_fd
    assert selectors_mod.DefaultSelector.__name__ == std_selectors.DefaultSelector.__name__


def test_register_get_key_unregister(selectors_mod, sel, pair):
    a, b = pair
    data = object()
    key = sel.register(a, selectors_mod.EVENT_READ, data)
    assert type(key) is std_selectors.SelectorKey
    assert key == (a, a.fileno(), selectors_mod.EVENT_READ, data)
    assert key.data is data and key.fileobj is a
    assert sel.get_key(a) is key
    assert sel.get_key(a.fileno()) is key
    assert isinstance(sel, std_selectors.BaseSelector)
    key2 = sel.register(b.fileno(), selectors_mod.EVENT_WRITE)
    assert key2.fileobj == b.fileno() and key2.data is None
    assert sel.unregister(a) is key
    with pytest.raises(KeyError):
        sel.get_key(a)
    assert sel.unregister(b) is key2
    assert len(sel.get_map()) == 0


def test_keywords_and_signature(selectors_mod, sel, pair):
    a, b = pair
    key = sel.register(fileobj=a, events=selectors_mod.EVENT_READ, data="d")
    assert key.data == "d"
    key = sel.modify(fileobj=a, events=selectors_mod.EVENT_WRITE, data="e")
    assert key.events == selectors_mod.EVENT_WRITE and key.data == "e"
    assert sel.select(timeout=0) == [(key, selectors_mod.EVENT_WRITE)]
    with pytest.raises(TypeError):
        sel.register(a)
    with pytest.raises(TypeError):
        sel.register(a, 1, None, None)
    with pytest.raises(TypeError):
        sel.select(0, 1)
    with pytest.raises(TypeError):
        sel.select(bogus=1)
    with pytest.raises(TypeError):
        sel.unregister()


def test_readiness_socketpair(selectors_mod, sel, pair):
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    a, b = pair
    ka = sel.register(a, R | W, "a")
    kb = sel.register(b, R, "b")
    assert sel.select(0) == [(ka, W)]
    b.send(b"x")
    ready = dict((k.data, ev) for k, ev in sel.select(0))
    assert ready == {"a": R | W}
    a.recv(1)
    a.send(b"y")
    ready = dict((k.data, ev) for k, ev in sel.select(0))
    assert ready == {"a": W, "b": R}


def test_readiness_pipe(selectors_mod, sel):
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    r, w = os.pipe()
    try:
        kr = sel.register(r, R)
        kw = sel.register(w, W)
        assert sel.select(0) == [(kw, W)]
        os.write(w, b"x")
        assert sorted(sel.select(0), key=lambda kv: kv[0].fd) == sorted([(kr, R), (kw, W)], key=lambda kv: kv[0].fd)
        os.read(r, 1)
        sel.unregister(w)
        os.close(w)
        w = None
        # EOF: the read end reports READ (POLLHUP is masked to what was registered)
        assert sel.select(0) == [(kr, R)]
    finally:
        os.close(r)
        if w is not None:
            os.close(w)


def test_hangup_reports_registered_events(selectors_mod, sel, pair):
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    a, b = pair
    key = sel.register(a, R | W)
    b.close()
    ready = sel.select(0)
    assert len(ready) == 1 and ready[0][0] is key
    assert ready[0][1] & R


def test_modify(selectors_mod, sel, pair):
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    a, b = pair
    d1, d2 = object(), object()
    k1 = sel.register(a, R, d1)
    # same events, same data: the very same key
    assert sel.modify(a, R, d1) is k1
    # data only
    k2 = sel.modify(a, R, d2)
    assert k2.data is d2 and k2.events == R and k2.fileobj is a
    assert sel.get_key(a) is k2
    # events
    k3 = sel.modify(a, W, d2)
    assert k3.events == W and k3.data is d2
    assert sel.select(0) == [(k3, W)]
    k4 = sel.modify(a, R)
    assert k4.data is None
    assert sel.select(0) == []
    b.send(b"x")
    assert sel.select(0) == [(k4, R)]
    with pytest.raises(KeyError, match="is not registered"):
        sel.modify(b, R)
    assert len(sel.get_map()) == 1


def test_results_follow_key_changes(selectors_mod, sel, pair):
    """Repeated selects on a fd that stays ready see every change of its key."""
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    a, b = pair
    b.send(b"x")
    k = sel.register(a, R | W, 1)
    for _ in range(2):
        assert sel.select(0) == [(k, R | W)]
    k = sel.modify(a, R | W, 2)
    assert [(key.data, ev) for key, ev in sel.select(0)] == [(2, R | W)]
    k = sel.modify(a, R, 2)
    assert sel.select(0) == [(k, R)] and sel.select(0)[0][0] is k
    sel.unregister(a)
    assert sel.select(0) == []
    k = sel.register(a, W, 3)
    assert sel.select(0) == [(k, W)]
    a.recv(1)
    k = sel.modify(a, R | W, 3)
    assert sel.select(0) == [(k, W)]
    b.send(b"y")
    assert sel.select(0) == [(k, R | W)]


def test_modify_data_only_makes_no_syscall(selectors_mod, pair):
    """After its fd is closed, a data-only modify still works (no system call),
    an events modify fails on epoll and leaves no key."""
    if "EpollSelector" not in CLASS_NAMES:
        pytest.skip("no epoll")
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    sel = selectors_mod.EpollSelector()
    a, b = pair
    c = a.dup()
    try:
        sel.register(c.fileno(), R, "x")
        fd = c.fileno()
        c.close()  # a still holds the file: the fd number is free, the registration stays
        key = sel.modify(fd, R, "y")
        assert key.data == "y"
        with pytest.raises(OSError) as info:
            sel.modify(fd, W, "y")
        assert info.value.errno == errno.EBADF
        assert len(sel.get_map()) == 0
        with pytest.raises(KeyError):
            sel.get_key(fd)
    finally:
        sel.close()


def test_errors(selectors_mod, sel, pair):
    R = selectors_mod.EVENT_READ
    a, b = pair
    for events in (0, 4, 7, -1, 2 ** 70, -(2 ** 70), None, "", 0.0):
        with pytest.raises(ValueError, match="Invalid events"):
            sel.register(a, events)
    for events in (1.0, "1", b"x"):
        with pytest.raises(TypeError):
            sel.register(a, events)

    class BadFileno:
        def fileno(self):
            raise ValueError("nope")

    class StrFileno:
        def fileno(self):
            return "x"

    for fileobj in (object(), "x", 1.5, BadFileno(), StrFileno(), None):
        with pytest.raises(ValueError, match="Invalid file object"):
            sel.register(fileobj, R)
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        sel.register(-1, R)

    class OSErrorFileno:
        def fileno(self):
            raise OSError("boom")

    with pytest.raises(OSError, match="boom"):
        sel.register(OSErrorFileno(), R)
    assert len(sel.get_map()) == 0

    sel.register(a, R)
    with pytest.raises(KeyError, match=r"\(FD %d\) is already registered" % a.fileno()):
        sel.register(a, R)
    with pytest.raises(KeyError, match="already registered"):
        sel.register(a.fileno(), R)
    with pytest.raises(KeyError, match="is not registered"):
        sel.unregister(b)
    with pytest.raises(KeyError, match="is not registered"):
        sel.get_key(b)
    with pytest.raises(ValueError):
        sel.unregister("x")
    with pytest.raises(ValueError):
        sel.get_key(object())
    assert len(sel.get_map()) == 1


def test_bad_timeouts(selectors_mod, sel, pair):
    a, b = pair
    sel.register(a, selectors_mod.EVENT_WRITE)
    with pytest.raises(TypeError):
        sel.select("x")
    with pytest.raises(TypeError):
        sel.select([])
    with pytest.raises(ValueError):
        sel.select(float("nan"))
    with pytest.raises(OverflowError):
        sel.select(float("inf"))
    with pytest.raises(OverflowError):
        sel.select(2 ** 80)
    with pytest.raises(OverflowError):
        sel.select(1e300)
    assert len(sel.select(-float("inf"))) == 1
    assert len(sel.select(-(2 ** 80))) == 1
    assert len(sel.select(True)) == 1


def test_unregister_closed_socket(selectors_mod, sel):
    a, b = socket.socketpair()
    key = sel.register(a, selectors_mod.EVENT_READ)
    a.close()
    assert a.fileno() == -1
    assert sel.get_key(a) is key  # found by identity, as _fileobj_lookup does
    assert a in sel.get_map()
    assert sel.unregister(a) is key
    assert len(sel.get_map()) == 0
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        sel.unregister(a)  # no longer found by identity either
    with pytest.raises(ValueError):
        sel.get_key(a)
    b.close()


def test_fd_reuse_after_close(selectors_mod, sel):
    R = selectors_mod.EVENT_READ
    a, b = socket.socketpair()
    fd = a.fileno()
    sel.register(a, R)
    sel.unregister(a)
    a.close()
    c, d = socket.socketpair()
    try:
        assert fd in (c.fileno(), d.fileno())
        new = c if c.fileno() == fd else d
        key = sel.register(new, R, "new")
        assert sel.get_key(fd) is key
        (c if new is d else d).send(b"x")
        assert sel.select(0) == [(key, R)]
    finally:
        b.close()
        c.close()
        d.close()


def test_fd_reuse_without_unregister_is_still_registered(selectors_mod, sel):
    R = selectors_mod.EVENT_READ
    a, b = socket.socketpair()
    fd = a.fileno()
    sel.register(a, R)
    a.close()
    c = socket.socket()
    try:
        if c.fileno() != fd:
            pytest.skip("fd not reused")
        with pytest.raises(KeyError, match="already registered"):
            sel.register(c, R)
        key = sel.unregister(fd)
        assert key.fileobj is a
        sel.register(c, R)
    finally:
        b.close()
        c.close()


def test_regular_file(selectors_mod, sel, tmp_path):
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    with open(tmp_path / "f", "wb") as f:
        if backend(type(sel)) == "EpollSelector":
            with pytest.raises(PermissionError) as info:
                sel.register(f, R | W)
            assert info.value.errno == errno.EPERM
            assert len(sel.get_map()) == 0
            with pytest.raises(KeyError):
                sel.get_key(f)
        else:
            key = sel.register(f, R | W)
            assert sel.select(0) == [(key, R | W)]


def test_get_map(selectors_mod, sel, pair):
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    a, b = pair
    m = sel.get_map()
    assert isinstance(m, collections.abc.Mapping)
    assert sel.get_map() is m
    assert len(m) == 0 and list(m) == []
    kb = sel.register(b, W)
    ka = sel.register(a, R)
    assert len(m) == 2  # live
    assert list(m) == [b.fileno(), a.fileno()]  # registration order
    assert m[a] is ka and m[a.fileno()] is ka
    assert a in m and a.fileno() in m and 12345 not in m
    assert m.get(a) is ka and m.get(9999) is None and m.get(9999, "d") == "d"
    assert m.get(9999, default="k") == "k"
    # the first parameter's name: Mapping.get's `key`, the mapping's own `fileobj` since 3.13
    first, other = ("fileobj", "key") if sys.version_info >= (3, 13) else ("key", "fileobj")
    assert m.get(**{first: a}) is ka
    with pytest.raises(TypeError):
        m.get(**{other: a})
    with pytest.raises(TypeError):
        m.get()
    assert list(m.keys()) == [b.fileno(), a.fileno()]
    assert list(m.values()) == [kb, ka]
    assert list(m.items()) == [(b.fileno(), kb), (a.fileno(), ka)]
    assert m == {b.fileno(): kb, a.fileno(): ka}
    assert m != {}
    with pytest.raises(KeyError, match="9999 is not registered"):
        m[9999]
    with pytest.raises(ValueError):
        "x" in m
    with pytest.raises(TypeError):
        m[a.fileno()] = ka
    with pytest.raises(TypeError):
        hash(m)
    with pytest.raises(RuntimeError):
        for fd in m:
            sel.unregister(fd)
    assert sel.modify(a, R, "data").data == "data"
    sel.close()
    assert sel.get_map() is None
    assert len(m) == 0


def test_closed_selector(selectors_mod, sel_cls, pair):
    R = selectors_mod.EVENT_READ
    a, b = pair
    sel = sel_cls()
    sel.register(b, R)
    with sel as entered:
        assert entered is sel
    assert sel.get_map() is None
    with pytest.raises(RuntimeError, match="Selector is closed"):
        sel.get_key(a)
    with pytest.raises(KeyError):
        sel.unregister(b)
    with pytest.raises(KeyError):
        sel.modify(b, R)
    sel.close()
    if hasattr(sel, "fileno"):  # epoll, kqueue: the kernel object is gone
        with pytest.raises(ValueError):
            sel.fileno()
        with pytest.raises(ValueError):
            sel.register(a, R)
        with pytest.raises(ValueError):
            sel.select(0)
    else:  # select, poll: the stdlib keeps going
        sel.register(a, R)
        b.send(b"x")
        assert [k.fd for k, ev in sel.select(0)] == [a.fileno()]


def test_fileno(selectors_mod, sel):
    if hasattr(sel, "fileno"):
        fd = sel.fileno()
        assert isinstance(fd, int) and fd >= 0
        assert not os.get_inheritable(fd)
    else:
        assert backend(type(sel)) in ("SelectSelector", "PollSelector")


# -------------------------------------------------------------- timeouts


def test_timeouts(selectors_mod, sel, pair):
    R = selectors_mod.EVENT_READ
    a, b = pair
    sel.register(a, R)
    for t in (0, -1, 0.0, -0.5):
        t0 = time.monotonic()
        assert sel.select(t) == []
        assert time.monotonic() - t0 < 2
    t0 = time.monotonic()
    assert sel.select(0.1) == []
    assert 0.09 <= time.monotonic() - t0 < 5
    t0 = time.monotonic()
    assert sel.select(0.0001) == []
    timer = threading.Timer(0.1, b.send, (b"x",))
    timer.start()
    try:
        ready = sel.select(None)
        assert [(k.fileobj, ev) for k, ev in ready] == [(a, R)]
        assert sel.select() == [(sel.get_key(a), R)]
    finally:
        timer.join()


def test_no_registration_select_waits(selectors_mod, sel):
    t0 = time.monotonic()
    assert sel.select(0.05) == []
    assert time.monotonic() - t0 >= 0.04


# ------------------------------------------------------------- many fds


@pytest.fixture
def many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2300
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip("RLIMIT_NOFILE too low")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    socks = []
    try:
        for _ in range(1000):
            socks.extend(socket.socketpair())
        yield socks
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_2000_fds(selectors_mod, cls_name, many_fds):
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    sel = getattr(selectors_mod, cls_name)()
    try:
        assert max(s.fileno() for s in many_fds) >= 2000
        if backend(type(sel)) == "SelectSelector":
            high = next(s for s in many_fds if s.fileno() >= 1024)
            sel.register(high, R)  # registered, but select() cannot take it
            with pytest.raises(ValueError, match="filedescriptor out of range in select()"):
                sel.select(0)
            sel.unregister(high)
            assert sel.select(0) == []
            return
        keys = [sel.register(s, R, i) for i, s in enumerate(many_fds)]
        assert len(sel.get_map()) == 2000
        assert sel.select(0) == []
        senders = [many_fds[i] for i in range(1, 2000, 40)]  # odd index: its peer is i-1
        for s in senders:
            s.send(b"x")
        ready = sel.select(0)
        assert sorted(k.data for k, ev in ready) == [i - 1 for i in range(1, 2000, 40)]
        assert all(ev == R for k, ev in ready)
        assert all(keys[k.data] is k for k, ev in ready)
        sel.modify(many_fds[-1], W)
        assert (sel.get_key(many_fds[-1]), W) in sel.select(0)
        for s in many_fds[::2]:
            sel.unregister(s)
        assert len(sel.get_map()) == 1000
        assert [k for k, ev in sel.select(0)] == [sel.get_key(many_fds[-1])]
    finally:
        sel.close()


# --------------------------------------------------------------- signals


def test_signal_handler_that_returns_retries(selectors_mod, sel, pair):
    """PEP 475: select() resumes with the time left after a handler returns."""
    a, b = pair
    sel.register(a, selectors_mod.EVENT_READ)
    hits = []
    old = signal.signal(signal.SIGUSR1, lambda *args: hits.append(1))
    try:
        timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.start()
        t0 = time.monotonic()
        assert sel.select(0.5) == []
        elapsed = time.monotonic() - t0
        timer.join()
        assert hits == [1]
        assert elapsed >= 0.45
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_signal_handler_that_raises(selectors_mod, sel, pair):
    a, b = pair
    sel.register(a, selectors_mod.EVENT_READ)
    timer = interrupt_main_after(0.2)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sel.select(30)
    timer.join()
    assert time.monotonic() - t0 < 20
    # still usable
    b.send(b"x")
    assert [ev for k, ev in sel.select(0)] == [selectors_mod.EVENT_READ]


def test_signal_handler_that_raises_blocking(selectors_mod, sel, pair):
    class Stop(Exception):
        pass

    def handler(*args):
        raise Stop

    a, b = pair
    sel.register(a, selectors_mod.EVENT_READ)
    old = signal.signal(signal.SIGUSR1, handler)
    try:
        timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.start()
        with pytest.raises(Stop):
            sel.select()
        timer.join()
    finally:
        signal.signal(signal.SIGUSR1, old)


# --------------------------------------------------------------- threads


def test_close_while_another_thread_selects(selectors_mod, sel_cls):
    for _ in range(3):
        sel = sel_cls()
        pairs = [socket.socketpair() for _ in range(20)]
        for a, b in pairs:
            sel.register(a, selectors_mod.EVENT_READ)
        outcome = []

        def selecting():
            try:
                outcome.append(sel.select(0.3))
            except (OSError, ValueError) as e:
                outcome.append(e)

        t = threading.Thread(target=selecting)
        t.start()
        time.sleep(0.05)
        sel.close()
        pairs[0][1].send(b"x")
        t.join(10)
        assert not t.is_alive()
        assert len(outcome) == 1
        if isinstance(outcome[0], list):
            assert outcome[0] == []  # every key is gone
        for a, b in pairs:
            a.close()
            b.close()


def test_register_while_another_thread_selects(selectors_mod, sel, pair):
    R = selectors_mod.EVENT_READ
    a, b = pair
    results = []
    t = threading.Thread(target=lambda: results.append(sel.select(5)))
    sel.register(a, R, "a")
    t.start()
    time.sleep(0.05)
    extra = [socket.socketpair() for _ in range(100)]
    try:
        for x, y in extra:  # grows the table and the buffers under the running select
            sel.register(x, R)
        b.send(b"x")
        t.join(10)
        assert not t.is_alive()
        assert [k.data for k, ev in results[0]] == ["a"]
        assert len(sel.select(0)) == 1
    finally:
        for x, y in extra:
            x.close()
            y.close()


def test_two_threads_select_concurrently(selectors_mod, sel_cls, pair):
    if backend(sel_cls) not in ("EpollSelector", "SelectSelector"):
        pytest.skip("select.poll refuses concurrent poll()")
    R = selectors_mod.EVENT_READ
    sel = sel_cls()
    a, b = pair
    sel.register(a, R)
    results = []
    threads = start_threads(threading, lambda: results.append(sel.select(5)), 2)
    time.sleep(0.1)
    b.send(b"x")
    for t in threads:
        t.join(10)
    sel.close()
    assert len(results) == 2 and all(len(r) == 1 for r in results)


def test_churn_while_selecting(selectors_mod, sel_cls):
    """Registrations come and go (growing the table and buffers) while other
    threads select: nothing lost, nothing stale, no crash."""
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    sel = sel_cls()
    pairs = [socket.socketpair() for _ in range(60)]
    stop = threading.Event()
    errors = []

    def selecting():
        try:
            while not stop.is_set():
                for key, ev in sel.select(0.01):
                    assert ev & key.events == ev
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    # poll objects refuse concurrent poll() in the stdlib: one selecting thread there
    nthreads = 1 if backend(sel_cls) == "PollSelector" else 2
    threads = start_threads(threading, selecting, nthreads)
    try:
        deadline = time.monotonic() + 0.6
        rounds = 0
        while time.monotonic() < deadline:
            for i, (a, b) in enumerate(pairs):
                sel.register(a, W if i % 2 else R, i)
            for i, (a, b) in enumerate(pairs[::3]):
                sel.modify(a, R | W, -i)
            for a, b in pairs:
                sel.unregister(a)
            rounds += 1
        assert rounds > 0
        assert len(sel.get_map()) == 0
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        sel.close()
        for a, b in pairs:
            a.close()
            b.close()
    assert errors == []


# -------------------------------------------------------------- fork


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_fork(selectors_mod, sel_cls):
    R = selectors_mod.EVENT_READ
    a, b = socket.socketpair()
    sel = sel_cls()
    sel.register(a, R, "a")
    def child():
        b.send(b"x")
        ready = sel.select(5)
        c, d = socket.socketpair()
        sel.register(c, R)
        d.send(b"y")
        assert [k.data for k, ev in ready] == ["a"] and len(sel.select(5)) == 2

    run_in_fork(child)
    assert sel.get_key(a).data == "a"
    sel.close()
    a.close()
    b.close()


# -------------------------------------------------- subclassing, re-entry


def test_subclass_and_instance_patching(selectors_mod, sel_cls, pair):
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    a, b = pair
    calls = []

    class Sub(sel_cls):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

        def register(self, fileobj, events, data=None):
            calls.append(("register", events))
            return super().register(fileobj, events, data)

        def unregister(self, fileobj):
            calls.append(("unregister",))
            return super().unregister(fileobj)

    s = Sub("t")
    try:
        assert isinstance(s, std_selectors.BaseSelector) and issubclass(Sub, std_selectors.BaseSelector)
        assert s.tag == "t"
        s.register(a, R)
        s.modify(a, W)
        if backend(sel_cls) in ("SelectSelector", "KqueueSelector"):
            assert calls == [("register", R), ("unregister",), ("register", W)]
        else:
            assert calls == [("register", R)]
        s.select = lambda timeout=None: ["patched"]
        assert s.select(0) == ["patched"]
        del s.select
        assert s.select(0) == [(s.get_key(a), W)]
        with s:
            pass
        assert s.get_map() is None
    finally:
        s.close()
    plain = sel_cls()
    plain.select = lambda timeout=None: "patched"  # what asyncio's tests do
    assert plain.select() == "patched"
    plain.close()


def test_reentrant_data_comparison(selectors_mod, sel, pair):
    """A data __ne__ that unregisters the key while modify() compares."""
    R = selectors_mod.EVENT_READ
    a, b = pair

    class Evil:
        def __ne__(self, other):
            sel.unregister(a)
            return True

        __hash__ = object.__hash__

    sel.register(a, R, Evil())
    if selectors_mod is cc_selectors:
        # cconc refuses and stays consistent; the stdlib writes back a stale key
        with pytest.raises(RuntimeError):
            sel.modify(a, R, "new")
        assert len(sel.get_map()) == 0
        sel.register(a, R, "again")
        assert sel.get_key(a).data == "again"
        assert sel.select(0) == []
    else:
        sel.modify(a, R, "new")
        assert sel.get_key(a).data == "new"


def test_del_during_close_and_unregister(selectors_mod, sel_cls, pair):
    R = selectors_mod.EVENT_READ
    a, b = pair
    sel = sel_cls()
    seen = []

    class Data:
        def __del__(self):
            # runs while close()/unregister() drop their references
            try:
                seen.append(len(sel.get_map() or ()))
                sel.register(b, R)
                sel.unregister(b)
            except Exception as e:  # e.g. closed epoll
                seen.append(type(e))

    sel.register(a, R, Data())
    sel.unregister(a)
    gc.collect()
    sel.register(a, R, Data())
    sel.close()
    gc.collect()
    assert seen[:2] == [0, 0] and len(seen) <= 3


def test_gc_during_select_touches_selector(selectors_mod, sel_cls):
    """A __del__ run by the GC while select() builds its result registers and
    unregisters fds on the same selector (growing its table): no crash, no stale key."""
    R = selectors_mod.EVENT_READ
    sel = sel_cls()
    ready = [socket.socketpair() for _ in range(20)]
    extra = [socket.socketpair() for _ in range(150)]
    for a, b in ready:
        sel.register(a, R, "ready")
        b.send(b"x")
    todo = list(extra)

    class Cycle:
        def __init__(self):
            self.me = self

        def __del__(self):
            for _ in range(5):
                if todo:
                    x, y = todo.pop()
                    sel.register(x, R, "extra")
            for fd, key in list(sel.get_map().items())[:2]:
                if key.data == "extra":
                    sel.unregister(fd)

    old = gc.get_threshold()
    gc.collect()
    gc.set_threshold(1)
    try:
        for _ in range(60):
            Cycle()
            result = sel.select(0)
            assert all(key.data == "ready" and ev == R for key, ev in result), result
            assert len(result) <= 20
    finally:
        gc.set_threshold(*old)
    gc.collect()
    assert sorted(k.data for k, ev in sel.select(0)) == ["ready"] * 20
    sel.close()
    for a, b in ready + extra:
        a.close()
        b.close()


def test_gc_cycle_is_collected(selectors_mod, sel_cls, pair):
    import weakref

    a, b = pair
    sel = sel_cls()
    sel.register(a, selectors_mod.EVENT_READ, sel)  # data refers to the selector
    sel.get_map()
    b.send(b"x")
    assert len(sel.select(0)) == 1
    ref = weakref.ref(sel)
    del sel
    gc.collect()
    assert ref() is None


def test_no_leak(selectors_mod, sel, pair):
    R, W = selectors_mod.EVENT_READ, selectors_mod.EVENT_WRITE
    a, b = pair
    b.send(b"x")

    counter = itertools.count()

    def work():
        i = next(counter)
        sel.register(a, R, [i])
        sel.modify(a, R | W, (i,))
        sel.modify(a, R | W, str(i))
        sel.select(0)
        sel.get_key(a)
        sel.unregister(a)
        try:
            sel.register(a, 0)
        except ValueError:
            pass

    assert_no_memory_growth(work, repeat=20000, limit=200_000)


# -------------------------------------------------------------- asyncio


def _echo_roundtrips(loop, nclients=20, nmsgs=10):
    async def handle(reader, writer):
        while True:
            data = await reader.read(1024)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    async def client(port, i):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        got = []
        for j in range(nmsgs):
            msg = f"{i}:{j}:".encode() + b"x" * 100
            writer.write(msg)
            got.append(await reader.readexactly(len(msg)) == msg)
        writer.close()
        await writer.wait_closed()
        return all(got)

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            results = await asyncio.gather(*(client(port, i) for i in range(nclients)))
        return results

    return loop.run_until_complete(main())


def test_asyncio_echo(selectors_mod, sel_cls):
    selector = sel_cls()
    loop = asyncio.SelectorEventLoop(selector)
    try:
        assert loop._selector is selector
        results = _echo_roundtrips(loop)
        assert results == [True] * 20
        # reader/writer callbacks too
        r, w = socket.socketpair()
        fut = loop.create_future()
        loop.add_reader(r, lambda: fut.set_result(r.recv(10)))
        loop.call_soon(w.send, b"ping")
        assert loop.run_until_complete(asyncio.wait_for(fut, 10)) == b"ping"
        assert loop.remove_reader(r)
        assert not loop.remove_reader(r)
        r.close()
        w.close()
    finally:
        loop.close()
    assert selector.get_map() is None


# --------------------------------------------------- differential script


def _transcript(mod, cls_name):
    """Run the same script of edge cases and record what happens."""
    R, W = mod.EVENT_READ, mod.EVENT_WRITE
    out = []
    socks = [*socket.socketpair(), *socket.socketpair()]
    names = {s.fileno(): f"s{i}" for i, s in enumerate(socks)}

    def norm(x):
        if isinstance(x, BaseException):
            msg = str(x)
            for s in socks:
                msg = msg.replace(repr(s), "<sock>")
            return (type(x).__name__, msg)
        if isinstance(x, list):
            return sorted(norm(v) for v in x)
        if isinstance(x, tuple) and type(x) is not tuple:  # a SelectorKey
            return ("key", names.get(x.fd, x.fd) if isinstance(x.fd, int) else x.fd, x.events, x.data)
        if isinstance(x, tuple):
            return tuple(norm(v) for v in x)
        return x

    sel = getattr(mod, cls_name)()
    a, b, c, d = socks
    steps = [
        lambda: sel.register(a, R | W, "a"),
        lambda: sel.register(b, W, "b"),
        lambda: sel.select(0),
        lambda: sel.modify(a, R, "a2"),
        lambda: sel.modify(a, R, "a2"),
        lambda: sel.modify(a, 4, "a3"),
        lambda: sel.get_key(a) if a.fileno() in sel.get_map() else "gone",
        lambda: sel.modify(a, 0),
        lambda: sel.select(0),
        lambda: sel.register(c, True, "c"),
        lambda: sel.get_key(c),
        lambda: sel.modify(c, True, "c"),
        lambda: sel.modify(c, 1, "c"),
        lambda: sel.register(2 ** 31 - 1, R),
        lambda: sel.register(2 ** 31, R),
        lambda: sel.register(2 ** 40, R),
        lambda: len(sel.get_map()),
        lambda: sel.unregister(2 ** 31),
        lambda: sel.unregister(2 ** 40),
        lambda: sel.unregister(2 ** 31 - 1),
        lambda: d.send(b"x"),
        lambda: sel.select(0),
        lambda: d.close(),
        lambda: sel.select(0),
        lambda: sel.unregister(b),
        lambda: b.close(),
        lambda: sel.select(0),
        lambda: sorted(sel.get_map()) == sorted(k.fd for k in sel.get_map().values()),
        lambda: sel.close(),
        lambda: sel.get_map(),
        lambda: sel.register(a, R),
        lambda: sel.select(0),
        lambda: sel.get_key(a),
        lambda: sel.unregister(a),
        lambda: sel.close(),
    ]
    for step in steps:
        try:
            out.append(norm(step()))
        except Exception as e:
            out.append(norm(e))
    for s in socks:
        s.close()
    return out


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_same_transcript_as_stdlib(name):
    std = _transcript(std_selectors, name)
    mine = _transcript(cc_selectors, name)
    assert mine == std


# ------------------------------------- re-entrant __hash__ / __eq__ / fileno()


def _check_consistent(selectors_mod, sel):
    """The selector's views agree: every mapped key is found by get_key, the
    map's length matches, and select() reports only registered keys."""
    m = sel.get_map()
    keys = list(m.values())
    assert len(m) == len(keys) == len(list(m))
    for k in keys:
        assert sel.get_key(k.fileobj) is k
        assert k.fd in m
    for k, ev in sel.select(0):
        assert sel.get_key(k.fileobj) is k
        assert ev & k.events


def _pipes(n):
    pipes = [os.pipe() for _ in range(n)]
    for _, w in pipes:
        os.write(w, b"x")  # readable: select() has something to report
    return pipes


def _close_pipes(pipes):
    for r, w in pipes:
        os.close(r)
        os.close(w)


def test_reentrant_hash_during_register_and_unregister(selectors_mod, sel_cls):
    # An int subclass as the file object whose __hash__ registers 64 other fds
    # (filling a poll set exactly) or re-registers itself: nothing may break.
    sel = sel_cls()
    pipes = _pipes(65)
    others = [r for r, _ in pipes[1:]]
    actions = []

    class FD(int):
        def __hash__(self):
            if actions:
                actions.pop()()
            return int.__hash__(self)

        def __eq__(self, other):
            if actions:
                actions.pop()()
            return int(self) == other

    def register_others():
        for r in others:
            try:
                sel.register(r, selectors_mod.EVENT_READ)
            except KeyError:
                pass

    def register_self_again():
        try:
            sel.register(int(fd), selectors_mod.EVENT_READ, "inner")
        except KeyError:
            pass

    try:
        fd = FD(pipes[0][0])
        actions.append(register_others)
        key = sel.register(fd, selectors_mod.EVENT_READ, "outer")
        assert key.fd == fd
        _check_consistent(selectors_mod, sel)
        actions.append(register_self_again)
        try:
            sel.unregister(fd)
        except KeyError:
            pass
        gc.collect()
        _check_consistent(selectors_mod, sel)
        for k in list(sel.get_map().values()):
            sel.unregister(k.fileobj)
        assert len(sel.get_map()) == 0
        assert sel.select(0) == []
    finally:
        sel.close()
        _close_pipes(pipes)


def test_reentrant_fileno_and_eq(selectors_mod, sel_cls):
    # fileno() that registers and unregisters other fds, and data whose __eq__
    # unregisters the key being modified.
    sel = sel_cls()
    pipes = _pipes(70)
    try:

        class File:
            def __init__(self, fd, action=None):
                self.fd, self.action = fd, action

            def fileno(self):
                if self.action:
                    action, self.action = self.action, None
                    action()
                return self.fd

        def churn():
            for r, _ in pipes[2:]:
                sel.register(r, selectors_mod.EVENT_READ)
            for r, _ in pipes[2:40]:
                sel.unregister(r)

        f = File(pipes[0][0], churn)
        sel.register(f, selectors_mod.EVENT_READ)
        _check_consistent(selectors_mod, sel)

        class Data:
            def __eq__(self, other):
                try:
                    sel.unregister(f)
                except KeyError:
                    pass
                return False

            __hash__ = None

        try:
            sel.modify(f, selectors_mod.EVENT_READ | selectors_mod.EVENT_WRITE, Data())
        except (KeyError, RuntimeError):
            pass  # the key went away under modify(): how it reports that differs
        _check_consistent(selectors_mod, sel)
        g = File(pipes[1][0], lambda: sel.unregister(pipes[41][0]))
        sel.register(g, selectors_mod.EVENT_READ)
        sel.unregister(g)
        _check_consistent(selectors_mod, sel)
    finally:
        sel.close()
        _close_pipes(pipes)


def test_map_iterates_the_fd_objects_given(selectors_mod, sel, pair):
    class FD(int):
        pass

    fd = FD(pair[0].fileno())
    sel.register(fd, selectors_mod.EVENT_READ)
    (it,) = list(sel.get_map())
    assert type(it) is FD
    assert type(sel.get_key(fd).fd) is FD
    with pytest.raises(RuntimeError):
        for _ in sel.get_map():
            sel.register(pair[1], selectors_mod.EVENT_READ)
