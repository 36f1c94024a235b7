"""Stress tool (not collected by pytest): the SIGKILL loop of
test_mp_queue.test_kill_loop_nothing_wedges_nothing_duplicated, run outside
pytest with knobs to raise the odds of a wedge, and a dump of the channel's
shared header and of every live process when the queue stops draining.

    python3 tests/stress_mp_kill.py [--runs N] [--buffer 65536] [--seconds 5]
                                    [--kill-min 0.005] [--kill-max 0.05] [--seed S]
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cconc.multiprocessing as cmp  # noqa: E402
from cconc.multiprocessing import queues as cq  # noqa: E402

PYSPY = "/tmp/tools/bin/py-spy"


def consumer(q, seen, stop, errors):
    while True:
        try:
            [(item, payload)] = q.get_many(1, timeout=0.1)
        except Exception as e:  # noqa: BLE001
            if type(e).__name__ != "Empty":
                errors[0] += 1
                with open("/tmp/stress_mp_kill.errors", "a") as f:
                    f.write(f"{os.getpid()}: {type(e).__name__}: {e}\n")
            if stop.value:
                return
            continue
        seen[item] += 1


def producer(q, slot, progress, start, n, restarted):
    i = progress[slot] + (1 if restarted else 0)
    progress[slot] = i
    rnd = random.Random(slot * 7919 + i)
    while i < n:
        size = rnd.choice((0, 10, 3000, 40000))
        q.put((start + i, b"p" * size))
        i += 1
        progress[slot] = i


def frames(ring, start, end):
    """Decode the frames from position start (stops at end or at nonsense)."""
    import struct
    cap = len(ring)
    out = []
    pos = start
    while pos != end and len(out) < 40:
        off = pos % cap
        ln, fl, tag = struct.unpack_from("<IBB", ring, off)
        fsz = 8 + ((ln + 7) & ~7)
        out.append((pos, off, ln, fl, chr(tag) if tag else "-", fsz))
        if fsz > (end - pos) % (1 << 32):
            out.append("BAD")
            break
        pos = (pos + fsz) % (1 << 32)
    return out


def dump(q, procs):
    st = q._debug_state()
    ring = st.pop("ring")
    print("STATE", st, flush=True)
    for f in frames(ring, st["tail_pos"], st["head_pos"]):
        print("  ", f)
    with open("/tmp/stress_mp_kill.ring", "wb") as f:
        f.write(ring)
    for p in procs:
        if p.is_alive() and os.path.exists(PYSPY):
            subprocess.run([PYSPY, "dump", "--native", "--pid", str(p.pid)])


def run(args, seed):
    ctx = cmp.get_context("fork")
    nprod, ncons, n = args.producers, args.consumers, 200_000
    q = cq.SimpleQueue(buffer_size=args.buffer)
    progress = ctx.RawArray("q", nprod)
    seen = ctx.RawArray("i", nprod * n)
    stop = ctx.RawValue("i", 0)
    errors = ctx.RawArray("i", 1)
    uncertain = set()
    rnd = random.Random(seed)

    def start_producer(k, restarted=False):
        p = ctx.Process(target=producer, args=(q, k, progress, k * n, n, restarted))
        p.start()
        return p

    def start_consumer():
        p = ctx.Process(target=consumer, args=(q, seen, stop, errors))
        p.start()
        return p

    producers = [start_producer(k) for k in range(nprod)]
    consumers = [start_consumer() for _ in range(ncons)]
    kills = [0, 0]
    try:
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline and any(p.is_alive() for p in producers):
            time.sleep(rnd.uniform(args.kill_min, args.kill_max))
            if rnd.random() < 0.5:
                k = rnd.randrange(nprod)
                if producers[k].is_alive():
                    os.kill(producers[k].pid, signal.SIGKILL)
                    producers[k].join()
                    uncertain.add(k * n + progress[k])
                    kills[0] += 1
                    producers[k] = start_producer(k, restarted=True)
            else:
                k = rnd.randrange(ncons)
                os.kill(consumers[k].pid, signal.SIGKILL)
                consumers[k].join()
                kills[1] += 1
                consumers[k] = start_consumer()
        # drain: stop the producers after a while, then wait for the queue to empty
        t_end = time.monotonic() + args.drain
        for p in producers:
            p.join(max(0.1, t_end - time.monotonic()))
        for p in producers:
            if p.is_alive():
                p.kill()
                p.join()
        last = None
        stuck_since = time.monotonic()
        while not q.empty():
            st = q._debug_state()
            key = (st["tail_pos"], st["tail_count"], st["head_pos"])
            if key != last:
                last, stuck_since = key, time.monotonic()
            elif time.monotonic() - stuck_since > 3:
                print(f"WEDGE seed={seed} kills={kills} errors={errors[0]}", flush=True)
                dump(q, producers + consumers)
                if args.hold:
                    print("holding; consumer pids", [p.pid for p in consumers], flush=True)
                    time.sleep(args.hold)
                return False
            time.sleep(0.05)
        stop.value = 1
        for p in consumers:
            p.join(30)
        counts = list(seen)
        dup = [i for i, c in enumerate(counts) if c > 1]
        if dup:
            print(f"DUPLICATED seed={seed}: {dup[:10]}", flush=True)
            return False
        print(f"ok seed={seed} kills={kills} errors={errors[0]}", flush=True)
        return True
    finally:
        for p in producers + consumers:
            if p.is_alive():
                p.kill()
            p.join(10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--buffer", type=int, default=1 << 16)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--drain", type=float, default=30)
    ap.add_argument("--kill-min", type=float, default=0.005)
    ap.add_argument("--kill-max", type=float, default=0.05)
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--consumers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--hold", type=float, default=0)
    args = ap.parse_args()
    base = args.seed if args.seed is not None else random.randrange(1 << 30)
    for i in range(args.runs):
        try:
            if not run(args, base + i):
                sys.exit(1)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            sys.exit(1)


if __name__ == "__main__":
    main()
