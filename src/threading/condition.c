/* threading.Condition: a waiter list over a lock.
 *
 * Waiters park on the condition's own FIFO list; notify(n) unlinks and wakes
 * exactly n of them. Over a cconc Lock or RLock (of the exact type, so that
 * no Python override can be bypassed) wait() releases and re-takes the lock
 * natively (lock.c's cc_lock_* functions); over any other object it goes
 * through the object's methods as the stdlib's Condition does, preferring
 * _release_save/_acquire_restore/_is_owned when the lock has them. */
#include "cconc.h"

#include <math.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *lock;
    /* The lock's bound methods, exported as Condition.acquire/.release as in the stdlib. */
    PyObject *acquire;
    PyObject *release;
    /* Generic path only: the lock's optional protocol methods (NULL when absent). */
    PyObject *release_save;
    PyObject *acquire_restore;
    PyObject *is_owned;
    int kind; /* CC_LOCK_PLAIN / CC_LOCK_REENTRANT: fast path; CC_LOCK_OTHER: generic */
    cc_waitlist waiters;
    PyObject *weakreflist;
} ConditionObject;

/* ------------------------------------------------- critical sections */

/* Without the GIL every method runs in the condition's critical section and,
 * on the fast path, its lock's too (Py_BEGIN_CRITICAL_SECTION2: both at
 * once, in CPython's fixed order): wait() reads and changes the lock's state
 * natively, and notify() moves waiters onto the lock's list. Both are
 * suspended while the thread parks and held again when it returns. */
#ifdef Py_GIL_DISABLED
#  define COND_CS(res, call)                                                             \
    do {                                                                                 \
        PyObject *cs_lock_;                                                              \
        Py_BEGIN_CRITICAL_SECTION(self);                                                 \
        cs_lock_ = self->kind != CC_LOCK_OTHER ? Py_XNewRef(self->lock) : NULL;          \
        Py_END_CRITICAL_SECTION();                                                       \
        PyObject *cs_other_ = cs_lock_ ? cs_lock_ : (PyObject *)self;                    \
        Py_BEGIN_CRITICAL_SECTION2(self, cs_other_);                                     \
        /* __init__ may have swapped the lock meanwhile: then only its own section */    \
        res = call;                                                                      \
        Py_END_CRITICAL_SECTION2();                                                      \
        Py_XDECREF(cs_lock_);                                                            \
    } while (0)
