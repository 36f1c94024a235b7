/* concurrent.futures natively: Future, and the waiters behind wait() and as_completed().
 *
 * The public cconc.futures.Future is a Python class built in cconc/futures.py
 * as `class Future(_FutureCore, concurrent.futures.Future)`: the native core
 * comes first in the MRO, so every method is the native one, while
 * isinstance(f, concurrent.futures.Future) holds, which asyncio asserts
 * (wrap_future, run_in_executor). The Python layer on top gives instances the
 * stdlib's __dict__ and __weakref__ and lets CPython's own subtype_dealloc and
 * subtype_traverse handle them, which an extension cannot do portably for a
 * C type deriving directly from a Python class.
 *
 * A future is changed only with the GIL held (without one, in the future's
 * critical section, which every method and cc_future_* function takes), so
 * its state, result and waiters are consistent whenever Python code (a
 * callback, a __del__) runs. A wait()/as_completed() waiter has its own,
 * always taken inside a future's, never around one.
 */
#include "cconc.h"

#include <math.h>
#include <structmember.h>

enum { F_PENDING, F_RUNNING, F_CANCELLED, F_CANCELLED_AND_NOTIFIED, F_FINISHED };

static const char *const state_names[] = {
    "PENDING", "RUNNING", "CANCELLED", "CANCELLED_AND_NOTIFIED", "FINISHED",
};
static const char *const state_descriptions[] = {
    "pending", "running", "cancelled", "cancelled", "finished",
};

typedef struct {
    PyObject_HEAD
    int state;
    PyObject *result;    /* NULL until set */
    PyObject *exception; /* NULL when none (set_exception(None) stores none, as the stdlib) */
    PyObject *callbacks; /* NULL or a list, stolen when they are invoked */
    PyObject *waiters;   /* NULL, one Waiter, or a list of Waiters (wait/as_completed) */
    cc_waitlist blocked; /* threads in result() / exception() */
    /* The stdlib's protocol, for concurrent.futures.wait() and as_completed()
     * given cconc futures: both NULL until f._condition / f._waiters are first
     * read. Once the condition exists, state changes happen holding it. */
    PyObject *condition;
    PyObject *py_waiters; /* list of stdlib-style waiters (add_result...) */
} FutureObject;

/* What a future tells the waiters of wait() and as_completed(). */
enum { ADD_RESULT, ADD_EXCEPTION, ADD_CANCELLED };
/* What a waiter waits for. */
enum { W_AS_COMPLETED, W_FIRST_COMPLETED, W_FIRST_EXCEPTION, W_ALL_COMPLETED };

typedef struct {
    PyObject_HEAD
    int kind;
    int saw_exception;
    Py_ssize_t pending; /* futures still to finish (FIRST_EXCEPTION, ALL_COMPLETED) */
    PyObject *finished; /* list of futures finished since it was installed */
    cc_waitlist sleepers;
} WaiterObject;

static inline int is_done(int state) { return state >= F_CANCELLED; }
static inline int is_cancelled(int state) { return state == F_CANCELLED || state == F_CANCELLED_AND_NOTIFIED; }
/* wait() and as_completed() count a cancelled future only once the executor noticed. */
static inline int is_complete(int state) { return state >= F_CANCELLED_AND_NOTIFIED; }

static cc_state *future_state(PyObject *self) { return cc_state_of_type(Py_TYPE(self)); }

/* The objects cconc/futures.py hands over (stdlib classes, the logger): */
static int require_setup(cc_state *st)
{
    if (!st->Future_type) {
        PyErr_SetString(PyExc_RuntimeError, "cconc.futures is not initialized (import cconc.futures)");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- logging */

/* Log the current exception the way `except ...: LOGGER.exception(msg, arg)`
 * does: the logger reads it from sys.exc_info(), so make it the handled one. */
void cc_futures_log_exception(cc_state *st, const char *method, const char *msg, PyObject *arg)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    PyObject *saved_type, *saved_value, *saved_tb;
    PyErr_GetExcInfo(&saved_type, &saved_value, &saved_tb);
    PyErr_SetExcInfo(type, value, tb); /* steals */
    /* logger.<method>(msg[, arg], exc_info=True) */
    PyObject *r = NULL, *fn = NULL, *call_args = NULL, *kwargs = NULL;
    if (st && st->futures_logger && (fn = PyObject_GetAttrString(st->futures_logger, method)) &&
        (call_args = arg ? Py_BuildValue("(sO)", msg, arg) : Py_BuildValue("(s)", msg)) &&
        (kwargs = Py_BuildValue("{sO}", "exc_info", Py_True)))
        r = PyObject_Call(fn, call_args, kwargs);
    Py_XDECREF(fn);
    Py_XDECREF(call_args);
    Py_XDECREF(kwargs);
    if (r)
        Py_DECREF(r);
    else
        PyErr_WriteUnraisable(arg ? arg : Py_None);
    PyErr_SetExcInfo(saved_type, saved_value, saved_tb);
}

/* ------------------------------------------------------------- waiters */

static int waiter_ready(WaiterObject *w)
{
    switch (w->kind) {
    case W_FIRST_EXCEPTION:
        return w->saw_exception || w->pending <= 0;
    case W_ALL_COMPLETED:
        return w->pending <= 0;
    default:
        return w->finished && PyList_GET_SIZE(w->finished) > 0;
    }
}

static void waiter_add_impl(WaiterObject *w, PyObject *future, int how)
{
    if (!w->finished) /* cleared by the GC */
        return;
    if (PyList_Append(w->finished, future) < 0)
        PyErr_WriteUnraisable((PyObject *)w);
    if (w->kind == W_FIRST_EXCEPTION && how == ADD_EXCEPTION)
        w->saw_exception = 1;
    else if (w->kind == W_FIRST_EXCEPTION || w->kind == W_ALL_COMPLETED)
        w->pending--;
    if (waiter_ready(w))
        cc_waitlist_wake(&w->sleepers, -1);
}

/* Called by a future finishing, in its own critical section: the waiter's is
 * taken inside it (the waiter is only ever the inner one). */
static void waiter_add(WaiterObject *w, PyObject *future, int how)
{
    Py_BEGIN_CRITICAL_SECTION(w);
    waiter_add_impl(w, future, how);
    Py_END_CRITICAL_SECTION();
}

/* Sleep until the waiter is ready or the deadline passes: 0, or -1 with an exception. */
static int waiter_wait_impl(WaiterObject *w, cc_deadline deadline)
{
    while (!waiter_ready(w)) {
        cc_waiter node;
        cc_waitlist_append(&w->sleepers, &node);
        int r = cc_park(&w->sleepers, &node, deadline);
        if (r == CC_PARK_ERROR)
            return -1;
        if (r == CC_PARK_TIMEOUT)
            return 0;
    }
    return 0;
}

static int waiter_wait(WaiterObject *w, cc_deadline deadline)
{
    int res;
    Py_BEGIN_CRITICAL_SECTION(w);
    res = waiter_wait_impl(w, deadline);
    Py_END_CRITICAL_SECTION();
    return res;
}

/* The stdlib futures call these on the waiters in their _waiters list. */
static PyObject *waiter_add_result(WaiterObject *w, PyObject *f)
{
    waiter_add(w, f, ADD_RESULT);
    Py_RETURN_NONE;
}

static PyObject *waiter_add_exception(WaiterObject *w, PyObject *f)
{
    waiter_add(w, f, ADD_EXCEPTION);
    Py_RETURN_NONE;
}

static PyObject *waiter_add_cancelled(WaiterObject *w, PyObject *f)
{
    waiter_add(w, f, ADD_CANCELLED);
    Py_RETURN_NONE;
}

static WaiterObject *waiter_new(cc_state *st, int kind)
{
    WaiterObject *w = PyObject_GC_New(WaiterObject, st->FutureWaiter_type);
    if (!w)
        return NULL;
    w->kind = kind;
    w->saw_exception = 0;
    w->pending = 0;
    cc_waitlist_init(&w->sleepers);
    w->finished = PyList_New(0);
    if (!w->finished) {
        w->finished = NULL;
        Py_DECREF(w);
        return NULL;
    }
    PyObject_GC_Track(w);
    return w;
}

static int waiter_traverse(WaiterObject *w, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(w));
    Py_VISIT(w->finished);
    return 0;
}

