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
    PyObject *str_public_put, *str_public_get, *str_block; /* "put", "get", "block" */

    /* selectors (selector.c) */
    PyTypeObject *SelectSelector_type;
    PyTypeObject *PollSelector_type;
    PyTypeObject *EpollSelector_type;  /* NULL without epoll */
    PyTypeObject *KqueueSelector_type; /* NULL without kqueue */
    PyTypeObject *SelectorMapping_type;
    PyObject *SelectorKey; /* selectors.SelectorKey, the stdlib's namedtuple */
    PyObject *abc_Mapping, *abc_KeysView, *abc_ItemsView, *abc_ValuesView;
    PyObject *str_fileno, *str_items;
    PyObject *sel_key_fd; /* operator.itemgetter(1): SelectorKey -> key.fd */

    /* multiprocessing (src/multiprocessing/); the functions are handed over
     * by cconc/multiprocessing/queues.py through _mp_setup() */
    PyTypeObject *MPQueue_type;
    PyTypeObject *MPSimpleQueue_type;
    PyTypeObject *Doorbell_type;
    PyObject *mp_dumps; /* multiprocessing.reduction.ForkingPickler.dumps */
    PyObject *mp_loads; /* ForkingPickler.loads */
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
int cc_mpqueue_exec(PyObject *module, cc_state *st);
int cc_doorbell_exec(PyObject *module, cc_state *st);
int cc_poolworker_exec(PyObject *module, cc_state *st);

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

/* The conventions of the stdlib's blocking calls, each converting to a deadline
 * with the stdlib's exceptions, in the stdlib's order, per Python version:
 *
 * cc_lock_timeout: the C Lock.acquire(blocking, timeout=-1) (_PyTime
 *   conversion: int, __index__ or float; -1 waits forever, other negatives
 *   are ValueError, a timeout with blocking=False is ValueError, more than
 *   TIMEOUT_MAX is OverflowError, NaN is ValueError).
 * cc_cond_timeout: Condition.wait(timeout=None) and Event.wait: None waits
 *   forever, `timeout > 0` false (NaN too) polls, else the Lock's conversion.
 * cc_endtime_timeout: Semaphore.acquire, Condition.wait_for, Barrier.wait:
 *   `_time() + timeout` first, NaN waits until woken, then as cc_cond_timeout.
 * cc_queue_timeout: the C SimpleQueue.get(block, timeout=None): None waits
 *   forever, negative is ValueError "'timeout' must be a non-negative number",
 *   block=False ignores the timeout, else the _PyTime conversion.
 */
int cc_lock_timeout(PyObject *blocking, PyObject *timeout, cc_deadline *deadline);
int cc_cond_timeout(PyObject *timeout, cc_deadline *deadline);
int cc_endtime_timeout(PyObject *timeout, cc_deadline *deadline);
int cc_queue_timeout(int block, PyObject *timeout, cc_deadline *deadline);
/* Attach `value` to the exception being raised as attribute `name` (the
 * put_count / items of a batch that failed half-way: queue.c, mpqueue.c). */
void cc_exc_attach(const char *name, PyObject *value);
/* Take the exception being raised and clear it: normalized, with its
 * traceback attached (as `except ... as e` sees it). A new reference, or
 * NULL when none was set. */
PyObject *cc_exc_take(void);

/* ------------------------------------------------------------------------
 * The waiting core (park.c).
 *
 * A thread that must block links a cc_waiter (on its own C stack) into the
 * object's cc_waitlist while the object's state is consistent, then calls
 * cc_park(), which detaches from the interpreter (releases the GIL) and
 * sleeps on the thread's own parker until a waker marks the waiter CC_WOKEN,
 * the deadline passes, or a signal handler raises.
 *
 * A waker unlinks a waiter (cc_waitlist_pop), may hand it something (the
 * lock, a unit...), then calls cc_waiter_wake().
 *
 * Who guards what. On a GIL build, the GIL guards everything. On a
 * free-threaded build (Py_GIL_DISABLED):
 * - an object's own state, and the decision to append to, pop from or wake
 *   its lists, are guarded by the object's critical section
 *   (CC_BEGIN_CRITICAL_SECTION(self), compat.h), held by every method that
 *   reads or changes them. It is suspended while the thread parks (and
 *   whenever the thread would block on another lock) and held again when
 *   cc_park returns, just as the GIL is released and re-taken: code that is
 *   correct under "anything that calls out may let other threads in" stays
 *   correct. A list's count may be read under that critical section alone
 *   (cc_waitlist_wake's fast test): every change to it is made under it too.
 * - the waitlists' links, every waiter's state and handoff, and the registry
 *   below are guarded by one core-wide lock inside park.c, so each function
 *   here is atomic by itself. A waiter moved between two objects' lists
 *   (cc_waitlist_requeue: Condition.notify onto its lock) moves under that one
 *   lock; the caller holds both objects' critical sections
 *   (CC_BEGIN_CRITICAL_SECTION2), since both objects' states are involved.
 * - a waker and a timing-out waiter: a popped waiter is CC_POPPED until its
 *   waker marks it CC_WOKEN; cc_park (and cc_waiter_cancel) do not return
 *   while it is CC_POPPED, so a waker may write the handoff between pop and
 *   wake, and no wake-up is lost. A waiter that finds itself still
 *   CC_WAITING at its deadline unlinks itself under the core lock: from then
 *   on no waker can reach it.
 *
 * Threads that cannot come back. At interpreter exit a daemon thread dies
 * inside its GIL re-acquire (3.9-3.13); after fork() only the forking thread
 * exists. So:
 * - every waiter, from cc_waitlist_append until its thread has it back from
 *   cc_park (or cc_waiter_cancel), is also in one core-wide registry;
 * - a thread that dies re-taking the GIL in cc_park never leaves it: it
 *   sleeps forever (as 3.14 does), so its node stays valid memory;
 * - in the child after fork (the core lock is taken around fork() and
 *   re-created in the child), and at the first waitlist operation once the
 *   runtime is finalizing, the core unlinks every waiter of another thread
 *   from its list and gives back to the object whatever was handed to a
 *   woken one that never ran: through the giveback function of the list it
 *   was woken from (cc_waitlist_init_giveback); lists without one only wake,
 *   and a lost wake-up of a thread that no longer runs costs nothing.
 * ---------------------------------------------------------------------- */
