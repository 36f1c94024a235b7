/* The loop of a pool worker process (cconc/multiprocessing/pool.py,
 * _worker_main): fetch task groups from the worker's task ring, run every
 * task of a group, send the group's results. The task calls and the
 * bookkeeping around them run here, in C; the ring operations are the
 * queues' own C methods, reached through the callables the Python side
 * binds (get, send, idle), which also keep the rare paths (an unpicklable
 * result, the pool's process gone) in Python.
 *
 * A group is (job, i0, kind, func, payload); its results are a list of
 * (True, value) or (False, wrapped exception) per task, as the stdlib's
 * worker sends them (or the values alone: see KIND_FLAT), followed by the
 * seconds the group took to run, by which the parent sizes the next groups.
 * A task's Exception is caught and sent, a BaseException (SystemExit,
 * KeyboardInterrupt) ends the loop and the worker, as in the stdlib's
 * worker. */
#include "cconc.h"

/* Group kinds: pool.py's _APPLY, _MAP, _STARMAP, _EACH, _STAREACH. _MAP and
 * _STARMAP hold chunks (a task each, whose value is a list: the stdlib's
 * mapstar/starmapstar); _EACH and _STAREACH single items. */
enum { KIND_APPLY, KIND_MAP, KIND_STARMAP, KIND_EACH, KIND_STAREACH };
/* Added to the kind of map_async's groups (pool.py's _FLAT): when every task
 * succeeded, their values (lists) go back concatenated, as (job, i0, values,
 * ntasks, seconds), which spares a pair and a list per task on both sides. */
enum { KIND_FLAT = 8 };

/* The Python helpers a task may need (see pool_worker_loop). */
typedef struct {
    PyObject *wrap, *apply;
} task_fns;

static PyObject *outcome(PyObject *ok, PyObject *value)
{
    PyObject *pair = PyTuple_New(2);
    if (!pair) {
        Py_DECREF(value);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, Py_NewRef(ok));
    PyTuple_SET_ITEM(pair, 1, value);
    return pair;
}

/* The task failed with the exception being raised: (False, wrap(exc)) for
 * an Exception (its traceback attached, as `except Exception as e` sees
 * it); NULL, the exception kept, for any other BaseException. */
static PyObject *failure(PyObject *wrap)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return NULL;
    PyObject *value = cc_exc_take();
    if (!value)
        return NULL;
    PyObject *wrapped = PyObject_CallOneArg(wrap, value);
    Py_DECREF(value);
    return wrapped ? outcome(Py_False, wrapped) : NULL;
}

/* func(*args): the arguments as itertools.starmap takes them. */
static PyObject *call_star(PyObject *func, PyObject *args)
{
    if (PyTuple_Check(args))
        return PyObject_Call(func, args, NULL);
    PyObject *tuple = PySequence_Tuple(args);
    if (!tuple)
        return NULL;
    PyObject *r = PyObject_Call(func, tuple, NULL);
    Py_DECREF(tuple);
    return r;
}

/* func(*args, **kwds); `apply` does it in Python unless args is a tuple
 * and kwds a dict, so that odd arguments fail with Python's own errors. */
static PyObject *call_apply(PyObject *func, PyObject *payload, PyObject *apply)
{
    if (!PyTuple_Check(payload) || PyTuple_GET_SIZE(payload) != 2) {
        PyErr_SetString(PyExc_TypeError, "pool task: bad apply payload");
        return NULL;
    }
    PyObject *args = PyTuple_GET_ITEM(payload, 0), *kwds = PyTuple_GET_ITEM(payload, 1);
    if (!PyTuple_Check(args) || !PyDict_CheckExact(kwds)) {
        PyObject *call[3] = {func, args, kwds};
        return PyObject_Vectorcall(apply, call, 3, NULL);
    }
    return PyObject_Call(func, args, PyDict_GET_SIZE(kwds) ? kwds : NULL);
}

