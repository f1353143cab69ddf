/* Optional C accelerator for the ETF codec (axon_port.codecs._etf).
 *
 * It implements exactly what _etf_decode.py and _etf_encode.py do -- same values,
 * same exception types, same limits -- and is checked against them by differential
 * tests (tests/unit/test_etf_speedups.py).  Read those modules first: this file
 * mirrors them step by step, in the same order, so that the first error found is
 * the same one.
 *
 * decode(payload, max_depth[, budget[, keep_encoded]]) -> value, or NotImplemented
 *     for the inputs it leaves to Python: compressed terms (tag 80 after the version byte), FLOAT_EXT (99)
 *     and maps whose keys are unhashable as decoded (lists or maps inside a key),
 *     which need the _freeze step.  The caller then decodes the payload in Python
 *     from the start, so the result is by construction Python's.
 *     The decoder is iterative: an explicit frame stack (at most max_depth deep)
 *     and one value stack holding the decoded elements of every open container;
 *     every read is bounds-checked; every declared length is checked against the
 *     bytes left before it drives an allocation.  With keep_encoded (a str), the
 *     list under that key of a top-level map stays encoded: an EncodedTerms of its
 *     elements' bytes (see _etf_encoded.encoded_list, which this mirrors).
 * encode(term, max_depth) / encode_frame(frame, max_depth) -> bytes.  Recursive,
 *     bounded by max_depth (as in Python), by Py_EnterRecursiveCall and by a hard
 *     C limit.  Raises EncodeError for the values the wire cannot carry, and the
 *     raw RecursionError / UnicodeEncodeError / OverflowError that the Python
 *     wrapper turns into EncodeError exactly as the pure-Python encoder does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static PyObject *DecodeError, *FrameTooLarge, *EncodeError, *AtomType, *FrozenListType, *MappingABC,
    *EncodedTermsType;

/* ------------------------------------------------------------------------- */
/* errors                                                                     */

static void
raise_fmt(PyObject *type, const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    if (msg == NULL)
        return;
    PyObject *exc = PyObject_CallOneArg(type, msg);
    Py_DECREF(msg);
    if (exc == NULL)
        return;
    PyErr_SetObject(type, exc);
    Py_DECREF(exc);
}

static const char *
tag_name(int tag)
{
    switch (tag) {
    case 88: return "NEW_PID_EXT";
    case 103: return "PID_EXT";
    case 89: return "NEW_PORT_EXT";
    case 102: return "PORT_EXT";
    case 120: return "V4_PORT_EXT";
    case 90: return "NEWER_REFERENCE_EXT";
    case 114: return "NEW_REFERENCE_EXT";
    case 101: return "REFERENCE_EXT";
    case 112: return "NEW_FUN_EXT";
    case 117: return "FUN_EXT";
    case 113: return "EXPORT_EXT";
    case 82: return "ATOM_CACHE_REF";
    case 68: return "DIST_HEADER";
    case 80: return "COMPRESSED (nested)";
    case 121: return "LOCAL_EXT";
    default: return "unknown tag";
    }
}

/* ------------------------------------------------------------------------- */
/* decoding                                                                   */

static inline uint32_t
rd_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The count after the tag at data[*pos]: one byte when `small`, else four.
   Advances *pos past tag and count; -1 if those bytes are not all there. */
static inline Py_ssize_t
rd_count(const unsigned char *data, Py_ssize_t n, Py_ssize_t *pos, int small)
{
    Py_ssize_t width = small ? 1 : 4;
    if (1 + width > n - *pos)
        return -1;
    Py_ssize_t cnt = small ? (Py_ssize_t)data[*pos + 1] : (Py_ssize_t)rd_u32(data + *pos + 1);
    *pos += 1 + width;
    return cnt;
}

