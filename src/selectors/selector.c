/* selectors: SelectSelector, PollSelector, EpollSelector (and KqueueSelector
 * where the platform has kqueue), mirroring the stdlib's selectors module.
 *
 * One object layout serves every backend. Registrations live twice:
 *  - fd_to_key, a dict fd -> SelectorKey (the stdlib's own namedtuple), which
 *    owns the keys and gives get_map() the stdlib's order, length, iteration
 *    and its "changed size during iteration" error for free;
 *  - table, a C array indexed by fd holding a borrowed key pointer and the
 *    registered EVENT_READ|EVENT_WRITE bits, so that select() turns what the
 *    kernel reports into [(key, events), ...] without any Python-level code.
 * Both are updated together while the GIL (without one, the selector's
 * critical section) is held, with no call out to
 * Python in between, so they never disagree where anyone can look.
 *
 * select() runs the system call with the GIL released on a buffer it has
 * taken out of the selector (self->buf is NULL while it is borrowed): a
 * close(), a register() or a second select() in another thread meanwhile
 * never frees or resizes memory the kernel is writing to.
 *
 * This file holds what every backend shares (the key table, the methods, the
 * types); each backend's system calls live in selector_<backend>.c. */
#include "selector.h"

#include <math.h>
#include <string.h>
#include <unistd.h>
#include <structmember.h>

#ifndef Py_TPFLAGS_MAPPING
#  define Py_TPFLAGS_MAPPING 0
#endif

typedef struct {
    PyObject_HEAD
    SelectorObject *sel;
} MappingObject;

/* ============================================================ helpers */

/* The module state is cleared when the module is collected (interpreter
 * shutdown): a selector outliving it must fail cleanly, not crash. */
static int state_gone(void *member)
{
    if (member)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "cconc._cconc has been finalized");
    return 1;
}

static PyObject *key_new(cc_state *st, PyObject *fileobj, PyObject *fd, PyObject *events, PyObject *data)
{
    /* SelectorKey(fileobj, fd, events, data) is tuple.__new__(SelectorKey, ...):
     * allocating the tuple subclass directly is what that ends up doing. */
    if (state_gone(st->SelectorKey))
        return NULL;
    PyTypeObject *kt = (PyTypeObject *)st->SelectorKey;
    PyObject *key = kt->tp_alloc(kt, 4);
    if (!key)
        return NULL;
    PyTuple_SET_ITEM(key, 0, Py_NewRef(fileobj));
    PyTuple_SET_ITEM(key, 1, Py_NewRef(fd));
    PyTuple_SET_ITEM(key, 2, Py_NewRef(events));
    PyTuple_SET_ITEM(key, 3, Py_NewRef(data));
    return key;
}

/* What `events & EVENT_READ` and `events & EVENT_WRITE` say, as a bit mask. */
static int events_bits(PyObject *events, int *mask)
{
    if (PyLong_Check(events)) {
        unsigned long v = PyLong_AsUnsignedLongMask(events);
        if (v == (unsigned long)-1 && PyErr_Occurred())
            return -1;
        *mask = (int)(v & 3);
        return 0;
    }
    *mask = 0;
    for (long bit = EV_R; bit <= EV_W; bit <<= 1) {
        PyObject *b = PyLong_FromLong(bit);
        PyObject *r = b ? PyNumber_And(events, b) : NULL;
        Py_XDECREF(b);
        int t = r ? PyObject_IsTrue(r) : -1;
        Py_XDECREF(r);
        if (t < 0)
            return -1;
        if (t)
            *mask |= (int)bit;
    }
    return 0;
}

/* register()'s check: `(not events) or (events & ~(EVENT_READ | EVENT_WRITE))` is invalid. */
static int events_validate(PyObject *events, int *mask)
{
    if (PyLong_Check(events)) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(events, &overflow);
        if (!overflow && v >= 1 && v <= 3) {
            *mask = (int)v;
            return 0;
        }
        if (v == -1 && PyErr_Occurred())
            return -1;
    }
    else {
        int empty = PyObject_Not(events);
        if (empty < 0)
            return -1;
        if (!empty) {
            PyObject *inv = PyLong_FromLong(~(long)(EV_R | EV_W));
            PyObject *r = inv ? PyNumber_And(events, inv) : NULL;
            Py_XDECREF(inv);
            int t = r ? PyObject_IsTrue(r) : -1;
            Py_XDECREF(r);
            if (t < 0)
                return -1;
            if (!t)
                return events_bits(events, mask);
        }
    }
    PyErr_Format(PyExc_ValueError, "Invalid events: %R", events);
    return -1;
}

/* `a != b`, as Python says it (both exact ints: no Python code can run). */
static int objects_differ(PyObject *a, PyObject *b)
{
    if (PyLong_CheckExact(a) && PyLong_CheckExact(b))
        return PyObject_RichCompareBool(a, b, Py_NE);
    PyObject *r = PyObject_RichCompare(a, b, Py_NE);
    if (!r)
        return -1;
    int t = PyObject_IsTrue(r);
    Py_DECREF(r);
    return t;
}

/* The C value of a validated fd object: LONG_MAX stands for "does not fit". */
static long fd_value(PyObject *fdobj)
{
    int overflow;
    long v = PyLong_AsLongAndOverflow(fdobj, &overflow);
    if (overflow > 0)
        return LONG_MAX;
    return v;
}

/* selectors._fileobj_to_fd: a new reference to the fd as an exact int (the
 * key of fd_to_key: looking it up runs no Python code), and its value. */
static int fileobj_to_fd(cc_state *st, PyObject *fileobj, PyObject **fdobj, long *fd)
{
    PyObject *f;
    if (PyLong_CheckExact(fileobj)) {
        f = Py_NewRef(fileobj);
    }
    else if (PyLong_Check(fileobj)) {
        /* An int subclass: its value as an exact int, without calling any of
         * its methods, so that no __hash__ or __eq__ runs in our dict. */
        f = PyLong_Type.tp_as_number->nb_int(fileobj);
        if (!f)
            return -1;
    }
    else {
        if (state_gone(st->str_fileno))
            return -1;
        PyObject *r = PyObject_CallMethodNoArgs(fileobj, st->str_fileno);
        f = r ? PyNumber_Long(r) : NULL;
        Py_XDECREF(r);
        if (!f) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError) || PyErr_ExceptionMatches(PyExc_TypeError) ||
                PyErr_ExceptionMatches(PyExc_ValueError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "Invalid file object: %R", fileobj);
            }
            return -1;
        }
    }
    int overflow;
    long v = PyLong_AsLongAndOverflow(f, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        Py_DECREF(f);
        return -1;
    }
    if (overflow < 0 || (!overflow && v < 0)) {
        PyErr_Format(PyExc_ValueError, "Invalid file descriptor: %S", f);
        Py_DECREF(f);
        return -1;
    }
    *fdobj = f;
    *fd = overflow > 0 ? LONG_MAX : v;
    return 0;
}

