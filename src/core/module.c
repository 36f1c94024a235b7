/* The module definition: multi-phase init, module state, type registration. */
#include "cconc.h"

/* setup.py's stamp of this build (its sources' digest, its configuration), read back by
   cconc/_buildinfo.py: a checkout refuses an extension built from other sources. */
#ifndef CCONC_BUILD_INFO
#  define CCONC_BUILD_INFO ""
#endif

/* Every member of cc_state is a PyObject pointer (see cconc.h). */
#define STATE_SLOTS(st) ((PyObject **)(st))
#define STATE_NSLOTS (sizeof(cc_state) / sizeof(PyObject *))

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    cc_state *st = PyModule_GetState(m);
    for (size_t i = 0; st && i < STATE_NSLOTS; i++)
        Py_VISIT(STATE_SLOTS(st)[i]);
    return 0;
}

static int module_clear(PyObject *m)
{
    cc_state *st = PyModule_GetState(m);
    for (size_t i = 0; st && i < STATE_NSLOTS; i++)
        Py_CLEAR(STATE_SLOTS(st)[i]);
    return 0;
}

static void module_free(void *m) { module_clear((PyObject *)m); }

/* base: NULL, one type, or a tuple of types. Before 3.10 PyType_FromModuleAndSpec
   takes only a tuple ("SystemError: bases is not a tuple"), so one type is packed
   here, once for every caller. */
int cc_add_type(PyObject *module, PyType_Spec *spec, PyObject *base, PyTypeObject **slot)
{
    PyObject *bases = NULL;
    if (base && PyType_Check(base)) {
        bases = PyTuple_Pack(1, base);
        if (!bases)
            return -1;
        base = bases;
    }
#if PY_VERSION_HEX < 0x030A0000
    /* No Py_TPFLAGS_DISALLOW_INSTANTIATION before 3.10: do what 3.10 does with it (no
       tp_new, so neither T() nor object.__new__(T) makes an unfilled instance). */
    PyType_Spec spec_39 = *spec;
    spec_39.flags &= ~Py_TPFLAGS_DISALLOW_INSTANTIATION;
    PyObject *type = PyType_FromModuleAndSpec(module, &spec_39, base);
    if (type && (spec->flags & Py_TPFLAGS_DISALLOW_INSTANTIATION)) {
        /* A Py_tp_new slot also left a __new__ wrapper, which would call the NULL tp_new. */
        PyObject *dict = ((PyTypeObject *)type)->tp_dict;
        if (PyDict_GetItemString(dict, "__new__") && PyDict_DelItemString(dict, "__new__") < 0)
            Py_CLEAR(type);
        else {
            ((PyTypeObject *)type)->tp_new = NULL;
            PyType_Modified((PyTypeObject *)type);
        }
    }
#else
    PyObject *type = PyType_FromModuleAndSpec(module, spec, base);
#endif
    Py_XDECREF(bases);
    if (!type)
        return -1;
    if (PyModule_AddType(module, (PyTypeObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    *slot = (PyTypeObject *)type;
    return 0;
}

PyObject *cc_exc_take(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

typedef int (*exec_fn)(PyObject *, cc_state *);

/* One entry per concern (source file). */
static const exec_fn concern_exec[] = {
    cc_lock_exec,
    cc_event_exec,
    cc_condition_exec,
    cc_semaphore_exec,
    cc_barrier_exec,
    cc_thread_start_exec,
    cc_queue_exec,
    cc_simplequeue_exec,
    cc_future_exec,
    cc_executor_exec,
    cc_selector_exec,
    cc_mpqueue_exec,
    cc_doorbell_exec,
    cc_poolworker_exec,
};

static int module_exec(PyObject *m)
{
    cc_state *st = PyModule_GetState(m);
    if (cc_park_exec(m) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(concern_exec) / sizeof(concern_exec[0]); i++)
        if (concern_exec[i](m, st) < 0)
            return -1;
    if (PyModule_AddObject(m, "TIMEOUT_MAX", PyFloat_FromDouble(CC_TIMEOUT_MAX)) < 0)
        return -1;
    if (PyModule_AddStringConstant(m, "_build_info", CCONC_BUILD_INFO) < 0)
        return -1;
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_GIL_DISABLED
    /* Every object guards its state with its own critical section and the
     * waiting core with its own lock (cconc.h): the GIL stays off. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyModuleDef cc_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = CC_MODULE,
    .m_doc = "Native core of cconc: concurrency primitives that release the GIL while they wait.",
    .m_size = sizeof(cc_state),
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__cconc(void) { return PyModuleDef_Init(&cc_module_def); }

/* ------------------------------------------------------------ arguments */

int cc_parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                  const char *const *names, Py_ssize_t npos, Py_ssize_t nrequired, PyObject **out)
{
    Py_ssize_t nparams = 0;
    while (names[nparams])
        nparams++;
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd positional argument%s (%zd given)", fname,
                     npos, npos == 1 ? "" : "s", nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nparams; i++)
        out[i] = i < nargs ? args[i] : NULL;
    if (kwnames) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < nkw; k++) {
            PyObject *key = PyTuple_GET_ITEM(kwnames, k);
            Py_ssize_t i;
            for (i = 0; i < nparams; i++)
                if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0)
                    break;
            if (i == nparams) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, key);
                return -1;
            }
            if (out[i]) {
                PyErr_Format(PyExc_TypeError, "argument for %s() given by name ('%s') and position (%zd)",
                             fname, names[i], i + 1);
                return -1;
            }
            out[i] = args[nargs + k];
        }
    }
    for (Py_ssize_t i = 0; i < nrequired; i++) {
        if (!out[i]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %zd)", fname,
                         names[i], i + 1);
            return -1;
        }
    }
    return 0;
}