static int waiter_clear(WaiterObject *w)
{
    Py_CLEAR(w->finished);
    return 0;
}

static void waiter_dealloc(WaiterObject *w)
{
    PyTypeObject *tp = Py_TYPE(w);
    PyObject_GC_UnTrack(w);
    waiter_clear(w);
    tp->tp_free(w);
    Py_DECREF(tp);
}

static PyMethodDef waiter_methods[] = {
    {"add_result", (PyCFunction)waiter_add_result, METH_O, NULL},
    {"add_exception", (PyCFunction)waiter_add_exception, METH_O, NULL},
    {"add_cancelled", (PyCFunction)waiter_add_cancelled, METH_O, NULL},
    {NULL, NULL},
};

static PyType_Slot waiter_slots[] = {
    {Py_tp_dealloc, waiter_dealloc},
    {Py_tp_traverse, waiter_traverse},
    {Py_tp_clear, waiter_clear},
    {Py_tp_methods, waiter_methods},
    {Py_tp_doc, "What wait() and as_completed() install on the futures they wait for."},
    {0, NULL},
};

static PyType_Spec waiter_spec = {
    .name = "cconc._cconc._FutureWaiter",
    .basicsize = sizeof(WaiterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = waiter_slots,
};

/* ----------------------------------------------------- future internals */

static int future_add_waiter(FutureObject *f, PyObject *w)
{
    for (;;) {
        if (!f->waiters) {
            f->waiters = Py_NewRef(w);
            return 0;
        }
        if (PyList_CheckExact(f->waiters))
            return PyList_Append(f->waiters, w);
        PyObject *list = PyList_New(2);
        if (!list)
            return -1;
        /* The allocation may have run the GC, and a finalizer (an abandoned
         * as_completed() iterator) may have removed its waiter: look again. */
        if (!f->waiters || PyList_CheckExact(f->waiters)) {
            Py_DECREF(list);
            continue;
        }
        PyList_SET_ITEM(list, 0, f->waiters); /* steals the old reference */
        PyList_SET_ITEM(list, 1, Py_NewRef(w));
        f->waiters = list;
        return 0;
    }
}

static void future_remove_waiter(FutureObject *f, PyObject *w)
{
    PyObject *old = f->waiters;
    if (!old)
        return;
    if (old == w) {
        f->waiters = NULL;
        Py_DECREF(old);
        return;
    }
    if (!PyList_CheckExact(old))
        return;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(old); i++) {
        if (PyList_GET_ITEM(old, i) == w) {
            /* Waiters are our own type: removing one runs no Python code. */
            PyList_SetSlice(old, i, i + 1, NULL);
            return;
        }
    }
}

static void future_notify_waiters(FutureObject *f, int how)
{
    PyObject *ws = f->waiters;
    if (!ws)
        return;
    Py_INCREF(ws);
    if (!PyList_CheckExact(ws))
        waiter_add((WaiterObject *)ws, (PyObject *)f, how);
    else
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(ws); i++) {
            PyObject *w = Py_NewRef(PyList_GET_ITEM(ws, i));
            waiter_add((WaiterObject *)w, (PyObject *)f, how);
            Py_DECREF(w);
        }
    Py_DECREF(ws);
}

/* The stdlib's waiters, installed by concurrent.futures.wait() or as_completed(). */
static int future_notify_py_waiters(FutureObject *f, int how)
{
    if (!f->py_waiters || PyList_GET_SIZE(f->py_waiters) == 0)
        return 0;
    static const char *const methods[] = {"add_result", "add_exception", "add_cancelled"};
    PyObject *ws = Py_NewRef(f->py_waiters);
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(ws); i++) {
        PyObject *w = Py_NewRef(PyList_GET_ITEM(ws, i));
        PyObject *r = PyObject_CallMethod(w, methods[how], "O", (PyObject *)f);
        Py_DECREF(w);
        if (r)
            Py_DECREF(r);
        else
            rc = -1;
    }
    Py_DECREF(ws);
    return rc;
}