/* selectors._BaseSelectorImpl._fileobj_lookup: _fileobj_to_fd, falling back
 * to the registered key whose fileobj *is* this object (a closed socket). */
static int fileobj_lookup(SelectorObject *self, PyObject *fileobj, PyObject **fdobj, long *fd)
{
    if (fileobj_to_fd(self->st, fileobj, fdobj, fd) == 0)
        return 0;
    if (!PyErr_ExceptionMatches(PyExc_ValueError))
        return -1;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(self->fd_to_key, &pos, &k, &v)) {
        if (KEY_FILEOBJ(v) == fileobj) {
            PyErr_Clear();
            *fdobj = Py_NewRef(k);
            *fd = fd_value(*fdobj);
            return 0;
        }
    }
    return -1;
}

/* The registered key for fd (borrowed), NULL if none (error set only on failure). */
static PyObject *entry_key(SelectorObject *self, PyObject *fdobj, long fd)
{
    if (fd < self->table_cap)
        return self->table[fd].key;
    if (fd < TABLE_MAX)
        return NULL;
    return PyDict_GetItemWithError(self->fd_to_key, fdobj);
}

/* As entry_key, from the fd the kernel reported, with the registered bits. */
static PyObject *ready_key(SelectorObject *self, long fd, int *mask)
{
    if (fd < self->table_cap) {
        *mask = self->table[fd].mask;
        return self->table[fd].key;
    }
    if (fd < TABLE_MAX)
        return NULL;
    PyObject *fdobj = PyLong_FromLong(fd);
    if (!fdobj)
        return NULL;
    PyObject *key = PyDict_GetItemWithError(self->fd_to_key, fdobj);
    Py_DECREF(fdobj);
    if (key && events_bits(KEY_EVENTS(key), mask) < 0)
        return NULL;
    return key;
}

static PyObject *not_registered(PyObject *fileobj)
{
    PyObject *msg = PyUnicode_FromFormat("%R is not registered", fileobj);
    if (msg) {
        PyErr_SetObject(PyExc_KeyError, msg);
        Py_DECREF(msg);
    }
    return NULL;
}

int cc_sel_kfd(SelectorObject *self)
{
    if (self->kfd >= 0)
        return self->kfd;
    PyErr_SetString(PyExc_ValueError, self->backend == B_EPOLL ? "I/O operation on closed epoll object"
                                                               : "I/O operation on closed kqueue object");
    return -1;
}

/* ======================================================= bookkeeping */

/* Point fd's entry at another key (or none). The cached result tuple names
 * the old key, so it goes; dropping it runs no code, because whoever calls
 * this still holds the old key (the dict or a local reference). */
static void entry_set(SelectorObject *self, long fd, PyObject *key, int mask)
{
    sel_entry *e = &self->table[fd];
    e->key = key;
    e->mask = mask;
    Py_CLEAR(e->ready);
}

/* Make room so that adding fd cannot fail afterwards. */
static int reserve(SelectorObject *self, long fd)
{
    if (fd < TABLE_MAX && fd >= self->table_cap) {
        Py_ssize_t cap = self->table_cap ? self->table_cap : 64;
        while (cap <= fd)
            cap *= 2;
        if (cap > TABLE_MAX)
            cap = TABLE_MAX;
        sel_entry *t = PyMem_Realloc(self->table, (size_t)cap * sizeof(sel_entry));
        if (!t) {
            PyErr_NoMemory();
            return -1;
        }
        memset(t + self->table_cap, 0, (size_t)(cap - self->table_cap) * sizeof(sel_entry));
        self->table = t;
        self->table_cap = cap;
    }
    if (self->backend == B_POLL && self->npfds == self->pfds_cap) {
        Py_ssize_t cap = self->pfds_cap ? self->pfds_cap * 2 : 64;
        struct pollfd *p = PyMem_Realloc(self->pfds, (size_t)cap * sizeof(struct pollfd));
        if (!p) {
            PyErr_NoMemory();
            return -1;
        }
        self->pfds = p;
        self->pfds_cap = cap;
    }
    return 0;
}

static short poll_bits(int mask)
{
    return (short)(((mask & EV_R) ? POLLIN : 0) | ((mask & EV_W) ? POLLOUT : 0));
}

static Py_ssize_t poll_slot(SelectorObject *self, long fd)
{
    if (fd < self->table_cap)
        return self->table[fd].slot;
    for (Py_ssize_t i = 0; i < self->npfds; i++)
        if (self->pfds[i].fd == fd)
            return i;
    return -1;
}

/* Record a registration whose system call (if any) succeeded; cannot fail after reserve(). */
static void book_add(SelectorObject *self, long fd, PyObject *key, int mask)
{
    if (fd < self->table_cap) {
        entry_set(self, fd, key, mask);
    }
    switch (self->backend) {
    case B_POLL: {
        Py_ssize_t i = self->npfds++;
        self->pfds[i].fd = (int)fd;
        self->pfds[i].events = poll_bits(mask);
        self->pfds[i].revents = 0;
        if (fd < self->table_cap)
            self->table[fd].slot = (int)i;
        break;
    }
    case B_SELECT:
        if (fd > INT_MAX)
            self->n_overflow++;
        else if (fd >= FD_SETSIZE)
            self->n_out_of_range++;
        else {
            if (mask & EV_R)
                FD_SET((int)fd, &self->rset);
            if (mask & EV_W)
                FD_SET((int)fd, &self->wset);
            if (fd > self->maxfd)
                self->maxfd = (int)fd;
        }
        break;
    }
}

/* Registered bits changed (poll-like modify): the table and the poll set. */
static void book_set_mask(SelectorObject *self, long fd, int mask)
{
    if (fd < self->table_cap) {
        self->table[fd].mask = mask;
        Py_CLEAR(self->table[fd].ready);
    }
    if (self->backend == B_POLL) {
        Py_ssize_t i = poll_slot(self, fd);
        if (i >= 0)
            self->pfds[i].events = poll_bits(mask);
    }
}

static void book_del(SelectorObject *self, long fd)
{
    if (fd < self->table_cap) {
        entry_set(self, fd, NULL, 0);
    }
    switch (self->backend) {
    case B_POLL: {
        Py_ssize_t i = poll_slot(self, fd);
        if (i >= 0) {
            Py_ssize_t last = --self->npfds;
            if (i != last) {
                self->pfds[i] = self->pfds[last];
                long moved = self->pfds[i].fd;
                if (moved < self->table_cap)
                    self->table[moved].slot = (int)i;
            }
        }
        break;
    }
    case B_SELECT:
        if (fd > INT_MAX)
            self->n_overflow--;
        else if (fd >= FD_SETSIZE)
            self->n_out_of_range--;
        else {
            FD_CLR((int)fd, &self->rset);
            FD_CLR((int)fd, &self->wset);
            while (self->maxfd >= 0 && !FD_ISSET(self->maxfd, &self->rset) && !FD_ISSET(self->maxfd, &self->wset))
                self->maxfd--;
        }
        break;
    }
}

