/* Starting threads without creating an OS thread each time.
 *
 * _start_thread(func) runs func() in a new Python thread state, as
 * _thread.start_new_thread does, but on an OS thread kept from an earlier
 * thread when one is idle. Each run gets a fresh thread state (created and
 * deleted by PyGILState_Ensure/Release), so everything tied to the thread
 * state is per run, as with a new OS thread: threading.local data, the
 * sentinel lock of _thread._set_sentinel (released when the state is
 * deleted, which is what Thread.join waits for), the recursion depth, the
 * exception state. Idle OS threads leave after IDLE_SECONDS.
 *
 * Only in the main interpreter (PyGILState works there only), with the
 * default stack size (a cached thread has the stack it was created with),
 * and not while finalizing; otherwise _start_thread returns None and the
 * caller uses _thread.start_new_thread.
 *
 * A new OS thread inherits its creator's signal mask and CPU affinity; a
 * reused one is given its starter's, so the difference cannot be seen.
 *
 * Before os.fork(), _drain_thread_cache() ends the idle OS threads and joins
 * them, so a fork after threads have finished sees as few threads as with the
 * stdlib (3.12+ warns about forking a multi-threaded process). A worker that
 * forks does not go idle in the child: there it ends when its func returns,
 * and the child process with it, as with the stdlib. */
#include "cconc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef __linux__
#  include <sched.h>
#  include <linux/futex.h>
#  include <sys/syscall.h>
#  include <unistd.h>
#endif

#define MAX_IDLE 16
#define IDLE_SECONDS 2

enum { WORD_IDLE = 0, WORD_WORK = 1, WORD_EXIT = 2 };

typedef struct worker {
    struct worker *next;
    int idle;              /* on the idle list (guarded by cache_mutex) */
    _Atomic uint32_t word; /* WORD_WORK: func handed over; WORD_EXIT: drained */
    pthread_t thread;      /* joinable; detached by the thread itself when it leaves idle */
    unsigned long ident;
    PyObject *func;        /* strong reference, handed over with `word` */
    /* What a new OS thread would inherit from the starter (reused threads only). */
    int inherit;
    sigset_t sigmask;
#ifdef __linux__
    int has_affinity;
    cpu_set_t affinity;
#endif
} worker;

static pthread_mutex_t cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static worker *idle_head = NULL;
static int idle_count = 0;
/* Workers whose func has returned (its Thread may already be joined) and that
 * are not on the idle list yet: the drainer waits for them, or a fork right
 * after join() would leave them alive in the parent, idling (cache_mutex). */
static int finishing = 0;
static pthread_cond_t finishing_cond = PTHREAD_COND_INITIALIZER;
static int atfork_registered = 0;
/* In a forked child, the one thread that forked (a cached worker, perhaps):
 * it ends with its func, as a new OS thread would (the process ends with it).
 * Not thread-local storage: a _Thread_local in the extension gives every
 * worker dynamic TLS, which LeakSanitizer's tracer crashes on at exit. */
static pthread_t forking_thread;
static int have_forking_thread = 0;

#ifdef __linux__
static void word_wake(_Atomic uint32_t *word) { syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

/* Wait while *word == 0, at most until `deadline` (CLOCK_MONOTONIC ns, or CC_FOREVER). */
static void word_wait(_Atomic uint32_t *word, cc_deadline deadline)
{
    while (atomic_load(word) == 0) {
        struct timespec ts, *tsp = NULL;
        if (deadline != CC_FOREVER) {
            int64_t left = deadline - cc_monotonic_ns();
            if (left <= 0)
                return;
            ts.tv_sec = (time_t)(left / 1000000000);
            ts.tv_nsec = (long)(left % 1000000000);
            tsp = &ts;
        }
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 0, tsp, NULL, 0);
    }
}
#else
static pthread_cond_t cache_cond = PTHREAD_COND_INITIALIZER;
static void word_wake(_Atomic uint32_t *word)
{
    pthread_mutex_lock(&cache_mutex);
    pthread_cond_broadcast(&cache_cond);
    pthread_mutex_unlock(&cache_mutex);
}
static void word_wait(_Atomic uint32_t *word, cc_deadline deadline)
{
    pthread_mutex_lock(&cache_mutex);
    while (atomic_load(word) == 0) {
        if (deadline == CC_FOREVER) {
            pthread_cond_wait(&cache_cond, &cache_mutex);
            continue;
        }
        struct timespec ts;
        if (cc_deadline_to_realtime(deadline, &ts) < 0)
            break;
        pthread_cond_timedwait(&cache_cond, &cache_mutex, &ts);
    }
    pthread_mutex_unlock(&cache_mutex);
}
#endif

