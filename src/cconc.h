/* Internal declarations shared by the translation units of cconc._cconc. */
#ifndef CCONC_H
#define CCONC_H

#include "compat.h"
#include <stdint.h>
#include <time.h>

#define CC_MODULE "cconc._cconc"

/* ------------------------------------------------------------------------
 * Module state. Every member is a strong reference to a Python object (a
 * type, an exception class, an interned string), so that traverse/clear can
 * walk it as an array: add members freely, only PyObject-pointer members.
 * ---------------------------------------------------------------------- */
typedef struct {
    /* threading (lock.c, event.c, condition.c, semaphore.c, barrier.c) */
    PyTypeObject *Lock_type;
    PyTypeObject *RLock_type;
    PyTypeObject *Event_type;
    PyTypeObject *Condition_type;
    PyTypeObject *Semaphore_type;
    PyTypeObject *BoundedSemaphore_type;
    PyTypeObject *Barrier_type;
    PyObject *BrokenBarrierError; /* the stdlib's threading.BrokenBarrierError */

    /* futures (future.c, executor.c); the PyObject members are handed over
     * by cconc/futures.py through _futures_setup() */
    PyTypeObject *FutureCore_type;
    PyTypeObject *FutureWaiter_type;
    PyTypeObject *AsCompleted_type;
    PyTypeObject *WorkQueue_type;
    PyTypeObject *ExecutorCore_type;
    PyObject *Future_type; /* cconc.futures.Future: _FutureCore + concurrent.futures.Future */
    PyObject *CancelledError;
    PyObject *TimeoutError;
    PyObject *InvalidStateError;
    PyObject *BrokenThreadPool;
    PyObject *futures_logger; /* logging.getLogger("concurrent.futures") */
    PyObject *DoneAndNotDoneFutures;
    PyObject *futures_spawn_worker; /* starts one worker thread of an executor */
    PyObject *futures_exiting;      /* Py_True once the interpreter exits */
    PyObject *futures_condition_factory; /* threading.Condition, for f._condition */

    /* queue (queue.c, simplequeue.c) */
    PyTypeObject *Queue_type;
    PyTypeObject *LifoQueue_type;
    PyTypeObject *PriorityQueue_type;
    PyTypeObject *QueueView_type;
    PyTypeObject *QueueViewIter_type;
    PyTypeObject *SimpleQueue_type;
    PyObject *queue_Empty;      /* the stdlib's queue.Empty */
    PyObject *queue_Full;       /* the stdlib's queue.Full */
    PyObject *queue_ShutDown;   /* queue.ShutDown on 3.13+, ours before */
    PyObject *queue_deque;      /* collections.deque, heapq.heappush/heappop and */
    PyObject *queue_heappush;   /* threading.Condition: what the stdlib's queue.py */
    PyObject *queue_heappop;    /* uses, for subclasses that override _init, _put... */
    PyObject *queue_Condition;
    PyObject *str_init, *str_qsize, *str_put, *str_get, *str_queue;
    PyObject *str_append, *str_popleft, *str_pop;

    /* selectors (selector.c) */
    PyTypeObject *SelectSelector_type;
    PyTypeObject *PollSelector_type;
    PyTypeObject *EpollSelector_type;  /* NULL without epoll */
    PyTypeObject *KqueueSelector_type; /* NULL without kqueue */
    PyTypeObject *SelectorMapping_type;
    PyObject *SelectorKey; /* selectors.SelectorKey, the stdlib's namedtuple */
    PyObject *abc_Mapping, *abc_KeysView, *abc_ItemsView, *abc_ValuesView;
    PyObject *str_fileno, *str_items;
} cc_state;

extern PyModuleDef cc_module_def;

/* State of the module that defined `type` (or a base of it). Never NULL for
 * a cconc type; NULL with an exception otherwise. */
static inline cc_state *cc_state_of_type(PyTypeObject *type)
{
    PyObject *m = PyType_GetModuleByDef(type, &cc_module_def);
    return m ? (cc_state *)PyModule_GetState(m) : NULL;
}

/* Each concern registers its types into the module and state (module.c calls these). */
int cc_lock_exec(PyObject *module, cc_state *st);
int cc_event_exec(PyObject *module, cc_state *st);
int cc_future_exec(PyObject *module, cc_state *st);
int cc_executor_exec(PyObject *module, cc_state *st);
int cc_queue_exec(PyObject *module, cc_state *st);
int cc_simplequeue_exec(PyObject *module, cc_state *st);
int cc_condition_exec(PyObject *module, cc_state *st);
int cc_semaphore_exec(PyObject *module, cc_state *st);
int cc_barrier_exec(PyObject *module, cc_state *st);
int cc_thread_start_exec(PyObject *module, cc_state *st);
int cc_selector_exec(PyObject *module, cc_state *st);

/* Create a heap type from spec, store it in *slot and add it to the module.
   base: NULL, one type or a tuple of types (one type is packed for 3.9). */
int cc_add_type(PyObject *module, PyType_Spec *spec, PyObject *base, PyTypeObject **slot);