/* Forget every registration (close, GC clear): state first, references after. */
static void book_reset(SelectorObject *self)
{
    for (Py_ssize_t i = 0; i < self->table_cap; i++)
        Py_CLEAR(self->table[i].ready);
    PyMem_Free(self->table);
    self->table = NULL;
    self->table_cap = 0;
    self->npfds = 0;
    FD_ZERO(&self->rset);
    FD_ZERO(&self->wset);
    self->maxfd = -1;
    self->n_out_of_range = self->n_overflow = 0;
    self->kq_filters = 0;
}

/* =================================================== kernel interest */

/* The system call of register(): 0, or -1 with an exception set. */
static int kernel_add(SelectorObject *self, long fd, int mask)
{
    switch (self->backend) {
#ifdef CC_HAVE_EPOLL
    case B_EPOLL:
        return cc_sel_epoll_add(self, fd, mask);
#endif
#ifdef CC_HAVE_KQUEUE
    case B_KQUEUE:
        return cc_sel_kqueue_add(self, fd, mask);
#endif
    default:
        return 0; /* select and poll keep their interest sets in user space */
    }
}

/* The system call of unregister(); errors are ignored as the stdlib does (a closed fd). */
static void kernel_del(SelectorObject *self, long fd, int mask)
{
    switch (self->backend) {
#ifdef CC_HAVE_EPOLL
    case B_EPOLL:
        cc_sel_epoll_del(self, fd);
        break;
#endif
#ifdef CC_HAVE_KQUEUE
    case B_KQUEUE:
        cc_sel_kqueue_del(self, fd, mask);
        break;
#endif
    default:
        break;
    }
}

/* The system call of a poll-like modify(): 0, or -1 with an exception set. */
static int kernel_mod(SelectorObject *self, long fd, int mask)
{
#ifdef CC_HAVE_EPOLL
    if (self->backend == B_EPOLL)
        return cc_sel_epoll_mod(self, fd, mask);
#endif
    return 0;
}

/* ============================================================ methods */

static PyObject *sel_register_impl(SelectorObject *self, PyObject *fileobj, PyObject *events, PyObject *data)
{
    int mask;
    PyObject *fdobj, *key;
    long fd;
    if (events_validate(events, &mask) < 0 || fileobj_lookup(self, fileobj, &fdobj, &fd) < 0)
        return NULL;
    /* The key first: allocating it may run the GC and so any __del__, which
     * may touch this selector. From the check below to the end, no code runs. */
    key = key_new(self->st, fileobj, PyLong_Check(fileobj) ? fileobj : fdobj, events, data);
    if (!key)
        goto fail;
    PyObject *existing = entry_key(self, fdobj, fd);
    if (existing || PyErr_Occurred()) {
        if (existing)
            PyErr_Format(PyExc_KeyError, "%R (FD %S) is already registered", fileobj, fdobj);
        goto fail_key;
    }
    if (self->backend != B_SELECT && fd > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C int");
        goto fail_key;
    }
    if (reserve(self, fd) < 0 || kernel_add(self, fd, mask) < 0)
        goto fail_key;
    if (PyDict_SetItem(self->fd_to_key, fdobj, key) < 0) {
        kernel_del(self, fd, mask);
        goto fail_key;
    }
    book_add(self, fd, key, mask);
    Py_DECREF(fdobj);
    return key; /* the dict holds one reference, the caller gets this one */
fail_key:
    Py_DECREF(key);
fail:
    Py_DECREF(fdobj);
    return NULL;
}

/* Remove fd's registration; returns the key (new reference), or NULL with an
 * exception when Python code run meanwhile unregistered it. kernel: also the
 * system call. */
static PyObject *remove_key(SelectorObject *self, PyObject *fdobj, long fd, PyObject *key, int kernel)
{
    int mask = 0;
    Py_INCREF(key);
    if (fd < self->table_cap)
        mask = self->table[fd].mask;
    else {
        if (events_bits(KEY_EVENTS(key), &mask) < 0)
            PyErr_Clear(); /* only kqueue needs it, for its bookkeeping */
        /* That ran the events' own `&`: the key must still be registered. */
        PyObject *now = entry_key(self, fdobj, fd);
        if (now != key) {
            if (!PyErr_Occurred())
                not_registered(KEY_FILEOBJ(key));
            Py_DECREF(key);
            return NULL;
        }
    }
    book_del(self, fd);
    /* fdobj is an exact int: deleting runs no Python code, and the key
     * survives it (we hold a reference). */
    if (PyDict_DelItem(self->fd_to_key, fdobj) < 0)
        PyErr_Clear(); /* cannot happen: both structures hold it */
    if (kernel)
        kernel_del(self, fd, mask);
    return key;
}

static PyObject *sel_unregister_impl(SelectorObject *self, PyObject *fileobj)
{
    PyObject *fdobj;
    long fd;
    if (fileobj_lookup(self, fileobj, &fdobj, &fd) < 0)
        return NULL;
    PyObject *key = entry_key(self, fdobj, fd);
    PyObject *r = key ? remove_key(self, fdobj, fd, key, 1) : PyErr_Occurred() ? NULL : not_registered(fileobj);
    Py_DECREF(fdobj);
    return r;
}

static const char *const register_kwlist[] = {"fileobj", "events", "data", NULL};

static PyObject *sel_register(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[3];
    if (cc_parse_args("register", args, nargs, kwnames, register_kwlist, 3, 2, a) < 0)
        return NULL;
    PyObject *r;
    Py_BEGIN_CRITICAL_SECTION(self);
    r = sel_register_impl(self, a[0], a[1], a[2] ? a[2] : Py_None);
    Py_END_CRITICAL_SECTION();
    return r;
}

static PyObject *sel_unregister(SelectorObject *self, PyObject *fileobj)
{
    PyObject *r;
    Py_BEGIN_CRITICAL_SECTION(self);
    r = sel_unregister_impl(self, fileobj);
    Py_END_CRITICAL_SECTION();
    return r;
}

static int is_exact_selector(SelectorObject *self)
{
    PyTypeObject *t = Py_TYPE(self);
    cc_state *st = self->st;
    return t == st->SelectSelector_type || t == st->PollSelector_type || t == st->EpollSelector_type ||
           t == st->KqueueSelector_type;
}

/* The key must still be the one we looked up after Python code ran (a __ne__). */
static int check_unchanged(SelectorObject *self, PyObject *fdobj, long fd, PyObject *key)
{
    PyObject *now = entry_key(self, fdobj, fd);
    if (now == key)
        return 0;
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "selector changed during modify()");
    return -1;
}

/* modify()'s new SelectorKey(fileobj, fd, events, data) in place of key, whose
 * registered bits the caller has already brought up to date. Allocating may run
 * code (the GC, a __del__), so the key must still be current afterwards. */