typedef struct cc_parker cc_parker;

/* CC_POPPED: unlinked by a waker that has yet to mark it CC_WOKEN. */
enum { CC_WAITING = 0, CC_WOKEN = 1, CC_UNLINKED = 2, CC_POPPED = 3 };

typedef struct cc_waitlist cc_waitlist;

typedef struct cc_waiter {
    struct cc_waiter *prev, *next;
    /* The list it is linked in while CC_WAITING; once woken, the list it was
     * woken from (whose giveback returns what it was handed). */
    cc_waitlist *list;
    cc_parker *parker;
    int state;
    /* Free for the primitive: what the waker hands over (an item, a count...). */
    void *handoff;
    Py_ssize_t handoff_n;
    struct cc_waiter *all_prev, *all_next; /* the core-wide registry */
} cc_waiter;

/* Returns to the object what was handed to `w`, woken from `wl`, whose
 * thread will never run again. Called with the GIL (without one, the core
 * lock) held, or in the forked child; may pop and wake other waiters. */
typedef void (*cc_giveback_fn)(cc_waitlist *wl, cc_waiter *w);

struct cc_waitlist {
    cc_waiter *head, *tail;
    Py_ssize_t count;
    cc_giveback_fn giveback; /* NULL: a wake-up hands nothing over */
};

/* An empty list whose wake-ups hand nothing over (the woken re-check). */
void cc_waitlist_init(cc_waitlist *wl);
/* An empty list whose wakers hand something over (see cc_giveback_fn). */
void cc_waitlist_init_giveback(cc_waitlist *wl, cc_giveback_fn giveback);
/* A giveback for lists whose woken waiter takes something it finds itself
 * (an item, a slot): the wake-up goes on to the next waiter of the list. */
void cc_giveback_pass_on(cc_waitlist *wl, cc_waiter *w);
/* The object a waitlist member belongs to, for a giveback. */
#define CC_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
/* Empty a list again (_at_fork_reinit): its waiters are forgotten. */
void cc_waitlist_reset(cc_waitlist *wl);
Py_ssize_t cc_waitlist_len(cc_waitlist *wl);
/* Prepare a waiter for the calling thread and link it at the tail (FIFO).
 * It must then be given to cc_park (or withdrawn with cc_waiter_cancel). */
void cc_waitlist_append(cc_waitlist *wl, cc_waiter *w);
/* Unlink a linked waiter (no-op if it is not linked). */
void cc_waitlist_unlink(cc_waitlist *wl, cc_waiter *w);
/* The waiting thread withdraws its waiter without parking: unlinked if it is
 * still linked, and forgotten by the core. w->state tells whether it was woken. */
void cc_waiter_cancel(cc_waiter *w);
/* Unlink and return the oldest waiter, or NULL. It is CC_POPPED: the
 * caller must then cc_waiter_wake it. */
cc_waiter *cc_waitlist_pop(cc_waitlist *wl);
/* Move up to n waiters (n < 0: all), the oldest first, from one list to the
 * tail of another without waking them, setting their handoff: they keep
 * sleeping, and whoever wakes them from there hands them over what that
 * list's owner gives (Condition.notify moves waiters onto its lock).
 * Returns how many moved. */
Py_ssize_t cc_waitlist_requeue(cc_waitlist *from, cc_waitlist *to, Py_ssize_t n, void *handoff);
/* Mark a popped waiter woken and post its thread's parker. */
void cc_waiter_wake(cc_waiter *w);
Py_ssize_t cc_waitlist_wake_some(cc_waitlist *wl, Py_ssize_t n);
/* Pop and wake up to n waiters (n < 0: all); returns how many were woken.
 * Inline, so that the common case, nobody waiting, costs one test. */
static inline Py_ssize_t cc_waitlist_wake(cc_waitlist *wl, Py_ssize_t n)
{
    return CC_LOAD_SSIZE(wl->count) && n ? cc_waitlist_wake_some(wl, n) : 0;
}

/* Results of cc_park. */
#define CC_PARK_WOKEN 1
#define CC_PARK_TIMEOUT 0
#define CC_PARK_ERROR (-1)
/*
 * Sleep until woken, the deadline, or a signal handler raising. Called
 * attached (the GIL held) and `w` linked in `wl`; always returns attached
 * (the caller's critical sections held again) and
 * `w` unlinked (from whichever list it was requeued to meanwhile). A waiter that is woken as its deadline passes reports
 * CC_PARK_WOKEN: no wake-up is lost. On CC_PARK_ERROR (exception set,
 * e.g. KeyboardInterrupt) w->state may still be CC_WOKEN: whatever the waker
 * handed over must then be given back by the caller.
 */
int cc_park(cc_waitlist *wl, cc_waiter *w, cc_deadline deadline);

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
