/* queue.Queue, LifoQueue and PriorityQueue.
 *
 * One object type, three orders: a ring buffer of object pointers used as a
 * FIFO, as a stack, or as a binary heap laid out and sifted exactly as
 * heapq's, so that the order of equal priorities, the comparisons made and
 * q.queue[i] are the stdlib's.
 *
 * Two ways to run:
 *  - native: the items live in the ring. A FIFO or LIFO operation never calls
 *    out to Python, so under the GIL (without one, in the queue's critical
 *    section, which every method takes) it is atomic; it does not even take
 *    q.mutex, it only waits while another thread holds it (code that groups
 *    operations under `with q.mutex:` stays atomic). A priority queue's
 *    comparisons may run Python code (and release the GIL), so it holds
 *    q.mutex around them, as the stdlib does.
 *  - generic: when a subclass overrides _init/_qsize/_put/_get, or code
 *    assigns q.queue, every operation calls those methods with q.mutex held,
 *    exactly as the stdlib's queue.py; the base methods then work on
 *    self.queue as the stdlib's do.
 *
 * Waiting threads park on three FIFO waitlists (getters, putters, joiners)
 * rather than on q.not_empty & co: a put wakes one getter, a get wakes one
 * putter, the last task_done wakes every joiner. Code that waits on
 * q.not_empty, q.not_full or q.all_tasks_done itself (the stdlib's
 * Conditions, made on first use) is notified as the stdlib's put, get and
 * task_done would, which costs one test when nobody waits there. A woken thread re-checks
 * and parks again when another thread took what it was woken for; one woken
 * at the instant it times out or is interrupted passes the wake-up on. */
#include "ring.h"

#include <math.h>
#include <structmember.h>

enum { KIND_FIFO = 0, KIND_LIFO = 1, KIND_PRIO = 2 };
enum { COND_NOT_EMPTY = 0, COND_NOT_FULL = 1, COND_ALL_TASKS_DONE = 2 };
/* Bits of type_overrides. */
enum { OVR_STORAGE = 1, OVR_PUT = 2, OVR_GET = 4 };

typedef struct {
    PyObject_HEAD
    cc_ring ring;
    int kind;
    int generic;           /* the storage is self.queue, used through _qsize/_put/_get (see above) */
    /* Operations call self._qsize/_put/_get through attribute lookup: generic,
     * or an instance attribute overrides one of them (`q._put = MethodType(...)`,
     * as pebble's waitforqueues does), honoured as the stdlib's Python code does. */
    int dispatch;
    /* put_nowait()/get_nowait() call self.put()/self.get() as the stdlib's
     * do: a subclass or an instance attribute overrides them. */
    int calls_put, calls_get;
    /* What the class itself overrides (the instance may add more). */
    unsigned type_overrides;
    int is_shutdown;
    Py_ssize_t maxsize;    /* <= 0: unbounded */
    /* maxsize is neither an int nor a float (a Decimal, a Fraction, or
     * something `maxsize > 0` refuses): put() and full() compare it in
     * Python as the stdlib does, which raises where the stdlib raises. */
    int maxsize_compared;
    int slow;              /* dispatch, a priority queue or maxsize_compared: no fast path */
    Py_ssize_t unfinished;
    uint64_t version;      /* bumped by every change of the ring, for iterators */
    unsigned long owner;   /* thread holding mutex for one of our operations, or 0 */
    cc_waitlist getters, putters, joiners;
    PyObject *maxsize_obj; /* what the user gave, returned by q.maxsize */
    PyObject *mutex;       /* created on first need (q.mutex, generic, priority) */
    PyObject *not_empty, *not_full, *all_tasks_done;
    /* Each Condition's own deque of waiters (its _waiters), for the one test
     * "does anyone wait on it" (Py_SIZE of a deque is its length); NULL
     * until the Condition exists. Indexed by COND_*. */
    PyObject *cond_waiters[3];
    PyObject *pyqueue;     /* generic: the object behind self.queue */
    PyObject *dict, *weakreflist;
} QueueObject;

typedef struct {
    PyObject_HEAD
    QueueObject *q;
} QueueViewObject;

typedef struct {
    PyObject_HEAD
    QueueObject *q;        /* NULL once exhausted */
    Py_ssize_t index;
    uint64_t version;
} QueueViewIterObject;

/* The cconc Lock's own C methods, found in its method table at exec: q.mutex
 * is always a cconc Lock we created, so we call them without a lookup. */
static PyCFunction lock_fn_locked, lock_fn_enter, lock_fn_release;

static cc_state *qstate(QueueObject *self) { return cc_state_of_type(Py_TYPE(self)); }

enum { RAISE_EMPTY, RAISE_FULL, RAISE_SHUTDOWN };

static void q_raise(QueueObject *self, int which)
{
    cc_state *st = qstate(self);
    if (st)
        PyErr_SetNone(which == RAISE_EMPTY  ? st->queue_Empty
                      : which == RAISE_FULL ? st->queue_Full
                                            : st->queue_ShutDown);
}

/* ---------------------------------------------------------------- mutex */

static int q_make_mutex(QueueObject *self)
{
    if (self->mutex)
        return 0;
    cc_state *st = qstate(self);
    if (!st)
        return -1;
    self->mutex = PyObject_CallNoArgs((PyObject *)st->Lock_type);
    return self->mutex ? 0 : -1;
}

static int mutex_locked(PyObject *mutex)
{
    PyObject *r = lock_fn_locked(mutex, NULL);
    int locked = r == Py_True;
    Py_XDECREF(r);
    return locked;
}

/* Enter an operation. `hold`: it calls out to Python, so it must hold
 * q.mutex throughout; otherwise it only waits while someone else holds it.
 * Returns 1 when the mutex is held (pass to q_exit), 0 when not, -1 on error
 * (a signal handler raised while waiting, or a re-entrant call). */
static int q_enter(QueueObject *self, int hold)
{
    if (!self->mutex) {
        if (!hold)
            return 0;
        if (q_make_mutex(self) < 0)
            return -1;
    }
    else if (!hold && !mutex_locked(self->mutex))
        return 0;
    unsigned long me = PyThread_get_thread_ident();
    if (self->owner == me && mutex_locked(self->mutex)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "re-entrant call: this thread is inside an operation on the same queue "
                        "(a comparison, _put, _get or _qsize); the stdlib would deadlock here");
        return -1;
    }
    PyObject *r = lock_fn_enter(self->mutex, NULL);
    if (!r)
        return -1;
    Py_DECREF(r);
    self->owner = me;
    return 1;
}

/* Never raises, so it is safe on error paths with an exception set. */
static void q_exit(QueueObject *self, int held)
{
    if (held > 0) {
        self->owner = 0;
        if (mutex_locked(self->mutex)) {  /* unless user code released it under us */
            PyObject *r = lock_fn_release(self->mutex, NULL);
            Py_XDECREF(r);
        }
    }
}

static inline int q_needs_hold(QueueObject *self) { return self->dispatch || self->kind == KIND_PRIO; }

static void q_update_slow(QueueObject *self)
{
    self->slow = self->dispatch || self->kind == KIND_PRIO || self->maxsize_compared;
}

/* The stdlib's `maxsize > 0` ("bounded") and `qsize >= maxsize` ("full")
 * for a maxsize that is compared in Python: 1, 0, or -1 with its error. */
static int maxsize_bounded(QueueObject *self)
{
    if (!self->maxsize_compared)
        return self->maxsize > 0;
    PyObject *maxsize = Py_NewRef(self->maxsize_obj), *zero = PyLong_FromLong(0);
    int r = zero ? PyObject_RichCompareBool(maxsize, zero, Py_GT) : -1;
    Py_XDECREF(zero);
    Py_DECREF(maxsize);
    return r;
}

static int maxsize_reached(QueueObject *self, Py_ssize_t size, int op)
{
    if (!self->maxsize_compared)
        return op == Py_GE ? size >= self->maxsize : self->maxsize <= size;
    PyObject *maxsize = Py_NewRef(self->maxsize_obj), *n = PyLong_FromSsize_t(size);
    int r = -1;
    if (n)  /* put: `qsize >= maxsize`; full: `maxsize <= qsize` (the order user types see) */
        r = op == Py_GE ? PyObject_RichCompareBool(n, maxsize, Py_GE) : PyObject_RichCompareBool(maxsize, n, Py_LE);
    Py_XDECREF(n);
    Py_DECREF(maxsize);
    return r;
}

/* ---------------------------------------- q.not_empty, q.not_full, ... */

static PyObject **q_cond_slot(QueueObject *self, int which)
{
    return which == COND_NOT_EMPTY ? &self->not_empty : which == COND_NOT_FULL ? &self->not_full
                                                                              : &self->all_tasks_done;
}

/* Does a thread wait on that Condition? */
static inline int q_cond_waited(QueueObject *self, int which)
{
    return self->cond_waiters[which] && Py_SIZE(self->cond_waiters[which]) > 0;
}

/* cond.notify(n) (n < 0: notify_all()), as the stdlib's put/get/task_done
 * do, holding q.mutex as the stdlib's notify requires: `held` says whether
 * this operation holds it already; if not, nobody does (the operation
 * checked, and has not let other threads run since), so taking it is
 * immediate. 0, or -1 with an exception. */
