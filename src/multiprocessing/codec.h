/* Objects to channel messages and back: the stdlib's ForkingPickler for
 * everything, with exact built-in scalars, bytes and str sent as their raw
 * contents (what pickling them would round-trip to, without the pickler). */
#ifndef CC_MP_CODEC_H
#define CC_MP_CODEC_H

#include "channel.h"

typedef struct {
    cc_chan_msg msg;
    char scalar[8];  /* the payload of an int or float */
    PyObject *owner; /* keeps msg.data alive */
    Py_buffer view;  /* the pickle's buffer, when has_view */
    int has_view;
} cc_mp_item;

/* Encode obj (pickling may run Python code). 0, or -1 with the pickler's exception. */
int cc_mp_encode(cc_state *st, PyObject *obj, cc_mp_item *item);
void cc_mp_item_release(cc_mp_item *item);

/* The object a message stands for, built without running Python code (safe
 * under the channel's read lock). For a pickle it is the pickle as bytes and
 * *pickled is set: cc_mp_unpickle it once the lock is released. `bytes`, when
 * not NULL, already holds the payload (a long message); it is stolen. */
PyObject *cc_mp_decode(int tag, const char *data, size_t len, PyObject *bytes, int *pickled);
PyObject *cc_mp_unpickle(cc_state *st, PyObject *pickle);

#endif /* CC_MP_CODEC_H */
