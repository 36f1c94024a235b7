/* threading.Lock and threading.RLock.
 *
 * Release wakes the oldest waiter, one at a time (no thundering herd). A
 * waiter in acquire() may be overtaken: release() unlocks and the woken
 * thread competes with whoever runs first, as with the stdlib's lock. Handing
 * ownership to every woken waiter instead makes a convoy under contention
 * (each acquire waits for a thread switch: 0.07x the stdlib's lock with two
 * threads). So that nobody starves, a waiter that has waited FAIR_AFTER_NS
 * asks for a hand-off: release() then gives it the lock without unlocking,
 * as it does to every other kind of waiter on a lock's list (a Condition's
 * notified waiter, the re-acquire of Condition.wait). */
#include "cconc.h"

#include <structmember.h>

static const char *const acquire_kwlist[] = {"blocking", "timeout", NULL};

/* A lock waiter's handoff: it may be overtaken; when woken so, it is marked
 * lock_retry (nothing handed: it takes the lock if free, else waits again).
 * Any other handoff (NULL, a Condition's mark) is handed the lock itself. */
static char lock_may_overtake, lock_retry;
#define FAIR_AFTER_NS 1000000 /* 1 ms, as CPython's PyMutex */

/* On release, for the popped waiter w: 1 to unlock and let w compete for it
 * (w is marked lock_retry), 0 to hand the lock to w. */
static int release_lets_compete(cc_waiter *w)
{
    if (w->handoff != &lock_may_overtake)
        return 0;
    w->handoff = &lock_retry;
    return 1;
}

/* The handoff a plain acquire() waiter parks with: overtakable until it has
 * waited FAIR_AFTER_NS since `since`. */
static void *acquire_handoff(int64_t since)
{
    return cc_monotonic_ns() - since >= FAIR_AFTER_NS ? NULL : &lock_may_overtake;
}

/* What the waiting loop below needs of a Lock or an RLock. */
typedef struct {
    int (*try_take)(void *self, unsigned long me); /* 1: it was free, now it is me's */
    void (*unlock)(void *self);                    /* release: hand over or unlock */
    void (*wake_if_free)(void *self);
} lock_ops;

/* acquire() once the lock was found held and the caller will wait: park until
 * handed the lock, or woken to compete and winning it. 1 acquired, 0 timed
 * out, -1 error (a signal handler raised). `me` is who takes it (an RLock's
 * owner; it travels in handoff_n to a hand-off). */
static int wait_for_lock(void *self, cc_waitlist *wl, const lock_ops *ops, unsigned long me, cc_deadline deadline)
{
    int64_t since = cc_monotonic_ns();
    for (;;) {
        cc_waiter w;
        w.handoff = acquire_handoff(since); /* before linking: a giveback may wake it at once */
        w.handoff_n = (Py_ssize_t)me;
        cc_waitlist_append(wl, &w);
        int r = cc_park(wl, &w, deadline);
        if (w.state != CC_WOKEN)
            return r; /* timed out or interrupted, never woken */
        if (w.handoff != &lock_retry) {
            if (r == CC_PARK_ERROR)
                ops->unlock(self); /* handed over while a signal handler raised: pass it on */
            return r;
        }
        if (r == CC_PARK_ERROR) {
            ops->wake_if_free(self);
            return r;
        }
        if (ops->try_take(self, me))
            return 1;
        if (cc_deadline_passed(deadline))
            return 0;
    }
}

/* ================================================================= Lock */

typedef struct {
    PyObject_HEAD
    int locked;
    cc_waitlist waiters;
    PyObject *weakreflist;
} LockObject;

static void lock_unlock(LockObject *self);
static void lock_wake_if_free(LockObject *self);

/* A waiter whose thread will never run again was woken from the list:
 * handed the lock (pass it on), or woken to compete (wake the next one). */
static void lock_giveback(cc_waitlist *wl, cc_waiter *w)
{
    LockObject *self = CC_CONTAINER_OF(wl, LockObject, waiters);
    if (w->handoff == &lock_retry)
        lock_wake_if_free(self);
    else
        lock_unlock(self);
}

