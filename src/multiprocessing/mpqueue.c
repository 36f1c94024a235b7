/* The process-shared queues of cconc.multiprocessing: _MPQueue (under Queue
 * and JoinableQueue) and _MPSimpleQueue (under SimpleQueue), each a handle on
 * a channel (channel.c). A put encodes the item in the calling thread and
 * places it in shared memory before returning when the ring has room.
 *
 * The spill (Queue and JoinableQueue only). When the ring has no room, a put
 * that the queue bound allows does not wait: as the stdlib's put appends to
 * its feeder thread's buffer, the encoded item is reserved in the shared
 * header (cc_chan_put: qsize, the bound and join count it) and appended to
 * this handle's spill buffer, and a feeder thread (started by the Python
 * subclass, _start_feeder, when the buffer becomes non-empty) places the
 * buffer's items in order (_feed) and ends when it is empty. While the buffer
 * is not empty, every put of this process goes behind it. The buffer belongs
 * to the process that filled it (spill_pid): a forked child drops its copy.
 *
 * The Python subclasses in cconc/multiprocessing/queues.py add the stdlib's
 * constructor signature, pickling (passing the memfd to a child process as
 * multiprocessing passes fds), the feeder thread and join_thread /
 * cancel_join_thread. */
#include "codec.h"

#include <errno.h>
#include <string.h>
#include <structmember.h>
#include <unistd.h>

#ifdef __linux__ /* channel.c's platform; elsewhere cconc.multiprocessing uses the stdlib's queues */

/* An encoded item waiting in the spill buffer. */
typedef struct {
    int tag;
    size_t len;
    const char *data; /* into owner, or scalar */
    PyObject *owner;  /* keeps data alive (bytes, str, the pickle) */
    char scalar[8];
} spill_entry;

#define SPILL_BLOCK 256

/* Entries live in a list of fixed blocks: they never move, so the feeder can
 * send from them with the GIL released (and the handle's critical section
 * suspended) while puts append. */
typedef struct spill_block {
    struct spill_block *next;
    int begin, end; /* live entries are e[begin..end) */
    spill_entry e[SPILL_BLOCK];
} spill_block;

typedef struct {
    PyObject_HEAD
    cc_chan ch;
    cc_state *st; /* the module's state, alive as long as our type */
    int closed;
    int simple; /* a _MPSimpleQueue (its put never spills) */
    int used; /* this handle has put an item: the stdlib's feeder thread exists */
    /* the spill buffer (see the top of this file) */
    spill_block *spill_first, *spill_last;
    Py_ssize_t spill_n;
    pid_t spill_pid;   /* the process the buffer and the feeder belong to */
    int feeder_active; /* a feeder thread of spill_pid is running _feed */
    PyObject *bell;    /* the _Doorbell behind ch.bell (_ring_on_put), or NULL */
    PyObject *weakreflist;
} MPQueueObject;

static int is_simple(MPQueueObject *self) { return self->simple; }

/* The stdlib's errors on a closed queue: Queue raises ValueError, SimpleQueue
 * OSError from its closed pipe. 0 when open. */
static int check_closed(MPQueueObject *self)
{
    if (!self->closed)
        return 0;
    if (is_simple(self))
        PyErr_SetString(PyExc_OSError, "handle is closed");
    else
        PyErr_Format(PyExc_ValueError, "Queue %R is closed", (PyObject *)self);
    return -1;
}

/* timeout as multiprocessing.Queue reads it: None waits forever, anything
 * else must be a real number, negative or zero polls. A NaN is ValueError in
 * get() (as the stdlib's deadline arithmetic) and, in put(), an OSError when
 * it would have to wait (*nan_put; the stdlib's sem_timedwait EINVAL). */
static int mp_timeout(int block, PyObject *timeout, int is_put, cc_deadline *deadline, int *nan_put)
{
    *nan_put = 0;
    if (!timeout || timeout == Py_None) {
        *deadline = block ? CC_FOREVER : 0;
        return 0;
    }
    double t = PyFloat_AsDouble(timeout);
    if (t == -1.0 && PyErr_Occurred())
        return -1;
    if (!block) {
        *deadline = 0;
        return 0;
    }
    if (t != t) {
        if (!is_put) {
            PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
            return -1;
        }
        *nan_put = 1;
        *deadline = 0;
        return 0;
    }
    *deadline = t > 0 ? cc_deadline_after(t) : 0;
    return 0;
}

static int parse_block(PyObject *obj, int *block)
{
    if (!obj) {
        *block = 1;
        return 0;
    }
    int b = PyObject_IsTrue(obj);
    if (b < 0)
        return -1;
    *block = b;
    return 0;
}

/* ------------------------------------------------------------ construction */

