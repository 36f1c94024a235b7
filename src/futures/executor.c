/* concurrent.futures.ThreadPoolExecutor with a native work queue and worker loop.
 *
 * The work queue is a FIFO list of C work items. A worker with nothing to do
 * parks on the queue's `idle` waitlist with the GIL released; submit() hands
 * a new item straight to the oldest parked worker (so a parked worker means
 * an empty queue), or queues it and starts a new thread while there are fewer
 * than max_workers: the stdlib's "reuse an idle thread before spawning".
 *
 * Workers are real threading.Thread objects (started by cconc/futures.py,
 * named as the stdlib names them) whose target is the queue's native _worker
 * loop. They hold the queue, never the executor, so that an executor dropped
 * without shutdown() is collected and its workers leave, as in the stdlib.
 */
#include "cconc.h"

typedef struct work_item {
    struct work_item *next;
    PyObject *future;
    PyObject *fn;
    PyObject *args;   /* tuple */
    PyObject *kwargs; /* dict or NULL */
} work_item;

typedef struct {
    PyObject_HEAD
    work_item *head, *tail;
    Py_ssize_t queued;
    cc_waitlist idle;     /* parked workers; a waker hands an item (or NULL: look again) */
    int shutdown;         /* the executor was shut down */
    int executor_gone;    /* the executor was collected */
    PyObject *broken;     /* NULL, or why the pool is broken (an initializer failed) */
    PyObject *initializer;
    PyObject *initargs;   /* as given: unpacked by each worker */
} WorkQueueObject;

typedef struct {
    PyObject_HEAD
    WorkQueueObject *queue;
    Py_ssize_t max_workers;
    Py_ssize_t nthreads; /* started, or being started by submit() */
} ExecutorObject;

/* --------------------------------------------------------------- items */

static void item_free(work_item *item)
{
    /* Last, as the DECREFs may run arbitrary code. */
    PyObject *future = item->future, *fn = item->fn, *args = item->args, *kwargs = item->kwargs;
    PyMem_Free(item);
    Py_DECREF(fn);
    Py_DECREF(args);
    Py_XDECREF(kwargs);
    Py_DECREF(future);
}

static work_item *queue_pop(WorkQueueObject *q)
{
    work_item *item = q->head;
    if (item) {
        q->head = item->next;
        if (!q->head)
            q->tail = NULL;
        q->queued--;
    }
    return item;
}

static void queue_push_front(WorkQueueObject *q, work_item *item)
{
    item->next = q->head;
    q->head = item;
    if (!q->tail)
        q->tail = item;
    q->queued++;
}

/* Hand the item to a parked worker (1) or queue it (0). */
static int queue_put(WorkQueueObject *q, work_item *item)
{
    cc_waiter *w = cc_waitlist_pop(&q->idle);
    if (w) {
        w->handoff = item;
        cc_waiter_wake(w);
        return 1;
    }
    item->next = NULL;
    if (q->tail)
        q->tail->next = item;
    else
        q->head = item;
    q->tail = item;
    q->queued++;
    return 0;
}

/* Take every queued item off the queue, for the caller to dispose of. */
static work_item *queue_detach(WorkQueueObject *q)
{
    work_item *items = q->head;
    q->head = q->tail = NULL;
    q->queued = 0;
    return items;
}

static void queue_wake_all(WorkQueueObject *q) { cc_waitlist_wake(&q->idle, -1); }

/* Settle each detached item's future with `settle` (NULL: leave it as it is)
 * and free it. Every future is settled whatever a callback raises: the first
 * error is kept (0, or -1 with it), later ones are reported as unraisable. */
static int items_dispose(work_item *items, int (*settle)(work_item *, void *), void *ctx)
{
    int rc = 0;
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    while (items) {
        work_item *item = items;
        items = item->next;
        if (settle && settle(item, ctx) < 0) {
            if (rc == 0) {
                rc = -1;
                PyErr_Fetch(&type, &value, &tb);
            }
            else
                PyErr_WriteUnraisable(item->future);
        }
        item_free(item);
    }
    if (rc < 0)
        PyErr_Restore(type, value, tb);
    return rc;
}

/* The executor let go of its queue (re-initialized or collected): as the
 * stdlib's weakref callback, its workers leave once the queue is empty. */