static int q_cond_notify_slow(QueueObject *self, int which, Py_ssize_t n, int held)
{
    PyObject *cond = Py_NewRef(*q_cond_slot(self, which)), *mutex = Py_NewRef(self->mutex), *r;
    if (!held) {
        r = lock_fn_enter(mutex, NULL);
        if (!r) {
            Py_DECREF(cond);
            Py_DECREF(mutex);
            return -1;
        }
        Py_DECREF(r);
    }
    r = n < 0 ? PyObject_CallMethod(cond, "notify_all", NULL) : PyObject_CallMethod(cond, "notify", "n", n);
    Py_DECREF(cond);
    if (!held && mutex_locked(mutex)) {
        PyObject *exc_type, *exc, *tb;
        PyErr_Fetch(&exc_type, &exc, &tb);
        PyObject *rel = lock_fn_release(mutex, NULL);
        Py_XDECREF(rel);
        if (!rel)
            PyErr_Clear();
        PyErr_Restore(exc_type, exc, tb);
    }
    Py_DECREF(mutex);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static inline int q_cond_notify(QueueObject *self, int which, Py_ssize_t n, int held)
{
    return q_cond_waited(self, which) && n ? q_cond_notify_slow(self, which, n, held) : 0;
}

/* ----------------------------------------------------------------- heap */

static int heap_changed(QueueObject *self, Py_ssize_t size)
{
    if (size == self->ring.len)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "list changed size during iteration");
    return 1;
}

/* heapq's _siftdown: bubble the item at pos up towards start while it is
 * smaller than its parent. A comparison may run any code: hold references
 * across it and re-read the array after it. */
static int heap_sift_down(QueueObject *self, Py_ssize_t start, Py_ssize_t pos)
{
    Py_ssize_t size = self->ring.len;
    while (pos > start) {
        Py_ssize_t parentpos = (pos - 1) >> 1;
        PyObject *item = Py_NewRef(self->ring.items[pos]);
        PyObject *parent = Py_NewRef(self->ring.items[parentpos]);
        int lt = PyObject_RichCompareBool(item, parent, Py_LT);
        Py_DECREF(item);
        Py_DECREF(parent);
        if (lt < 0 || heap_changed(self, size))
            return -1;
        if (!lt)
            break;
        PyObject **arr = self->ring.items;
        PyObject *tmp = arr[parentpos];
        arr[parentpos] = arr[pos];
        arr[pos] = tmp;
        pos = parentpos;
    }
    return 0;
}

/* heapq's _siftup: move the smaller child up until a leaf, then sift down. */
static int heap_sift_up(QueueObject *self, Py_ssize_t pos)
{
    Py_ssize_t end = self->ring.len, start = pos, limit = end >> 1;
    while (pos < limit) {
        Py_ssize_t child = 2 * pos + 1;
        if (child + 1 < end) {
            PyObject *a = Py_NewRef(self->ring.items[child]);
            PyObject *b = Py_NewRef(self->ring.items[child + 1]);
            int lt = PyObject_RichCompareBool(a, b, Py_LT);
            Py_DECREF(a);
            Py_DECREF(b);
            if (lt < 0 || heap_changed(self, end))
                return -1;
            if (!lt)
                child++;
        }
        PyObject **arr = self->ring.items;
        PyObject *tmp = arr[child];
        arr[child] = arr[pos];
        arr[pos] = tmp;
        pos = child;
    }
    return heap_sift_down(self, start, pos);
}

/* ----------------------------------------------------- native storage */

/* Add an item to the ring: 0, or -1 with an exception. As heapq.heappush,
 * a comparison error leaves the item in the heap (unsorted), so qsize()
 * agrees with the stdlib's: that error returns PUSH_FAILED_BUT_STORED. */
#define PUSH_FAILED_BUT_STORED (-2)

static int native_push(QueueObject *self, PyObject *item)
{
    if (ring_push(&self->ring, item) < 0)
        return -1;
    self->version++;
    if (self->kind == KIND_PRIO && heap_sift_down(self, 0, self->ring.len - 1) < 0)
        return PUSH_FAILED_BUT_STORED;
    return 0;
}

/* Remove the next item (len > 0). As heapq.heappop, a comparison error
 * while restoring the heap loses the smallest item. */
static PyObject *native_pop(QueueObject *self)
{
    PyObject *item;
    self->version++;
    if (self->kind == KIND_FIFO)
        item = ring_pop_front(&self->ring);
    else if (self->kind == KIND_LIFO)
        item = ring_pop_back(&self->ring);
    else {
        PyObject *last = ring_pop_back(&self->ring);
        if (self->ring.len == 0)
            item = last;
        else {
            item = self->ring.items[0];
            self->ring.items[0] = last;
            if (heap_sift_up(self, 0) < 0) {
                Py_DECREF(item);
                return NULL;
            }
        }
    }
    ring_maybe_shrink(&self->ring);
    return item;
}

/* -------------------------------------------- storage, either way */

static Py_ssize_t q_size(QueueObject *self)
{
    if (!self->dispatch)
        return self->ring.len;
    cc_state *st = qstate(self);
    if (!st)
        return -1;
    PyObject *r = PyObject_CallMethodNoArgs((PyObject *)self, st->str_qsize);
    if (!r)
        return -1;
    Py_ssize_t n = PyNumber_AsSsize_t(r, PyExc_OverflowError);
    Py_DECREF(r);
    if (n < 0) {
        if (PyErr_Occurred())
            return -1;
        n = 0;
    }
    return n;
}

static int q_push(QueueObject *self, PyObject *item)
{
    if (!self->dispatch)
        return native_push(self, item);
    cc_state *st = qstate(self);
    if (!st)
        return -1;
    PyObject *r = PyObject_CallMethodOneArg((PyObject *)self, st->str_put, item);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

static PyObject *q_pop(QueueObject *self)
{
    if (!self->dispatch)
        return native_pop(self);
    cc_state *st = qstate(self);
    return st ? PyObject_CallMethodNoArgs((PyObject *)self, st->str_get) : NULL;
}

/* -------------------------------------------------------------- timeouts */

typedef struct {
    cc_deadline deadline;  /* 0: do not wait; CC_FOREVER: no deadline */
    int too_large;         /* beyond TIMEOUT_MAX: OverflowError, but only if we must wait */
} qwait;

/* The stdlib's rules: `block` by truth value; with block, timeout None waits
 * forever, `timeout < 0` is ValueError, then `endtime = time() + timeout`
 * (whose TypeError or OverflowError is the stdlib's too); without block,
 * timeout is ignored. NaN is ValueError (the stdlib spins forever). */
static int qwait_parse(PyObject *block_obj, PyObject *timeout_obj, qwait *w)
{
    int block = 1;
    w->deadline = CC_FOREVER;
    w->too_large = 0;
    if (block_obj && (block = PyObject_IsTrue(block_obj)) < 0)
        return -1;
    if (!block) {
        w->deadline = 0;
        return 0;
    }
    if (!timeout_obj || timeout_obj == Py_None)
        return 0;
    double seconds;
    int negative;
    if (PyFloat_CheckExact(timeout_obj)) {
        seconds = PyFloat_AS_DOUBLE(timeout_obj);
        negative = seconds < 0;
    }
    else {
        PyObject *zero = PyLong_FromLong(0);
        negative = zero ? PyObject_RichCompareBool(timeout_obj, zero, Py_LT) : -1;
        Py_XDECREF(zero);
        if (negative < 0)
            return -1;
        if (negative)
            seconds = -1;
        else if (PyLong_CheckExact(timeout_obj)) {
            if ((seconds = PyLong_AsDouble(timeout_obj)) == -1.0 && PyErr_Occurred())
                return -1;
        }
        else {
            double now = (double)cc_monotonic_ns() / 1e9;
            PyObject *start = PyFloat_FromDouble(now);
            PyObject *end = start ? PyNumber_Add(start, timeout_obj) : NULL;
            Py_XDECREF(start);
            if (!end)
                return -1;
            seconds = PyFloat_AsDouble(end);
            Py_DECREF(end);
            if (seconds == -1.0 && PyErr_Occurred())
                return -1;
            seconds -= now;
        }
    }
    if (negative) {
        PyErr_SetString(PyExc_ValueError, "'timeout' must be a non-negative number");
        return -1;
    }
    if (isnan(seconds)) {
        PyErr_SetString(PyExc_ValueError, "timeout must not be NaN (the stdlib's queue would spin forever)");
        return -1;
    }
    if (seconds > CC_TIMEOUT_MAX)
        w->too_large = 1;
    else
        w->deadline = cc_deadline_after(seconds);
    return 0;
}

static int qwait_check_overflow(const qwait *w)
{
    if (w->too_large) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return -1;
    }
    return 0;
}

void cc_exc_attach(const char *name, PyObject *value)
{
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (exc && PyObject_SetAttrString(exc, name, value) < 0)
        PyErr_Clear();
    PyErr_Restore(type, exc, tb);
}

/* ---------------------------------------------------------- put and get */

/* Put items[0..n) in order, as many per wake-up as there is room for.
 * Returns 0, or -1 with *done items put (a prefix) and an exception set. */
