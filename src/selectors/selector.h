/* Internal to the selectors concern: the object every backend shares
 * (selector.c: key table, methods, types; selector_<backend>.c: the system calls). */
#ifndef CC_SELECTOR_H
#define CC_SELECTOR_H

#include "cconc.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/select.h>

#ifdef __linux__
#  define CC_HAVE_EPOLL 1
#endif
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || \
    defined(__DragonFly__)
#  define CC_HAVE_KQUEUE 1
#endif

#define EV_R 1 /* selectors.EVENT_READ */
#define EV_W 2 /* selectors.EVENT_WRITE */

/* The fd-indexed table grows to fit any fd below this; larger fds (which no
 * kernel hands out under a sane RLIMIT_NOFILE, but poll() and select() accept
 * as numbers) are found through the dict alone. */
#define TABLE_MAX (1 << 20)

enum { B_SELECT, B_POLL, B_EPOLL, B_KQUEUE };

typedef struct {
    PyObject *key;   /* borrowed: fd_to_key owns it; NULL when the fd is not registered */
    PyObject *ready; /* owned: the (key, ready_ev) tuple select() last returned for it */
    int mask;        /* EV_R|EV_W bits of key.events */
    int slot;        /* poll: index in pfds */
    int ready_ev;
} sel_entry;

typedef struct {
    PyObject_HEAD
    cc_state *st;
    int backend;
    int closed;          /* close() was called: get_map() is None */
    PyObject *fd_to_key; /* dict, never NULL */
    PyObject *map;       /* the SelectorMapping, created on first get_map() */
    sel_entry *table;
    Py_ssize_t table_cap;
    void *buf; /* reusable select() buffer, NULL while a select() borrows it */
    size_t buf_bytes;
    int kfd; /* epoll / kqueue descriptor, -1 once closed */
    /* poll: the registrations, in a compact array */
    struct pollfd *pfds;
    Py_ssize_t npfds, pfds_cap;
    /* select: the interest sets, kept up to date by register/unregister */
    fd_set rset, wset;
    int maxfd;
    Py_ssize_t n_out_of_range, n_overflow;
    /* kqueue: filters registered (the stdlib's _max_events) */
    Py_ssize_t kq_filters;
    PyObject *dict;
    PyObject *weakreflist;
} SelectorObject;

#define KEY_FILEOBJ(k) PyTuple_GET_ITEM(k, 0)
#define KEY_FD(k) PyTuple_GET_ITEM(k, 1)
#define KEY_EVENTS(k) PyTuple_GET_ITEM(k, 2)
#define KEY_DATA(k) PyTuple_GET_ITEM(k, 3)

/* ---- selector.c, for the backends: each backend's select() is its system
 * call and the decoding of what the kernel reported; the rest is shared. */

/* The epoll / kqueue descriptor, or -1 with the stdlib's ValueError once
 * closed. Read it again after any release of the GIL: close() may run meanwhile. */
int cc_sel_kfd(SelectorObject *self);

/* Borrow the reusable select() buffer (at least `bytes`), or a fresh one if it
 * is already borrowed or too small; give it back after the system call. */
void *cc_sel_buf_take(SelectorObject *self, size_t bytes, size_t *got);
void cc_sel_buf_give_back(SelectorObject *self, void *b, size_t n);

/* The timeout argument as each stdlib class converts it; -1 blocks.
 * Poll-like (poll, epoll): milliseconds rounded up (math.ceil(timeout * 1e3)). */
int cc_sel_timeout_ms(PyObject *timeout, int64_t *ms);
/* select, kqueue: max(timeout, 0) in nanoseconds. */
int cc_sel_timeout_ns(PyObject *timeout, int64_t *ns);

#define CC_SEL_MS 1000000 /* unit_ns of a timeout in milliseconds */

/* Run a backend's waiting system call, releasing the GIL only when it may
 * block (timeout -1 or positive): a zero timeout polls and returns at once,
 * and handing the GIL to another thread for it would cost more than the call. */
#define CC_SEL_SYSCALL(timeout, call)      \
    do {                                   \
        if ((timeout) != 0) {              \
            Py_BEGIN_ALLOW_THREADS         \
            call;                          \
            Py_END_ALLOW_THREADS           \
        }                                  \
        else {                             \
            call;                          \
        }                                  \
    } while (0)
#define CC_SEL_NS 1       /* unit_ns of a timeout in nanoseconds */

/* When a positive timeout (in units of unit_ns) runs out; 0 for none. */
static inline int64_t cc_sel_deadline(int64_t timeout, int64_t unit_ns)
{
    return timeout > 0 ? cc_monotonic_ns() + timeout * unit_ns : 0;
}

/* The wait failed with errno err (GIL held again). As the stdlib (PEP 475): after
 * EINTR run the signal handlers, then wait again for what is left of a positive
 * timeout (*timeout, in units of unit_ns, rounded up). Returns 1 to wait again;
 * else 0, with *n set to 0 once the deadline has passed (nothing is ready), or
 * with *n left negative and an exception set. */
int cc_sel_wait_again(int err, int64_t deadline, int64_t unit_ns, int64_t *timeout, int *n);

/* The [(key, events), ...] list select() returns, allocated for every fd the
 * kernel reported and filled in place; list is NULL once an exception is set. */
typedef struct {
    PyObject *list;
    Py_ssize_t len;
} sel_ready;

/* For n reported fds; n < 0 (the wait failed, exception set) gives a failed result. */
sel_ready cc_sel_ready_new(int n);
/* Append (key, events & registered) for a reported fd, if it is still
 * registered; on failure the list is dropped (ready->list becomes NULL). */
void cc_sel_ready_add(SelectorObject *self, sel_ready *ready, long fd, int events);
/* The list, cut to the fds still registered; NULL after a failure. */
PyObject *cc_sel_ready_finish(sel_ready *ready);

/* ---- the backends */

/* selector_select.c */
PyObject *cc_sel_select_select(SelectorObject *self, PyObject *timeout);
/* selector_poll.c */
PyObject *cc_sel_select_poll(SelectorObject *self, PyObject *timeout);
#ifdef CC_HAVE_EPOLL
/* selector_epoll.c: add/mod return 0, or -1 with an exception set */
int cc_sel_epoll_open(SelectorObject *self);
int cc_sel_epoll_add(SelectorObject *self, long fd, int mask);
int cc_sel_epoll_mod(SelectorObject *self, long fd, int mask);
void cc_sel_epoll_del(SelectorObject *self, long fd);
PyObject *cc_sel_select_epoll(SelectorObject *self, PyObject *timeout);
#endif
#ifdef CC_HAVE_KQUEUE
/* selector_kqueue.c */
int cc_sel_kqueue_open(SelectorObject *self);
int cc_sel_kqueue_add(SelectorObject *self, long fd, int mask);
void cc_sel_kqueue_del(SelectorObject *self, long fd, int mask);
PyObject *cc_sel_select_kqueue(SelectorObject *self, PyObject *timeout);
#endif

#endif /* CC_SELECTOR_H */
