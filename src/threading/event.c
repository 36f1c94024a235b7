/* threading.Event: a flag and the threads waiting for it to be set. */
#include "cconc.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    int flag;
    cc_waitlist waiters;
    PyObject *weakreflist;
} EventObject;

static PyObject *event_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    /* Arguments are left to __init__, so that subclasses may take their own. */
    EventObject *self = (EventObject *)type->tp_alloc(type, 0);
    if (self)
        cc_waitlist_init(&self->waiters);
    return (PyObject *)self;
}

static int event_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    if (Py_TYPE(self)->tp_init == event_init &&
        (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds)))) {
        PyErr_SetString(PyExc_TypeError, "Event() takes no arguments");
        return -1;
    }
    return 0;
}

static int event_traverse(EventObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static void event_dealloc(EventObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *event_is_set_impl(EventObject *self)
{
    return PyBool_FromLong(self->flag);
}
CC_CS_NOARGS(event_is_set, EventObject)

static void event_dealloc(EventObject *self);

/* 3.9's isSet is `isSet = is_set`; since 3.10 it warns, then calls
 * self.is_set() (which a subclass may override). */
static PyObject *event_isSet(EventObject *self, PyObject *Py_UNUSED(ignored))
{
#if PY_VERSION_HEX >= 0x030A0000
    if (PyErr_WarnEx(PyExc_DeprecationWarning, "isSet() is deprecated, use is_set() instead", 1) < 0)
        return NULL;
    if (Py_TYPE(self)->tp_dealloc != (destructor)event_dealloc)
        return PyObject_CallMethod((PyObject *)self, "is_set", NULL);
#endif
    return event_is_set(self, NULL);
}

static PyObject *event_set_impl(EventObject *self)
{
    self->flag = 1;
    cc_waitlist_wake(&self->waiters, -1);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(event_set, EventObject)

static PyObject *event_clear_impl(EventObject *self)
{
    self->flag = 0;
    Py_RETURN_NONE;
}
CC_CS_NOARGS(event_clear, EventObject)

static PyObject *event_wait_impl(EventObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"timeout", NULL};
    if (self->flag)
        Py_RETURN_TRUE;
    PyObject *timeout;
    cc_deadline deadline;
    if (cc_parse_args("wait", args, nargs, kwnames, kwlist, 1, 0, &timeout) < 0 ||
        cc_cond_timeout(timeout, &deadline) < 0)
        return NULL;
    if (self->flag)  /* the conversion may have run Python code that set it */
        Py_RETURN_TRUE;
    if (deadline == 0)
        Py_RETURN_FALSE;
    cc_waiter w;
    cc_waitlist_append(&self->waiters, &w);
    /* Woken means set() was called since we started waiting, even if the
     * flag has been cleared again since: the stdlib returns True then too. */
    switch (cc_park(&self->waiters, &w, deadline)) {
    case CC_PARK_WOKEN:
        Py_RETURN_TRUE;
    case CC_PARK_TIMEOUT:
        return PyBool_FromLong(self->flag);
    default:
        return NULL;
    }
}
CC_CS_FASTCALL_KW(event_wait, EventObject)

static PyObject *event_at_fork_reinit_impl(EventObject *self)
{
    cc_waitlist_reset(&self->waiters);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(event_at_fork_reinit, EventObject)

/* copy.copy(): the stdlib's Event is copied as a plain object (a new one,
 * __init__ not called, the __dict__ copied: the flag with it). A Python
 * subclass's instance attributes are copied the same way. */
static PyObject *event_copy_impl(EventObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject *args = PyTuple_New(0);
    if (!args)
        return NULL;
    EventObject *copy = (EventObject *)tp->tp_new(tp, args, NULL);
    Py_DECREF(args);
    if (!copy)
        return NULL;
    copy->flag = self->flag;
    PyObject **dictptr = _PyObject_GetDictPtr((PyObject *)self);
    if (dictptr && *dictptr && PyDict_GET_SIZE(*dictptr)) {
        PyObject *dict = PyObject_GenericGetDict((PyObject *)copy, NULL);
        int r = dict ? PyDict_Update(dict, *dictptr) : -1;
        Py_XDECREF(dict);
        if (r < 0) {
            Py_DECREF(copy);
            return NULL;
        }
    }
    return (PyObject *)copy;
}
CC_CS_NOARGS(event_copy, EventObject)

static PyObject *event_repr_impl(EventObject *self)
{
    PyObject *module = NULL, *qualname = NULL, *r = NULL;
    PyObject *cls = (PyObject *)Py_TYPE(self);
    module = PyObject_GetAttrString(cls, "__module__");
    if (module)
        qualname = PyObject_GetAttrString(cls, "__qualname__");
    if (qualname)
        r = PyUnicode_FromFormat("<%U.%U at %p: %s>", module, qualname, self, self->flag ? "set" : "unset");
    Py_XDECREF(module);
    Py_XDECREF(qualname);
    return r;
}
CC_CS_REPR(event_repr, EventObject)

static PyObject *event_get_flag_impl(EventObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->flag);
}
CC_CS_GETTER(event_get_flag, EventObject)

static PyMethodDef event_methods[] = {
    {"is_set", (PyCFunction)event_is_set, METH_NOARGS, "Return True if and only if the flag is set."},
    {"isSet", (PyCFunction)event_isSet, METH_NOARGS, "Deprecated alias of is_set()."},
    {"set", (PyCFunction)event_set, METH_NOARGS, "Set the flag and wake every waiting thread."},
    {"clear", (PyCFunction)event_clear, METH_NOARGS, "Reset the flag."},
    {"wait", (PyCFunction)(void (*)(void))event_wait, METH_FASTCALL | METH_KEYWORDS,
     "wait(timeout=None) -> bool: block until the flag is set or the timeout passes."},
    {"_at_fork_reinit", (PyCFunction)event_at_fork_reinit, METH_NOARGS, NULL},
    {"__copy__", (PyCFunction)event_copy, METH_NOARGS, NULL},
    {NULL, NULL},
};

static PyGetSetDef event_getset[] = {
    {"_flag", (getter)event_get_flag, NULL, NULL, NULL},
    {NULL},
};

static PyMemberDef event_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(EventObject, weakreflist), READONLY},
    {NULL},
};

static PyType_Slot event_slots[] = {
    {Py_tp_new, event_new},
    {Py_tp_init, event_init},
    {Py_tp_dealloc, event_dealloc},
    {Py_tp_traverse, event_traverse},
    {Py_tp_repr, event_repr},
    {Py_tp_methods, event_methods},
    {Py_tp_getset, event_getset},
    {Py_tp_members, event_members},
    {Py_tp_doc, "Event(): a flag threads can wait for; the native counterpart of threading.Event."},
    {0, NULL},
};

static PyType_Spec event_spec = {
    .name = "cconc.threading.Event",
    .basicsize = sizeof(EventObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = event_slots,
};

int cc_event_exec(PyObject *module, cc_state *st)
{
    return cc_add_type(module, &event_spec, NULL, &st->Event_type);
}