static int queue_put_items(QueueObject *self, PyObject *const *items, Py_ssize_t n, PyObject *block_obj,
                           PyObject *timeout_obj, Py_ssize_t *done_out)
{
    qwait wt = {CC_FOREVER, 0};
    int parsed = 0, woken = 0, held = 0;
    Py_ssize_t done = 0;
    for (;;) {
        held = q_enter(self, q_needs_hold(self));
        if (held < 0)
            goto error;
        if (self->is_shutdown) {
            q_raise(self, RAISE_SHUTDOWN);
            goto error_held;
        }
        Py_ssize_t room = n - done;
        int bounded = maxsize_bounded(self);
        if (bounded < 0)
            goto error_held;
        if (bounded) {
            /* As the stdlib, block and timeout matter only for a bounded queue. */
            if (!parsed) {
                if (qwait_parse(block_obj, timeout_obj, &wt) < 0)
                    goto error_held;
                parsed = 1;
            }
            Py_ssize_t size = q_size(self);
            if (size < 0)
                goto error_held;
            if (self->maxsize_compared) {
                /* One at a time, each checked as the stdlib's put() does. */
                int full = maxsize_reached(self, size, Py_GE);
                if (full < 0)
                    goto error_held;
                room = full ? 0 : 1;
            }
            else if (self->maxsize - size < room)
                room = self->maxsize - size;
            if (room <= 0) {
                if (cc_deadline_passed(wt.deadline)) {
                    q_raise(self, RAISE_FULL);
                    goto error_held;
                }
                if (qwait_check_overflow(&wt) < 0)
                    goto error_held;
                cc_waiter w;
                cc_waitlist_append(&self->putters, &w);
                q_exit(self, held);
                held = 0;
                int r = cc_park(&self->putters, &w, wt.deadline);
                woken = w.state == CC_WOKEN;
                if (r == CC_PARK_ERROR)
                    goto error;
                continue;
            }
        }
        Py_ssize_t k = 0;
        int failed = 0;
        for (; k < room; k++) {
            if ((failed = q_push(self, items[done + k])) < 0)
                break;
        }
        done += k;
        /* As put(): a task is counted, and a getter woken, only for items
         * put without error. */
        self->unfinished += k;
        cc_waitlist_wake(&self->getters, k);
        if (failed == 0 && q_cond_notify(self, COND_NOT_EMPTY, k, held) < 0)
            goto error_held;
        if (failed < 0) {
            if (failed == PUSH_FAILED_BUT_STORED)
                done++;  /* it is in the queue: a retry must not put it again */
            goto error_held;
        }
        woken = 0;
        q_exit(self, held);
        held = 0;
        if (done == n) {
            *done_out = done;
            return 0;
        }
    }
error_held:
    q_exit(self, held);
error:
    if (woken)
        cc_waitlist_wake(&self->putters, 1);  /* a slot we were woken for and did not use */
    *done_out = done;
    return -1;
}

/* Wait until an item is available, then remove one (max_items == 0: return
 * it) or up to max_items (return a list). */
static PyObject *queue_get_items(QueueObject *self, Py_ssize_t max_items, PyObject *block_obj,
                                 PyObject *timeout_obj)
{
    qwait wt = {CC_FOREVER, 0};
    int parsed = 0, woken = 0, held = 0;
    Py_ssize_t size;
wait_for_items:
    for (;;) {
        held = q_enter(self, q_needs_hold(self));
        if (held < 0)
            goto error;
        size = q_size(self);
        if (size < 0)
            goto error_held;
        if (self->is_shutdown && size == 0) {
            q_raise(self, RAISE_SHUTDOWN);
            goto error_held;
        }
        if (!parsed) {
            if (qwait_parse(block_obj, timeout_obj, &wt) < 0)
                goto error_held;
            parsed = 1;
        }
        if (size > 0)
            break;
        if (cc_deadline_passed(wt.deadline)) {
            q_raise(self, RAISE_EMPTY);
            goto error_held;
        }
        if (qwait_check_overflow(&wt) < 0)
            goto error_held;
        cc_waiter w;
        cc_waitlist_append(&self->getters, &w);
        q_exit(self, held);
        held = 0;
        int r = cc_park(&self->getters, &w, wt.deadline);
        woken = w.state == CC_WOKEN;
        if (r == CC_PARK_ERROR)
            goto error;
    }
    if (max_items == 0) {
        PyObject *item = q_pop(self);
        if (!item)
            goto error_held;
        cc_waitlist_wake(&self->putters, 1);
        if (q_cond_notify(self, COND_NOT_FULL, 1, held) < 0) {
            Py_DECREF(item);  /* as the stdlib's get(): the item is gone, the error propagates */
            goto error_held;
        }
        q_exit(self, held);
        return item;
    }
    Py_ssize_t n = size < max_items ? size : max_items, got = 0;
    PyObject *list = PyList_New(n);  /* before anything leaves the queue */
    if (!list)
        goto error_held;
    /* The allocation may have run the GC, so any __del__, which may have
     * taken items (or let another thread take them): count again. */
    if ((size = q_size(self)) < 0) {
        Py_DECREF(list);
        goto error_held;
    }
    if (size < n) {
        n = size;
        Py_SET_SIZE(list, n);  /* the slots past n are still NULL */
    }
    if (n == 0) {
        /* Emptied under us: wait again, as get() would have. */
        Py_DECREF(list);
        q_exit(self, held);
        held = 0;
        goto wait_for_items;
    }
    for (; got < n; got++) {
        PyObject *item = q_pop(self);
        if (!item)
            break;
        PyList_SET_ITEM(list, got, item);
    }
    cc_waitlist_wake(&self->putters, got);
    if (got == n && q_cond_notify(self, COND_NOT_FULL, got, held) < 0) {
        cc_exc_attach("items", list);
        Py_DECREF(list);
        goto error_held;
    }
    if (got < n) {
        /* Never lose what was taken: the exception carries it as .items. */
        if (PyList_SetSlice(list, got, n, NULL) < 0)
            PyErr_Clear();
        cc_exc_attach("items", list);
        Py_DECREF(list);
        goto error_held;
    }
    q_exit(self, held);
    return list;
error_held:
    q_exit(self, held);
error:
    if (woken)
        cc_waitlist_wake(&self->getters, 1);  /* an item we were woken for and did not take */
    return NULL;
}

/* The uncontended native case of put and get: no Python code runs, so it
 * needs neither the mutex nor an argument parser. */
static inline int native_fast(QueueObject *self)
{
    return !self->slow && (!self->mutex || !mutex_locked(self->mutex));
}

static const char *const put_kwlist[] = {"item", "block", "timeout", NULL};
static const char *const get_kwlist[] = {"block", "timeout", NULL};

