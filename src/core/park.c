/* The waiting core: per-thread parkers, FIFO waiter lists, deadlines, signals, fork. */
#include "cconc.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <unistd.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__linux__) && !defined(CC_NO_FUTEX) /* CC_NO_FUTEX: test the portable parker */
#  include <linux/futex.h>
#  include <sys/syscall.h>
#  include <unistd.h>
#  define CC_USE_FUTEX 1
#endif

/* ---------------------------------------------------------------- time */

int64_t cc_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

cc_deadline cc_deadline_after(double seconds)
{
    int64_t now = cc_monotonic_ns();
    if (!(seconds > 0))
        return now;
    double ns = seconds * 1e9;
    if (ns >= (double)(CC_FOREVER - now))
        return CC_FOREVER;
    /* Round up, as the stdlib rounds timeouts, so a wait never ends early. */
    int64_t whole = (int64_t)ns;
    return now + whole + ((double)whole < ns);
}

int cc_deadline_to_realtime(cc_deadline deadline, struct timespec *ts)
{
    int64_t left = deadline - cc_monotonic_ns();
    if (left <= 0)
        return -1;
    clock_gettime(CLOCK_REALTIME, ts);
    int64_t abs = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + left;
    ts->tv_sec = (time_t)(abs / 1000000000);
    ts->tv_nsec = (long)(abs % 1000000000);
    return 0;
}

double cc_seconds_left(cc_deadline deadline)
{
    if (deadline == CC_FOREVER)
        return CC_TIMEOUT_MAX;
    int64_t left = deadline - cc_monotonic_ns();
    return left > 0 ? (double)left / 1e9 : 0.0;
}

int cc_seconds_from_object(PyObject *obj, double *seconds)
{
    double d;
    if (PyFloat_Check(obj)) {
        d = PyFloat_AS_DOUBLE(obj);
    }
    else if (PyLong_Check(obj)) {
        d = PyLong_AsDouble(obj);
        if (d == -1.0 && PyErr_Occurred())
            return -1;
    }
    else if (Py_TYPE(obj)->tp_as_number && Py_TYPE(obj)->tp_as_number->nb_index) {
        PyObject *i = PyNumber_Index(obj);
        if (!i)
            return -1;
        d = PyLong_AsDouble(i);
        Py_DECREF(i);
        if (d == -1.0 && PyErr_Occurred())
            return -1;
    }
    else if (Py_TYPE(obj)->tp_as_number && Py_TYPE(obj)->tp_as_number->nb_float) {
        d = PyFloat_AsDouble(obj);
        if (d == -1.0 && PyErr_Occurred())
            return -1;
    }
    else {
        PyErr_Format(PyExc_TypeError, "'%.200s' object cannot be interpreted as an integer",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *seconds = d;
    return 0;
}

/* The stdlib's _PyTime_FromSecondsObject: an int (or an object with
 * __index__; on 3.9 also __int__, with its DeprecationWarning, as
 * PyLong_AsLongLong does there) or a float, as nanoseconds, rounded away from
 * zero (the stdlib's _PyTime_ROUND_TIMEOUT) or up (_PyTime_ROUND_CEILING).
 * NaN is ValueError; out of the int64 nanosecond range, OverflowError. */
static int ns_from_seconds_object(PyObject *obj, int ceiling, int64_t *ns)
{
    if (PyFloat_Check(obj)) {
        double d = PyFloat_AS_DOUBLE(obj);
        if (d != d) {
            PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
            return -1;
        }
        d *= 1e9;
        d = (ceiling || d >= 0) ? ceil(d) : floor(d);
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
            PyErr_SetString(PyExc_OverflowError, "timestamp too large to convert to C _PyTime_t");
            return -1;
        }
        *ns = (int64_t)d;
        return 0;
    }
    long long sec = PyLong_AsLongLong(obj);
    if (sec == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_OverflowError, "timestamp too large to convert to C _PyTime_t");
        }
        return -1;
    }
    if (sec > INT64_MAX / 1000000000 || sec < INT64_MIN / 1000000000) {
        PyErr_SetString(PyExc_OverflowError, "timestamp too large to convert to C _PyTime_t");
        return -1;
    }
    *ns = (int64_t)sec * 1000000000;
    return 0;
}

