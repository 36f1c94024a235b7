/* _Doorbell: a handle on a process-shared doorbell (channel.h), which the
 * pool's workers' result rings ring at every publish (_MPSimpleQueue's
 * _ring_on_put), so that the parent, reading every worker's ring, sleeps on
 * one word (cconc/multiprocessing/pool.py, _ResultRings). The count and the
 * futex word are atomics in shared memory: ring, count and wait need no lock. */
#include "channel.h"

#include <unistd.h>

#ifdef __linux__ /* channel.c's platform */

typedef struct {
    PyObject_HEAD
    cc_bell bell;
} DoorbellObject;

cc_bell *cc_bell_of(cc_state *st, PyObject *obj)
{
    if (!PyObject_TypeCheck(obj, st->Doorbell_type)) {
        PyErr_Format(PyExc_TypeError, "expected a doorbell, not %.200s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return &((DoorbellObject *)obj)->bell;
}

static PyObject *bell_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "_Doorbell() takes no arguments");
        return NULL;
    }
    DoorbellObject *self = (DoorbellObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    if (cc_bell_create(&self->bell) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* cls._attach(fd): a handle on the doorbell behind fd (ours from now on),
 * in a process it was passed to. */
static PyObject *bell_attach(PyObject *cls, PyObject *arg)
{
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0)
        return NULL;
    DoorbellObject *self = (DoorbellObject *)((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, 0);
    if (!self) {
        close(fd);
        return NULL;
    }
    if (cc_bell_attach(&self->bell, fd) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void bell_dealloc(DoorbellObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    cc_bell_release(&self->bell);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* (hdr is set in every object: __new__ and _attach fail otherwise) */
static PyObject *bell_ring(DoorbellObject *self, PyObject *unused)
{
    cc_bell_ring(&self->bell);
    Py_RETURN_NONE;
}

static PyObject *bell_count(DoorbellObject *self, PyObject *unused)
{
    return PyLong_FromUnsignedLong(cc_bell_count(&self->bell));
}

/* wait(seen, timeout=None): True once the count differs from `seen`, False
 * when `timeout` seconds passed first (<= 0 looks without waiting). */
static PyObject *bell_wait(DoorbellObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "wait(seen, timeout=None)");
        return NULL;
    }
    unsigned long seen = PyLong_AsUnsignedLong(args[0]);
    if (seen == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    cc_deadline deadline = CC_FOREVER;
    if (nargs == 2 && args[1] != Py_None) {
        double t = PyFloat_AsDouble(args[1]);
        if (t == -1.0 && PyErr_Occurred())
            return NULL;
        if (t != t) {
            PyErr_SetString(PyExc_ValueError, "timeout is NaN");
            return NULL;
        }
        deadline = t > 0 ? cc_deadline_after(t) : 0;
    }
    int r = cc_bell_wait(&self->bell, (uint32_t)seen, deadline);
    if (r == CC_CHAN_ERROR)
        return NULL;
    return PyBool_FromLong(r == CC_CHAN_OK);
}

/* (the fd stays open as long as the object: it is closed only by dealloc) */
static PyObject *bell_fileno(DoorbellObject *self, PyObject *unused) { return PyLong_FromLong(self->bell.fd); }

static PyMethodDef bell_methods[] = {
    {"ring", (PyCFunction)bell_ring, METH_NOARGS, "ring()\n--\n\nAdd one to the count; wake the waiter."},
    {"count", (PyCFunction)bell_count, METH_NOARGS, "count()\n--\n\nThe rings so far (modulo 2**32)."},
    {"wait", (PyCFunction)(void (*)(void))bell_wait, METH_FASTCALL,
     "wait(seen, timeout=None)\n--\n\nWait for the count to differ from seen."},
    {"_fileno", (PyCFunction)bell_fileno, METH_NOARGS, NULL},
    {"_attach", (PyCFunction)bell_attach, METH_O | METH_CLASS, NULL},
    {NULL},
};

static PyType_Slot bell_slots[] = {
    {Py_tp_new, bell_new},
    {Py_tp_dealloc, bell_dealloc},
    {Py_tp_methods, bell_methods},
    {0, NULL},
};

static PyType_Spec bell_spec = {
    .name = CC_MODULE "._Doorbell",
    .basicsize = sizeof(DoorbellObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = bell_slots,
};

#endif /* __linux__ */

int cc_doorbell_exec(PyObject *module, cc_state *st)
{
#ifndef __linux__
    return 0;
#else
    return cc_add_type(module, &bell_spec, NULL, &st->Doorbell_type);
#endif
}