static PyObject *queue_put_impl(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 1 && !kwnames && !self->is_shutdown &&
        (self->maxsize <= 0 || self->ring.len < self->maxsize) && native_fast(self)) {
        if (ring_push(&self->ring, args[0]) < 0)
            return NULL;
        self->version++;
        self->unfinished++;
        cc_waitlist_wake(&self->getters, 1);
        if (q_cond_notify(self, COND_NOT_EMPTY, 1, 0) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *a[3];
    Py_ssize_t done;
    if (cc_parse_args("put", args, nargs, kwnames, put_kwlist, 3, 1, a) < 0 ||
        queue_put_items(self, a, 1, a[1], a[2], &done) < 0)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_FASTCALL_KW(queue_put, QueueObject)

/* self.put(item, block=False) / self.get(block=False), as the stdlib's
 * put_nowait()/get_nowait(), when put or get is overridden. */
static PyObject *queue_call_public(QueueObject *self, PyObject *name, PyObject *item)
{
    cc_state *st = qstate(self);
    if (!st)
        return NULL;
    PyObject *method = PyObject_GetAttr((PyObject *)self, name);
    if (!method)
        return NULL;
    PyObject *kwnames = PyTuple_Pack(1, st->str_block);
    PyObject *r = NULL;
    if (kwnames) {
        PyObject *args[2] = {item, Py_False};
        r = item ? PyObject_Vectorcall(method, args, 1, kwnames) : PyObject_Vectorcall(method, args + 1, 0, kwnames);
        Py_DECREF(kwnames);
    }
    Py_DECREF(method);
    return r;
}

static PyObject *queue_put_nowait_impl(QueueObject *self, PyObject *item)
{
    if (self->calls_put) {
        cc_state *st = qstate(self);
        return st ? queue_call_public(self, st->str_public_put, item) : NULL;
    }
    if (!self->is_shutdown && (self->maxsize <= 0 || self->ring.len < self->maxsize) && native_fast(self)) {
        if (ring_push(&self->ring, item) < 0)
            return NULL;
        self->version++;
        self->unfinished++;
        cc_waitlist_wake(&self->getters, 1);
        if (q_cond_notify(self, COND_NOT_EMPTY, 1, 0) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    Py_ssize_t done;
    if (queue_put_items(self, &item, 1, Py_False, NULL, &done) < 0)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_O(queue_put_nowait, QueueObject)

static PyObject *queue_get_impl(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && !kwnames && self->ring.len && native_fast(self)) {
        PyObject *item = native_pop(self);
        cc_waitlist_wake(&self->putters, 1);
        if (q_cond_notify(self, COND_NOT_FULL, 1, 0) < 0)
            Py_CLEAR(item);
        return item;
    }
    PyObject *a[2];
    if (cc_parse_args("get", args, nargs, kwnames, get_kwlist, 2, 0, a) < 0)
        return NULL;
    return queue_get_items(self, 0, a[0], a[1]);
}
CC_CS_FASTCALL_KW(queue_get, QueueObject)

static PyObject *queue_get_nowait_impl(QueueObject *self)
{
    if (self->calls_get) {
        cc_state *st = qstate(self);
        return st ? queue_call_public(self, st->str_public_get, NULL) : NULL;
    }
    if (self->ring.len && native_fast(self)) {
        PyObject *item = native_pop(self);
        cc_waitlist_wake(&self->putters, 1);
        if (q_cond_notify(self, COND_NOT_FULL, 1, 0) < 0)
            Py_CLEAR(item);
        return item;
    }
    return queue_get_items(self, 0, Py_False, NULL);
}
CC_CS_NOARGS(queue_get_nowait, QueueObject)

static PyObject *queue_put_many_impl(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"items", "block", "timeout", NULL};
    PyObject *a[3];
    if (cc_parse_args("put_many", args, nargs, kwnames, kwlist, 3, 1, a) < 0)
        return NULL;
    /* Read the whole iterable first: an error while iterating puts nothing.
     * A tuple of our own, because the call may wait or run Python code, and
     * meanwhile any thread could change a list we were given. */
    PyObject *seq = PySequence_Tuple(a[0]);
    if (!seq)
        return NULL;
    Py_ssize_t done = 0, n = PyTuple_GET_SIZE(seq);
    int r = 0;
    if (n) {
        if (!self->dispatch && self->kind != KIND_PRIO && self->maxsize <= 0 &&
            ring_reserve(&self->ring, n) < 0)
            r = -1;  /* nothing put */
        else
            r = queue_put_items(self, &PyTuple_GET_ITEM(seq, 0), n, a[1], a[2], &done);
    }
    Py_DECREF(seq);
    if (r < 0) {
        PyObject *count = PyLong_FromSsize_t(done);
        if (count) {
            cc_exc_attach("put_count", count);
            Py_DECREF(count);
        }
        return NULL;
    }
    Py_RETURN_NONE;
}
CC_CS_FASTCALL_KW(queue_put_many, QueueObject)

static PyObject *queue_get_many_impl(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"max_items", "block", "timeout", NULL};
    PyObject *a[3];
    if (cc_parse_args("get_many", args, nargs, kwnames, kwlist, 3, 1, a) < 0)
        return NULL;
    Py_ssize_t max_items = PyNumber_AsSsize_t(a[0], PyExc_OverflowError);
    if (max_items == -1 && PyErr_Occurred())
        return NULL;
    if (max_items < 1) {
        PyErr_SetString(PyExc_ValueError, "max_items must be a positive integer");
        return NULL;
    }
    return queue_get_items(self, max_items, a[1], a[2]);
}
CC_CS_FASTCALL_KW(queue_get_many, QueueObject)

/* ------------------------------------------------------ tasks, sizes */

static PyObject *queue_task_done_impl(QueueObject *self)
{
    int held = q_enter(self, 0);
    if (held < 0)
        return NULL;
    Py_ssize_t unfinished = self->unfinished - 1;
    if (unfinished <= 0) {
        if (unfinished < 0) {
            q_exit(self, held);
            PyErr_SetString(PyExc_ValueError, "task_done() called too many times");
            return NULL;
        }
        cc_waitlist_wake(&self->joiners, -1);
    }
    self->unfinished = unfinished;
    if (unfinished == 0 && q_cond_notify(self, COND_ALL_TASKS_DONE, -1, held) < 0) {
        q_exit(self, held);
        return NULL;
    }
    q_exit(self, held);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(queue_task_done, QueueObject)

static PyObject *queue_join_impl(QueueObject *self)
{
    for (;;) {
        int held = q_enter(self, 0);
        if (held < 0)
            return NULL;
        if (self->unfinished == 0) {
            q_exit(self, held);
            Py_RETURN_NONE;
        }
        cc_waiter w;
        cc_waitlist_append(&self->joiners, &w);
        q_exit(self, held);
        if (cc_park(&self->joiners, &w, CC_FOREVER) == CC_PARK_ERROR)
            return NULL;  /* joiners are all woken together: nothing to pass on */
    }
}
CC_CS_NOARGS(queue_join, QueueObject)

/* qsize() under the stdlib's locking; -1 on error. */
static Py_ssize_t queue_locked_size(QueueObject *self)
{
    if (!self->dispatch && !self->mutex)
        return self->ring.len;
    int held = q_enter(self, self->dispatch);
    if (held < 0)
        return -1;
    Py_ssize_t n = q_size(self);
    q_exit(self, held);
    return n;
}

static PyObject *queue_qsize_impl(QueueObject *self)
{
    Py_ssize_t n = queue_locked_size(self);
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}
CC_CS_NOARGS(queue_qsize, QueueObject)

static PyObject *queue_empty_impl(QueueObject *self)
{
    Py_ssize_t n = queue_locked_size(self);
    return n < 0 ? NULL : PyBool_FromLong(n == 0);
}
CC_CS_NOARGS(queue_empty, QueueObject)

static PyObject *queue_full_impl(QueueObject *self)
{
    Py_ssize_t n = queue_locked_size(self);
    if (n < 0)
        return NULL;
    /* `0 < self.maxsize <= self._qsize()` */
    int r = maxsize_bounded(self);
    if (r > 0)
        r = maxsize_reached(self, n, Py_LE);
    return r < 0 ? NULL : PyBool_FromLong(r);
}
CC_CS_NOARGS(queue_full, QueueObject)

static PyObject *queue_shutdown_impl(QueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"immediate", NULL};
    PyObject *immediate_obj;
    int immediate = 0;
    if (cc_parse_args("shutdown", args, nargs, kwnames, kwlist, 1, 0, &immediate_obj) < 0)
        return NULL;
    if (immediate_obj && (immediate = PyObject_IsTrue(immediate_obj)) < 0)
        return NULL;
    int held = q_enter(self, self->dispatch);
    if (held < 0)
        return NULL;
    cc_ring drained = {NULL, 0, 0, 0};
    int failed = 0;
    self->is_shutdown = 1;
    if (immediate) {
        if (!self->dispatch) {
            Py_ssize_t n = self->ring.len;
            ring_detach(&self->ring, &drained);
            self->version++;
            if (self->unfinished > 0)
                self->unfinished = self->unfinished > n ? self->unfinished - n : 0;
        }
        else {
            for (;;) {
                Py_ssize_t n = q_size(self);
                PyObject *item = n > 0 ? q_pop(self) : NULL;
                if (!item) {
                    failed = n != 0;
                    break;
                }
                Py_DECREF(item);
                if (self->unfinished > 0)
                    self->unfinished--;
            }
        }
        cc_waitlist_wake(&self->joiners, -1);
    }
    /* Getters must see the queue empty and raise; putters raise. */
    cc_waitlist_wake(&self->getters, -1);
    cc_waitlist_wake(&self->putters, -1);
    if ((immediate && q_cond_notify(self, COND_ALL_TASKS_DONE, -1, held) < 0) ||
        q_cond_notify(self, COND_NOT_EMPTY, -1, held) < 0 || q_cond_notify(self, COND_NOT_FULL, -1, held) < 0)
        failed = 1;
    q_exit(self, held);
    ring_release(&drained);  /* our state is consistent: any __del__ may run */
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_FASTCALL_KW(queue_shutdown, QueueObject)

/* ---------------------------------- the overridable methods of queue.py */

static PyObject *queue_self_queue(QueueObject *self, cc_state **st)
{
    *st = qstate(self);
    return *st ? PyObject_GetAttr((PyObject *)self, (*st)->str_queue) : NULL;
}

static PyObject *queue__init_impl(QueueObject *self, PyObject *maxsize)
{
    if (!self->generic) {
        cc_ring old;
        ring_detach(&self->ring, &old);
        self->version++;
        ring_release(&old);
        Py_RETURN_NONE;
    }
    cc_state *st = qstate(self);
    if (!st)
        return NULL;
    PyObject *storage = self->kind == KIND_FIFO ? PyObject_CallNoArgs(st->queue_deque) : PyList_New(0);
    if (!storage)
        return NULL;
    int r = PyObject_SetAttr((PyObject *)self, st->str_queue, storage);
    Py_DECREF(storage);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_O(queue__init, QueueObject)

static PyObject *queue__qsize_impl(QueueObject *self)
{
    if (!self->generic)
        return PyLong_FromSsize_t(self->ring.len);
    cc_state *st;
    PyObject *q = queue_self_queue(self, &st);
    if (!q)
        return NULL;
    Py_ssize_t n = PyObject_Size(q);
    Py_DECREF(q);
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}
CC_CS_NOARGS(queue__qsize, QueueObject)

static PyObject *queue__put_impl(QueueObject *self, PyObject *item)
{
    if (!self->generic) {
        if (native_push(self, item) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    cc_state *st;
    PyObject *q = queue_self_queue(self, &st), *r;
    if (!q)
        return NULL;
    if (self->kind == KIND_PRIO) {
        PyObject *args[2] = {q, item};
        r = PyObject_Vectorcall(st->queue_heappush, args, 2, NULL);
    }
    else
        r = PyObject_CallMethodOneArg(q, st->str_append, item);
    Py_DECREF(q);
    return r;
}
CC_CS_O(queue__put, QueueObject)

static PyObject *queue__get_impl(QueueObject *self)
{
    if (!self->generic) {
        if (self->ring.len == 0) {
            PyErr_SetString(PyExc_IndexError, self->kind == KIND_FIFO   ? "pop from an empty deque"
                                              : self->kind == KIND_LIFO ? "pop from empty list"
                                                                        : "index out of range");
            return NULL;
        }
        return native_pop(self);
    }
    cc_state *st;
    PyObject *q = queue_self_queue(self, &st), *r;
    if (!q)
        return NULL;
    if (self->kind == KIND_PRIO)
        r = PyObject_CallOneArg(st->queue_heappop, q);
    else
        r = PyObject_CallMethodNoArgs(q, self->kind == KIND_FIFO ? st->str_popleft : st->str_pop);
    Py_DECREF(q);
    return r;
}
CC_CS_NOARGS(queue__get, QueueObject)

static PyObject *view_list(QueueObject *q);
static int queue_update_overrides(QueueObject *self);

/* copy.copy(q): the stdlib's shallow copy (cls.__new__ and the instance
 * attributes, no __init__) shares the storage deque and the lock. A native
 * ring cannot be shared: the copy gets the same items, maxsize, counts and
 * attributes, in storage of its own. A generic queue's copy shares self.queue
 * and q.mutex, as the stdlib's. */
static PyObject *queue_copy_impl(QueueObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject *items = NULL, *args = PyTuple_New(0);
    if (!args)
        return NULL;
    QueueObject *c = (QueueObject *)type->tp_new(type, args, NULL);
    Py_DECREF(args);
    if (!c)
        return NULL;
    if (!PyObject_TypeCheck(c, type)) {
        PyErr_Format(PyExc_TypeError, "%.200s.__new__ returned another type", type->tp_name);
        goto error;
    }
    if (self->dict && !(c->dict = PyDict_Copy(self->dict)))
        goto error;
    if (!self->generic) {
        if (!(items = view_list(self)))
            goto error;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++)
            if (ring_push(&c->ring, PyList_GET_ITEM(items, i)) < 0)
                goto error;
        Py_CLEAR(items);
    }
    else {
        c->generic = 1;
        Py_XSETREF(c->pyqueue, Py_XNewRef(self->pyqueue));
        Py_XSETREF(c->mutex, Py_XNewRef(self->mutex));
    }
    Py_XSETREF(c->maxsize_obj, Py_NewRef(self->maxsize_obj));
    c->maxsize = self->maxsize;
    c->maxsize_compared = self->maxsize_compared;
    c->unfinished = self->unfinished;
    c->is_shutdown = self->is_shutdown;
    if (queue_update_overrides(c) < 0)
        goto error;
    return (PyObject *)c;
error:
    Py_XDECREF(items);
    Py_DECREF(c);
    return NULL;
}
CC_CS_NOARGS(queue_copy, QueueObject)

static PyObject *queue_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyErr_Format(PyExc_TypeError, "cannot pickle '%.200s' object", Py_TYPE(self)->tp_name);
    return NULL;
}

/* ------------------------------------------------- creation, GC */

static int type_kind(PyTypeObject *type, cc_state *st)
{
    PyObject *mro = type->tp_mro;
    for (Py_ssize_t i = 0; mro && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (t == st->LifoQueue_type)
            return KIND_LIFO;
        if (t == st->PriorityQueue_type)
            return KIND_PRIO;
        if (t == st->Queue_type)
            return KIND_FIFO;
    }
    return KIND_FIFO;
}

/* Which of our methods a class between `type` and our base overrides: OVR_STORAGE
 * for _init, _qsize, _put or _get, OVR_PUT for put, OVR_GET for get; -1 on error. */
static int type_overrides(PyTypeObject *type, cc_state *st)
{
    PyObject *names[6] = {st->str_init, st->str_qsize, st->str_put, st->str_get, st->str_public_put,
                          st->str_public_get};
    static const int bits[6] = {OVR_STORAGE, OVR_STORAGE, OVR_STORAGE, OVR_STORAGE, OVR_PUT, OVR_GET};
    int found = 0;
    PyObject *mro = type->tp_mro;
    for (Py_ssize_t i = 0; mro && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (t == st->Queue_type || t == st->LifoQueue_type || t == st->PriorityQueue_type)
            break;
        if (!t->tp_dict)
            continue;
        for (int k = 0; k < 6; k++) {
            if (PyDict_GetItemWithError(t->tp_dict, names[k]))
                found |= bits[k];
            else if (PyErr_Occurred())
                return -1;
        }
    }
    return found;
}

/* The flags from what the class and the instance's own attributes override. */
static int queue_update_overrides(QueueObject *self)
{
    unsigned found = self->type_overrides;
    if (self->dict && PyDict_GET_SIZE(self->dict)) {
        cc_state *st = qstate(self);
        if (!st)
            return -1;
        PyObject *names[5] = {st->str_qsize, st->str_put, st->str_get, st->str_public_put, st->str_public_get};
        static const int bits[5] = {OVR_STORAGE, OVR_STORAGE, OVR_STORAGE, OVR_PUT, OVR_GET};
        for (int k = 0; k < 5; k++) {
            if (PyDict_GetItemWithError(self->dict, names[k]))
                found |= bits[k];
            else if (PyErr_Occurred())
                return -1;
        }
    }
    self->dispatch = self->generic || (found & OVR_STORAGE);
    q_update_slow(self);
    self->calls_put = (found & OVR_PUT) != 0;
    self->calls_get = (found & OVR_GET) != 0;
    return 0;
}

/* Setting or deleting one of the overridable methods on the instance
 * changes how the queue runs from the next operation on. */
static int queue_setattro_impl(QueueObject *self, PyObject *name, PyObject *value)
{
    if (PyObject_GenericSetAttr((PyObject *)self, name, value) < 0)
        return -1;
    if (PyUnicode_Check(name) && PyUnicode_GET_LENGTH(name) <= 6 &&
        (PyUnicode_CompareWithASCIIString(name, "_qsize") == 0 || PyUnicode_CompareWithASCIIString(name, "_put") == 0 ||
         PyUnicode_CompareWithASCIIString(name, "_get") == 0 || PyUnicode_CompareWithASCIIString(name, "put") == 0 ||
         PyUnicode_CompareWithASCIIString(name, "get") == 0))
        return queue_update_overrides(self);
    return 0;
}
static int queue_setattro(QueueObject *self, PyObject *name, PyObject *value)
{
    int res;
    Py_BEGIN_CRITICAL_SECTION(self);
    res = queue_setattro_impl(self, name, value);
    Py_END_CRITICAL_SECTION();
    return res;
}

static PyObject *queue_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    cc_state *st = cc_state_of_type(type);
    if (!st)
        return NULL;
    int kind = KIND_FIFO, overrides = 0;
    if (type == st->LifoQueue_type)
        kind = KIND_LIFO;
    else if (type == st->PriorityQueue_type)
        kind = KIND_PRIO;
    else if (type != st->Queue_type) {
        kind = type_kind(type, st);
        if ((overrides = type_overrides(type, st)) < 0)
            return NULL;
    }
    QueueObject *self = (QueueObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->kind = kind;
    self->type_overrides = (unsigned)overrides;
    self->generic = self->dispatch = (overrides & OVR_STORAGE) != 0;
    q_update_slow(self);
    self->calls_put = (overrides & OVR_PUT) != 0;
    self->calls_get = (overrides & OVR_GET) != 0;
    cc_waitlist_init(&self->getters);
    cc_waitlist_init(&self->putters);
    cc_waitlist_init(&self->joiners);
    self->maxsize_obj = PyLong_FromLong(0);
    if (!self->maxsize_obj) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* maxsize as the stdlib reads it: `0 < maxsize <= qsize` means full. */
static int maxsize_from_object(PyObject *obj, Py_ssize_t *out, int *compared)
{
    *compared = 0;
    if (PyFloat_Check(obj)) {
        double d = PyFloat_AS_DOUBLE(obj);
        if (!(d > 0))
            *out = 0;  /* NaN compares false: never full, as in the stdlib */
        else if (d >= (double)PY_SSIZE_T_MAX)
            *out = PY_SSIZE_T_MAX;
        else
            *out = (Py_ssize_t)ceil(d);
        return 0;
    }
    if (!PyIndex_Check(obj)) {
        /* As the stdlib, which only stores it: compared at put() and full(). */
        *compared = 1;
        *out = 0;
        return 0;
    }
    PyObject *i = PyNumber_Index(obj);
    if (!i)
        return -1;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow)
        *out = overflow > 0 ? PY_SSIZE_T_MAX : 0;
    else
        *out = v <= 0 ? 0 : v > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)v;
    return 0;
}

static int queue_set_maxsize_impl(QueueObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    Py_ssize_t n;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete maxsize");
        return -1;
    }
    int compared;
    if (maxsize_from_object(value, &n, &compared) < 0)
        return -1;
    Py_SETREF(self->maxsize_obj, Py_NewRef(value));
    self->maxsize = n;
    self->maxsize_compared = compared;
    q_update_slow(self);
    cc_waitlist_wake(&self->putters, -1);  /* there may be room now: they re-check */
    return 0;
}
static int queue_set_maxsize(QueueObject *self, PyObject *value, void *closure)
{
    int res;
    Py_BEGIN_CRITICAL_SECTION(self);
    res = queue_set_maxsize_impl(self, value, closure);
    Py_END_CRITICAL_SECTION();
    return res;
}

static int queue_init(QueueObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"maxsize", NULL};
    PyObject *maxsize = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Queue", kwlist, &maxsize))
        return -1;
    if (maxsize) {
        if (queue_set_maxsize(self, maxsize, NULL) < 0)
            return -1;
    }
    else {
        PyObject *zero = PyLong_FromLong(0);
        if (!zero)
            return -1;
        Py_SETREF(self->maxsize_obj, zero);
        self->maxsize = 0;
        self->maxsize_compared = 0;
        q_update_slow(self);
    }
    /* __init__ again starts a new, empty queue, as the stdlib's does. */
    self->is_shutdown = 0;
    self->unfinished = 0;
    if (self->generic) {
        cc_state *st = qstate(self);
        if (!st || q_make_mutex(self) < 0)
            return -1;
        PyObject *r = PyObject_CallMethodOneArg((PyObject *)self, st->str_init, self->maxsize_obj);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    else {
        cc_ring old;
        ring_detach(&self->ring, &old);
        self->version++;
        ring_release(&old);
    }
    return 0;
}

static int queue_traverse(QueueObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->maxsize_obj);
    Py_VISIT(self->mutex);
    Py_VISIT(self->not_empty);
    Py_VISIT(self->not_full);
    Py_VISIT(self->all_tasks_done);
    for (int i = 0; i < 3; i++)
        Py_VISIT(self->cond_waiters[i]);
    Py_VISIT(self->pyqueue);
    Py_VISIT(self->dict);
    return ring_traverse(&self->ring, visit, arg);
}

static int queue_clear(QueueObject *self)
{
    cc_ring old;
    ring_detach(&self->ring, &old);
    self->version++;
    ring_release(&old);
    /* maxsize_obj stays until dealloc: a __del__ run by this clearing may
     * still read q.maxsize (it cannot be part of a cycle worth breaking). */
    Py_CLEAR(self->not_empty);
    Py_CLEAR(self->not_full);
    Py_CLEAR(self->all_tasks_done);
    for (int i = 0; i < 3; i++)
        Py_CLEAR(self->cond_waiters[i]);
    Py_CLEAR(self->mutex);
    Py_CLEAR(self->pyqueue);
    Py_CLEAR(self->dict);
    return 0;
}

static void queue_dealloc(QueueObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    queue_clear(self);
    Py_CLEAR(self->maxsize_obj);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* --------------------------------------------------------- attributes */

static PyObject *queue_get_maxsize_impl(QueueObject *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->maxsize_obj);
}
CC_CS_GETTER(queue_get_maxsize, QueueObject)

static PyObject *queue_get_unfinished_impl(QueueObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->unfinished);
}
CC_CS_GETTER(queue_get_unfinished, QueueObject)