static inline unsigned
rd_u16(const unsigned char *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

/* Atom cache: direct-mapped, keyed by the raw encoded atom (tag, length, name). */
#define ACACHE_SIZE 4096
#define ACACHE_KEY_MAX 260
typedef struct {
    PyObject *key;   /* bytes, or NULL */
    PyObject *value; /* Atom, None, True or False */
} ACacheEntry;
static ACacheEntry acache[ACACHE_SIZE];

static inline size_t
raw_hash(const unsigned char *p, Py_ssize_t n)
{
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h & (ACACHE_SIZE - 1);
}

/* The atom whose encoding is data[pos:end], its name data[start:end] (end <= n). */
static PyObject *
dec_atom(const unsigned char *data, Py_ssize_t pos, Py_ssize_t start, Py_ssize_t end, int utf8)
{
    const unsigned char *raw = data + pos;
    Py_ssize_t rawlen = end - pos;
    size_t slot = raw_hash(raw, rawlen);
    ACacheEntry *e = &acache[slot];
    if (e->key != NULL && PyBytes_GET_SIZE(e->key) == rawlen &&
        memcmp(PyBytes_AS_STRING(e->key), raw, (size_t)rawlen) == 0) {
        return Py_NewRef(e->value);
    }
    const char *name = (const char *)data + start;
    Py_ssize_t len = end - start;
    PyObject *value;
    if (len == 3 && memcmp(name, "nil", 3) == 0)
        value = Py_NewRef(Py_None);
    else if (len == 4 && memcmp(name, "true", 4) == 0)
        value = Py_NewRef(Py_True);
    else if (len == 5 && memcmp(name, "false", 5) == 0)
        value = Py_NewRef(Py_False);
    else {
        PyObject *s = utf8 ? PyUnicode_DecodeUTF8(name, len, NULL)
                           : PyUnicode_DecodeLatin1(name, len, NULL);
        if (s == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                return NULL;
            PyErr_Clear();
            PyObject *b = PyBytes_FromStringAndSize(name, len < 40 ? len : 40);
            if (b != NULL) {
                raise_fmt(DecodeError, "atom name is not valid UTF-8: %R", b);
                Py_DECREF(b);
            }
            return NULL;
        }
        value = PyObject_CallOneArg(AtomType, s);
        Py_DECREF(s);
        if (value == NULL)
            return NULL;
    }
    if (rawlen > ACACHE_KEY_MAX) /* long atoms are not cached: bounded memory */
        return value;
    PyObject *key = PyBytes_FromStringAndSize((const char *)raw, rawlen);
    if (key == NULL) {
        Py_DECREF(value);
        return NULL;
    }
    Py_XSETREF(e->key, key);
    Py_XSETREF(e->value, Py_NewRef(value));
    return value;
}

typedef struct {
    Py_ssize_t base;      /* index in the value stack of the container's first element */
    Py_ssize_t remaining; /* elements still expected */
    int kind;             /* 0 (top level), 116 map, 108 list, 104/105 tuple */
} Frame;

typedef struct {
    PyObject **vals;
    Py_ssize_t nvals, vcap;
    Frame *frames;
    Py_ssize_t nframes, fcap;
    Py_ssize_t budget; /* estimated bytes of Python objects still allowed (see _etf) */
    PyObject *keep_encoded; /* str or NULL: the top-level key whose list stays encoded */
} DecState;

/* Charge k estimated bytes to the decoded-size budget; FrameTooLarge once it is spent. */
static int
charge(DecState *st, Py_ssize_t k)
{
    st->budget -= k;
    if (st->budget < 0) {
        raise_fmt(FrameTooLarge, "decoded term exceeds the decoded-size budget");
        return -1;
    }
    return 0;
}

static void
dec_state_free(DecState *st)
{
    for (Py_ssize_t i = 0; i < st->nvals; i++)
        Py_DECREF(st->vals[i]);
    PyMem_Free(st->vals);
    PyMem_Free(st->frames);
}

static int
push_val(DecState *st, PyObject *v)
{
    if (st->nvals == st->vcap) {
        Py_ssize_t cap = st->vcap ? st->vcap * 2 : 64;
        PyObject **p = PyMem_Realloc(st->vals, (size_t)cap * sizeof(PyObject *));
        if (p == NULL) {
            Py_DECREF(v);
            PyErr_NoMemory();
            return -1;
        }
        st->vals = p;
        st->vcap = cap;
    }
    st->vals[st->nvals++] = v;
    return 0;
}

static int
push_frame(DecState *st, Frame f)
{
    if (st->nframes == st->fcap) {
        Py_ssize_t cap = st->fcap ? st->fcap * 2 : 16;
        Frame *p = PyMem_Realloc(st->frames, (size_t)cap * sizeof(Frame));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        st->frames = p;
        st->fcap = cap;
    }
    st->frames[st->nframes++] = f;
    return 0;
}

#define DEC_OK 0
#define DEC_ERR -1
#define DEC_FALLBACK 1

/* Mirror of _etf_decode._dec_rare: one leaf that _dec does not handle inline. */
static int
dec_rare(const unsigned char *data, Py_ssize_t n, Py_ssize_t *ppos, int tag, PyObject **out)
{
    Py_ssize_t pos = *ppos;
#define NEED(k) \
    if ((Py_ssize_t)(k) > n - pos) \
        goto truncated
    switch (tag) {
    case 107: { /* STRING_EXT */
        NEED(3);
        Py_ssize_t len = rd_u16(data + pos + 1);
        NEED(3 + len);
        PyObject *l = PyList_New(len);
        if (l == NULL)
            return DEC_ERR;
        for (Py_ssize_t i = 0; i < len; i++)
            PyList_SET_ITEM(l, i, PyLong_FromLong(data[pos + 3 + i])); /* small ints: cached */
        *out = l;
        *ppos = pos + 3 + len;
        return DEC_OK;
    }
    case 98: { /* INTEGER_EXT */
        NEED(5);
        int32_t v = (int32_t)rd_u32(data + pos + 1);
        *out = PyLong_FromLong(v);
        *ppos = pos + 5;
        return *out ? DEC_OK : DEC_ERR;
    }
    case 70: { /* NEW_FLOAT_EXT */
        NEED(9);
        uint64_t u = ((uint64_t)rd_u32(data + pos + 1) << 32) | rd_u32(data + pos + 5);
        double f;
        memcpy(&f, &u, sizeof f);
        if (!isfinite(f)) {
            raise_fmt(DecodeError, "non-finite float");
            return DEC_ERR;
        }
        *out = PyFloat_FromDouble(f);
        *ppos = pos + 9;
        return *out ? DEC_OK : DEC_ERR;
    }
    case 110:
    case 111: { /* SMALL_BIG_EXT, LARGE_BIG_EXT */
        Py_ssize_t cnt = rd_count(data, n, &pos, tag == 110);
        if (cnt < 0)
            goto truncated;
        if (cnt + 1 > n - pos) {
            raise_fmt(DecodeError, "big integer declares %zd bytes, only %zd left", cnt, n - pos);
            return DEC_ERR;
        }
        PyObject *i = _PyLong_FromByteArray(data + pos + 1, (size_t)cnt, 1, 0);
        if (i == NULL)
            return DEC_ERR;
        if (data[pos]) {
            PyObject *neg = PyNumber_Negative(i);
            Py_DECREF(i);
            if (neg == NULL)
                return DEC_ERR;
            i = neg;
        }
        *out = i;
        *ppos = pos + 1 + cnt;
        return DEC_OK;
    }
    case 118:
    case 115: { /* ATOM_UTF8_EXT, SMALL_ATOM_EXT (latin-1) */
        Py_ssize_t start, end;
        if (tag == 118) {
            NEED(3);
            start = pos + 3;
            end = start + rd_u16(data + pos + 1);
        }
        else {
            NEED(2);
            start = pos + 2;
            end = start + data[pos + 1];
        }
        if (end > n)
            goto truncated;
        *out = dec_atom(data, pos, start, end, tag == 118);
        *ppos = end;
        return *out ? DEC_OK : DEC_ERR;
    }
    case 77: { /* BIT_BINARY_EXT */
        NEED(5);
        Py_ssize_t len = rd_u32(data + pos + 1);
        NEED(6);
        if (data[pos + 5] != 8) {
            raise_fmt(DecodeError,
                      "bitstrings (binaries whose size is not whole bytes) are unsupported");
            return DEC_ERR;
        }
        NEED(6 + len);
        *out = PyBytes_FromStringAndSize((const char *)data + pos + 6, len);
        *ppos = pos + 6 + len;
        return *out ? DEC_OK : DEC_ERR;
    }
    case 99: /* FLOAT_EXT: Python's float() parsing, left to Python */
        return DEC_FALLBACK;
    default:
        raise_fmt(DecodeError, "unsupported term type %d (%s)", tag, tag_name(tag));
        return DEC_ERR;
    }
truncated:
    raise_fmt(DecodeError, "truncated term");
    return DEC_ERR;
#undef NEED
}

/* Mirror of _etf_encoded._skip: the end of the term at data[pos], or -1 when it
 * is truncated, declares more elements than there are bytes left, or holds a
 * tag other than the plain ones (then the caller decodes it normally, which
 * reports the error or falls back exactly as without keep_encoded).  Counts
 * terms still to skip instead of recursing: depth is not checked here but when
 * the element is decoded on its own. */
static Py_ssize_t
skip_term(const unsigned char *data, Py_ssize_t n, Py_ssize_t pos)
{
    Py_ssize_t todo = 1;
    while (todo) {
        if (pos >= n)
            return -1;
        int tag = data[pos];
        Py_ssize_t left = n - pos, cnt;
        todo -= 1;
        switch (tag) {
        case 97: pos += 2; break;
        case 98: pos += 5; break;
        case 70: pos += 9; break;
        case 106: pos += 1; break;
        case 109:
            if (left < 5) return -1;
            pos += 5 + (Py_ssize_t)rd_u32(data + pos + 1);
            break;
        case 77:
            if (left < 6) return -1;
            pos += 6 + (Py_ssize_t)rd_u32(data + pos + 1);
            break;
        case 107: case 100: case 118:
            if (left < 3) return -1;
            pos += 3 + (Py_ssize_t)rd_u16(data + pos + 1);
            break;
        case 115: case 119:
            if (left < 2) return -1;
            pos += 2 + (Py_ssize_t)data[pos + 1];
            break;
        case 110:
            if (left < 2) return -1;
            pos += 3 + (Py_ssize_t)data[pos + 1];
            break;
        case 111:
            if (left < 5) return -1;
            pos += 6 + (Py_ssize_t)rd_u32(data + pos + 1);
            break;
        case 104:
            if (left < 2) return -1;
            todo += data[pos + 1];
            pos += 2;
            break;
        case 105: case 108: case 116:
            if (left < 5) return -1;
            cnt = (Py_ssize_t)rd_u32(data + pos + 1);
            pos += 5;
            if (cnt > n - pos) /* every element takes at least one byte */
                return -1;
            todo += tag == 116 ? cnt + cnt : tag == 108 ? cnt + 1 : cnt;
            break;
        default:
            return -1;
        }
        if (pos > n)
            return -1;
    }
    return pos;
}

/* Mirror of _etf_encoded.encoded_list: the `cnt` elements of the list whose first
 * element is at *ppos as an EncodedTerms of their encodings.  1 (built, *ppos past
 * the tail), 0 (not applicable: decode the list normally) or -1 (error). */
static int
encoded_list(DecState *st, const unsigned char *data, Py_ssize_t n, Py_ssize_t *ppos,
             Py_ssize_t cnt, PyObject **out)
{
    Py_ssize_t pos = *ppos;
    if (cnt > n - pos)
        return 0;
    Py_ssize_t cost = 64 + 8 * cnt;
    for (Py_ssize_t i = 0; i < cnt; i++) { /* first pass: check, and price */
        Py_ssize_t end = skip_term(data, n, pos);
        if (end < 0)
            return 0;
        cost += 48 + (end - pos);
        pos = end;
    }
    if (pos >= n || data[pos] != 106)
        return 0;
    if (charge(st, cost) < 0)
        return -1;
    PyObject *items = PyTuple_New(cnt);
    if (items == NULL)
        return -1;
    pos = *ppos;
    for (Py_ssize_t i = 0; i < cnt; i++) {
        Py_ssize_t end = skip_term(data, n, pos);
        PyObject *b = PyBytes_FromStringAndSize((const char *)data + pos, end - pos);
        if (b == NULL) {
            Py_DECREF(items);
            return -1;
        }
        PyTuple_SET_ITEM(items, i, b);
        pos = end;
    }
    *out = PyObject_CallOneArg(EncodedTermsType, items);
    Py_DECREF(items);
    if (*out == NULL)
        return -1;
    *ppos = pos + 1;
    return 1;
}

/* Whether the list about to be decoded is the value of the top-level map entry
 * named st->keep_encoded (the key, a str or Atom, is the last value pushed). */
static inline int
is_kept_encoded(DecState *st, Py_ssize_t base, int kind, Py_ssize_t max_depth)
{
    if (st->keep_encoded == NULL || kind != 116 || st->nframes != 1 || max_depth <= 2 ||
        !((st->nvals - base) & 1))
        return 0;
    PyObject *key = st->vals[st->nvals - 1];
    return PyUnicode_Check(key) && PyUnicode_Compare(key, st->keep_encoded) == 0;
}

/* Mirror of _etf_decode._dec.  On DEC_OK, *result is the term and *endpos the
 * position after it. */
static int
dec_loop(DecState *st, const unsigned char *data, Py_ssize_t n, Py_ssize_t pos,
         Py_ssize_t max_depth, PyObject **result, Py_ssize_t *endpos)
{
#define NEED(k) \
    if ((Py_ssize_t)(k) > n - pos) \
        goto truncated
    Py_ssize_t base = 0, remaining = 1;
    int kind = 0;
    PyObject *v;
    for (;;) {
        NEED(1);
        int tag = data[pos];
        if (tag == 109) { /* BINARY_EXT */
            NEED(5);
            Py_ssize_t len = rd_u32(data + pos + 1);
            NEED(5 + len);
            const char *p = (const char *)data + pos + 5;
            if (charge(st, 48 + len) < 0)
                return DEC_ERR;
            v = PyUnicode_DecodeUTF8(p, len, NULL);
            if (v == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                    return DEC_ERR;
                PyErr_Clear();
                v = PyBytes_FromStringAndSize(p, len);
                if (v == NULL)
                    return DEC_ERR;
            }
            pos += 5 + len;
        }
        else if (tag == 97) { /* SMALL_INTEGER_EXT */
            NEED(2);
            v = PyLong_FromLong(data[pos + 1]);
            if (v == NULL)
                return DEC_ERR;
            pos += 2;
        }
        else if (tag == 119 || tag == 100) { /* SMALL_ATOM_UTF8_EXT, ATOM_EXT (latin-1) */
            Py_ssize_t start, end;
            if (tag == 119) {
                NEED(2);
                start = pos + 2;
                end = start + data[pos + 1];
            }
            else {
                NEED(3);
                start = pos + 3;
                end = start + rd_u16(data + pos + 1);
            }
            if (end > n)
                goto truncated;
            if (charge(st, 8) < 0)
                return DEC_ERR;
            v = dec_atom(data, pos, start, end, tag == 119);
            if (v == NULL)
                return DEC_ERR;
            pos = end;
        }
        else if (tag == 116 || tag == 108 || tag == 104 || tag == 105) { /* containers */
            Py_ssize_t cnt = rd_count(data, n, &pos, tag == 104);
            if (cnt < 0)
                goto truncated;
            if (cnt && tag == 108 && is_kept_encoded(st, base, kind, max_depth)) {
                int r = encoded_list(st, data, n, &pos, cnt, &v);
                if (r < 0)
                    return DEC_ERR;
                if (r > 0)
                    goto have_value;
            }
            if (cnt) {
                if (st->nframes >= max_depth) {
                    raise_fmt(DecodeError, "term nesting is too deep");
                    return DEC_ERR;
                }
                if (cnt > n - pos) {
                    raise_fmt(DecodeError, "declared length %zd exceeds the %zd bytes left", cnt,
                              n - pos);
                    return DEC_ERR;
                }
                /* prepaid: the container and its slots, before any element is built */
                if (charge(st, 64 + (tag == 116 ? 48 : 8) * cnt) < 0)
                    return DEC_ERR;
                Frame f = {base, remaining, kind};
                if (push_frame(st, f) < 0)
                    return DEC_ERR;
                base = st->nvals;
                remaining = tag == 116 ? cnt + cnt : cnt;
                kind = tag;
                continue;
            }
            if (tag == 108) { /* LIST_EXT with no elements: the tail must still be [] */
                NEED(1);
                if (data[pos] != 106) {
                    raise_fmt(DecodeError, "improper list (tail is not []) cannot be decoded");
                    return DEC_ERR;
                }
                pos += 1;
            }
            if (charge(st, 64) < 0)
                return DEC_ERR;
            v = tag == 116 ? PyDict_New() : tag == 108 ? PyList_New(0) : PyTuple_New(0);
            if (v == NULL)
                return DEC_ERR;
        }
        else if (tag == 106) { /* NIL_EXT */
            if (charge(st, 64) < 0)
                return DEC_ERR;
            v = PyList_New(0);
            if (v == NULL)
                return DEC_ERR;
            pos += 1;
        }
        else {
            Py_ssize_t before = pos;
            int r = dec_rare(data, n, &pos, tag, &v);
            if (r != DEC_OK)
                return r;
            /* a charlist (STRING_EXT) is a list: 8 bytes a byte; other leaves 32 + size */
            if (charge(st, 32 + (tag == 107 ? 8 : 1) * (pos - before)) < 0) {
                Py_DECREF(v);
                return DEC_ERR;
            }
        }
    have_value:
        if (push_val(st, v) < 0)
            return DEC_ERR;
        remaining -= 1;
        while (!remaining) { /* close finished containers */
            Py_ssize_t count = st->nvals - base;
            PyObject **items = st->vals + base;
            if (kind == 116) {
                v = _PyDict_NewPresized(count / 2);
                if (v == NULL)
                    return DEC_ERR;
                for (Py_ssize_t i = 0; i < count; i += 2) {
                    if (PyDict_SetItem(v, items[i], items[i + 1]) < 0) {
                        Py_DECREF(v);
                        if (PyErr_ExceptionMatches(PyExc_TypeError)) { /* a list or map key */
                            PyErr_Clear();
                            return DEC_FALLBACK;
                        }
                        return DEC_ERR;
                    }
                }
                if (PyDict_GET_SIZE(v) * 2 != count) {
                    Py_DECREF(v);
                    raise_fmt(DecodeError,
                              "map keys collide in Python (e.g. :a and \"a\", or 1 and 1.0)");
                    return DEC_ERR;
                }
                for (Py_ssize_t i = 0; i < count; i++)
                    Py_DECREF(items[i]);
            }
            else if (kind == 108) {
                NEED(1);
                if (data[pos] != 106) {
                    raise_fmt(DecodeError, "improper list (tail is not []) cannot be decoded");
                    return DEC_ERR;
                }
                pos += 1;
                v = PyList_New(count);
                if (v == NULL)
                    return DEC_ERR;
                for (Py_ssize_t i = 0; i < count; i++)
                    PyList_SET_ITEM(v, i, items[i]);
            }
            else if (kind) {
                v = PyTuple_New(count);
                if (v == NULL)
                    return DEC_ERR;
                for (Py_ssize_t i = 0; i < count; i++)
                    PyTuple_SET_ITEM(v, i, items[i]);
            }
            else {
                *result = items[0];
                st->nvals = 0;
                *endpos = pos;
                return DEC_OK;
            }
            st->nvals = base; /* the elements' references now belong to v */
            Frame f = st->frames[--st->nframes];
            base = f.base;
            remaining = f.remaining;
            kind = f.kind;
            if (push_val(st, v) < 0)
                return DEC_ERR;
            remaining -= 1;
        }
    }
truncated:
    raise_fmt(DecodeError, "truncated term");
    return DEC_ERR;
#undef NEED
}

static Py_ssize_t
depth_arg(PyObject *o)
{
    int overflow;
    long long d = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (d == -1 && PyErr_Occurred())
        return -1;
    if (overflow > 0 || d > PY_SSIZE_T_MAX / 4)
        return PY_SSIZE_T_MAX / 4;
    if (overflow < 0 || d < -(PY_SSIZE_T_MAX / 4))
        return -(PY_SSIZE_T_MAX / 4);
    return (Py_ssize_t)d;
}

static PyObject *
etf_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "decode(payload, max_depth[, budget[, keep_encoded]])");
        return NULL;
    }
    PyObject *keep = nargs == 4 && args[3] != Py_None ? args[3] : NULL;
    if (keep != NULL && !PyUnicode_Check(keep)) {
        PyErr_SetString(PyExc_TypeError, "keep_encoded must be a str or None");
        return NULL;
    }
    Py_ssize_t max_depth = depth_arg(args[1]);
    if (max_depth == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t budget = PY_SSIZE_T_MAX;
    if (nargs >= 3 && args[2] != Py_None) {
        budget = depth_arg(args[2]);
        if (budget == -1 && PyErr_Occurred())
            return NULL;
    }
    PyObject *payload = args[0];
    if (PyBytes_CheckExact(payload))
        Py_INCREF(payload);
    else {
        payload = PyObject_CallOneArg((PyObject *)&PyBytes_Type, payload);
        if (payload == NULL)
            return NULL;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(payload);
    Py_ssize_t n = PyBytes_GET_SIZE(payload);
    PyObject *result = NULL;
    if (n < 1) {
        raise_fmt(DecodeError, "truncated term");
        goto done;
    }
    if (data[0] != 131) {
        raise_fmt(DecodeError, "not an External Term Format payload (version byte %d)",
                  (int)data[0]);
        goto done;
    }
    if (n < 2) {
        raise_fmt(DecodeError, "truncated term");
        goto done;
    }
    if (data[1] == 80) { /* compressed: left to Python */
        result = Py_NewRef(Py_NotImplemented);
        goto done;
    }
    DecState st = {NULL, 0, 0, NULL, 0, 0, budget, keep};
    Py_ssize_t end = 0;
    PyObject *value = NULL;
    /* Millions of fresh containers would trigger the cyclic GC again and again
       (each pass walking everything built so far); decoding creates no cycles. */
    int gc_was_enabled = PyGC_Disable();
    int r = dec_loop(&st, data, n, 1, max_depth, &value, &end);
    dec_state_free(&st);
    if (gc_was_enabled)
        PyGC_Enable();
    if (r == DEC_FALLBACK)
        result = Py_NewRef(Py_NotImplemented);
    else if (r == DEC_OK) {
        if (end != n) {
            Py_DECREF(value);
            raise_fmt(DecodeError, "%zd trailing bytes after the term", n - end);
        }
        else
            result = value;
    }
done:
    Py_DECREF(payload);
    return result;
}

/* ------------------------------------------------------------------------- */
/* encoding                                                                   */

#define MAX_C_DEPTH 10000 /* hard bound on C recursion, whatever max_depth says */

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
    int c_depth;
} Buf;

