/* threading.Semaphore and threading.BoundedSemaphore.
 *
 * release() hands units straight to the oldest waiters (a woken waiter owns
 * its unit, it never competes again), so a waiter timing out or interrupted
 * at the instant it is woken cannot lose a unit: it reports success, or
 * gives the unit back when it must raise. The invariant: while threads wait,
 * value is 0. */
#include "cconc.h"

#include <math.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    Py_ssize_t value;
    Py_ssize_t bound; /* BoundedSemaphore: the initial value; -1: unbounded */
    cc_waitlist waiters;
    PyObject *weakreflist;
} SemaphoreObject;

/* Add n units: each of the oldest waiters gets one, the rest go to value. */
static void sem_give(SemaphoreObject *self, Py_ssize_t n)
{
    cc_waiter *w;
    while (n > 0 && (w = cc_waitlist_pop(&self->waiters)) != NULL) {
        cc_waiter_wake(w);
        n--;
    }
    self->value += n;
}

/* A count: the stdlib's own test first (`value < 0`, `n < 1`, with any
 * type: its TypeError, or its ValueError with `message`), then, unlike the
 * stdlib, which keeps whatever number it is given, an int that fits a
 * Py_ssize_t (TypeError / OverflowError otherwise; see docs/threading.md). */
static int sem_count(PyObject *obj, long below, const char *message, Py_ssize_t *out)
{
    if (PyLong_CheckExact(obj)) {
        *out = PyLong_AsSsize_t(obj);
        if (*out == -1 && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError) || _PyLong_Sign(obj) > 0)
                return -1;
            PyErr_Clear();
            *out = PY_SSIZE_T_MIN; /* below any limit: the caller's ValueError */
        }
        return 0;
    }
    PyObject *limit = PyLong_FromLong(below);
    if (!limit)
        return -1;
    int is_below = PyObject_RichCompareBool(obj, limit, Py_LT);
    Py_DECREF(limit);
    if (is_below < 0)
        return -1;
    if (is_below) {
        PyErr_SetString(PyExc_ValueError, message);
        return -1;
    }
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "cconc counts semaphore units in ints, not '%.100s'", Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = PyLong_AsSsize_t(obj);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* The unit was handed to a waiter whose thread will never run again. */
static void sem_giveback(cc_waitlist *wl, cc_waiter *w)
{
    sem_give(CC_CONTAINER_OF(wl, SemaphoreObject, waiters), 1);
}

static PyObject *sem_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    SemaphoreObject *self = (SemaphoreObject *)type->tp_alloc(type, 0);
    if (self) {
        self->value = 1;
        self->bound = -1;
        cc_waitlist_init_giveback(&self->waiters, sem_giveback);
    }
    return (PyObject *)self;
}

static int sem_init_common(SemaphoreObject *self, PyObject *args, PyObject *kwds, const char *fmt, int bounded)
{
    static char *kwlist[] = {"value", NULL};
    PyObject *value_obj = NULL;
    Py_ssize_t value = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, fmt, kwlist, &value_obj))
        return -1;
    if (value_obj && sem_count(value_obj, 0, "semaphore initial value must be >= 0", &value) < 0)
        return -1;
    if (value < 0) {
        PyErr_SetString(PyExc_ValueError, "semaphore initial value must be >= 0");
        return -1;
    }
    int busy;
    Py_BEGIN_CRITICAL_SECTION(self);
    busy = cc_waitlist_len(&self->waiters) != 0;
    if (!busy) {
        self->value = value;
        self->bound = bounded ? value : -1;
    }
    Py_END_CRITICAL_SECTION();
    if (busy) {
        PyErr_SetString(PyExc_RuntimeError, "cannot re-initialize a semaphore while threads wait on it");
        return -1;
    }
    return 0;
}

static int sem_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    return sem_init_common((SemaphoreObject *)self, args, kwds, "|O:Semaphore", 0);
}