/* Code that empties a queue by hand resets the count (`q.unfinished_tasks
 * = 0` under q.mutex, then all_tasks_done.notify_all()): joiners are parked
 * on our own list, so reaching 0 here releases them. */
static int queue_set_unfinished_impl(QueueObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete unfinished_tasks");
        return -1;
    }
    Py_ssize_t n = PyNumber_AsSsize_t(value, PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred())
        return -1;
    self->unfinished = n;
    if (n == 0)
        cc_waitlist_wake(&self->joiners, -1);
    return 0;
}
static int queue_set_unfinished(QueueObject *self, PyObject *value, void *closure)
{
    int res;
    Py_BEGIN_CRITICAL_SECTION(self);
    res = queue_set_unfinished_impl(self, value, closure);
    Py_END_CRITICAL_SECTION();
    return res;
}

static PyObject *queue_get_is_shutdown_impl(QueueObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->is_shutdown);
}
CC_CS_GETTER(queue_get_is_shutdown, QueueObject)

static int queue_set_is_shutdown_impl(QueueObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    int v;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete is_shutdown");
        return -1;
    }
    if ((v = PyObject_IsTrue(value)) < 0)
        return -1;
    self->is_shutdown = v;
    if (v) {
        cc_waitlist_wake(&self->getters, -1);
        cc_waitlist_wake(&self->putters, -1);
    }
    return 0;
}
static int queue_set_is_shutdown(QueueObject *self, PyObject *value, void *closure)
{
    int res;
    Py_BEGIN_CRITICAL_SECTION(self);
    res = queue_set_is_shutdown_impl(self, value, closure);
    Py_END_CRITICAL_SECTION();
    return res;
}