static int
buf_grow(Buf *b, Py_ssize_t extra)
{
    if (extra > PY_SSIZE_T_MAX / 2 - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t cap = b->cap * 2;
    if (cap < b->len + extra)
        cap = b->len + extra;
    char *p = PyMem_Realloc(b->buf, (size_t)cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->buf = p;
    b->cap = cap;
    return 0;
}

#define RESERVE(b, k) \
    if ((Py_ssize_t)(k) > (b)->cap - (b)->len && buf_grow((b), (Py_ssize_t)(k)) < 0) \
        return -1

static inline void
put_u32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static int
put_head32(Buf *b, int tag, Py_ssize_t n)
{
    if (n > 0xFFFFFFFFLL) {
        PyErr_SetString(PyExc_OverflowError, "length does not fit in 32 bits");
        return -1;
    }
    RESERVE(b, 5);
    b->buf[b->len] = (char)tag;
    put_u32(b->buf + b->len + 1, (uint32_t)n);
    b->len += 5;
    return 0;
}

static int
put_binary(Buf *b, const char *p, Py_ssize_t n)
{
    if (put_head32(b, 109, n) < 0)
        return -1;
    RESERVE(b, n);
    memcpy(b->buf + b->len, p, (size_t)n);
    b->len += n;
    return 0;
}

/* UTF-8 of a str (or subclass) without caching it in the object: ASCII directly,
 * otherwise through a temporary bytes object (*tmp, to be released by the caller). */
static const char *
utf8_of(PyObject *s, Py_ssize_t *n, PyObject **tmp)
{
    *tmp = NULL;
    if (PyUnicode_READY(s) < 0)
        return NULL;
    if (PyUnicode_IS_ASCII(s)) {
        *n = PyUnicode_GET_LENGTH(s);
        return (const char *)PyUnicode_DATA(s);
    }
    *tmp = PyUnicode_AsUTF8String(s);
    if (*tmp == NULL)
        return NULL;
    *n = PyBytes_GET_SIZE(*tmp);
    return PyBytes_AS_STRING(*tmp);
}

static int
put_str(Buf *b, PyObject *s)
{
    PyObject *tmp;
    Py_ssize_t n;
    const char *p = utf8_of(s, &n, &tmp);
    if (p == NULL)
        return -1;
    int r = put_binary(b, p, n);
    Py_XDECREF(tmp);
    return r;
}

/* Mirror of _etf_encode.atom_bytes. */
static int
put_atom(Buf *b, PyObject *s)
{
    if (PyUnicode_READY(s) < 0)
        return -1;
    if (PyUnicode_GET_LENGTH(s) > 255) {
        PyObject *head = PyUnicode_Substring(s, 0, 40);
        if (head != NULL) {
            raise_fmt(EncodeError, "atom longer than 255 characters: %R...", head);
            Py_DECREF(head);
        }
        return -1;
    }
    PyObject *tmp;
    Py_ssize_t n;
    const char *p = utf8_of(s, &n, &tmp);
    if (p == NULL)
        return -1;
    if (n < 256) {
        if ((Py_ssize_t)(n + 2) > b->cap - b->len && buf_grow(b, n + 2) < 0) {
            Py_XDECREF(tmp);
            return -1;
        }
        b->buf[b->len++] = 119;
        b->buf[b->len++] = (char)n;
    }
    else {
        if ((Py_ssize_t)(n + 3) > b->cap - b->len && buf_grow(b, n + 3) < 0) {
            Py_XDECREF(tmp);
            return -1;
        }
        b->buf[b->len++] = 118;
        b->buf[b->len++] = (char)(n >> 8);
        b->buf[b->len++] = (char)n;
    }
    memcpy(b->buf + b->len, p, (size_t)n);
    b->len += n;
    Py_XDECREF(tmp);
    return 0;
}

static int
put_bytes_lit(Buf *b, const char *p, Py_ssize_t n)
{
    RESERVE(b, n);
    memcpy(b->buf + b->len, p, (size_t)n);
    b->len += n;
    return 0;
}

/* Mirror of _SMALL_INTS / _etf_encode.int_bytes, for an exact int. */
static int
put_int(Buf *b, PyObject *x)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(x, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (!overflow) {
        if (v >= 0 && v < 256) {
            RESERVE(b, 2);
            b->buf[b->len++] = 97;
            b->buf[b->len++] = (char)v;
            return 0;
        }
        if (v >= -0x80000000LL && v <= 0x7FFFFFFFLL) {
            RESERVE(b, 5);
            b->buf[b->len] = 98;
            put_u32(b->buf + b->len + 1, (uint32_t)(int32_t)v);
            b->len += 5;
            return 0;
        }
        unsigned long long a = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
        int n = 0;
        char digits[8];
        while (a) {
            digits[n++] = (char)(a & 0xFF);
            a >>= 8;
        }
        RESERVE(b, 3 + n);
        b->buf[b->len++] = 110;
        b->buf[b->len++] = (char)n;
        b->buf[b->len++] = v < 0;
        memcpy(b->buf + b->len, digits, (size_t)n);
        b->len += n;
        return 0;
    }
    int sign = overflow < 0;
    PyObject *a = sign ? PyNumber_Negative(x) : Py_NewRef(x);
    if (a == NULL)
        return -1;
    size_t nbits = _PyLong_NumBits(a);
    if (nbits == (size_t)-1 && PyErr_Occurred()) {
        Py_DECREF(a);
        return -1;
    }
    Py_ssize_t n = (Py_ssize_t)((nbits + 7) / 8);
    int r;
    if (n < 256) {
        if (3 + n > b->cap - b->len && buf_grow(b, 3 + n) < 0) {
            Py_DECREF(a);
            return -1;
        }
        b->buf[b->len++] = 110;
        b->buf[b->len++] = (char)n;
        b->buf[b->len++] = (char)sign;
    }
    else {
        if (put_head32(b, 111, n) < 0 || (1 + n > b->cap - b->len && buf_grow(b, 1 + n) < 0)) {
            Py_DECREF(a);
            return -1;
        }
        b->buf[b->len++] = (char)sign;
    }
#if PY_VERSION_HEX >= 0x030D0000
    r = _PyLong_AsByteArray((PyLongObject *)a, (unsigned char *)b->buf + b->len, (size_t)n, 1,
                            0, 1);
#else
    r = _PyLong_AsByteArray((PyLongObject *)a, (unsigned char *)b->buf + b->len, (size_t)n, 1,
                            0);
#endif
    Py_DECREF(a);
    if (r < 0)
        return -1;
    b->len += n;
    return 0;
}

static int enc(Buf *b, PyObject *x, Py_ssize_t depth, int atoms);

/* enc() of a converted value (list(x), dict(x.items()), int(x), ...); steals y. */
static int
enc_converted(Buf *b, PyObject *y, Py_ssize_t depth, int atoms)
{
    if (y == NULL)
        return -1;
    int r = enc(b, y, depth, atoms);
    Py_DECREF(y);
    return r;
}

static int
enc_inner(Buf *b, PyObject *x, Py_ssize_t depth, int atoms)
{
    PyTypeObject *t = Py_TYPE(x);
    if (t == &PyUnicode_Type)
        return put_str(b, x);
    if (t == &PyLong_Type)
        return put_int(b, x);
    if (t == &PyDict_Type || t == &PyList_Type || t == &PyTuple_Type) {
        Py_ssize_t n = t == &PyDict_Type ? PyDict_GET_SIZE(x) : Py_SIZE(x);
        if (depth == 0 && n) { /* empty containers do not count, as in decoding */
            raise_fmt(EncodeError, "value nesting is too deep (or cyclic)");
            return -1;
        }
        depth -= 1;
        if (t == &PyDict_Type) {
            if (put_head32(b, 116, n) < 0)
                return -1;
            Py_ssize_t i = 0, seen = 0;
            PyObject *k, *v;
            while (PyDict_Next(x, &i, &k, &v)) {
                Py_INCREF(k);
                Py_INCREF(v);
                int r = enc(b, k, depth, atoms);
                if (r == 0)
                    r = enc(b, v, depth, atoms);
                Py_DECREF(k);
                Py_DECREF(v);
                if (r < 0)
                    return -1;
                seen++;
            }
            /* user code run while encoding (a __index__, a Mapping's items()) may
               have resized the dict: the header would no longer match */
            if (seen != n || PyDict_GET_SIZE(x) != n) {
                raise_fmt(EncodeError, "dict changed size during encoding");
                return -1;
            }
            return 0;
        }
        if (t == &PyList_Type) {
            if (!n)
                return put_bytes_lit(b, "j", 1);
            if (put_head32(b, 108, n) < 0)
                return -1;
            for (Py_ssize_t i = 0; i < n; i++) {
                if (PyList_GET_SIZE(x) != n) {
                    raise_fmt(EncodeError, "list changed size during encoding");
                    return -1;
                }
                PyObject *v = PyList_GET_ITEM(x, i);
                Py_INCREF(v);
                int r = enc(b, v, depth, atoms);
                Py_DECREF(v);
                if (r < 0)
                    return -1;
            }
            if (PyList_GET_SIZE(x) != n) {
                raise_fmt(EncodeError, "list changed size during encoding");
                return -1;
            }
            return put_bytes_lit(b, "j", 1);
        }
        if (n < 256) {
            RESERVE(b, 2);
            b->buf[b->len++] = 104;
            b->buf[b->len++] = (char)n;
        }
        else if (put_head32(b, 105, n) < 0)
            return -1;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (enc(b, PyTuple_GET_ITEM(x, i), depth, atoms) < 0)
                return -1;
        }
        return 0;
    }
    if (t == (PyTypeObject *)AtomType)
        return atoms ? put_atom(b, x) : put_str(b, x);
    if (x == Py_None)
        return put_bytes_lit(b, "w\003nil", 5);
    if (t == &PyBool_Type)
        return x == Py_True ? put_bytes_lit(b, "w\004true", 6) : put_bytes_lit(b, "w\005false", 7);
    if (t == &PyFloat_Type) {
        double f = PyFloat_AS_DOUBLE(x);
        if (!isfinite(f)) {
            raise_fmt(EncodeError, "cannot encode non-finite float %R", x);
            return -1;
        }
        uint64_t u;
        memcpy(&u, &f, sizeof u);
        RESERVE(b, 9);
        b->buf[b->len] = 70;
        put_u32(b->buf + b->len + 1, (uint32_t)(u >> 32));
        put_u32(b->buf + b->len + 5, (uint32_t)u);
        b->len += 9;
        return 0;
    }
    if (t == &PyBytes_Type)
        return put_binary(b, PyBytes_AS_STRING(x), PyBytes_GET_SIZE(x));
    if (t == &PyByteArray_Type)
        return put_binary(b, PyByteArray_AS_STRING(x), PyByteArray_GET_SIZE(x));
    /* the isinstance fallbacks, in the Python encoder's order */
    int r;
    if ((r = PyObject_IsInstance(x, FrozenListType)) != 0)
        return r < 0 ? -1 : enc_converted(b, PySequence_List(x), depth, atoms);
    if ((r = PyObject_IsInstance(x, MappingABC)) != 0) {
        if (r < 0)
            return -1;
        PyObject *items = PyObject_CallMethod(x, "items", NULL);
        if (items == NULL)
            return -1;
        PyObject *d = PyObject_CallOneArg((PyObject *)&PyDict_Type, items);
        Py_DECREF(items);
        return enc_converted(b, d, depth, atoms);
    }
    if ((r = PyObject_IsInstance(x, AtomType)) != 0)
        return r < 0 ? -1 : atoms ? put_atom(b, x) : put_str(b, x);
    if (PyUnicode_Check(x)) /* str subclasses (e.g. StrEnum): their value */
        return put_str(b, x);
    if (PyLong_Check(x)) /* IntEnum & co: the plain value */
        return enc_converted(b, PyNumber_Long(x), depth, atoms);
    if (PyFloat_Check(x))
        return enc_converted(b, PyNumber_Float(x), depth, atoms);
    if (PyTuple_Check(x))
        return enc_converted(b, PySequence_Tuple(x), depth, atoms);
    if (PyList_Check(x))
        return enc_converted(b, PySequence_List(x), depth, atoms);
    PyObject *qn = PyType_GetQualName(t);
    if (qn != NULL) {
        raise_fmt(EncodeError, "cannot encode a value of type %U", qn);
        Py_DECREF(qn);
    }
    return -1;
}

static int
enc(Buf *b, PyObject *x, Py_ssize_t depth, int atoms)
{
    PyTypeObject *t = Py_TYPE(x);
    if (t == &PyUnicode_Type)
        return put_str(b, x);
    if (t == &PyLong_Type)
        return put_int(b, x);
    if (b->c_depth >= MAX_C_DEPTH) {
        PyErr_SetString(PyExc_RecursionError, "maximum recursion depth exceeded while encoding");
        return -1;
    }
    if (Py_EnterRecursiveCall(" while encoding an ETF term"))
        return -1;
    b->c_depth++;
    int r = enc_inner(b, x, depth, atoms);
    b->c_depth--;
    Py_LeaveRecursiveCall();
    return r;
}

static PyObject *
buf_finish(Buf *b, int ok)
{
    PyObject *res = ok ? PyBytes_FromStringAndSize(b->buf, b->len) : NULL;
    PyMem_Free(b->buf);
    return res;
}

static int
buf_init(Buf *b)
{
    b->cap = 256;
    b->len = 0;
    b->c_depth = 0;
    b->buf = PyMem_Malloc((size_t)b->cap);
    if (b->buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->buf[b->len++] = (char)131;
    return 0;
}

static PyObject *
etf_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode(term, max_depth)");
        return NULL;
    }
    Py_ssize_t depth = depth_arg(args[1]);
    if (depth == -1 && PyErr_Occurred())
        return NULL;
    Buf b;
    if (buf_init(&b) < 0)
        return NULL;
    return buf_finish(&b, enc(&b, args[0], depth, 1) == 0);
}