/* Run one func in a fresh thread state, as _thread's thread_run does. */
static void run_one(PyObject *func)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallNoArgs(func);
    if (r)
        Py_DECREF(r);
    else if (PyErr_ExceptionMatches(PyExc_SystemExit))
        PyErr_Clear();
    else
        PyErr_WriteUnraisable(func);
    Py_DECREF(func);
    /* Counted before join() can return (wait_for_work uncounts it). */
    pthread_mutex_lock(&cache_mutex);
    finishing++;
    pthread_mutex_unlock(&cache_mutex);
    /* Deletes the thread state: releases its sentinel lock and the GIL. */
    PyGILState_Release(g);
}

/* The worker has left the finishing state (cache_mutex held). */
static void finished(void)
{
    if (--finishing == 0)
        pthread_cond_broadcast(&finishing_cond);
}

/* Park on the idle list until handed a func (WORD_WORK), drained (WORD_EXIT:
 * the drainer joins and frees us) or idle too long (WORD_IDLE: we leave on
 * our own, detached). */
static uint32_t wait_for_work(worker *w)
{
    pthread_mutex_lock(&cache_mutex);
    finished();
    if ((have_forking_thread && pthread_equal(pthread_self(), forking_thread)) || idle_count >= MAX_IDLE) {
        pthread_mutex_unlock(&cache_mutex);
        return WORD_IDLE;
    }
    atomic_store(&w->word, WORD_IDLE);
    w->idle = 1;
    w->next = idle_head;
    idle_head = w;
    idle_count++;
    pthread_mutex_unlock(&cache_mutex);

    word_wait(&w->word, cc_monotonic_ns() + (int64_t)IDLE_SECONDS * 1000000000);
    uint32_t word = atomic_load(&w->word);
    if (word != WORD_IDLE)
        return word;
    pthread_mutex_lock(&cache_mutex);
    if (!w->idle) {
        /* A starter or the drainer took us off the list as we timed out. */
        pthread_mutex_unlock(&cache_mutex);
        word_wait(&w->word, CC_FOREVER);
        return atomic_load(&w->word);
    }
    for (worker **p = &idle_head; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            break;
        }
    }
    w->idle = 0;
    idle_count--;
    pthread_mutex_unlock(&cache_mutex);
    return WORD_IDLE;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    uint32_t word;
    do {
        if (w->inherit) {
            /* Only when they differ: setting the affinity costs a migration. */
            sigset_t mask;
            if (pthread_sigmask(SIG_SETMASK, NULL, &mask) != 0 || memcmp(&mask, &w->sigmask, sizeof(mask)) != 0)
                pthread_sigmask(SIG_SETMASK, &w->sigmask, NULL);
#ifdef __linux__
            cpu_set_t mine;
            if (w->has_affinity && (sched_getaffinity(0, sizeof(mine), &mine) != 0 ||
                                    !CPU_EQUAL(&mine, &w->affinity)))
                sched_setaffinity(0, sizeof(w->affinity), &w->affinity);
#endif
        }
        run_one(w->func);
        w->func = NULL;
    } while ((word = wait_for_work(w)) == WORD_WORK);
    if (word == WORD_IDLE) {
        pthread_detach(pthread_self());
        free(w);
    }
    return NULL;
}

/* os.fork()'s before-hook: end the idle threads and wait until they are gone.
 * It keeps the GIL: a GIL released here would let another Python thread run
 * between the caller's last statement and the fork, which the stdlib's fork
 * never does (a thread woken just before the fork would take what it was
 * woken for, and the child would lack it). The threads it waits for need no
 * GIL: an idle one exits without it, a finishing one has released it, except
 * when a destructor run by its thread-state clean-up released the GIL and
 * wants it back: so finishing ones get a bounded wait (FINISH_WAIT_NS), past
 * which they are left to go idle in the parent. */