static PyObject *queue_get_mutex_impl(QueueObject *self, void *Py_UNUSED(closure))
{
    if (q_make_mutex(self) < 0)
        return NULL;
    return Py_NewRef(self->mutex);
}
CC_CS_GETTER(queue_get_mutex, QueueObject)

/* q.not_empty & co: the stdlib's threading.Condition on q.mutex, made on
 * first use. `with q.not_full:` locks the mutex as in the stdlib; our own
 * waiters do not wait on them, but whoever does is notified (q_cond_notify). */
static PyObject *queue_condition(QueueObject *self, int which)
{
    PyObject **slot = q_cond_slot(self, which);
    if (!*slot) {
        cc_state *st = qstate(self);
        if (!st || q_make_mutex(self) < 0)
            return NULL;
        PyObject *cond = PyObject_CallOneArg(st->queue_Condition, self->mutex);
        if (!cond)
            return NULL;
        PyObject *waiters = PyObject_GetAttrString(cond, "_waiters");
        if (!waiters || !PyObject_TypeCheck(waiters, (PyTypeObject *)st->queue_deque)) {
            if (waiters)
                PyErr_SetString(PyExc_TypeError, "threading.Condition()._waiters is not a deque");
            Py_XDECREF(waiters);
            Py_DECREF(cond);
            return NULL;
        }
        if (*slot) {  /* made meanwhile, by code the calls ran */
            Py_DECREF(cond);
            Py_DECREF(waiters);
        }
        else {
            *slot = cond;
            Py_XSETREF(self->cond_waiters[which], waiters);
        }
    }
    return Py_NewRef(*slot);
}

static PyObject *queue_get_not_empty_impl(QueueObject *self, void *c) { return queue_condition(self, COND_NOT_EMPTY); }
CC_CS_GETTER(queue_get_not_empty, QueueObject)
static PyObject *queue_get_not_full_impl(QueueObject *self, void *c) { return queue_condition(self, COND_NOT_FULL); }
CC_CS_GETTER(queue_get_not_full, QueueObject)
static PyObject *queue_get_all_tasks_done_impl(QueueObject *self, void *c)
{
    return queue_condition(self, COND_ALL_TASKS_DONE);
}
CC_CS_GETTER(queue_get_all_tasks_done, QueueObject)

static PyObject *queue_get_queue_impl(QueueObject *self, void *Py_UNUSED(closure))
{
    if (self->generic) {
        if (!self->pyqueue) {
            PyErr_Format(PyExc_AttributeError, "'%.200s' object has no attribute 'queue'",
                         Py_TYPE(self)->tp_name);
            return NULL;
        }
        return Py_NewRef(self->pyqueue);
    }
    cc_state *st = qstate(self);
    if (!st)
        return NULL;
    QueueViewObject *view = PyObject_GC_New(QueueViewObject, st->QueueView_type);
    if (!view)
        return NULL;
    view->q = (QueueObject *)Py_NewRef(self);
    PyObject_GC_Track(view);
    if (self->generic) {
        /* A __del__ run by the allocation assigned q.queue: that is the queue now. */
        Py_DECREF(view);
        return queue_get_queue_impl(self, NULL);
    }
    return (PyObject *)view;
}
CC_CS_GETTER(queue_get_queue, QueueObject)

/* Assigning q.queue (as subclasses' _init do) makes the queue generic: from
 * then on it works on that object through _qsize/_put/_get, as the stdlib. */
static int queue_set_queue_impl(QueueObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (!value) {
        if (!self->generic || !self->pyqueue) {
            PyErr_SetString(PyExc_AttributeError, "queue");
            return -1;
        }
        Py_CLEAR(self->pyqueue);
        return 0;
    }
    cc_ring old = {NULL, 0, 0, 0};
    if (!self->generic) {
        if (q_make_mutex(self) < 0)
            return -1;
        ring_detach(&self->ring, &old);
        self->version++;
        self->generic = self->dispatch = 1;
        q_update_slow(self);
    }
    Py_XSETREF(self->pyqueue, Py_NewRef(value));
    cc_waitlist_wake(&self->getters, -1);
    cc_waitlist_wake(&self->putters, -1);
    ring_release(&old);
    return 0;
}
static int queue_set_queue(QueueObject *self, PyObject *value, void *closure)
{
    int res;
    Py_BEGIN_CRITICAL_SECTION(self);
    res = queue_set_queue_impl(self, value, closure);
    Py_END_CRITICAL_SECTION();
    return res;
}

static PyGetSetDef queue_getset[] = {
    {"maxsize", (getter)queue_get_maxsize, (setter)queue_set_maxsize, "The bound given to the constructor (<= 0: unbounded).", NULL},
    {"unfinished_tasks", (getter)queue_get_unfinished, (setter)queue_set_unfinished,
     "Items put and not yet marked done by task_done().", NULL},
    {"is_shutdown", (getter)queue_get_is_shutdown, (setter)queue_set_is_shutdown, "True after shutdown().", NULL},
    {"mutex", (getter)queue_get_mutex, NULL, "The queue's lock (a cconc Lock), as in the stdlib.", NULL},
    {"not_empty", (getter)queue_get_not_empty, NULL, "A threading.Condition on mutex.", NULL},
    {"not_full", (getter)queue_get_not_full, NULL, "A threading.Condition on mutex.", NULL},
    {"all_tasks_done", (getter)queue_get_all_tasks_done, NULL, "A threading.Condition on mutex.", NULL},
    {"queue", (getter)queue_get_queue, (setter)queue_set_queue,
     "The items in order (a live view: len, iteration, indexing, clear()).", NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

static PyMemberDef queue_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(QueueObject, weakreflist), READONLY},
    {"__dictoffset__", T_PYSSIZET, offsetof(QueueObject, dict), READONLY},
    {NULL},
};