static PyObject *replace_key(SelectorObject *self, PyObject *fdobj, long fd, PyObject *key, PyObject *events,
                             PyObject *data)
{
    PyObject *nk = key_new(self->st, KEY_FILEOBJ(key), KEY_FD(key), events, data);
    if (!nk || check_unchanged(self, fdobj, fd, key) < 0 || PyDict_SetItem(self->fd_to_key, fdobj, nk) < 0) {
        Py_XDECREF(nk);
        return NULL;
    }
    if (fd < self->table_cap)
        entry_set(self, fd, nk, self->table[fd].mask);
    return nk; /* the dict took its own reference */
}

/* _BaseSelectorImpl.modify (select, kqueue): unregister + register when the
 * events change, a new key with the same events when only the data does. */
static PyObject *modify_base(SelectorObject *self, PyObject *fileobj, PyObject *events, PyObject *data,
                             PyObject *fdobj, long fd, PyObject *key)
{
    int ne = objects_differ(events, KEY_EVENTS(key));
    if (ne < 0)
        return NULL;
    if (ne) {
        if (is_exact_selector(self)) {
            PyObject *old = sel_unregister_impl(self, fileobj);
            if (!old)
                return NULL;
            Py_DECREF(old);
            return sel_register_impl(self, fileobj, events, data);
        }
        /* A subclass may override them: call through the instance, as the stdlib does. */
        PyObject *old = PyObject_CallMethod((PyObject *)self, "unregister", "O", fileobj);
        if (!old)
            return NULL;
        Py_DECREF(old);
        return PyObject_CallMethod((PyObject *)self, "register", "OOO", fileobj, events, data);
    }
    int dne = objects_differ(data, KEY_DATA(key));
    if (dne < 0)
        return NULL;
    if (!dne)
        return Py_NewRef(key);
    return replace_key(self, fdobj, fd, key, KEY_EVENTS(key), data);
}

/* _PollLikeSelector.modify (poll, epoll): one system call when the events
 * change (a failure unregisters the key, as the stdlib does), none otherwise. */
static PyObject *modify_poll_like(SelectorObject *self, PyObject *fileobj, PyObject *events, PyObject *data,
                                  PyObject *fdobj, long fd, PyObject *key)
{
    int mask = 0;
    int ne = objects_differ(events, KEY_EVENTS(key));
    if (ne < 0 || (ne && events_bits(events, &mask) < 0))
        return NULL;
    if (ne) {
        if (check_unchanged(self, fdobj, fd, key) < 0)
            return NULL;
        if (kernel_mod(self, fd, mask) < 0) {
            /* As the stdlib: the key goes, the error stays (kept across any __del__). */
            PyObject *exc_type, *exc, *tb;
            PyErr_Fetch(&exc_type, &exc, &tb);
            Py_XDECREF(remove_key(self, fdobj, fd, key, 0)); /* the table is authoritative: no code runs */
            PyErr_Restore(exc_type, exc, tb);
            return NULL;
        }
        book_set_mask(self, fd, mask);
    }
    int dne = objects_differ(data, KEY_DATA(key));
    if (dne < 0)
        return NULL;
    if (!ne && !dne)
        return Py_NewRef(key);
    return replace_key(self, fdobj, fd, key, events, data);
}

static PyObject *sel_modify(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[3];
    if (cc_parse_args("modify", args, nargs, kwnames, register_kwlist, 3, 2, a) < 0)
        return NULL;
    PyObject *fileobj = a[0], *events = a[1], *data = a[2] ? a[2] : Py_None;
    PyObject *fdobj;
    long fd;
    if (fileobj_lookup(self, fileobj, &fdobj, &fd) < 0)
        return NULL;
    PyObject *key = entry_key(self, fdobj, fd), *r = NULL;
    if (!key) {
        if (!PyErr_Occurred())
            not_registered(fileobj);
        Py_DECREF(fdobj);
        return NULL;
    }
    Py_INCREF(key); /* a __ne__ or __del__ may unregister it meanwhile */
    Py_BEGIN_CRITICAL_SECTION(self);
    if (self->backend == B_POLL || self->backend == B_EPOLL)
        r = modify_poll_like(self, fileobj, events, data, fdobj, fd, key);
    else
        r = modify_base(self, fileobj, events, data, fdobj, fd, key);
    Py_END_CRITICAL_SECTION();
    Py_DECREF(key);
    Py_DECREF(fdobj);
    return r;
}

/* _SelectorMapping.__getitem__: the key registered for fileobj, or KeyError. */
static PyObject *lookup_key(SelectorObject *self, PyObject *fileobj)
{
    if (PyLong_CheckExact(fileobj)) { /* asyncio's get_key(fd) */
        long fd = PyLong_AsLong(fileobj);
        if (fd >= 0 && fd < self->table_cap) {
            PyObject *key = self->table[fd].key;
            return key ? Py_NewRef(key) : not_registered(fileobj);
        }
        if (fd == -1 && PyErr_Occurred())
            PyErr_Clear();
    }
    PyObject *fdobj;
    long fd;
    if (fileobj_lookup(self, fileobj, &fdobj, &fd) < 0) {
        if (PyErr_ExceptionMatches(PyExc_KeyError)) {
            PyErr_Clear();
            return not_registered(fileobj);
        }
        return NULL;
    }
    PyObject *key = entry_key(self, fdobj, fd);
    Py_DECREF(fdobj);
    if (key)
        return Py_NewRef(key);
    return PyErr_Occurred() ? NULL : not_registered(fileobj);
}

static PyObject *sel_get_key_impl(SelectorObject *self, PyObject *fileobj)
{
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "Selector is closed");
        return NULL;
    }
    return lookup_key(self, fileobj);
}
CC_CS_O(sel_get_key, SelectorObject)

static PyObject *sel_get_map_impl(SelectorObject *self)
{
    if (self->closed)
        Py_RETURN_NONE;
    if (!self->map) {
        if (state_gone(self->st->SelectorMapping_type))
            return NULL;
        MappingObject *m = PyObject_GC_New(MappingObject, self->st->SelectorMapping_type);
        if (!m)
            return NULL;
        m->sel = (SelectorObject *)Py_NewRef(self);
        PyObject_GC_Track(m);
        if (self->map || self->closed) /* a __del__ run by the allocation got there first */
            Py_DECREF(m);
        else
            self->map = (PyObject *)m;
        if (!self->map)
            Py_RETURN_NONE;
    }
    return Py_NewRef(self->map);
}
CC_CS_NOARGS(sel_get_map, SelectorObject)