/* Acquire a condition (ours or a stdlib future's) by calling its acquire(). */
static int condition_acquire(PyObject *cond)
{
    PyObject *r = PyObject_CallMethod(cond, "acquire", NULL);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* Release `held` (NULL: nothing to release) and drop the reference to it,
 * keeping any pending exception: callers release on their error paths too. */
static int condition_release(PyObject *held)
{
    if (!held)
        return 0;
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *r = PyObject_CallMethod(held, "release", NULL);
    Py_DECREF(held);
    if (!r) {
        Py_XDECREF(exc_type);
        Py_XDECREF(exc_value);
        Py_XDECREF(exc_tb);
        return -1;
    }
    Py_DECREF(r);
    PyErr_Restore(exc_type, exc_value, exc_tb);
    return 0;
}

/* Hold f._condition, if anyone ever asked for it: *held is what to release. */
static int future_lock(FutureObject *f, PyObject **held)
{
    *held = NULL;
    if (!f->condition)
        return 0;
    PyObject *cond = Py_NewRef(f->condition);
    if (condition_acquire(cond) < 0) {
        Py_DECREF(cond);
        return -1;
    }
    *held = cond;
    return 0;
}

/* Release what future_lock took, keeping any pending exception. */
static int future_unlock(PyObject *held) { return condition_release(held); }

/* Call one done-callback; an Exception is logged and swallowed as the stdlib
 * does, anything else (KeyboardInterrupt, SystemExit) propagates. */
static int call_callback(FutureObject *f, PyObject *cb)
{
    PyObject *r = PyObject_CallOneArg(cb, (PyObject *)f);
    if (r) {
        Py_DECREF(r);
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return -1;
    cc_futures_log_exception(future_state((PyObject *)f), "exception", "exception calling callback for %r",
                          (PyObject *)f);
    return 0;
}

static int invoke_callbacks(FutureObject *f)
{
    PyObject *cbs = f->callbacks;
    if (!cbs)
        return 0;
    f->callbacks = NULL;
    int rc = 0;
    /* A callback may add callbacks to this (done) future: those run at once
     * and never reach this list, so it does not change under us. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(cbs); i++) {
        PyObject *cb = Py_NewRef(PyList_GET_ITEM(cbs, i));
        rc = call_callback(f, cb);
        Py_DECREF(cb);
        if (rc < 0)
            break;
    }
    Py_DECREF(cbs);
    return rc;
}

/* The module state of a future with the stdlib objects handed over, or NULL with an exception. */
static cc_state *future_setup_state(PyObject *f)
{
    cc_state *st = future_state(f);
    if (!st || require_setup(st) < 0)
        return NULL;
    return st;
}

static int raise_invalid_state(FutureObject *f)
{
    cc_state *st = future_setup_state((PyObject *)f);
    if (!st)
        return -1;
    PyObject *msg = PyUnicode_FromFormat("%s: %R", state_names[f->state], (PyObject *)f);
    if (msg) {
        PyErr_SetObject(st->InvalidStateError, msg);
        Py_DECREF(msg);
    }
    return -1;
}

/* result() and exception() on a future that did not finish: it was cancelled,
 * or the wait timed out. */
static PyObject *raise_unfinished(FutureObject *f)
{
    cc_state *st = future_setup_state((PyObject *)f);
    if (st) {
        PyErr_SetNone(is_cancelled(f->state) ? st->CancelledError : st->TimeoutError);
    }
    return NULL;
}

/* Set the outcome: `exc` NULL means a result. */
static int future_finish_impl(FutureObject *f, PyObject *result, PyObject *exc)
{
    PyObject *held;
    if (future_lock(f, &held) < 0)
        return -1;
    if (is_done(f->state)) {
        raise_invalid_state(f);
        future_unlock(held);
        return -1;
    }
    Py_XSETREF(f->result, Py_XNewRef(result));
    Py_XSETREF(f->exception, exc == Py_None ? NULL : Py_XNewRef(exc));
    f->state = F_FINISHED;
    int how = f->exception ? ADD_EXCEPTION : ADD_RESULT;
    future_notify_waiters(f, how);
    cc_waitlist_wake(&f->blocked, -1);
    int rc = future_notify_py_waiters(f, how);
    if (future_unlock(held) < 0 || rc < 0)
        return -1;
    return invoke_callbacks(f);
}

static int future_finish(FutureObject *f, PyObject *result, PyObject *exc)
{
    int res;
    Py_BEGIN_CRITICAL_SECTION(f);
    res = future_finish_impl(f, result, exc);
    Py_END_CRITICAL_SECTION();
    return res;
}

int cc_future_set_result(PyObject *f, PyObject *result)
{
    return future_finish((FutureObject *)f, result, NULL);
}

int cc_future_set_exception(PyObject *f, PyObject *exc)
{
    return future_finish((FutureObject *)f, NULL, exc ? exc : Py_None);
}

static int cc_future_cancel_impl(PyObject *self)
{
    FutureObject *f = (FutureObject *)self;
    PyObject *held;
    if (future_lock(f, &held) < 0)
        return -1;
    if (f->state == F_RUNNING || f->state == F_FINISHED)
        return future_unlock(held) < 0 ? -1 : 0;
    if (is_cancelled(f->state))
        return future_unlock(held) < 0 ? -1 : 1;
    f->state = F_CANCELLED;
    cc_waitlist_wake(&f->blocked, -1);
    if (future_unlock(held) < 0)
        return -1;
    return invoke_callbacks(f) < 0 ? -1 : 1;
}

int cc_future_cancel(PyObject *self)
{
    int res;
    Py_BEGIN_CRITICAL_SECTION(self);
    res = cc_future_cancel_impl(self);
    Py_END_CRITICAL_SECTION();
    return res;
}

static int cc_future_set_running_or_notify_cancel_impl(PyObject *self)
{
    FutureObject *f = (FutureObject *)self;
    PyObject *held;
    if (future_lock(f, &held) < 0)
        return -1;
    if (f->state == F_CANCELLED) {
        f->state = F_CANCELLED_AND_NOTIFIED;
        future_notify_waiters(f, ADD_CANCELLED);
        int rc = future_notify_py_waiters(f, ADD_CANCELLED);
        return future_unlock(held) < 0 || rc < 0 ? -1 : 0;
    }
    if (f->state == F_PENDING) {
        f->state = F_RUNNING;
        return future_unlock(held) < 0 ? -1 : 1;
    }
    int state = f->state;
    if (future_unlock(held) < 0)
        return -1;
    cc_state *st = future_state(self);
    if (st && st->futures_logger) {
        PyObject *r = PyObject_CallMethod(st->futures_logger, "critical", "sns",
                                          "Future %s in unexpected state: %s", (Py_ssize_t)(uintptr_t)self,
                                          state_names[state]);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    PyErr_SetString(PyExc_RuntimeError, "Future in unexpected state");
    return -1;
}

int cc_future_set_running_or_notify_cancel(PyObject *self)
{
    int res;
    Py_BEGIN_CRITICAL_SECTION(self);
    res = cc_future_set_running_or_notify_cancel_impl(self);
    Py_END_CRITICAL_SECTION();
    return res;
}

/* Future() from Python, and cc_future_new() for the executor. */
static PyObject *future_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    FutureObject *f = (FutureObject *)type->tp_alloc(type, 0);
    if (f) {
        f->state = F_PENDING;
        f->result = f->exception = f->callbacks = f->waiters = NULL;
        f->condition = f->py_waiters = NULL;
        cc_waitlist_init(&f->blocked);
    }
    return (PyObject *)f;
}

PyObject *cc_future_new(cc_state *st)
{
    if (require_setup(st) < 0)
        return NULL;
    return future_new((PyTypeObject *)st->Future_type, NULL, NULL);
}

int cc_is_future(cc_state *st, PyObject *obj) { return PyObject_TypeCheck(obj, st->FutureCore_type); }

/* Wait until done or the deadline: 0 (check the state), -1 with an exception. */
static int future_wait(FutureObject *f, cc_deadline deadline)
{
    while (!is_done(f->state)) {
        if (deadline == 0)
            return 0;
        cc_waiter node;
        cc_waitlist_append(&f->blocked, &node);
        int r = cc_park(&f->blocked, &node, deadline);
        if (r == CC_PARK_ERROR)
            return -1;
        if (r == CC_PARK_TIMEOUT)
            return 0;
    }
    return 0;
}

static PyObject *raise_stored(FutureObject *f)
{
    PyObject *exc = f->exception;
    if (PyExceptionInstance_Check(exc))
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    else if (PyExceptionClass_Check(exc))
        PyErr_SetNone(exc);
    else
        PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
    return NULL;
}

/* ------------------------------------------------------- future methods */

static int future_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_Format(PyExc_TypeError, "Future.__init__() takes 1 positional argument but %zd were given",
                     PyTuple_GET_SIZE(args) + 1 + (kwds ? PyDict_GET_SIZE(kwds) : 0));
        return -1;
    }
    return 0;
}

static int future_traverse(FutureObject *f, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(f));
    Py_VISIT(f->result);
    Py_VISIT(f->exception);
    Py_VISIT(f->callbacks);
    Py_VISIT(f->waiters);
    Py_VISIT(f->condition);
    Py_VISIT(f->py_waiters);
    return 0;
}