static void queue_abandon(WorkQueueObject *q)
{
    Py_BEGIN_CRITICAL_SECTION(q);
    q->executor_gone = 1;
    queue_wake_all(q);
    Py_END_CRITICAL_SECTION();
    Py_DECREF(q);
}

/* --------------------------------------------------------------- workers */

/* Run one item: 0 done (or cancelled), -1 an error the worker dies of, as the
 * stdlib's worker dies of whatever escapes _WorkItem.run(). */
static int run_item(work_item *item)
{
    int r = cc_future_set_running_or_notify_cancel(item->future);
    if (r <= 0) {
        item_free(item);
        return r;
    }
    PyObject *result = PyObject_Call(item->fn, item->args, item->kwargs);
    if (result) {
        r = cc_future_set_result(item->future, result);
        Py_DECREF(result);
    }
    else {
        PyObject *value = cc_exc_take();
        r = cc_future_set_exception(item->future, value ? value : Py_None);
        Py_XDECREF(value);
    }
    item_free(item);
    return r;
}

typedef struct {
    WorkQueueObject *q;
    cc_state *st;
} broken_pool;

static int settle_broken(work_item *item, void *pool)
{
    broken_pool *b = pool;
    PyObject *exc = PyObject_CallOneArg(b->st->BrokenThreadPool, b->q->broken);
    if (!exc)
        return -1;
    int rc = cc_future_set_exception(item->future, exc);
    Py_DECREF(exc);
    return rc;
}

/* The pool is broken: fail every queued future with BrokenThreadPool. */
static int queue_break(WorkQueueObject *q, cc_state *st)
{
    if (!q->broken) {
        q->broken = PyUnicode_FromString("A thread initializer failed, the thread pool is not usable anymore");
        if (!q->broken)
            return -1;
    }
    broken_pool b = {q, st};
    return items_dispose(queue_detach(q), settle_broken, &b);
}

/* The worker's next item: queued, or handed over after parking; NULL to look
 * again, or with *stop set: 1 to leave, -1 to leave logging the exception. */
static work_item *worker_take(WorkQueueObject *q, cc_state *st, int *stop)
{
    work_item *item = queue_pop(q);
    if (item)
        return item;
    if (q->shutdown || q->executor_gone || st->futures_exiting) {
        q->shutdown = 1;
        queue_wake_all(q); /* the others leave too */
        *stop = 1;
        return NULL;
    }
    cc_waiter w;
    w.handoff = NULL;
    cc_waitlist_append(&q->idle, &w);
    int r = cc_park(&q->idle, &w, CC_FOREVER);
    item = w.state == CC_WOKEN ? w.handoff : NULL;
    if (r == CC_PARK_ERROR) {
        if (item)
            queue_push_front(q, item); /* give it to another worker */
        *stop = -1;
        return NULL;
    }
    return item;
}

static PyObject *queue_worker(WorkQueueObject *q, PyObject *Py_UNUSED(ignored))
{
    cc_state *st = cc_state_of_type(Py_TYPE(q));
    if (!st)
        return NULL;
    if (q->initializer) {
        /* As the stdlib's initializer(*initargs): initargs that are not an
         * iterable fail here, as the initializer failing. */
        PyObject *args = PySequence_Tuple(q->initargs);
        PyObject *r = args ? PyObject_Call(q->initializer, args, NULL) : NULL;
        Py_XDECREF(args);
        if (!r) {
            cc_futures_log_exception(st, "critical", "Exception in initializer:", NULL);
            int broke = 0;
            Py_BEGIN_CRITICAL_SECTION(q);
            broke = q->executor_gone ? 0 : queue_break(q, st);
            Py_END_CRITICAL_SECTION();
            if (broke < 0)
                PyErr_WriteUnraisable((PyObject *)q);
            Py_RETURN_NONE;
        }
        Py_DECREF(r);
    }
    for (;;) {
        int stop = 0;
        work_item *item;
        /* The queue's critical section only to take the next item: the item
         * runs outside it, so submitters and the other workers go on. */
        Py_BEGIN_CRITICAL_SECTION(q);
        item = worker_take(q, st, &stop);
        Py_END_CRITICAL_SECTION();
        if (stop < 0) {
            cc_futures_log_exception(st, "critical", "Exception in worker", NULL);
            break;
        }
        if (stop)
            break;
        if (!item)
            continue;
        if (run_item(item) < 0) {
            cc_futures_log_exception(st, "critical", "Exception in worker", NULL);
            break;
        }
    }
    Py_RETURN_NONE;
}