static int bsem_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    return sem_init_common((SemaphoreObject *)self, args, kwds, "|O:BoundedSemaphore", 1);
}

static void sem_dealloc(SemaphoreObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* The stdlib's `endtime = _time() + timeout`, then Condition.wait(timeout). */
static int sem_deadline(PyObject *timeout, cc_deadline *deadline) { return cc_endtime_timeout(timeout, deadline); }

/* 1 acquired, 0 not, -1 error. */
static int sem_acquire_until(SemaphoreObject *self, cc_deadline deadline)
{
    if (self->value > 0) {
        self->value--;
        return 1;
    }
    if (deadline == 0)
        return 0;
    cc_waiter w;
    cc_waitlist_append(&self->waiters, &w);
    int r = cc_park(&self->waiters, &w, deadline);
    if (r == CC_PARK_ERROR && w.state == CC_WOKEN)
        sem_give(self, 1); /* handed a unit while a signal handler raised: pass it on */
    return r;
}

static PyObject *sem_acquire_impl(SemaphoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"blocking", "timeout", NULL};
    if (nargs == 0 && kwnames == NULL && self->value > 0) {
        self->value--;
        Py_RETURN_TRUE;
    }
    PyObject *a[2];
    if (cc_parse_args("acquire", args, nargs, kwnames, kwlist, 2, 0, a) < 0)
        return NULL;
    int blocking = 1;
    if (a[0] && (blocking = PyObject_IsTrue(a[0])) < 0)
        return NULL;
    PyObject *timeout = a[1] == Py_None ? NULL : a[1];
    if (!blocking && timeout) {
        PyErr_SetString(PyExc_ValueError, "can't specify timeout for non-blocking acquire");
        return NULL;
    }
    cc_deadline deadline = CC_FOREVER;
    if (!blocking)
        deadline = 0;
    else if (self->value == 0 && sem_deadline(timeout, &deadline) < 0)
        return NULL; /* the stdlib looks at the timeout only when it must wait */
    int r = sem_acquire_until(self, deadline);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}
CC_CS_FASTCALL_KW(sem_acquire, SemaphoreObject)

static PyObject *sem_enter_impl(SemaphoreObject *self)
{
    if (sem_acquire_until(self, CC_FOREVER) < 0)
        return NULL;
    Py_RETURN_TRUE;
}
CC_CS_NOARGS(sem_enter, SemaphoreObject)

static int sem_release_n(SemaphoreObject *self, Py_ssize_t n)
{
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "n must be one or more");
        return -1;
    }
    if (self->bound >= 0 && n > self->bound - self->value) {
        PyErr_SetString(PyExc_ValueError, "Semaphore released too many times");
        return -1;
    }
    if (n > PY_SSIZE_T_MAX - self->value) {
        PyErr_SetString(PyExc_OverflowError, "semaphore value is too large");
        return -1;
    }
    sem_give(self, n);
    return 0;
}

static PyObject *sem_release_impl(SemaphoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"n", NULL};
    Py_ssize_t n = 1;
    if (nargs || kwnames) {
        PyObject *n_obj;
        if (cc_parse_args("release", args, nargs, kwnames, kwlist, 1, 0, &n_obj) < 0)
            return NULL;
        if (n_obj && sem_count(n_obj, 1, "n must be one or more", &n) < 0)
            return NULL;
    }
    if (sem_release_n(self, n) < 0)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_FASTCALL_KW(sem_release, SemaphoreObject)

static void sem_dealloc(SemaphoreObject *self);

static PyObject *sem_exit_impl(SemaphoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    /* The stdlib's __exit__ calls self.release(): a Python subclass (its
     * instances have subtype_dealloc) may override it. (__enter__ is the
     * stdlib's `__enter__ = acquire`, Semaphore.acquire itself.) */
    if (Py_TYPE(self)->tp_dealloc != (destructor)sem_dealloc)
        return PyObject_CallMethod((PyObject *)self, "release", NULL);
    if (sem_release_n(self, 1) < 0)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_FASTCALL(sem_exit, SemaphoreObject)

static PyObject *sem_get_value_impl(SemaphoreObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->value);
}
CC_CS_GETTER(sem_get_value, SemaphoreObject)