/* The stdlib's `_PyTime_AsMicroseconds(ns, round) > PY_TIMEOUT_MAX` test. */
static int timeout_too_large_ns(int64_t ns, int ceiling)
{
    int64_t us = ns / 1000;
    if (ns % 1000 != 0 && (ceiling ? ns > 0 : 1))
        us += ns > 0 ? 1 : -1;
    if (us > (int64_t)PY_TIMEOUT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return 1;
    }
    return 0;
}

static cc_deadline deadline_after_ns(int64_t ns)
{
    int64_t now = cc_monotonic_ns();
    if (ns <= 0)
        return now;
    return ns >= CC_FOREVER - now ? CC_FOREVER : now + ns;
}

#define LOCK_TIMEOUT_UNSET (-1000000000LL) /* timeout=-1, in nanoseconds */

int cc_lock_timeout(PyObject *blocking_obj, PyObject *timeout_obj, cc_deadline *deadline)
{
    int blocking = 1;
    int64_t ns = LOCK_TIMEOUT_UNSET;
    if (blocking_obj) {
#if PY_VERSION_HEX >= 0x030C0000
        /* Since 3.12 the stdlib takes any object's truth value ("p"). */
        if ((blocking = PyObject_IsTrue(blocking_obj)) < 0)
            return -1;
#else
        /* Before, a C int ("i"): its TypeErrors and OverflowErrors. */
        if (!PyArg_Parse(blocking_obj, "i:acquire", &blocking))
            return -1;
#endif
    }
    /* The stdlib converts the timeout before looking at anything else. */
    if (timeout_obj && ns_from_seconds_object(timeout_obj, 0, &ns) < 0)
        return -1;
    if (!blocking && ns != LOCK_TIMEOUT_UNSET) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return -1;
    }
    if (ns < 0 && ns != LOCK_TIMEOUT_UNSET) {
#if PY_VERSION_HEX >= 0x030D0000
        PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
#else
        PyErr_SetString(PyExc_ValueError, "timeout value must be positive");
#endif
        return -1;
    }
    if (!blocking) {
        *deadline = 0;  /* in the past: try once */
        return 0;
    }
    if (ns == LOCK_TIMEOUT_UNSET) {
        *deadline = CC_FOREVER;
        return 0;
    }
    if (timeout_too_large_ns(ns, 0))
        return -1;
    *deadline = deadline_after_ns(ns);
    return 0;
}

/* The stdlib's Condition.wait: `if timeout > 0: waiter.acquire(True, timeout)
 * else: waiter.acquire(False)`. */
int cc_cond_timeout(PyObject *timeout_obj, cc_deadline *deadline)
{
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *deadline = CC_FOREVER;
        return 0;
    }
    int positive;
    if (PyFloat_CheckExact(timeout_obj)) {
        positive = PyFloat_AS_DOUBLE(timeout_obj) > 0; /* NaN polls */
    }
    else {
        PyObject *zero = PyLong_FromLong(0);
        if (!zero)
            return -1;
        positive = PyObject_RichCompareBool(timeout_obj, zero, Py_GT);
        Py_DECREF(zero);
        if (positive < 0)
            return -1;
    }
    if (!positive) {
        *deadline = 0;
        return 0;
    }
    int64_t ns;
    if (ns_from_seconds_object(timeout_obj, 0, &ns) < 0 || timeout_too_large_ns(ns, 0))
        return -1;
    *deadline = deadline_after_ns(ns);
    return 0;
}

/* The stdlib's loops that start with `endtime = _time() + timeout` and then
 * wait on a Condition (Semaphore.acquire, Condition.wait_for, hence
 * Barrier.wait): that addition's TypeError or OverflowError first; a NaN
 * end time is never reached, so the stdlib waits (spinning) until woken. */