#else
#  define COND_CS(res, call) ((res) = (call))
#endif
#define COND_CS_NOARGS(name)                                                             \
    static PyObject *name(ConditionObject *self, PyObject *Py_UNUSED(ignored))           \
    {                                                                                    \
        PyObject *res;                                                                   \
        COND_CS(res, name##_impl(self));                                                 \
        return res;                                                                      \
    }
#define COND_CS_FASTCALL_KW(name)                                                        \
    static PyObject *name(ConditionObject *self, PyObject *const *args, Py_ssize_t nargs, \
                          PyObject *kwnames)                                             \
    {                                                                                    \
        PyObject *res;                                                                   \
        COND_CS(res, name##_impl(self, args, nargs, kwnames));                           \
        return res;                                                                      \
    }
#define COND_CS_FASTCALL(name)                                                           \
    static PyObject *name(ConditionObject *self, PyObject *const *args, Py_ssize_t nargs) \
    {                                                                                    \
        PyObject *res;                                                                   \
        COND_CS(res, name##_impl(self, args, nargs));                                    \
        return res;                                                                      \
    }

/* ------------------------------------------------------------- helpers */

static int cond_check_init(ConditionObject *self)
{
    if (self->lock)
        return 0;
    PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '_lock'", Py_TYPE(self)->tp_name);
    return -1;
}

/* Stdlib's Condition._is_owned for a lock without one: owned if acquire(False) fails. */
static int generic_is_owned(PyObject *acquire, PyObject *release, PyObject *is_owned)
{
    if (is_owned) {
        PyObject *r = PyObject_CallNoArgs(is_owned);
        if (!r)
            return -1;
        int b = PyObject_IsTrue(r);
        Py_DECREF(r);
        return b;
    }
    PyObject *r = PyObject_CallOneArg(acquire, Py_False);
    if (!r)
        return -1;
    int got = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (got < 0)
        return -1;
    if (!got)
        return 1;
    r = PyObject_CallNoArgs(release);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* 1 owned, 0 not, -1 error. */
static int cond_is_owned(ConditionObject *self)
{
    if (self->kind != CC_LOCK_OTHER)
        return cc_lock_owned(self->lock, self->kind);
    PyObject *acquire = Py_NewRef(self->acquire), *release = Py_NewRef(self->release);
    PyObject *is_owned = Py_XNewRef(self->is_owned);
    int r = generic_is_owned(acquire, release, is_owned);
    Py_DECREF(acquire);
    Py_DECREF(release);
    Py_XDECREF(is_owned);
    return r;
}

/* The stdlib compares timeout > 0 and hands it to Lock.acquire: NaN polls. */
static int wait_deadline(PyObject *timeout, cc_deadline *deadline) { return cc_cond_timeout(timeout, deadline); }

/* Make `exc` (a fetched exception) the context of the one now set. */
static void chain_exception(PyObject *type, PyObject *value, PyObject *tb)
{
    PyObject *t2, *v2, *tb2;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb)
        PyException_SetTraceback(value, tb);
    PyErr_Fetch(&t2, &v2, &tb2);
    PyErr_NormalizeException(&t2, &v2, &tb2);
    if (v2 && value && v2 != value)
        PyException_SetContext(v2, Py_NewRef(value));
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    PyErr_Restore(t2, v2, tb2);
}

/* The handoff of a fast-path waiter that notify() moved onto the lock's own
 * waiter list ("wait morphing"): the lock's release hands the lock straight
 * to it, so a notified thread wakes once, owning the lock, instead of waking
 * only to find the lock still held by its notifier and sleeping again. */
static char moved_to_lock;

static int was_notified(cc_waiter *w) { return w->handoff == &moved_to_lock || w->state == CC_WOKEN; }

/* A waiter that was notified but cannot report it (a signal handler raised,
 * re-taking the lock failed) gives the notification to the next waiter. */
static void pass_notification_on(ConditionObject *self, cc_waiter *w)
{
    if (was_notified(w))
        cc_waitlist_wake(&self->waiters, 1);
}

/* ---------------------------------------------------------------- wait */

/* The wait itself, ownership checked by the caller. 1 notified, 0 timed out, -1 error. */
static int cond_wait_fast(ConditionObject *self, cc_deadline deadline)
{
    PyObject *lock = Py_NewRef(self->lock);
    int kind = self->kind;
    cc_waiter w;
    cc_lock_saved saved;
    /* Linked before the lock is released, so no notify can slip in between. */
    cc_waitlist_append(&self->waiters, &w);
    w.handoff = NULL;
    w.handoff_n = (Py_ssize_t)PyThread_get_thread_ident();  /* an RLock handed over names us */
    cc_lock_release_save(lock, kind, &saved);
    int r = cc_park(&self->waiters, &w, deadline);
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    if (r == CC_PARK_ERROR)
        PyErr_Fetch(&type, &value, &tb);
    int restored = 0;
    if (w.handoff == &moved_to_lock && w.state == CC_WOKEN)
        cc_lock_restore_handed(lock, kind, &saved);
    else
        restored = cc_lock_acquire_restore(lock, kind, &saved);
    Py_DECREF(lock);
    if (r == CC_PARK_ERROR || restored < 0) {
        pass_notification_on(self, &w);
        if (type) {
            if (restored < 0)
                chain_exception(type, value, tb);
            else
                PyErr_Restore(type, value, tb);
        }
        return -1;
    }
    return was_notified(&w);  /* notified as the deadline passed still counts */
}

static int cond_wait_generic(ConditionObject *self, cc_deadline deadline)
{
    PyObject *lock = Py_NewRef(self->lock);
    PyObject *acquire = Py_NewRef(self->acquire), *release = Py_NewRef(self->release);
    PyObject *release_save = Py_XNewRef(self->release_save);
    PyObject *acquire_restore = Py_XNewRef(self->acquire_restore);
    int result = -1;
    cc_waiter w;
    cc_waitlist_append(&self->waiters, &w);
    PyObject *saved = release_save ? PyObject_CallNoArgs(release_save) : PyObject_CallNoArgs(release);
    if (!saved) {
        /* Still holding the lock (as far as we know): withdraw. */
        cc_waiter_cancel(&w);
        pass_notification_on(self, &w);
        goto done;
    }
    int r = cc_park(&self->waiters, &w, deadline);
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    if (r == CC_PARK_ERROR)
        PyErr_Fetch(&type, &value, &tb);
    PyObject *res = acquire_restore ? PyObject_CallOneArg(acquire_restore, saved) : PyObject_CallNoArgs(acquire);
    Py_DECREF(saved);
    if (res && r != CC_PARK_ERROR) {
        Py_DECREF(res);
        result = r == CC_PARK_WOKEN;
        goto done;
    }
    Py_XDECREF(res);
    pass_notification_on(self, &w);
    if (type) {
        if (!res)
            chain_exception(type, value, tb);
        else
            PyErr_Restore(type, value, tb);
    }
done:
    Py_DECREF(lock);
    Py_DECREF(acquire);
    Py_DECREF(release);
    Py_XDECREF(release_save);
    Py_XDECREF(acquire_restore);
    return result;
}

/* Check ownership and wait until `deadline`: 1 notified, 0 timed out, -1 error.
 * The timeout object is converted only after the ownership check, as the
 * stdlib reports the un-acquired lock first. */
static int cond_wait_until(ConditionObject *self, PyObject *timeout, const cc_deadline *given)
{
    if (cond_check_init(self) < 0)
        return -1;
    int owned = cond_is_owned(self);
    if (owned < 0)
        return -1;
    if (!owned) {
        PyErr_SetString(PyExc_RuntimeError, "cannot wait on un-acquired lock");
        return -1;
    }
    cc_deadline deadline;
    if (given)
        deadline = *given;
    else if (wait_deadline(timeout, &deadline) < 0)
        return -1;
    return self->kind != CC_LOCK_OTHER ? cond_wait_fast(self, deadline) : cond_wait_generic(self, deadline);
}

/* wait_for's waits: each in the critical sections, the predicate outside. */
static int cond_wait_locked(ConditionObject *self, const cc_deadline *deadline)
{
    int r;
    COND_CS(r, cond_wait_until(self, NULL, deadline));
    return r;
}

static PyObject *cond_wait_impl(ConditionObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"timeout", NULL};
    PyObject *timeout = NULL;
    if ((nargs || kwnames) && cc_parse_args("wait", args, nargs, kwnames, kwlist, 1, 0, &timeout) < 0)
        return NULL;
    int r = cond_wait_until(self, timeout, NULL);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}
COND_CS_FASTCALL_KW(cond_wait)

static PyObject *cond_wait_for(ConditionObject *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames)
{
    static const char *const kwlist[] = {"predicate", "timeout", NULL};
    PyObject *a[2];
    if (cc_parse_args("wait_for", args, nargs, kwnames, kwlist, 2, 1, a) < 0)
        return NULL;
    PyObject *predicate = a[0], *timeout = a[1];
    int timed = timeout && timeout != Py_None;
    cc_deadline deadline = CC_FOREVER;
    int first = 1;
    cc_state *st = cc_state_of_type(Py_TYPE(self));
    if (!st)
        return NULL;
    int override_wait = 0;
    if (!Py_IS_TYPE(self, st->Condition_type)) {
        PyObject *wait = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "wait");
        if (!wait)
            return NULL;
        override_wait = !(PyObject_TypeCheck(wait, &PyMethodDescr_Type) &&
                          PyDescr_TYPE(wait) == st->Condition_type);
        Py_DECREF(wait);
    }
    PyObject *result = PyObject_CallNoArgs(predicate);
    for (;;) {
        if (!result)
            return NULL;
        int ok = PyObject_IsTrue(result);
        if (ok != 0) {
            if (ok < 0)
                Py_CLEAR(result);
            return result;
        }
        if (timed) {
            /* Like the stdlib: the first wait gets the whole timeout; after
             * that, give up once the time is out (returning the falsy result). */
            if (first) {
                if (cc_endtime_timeout(timeout, &deadline) < 0) {
                    Py_DECREF(result);
                    return NULL;
                }
            }
            else if (cc_deadline_passed(deadline)) {
                return result;
            }
        }
        first = 0;
        Py_DECREF(result);
        if (!override_wait) {
            if (cond_wait_locked(self, &deadline) < 0)
                return NULL;
        }
        else {
            /* A subclass's wait() is called, as the stdlib's wait_for calls self.wait. */
            PyObject *left = timed ? PyFloat_FromDouble(cc_seconds_left(deadline))
                                   : Py_NewRef(Py_None);
            if (!left)
                return NULL;
            PyObject *r = PyObject_CallMethod((PyObject *)self, "wait", "O", left);
            Py_DECREF(left);
            if (!r)
                return NULL;
            Py_DECREF(r);
        }
        result = PyObject_CallNoArgs(predicate);
    }
}

/* -------------------------------------------------------------- notify */

/* How many to wake, from the stdlib's `while waiters and n > 0: ... n -= 1`. */
static int notify_count(PyObject *n, Py_ssize_t *count)
{
    if (PyLong_Check(n)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(n, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        *count = overflow > 0 ? PY_SSIZE_T_MAX : overflow < 0 ? 0 : v > PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)(v < 0 ? 0 : v);
        return 0;
    }
    if (PyFloat_Check(n)) {
        double d = ceil(PyFloat_AS_DOUBLE(n));
        *count = !(d > 0) ? 0 : d >= (double)PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : (Py_ssize_t)d;
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "'>' not supported between instances of '%.100s' and 'int'",
                 Py_TYPE(n)->tp_name);
    return -1;
}

/* Wake up to n waiters (n < 0: all), the oldest first. Over a cconc lock,
 * which the notifier holds, they move onto the lock's list (see moved_to_lock). */
static void cond_notify_n(ConditionObject *self, Py_ssize_t n)
{
    if (self->kind == CC_LOCK_OTHER) {
        cc_waitlist_wake(&self->waiters, n);
        return;
    }
    cc_waitlist_requeue(&self->waiters, cc_lock_waitlist(self->lock, self->kind), n, &moved_to_lock);
}

static int cond_check_owned_for_notify(ConditionObject *self)
{
    if (cond_check_init(self) < 0)
        return -1;
    int owned = cond_is_owned(self);
    if (owned < 0)
        return -1;
    if (!owned) {
        PyErr_SetString(PyExc_RuntimeError, "cannot notify on un-acquired lock");
        return -1;
    }
    return 0;
}

static PyObject *cond_notify_impl(ConditionObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const kwlist[] = {"n", NULL};
    PyObject *n = NULL;
    if ((nargs || kwnames) && cc_parse_args("notify", args, nargs, kwnames, kwlist, 1, 0, &n) < 0)
        return NULL;
    if (cond_check_owned_for_notify(self) < 0)
        return NULL;
    if (cc_waitlist_len(&self->waiters) == 0)
        Py_RETURN_NONE;  /* the stdlib does not look at n then */
    Py_ssize_t count = 1;
    if (n && notify_count(n, &count) < 0)
        return NULL;
    cond_notify_n(self, count);
    Py_RETURN_NONE;
}
COND_CS_FASTCALL_KW(cond_notify)

static void cond_dealloc(ConditionObject *self);

static PyObject *cond_notify_all_impl(ConditionObject *self)
{
    if (cond_check_owned_for_notify(self) < 0)
        return NULL;
    cond_notify_n(self, -1);
    Py_RETURN_NONE;
}

static PyObject *cond_notify_all(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    /* The stdlib's notify_all is self.notify(len(self._waiters)): a Python
     * subclass (its instances have subtype_dealloc) may override notify. */
    if (Py_TYPE(self)->tp_dealloc != (destructor)cond_dealloc)
        return PyObject_CallMethod((PyObject *)self, "notify", "n", cc_waitlist_len(&self->waiters));
    PyObject *res;
    COND_CS(res, cond_notify_all_impl(self));
    return res;
}

/* 3.9's notifyAll is `notifyAll = notify_all`; since 3.10 it warns, then
 * calls self.notify_all() (which a subclass may override). */
static PyObject *cond_notifyAll(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
#if PY_VERSION_HEX >= 0x030A0000
    if (PyErr_WarnEx(PyExc_DeprecationWarning, "notifyAll() is deprecated, use notify_all() instead", 1) < 0)
        return NULL;
    if (Py_TYPE(self)->tp_dealloc != (destructor)cond_dealloc)
        return PyObject_CallMethod((PyObject *)self, "notify_all", NULL);
#endif
    return cond_notify_all(self, NULL);
}

/* ------------------------------------------------------ lock delegation */

static PyObject *cond_enter_impl(ConditionObject *self)
{
    if (cond_check_init(self) < 0)
        return NULL;
    if (self->kind != CC_LOCK_OTHER) {
        if (cc_lock_enter(self->lock, self->kind) < 0)
            return NULL;
        Py_RETURN_TRUE;
    }
    PyObject *lock = Py_NewRef(self->lock);
    PyObject *r = PyObject_CallMethod(lock, "__enter__", NULL);
    Py_DECREF(lock);
    return r;
}
COND_CS_NOARGS(cond_enter)

static PyObject *cond_exit_impl(ConditionObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (cond_check_init(self) < 0)
        return NULL;
    if (self->kind != CC_LOCK_OTHER) {
        if (cc_lock_exit(self->lock, self->kind) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *lock = Py_NewRef(self->lock);
    PyObject *method = PyObject_GetAttrString(lock, "__exit__");
    Py_DECREF(lock);
    if (!method)
        return NULL;
    PyObject *r = PyObject_Vectorcall(method, args, nargs, NULL);
    Py_DECREF(method);
    return r;
}
COND_CS_FASTCALL(cond_exit)

static PyObject *cond_get_acquire_impl(ConditionObject *self, void *Py_UNUSED(closure))
{
    if (cond_check_init(self) < 0)
        return NULL;
    return Py_NewRef(self->acquire);
}
CC_CS_GETTER(cond_get_acquire, ConditionObject)

static PyObject *cond_get_release_impl(ConditionObject *self, void *Py_UNUSED(closure))
{
    if (cond_check_init(self) < 0)
        return NULL;
    return Py_NewRef(self->release);
}
CC_CS_GETTER(cond_get_release, ConditionObject)

static PyObject *cond_get_lock_impl(ConditionObject *self, void *Py_UNUSED(closure))
{
    if (cond_check_init(self) < 0)
        return NULL;
    return Py_NewRef(self->lock);
}
CC_CS_GETTER(cond_get_lock, ConditionObject)

/* The stdlib's private protocol, so a Condition can itself serve as the lock
 * of another Condition, as a stdlib Condition can. */
static PyObject *cond_is_owned_method_impl(ConditionObject *self)
{
    if (cond_check_init(self) < 0)
        return NULL;
    int r = cond_is_owned(self);
    return r < 0 ? NULL : PyBool_FromLong(r);
}
COND_CS_NOARGS(cond_is_owned_method)

/* Call lock.<name>(*args) if the lock has it, else lock.<fallback>() and return None. */
static PyObject *call_or_fallback(ConditionObject *self, const char *name, PyObject *const *args,
                                  Py_ssize_t nargs, const char *fallback)
{
    PyObject *lock;
    Py_BEGIN_CRITICAL_SECTION(self);
    lock = Py_XNewRef(self->lock);
    Py_END_CRITICAL_SECTION();
    if (!lock) {
        (void)cond_check_init(self);
        return NULL;
    }
    PyObject *method = NULL, *r = NULL;
    PyObject *key = PyUnicode_InternFromString(name);
    if (!key)
        goto done;
    int has = PyObject_GetOptionalAttr(lock, key, &method);
    Py_DECREF(key);
    if (has < 0)
        goto done;
    if (has) {
        r = PyObject_Vectorcall(method, args, nargs, NULL);
        goto done;
    }
    r = PyObject_CallMethod(lock, fallback, NULL);
    if (r)
        Py_SETREF(r, Py_NewRef(Py_None));
done:
    Py_XDECREF(method);
    Py_DECREF(lock);
    return r;
}

static PyObject *cond_release_save(ConditionObject *self, PyObject *Py_UNUSED(ignored))
{
    return call_or_fallback(self, "_release_save", NULL, 0, "release");
}

static PyObject *cond_acquire_restore(ConditionObject *self, PyObject *state)
{
    return call_or_fallback(self, "_acquire_restore", &state, 1, "acquire");
}

static PyObject *cond_at_fork_reinit_impl(ConditionObject *self)
{
    if (cond_check_init(self) < 0)
        return NULL;
    PyObject *lock = Py_NewRef(self->lock);
    PyObject *r = PyObject_CallMethod(lock, "_at_fork_reinit", NULL);
    Py_DECREF(lock);
    if (r)
        cc_waitlist_reset(&self->waiters);
    return r;
}
COND_CS_NOARGS(cond_at_fork_reinit)

/* ------------------------------------------------------------ lifecycle */

static PyObject *cond_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    ConditionObject *self = (ConditionObject *)type->tp_alloc(type, 0);
    if (self) /* a notification that reached a thread that will never run goes on */
        cc_waitlist_init_giveback(&self->waiters, cc_giveback_pass_on);
    return (PyObject *)self;
}

static int get_optional(PyObject *obj, const char *name, PyObject **out)
{
    PyObject *key = PyUnicode_InternFromString(name);
    if (!key)
        return -1;
    int r = PyObject_GetOptionalAttr(obj, key, out);
    Py_DECREF(key);
    return r < 0 ? -1 : 0;
}

static int cond_init(ConditionObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"lock", NULL};
    PyObject *lock = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Condition", kwlist, &lock))
        return -1;
    cc_state *st = cc_state_of_type(Py_TYPE(self));
    if (!st)
        return -1;
    if (lock == Py_None)
        lock = PyObject_CallNoArgs((PyObject *)st->RLock_type);
    else
        Py_INCREF(lock);
    if (!lock)
        return -1;
    int kind = Py_IS_TYPE(lock, st->Lock_type)    ? CC_LOCK_PLAIN
               : Py_IS_TYPE(lock, st->RLock_type) ? CC_LOCK_REENTRANT
                                                  : CC_LOCK_OTHER;
    PyObject *acquire = NULL, *release = NULL, *release_save = NULL, *acquire_restore = NULL,
             *is_owned = NULL;
    acquire = PyObject_GetAttrString(lock, "acquire");
    if (!acquire)
        goto error;
    release = PyObject_GetAttrString(lock, "release");
    if (!release)
        goto error;
    if (kind == CC_LOCK_OTHER &&
        (get_optional(lock, "_release_save", &release_save) < 0 ||
         get_optional(lock, "_acquire_restore", &acquire_restore) < 0 ||
         get_optional(lock, "_is_owned", &is_owned) < 0))
        goto error;
    /* Swap in the new state, then drop the old (its __del__ may run code). */
    PyObject *old[6];
    Py_BEGIN_CRITICAL_SECTION(self);
    old[0] = self->lock;
    old[1] = self->acquire;
    old[2] = self->release;
    old[3] = self->release_save;
    old[4] = self->acquire_restore;
    old[5] = self->is_owned;
    self->lock = lock;
    self->acquire = acquire;
    self->release = release;
    self->release_save = release_save;
    self->acquire_restore = acquire_restore;
    self->is_owned = is_owned;
    self->kind = kind;
    Py_END_CRITICAL_SECTION();
    for (int i = 0; i < 6; i++)
        Py_XDECREF(old[i]);
    return 0;
error:
    Py_DECREF(lock);
    Py_XDECREF(acquire);
    Py_XDECREF(release);
    Py_XDECREF(release_save);
    Py_XDECREF(acquire_restore);
    Py_XDECREF(is_owned);
    return -1;
}

static int cond_traverse(ConditionObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->lock);
    Py_VISIT(self->acquire);
    Py_VISIT(self->release);
    Py_VISIT(self->release_save);
    Py_VISIT(self->acquire_restore);
    Py_VISIT(self->is_owned);
    return 0;
}

