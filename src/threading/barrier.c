/* threading.Barrier.
 *
 * The stdlib's state machine (0 filling, 1 draining, -1 resetting, -2 broken)
 * over one native waiter list. Every transition wakes every waiter and each
 * re-checks the state, as the stdlib's notify_all() does, so no wake-up can be
 * lost to a timeout or a signal.
 *
 * The stdlib's Barrier holds its Condition's lock for the whole of wait()
 * except while blocked, so the action runs with the barrier locked. Here the
 * GIL (without one, the barrier's critical section) keeps every state change
 * atomic; only the action (arbitrary Python code, which may let other threads
 * in) needs a lock: `in_action`, with its own
 * waiter list. The action calling back into its barrier would deadlock the
 * stdlib; it raises RuntimeError here. */
#include "cconc.h"

#include <math.h>
#include <structmember.h>

enum { FILLING = 0, DRAINING = 1, RESETTING = -1, BROKEN = -2 };

typedef struct {
    PyObject_HEAD
    Py_ssize_t parties;
    PyObject *action;  /* or None */
    PyObject *timeout; /* the default for wait(), or None */
    int state;
    Py_ssize_t count;  /* threads inside wait() past the entry */
    cc_waitlist waiters;
    int in_action;
    unsigned long action_thread;
    cc_waitlist action_waiters; /* threads waiting for the action to finish */
    PyObject *weakreflist;
} BarrierObject;

static void barrier_notify_all(BarrierObject *self) { cc_waitlist_wake(&self->waiters, -1); }

static int raise_broken(BarrierObject *self)
{
    cc_state *st = cc_state_of_type(Py_TYPE(self));
    if (st)
        PyErr_SetNone(st->BrokenBarrierError);
    return -1;
}

/* Wait while the action runs (the stdlib's `with self._cond`). Entering
 * calls are interruptible (0 / -1); re-entry after a wait is not: it waits
 * through signals and returns -1 with the handler's exception afterwards. */
static int barrier_lock(BarrierObject *self, int interruptible)
{
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    while (self->in_action) {
        if (self->action_thread == PyThread_get_thread_ident()) {
            PyErr_SetString(PyExc_RuntimeError, "cannot use a Barrier from its own action");
            return -1;
        }
        cc_waiter w;
        cc_waitlist_append(&self->action_waiters, &w);
        if (cc_park(&self->action_waiters, &w, CC_FOREVER) == CC_PARK_ERROR) {
            if (interruptible)
                return -1;
            if (!type)
                PyErr_Fetch(&type, &value, &tb);
            else
                PyErr_Clear();
        }
    }
    if (type) {
        PyErr_Restore(type, value, tb);
        return -1;
    }
    return 0;
}

/* The stdlib's Condition.wait inside the barrier: 0 after a wake-up or the
 * deadline (the caller re-checks the state), -1 on error. */
static int barrier_cond_wait(BarrierObject *self, cc_deadline deadline)
{
    cc_waiter w;
    cc_waitlist_append(&self->waiters, &w);
    int r = cc_park(&self->waiters, &w, deadline);
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    if (r == CC_PARK_ERROR)
        PyErr_Fetch(&type, &value, &tb);
    int relocked = barrier_lock(self, 0);
    if (type) {
        if (relocked < 0) {
            /* two exceptions: keep the first, as the second was raised after it */
            PyErr_Clear();
        }
        PyErr_Restore(type, value, tb);
        return -1;
    }
    return relocked;
}

/* The stdlib's Barrier._wait is Condition.wait_for(predicate, timeout). */
static int barrier_deadline(PyObject *timeout, cc_deadline *deadline) { return cc_endtime_timeout(timeout, deadline); }

/* The last thread out of a draining or resetting barrier re-opens it. */
static void barrier_exit(BarrierObject *self)
{
    self->count--;
    if (self->count == 0 && (self->state == RESETTING || self->state == DRAINING)) {
        self->state = FILLING;
        barrier_notify_all(self);
    }
}

static void barrier_break(BarrierObject *self)
{
    self->state = BROKEN;
    barrier_notify_all(self);
}

/* Run the action with the barrier locked, then release the waiters. Even the
 * action's truth test (the stdlib's `if self._action:`) runs locked: it is
 * Python code too, and may let other threads in. */