/* ------------------------------------------------------------------------
 * Argument parsing for METH_FASTCALL | METH_KEYWORDS methods.
 * `names` lists every parameter (NULL-terminated); the first `npos` may be
 * given by position, the first `nrequired` must be given. out[i] receives a
 * borrowed reference or stays NULL when the argument was not given.
 * ---------------------------------------------------------------------- */
int cc_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                  const char *const *names, Py_ssize_t npos, Py_ssize_t nrequired, PyObject **out);

/* ------------------------------------------------------------------------
 * Time. A deadline is an absolute CLOCK_MONOTONIC time in nanoseconds;
 * CC_FOREVER means no deadline. Convert a timeout once, at the start of a
 * blocking call; after every wake-up the time left is recomputed from it.
 * ---------------------------------------------------------------------- */
typedef int64_t cc_deadline;
#define CC_FOREVER INT64_MAX

/* threading.TIMEOUT_MAX, in seconds. */
#define CC_TIMEOUT_MAX ((double)(PY_TIMEOUT_MAX / 1000000))

int64_t cc_monotonic_ns(void);
/* Deadline `seconds` from now; seconds <= 0 means "already expired". */
cc_deadline cc_deadline_after(double seconds);
/* The same instant as an absolute CLOCK_REALTIME time, for APIs that only
 * take that clock (pthread_cond_timedwait); -1 when already expired. */
int cc_deadline_to_realtime(cc_deadline deadline, struct timespec *ts);
/* Whether `deadline` has passed; 0 ("poll") has without reading the clock. */
static inline int cc_deadline_passed(cc_deadline deadline)
{
    return deadline != CC_FOREVER && (deadline == 0 || cc_monotonic_ns() >= deadline);
}
/* Seconds left until `deadline` (0 when expired, CC_TIMEOUT_MAX when forever). */
double cc_seconds_left(cc_deadline deadline);

/* A timeout object (int or float, anything with __index__ or __float__) as
 * seconds, with the stdlib's TypeError for other types. NaN passes through:
 * each convention below decides what it means. */
int cc_seconds_from_object(PyObject *obj, double *seconds);

/* The conventions of the stdlib's blocking calls, each converting to a deadline:
 *
 * cc_lock_timeout: Lock.acquire(blocking, timeout=-1): -1 waits forever, other
 *   negatives are ValueError, a timeout with blocking=False is ValueError,
 *   more than TIMEOUT_MAX is OverflowError, NaN is ValueError.
 * cc_cond_timeout: Condition.wait(timeout=None) and everything built on it
 *   (Event.wait, Semaphore.acquire, Barrier.wait...): None waits forever,
 *   <= 0 or NaN polls, more than TIMEOUT_MAX is OverflowError.
 * cc_queue_timeout: Queue.get/put(block, timeout=None): None waits forever,
 *   negative is ValueError "'timeout' must be a non-negative number",
 *   block=False ignores the timeout. NaN is ValueError (the stdlib spins forever).
 */
int cc_lock_timeout(PyObject *blocking, PyObject *timeout, cc_deadline *deadline);
int cc_cond_timeout(PyObject *timeout, cc_deadline *deadline);
int cc_queue_timeout(int block, PyObject *timeout, cc_deadline *deadline);

/* ------------------------------------------------------------------------
 * The waiting core (park.c).
 *
 * A thread that must block links a cc_waiter (on its own C stack) into the
 * object's cc_waitlist while it holds the GIL and the object's state is
 * consistent, then calls cc_park(), which releases the GIL and sleeps on the
 * thread's own parker until a waker marks the waiter CC_WOKEN, the deadline
 * passes, or a signal handler raises.
 *
 * A waker, holding the GIL, unlinks a waiter (cc_waitlist_pop), may hand it
 * something through `handoff`, then calls cc_waiter_wake(). Every waitlist
 * operation happens with the GIL held; the waiter node stays valid while the
 * GIL is held because its thread cannot return from cc_park without it.
 *
 * After fork() the lists may name threads that do not exist in the child:
 * every operation first drops a list made stale by a fork (fork epoch).
 * ---------------------------------------------------------------------- */
typedef struct cc_parker cc_parker;

enum { CC_WAITING = 0, CC_WOKEN = 1, CC_UNLINKED = 2 };

typedef struct cc_waitlist cc_waitlist;

typedef struct cc_waiter {
    struct cc_waiter *prev, *next;
    cc_waitlist *list;  /* the list it is linked in, while CC_WAITING */
    cc_parker *parker;
    int state;
    /* Free for the primitive: what the waker hands over (an item, a count...). */
    void *handoff;
    Py_ssize_t handoff_n;
} cc_waiter;

struct cc_waitlist {
    cc_waiter *head, *tail;
    Py_ssize_t count;
    uint64_t epoch;
};