static PyObject *lock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "Lock() takes no arguments");
        return NULL;
    }
    LockObject *self = (LockObject *)type->tp_alloc(type, 0);
    if (self)
        cc_waitlist_init_giveback(&self->waiters, lock_giveback);
    return (PyObject *)self;
}

static void lock_dealloc(LockObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static void lock_unlock(LockObject *self)
{
    cc_waiter *w = cc_waitlist_pop(&self->waiters);
    if (!w || release_lets_compete(w))
        self->locked = 0;
    /* else it stays locked: now the waiter's */
    if (w)
        cc_waiter_wake(w);
}

/* A waiter woken to compete leaves without the lock: if the lock is free, the
 * next waiter must be woken in its place, or it would sleep on a free lock. */
static void lock_wake_if_free(LockObject *self)
{
    if (!self->locked && cc_waitlist_len(&self->waiters)) {
        self->locked = 1;
        lock_unlock(self);
    }
}

static int lock_try_take(void *self, unsigned long me)
{
    LockObject *lock = self;
    (void)me;
    if (lock->locked)
        return 0;
    lock->locked = 1;
    return 1;
}

static void lock_unlock_op(void *self) { lock_unlock(self); }
static void lock_wake_if_free_op(void *self) { lock_wake_if_free(self); }
static const lock_ops lock_kind = {lock_try_take, lock_unlock_op, lock_wake_if_free_op};

/* 1 acquired, 0 not acquired, -1 error. */
static int lock_acquire_until(LockObject *self, cc_deadline deadline)
{
    if (lock_try_take(self, 0))
        return 1;
    if (deadline == 0)
        return 0;
    return wait_for_lock(self, &self->waiters, &lock_kind, 0, deadline);
}

static PyObject *lock_acquire_impl(LockObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 0 && kwnames == NULL && !self->locked) {
        self->locked = 1;
        Py_RETURN_TRUE;
    }
    PyObject *a[2];
    cc_deadline deadline;
    if (cc_parse_args("acquire", args, nargs, kwnames, acquire_kwlist, 2, 0, a) < 0 ||
        cc_lock_timeout(a[0], a[1], &deadline) < 0)
        return NULL;
    int r = lock_acquire_until(self, deadline);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}
CC_CS_FASTCALL_KW(lock_acquire, LockObject)

static PyObject *lock_enter_impl(LockObject *self)
{
    if (lock_acquire_until(self, CC_FOREVER) < 0)
        return NULL;
    Py_RETURN_TRUE;
}
CC_CS_NOARGS(lock_enter, LockObject)

static PyObject *lock_release_impl(LockObject *self)
{
    if (!self->locked) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return NULL;
    }
    lock_unlock(self);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(lock_release, LockObject)

static PyObject *lock_exit(LockObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *res;
    Py_BEGIN_CRITICAL_SECTION(self);
    res = lock_release_impl(self);
    Py_END_CRITICAL_SECTION();
    return res;
}

static PyObject *lock_locked_impl(LockObject *self)
{
    return PyBool_FromLong(self->locked);
}
CC_CS_NOARGS(lock_locked, LockObject)

static PyObject *lock_at_fork_reinit_impl(LockObject *self)
{
    self->locked = 0;
    cc_waitlist_reset(&self->waiters);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(lock_at_fork_reinit, LockObject)

static PyObject *lock_repr_impl(LockObject *self)
{
    return PyUnicode_FromFormat("<%s %s object at %p>", self->locked ? "locked" : "unlocked",
                                Py_TYPE(self)->tp_name, self);
}
CC_CS_REPR(lock_repr, LockObject)

static PyMethodDef lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))lock_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1) -> bool"},
    {"acquire_lock", (PyCFunction)(void (*)(void))lock_acquire, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"release", (PyCFunction)lock_release, METH_NOARGS, "release(): unlock; RuntimeError if unlocked"},
    {"release_lock", (PyCFunction)lock_release, METH_NOARGS, NULL},
    {"locked", (PyCFunction)lock_locked, METH_NOARGS, "locked() -> bool"},
    {"locked_lock", (PyCFunction)lock_locked, METH_NOARGS, NULL},
    {"__enter__", (PyCFunction)lock_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))lock_exit, METH_FASTCALL, NULL},
    {"_at_fork_reinit", (PyCFunction)lock_at_fork_reinit, METH_NOARGS, NULL},
    {NULL, NULL},
};

