/*
 * The C half of axon_port.agents._history_cache.fresh_copy: a structural copy of a
 * validated history message that shares only immutable leaves with the original.
 * Also plain(), the C half of axon_port.agents._messages.plain (Atom keys and
 * values to str, at C speed for dicts, lists, tuples and str; everything else is
 * handed to the Python function set with configure_plain()).
 *
 * It handles the shapes pydantic-ai messages are made of -- lists, dicts and
 * dataclass instances that keep their fields in __dict__ -- and hands everything
 * else to the Python function (tuples, sets, slotted dataclasses, enums, unknown
 * types), which also decides which classes are "copy through __dict__" ones and
 * records them in the set given to configure().  The two are pinned to produce
 * the same copies by tests/unit/test_history_cache.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *immutable_types; /* frozenset of types shared as they are */
static PyObject *dict_types;      /* set of dataclass types copied through __dict__ */
static PyObject *fallback;        /* the Python fresh_copy */
static PyObject *empty_tuple;

static PyObject *copy_value(PyObject *v);

/* Whether v is shared as it is: the commonest immutable leaves by their exact
   type first, then the configured set; 1, 0, or -1 (error). */
static inline int is_shared(PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyUnicode_Type || v == Py_None || t == &PyLong_Type || t == &PyBool_Type ||
        t == &PyFloat_Type)
        return 1;
    return PySet_Contains(immutable_types, (PyObject *)t);
}

static PyObject *copy_list(PyObject *v) {
    Py_ssize_t n = PyList_GET_SIZE(v);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = copy_value(PyList_GET_ITEM(v, i));
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

/* A copy of the dict v: PyDict_Copy (one allocation, no rehashing), then each
   value that is not shared replaced by its copy; replacing the value of an
   existing key does not change the dict's keys, so iterating stays valid. */
static PyObject *copy_dict_items(PyObject *v) {
    PyObject *out = PyDict_Copy(v);
    if (out == NULL) return NULL;
    Py_ssize_t pos = 0;
    PyObject *key, *val;
    while (PyDict_Next(out, &pos, &key, &val)) {
        int shared = is_shared(val);
        if (shared < 0) {
            Py_DECREF(out);
            return NULL;
        }
        if (shared) continue;
        PyObject *copied = copy_value(val);
        if (copied == NULL || PyDict_SetItem(out, key, copied) < 0) {
            Py_XDECREF(copied);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(copied);
    }
    return out;
}
static PyObject *copy_instance(PyObject *v, PyTypeObject *t) {
    PyObject *fields = PyObject_GenericGetDict(v, NULL);
    if (fields == NULL) return NULL;
    if (!PyDict_CheckExact(fields)) {
        Py_DECREF(fields);
        return PyObject_CallOneArg(fallback, v);
    }
    PyObject *new_fields = copy_dict_items(fields);
    Py_DECREF(fields);
    if (new_fields == NULL) return NULL;
    /* object.__new__(cls): no __init__, as the Python version does */
    PyObject *out = PyBaseObject_Type.tp_new(t, empty_tuple, NULL);
    if (out == NULL || PyObject_GenericSetDict(out, new_fields, NULL) < 0) {
        Py_XDECREF(out);
        Py_DECREF(new_fields);
        return NULL;
    }
    Py_DECREF(new_fields);
    return out;
}

static PyObject *copy_value(PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    int found = is_shared(v);
    if (found < 0) return NULL;
    if (found) return Py_NewRef(v);
    if (Py_EnterRecursiveCall(" in fresh_copy")) return NULL;
    PyObject *out;
    if (t == &PyList_Type) {
        out = copy_list(v);
    } else if (t == &PyDict_Type) {
        out = copy_dict_items(v);
    } else {
        found = PySet_Contains(dict_types, (PyObject *)t);
        if (found < 0)
            out = NULL;
        else if (found)
            out = copy_instance(v, t);
        else
            out = PyObject_CallOneArg(fallback, v);
    }
    Py_LeaveRecursiveCall();
    return out;
}

static PyObject *plain_fallback; /* the Python plain */

static PyObject *plain_value(PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyUnicode_Type || v == Py_None || t == &PyLong_Type || t == &PyBool_Type ||
        t == &PyFloat_Type || t == &PyBytes_Type)
        return Py_NewRef(v);
    if (PyUnicode_Check(v)) /* an Atom (or another str subclass): str(v), as in Python */
        return PyObject_Str(v);
    if (t != &PyDict_Type && t != &PyList_Type && t != &PyTuple_Type)
        return PyObject_CallOneArg(plain_fallback, v); /* Mappings, subclasses, leaves */
    if (Py_EnterRecursiveCall(" in plain")) return NULL;
    PyObject *out = NULL;
    if (t == &PyDict_Type) {
        out = PyDict_New();
        Py_ssize_t pos = 0;
        PyObject *key, *val;
        while (out != NULL && PyDict_Next(v, &pos, &key, &val)) {
            PyObject *k = plain_value(key);
            PyObject *x = k == NULL ? NULL : plain_value(val);
            if (x == NULL || PyDict_SetItem(out, k, x) < 0) Py_CLEAR(out);
            Py_XDECREF(k);
            Py_XDECREF(x);
        }
    } else {
        Py_ssize_t n = t == &PyList_Type ? PyList_GET_SIZE(v) : PyTuple_GET_SIZE(v);
        out = t == &PyList_Type ? PyList_New(n) : PyTuple_New(n);
        for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
            PyObject *item = plain_value(t == &PyList_Type ? PyList_GET_ITEM(v, i)
                                                           : PyTuple_GET_ITEM(v, i));
            if (item == NULL) {
                Py_CLEAR(out);
                break;
            }
            if (t == &PyList_Type)
                PyList_SET_ITEM(out, i, item);
            else
                PyTuple_SET_ITEM(out, i, item);
        }
    }
    Py_LeaveRecursiveCall();
    return out;
}

