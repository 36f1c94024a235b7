/* Encoding objects for the channel (see codec.h). */
#include "codec.h"

#include <string.h>

static void set_msg(cc_mp_item *item, int tag, const char *data, size_t len)
{
    item->msg.tag = tag;
    item->msg.data = data;
    item->msg.len = len;
}

int cc_mp_encode(cc_state *st, PyObject *obj, cc_mp_item *item)
{
    item->owner = NULL;
    item->has_view = 0;
    if (obj == Py_None || obj == Py_True || obj == Py_False) {
        set_msg(item, obj == Py_None ? CC_TAG_NONE : obj == Py_True ? CC_TAG_TRUE : CC_TAG_FALSE, NULL, 0);
        return 0;
    }
    if (PyLong_CheckExact(obj)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
        if (!overflow) {
            int64_t v64 = (int64_t)v;
            memcpy(item->scalar, &v64, sizeof v64);
            set_msg(item, CC_TAG_INT, item->scalar, sizeof v64);
            return 0;
        }
    }
    else if (PyFloat_CheckExact(obj)) {
        double d = PyFloat_AS_DOUBLE(obj);
        memcpy(item->scalar, &d, sizeof d);
        set_msg(item, CC_TAG_FLOAT, item->scalar, sizeof d);
        return 0;
    }
    else if (PyBytes_CheckExact(obj)) {
        item->owner = Py_NewRef(obj);
        set_msg(item, CC_TAG_BYTES, PyBytes_AS_STRING(obj), (size_t)PyBytes_GET_SIZE(obj));
        return 0;
    }
    else if (PyUnicode_CheckExact(obj)) {
        Py_ssize_t n;
        const char *utf8 = PyUnicode_AsUTF8AndSize(obj, &n);
        if (utf8) {
            item->owner = Py_NewRef(obj);
            set_msg(item, CC_TAG_STR, utf8, (size_t)n);
            return 0;
        }
        PyErr_Clear(); /* lone surrogates: the pickler handles them */
    }
    if (!st->mp_dumps) {
        PyErr_SetString(PyExc_RuntimeError, "cconc.multiprocessing is not initialised");
        return -1;
    }
    PyObject *pickle = PyObject_CallOneArg(st->mp_dumps, obj);
    if (!pickle)
        return -1;
    if (PyObject_GetBuffer(pickle, &item->view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(pickle);
        return -1;
    }
    item->has_view = 1;
    item->owner = pickle;
    set_msg(item, CC_TAG_PICKLE, item->view.buf, (size_t)item->view.len);
    return 0;
}

void cc_mp_item_release(cc_mp_item *item)
{
    if (item->has_view) {
        PyBuffer_Release(&item->view);
        item->has_view = 0;
    }
    Py_CLEAR(item->owner);
}

PyObject *cc_mp_decode(int tag, const char *data, size_t len, PyObject *bytes, int *pickled)
{
    *pickled = 0;
    switch (tag) {
    case CC_TAG_NONE:
        Py_XDECREF(bytes);
        Py_RETURN_NONE;
    case CC_TAG_TRUE:
        Py_XDECREF(bytes);
        Py_RETURN_TRUE;
    case CC_TAG_FALSE:
        Py_XDECREF(bytes);
        Py_RETURN_FALSE;
    case CC_TAG_INT:
    case CC_TAG_FLOAT:
        Py_XDECREF(bytes);
        if (len != 8)
            break;
        if (tag == CC_TAG_INT) {
            int64_t v;
            memcpy(&v, data, sizeof v);
            return PyLong_FromLongLong((long long)v);
        }
        else {
            double d;
            memcpy(&d, data, sizeof d);
            return PyFloat_FromDouble(d);
        }
    case CC_TAG_STR: {
        PyObject *s = PyUnicode_DecodeUTF8(data, (Py_ssize_t)len, "surrogatepass");
        Py_XDECREF(bytes);
        return s;
    }
    case CC_TAG_PICKLE: /* the pickle, as bytes */
    case CC_TAG_BYTES:
        *pickled = tag == CC_TAG_PICKLE;
        return bytes ? bytes : PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
    default:
        Py_XDECREF(bytes);
        break;
    }
    PyErr_SetString(PyExc_RuntimeError, "corrupted cconc queue message");
    return NULL;
}

PyObject *cc_mp_unpickle(cc_state *st, PyObject *pickle)
{
    if (!st->mp_loads) {
        PyErr_SetString(PyExc_RuntimeError, "cconc.multiprocessing is not initialised");
        return NULL;
    }
    return PyObject_CallOneArg(st->mp_loads, pickle);
}