static PyObject *sel_close_impl(SelectorObject *self)
{
    if (self->kfd >= 0) {
        int fd = self->kfd;
        self->kfd = -1;
        close(fd);
    }
    self->closed = 1;
    book_reset(self);
    if (self->buf) {
        PyMem_RawFree(self->buf);
        self->buf = NULL;
        self->buf_bytes = 0;
    }
    PyObject *map = self->map;
    self->map = NULL;
    PyDict_Clear(self->fd_to_key); /* may run __del__s: the state is consistent by now */
    Py_XDECREF(map);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(sel_close, SelectorObject)

static PyObject *sel_fileno(SelectorObject *self, PyObject *Py_UNUSED(ignored))
{
    int kfd = cc_sel_kfd(self);
    return kfd < 0 ? NULL : PyLong_FromLong(kfd);
}

static PyObject *sel_enter(SelectorObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

static PyObject *sel_exit(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (is_exact_selector(self))
        return sel_close(self, NULL);
    return PyObject_CallMethod((PyObject *)self, "close", NULL);
}

/* -------------------------------------------------------------- select */

/* Borrow the reusable buffer (at least `bytes`), or a fresh one if it is
 * already borrowed by a select() in another thread or too small. */
void *cc_sel_buf_take(SelectorObject *self, size_t bytes, size_t *got)
{
    if (self->buf && self->buf_bytes >= bytes) {
        void *b = self->buf;
        *got = self->buf_bytes;
        self->buf = NULL;
        return b;
    }
    size_t n = bytes < 4096 ? 4096 : bytes + bytes / 2;
    void *b = PyMem_RawMalloc(n);
    if (!b) {
        PyErr_NoMemory();
        return NULL;
    }
    *got = n;
    return b;
}

void cc_sel_buf_give_back(SelectorObject *self, void *b, size_t n)
{
    if (self->buf && self->buf_bytes >= n) {
        PyMem_RawFree(b);
        return;
    }
    PyMem_RawFree(self->buf);
    self->buf = b;
    self->buf_bytes = n;
}

/* Timeout of the poll-like selectors: -1 blocks, else milliseconds rounded up. */
int cc_sel_timeout_ms(PyObject *timeout, int64_t *ms)
{
    if (timeout == Py_None) {
        *ms = -1;
        return 0;
    }
    double d;
    if (PyFloat_CheckExact(timeout)) {
        d = PyFloat_AS_DOUBLE(timeout);
        if (d <= 0) {
            *ms = 0;
            return 0;
        }
    }
    else {
        /* `timeout <= 0`, then `timeout * 1e3`, as Python evaluates them (a
         * huge negative int is 0, a Decimal is the product's TypeError). */
        PyObject *zero = PyLong_FromLong(0);
        int le = zero ? PyObject_RichCompareBool(timeout, zero, Py_LE) : -1;
        Py_XDECREF(zero);
        if (le < 0)
            return -1;
        if (le) {
            *ms = 0;
            return 0;
        }
        PyObject *thousand = PyFloat_FromDouble(1e3);
        PyObject *product = thousand ? PyNumber_Multiply(timeout, thousand) : NULL;
        Py_XDECREF(thousand);
        if (!product)
            return -1;
        d = PyFloat_AsDouble(product) / 1e3;
        Py_DECREF(product);
        if (d == -1.0 / 1e3 && PyErr_Occurred())
            return -1;
    }
    if (isnan(d)) {
        PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
        return -1;
    }
    if (isinf(d)) {
        PyErr_SetString(PyExc_OverflowError, "cannot convert float infinity to integer");
        return -1;
    }
    double m = ceil(d * 1e3);
    if (m > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "timeout is too large");
        return -1;
    }
    *ms = (int64_t)m;
    return 0;
}

/* Timeout of SelectSelector and KqueueSelector: max(timeout, 0) in nanoseconds, -1 blocks.
 * Not merged with cc_sel_timeout_ms: the stdlib compares with 0 the other way round
 * (`0 > timeout` in max() against `timeout <= 0`, which a user type can tell apart)
 * and its errors differ. */
int cc_sel_timeout_ns(PyObject *timeout, int64_t *ns)
{
    if (timeout == Py_None) {
        *ns = -1;
        return 0;
    }
    double d;
    if (PyFloat_CheckExact(timeout) || PyLong_CheckExact(timeout)) {
        d = PyFloat_CheckExact(timeout) ? PyFloat_AS_DOUBLE(timeout) : PyLong_AsDouble(timeout);
        if (d == -1.0 && PyErr_Occurred()) {
            int overflow = 0;
            if (PyLong_Check(timeout) && PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                (void)PyLong_AsLongAndOverflow(timeout, &overflow);
            }
            if (overflow > 0)
                PyErr_SetString(PyExc_OverflowError, "timestamp too large to convert to C _PyTime_t");
            if (overflow >= 0)
                return -1;
            d = 0; /* max(-huge, 0) */
        }
    }
    else {
        PyObject *zero = PyLong_FromLong(0);
        int gt = zero ? PyObject_RichCompareBool(zero, timeout, Py_GT) : -1;
        Py_XDECREF(zero);
        if (gt < 0)
            return -1;
        if (gt)
            d = 0;
#if PY_VERSION_HEX < 0x030A0000
        else if (!PyFloat_Check(timeout) && !PyIndex_Check(timeout) && Py_TYPE(timeout)->tp_as_number &&
                 Py_TYPE(timeout)->tp_as_number->nb_int) {
            /* Before 3.10 the stdlib's conversion also takes __int__ (a Decimal, truncated). */
            PyObject *i = Py_TYPE(timeout)->tp_as_number->nb_int(timeout);
            d = i && PyLong_Check(i) ? PyLong_AsDouble(i) : -1.0;
            if (i && !PyLong_Check(i))
                PyErr_SetString(PyExc_TypeError, "__int__ returned non-int");
            Py_XDECREF(i);
            if (d == -1.0 && PyErr_Occurred())
                return -1;
        }
#endif
        else if (!PyFloat_Check(timeout) && !PyIndex_Check(timeout)) {
            /* select.select()/kqueue.control() take a float or an int, nothing else. */
            PyErr_Format(PyExc_TypeError, "timeout must be a float or an integer, not %.200s",
                         Py_TYPE(timeout)->tp_name);
            return -1;
        }
        else if (PyFloat_Check(timeout))
            d = PyFloat_AsDouble(timeout);
        else {
            PyObject *i = PyNumber_Index(timeout);
            d = i ? PyLong_AsDouble(i) : -1.0;
            Py_XDECREF(i);
            if (d == -1.0 && PyErr_Occurred())
                return -1;
        }
    }
    if (isnan(d)) {
        PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
        return -1;
    }
    if (d < 0)
        d = 0;
    double n = ceil(d * 1e9);
    if (n >= 9.2e18) {
        PyErr_SetString(PyExc_OverflowError, "timestamp out of range for platform time_t");
        return -1;
    }
    *ns = (int64_t)n;
    return 0;
}

int cc_sel_wait_again(int err, int64_t deadline, int64_t unit_ns, int64_t *timeout, int *n)
{
    if (err != EINTR) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return 0;
    }
    if (PyErr_CheckSignals() < 0)
        return 0;
    if (*timeout > 0) {
        int64_t left = deadline - cc_monotonic_ns();
        if (left <= 0) {
            *n = 0;
            return 0;
        }
        *timeout = (left + unit_ns - 1) / unit_ns;
    }
    return 1;
}