static PyMethodDef queue_methods[] = {
    {"put", (PyCFunction)(void (*)(void))queue_put, METH_FASTCALL | METH_KEYWORDS,
     "put(item, block=True, timeout=None)\n--\n\n"
     "Put an item into the queue. On a full bounded queue, wait for a free slot\n"
     "if block is true (at most timeout seconds when it is a non-negative\n"
     "number), else raise queue.Full. Raises ShutDown after shutdown()."},
    {"put_nowait", (PyCFunction)queue_put_nowait, METH_O,
     "put_nowait(item)\n--\n\nPut an item only if a free slot is immediately available, else raise Full."},
    {"get", (PyCFunction)(void (*)(void))queue_get, METH_FASTCALL | METH_KEYWORDS,
     "get(block=True, timeout=None)\n--\n\n"
     "Remove and return an item. On an empty queue, wait for one if block is\n"
     "true (at most timeout seconds when it is a non-negative number), else\n"
     "raise queue.Empty. After shutdown(), raises ShutDown once the queue is empty."},
    {"get_nowait", (PyCFunction)queue_get_nowait, METH_NOARGS,
     "get_nowait()\n--\n\nRemove and return an item if one is immediately available, else raise Empty."},
    {"put_many", (PyCFunction)(void (*)(void))queue_put_many, METH_FASTCALL | METH_KEYWORDS,
     "put_many(items, block=True, timeout=None)\n--\n\n"
     "Put every item of the iterable, in order, as put() would one by one, but\n"
     "as many per wake-up as there is room for. The iterable is read to its end\n"
     "first: an error while iterating puts nothing. On a bounded queue the items\n"
     "go in as room frees up (consumers may take the first before the last is\n"
     "in); the timeout covers the whole call. If it cannot finish (Full when\n"
     "block is false or the timeout passes, ShutDown, KeyboardInterrupt, an\n"
     "error from _put or a comparison), the exception has an attribute\n"
     "put_count: the first put_count items are in the queue, the others are not\n"
     "(an item a PriorityQueue failed to compare stays in, as with put() and\n"
     "heapq, and is counted). Nothing is lost or duplicated: retry with\n"
     "items[e.put_count:]."},
    {"get_many", (PyCFunction)(void (*)(void))queue_get_many, METH_FASTCALL | METH_KEYWORDS,
     "get_many(max_items, block=True, timeout=None)\n--\n\n"
     "Wait exactly as get() does until at least one item is available (Empty on\n"
     "timeout or when block is false, ShutDown after shutdown() once empty),\n"
     "then remove and return a list of up to max_items items (a positive int),\n"
     "in the order get() would return them, without waiting for more. Each item\n"
     "counts as one get() for task_done(). If _get or a comparison raises\n"
     "midway, the items already removed are attached to the exception as .items."},
    {"qsize", (PyCFunction)queue_qsize, METH_NOARGS,
     "qsize()\n--\n\nReturn the approximate size of the queue (not reliable!)."},
    {"empty", (PyCFunction)queue_empty, METH_NOARGS,
     "empty()\n--\n\nReturn True if the queue is empty, False otherwise (not reliable!)."},
    {"full", (PyCFunction)queue_full, METH_NOARGS,
     "full()\n--\n\nReturn True if the queue is full, False otherwise (not reliable!)."},
    {"task_done", (PyCFunction)queue_task_done, METH_NOARGS,
     "task_done()\n--\n\nIndicate that a formerly enqueued task is complete; ValueError if called\n"
     "more times than there were items placed in the queue."},
    {"join", (PyCFunction)queue_join, METH_NOARGS,
     "join()\n--\n\nBlock until every item put has been gotten and marked done by task_done()."},
    {"shutdown", (PyCFunction)(void (*)(void))queue_shutdown, METH_FASTCALL | METH_KEYWORDS,
     "shutdown(immediate=False)\n--\n\n"
     "Shut down the queue (the 3.13 API): put raises ShutDown, get raises it once\n"
     "the queue is empty. immediate=True also drains the queue at once, marking\n"
     "a task done per item removed (which may release join()). Every blocked\n"
     "put() and get() wakes up."},
    {"_init", (PyCFunction)queue__init, METH_O, "_init(maxsize): make the (empty) storage."},
    {"_qsize", (PyCFunction)queue__qsize, METH_NOARGS, "_qsize(): number of items stored."},
    {"_put", (PyCFunction)queue__put, METH_O, "_put(item): store an item (no locking, no wake-up)."},
    {"_get", (PyCFunction)queue__get, METH_NOARGS, "_get(): remove the next item (no locking, no wake-up)."},
    {"__reduce__", (PyCFunction)queue_reduce, METH_NOARGS, NULL},
    {"__copy__", (PyCFunction)queue_copy, METH_NOARGS, NULL},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, "See PEP 585"},
    {NULL, NULL},
};

static PyType_Slot queue_slots[] = {
    {Py_tp_new, queue_new},
    {Py_tp_init, queue_init},
    {Py_tp_dealloc, queue_dealloc},
    {Py_tp_traverse, queue_traverse},
    {Py_tp_clear, queue_clear},
    {Py_tp_methods, queue_methods},
    {Py_tp_getset, queue_getset},
    {Py_tp_setattro, queue_setattro},
    {Py_tp_members, queue_members},
    {Py_tp_doc, "Queue(maxsize=0)\n--\n\n"
                "Create a queue object with a given maximum size (native).\n\n"
                "If maxsize is <= 0, the queue size is infinite."},
    {0, NULL},
};

