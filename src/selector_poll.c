/* selectors.PollSelector's system call: poll() on a copy of the interest set
 * (register/unregister keep editing the original meanwhile). */
#include "selector.h"

#include <string.h>

PyObject *cc_sel_select_poll(SelectorObject *self, PyObject *timeout)
{
    int ms;
    if (cc_sel_timeout_ms(timeout, &ms) < 0)
        return NULL;
    Py_ssize_t nfds = self->npfds;
    size_t got;
    struct pollfd *pfds = cc_sel_buf_take(self, (size_t)(nfds ? nfds : 1) * sizeof(struct pollfd), &got);
    if (!pfds)
        return NULL;
    if (nfds)
        memcpy(pfds, self->pfds, (size_t)nfds * sizeof(struct pollfd));
    int64_t deadline = ms > 0 ? cc_monotonic_ns() + (int64_t)ms * 1000000 : 0;
    int n, err;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        n = poll(pfds, (nfds_t)nfds, ms);
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
    for (Py_ssize_t i = 0, found = 0; i < nfds && found < n; i++) {
        short e = pfds[i].revents;
        if (!e)
            continue;
        found++;
        int events = ((e & ~POLLIN) ? EV_W : 0) | ((e & ~POLLOUT) ? EV_R : 0);
        if (cc_sel_ready_add(self, list, &j, pfds[i].fd, events) < 0) {
            Py_DECREF(cc_sel_ready_finish(list, j));
            goto fail;
        }
    }
    cc_sel_buf_give_back(self, pfds, got);
    return cc_sel_ready_finish(list, j);
fail:
    cc_sel_buf_give_back(self, pfds, got);
    return NULL;
}
