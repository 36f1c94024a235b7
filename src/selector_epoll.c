/* selectors.EpollSelector's system calls (Linux). */
#include "selector.h"

#ifdef CC_HAVE_EPOLL
#include <sys/epoll.h>

int cc_sel_epoll_open(SelectorObject *self)
{
    if ((self->kfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

static int epoll_ctl_mask(SelectorObject *self, int op, long fd, int mask)
{
    if (self->kfd < 0) {
        cc_sel_closed_kfd(self);
        return -1;
    }
    struct epoll_event ev = {0};
    ev.events = ((mask & EV_R) ? EPOLLIN : 0) | ((mask & EV_W) ? EPOLLOUT : 0);
    ev.data.fd = (int)fd;
    if (epoll_ctl(self->kfd, op, (int)fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

int cc_sel_epoll_add(SelectorObject *self, long fd, int mask)
{
    return epoll_ctl_mask(self, EPOLL_CTL_ADD, fd, mask);
}

int cc_sel_epoll_mod(SelectorObject *self, long fd, int mask)
{
    return epoll_ctl_mask(self, EPOLL_CTL_MOD, fd, mask);
}

/* Errors are ignored, as the stdlib does: the fd may have been closed since. */
void cc_sel_epoll_del(SelectorObject *self, long fd)
{
    if (self->kfd >= 0) {
        struct epoll_event ev = {0};
        (void)epoll_ctl(self->kfd, EPOLL_CTL_DEL, (int)fd, &ev);
    }
}

PyObject *cc_sel_select_epoll(SelectorObject *self, PyObject *timeout)
{
    int ms;
    if (cc_sel_timeout_ms(timeout, &ms) < 0)
        return NULL;
    if (self->kfd < 0)
        return cc_sel_closed_kfd(self);
    Py_ssize_t nreg = PyDict_GET_SIZE(self->fd_to_key);
    int maxev = nreg < 1 ? 1 : nreg > INT_MAX / (Py_ssize_t)sizeof(struct epoll_event) ? INT_MAX / (int)sizeof(struct epoll_event) : (int)nreg;
    size_t got;
    struct epoll_event *evs = cc_sel_buf_take(self, (size_t)maxev * sizeof(struct epoll_event), &got);
    if (!evs)
        return NULL;
    int64_t deadline = ms > 0 ? cc_monotonic_ns() + (int64_t)ms * 1000000 : 0;
    int n, err;
    for (;;) {
        int epfd = self->kfd;
        if (epfd < 0) {
            cc_sel_closed_kfd(self);
            goto fail;
        }
        Py_BEGIN_ALLOW_THREADS
        n = epoll_wait(epfd, evs, maxev, ms);
        err = errno;
        Py_END_ALLOW_THREADS
        if (n >= 0)
            break;
        if (err != EINTR) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            goto fail;
        }
        if (PyErr_CheckSignals() < 0)
            goto fail;
        if (ms > 0 && (ms = cc_sel_ms_left(deadline)) == 0) {
            n = 0;
            break;
        }
    }
    PyObject *list = PyList_New(n);
    if (!list)
        goto fail;
    Py_ssize_t j = 0;
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        int events = ((e & ~(uint32_t)EPOLLIN) ? EV_W : 0) | ((e & ~(uint32_t)EPOLLOUT) ? EV_R : 0);
        if (cc_sel_ready_add(self, list, &j, evs[i].data.fd, events) < 0) {
            Py_DECREF(cc_sel_ready_finish(list, j));
            goto fail;
        }
    }
    cc_sel_buf_give_back(self, evs, got);
    return cc_sel_ready_finish(list, j);
fail:
    cc_sel_buf_give_back(self, evs, got);
    return NULL;
}

#endif /* CC_HAVE_EPOLL */
