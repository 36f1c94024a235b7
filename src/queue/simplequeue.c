/* queue.SimpleQueue: an unbounded FIFO whose put never blocks.
 *
 * The stdlib's is already C (Modules/_queuemodule.c); this one is as lean:
 * a ring of object pointers and a FIFO list of parked getters. Everything
 * happens under the GIL (without one, in the queue's critical section)
 * without calling out to Python, so put() is safe from
 * __del__ methods and signal handlers (the stdlib's "reentrant" promise), and
 * an uncontended put or get makes no system call. A getter woken for an item
 * that another thread took first parks again; one woken as it times out or is
 * interrupted passes the wake-up on, so none is lost. */
#include "ring.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    cc_ring ring;
    cc_waitlist getters;
    PyObject *weakreflist;
} SimpleQueueObject;

static PyObject *sq_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    cc_state *st = cc_state_of_type(type);
    if (!st)
        return NULL;
    if (type == st->SimpleQueue_type) {
        if (PyTuple_GET_SIZE(args)) {
            PyErr_SetString(PyExc_TypeError, "SimpleQueue() takes no positional arguments");
            return NULL;
        }
        if (kwds && PyDict_GET_SIZE(kwds)) {
            PyErr_SetString(PyExc_TypeError, "SimpleQueue() takes no keyword arguments");
            return NULL;
        }
    }
    SimpleQueueObject *self = (SimpleQueueObject *)type->tp_alloc(type, 0);
    if (self)
        cc_waitlist_init(&self->getters);
    return (PyObject *)self;
}

static int sq_traverse(SimpleQueueObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return ring_traverse(&self->ring, visit, arg);
}

static int sq_clear(SimpleQueueObject *self)
{
    cc_ring old;
    ring_detach(&self->ring, &old);
    ring_release(&old);
    return 0;
}

static void sq_dealloc(SimpleQueueObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    sq_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}


static PyObject *sq_put_impl(SimpleQueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"item", "block", "timeout", NULL};
    PyObject *a[3];
    if (nargs != 1 || kwnames) {
        /* block and timeout are accepted for compatibility with Queue and ignored. */
        if (cc_parse_args("put", args, nargs, kwnames, kwlist, 3, 1, a) < 0)
            return NULL;
    }
    else
        a[0] = args[0];
    if (ring_push(&self->ring, a[0]) < 0)
        return NULL;
    cc_waitlist_wake(&self->getters, 1);
    Py_RETURN_NONE;
}
CC_CS_FASTCALL_KW(sq_put, SimpleQueueObject)

static PyObject *sq_put_nowait_impl(SimpleQueueObject *self, PyObject *item)
{
    if (ring_push(&self->ring, item) < 0)
        return NULL;
    cc_waitlist_wake(&self->getters, 1);
    Py_RETURN_NONE;
}
CC_CS_O(sq_put_nowait, SimpleQueueObject)

/* Wait until the ring holds an item: 0 when it does, -1 with Empty or
 * another exception. */
static int sq_wait_for_item(SimpleQueueObject *self, cc_deadline deadline)
{
    while (self->ring.len == 0) {
        if (cc_deadline_passed(deadline)) {
            cc_state *st = cc_state_of_type(Py_TYPE(self));
            if (st)
                PyErr_SetNone(st->queue_Empty);
            return -1;
        }
        cc_waiter w;
        cc_waitlist_append(&self->getters, &w);
        if (cc_park(&self->getters, &w, deadline) == CC_PARK_ERROR) {
            if (w.state == CC_WOKEN && self->ring.len)
                cc_waitlist_wake(&self->getters, 1);  /* not ours to keep: pass it on */
            return -1;
        }
    }
    return 0;
}

static int sq_parse_block_timeout(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames, const char *const *kwlist, Py_ssize_t skip,
                                  PyObject **a, cc_deadline *deadline)
{
    if (cc_parse_args(fname, args, nargs, kwnames, kwlist, 2 + skip, skip, a) < 0)
        return -1;
    int block = 1;
    if (a[skip] && (block = PyObject_IsTrue(a[skip])) < 0)
        return -1;
    return cc_queue_timeout(block, a[skip + 1], deadline);
}

