/* Internal declarations shared by the translation units of cconc._cconc. */
#ifndef CCONC_H
#define CCONC_H

#include "compat.h"
#include <stdint.h>

#define CC_MODULE "cconc._cconc"

/* ------------------------------------------------------------------------
 * Module state. Every member is a strong reference to a Python object (a
 * type, an exception class, an interned string), so that traverse/clear can
 * walk it as an array: add members freely, only PyObject-pointer members.
 * ---------------------------------------------------------------------- */
typedef struct {
    /* threading (lock.c, event.c) */
    PyTypeObject *Lock_type;
    PyTypeObject *RLock_type;
    PyTypeObject *Event_type;
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
int cc_selector_exec(PyObject *module, cc_state *st);

/* Create a heap type from spec, store it in *slot and add it to the module. */
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
/* Seconds left until `deadline` (0 when expired, CC_TIMEOUT_MAX when forever). */
double cc_seconds_left(cc_deadline deadline);

/* A timeout object (int or float, anything with __index__ or __float__) as
 * seconds, with the stdlib's TypeError for other types and ValueError for NaN. */
int cc_seconds_from_object(PyObject *obj, double *seconds);

/* The conventions of the stdlib's blocking calls, each converting to a deadline:
 *
 * cc_lock_timeout: Lock.acquire(blocking, timeout=-1): -1 waits forever, other
 *   negatives are ValueError, a timeout with blocking=False is ValueError,
 *   more than TIMEOUT_MAX is OverflowError.
 * cc_cond_timeout: Condition.wait(timeout=None) and everything built on it
 *   (Event.wait, Semaphore.acquire, Barrier.wait...): None waits forever,
 *   <= 0 polls, more than TIMEOUT_MAX is OverflowError.
 * cc_queue_timeout: Queue.get/put(block, timeout=None): None waits forever,
 *   negative is ValueError "'timeout' must be a non-negative number",
 *   block=False ignores the timeout.
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

typedef struct cc_waiter {
    struct cc_waiter *prev, *next;
    cc_parker *parker;
    int state;
    /* Free for the primitive: what the waker hands over (an item, a count...). */
    void *handoff;
    Py_ssize_t handoff_n;
} cc_waiter;

typedef struct {
    cc_waiter *head, *tail;
    Py_ssize_t count;
    uint64_t epoch;
} cc_waitlist;

void cc_waitlist_init(cc_waitlist *wl);
Py_ssize_t cc_waitlist_len(cc_waitlist *wl);
/* Prepare a waiter for the calling thread and link it at the tail (FIFO). */
void cc_waitlist_append(cc_waitlist *wl, cc_waiter *w);
/* Unlink a linked waiter (no-op if it is not linked). */
void cc_waitlist_unlink(cc_waitlist *wl, cc_waiter *w);
/* Unlink and return the oldest waiter, or NULL. */
cc_waiter *cc_waitlist_pop(cc_waitlist *wl);
/* Mark an unlinked waiter woken and post its thread's parker. */
void cc_waiter_wake(cc_waiter *w);
/* Pop and wake up to n waiters (n < 0: all); returns how many were woken. */
Py_ssize_t cc_waitlist_wake(cc_waitlist *wl, Py_ssize_t n);

/* Results of cc_park. */
#define CC_PARK_WOKEN 1
#define CC_PARK_TIMEOUT 0
#define CC_PARK_ERROR (-1)
/*
 * Sleep until woken, the deadline, or a signal handler raising. Called with
 * the GIL held and `w` linked in `wl`; always returns with the GIL held and
 * `w` unlinked. A waiter that is woken as its deadline passes reports
 * CC_PARK_WOKEN: no wake-up is lost. On CC_PARK_ERROR (exception set,
 * e.g. KeyboardInterrupt) w->state may still be CC_WOKEN: whatever the waker
 * handed over must then be given back by the caller.
 */
int cc_park(cc_waitlist *wl, cc_waiter *w, cc_deadline deadline);

/* Incremented in the child after every fork(). */
extern uint64_t cc_fork_epoch;
int cc_park_exec(PyObject *module);

#endif /* CCONC_H */