#define FINISH_WAIT_NS (100 * 1000000)
static PyObject *drain_thread_cache(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    cc_deadline give_up = cc_monotonic_ns() + FINISH_WAIT_NS;
    pthread_mutex_lock(&cache_mutex);
    while (finishing > 0) { /* they are about to go idle: take them too */
        struct timespec ts;
        if (cc_deadline_to_realtime(give_up, &ts) < 0 ||
            pthread_cond_timedwait(&finishing_cond, &cache_mutex, &ts) == ETIMEDOUT)
            break;
    }
    worker *list = idle_head;
    for (worker *w = list; w; w = w->next)
        w->idle = 0;
    idle_head = NULL;
    idle_count = 0;
    pthread_mutex_unlock(&cache_mutex);
    for (worker *w = list; w; w = w->next) {
        atomic_store(&w->word, WORD_EXIT);
        word_wake(&w->word);
    }
    while (list) {
        worker *next = list->next;
        pthread_join(list->thread, NULL);
        free(list);
        list = next;
    }
    Py_RETURN_NONE;
}

/* The forked child has none of the parent's threads. */
static void after_fork_child(void)
{
    pthread_mutex_init(&cache_mutex, NULL);
    pthread_cond_init(&finishing_cond, NULL);
    finishing = 0;
    idle_head = NULL; /* the nodes belonged to threads of the parent; leaked, as they may be mid-use */
    idle_count = 0;
    forking_thread = pthread_self();
    have_forking_thread = 1;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void) { atfork_registered = pthread_atfork(NULL, NULL, after_fork_child) == 0; }

static int cache_usable(void)
{
    return PyInterpreterState_Get() == PyInterpreterState_Main() && PyThread_get_stacksize() == 0 &&
#if PY_VERSION_HEX >= 0x030D0000
           !Py_IsFinalizing();
#else
           !_Py_IsFinalizing();
#endif
}

static PyObject *start_thread(PyObject *module, PyObject *func)
{
    if (!PyCallable_Check(func)) {
        PyErr_SetString(PyExc_TypeError, "first arg must be callable");
        return NULL;
    }
    if (!cache_usable())
        Py_RETURN_NONE;
    /* Once, even with threads starting threads in parallel (no GIL). */
    pthread_once(&atfork_once, register_atfork);
    if (!atfork_registered)
        Py_RETURN_NONE;
    worker *w;
    pthread_mutex_lock(&cache_mutex);
    w = idle_head;
    if (w) {
        idle_head = w->next;
        idle_count--;
        w->idle = 0;
    }
    pthread_mutex_unlock(&cache_mutex);
    if (w) {
        w->inherit = 1;
        pthread_sigmask(SIG_SETMASK, NULL, &w->sigmask);
#ifdef __linux__
        w->has_affinity = sched_getaffinity(0, sizeof(w->affinity), &w->affinity) == 0;
#endif
        w->func = Py_NewRef(func);
        atomic_store(&w->word, WORD_WORK);
        word_wake(&w->word);
        return PyLong_FromUnsignedLong(w->ident);
    }
    w = calloc(1, sizeof(worker));
    if (!w)
        return PyErr_NoMemory();
    w->func = Py_NewRef(func);
    /* Held until ident is written: the thread goes idle (where another
     * starter reads ident) only under cache_mutex. With the GIL, that the new
     * thread needs the GIL we hold would do; without one it may finish first. */
    pthread_mutex_lock(&cache_mutex);
    int err = pthread_create(&w->thread, NULL, worker_main, w);
    if (err == 0)
        w->ident = (unsigned long)(uintptr_t)w->thread;
    pthread_mutex_unlock(&cache_mutex);
    if (err != 0) {
        Py_DECREF(func);
        free(w);
        PyErr_SetString(PyExc_RuntimeError, "can't start new thread");
        return NULL;
    }
    return PyLong_FromUnsignedLong(w->ident);
}

static PyMethodDef thread_start_functions[] = {
    {"_start_thread", (PyCFunction)start_thread, METH_O,
     "_start_thread(func) -> ident or None: run func() in a new thread state on a cached or new OS\n"
     "thread; None when the cache cannot be used (use _thread.start_new_thread then)."},
    {"_drain_thread_cache", (PyCFunction)drain_thread_cache, METH_NOARGS,
     "_drain_thread_cache(): end the idle cached OS threads and wait for them (before fork)."},
    {NULL, NULL},
};

int cc_thread_start_exec(PyObject *module, cc_state *st)
{
    return PyModule_AddFunctions(module, thread_start_functions);
}