/* Interpreter exit (cconc/futures.py's _python_exit): wake the parked workers. */
static PyObject *queue_wake_all_method(WorkQueueObject *q, PyObject *Py_UNUSED(ignored))
{
    Py_BEGIN_CRITICAL_SECTION(q);
    queue_wake_all(q);
    Py_END_CRITICAL_SECTION();
    Py_RETURN_NONE;
}

static PyObject *queue_qsize(WorkQueueObject *q, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(CC_LOAD_SSIZE(q->queued));
}

static int queue_traverse(WorkQueueObject *q, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(q));
    Py_VISIT(q->broken);
    Py_VISIT(q->initializer);
    Py_VISIT(q->initargs);
    for (work_item *item = q->head; item; item = item->next) {
        Py_VISIT(item->future);
        Py_VISIT(item->fn);
        Py_VISIT(item->args);
        Py_VISIT(item->kwargs);
    }
    return 0;
}

static int queue_clear(WorkQueueObject *q)
{
    items_dispose(queue_detach(q), NULL, NULL);
    Py_CLEAR(q->broken);
    Py_CLEAR(q->initializer);
    Py_CLEAR(q->initargs);
    return 0;
}

static void queue_dealloc(WorkQueueObject *q)
{
    PyTypeObject *tp = Py_TYPE(q);
    PyObject_GC_UnTrack(q);
    queue_clear(q);
    tp->tp_free(q);
    Py_DECREF(tp);
}

static PyMethodDef queue_methods[] = {
    {"_worker", (PyCFunction)queue_worker, METH_NOARGS, "The worker threads' loop."},
    {"_wake_all", (PyCFunction)queue_wake_all_method, METH_NOARGS, NULL},
    {"qsize", (PyCFunction)queue_qsize, METH_NOARGS, "Number of queued work items."},
    {NULL, NULL},
};

static PyType_Slot queue_slots[] = {
    {Py_tp_dealloc, queue_dealloc},
    {Py_tp_traverse, queue_traverse},
    {Py_tp_clear, queue_clear},
    {Py_tp_methods, queue_methods},
    {Py_tp_doc, "The work queue a ThreadPoolExecutor shares with its worker threads."},
    {0, NULL},
};

static PyType_Spec queue_spec = {
    .name = "cconc._cconc._WorkQueue",
    .basicsize = sizeof(WorkQueueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = queue_slots,
};

/* -------------------------------------------------------------- executor */

static int executor_init(ExecutorObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_workers", "initializer", "initargs", NULL};
    Py_ssize_t max_workers;
    PyObject *initializer = Py_None, *initargs = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|OO:_ThreadPoolExecutorCore", kwlist, &max_workers,
                                     &initializer, &initargs))
        return -1;
    if (max_workers <= 0) {
        PyErr_SetString(PyExc_ValueError, "max_workers must be greater than 0");
        return -1;
    }
    cc_state *st = cc_state_of_type(Py_TYPE(self));
    if (!st)
        return -1;
    /* Kept as given: the stdlib only unpacks it in each worker, before its first task. */
    PyObject *initargs_tuple = initargs ? Py_NewRef(initargs) : PyTuple_New(0);
    if (!initargs_tuple)
        return -1;
    WorkQueueObject *q = PyObject_GC_New(WorkQueueObject, st->WorkQueue_type);
    if (!q) {
        Py_DECREF(initargs_tuple);
        return -1;
    }
    q->head = q->tail = NULL;
    q->queued = 0;
    cc_waitlist_init(&q->idle);
    q->shutdown = q->executor_gone = 0;
    q->broken = NULL;
    q->initializer = initializer == Py_None ? NULL : Py_NewRef(initializer);
    q->initargs = initargs_tuple;
    PyObject_GC_Track(q);
    WorkQueueObject *old;
    Py_BEGIN_CRITICAL_SECTION(self);
    old = self->queue;
    self->queue = q;
    self->max_workers = max_workers;
    self->nthreads = 0;
    Py_END_CRITICAL_SECTION();
    if (old)
        queue_abandon(old);
    return 0;
}