static int barrier_release(BarrierObject *self)
{
    if (self->action && self->action != Py_None) {
        PyObject *action = Py_NewRef(self->action);
        self->in_action = 1;
        self->action_thread = PyThread_get_thread_ident();
        int run = PyObject_IsTrue(action);
        PyObject *r = NULL;
        if (run > 0)
            r = PyObject_CallNoArgs(action);
        self->in_action = 0;
        cc_waitlist_wake(&self->action_waiters, -1);
        Py_DECREF(action);
        if (run < 0 || (run > 0 && !r)) {
            barrier_break(self);
            return -1;
        }
        Py_XDECREF(r);
    }
    self->state = DRAINING;
    barrier_notify_all(self);
    return 0;
}

static PyObject *barrier_wait_impl(BarrierObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"timeout", NULL};
    PyObject *timeout = NULL;
    if ((nargs || kwnames) && cc_parse_args("wait", args, nargs, kwnames, kwlist, 1, 0, &timeout) < 0)
        return NULL;
    if (!timeout || timeout == Py_None)
        timeout = self->timeout ? self->timeout : Py_None; /* NULL only after tp_clear */
    Py_INCREF(timeout);  /* self->timeout may be replaced by __init__ while we wait */
    Py_ssize_t index = -1;
    int failed = 1;
    if (barrier_lock(self, 1) < 0)
        goto out;
    /* Wait while the barrier drains or resets. */
    while (self->state == DRAINING || self->state == RESETTING)
        if (barrier_cond_wait(self, CC_FOREVER) < 0)
            goto out;
    if (self->state < 0) {
        raise_broken(self);
        goto out;
    }
    index = self->count++;
    if (index + 1 == self->parties) {
        failed = barrier_release(self) < 0;
    }
    else {
        cc_deadline deadline;
        if (barrier_deadline(timeout == Py_None ? NULL : timeout, &deadline) < 0)
            goto exit;
        int first = 1;
        while (self->state == FILLING) {
            if (!first && cc_deadline_passed(deadline))
                break;
            first = 0;
            if (barrier_cond_wait(self, deadline) < 0)
                goto exit;
        }
        if (self->state == FILLING) {
            barrier_break(self); /* timed out */
            raise_broken(self);
        }
        else if (self->state < 0) {
            raise_broken(self);
        }
        else {
            failed = 0;
        }
    }
exit:
    barrier_exit(self);
out:
    Py_DECREF(timeout);
    if (failed)
        return NULL;
    return PyLong_FromSsize_t(index);
}
CC_CS_FASTCALL_KW(barrier_wait, BarrierObject)

static PyObject *barrier_reset_impl(BarrierObject *self)
{
    if (barrier_lock(self, 1) < 0)
        return NULL;
    if (self->count > 0) {
        if (self->state == FILLING || self->state == BROKEN)
            self->state = RESETTING;
    }
    else {
        self->state = FILLING;
    }
    barrier_notify_all(self);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(barrier_reset, BarrierObject)

static PyObject *barrier_abort_impl(BarrierObject *self)
{
    if (barrier_lock(self, 1) < 0)
        return NULL;
    barrier_break(self);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(barrier_abort, BarrierObject)

static PyObject *barrier_get_parties_impl(BarrierObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->parties);
}
CC_CS_GETTER(barrier_get_parties, BarrierObject)

static PyObject *barrier_get_n_waiting_impl(BarrierObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->state == FILLING ? self->count : 0);
}
CC_CS_GETTER(barrier_get_n_waiting, BarrierObject)

static PyObject *barrier_get_broken_impl(BarrierObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->state == BROKEN);
}
CC_CS_GETTER(barrier_get_broken, BarrierObject)

static PyObject *barrier_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    BarrierObject *self = (BarrierObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->action = Py_NewRef(Py_None);
    self->timeout = Py_NewRef(Py_None);
    cc_waitlist_init(&self->waiters);
    cc_waitlist_init(&self->action_waiters);
    return (PyObject *)self;
}

static int barrier_init(BarrierObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"parties", "action", "timeout", NULL};
    PyObject *parties_obj, *action = Py_None, *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO:Barrier", kwlist, &parties_obj, &action, &timeout))
        return -1;
    Py_ssize_t parties = PyNumber_AsSsize_t(parties_obj, PyExc_OverflowError);
    if (parties == -1 && PyErr_Occurred())
        return -1;