/* One frame entry: mirror of the loop body of _etf_encode.encode_frame. */
static int
frame_item(Buf *b, PyObject *k, PyObject *v, Py_ssize_t depth)
{
    int r = PyUnicode_Check(k) ? put_atom(b, k) : enc(b, k, depth, 0);
    if (r < 0)
        return -1;
    int is_type;
    if (PyUnicode_CheckExact(k))
        is_type = PyUnicode_CompareWithASCIIString(k, "type") == 0;
    else {
        PyObject *lit = PyUnicode_FromString("type");
        if (lit == NULL)
            return -1;
        is_type = PyObject_RichCompareBool(k, lit, Py_EQ);
        Py_DECREF(lit);
        if (is_type < 0)
            return -1;
    }
    if (is_type && PyUnicode_Check(v))
        return put_atom(b, v);
    return enc(b, v, depth, 0);
}

static PyObject *
etf_encode_frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode_frame(frame, max_depth)");
        return NULL;
    }
    PyObject *frame = args[0];
    Py_ssize_t depth = depth_arg(args[1]);
    if (depth == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t n = PyObject_Size(frame);
    if (n < 0)
        return NULL;
    Buf b;
    if (buf_init(&b) < 0)
        return NULL;
    if (put_head32(&b, 116, n) < 0)
        return buf_finish(&b, 0);
    if (PyDict_CheckExact(frame)) {
        Py_ssize_t i = 0, seen = 0;
        PyObject *k, *v;
        while (PyDict_Next(frame, &i, &k, &v)) {
            Py_INCREF(k);
            Py_INCREF(v);
            int r = frame_item(&b, k, v, depth);
            Py_DECREF(k);
            Py_DECREF(v);
            if (r < 0)
                return buf_finish(&b, 0);
            seen++;
        }
        if (seen != n || PyDict_GET_SIZE(frame) != n) {
            raise_fmt(EncodeError, "frame changed size during encoding");
            return buf_finish(&b, 0);
        }
        return buf_finish(&b, 1);
    }
    PyObject *items = PyObject_CallMethod(frame, "items", NULL);
    if (items == NULL)
        return buf_finish(&b, 0);
    PyObject *it = PyObject_GetIter(items);
    Py_DECREF(items);
    if (it == NULL)
        return buf_finish(&b, 0);
    PyObject *item;
    int ok = 1;
    Py_ssize_t seen = 0;
    while (ok && (item = PyIter_Next(it)) != NULL) {
        PyObject *pair = PySequence_Tuple(item);
        Py_DECREF(item);
        if (pair == NULL)
            ok = 0;
        else if (PyTuple_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_ValueError, "expected 2 values to unpack, got %zd",
                         PyTuple_GET_SIZE(pair));
            ok = 0;
        }
        else {
            ok = frame_item(&b, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1), depth) == 0;
            seen++;
        }
        Py_XDECREF(pair);
    }
    Py_DECREF(it);
    if (ok && PyErr_Occurred())
        ok = 0;
    if (ok && seen != n) { /* the mapping grew or shrank while it was walked */
        raise_fmt(EncodeError, "frame changed size during encoding");
        ok = 0;
    }
    return buf_finish(&b, ok);
}