static WorkQueueObject *executor_queue(ExecutorObject *self)
{
    if (!self->queue)
        PyErr_SetString(PyExc_RuntimeError, "ThreadPoolExecutor.__init__() was not called");
    return self->queue;
}

static PyObject *executor_submit_to(ExecutorObject *self, WorkQueueObject *q, cc_state *st, PyObject *const *args,
                                    Py_ssize_t nargs, PyObject *kwnames);

static PyObject *executor_submit(ExecutorObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "submit() missing 1 required positional argument: 'fn'");
        return NULL;
    }
    WorkQueueObject *q;
    Py_BEGIN_CRITICAL_SECTION(self);
    q = executor_queue(self);
    Py_END_CRITICAL_SECTION();
    if (!q)
        return NULL;
    cc_state *st = cc_state_of_type(Py_TYPE(self));
    if (!st)
        return NULL;
    /* Held: code run by an allocation could re-initialize the executor,
     * which drops its reference to the old queue. */
    Py_INCREF(q);
    PyObject *r;
    Py_BEGIN_CRITICAL_SECTION2(self, q);
    r = executor_submit_to(self, q, st, args, nargs, kwnames);
    Py_END_CRITICAL_SECTION2();
    Py_DECREF(q);
    return r;
}

static PyObject *executor_submit_to(ExecutorObject *self, WorkQueueObject *q, cc_state *st, PyObject *const *args,
                                    Py_ssize_t nargs, PyObject *kwnames)
{
    if (q->broken) {
        PyErr_SetObject(st->BrokenThreadPool, q->broken);
        return NULL;
    }
    if (q->shutdown) {
        PyErr_SetString(PyExc_RuntimeError, "cannot schedule new futures after shutdown");
        return NULL;
    }
    if (st->futures_exiting) {
        PyErr_SetString(PyExc_RuntimeError, "cannot schedule new futures after interpreter shutdown");
        return NULL;
    }
    PyObject *future = cc_future_new(st);
    if (!future)
        return NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *call_args = PyTuple_New(nargs - 1);
    PyObject *kwargs = nkw ? PyDict_New() : NULL;
    work_item *item = PyMem_Malloc(sizeof(work_item));
    if (!call_args || (nkw && !kwargs) || !item)
        goto error;
    for (Py_ssize_t i = 1; i < nargs; i++)
        PyTuple_SET_ITEM(call_args, i - 1, Py_NewRef(args[i]));
    for (Py_ssize_t i = 0; i < nkw; i++)
        if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
            goto error;
    /* The allocations may have run the GC, and a finalizer may have shut
     * the executor down (or re-initialized it): check again, as queuing an
     * item no worker will take would leave its future pending forever. */
    if (self->queue != q || q->broken || q->shutdown || st->futures_exiting) {
        if (q->broken && self->queue == q)
            PyErr_SetObject(st->BrokenThreadPool, q->broken);
        else
            PyErr_SetString(PyExc_RuntimeError, "cannot schedule new futures after shutdown");
        goto error;
    }
    item->future = Py_NewRef(future);
    item->fn = Py_NewRef(args[0]);
    item->args = call_args;
    item->kwargs = kwargs;
    if (!queue_put(q, item) && self->nthreads < self->max_workers) {
        /* No parked worker to take it and room for one more: start a thread.
         * The slot is taken first: starting one lets other threads run. */
        Py_ssize_t index = self->nthreads++;
        PyObject *r = PyObject_CallFunction(st->futures_spawn_worker, "On", (PyObject *)self, index);
        if (!r) {
            /* As the stdlib: the item stays queued, the error propagates. */
            self->nthreads--;
            Py_DECREF(future);
            return NULL;
        }
        Py_DECREF(r);
    }
    return future;
error:
    if (!PyErr_Occurred())
        PyErr_NoMemory();
    PyMem_Free(item);
    Py_XDECREF(call_args);
    Py_XDECREF(kwargs);
    Py_DECREF(future);
    return NULL;
}

static int settle_cancelled(work_item *item, void *Py_UNUSED(ctx))
{
    return cc_future_cancel(item->future) < 0 ? -1 : 0;
}

/* The native half of shutdown(): refuse new work, optionally cancel the
 * queued work, let parked workers leave. Joining is left to Python. */