static PyType_Spec queue_spec = {
    .name = "cconc.queue.Queue",
    .basicsize = sizeof(QueueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = queue_slots,
};

static PyType_Slot lifo_slots[] = {
    {Py_tp_traverse, queue_traverse},
    {Py_tp_clear, queue_clear},
    {Py_tp_doc, "LifoQueue(maxsize=0)\n--\n\n"
                "Variant of Queue that retrieves most recently added entries first."},
    {0, NULL},
};

static PyType_Spec lifo_spec = {
    .name = "cconc.queue.LifoQueue",
    .basicsize = sizeof(QueueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = lifo_slots,
};

static PyType_Slot prio_slots[] = {
    {Py_tp_traverse, queue_traverse},
    {Py_tp_clear, queue_clear},
    {Py_tp_doc, "PriorityQueue(maxsize=0)\n--\n\n"
                "Variant of Queue that retrieves open entries in priority order (lowest first).\n\n"
                "Entries are typically tuples of the form:  (priority number, data)."},
    {0, NULL},
};

static PyType_Spec prio_spec = {
    .name = "cconc.queue.PriorityQueue",
    .basicsize = sizeof(QueueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = prio_slots,
};

/* ============================================================ q.queue
 * A live view of a native queue's items, in the order of the stdlib's
 * q.queue (a deque for Queue, a list for LifoQueue, the heap list for
 * PriorityQueue): len, iteration, indexing, `in`, ==, clear(), append(). */

static int view_traverse(QueueViewObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->q);
    return 0;
}

static int view_clear_refs(QueueViewObject *self)
{
    Py_CLEAR(self->q);
    return 0;
}

static void view_dealloc(QueueViewObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->q);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* A snapshot of the items as a list. */
/* The view and its iterators read and change the queue's state: they run in
 * the queue's critical section. */
#define VIEW_CS(res, q, call)                                                    \
    do {                                                                         \
        Py_BEGIN_CRITICAL_SECTION(q);                                            \
        res = call;                                                              \
        Py_END_CRITICAL_SECTION();                                               \
    } while (0)

static PyObject *view_list(QueueObject *q)
{
    for (;;) {
        Py_ssize_t n = q->ring.len;
        PyObject *list = PyList_New(n);
        if (!list)
            return NULL;
        /* The allocation may have run the GC, and a __del__ may have
         * changed the queue: copy only a length that is still true. */
        if (q->ring.len != n) {
            Py_DECREF(list);
            continue;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            PyList_SET_ITEM(list, i, Py_NewRef(ring_at(&q->ring, i)));
        return list;
    }
}

static Py_ssize_t view_len(QueueViewObject *self)
{
    Py_ssize_t n;
    VIEW_CS(n, self->q, CC_LOAD_SSIZE(self->q->ring.len));
    return n;
}

static PyObject *view_item_impl(QueueViewObject *self, Py_ssize_t i)
{
    QueueObject *q = self->q;
    if (i < 0)
        i += q->ring.len;
    if (i < 0 || i >= q->ring.len) {
        PyErr_SetString(PyExc_IndexError,
                        q->kind == KIND_FIFO ? "deque index out of range" : "list index out of range");
        return NULL;
    }
    return Py_NewRef(ring_at(&q->ring, i));
}
static PyObject *view_item(QueueViewObject *self, Py_ssize_t i)
{
    PyObject *res;
    VIEW_CS(res, self->q, view_item_impl(self, i));
    return res;
}

static PyObject *view_subscript_impl(QueueViewObject *self, PyObject *key)
{
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        return view_item(self, i);
    }
    if (PySlice_Check(key) && self->q->kind != KIND_FIFO) {  /* a list slices, a deque does not */
        PyObject *list = view_list(self->q);
        if (!list)
            return NULL;
        PyObject *r = PyObject_GetItem(list, key);
        Py_DECREF(list);
        return r;
    }
    PyErr_Format(PyExc_TypeError, "sequence index must be integer, not '%.200s'", Py_TYPE(key)->tp_name);
    return NULL;
}
static PyObject *view_subscript(QueueViewObject *self, PyObject *key)
{
    PyObject *res;
    VIEW_CS(res, self->q, view_subscript_impl(self, key));
    return res;
}

static int view_contains_impl(QueueViewObject *self, PyObject *value)
{
    for (Py_ssize_t i = 0; i < self->q->ring.len; i++) {  /* __eq__ may change the queue */
        PyObject *item = Py_NewRef(ring_at(&self->q->ring, i));
        int eq = PyObject_RichCompareBool(item, value, Py_EQ);
        Py_DECREF(item);
        if (eq)
            return eq;
    }
    return 0;
}
static int view_contains(QueueViewObject *self, PyObject *value)
{
    int res;
    VIEW_CS(res, self->q, view_contains_impl(self, value));
    return res;
}

static PyObject *view_iter_impl(QueueViewObject *self)
{
    cc_state *st = qstate(self->q);
    if (!st)
        return NULL;
    QueueViewIterObject *it = PyObject_GC_New(QueueViewIterObject, st->QueueViewIter_type);
    if (!it)
        return NULL;
    it->q = (QueueObject *)Py_NewRef(self->q);
    it->index = 0;
    it->version = self->q->version;
    PyObject_GC_Track(it);
    return (PyObject *)it;
}
static PyObject *view_iter(QueueViewObject *self)
{
    PyObject *res;
    VIEW_CS(res, self->q, view_iter_impl(self));
    return res;
}

static PyObject *view_repr_impl(QueueViewObject *self)
{
    PyObject *list = view_list(self->q);
    if (!list)
        return NULL;
    PyObject *r = self->q->kind == KIND_FIFO ? PyUnicode_FromFormat("deque(%R)", list) : PyObject_Repr(list);
    Py_DECREF(list);
    return r;
}
static PyObject *view_repr(QueueViewObject *self)
{
    PyObject *res;
    VIEW_CS(res, self->q, view_repr_impl(self));
    return res;
}

static PyObject *view_richcompare_impl(QueueViewObject *self, PyObject *other, int op)
{
    PyObject *mine, *theirs, *r;
    cc_state *st = qstate(self->q);
    if (!st)
        return NULL;
    if (Py_TYPE(other) == st->QueueView_type)
        theirs = view_list(((QueueViewObject *)other)->q);
    else if (PyList_Check(other) || PyObject_TypeCheck(other, (PyTypeObject *)st->queue_deque))
        theirs = PySequence_List(other);
    else
        Py_RETURN_NOTIMPLEMENTED;
    if (!theirs)
        return NULL;
    mine = view_list(self->q);
    r = mine ? PyObject_RichCompare(mine, theirs, op) : NULL;
    Py_XDECREF(mine);
    Py_DECREF(theirs);
    return r;
}
static PyObject *view_richcompare(QueueViewObject *self, PyObject *other, int op)
{
    PyObject *res;
    VIEW_CS(res, self->q, view_richcompare_impl(self, other, op));
    return res;
}

/* `with q.mutex: q.queue.clear()` empties the queue: blocked putters wake up. */
static PyObject *view_clear_impl(QueueViewObject *self, PyObject *Py_UNUSED(ignored))
{
    QueueObject *q = self->q;
    cc_ring old;
    ring_detach(&q->ring, &old);
    q->version++;
    cc_waitlist_wake(&q->putters, -1);
    ring_release(&old);
    Py_RETURN_NONE;
}
static PyObject *view_clear(QueueViewObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *res;
    VIEW_CS(res, self->q, view_clear_impl(self, NULL));
    return res;
}

/* As the stdlib's q.queue.append (no sift for a heap, no task counted). */
static PyObject *view_append_impl(QueueViewObject *self, PyObject *item)
{
    QueueObject *q = self->q;
    if (ring_push(&q->ring, item) < 0)
        return NULL;
    q->version++;
    cc_waitlist_wake(&q->getters, 1);
    Py_RETURN_NONE;
}
static PyObject *view_append(QueueViewObject *self, PyObject *item)
{
    PyObject *res;
    VIEW_CS(res, self->q, view_append_impl(self, item));
    return res;
}

static PyObject *view_copy_impl(QueueViewObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = view_list(self->q);
    if (!list || self->q->kind != KIND_FIFO)
        return list;
    cc_state *st = qstate(self->q);
    PyObject *r = st ? PyObject_CallOneArg(st->queue_deque, list) : NULL;
    Py_DECREF(list);
    return r;
}
static PyObject *view_copy(QueueViewObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *res;
    VIEW_CS(res, self->q, view_copy_impl(self, NULL));
    return res;
}

static PyMethodDef view_methods[] = {
    {"clear", (PyCFunction)view_clear, METH_NOARGS, "Remove every item (no task is marked done)."},
    {"append", (PyCFunction)view_append, METH_O, "Append an item at the end of the storage, as the stdlib's q.queue.append."},
    {"copy", (PyCFunction)view_copy, METH_NOARGS, "A snapshot: a deque for Queue, a list otherwise."},
    {NULL, NULL},
};

static PyType_Slot view_slots[] = {
    {Py_tp_dealloc, view_dealloc},
    {Py_tp_traverse, view_traverse},
    {Py_tp_clear, view_clear_refs},
    {Py_tp_iter, view_iter},
    {Py_tp_repr, view_repr},
    {Py_tp_richcompare, view_richcompare},
    {Py_tp_methods, view_methods},
    {Py_sq_length, view_len},
    {Py_sq_item, view_item},
    {Py_sq_contains, view_contains},
    {Py_mp_length, view_len},
    {Py_mp_subscript, view_subscript},
    {Py_tp_hash, PyObject_HashNotImplemented},
    {Py_tp_doc, "A live view of a queue's items (q.queue)."},
    {0, NULL},
};

static PyType_Spec view_spec = {
    .name = "cconc.queue._QueueView",
    .basicsize = sizeof(QueueViewObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = view_slots,
};

static int viewiter_traverse(QueueViewIterObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->q);
    return 0;
}

static int viewiter_clear(QueueViewIterObject *self)
{
    Py_CLEAR(self->q);
    return 0;
}

static void viewiter_dealloc(QueueViewIterObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->q);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *viewiter_next_impl(QueueViewIterObject *self)
{
    QueueObject *q = self->q;
    if (!q)
        return NULL;
    if (q->kind == KIND_FIFO && q->version != self->version) {
        PyErr_SetString(PyExc_RuntimeError, "deque mutated during iteration");
        Py_CLEAR(self->q);
        return NULL;
    }
    if (self->index >= q->ring.len) {
        Py_CLEAR(self->q);
        return NULL;
    }
    return Py_NewRef(ring_at(&q->ring, self->index++));
}
static PyObject *viewiter_next(QueueViewIterObject *self)
{
#ifdef Py_GIL_DISABLED
    /* The iterator's own state and the queue's, both. */
    PyObject *q, *res;
    Py_BEGIN_CRITICAL_SECTION(self);
    q = Py_XNewRef((PyObject *)self->q);
    Py_END_CRITICAL_SECTION();
    if (!q)
        return NULL;
    Py_BEGIN_CRITICAL_SECTION2(self, q);
    res = viewiter_next_impl(self);
    Py_END_CRITICAL_SECTION2();
    Py_DECREF(q);
    return res;
#else
    return viewiter_next_impl(self);
#endif
}

static PyType_Slot viewiter_slots[] = {
    {Py_tp_dealloc, viewiter_dealloc},
    {Py_tp_traverse, viewiter_traverse},
    {Py_tp_clear, viewiter_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, viewiter_next},
    {0, NULL},
};

static PyType_Spec viewiter_spec = {
    .name = "cconc.queue._QueueViewIterator",
    .basicsize = sizeof(QueueViewIterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = viewiter_slots,
};

/* ================================================================= exec */

static int import_attr(const char *module, const char *name, PyObject **slot)
{
    PyObject *m = PyImport_ImportModule(module);
    if (!m)
        return -1;
    *slot = PyObject_GetAttrString(m, name);
    Py_DECREF(m);
    return *slot ? 0 : -1;
}

static int find_lock_methods(cc_state *st)
{
    PyMethodDef *def = PyType_GetSlot(st->Lock_type, Py_tp_methods);
    for (; def && def->ml_name; def++) {
        if (strcmp(def->ml_name, "locked") == 0)
            lock_fn_locked = def->ml_meth;
        else if (strcmp(def->ml_name, "__enter__") == 0)
            lock_fn_enter = def->ml_meth;
        else if (strcmp(def->ml_name, "release") == 0)
            lock_fn_release = def->ml_meth;
    }
    if (!lock_fn_locked || !lock_fn_enter || !lock_fn_release) {
        PyErr_SetString(PyExc_RuntimeError, "cconc Lock lacks locked/__enter__/release");
        return -1;
    }
    return 0;
}

static int intern(const char *s, PyObject **slot)
{
    *slot = PyUnicode_InternFromString(s);
    return *slot ? 0 : -1;
}

int cc_queue_exec(PyObject *module, cc_state *st)
{
    if (find_lock_methods(st) < 0)
        return -1;
    /* The stdlib's own exception classes, so that `except queue.Empty` works;
     * queue.ShutDown itself where it exists (3.13+). */
    if (import_attr("queue", "Empty", &st->queue_Empty) < 0 ||
        import_attr("queue", "Full", &st->queue_Full) < 0)
        return -1;
    PyObject *stdqueue = PyImport_ImportModule("queue");
    if (!stdqueue)
        return -1;
    int found = PyObject_HasAttrString(stdqueue, "ShutDown");
    Py_DECREF(stdqueue);
    if (found) {
        if (import_attr("queue", "ShutDown", &st->queue_ShutDown) < 0)
            return -1;
    }
    else {
        st->queue_ShutDown = PyErr_NewExceptionWithDoc("cconc.queue.ShutDown",
                                                       "Raised when put/get with shut-down queue.", NULL, NULL);
        if (!st->queue_ShutDown)
            return -1;
    }
    if (import_attr("collections", "deque", &st->queue_deque) < 0 ||
        import_attr("heapq", "heappush", &st->queue_heappush) < 0 ||
        import_attr("heapq", "heappop", &st->queue_heappop) < 0 ||
        import_attr("threading", "Condition", &st->queue_Condition) < 0)
        return -1;
    if (intern("_init", &st->str_init) < 0 || intern("_qsize", &st->str_qsize) < 0 ||
        intern("_put", &st->str_put) < 0 || intern("_get", &st->str_get) < 0 ||
        intern("queue", &st->str_queue) < 0 || intern("append", &st->str_append) < 0 ||
        intern("popleft", &st->str_popleft) < 0 || intern("pop", &st->str_pop) < 0 ||
        intern("put", &st->str_public_put) < 0 || intern("get", &st->str_public_get) < 0 ||
        intern("block", &st->str_block) < 0)
        return -1;
    if (cc_add_type(module, &queue_spec, NULL, &st->Queue_type) < 0 ||
        cc_add_type(module, &lifo_spec, (PyObject *)st->Queue_type, &st->LifoQueue_type) < 0 ||
        cc_add_type(module, &prio_spec, (PyObject *)st->Queue_type, &st->PriorityQueue_type) < 0 ||
        cc_add_type(module, &view_spec, NULL, &st->QueueView_type) < 0 ||
        cc_add_type(module, &viewiter_spec, NULL, &st->QueueViewIter_type) < 0)
        return -1;
    Py_INCREF(st->queue_ShutDown);
    if (PyModule_AddObject(module, "ShutDown", st->queue_ShutDown) < 0) {
        Py_DECREF(st->queue_ShutDown);
        return -1;
    }
    return 0;
}