int cc_endtime_timeout(PyObject *timeout_obj, cc_deadline *deadline)
{
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *deadline = CC_FOREVER;
        return 0;
    }
    if (!PyFloat_CheckExact(timeout_obj) && !PyLong_CheckExact(timeout_obj)) {
        PyObject *now = PyFloat_FromDouble((double)cc_monotonic_ns() / 1e9);
        if (!now)
            return -1;
        PyObject *endtime = PyNumber_Add(now, timeout_obj);
        Py_DECREF(now);
        if (!endtime)
            return -1;
        int nan = PyFloat_Check(endtime) && isnan(PyFloat_AS_DOUBLE(endtime));
        Py_DECREF(endtime);
        if (nan) {
            *deadline = CC_FOREVER;
            return 0;
        }
    }
    else if (PyFloat_CheckExact(timeout_obj) && isnan(PyFloat_AS_DOUBLE(timeout_obj))) {
        *deadline = CC_FOREVER;
        return 0;
    }
    else if (PyLong_CheckExact(timeout_obj)) {
        /* float + int: an int beyond the float range cannot be added */
        double d = PyLong_AsDouble(timeout_obj);
        if (d == -1.0 && PyErr_Occurred())
            return -1;
    }
    return cc_cond_timeout(timeout_obj, deadline);
}

/* The stdlib's C SimpleQueue.get (and the queue module's C helpers):
 * _PyTime_FromSecondsObject rounding up, then its own checks. */
int cc_queue_timeout(int block, PyObject *timeout_obj, cc_deadline *deadline)
{
    if (!block) {
        *deadline = 0;
        return 0;
    }
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *deadline = CC_FOREVER;
        return 0;
    }
    int64_t ns;
    if (ns_from_seconds_object(timeout_obj, 1, &ns) < 0)
        return -1;
    if (ns < 0) {
        PyErr_SetString(PyExc_ValueError, "'timeout' must be a non-negative number");
        return -1;
    }
    if (timeout_too_large_ns(ns, 1))
        return -1;
    *deadline = deadline_after_ns(ns);
    return 0;
}

/* ------------------------------------------------------------- parkers */

#ifdef CC_USE_FUTEX

/* One word per OS thread: EMPTY, TOKEN (a wake-up is pending) or SLEEPING
 * (the thread is, or is about to be, in futex_wait, so a post must wake it). */
enum { PARKER_EMPTY = 0, PARKER_TOKEN = 1, PARKER_SLEEPING = 2 };

struct cc_parker {
    _Atomic uint32_t word;
};

/* A pthread key rather than a _Thread_local: the extension is dlopen()ed, so a
 * _Thread_local lands in dynamic TLS, which LeakSanitizer's exit-time tracer
 * cannot walk when a daemon thread is parked (it crashed there). */
static pthread_key_t parker_key;
static pthread_once_t parker_key_once = PTHREAD_ONCE_INIT;

static void parker_free(void *arg) { PyMem_RawFree(arg); }

static void parker_key_create(void) { (void)pthread_key_create(&parker_key, parker_free); }

/* Aborts only when the allocation fails at the first wait of a thread, where
 * no error path could leave the waiter consistent. */
static cc_parker *parker_self(void)
{
    pthread_once(&parker_key_once, parker_key_create);
    cc_parker *p = pthread_getspecific(parker_key);
    if (p)
        return p;
    p = PyMem_RawCalloc(1, sizeof(*p));
    if (!p || pthread_setspecific(parker_key, p) != 0)
        Py_FatalError("cconc: cannot allocate a thread parker");
    return p;
}

/* The calling thread's parker if it has one, without creating it. */
static cc_parker *parker_current(void)
{
    pthread_once(&parker_key_once, parker_key_create);
    return pthread_getspecific(parker_key);
}