static int future_clear(FutureObject *f)
{
    Py_CLEAR(f->result);
    Py_CLEAR(f->exception);
    Py_CLEAR(f->callbacks);
    Py_CLEAR(f->waiters);
    Py_CLEAR(f->condition);
    Py_CLEAR(f->py_waiters);
    return 0;
}

static void future_dealloc(FutureObject *f)
{
    PyTypeObject *tp = Py_TYPE(f);
    PyObject_GC_UnTrack(f);
    future_clear(f);
    tp->tp_free(f);
    Py_DECREF(tp);
}

static PyObject *future_repr_impl(FutureObject *f)
{
    PyObject *name = PyObject_GetAttrString((PyObject *)Py_TYPE(f), "__name__");
    if (!name)
        return NULL;
    PyObject *r;
    if (f->state == F_FINISHED) {
        PyObject *what = f->exception ? f->exception : f->result ? f->result : Py_None;
        PyObject *what_name = PyObject_GetAttrString((PyObject *)Py_TYPE(what), "__name__");
        if (!what_name) {
            Py_DECREF(name);
            return NULL;
        }
        r = PyUnicode_FromFormat("<%U at %p state=%s %s %U>", name, f, state_descriptions[f->state],
                                 f->exception ? "raised" : "returned", what_name);
        Py_DECREF(what_name);
    }
    else {
        r = PyUnicode_FromFormat("<%U at %p state=%s>", name, f, state_descriptions[f->state]);
    }
    Py_DECREF(name);
    return r;
}
CC_CS_REPR(future_repr, FutureObject)