static PyObject *bsem_get_initial_value_impl(SemaphoreObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->bound);
}
CC_CS_GETTER(bsem_get_initial_value, SemaphoreObject)

static PyObject *sem_repr_impl(SemaphoreObject *self)
{
    PyObject *cls = (PyObject *)Py_TYPE(self), *module, *qualname, *r = NULL;
    module = PyObject_GetAttrString(cls, "__module__");
    if (!module)
        return NULL;
    qualname = PyObject_GetAttrString(cls, "__qualname__");
    if (qualname) {
        if (self->bound >= 0)
            r = PyUnicode_FromFormat("<%S.%S at %p: value=%zd/%zd>", module, qualname, self, self->value,
                                     self->bound);
        else
            r = PyUnicode_FromFormat("<%S.%S at %p: value=%zd>", module, qualname, self, self->value);
        Py_DECREF(qualname);
    }
    Py_DECREF(module);
    return r;
}
CC_CS_REPR(sem_repr, SemaphoreObject)

static PyMethodDef sem_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))sem_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=None) -> bool: take one unit, waiting for it if needed."},
    {"release", (PyCFunction)(void (*)(void))sem_release, METH_FASTCALL | METH_KEYWORDS,
     "release(n=1): give back n units, waking up to n waiting threads."},
    {"__enter__", (PyCFunction)sem_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))sem_exit, METH_FASTCALL, NULL},
    {NULL, NULL},
};

static PyGetSetDef sem_getset[] = {
    {"_value", (getter)sem_get_value, NULL, "Units available now.", NULL},
    {NULL},
};

static PyGetSetDef bsem_getset[] = {
    {"_initial_value", (getter)bsem_get_initial_value, NULL, "The bound: the initial value.", NULL},
    {NULL},
};

static PyMemberDef sem_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SemaphoreObject, weakreflist), READONLY},
    {NULL},
};

static PyType_Slot sem_slots[] = {
    {Py_tp_new, sem_new},
    {Py_tp_init, sem_init},
    {Py_tp_dealloc, sem_dealloc},
    {Py_tp_repr, sem_repr},
    {Py_tp_methods, sem_methods},
    {Py_tp_getset, sem_getset},
    {Py_tp_members, sem_members},
    {Py_tp_doc, "Semaphore(value=1): a counter of units; the native counterpart of threading.Semaphore."},
    {0, NULL},
};

static PyType_Spec sem_spec = {
    .name = "cconc.threading.Semaphore",
    .basicsize = sizeof(SemaphoreObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = sem_slots,
};

static PyType_Slot bsem_slots[] = {
    {Py_tp_init, bsem_init},
    {Py_tp_getset, bsem_getset},
    {Py_tp_doc, "BoundedSemaphore(value=1): a Semaphore that refuses to be released above its initial "
                "value; the native counterpart of threading.BoundedSemaphore."},
    {0, NULL},
};

static PyType_Spec bsem_spec = {
    .name = "cconc.threading.BoundedSemaphore",
    .basicsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = bsem_slots,
};

int cc_semaphore_exec(PyObject *module, cc_state *st)
{
    if (cc_add_type(module, &sem_spec, NULL, &st->Semaphore_type) < 0)
        return -1;
    /* A tuple of bases: before 3.10 PyType_FromModuleAndSpec takes no bare type. */
    PyObject *bases = PyTuple_Pack(1, (PyObject *)st->Semaphore_type);
    if (!bases)
        return -1;
    int r = cc_add_type(module, &bsem_spec, bases, &st->BoundedSemaphore_type);
    Py_DECREF(bases);
    return r;
}