static void parker_post(cc_parker *p)
{
    if (atomic_exchange(&p->word, PARKER_TOKEN) == PARKER_SLEEPING)
        syscall(SYS_futex, &p->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Called with the GIL held: forget a token whose wake-up was already seen. */
static void parker_reset(cc_parker *p) { atomic_store(&p->word, PARKER_EMPTY); }

/* Wait without the GIL: 0 when a token was consumed, else ETIMEDOUT or EINTR. */
static int parker_wait(cc_parker *p, cc_deadline deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != CC_FOREVER) {
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
        tsp = &ts;
    }
    for (;;) {
        uint32_t expected = PARKER_EMPTY;
        if (!atomic_compare_exchange_strong(&p->word, &expected, PARKER_SLEEPING)) {
            if (expected == PARKER_TOKEN) {
                atomic_store(&p->word, PARKER_EMPTY);
                return 0;
            }
            /* already SLEEPING from an interrupted wait: sleep on */
        }
        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
        long r = syscall(SYS_futex, &p->word, FUTEX_WAIT_BITSET_PRIVATE, PARKER_SLEEPING, tsp, NULL,
                         FUTEX_BITSET_MATCH_ANY);
        if (r == -1) {
            int err = errno;
            if (err == ETIMEDOUT || err == EINTR) {
                expected = PARKER_SLEEPING;
                if (atomic_compare_exchange_strong(&p->word, &expected, PARKER_EMPTY))
                    return err;
                /* a token arrived at the same time: take it */
                atomic_store(&p->word, PARKER_EMPTY);
                return 0;
            }
            /* EAGAIN: the word changed before we slept; look again */
        }
    }
}

#else /* portable fallback: CPython's own lock, used as a binary semaphore */

/* PyThread_acquire_lock_timed(..., intr_flag=1) returns PY_LOCK_INTR when a
 * signal interrupts it wherever the stdlib's own locks are interruptible, so
 * Ctrl-C reaches a parked thread exactly where it reaches threading.Lock.
 * The lock is held while no token is pending; posting releases it once. */
struct cc_parker {
    PyThread_type_lock lock;
    _Atomic int posted;
};

static pthread_key_t parker_key;
static pthread_once_t parker_key_once = PTHREAD_ONCE_INIT;

static void parker_free(void *arg)
{
    cc_parker *p = arg;
    PyThread_free_lock(p->lock);
    PyMem_RawFree(p);
}

static void parker_key_create(void) { (void)pthread_key_create(&parker_key, parker_free); }

/* Called with the GIL held; aborts only when the allocation fails at the first
 * wait of a thread, where no error path could leave the waiter consistent. */
static cc_parker *parker_self(void)
{
    pthread_once(&parker_key_once, parker_key_create);
    cc_parker *p = pthread_getspecific(parker_key);
    if (p)
        return p;
    p = PyMem_RawCalloc(1, sizeof(*p));
    if (!p || !(p->lock = PyThread_allocate_lock()) || !PyThread_acquire_lock(p->lock, 0) ||
        pthread_setspecific(parker_key, p) != 0)
        Py_FatalError("cconc: cannot allocate a thread parker");
    return p;
}

static cc_parker *parker_current(void)
{
    pthread_once(&parker_key_once, parker_key_create);
    return pthread_getspecific(parker_key);
}

static void parker_post(cc_parker *p)
{
    if (!atomic_exchange(&p->posted, 1))
        PyThread_release_lock(p->lock);
}

static void parker_reset(cc_parker *p)
{
    if (atomic_exchange(&p->posted, 0))
        (void)PyThread_acquire_lock(p->lock, 0);  /* take the pending token back */
}

static int parker_wait(cc_parker *p, cc_deadline deadline)
{
    PY_TIMEOUT_T us = -1;
    if (deadline != CC_FOREVER) {
        int64_t left = deadline - cc_monotonic_ns();
        if (left <= 0)
            return ETIMEDOUT;
        us = (PY_TIMEOUT_T)((left + 999) / 1000);
        if (us > PY_TIMEOUT_MAX)
            us = PY_TIMEOUT_MAX;
    }
    switch (PyThread_acquire_lock_timed(p->lock, us, 1)) {
    case PY_LOCK_ACQUIRED:
        atomic_store(&p->posted, 0);
        return 0;
    case PY_LOCK_INTR:
        return EINTR;
    default:
        return ETIMEDOUT;
    }
}

#endif

/* ------------------------------------------------------- the core lock */

/* On a free-threaded build nothing serializes threads for us. Object state is
 * guarded by each object's critical section (the callers'); everything this
 * file owns -- every waitlist's links and count, every waiter's state and
 * handoff, the registry below -- by one core-wide lock, held only for a few
 * pointer updates and a parker post, never across a call that can run Python
 * code or block. Being one lock, moving a waiter between two objects' lists
 * (Condition onto its lock) is atomic without any lock-ordering rule.
 *
 * It is a pthread mutex, not a PyMutex: a PyMutex that has to wait detaches the
 * thread state, which suspends the caller's critical sections and would let
 * another thread change the object between its check and its waitlist update.
 * A holder never detaches, so waiting attached is short and cannot deadlock a
 * stop-the-world pause. Recursive, because a giveback run from
 * forget_other_threads re-enters the public waitlist functions.
 *
 * On a GIL build the GIL is that lock: all of this compiles to nothing. */
#ifdef Py_GIL_DISABLED
static pthread_mutex_t core_mutex;
static pthread_once_t core_mutex_once = PTHREAD_ONCE_INIT;

static void core_mutex_init(void)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&core_mutex, &attr);
    pthread_mutexattr_destroy(&attr);
}