/* One task's outcome, appended to `out`: 0, or -1 when the loop must end. */
static int run_task(PyObject *out, int kind, PyObject *func, PyObject *task, const task_fns *fns)
{
    PyObject *value = NULL;
    if (kind == KIND_APPLY)
        value = call_apply(func, task, fns->apply);
    else if (kind == KIND_EACH)
        value = PyObject_CallOneArg(func, task);
    else if (kind == KIND_STAREACH)
        value = call_star(func, task);
    else { /* a chunk: list(map(func, chunk)) or list(starmap(func, chunk)) */
        PyObject *it = PyObject_GetIter(task), *item;
        if (it && (value = PyList_New(0))) {
            while ((item = PyIter_Next(it))) {
                PyObject *v = kind == KIND_MAP ? PyObject_CallOneArg(func, item) : call_star(func, item);
                Py_DECREF(item);
                if (!v || PyList_Append(value, v) < 0) {
                    Py_XDECREF(v);
                    Py_CLEAR(value);
                    break;
                }
                Py_DECREF(v);
            }
            if (value && PyErr_Occurred())
                Py_CLEAR(value);
        }
        Py_XDECREF(it);
    }
    PyObject *pair = value ? outcome(Py_True, value) : failure(fns->wrap);
    if (!pair)
        return -1;
    int r = PyList_Append(out, pair);
    Py_DECREF(pair);
    return r;
}

/* The values of `out`'s pairs, all successful, concatenated; NULL without
 * an exception if a task failed. */
static PyObject *flatten(PyObject *out)
{
    Py_ssize_t n = PyList_GET_SIZE(out);
    for (Py_ssize_t k = 0; k < n; k++)
        if (PyTuple_GET_ITEM(PyList_GET_ITEM(out, k), 0) != Py_True)
            return NULL;
    PyObject *values = PyList_New(0);
    for (Py_ssize_t k = 0; values && k < n; k++) {
        PyObject *chunk = PyTuple_GET_ITEM(PyList_GET_ITEM(out, k), 1);
        if (PyList_SetSlice(values, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, chunk) < 0)
            Py_CLEAR(values);
    }
    return values;
}

/* The results of one group, as a message (job, i0, results, seconds), or
 * for a KIND_FLAT group that all succeeded (job, i0, values, ntasks,
 * seconds), and then *pairs is set to the former, to be sent if the latter
 * does not pickle; *ntasks is set to the number of tasks run. */
static PyObject *run_group(PyObject *group, const task_fns *fns, Py_ssize_t *ntasks, PyObject **pairs)
{
    int64_t start = cc_monotonic_ns();
    if (!PyTuple_Check(group) || PyTuple_GET_SIZE(group) != 5) {
        PyErr_SetString(PyExc_TypeError, "pool task: bad group");
        return NULL;
    }
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(group, 2));
    if (kind == -1 && PyErr_Occurred())
        return NULL;
    int flat = kind & KIND_FLAT;
    kind &= ~KIND_FLAT;
    flat = flat && (kind == KIND_MAP || kind == KIND_STARMAP); /* (only chunks' values are lists) */
    PyObject *func = PyTuple_GET_ITEM(group, 3), *payload = PyTuple_GET_ITEM(group, 4);
    PyObject *out = PyList_New(0);
    if (!out)
        return NULL;
    if (kind == KIND_APPLY) {
        if (run_task(out, (int)kind, func, payload, fns) < 0)
            goto error;
    } else {
        PyObject *it = PyObject_GetIter(payload), *task;
        if (!it)
            goto error;
        while ((task = PyIter_Next(it))) {
            int r = run_task(out, (int)kind, func, task, fns);
            Py_DECREF(task);
            if (r < 0)
                break;
        }
        Py_DECREF(it);
        if (PyErr_Occurred())
            goto error;
    }
    *ntasks = PyList_GET_SIZE(out);
    PyObject *values = flat ? flatten(out) : NULL, *msg = NULL;
    if (PyErr_Occurred())
        goto error;
    PyObject *seconds = PyFloat_FromDouble((double)(cc_monotonic_ns() - start) * 1e-9);
    PyObject *n = values ? PyLong_FromSsize_t(*ntasks) : NULL;
    if (seconds)
        msg = PyTuple_Pack(4, PyTuple_GET_ITEM(group, 0), PyTuple_GET_ITEM(group, 1), out, seconds);
    if (msg && values) {
        *pairs = msg;
        msg = n ? PyTuple_Pack(5, PyTuple_GET_ITEM(group, 0), PyTuple_GET_ITEM(group, 1), values, n, seconds) : NULL;
        if (!msg)
            Py_CLEAR(*pairs);
    }
    Py_XDECREF(seconds);
    Py_XDECREF(n);
    Py_XDECREF(values);
    Py_DECREF(out);
    return msg;
