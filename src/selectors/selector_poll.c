/* selectors.PollSelector's system call: poll() on a copy of the interest set
 * (register/unregister keep editing the original meanwhile). */
#include "selector.h"

#include <string.h>

PyObject *cc_sel_select_poll(SelectorObject *self, PyObject *timeout)
{
    int64_t ms;
    if (cc_sel_timeout_ms(timeout, &ms) < 0)
        return NULL;
    Py_ssize_t nfds = self->npfds;
    size_t got;
    struct pollfd *pfds = cc_sel_buf_take(self, (size_t)(nfds ? nfds : 1) * sizeof(struct pollfd), &got);
    if (!pfds)
        return NULL;
    if (nfds)
        memcpy(pfds, self->pfds, (size_t)nfds * sizeof(struct pollfd));
    int64_t deadline = cc_sel_deadline(ms, CC_SEL_MS);
    int n, err;
    do {
        CC_SEL_SYSCALL(ms, n = poll(pfds, (nfds_t)nfds, (int)ms); err = errno);
    } while (n < 0 && cc_sel_wait_again(err, deadline, CC_SEL_MS, &ms, &n));
    sel_ready ready = cc_sel_ready_new(n);
    for (Py_ssize_t i = 0, found = 0; i < nfds && found < n && ready.list; i++) {
        short e = pfds[i].revents;
        if (!e)
            continue;
        found++;
        int events = ((e & ~POLLIN) ? EV_W : 0) | ((e & ~POLLOUT) ? EV_R : 0);
        cc_sel_ready_add(self, &ready, pfds[i].fd, events);
    }
    cc_sel_buf_give_back(self, pfds, got);
    return cc_sel_ready_finish(&ready);
}