#  define CORE_LOCK() pthread_mutex_lock(&core_mutex)
#  define CORE_UNLOCK() pthread_mutex_unlock(&core_mutex)
/* A list's count is also read without the core lock (cc_waitlist_wake's
 * "nobody waits" test, under the owner's critical section). */
#  define COUNT_ADD(wl, d) __atomic_store_n(&(wl)->count, (wl)->count + (d), __ATOMIC_RELAXED)
#  define COUNT_SET(wl, v) __atomic_store_n(&(wl)->count, (v), __ATOMIC_RELAXED)
#else
#  define CORE_LOCK() ((void)0)
#  define CORE_UNLOCK() ((void)0)
#  define COUNT_ADD(wl, d) ((wl)->count += (d))
#  define COUNT_SET(wl, v) ((wl)->count = (v))
#endif

/* ------------------------------------------ threads that cannot return */

/* Every waiter between cc_waitlist_append and its return from cc_park (or
 * cc_waiter_cancel): linked in a list, or woken and not yet back. Guarded by
 * the core lock (the GIL); in the forked child by there being one thread. */
static cc_waiter *registry_head = NULL;

static void registry_add(cc_waiter *w)
{
    w->all_prev = NULL;
    w->all_next = registry_head;
    if (registry_head)
        registry_head->all_prev = w;
    registry_head = w;
}

static void registry_remove(cc_waiter *w)
{
    if (w->all_prev)
        w->all_prev->all_next = w->all_next;
    else
        registry_head = w->all_next;
    if (w->all_next)
        w->all_next->all_prev = w->all_prev;
    w->all_prev = w->all_next = NULL;
}

static void list_unlink(cc_waitlist *wl, cc_waiter *w);

/* Forget every waiter of a thread other than the caller's: unlink it from
 * its list, and give back what was handed to one woken but not yet back. Its
 * node stays valid memory (a copy of the parent's stack in a forked child;
 * at exit, the dying thread sleeps forever in retake_gil), but its thread
 * will never look at it again. Called with the core lock held. */
static void forget_other_threads(cc_parker *me)
{
    cc_waiter *w, *next;
    for (w = registry_head; w; w = next) {
        next = w->all_next;
        if (w->parker != me && w->state == CC_WAITING) {
            list_unlink(w->list, w);
            registry_remove(w);
        }
    }
    /* Now only woken ones remain of other threads. A giveback may wake the
     * caller's own waiters, never another thread's: start over after each. */
    for (;;) {
        for (w = registry_head; w && w->parker == me; w = w->all_next)
            ;
        if (!w)
            break;
        registry_remove(w);
        if (w->state == CC_WOKEN && w->list && w->list->giveback)
            w->list->giveback(w->list, w);
    }
}

static int exit_handled = 0;

