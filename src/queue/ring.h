/* A growable ring buffer of strong object references, shared by the queues
 * (queue.c, simplequeue.c). The capacity is 0 or a power of two, so that an
 * index wraps with a mask. A stack or a heap uses it with head == 0. */
#ifndef CCONC_RING_H
#define CCONC_RING_H

#include "cconc.h"

#define RING_MIN_CAP 8
/* Shrink when a burst has drained, but not so eagerly that a queue
 * oscillating around a size reallocates on every operation. */
#define RING_SHRINK_CAP 1024

typedef struct {
    PyObject **items;
    Py_ssize_t cap, head, len;
} cc_ring;

static inline PyObject *ring_at(const cc_ring *r, Py_ssize_t i)
{
    return r->items[(r->head + i) & (r->cap - 1)];
}

/* Move the items to a new array of newcap slots (>= len), unwrapped. */
static inline int ring_resize(cc_ring *r, Py_ssize_t newcap)
{
    if (newcap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(PyObject *)) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject **items = PyMem_Malloc((size_t)newcap * sizeof(PyObject *));
    if (!items) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < r->len; i++)
        items[i] = ring_at(r, i);
    PyMem_Free(r->items);
    r->items = items;
    r->cap = newcap;
    r->head = 0;
    return 0;
}

/* Make room for `extra` more items. */
static inline int ring_reserve(cc_ring *r, Py_ssize_t extra)
{
    if (r->len + extra <= r->cap)
        return 0;
    if (extra > PY_SSIZE_T_MAX / 4 - r->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t cap = r->cap ? r->cap : RING_MIN_CAP;
    while (cap < r->len + extra)
        cap <<= 1;
    return ring_resize(r, cap);
}

/* Append a new reference to item (the caller reserved room). */
static inline void ring_push_reserved(cc_ring *r, PyObject *item)
{
    Py_INCREF(item);
    r->items[(r->head + r->len) & (r->cap - 1)] = item;
    r->len++;
}

static inline int ring_push(cc_ring *r, PyObject *item)
{
    if (r->len == r->cap && ring_reserve(r, 1) < 0)
        return -1;
    ring_push_reserved(r, item);
    return 0;
}

/* Give back memory after a burst; failure to shrink is harmless. */
static inline void ring_maybe_shrink(cc_ring *r)
{
    if (r->cap >= RING_SHRINK_CAP && r->len < r->cap / 8) {
        if (ring_resize(r, r->cap / 2) < 0)
            PyErr_Clear();
    }
}

/* Remove the oldest item, returning the ring's reference (len > 0). */
static inline PyObject *ring_pop_front(cc_ring *r)
{
    PyObject *item = r->items[r->head];
    r->items[r->head] = NULL;
    r->head = (r->head + 1) & (r->cap - 1);
    r->len--;
    return item;
}

/* Remove the newest item, returning the ring's reference (len > 0). */
static inline PyObject *ring_pop_back(cc_ring *r)
{
    r->len--;
    Py_ssize_t i = (r->head + r->len) & (r->cap - 1);
    PyObject *item = r->items[i];
    r->items[i] = NULL;
    return item;
}

/* Empty the ring, handing its storage to *old; the caller releases it with
 * ring_release once its own state is consistent (a __del__ may run then). */
static inline void ring_detach(cc_ring *r, cc_ring *old)
{
    *old = *r;
    r->items = NULL;
    r->cap = r->head = r->len = 0;
}

static inline void ring_release(cc_ring *old)
{
    for (Py_ssize_t i = 0; i < old->len; i++)
        Py_DECREF(ring_at(old, i));
    PyMem_Free(old->items);
    old->items = NULL;
    old->cap = old->head = old->len = 0;
}

static inline int ring_traverse(cc_ring *r, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < r->len; i++)
        Py_VISIT(ring_at(r, i));
    return 0;
}

#endif /* CCONC_RING_H */