static int cond_clear(ConditionObject *self)
{
    self->kind = CC_LOCK_OTHER;
    Py_CLEAR(self->lock);
    Py_CLEAR(self->acquire);
    Py_CLEAR(self->release);
    Py_CLEAR(self->release_save);
    Py_CLEAR(self->acquire_restore);
    Py_CLEAR(self->is_owned);
    return 0;
}

static void cond_dealloc(ConditionObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    cond_clear(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *cond_repr(ConditionObject *self)
{
    if (!self->lock)
        return PyUnicode_FromFormat("<Condition(None, %zd)>", cc_waitlist_len(&self->waiters));
    PyObject *lock = Py_NewRef(self->lock);
    PyObject *r = PyUnicode_FromFormat("<Condition(%S, %zd)>", lock, cc_waitlist_len(&self->waiters));
    Py_DECREF(lock);
    return r;
}

static PyMethodDef cond_methods[] = {
    {"wait", (PyCFunction)(void (*)(void))cond_wait, METH_FASTCALL | METH_KEYWORDS,
     "wait(timeout=None) -> bool: release the lock, wait to be notified, re-take the lock.\n"
     "Returns False if the timeout passed."},
    {"wait_for", (PyCFunction)(void (*)(void))cond_wait_for, METH_FASTCALL | METH_KEYWORDS,
     "wait_for(predicate, timeout=None): wait until predicate() is true; returns its last result."},
    {"notify", (PyCFunction)(void (*)(void))cond_notify, METH_FASTCALL | METH_KEYWORDS,
     "notify(n=1): wake up to n waiting threads."},
    {"notify_all", (PyCFunction)cond_notify_all, METH_NOARGS, "notify_all(): wake every waiting thread."},
    {"notifyAll", (PyCFunction)cond_notifyAll, METH_NOARGS, "Deprecated alias of notify_all()."},
    {"__enter__", (PyCFunction)cond_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))cond_exit, METH_FASTCALL, NULL},
    {"_is_owned", (PyCFunction)cond_is_owned_method, METH_NOARGS, NULL},
    {"_release_save", (PyCFunction)cond_release_save, METH_NOARGS, NULL},
    {"_acquire_restore", (PyCFunction)cond_acquire_restore, METH_O, NULL},
    {"_at_fork_reinit", (PyCFunction)cond_at_fork_reinit, METH_NOARGS, NULL},
    {NULL, NULL},
};