static PyMemberDef lock_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(LockObject, weakreflist), READONLY},
    {NULL},
};

static PyType_Slot lock_slots[] = {
    {Py_tp_new, lock_new},
    {Py_tp_dealloc, lock_dealloc},
    {Py_tp_repr, lock_repr},
    {Py_tp_methods, lock_methods},
    {Py_tp_members, lock_members},
    {Py_tp_doc, "A primitive lock: the native counterpart of threading.Lock."},
    {0, NULL},
};

static PyType_Spec lock_spec = {
    .name = "cconc.threading.Lock",
    .basicsize = sizeof(LockObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = lock_slots,
};

/* ================================================================ RLock */

typedef struct {
    PyObject_HEAD
    unsigned long owner;  /* thread ident, valid while count > 0 */
    unsigned long count;
    cc_waitlist waiters;
    PyObject *weakreflist;
} RLockObject;

static void rlock_unlock(RLockObject *self);
static void rlock_wake_if_free(RLockObject *self);

/* As lock_giveback. */
static void rlock_giveback(cc_waitlist *wl, cc_waiter *w)
{
    RLockObject *self = CC_CONTAINER_OF(wl, RLockObject, waiters);
    if (w->handoff == &lock_retry)
        rlock_wake_if_free(self);
    else
        rlock_unlock(self);
}

static PyObject *rlock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    RLockObject *self = (RLockObject *)type->tp_alloc(type, 0);
    if (self)
        cc_waitlist_init_giveback(&self->waiters, rlock_giveback);
    return (PyObject *)self;
}

