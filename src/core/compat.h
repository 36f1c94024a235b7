/* Python-version shims, so the sources read like current CPython. */
#ifndef CCONC_COMPAT_H
#define CCONC_COMPAT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Before 3.13 there is no free-threaded build: the GIL alone guards object
 * state. (On a 3.13+ GIL build CPython's own macros are the same braces.) */
#ifndef Py_BEGIN_CRITICAL_SECTION
#  define Py_BEGIN_CRITICAL_SECTION(op) {
#  define Py_END_CRITICAL_SECTION() }
#endif
#ifndef Py_BEGIN_CRITICAL_SECTION2
#  define Py_BEGIN_CRITICAL_SECTION2(a, b) {
#  define Py_END_CRITICAL_SECTION2() }
#endif

/* A word also read outside the lock that guards its writes: a relaxed atomic
 * load without the GIL, a plain read with it (no cost on the GIL build). */
#ifdef Py_GIL_DISABLED
#  define CC_LOAD_SSIZE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#  define CC_LOAD_INT(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#  define CC_LOAD_PTR(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#  define CC_STORE_INT(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#else
#  define CC_LOAD_SSIZE(x) (x)
#  define CC_LOAD_INT(x) (x)
#  define CC_LOAD_PTR(x) (x)
#  define CC_STORE_INT(x, v) ((x) = (v))
#endif

/* Method wrappers that run an implementation inside the object's critical
 * section. On a GIL build they are a direct call the compiler inlines. */
#define CC_CS_NOARGS(name, Type)                                                \
    static PyObject *name(Type *self, PyObject *Py_UNUSED(ignored))            \
    {                                                                           \
        PyObject *res;                                                          \
        Py_BEGIN_CRITICAL_SECTION(self);                                        \
        res = name##_impl(self);                                                \
        Py_END_CRITICAL_SECTION();                                              \
        return res;                                                             \
    }
#define CC_CS_O(name, Type)                                                     \
    static PyObject *name(Type *self, PyObject *arg)                           \
    {                                                                           \
        PyObject *res;                                                          \
        Py_BEGIN_CRITICAL_SECTION(self);                                        \
        res = name##_impl(self, arg);                                           \
        Py_END_CRITICAL_SECTION();                                              \
        return res;                                                             \
    }
#define CC_CS_FASTCALL(name, Type)                                              \
    static PyObject *name(Type *self, PyObject *const *args, Py_ssize_t nargs) \
    {                                                                           \
        PyObject *res;                                                          \
        Py_BEGIN_CRITICAL_SECTION(self);                                        \
        res = name##_impl(self, args, nargs);                                   \
        Py_END_CRITICAL_SECTION();                                              \
        return res;                                                             \
    }
#define CC_CS_FASTCALL_KW(name, Type)                                           \
    static PyObject *name(Type *self, PyObject *const *args, Py_ssize_t nargs, \
                          PyObject *kwnames)                                    \
    {                                                                           \
        PyObject *res;                                                          \
        Py_BEGIN_CRITICAL_SECTION(self);                                        \
        res = name##_impl(self, args, nargs, kwnames);                          \
        Py_END_CRITICAL_SECTION();                                              \
        return res;                                                             \
    }
#define CC_CS_VARARGS(name, Type)                                               \
    static PyObject *name(Type *self, PyObject *args)                          \
    {                                                                           \
        PyObject *res;                                                          \
        Py_BEGIN_CRITICAL_SECTION(self);                                        \
        res = name##_impl(self, args);                                          \
        Py_END_CRITICAL_SECTION();                                              \
        return res;                                                             \
    }
#define CC_CS_GETTER(name, Type)                                                \
    static PyObject *name(Type *self, void *closure)                           \
    {                                                                           \
        PyObject *res;                                                          \
        Py_BEGIN_CRITICAL_SECTION(self);                                        \
        res = name##_impl(self, closure);                                       \
        Py_END_CRITICAL_SECTION();                                              \
        return res;                                                             \
    }
#define CC_CS_REPR(name, Type)                                                  \
    static PyObject *name(Type *self)                                          \
    {                                                                           \
        PyObject *res;                                                          \
        Py_BEGIN_CRITICAL_SECTION(self);                                        \
        res = name##_impl(self);                                                \
        Py_END_CRITICAL_SECTION();                                              \
        return res;                                                             \
    }

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *cc_Py_NewRef(PyObject *o) { Py_INCREF(o); return o; }
static inline PyObject *cc_Py_XNewRef(PyObject *o) { Py_XINCREF(o); return o; }
#  define Py_NewRef(o) cc_Py_NewRef((PyObject *)(o))
#  define Py_XNewRef(o) cc_Py_XNewRef((PyObject *)(o))
#  define Py_TPFLAGS_IMMUTABLETYPE 0
/* 3.10's bit (unused by 3.9): cc_add_type clears it and sets tp_new to NULL, as 3.10 does. */
#  define Py_TPFLAGS_DISALLOW_INSTANTIATION (1UL << 7)
static inline int cc_PyModule_AddType(PyObject *m, PyTypeObject *t)
{
    const char *dot = strrchr(t->tp_name, '.');
    Py_INCREF(t);
    if (PyModule_AddObject(m, dot ? dot + 1 : t->tp_name, (PyObject *)t) < 0) {
        Py_DECREF(t);
        return -1;
    }
    return 0;
}
#  define PyModule_AddType cc_PyModule_AddType
#endif

#if PY_VERSION_HEX < 0x030B0000
/* PyType_GetModuleByDef arrived in 3.11: walk the MRO for the defining heap type, as
   3.11 does. It reads ht_module rather than calling PyType_GetModule, which raises for a
   Python subclass: clearing that error would also drop an exception the caller has
   pending (a callback's error about to be logged). */
static inline PyObject *cc_PyType_GetModuleByDef(PyTypeObject *type, PyModuleDef *def)
{
    PyObject *mro = type->tp_mro;
    for (Py_ssize_t i = 0; mro && i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE))
            continue;
        PyObject *m = ((PyHeapTypeObject *)t)->ht_module;
        if (m && PyModule_Check(m) && PyModule_GetDef(m) == def)
            return m;
    }
    PyErr_Format(PyExc_TypeError, "PyType_GetModuleByDef: no module found for %s", type->tp_name);
    return NULL;
}
#  define PyType_GetModuleByDef cc_PyType_GetModuleByDef
#endif

#if PY_VERSION_HEX < 0x030D0000
/* 3.13's PyObject_GetOptionalAttr: 1 found, 0 missing (no error), -1 error. */
static inline int cc_PyObject_GetOptionalAttr(PyObject *obj, PyObject *name, PyObject **result)
{
    *result = PyObject_GetAttr(obj, name);
    if (*result)
        return 1;
    if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}
#  define PyObject_GetOptionalAttr cc_PyObject_GetOptionalAttr
#endif

#endif /* CCONC_COMPAT_H */