static PyObject *executor_shutdown_queue(ExecutorObject *self, PyObject *cancel_futures_obj)
{
    WorkQueueObject *q = executor_queue(self);
    if (!q)
        return NULL;
    int cancel_futures = PyObject_IsTrue(cancel_futures_obj);
    if (cancel_futures < 0)
        return NULL;
    Py_INCREF(q);
    int rc = 0;
    Py_BEGIN_CRITICAL_SECTION(q);
    q->shutdown = 1;
    if (cancel_futures) {
        /* One at a time, as the stdlib's get_nowait() loop: when a callback
         * raises (SystemExit, a Ctrl-C), the items not reached stay queued and
         * the workers run them, so every future still ends settled; the
         * error propagates. Workers may take items meanwhile, as there. */
        work_item *item;
        while (rc == 0 && (item = queue_pop(q)) != NULL) {
            rc = settle_cancelled(item, NULL);
            item_free(item);
        }
    }
    queue_wake_all(q);
    Py_END_CRITICAL_SECTION();
    Py_DECREF(q);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *executor_get_queue(ExecutorObject *self, void *Py_UNUSED(closure))
{
    WorkQueueObject *q = executor_queue(self);
    return q ? Py_NewRef(q) : NULL;
}

static PyObject *executor_get_shutdown(ExecutorObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->queue && self->queue->shutdown);
}

static PyObject *executor_get_broken(ExecutorObject *self, void *Py_UNUSED(closure))
{
    if (self->queue && self->queue->broken)
        return Py_NewRef(self->queue->broken);
    Py_RETURN_FALSE;
}

static PyObject *executor_get_nthreads(ExecutorObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->nthreads);
}

static int executor_traverse(ExecutorObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->queue);
    return 0;
}

static int executor_clear(ExecutorObject *self)
{
    WorkQueueObject *q = self->queue;
    if (q) {
        self->queue = NULL;
        queue_abandon(q);
    }
    return 0;
}

static void executor_dealloc(ExecutorObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    executor_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef executor_methods[] = {
    {"submit", (PyCFunction)(void (*)(void))executor_submit, METH_FASTCALL | METH_KEYWORDS,
     "submit(fn, /, *args, **kwargs): schedule fn(*args, **kwargs); return its Future."},
    {"_shutdown_queue", (PyCFunction)executor_shutdown_queue, METH_O, NULL},
    {NULL, NULL},
};

static PyGetSetDef executor_getset[] = {
    {"_work_queue", (getter)executor_get_queue, NULL, NULL, NULL},
    {"_shutdown", (getter)executor_get_shutdown, NULL, NULL, NULL},
    {"_broken", (getter)executor_get_broken, NULL, NULL, NULL},
    {"_nthreads", (getter)executor_get_nthreads, NULL, NULL, NULL},
    {NULL},
};

static PyType_Slot executor_slots[] = {
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, executor_init},
    {Py_tp_dealloc, executor_dealloc},
    {Py_tp_traverse, executor_traverse},
    {Py_tp_clear, executor_clear},
    {Py_tp_methods, executor_methods},
    {Py_tp_getset, executor_getset},
    {Py_tp_doc, "The native core of cconc.futures.ThreadPoolExecutor."},
    {0, NULL},
};

static PyType_Spec executor_spec = {
    .name = "cconc._cconc._ThreadPoolExecutorCore",
    .basicsize = sizeof(ExecutorObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = executor_slots,
};

/* Interpreter exit: no new work from now on (see _python_exit in cconc/futures.py). */
static PyObject *futures_interpreter_exit(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    cc_state *st = PyModule_GetState(module);
    Py_XSETREF(st->futures_exiting, Py_NewRef(Py_True));
    Py_RETURN_NONE;
}

static PyMethodDef executor_module_methods[] = {
    {"_futures_interpreter_exit", futures_interpreter_exit, METH_NOARGS, NULL},
    {NULL, NULL},
};

int cc_executor_exec(PyObject *module, cc_state *st)
{
    if (cc_add_type(module, &queue_spec, NULL, &st->WorkQueue_type) < 0 ||
        cc_add_type(module, &executor_spec, NULL, &st->ExecutorCore_type) < 0)
        return -1;
    return PyModule_AddFunctions(module, executor_module_methods);
}