sel_ready cc_sel_ready_new(int n)
{
    sel_ready ready = {NULL, 0};
    if (n >= 0)
        ready.list = PyList_New(n);
    return ready;
}

/* The (key, events) pair of a reported fd, NULL if it is no longer registered
 * (an exception is set only on failure). A fd that stays ready reports the
 * same pair call after call: the tuple is cached in its table entry and
 * shared (it is immutable). */
static PyObject *ready_pair(SelectorObject *self, long fd, int events)
{
    PyObject *t;
    if (fd < self->table_cap) {
        sel_entry *e = &self->table[fd];
        if (!e->key)
            return NULL;
        int ev = events & e->mask;
        if (e->ready && e->ready_ev == ev) {
            t = Py_NewRef(e->ready);
        }
        else {
            /* Allocating may run the GC, and any __del__ may register or
             * unregister (even move the table): look at the entry again. */
            t = PyTuple_New(2);
            if (!t)
                return NULL;
            if (fd >= self->table_cap || !self->table[fd].key) {
                Py_DECREF(t);
                return NULL;
            }
            e = &self->table[fd];
            ev = events & e->mask;
            PyTuple_SET_ITEM(t, 0, Py_NewRef(e->key));
            PyTuple_SET_ITEM(t, 1, PyLong_FromLong(ev)); /* 0..3: cached small ints, cannot fail */
            Py_XSETREF(e->ready, Py_NewRef(t));
            e->ready_ev = ev;
        }
    }
    else {
        int mask = 0;
        PyObject *key = ready_key(self, fd, &mask);
        if (!key)
            return NULL;
        Py_INCREF(key); /* borrowed from the dict, which code run by an allocation may change */
        PyObject *evobj = PyLong_FromLong(events & mask);
        t = evobj ? PyTuple_New(2) : NULL;
        if (!t) {
            Py_XDECREF(evobj);
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(t, 0, key);
        PyTuple_SET_ITEM(t, 1, evobj);
    }
    return t;
}

PyObject *cc_sel_ready_finish(sel_ready *ready)
{
    if (ready->list && ready->len < PyList_GET_SIZE(ready->list))
        Py_SET_SIZE(ready->list, ready->len); /* the slots past len are still NULL */
    return ready->list;
}

/* Drop the list once an exception is set: select() will return NULL. */
static void ready_fail(sel_ready *ready)
{
    PyObject *list = cc_sel_ready_finish(ready);
    ready->list = NULL;
    Py_DECREF(list);
}

void cc_sel_ready_add(SelectorObject *self, sel_ready *ready, long fd, int events)
{
    PyObject *t = ready_pair(self, fd, events);
    if (!t) {
        if (PyErr_Occurred())
            ready_fail(ready);
        return;
    }
    if (ready->len < PyList_GET_SIZE(ready->list)) {
        PyList_SET_ITEM(ready->list, ready->len, t);
        ready->len++;
        return;
    }
    int r = PyList_Append(ready->list, t);
    Py_DECREF(t);
    if (r < 0)
        ready_fail(ready);
    else
        ready->len++;
}

static const char *const select_kwlist[] = {"timeout", NULL};

static PyObject *sel_select(SelectorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *timeout = Py_None;
    if (nargs == 1 && !kwnames)
        timeout = args[0];
    else if (nargs || kwnames) {
        if (cc_parse_args("select", args, nargs, kwnames, select_kwlist, 1, 0, &timeout) < 0)
            return NULL;
        if (!timeout)
            timeout = Py_None;
    }
    PyObject *r;
    /* The system call runs with the GIL released, which suspends the section. */
    Py_BEGIN_CRITICAL_SECTION(self);
    switch (self->backend) {
#ifdef CC_HAVE_EPOLL
    case B_EPOLL:
        r = cc_sel_select_epoll(self, timeout);
        break;
#endif
#ifdef CC_HAVE_KQUEUE
    case B_KQUEUE:
        r = cc_sel_select_kqueue(self, timeout);
        break;
#endif
    case B_POLL:
        r = cc_sel_select_poll(self, timeout);
        break;
    default:
        r = cc_sel_select_select(self, timeout);
        break;
    }
    Py_END_CRITICAL_SECTION();
    return r;
}

/* ==================================================== type machinery */

static PyObject *sel_new(PyTypeObject *type, int backend)
{
    cc_state *st = cc_state_of_type(type);
    if (!st)
        return NULL;
    SelectorObject *self = (SelectorObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->st = st;
    self->backend = backend;
    self->kfd = -1;
    self->maxfd = -1;
    FD_ZERO(&self->rset);
    FD_ZERO(&self->wset);
    self->fd_to_key = PyDict_New();
    if (!self->fd_to_key) {
        Py_DECREF(self);
        return NULL;
    }
#ifdef CC_HAVE_EPOLL
    if (backend == B_EPOLL && cc_sel_epoll_open(self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
#endif
#ifdef CC_HAVE_KQUEUE
    if (backend == B_KQUEUE && cc_sel_kqueue_open(self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
#endif
    return (PyObject *)self;
}

/* Arguments are left to __init__, so that subclasses may take their own. */
static PyObject *select_new(PyTypeObject *t, PyObject *a, PyObject *k) { return sel_new(t, B_SELECT); }
static PyObject *poll_new(PyTypeObject *t, PyObject *a, PyObject *k) { return sel_new(t, B_POLL); }
#ifdef CC_HAVE_EPOLL
static PyObject *epoll_new(PyTypeObject *t, PyObject *a, PyObject *k) { return sel_new(t, B_EPOLL); }
#endif
#ifdef CC_HAVE_KQUEUE
static PyObject *kqueue_new(PyTypeObject *t, PyObject *a, PyObject *k) { return sel_new(t, B_KQUEUE); }
#endif

static int sel_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    if (Py_TYPE(self)->tp_init == sel_init && (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds)))) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments", Py_TYPE(self)->tp_name);
        return -1;
    }
    return 0;
}

static int sel_traverse(SelectorObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fd_to_key);
    for (Py_ssize_t i = 0; i < self->table_cap; i++)
        Py_VISIT(self->table[i].ready);
    Py_VISIT(self->map);
    Py_VISIT(self->dict);
    return 0;
}

static int sel_clear(SelectorObject *self)
{
    /* The table borrows from fd_to_key: forget it before the keys go. */
    book_reset(self);
    if (self->fd_to_key)
        PyDict_Clear(self->fd_to_key);
    Py_CLEAR(self->map);
    Py_CLEAR(self->dict);
    return 0;
}

static void sel_dealloc(SelectorObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (self->kfd >= 0)
        close(self->kfd);
    book_reset(self);
    Py_CLEAR(self->map);
    Py_CLEAR(self->dict);
    Py_CLEAR(self->fd_to_key);
    PyMem_Free(self->pfds);
    PyMem_RawFree(self->buf);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *sel_repr(SelectorObject *self)
{
    return PyUnicode_FromFormat("<%s object at %p>", Py_TYPE(self)->tp_name, self);
}

#define SELECTOR_METHODS                                                                                         \
    {"register", (PyCFunction)(void (*)(void))sel_register, METH_FASTCALL | METH_KEYWORDS,                       \
     "register(fileobj, events, data=None) -> SelectorKey"},                                                     \
        {"unregister", (PyCFunction)sel_unregister, METH_O, "unregister(fileobj) -> SelectorKey"},               \
        {"modify", (PyCFunction)(void (*)(void))sel_modify, METH_FASTCALL | METH_KEYWORDS,                       \
         "modify(fileobj, events, data=None) -> SelectorKey"},                                                   \
        {"select", (PyCFunction)(void (*)(void))sel_select, METH_FASTCALL | METH_KEYWORDS,                       \
         "select(timeout=None) -> list of (key, events)"},                                                       \
        {"close", (PyCFunction)sel_close, METH_NOARGS, "Close the selector."},                                  \
        {"get_key", (PyCFunction)sel_get_key, METH_O, "get_key(fileobj) -> SelectorKey"},                        \
        {"get_map", (PyCFunction)sel_get_map, METH_NOARGS, "A mapping of file descriptors to keys (None once closed)."}, \
        {"__enter__", (PyCFunction)sel_enter, METH_NOARGS, NULL},                                                \
        {"__exit__", (PyCFunction)(void (*)(void))sel_exit, METH_FASTCALL, NULL}

static PyMethodDef sel_methods[] = {
    SELECTOR_METHODS,
    {NULL, NULL},
};

static PyMethodDef sel_fd_methods[] = {
    SELECTOR_METHODS,
    {"fileno", (PyCFunction)sel_fileno, METH_NOARGS, "The epoll / kqueue file descriptor."},
    {NULL, NULL},
};

static PyMemberDef sel_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(SelectorObject, dict), READONLY},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(SelectorObject, weakreflist), READONLY},
    {NULL},
};