void cc_waitlist_init(cc_waitlist *wl);
Py_ssize_t cc_waitlist_len(cc_waitlist *wl);
/* Prepare a waiter for the calling thread and link it at the tail (FIFO). */
void cc_waitlist_append(cc_waitlist *wl, cc_waiter *w);
/* Unlink a linked waiter (no-op if it is not linked). */
void cc_waitlist_unlink(cc_waitlist *wl, cc_waiter *w);
/* Unlink and return the oldest waiter, or NULL. */
cc_waiter *cc_waitlist_pop(cc_waitlist *wl);
/* Link an unlinked (popped) waiter at the tail of another list without waking
 * it: it keeps sleeping, and whoever wakes it from there hands it over what
 * that list's owner gives (Condition.notify moves waiters onto its lock). */
void cc_waiter_requeue(cc_waiter *w, cc_waitlist *to);
/* Mark an unlinked waiter woken and post its thread's parker. */
void cc_waiter_wake(cc_waiter *w);
Py_ssize_t cc_waitlist_wake_some(cc_waitlist *wl, Py_ssize_t n);
/* Pop and wake up to n waiters (n < 0: all); returns how many were woken.
 * Inline, so that the common case, nobody waiting, costs one test. (After a
 * fork a stale list may count waiters: the out-of-line part drops them.) */
static inline Py_ssize_t cc_waitlist_wake(cc_waitlist *wl, Py_ssize_t n)
{
    return wl->count && n ? cc_waitlist_wake_some(wl, n) : 0;
}

/* Results of cc_park. */
#define CC_PARK_WOKEN 1
#define CC_PARK_TIMEOUT 0
#define CC_PARK_ERROR (-1)
/*
 * Sleep until woken, the deadline, or a signal handler raising. Called with
 * the GIL held and `w` linked in `wl`; always returns with the GIL held and
 * `w` unlinked (from whichever list it was requeued to meanwhile). A waiter that is woken as its deadline passes reports
 * CC_PARK_WOKEN: no wake-up is lost. On CC_PARK_ERROR (exception set,
 * e.g. KeyboardInterrupt) w->state may still be CC_WOKEN: whatever the waker
 * handed over must then be given back by the caller.
 */
int cc_park(cc_waitlist *wl, cc_waiter *w, cc_deadline deadline);

/* Incremented in the child after every fork(). */
extern uint64_t cc_fork_epoch;
int cc_park_exec(PyObject *module);

/* ------------------------------------------------------------------------
 * futures: what executor.c needs of future.c.
 * ---------------------------------------------------------------------- */
/* A new pending cconc.futures.Future. */
PyObject *cc_future_new(cc_state *st);
int cc_is_future(cc_state *st, PyObject *obj);
/* The Future methods of the same names, on a cconc future; -1 with an exception. */
int cc_future_set_running_or_notify_cancel(PyObject *future); /* 1 running, 0 cancelled */
int cc_future_set_result(PyObject *future, PyObject *result);
int cc_future_set_exception(PyObject *future, PyObject *exc);
int cc_future_cancel(PyObject *future); /* 1 cancelled, 0 not */
/* Log the current exception on the concurrent.futures logger with exc_info,
 * as `except: LOGGER.<method>(msg[, arg], exc_info=True)`; clears it. */
void cc_futures_log_exception(cc_state *st, const char *method, const char *msg, PyObject *arg);

/* ------------------------------------------------------------------------
 * threading: Condition, Semaphore, BoundedSemaphore, Barrier
 * (condition.c, semaphore.c, barrier.c).
 *
 * Condition's fast path over a cconc Lock or RLock of the exact type
 * (implemented in lock.c, which owns the lock structs). `kind` says which.
 * ---------------------------------------------------------------------- */
enum { CC_LOCK_OTHER = 0, CC_LOCK_PLAIN = 1, CC_LOCK_REENTRANT = 2 };

typedef struct {
    unsigned long owner, count;  /* an RLock's ownership while released by wait() */
} cc_lock_saved;

/* Condition._is_owned: a Lock is "owned" when locked (as the stdlib's test),
 * an RLock when the calling thread holds it. */
int cc_lock_owned(PyObject *lock, int kind);
/* lock.__enter__ (blocking, interruptible): 0 or -1 with an exception. */
int cc_lock_enter(PyObject *lock, int kind);
/* lock.release(), with its RuntimeError when not held: 0 or -1. */
int cc_lock_exit(PyObject *lock, int kind);
/* Release fully (the caller checked ownership), saving an RLock's recursion. */
void cc_lock_release_save(PyObject *lock, int kind, cc_lock_saved *saved);
/* Re-take the lock and restore the saved recursion. Always returns holding
 * the lock; -1 when a signal handler raised meanwhile (exception set). */
int cc_lock_acquire_restore(PyObject *lock, int kind, const cc_lock_saved *saved);
/* The lock's own waiter list, where Condition.notify moves the waiters it
 * wakes: the lock's release then hands the lock straight to them. */
cc_waitlist *cc_lock_waitlist(PyObject *lock, int kind);
/* Restore the saved recursion of a lock that was handed to the caller. */
void cc_lock_restore_handed(PyObject *lock, int kind, const cc_lock_saved *saved);

#endif /* CCONC_H */