#if PY_VERSION_HEX >= 0x030D0000
    if (parties < 1) {
        PyErr_SetString(PyExc_ValueError, "parties must be >= 1");
        return -1;
    }
#endif
    PyObject *old_action, *old_timeout;
    Py_BEGIN_CRITICAL_SECTION(self);
    self->parties = parties;
    self->state = FILLING;
    self->count = 0;
    old_action = self->action;
    old_timeout = self->timeout;
    self->action = Py_NewRef(action);
    self->timeout = Py_NewRef(timeout);
    Py_END_CRITICAL_SECTION();
    /* Dropped outside: their __del__ may run code that uses the barrier. */
    Py_XDECREF(old_action);
    Py_XDECREF(old_timeout);
    return 0;
}

static int barrier_traverse(BarrierObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->action);
    Py_VISIT(self->timeout);
    return 0;
}

static int barrier_clear(BarrierObject *self)
{
    Py_CLEAR(self->action);
    Py_CLEAR(self->timeout);
    return 0;
}

static void barrier_dealloc(BarrierObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    barrier_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *barrier_repr_impl(BarrierObject *self)
{
    PyObject *cls = (PyObject *)Py_TYPE(self), *module, *qualname, *r = NULL;
    module = PyObject_GetAttrString(cls, "__module__");
    if (!module)
        return NULL;
    qualname = PyObject_GetAttrString(cls, "__qualname__");
    if (qualname) {
        if (self->state == BROKEN)
            r = PyUnicode_FromFormat("<%S.%S at %p: broken>", module, qualname, self);
        else
            r = PyUnicode_FromFormat("<%S.%S at %p: waiters=%zd/%zd>", module, qualname, self,
                                     self->state == FILLING ? self->count : 0, self->parties);
        Py_DECREF(qualname);
    }
    Py_DECREF(module);
    return r;
}
CC_CS_REPR(barrier_repr, BarrierObject)

static PyMethodDef barrier_methods[] = {
    {"wait", (PyCFunction)(void (*)(void))barrier_wait, METH_FASTCALL | METH_KEYWORDS,
     "wait(timeout=None) -> int: wait for the other parties; returns this thread's arrival index."},
    {"reset", (PyCFunction)barrier_reset, METH_NOARGS,
     "reset(): back to the empty state; threads waiting get BrokenBarrierError."},
    {"abort", (PyCFunction)barrier_abort, METH_NOARGS,
     "abort(): break the barrier; waiting and future wait() calls raise BrokenBarrierError."},
    {NULL, NULL},
};

static PyGetSetDef barrier_getset[] = {
    {"parties", (getter)barrier_get_parties, NULL, "The number of threads required to trip the barrier.", NULL},
    {"n_waiting", (getter)barrier_get_n_waiting, NULL, "The number of threads waiting at the barrier.", NULL},
    {"broken", (getter)barrier_get_broken, NULL, "True if the barrier is broken.", NULL},
    {NULL},
};

static PyMemberDef barrier_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(BarrierObject, weakreflist), READONLY},
    {NULL},
};

static PyType_Slot barrier_slots[] = {
    {Py_tp_new, barrier_new},
    {Py_tp_init, barrier_init},
    {Py_tp_dealloc, barrier_dealloc},
    {Py_tp_traverse, barrier_traverse},
    {Py_tp_clear, barrier_clear},
    {Py_tp_repr, barrier_repr},
    {Py_tp_methods, barrier_methods},
    {Py_tp_getset, barrier_getset},
    {Py_tp_members, barrier_members},
    {Py_tp_doc, "Barrier(parties, action=None, timeout=None): the native counterpart of threading.Barrier."},
    {0, NULL},
};

static PyType_Spec barrier_spec = {
    .name = "cconc.threading.Barrier",
    .basicsize = sizeof(BarrierObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = barrier_slots,
};

int cc_barrier_exec(PyObject *module, cc_state *st)
{
    PyObject *threading = PyImport_ImportModule("threading");
    if (!threading)
        return -1;
    st->BrokenBarrierError = PyObject_GetAttrString(threading, "BrokenBarrierError");
    Py_DECREF(threading);
    if (!st->BrokenBarrierError)
        return -1;
    return cc_add_type(module, &barrier_spec, NULL, &st->Barrier_type);
}