static int runtime_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* Once the runtime is finalizing, only the finalizing thread can take the
 * GIL again: every other thread's waiter is forgotten, at the first waitlist
 * operation after that (which is the finalizing thread's). Without a GIL, a
 * daemon thread may still run until its next attach; the core lock keeps the
 * registry consistent meanwhile. Called with the core lock held. */
static inline void check_exit(void)
{
    if (!exit_handled && runtime_finalizing()) {
        exit_handled = 1;
        forget_other_threads(parker_current());
    }
}

/* A thread that dies in its GIL re-acquire (the runtime is finalizing: it
 * unwinds from PyThread_exit_thread) stops here instead, for good, so that
 * its waiter node, on the stack below, stays valid for whoever still reads
 * it; 3.14 makes such threads hang the same way. The process exits around it. */
static void never_return(void *arg)
{
    (void)arg;
    for (;;)
        pause();
}

static void retake_gil(PyThreadState *save)
{
    pthread_cleanup_push(never_return, NULL);
    PyEval_RestoreThread(save);
    pthread_cleanup_pop(0);
}

/* ----------------------------------------------------------- waitlists */

void cc_waitlist_init(cc_waitlist *wl) { cc_waitlist_init_giveback(wl, NULL); }

void cc_waitlist_init_giveback(cc_waitlist *wl, cc_giveback_fn giveback)
{
    wl->head = wl->tail = NULL;
    wl->count = 0;
    wl->giveback = giveback;
}

void cc_giveback_pass_on(cc_waitlist *wl, cc_waiter *w)
{
    (void)w;
    cc_waitlist_wake(wl, 1);
}

void cc_waitlist_reset(cc_waitlist *wl)
{
    CORE_LOCK();
    /* A waiter still parked on it keeps sleeping to its deadline, unlinked. */
    for (cc_waiter *w = wl->head; w; w = w->next)
        w->state = CC_UNLINKED;
    wl->head = wl->tail = NULL;
    COUNT_SET(wl, 0);
    CORE_UNLOCK();
}

Py_ssize_t cc_waitlist_len(cc_waitlist *wl)
{
    CORE_LOCK();
    check_exit();
    Py_ssize_t n = wl->count;
    CORE_UNLOCK();
    return n;
}

static void link_at_tail(cc_waitlist *wl, cc_waiter *w)
{
    w->state = CC_WAITING;
    w->list = wl;
    w->next = NULL;
    w->prev = wl->tail;
    if (wl->tail)
        wl->tail->next = w;
    else
        wl->head = w;
    wl->tail = w;
    COUNT_ADD(wl, 1);
}

void cc_waitlist_append(cc_waitlist *wl, cc_waiter *w)
{
    cc_parker *parker = parker_self();
    CORE_LOCK();
    w->parker = parker;
    link_at_tail(wl, w);
    registry_add(w);
    /* After linking: what is given back at exit may be handed to this waiter. */
    check_exit();
    CORE_UNLOCK();
}

/* Unlink a linked waiter, leaving it in `state`; w->list still names the
 * list afterwards (see cc_waiter). */
static void list_unlink_as(cc_waitlist *wl, cc_waiter *w, int state)
{
    if (w->state != CC_WAITING)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        wl->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        wl->tail = w->prev;
    w->prev = w->next = NULL;
    w->state = state;
    COUNT_ADD(wl, -1);
}

static void list_unlink(cc_waitlist *wl, cc_waiter *w) { list_unlink_as(wl, w, CC_UNLINKED); }

void cc_waitlist_unlink(cc_waitlist *wl, cc_waiter *w)
{
    CORE_LOCK();
    check_exit();
    list_unlink(wl, w);
    CORE_UNLOCK();
}

Py_ssize_t cc_waitlist_requeue(cc_waitlist *from, cc_waitlist *to, Py_ssize_t n, void *handoff)
{
    Py_ssize_t moved = 0;
    CORE_LOCK();
    check_exit();
    cc_waiter *w;
    while ((n < 0 || moved < n) && (w = from->head) != NULL) {
        list_unlink(from, w);
        w->handoff = handoff;
        link_at_tail(to, w);
        moved++;
    }
    CORE_UNLOCK();
    return moved;
}

/* A popped waiter is CC_POPPED until its waker marks it woken: were it
 * unlinked, a waiter timing out in that instant (possible only without the
 * GIL) would return while its waker still writes to its node. */
cc_waiter *cc_waitlist_pop(cc_waitlist *wl)
{
    CORE_LOCK();
    check_exit();
    cc_waiter *w = wl->head;
    if (w)
        list_unlink_as(wl, w, CC_POPPED);
    CORE_UNLOCK();
    return w;
}

/* The post happens under the core lock, which the woken thread must take to
 * see CC_WOKEN: so it cannot return, and its thread cannot exit and free the
 * parker, before the post is done. */
static void wake_locked(cc_waiter *w)
{
    w->state = CC_WOKEN;
    parker_post(w->parker);
}

void cc_waiter_wake(cc_waiter *w)
{
    CORE_LOCK();
    wake_locked(w);
    CORE_UNLOCK();
}

Py_ssize_t cc_waitlist_wake_some(cc_waitlist *wl, Py_ssize_t n)
{
    Py_ssize_t woken = 0;
    cc_waiter *w;
    CORE_LOCK();
    check_exit();
    while ((n < 0 || woken < n) && (w = wl->head) != NULL) {
        list_unlink(wl, w);
        wake_locked(w);
        woken++;
    }
    CORE_UNLOCK();
    return woken;
}

/* From whichever list the waiter is in now: cc_waitlist_requeue may have moved it. */
static void unlink_self(cc_waiter *w)
{
    if (w->state == CC_WAITING)
        list_unlink(w->list, w);
}

void cc_waiter_cancel(cc_waiter *w)
{
    CORE_LOCK();
    check_exit();
    unlink_self(w);
    /* Popped by a waker that has not marked it yet (only without the GIL):
     * wait for the mark, so the caller sees what it was handed. */
    while (w->state == CC_POPPED) {
        CORE_UNLOCK();
        Py_BEGIN_ALLOW_THREADS
        (void)parker_wait(w->parker, CC_FOREVER);
        Py_END_ALLOW_THREADS
        CORE_LOCK();
    }
    if (w->state == CC_WOKEN)
        parker_reset(w->parker);
    registry_remove(w);
    CORE_UNLOCK();
}

/* The waiter's state, read and changed only under the core lock (the GIL), is
 * the truth; the parker's token is only a hint to look at it again. */
static int park_loop(cc_waiter *w, cc_deadline deadline)
{
    int interrupted = 0;
    for (;;) {
        CORE_LOCK();
        int state = w->state;
        if (state == CC_WOKEN) {
            parker_reset(w->parker);
            CORE_UNLOCK();
            return interrupted ? CC_PARK_ERROR : CC_PARK_WOKEN;
        }
        /* CC_POPPED: a waker took it and is about to mark it woken (and post):
         * only then may it return, whatever the deadline or a signal says. */
        if (state != CC_POPPED && (interrupted || cc_deadline_passed(deadline))) {
            unlink_self(w);
            CORE_UNLOCK();
            return interrupted ? CC_PARK_ERROR : CC_PARK_TIMEOUT;
        }
        CORE_UNLOCK();
        PyThreadState *save = PyEval_SaveThread();
        int r = parker_wait(w->parker, state == CC_POPPED ? CC_FOREVER : deadline);
        retake_gil(save);
        if (r == EINTR && !interrupted) {
            CORE_LOCK();
            int woken = w->state == CC_WOKEN;
            CORE_UNLOCK();
            /* A handler raised (Ctrl-C): unlink and report it. A handler may
             * have woken us meanwhile: the caller then sees CC_WOKEN in
             * w->state and gives the handoff back. */
            if (!woken && PyErr_CheckSignals() < 0)
                interrupted = 1;
        }
    }
}

int cc_park(cc_waitlist *wl, cc_waiter *w, cc_deadline deadline)
{
    (void)wl;
    int r = park_loop(w, deadline);
    CORE_LOCK();
    check_exit();
    registry_remove(w);
    CORE_UNLOCK();
    return r;
}

/* ---------------------------------------------------------------- fork */

#ifdef Py_GIL_DISABLED
/* The child must not inherit the core lock held by a thread it does not have. */
static void before_fork(void) { CORE_LOCK(); }
static void after_fork_parent(void) { CORE_UNLOCK(); }
#endif

/* The child has only the forking thread: forget every other thread's waiter
 * now, before a new thread can reuse the stack memory it lives in. */
static void after_fork_child(void)
{
#ifdef Py_GIL_DISABLED
    core_mutex_init();  /* held by this thread since before_fork: start afresh */
#endif
    forget_other_threads(parker_current());
}

int cc_park_exec(PyObject *module)
{
    static int registered = 0;
    if (!registered) {
#ifdef Py_GIL_DISABLED
        pthread_once(&core_mutex_once, core_mutex_init);
        int err = pthread_atfork(before_fork, after_fork_parent, after_fork_child);
#else
        int err = pthread_atfork(NULL, NULL, after_fork_child);
#endif
        if (err != 0) {
            PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
            return -1;
        }
        registered = 1;
    }
    return 0;
}