error:
    Py_DECREF(out);
    return NULL;
}

/* Send (wid, body) through send(): 0, or -1 with an exception. */
static int send_msg(PyObject *send, PyObject *wid, PyObject *body)
{
    PyObject *msg = PyTuple_Pack(2, wid, body);
    if (!msg)
        return -1;
    PyObject *r = PyObject_CallOneArg(send, msg);
    Py_DECREF(msg);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* Send (wid, [results]): 0, or -1 with an exception. */
static int send_results(PyObject *send, PyObject *wid, PyObject *results)
{
    PyObject *body = PyList_New(1);
    if (!body)
        return -1;
    PyList_SET_ITEM(body, 0, Py_NewRef(results));
    int r = send_msg(send, wid, body);
    Py_DECREF(body);
    return r;
}

/* _pool_worker_loop(get, send, idle, wid, maxtasks, wrap, apply) -> tasks run
 *
 * get(): a list of task groups (None: end), or raises queue.Empty after an
 *   idle slice, when idle() is called (it raises to end the loop);
 * send(msg): sends (wid, [results]) for each group (see run_group) as soon as it
 *   ran (a quick group must not wait for a slow one fetched with it), and
 *   (wid, None), the goodbye, when the loop ends on None or once maxtasks
 *   (None: no limit) tasks ran;
 * wrap(exc): what a failed task sends in place of its exception;
 * apply(func, args, kwds): func(*args, **kwds), for odd arguments. */
static PyObject *pool_worker_loop(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "_pool_worker_loop(get, send, idle, wid, maxtasks, wrap, apply)");
        return NULL;
    }
    cc_state *st = PyModule_GetState(module);
    PyObject *get = args[0], *send = args[1], *idle = args[2], *wid = args[3];
    task_fns fns_ = {args[5], args[6]}, *fns = &fns_;
    Py_ssize_t maxtasks = -1, completed = 0;
    if (args[4] != Py_None && (maxtasks = PyNumber_AsSsize_t(args[4], PyExc_OverflowError)) == -1 &&
        PyErr_Occurred())
        return NULL;
    for (;;) {
        PyObject *groups = PyObject_CallNoArgs(get);
        if (!groups) {
            if (!PyErr_ExceptionMatches(st->queue_Empty))
                return NULL;
            PyErr_Clear();
            PyObject *r = PyObject_CallNoArgs(idle);
            if (!r)
                return NULL;
            Py_DECREF(r);
            continue;
        }
        PyObject *it = PyObject_GetIter(groups), *group;
        Py_DECREF(groups); /* the iterator keeps the list: released below, before the next wait */
        if (!it)
            return NULL;
        int stop = 0;
        while (!stop && (group = PyIter_Next(it))) {
            if (group == Py_None) {
                stop = 1;
                Py_DECREF(group);
                break;
            }
            Py_ssize_t ntasks = 0;
            PyObject *pairs = NULL;
            PyObject *msg = run_group(group, fns, &ntasks, &pairs);
            Py_DECREF(group);
            if (!msg)
                break;
            completed += ntasks;
            int r = send_results(send, wid, msg);
            if (r < 0 && pairs && PyErr_ExceptionMatches(PyExc_Exception)) {
                /* a value does not pickle: as pairs, send() fails just its
                 * task (MaybeEncodingError) */
                PyErr_Clear();
                r = send_results(send, wid, pairs);
            }
            Py_DECREF(msg);
            Py_XDECREF(pairs);
            if (r < 0)
                break;
        }
        Py_DECREF(it); /* the groups and their arguments, released before waiting again */
        if (PyErr_Occurred())
            return NULL;
        if (stop || (maxtasks >= 0 && completed >= maxtasks)) {
            /* goodbye: the collector reaps us without waiting for its next look */
            if (send_msg(send, wid, Py_None) < 0)
                return NULL;
            return PyLong_FromSsize_t(completed);
        }
    }
}

static PyMethodDef poolworker_functions[] = {
    {"_pool_worker_loop", (PyCFunction)(void (*)(void))pool_worker_loop, METH_FASTCALL, NULL},
    {NULL},
};

int cc_poolworker_exec(PyObject *module, cc_state *st)
{
    (void)st;
    return PyModule_AddFunctions(module, poolworker_functions);
}