/* ------------------------------------------------------------------------- */
/* msgpack decoded-size budget (the same scan as _msgpack._check_budget)      */

/* The big-endian length of width ``w`` at ``pos + 1``, read from the bytes that are
   there (as the Python scan's int.from_bytes of a possibly short slice does). */
static uint64_t
be_uint(const unsigned char *d, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t w)
{
    uint64_t n = 0;
    for (Py_ssize_t i = pos + 1; i < pos + 1 + w && i < end; i++)
        n = (n << 8) | d[i];
    return n;
}

/* msgpack_within_budget(data, budget) -> bool: False when the payload would decode
   past ``budget`` estimated bytes. One linear pass over the tokens, charged exactly
   as the Python scan charges them; a malformed byte stops the scan (True: the
   unpacker reports it). */
static PyObject *
msgpack_within_budget(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "msgpack_within_budget(data, budget)");
        return NULL;
    }
    long long budget = PyLong_AsLongLong(args[1]);
    if (budget == -1 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *d = (const unsigned char *)view.buf;
    Py_ssize_t pos = 0, end = view.len;
    int ok = 1;
    while (pos < end) {
        unsigned b = d[pos];
        Py_ssize_t w;
        uint64_t n;
        if (b <= 0x7F || b >= 0xE0 || b == 0xC0 || b == 0xC2 || b == 0xC3) {
            pos += 1;
            continue;
        }
        if (b <= 0x8F) {
            budget -= 64 + 48 * (long long)(b & 0x0F);
            pos += 1;
        }
        else if (b <= 0x9F) {
            budget -= 64 + 8 * (long long)(b & 0x0F);
            pos += 1;
        }
        else if (b <= 0xBF) {
            n = b & 0x1F;
            budget -= 48 + (long long)n;
            pos += 1 + (Py_ssize_t)n;
        }
        else if ((b >= 0xCA && b <= 0xD3)) {
            static const Py_ssize_t widths[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
            budget -= 32;
            pos += 1 + widths[b - 0xCA];
        }
        else if (b == 0xC4 || b == 0xC5 || b == 0xC6 || b == 0xD9 || b == 0xDA || b == 0xDB) {
            w = (b == 0xC4 || b == 0xD9) ? 1 : (b == 0xC5 || b == 0xDA) ? 2 : 4;
            n = be_uint(d, pos, end, w);
            budget -= 48 + (long long)n;
            pos += 1 + w + (Py_ssize_t)n;
        }
        else if (b >= 0xDC && b <= 0xDF) {
            w = (b == 0xDC || b == 0xDE) ? 2 : 4;
            n = be_uint(d, pos, end, w);
            budget -= 64 + (b <= 0xDD ? 8 : 48) * (long long)n;
            pos += 1 + w;
        }
        else if (b >= 0xD4 && b <= 0xD8) {
            static const Py_ssize_t sizes[] = {2, 3, 5, 9, 17};
            pos += sizes[b - 0xD4];
        }
        else if (b == 0xC7 || b == 0xC8 || b == 0xC9) {
            w = b == 0xC7 ? 1 : b == 0xC8 ? 2 : 4;
            n = be_uint(d, pos, end, w);
            pos += 2 + w + (Py_ssize_t)n;
        }
        else { /* 0xC1 (never used): malformed */
            break;
        }
        if (budget < 0) {
            ok = 0;
            break;
        }
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

/* ------------------------------------------------------------------------- */
/* module                                                                     */

static PyMethodDef methods[] = {
    {"decode", (PyCFunction)(void (*)(void))etf_decode, METH_FASTCALL,
     "decode(payload, max_depth[, budget]) -> term, or NotImplemented to decode in Python"},
    {"encode", (PyCFunction)(void (*)(void))etf_encode, METH_FASTCALL,
     "encode(term, max_depth) -> bytes (Atom as atoms)"},
    {"encode_frame", (PyCFunction)(void (*)(void))etf_encode_frame, METH_FASTCALL,
     "encode_frame(frame, max_depth) -> bytes (top-level keys and type as atoms)"},
    {"msgpack_within_budget", (PyCFunction)(void (*)(void))msgpack_within_budget, METH_FASTCALL,
     "msgpack_within_budget(data, budget) -> False if data would decode past budget"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_etf_speedups",
    "C accelerator for axon_port.codecs._etf (same results and errors as the Python code).",
    -1, methods,
};

static PyObject *
import_attr(const char *module, const char *name)
{
    PyObject *m = PyImport_ImportModule(module);
    if (m == NULL)
        return NULL;
    PyObject *a = PyObject_GetAttrString(m, name);
    Py_DECREF(m);
    return a;
}

PyMODINIT_FUNC
PyInit__etf_speedups(void)
{
    if (DecodeError == NULL) {
        DecodeError = import_attr("axon_port.errors", "DecodeError");
        FrameTooLarge = import_attr("axon_port.errors", "FrameTooLarge");
        EncodeError = import_attr("axon_port.errors", "EncodeError");
        AtomType = import_attr("axon_port._types", "Atom");
        FrozenListType = import_attr("axon_port._types", "FrozenList");
        EncodedTermsType = import_attr("axon_port._types", "EncodedTerms");
        MappingABC = import_attr("collections.abc", "Mapping");
        if (!DecodeError || !FrameTooLarge || !EncodeError || !AtomType || !FrozenListType || !MappingABC ||
            !EncodedTermsType) {
            Py_CLEAR(DecodeError);
            Py_CLEAR(FrameTooLarge);
            Py_CLEAR(EncodeError);
            Py_CLEAR(AtomType);
            Py_CLEAR(FrozenListType);
            Py_CLEAR(MappingABC);
            Py_CLEAR(EncodedTermsType);
            return NULL;
        }
        if (!PyType_Check(AtomType) || !PyType_Check(FrozenListType)) {
            PyErr_SetString(PyExc_ImportError, "axon_port._types has unexpected Atom/FrozenList");
            return NULL;
        }
    }
    return PyModule_Create(&moduledef);
}