static PyObject *sq_get_impl(SimpleQueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"block", "timeout", NULL};
    if (nargs == 0 && kwnames == NULL && self->ring.len) {
        PyObject *item = ring_pop_front(&self->ring);
        ring_maybe_shrink(&self->ring);
        return item;
    }
    PyObject *a[2];
    cc_deadline deadline = CC_FOREVER;
    if ((nargs || kwnames) &&
        sq_parse_block_timeout("get", args, nargs, kwnames, kwlist, 0, a, &deadline) < 0)
        return NULL;
    if (sq_wait_for_item(self, deadline) < 0)
        return NULL;
    PyObject *item = ring_pop_front(&self->ring);
    ring_maybe_shrink(&self->ring);
    return item;
}
CC_CS_FASTCALL_KW(sq_get, SimpleQueueObject)

static PyObject *sq_get_nowait_impl(SimpleQueueObject *self)
{
    if (sq_wait_for_item(self, 0) < 0)
        return NULL;
    PyObject *item = ring_pop_front(&self->ring);
    ring_maybe_shrink(&self->ring);
    return item;
}
CC_CS_NOARGS(sq_get_nowait, SimpleQueueObject)

static PyObject *sq_put_many_impl(SimpleQueueObject *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    static const char *const kwlist[] = {"items", "block", "timeout", NULL};
    PyObject *a[3];
    if (cc_parse_args("put_many", args, nargs, kwnames, kwlist, 3, 1, a) < 0)
        return NULL;
    /* Read the whole iterable first: an error while iterating puts nothing. */
    PyObject *seq = PySequence_Fast(a[0], "put_many() argument must be iterable");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    if (ring_reserve(&self->ring, n) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        ring_push_reserved(&self->ring, items[i]);
    Py_DECREF(seq);
    cc_waitlist_wake(&self->getters, n);
    Py_RETURN_NONE;
}
CC_CS_FASTCALL_KW(sq_put_many, SimpleQueueObject)

/* max_items as a positive count (shared with queue.c through the same rule). */
static int sq_max_items(PyObject *obj, Py_ssize_t *n)
{
    Py_ssize_t v = PyNumber_AsSsize_t(obj, PyExc_OverflowError);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 1) {
        PyErr_SetString(PyExc_ValueError, "max_items must be a positive integer");
        return -1;
    }
    *n = v;
    return 0;
}

static PyObject *sq_get_many_impl(SimpleQueueObject *self, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    static const char *const kwlist[] = {"max_items", "block", "timeout", NULL};
    PyObject *a[3];
    cc_deadline deadline;
    Py_ssize_t max_items;
    if (sq_parse_block_timeout("get_many", args, nargs, kwnames, kwlist, 1, a, &deadline) < 0 ||
        sq_max_items(a[0], &max_items) < 0)
        return NULL;
    PyObject *list;
    Py_ssize_t n;
    for (;;) {
        if (sq_wait_for_item(self, deadline) < 0)
            return NULL;
        n = self->ring.len < max_items ? self->ring.len : max_items;
        list = PyList_New(n);  /* allocated before anything leaves the ring */
        if (!list)
            return NULL;
        /* The allocation may have run the GC, and a __del__ (or another
         * thread, while one released the GIL) may have taken items. */
        if (self->ring.len >= n)
            break;
        if (self->ring.len > 0) {
            n = self->ring.len;
            Py_SET_SIZE(list, n);  /* the slots past n are still NULL */
            break;
        }
        Py_DECREF(list);  /* emptied: wait again, as get() would */
    }
    for (Py_ssize_t i = 0; i < n; i++)
        PyList_SET_ITEM(list, i, ring_pop_front(&self->ring));
    ring_maybe_shrink(&self->ring);
    /* Other getters may have been woken for items this call took: they
     * find the ring empty and park again. Items left over go to them. */
    if (self->ring.len)
        cc_waitlist_wake(&self->getters, self->ring.len);
    return list;
}
CC_CS_FASTCALL_KW(sq_get_many, SimpleQueueObject)

