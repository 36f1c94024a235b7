/* selectors.KqueueSelector's system calls (BSD, macOS). Built only where
 * <sys/event.h> exists; it mirrors the stdlib's class, one filter per event. */
#include "selector.h"

#ifdef CC_HAVE_KQUEUE
#include <fcntl.h>
#include <sys/event.h>
#include <unistd.h>

int cc_sel_kqueue_open(SelectorObject *self)
{
    if ((self->kfd = kqueue()) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    (void)fcntl(self->kfd, F_SETFD, FD_CLOEXEC);
    return 0;
}

static int kq_change(int kq, long fd, int filter, int flags)
{
    struct kevent kev;
    EV_SET(&kev, (uintptr_t)fd, filter, flags, 0, 0, NULL);
    /* A change list with no event buffer never blocks: keep the GIL, as
     * epoll_ctl does. */
    return kevent(kq, &kev, 1, NULL, 0, NULL);
}

int cc_sel_kqueue_add(SelectorObject *self, long fd, int mask)
{
    int kq = cc_sel_kfd(self);
    if (kq < 0)
        return -1;
    if ((mask & EV_R) && kq_change(kq, fd, EVFILT_READ, EV_ADD) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if ((mask & EV_W) && kq_change(kq, fd, EVFILT_WRITE, EV_ADD) < 0) {
        int err = errno;
        if (mask & EV_R)
            (void)kq_change(kq, fd, EVFILT_READ, EV_DELETE);
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->kq_filters += ((mask & EV_R) != 0) + ((mask & EV_W) != 0);
    return 0;
}

/* Errors are ignored, as the stdlib does: the fd may have been closed since. */
void cc_sel_kqueue_del(SelectorObject *self, long fd, int mask)
{
    self->kq_filters -= ((mask & EV_R) != 0) + ((mask & EV_W) != 0);
    if (self->kfd >= 0) {
        if (mask & EV_R)
            (void)kq_change(self->kfd, fd, EVFILT_READ, EV_DELETE);
        if (mask & EV_W)
            (void)kq_change(self->kfd, fd, EVFILT_WRITE, EV_DELETE);
    }
}

PyObject *cc_sel_select_kqueue(SelectorObject *self, PyObject *timeout)
{
    int64_t ns;
    if (cc_sel_timeout_ns(timeout, &ns) < 0 || cc_sel_kfd(self) < 0)
        return NULL;
    /* As the stdlib: at least one slot, or kevent() would ignore the timeout. */
    int maxev = self->kq_filters < 1 ? 1 : self->kq_filters > INT_MAX / 64 ? INT_MAX / 64 : (int)self->kq_filters;
    size_t got;
    struct kevent *evs = cc_sel_buf_take(self, (size_t)maxev * sizeof(struct kevent), &got);
    if (!evs)
        return NULL;
    int64_t deadline = cc_sel_deadline(ns, CC_SEL_NS);
    int n = -1, err;
    do {
        struct timespec ts, *tsp = NULL;
        if (ns >= 0) {
            ts.tv_sec = (time_t)(ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            tsp = &ts;
        }
        int kq = cc_sel_kfd(self);
        if (kq < 0)
            break;
        CC_SEL_SYSCALL(ns, n = kevent(kq, NULL, 0, evs, maxev, tsp); err = errno);
    } while (n < 0 && cc_sel_wait_again(err, deadline, CC_SEL_NS, &ns, &n));
    sel_ready ready = cc_sel_ready_new(n);
    for (int i = 0; i < n && ready.list; i++) {
        int events = evs[i].filter == EVFILT_READ ? EV_R : evs[i].filter == EVFILT_WRITE ? EV_W : 0;
        cc_sel_ready_add(self, &ready, (long)evs[i].ident, events);
    }
    cc_sel_buf_give_back(self, evs, got);
    return cc_sel_ready_finish(&ready);
}

#endif /* CC_HAVE_KQUEUE */