static PyObject *py_configure_plain(PyObject *self, PyObject *fb) {
    if (!PyCallable_Check(fb)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable");
        return NULL;
    }
    Py_INCREF(fb);
    Py_XSETREF(plain_fallback, fb);
    Py_RETURN_NONE;
}

static PyObject *py_plain(PyObject *self, PyObject *v) {
    if (plain_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_copy_speedups.configure_plain() was not called");
        return NULL;
    }
    return plain_value(v);
}

static PyObject *py_configure(PyObject *self, PyObject *args) {
    PyObject *imm, *dtypes, *fb;
    if (!PyArg_ParseTuple(args, "O!O!O:configure", &PyFrozenSet_Type, &imm, &PySet_Type, &dtypes,
                          &fb))
        return NULL;
    if (!PyCallable_Check(fb)) {
        PyErr_SetString(PyExc_TypeError, "fallback must be callable");
        return NULL;
    }
    Py_INCREF(imm);
    Py_INCREF(dtypes);
    Py_INCREF(fb);
    Py_XSETREF(immutable_types, imm);
    Py_XSETREF(dict_types, dtypes);
    Py_XSETREF(fallback, fb);
    Py_RETURN_NONE;
}

static PyObject *py_fresh_copy(PyObject *self, PyObject *v) {
    if (fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_copy_speedups.configure() was not called");
        return NULL;
    }
    return copy_value(v);
}

static PyMethodDef methods[] = {
    {"configure", py_configure, METH_VARARGS,
     "configure(immutable_types, dict_types, fallback): the tables fresh_copy uses."},
    {"fresh_copy", py_fresh_copy, METH_O, "A structural copy sharing only immutable leaves."},
    {"configure_plain", py_configure_plain, METH_O,
     "configure_plain(fallback): the Python plain, for the values plain() leaves to it."},
    {"plain", py_plain, METH_O, "The value with every Atom (keys and values) as the equal str."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_copy_speedups", "C half of the history cache's fresh_copy.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__copy_speedups(void) {
    empty_tuple = PyTuple_New(0);
    if (empty_tuple == NULL) return NULL;
    return PyModule_Create(&module);
}
