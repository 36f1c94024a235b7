/* The waiting core: per-thread parkers, FIFO waiter lists, deadlines, signals, fork. */
#include "cconc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__linux__) && !defined(CC_NO_FUTEX) /* CC_NO_FUTEX: test the portable parker */
#  include <linux/futex.h>
#  include <sys/syscall.h>
#  include <unistd.h>
#  define CC_USE_FUTEX 1
#endif

uint64_t cc_fork_epoch = 0;

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

static int timeout_is_nan(double seconds)
{
    if (seconds != seconds) {
        PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
        return 1;
    }
    return 0;
}

static int timeout_too_large(double seconds)
{
    if (seconds > CC_TIMEOUT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return 1;
    }
    return 0;
}

int cc_lock_timeout(PyObject *blocking_obj, PyObject *timeout_obj, cc_deadline *deadline)
{
    int blocking = 1;
    double timeout = -1;
    if (blocking_obj) {
#if PY_VERSION_HEX >= 0x030C0000
        /* Since 3.12 the stdlib takes any object's truth value. */
        if ((blocking = PyObject_IsTrue(blocking_obj)) < 0)
            return -1;
#else
        /* Before 3.12 the stdlib parses `blocking` as an int. */
        if (PyBool_Check(blocking_obj))
            blocking = blocking_obj == Py_True;
        else {
#  if PY_VERSION_HEX < 0x030A0000
            /* 3.9's "i" format refuses a float; its PyLong_AsLong would truncate one. */
            if (PyFloat_Check(blocking_obj)) {
                PyErr_SetString(PyExc_TypeError, "integer argument expected, got float");
                return -1;
            }
#  endif
            long b = PyLong_AsLong(blocking_obj);
            if (b == -1 && PyErr_Occurred()) {
                if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                    PyErr_Clear();
                    PyErr_Format(PyExc_TypeError, "'%.200s' object cannot be interpreted as an integer",
                                 Py_TYPE(blocking_obj)->tp_name);
                }
                return -1;
            }
            blocking = b != 0;
        }
#endif
    }
    if (timeout_obj && (cc_seconds_from_object(timeout_obj, &timeout) < 0 || timeout_is_nan(timeout)))
        return -1;
    if (!blocking && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return -1;
    }
    if (timeout < 0 && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "timeout value must be positive");
        return -1;
    }
    if (!blocking) {
        *deadline = 0;  /* in the past: try once */
        return 0;
    }
    if (timeout == -1) {
        *deadline = CC_FOREVER;
        return 0;
    }
    if (timeout_too_large(timeout))
        return -1;
    *deadline = cc_deadline_after(timeout);
    return 0;
}

int cc_cond_timeout(PyObject *timeout_obj, cc_deadline *deadline)
{
    double timeout;
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *deadline = CC_FOREVER;
        return 0;
    }
    if (cc_seconds_from_object(timeout_obj, &timeout) < 0)
        return -1;
    if (timeout_too_large(timeout))
        return -1;
    *deadline = timeout > 0 ? cc_deadline_after(timeout) : 0;
    return 0;
}

int cc_queue_timeout(int block, PyObject *timeout_obj, cc_deadline *deadline)
{
    double timeout;
    if (!block) {
        *deadline = 0;
        return 0;
    }
    if (timeout_obj == NULL || timeout_obj == Py_None) {
        *deadline = CC_FOREVER;
        return 0;
    }
    if (cc_seconds_from_object(timeout_obj, &timeout) < 0 || timeout_is_nan(timeout))
        return -1;
    if (timeout < 0) {
        PyErr_SetString(PyExc_ValueError, "'timeout' must be a non-negative number");
        return -1;
    }
    if (timeout_too_large(timeout))
        return -1;
    *deadline = cc_deadline_after(timeout);
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

static _Thread_local cc_parker thread_parker;

static cc_parker *parker_self(void) { return &thread_parker; }

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

/* ----------------------------------------------------------- waitlists */

void cc_waitlist_init(cc_waitlist *wl)
{
    wl->head = wl->tail = NULL;
    wl->count = 0;
    wl->epoch = cc_fork_epoch;
}

/* After fork() the nodes belong to threads the child does not have. */
static inline void waitlist_refresh(cc_waitlist *wl)
{
    if (wl->epoch != cc_fork_epoch)
        cc_waitlist_init(wl);
}

Py_ssize_t cc_waitlist_len(cc_waitlist *wl)
{
    waitlist_refresh(wl);
    return wl->count;
}

static void link_at_tail(cc_waitlist *wl, cc_waiter *w);

void cc_waitlist_append(cc_waitlist *wl, cc_waiter *w)
{
    waitlist_refresh(wl);
    w->parker = parker_self();
    link_at_tail(wl, w);
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
    wl->count++;
}

void cc_waitlist_unlink(cc_waitlist *wl, cc_waiter *w)
{
    waitlist_refresh(wl);
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
    w->list = NULL;
    w->state = CC_UNLINKED;
    wl->count--;
}

void cc_waiter_requeue(cc_waiter *w, cc_waitlist *to)
{
    waitlist_refresh(to);
    link_at_tail(to, w);
}

cc_waiter *cc_waitlist_pop(cc_waitlist *wl)
{
    waitlist_refresh(wl);
    cc_waiter *w = wl->head;
    if (w)
        cc_waitlist_unlink(wl, w);
    return w;
}

void cc_waiter_wake(cc_waiter *w)
{
    w->state = CC_WOKEN;
    parker_post(w->parker);
}

Py_ssize_t cc_waitlist_wake_some(cc_waitlist *wl, Py_ssize_t n)
{
    Py_ssize_t woken = 0;
    cc_waiter *w;
    while ((n < 0 || woken < n) && (w = cc_waitlist_pop(wl)) != NULL) {
        cc_waiter_wake(w);
        woken++;
    }
    return woken;
}

/* From whichever list the waiter is in now: cc_waiter_requeue may have moved it. */
static void unlink_self(cc_waiter *w)
{
    if (w->state == CC_WAITING)
        cc_waitlist_unlink(w->list, w);
}

int cc_park(cc_waitlist *wl, cc_waiter *w, cc_deadline deadline)
{
    for (;;) {
        /* The waiter's state, changed only under the GIL, is the truth; the
         * parker's token is only a hint to look at it again. */
        if (w->state == CC_WOKEN) {
            parker_reset(w->parker);
            return CC_PARK_WOKEN;
        }
        if (cc_deadline_passed(deadline)) {
            unlink_self(w);
            return CC_PARK_TIMEOUT;
        }
        int r;
        Py_BEGIN_ALLOW_THREADS
        r = parker_wait(w->parker, deadline);
        Py_END_ALLOW_THREADS
        if (r == EINTR && w->state != CC_WOKEN && PyErr_CheckSignals() < 0) {
            /* A handler raised (Ctrl-C). It may have woken us meanwhile: the
             * caller sees CC_WOKEN in w->state and gives the handoff back. */
            if (w->state == CC_WOKEN)
                parker_reset(w->parker);
            else
                unlink_self(w);
            return CC_PARK_ERROR;
        }
    }
}

/* ---------------------------------------------------------------- fork */

static void after_fork_child(void) { cc_fork_epoch++; }

int cc_park_exec(PyObject *module)
{
    static int registered = 0;
    if (!registered) {
        if (pthread_atfork(NULL, NULL, after_fork_child) != 0) {
            PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
            return -1;
        }
        registered = 1;
    }
    return 0;
}