static void rlock_dealloc(RLockObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* The lock fully released: hand it to the oldest waiter, or unlock it (and
 * wake that waiter to compete for it). */
static void rlock_unlock(RLockObject *self)
{
    cc_waiter *w = cc_waitlist_pop(&self->waiters);
    if (!w || release_lets_compete(w)) {
        self->owner = 0;
        self->count = 0;
    }
    else {
        self->owner = (unsigned long)w->handoff_n;
        self->count = 1;
    }
    if (w)
        cc_waiter_wake(w);
}

/* As lock_wake_if_free. */
static void rlock_wake_if_free(RLockObject *self)
{
    if (self->count == 0 && cc_waitlist_len(&self->waiters)) {
        self->count = 1;
        rlock_unlock(self);
    }
}

static int rlock_try_take(void *self, unsigned long me)
{
    RLockObject *rlock = self;
    if (rlock->count)
        return 0;
    rlock->owner = me;
    rlock->count = 1;
    return 1;
}

static void rlock_unlock_op(void *self) { rlock_unlock(self); }
static void rlock_wake_if_free_op(void *self) { rlock_wake_if_free(self); }
static const lock_ops rlock_kind = {rlock_try_take, rlock_unlock_op, rlock_wake_if_free_op};

/* 1 acquired (count is 1 or more), 0 not acquired, -1 error. */
static int rlock_acquire_until(RLockObject *self, unsigned long me, cc_deadline deadline)
{
    if (rlock_try_take(self, me))
        return 1;
    if (self->owner == me) {
        if (self->count == ULONG_MAX) {
            PyErr_SetString(PyExc_OverflowError, "Internal lock count overflowed");
            return -1;
        }
        self->count++;
        return 1;
    }
    if (deadline == 0)
        return 0;
    return wait_for_lock(self, &self->waiters, &rlock_kind, me, deadline);
}

static PyObject *rlock_acquire_impl(RLockObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    unsigned long me = PyThread_get_thread_ident();
    cc_deadline deadline = CC_FOREVER;
    if (nargs || kwnames) {
        PyObject *a[2];
        if (cc_parse_args("acquire", args, nargs, kwnames, acquire_kwlist, 2, 0, a) < 0 ||
            cc_lock_timeout(a[0], a[1], &deadline) < 0)
            return NULL;
    }
    int r = rlock_acquire_until(self, me, deadline);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}
CC_CS_FASTCALL_KW(rlock_acquire, RLockObject)

static PyObject *rlock_enter_impl(RLockObject *self)
{
    if (rlock_acquire_until(self, PyThread_get_thread_ident(), CC_FOREVER) < 0)
        return NULL;
    Py_RETURN_TRUE;
}
CC_CS_NOARGS(rlock_enter, RLockObject)

static PyObject *rlock_release_impl(RLockObject *self)
{
    if (self->count == 0 || self->owner != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return NULL;
    }
    if (--self->count == 0)
        rlock_unlock(self);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(rlock_release, RLockObject)

static PyObject *rlock_exit(RLockObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *res;
    Py_BEGIN_CRITICAL_SECTION(self);
    res = rlock_release_impl(self);
    Py_END_CRITICAL_SECTION();
    return res;
}

static PyObject *rlock_is_owned_impl(RLockObject *self)
{
    return PyBool_FromLong(self->count > 0 && self->owner == PyThread_get_thread_ident());
}
CC_CS_NOARGS(rlock_is_owned, RLockObject)

static PyObject *rlock_recursion_count_impl(RLockObject *self)
{
    unsigned long n = self->owner == PyThread_get_thread_ident() ? self->count : 0;
    return PyLong_FromUnsignedLong(n);
}
CC_CS_NOARGS(rlock_recursion_count, RLockObject)

/* Condition.wait's protocol: release fully, returning the state to restore. */
static PyObject *rlock_release_save_impl(RLockObject *self)
{
    if (self->count == 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return NULL;
    }
    PyObject *saved = Py_BuildValue("(kk)", self->count, self->owner);
    if (saved)
        rlock_unlock(self);
    return saved;
}
CC_CS_NOARGS(rlock_release_save, RLockObject)

/* Re-take the lock after Condition.wait (see cc_lock_acquire_restore). */
static PyObject *rlock_acquire_restore_impl(RLockObject *self, PyObject *args)
{
    cc_lock_saved saved;
    if (!PyArg_ParseTuple(args, "(kk):_acquire_restore", &saved.count, &saved.owner))
        return NULL;
    if (cc_lock_acquire_restore((PyObject *)self, CC_LOCK_REENTRANT, &saved) < 0)
        return NULL;
    Py_RETURN_NONE;
}
CC_CS_VARARGS(rlock_acquire_restore, RLockObject)

static PyObject *rlock_at_fork_reinit_impl(RLockObject *self)
{
    self->owner = 0;
    self->count = 0;
    cc_waitlist_reset(&self->waiters);
    Py_RETURN_NONE;
}
CC_CS_NOARGS(rlock_at_fork_reinit, RLockObject)

static PyObject *rlock_repr_impl(RLockObject *self)
{
    return PyUnicode_FromFormat("<%s %s object owner=%lu count=%lu at %p>",
                                self->count ? "locked" : "unlocked", Py_TYPE(self)->tp_name,
                                self->count ? self->owner : 0UL, self->count, self);
}
CC_CS_REPR(rlock_repr, RLockObject)

static PyMethodDef rlock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))rlock_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1) -> bool"},
    {"release", (PyCFunction)rlock_release, METH_NOARGS, "release(): decrement the recursion level"},
    {"__enter__", (PyCFunction)rlock_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))rlock_exit, METH_FASTCALL, NULL},
    {"_is_owned", (PyCFunction)rlock_is_owned, METH_NOARGS, NULL},
    {"_recursion_count", (PyCFunction)rlock_recursion_count, METH_NOARGS, NULL},
    {"_release_save", (PyCFunction)rlock_release_save, METH_NOARGS, NULL},
    {"_acquire_restore", (PyCFunction)rlock_acquire_restore, METH_VARARGS, NULL},
    {"_at_fork_reinit", (PyCFunction)rlock_at_fork_reinit, METH_NOARGS, NULL},
    {NULL, NULL},
};

static PyMemberDef rlock_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(RLockObject, weakreflist), READONLY},
    {NULL},
};