static MPQueueObject *mpq_alloc(PyTypeObject *type)
{
    cc_state *st = cc_state_of_type(type);
    if (!st)
        return NULL;
    MPQueueObject *self = (MPQueueObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->ch.hdr = NULL;
    self->ch.fd = -1;
    self->st = st;
    self->simple = PyType_IsSubtype(type, st->MPSimpleQueue_type);
    self->spill_pid = getpid();
    return self;
}

static int parse_buffer_size(PyObject *obj, size_t *size)
{
    *size = CC_CHAN_DEFAULT_CAPACITY;
    if (!obj || obj == Py_None)
        return 0;
    Py_ssize_t n = PyNumber_AsSsize_t(obj, PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred())
        return -1;
    if (n <= 0) {
        PyErr_SetString(PyExc_ValueError, "buffer_size must be positive");
        return -1;
    }
    *size = (size_t)n;
    return 0;
}

/* Queue(maxsize=0, *, ctx=None, buffer_size=None); SimpleQueue(*, ctx=None,
 * buffer_size=None). ctx is accepted for the stdlib's signature: the queue
 * works the same under every start method. */
static PyObject *mpq_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    cc_state *st = cc_state_of_type(type);
    if (!st)
        return NULL;
    int simple = PyType_IsSubtype(type, st->MPSimpleQueue_type);
    static char *queue_kw[] = {"maxsize", "ctx", "buffer_size", NULL};
    static char *simple_kw[] = {"ctx", "buffer_size", NULL};
    PyObject *maxsize_obj = NULL, *ctx = NULL, *size_obj = NULL;
    if (simple ? !PyArg_ParseTupleAndKeywords(args, kwds, "|$OO:SimpleQueue", simple_kw, &ctx, &size_obj)
               : !PyArg_ParseTupleAndKeywords(args, kwds, "|O$OO:Queue", queue_kw, &maxsize_obj, &ctx,
                                              &size_obj))
        return NULL;
    long long maxsize = 0;
    if (maxsize_obj) {
        /* the stdlib compares `maxsize <= 0` and hands it to a semaphore */
        maxsize = PyLong_AsLongLong(maxsize_obj);
        if (maxsize == -1 && PyErr_Occurred())
            return NULL;
    }
    if (maxsize <= 0 || maxsize > INT32_MAX)
        maxsize = 0;
    size_t capacity;
    if (parse_buffer_size(size_obj, &capacity) < 0)
        return NULL;
    MPQueueObject *self = mpq_alloc(type);
    if (!self)
        return NULL;
    if (cc_chan_create(&self->ch, capacity, (uint32_t)maxsize) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* The arguments were taken by __new__. */
static int mpq_init(PyObject *self, PyObject *args, PyObject *kwds) { return 0; }

/* cls._attach(fd): a handle on the channel behind fd (ours from now on),
 * in a process the queue was passed to. */
static PyObject *mpq_attach(PyObject *cls, PyObject *arg)
{
    int fd = PyObject_AsFileDescriptor(arg);
    if (fd < 0)
        return NULL;
    MPQueueObject *self = mpq_alloc((PyTypeObject *)cls);
    if (!self)
        return NULL;
    if (cc_chan_attach(&self->ch, fd) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int mpq_traverse(MPQueueObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->bell);
    return 0;
}

/* ------------------------------------------------------------ spill buffer */

static void spill_entry_clear(spill_entry *e) { Py_CLEAR(e->owner); }

/* Drop the first n entries (placed by the feeder, or abandoned). */
static void spill_pop(MPQueueObject *self, Py_ssize_t n)
{
    while (n > 0 && self->spill_first) {
        spill_block *b = self->spill_first;
        while (n > 0 && b->begin < b->end) {
            spill_entry_clear(&b->e[b->begin++]);
            self->spill_n--;
            n--;
        }
        if (b->begin == b->end && (b->end == SPILL_BLOCK || !b->next)) {
            self->spill_first = b->next;
            if (!b->next)
                self->spill_last = NULL;
            PyMem_Free(b);
        }
    }
}

/* Drop every entry. `reserved`: give their reservations back to the
 * channel (not in a forked child: the entries are its parent's). */
static void spill_drop(MPQueueObject *self, int reserved)
{
    if (reserved && self->spill_n && self->ch.hdr)
        cc_chan_unspill(&self->ch, self->spill_n);
    spill_pop(self, self->spill_n);
}

/* Forked child: the inherited buffer and feeder are the parent's. */
static void spill_check_pid(MPQueueObject *self)
{
    pid_t pid = getpid();
    if (self->spill_pid == pid)
        return;
    spill_drop(self, 0);
    self->feeder_active = 0;
    self->spill_pid = pid;
}

/* A free entry at the end of the buffer, or NULL (MemoryError). */
static spill_entry *spill_slot(MPQueueObject *self)
{
    spill_block *b = self->spill_last;
    if (!b || b->end == SPILL_BLOCK) {
        spill_block *nb = PyMem_Malloc(sizeof(spill_block));
        if (!nb) {
            PyErr_NoMemory();
            return NULL;
        }
        nb->next = NULL;
        nb->begin = nb->end = 0;
        if (b)
            b->next = nb;
        else
            self->spill_first = nb;
        self->spill_last = b = nb;
    }
    return &b->e[b->end];
}

/* Move an encoded item to the end of the buffer (it owns the payload from
 * now on). -1 with MemoryError, the item left as it was. */
static int spill_append(MPQueueObject *self, cc_mp_item *item)
{
    spill_entry *e = spill_slot(self);
    if (!e)
        return -1;
    e->tag = item->msg.tag;
    e->len = item->msg.len;
    e->owner = item->owner;
    item->owner = NULL;
    if (item->msg.data == item->scalar) {
        memcpy(e->scalar, item->scalar, sizeof e->scalar);
        e->data = e->scalar;
    }
    else
        e->data = item->msg.data;
    if (item->has_view) {
        /* The pickle object (owner) keeps its buffer where it is while it
         * lives: ForkingPickler.dumps returns a memoryview or bytes that
         * nothing else references or resizes. */
        PyBuffer_Release(&item->view);
        item->has_view = 0;
    }
    self->spill_last->end++;
    self->spill_n++;
    return 0;
}

static void mpq_dealloc(MPQueueObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    /* Items still spilled are lost with the last reference to the handle
     * (the feeder holds one while it runs): give their slots back. */
    spill_drop(self, self->spill_pid == getpid());
    cc_chan_close_fd(&self->ch);
    cc_chan_unmap(&self->ch);
    self->ch.bell = NULL;
    Py_CLEAR(self->bell);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* ------------------------------------------------------------ put */

/* Queue's put of the encoded enc[0..n) (msgs: their messages): place them,
 * or spill them when the ring has no room. *sent counts the items placed or
 * spilled (put, as far as the caller can tell), also on TIMEOUT and ERROR. */
static int queue_put(MPQueueObject *self, cc_mp_item *enc, const cc_chan_msg *msgs, Py_ssize_t n,
                     cc_deadline deadline, Py_ssize_t *sent)
{
    int spill_all = 0;
    if (self->spill_n) {
        spill_check_pid(self);
        spill_all = self->spill_n > 0; /* behind what this process spilled */
    }
    Py_ssize_t placed, spilled;
    int r = cc_chan_put(&self->ch, msgs, n, deadline, spill_all, &placed, &spilled);
    *sent = placed;
    if (!spilled)
        return r;
    spill_check_pid(self);
    for (Py_ssize_t i = placed; i < placed + spilled; i++) {
        if (spill_append(self, &enc[i]) < 0) {
            /* out of memory: these items are not put after all */
            cc_chan_unspill(&self->ch, placed + spilled - i);
            return CC_CHAN_ERROR;
        }
        ++*sent;
    }
    if (self->feeder_active)
        return r;
    /* State is consistent: the items are in the buffer. Starting the thread
     * runs Python code, which may put too. */
    self->feeder_active = 1;
    PyObject *res = PyObject_CallMethod((PyObject *)self, "_start_feeder", NULL);
    if (!res) {
        self->feeder_active = 0; /* the next spilling put tries again */
        if (r == CC_CHAN_ERROR) /* keep the first error */
            PyErr_Clear();
        return CC_CHAN_ERROR;
    }
    Py_DECREF(res);
    return r;
}

/* Put items[0..n); 0, or -1 with an exception carrying put_count when batch. */
static int put_items(MPQueueObject *self, PyObject *const *items, Py_ssize_t n, int block, PyObject *timeout,
                     int batch)
{
    cc_deadline deadline;
    int nan_put;
    if (check_closed(self) < 0 || mp_timeout(block, timeout, 1, &deadline, &nan_put) < 0)
        return -1;
    cc_mp_item one, *enc = &one;
    if (n > 1 && !(enc = PyMem_Malloc(sizeof(cc_mp_item) * (size_t)n))) {
        PyErr_NoMemory();
        return -1;
    }
    cc_chan_msg msg_one, *msgs = &msg_one;
    if (n > 1 && !(msgs = PyMem_Malloc(sizeof(cc_chan_msg) * (size_t)n))) {
        PyMem_Free(enc);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t encoded = 0, sent = 0;
    int r = CC_CHAN_ERROR;
    /* every item is encoded before any is placed: a pickling error places nothing */
    for (; encoded < n; encoded++) {
        if (cc_mp_encode(self->st, items[encoded], &enc[encoded]) < 0)
            goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        msgs[i] = enc[i].msg;
        /* the payload of a scalar lives inside the item */
        if (enc[i].msg.data == enc[i].scalar)
            msgs[i].data = enc[i].scalar;
    }
    if (is_simple(self))
        r = cc_chan_send(&self->ch, msgs, n, deadline, &sent);
    else {
        r = queue_put(self, enc, msgs, n, deadline, &sent);
    }
    if (sent)
        self->used = 1;
    if (r == CC_CHAN_TIMEOUT) {
        if (nan_put) {
            errno = EINVAL;
            PyErr_SetFromErrno(PyExc_OSError);
        }
        else
            PyErr_SetNone(self->st->queue_Full);
    }
done:
    for (Py_ssize_t i = 0; i < encoded; i++)
        cc_mp_item_release(&enc[i]);
    if (enc != &one)
        PyMem_Free(enc);
    if (msgs != &msg_one)
        PyMem_Free(msgs);
    if (r == CC_CHAN_OK)
        return 0;
    if (batch) {
        PyObject *count = PyLong_FromSsize_t(sent);
        if (count) {
            cc_exc_attach("put_count", count);
            Py_DECREF(count);
        }
    }
    return -1;
}

static PyObject *mpq_put_impl(MPQueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"obj", "block", "timeout", NULL};
    PyObject *a[3];
    int block;
    if (cc_parse_args("put", args, nargs, kwnames, kwlist, 3, 1, a) < 0 || parse_block(a[1], &block) < 0)
        return NULL;
    if (put_items(self, a, 1, block, a[2], 0) < 0)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_FASTCALL_KW(mpq_put, MPQueueObject)

static PyObject *mpq_put_nowait_impl(MPQueueObject *self, PyObject *obj)
{
    if (put_items(self, &obj, 1, 0, NULL, 0) < 0)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_O(mpq_put_nowait, MPQueueObject)

static PyObject *mpq_simple_put_impl(MPQueueObject *self, PyObject *obj)
{
    if (put_items(self, &obj, 1, 1, NULL, 0) < 0)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_O(mpq_simple_put, MPQueueObject)

/* _put_timeout(obj, timeout): SimpleQueue's put, waiting for room at most
 * `timeout` seconds (None: forever), then queue.Full with nothing placed. The
 * pool sends to a worker in slices, so that a send never waits on a worker
 * that died with its ring full. */
static PyObject *mpq_simple_put_timeout(MPQueueObject *self, PyObject *const *args, Py_ssize_t nargs,
                                        PyObject *kwnames)
{
    static const char *const kwlist[] = {"obj", "timeout", NULL};
    PyObject *a[2];
    if (cc_parse_args("_put_timeout", args, nargs, kwnames, kwlist, 2, 2, a) < 0)
        return NULL;
    if (put_items(self, a, 1, 1, a[1], 0) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *put_many_impl(MPQueueObject *self, PyObject *items, int block, PyObject *timeout)
{
    PyObject *seq = PySequence_Fast(items, "put_many() argument must be iterable");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int r = n ? put_items(self, PySequence_Fast_ITEMS(seq), n, block, timeout, 1) : check_closed(self);
    Py_DECREF(seq);
    if (r < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *mpq_put_many_impl(MPQueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"items", "block", "timeout", NULL};
    PyObject *a[3];
    int block;
    if (cc_parse_args("put_many", args, nargs, kwnames, kwlist, 3, 1, a) < 0 || parse_block(a[1], &block) < 0)
        return NULL;
    return put_many_impl(self, a[0], block, a[2]);
}
CC_CS_FASTCALL_KW(mpq_put_many, MPQueueObject)

static PyObject *mpq_simple_put_many_impl(MPQueueObject *self, PyObject *items)
{
    return put_many_impl(self, items, 1, NULL);
}
CC_CS_O(mpq_simple_put_many, MPQueueObject)

/* _feed(): the feeder thread's body. Places the spilled items in order,
 * waiting for room as needed, and returns once the buffer is empty (a later
 * spill starts a new feeder). */
static PyObject *mpq_feed_impl(MPQueueObject *self)
{
    enum { BATCH = 1024 };
    cc_chan_msg *msgs = PyMem_Malloc(sizeof(cc_chan_msg) * BATCH);
    if (!msgs) {
        self->feeder_active = 0;
        return PyErr_NoMemory();
    }
    for (;;) {
        if (self->spill_pid != getpid())
            break; /* a forked copy of the feeder's caller: not ours */
        if (!self->spill_n) {
            self->feeder_active = 0;
            break;
        }
        Py_ssize_t k = 0;
        for (spill_block *b = self->spill_first; b && k < BATCH; b = b->next)
            for (int i = b->begin; i < b->end && k < BATCH; i++, k++) {
                msgs[k].tag = b->e[i].tag;
                msgs[k].data = b->e[i].data;
                msgs[k].len = b->e[i].len;
            }
        /* Only this thread removes entries: they stay valid while the GIL
         * is released (puts only append). */
        Py_ssize_t sent;
        int r = cc_chan_feed(&self->ch, msgs, k, &sent);
        spill_pop(self, sent);
        if (r == CC_CHAN_ERROR) {
            self->feeder_active = 0;
            PyMem_Free(msgs);
            return NULL;
        }
    }
    PyMem_Free(msgs);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(mpq_feed, MPQueueObject)

static PyObject *mpq_spilled_impl(MPQueueObject *self, void *unused)
{
    return PyLong_FromSsize_t(self->spill_pid == getpid() ? self->spill_n : 0);
}
CC_CS_GETTER(mpq_spilled, MPQueueObject)

/* ------------------------------------------------------------ get */

typedef struct {
    cc_chan_sink base;
    PyObject *one;      /* get(): the item */
    int one_pickled;
    PyObject *list;     /* get_many(): the items */
    Py_ssize_t *pickled; /* indexes in list still to unpickle */
    Py_ssize_t npickled, cap;
} mp_sink;

static int sink_take(cc_chan_sink *base, int tag, const char *data, size_t len, PyObject *bytes)
{
    mp_sink *s = (mp_sink *)base;
    int pickled;
    /* make room first, so that a failure leaves the message in the channel */
    if (s->list && s->npickled == s->cap) {
        Py_ssize_t cap = s->cap ? s->cap * 2 : 16;
        Py_ssize_t *p = PyMem_Realloc(s->pickled, sizeof(Py_ssize_t) * (size_t)cap);
        if (!p) {
            Py_XDECREF(bytes);
            PyErr_NoMemory();
            return -1;
        }
        s->pickled = p;
        s->cap = cap;
    }
    PyObject *obj = cc_mp_decode(tag, data, len, bytes, &pickled);
    if (!obj)
        return -1;
    if (!s->list) {
        s->one = obj;
        s->one_pickled = pickled;
        return 0;
    }
    if (PyList_Append(s->list, obj) < 0) {
        Py_DECREF(obj);
        return -1;
    }
    Py_DECREF(obj);
    if (pickled)
        s->pickled[s->npickled++] = PyList_GET_SIZE(s->list) - 1;
    return 0;
}

static PyObject *get_one(MPQueueObject *self, int block, PyObject *timeout)
{
    cc_deadline deadline;
    int nan_put;
    if (check_closed(self) < 0 || mp_timeout(block, timeout, 0, &deadline, &nan_put) < 0)
        return NULL;
    mp_sink sink = {{sink_take}, NULL, 0, NULL, NULL, 0, 0};
    Py_ssize_t got;
    int r = cc_chan_recv(&self->ch, 1, deadline, &sink.base, &got);
    if (r == CC_CHAN_TIMEOUT) {
        PyErr_SetNone(self->st->queue_Empty);
        return NULL;
    }
    if (r != CC_CHAN_OK)
        return NULL;
    if (!sink.one_pickled)
        return sink.one;
    /* unpickled after the lock is released, as the stdlib does */
    PyObject *obj = cc_mp_unpickle(self->st, sink.one);
    Py_DECREF(sink.one);
    return obj;
}

static PyObject *mpq_get_impl(MPQueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"block", "timeout", NULL};
    PyObject *a[2];
    int block;
    if (cc_parse_args("get", args, nargs, kwnames, kwlist, 2, 0, a) < 0 || parse_block(a[0], &block) < 0)
        return NULL;
    return get_one(self, block, a[1]);
}
CC_CS_FASTCALL_KW(mpq_get, MPQueueObject)

static PyObject *mpq_get_nowait_impl(MPQueueObject *self) { return get_one(self, 0, NULL); }
CC_CS_NOARGS(mpq_get_nowait, MPQueueObject)

static PyObject *mpq_simple_get_impl(MPQueueObject *self) { return get_one(self, 1, NULL); }
CC_CS_NOARGS(mpq_simple_get, MPQueueObject)

static PyObject *get_many_impl(MPQueueObject *self, PyObject *max_obj, int block, PyObject *timeout)
{
    Py_ssize_t max_items = PyNumber_AsSsize_t(max_obj, PyExc_OverflowError);
    if (max_items == -1 && PyErr_Occurred())
        return NULL;
    if (max_items < 1) {
        PyErr_SetString(PyExc_ValueError, "max_items must be a positive integer");
        return NULL;
    }
    cc_deadline deadline;
    int nan_put;
    if (check_closed(self) < 0 || mp_timeout(block, timeout, 0, &deadline, &nan_put) < 0)
        return NULL;
    mp_sink sink = {{sink_take}, NULL, 0, PyList_New(0), NULL, 0, 0};
    if (!sink.list)
        return NULL;
    Py_ssize_t got;
    int r = cc_chan_recv(&self->ch, max_items, deadline, &sink.base, &got);
    if (r == CC_CHAN_TIMEOUT)
        PyErr_SetNone(self->st->queue_Empty);
    /* Unpickle after the lock is released. An item that fails to unpickle is
     * lost (as in the stdlib's get); the first error is raised, with the
     * other items on it as .items. */
    PyObject *err_type = NULL, *err_value = NULL, *err_tb = NULL;
    char *bad = NULL;
    for (Py_ssize_t i = 0; r == CC_CHAN_OK && i < sink.npickled; i++) {
        Py_ssize_t k = sink.pickled[i];
        PyObject *obj = cc_mp_unpickle(self->st, PyList_GET_ITEM(sink.list, k));
        if (obj) {
            PyList_SetItem(sink.list, k, obj);
            continue;
        }
        if (!bad && !(bad = PyMem_Calloc((size_t)PyList_GET_SIZE(sink.list), 1))) {
            PyErr_Clear();
            continue; /* out of memory: the pickle stays in the list */
        }
        bad[k] = 1;
        if (!err_type)
            PyErr_Fetch(&err_type, &err_value, &err_tb);
        else
            PyErr_Clear();
    }
    PyMem_Free(sink.pickled);
    if (err_type) {
        PyObject *good = PyList_New(0);
        for (Py_ssize_t i = 0; good && i < PyList_GET_SIZE(sink.list); i++)
            if (!bad[i] && PyList_Append(good, PyList_GET_ITEM(sink.list, i)) < 0)
                Py_CLEAR(good);
        PyMem_Free(bad);
        Py_DECREF(sink.list);
        PyErr_Restore(err_type, err_value, err_tb);
        if (good) {
            cc_exc_attach("items", good);
            Py_DECREF(good);
        }
        return NULL;
    }
    PyMem_Free(bad);
    if (r != CC_CHAN_OK) {
        if (PyList_GET_SIZE(sink.list))
            cc_exc_attach("items", sink.list);
        Py_DECREF(sink.list);
        return NULL;
    }
    return sink.list;
}

static PyObject *mpq_get_many_impl(MPQueueObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"max_items", "block", "timeout", NULL};
    PyObject *a[3];
    int block;
    if (cc_parse_args("get_many", args, nargs, kwnames, kwlist, 3, 1, a) < 0 || parse_block(a[1], &block) < 0)
        return NULL;
    return get_many_impl(self, a[0], block, a[2]);
}
CC_CS_FASTCALL_KW(mpq_get_many, MPQueueObject)

/* ------------------------------------------------------------ state */

static PyObject *mpq_qsize_impl(MPQueueObject *self)
{
    return PyLong_FromUnsignedLong(cc_chan_count(&self->ch));
}
CC_CS_NOARGS(mpq_qsize, MPQueueObject)

static PyObject *mpq_empty_impl(MPQueueObject *self)
{
    /* The stdlib's empty() polls the pipe, which close() closes once the
     * queue has been used (its feeder thread closes it): then OSError. */
    if (self->closed && (self->used || is_simple(self))) {
        PyErr_SetString(PyExc_OSError, "handle is closed");
        return NULL;
    }
    return PyBool_FromLong(cc_chan_count(&self->ch) == 0);
}
CC_CS_NOARGS(mpq_empty, MPQueueObject)

static PyObject *mpq_full_impl(MPQueueObject *self)
{
    uint32_t maxsize = cc_chan_maxsize(&self->ch);
    return PyBool_FromLong(maxsize && cc_chan_count(&self->ch) >= maxsize);
}
CC_CS_NOARGS(mpq_full, MPQueueObject)

/* Like the stdlib's close(): this handle can no longer put or get; the
 * other processes' handles are unaffected. Calls in flight finish. */
static PyObject *mpq_close_impl(MPQueueObject *self)
{
    self->closed = 1;
    cc_chan_close_fd(&self->ch);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(mpq_close, MPQueueObject)

/* _ring_on_put(bell): from now on, this handle's puts ring the _Doorbell
 * `bell` at every publish (the pool's workers: their parent sleeps on one
 * doorbell for all their result rings). Set once, before any put. */
static PyObject *mpq_ring_on_put_impl(MPQueueObject *self, PyObject *bell)
{
    cc_bell *b = cc_bell_of(self->st, bell);
    if (!b)
        return NULL;
    if (self->bell) {
        PyErr_SetString(PyExc_RuntimeError, "this queue already rings a doorbell");
        return NULL;
    }
    self->bell = Py_NewRef(bell);
    self->ch.bell = b;
    Py_RETURN_NONE;
}
CC_CS_O(mpq_ring_on_put, MPQueueObject)

/* _has_frames(): whether anything was put and not yet taken, including the
 * part written so far of a long message (which get() then waits to end). */
static PyObject *mpq_has_frames_impl(MPQueueObject *self)
{
    if (check_closed(self) < 0)
        return NULL;
    return PyBool_FromLong(cc_chan_has_frames(&self->ch));
}
CC_CS_NOARGS(mpq_has_frames, MPQueueObject)

static PyObject *mpq_fileno_impl(MPQueueObject *self)
{
    if (check_closed(self) < 0)
        return NULL;
    if (self->ch.fd < 0) {
        PyErr_SetString(PyExc_ValueError, "queue has no file descriptor");
        return NULL;
    }
    return PyLong_FromLong(self->ch.fd);
}
CC_CS_NOARGS(mpq_fileno, MPQueueObject)

static PyObject *mpq_task_done_impl(MPQueueObject *self)
{
    if (cc_chan_task_done(&self->ch) < 0)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_NOARGS(mpq_task_done, MPQueueObject)

static PyObject *mpq_join_impl(MPQueueObject *self)
{
    if (cc_chan_join(&self->ch) != CC_CHAN_OK)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_NOARGS(mpq_join, MPQueueObject)

static PyObject *mpq_unfinished_impl(MPQueueObject *self, void *unused)
{
    return PyLong_FromUnsignedLong(cc_chan_unfinished(&self->ch));
}
CC_CS_GETTER(mpq_unfinished, MPQueueObject)

static PyObject *mpq_get_maxsize_impl(MPQueueObject *self, void *unused)
{
    uint32_t m = cc_chan_maxsize(&self->ch);
    /* the stdlib stores SEM_VALUE_MAX for "unbounded" */
    return PyLong_FromUnsignedLong(m ? m : INT32_MAX);
}
CC_CS_GETTER(mpq_get_maxsize, MPQueueObject)

static PyObject *mpq_get_closed_impl(MPQueueObject *self, void *unused) { return PyBool_FromLong(self->closed); }
CC_CS_GETTER(mpq_get_closed, MPQueueObject)

static PyObject *mpq_get_buffer_size_impl(MPQueueObject *self, void *unused)
{
    return PyLong_FromSize_t(self->ch.capacity);
}
CC_CS_GETTER(mpq_get_buffer_size, MPQueueObject)

#define FASTCALL(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS

static PyObject *mpq_debug_state(MPQueueObject *self, PyObject *unused)
{
    return cc_chan_debug_state(&self->ch);
}

static PyMethodDef mpq_methods[] = {
    {"_debug_state", (PyCFunction)mpq_debug_state, METH_NOARGS, NULL},
    {"put", FASTCALL(mpq_put),
     "put(obj, block=True, timeout=None)\n--\n\n"
     "Put obj into the queue. When the ring has room, the item is in shared memory\n"
     "when this returns; else it is spilled to this process's buffer, which a feeder\n"
     "thread places in the queue in order (lost if this process is killed)."},
    {"get", FASTCALL(mpq_get), "get(block=True, timeout=None)\n--\n\nRemove and return an item."},
    {"put_nowait", (PyCFunction)mpq_put_nowait, METH_O, "put_nowait(obj)\n--\n\n"},
    {"get_nowait", (PyCFunction)mpq_get_nowait, METH_NOARGS, "get_nowait()\n--\n\n"},
    {"put_many", FASTCALL(mpq_put_many),
     "put_many(items, block=True, timeout=None)\n--\n\n"
     "Put every item of the iterable, in order, under one lock and one wake-up.\n"
     "On failure the exception's put_count says how many are in the queue."},
    {"get_many", FASTCALL(mpq_get_many),
     "get_many(max_items, block=True, timeout=None)\n--\n\n"
     "Wait as get() for at least one item, then return a list of up to max_items."},
    {"qsize", (PyCFunction)mpq_qsize, METH_NOARGS, "qsize()\n--\n\nItems in the queue (exact)."},
    {"empty", (PyCFunction)mpq_empty, METH_NOARGS, "empty()\n--\n\n"},
    {"full", (PyCFunction)mpq_full, METH_NOARGS, "full()\n--\n\n"},
    {"close", (PyCFunction)mpq_close, METH_NOARGS, "close()\n--\n\n"},
    {"_fileno", (PyCFunction)mpq_fileno, METH_NOARGS, NULL},
    {"_task_done", (PyCFunction)mpq_task_done, METH_NOARGS, NULL},
    {"_join", (PyCFunction)mpq_join, METH_NOARGS, NULL},
    {"_attach", (PyCFunction)mpq_attach, METH_O | METH_CLASS, NULL},
    {"_feed", (PyCFunction)mpq_feed, METH_NOARGS, NULL},
    {NULL},
};

static PyMethodDef mpsq_methods[] = {
    {"_debug_state", (PyCFunction)mpq_debug_state, METH_NOARGS, NULL},
    {"put", (PyCFunction)mpq_simple_put, METH_O, "put(obj)\n--\n\nPut obj into the queue (placed when this returns)."},
    {"get", (PyCFunction)mpq_simple_get, METH_NOARGS, "get()\n--\n\nRemove and return an item."},
    {"put_many", (PyCFunction)mpq_simple_put_many, METH_O, "put_many(items)\n--\n\n"},
    {"_put_timeout", FASTCALL(mpq_simple_put_timeout), NULL},
    {"get_many", FASTCALL(mpq_get_many), "get_many(max_items, block=True, timeout=None)\n--\n\n"},
    {"empty", (PyCFunction)mpq_empty, METH_NOARGS, "empty()\n--\n\n"},
    {"close", (PyCFunction)mpq_close, METH_NOARGS, "close()\n--\n\n"},
    {"_fileno", (PyCFunction)mpq_fileno, METH_NOARGS, NULL},
    {"_attach", (PyCFunction)mpq_attach, METH_O | METH_CLASS, NULL},
    {"_ring_on_put", (PyCFunction)mpq_ring_on_put, METH_O, NULL},
    {"_has_frames", (PyCFunction)mpq_has_frames, METH_NOARGS, NULL},
    {NULL},
};

static PyGetSetDef mpq_getset[] = {
    {"_maxsize", (getter)mpq_get_maxsize, NULL, NULL, NULL},
    {"_closed", (getter)mpq_get_closed, NULL, NULL, NULL},
    {"_unfinished_tasks", (getter)mpq_unfinished, NULL, NULL, NULL},
    {"_buffer_size", (getter)mpq_get_buffer_size, NULL, NULL, NULL},
    {"_spilled", (getter)mpq_spilled, NULL, NULL, NULL},
    {NULL},
};

static PyGetSetDef mpsq_getset[] = {
    {"_closed", (getter)mpq_get_closed, NULL, NULL, NULL},
    {"_buffer_size", (getter)mpq_get_buffer_size, NULL, NULL, NULL},
    {NULL},
};

static PyMemberDef mpq_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(MPQueueObject, weakreflist), READONLY},
    {NULL},
};

#define QUEUE_SLOTS(methods, getset)                                                                    \
    {Py_tp_new, mpq_new}, {Py_tp_init, mpq_init}, {Py_tp_dealloc, mpq_dealloc},                         \
        {Py_tp_traverse, mpq_traverse}, {Py_tp_methods, methods}, {Py_tp_getset, getset},               \
        {Py_tp_members, mpq_members},                                                                   \
    {                                                                                                   \
        0, NULL                                                                                         \
    }

static PyType_Slot mpq_slots[] = {QUEUE_SLOTS(mpq_methods, mpq_getset)};
static PyType_Slot mpsq_slots[] = {QUEUE_SLOTS(mpsq_methods, mpsq_getset)};

static PyType_Spec mpq_spec = {
    .name = CC_MODULE "._MPQueue",
    .basicsize = sizeof(MPQueueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = mpq_slots,
};

static PyType_Spec mpsq_spec = {
    .name = CC_MODULE "._MPSimpleQueue",
    .basicsize = sizeof(MPQueueObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = mpsq_slots,
};

/* _mp_setup(dumps, loads): the pickling functions, handed over by
 * cconc/multiprocessing/queues.py (ForkingPickler's), so that importing
 * cconc._cconc does not import multiprocessing. */
static PyObject *mp_setup(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_mp_setup(dumps, loads)");
        return NULL;
    }
    cc_state *st = PyModule_GetState(module);
    Py_XSETREF(st->mp_dumps, Py_NewRef(args[0]));
    Py_XSETREF(st->mp_loads, Py_NewRef(args[1]));
    Py_RETURN_NONE;
}

static PyMethodDef mp_functions[] = {
    {"_mp_setup", (PyCFunction)(void (*)(void))mp_setup, METH_FASTCALL, NULL},
    {NULL},
};

#endif /* __linux__ */

int cc_mpqueue_exec(PyObject *module, cc_state *st)
{
#ifndef __linux__
    return 0;
#else
    if (cc_add_type(module, &mpq_spec, NULL, &st->MPQueue_type) < 0 ||
        cc_add_type(module, &mpsq_spec, NULL, &st->MPSimpleQueue_type) < 0)
        return -1;
    return PyModule_AddFunctions(module, mp_functions);
#endif
}