#define SELECTOR_SLOTS                                                                                           \
    {Py_tp_init, sel_init}, {Py_tp_dealloc, sel_dealloc}, {Py_tp_traverse, sel_traverse},                        \
        {Py_tp_clear, sel_clear}, {Py_tp_repr, sel_repr}, {Py_tp_members, sel_members}

#define SELECTOR_SPEC(cname, slotsname)                                                                          \
    {                                                                                                            \
        .name = "cconc.selectors." cname, .basicsize = sizeof(SelectorObject),                                   \
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, .slots = slotsname,              \
    }

static PyType_Slot select_slots[] = {
    SELECTOR_SLOTS,
    {Py_tp_new, select_new},
    {Py_tp_methods, sel_methods},
    {Py_tp_doc, "Select-based selector: the native counterpart of selectors.SelectSelector."},
    {0, NULL},
};
static PyType_Spec select_spec = SELECTOR_SPEC("SelectSelector", select_slots);

static PyType_Slot poll_slots[] = {
    SELECTOR_SLOTS,
    {Py_tp_new, poll_new},
    {Py_tp_methods, sel_methods},
    {Py_tp_doc, "Poll-based selector: the native counterpart of selectors.PollSelector."},
    {0, NULL},
};
static PyType_Spec poll_spec = SELECTOR_SPEC("PollSelector", poll_slots);

#ifdef CC_HAVE_EPOLL
static PyType_Slot epoll_slots[] = {
    SELECTOR_SLOTS,
    {Py_tp_new, epoll_new},
    {Py_tp_methods, sel_fd_methods},
    {Py_tp_doc, "Epoll-based selector: the native counterpart of selectors.EpollSelector."},
    {0, NULL},
};
static PyType_Spec epoll_spec = SELECTOR_SPEC("EpollSelector", epoll_slots);
#endif

#ifdef CC_HAVE_KQUEUE
static PyType_Slot kqueue_slots[] = {
    SELECTOR_SLOTS,
    {Py_tp_new, kqueue_new},
    {Py_tp_methods, sel_fd_methods},
    {Py_tp_doc, "Kqueue-based selector: the native counterpart of selectors.KqueueSelector."},
    {0, NULL},
};
static PyType_Spec kqueue_spec = SELECTOR_SPEC("KqueueSelector", kqueue_slots);
#endif

/* ============================================================ mapping */

/* selectors._SelectorMapping: a live, read-only view of a selector's keys. */

static PyObject *map_getitem_impl(MappingObject *self, PyObject *fileobj)
{
    return lookup_key(self->sel, fileobj);
}
static PyObject *map_getitem(MappingObject *self, PyObject *fileobj)
{
    PyObject *res;
    Py_BEGIN_CRITICAL_SECTION(self->sel);
    res = map_getitem_impl(self, fileobj);
    Py_END_CRITICAL_SECTION();
    return res;
}

static Py_ssize_t map_len_impl(MappingObject *self) { return PyDict_GET_SIZE(self->sel->fd_to_key); }
static Py_ssize_t map_len(MappingObject *self)
{
    Py_ssize_t res;
    Py_BEGIN_CRITICAL_SECTION(self->sel);
    res = map_len_impl(self);
    Py_END_CRITICAL_SECTION();
    return res;
}

/* Iterates key.fd of each key, as the stdlib's iteration of its fd_to_key
 * (our dict's keys are exact ints: key.fd may be an int subclass). Live, with
 * the dict's "changed size during iteration" error. */
static PyObject *map_iter_impl(MappingObject *self)
{
    if (state_gone(self->sel->st->sel_key_fd))
        return NULL;
    PyObject *view = PyObject_CallMethod(self->sel->fd_to_key, "values", NULL);
    PyObject *it = view ? PyObject_GetIter(view) : NULL;
    Py_XDECREF(view);
    if (!it)
        return NULL;
    PyObject *r = PyObject_CallFunctionObjArgs((PyObject *)&PyMap_Type, self->sel->st->sel_key_fd, it, NULL);
    Py_DECREF(it);
    return r;
}
static PyObject *map_iter(MappingObject *self)
{
    PyObject *res;
    Py_BEGIN_CRITICAL_SECTION(self->sel);
    res = map_iter_impl(self);
    Py_END_CRITICAL_SECTION();
    return res;
}