static PyObject *sq_empty_impl(SimpleQueueObject *self)
{
    return PyBool_FromLong(self->ring.len == 0);
}
CC_CS_NOARGS(sq_empty, SimpleQueueObject)

static PyObject *sq_qsize_impl(SimpleQueueObject *self)
{
    return PyLong_FromSsize_t(self->ring.len);
}
CC_CS_NOARGS(sq_qsize, SimpleQueueObject)

static PyObject *sq_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyErr_Format(PyExc_TypeError, "cannot pickle '%.200s' object", Py_TYPE(self)->tp_name);
    return NULL;
}

static PyObject *sq_at_fork_reinit_impl(SimpleQueueObject *self)
{
    cc_waitlist_init(&self->getters);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(sq_at_fork_reinit, SimpleQueueObject)

static PyMethodDef sq_methods[] = {
    {"put", (PyCFunction)(void (*)(void))sq_put, METH_FASTCALL | METH_KEYWORDS,
     "put(item, block=True, timeout=None)\n--\n\n"
     "Put the item on the queue. Never blocks: block and timeout are accepted\n"
     "for compatibility with Queue.put and ignored."},
    {"put_nowait", (PyCFunction)sq_put_nowait, METH_O,
     "put_nowait(item)\n--\n\nPut an item into the queue without blocking (same as put)."},
    {"get", (PyCFunction)(void (*)(void))sq_get, METH_FASTCALL | METH_KEYWORDS,
     "get(block=True, timeout=None)\n--\n\n"
     "Remove and return an item from the queue, waiting for one if block is\n"
     "true, at most timeout seconds if it is a non-negative number; raises\n"
     "queue.Empty when none is available in time."},
    {"get_nowait", (PyCFunction)sq_get_nowait, METH_NOARGS,
     "get_nowait()\n--\n\nRemove and return an item if one is immediately available, else raise Empty."},
    {"put_many", (PyCFunction)(void (*)(void))sq_put_many, METH_FASTCALL | METH_KEYWORDS,
     "put_many(items, block=True, timeout=None)\n--\n\n"
     "Put every item of the iterable, in order, waking as many waiting getters.\n"
     "The iterable is read to its end first, so an error while iterating puts\n"
     "nothing. Never blocks (block and timeout are ignored, as in put)."},
    {"get_many", (PyCFunction)(void (*)(void))sq_get_many, METH_FASTCALL | METH_KEYWORDS,
     "get_many(max_items, block=True, timeout=None)\n--\n\n"
     "Wait as get() does until at least one item is available, then remove and\n"
     "return a list of the oldest items, at most max_items (a positive int)."},
    {"empty", (PyCFunction)sq_empty, METH_NOARGS,
     "empty()\n--\n\nReturn True if the queue is empty, False otherwise (not reliable!)."},
    {"qsize", (PyCFunction)sq_qsize, METH_NOARGS,
     "qsize()\n--\n\nReturn the approximate size of the queue (not reliable!)."},
    {"__reduce__", (PyCFunction)sq_reduce, METH_NOARGS, NULL},
    {"_at_fork_reinit", (PyCFunction)sq_at_fork_reinit, METH_NOARGS, NULL},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, "See PEP 585"},
    {NULL, NULL},
};

static PyMemberDef sq_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SimpleQueueObject, weakreflist), READONLY},
    {NULL},
};

static PyType_Slot sq_slots[] = {
    {Py_tp_new, sq_new},
    {Py_tp_dealloc, sq_dealloc},
    {Py_tp_traverse, sq_traverse},
    {Py_tp_clear, sq_clear},
    {Py_tp_methods, sq_methods},
    {Py_tp_members, sq_members},
    {Py_tp_doc, "SimpleQueue()\n--\n\nSimple, unbounded, reentrant FIFO queue (native)."},
    {0, NULL},
};

static PyType_Spec sq_spec = {
    .name = "cconc.queue.SimpleQueue",
    .basicsize = sizeof(SimpleQueueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = sq_slots,
};

int cc_simplequeue_exec(PyObject *module, cc_state *st)
{
    return cc_add_type(module, &sq_spec, NULL, &st->SimpleQueue_type);
}