static PyType_Slot rlock_slots[] = {
    {Py_tp_new, rlock_new},
    {Py_tp_dealloc, rlock_dealloc},
    {Py_tp_repr, rlock_repr},
    {Py_tp_methods, rlock_methods},
    {Py_tp_members, rlock_members},
    {Py_tp_doc, "A reentrant lock: the native counterpart of threading.RLock."},
    {0, NULL},
};

static PyType_Spec rlock_spec = {
    .name = "cconc.threading.RLock",
    .basicsize = sizeof(RLockObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = rlock_slots,
};

int cc_lock_exec(PyObject *module, cc_state *st)
{
    if (cc_add_type(module, &lock_spec, NULL, &st->Lock_type) < 0 ||
        cc_add_type(module, &rlock_spec, NULL, &st->RLock_type) < 0)
        return -1;
    return 0;
}

/* ======================================== Condition's fast path (cconc.h) */

int cc_lock_owned(PyObject *lock, int kind)
{
    if (kind == CC_LOCK_PLAIN)
        return ((LockObject *)lock)->locked;
    RLockObject *r = (RLockObject *)lock;
    return r->count > 0 && r->owner == PyThread_get_thread_ident();
}

int cc_lock_enter(PyObject *lock, int kind)
{
    int r = kind == CC_LOCK_PLAIN
                ? lock_acquire_until((LockObject *)lock, CC_FOREVER)
                : rlock_acquire_until((RLockObject *)lock, PyThread_get_thread_ident(), CC_FOREVER);
    return r < 0 ? -1 : 0;
}

int cc_lock_exit(PyObject *lock, int kind)
{
    PyObject *r = kind == CC_LOCK_PLAIN ? lock_release_impl((LockObject *)lock)
                                        : rlock_release_impl((RLockObject *)lock);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

void cc_lock_release_save(PyObject *lock, int kind, cc_lock_saved *saved)
{
    if (kind == CC_LOCK_PLAIN) {
        saved->owner = saved->count = 0;
        lock_unlock((LockObject *)lock);
    }
    else {
        RLockObject *r = (RLockObject *)lock;
        saved->owner = r->owner;
        saved->count = r->count;
        rlock_unlock(r);
    }
}

cc_waitlist *cc_lock_waitlist(PyObject *lock, int kind)
{
    return kind == CC_LOCK_PLAIN ? &((LockObject *)lock)->waiters : &((RLockObject *)lock)->waiters;
}

void cc_lock_restore_handed(PyObject *lock, int kind, const cc_lock_saved *saved)
{
    if (kind == CC_LOCK_PLAIN) {
        ((LockObject *)lock)->locked = 1;
    }
    else {
        ((RLockObject *)lock)->owner = saved->owner;
        ((RLockObject *)lock)->count = saved->count;
    }
}

/* Like the stdlib's RLock._acquire_restore: the lock is always re-held on
 * return, even when a signal handler raises meanwhile (the caller's `with`
 * block must end owning it); the exception is raised once it is held. */
int cc_lock_acquire_restore(PyObject *lock, int kind, const cc_lock_saved *saved)
{
    PyObject *exc_type = NULL, *exc = NULL, *tb = NULL;
    cc_waitlist *wl = cc_lock_waitlist(lock, kind);
    unsigned long me = PyThread_get_thread_ident();
    for (;;) {
        int busy = kind == CC_LOCK_PLAIN ? ((LockObject *)lock)->locked
                                         : ((RLockObject *)lock)->count != 0;
        if (!busy)
            break;
        cc_waiter w;
        w.handoff = NULL; /* handed the lock when woken; set before linking (a giveback may wake it at once) */
        w.handoff_n = (Py_ssize_t)me;
        cc_waitlist_append(wl, &w);
        int r = cc_park(wl, &w, CC_FOREVER);
        if (r == CC_PARK_ERROR) {
            if (!exc_type)
                PyErr_Fetch(&exc_type, &exc, &tb);
            else
                PyErr_Clear();
        }
        if (w.state == CC_WOKEN)
            break;  /* handed over to us */
    }
    cc_lock_restore_handed(lock, kind, saved);
    if (exc_type) {
        PyErr_Restore(exc_type, exc, tb);
        return -1;
    }
    return 0;
}