static PyGetSetDef cond_getset[] = {
    {"acquire", (getter)cond_get_acquire, NULL, "The lock's acquire method.", NULL},
    {"release", (getter)cond_get_release, NULL, "The lock's release method.", NULL},
    {"_lock", (getter)cond_get_lock, NULL, NULL, NULL},
    {NULL},
};

static PyMemberDef cond_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(ConditionObject, weakreflist), READONLY},
    {NULL},
};

static PyType_Slot cond_slots[] = {
    {Py_tp_new, cond_new},
    {Py_tp_init, cond_init},
    {Py_tp_dealloc, cond_dealloc},
    {Py_tp_traverse, cond_traverse},
    {Py_tp_clear, cond_clear},
    {Py_tp_repr, cond_repr},
    {Py_tp_methods, cond_methods},
    {Py_tp_getset, cond_getset},
    {Py_tp_members, cond_members},
    {Py_tp_doc, "Condition(lock=None): a condition variable; the native counterpart of threading.Condition.\n"
                "The default lock is a new cconc RLock."},
    {0, NULL},
};

static PyType_Spec cond_spec = {
    .name = "cconc.threading.Condition",
    .basicsize = sizeof(ConditionObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = cond_slots,
};

int cc_condition_exec(PyObject *module, cc_state *st)
{
    return cc_add_type(module, &cond_spec, NULL, &st->Condition_type);
}