static PyObject *future_cancel(FutureObject *f, PyObject *Py_UNUSED(ignored))
{
    int r = cc_future_cancel((PyObject *)f);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *future_cancelled_impl(FutureObject *f)
{
    return PyBool_FromLong(is_cancelled(f->state));
}
CC_CS_NOARGS(future_cancelled, FutureObject)

static PyObject *future_running_impl(FutureObject *f)
{
    return PyBool_FromLong(f->state == F_RUNNING);
}
CC_CS_NOARGS(future_running, FutureObject)

static PyObject *future_done_impl(FutureObject *f)
{
    return PyBool_FromLong(is_done(f->state));
}
CC_CS_NOARGS(future_done, FutureObject)

static const char *const timeout_kwlist[] = {"timeout", NULL};

/* result() and exception(): the stdlib looks at the timeout only when it has to wait. */
static int future_wait_args(FutureObject *f, const char *fname, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    PyObject *timeout;
    cc_deadline deadline;
    if (cc_parse_args(fname, args, nargs, kwnames, timeout_kwlist, 1, 0, &timeout) < 0)
        return -1;
    if (is_done(f->state))
        return 0;
    if (cc_cond_timeout(timeout, &deadline) < 0)
        return -1;
    return future_wait(f, deadline);
}

static PyObject *future_result_impl(FutureObject *f, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (f->state != F_FINISHED && future_wait_args(f, "result", args, nargs, kwnames) < 0)
        return NULL;
    if (f->state != F_FINISHED)
        return raise_unfinished(f);
    if (f->exception)
        return raise_stored(f);
    return Py_NewRef(f->result ? f->result : Py_None);
}
CC_CS_FASTCALL_KW(future_result, FutureObject)

static PyObject *future_exception_impl(FutureObject *f, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    if (f->state != F_FINISHED && future_wait_args(f, "exception", args, nargs, kwnames) < 0)
        return NULL;
    if (f->state != F_FINISHED)
        return raise_unfinished(f);
    return Py_NewRef(f->exception ? f->exception : Py_None);
}
CC_CS_FASTCALL_KW(future_exception, FutureObject)

static PyObject *future_add_done_callback_impl(FutureObject *f, PyObject *fn)
{
    if (!is_done(f->state)) {
        if (!f->callbacks && !(f->callbacks = PyList_New(0)))
            return NULL;
        if (PyList_Append(f->callbacks, fn) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    if (call_callback(f, fn) < 0)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_O(future_add_done_callback, FutureObject)

static PyObject *future_set_running_or_notify_cancel(FutureObject *f, PyObject *Py_UNUSED(ignored))
{
    int r = cc_future_set_running_or_notify_cancel((PyObject *)f);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *future_set_result(FutureObject *f, PyObject *result)
{
    if (future_finish(f, result, NULL) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *future_set_exception(FutureObject *f, PyObject *exc)
{
    if (future_finish(f, NULL, exc) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Read-only views of the stdlib's private attributes, for debugging and introspection. */
static PyObject *future_get_state_impl(FutureObject *f, void *Py_UNUSED(closure))
{
    return PyUnicode_FromString(state_names[f->state]);
}
CC_CS_GETTER(future_get_state, FutureObject)

static PyObject *future_get_result_impl(FutureObject *f, void *Py_UNUSED(closure))
{
    return Py_NewRef(f->result ? f->result : Py_None);
}
CC_CS_GETTER(future_get_result, FutureObject)

static PyObject *future_get_exception_impl(FutureObject *f, void *Py_UNUSED(closure))
{
    return Py_NewRef(f->exception ? f->exception : Py_None);
}
CC_CS_GETTER(future_get_exception, FutureObject)

/* f._condition and f._waiters: what concurrent.futures.wait() and as_completed() use. */
static PyObject *future_get_condition_impl(FutureObject *f, void *Py_UNUSED(closure))
{
    if (!f->condition) {
        cc_state *st = future_setup_state((PyObject *)f);
        if (!st)
            return NULL;
        PyObject *cond = PyObject_CallNoArgs(st->futures_condition_factory);
        if (!cond)
            return NULL;
        if (!f->condition) /* the factory ran Python code: another thread may have been first */
            f->condition = cond;
        else
            Py_DECREF(cond);
    }
    return Py_NewRef(f->condition);
}
CC_CS_GETTER(future_get_condition, FutureObject)

static PyObject *future_get_py_waiters_impl(FutureObject *f, void *Py_UNUSED(closure))
{
    if (!f->py_waiters && !(f->py_waiters = PyList_New(0)))
        return NULL;
    return Py_NewRef(f->py_waiters);
}
CC_CS_GETTER(future_get_py_waiters, FutureObject)

static PyMethodDef future_methods[] = {
    {"cancel", (PyCFunction)future_cancel, METH_NOARGS,
     "Cancel the future if possible; True if it was cancelled."},
    {"cancelled", (PyCFunction)future_cancelled, METH_NOARGS, "Return True if the future was cancelled."},
    {"running", (PyCFunction)future_running, METH_NOARGS, "Return True if the future is currently executing."},
    {"done", (PyCFunction)future_done, METH_NOARGS,
     "Return True if the future was cancelled or finished executing."},
    {"result", (PyCFunction)(void (*)(void))future_result, METH_FASTCALL | METH_KEYWORDS,
     "result(timeout=None): the result of the call, waiting for it if needed."},
    {"exception", (PyCFunction)(void (*)(void))future_exception, METH_FASTCALL | METH_KEYWORDS,
     "exception(timeout=None): the exception raised by the call, or None."},
    {"add_done_callback", (PyCFunction)future_add_done_callback, METH_O,
     "Attach a callable called with the future when it finishes or is cancelled."},
    {"set_running_or_notify_cancel", (PyCFunction)future_set_running_or_notify_cancel, METH_NOARGS,
     "Mark the future running, or notify waiters of its cancellation (for executors)."},
    {"set_result", (PyCFunction)future_set_result, METH_O, "Set the result of the future (for executors)."},
    {"set_exception", (PyCFunction)future_set_exception, METH_O,
     "Set the exception of the future (for executors)."},
    {"__class_getitem__", Py_GenericAlias, METH_O | METH_CLASS, "See PEP 585"},
    {NULL, NULL},
};

static PyGetSetDef future_getset[] = {
    {"_state", (getter)future_get_state, NULL, NULL, NULL},
    {"_result", (getter)future_get_result, NULL, NULL, NULL},
    {"_exception", (getter)future_get_exception, NULL, NULL, NULL},
    {"_condition", (getter)future_get_condition, NULL, NULL, NULL},
    {"_waiters", (getter)future_get_py_waiters, NULL, NULL, NULL},
    {NULL},
};

static PyType_Slot future_slots[] = {
    {Py_tp_new, future_new},
    {Py_tp_init, future_init},
    {Py_tp_dealloc, future_dealloc},
    {Py_tp_traverse, future_traverse},
    {Py_tp_clear, future_clear},
    {Py_tp_repr, future_repr},
    {Py_tp_methods, future_methods},
    {Py_tp_getset, future_getset},
    {Py_tp_doc, "The native core of cconc.futures.Future."},
    {0, NULL},
};

static PyType_Spec future_spec = {
    .name = "cconc._cconc._FutureCore",
    .basicsize = sizeof(FutureObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = future_slots,
};

/* ------------------------------------- stdlib futures in wait()/as_completed() */

/* Acquire a stdlib future's f._condition: the held condition (release it with
 * condition_release), or NULL with an exception. */
static PyObject *std_future_lock(PyObject *f)
{
    PyObject *cond = PyObject_GetAttrString(f, "_condition");
    if (cond && condition_acquire(cond) < 0)
        Py_CLEAR(cond);
    return cond;
}

/* Under f._condition, as the stdlib does: if f is complete set *complete, else
 * append the waiter to f._waiters. */
static int std_future_install(PyObject *f, PyObject *waiter, int *complete)
{
    PyObject *cond = std_future_lock(f);
    if (!cond)
        return -1;
    int rc = -1;
    PyObject *state = PyObject_GetAttrString(f, "_state");
    if (state) {
        *complete = PyUnicode_Check(state) && (PyUnicode_CompareWithASCIIString(state, "FINISHED") == 0 ||
                                               PyUnicode_CompareWithASCIIString(state, "CANCELLED_AND_NOTIFIED") == 0);
        Py_DECREF(state);
        if (*complete)
            rc = 0;
        else {
            PyObject *waiters = PyObject_GetAttrString(f, "_waiters");
            if (waiters) {
                PyObject *r = PyObject_CallMethod(waiters, "append", "O", waiter);
                Py_XDECREF(r);
                rc = r ? 0 : -1;
                Py_DECREF(waiters);
            }
        }
    }
    return condition_release(cond) < 0 ? -1 : rc;
}

static int std_future_uninstall(PyObject *f, PyObject *waiter)
{
    PyObject *cond = std_future_lock(f);
    if (!cond)
        return -1;
    PyObject *waiters = PyObject_GetAttrString(f, "_waiters");
    PyObject *removed = waiters ? PyObject_CallMethod(waiters, "remove", "O", waiter) : NULL;
    Py_XDECREF(waiters);
    Py_XDECREF(removed);
    return condition_release(cond) < 0 || !removed ? -1 : 0;
}

/* Install `w` on f unless f is already complete: 1 installed, 0 complete, -1 error. */
static int install(cc_state *st, PyObject *f, WaiterObject *w)
{
    if (cc_is_future(st, f)) {
        int r;
        Py_BEGIN_CRITICAL_SECTION(f);
        r = is_complete(((FutureObject *)f)->state) ? 0
            : future_add_waiter((FutureObject *)f, (PyObject *)w) < 0 ? -1 : 1;
        Py_END_CRITICAL_SECTION();
        return r;
    }
    int complete = 0;
    if (std_future_install(f, (PyObject *)w, &complete) < 0)
        return -1;
    return !complete;
}

static int uninstall(cc_state *st, PyObject *f, WaiterObject *w)
{
    if (cc_is_future(st, f)) {
        Py_BEGIN_CRITICAL_SECTION(f);
        future_remove_waiter((FutureObject *)f, (PyObject *)w);
        Py_END_CRITICAL_SECTION();
        return 0;
    }
    return std_future_uninstall(f, (PyObject *)w);
}

/* Uninstall from every future of `fs` (an iterable), keeping the first error. */
static int uninstall_all(cc_state *st, PyObject *fs, WaiterObject *w)
{
    PyObject *it = PyObject_GetIter(fs);
    if (!it)
        return -1;
    int rc = 0;
    PyObject *f;
    while ((f = PyIter_Next(it)) != NULL) {
        if (uninstall(st, f, w) < 0) {
            if (rc == 0)
                rc = -1;
            else
                PyErr_Clear();
        }
        Py_DECREF(f);
    }
    Py_DECREF(it);
    if (PyErr_Occurred() && rc == 0)
        rc = -1;
    return rc;
}

/* f (complete) finished with an exception: FIRST_EXCEPTION returns at once. */
static int finished_with_exception(cc_state *st, PyObject *f)
{
    if (cc_is_future(st, f)) {
        int r;
        Py_BEGIN_CRITICAL_SECTION(f);
        r = ((FutureObject *)f)->state == F_FINISHED && ((FutureObject *)f)->exception != NULL;
        Py_END_CRITICAL_SECTION();
        return r;
    }
    PyObject *r = PyObject_CallMethod(f, "cancelled", NULL);
    if (!r)
        return -1;
    int cancelled = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (cancelled)
        return cancelled < 0 ? -1 : 0;
    r = PyObject_CallMethod(f, "exception", NULL);
    if (!r)
        return -1;
    int has = r != Py_None;
    Py_DECREF(r);
    return has;
}

static int parse_return_when(cc_state *st, PyObject *obj, int *kind)
{
    static const char *const names[] = {"FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"};
    static const int kinds[] = {W_FIRST_COMPLETED, W_FIRST_EXCEPTION, W_ALL_COMPLETED};
    for (int i = 0; i < 3; i++) {
        PyObject *name = PyUnicode_FromString(names[i]);
        if (!name)
            return -1;
        int eq = PyObject_RichCompareBool(obj, name, Py_EQ);
        Py_DECREF(name);
        if (eq < 0)
            return -1;
        if (eq) {
            *kind = kinds[i];
            return 0;
        }
    }
    *kind = -1;
    return 0;
}

/* wait(fs, timeout=None, return_when=ALL_COMPLETED) */
static PyObject *futures_wait(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"fs", "timeout", "return_when", NULL};
    cc_state *st = PyModule_GetState(module);
    PyObject *a[3];
    if (cc_parse_args("wait", args, nargs, kwnames, kwlist, 3, 1, a) < 0 || require_setup(st) < 0)
        return NULL;
    int kind = W_ALL_COMPLETED;
    if (a[2] && parse_return_when(st, a[2], &kind) < 0)
        return NULL;
    PyObject *fs = PySet_New(a[0]);
    if (!fs)
        return NULL;
    PyObject *done = PySet_New(NULL), *installed = PyList_New(0), *result = NULL;
    WaiterObject *w = waiter_new(st, kind < 0 ? W_ALL_COMPLETED : kind);
    PyObject *it = NULL, *f = NULL;
    int early_exception = 0;
    if (!done || !installed || !w || !(it = PyObject_GetIter(fs)))
        goto out;
    while ((f = PyIter_Next(it)) != NULL) {
        int r = install(st, f, w);
        if (r < 0)
            goto out;
        if (r == 0) {
            if (PySet_Add(done, f) < 0)
                goto out;
            if (kind == W_FIRST_EXCEPTION && !early_exception) {
                int e = finished_with_exception(st, f);
                if (e < 0)
                    goto out;
                early_exception = e;
            }
        }
        else {
            /* Futures installed on already may be finishing meanwhile. */
            Py_BEGIN_CRITICAL_SECTION(w);
            w->pending++;
            Py_END_CRITICAL_SECTION();
            if (PyList_Append(installed, f) < 0)
                goto out;
        }
        Py_CLEAR(f);
    }
    if (PyErr_Occurred())
        goto out;
    if (w->pending > 0 && kind < 0) {
        PyErr_Format(PyExc_ValueError, "Invalid return condition: %R", a[2]);
        goto out;
    }
    int ready;
    Py_BEGIN_CRITICAL_SECTION(w);
    ready = waiter_ready(w);
    Py_END_CRITICAL_SECTION();
    ready = ready || early_exception || (kind == W_FIRST_COMPLETED && PySet_GET_SIZE(done));
    if (!ready) {
        cc_deadline deadline;
        if (cc_cond_timeout(a[1], &deadline) < 0 || waiter_wait(w, deadline) < 0)
            goto out;
    }
    if (uninstall_all(st, installed, w) < 0)
        goto out;
    Py_CLEAR(installed);
    /* A snapshot: a future that began finishing before it was uninstalled may still add itself. */
    PyObject *finished;
    Py_BEGIN_CRITICAL_SECTION(w);
    finished = w->finished ? PyList_GetSlice(w->finished, 0, PY_SSIZE_T_MAX) : PyList_New(0);
    Py_END_CRITICAL_SECTION();
    if (!finished)
        goto out;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(finished); i++)
        if (PySet_Add(done, PyList_GET_ITEM(finished, i)) < 0) {
            Py_DECREF(finished);
            goto out;
        }
    Py_DECREF(finished);
    PyObject *not_done = PyNumber_Subtract(fs, done);
    if (!not_done)
        goto out;
    result = PyObject_CallFunctionObjArgs(st->DoneAndNotDoneFutures, done, not_done, NULL);
    Py_DECREF(not_done);
out:
    if (installed && w) {
        /* Leaving with an error (bad return_when, Ctrl-C): take the waiter back. */
        PyObject *exc_type, *exc_value, *exc_tb;
        PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
        if (uninstall_all(st, installed, w) < 0)
            PyErr_Clear();
        PyErr_Restore(exc_type, exc_value, exc_tb);
    }
    Py_XDECREF(f);
    Py_XDECREF(it);
    Py_XDECREF(installed);
    Py_XDECREF(w);
    Py_XDECREF(done);
    Py_DECREF(fs);
    return result;
}

/* ----------------------------------------------------------- as_completed */

typedef struct {
    PyObject_HEAD
    PyObject *fs_arg;  /* the argument, until the first next() (the stdlib's is a generator) */
    PyObject *timeout; /* likewise */
    int started;
    int exhausted;
    int running; /* inside next(): a second next() or close() must not pull the waiter away */
    /* The stdlib's `end_time = timeout + time.monotonic()`, computed as it is
     * (so that a timeout of the wrong type fails as it does there); NULL: none. */
    PyObject *end_time;
    Py_ssize_t total;
    PyObject *pending;    /* set: futures the waiter is installed on */
    PyObject *ready;      /* list of finished futures to yield, popped from the end */
    WaiterObject *waiter;
    PyObject *weakreflist; /* the stdlib's is a generator, which can be weakly referenced */
} AsCompletedObject;

static PyObject *futures_as_completed(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames)
{
    static const char *const kwlist[] = {"fs", "timeout", NULL};
    cc_state *st = PyModule_GetState(module);
    PyObject *a[2];
    if (cc_parse_args("as_completed", args, nargs, kwnames, kwlist, 2, 1, a) < 0 || require_setup(st) < 0)
        return NULL;
    AsCompletedObject *self = PyObject_GC_New(AsCompletedObject, st->AsCompleted_type);
    if (!self)
        return NULL;
    self->fs_arg = Py_NewRef(a[0]);
    self->timeout = Py_XNewRef(a[1]);
    self->started = self->exhausted = self->running = 0;
    self->end_time = NULL;
    self->weakreflist = NULL;
    self->total = 0;
    self->pending = self->ready = NULL;
    self->waiter = NULL;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

/* time.monotonic(), on the clock of our deadlines. */
static PyObject *monotonic_seconds(void) { return PyFloat_FromDouble((double)cc_monotonic_ns() / 1e9); }

/* The stdlib's `wait_timeout = end_time - time.monotonic()`, raising
 * TimeoutError when negative, then waiter.event.wait(wait_timeout), which
 * refuses more than TIMEOUT_MAX (OverflowError). 0 with the deadline, or -1. */
static int as_completed_deadline(AsCompletedObject *self, cc_state *st, cc_deadline *deadline)
{
    *deadline = CC_FOREVER;
    if (!self->end_time)
        return 0;
    PyObject *now = monotonic_seconds();
    PyObject *left = now ? PyNumber_Subtract(self->end_time, now) : NULL;
    Py_XDECREF(now);
    if (!left)
        return -1;
    PyObject *zero = PyLong_FromLong(0);
    int negative = zero ? PyObject_RichCompareBool(left, zero, Py_LT) : -1;
    Py_XDECREF(zero);
    double seconds = negative == 0 ? PyFloat_AsDouble(left) : 0;
    Py_DECREF(left);
    if (negative < 0 || (seconds == -1.0 && PyErr_Occurred()))
        return -1;
    if (negative) {
        PyObject *msg = PyUnicode_FromFormat("%zd (of %zd) futures unfinished", PySet_GET_SIZE(self->pending),
                                             self->total);
        if (msg) {
            PyErr_SetObject(st->TimeoutError, msg);
            Py_DECREF(msg);
        }
        return -1;
    }
    if (isnan(seconds)) {
        /* The stdlib spins forever here (NaN < 0 is false, a NaN wait returns at once). */
        PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
        return -1;
    }
    if (seconds > CC_TIMEOUT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return -1;
    }
    *deadline = cc_deadline_after(seconds);
    return 0;
}

static int as_completed_start(AsCompletedObject *self, cc_state *st)
{
    self->started = 1;
    if (self->timeout && self->timeout != Py_None) {
        PyObject *now = monotonic_seconds();
        self->end_time = now ? PyNumber_Add(self->timeout, now) : NULL;
        Py_XDECREF(now);
        if (!self->end_time)
            return -1;
    }
    PyObject *fs = PySet_New(self->fs_arg);
    Py_CLEAR(self->fs_arg);
    if (!fs)
        return -1;
    self->total = PySet_GET_SIZE(fs);
    self->pending = PySet_New(NULL);
    self->ready = PyList_New(0);
    self->waiter = waiter_new(st, W_AS_COMPLETED);
    PyObject *it = self->pending && self->ready && self->waiter ? PyObject_GetIter(fs) : NULL;
    Py_DECREF(fs);
    if (!it)
        return -1;
    PyObject *f;
    while ((f = PyIter_Next(it)) != NULL) {
        int r = install(st, f, self->waiter);
        int err = r < 0 ? -1 : r ? PySet_Add(self->pending, f) : PyList_Append(self->ready, f);
        if (err < 0 && r == 1) {
            /* installed but not recorded: take it back so no waiter is left behind */
            PyObject *exc_type, *exc_value, *exc_tb;
            PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
            if (uninstall(st, f, self->waiter) < 0)
                PyErr_Clear();
            PyErr_Restore(exc_type, exc_value, exc_tb);
        }
        Py_DECREF(f);
        if (err < 0)
            break;
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* What the stdlib's `finally:` does: take the waiter off the futures left. */
static void as_completed_finish(AsCompletedObject *self, cc_state *st)
{
    self->exhausted = 1;
    if (self->pending && self->waiter) {
        PyObject *exc_type, *exc_value, *exc_tb;
        PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
        if (uninstall_all(st, self->pending, self->waiter) < 0)
            PyErr_WriteUnraisable((PyObject *)self);
        PyErr_Restore(exc_type, exc_value, exc_tb);
    }
    Py_CLEAR(self->pending);
    Py_CLEAR(self->ready);
    Py_CLEAR(self->waiter);
    Py_CLEAR(self->fs_arg);
}

static PyObject *as_completed_next_impl(AsCompletedObject *self);

static int already_executing(AsCompletedObject *self)
{
    if (self->running) {
        PyErr_SetString(PyExc_ValueError, "generator already executing");
        return 1;
    }
    return 0;
}

static PyObject *as_completed_next(AsCompletedObject *self)
{
    PyObject *r = NULL;
    Py_INCREF(self);
    /* Without the GIL, two threads may iterate one as_completed(): one at a time. */
    Py_BEGIN_CRITICAL_SECTION(self);
    if (!self->exhausted && !already_executing(self)) {
        self->running = 1;
        r = as_completed_next_impl(self);
        self->running = 0;
    }
    Py_END_CRITICAL_SECTION();
    Py_DECREF(self);
    return r;
}

static PyObject *as_completed_next_impl(AsCompletedObject *self)
{
    cc_state *st = cc_state_of_type(Py_TYPE(self));
    if (!st)
        return NULL;
    if (!self->started && as_completed_start(self, st) < 0)
        goto error;
    for (;;) {
        Py_ssize_t n = PyList_GET_SIZE(self->ready);
        if (n > 0) {
            PyObject *f = Py_NewRef(PyList_GET_ITEM(self->ready, n - 1));
            if (PyList_SetSlice(self->ready, n - 1, n, NULL) < 0) {
                Py_DECREF(f);
                goto error;
            }
            int was_pending = PySet_Discard(self->pending, f);
            if (was_pending < 0 || (was_pending && uninstall(st, f, self->waiter) < 0)) {
                Py_DECREF(f);
                goto error;
            }
            return f;
        }
        if (PySet_GET_SIZE(self->pending) == 0) {
            as_completed_finish(self, st);
            return NULL;
        }
        cc_deadline deadline;
        if (as_completed_deadline(self, st, &deadline) < 0 || waiter_wait(self->waiter, deadline) < 0)
            goto error;
        /* The waiter lists them in finishing order; we pop from the end.
         * Allocate first: the waiter's list is read after any GC it runs. */
        PyObject *empty = PyList_New(0);
        if (!empty)
            goto error;
        PyObject *finished;
        Py_BEGIN_CRITICAL_SECTION(self->waiter);
        finished = self->waiter->finished;
        self->waiter->finished = empty;
        Py_END_CRITICAL_SECTION();
        Py_SETREF(self->ready, finished);
        if (PyList_Reverse(self->ready) < 0)
            goto error;
    }
error:
    as_completed_finish(self, st);
    return NULL;
}

static PyObject *as_completed_close(AsCompletedObject *self, PyObject *Py_UNUSED(ignored))
{
    cc_state *st = cc_state_of_type(Py_TYPE(self));
    if (!st || already_executing(self))
        return NULL;
    if (!self->exhausted)
        as_completed_finish(self, st);
    Py_RETURN_NONE;
}

static void as_completed_finalize(AsCompletedObject *self)
{
    if (self->exhausted || !self->started)
        return;
    cc_state *st = cc_state_of_type(Py_TYPE(self));
    if (st)
        as_completed_finish(self, st);
    else
        PyErr_Clear();
}

static int as_completed_traverse(AsCompletedObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fs_arg);
    Py_VISIT(self->timeout);
    Py_VISIT(self->end_time);
    Py_VISIT(self->pending);
    Py_VISIT(self->ready);
    Py_VISIT(self->waiter);
    return 0;
}

static int as_completed_clear(AsCompletedObject *self)
{
    Py_CLEAR(self->fs_arg);
    Py_CLEAR(self->timeout);
    Py_CLEAR(self->end_time);
    Py_CLEAR(self->pending);
    Py_CLEAR(self->ready);
    Py_CLEAR(self->waiter);
    return 0;
}

static void as_completed_dealloc(AsCompletedObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return; /* resurrected */
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    as_completed_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef as_completed_methods[] = {
    {"close", (PyCFunction)as_completed_close, METH_NOARGS, "Stop waiting and release the futures."},
    {NULL, NULL},
};

static PyMemberDef as_completed_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(AsCompletedObject, weakreflist), READONLY},
    {NULL},
};

static PyType_Slot as_completed_slots[] = {
    {Py_tp_dealloc, as_completed_dealloc},
    {Py_tp_finalize, as_completed_finalize},
    {Py_tp_traverse, as_completed_traverse},
    {Py_tp_clear, as_completed_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, as_completed_next},
    {Py_tp_methods, as_completed_methods},
    {Py_tp_members, as_completed_members},
    {Py_tp_doc, "The iterator as_completed() returns."},
    {0, NULL},
};

static PyType_Spec as_completed_spec = {
    .name = "cconc._cconc._AsCompleted",
    .basicsize = sizeof(AsCompletedObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = as_completed_slots,
};

/* ------------------------------------------------------------- setup */

/* cconc/futures.py hands over the Python-level Future class and the stdlib's objects. */
static PyObject *futures_setup(PyObject *module, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"Future", "CancelledError", "TimeoutError", "InvalidStateError",
                             "BrokenThreadPool", "logger", "DoneAndNotDoneFutures", "spawn_worker",
                             "condition_factory", NULL};
    cc_state *st = PyModule_GetState(module);
    PyObject *o[9];
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$OOOOOOOOO:_futures_setup", kwlist, &o[0], &o[1], &o[2],
                                     &o[3], &o[4], &o[5], &o[6], &o[7], &o[8]))
        return NULL;
    if (!PyType_Check(o[0]) || !PyType_IsSubtype((PyTypeObject *)o[0], st->FutureCore_type)) {
        PyErr_SetString(PyExc_TypeError, "Future must be a subclass of _FutureCore");
        return NULL;
    }
    Py_XSETREF(st->Future_type, Py_NewRef(o[0]));
    Py_XSETREF(st->CancelledError, Py_NewRef(o[1]));
    Py_XSETREF(st->TimeoutError, Py_NewRef(o[2]));
    Py_XSETREF(st->InvalidStateError, Py_NewRef(o[3]));
    Py_XSETREF(st->BrokenThreadPool, Py_NewRef(o[4]));
    Py_XSETREF(st->futures_logger, Py_NewRef(o[5]));
    Py_XSETREF(st->DoneAndNotDoneFutures, Py_NewRef(o[6]));
    Py_XSETREF(st->futures_spawn_worker, Py_NewRef(o[7]));
    Py_XSETREF(st->futures_condition_factory, Py_NewRef(o[8]));
    Py_RETURN_NONE;
}

static PyMethodDef future_module_methods[] = {
    {"_futures_setup", (PyCFunction)(void (*)(void))futures_setup, METH_VARARGS | METH_KEYWORDS, NULL},
    {"wait", (PyCFunction)(void (*)(void))futures_wait, METH_FASTCALL | METH_KEYWORDS,
     "wait(fs, timeout=None, return_when=ALL_COMPLETED): concurrent.futures.wait, natively."},
    {"as_completed", (PyCFunction)(void (*)(void))futures_as_completed, METH_FASTCALL | METH_KEYWORDS,
     "as_completed(fs, timeout=None): concurrent.futures.as_completed, natively."},
    {NULL, NULL},
};

int cc_future_exec(PyObject *module, cc_state *st)
{
    if (cc_add_type(module, &future_spec, NULL, &st->FutureCore_type) < 0 ||
        cc_add_type(module, &waiter_spec, NULL, &st->FutureWaiter_type) < 0 ||
        cc_add_type(module, &as_completed_spec, NULL, &st->AsCompleted_type) < 0)
        return -1;
    return PyModule_AddFunctions(module, future_module_methods);
}
