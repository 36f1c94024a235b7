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
    int epfd = cc_sel_kfd(self);
    if (epfd < 0)
        return -1;
    struct epoll_event ev = {0};
    ev.events = ((mask & EV_R) ? EPOLLIN : 0) | ((mask & EV_W) ? EPOLLOUT : 0);
    ev.data.fd = (int)fd;
    if (epoll_ctl(epfd, op, (int)fd, &ev) < 0) {
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
    int64_t ms;
    if (cc_sel_timeout_ms(timeout, &ms) < 0 || cc_sel_kfd(self) < 0)
        return NULL;
    /* As the stdlib: room for every registered fd, and at least one (epoll_wait() refuses 0). */
    Py_ssize_t nreg = PyDict_GET_SIZE(self->fd_to_key);
    int maxev = nreg < 1 ? 1 : nreg > INT_MAX / (Py_ssize_t)sizeof(struct epoll_event) ? INT_MAX / (int)sizeof(struct epoll_event) : (int)nreg;
    size_t got;
    struct epoll_event *evs = cc_sel_buf_take(self, (size_t)maxev * sizeof(struct epoll_event), &got);
    if (!evs)
        return NULL;
    int64_t deadline = cc_sel_deadline(ms, CC_SEL_MS);
    int n = -1, err;
    do {
        int epfd = cc_sel_kfd(self);
        if (epfd < 0)
            break;
        CC_SEL_SYSCALL(ms, n = epoll_wait(epfd, evs, maxev, (int)ms); err = errno);
    } while (n < 0 && cc_sel_wait_again(err, deadline, CC_SEL_MS, &ms, &n));
    sel_ready ready = cc_sel_ready_new(n);
    for (int i = 0; i < n && ready.list; i++) {
        uint32_t e = evs[i].events;
        int events = ((e & ~(uint32_t)EPOLLIN) ? EV_W : 0) | ((e & ~(uint32_t)EPOLLOUT) ? EV_R : 0);
        cc_sel_ready_add(self, &ready, evs[i].data.fd, events);
    }
    cc_sel_buf_give_back(self, evs, got);
    return cc_sel_ready_finish(&ready);
}

#endif /* CC_HAVE_EPOLL */
