/* selectors.SelectSelector's system call: select() on copies of the interest sets. */
#include "selector.h"

PyObject *cc_sel_select_select(SelectorObject *self, PyObject *timeout)
{
    int64_t ns;
    if (cc_sel_timeout_ns(timeout, &ns) < 0)
        return NULL;
    if (self->n_overflow) {
        PyErr_SetString(PyExc_OverflowError, "Python int too large to convert to C int");
        return NULL;
    }
    if (self->n_out_of_range) {
        PyErr_SetString(PyExc_ValueError, "filedescriptor out of range in select()");
        return NULL;
    }
    size_t got;
    fd_set *sets = cc_sel_buf_take(self, 2 * sizeof(fd_set), &got);
    if (!sets)
        return NULL;
    int64_t deadline = cc_sel_deadline(ns, CC_SEL_NS);
    int n, err, nfds;
    do {
        /* (Re)load the interest sets: select() overwrites them. */
        sets[0] = self->rset;
        sets[1] = self->wset;
        nfds = self->maxfd + 1;
        struct timeval tv, *tvp = NULL;
        if (ns >= 0) {
            tv.tv_sec = (time_t)(ns / 1000000000);
            tv.tv_usec = (suseconds_t)((ns % 1000000000 + 999) / 1000);
            if (tv.tv_usec >= 1000000) {
                tv.tv_sec++;
                tv.tv_usec -= 1000000;
            }
            tvp = &tv;
        }
        CC_SEL_SYSCALL(ns, n = select(nfds, &sets[0], &sets[1], NULL, tvp); err = errno);
    } while (n < 0 && cc_sel_wait_again(err, deadline, CC_SEL_NS, &ns, &n));
    sel_ready ready = cc_sel_ready_new(n);
    for (int fd = 0, left = n; fd < nfds && left > 0 && ready.list; fd++) {
        int r = FD_ISSET(fd, &sets[0]), w = FD_ISSET(fd, &sets[1]);
        if (!r && !w)
            continue;
        left -= (r != 0) + (w != 0);
        cc_sel_ready_add(self, &ready, fd, (r ? EV_R : 0) | (w ? EV_W : 0));
    }
    cc_sel_buf_give_back(self, sets, got);
    return cc_sel_ready_finish(&ready);
}