static int map_contains_impl(MappingObject *self, PyObject *fileobj)
{
    PyObject *key = map_getitem(self, fileobj);
    if (key) {
        Py_DECREF(key);
        return 1;
    }
    if (PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}
static int map_contains(MappingObject *self, PyObject *fileobj)
{
    int res;
    Py_BEGIN_CRITICAL_SECTION(self->sel);
    res = map_contains_impl(self, fileobj);
    Py_END_CRITICAL_SECTION();
    return res;
}

/* The stdlib's mapping has its own get(fileobj, ...) since 3.13, Mapping.get(key, ...) before. */
#if PY_VERSION_HEX >= 0x030D0000
static const char *const map_get_kwlist[] = {"fileobj", "default", NULL};
#else
static const char *const map_get_kwlist[] = {"key", "default", NULL};
#endif

static PyObject *map_get(MappingObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2];
    if (cc_parse_args("get", args, nargs, kwnames, map_get_kwlist, 2, 1, a) < 0)
        return NULL;
    PyObject *key = map_getitem(self, a[0]);
    if (key || !PyErr_ExceptionMatches(PyExc_KeyError))
        return key;
    PyErr_Clear();
    return Py_NewRef(a[1] ? a[1] : Py_None);
}

static PyObject *map_view(MappingObject *self, PyObject *view_type)
{
    if (state_gone(view_type))
        return NULL;
    return PyObject_CallOneArg(view_type, (PyObject *)self);
}
static PyObject *map_keys(MappingObject *self, PyObject *Py_UNUSED(i)) { return map_view(self, self->sel->st->abc_KeysView); }
static PyObject *map_items(MappingObject *self, PyObject *Py_UNUSED(i)) { return map_view(self, self->sel->st->abc_ItemsView); }
static PyObject *map_values(MappingObject *self, PyObject *Py_UNUSED(i)) { return map_view(self, self->sel->st->abc_ValuesView); }

/* Mapping.__eq__: dict(self.items()) == dict(other.items()) for any Mapping. */
static PyObject *map_richcompare(MappingObject *self, PyObject *other, int op)
{
    if (op != Py_EQ && op != Py_NE)
        Py_RETURN_NOTIMPLEMENTED;
    if (state_gone(self->sel->st->abc_Mapping) || state_gone(self->sel->st->str_items))
        return NULL;
    int is_map = PyObject_IsInstance(other, self->sel->st->abc_Mapping);
    if (is_map < 0)
        return NULL;
    if (!is_map)
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *mine = PyDict_Copy(self->sel->fd_to_key), *items = NULL, *theirs = NULL, *r = NULL;
    if (mine)
        items = PyObject_CallMethodNoArgs(other, self->sel->st->str_items);
    if (items)
        theirs = PyObject_CallOneArg((PyObject *)&PyDict_Type, items);
    if (theirs)
        r = PyObject_RichCompare(mine, theirs, op);
    Py_XDECREF(mine);
    Py_XDECREF(items);
    Py_XDECREF(theirs);
    return r;
}

static int map_traverse(MappingObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->sel);
    return 0;
}

static int map_clear(MappingObject *self)
{
    /* sel is never NULL while the object lives: its methods use it; the
     * selector side of the cycle (sel->map) is what GC clearing breaks. */
    return 0;
}

static void map_dealloc(MappingObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->sel);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

/* Before 3.10 there is no DISALLOW_INSTANTIATION flag: refuse by hand. */
static PyObject *map_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyErr_Format(PyExc_TypeError, "cannot create '%s' instances", type->tp_name);
    return NULL;
}

static PyMethodDef map_methods[] = {
    {"get", (PyCFunction)(void (*)(void))map_get, METH_FASTCALL | METH_KEYWORDS, "get(key, default=None)"},
    {"keys", (PyCFunction)map_keys, METH_NOARGS, NULL},
    {"items", (PyCFunction)map_items, METH_NOARGS, NULL},
    {"values", (PyCFunction)map_values, METH_NOARGS, NULL},
    {NULL, NULL},
};

static PyType_Slot map_slots[] = {
    {Py_tp_new, map_new},
    {Py_mp_subscript, map_getitem},
    {Py_mp_length, map_len},
    {Py_sq_length, map_len},
    {Py_sq_contains, map_contains},
    {Py_tp_iter, map_iter},
    {Py_tp_richcompare, map_richcompare},
    {Py_tp_hash, PyObject_HashNotImplemented},
    {Py_tp_methods, map_methods},
    {Py_tp_traverse, map_traverse},
    {Py_tp_clear, map_clear},
    {Py_tp_dealloc, map_dealloc},
    {Py_tp_doc, "Mapping of file descriptors to selector keys (read-only, live)."},
    {0, NULL},
};

static PyType_Spec map_spec = {
    .name = "cconc.selectors.SelectorMapping",
    .basicsize = sizeof(MappingObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_MAPPING,
    .slots = map_slots,
};

/* ============================================================== exec */

int cc_selector_exec(PyObject *module, cc_state *st)
{
    PyObject *selectors = PyImport_ImportModule("selectors");
    if (!selectors)
        return -1;
    st->SelectorKey = PyObject_GetAttrString(selectors, "SelectorKey");
    Py_DECREF(selectors);
    if (!st->SelectorKey)
        return -1;
    if (!PyType_Check(st->SelectorKey) || !PyType_IsSubtype((PyTypeObject *)st->SelectorKey, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "selectors.SelectorKey is not a namedtuple");
        return -1;
    }
    PyObject *abc = PyImport_ImportModule("collections.abc");
    if (!abc)
        return -1;
    st->abc_Mapping = PyObject_GetAttrString(abc, "Mapping");
    st->abc_KeysView = PyObject_GetAttrString(abc, "KeysView");
    st->abc_ItemsView = PyObject_GetAttrString(abc, "ItemsView");
    st->abc_ValuesView = PyObject_GetAttrString(abc, "ValuesView");
    Py_DECREF(abc);
    if (!st->abc_Mapping || !st->abc_KeysView || !st->abc_ItemsView || !st->abc_ValuesView)
        return -1;
    PyObject *operator = PyImport_ImportModule("operator");
    if (!operator)
        return -1;
    st->sel_key_fd = PyObject_CallMethod(operator, "itemgetter", "i", 1);
    Py_DECREF(operator);
    if (!st->sel_key_fd)
        return -1;
    if (!(st->str_fileno = PyUnicode_InternFromString("fileno")) ||
        !(st->str_items = PyUnicode_InternFromString("items")))
        return -1;
    if (cc_add_type(module, &map_spec, NULL, &st->SelectorMapping_type) < 0 ||
        cc_add_type(module, &select_spec, NULL, &st->SelectSelector_type) < 0 ||
        cc_add_type(module, &poll_spec, NULL, &st->PollSelector_type) < 0)
        return -1;
#ifdef CC_HAVE_EPOLL
    if (cc_add_type(module, &epoll_spec, NULL, &st->EpollSelector_type) < 0)
        return -1;
#endif
#ifdef CC_HAVE_KQUEUE
    if (cc_add_type(module, &kqueue_spec, NULL, &st->KqueueSelector_type) < 0)
        return -1;
#endif
    return 0;
}
